/*
 * The shared HTTP client against a real local peer (tests/lib/http_peer.py
 * on 127.0.0.1). No test sends traffic outside 127.0.0.0/8: guarded
 * requests to other addresses are refused before a socket exists, which
 * the tests assert through the client's socket counter.
 */
#include "config.h"

#include <check.h>

#include "unit/testutil.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/host.h"
#include "http/http_client.h"
#include "lib/http_peer.h"
#include "common/log.h"
#include "common/metrics.h"

struct result {
    int calls;
    int error;
    long status;
    char msg[512];
    char body[4096];
    size_t body_len;
    char ctype[128];
    char location[256];
    int64_t retry_ms;
    int64_t time_ms;
    bool json_seen;
    char json_text[2048];
};

static uv_loop_t loop;
static struct nova__http_client *client;
static struct http_peer peer;
static bool closed;

static void copy_result(struct result *out, const struct nova_http_response *res)
{
    const char *v;

    out->calls++;
    out->error = res->error;
    out->status = res->status;
    snprintf(out->msg, sizeof out->msg, "%s", res->error_message);
    out->body_len = res->body_len;
    snprintf(out->body, sizeof out->body, "%s", res->body);
    v = nova__http_header(res, "content-type");
    snprintf(out->ctype, sizeof out->ctype, "%s", v != NULL ? v : "");
    v = nova__http_header(res, "Location");
    snprintf(out->location, sizeof out->location, "%s", v != NULL ? v : "");
    out->retry_ms = nova__http_response_api.retry_after_ms(res);
    out->time_ms = res->total_time_ms;
}

static void on_res(void *arg, const struct nova_http_response *res)
{
    copy_result(arg, res);
}

static void on_json(void *arg, const struct nova_http_response *res, const struct cJSON *json)
{
    struct result *out = arg;
    copy_result(out, res);
    out->json_seen = json != NULL;
    if (json != NULL) {
        char *t = cJSON_PrintUnformatted(json);
        snprintf(out->json_text, sizeof out->json_text, "%s", t);
        cJSON_free(t);
    }
}

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

static struct nova__http_client *make_client(const char *ca_file)
{
    struct nova__http_config cfg = {
        .timeout_ms = 5000,
        .connect_timeout_ms = 2000,
        .max_response_bytes = 65536,
        .max_connections = 8,
        .ca_file = (char *)(uintptr_t)ca_file,
        .user_agent = "nova-worker-test/1",
    };
    struct nova__http_client *c = NULL;
    ck_assert_int_eq(nova__http_client_new(&loop, &cfg, &c), 0);
    ck_assert_ptr_nonnull(c);
    return c;
}

static void close_client(struct nova__http_client *c)
{
    bool done = false;
    nova__http_client_close(c, on_closed, &done);
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
}

static void setup(void)
{
    nova__metrics_reset();
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(http_peer_start(&peer, false), 0);
    client = make_client(NULL);
    closed = false;
}

static void teardown(void)
{
    if (client != NULL)
        close_client(client);
    client = NULL;
    /* Every handle the client opened is closed again. */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    http_peer_stop(&peer);
}

