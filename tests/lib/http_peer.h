/*
 * http_peer - starts tests/lib/http_peer.py (a local HTTP/1.1 server on
 * 127.0.0.1) as a child process for the HTTP client tests.
 *
 * The child exits when http_peer_stop() closes its stdin or when the test
 * process dies, so a failed test leaves no server behind.
 */
#ifndef NOVA_TEST_HTTP_PEER_H
#define NOVA_TEST_HTTP_PEER_H

#include <stdbool.h>
#include <sys/types.h>

struct http_peer {
    pid_t pid;
    int stdin_fd;
    int port;
    char ca_file[640]; /* with tls: the CA that signed the server's certificate */
};

/* Returns 0, or -1 with a message on stderr. */
int http_peer_start(struct http_peer *p, bool tls);
void http_peer_stop(struct http_peer *p);

/* Counters from the peer: connections accepted, connections that carried
 * at least one request, and requests (the query itself is not counted).
 * Returns 0 or -1. */
int http_peer_stats(const struct http_peer *p, int *accepted, int *used, int *requests);

#endif
