/*
 * bk_s3 - the off-site copy on S3-compatible storage, through host->http
 * (libcurl signs each request with AWS Signature V4).
 *
 * Requests are path-style ({endpoint}/{bucket}/{key}) so that MinIO, Ceph
 * and local test servers work as AWS does. Each one carries
 * x-amz-content-sha256, the SHA-256 of its body, which the signature
 * covers: the server refuses a body changed on the way. Query strings are
 * written in SigV4's canonical form (sorted, every value encoded, "=" even
 * when empty) because libcurl signs the query as it is given.
 *
 * A dump up to s3_part_size goes up in one PUT, a larger one as a
 * multipart upload of s3_part_size parts read from the file one at a time
 * (memory: about three parts). The copy is then proven by reading it back
 * in ranges and comparing its SHA-256 with the manifest's; only then is the
 * manifest uploaded, which is what marks the backup complete on S3
 * (bk_keep.c relies on that).
 */
#include "bk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nova/buf.h>
#include <sodium.h>

#define S3_READ      (1u << 20)
#define S3_MAX_PARTS 10000
#define S3_EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- small helpers ------------------------------------------------------------------- */

/* SigV4's URI encoding: unreserved characters as they are, the rest %XX
 * (upper case); '/' kept when slash. */
static void uri_encode(char *out, size_t outlen, const char *s, bool slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (; *s != '\0' && k + 4 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || (slash && c == '/')) {
            out[k++] = (char)c;
        } else {
            out[k++] = '%';
            out[k++] = hex[c >> 4];
            out[k++] = hex[c & 15];
        }
    }
    out[k] = '\0';
}

/* The text of the first <tag>...</tag> at or after *from, entities
 * decoded; advances *from past it. false when absent. */
static bool xml_get(const char *body, const char **from, const char *tag, char *out, size_t outlen)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(*from, open);
    if (a == NULL)
        return false;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (b == NULL)
        return false;
    size_t k = 0;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (const char *p = a; p < b && k + 1 < outlen;) {
        bool done = false;
        for (size_t i = 0; i < sizeof ents / sizeof ents[0] && !done; i++) {
            size_t n = strlen(ents[i].ent);
            if ((size_t)(b - p) >= n && strncmp(p, ents[i].ent, n) == 0) {
                out[k++] = ents[i].c;
                p += n;
                done = true;
            }
        }
        if (!done)
            out[k++] = *p++;
    }
    out[k] = '\0';
    *from = b + strlen(close);
    (void)body;
    return true;
}

/* The raw (undecoded) inside of the next <tag>...</tag>; advances *from. */
static bool xml_slice(const char **from, const char *tag, char *out, size_t outlen)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(*from, open);
    const char *b = a != NULL ? strstr(a + strlen(open), close) : NULL;
    if (b == NULL)
        return false;
    a += strlen(open);
    size_t n = (size_t)(b - a) < outlen - 1 ? (size_t)(b - a) : outlen - 1;
    memcpy(out, a, n);
    out[n] = '\0';
    *from = b + strlen(close);
    return true;
}

/* "HTTP 403 SignatureDoesNotMatch: message" or the transport error. */
static void describe(char *out, size_t outlen, const char *what,
                     const struct nova_http_response *res)
{
    if (res->error != 0) {
        snprintf(out, outlen, "%s: %s", what,
                 res->error_message[0] ? res->error_message : strerror(-res->error));
        return;
    }
    char code[128] = "", msg[300] = "";
    const char *p = res->body;
    xml_get(res->body, &p, "Code", code, sizeof code);
    p = res->body;
    xml_get(res->body, &p, "Message", msg, sizeof msg);
    if (code[0] == '\0' && (res->status == 401 || res->status == 403))
        snprintf(code, sizeof code, "(access denied: credentials or signature refused)");
    snprintf(out, outlen, "%s: HTTP %ld%s%s%s%s", what, res->status, code[0] ? " " : "", code,
             msg[0] ? ": " : "", msg);
}

