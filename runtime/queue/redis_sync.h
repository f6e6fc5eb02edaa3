/*
 * redis_sync - a blocking Redis client for the CLI (`queue`, `schedules`),
 * built on the very connections the daemon uses (redis_conn.h) run on a
 * private loop: the same URLs, TLS, ACL users, Sentinel and Cluster.
 * Replies are hiredis redisReply trees owned by the caller
 * (freeReplyObject).
 */
#ifndef NOVA_RUNTIME_REDIS_SYNC_H
#define NOVA_RUNTIME_REDIS_SYNC_H

#include <stddef.h>
#include <hiredis/hiredis.h>

struct nova__redis_config;
struct nova__redis_sync;

/* Connects as [redis] says; NULL with the reason in err. */
struct nova__redis_sync *nova__redis_sync_open(const struct nova__redis_config *cfg, char *err,
                                               size_t errlen);
void nova__redis_sync_close(struct nova__redis_sync *s);

/* One command (hiredis's printf-like format, or an argument vector). NULL
 * when there is no reply: nova__redis_sync_error() says why. */
redisReply *nova__redis_sync_command(struct nova__redis_sync *s, const char *fmt, ...);
redisReply *nova__redis_sync_argv(struct nova__redis_sync *s, int argc, const char **argv,
                                  const size_t *argvlen);

/* Cluster: how many masters, and a command for the i-th whatever its keys
 * (SCAN). 1 master in the other modes. */
size_t nova__redis_sync_masters(struct nova__redis_sync *s);
redisReply *nova__redis_sync_command_at(struct nova__redis_sync *s, size_t master, const char *fmt,
                                        ...);

const char *nova__redis_sync_error(const struct nova__redis_sync *s);

#endif
