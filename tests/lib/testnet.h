/*
 * testnet - runs the Horizon + Stellar RPC test double (tests/testnet,
 * see its README.md) as a child process for the C tests, and talks to its
 * admin API with blocking libcurl calls.
 *
 * The child runs with --exit-on-stdin-eof, so it dies with the test even
 * when the test crashes. A missing node or npm package makes start fail
 * (never skip): CI installs them with `npm ci --prefix tests/testnet`.
 */
#ifndef NOVA_TEST_TESTNET_H
#define NOVA_TEST_TESTNET_H

#include <sys/types.h>

struct cJSON;

struct testnet {
    pid_t pid;
    int stdin_fd, stdout_fd;
    int port;
    char url[64];     /* Horizon: http://127.0.0.1:PORT */
    char rpc_url[96]; /* URL/soroban/rpc */
    char passphrase[128];
    char dir[256]; /* temp dir for keys.json */
    /* Keys seeded by testnet_setup() (setup.js, deterministic). */
    char issuer[57], issuer_secret[57];
    char dist[57], dist_secret[57];
    char recipient[4][57]; /* recipient[i] has a NOVA trustline unless i >= with_trust */
};

/* Starts the server with extra arguments (NULL-terminated, may be NULL),
 * e.g. {"--ledger-close-ms", "200", NULL}. Returns 0, or -1 with the reason
 * on stderr. */
int testnet_start(struct testnet *t, const char *const *args);
void testnet_stop(struct testnet *t);

/* Seeds issuer, distribution (NOVA balance) and `recipients` accounts, the
 * last `without_trust` of them without a NOVA trustline. Returns 0 or -1. */
int testnet_setup(struct testnet *t, int recipients, int without_trust);

/* An admin / Horizon request: method, path ("/_admin/faults"), JSON body or
 * NULL. Returns the parsed answer (caller frees; NULL on failure) and the
 * HTTP status in *status (may be NULL). */
struct cJSON *testnet_call(struct testnet *t, const char *method, const char *path,
                           const char *body, long *status);

/* Number of entries in GET /_admin/payments?tx_hash=HASH, -1 on error. */
int testnet_payments_for(struct testnet *t, const char *hash);

#endif