/* Runs the loop until r has its callback (or 10 s pass). */
static void wait_for(struct result *r, int calls)
{
    uint64_t deadline = uv_hrtime() + 10000000000ull;
    while (r->calls < calls && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_int_eq(r->calls, calls);
}

static void get(struct nova__http_client *c, const char *url, uint32_t flags, struct result *r)
{
    struct nova_http_request req = {.struct_size = sizeof req, .url = url, .flags = flags};
    memset(r, 0, sizeof *r);
    ck_assert_int_eq(nova__http_request(c, &req, on_res, r), 0);
    /* never called from inside request() */
    ck_assert_int_eq(r->calls, 0);
    wait_for(r, 1);
}

static char *url_of(const struct http_peer *p, const char *path)
{
    static char buf[4][512];
    static int i;
    char *u = buf[i++ % 4];
    snprintf(u, sizeof buf[0], "http://127.0.0.1:%d%s", p->port, path);
    return u;
}

static double metric(const char *name, enum nova_metric_type type, const char *const *names,
                     const char *const *values)
{
    nova_metric *m = nova__metric_new(type, name, "", names, NULL, 0);
    ck_assert_ptr_nonnull(m);
    return nova__metric_value(m, values);
}

START_TEST(test_get_ok_and_metrics)
{
    struct result r;
    get(client, url_of(&peer, "/ok"), 0, &r);
    ck_assert_int_eq(r.error, 0);
    ck_assert_str_eq(r.msg, "");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello");
    ck_assert_uint_eq(r.body_len, 5);
    ck_assert_str_eq(r.ctype, "text/plain");
    ck_assert_int_eq(r.retry_ms, -1);
    ck_assert_int_ge(r.time_ms, 0);

    get(client, url_of(&peer, "/status?code=404"), 0, &r);
    ck_assert_int_eq(r.error, 0);
    ck_assert_int_eq(r.status, 404);

    static const char *const rl[] = {"host", "code_class", NULL};
    static const char *const dl[] = {"host", NULL};
    ck_assert(metric("nova_worker_http_requests_total", NOVA_METRIC_COUNTER, rl,
                     (const char *[]){"127.0.0.1", "2xx"}) == 1);
    ck_assert(metric("nova_worker_http_requests_total", NOVA_METRIC_COUNTER, rl,
                     (const char *[]){"127.0.0.1", "4xx"}) == 1);
    ck_assert(metric("nova_worker_http_request_duration_seconds", NOVA_METRIC_HISTOGRAM, dl,
                     (const char *[]){"127.0.0.1"}) == 2);
}
END_TEST

START_TEST(test_keepalive_reuses_one_connection)
{
    struct result r;
    struct nova__http_stats st;
    int accepted, used, requests;

    for (int i = 0; i < 5; i++) {
        get(client, url_of(&peer, "/ok"), 0, &r);
        ck_assert_int_eq(r.status, 200);
    }
    ck_assert_int_eq(http_peer_stats(&peer, &accepted, &used, &requests), 0);
    ck_assert_int_eq(requests, 5);
    ck_assert_int_eq(accepted, 1);
    ck_assert_int_eq(used, 1);
    nova__http_client_stats(client, &st);
    ck_assert_uint_eq(st.sockets_opened, 1);
    ck_assert_uint_eq(st.in_flight, 0);
}
END_TEST

START_TEST(test_post_headers_and_body)
{
    static const char body[] = "tx=AAAA%2B%2F%3D";
    const char *headers[] = {"X-Test: yes", "Content-Type: application/x-www-form-urlencoded",
                             NULL};
    struct nova_http_request req = {.struct_size = sizeof req,
                                    .url = url_of(&peer, "/echo"),
                                    .headers = headers,
                                    .body = body,
                                    .body_len = sizeof body - 1};
    struct result r = {0};

    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "method")->valuestring, "POST");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "body")->valuestring, body);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "x_test")->valuestring, "yes");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "user_agent")->valuestring, "nova-worker-test/1");
    cJSON_Delete(j);

    /* other methods */
    req.method = "PUT";
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_ptr_nonnull(strstr(r.body, "\"method\": \"PUT\""));
    req.method = "DELETE";
    req.body = NULL;
    req.body_len = 0;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_ptr_nonnull(strstr(r.body, "\"method\": \"DELETE\""));
}
END_TEST

START_TEST(test_invalid_arguments_fail_synchronously)
{
    const char *bad_header[] = {"X-Evil: a\r\nInjected: b", NULL};
    const char *no_colon[] = {"NoColon", NULL};
    struct nova_http_request req = {.struct_size = sizeof req, .url = url_of(&peer, "/ok")};
    struct result r = {0};

    ck_assert_int_eq(nova__http_request(client, NULL, on_res, &r), -EINVAL);
    ck_assert_int_eq(nova__http_request(client, &req, NULL, &r), -EINVAL);
    req.struct_size = 8;
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), -EINVAL);
    req.struct_size = sizeof req;
    req.url = NULL;
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), -EINVAL);
    req.url = url_of(&peer, "/ok");
    req.headers = bad_header;
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), -EINVAL);
    req.headers = no_colon;
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), -EINVAL);
    req.headers = NULL;
    req.method = "GE T";
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), -EINVAL);
    req.method = NULL;
    req.timeout_ms = -1;
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), -EINVAL);
    /* no callback ever ran */
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(r.calls, 0);

    /* a malformed URL is reported through the callback */
    req.timeout_ms = 0;
    req.url = "http://exa mple.com/";
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, -EINVAL);
    ck_assert_str_ne(r.msg, "");
}
END_TEST

START_TEST(test_connect_refused)
{
    struct result r;
    /* port 1 on loopback: nothing listens there */
    get(client, "http://127.0.0.1:1/", 0, &r);
    ck_assert_int_eq(r.error, -ECONNREFUSED);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.msg, "connection failed"));
    static const char *const el[] = {"host", "reason", NULL};
    ck_assert(metric("nova_worker_http_errors_total", NOVA_METRIC_COUNTER, el,
                     (const char *[]){"127.0.0.1", "connect"}) == 1);
}
END_TEST

