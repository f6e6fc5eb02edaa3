/*
 * httpd - the operations endpoint: /metrics, /healthz, /livez, /readyz.
 *
 * A small HTTP/1.1 responder on the daemon's own libuv loop, linked into
 * the binary: it needs no library but libuv, so a worker with /metrics on
 * costs a few KiB more than one without (docs/benchmarks.md). Because it
 * answers from the loop, an answer is itself proof that the loop turns,
 * and the metrics registry is read on the thread that writes it.
 *
 *   GET/HEAD /metrics   Prometheus text format 0.0.4 (common/metrics.h)
 *   GET/HEAD /healthz   200 "ok" while the loop keeps time; 503 when its
 *                       heartbeat ran more than unhealthy_lag_ms late
 *   GET/HEAD /livez     200 "ok" whenever the loop answers at all
 *   GET/HEAD /readyz    200 "ready", or 503 and the reason given to
 *                       nova__httpd_set_ready()
 *
 * Other paths get 404, other methods 405 with "Allow: GET, HEAD". The loop
 * heartbeat is a repeating timer; how late it last ran is the gauge
 * nova_worker_loop_lag_seconds.
 *
 * Connections are HTTP/1.1 keep-alive (HTTP/1.0, "Connection: close" and
 * requests with a body close after their answer); pipelined requests are
 * answered one at a time, in order, and a connection reads nothing more
 * while its answer is being written, so a client that does not read holds
 * one answer at most. Bounded: a request head of NOVA__HTTPD_HEAD_MAX bytes
 * (431 beyond it), max_connections at once (more are closed as soon as
 * they are accepted), and timeout_ms for a whole request head to arrive
 * (a client trickling bytes gains nothing), for an idle keep-alive
 * connection, and for an answer's write to make progress.
 *
 * Everything here runs on the loop's thread. The endpoint never keeps the
 * loop alive by itself (its handles are unreferenced): it answers as long
 * as something else runs the loop, and nova__httpd_stop() must be called
 * before the loop is closed.
 */
#ifndef NOVA_RUNTIME_HTTPD_H
#define NOVA_RUNTIME_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct nova__httpd;

/* Limits; a zero member takes the default shown. */
struct nova__httpd_limits {
    unsigned max_connections;  /* 64 */
    unsigned timeout_ms;       /* 10000 */
    unsigned heartbeat_ms;     /* 1000: the loop heartbeat's period */
    unsigned unhealthy_lag_ms; /* 5000: /healthz answers 503 above it */
};

/* Listens on "host:port" on loop: an IPv4 address, "localhost" or an IPv6
 * address in brackets ("[::1]:9464"); port 0 takes a free port
 * (nova__httpd_port()). limits may be NULL for the defaults. Returns 0 with
 * *out set, or -errno with a message in err; an empty or NULL listen
 * starts nothing (0, *out = NULL). Until the first nova__httpd_set_ready()
 * /readyz answers 503 "starting". */
int nova__httpd_start(uv_loop_t *loop, const char *listen, const struct nova__httpd_limits *limits,
                      struct nova__httpd **out, char *err, size_t errlen);

/* Whether nova__httpd_start() would accept listen's form (not whether the
 * address can be bound): 0, or -EINVAL with a message in err. */
int nova__httpd_check_listen(const char *listen, char *err, size_t errlen);

/* Readiness for /readyz; reason (copied, may be NULL) is the 503 body. */
void nova__httpd_set_ready(struct nova__httpd *h, bool ready, const char *reason);

/* The bound port (what port 0 became). */
int nova__httpd_port(const struct nova__httpd *h);

/* How late the loop heartbeat is, in seconds: the larger of its last
 * measured delay and how overdue its next run is now. */
double nova__httpd_loop_lag(const struct nova__httpd *h);

/* Stops listening and closes every connection (answers being written are
 * cut). h is freed by the close callbacks, so the loop must run once more
 * (uv_run) before it is closed. NULL is allowed. */
void nova__httpd_stop(struct nova__httpd *h);

#endif
