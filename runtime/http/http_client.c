#include "config.h"
#include "http/http_client.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "http/http_guard.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/version.h"

/* CURLOPT_PROTOCOLS_STR (7.85) and CURLOPT_PREREQFUNCTION (7.80). */
#if LIBCURL_VERSION_NUM < 0x075500
#error "nova-worker needs libcurl >= 7.85"
#endif

#define DEFAULT_TIMEOUT_MS         10000
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_MAX_RESPONSE       (1 << 20)
#define DEFAULT_MAX_CONNECTIONS    64
#define MAX_HEADER_BYTES           (64 * 1024)
#define MAX_HEADERS                200
#define MAX_REDIRECTS              5
#define MAX_HOST_LABELS            64
#define DAY_MS                     (86400LL * 1000)
#define REQ_MAGIC                  0x6e6f76612d687474ULL

/* A socket curl asked us to watch. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct nova__http_client *c;
    struct sock *prev, *next;
};

struct header {
    char *name;
    char *value;
};

/* One request, from start() until its callback has returned. */
struct req {
    uint64_t magic; /* lets header() reject a response the client did not make */
    struct nova__http_client *c;
    struct req *prev, *next; /* in c->active or c->deferred */
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    char *effective_url;
    const char *host_label; /* owned by the client */
    uint32_t flags;
    struct nova__http_guard_nets *nets; /* the request's guard_allow, NULL = none */
    const void *tag;
    nova_http_cb cb;
    nova_http_json_cb jcb;
    void *arg;

    char *body;
    size_t body_len, body_cap, max_body;
    /* mail(): the message curl uploads and its recipients */
    bool mail;
    char *upload;
    size_t upload_len, upload_at;
    struct curl_slist *rcpt;
    struct header *hdrs;
    size_t nhdrs, hdr_bytes;

    bool too_large, hdr_too_large, guard_refused;
    int error;
    const char *reason; /* metrics label for error */
    long status;
    uint64_t start_ns;
    int64_t timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
    char msg[512];
};

struct nova__http_client {
    uv_loop_t *loop;
    CURLM *multi; /* NULL until the first request: see curl_start() */
    CURLSH *share;
    bool curl_started; /* curl_global_init() done: cleanup owed */
    uv_timer_t timer;  /* curl's timeout */
    uv_timer_t defer;  /* delivers outcomes known before curl saw the request */
    unsigned open_handles;
    struct sock *socks;
    struct req *active;
    struct req *deferred;
    bool closing;
    void (*done)(void *arg);
    void *done_arg;

    int64_t timeout_ms, connect_timeout_ms, max_response;
    long max_connections;
    char *ca_file, *user_agent;
    struct curl_slist *resolve;
    struct nova__http_guard_allow *allow; /* NULL-addr terminated */
    size_t nallow;
    char *hosts[MAX_HOST_LABELS];
    size_t nhosts;

    nova_metric *m_requests, *m_errors, *m_duration;
    struct nova__http_stats stats;
};

/* ---- small lists -------------------------------------------------------- */

static void req_push(struct req **head, struct req *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head != NULL)
        (*head)->prev = r;
    *head = r;
}