START_TEST(test_per_request_timeout)
{
    struct nova_http_request req = {
        .struct_size = sizeof req, .url = url_of(&peer, "/slow?ms=3000"), .timeout_ms = 200};
    struct result r = {0};
    uint64_t t0 = uv_hrtime();

    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_int_eq(r.error, -ETIMEDOUT);
    ck_assert_ptr_nonnull(strstr(r.msg, "timed out"));
    ck_assert_uint_ge(ms, 190);
    ck_assert_uint_lt(ms, 1500);
    static const char *const el[] = {"host", "reason", NULL};
    ck_assert(metric("nova_worker_http_errors_total", NOVA_METRIC_COUNTER, el,
                     (const char *[]){"127.0.0.1", "timeout"}) == 1);

    /* the client default (5 s) lets the same endpoint finish */
    req.url = url_of(&peer, "/slow?ms=300");
    req.timeout_ms = 0;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, 0);
    ck_assert_str_eq(r.body, "slow");
}
END_TEST

START_TEST(test_response_size_limit)
{
    struct nova_http_request req = {.struct_size = sizeof req, .max_response_bytes = 1000};
    struct result r = {0};

    /* exactly at the limit passes */
    req.url = url_of(&peer, "/big?n=1000");
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, 0);
    ck_assert_uint_eq(r.body_len, 1000);

    /* announced by Content-Length */
    req.url = url_of(&peer, "/big?n=100000");
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, -EFBIG);
    ck_assert_ptr_nonnull(strstr(r.msg, "1000 bytes"));

    /* chunked, no length: cut while receiving */
    req.url = url_of(&peer, "/big?n=100000&chunked=1");
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, -EFBIG);
    ck_assert_uint_le(r.body_len, 1000);

    /* the client default (65536 here) applies when the request says 0 */
    req.max_response_bytes = 0;
    req.url = url_of(&peer, "/big?n=70000&chunked=1");
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, -EFBIG);
    req.url = url_of(&peer, "/big?n=60000&chunked=1");
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, 0);
    ck_assert_uint_eq(r.body_len, 60000);
}
END_TEST