static void endpoint_of(const struct bk_config *cfg, char *out, size_t outlen)
{
    if (cfg->s3_endpoint != NULL && cfg->s3_endpoint[0] != '\0')
        snprintf(out, outlen, "%s", cfg->s3_endpoint);
    else
        snprintf(out, outlen, "https://s3.%s.amazonaws.com", cfg->s3_region);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

static const char *prefix_of(const struct bk_config *cfg)
{
    return cfg->s3_prefix != NULL ? cfg->s3_prefix : "";
}

typedef void (*s3_cb)(void *arg, const struct nova_http_response *res);

/*
 * One signed request. key NULL: the bucket itself. query: already
 * canonical, or NULL. payload_sha: the hex SHA-256 of body when the caller
 * computed it while reading, or NULL.
 */
static int s3_request(const struct bk_ctx *ctx, const char *method, const char *key,
                      const char *query, const char *extra_header, const void *body, size_t len,
                      const char *payload_sha, int64_t max_response, s3_cb cb, void *arg)
{
    const struct bk_config *cfg = ctx->cfg;
    if (!NOVA_HOST_HAS(ctx->host, http))
        return -ENOTSUP;
    char endpoint[512], ekey[1600], url[2600], sigv4[160], sha_hdr[100];
    endpoint_of(cfg, endpoint, sizeof endpoint);
    uri_encode(ekey, sizeof ekey, key != NULL ? key : "", true);
    snprintf(url, sizeof url, "%s/%s%s%s%s%s", endpoint, cfg->s3_bucket, key != NULL ? "/" : "",
             ekey, query != NULL ? "?" : "", query != NULL ? query : "");
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", cfg->s3_region);
    char hex[BK_SHA_HEX];
    if (payload_sha == NULL) {
        if (len == 0) {
            payload_sha = S3_EMPTY_SHA;
        } else {
            unsigned char d[crypto_hash_sha256_BYTES];
            crypto_hash_sha256(d, body, len);
            sodium_bin2hex(hex, sizeof hex, d, sizeof d);
            payload_sha = hex;
        }
    }
    snprintf(sha_hdr, sizeof sha_hdr, "x-amz-content-sha256: %s", payload_sha);
    const char *headers[4] = {sha_hdr, NULL, NULL, NULL};
    size_t h = 1;
    if (body != NULL &&
        (extra_header == NULL || strncasecmp(extra_header, "Content-Type:", 13) != 0))
        headers[h++] = "Content-Type: application/octet-stream";
    if (extra_header != NULL)
        headers[h++] = extra_header;
    struct nova_http_request req = {
        .struct_size = sizeof req,
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = len,
        .timeout_ms = cfg->s3_timeout_ms,
        .max_response_bytes = max_response,
        .aws_sigv4 = sigv4,
        .username = cfg->s3_access_key_id != NULL ? cfg->s3_access_key_id : "",
        .password = cfg->s3_secret_access_key != NULL ? cfg->s3_secret_access_key : "",
    };
    return ctx->host->http->request(ctx->host, &req, cb, arg);
}

static bool s3_configured(const struct bk_ctx *ctx, char *why, size_t whylen)
{
    const struct bk_config *cfg = ctx->cfg;
    if (!NOVA_HOST_HAS(ctx->host, http)) {
        snprintf(why, whylen, "no HTTP client in this nova-worker");
        return false;
    }
    if (cfg->s3_access_key_id == NULL || cfg->s3_access_key_id[0] == '\0' ||
        cfg->s3_secret_access_key == NULL || cfg->s3_secret_access_key[0] == '\0') {
        snprintf(why, whylen,
                 "s3_bucket is set but s3_access_key_id or s3_secret_access_key is "
                 "not (nor AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)");
        return false;
    }
    return true;
}

/* ---- reading an object back in ranges ---------------------------------------------------- */

/* Downloads key in ranges of part bytes; each range goes to sink (which may
 * write it to a file); at the end the SHA-256 of the whole is compared
 * with sha. */
typedef int (*range_sink)(void *arg, const void *data, size_t len, bk_done_cb next, void *next_arg);

struct ranges {
    const struct bk_ctx *ctx;
    char key[600];
    uint64_t size, at, part;
    char sha[BK_SHA_HEX];
    crypto_hash_sha256_state h;
    range_sink sink;
    void *sink_arg;
    bk_s3_cb cb;
    void *arg;
};

static void ranges_end(struct ranges *g, int status, const char *reason)
{
    g->cb(g->arg, status, reason);
    free(g);
}

static void ranges_next(struct ranges *g);

static void ranges_sunk(void *arg, int status)
{
    struct ranges *g = arg;
    if (status < 0) {
        char why[256];
        snprintf(why, sizeof why, "writing the download: %s", strerror(-status));
        return ranges_end(g, status, why);
    }
    ranges_next(g);
}

static void on_range(void *arg, const struct nova_http_response *res)
{
    struct ranges *g = arg;
    char why[700];
    uint64_t want = g->size - g->at < g->part ? g->size - g->at : g->part;
    if (res->error != 0 || (res->status != 206 && res->status != 200)) {
        describe(why, sizeof why, "reading the copy back", res);
        return ranges_end(g, res->error != 0 ? res->error : -EIO, why);
    }
    if (res->body_len != want) {
        snprintf(why, sizeof why,
                 "reading the copy back: %zu bytes at %" PRIu64 ", expected %" PRIu64,
                 res->body_len, g->at, want);
        return ranges_end(g, -EIO, why);
    }
    crypto_hash_sha256_update(&g->h, (const unsigned char *)res->body, res->body_len);
    g->at += res->body_len;
    if (g->sink != NULL) {
        int rc = g->sink(g->sink_arg, res->body, res->body_len, ranges_sunk, g);
        if (rc != 0) {
            snprintf(why, sizeof why, "writing the download: %s", strerror(-rc));
            ranges_end(g, rc, why);
        }
        return;
    }
    ranges_next(g);
}

static void ranges_next(struct ranges *g)
{
    if (g->at == g->size) {
        char hex[BK_SHA_HEX], why[300];
        bk_sha256_hex(&g->h, hex);
        if (strcmp(hex, g->sha) != 0) {
            snprintf(why, sizeof why, "the copy on S3 has sha256 %s, the backup %s", hex, g->sha);
            return ranges_end(g, -EBADMSG, why);
        }
        return ranges_end(g, 0, "");
    }
    uint64_t end = g->at + g->part - 1;
    if (end >= g->size)
        end = g->size - 1;
    char range[96];
    snprintf(range, sizeof range, "Range: bytes=%" PRIu64 "-%" PRIu64, g->at, end);
    int rc = s3_request(g->ctx, "GET", g->key, NULL, range, NULL, 0, NULL,
                        (int64_t)(end - g->at + 1) + 1, on_range, g);
    if (rc != 0)
        ranges_end(g, rc, "reading the copy back: request not started");
}

static void on_head(void *arg, const struct nova_http_response *res)
{
    struct ranges *g = arg;
    char why[700];
    if (res->error != 0 || res->status != 200) {
        describe(why, sizeof why, "HEAD of the copy", res);
        return ranges_end(g, res->error != 0 ? res->error : -EIO, why);
    }
    const char *cl = g->ctx->host->http->header(res, "Content-Length");
    uint64_t len = cl != NULL ? strtoull(cl, NULL, 10) : 0;
    if (g->size == UINT64_MAX) {
        g->size = len;
    } else if (cl == NULL || len != g->size) {
        snprintf(why, sizeof why, "the copy on S3 has %s bytes, the backup %" PRIu64,
                 cl != NULL ? cl : "an unknown number of", g->size);
        return ranges_end(g, -EBADMSG, why);
    }
    ranges_next(g);
}

/* size UINT64_MAX: take it from HEAD. */
static int ranges_start(const struct bk_ctx *ctx, const char *key, uint64_t size, const char *sha,
                        range_sink sink, void *sink_arg, bk_s3_cb cb, void *arg)
{
    struct ranges *g = calloc(1, sizeof *g);
    if (g == NULL)
        return -ENOMEM;
    g->ctx = ctx;
    snprintf(g->key, sizeof g->key, "%s", key);
    snprintf(g->sha, sizeof g->sha, "%s", sha);
    g->size = size;
    /* 1 MiB ranges: each response is hashed in one go on the loop, which
     * a whole part (8 MiB and more) would hold up for tens of ms */
    g->part = S3_READ;
    g->sink = sink;
    g->sink_arg = sink_arg;
    g->cb = cb;
    g->arg = arg;
    crypto_hash_sha256_init(&g->h);
    int rc = s3_request(ctx, "HEAD", key, NULL, NULL, NULL, 0, NULL, 0, on_head, g);
    if (rc != 0)
        free(g);
    return rc;
}

/* ---- upload ---------------------------------------------------------------------------------- */

struct up {
    const struct bk_ctx *ctx;
    const struct nova_host *host;
    char name[BK_NAME_MAX];
    struct bk_manifest man;
    char path[4096];
    char key[600], mkey[600];
    nova_file *f;
    unsigned char *buf;
    size_t fill, want;
    uint64_t done;
    crypto_hash_sha256_state whole, part;
    bool multipart;
    char upload_id[512];
    char (*etags)[80];
    unsigned parts, nparts;
    char reason[BK_REASON_MAX];
    int status;
    bk_s3_cb cb;
    void *arg;
};

static void up_end(struct up *u)
{
    u->cb(u->arg, u->status, u->reason);
    free(u->buf);
    free(u->etags);
    free(u);
}

static void up_fail(struct up *u, int status, const char *fmt, ...) NOVA_PRINTF(3, 4);

static void up_closed_then_end(void *arg, int status)
{
    (void)status;
    up_end(arg);
}

static void on_aborted(void *arg, const struct nova_http_response *res)
{
    struct up *u = arg;
    (void)res;
    if (u->f != NULL) {
        nova_file *f = u->f;
        u->f = NULL;
        if (u->host->file->close(f, up_closed_then_end, u) == 0)
            return;
    }
    up_end(u);
}

static void up_fail(struct up *u, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->reason, sizeof u->reason, fmt, ap);
    va_end(ap);
    u->status = status < 0 ? status : -EIO;
    /* an unfinished multipart upload keeps its parts (and costs) until
     * aborted */
    if (u->multipart && u->upload_id[0] != '\0') {
        char q[700], enc[600];
        uri_encode(enc, sizeof enc, u->upload_id, false);
        snprintf(q, sizeof q, "uploadId=%s", enc);
        u->multipart = false;
        if (s3_request(u->ctx, "DELETE", u->key, q, NULL, NULL, 0, NULL, 0, on_aborted, u) == 0)
            return;
    }
    on_aborted(u, NULL);
}

