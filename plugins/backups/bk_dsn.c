/*
 * bk_dsn - PostgreSQL connection strings without their password; see
 * bk_dsn.h.
 */
#include "bk_dsn.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nova/buf.h>
#include <sodium.h>

#include "bk_crypto.h"

#define MAX_PAIRS 64

struct pairs {
    char *key[MAX_PAIRS];
    char *val[MAX_PAIRS];
    size_t n;
};

static void wipe_free(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

static void pairs_free(struct pairs *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->key[i]);
        wipe_free(p->val[i]);
    }
    p->n = 0;
}

/* Takes ownership of k and v (also on error). */
static int pairs_add(struct pairs *p, char *k, char *v)
{
    if (k == NULL || v == NULL || p->n == MAX_PAIRS) {
        int rc = (k == NULL || v == NULL) ? -ENOMEM : -E2BIG;
        free(k);
        wipe_free(v);
        return rc;
    }
    p->key[p->n] = k;
    p->val[p->n] = v;
    p->n++;
    return 0;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Percent-decodes s[0..n); NULL on a bad escape or %00 (*bad set) or
 * when out of memory. */
static char *pct_decode(const char *s, size_t n, bool *bad)
{
    char *d = malloc(n + 1);
    size_t k = 0;
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            unsigned char c = 0;
            if (i + 2 >= n || sodium_hex2bin(&c, 1, s + i + 1, 2, NULL, NULL, NULL) != 0 ||
                c == 0) {
                *bad = true;
                sodium_memzero(d, n + 1); /* not a string yet */
                free(d);
                return NULL;
            }
            d[k++] = (char)c;
            i += 2;
        } else {
            d[k++] = s[i];
        }
    }
    d[k] = '\0';
    return d;
}

static int parse_uri(const char *dsn, const char *rest, struct pairs *p, char *err, size_t errlen)
{
    (void)dsn;
    bool bad = false;
    size_t auth_len = strcspn(rest, "/?");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (rest[i] == '@')
            at = rest + i;
    int rc;
    if (at != NULL) {
        size_t ulen = (size_t)(at - rest);
        const char *colon = memchr(rest, ':', ulen);
        size_t name_len = colon != NULL ? (size_t)(colon - rest) : ulen;
        if (name_len > 0 &&
            (rc = pairs_add(p, strdup("user"), pct_decode(rest, name_len, &bad))) != 0)
            goto fail;
        if (colon != NULL &&
            (rc = pairs_add(p, strdup("password"),
                            pct_decode(colon + 1, ulen - name_len - 1, &bad))) != 0)
            goto fail;
    }
    const char *hs = at != NULL ? at + 1 : rest;
    const char *he = rest + auth_len;
    struct nova_buf hosts = {0}, ports = {0}; /* comma lists, one entry per host */
    bool any_port = false;
    size_t nhosts = 0;
    while (hs < he) {
        const char *end = memchr(hs, ',', (size_t)(he - hs));
        if (end == NULL)
            end = he;
        const char *h = hs, *hend, *port = NULL;
        if (*h == '[') {
            const char *close = memchr(h, ']', (size_t)(end - h));
            if (close == NULL) {
                nova_buf_free(&hosts);
                nova_buf_free(&ports);
                bk_set_err(err, errlen, "connection URI: missing ']' after an IPv6 address");
                return -EINVAL;
            }
            hend = close + 1;
            h++;
            if (hend < end && *hend == ':')
                port = hend + 1;
            hend = close;
        } else {
            const char *colon = memchr(h, ':', (size_t)(end - h));
            hend = colon != NULL ? colon : end;
            if (colon != NULL)
                port = colon + 1;
        }
        char *hd = pct_decode(h, (size_t)(hend - h), &bad);
        char *pd = port != NULL ? pct_decode(port, (size_t)(end - port), &bad) : strdup("");
        if (hd != NULL && pd != NULL) {
            nova_buf_printf(&hosts, "%s%s", nhosts > 0 ? "," : "", hd);
            nova_buf_printf(&ports, "%s%s", nhosts > 0 ? "," : "", pd);
        }
        if (hd == NULL || pd == NULL || hosts.oom || ports.oom) {
            free(hd);
            free(pd);
            nova_buf_free(&hosts);
            nova_buf_free(&ports);
            rc = bad ? -EINVAL : -ENOMEM;
            goto fail;
        }
        any_port |= pd[0] != '\0';
        free(hd);
        free(pd);
        nhosts++;
        hs = end < he ? end + 1 : he;
    }
    /* pairs_add takes the lists it is given */
    if (nhosts > 0 && hosts.p[0] != '\0') {
        if ((rc = pairs_add(p, strdup("host"), hosts.p)) != 0) {
            nova_buf_free(&ports);
            goto fail;
        }
    } else {
        nova_buf_free(&hosts);
    }
    if (any_port) {
        if ((rc = pairs_add(p, strdup("port"), ports.p)) != 0)
            goto fail;
    } else {
        nova_buf_free(&ports);
    }
    const char *q = rest + auth_len;
    if (*q == '/') {
        size_t dlen = strcspn(q + 1, "?");
        if (dlen > 0 && (rc = pairs_add(p, strdup("dbname"), pct_decode(q + 1, dlen, &bad))) != 0)
            goto fail;
        q += 1 + dlen;
    }
    if (*q == '?') {
        q++;
        while (*q != '\0') {
            size_t len = strcspn(q, "&");
            const char *eq = memchr(q, '=', len);
            if (eq == NULL) {
                bk_set_err(err, errlen, "connection URI: parameter without '=' in the query");
                return -EINVAL;
            }
            char *k = pct_decode(q, (size_t)(eq - q), &bad);
            char *v = pct_decode(eq + 1, len - (size_t)(eq - q) - 1, &bad);
            /* libpq reads ssl=true as sslmode=require */
            if (k != NULL && v != NULL && strcmp(k, "ssl") == 0 && strcmp(v, "true") == 0) {
                free(k);
                free(v);
                k = strdup("sslmode");
                v = strdup("require");
            }
            if ((rc = pairs_add(p, k, v)) != 0)
                goto fail;
            q += len;
            if (*q == '&')
                q++;
        }
    }
    return 0;
fail:
    if (bad) {
        bk_set_err(err, errlen, "connection URI: bad percent-encoding");
        return -EINVAL;
    }
    if (rc == -E2BIG)
        bk_set_err(err, errlen, "connection string: more than %d parameters", MAX_PAIRS);
    return rc;
}