START_TEST(test_retry_after_values)
{
    struct result r;

    get(client, url_of(&peer, "/status?code=429&retry_after=2"), 0, &r);
    ck_assert_int_eq(r.status, 429);
    ck_assert_int_eq(r.retry_ms, 2000);

    /* an HTTP-date three seconds ahead */
    char path[256], date[64];
    time_t when = time(NULL) + 3;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    char enc[128];
    size_t k = 0;
    for (const char *p = date; *p != '\0' && k + 4 < sizeof enc; p++) {
        if (*p == ' ' || *p == ',') {
            k += (size_t)snprintf(enc + k, sizeof enc - k, "%%%02X", (unsigned char)*p);
        } else {
            enc[k++] = *p;
        }
    }
    enc[k] = '\0';
    snprintf(path, sizeof path, "/status?code=503&retry_after=%s", enc);
    get(client, url_of(&peer, path), 0, &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_msg(r.retry_ms >= 1000 && r.retry_ms <= 4000, "retry %lld", (long long)r.retry_ms);

    get(client, url_of(&peer, "/status?code=503"), 0, &r);
    ck_assert_int_eq(r.retry_ms, 0);
    get(client, url_of(&peer, "/status?code=500&retry_after=5"), 0, &r);
    ck_assert_int_eq(r.retry_ms, -1);
    get(client, "http://127.0.0.1:1/", 0, &r);
    ck_assert_int_eq(r.retry_ms, -1);
}
END_TEST

/* A caller that honours Retry-After: waits as told, then asks again. */
struct retrier {
    struct result r;
    uv_timer_t timer;
    int attempts;
    uint64_t first_ns, retry_ns;
    int64_t waited_ms;
    const char *url;
};

static void retrier_send(struct retrier *t);

static void retrier_fire(uv_timer_t *h)
{
    struct retrier *t = h->data;
    t->retry_ns = uv_hrtime();
    retrier_send(t);
}

static void retrier_done(void *arg, const struct nova_http_response *res)
{
    struct retrier *t = arg;
    int64_t wait = nova__http_retry_after_ms(res);
    t->attempts++;
    if (res->status == 429 && wait >= 0 && t->attempts < 3) {
        t->waited_ms = wait;
        uv_timer_start(&t->timer, retrier_fire, (uint64_t)wait, 0);
        return;
    }
    copy_result(&t->r, res);
}

static void retrier_send(struct retrier *t)
{
    struct nova_http_request req = {.struct_size = sizeof req, .url = t->url};
    ck_assert_int_eq(nova__http_request(client, &req, retrier_done, t), 0);
}

START_TEST(test_429_retry_after_honoured)
{
    struct retrier t = {.url = url_of(&peer, "/flaky?key=a&retry_after=1")};

    uv_timer_init(&loop, &t.timer);
    t.timer.data = &t;
    t.first_ns = uv_hrtime();
    retrier_send(&t);
    wait_for(&t.r, 1);
    ck_assert_int_eq(t.attempts, 2);
    ck_assert_int_eq(t.waited_ms, 1000);
    ck_assert_int_eq(t.r.status, 200);
    ck_assert_str_eq(t.r.body, "recovered");
    ck_assert_uint_ge((t.retry_ns - t.first_ns) / 1000000, 1000);
    uv_close((uv_handle_t *)&t.timer, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}
END_TEST

START_TEST(test_tls_with_and_without_ca)
{
    struct http_peer tls;
    struct result r;
    char url[256];

    ck_assert_int_eq(http_peer_start(&tls, true), 0);
    ck_assert_str_ne(tls.ca_file, "");
    snprintf(url, sizeof url, "https://127.0.0.1:%d/ok", tls.port);

    /* the system store does not know the throwaway CA */
    get(client, url, 0, &r);
    ck_assert_int_eq(r.error, -EPROTO);
    ck_assert_ptr_nonnull(strstr(r.msg, "TLS"));
    static const char *const el[] = {"host", "reason", NULL};
    ck_assert(metric("nova_worker_http_errors_total", NOVA_METRIC_COUNTER, el,
                     (const char *[]){"127.0.0.1", "tls"}) == 1);

    struct nova__http_client *with_ca = make_client(tls.ca_file);
    get(with_ca, url, 0, &r);
    ck_assert_msg(r.error == 0, "%d %s", r.error, r.msg);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello");

    /* the certificate names 127.0.0.1 and localhost only: a name that maps
     * to the same address still fails host verification */
    char entry[64], url2[256];
    snprintf(entry, sizeof entry, "other.test:%d:127.0.0.1", tls.port);
    ck_assert_int_eq(nova__http_client_test_resolve(with_ca, entry), 0);
    snprintf(url2, sizeof url2, "https://other.test:%d/ok", tls.port);
    get(with_ca, url2, 0, &r);
    ck_assert_int_eq(r.error, -EPROTO);

    /* https only: the TLS peer passes, plain http and a redirect from
     * https down to http are refused without touching the plain peer */
    get(with_ca, url, NOVA_HTTP_HTTPS_ONLY, &r);
    ck_assert_int_eq(r.status, 200);
    get(with_ca, url_of(&peer, "/ok"), NOVA_HTTP_HTTPS_ONLY, &r);
    ck_assert_int_eq(r.error, -EACCES);
    ck_assert_ptr_nonnull(strstr(r.msg, "https only"));
    snprintf(url2, sizeof url2, "https://127.0.0.1:%d/redirect?to=http%%3A//127.0.0.1%%3A%d/ok",
             tls.port, peer.port);
    get(with_ca, url2, NOVA_HTTP_FOLLOW_REDIRECTS, &r);
    ck_assert_int_eq(r.status, 200); /* allowed without the flag */
    get(with_ca, url2, NOVA_HTTP_FOLLOW_REDIRECTS | NOVA_HTTP_HTTPS_ONLY, &r);
    ck_assert_int_eq(r.error, -EACCES);
    int accepted, used, requests;
    ck_assert_int_eq(http_peer_stats(&peer, &accepted, &used, &requests), 0);
    ck_assert_int_eq(requests, 1);

    close_client(with_ca);
    http_peer_stop(&tls);
}
END_TEST

START_TEST(test_json_helper)
{
    struct nova_http_request req = {.struct_size = sizeof req, .url = url_of(&peer, "/echo")};
    cJSON *body = cJSON_CreateObject();
    struct result r = {0};

    cJSON_AddNumberToObject(body, "amount", 42);
    ck_assert_int_eq(nova__http_request_json(client, &req, body, on_json, &r), 0);
    cJSON_Delete(body); /* copied by request_json */
    wait_for(&r, 1);
    ck_assert_msg(r.error == 0, "%d %s [%s]", r.error, r.msg, r.body);
    ck_assert(r.json_seen);
    cJSON *j = cJSON_Parse(r.json_text);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "method")->valuestring, "POST");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "content_type")->valuestring, "application/json");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "accept")->valuestring, "application/json");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "body")->valuestring, "{\"amount\":42}");
    cJSON_Delete(j);

    /* no body: GET */
    req.url = url_of(&peer, "/json");
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request_json(client, &req, NULL, on_json, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, 0);
    ck_assert_str_eq(r.json_text, "{\"ok\":true}");

    /* not JSON: an error naming the problem, status and body kept */
    req.url = url_of(&peer, "/notjson");
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request_json(client, &req, NULL, on_json, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, -EBADMSG);
    ck_assert(!r.json_seen);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.msg, "not valid JSON"));
    ck_assert_ptr_nonnull(strstr(r.msg, "byte 0"));
    ck_assert_ptr_nonnull(strstr(r.msg, "text/html"));
    ck_assert_ptr_nonnull(strstr(r.body, "<html>"));
    static const char *const el[] = {"host", "reason", NULL};
    ck_assert(metric("nova_worker_http_errors_total", NOVA_METRIC_COUNTER, el,
                     (const char *[]){"127.0.0.1", "bad_json"}) == 1);

    /* a problem+json error status still parses, with Retry-After usable */
    req.url = url_of(&peer, "/flaky?key=j&retry_after=4");
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request_json(client, &req, NULL, on_json, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, 0);
    ck_assert_int_eq(r.status, 429);
    ck_assert_str_eq(r.json_text, "{\"type\":\"rate_limit_exceeded\"}");
    ck_assert_int_eq(r.retry_ms, 4000);
}
END_TEST