static void on_manifest_put(void *arg, const struct nova_http_response *res)
{
    struct up *u = arg;
    if (res->error != 0 || res->status != 200) {
        char why[700];
        describe(why, sizeof why, "PUT of the manifest", res);
        return up_fail(u, res->error != 0 ? res->error : -EIO, "%s", why);
    }
    bk_log(u->ctx, NOVA_LOG_INFO, NULL, "backup %s copied to S3 (%s) and checked", u->name, u->key);
    up_end(u);
}

static void on_checked(void *arg, int status, const char *reason)
{
    struct up *u = arg;
    if (status != 0)
        return up_fail(u, status, "%s", reason);
    char *json = bk_manifest_render(&u->man);
    if (json == NULL)
        return up_fail(u, -ENOMEM, "out of memory");
    int rc = s3_request(u->ctx, "PUT", u->mkey, NULL, NULL, json, strlen(json), NULL, 0,
                        on_manifest_put, u);
    free(json);
    if (rc != 0)
        up_fail(u, rc, "PUT of the manifest not started: %s", strerror(-rc));
}

static void up_check(struct up *u)
{
    int rc = ranges_start(u->ctx, u->key, u->man.size, u->man.sha256, NULL, NULL, on_checked, u);
    if (rc != 0)
        up_fail(u, rc, "reading the copy back not started: %s", strerror(-rc));
}

