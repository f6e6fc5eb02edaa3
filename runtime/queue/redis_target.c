#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/conf.h"
#include "queue/redis_int.h"

/* ---- URL parsing -------------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static int parse_db(const char *s, int *db)
{
    char *end;
    long v;
    if (*s == '\0')
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < 0 || v > 65535)
        return -EINVAL;
    *db = (int)v;
    return 0;
}

static int parse_port(const char *s, size_t n, int *port)
{
    char buf[8], *end;
    long v;
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    v = strtol(buf, &end, 10);
    if (*end != '\0' || v < 1 || v > 65535)
        return -EINVAL;
    *port = (int)v;
    return 0;
}

/* host[:port] or [v6][:port] in s[0..n); port left alone when absent. */
static int parse_hostport(const char *s, size_t n, char **host, int *port)
{
    const char *end = s + n, *colon = NULL;
    if (n > 0 && *s == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb)
            return -EINVAL;
        *host = strndup(s + 1, (size_t)(rb - s - 1));
        if (rb + 1 < end) {
            if (rb[1] != ':')
                goto bad;
            colon = rb + 1;
        }
    } else {
        colon = memchr(s, ':', n);
        /* a bare IPv6 address (several colons): the last one is the port's */
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
            const char *last = end;
            while (last > s && last[-1] != ':')
                last--;
            colon = last - 1;
        }
        *host = strndup(s, (size_t)((colon ? colon : end) - s));
    }
    if (!*host)
        return -ENOMEM;
    if (!**host)
        goto bad;
    if (colon && parse_port(colon + 1, (size_t)(end - colon - 1), port) < 0)
        goto bad;
    return 0;
bad:
    free(*host);
    *host = NULL;
    return -EINVAL;
}

int nova__redis_node_parse(const char *s, size_t n, struct nova__redis_node *out)
{
    out->port = 6379;
    out->host = NULL;
    return parse_hostport(s, n, &out->host, &out->port);
}

int nova__redis_url_parse(const char *url, struct nova__redis_target *out, char *err, size_t errlen)
{
    const char *p, *at, *hostend, *slash;
    int rc;
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!url || !*url) {
        snprintf(err, errlen, "redis url is empty");
        return -EINVAL;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        const char *q = strchr(url + 7, '?');
        size_t n = q ? (size_t)(q - (url + 7)) : strlen(url + 7);
        if (n == 0 || url[7] != '/') {
            snprintf(err, errlen, "redis url: unix:// needs an absolute socket path");
            return -EINVAL;
        }
        out->unix_path = strndup(url + 7, n);
        if (q && (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &out->db) < 0)) {
            snprintf(err, errlen, "redis url: bad query '%s' (only ?db=N)", q);
            nova__redis_target_free(out);
            return -EINVAL;
        }
        return out->unix_path ? 0 : -ENOMEM;
    }
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        p = url + 9;
        out->tls = true;
    } else {
        snprintf(err, errlen, "redis url must start with redis://, rediss:// (TLS) or unix://");
        return -EINVAL;
    }
    slash = strchr(p, '/');
    at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p)
                out->username = pct_decode(p, (size_t)(colon - p));
            out->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        } else {
            out->password = pct_decode(p, (size_t)(at - p));
        }
        p = at + 1;
    }
    hostend = slash ? slash : p + strlen(p);
    rc = parse_hostport(p, (size_t)(hostend - p), &out->host, &out->port);
    if (rc < 0) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        else if (hostend == p || *p == ':')
            snprintf(err, errlen, "redis url: missing host");
        else
            snprintf(err, errlen, "redis url: bad host or port");
        nova__redis_target_free(out);
        return rc;
    }
    if (slash && parse_db(slash + 1, &out->db) < 0) {
        snprintf(err, errlen, "redis url: bad database number '%s'", slash + 1);
        nova__redis_target_free(out);
        return -EINVAL;
    }
    return 0;
}

