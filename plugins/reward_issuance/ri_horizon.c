/* ri_horizon - Horizon calls of the payment lane; see ri_horizon.h. */
#define _GNU_SOURCE
#include "ri_horizon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <nova/http.h>

struct call {
    struct ri *ri;
    void *cb;
    void *arg;
};

static struct call *call_new(struct ri *ri, void *cb, void *arg)
{
    struct call *c = malloc(sizeof *c);
    if (c != NULL)
        *c = (struct call){.ri = ri, .cb = cb, .arg = arg};
    return c;
}

static int build_url(struct ri *ri, char *out, size_t len, const char *path)
{
    const char *base = ri->horizon_url;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    int w = snprintf(out, len, "%.*s%s", (int)n, base, path);
    return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

/* The problem type suffix after the last '/', or NULL. */
static const char *problem_type(const cJSON *body)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "type");
    if (!cJSON_IsString(t))
        return NULL;
    const char *slash = strrchr(t->valuestring, '/');
    return slash != NULL ? slash + 1 : t->valuestring;
}

static int start_get(struct ri *ri, const char *path, nova_http_json_cb cb, struct call *c,
                     int64_t timeout_ms)
{
    char url[1024];
    if (build_url(ri, url, sizeof url, path) != 0)
        return -EINVAL;
    const char *headers[] = {"Accept: application/json", NULL};
    struct nova_http_request req = {
        .struct_size = sizeof req,
        .method = "GET",
        .url = url,
        .headers = headers,
        .timeout_ms = timeout_ms,
    };
    return ri->host->http->request_json(ri->host, &req, NULL, cb, c);
}

/* ---- account ----------------------------------------------------------- */

static void on_account(void *arg, const struct nova_http_response *res, const cJSON *json)
{
    struct call *c = arg;
    ri_hz_account_cb cb = (ri_hz_account_cb)c->cb;
    if (res->error == -ECANCELED)
        cb(c->arg, -ECANCELED, NULL);
    else if (res->error != 0 && res->error != -EBADMSG)
        cb(c->arg, -EAGAIN, NULL);
    else if (res->status == 404)
        cb(c->arg, -ENOENT, NULL);
    else if (res->status == 200 && cJSON_IsObject(json))
        cb(c->arg, 0, json);
    else if (res->status == 400)
        cb(c->arg, -EINVAL, NULL);
    else
        cb(c->arg, -EAGAIN, NULL);
    free(c);
}

int nova__ri_hz_account(struct ri *ri, const char *account_id, ri_hz_account_cb cb, void *arg)
{
    char path[128];
    snprintf(path, sizeof path, "/accounts/%s", account_id);
    struct call *c = call_new(ri, (void *)cb, arg);
    if (c == NULL)
        return -ENOMEM;
    int rc = start_get(ri, path, on_account, c, 0);
    if (rc != 0)
        free(c);
    return rc;
}

/* ---- submit --------------------------------------------------------------- */

static void on_submit(void *arg, const struct nova_http_response *res)
{
    struct call *c = arg;
    ri_hz_submit_cb cb = (ri_hz_submit_cb)c->cb;
    struct ri_submit_res r = {.transport_error = res->error, .status = res->status};
    cJSON *body = NULL;
    if (res->error == 0 && res->body_len > 0)
        body = cJSON_ParseWithLength(res->body, res->body_len);
    if (body != NULL) {
        r.problem_type = res->status != 200 ? problem_type(body) : NULL;
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(body, "successful");
        r.successful = cJSON_IsTrue(s);
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(body, "ledger");
        if (cJSON_IsNumber(l))
            r.ledger = (int64_t)l->valuedouble;
        const cJSON *extras = cJSON_GetObjectItemCaseSensitive(body, "extras");
        const cJSON *codes = cJSON_GetObjectItemCaseSensitive(extras, "result_codes");
        const cJSON *txc = cJSON_GetObjectItemCaseSensitive(codes, "transaction");
        if (cJSON_IsString(txc))
            r.tx_code = txc->valuestring;
    }
    r.cls = nova__ri_classify_submit(r.transport_error, r.status, r.problem_type, r.successful);
    cb(c->arg, &r);
    cJSON_Delete(body);
    free(c);
}