static void on_file_closed(void *arg, int status)
{
    struct up *u = arg;
    (void)status;
    up_check(u);
}

static void up_uploaded(struct up *u)
{
    nova_file *f = u->f;
    u->f = NULL;
    if (u->host->file->close(f, on_file_closed, u) != 0)
        up_check(u);
}

static void on_completed(void *arg, const struct nova_http_response *res)
{
    struct up *u = arg;
    char why[700];
    /* S3 may answer 200 and report the failure in the body */
    if (res->error != 0 || res->status != 200 || strstr(res->body, "<Error>") != NULL) {
        describe(why, sizeof why, "CompleteMultipartUpload", res);
        return up_fail(u, res->error != 0 ? res->error : -EIO, "%s", why);
    }
    u->multipart = false;
    up_uploaded(u);
}

static void up_complete(struct up *u)
{
    struct nova_buf xml = {0};
    nova_buf_str(&xml, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < u->nparts; i++)
        nova_buf_printf(&xml, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1,
                        u->etags[i]);
    nova_buf_str(&xml, "</CompleteMultipartUpload>");
    if (xml.oom) {
        nova_buf_free(&xml);
        return up_fail(u, -ENOMEM, "out of memory");
    }
    char q[700], enc[600];
    uri_encode(enc, sizeof enc, u->upload_id, false);
    snprintf(q, sizeof q, "uploadId=%s", enc);
    int rc = s3_request(u->ctx, "POST", u->key, q, "Content-Type: application/xml", xml.p, xml.len,
                        NULL, 0, on_completed, u);
    nova_buf_free(&xml);
    if (rc != 0)
        up_fail(u, rc, "CompleteMultipartUpload not started: %s", strerror(-rc));
}

static void up_read_part(struct up *u);

static void on_put(void *arg, const struct nova_http_response *res)
{
    struct up *u = arg;
    char why[700];
    if (res->error != 0 || res->status != 200) {
        describe(why, sizeof why, u->multipart ? "UploadPart" : "PUT", res);
        return up_fail(u, res->error != 0 ? res->error : -EIO, "%s", why);
    }
    if (!u->multipart)
        return up_uploaded(u);
    const char *etag = u->host->http->header(res, "ETag");
    if (etag == NULL || strlen(etag) >= sizeof u->etags[0])
        return up_fail(u, -EIO, "UploadPart %u: no ETag in the answer", u->parts + 1);
    snprintf(u->etags[u->parts], sizeof u->etags[0], "%s", etag);
    u->parts++;
    if (u->done == u->man.size)
        return up_complete(u);
    up_read_part(u);
}