static void req_unlink(struct req **head, struct req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* ---- handles ------------------------------------------------------------ */

static void finalize(struct nova__http_client *c)
{
    void (*done)(void *) = c->done;
    void *arg = c->done_arg;

    if (c->share != NULL)
        curl_share_cleanup(c->share);
    curl_slist_free_all(c->resolve);
    for (size_t i = 0; i < c->nallow; i++)
        free((char *)(uintptr_t)c->allow[i].addr);
    free(c->allow);
    for (size_t i = 0; i < c->nhosts; i++)
        free(c->hosts[i]);
    free(c->ca_file);
    free(c->user_agent);
    bool started = c->curl_started;
    free(c);
    if (started)
        curl_global_cleanup();
    if (done != NULL)
        done(arg);
}

static void handle_closed(struct nova__http_client *c)
{
    if (--c->open_handles == 0 && c->closing)
        finalize(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock *s = h->data;
    struct nova__http_client *c = s->c;
    free(s);
    handle_closed(c);
}

static void sock_close(struct nova__http_client *c, struct sock *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* ---- metrics ------------------------------------------------------------ */

static const char *host_label(struct nova__http_client *c, const char *url, uint32_t flags)
{
    CURLU *u;
    char *host = NULL;
    const char *label = "invalid";

    if (flags & NOVA_HTTP_GUARD)
        return "guarded";
    u = curl_url();
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        for (char *p = host; *p != '\0'; p++)
            *p = (char)tolower((unsigned char)*p);
        label = "other";
        for (size_t i = 0; i < c->nhosts; i++) {
            if (strcmp(c->hosts[i], host) == 0) {
                label = c->hosts[i];
                goto out;
            }
        }
        if (c->nhosts < MAX_HOST_LABELS) {
            char *copy = strdup(host);
            if (copy != NULL) {
                c->hosts[c->nhosts++] = copy;
                label = copy;
            }
        }
    }
out:
    curl_free(host);
    curl_url_cleanup(u);
    return label;
}

static void count(struct nova__http_client *c, const struct req *r, int error, long status,
                  double seconds)
{
    if (status > 0 && (error == 0 || error == -EBADMSG)) {
        char cls[4] = {(char)('0' + (status / 100) % 10), 'x', 'x', '\0'};
        const char *labels[] = {r->host_label, cls};
        nova__metric_add(c->m_requests, labels, 1);
    }
    if (error != 0) {
        const char *labels[] = {r->host_label, r->reason != NULL ? r->reason : "other"};
        nova__metric_add(c->m_errors, labels, 1);
    }
    if (error != -ECANCELED) {
        const char *labels[] = {r->host_label};
        nova__metric_observe(c->m_duration, labels, seconds);
    }
}

/* ---- requests ----------------------------------------------------------- */

static void req_free(struct req *r)
{
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    for (size_t i = 0; i < r->nhdrs; i++) {
        free(r->hdrs[i].name);
        free(r->hdrs[i].value);
    }
    free(r->hdrs);
    free(r->body);
    free(r->upload);
    curl_slist_free_all(r->rcpt);
    free(r->url);
    free(r->effective_url);
    nova__http_guard_nets_free(r->nets);
    r->magic = 0;
    free(r);
}

static void headers_reset(struct req *r)
{
    for (size_t i = 0; i < r->nhdrs; i++) {
        free(r->hdrs[i].name);
        free(r->hdrs[i].value);
    }
    r->nhdrs = 0;
    r->hdr_bytes = 0;
}

/* Runs the callback and frees r. The response lives on this stack frame:
 * it is borrowed for exactly the duration of the callback. */
static void deliver(struct nova__http_client *c, struct req *r)
{
    struct nova_http_response res = {
        .struct_size = sizeof res,
        .error = r->error,
        .error_message = r->error != 0 ? r->msg : "",
        .status = r->status,
        .body = r->body,
        .body_len = r->body_len,
        .total_time_ms = (int64_t)((uv_hrtime() - r->start_ns) / 1000000u),
        .url = r->effective_url != NULL ? r->effective_url : r->url,
        .internal = r,
    };
    cJSON *json = NULL;

    if (r->jcb != NULL && res.error == 0 && r->body_len > 0) {
        const char *end = NULL;
        /* The length includes our terminating NUL: cJSON's "nothing after
         * the value" check wants to see it. An embedded NUL would end the
         * text early, so it is refused outright. */
        if (memchr(r->body, '\0', r->body_len) == NULL)
            json = cJSON_ParseWithLengthOpts(r->body, r->body_len + 1, &end, true);
        else
            end = memchr(r->body, '\0', r->body_len);
        if (json == NULL) {
            const char *ct = nova__http_header(&res, "Content-Type");
            size_t at = end != NULL && end >= r->body ? (size_t)(end - r->body) : 0;
            snprintf(r->msg, sizeof r->msg,
                     "response body is not valid JSON: parse error at byte %zu of %zu "
                     "(status %ld, Content-Type %s)",
                     at, r->body_len, r->status, ct != NULL ? ct : "none");
            res.error = r->error = -EBADMSG;
            res.error_message = r->msg;
            r->reason = "bad_json";
        }
    }
    count(c, r, res.error, res.status, (double)(uv_hrtime() - r->start_ns) / 1e9);
    /* Refusals are worth an operator's eye (a merchant pointing a webhook
     * inward); everything else is the caller's to report. The URL itself
     * is never logged: it may carry tokens. */
    if (r->reason != NULL && strcmp(r->reason, "guard") == 0)
        nova__log(NOVA_LOG_WARN, NULL, "http: request refused: %s", res.error_message);
    else
        nova__log(NOVA_LOG_DEBUG, NULL, "http: %s -> status %ld, error %d (%s), %lld ms",
                  r->host_label, res.status, res.error, res.error_message,
                  (long long)res.total_time_ms);
    if (r->jcb != NULL)
        r->jcb(r->arg, &res, json);
    else
        r->cb(r->arg, &res);
    cJSON_Delete(json);
    req_free(r);
}

static void on_defer(uv_timer_t *t)
{
    struct nova__http_client *c = t->data;
    while (!c->closing && c->deferred != NULL) {
        struct req *r = c->deferred;
        req_unlink(&c->deferred, r);
        deliver(c, r);
    }
}

/* For outcomes known before curl sees the request: the callback must not
 * run inside request() itself. */
static void defer(struct nova__http_client *c, struct req *r)
{
    req_push(&c->deferred, r);
    if (!uv_is_active((uv_handle_t *)&c->defer))
        uv_timer_start(&c->defer, on_defer, 0, 0);
}

static void fail(struct req *r, int error, const char *reason, const char *what)
{
    const char *detail = r->errbuf[0] != '\0' ? r->errbuf : "";
    r->error = error;
    r->reason = reason;
    snprintf(r->msg, sizeof r->msg, "%s%s%s", what, *detail != '\0' ? ": " : "", detail);
}

/* Maps a finished transfer to error/reason/message. */
/* SMTP outcomes that are not transport failures: the server said no. */
static bool classify_mail(struct req *r, CURLcode code)
{
    switch (code) {
    case CURLE_LOGIN_DENIED:
    case CURLE_AUTH_ERROR:
        fail(r, -EACCES, "auth", "SMTP authentication refused");
        return true;
    case CURLE_USE_SSL_FAILED:
        fail(r, -EPROTO, "tls", "the SMTP server does not offer STARTTLS");
        return true;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_QUOTE_ERROR:
    case CURLE_UPLOAD_FAILED:
        if (r->status >= 400) {
            r->error = -EIO;
            r->reason = "refused";
            snprintf(r->msg, sizeof r->msg, "the SMTP server refused (reply %ld): %s", r->status,
                     r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
            return true;
        }
        return false;
    default:
        return false;
    }
}

static void classify(struct req *r, CURLcode code)
{
    if (code == CURLE_OK) {
        if (r->mail && r->status != 250 && r->status != 0) {
            r->error = -EIO;
            r->reason = "refused";
            snprintf(r->msg, sizeof r->msg, "the SMTP server answered %ld", r->status);
        }
        return;
    }
    if (r->mail && classify_mail(r, code))
        return;
    if (r->guard_refused) {
        r->error = -EACCES; /* r->msg already says which address */
        r->reason = "guard";
        return;
    }
    if (r->hdr_too_large) {
        r->error = -EFBIG;
        r->reason = "too_large";
        snprintf(r->msg, sizeof r->msg, "response headers larger than %d bytes or %d lines",
                 MAX_HEADER_BYTES, MAX_HEADERS);
        return;
    }
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        r->error = -ETIMEDOUT;
        r->reason = "timeout";
        snprintf(r->msg, sizeof r->msg, "request timed out (limit %lld ms): %s",
                 (long long)r->timeout_ms, r->errbuf);
        return;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (r->too_large || code == CURLE_FILESIZE_EXCEEDED) {
            r->error = -EFBIG;
            r->reason = "too_large";
            snprintf(r->msg, sizeof r->msg, "response body larger than the limit of %zu bytes",
                     r->max_body);
            return;
        }
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        fail(r, -EHOSTUNREACH, "resolve", "could not resolve host");
        return;
    case CURLE_COULDNT_CONNECT:
        fail(r, -ECONNREFUSED, "connect", "connection failed");
        return;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
        fail(r, -EPROTO, "tls", "TLS failure");
        return;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        fail(r, -ECONNRESET, "connection", "connection broken");
        return;
    case CURLE_TOO_MANY_REDIRECTS:
        fail(r, -ELOOP, "redirects", "too many redirects");
        return;
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* only a redirect can get here past the up-front scheme checks */
        if (r->flags & (NOVA_HTTP_GUARD | NOVA_HTTP_HTTPS_ONLY)) {
            fail(r, -EACCES, "guard", "outbound guard: redirect to a refused scheme");
            return;
        }
        fail(r, -EINVAL, "invalid_url", "invalid URL");
        return;
    case CURLE_URL_MALFORMAT:
        fail(r, -EINVAL, "invalid_url", "invalid URL");
        return;
    case CURLE_OUT_OF_MEMORY:
        fail(r, -ENOMEM, "other", "out of memory");
        return;
    default:
        break;
    }
    r->error = -EIO;
    r->reason = "other";
    snprintf(r->msg, sizeof r->msg, "%s: %s", curl_easy_strerror(code), r->errbuf);
}

static void finish(struct nova__http_client *c, struct req *r, CURLcode code)
{
    char *eff = NULL;

    req_unlink(&c->active, r);
    c->stats.in_flight--;
    curl_multi_remove_handle(c->multi, r->easy);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    if (curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff != NULL)
        r->effective_url = strdup(eff);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
    classify(r, code);
    deliver(c, r);
}

static void drain(struct nova__http_client *c)
{
    CURLMsg *m;
    int left;

    /* A callback may close the client; the multi handle is gone then. */
    while (!c->closing && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode code = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        finish(c, (struct req *)(void *)priv, code);
    }
}

/* ---- curl callbacks ----------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct req *r = ud;
    size_t len = size * n;

    /* The limit holds while receiving, whatever Content-Length said. */
    if (len > r->max_body - r->body_len) {
        r->too_large = true;
        return 0;
    }
    if (r->body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap * 2;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        if (cap > r->max_body + 1)
            cap = r->max_body + 1;
        char *p = realloc(r->body, cap);
        if (p == NULL)
            return 0;
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    struct req *r = ud;
    size_t len = size * n, nlen, vstart, vend;
    const char *colon;

    /* A status line starts a new response (1xx, or a redirect hop): keep
     * only the headers of the last one. */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        headers_reset(r);
        return len;
    }
    r->hdr_bytes += len;
    if (r->hdr_bytes > MAX_HEADER_BYTES || r->nhdrs >= MAX_HEADERS) {
        r->hdr_too_large = true;
        return 0;
    }
    colon = memchr(data, ':', len);
    if (colon == NULL || colon == data)
        return len; /* the blank line, or an obsolete folded line */
    nlen = (size_t)(colon - data);
    vstart = nlen + 1;
    vend = len;
    while (vstart < vend && (data[vstart] == ' ' || data[vstart] == '\t'))
        vstart++;
    while (vend > vstart && isspace((unsigned char)data[vend - 1]))
        vend--;
    if (r->nhdrs % 16 == 0) {
        struct header *h = realloc(r->hdrs, (r->nhdrs + 16) * sizeof *h);
        if (h == NULL)
            return 0;
        r->hdrs = h;
    }
    char *name = strndup(data, nlen);
    char *value = strndup(data + vstart, vend - vstart);
    if (name == NULL || value == NULL) {
        free(name);
        free(value);
        return 0;
    }
    r->hdrs[r->nhdrs].name = name;
    r->hdrs[r->nhdrs].value = value;
    r->nhdrs++;
    return len;
}

static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct req *r = ud;
    struct nova__http_client *c = r->c;
    curl_socket_t fd;

    (void)purpose;
    /* The address curl is about to connect to, after resolution: this is
     * where a name pointing at 10.0.0.1 (or rebinding to it) is caught. */
    if ((r->flags & NOVA_HTTP_GUARD) &&
        nova__http_guard_check_sockaddr_nets(&a->addr, a->addrlen, c->allow, r->nets, r->msg,
                                             sizeof r->msg) < 0) {
        r->guard_refused = true;
        c->stats.guard_refusals++;
        return CURL_SOCKET_BAD;
    }
    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd != CURL_SOCKET_BAD)
        c->stats.sockets_opened++;
    return fd;
}

