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

#define NOVA_TEST_REDIS_ARGS 24

struct nova_test_redis {
    pid_t pid; /* 0 while not running */
    int port;
    char dir[256]; /* data directory, removed by _stop() */
    char url[64];  /* redis://127.0.0.1:PORT */
    /* what _start_with() was given, for _resume() */
    char args[NOVA_TEST_REDIS_ARGS][300];
    int nargs;
    int sentinel; /* a redis-sentinel process ($NOVA_REDIS_SENTINEL or redis-sentinel) */
    int tls_port; /* nova_test_redis_start_tls(): its TLS port */
};

/* Starts a server and waits until it answers PING (up to 10 s).
 * Returns 0 or -errno (the reason is printed on stderr). */
int nova_test_redis_start(struct nova_test_redis *r);

/* The same with more redis-server arguments (NULL-terminated; "@DIR" in
 * an argument is replaced by the server's directory), e.g. --replicaof. */
int nova_test_redis_start_with(struct nova_test_redis *r, const char *const *extra);

/* A server with a TLS port too (r->tls_port; the plain port stays for
 * PING and for the test's own checks): certificate and key of the server,
 * CA that signs client certificates, clients must present one when
 * auth_clients is set. */
int nova_test_redis_start_tls(struct nova_test_redis *r, const char *cert, const char *key,
                              const char *ca, int auth_clients);

/* A sentinel monitoring 127.0.0.1:master_port as `name` (quorum 2,
 * down-after 1000 ms, failover-timeout 3000 ms). */
int nova_test_sentinel_start(struct nova_test_redis *r, const char *name, int master_port);

/* A cluster-enabled node (port + 10000 free for its bus, node timeout
 * 2000 ms); nova_test_cluster_create() makes the nodes one cluster with
 * `redis-cli --cluster create` and waits for cluster_state:ok. */
int nova_test_cluster_node_start(struct nova_test_redis *r);
int nova_test_cluster_create(struct nova_test_redis *nodes, int n);
/* Moves `slot` to nodes[to] while clients run: IMPORTING/MIGRATING, every
 * key by MIGRATE in batches of `batch` (pausing pause_ms between them),
 * then SETSLOT NODE everywhere. Returns 0 or -errno. */
int nova_test_cluster_move_slot(struct nova_test_redis *nodes, int n, unsigned slot, int to,
                                int batch, int pause_ms);
/* The index of the node owning slot, or -1. */
int nova_test_cluster_owner(struct nova_test_redis *nodes, int n, unsigned slot);

/* Writes a CA, a server certificate for 127.0.0.1 and a client
 * certificate (all by the openssl command) into dir: ca.crt/ca.key,
 * server.crt/server.key, client.crt/client.key; with a different prefix
 * ("other-") a second, unrelated CA. Returns 0 or -1. */
int nova_test_make_certs(const char *dir, const char *prefix);

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