static void up_send(struct up *u)
{
    char hex[BK_SHA_HEX];
    bk_sha256_hex(&u->part, hex);
    if (u->done == u->man.size) {
        /* the file as read now must still be the one the manifest names */
        char whex[BK_SHA_HEX];
        bk_sha256_hex(&u->whole, whex);
        if (strcmp(whex, u->man.sha256) != 0)
            return up_fail(u, -EBADMSG, "%s changed since the backup: sha256 %s, manifest %s",
                           u->path, whex, u->man.sha256);
    }
    char q[700], enc[600];
    const char *query = NULL;
    if (u->multipart) {
        uri_encode(enc, sizeof enc, u->upload_id, false);
        snprintf(q, sizeof q, "partNumber=%u&uploadId=%s", u->parts + 1, enc);
        query = q;
    }
    int rc = s3_request(u->ctx, "PUT", u->key, query, NULL, u->buf, u->fill, hex, 0, on_put, u);
    if (rc != 0)
        up_fail(u, rc, "PUT not started: %s", strerror(-rc));
}

static void on_part_read(void *arg, int status, const void *data, size_t len)
{
    struct up *u = arg;
    if (status < 0)
        return up_fail(u, status, "reading %s: %s", u->path, strerror(-status));
    if (len == 0 && u->fill < u->want)
        return up_fail(u, -EIO, "%s is shorter than its manifest says (%" PRIu64 " bytes)", u->path,
                       u->man.size);
    memcpy(u->buf + u->fill, data, len);
    u->fill += len;
    u->done += len;
    crypto_hash_sha256_update(&u->part, data, len);
    crypto_hash_sha256_update(&u->whole, data, len);
    if (u->fill < u->want) {
        size_t n = u->want - u->fill < S3_READ ? u->want - u->fill : S3_READ;
        int rc = u->host->file->read(u->f, n, on_part_read, u);
        if (rc != 0)
            up_fail(u, rc, "reading %s: %s", u->path, strerror(-rc));
        return;
    }
    up_send(u);
}

static void up_read_part(struct up *u)
{
    uint64_t left = u->man.size - u->done;
    u->want = left < (uint64_t)u->ctx->cfg->s3_part_size ? (size_t)left
                                                         : (size_t)u->ctx->cfg->s3_part_size;
    u->fill = 0;
    crypto_hash_sha256_init(&u->part);
    size_t n = u->want < S3_READ ? u->want : S3_READ;
    int rc = u->host->file->read(u->f, n, on_part_read, u);
    if (rc != 0)
        up_fail(u, rc, "reading %s: %s", u->path, strerror(-rc));
}

static void on_created(void *arg, const struct nova_http_response *res)
{
    struct up *u = arg;
    char why[700];
    const char *p = res->body;
    if (res->error != 0 || res->status != 200 ||
        !xml_get(res->body, &p, "UploadId", u->upload_id, sizeof u->upload_id) ||
        u->upload_id[0] == '\0') {
        describe(why, sizeof why, "CreateMultipartUpload", res);
        return up_fail(u, res->error != 0 ? res->error : -EIO, "%s", why);
    }
    up_read_part(u);
}

static void on_local_open(void *arg, int status, nova_file *f)
{
    struct up *u = arg;
    if (status < 0)
        return up_fail(u, status, "cannot open %s: %s", u->path, strerror(-status));
    u->f = f;
    crypto_hash_sha256_init(&u->whole);
    uint64_t part = (uint64_t)u->ctx->cfg->s3_part_size;
    if (u->man.size <= part) {
        u->buf = malloc(u->man.size > 0 ? (size_t)u->man.size : 1);
        if (u->buf == NULL)
            return up_fail(u, -ENOMEM, "out of memory");
        return up_read_part(u);
    }
    u->nparts = (unsigned)((u->man.size + part - 1) / part);
    if (u->nparts > S3_MAX_PARTS)
        return up_fail(u, -EFBIG, "%" PRIu64 " bytes need %u parts of s3_part_size, S3 allows %d",
                       u->man.size, u->nparts, S3_MAX_PARTS);
    u->buf = malloc((size_t)part);
    u->etags = calloc(u->nparts, sizeof *u->etags);
    if (u->buf == NULL || u->etags == NULL)
        return up_fail(u, -ENOMEM, "out of memory");
    u->multipart = true;
    int rc = s3_request(u->ctx, "POST", u->key, "uploads=", NULL, NULL, 0, NULL, 0, on_created, u);
    if (rc != 0) {
        u->multipart = false;
        up_fail(u, rc, "CreateMultipartUpload not started: %s", strerror(-rc));
    }
}

static void on_manifest_head(void *arg, const struct nova_http_response *res)
{
    struct up *u = arg;
    char why[700];
    if (res->error == 0 && res->status == 200) {
        bk_log(u->ctx, NOVA_LOG_INFO, NULL, "backup %s is already on S3", u->name);
        return up_end(u);
    }
    if (res->error != 0 || res->status != 404) {
        describe(why, sizeof why, "GET of the manifest", res);
        return up_fail(u, res->error != 0 ? res->error : -EIO, "%s", why);
    }
    int rc = u->host->file->open(u->host, u->path, NOVA_FILE_READ, 0, on_local_open, u);
    if (rc != 0)
        up_fail(u, rc, "cannot open %s: %s", u->path, strerror(-rc));
}