/* Runs before each request is sent, on a new or a reused connection and
 * on every redirect hop. A connection opened by an unguarded request to
 * an internal host must not carry a guarded one. */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    struct req *r = ud;

    (void)local_ip;
    (void)local_port;
    if (!(r->flags & NOVA_HTTP_GUARD))
        return CURL_PREREQFUNC_OK;
    if (nova__http_guard_check_ip_nets(primary_ip, (unsigned)primary_port, r->c->allow, r->nets,
                                       r->msg, sizeof r->msg) < 0) {
        r->guard_refused = true;
        r->c->stats.guard_refusals++;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    struct nova__http_client *c = s->c;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    drain(c);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct nova__http_client *c = userp;
    struct sock *s = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            sock_close(c, s);
            if (!c->closing)
                curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        c->open_handles++;
        s->fd = fd;
        s->c = c;
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks != NULL)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct nova__http_client *c = t->data;
    int running;

    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(c);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct nova__http_client *c = userp;

    (void)multi;
    /* Never act from inside curl: a 0 timeout fires on the next loop turn. */
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- request setup ------------------------------------------------------ */

static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch) != NULL) || ch == '\0')
            return false;
    }
    return true;
}

/* "Name: value" with a token name and no CR, LF or NUL tricks. */
static bool valid_header(const char *h)
{
    const char *colon = strchr(h, ':');
    if (colon == NULL || !is_token(h, (size_t)(colon - h)))
        return false;
    return strpbrk(h, "\r\n") == NULL;
}