static void assert_refused(const char *url, const char *why)
{
    struct result r;
    get(client, url, NOVA_HTTP_GUARD, &r);
    ck_assert_msg(r.error == -EACCES, "%s: error %d (%s)", url, r.error, r.msg);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(r.msg, why) != NULL, "%s: message '%s' lacks '%s'", url, r.msg, why);
}

START_TEST(test_guard_refuses_private_targets)
{
    struct nova__http_stats st;
    int accepted, used, requests;
    char url[256], entry[64];

    /* literal addresses: refused before curl sees the request */
    assert_refused(url_of(&peer, "/ok"), "127.0.0.1 is loopback");
    assert_refused("http://10.0.0.1/", "10.0.0.1 is private");

    /* refusals are logged as warnings, without the URL (it may carry
     * tokens) */
    FILE *logf = tmpfile();
    ck_assert_ptr_nonnull(logf);
    nova__log_set_fd(fileno(logf));
    assert_refused("http://169.254.169.254/latest/meta-data/?token=s3cr3t", "cloud metadata");
    nova__log_set_fd(-1);
    char logbuf[2048] = "";
    rewind(logf);
    size_t logn = fread(logbuf, 1, sizeof logbuf - 1, logf);
    logbuf[logn] = '\0';
    fclose(logf);
    ck_assert_ptr_nonnull(strstr(logbuf, "\"warn"));
    ck_assert_ptr_nonnull(strstr(logbuf, "request refused"));
    ck_assert_ptr_null(strstr(logbuf, "meta-data"));
    ck_assert_ptr_null(strstr(logbuf, "s3cr3t"));
    snprintf(url, sizeof url, "http://[::ffff:127.0.0.1]:%d/ok", peer.port);
    assert_refused(url, "IPv4-mapped");
    snprintf(url, sizeof url, "http://2130706433:%d/ok", peer.port);
    assert_refused(url, "loopback");
    assert_refused("ftp://127.0.0.1/", "scheme 'ftp'");
    assert_refused("http://hooks.example@10.0.0.1/", "user information");

    /* names: refused on the resolved address, at connect time. evil.test
     * is pinned to 10.0.0.1 without DNS; the guard refuses before socket() */
    snprintf(entry, sizeof entry, "evil.test:80:10.0.0.1");
    ck_assert_int_eq(nova__http_client_test_resolve(client, entry), 0);
    assert_refused("http://evil.test/", "10.0.0.1 is private");
    snprintf(entry, sizeof entry, "metadata.test:80:169.254.169.254");
    ck_assert_int_eq(nova__http_client_test_resolve(client, entry), 0);
    assert_refused("http://metadata.test/", "169.254.169.254");
    /* localhost resolves to ::1 and/or 127.0.0.1, where the peer listens */
    snprintf(url, sizeof url, "http://localhost:%d/ok", peer.port);
    assert_refused(url, "loopback");

    /* no connection was attempted anywhere */
    nova__http_client_stats(client, &st);
    ck_assert_uint_eq(st.sockets_opened, 0);
    ck_assert_uint_ge(st.guard_refusals, 10);
    ck_assert_int_eq(http_peer_stats(&peer, &accepted, &used, &requests), 0);
    ck_assert_int_eq(accepted, 0);
    ck_assert_int_eq(requests, 0);

    static const char *const el[] = {"host", "reason", NULL};
    ck_assert(metric("nova_worker_http_errors_total", NOVA_METRIC_COUNTER, el,
                     (const char *[]){"guarded", "guard"}) == 10);
}
END_TEST

START_TEST(test_guard_checks_reused_connections)
{
    struct result r;
    struct nova__http_stats st;
    int accepted, used, requests;
    char entry[64], url[256];

    /* an unguarded request opens a keep-alive connection to 127.0.0.1 ... */
    snprintf(entry, sizeof entry, "internal.test:%d:127.0.0.1", peer.port);
    ck_assert_int_eq(nova__http_client_test_resolve(client, entry), 0);
    snprintf(url, sizeof url, "http://internal.test:%d/ok", peer.port);
    get(client, url, 0, &r);
    ck_assert_int_eq(r.status, 200);
    /* ... which a guarded request to the same name must not ride on */
    get(client, url, NOVA_HTTP_GUARD, &r);
    ck_assert_int_eq(r.error, -EACCES);
    ck_assert_ptr_nonnull(strstr(r.msg, "127.0.0.1 is loopback"));
    nova__http_client_stats(client, &st);
    ck_assert_uint_eq(st.sockets_opened, 1);
    ck_assert_int_eq(http_peer_stats(&peer, &accepted, &used, &requests), 0);
    ck_assert_int_eq(requests, 1);
}
END_TEST