int nova__ri_hz_submit(struct ri *ri, const char *envelope_b64, ri_hz_submit_cb cb, void *arg)
{
    char url[1024];
    if (build_url(ri, url, sizeof url, "/transactions") != 0)
        return -EINVAL;
    /* tx=<url-encoded base64>: only '+', '/' and '=' need escaping. */
    size_t n = strlen(envelope_b64);
    char *body = malloc(3 + n * 3 + 1);
    if (body == NULL)
        return -ENOMEM;
    char *p = body;
    memcpy(p, "tx=", 3);
    p += 3;
    for (size_t i = 0; i < n; i++) {
        char ch = envelope_b64[i];
        if (ch == '+' || ch == '/' || ch == '=') {
            p += sprintf(p, "%%%02X", (unsigned char)ch);
        } else {
            *p++ = ch;
        }
    }
    *p = '\0';
    struct call *c = call_new(ri, (void *)cb, arg);
    if (c == NULL) {
        free(body);
        return -ENOMEM;
    }
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                             "Accept: application/json", NULL};
    struct nova_http_request req = {
        .struct_size = sizeof req,
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = (size_t)(p - body),
        .timeout_ms = ri->cfg->submit_timeout_ms,
    };
    int rc = ri->host->http->request(ri->host, &req, on_submit, c);
    free(body);
    if (rc != 0)
        free(c);
    return rc;
}

/* ---- lookup ---------------------------------------------------------------- */

static void on_tx(void *arg, const struct nova_http_response *res, const cJSON *json)
{
    struct call *c = arg;
    ri_hz_tx_cb cb = (ri_hz_tx_cb)c->cb;
    if (res->error == -ECANCELED)
        cb(c->arg, RI_LOOKUP_ERROR, RI_HZ_CANCELLED, NULL);
    else if (res->error == 0 && res->status == 200 && cJSON_IsObject(json)) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(json, "successful");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(json, "ledger");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(json, "result_xdr");
        int64_t ledger = cJSON_IsNumber(l) ? (int64_t)l->valuedouble : 0;
        if (!cJSON_IsBool(s))
            cb(c->arg, RI_LOOKUP_ERROR, 0, NULL);
        else
            cb(c->arg, cJSON_IsTrue(s) ? RI_LOOKUP_SUCCESS : RI_LOOKUP_FAILED, ledger,
               cJSON_IsString(x) ? x->valuestring : NULL);
    } else if ((res->error == 0 || res->error == -EBADMSG) && res->status == 404) {
        cb(c->arg, RI_LOOKUP_NOT_FOUND, 0, NULL);
    } else {
        cb(c->arg, RI_LOOKUP_ERROR, 0, NULL);
    }
    free(c);
}

int nova__ri_hz_tx(struct ri *ri, const char *hash_hex, ri_hz_tx_cb cb, void *arg)
{
    char path[128];
    snprintf(path, sizeof path, "/transactions/%s", hash_hex);
    struct call *c = call_new(ri, (void *)cb, arg);
    if (c == NULL)
        return -ENOMEM;
    int rc = start_get(ri, path, on_tx, c, 0);
    if (rc != 0)
        free(c);
    return rc;
}

/* ---- latest ledger ------------------------------------------------------------ */

int64_t nova__ri_parse_rfc3339(const char *s)
{
    if (s == NULL)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return -1;
    if (*end == '.') /* fractional seconds: ignored (rounding down is safe) */
        end += 1 + strspn(end + 1, "0123456789");
    if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
        return -1;
    return (int64_t)timegm(&tm);
}

static void on_root(void *arg, const struct nova_http_response *res, const cJSON *json)
{
    struct call *c = arg;
    ri_hz_latest_cb cb = (ri_hz_latest_cb)c->cb;
    int64_t t = res->error == -ECANCELED ? RI_HZ_CANCELLED : -1;
    if (res->error == 0 && res->status == 200) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, "history_latest_ledger_closed_at");
        if (cJSON_IsString(v))
            t = nova__ri_parse_rfc3339(v->valuestring);
    }
    cb(c->arg, t);
    free(c);
}

int nova__ri_hz_latest(struct ri *ri, ri_hz_latest_cb cb, void *arg)
{
    struct call *c = call_new(ri, (void *)cb, arg);
    if (c == NULL)
        return -ENOMEM;
    int rc = start_get(ri, "/", on_root, c, 0);
    if (rc != 0)
        free(c);
    return rc;
}