static bool has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
            return true;
    }
    return false;
}

static int add_header(struct req *r, const char *line)
{
    struct curl_slist *l = curl_slist_append(r->headers, line);
    if (l == NULL)
        return -ENOMEM;
    r->headers = l;
    return 0;
}

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (curl_easy_setopt(e, opt, val) != CURLE_OK)                                             \
            return -EIO;                                                                           \
    } while (0)

/*
 * libcurl (and through it OpenSSL) is initialised on the first request,
 * not when the client is created: that initialisation maps about 6 MiB of
 * library pages, which a worker whose plugins never call out should not pay.
 */
static int curl_start(struct nova__http_client *c)
{
    if (c->curl_started)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    c->curl_started = true;
    c->multi = curl_multi_init();
    c->share = curl_share_init();
    if (c->multi == NULL || c->share == NULL)
        return -ENOMEM;
    /* One loop thread: the share needs no lock callbacks. */
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, c->max_connections);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, c->max_connections);
    return 0;
}

/* An easy handle for r with what every transfer of this client has:
 * its URL, share and buffers, the allowed protocols, verified TLS, no
 * environment proxy, its timeouts, the body sink, the socket hook (the
 * guard) and the test resolver entries. */
static int easy_open(struct nova__http_client *c, struct req *r, const char *protocols)
{
    int started = curl_start(c);
    if (started != 0)
        return started;
    CURL *e = curl_easy_init();
    if (e == NULL)
        return -ENOMEM;
    r->easy = e;
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_PRIVATE, (char *)r);
    SET(CURLOPT_SHARE, c->share);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_PROTOCOLS_STR, protocols);
    SET(CURLOPT_PROXY, ""); /* environment proxies would bypass the guard */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file != NULL)
        SET(CURLOPT_CAINFO, c->ca_file);
    SET(CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        (long)(c->connect_timeout_ms < r->timeout_ms ? c->connect_timeout_ms : r->timeout_ms));
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, r);
    if (c->resolve != NULL)
        SET(CURLOPT_RESOLVE, c->resolve);
    return 0;
}