/* ---- the [redis] section ------------------------------------------------ */

static bool set(const char *s)
{
    return s && *s;
}

static int dup_into(char **dst, const char *src)
{
    if (!set(src))
        return 0;
    free(*dst);
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

/* "h1:p1, h2:p2" into nodes, default port dport. */
static int parse_nodes(const char *key, const char *list, int dport, struct nova__redis_target *t,
                       char *err, size_t errlen)
{
    const char *p = list;
    while (*p) {
        const char *end;
        size_t n;
        struct nova__redis_node *nn;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        end = p;
        while (*end && *end != ',' && *end != ' ' && *end != '\t')
            end++;
        n = (size_t)(end - p);
        nn = realloc(t->nodes, (t->nnodes + 1) * sizeof(*nn));
        if (!nn)
            return -ENOMEM;
        t->nodes = nn;
        nn = &t->nodes[t->nnodes];
        nn->host = NULL;
        nn->port = dport;
        if (parse_hostport(p, n, &nn->host, &nn->port) < 0) {
            snprintf(err, errlen, "[redis] %s: '%.*s' is not host:port", key, (int)n, p);
            return -EINVAL;
        }
        t->nnodes++;
        p = end;
    }
    if (t->nnodes == 0) {
        snprintf(err, errlen, "[redis] %s names no host:port", key);
        return -EINVAL;
    }
    return 0;
}

static int readable(const char *key, const char *path, char *err, size_t errlen)
{
    FILE *f;
    if (!set(path))
        return 0;
    f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "[redis] %s: cannot read '%s': %s", key, path, strerror(errno));
        return -errno;
    }
    fclose(f);
    return 0;
}