/* A request's own allowance (guard_allow) lets that request through to
 * the networks it lists, and no other request: not one riding on the
 * connection it opened. */
START_TEST(test_guard_allow_is_per_request)
{
    struct result r;
    struct nova__http_stats st;
    int accepted, used, requests;
    const char *url = url_of(&peer, "/ok");
    struct nova_http_request req = {
        .struct_size = sizeof req, .url = url, .flags = NOVA_HTTP_GUARD, .guard_allow = NULL};

    get(client, url, NOVA_HTTP_GUARD, &r);
    ck_assert_int_eq(r.error, -EACCES);

    req.guard_allow = "10.0.0.0/8, 127.0.0.1/32";
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, 0);
    ck_assert_int_eq(r.status, 200);
    nova__http_client_stats(client, &st);
    ck_assert_uint_eq(st.sockets_opened, 1);

    /* the kept-alive connection to 127.0.0.1 does not carry a request
     * without the allowance */
    get(client, url, NOVA_HTTP_GUARD, &r);
    ck_assert_int_eq(r.error, -EACCES);
    ck_assert_ptr_nonnull(strstr(r.msg, "loopback"));
    ck_assert_int_eq(http_peer_stats(&peer, &accepted, &used, &requests), 0);
    ck_assert_int_eq(requests, 1);

    /* another loopback address is not in the list */
    req.guard_allow = "127.0.0.2";
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, -EACCES);

    /* a malformed list is refused at once, without a callback */
    req.guard_allow = "127.0.0.1/33";
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), -EINVAL);
    req.guard_allow = "localhost";
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), -EINVAL);

    /* a caller built before guard_allow existed (a shorter struct) is
     * still served, without an allowance */
    req.guard_allow = "127.0.0.1";
    req.struct_size = (uint32_t)offsetof(struct nova_http_request, guard_allow);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, -EACCES);
    req.flags = 0;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.status, 200);
}
END_TEST

/* A kept-alive connection that dies after the request was sent makes curl
 * send it again on a new connection; NOVA_HTTP_SEND_ONCE requests are sent
 * once, on a connection of their own. */
START_TEST(test_send_once)
{
    struct result r;
    int accepted, used, requests;
    struct nova_http_request req = {.struct_size = sizeof req,
                                    .method = "POST",
                                    .url = url_of(&peer, "/drop"),
                                    .body = "x",
                                    .body_len = 1};

    get(client, url_of(&peer, "/ok"), 0, &r); /* a kept-alive connection */
    ck_assert_int_eq(r.status, 200);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_ne(r.error, 0);
    ck_assert_int_eq(http_peer_stats(&peer, &accepted, &used, &requests), 0);
    ck_assert_int_gt(requests, 2); /* curl sent it again: why the flag exists */

    int before = requests, conns = accepted;
    req.flags = NOVA_HTTP_SEND_ONCE;
    get(client, url_of(&peer, "/ok"), 0, &r);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.error, -ECONNRESET);
    ck_assert_int_eq(http_peer_stats(&peer, &accepted, &used, &requests), 0);
    ck_assert_int_eq(requests, before + 2); /* /ok and one /drop */
    ck_assert_int_ge(accepted, conns + 1);  /* /drop on a new connection */

    /* and that connection is not kept for anyone else */
    req.url = url_of(&peer, "/ok");
    conns = accepted;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &r), 0);
    wait_for(&r, 1);
    ck_assert_int_eq(r.status, 200);
    get(client, url_of(&peer, "/ok"), 0, &r);
    ck_assert_int_eq(http_peer_stats(&peer, &accepted, &used, &requests), 0);
    ck_assert_int_eq(accepted, conns + 1); /* the plain GET reused the old one */
}
END_TEST

/* A name that passes once and then resolves somewhere private (DNS
 * rebinding) is refused when the new connection is made. */