static int setup(struct nova__http_client *c, struct req *r, const struct nova_http_request *rq,
                 const char *method, const char *body, size_t body_len, bool json)
{
    const char *protocols = (rq->flags & NOVA_HTTP_HTTPS_ONLY) ? "https" : "http,https";
    int rc = easy_open(c, r, protocols);
    if (rc != 0)
        return rc;
    CURL *e = r->easy;

    /* Without this curl sends "Expect: 100-continue" for large bodies and
     * waits a second for an answer many servers never give. */
    if (add_header(r, "Expect:") < 0)
        return -ENOMEM;
    if (json && body != NULL && !has_header(rq->headers, "Content-Type") &&
        add_header(r, "Content-Type: application/json") < 0)
        return -ENOMEM;
    if (json && !has_header(rq->headers, "Accept") && add_header(r, "Accept: application/json") < 0)
        return -ENOMEM;
    for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
        if (add_header(r, rq->headers[i]) < 0)
            return -ENOMEM;
    }

    SET(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    SET(CURLOPT_USERAGENT, c->user_agent);
    SET(CURLOPT_HTTPHEADER, r->headers);
    /* The body limit; a HEAD response has none, whatever its
     * Content-Length says (the size of an object asked about). */
    if (strcmp(method, "HEAD") != 0)
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, r);
    SET(CURLOPT_PREREQFUNCTION, on_prereq);
    SET(CURLOPT_PREREQDATA, r);
    if (rq->flags & NOVA_HTTP_SEND_ONCE) {
        /* curl resends only on a reused connection that died unanswered */
        SET(CURLOPT_FRESH_CONNECT, 1L);
        SET(CURLOPT_FORBID_REUSE, 1L);
    }
    if (rq->flags & NOVA_HTTP_FOLLOW_REDIRECTS) {
        SET(CURLOPT_FOLLOWLOCATION, 1L);
        SET(CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    }
    if (rq->aws_sigv4 != NULL) {
        /* libcurl (7.88) signs every header line it is given, "Expect:"
         * too, which only removes a default header and is never sent: the
         * server's signature then differs. Signed requests drop that line
         * and send their body without waiting for a 100 Continue. */
        if (r->headers != NULL && strcmp(r->headers->data, "Expect:") == 0) {
            struct curl_slist *rest = r->headers->next;
            r->headers->next = NULL;
            curl_slist_free_all(r->headers);
            r->headers = rest;
            SET(CURLOPT_HTTPHEADER, r->headers);
        }
        SET(CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
        SET(CURLOPT_AWS_SIGV4, rq->aws_sigv4);
    }
    if (rq->username != NULL)
        SET(CURLOPT_USERNAME, rq->username);
    if (rq->password != NULL)
        SET(CURLOPT_PASSWORD, rq->password);

    if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0 && body == NULL) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
        if (body != NULL || strcmp(method, "POST") == 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            SET(CURLOPT_COPYPOSTFIELDS, body != NULL ? body : "");
        }
    }
    return 0;
}

static int start(struct nova__http_client *c, const struct nova_http_request *user_req,
                 const cJSON *json_body, bool json, nova_http_cb cb, nova_http_json_cb jcb,
                 void *arg, const void *tag)
{
    struct nova_http_request rq;
    const char *method;
    char *json_text = NULL;
    const char *body;
    size_t body_len;
    struct nova__http_guard_nets *nets = NULL;
    struct req *r;
    int rc;

    /* guard_allow came with ABI 1.3: a request without it is complete. */
    if (c == NULL || user_req == NULL || (cb == NULL && jcb == NULL) ||
        user_req->struct_size < offsetof(struct nova_http_request, guard_allow))
        return -EINVAL;
    if (c->closing)
        return -ECANCELED;
    /* Copy what this build knows and the caller has; fields a newer caller
     * appended are ignored, fields an older one lacks read as zero. */
    memset(&rq, 0, sizeof rq);
    memcpy(&rq, user_req, user_req->struct_size < sizeof rq ? user_req->struct_size : sizeof rq);
    if (rq.url == NULL || rq.timeout_ms < 0 || rq.max_response_bytes < 0 ||
        (rq.body == NULL && rq.body_len != 0))
        return -EINVAL;
    for (size_t i = 0; rq.headers != NULL && rq.headers[i] != NULL; i++) {
        if (!valid_header(rq.headers[i]))
            return -EINVAL;
    }
    if (json) {
        if (json_body != NULL) {
            json_text = cJSON_PrintUnformatted(json_body);
            if (json_text == NULL)
                return -ENOMEM;
        }
        body = json_text;
        body_len = json_text != NULL ? strlen(json_text) : 0;
    } else {
        body = rq.body;
        body_len = rq.body_len;
    }
    method = rq.method != NULL ? rq.method : body != NULL ? "POST" : "GET";
    if (!is_token(method, strlen(method)) || strlen(method) > 32) {
        cJSON_free(json_text);
        return -EINVAL;
    }
    if (rq.guard_allow != NULL) {
        rc = nova__http_guard_nets_parse(rq.guard_allow, &nets, NULL, 0);
        if (rc < 0) {
            cJSON_free(json_text);
            return rc;
        }
    }

    r = calloc(1, sizeof *r);
    if (r == NULL) {
        nova__http_guard_nets_free(nets);
        cJSON_free(json_text);
        return -ENOMEM;
    }
    r->magic = REQ_MAGIC;
    r->c = c;
    r->nets = nets;
    r->flags = rq.flags;
    r->tag = tag;
    r->cb = cb;
    r->jcb = json ? jcb : NULL;
    r->arg = arg;
    r->start_ns = uv_hrtime();
    r->timeout_ms = rq.timeout_ms > 0 ? rq.timeout_ms : c->timeout_ms;
    r->max_body = (size_t)(rq.max_response_bytes > 0 ? rq.max_response_bytes : c->max_response);
    r->url = strdup(rq.url);
    r->body_cap = 256;
    r->body = malloc(r->body_cap);
    if (r->url == NULL || r->body == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    r->body[0] = '\0';
    r->host_label = host_label(c, rq.url, rq.flags);

    if (rq.flags & NOVA_HTTP_HTTPS_ONLY) {
        rc = nova__http_guard_check_https(rq.url, r->msg, sizeof r->msg);
        if (rc < 0) {
            r->error = rc;
            r->reason = rc == -EACCES ? "guard" : "invalid_url";
            cJSON_free(json_text);
            defer(c, r);
            return 0;
        }
    }
    if (rq.flags & NOVA_HTTP_GUARD) {
        rc = nova__http_guard_check_url_nets(rq.url, c->allow, r->nets, r->msg, sizeof r->msg);
        if (rc < 0) {
            r->error = rc;
            r->reason = rc == -EACCES ? "guard" : "invalid_url";
            if (rc == -EACCES)
                c->stats.guard_refusals++;
            cJSON_free(json_text);
            defer(c, r);
            return 0;
        }
    }
    rc = setup(c, r, &rq, method, body, body_len, json);
    if (rc < 0)
        goto fail;
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        rc = -EIO;
        goto fail;
    }
    cJSON_free(json_text);
    req_push(&c->active, r);
    c->stats.in_flight++;
    return 0;

fail:
    cJSON_free(json_text);
    req_free(r);
    return rc;
}