int nova__redis_target_from_config(const struct nova__redis_config *cfg,
                                   struct nova__redis_target *out, char *err, size_t errlen)
{
    const char *url = set(cfg->url) ? cfg->url : "redis://127.0.0.1:6379";
    int rc = nova__redis_url_parse(url, out, err, errlen);
    if (rc < 0)
        return rc;
    if (!out->password) {
        rc = dup_into(&out->password, cfg->password);
        if (rc == 0 && !out->username)
            rc = dup_into(&out->username, cfg->username);
    } else if (!out->username) {
        rc = dup_into(&out->username, cfg->username);
    }
    if (rc == 0)
        rc = dup_into(&out->tls_ca_file, cfg->tls_ca_file);
    if (rc == 0)
        rc = dup_into(&out->tls_cert_file, cfg->tls_cert_file);
    if (rc == 0)
        rc = dup_into(&out->tls_key_file, cfg->tls_key_file);
    if (rc == 0)
        rc = dup_into(&out->tls_server_name, cfg->tls_server_name);
    if (rc == 0)
        rc = dup_into(&out->sentinel_master, cfg->sentinel_master);
    if (rc == 0)
        rc = dup_into(&out->sentinel_username, cfg->sentinel_username);
    if (rc == 0)
        rc = dup_into(&out->sentinel_password, cfg->sentinel_password);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    out->tls_skip_verify = cfg->tls_skip_verify;
    out->reply_timeout_ms =
        cfg->reply_timeout_ms > 0 ? cfg->reply_timeout_ms : NOVA__REDIS_REPLY_TIMEOUT;
    out->keepalive_ms = cfg->tcp_keepalive_ms > 0 ? cfg->tcp_keepalive_ms : 0;
    rc = -EINVAL;
    if (!out->tls && (set(cfg->tls_ca_file) || set(cfg->tls_cert_file) || set(cfg->tls_key_file) ||
                      set(cfg->tls_server_name))) {
        snprintf(err, errlen,
                 "[redis] tls_* keys are set but url is not rediss:// (TLS is asked for by the "
                 "rediss:// scheme)");
        goto fail;
    }
    if (set(cfg->tls_cert_file) != set(cfg->tls_key_file)) {
        snprintf(err, errlen, "[redis] tls_cert_file and tls_key_file go together");
        goto fail;
    }
    if ((rc = readable("tls_ca_file", cfg->tls_ca_file, err, errlen)) < 0 ||
        (rc = readable("tls_cert_file", cfg->tls_cert_file, err, errlen)) < 0 ||
        (rc = readable("tls_key_file", cfg->tls_key_file, err, errlen)) < 0)
        goto fail;
    if (out->tls) {
        char why[256];
        SSL_CTX *ctx = nova__redis_tls_ctx(out, why, sizeof(why));
        if (!ctx) {
            snprintf(err, errlen, "[redis] %s", why);
            rc = -EINVAL;
            goto fail;
        }
        SSL_CTX_free(ctx);
    }
    rc = -EINVAL;
    if (set(cfg->sentinels) && set(cfg->cluster_nodes)) {
        snprintf(err, errlen, "[redis] sentinels and cluster_nodes exclude each other");
        goto fail;
    }
    if (set(cfg->sentinels) != set(cfg->sentinel_master)) {
        snprintf(err, errlen, "[redis] sentinels and sentinel_master go together (%s is unset)",
                 set(cfg->sentinels) ? "sentinel_master" : "sentinels");
        goto fail;
    }
    if ((set(cfg->sentinels) || set(cfg->cluster_nodes)) && out->unix_path) {
        snprintf(err, errlen,
                 "[redis] a unix:// url cannot be used with sentinels or cluster_nodes");
        goto fail;
    }
    if (set(cfg->sentinels)) {
        out->mode = NOVA__REDIS_SENTINEL;
        rc = parse_nodes("sentinels", cfg->sentinels, 26379, out, err, errlen);
        if (rc < 0)
            goto fail;
    } else if (set(cfg->cluster_nodes)) {
        out->mode = NOVA__REDIS_CLUSTER;
        if (out->db != 0) {
            snprintf(err, errlen,
                     "[redis] the url selects database %d, but Redis Cluster has only database 0",
                     out->db);
            goto fail;
        }
        rc = parse_nodes("cluster_nodes", cfg->cluster_nodes, 6379, out, err, errlen);
        if (rc < 0)
            goto fail;
    }
    return 0;
fail:
    nova__redis_target_free(out);
    return rc;
}

static char *xdup(const char *s, bool *oom)
{
    char *d;
    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

int nova__redis_target_copy(struct nova__redis_target *dst, const struct nova__redis_target *src)
{
    bool oom = false;
    *dst = *src;
    dst->host = xdup(src->host, &oom);
    dst->unix_path = xdup(src->unix_path, &oom);
    dst->username = xdup(src->username, &oom);
    dst->password = xdup(src->password, &oom);
    dst->tls_ca_file = xdup(src->tls_ca_file, &oom);
    dst->tls_cert_file = xdup(src->tls_cert_file, &oom);
    dst->tls_key_file = xdup(src->tls_key_file, &oom);
    dst->tls_server_name = xdup(src->tls_server_name, &oom);
    dst->sentinel_master = xdup(src->sentinel_master, &oom);
    dst->sentinel_username = xdup(src->sentinel_username, &oom);
    dst->sentinel_password = xdup(src->sentinel_password, &oom);
    dst->nodes = NULL;
    dst->nnodes = 0;
    if (src->nnodes) {
        dst->nodes = calloc(src->nnodes, sizeof(*dst->nodes));
        if (!dst->nodes)
            oom = true;
        for (size_t i = 0; dst->nodes && i < src->nnodes; i++) {
            dst->nodes[i].host = xdup(src->nodes[i].host, &oom);
            dst->nodes[i].port = src->nodes[i].port;
            dst->nnodes++;
        }
    }
    if (oom) {
        nova__redis_target_free(dst);
        return -ENOMEM;
    }
    return 0;
}

void nova__redis_target_free(struct nova__redis_target *t)
{
    free(t->host);
    free(t->unix_path);
    free(t->username);
    free(t->password);
    free(t->tls_ca_file);
    free(t->tls_cert_file);
    free(t->tls_key_file);
    free(t->tls_server_name);
    free(t->sentinel_master);
    free(t->sentinel_username);
    free(t->sentinel_password);
    for (size_t i = 0; i < t->nnodes; i++)
        free(t->nodes[i].host);
    free(t->nodes);
    memset(t, 0, sizeof(*t));
}

/* ---- hash slots ------------------------------------------------------------ */

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as the Cluster
 * specification defines it, one bit at a time into a table built once. */
static uint16_t crc_table[256];
static bool crc_ready;

static void crc_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t v = (uint16_t)(i << 8);
        for (int b = 0; b < 8; b++)
            v = (uint16_t)((v & 0x8000) ? (v << 1) ^ 0x1021 : v << 1);
        crc_table[i] = v;
    }
    crc_ready = true;
}