START_TEST(test_guard_dns_rebinding)
{
    struct result r;
    struct nova__http_stats st;
    char entry[64], url[256];

    /* the first answer is "public" (the test hook lets 127.0.0.1:port pass) */
    ck_assert_int_eq(nova__http_client_test_guard_allow(client, "127.0.0.1", (unsigned)peer.port),
                     0);
    snprintf(entry, sizeof entry, "rebind.test:%d:127.0.0.1", peer.port);
    ck_assert_int_eq(nova__http_client_test_resolve(client, entry), 0);
    snprintf(url, sizeof url, "http://rebind.test:%d/ok?close=1", peer.port);
    get(client, url, NOVA_HTTP_GUARD, &r);
    ck_assert_int_eq(r.status, 200);
    nova__http_client_stats(client, &st);
    ck_assert_uint_eq(st.sockets_opened, 1);

    /* the name now answers 10.0.0.1 */
    snprintf(entry, sizeof entry, "-rebind.test:%d", peer.port);
    ck_assert_int_eq(nova__http_client_test_resolve(client, entry), 0);
    snprintf(entry, sizeof entry, "rebind.test:%d:10.0.0.1", peer.port);
    ck_assert_int_eq(nova__http_client_test_resolve(client, entry), 0);
    get(client, url, NOVA_HTTP_GUARD, &r);
    ck_assert_int_eq(r.error, -EACCES);
    ck_assert_ptr_nonnull(strstr(r.msg, "10.0.0.1 is private"));
    nova__http_client_stats(client, &st);
    ck_assert_uint_eq(st.sockets_opened, 1); /* no socket towards 10.0.0.1 */
}
END_TEST

START_TEST(test_redirects)
{
    struct http_peer target;
    struct result r;
    char path[256], to[128];
    int accepted, used, requests;

    ck_assert_int_eq(http_peer_start(&target, false), 0);
    snprintf(to, sizeof to, "http%%3A//127.0.0.1%%3A%d/ok", target.port);
    snprintf(path, sizeof path, "/redirect?to=%s", to);

    /* not followed by default: the 3xx comes back as it is */
    get(client, url_of(&peer, path), 0, &r);
    ck_assert_int_eq(r.error, 0);
    ck_assert_int_eq(r.status, 302);
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/ok", target.port);
    ck_assert_str_eq(r.location, want);
    ck_assert_int_eq(http_peer_stats(&target, &accepted, &used, &requests), 0);
    ck_assert_int_eq(accepted, 0);

    /* followed on request */
    get(client, url_of(&peer, path), NOVA_HTTP_FOLLOW_REDIRECTS, &r);
    ck_assert_int_eq(r.error, 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello");
    ck_assert_str_eq(r.ctype, "text/plain");

    /* guarded and followed: every hop is checked. The first hop is let
     * through by the test hook; the second (another port) is refused. */
    ck_assert_int_eq(nova__http_client_test_guard_allow(client, "127.0.0.1", (unsigned)peer.port),
                     0);
    get(client, url_of(&peer, "/ok"), NOVA_HTTP_GUARD, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(http_peer_stats(&target, &accepted, &used, &requests), 0);
    int before = accepted;
    get(client, url_of(&peer, path), NOVA_HTTP_GUARD | NOVA_HTTP_FOLLOW_REDIRECTS, &r);
    ck_assert_int_eq(r.error, -EACCES);
    ck_assert_ptr_nonnull(strstr(r.msg, "loopback"));
    ck_assert_int_eq(http_peer_stats(&target, &accepted, &used, &requests), 0);
    ck_assert_int_eq(accepted, before);
    http_peer_stop(&target);
}
END_TEST

static void stop_timer(uv_timer_t *t)
{
    uv_timer_stop(t);
}

START_TEST(test_cancel_at_close)
{
    struct result r[3];
    struct nova_http_request req = {.struct_size = sizeof req,
                                    .url = url_of(&peer, "/slow?ms=5000")};
    struct result refused = {0};
    uv_timer_t t;
    bool done = false;
    uint64_t t0 = uv_hrtime();

    memset(r, 0, sizeof r);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(nova__http_request(client, &req, on_res, &r[i]), 0);
    /* a refusal still waiting for its deferred callback */
    struct nova_http_request g = {
        .struct_size = sizeof g, .url = "http://10.0.0.1/", .flags = NOVA_HTTP_GUARD};
    ck_assert_int_eq(nova__http_request(client, &g, on_res, &refused), 0);
    /* let the requests reach the server */
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_timer, 300, 0);
    while (uv_is_active((uv_handle_t *)&t))
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    ck_assert_int_eq(refused.calls, 1);

    nova__http_client_close(client, on_closed, &done);
    /* callbacks ran before close() returned */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(r[i].calls, 1);
        ck_assert_int_eq(r[i].error, -ECANCELED);
        ck_assert_str_ne(r[i].msg, "");
    }
    /* new requests are refused without a callback */
    ck_assert_int_eq(nova__http_request(client, &req, on_res, &refused), -ECANCELED);
    ck_assert(!done);
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
    client = NULL;
    ck_assert_uint_lt((uv_hrtime() - t0) / 1000000, 2000);
    ck_assert_int_eq(refused.calls, 1);
}
END_TEST

/* Callbacks may start requests and may close the client. */
struct chain {
    int step;
    struct result slow;
    struct result last;
    bool done;
};