int bk_s3_upload(const struct bk_ctx *ctx, const char *name, const struct bk_manifest *m,
                 bk_s3_cb cb, void *arg)
{
    char why[256];
    if (!s3_configured(ctx, why, sizeof why))
        return -EINVAL;
    struct up *u = calloc(1, sizeof *u);
    if (u == NULL)
        return -ENOMEM;
    u->ctx = ctx;
    u->host = ctx->host;
    u->cb = cb;
    u->arg = arg;
    u->man = *m;
    snprintf(u->name, sizeof u->name, "%s", name);
    snprintf(u->path, sizeof u->path, "%s/%s.dump.enc", ctx->cfg->backup_dir, name);
    snprintf(u->key, sizeof u->key, "%s%s.dump.enc", prefix_of(ctx->cfg), name);
    snprintf(u->mkey, sizeof u->mkey, "%s%s.json", prefix_of(ctx->cfg), name);
    /* GET, not HEAD: a refusal then comes with its reason in the body */
    int rc =
        s3_request(ctx, "GET", u->mkey, NULL, NULL, NULL, 0, NULL, 1 << 20, on_manifest_head, u);
    if (rc != 0)
        free(u);
    return rc;
}

/* ---- list
 * ---------------------------------------------------------------------------------------- */

struct lister {
    const struct bk_ctx *ctx;
    struct bk_s3_object *objs;
    size_t n, cap;
    char token[1024];
    bk_s3_list_cb cb;
    void *arg;
};

static void list_end(struct lister *l, int status, const char *reason)
{
    l->cb(l->arg, status, reason, l->objs, l->n);
    free(l->objs);
    free(l);
}

static int list_page(struct lister *l);

static void on_page(void *arg, const struct nova_http_response *res)
{
    struct lister *l = arg;
    char why[700];
    if (res->error != 0 || res->status != 200) {
        describe(why, sizeof why, "ListObjectsV2", res);
        return list_end(l, res->error != 0 ? res->error : -EIO, why);
    }
    const char *p = res->body;
    char item[4096];
    while (xml_slice(&p, "Contents", item, sizeof item)) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 64;
            struct bk_s3_object *o = realloc(l->objs, cap * sizeof *o);
            if (o == NULL)
                return list_end(l, -ENOMEM, "out of memory");
            l->objs = o;
            l->cap = cap;
        }
        const char *q = item;
        char size[32] = "0";
        if (!xml_get(item, &q, "Key", l->objs[l->n].key, sizeof l->objs[0].key))
            continue;
        q = item;
        xml_get(item, &q, "Size", size, sizeof size);
        l->objs[l->n].size = strtoull(size, NULL, 10);
        l->n++;
    }
    char truncated[16] = "";
    p = res->body;
    xml_get(res->body, &p, "IsTruncated", truncated, sizeof truncated);
    if (strcmp(truncated, "true") == 0) {
        p = res->body;
        if (!xml_get(res->body, &p, "NextContinuationToken", l->token, sizeof l->token))
            return list_end(l, -EIO, "ListObjectsV2: truncated without a continuation token");
        int rc = list_page(l);
        if (rc != 0)
            list_end(l, rc, "ListObjectsV2: request not started");
        return;
    }
    list_end(l, 0, "");
}

static int list_page(struct lister *l)
{
    char q[3200], tok[2400], pre[700];
    uri_encode(pre, sizeof pre, prefix_of(l->ctx->cfg), false);
    if (l->token[0] != '\0') {
        uri_encode(tok, sizeof tok, l->token, false);
        snprintf(q, sizeof q, "continuation-token=%s&list-type=2&prefix=%s", tok, pre);
    } else {
        snprintf(q, sizeof q, "list-type=2&prefix=%s", pre);
    }
    return s3_request(l->ctx, "GET", NULL, q, NULL, NULL, 0, NULL, 64 << 20, on_page, l);
}

int bk_s3_list(const struct bk_ctx *ctx, bk_s3_list_cb cb, void *arg)
{
    char why[256];
    if (!s3_configured(ctx, why, sizeof why))
        return -EINVAL;
    struct lister *l = calloc(1, sizeof *l);
    if (l == NULL)
        return -ENOMEM;
    l->ctx = ctx;
    l->cb = cb;
    l->arg = arg;
    int rc = list_page(l);
    if (rc != 0)
        free(l);
    return rc;
}

/* ---- delete
 * ---------------------------------------------------------------------------------------- */

struct deleter {
    const struct bk_ctx *ctx;
    char (*keys)[600];
    size_t n, at;
    bk_s3_cb cb;
    void *arg;
};

static void del_end(struct deleter *d, int status, const char *reason)
{
    d->cb(d->arg, status, reason);
    free(d->keys);
    free(d);
}