static uint16_t crc16(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    if (!crc_ready)
        crc_init();
    for (size_t i = 0; i < n; i++)
        crc = (uint16_t)((crc << 8) ^ crc_table[((crc >> 8) ^ p[i]) & 0xff]);
    return crc;
}

unsigned nova__redis_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return crc16((const unsigned char *)open + 1, (size_t)(close - open - 1)) &
                   (NOVA__REDIS_SLOTS - 1);
    }
    return crc16((const unsigned char *)key, len) & (NOVA__REDIS_SLOTS - 1);
}

bool nova__redis_base_one_slot(const char *base, size_t len)
{
    const char *open = memchr(base, '{', len);
    const char *close;
    if (!open)
        return false;
    close = memchr(open + 1, '}', len - (size_t)(open - base) - 1);
    return close && close > open + 1;
}

/* ---- blocking commands -------------------------------------------------------- */

bool nova__redis_blocking_command(const char *name, size_t n, size_t argc, int *tmo_arg)
{
    static const char *const last[] = {"BLPOP",    "BRPOP",      "BZPOPMIN",
                                       "BZPOPMAX", "BRPOPLPUSH", "BLMOVE"};
    if (n < 5 || (name[0] != 'b' && name[0] != 'B'))
        return false;
    for (size_t i = 0; i < sizeof(last) / sizeof(last[0]); i++) {
        if (strlen(last[i]) == n && strncasecmp(name, last[i], n) == 0) {
            *tmo_arg = argc >= 3 ? (int)argc - 1 : -1;
            return *tmo_arg > 0;
        }
    }
    if ((n == 6 && strncasecmp(name, "BLMPOP", 6) == 0) ||
        (n == 6 && strncasecmp(name, "BZMPOP", 6) == 0)) {
        *tmo_arg = argc >= 2 ? 1 : -1;
        return *tmo_arg > 0;
    }
    return false;
}

void nova__redis_block_timeout(int version, const char *in, char *out, size_t outlen)
{
    char *end;
    double t = strtod(in, &end);
    if (end == in || t < 0 || !isfinite(t)) {
        snprintf(out, outlen, "%s", in); /* the server's to refuse */
        return;
    }
    if (version == 0 || version < 60000) {
        /* whole seconds only; never 0 unless asked for (0 = for ever) */
        double s = ceil(t);
        if (t > 0 && s < 1)
            s = 1;
        snprintf(out, outlen, "%.0f", s);
    } else if (version < 70008 && t > 0 && t < 0.002) {
        /* 6.0 - 7.0.7 turn a timeout under 1 ms after conversion into 0 */
        snprintf(out, outlen, "0.002");
    } else {
        snprintf(out, outlen, "%s", in);
    }
}

int64_t nova__redis_now_ms(uv_loop_t *loop)
{
    return (int64_t)uv_now(loop);
}