static void chain_cb(void *arg, const struct nova_http_response *res)
{
    struct chain *ch = arg;
    ck_assert_int_eq(res->status, 200);
    if (++ch->step == 1) {
        struct nova_http_request req = {.struct_size = sizeof req, .url = url_of(&peer, "/ok")};
        ck_assert_int_eq(nova__http_request(client, &req, chain_cb, ch), 0);
        return;
    }
    copy_result(&ch->last, res);
    /* close from inside a callback, with another request still running */
    nova__http_client_close(client, on_closed, &ch->done);
    ck_assert_int_eq(ch->slow.calls, 1);
    ck_assert_int_eq(ch->slow.error, -ECANCELED);
    struct nova_http_request req = {.struct_size = sizeof req, .url = url_of(&peer, "/ok")};
    ck_assert_int_eq(nova__http_request(client, &req, chain_cb, ch), -ECANCELED);
}

START_TEST(test_requests_and_close_from_callbacks)
{
    struct chain ch = {0};
    struct nova_http_request slow = {.struct_size = sizeof slow,
                                     .url = url_of(&peer, "/slow?ms=3000")};
    struct nova_http_request ok = {.struct_size = sizeof ok, .url = url_of(&peer, "/ok")};

    ck_assert_int_eq(nova__http_request(client, &slow, on_res, &ch.slow), 0);
    ck_assert_int_eq(nova__http_request(client, &ok, chain_cb, &ch), 0);
    while (!ch.done)
        uv_run(&loop, UV_RUN_ONCE);
    client = NULL;
    ck_assert_int_eq(ch.step, 2);
    ck_assert_int_eq(ch.last.calls, 1);
    ck_assert_int_eq(ch.slow.calls, 1);
}
END_TEST

/* The host table path: a plugin's requests carry its host as tag. */
START_TEST(test_plugin_api_and_cancel_by_plugin)
{
    struct nova__services services = {.loop = &loop, .http = client};
    struct nova__host_ctx a = {.services = &services}, b = {.services = &services};
    struct nova__services none = {.loop = &loop};
    struct nova__host_ctx c = {.services = &none};
    struct nova_http_request slow = {.struct_size = sizeof slow,
                                     .url = url_of(&peer, "/slow?ms=3000")};
    struct nova_http_request ok = {.struct_size = sizeof ok, .url = url_of(&peer, "/ok")};
    struct result ra = {0}, rb = {0}, rc = {0};

    ck_assert_uint_eq(nova__host_http_api()->struct_size, sizeof(struct nova_http_api));
    ck_assert_int_eq(nova__host_http_api()->request(&c.host, &ok, on_res, &rc), -ENOTSUP);
    ck_assert_int_eq(nova__host_http_api()->request(&a.host, &slow, on_res, &ra), 0);
    ck_assert_int_eq(nova__host_http_api()->request(&b.host, &ok, on_res, &rb), 0);
    wait_for(&rb, 1);
    ck_assert_int_eq(rb.status, 200);
    ck_assert_int_eq(ra.calls, 0);
    nova__http_cancel_tag(client, &a.host);
    ck_assert_int_eq(ra.calls, 1);
    ck_assert_int_eq(ra.error, -ECANCELED);

    memset(&rb, 0, sizeof rb);
    ck_assert_int_eq(nova__host_http_api()->request_json(&b.host, &ok, NULL, on_json, &rb), 0);
    wait_for(&rb, 1);
    /* "hello" is not JSON */
    ck_assert_int_eq(rb.error, -EBADMSG);
    ck_assert_int_eq(rc.calls, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http_client");
    TCase *t = tcase_create("client");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_get_ok_and_metrics);
    tcase_add_test(t, test_keepalive_reuses_one_connection);
    tcase_add_test(t, test_post_headers_and_body);
    tcase_add_test(t, test_invalid_arguments_fail_synchronously);
    tcase_add_test(t, test_connect_refused);
    tcase_add_test(t, test_per_request_timeout);
    tcase_add_test(t, test_response_size_limit);
    tcase_add_test(t, test_retry_after_values);
    tcase_add_test(t, test_429_retry_after_honoured);
    tcase_add_test(t, test_tls_with_and_without_ca);
    tcase_add_test(t, test_json_helper);
    tcase_add_test(t, test_guard_refuses_private_targets);
    tcase_add_test(t, test_guard_checks_reused_connections);
    tcase_add_test(t, test_guard_dns_rebinding);
    tcase_add_test(t, test_guard_allow_is_per_request);
    tcase_add_test(t, test_send_once);
    tcase_add_test(t, test_redirects);
    tcase_add_test(t, test_cancel_at_close);
    tcase_add_test(t, test_requests_and_close_from_callbacks);
    tcase_add_test(t, test_plugin_api_and_cancel_by_plugin);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