static int del_next(struct deleter *d);

static void on_deleted(void *arg, const struct nova_http_response *res)
{
    struct deleter *d = arg;
    if (res->error != 0 || (res->status != 204 && res->status != 200 && res->status != 404)) {
        char why[700], what[700];
        snprintf(what, sizeof what, "DELETE %s", d->keys[d->at - 1]);
        describe(why, sizeof why, what, res);
        return del_end(d, res->error != 0 ? res->error : -EIO, why);
    }
    int rc = del_next(d);
    if (rc != 0)
        del_end(d, rc, "DELETE not started");
}

static int del_next(struct deleter *d)
{
    if (d->at == d->n) {
        del_end(d, 0, "");
        return 0;
    }
    const char *key = d->keys[d->at++];
    return s3_request(d->ctx, "DELETE", key, NULL, NULL, NULL, 0, NULL, 0, on_deleted, d);
}

int bk_s3_delete(const struct bk_ctx *ctx, const char *const *keys, size_t n, bk_s3_cb cb,
                 void *arg)
{
    char why[256];
    if (!s3_configured(ctx, why, sizeof why))
        return -EINVAL;
    if (n == 0)
        return -EINVAL;
    struct deleter *d = calloc(1, sizeof *d);
    if (d == NULL || (d->keys = calloc(n, sizeof *d->keys)) == NULL) {
        free(d);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(d->keys[i], sizeof d->keys[0], "%s", keys[i]);
    d->ctx = ctx;
    d->n = n;
    d->cb = cb;
    d->arg = arg;
    const char *key = d->keys[d->at++];
    int rc = s3_request(ctx, "DELETE", key, NULL, NULL, NULL, 0, NULL, 0, on_deleted, d);
    if (rc != 0) {
        free(d->keys);
        free(d);
    }
    return rc;
}

/* ---- fetch
 * ------------------------------------------------------------------------------------------ */

struct fetch {
    const struct bk_ctx *ctx;
    const struct nova_host *host;
    char name[BK_NAME_MAX];
    char key[600], mkey[600];
    char tmp[4096], final[4096], mpath[4096];
    char *manifest;
    size_t manifest_len;
    struct bk_manifest man;
    nova_file *f;
    bk_done_cb next;
    void *next_arg;
    int status;
    char reason[BK_REASON_MAX];
    bk_s3_cb cb;
    void *arg;
};

static void fetch_end(struct fetch *x)
{
    x->cb(x->arg, x->status, x->reason);
    free(x->manifest);
    free(x);
}

static void fetch_unlinked(void *arg, int status)
{
    (void)status;
    fetch_end(arg);
}

static void fetch_fail_closed(void *arg, int status)
{
    struct fetch *x = arg;
    (void)status;
    if (x->host->file->unlink(x->host, x->tmp, fetch_unlinked, x) != 0)
        fetch_end(x);
}

static void fetch_fail(struct fetch *x, int status, const char *reason)
{
    x->status = status < 0 ? status : -EIO;
    snprintf(x->reason, sizeof x->reason, "%s", reason);
    if (x->f != NULL) {
        nova_file *f = x->f;
        x->f = NULL;
        if (x->host->file->close(f, fetch_fail_closed, x) == 0)
            return;
    }
    fetch_fail_closed(x, 0);
}

static void on_fetch_manifest(void *arg, int status)
{
    struct fetch *x = arg;
    if (status < 0) {
        x->status = status;
        snprintf(x->reason, sizeof x->reason, "writing %.900s: %s", x->mpath, strerror(-status));
    }
    fetch_end(x);
}

static void on_fetch_renamed(void *arg, int status)
{
    struct fetch *x = arg;
    if (status < 0) {
        char why[300];
        snprintf(why, sizeof why, "rename to %.200s: %s", x->final, strerror(-status));
        return fetch_fail(x, status, why);
    }
    int rc =
        bk_write_atomic(x->ctx, x->mpath, x->manifest, x->manifest_len, 0600, on_fetch_manifest, x);
    if (rc != 0) {
        x->status = rc;
        snprintf(x->reason, sizeof x->reason, "writing %.900s: %s", x->mpath, strerror(-rc));
        fetch_end(x);
    }
}

static void on_fetch_closed(void *arg, int status)
{
    struct fetch *x = arg;
    if (status < 0) {
        x->status = status;
        snprintf(x->reason, sizeof x->reason, "closing %.900s: %s", x->tmp, strerror(-status));
        return fetch_fail_closed(x, 0);
    }
    int rc = x->host->file->rename(x->host, x->tmp, x->final, true, on_fetch_renamed, x);
    if (rc != 0)
        fetch_fail(x, rc, "rename not started");
}

static void on_fetch_synced(void *arg, int status)
{
    struct fetch *x = arg;
    nova_file *f = x->f;
    x->f = NULL;
    if (status < 0) {
        x->f = f;
        return fetch_fail(x, status, "fsync of the download failed");
    }
    if (x->host->file->close(f, on_fetch_closed, x) != 0)
        fetch_fail(x, -EIO, "close not started");
}

static void on_downloaded(void *arg, int status, const char *reason)
{
    struct fetch *x = arg;
    if (status != 0)
        return fetch_fail(x, status, reason);
    if (x->host->file->sync(x->f, on_fetch_synced, x) != 0)
        fetch_fail(x, -EIO, "fsync not started");
}

static void on_sunk(void *arg, int status)
{
    struct fetch *x = arg;
    x->next(x->next_arg, status);
}

static int fetch_sink(void *arg, const void *data, size_t len, bk_done_cb next, void *next_arg)
{
    struct fetch *x = arg;
    x->next = next;
    x->next_arg = next_arg;
    return x->host->file->write(x->f, data, len, on_sunk, x);
}

static void on_fetch_open(void *arg, int status, nova_file *f)
{
    struct fetch *x = arg;
    if (status < 0) {
        x->status = status;
        snprintf(x->reason, sizeof x->reason, "cannot create %.900s: %s", x->tmp,
                 strerror(-status));
        return fetch_end(x);
    }
    x->f = f;
    int rc =
        ranges_start(x->ctx, x->key, x->man.size, x->man.sha256, fetch_sink, x, on_downloaded, x);
    if (rc != 0)
        fetch_fail(x, rc, "download not started");
}

static void on_fetch_dir(void *arg, int status)
{
    struct fetch *x = arg;
    if (status < 0) {
        x->status = status;
        snprintf(x->reason, sizeof x->reason, "cannot create %.900s: %s", x->ctx->cfg->backup_dir,
                 strerror(-status));
        return fetch_end(x);
    }
    int rc = x->host->file->open(x->host, x->tmp, NOVA_FILE_WRITE, 0600, on_fetch_open, x);
    if (rc != 0) {
        x->status = rc;
        snprintf(x->reason, sizeof x->reason, "cannot create %.900s: %s", x->tmp, strerror(-rc));
        fetch_end(x);
    }
}

static void on_fetch_json(void *arg, const struct nova_http_response *res)
{
    struct fetch *x = arg;
    char why[700];
    if (res->error != 0 || res->status != 200) {
        describe(why, sizeof why, "GET of the manifest", res);
        x->status = res->error != 0 ? res->error : res->status == 404 ? -ENOENT : -EIO;
        snprintf(x->reason, sizeof x->reason, "%s", why);
        return fetch_end(x);
    }
    if (bk_manifest_parse(res->body, res->body_len, &x->man, why, sizeof why) != 0 ||
        strcmp(x->man.name, x->name) != 0) {
        x->status = -EBADMSG;
        snprintf(x->reason, sizeof x->reason, "the manifest on S3 is not that of %s: %s", x->name,
                 why);
        return fetch_end(x);
    }
    x->manifest = malloc(res->body_len + 1);
    if (x->manifest == NULL) {
        x->status = -ENOMEM;
        snprintf(x->reason, sizeof x->reason, "out of memory");
        return fetch_end(x);
    }
    memcpy(x->manifest, res->body, res->body_len);
    x->manifest_len = res->body_len;
    int rc = x->host->file->mkdir(x->host, x->ctx->cfg->backup_dir, 0700, on_fetch_dir, x);
    if (rc != 0)
        on_fetch_dir(x, rc);
}

int bk_s3_fetch(const struct bk_ctx *ctx, const char *name, bk_s3_cb cb, void *arg)
{
    char why[256];
    if (!s3_configured(ctx, why, sizeof why))
        return -EINVAL;
    struct fetch *x = calloc(1, sizeof *x);
    if (x == NULL)
        return -ENOMEM;
    x->ctx = ctx;
    x->host = ctx->host;
    x->cb = cb;
    x->arg = arg;
    snprintf(x->name, sizeof x->name, "%s", name);
    snprintf(x->key, sizeof x->key, "%s%s.dump.enc", prefix_of(ctx->cfg), name);
    snprintf(x->mkey, sizeof x->mkey, "%s%s.json", prefix_of(ctx->cfg), name);
    snprintf(x->tmp, sizeof x->tmp, "%s/%s.dump.enc.tmp", ctx->cfg->backup_dir, name);
    snprintf(x->final, sizeof x->final, "%s/%s.dump.enc", ctx->cfg->backup_dir, name);
    snprintf(x->mpath, sizeof x->mpath, "%s/%s.json", ctx->cfg->backup_dir, name);
    int rc = s3_request(ctx, "GET", x->mkey, NULL, NULL, NULL, 0, NULL, 1 << 20, on_fetch_json, x);
    if (rc != 0)
        free(x);
    return rc;
}