static int parse_kv(const char *s, struct pairs *p, char *err, size_t errlen)
{
    while (*s != '\0') {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            s++;
        if (*s == '\0')
            break;
        const char *k = s;
        while (*s != '\0' && *s != '=' && *s != ' ' && *s != '\t')
            s++;
        size_t klen = (size_t)(s - k);
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s != '=' || klen == 0) {
            bk_set_err(err, errlen, "connection string: expected keyword = value");
            return -EINVAL;
        }
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t cap = strlen(s) + 1, n = 0;
        char *v = malloc(cap);
        if (v == NULL)
            return -ENOMEM;
        if (*s == '\'') {
            s++;
            while (*s != '\0' && *s != '\'') {
                if (*s == '\\' && s[1] != '\0')
                    s++;
                v[n++] = *s++;
            }
            if (*s != '\'') {
                v[n] = '\0'; /* wipe_free() wipes up to the NUL */
                wipe_free(v);
                bk_set_err(err, errlen, "connection string: unterminated quoted value");
                return -EINVAL;
            }
            s++;
        } else {
            while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
                if (*s == '\\' && s[1] != '\0')
                    s++;
                v[n++] = *s++;
            }
        }
        v[n] = '\0';
        int rc = pairs_add(p, dup_n(k, klen), v);
        if (rc != 0) {
            if (rc == -E2BIG)
                bk_set_err(err, errlen, "connection string: more than %d parameters", MAX_PAIRS);
            return rc;
        }
    }
    return 0;
}

/* keyword='value' with \ and ' escaped, as libpq reads it back. */
static void conninfo_add(struct nova_buf *b, const char *k, const char *v)
{
    nova_buf_printf(b, "%s%s='", b->len > 0 ? " " : "", k);
    for (const char *c = v; *c != '\0'; c++) {
        if (*c == '\\' || *c == '\'')
            nova_buf_add(b, "\\", 1);
        nova_buf_add(b, c, 1);
    }
    nova_buf_add(b, "'", 1);
}

static const char *last_of(const struct pairs *p, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->key[i], key) == 0)
            v = p->val[i];
    return v;
}

int bk_dsn_parse(const char *dsn, struct bk_dsn *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct pairs p = {.n = 0};
    int rc;
    if (dsn == NULL || dsn[0] == '\0') {
        bk_set_err(err, errlen, "no database connection string (dsn, or DATABASE_URL)");
        return -EINVAL;
    }
    if (strncmp(dsn, "postgresql://", 13) == 0)
        rc = parse_uri(dsn, dsn + 13, &p, err, errlen);
    else if (strncmp(dsn, "postgres://", 11) == 0)
        rc = parse_uri(dsn, dsn + 11, &p, err, errlen);
    else
        rc = parse_kv(dsn, &p, err, errlen);
    if (rc != 0) {
        pairs_free(&p);
        return rc;
    }
    struct nova_buf ci = {0};
    nova_buf_add(&ci, "", 0); /* "" when nothing else */
    for (size_t i = 0; i < p.n; i++)
        if (strcmp(p.key[i], "password") != 0)
            conninfo_add(&ci, p.key[i], p.val[i]);
    if (ci.oom) {
        nova_buf_free(&ci);
        rc = -ENOMEM;
    } else {
        out->conninfo = ci.p;
    }
    const char *pw = last_of(&p, "password");
    const char *db = last_of(&p, "dbname");
    const char *user = last_of(&p, "user");
    const char *host = last_of(&p, "host");
    if (rc == 0 && pw != NULL && (out->password = strdup(pw)) == NULL)
        rc = -ENOMEM;
    if (rc == 0 && (db != NULL || user != NULL) &&
        (out->dbname = strdup(db != NULL ? db : user)) == NULL)
        rc = -ENOMEM;
    if (rc == 0 && host != NULL && (out->host = strdup(host)) == NULL)
        rc = -ENOMEM;
    pairs_free(&p);
    return rc;
}

char *bk_dsn_dbname_arg(const struct bk_dsn *d)
{
    size_t len = strlen(d->conninfo) + 10;
    char *arg = malloc(len);
    if (arg != NULL)
        snprintf(arg, len, "--dbname=%s", d->conninfo);
    return arg;
}

void bk_dsn_free(struct bk_dsn *d)
{
    free(d->conninfo);
    wipe_free(d->password);
    free(d->dbname);
    free(d->host);
    memset(d, 0, sizeof *d);
}