int nova__http_request_tagged(struct nova__http_client *c, const struct nova_http_request *req,
                              nova_http_cb cb, void *arg, const void *tag)
{
    if (cb == NULL)
        return -EINVAL;
    return start(c, req, NULL, false, cb, NULL, arg, tag);
}

int nova__http_request_json_tagged(struct nova__http_client *c, const struct nova_http_request *req,
                                   const cJSON *body, nova_http_json_cb cb, void *arg,
                                   const void *tag)
{
    if (cb == NULL)
        return -EINVAL;
    return start(c, req, body, true, NULL, cb, arg, tag);
}

int nova__http_request(struct nova__http_client *c, const struct nova_http_request *req,
                       nova_http_cb cb, void *arg)
{
    return nova__http_request_tagged(c, req, cb, arg, NULL);
}

int nova__http_request_json(struct nova__http_client *c, const struct nova_http_request *req,
                            const cJSON *body, nova_http_json_cb cb, void *arg)
{
    return nova__http_request_json_tagged(c, req, body, cb, arg, NULL);
}

/* ---- mail ------------------------------------------------------------------ */

static size_t on_upload(char *buf, size_t size, size_t n, void *ud)
{
    struct req *r = ud;
    size_t room = size * n, left = r->upload_len - r->upload_at;
    size_t len = left < room ? left : room;
    memcpy(buf, r->upload + r->upload_at, len);
    r->upload_at += len;
    return len;
}

/* An address for MAIL FROM / RCPT TO: no brackets, blanks or line breaks
 * (they would let a value add SMTP commands). */
static bool valid_address(const char *a)
{
    if (a == NULL || *a == '\0' || strlen(a) > 320 || strchr(a, '@') == NULL)
        return false;
    for (const char *p = a; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == 0x7f)
            return false;
    return true;
}

static int mail_setup(struct nova__http_client *c, struct req *r,
                      const struct nova_mail_request *mq)
{
    int rc = easy_open(c, r, "smtp,smtps");
    if (rc != 0)
        return rc;
    CURL *e = r->easy;
    char from[340];
    snprintf(from, sizeof from, "<%s>", mq->from);
    for (size_t i = 0; mq->to[i] != NULL; i++) {
        char to[340];
        snprintf(to, sizeof to, "<%s>", mq->to[i]);
        struct curl_slist *l = curl_slist_append(r->rcpt, to);
        if (l == NULL)
            return -ENOMEM;
        r->rcpt = l;
    }
    /* smtps:// is TLS from the start; smtp:// must upgrade unless the
     * operator said plain text is acceptable. */
    SET(CURLOPT_USE_SSL,
        (long)((mq->flags & NOVA_MAIL_ALLOW_PLAINTEXT) ? CURLUSESSL_TRY : CURLUSESSL_ALL));
    SET(CURLOPT_MAIL_FROM, from);
    SET(CURLOPT_MAIL_RCPT, r->rcpt);
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_READFUNCTION, on_upload);
    SET(CURLOPT_READDATA, r);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->upload_len);
    if (mq->username != NULL)
        SET(CURLOPT_USERNAME, mq->username);
    if (mq->password != NULL)
        SET(CURLOPT_PASSWORD, mq->password);
    /* One message per connection: a server that drops an idle kept
     * connection must not make curl send the message twice. */
    SET(CURLOPT_FRESH_CONNECT, 1L);
    SET(CURLOPT_FORBID_REUSE, 1L);
    return 0;
}

