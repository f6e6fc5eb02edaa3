/*
 * httpd_parse - the request head parser of the operations endpoint.
 *
 * A pure function over a byte buffer, with no libuv and no allocation, so
 * that the fuzz target (tests/fuzz/fuzz_httpd_parse.c) drives exactly what
 * the server runs. It reads what the endpoint needs of an HTTP/1.x request
 * head (RFC 9112): the method, the path of the target, the version, and the
 * Host, Connection, Content-Length and Transfer-Encoding fields; every
 * other field is checked for syntax and skipped. Request bodies are never
 * read: a request that has one is answered and its connection closed.
 */
#ifndef NOVA_RUNTIME_HTTPD_PARSE_H
#define NOVA_RUNTIME_HTTPD_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* The most a request head may take (request line, fields, CRLFs); the
 * server answers 431 (or 414 for a request line alone) beyond it. */
#define NOVA__HTTPD_HEAD_MAX 8192

enum nova__httpd_method { NOVA__HTTPD_GET, NOVA__HTTPD_HEAD, NOVA__HTTPD_OTHER };

struct nova__httpd_request {
    enum nova__httpd_method method;
    /* The target's path without its query ("/metrics" of "/metrics?x" or
     * "http://host/metrics"); points into the parsed buffer, or to a
     * static "/" for an absolute target with no path. */
    const char *path;
    size_t path_len;
    unsigned minor; /* HTTP/1.minor */
    /* Another request may follow on the connection: HTTP/1.1 without
     * "Connection: close". HTTP/1.0 connections always close here. */
    bool keep_alive;
    /* Content-Length above 0 or a Transfer-Encoding: a body follows that
     * the endpoint will not read, so the connection must close. */
    bool has_body;
    size_t head_len; /* bytes of the buffer the head took, blank line included */
};

/*
 * Parses the request head at the start of buf[0, len). *scanned is the
 * caller's record of how far the search for the head's end has gone, so
 * that a head arriving a byte at a time is scanned once: 0 for a new
 * request, then left as this function sets it.
 *
 * Returns 0 with *req filled (its path pointing into buf); -EAGAIN when the
 * head is not complete yet; -EBADMSG when it is malformed (answer 400);
 * -EPROTONOSUPPORT when it is not HTTP/1.x (answer 505). Empty lines
 * before the request line are skipped (RFC 9112, 2.2).
 */
int nova__httpd_parse(const char *buf, size_t len, size_t *scanned,
                      struct nova__httpd_request *req);

#endif
