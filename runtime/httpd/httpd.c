#include "config.h"
#include "httpd/httpd.h"
#include "common/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

struct nova__httpd {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    bool ready;
    char reason[256];
    int port;
};

static MHD_RESULT respond(struct MHD_Connection *conn, unsigned status, const char *type,
                          char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_RESULT rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static MHD_RESULT on_request(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **con_cls)
{
    struct nova__httpd *h = cls;
    static const char text[] = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond(conn, 405, text, "method not allowed\n", 19, MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") == 0) {
        char *body;
        size_t len;
        if (nova__metrics_render(&body, &len) != 0)
            return respond(conn, 500, text, "out of memory\n", 14, MHD_RESPMEM_PERSISTENT);
        return respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", body, len,
                       MHD_RESPMEM_MUST_FREE);
    }
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/livez") == 0)
        return respond(conn, 200, text, "ok\n", 3, MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/readyz") == 0) {
        char body[300];
        pthread_mutex_lock(&h->lock);
        bool ready = h->ready;
        snprintf(body, sizeof body, "%s\n", ready ? "ready" : h->reason);
        pthread_mutex_unlock(&h->lock);
        return respond(conn, ready ? 200 : 503, text, body, strlen(body), MHD_RESPMEM_MUST_COPY);
    }
    return respond(conn, 404, text, "not found\n", 10, MHD_RESPMEM_PERSISTENT);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen || (size_t)(colon - listen) >= sizeof host) {
        snprintf(err, errlen, "listen '%s': expected host:port", listen);
        return -EINVAL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535) {
        snprintf(err, errlen, "listen '%s': bad port", listen);
        return -EINVAL;
    }
    memset(ss, 0, sizeof *ss);
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            goto bad;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        goto bad;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return 0;
bad:
    snprintf(err, errlen, "listen '%s': '%s' is not an IP address", listen, host);
    return -EINVAL;
}

int nova__httpd_start(const char *listen, struct nova__httpd **out, char *err, size_t errlen)
{
    *out = NULL;
    if (listen == NULL || listen[0] == '\0')
        return 0;
    struct sockaddr_storage ss;
    int rc = parse_listen(listen, &ss, err, errlen);
    if (rc != 0)
        return rc;
    struct nova__httpd *h = calloc(1, sizeof *h);
    if (h == NULL)
        return -ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    snprintf(h->reason, sizeof h->reason, "starting");
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* Port 0 in the address; MHD takes the port from sockaddr. */
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(err, errlen, "listen %s: cannot bind (address in use or not local?)", listen);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    *out = h;
    return 0;
}

void nova__httpd_set_ready(struct nova__httpd *h, bool ready, const char *reason)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    h->ready = ready;
    snprintf(h->reason, sizeof h->reason, "%s", reason ? reason : "");
    pthread_mutex_unlock(&h->lock);
}

int nova__httpd_port(const struct nova__httpd *h)
{
    return h ? h->port : 0;
}

void nova__httpd_stop(struct nova__httpd *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