#undef SET

int nova__http_mail_tagged(struct nova__http_client *c, const struct nova_mail_request *mq,
                           nova_http_cb cb, void *arg, const void *tag)
{
    if (c == NULL || mq == NULL || cb == NULL || mq->struct_size < sizeof *mq || mq->url == NULL ||
        mq->to == NULL || mq->to[0] == NULL || !valid_address(mq->from) ||
        (mq->message == NULL && mq->message_len > 0) || mq->timeout_ms < 0 ||
        (mq->flags & ~NOVA_MAIL_ALLOW_PLAINTEXT) != 0)
        return -EINVAL;
    for (size_t i = 0; mq->to[i] != NULL; i++)
        if (!valid_address(mq->to[i]))
            return -EINVAL;
    if (strncmp(mq->url, "smtp://", 7) != 0 && strncmp(mq->url, "smtps://", 8) != 0)
        return -EINVAL;
    if (c->closing)
        return -ECANCELED;
    struct req *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->magic = REQ_MAGIC;
    r->c = c;
    r->mail = true;
    r->tag = tag;
    r->cb = cb;
    r->arg = arg;
    r->start_ns = uv_hrtime();
    r->timeout_ms = mq->timeout_ms > 0 ? mq->timeout_ms : c->timeout_ms;
    r->max_body = 64 * 1024;
    r->url = strdup(mq->url);
    r->body_cap = 256;
    r->body = malloc(r->body_cap);
    r->upload_len = mq->message_len;
    r->upload = malloc(mq->message_len + 1);
    int rc = -ENOMEM;
    if (r->url == NULL || r->body == NULL || r->upload == NULL)
        goto fail;
    r->body[0] = '\0';
    if (mq->message_len > 0)
        memcpy(r->upload, mq->message, mq->message_len);
    r->host_label = host_label(c, mq->url, 0);
    rc = mail_setup(c, r, mq);
    if (rc < 0)
        goto fail;
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        rc = -EIO;
        goto fail;
    }
    req_push(&c->active, r);
    c->stats.in_flight++;
    return 0;
fail:
    req_free(r);
    return rc;
}

/* Takes r out of curl and delivers -ECANCELED. */
static void cancel(struct nova__http_client *c, struct req *r)
{
    curl_multi_remove_handle(c->multi, r->easy);
    c->stats.in_flight--;
    r->error = -ECANCELED;
    r->reason = "cancelled";
    snprintf(r->msg, sizeof r->msg, "request cancelled: the HTTP client is shutting down");
    deliver(c, r);
}

/* Moves the requests of *from that carry tag onto *into. */
static void take_tagged(struct req **from, const void *tag, struct req **into)
{
    for (struct req *r = *from, *next; r != NULL; r = next) {
        next = r->next;
        if (r->tag == tag) {
            req_unlink(from, r);
            req_push(into, r);
        }
    }
}

void nova__http_cancel_tag(struct nova__http_client *c, const void *tag)
{
    struct req *mine = NULL, *r;

    if (c == NULL || tag == NULL)
        return;
    /* Collect first: callbacks may start new requests with the same tag. */
    take_tagged(&c->active, tag, &mine);
    while ((r = mine) != NULL) {
        req_unlink(&mine, r);
        if (c->multi != NULL) /* a callback may have closed the client */
            curl_multi_remove_handle(c->multi, r->easy);
        c->stats.in_flight--;
        r->error = -ECANCELED;
        r->reason = "cancelled";
        snprintf(r->msg, sizeof r->msg, "request cancelled");
        deliver(c, r);
    }
    take_tagged(&c->deferred, tag, &mine);
    while ((r = mine) != NULL) {
        req_unlink(&mine, r);
        deliver(c, r);
    }
}

/* ---- responses ---------------------------------------------------------- */

const char *nova__http_header(const struct nova_http_response *res, const char *name)
{
    const struct req *r;

    if (res == NULL || name == NULL || res->internal == NULL)
        return NULL;
    r = res->internal;
    if (r->magic != REQ_MAGIC)
        return NULL;
    for (size_t i = 0; i < r->nhdrs; i++) {
        if (strcasecmp(r->hdrs[i].name, name) == 0)
            return r->hdrs[i].value;
    }
    return NULL;
}

/* Non-negative decimal seconds, capped at a day; -1 when not one. */
static int64_t delta_ms(const char *s)
{
    int64_t v = 0;

    while (*s == ' ' || *s == '\t')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        if (v < DAY_MS)
            v = v * 10 + (*s - '0');
    }
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '\0')
        return -1;
    return v >= DAY_MS / 1000 ? DAY_MS : v * 1000;
}

int64_t nova__http_retry_after_parse(long status, const char *retry_after,
                                     const char *ratelimit_reset, int64_t now_s)
{
    int64_t ms;

    if (status != 429 && status != 503)
        return -1;
    if (retry_after != NULL) {
        ms = delta_ms(retry_after);
        if (ms >= 0)
            return ms;
        /* curl_getdate reads the three HTTP-date forms (RFC 9110 5.6.7). */
        time_t when = curl_getdate(retry_after, NULL);
        if (when != (time_t)-1) {
            int64_t d = (int64_t)when - now_s;
            return d <= 0 ? 0 : d >= DAY_MS / 1000 ? DAY_MS : d * 1000;
        }
    }
    /* Horizon sends the seconds until its quota resets on every response. */
    if (status == 429 && ratelimit_reset != NULL) {
        ms = delta_ms(ratelimit_reset);
        if (ms >= 0)
            return ms;
    }
    return 0;
}

