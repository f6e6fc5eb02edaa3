/*
 * redis_server - a private redis-server for tests: 127.0.0.1, a free
 * random port, a fresh temporary directory, AOF with fsync always (so a
 * restart keeps every acknowledged write), torn down by _stop().
 *
 * The binary is $NOVA_REDIS_SERVER or `redis-server` from PATH. A missing
 * binary is an error (tests must fail, not skip).
 */
#ifndef NOVA_TEST_REDIS_SERVER_H
#define NOVA_TEST_REDIS_SERVER_H

#include <sys/types.h>

struct nova_test_redis {
    pid_t pid; /* 0 while not running */
    int port;
    char dir[256]; /* data directory, removed by _stop() */
    char url[64];  /* redis://127.0.0.1:PORT */
};

/* Starts a server and waits until it answers PING (up to 10 s).
 * Returns 0 or -errno (the reason is printed on stderr). */
int nova_test_redis_start(struct nova_test_redis *r);

/* Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its
 * directory. Safe to call twice. */
int nova_test_redis_stop(struct nova_test_redis *r);

/* Stops the server but keeps port and data (Redis "goes away"). */
int nova_test_redis_halt(struct nova_test_redis *r);

/* Starts a halted server again on the same port and data. */
int nova_test_redis_resume(struct nova_test_redis *r);

/* halt + resume. */
int nova_test_redis_restart(struct nova_test_redis *r);

#endif
