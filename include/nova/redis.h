/*
 * nova/redis.h - the shared Redis client offered to plugins
 * (struct nova_host.redis), for small things like deleting a cache key.
 * Queue work goes through subscribe()/enqueue(), never through this.
 *
 * command() sends one command on the runtime's command connection. argv
 * holds argc arguments (argvlen may be NULL for NUL-terminated strings);
 * everything is copied before the call returns. When it returns 0, cb
 * runs exactly once on the loop thread: status 0 with the reply (which may
 * be an error reply, NOVA_REDIS_REPLY_ERROR), or a negative errno with
 * reply NULL: -ECONNRESET (the connection dropped), -ETIMEDOUT (no reply
 * within twice the Redis connect timeout; the command may still run),
 * both worth retrying, or -ECANCELED (the plugin or the daemon is
 * stopping; cb runs before the plugin's shutdown()). When it returns an
 * error cb never runs: -ENOTCONN while Redis is down (retry later),
 * -ECANCELED while stopping, -EINVAL, -ENOMEM. A reply that arrives after
 * a cancel or a timeout is dropped.
 * The reply and everything it points to are valid only during cb.
 */
#ifndef NOVA_REDIS_H
#define NOVA_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include "nova/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

enum nova_redis_reply_type {
    NOVA_REDIS_REPLY_STRING = 1, /* str/len (also status replies such as "OK") */
    NOVA_REDIS_REPLY_ARRAY,      /* elements/element */
    NOVA_REDIS_REPLY_INTEGER,    /* integer */
    NOVA_REDIS_REPLY_NIL,
    NOVA_REDIS_REPLY_STATUS, /* str/len */
    NOVA_REDIS_REPLY_ERROR,  /* str/len: the error message */
};

struct nova_redis_reply {
    enum nova_redis_reply_type type;
    long long integer;
    const char *str; /* NUL-terminated; len excludes the NUL */
    size_t len;
    size_t elements;
    const struct nova_redis_reply *element; /* array of `elements` replies */
};

typedef void (*nova_redis_cb)(void *arg, int status, const struct nova_redis_reply *reply);

struct nova_redis_api {
    uint32_t struct_size; /* sizeof(struct nova_redis_api) */
    int (*command)(const struct nova_host *host, int argc, const char *const *argv,
                   const size_t *argvlen, nova_redis_cb cb, void *arg);
};

#ifdef __cplusplus
}
#endif
#endif /* NOVA_REDIS_H */