int64_t nova__http_retry_after_ms(const struct nova_http_response *res)
{
    if (res == NULL || (res->error != 0 && res->error != -EBADMSG))
        return -1;
    return nova__http_retry_after_parse(res->status, nova__http_header(res, "Retry-After"),
                                        nova__http_header(res, "X-RateLimit-Reset"),
                                        (int64_t)time(NULL));
}

/* ---- client ------------------------------------------------------------- */

int nova__http_client_new(uv_loop_t *loop, const struct nova__http_config *cfg,
                          struct nova__http_client **out)
{
    static const char *const req_labels[] = {"host", "code_class", NULL};
    static const char *const err_labels[] = {"host", "reason", NULL};
    static const char *const dur_labels[] = {"host", NULL};
    struct nova__http_client *c;

    *out = NULL;
    if (loop == NULL)
        return -EINVAL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->loop = loop;
    c->timeout_ms = cfg != NULL && cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms = cfg != NULL && cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms
                                                                       : DEFAULT_CONNECT_TIMEOUT_MS;
    c->max_response =
        cfg != NULL && cfg->max_response_bytes > 0 ? cfg->max_response_bytes : DEFAULT_MAX_RESPONSE;
    c->max_connections = cfg != NULL && cfg->max_connections > 0 ? (long)cfg->max_connections
                                                                 : DEFAULT_MAX_CONNECTIONS;
    if (cfg != NULL && cfg->ca_file != NULL && *cfg->ca_file != '\0')
        c->ca_file = strdup(cfg->ca_file);
    c->user_agent = strdup(cfg != NULL && cfg->user_agent != NULL ? cfg->user_agent
                                                                  : "nova-worker/" NOVA_VERSION);
    c->allow = calloc(1, sizeof *c->allow);
    if (c->user_agent == NULL || c->allow == NULL ||
        (cfg != NULL && cfg->ca_file != NULL && *cfg->ca_file != '\0' && c->ca_file == NULL)) {
        finalize(c);
        return -ENOMEM;
    }

    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->defer);
    c->timer.data = c;
    c->defer.data = c;
    c->open_handles = 2;

    c->m_requests = nova__metric_new(NOVA_METRIC_COUNTER, "nova_worker_http_requests_total",
                                     "Outbound HTTP responses by target host and status class.",
                                     req_labels, NULL, 0);
    c->m_errors = nova__metric_new(NOVA_METRIC_COUNTER, "nova_worker_http_errors_total",
                                   "Outbound HTTP requests that failed, by host and reason.",
                                   err_labels, NULL, 0);
    c->m_duration =
        nova__metric_new(NOVA_METRIC_HISTOGRAM, "nova_worker_http_request_duration_seconds",
                         "Outbound HTTP request duration by target host.", dur_labels, NULL, 0);
    *out = c;
    return 0;
}

void nova__http_client_close(struct nova__http_client *c, void (*done)(void *arg), void *arg)
{
    struct req *r;
    struct sock *s;

    if (c == NULL || c->closing)
        return;
    c->closing = true;
    c->done = done;
    c->done_arg = arg;

    /* Outcomes already known are delivered as they are. */
    while ((r = c->deferred) != NULL) {
        req_unlink(&c->deferred, r);
        deliver(c, r);
    }
    while ((r = c->active) != NULL) {
        req_unlink(&c->active, r);
        cancel(c, r);
    }
    /* Stop watching before curl closes the descriptors. */
    for (s = c->socks; s != NULL; s = s->next)
        uv_poll_stop(&s->poll);
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while ((s = c->socks) != NULL)
        sock_close(c, s);
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->defer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->defer, on_timer_closed);
}

void nova__http_client_stats(const struct nova__http_client *c, struct nova__http_stats *out)
{
    *out = c->stats;
}

int nova__http_client_test_resolve(struct nova__http_client *c, const char *entry)
{
    struct curl_slist *l = curl_slist_append(c->resolve, entry);
    if (l == NULL)
        return -ENOMEM;
    c->resolve = l;
    return 0;
}

int nova__http_client_test_guard_allow(struct nova__http_client *c, const char *addr, unsigned port)
{
    struct nova__http_guard_allow *a = realloc(c->allow, (c->nallow + 2) * sizeof *a);
    if (a == NULL)
        return -ENOMEM;
    c->allow = a;
    a[c->nallow].addr = strdup(addr);
    if (a[c->nallow].addr == NULL)
        return -ENOMEM;
    a[c->nallow].port = port;
    c->nallow++;
    a[c->nallow].addr = NULL;
    return 0;
}

/* ---- the response helpers of host->http ---------------------------------- */

const struct nova_http_api nova__http_response_api = {
    .struct_size = sizeof(struct nova_http_api),
    .header = nova__http_header,
    .retry_after_ms = nova__http_retry_after_ms,
};
