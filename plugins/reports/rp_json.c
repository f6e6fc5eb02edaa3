/*
 * rp_json.c - the bytes Nova's Node service would write, made in C.
 *
 * Nova caches JSON.stringify({type, generatedAt, params, data}) where data
 * holds what node-pg parsed from PostgreSQL's text: int4 became a number,
 * int8 and numeric stayed strings, dates became Date objects (printed by
 * toISOString in UTC), json columns were parsed and are printed again.
 * Byte compatibility therefore needs JavaScript's own formatting rules:
 * Number::toString's shortest round-trip digits, JSON.stringify's string
 * escapes and key order, and postgres-date's reading of timestamps
 * (milliseconds truncated, not rounded). This file holds those rules and
 * nothing asynchronous, so tests/reports/test_rp_logic.c can check them
 * against values printed by node.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rp.h"

const char *const rp_type_names[RP_NTYPES] = {"user", "campaign", "transaction", "revenue"};
const char *const rp_period_names[RP_NPERIODS] = {"daily", "weekly", "monthly"};
const char *const rp_param_names[RP_NPARAMS] = {"endDate", "merchantId", "startDate", "txType"};

int rp_type_from_name(const char *name)
{
    for (int i = 0; i < RP_NTYPES; i++)
        if (name != NULL && strcmp(name, rp_type_names[i]) == 0)
            return i;
    return -1;
}

int rp_type_list(const char *text, unsigned *out, char *err, size_t errlen)
{
    unsigned set = 0;
    const char *p = text != NULL ? text : "";
    while (*p != '\0') {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        const char *w = p;
        while (*p != '\0' && *p != ',' && !isspace((unsigned char)*p))
            p++;
        char word[32];
        size_t n = (size_t)(p - w);
        int t = -1;
        if (n < sizeof word) {
            memcpy(word, w, n);
            word[n] = '\0';
            t = rp_type_from_name(word);
        }
        if (t < 0) {
            snprintf(err, errlen,
                     "unknown report type \"%.*s\" (user, campaign, transaction, revenue)",
                     (int)(n > 40 ? 40 : n), w);
            return -EINVAL;
        }
        set |= 1u << t;
    }
    *out = set;
    return 0;
}

/* ---- JSON.stringify ------------------------------------------------------------ */

/* QuoteJSONString: '"' and '\' escaped, the five short escapes, other
 * control characters as \u00xx in lower-case hex; all else (UTF-8) as is. */
void rp_json_string(struct nova_buf *b, const char *s, size_t n)
{
    nova_buf_add(b, "\"", 1);
    size_t run = 0; /* bytes copied verbatim, flushed in one add */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char hex[8];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\r':
            esc = "\\r";
            break;
        default:
            if (c < 0x20) {
                snprintf(hex, sizeof hex, "\\u%04x", c);
                esc = hex;
            }
        }
        if (esc == NULL) {
            run++;
            continue;
        }
        nova_buf_add(b, s + i - run, run);
        run = 0;
        nova_buf_str(b, esc);
    }
    nova_buf_add(b, s + n - run, run);
    nova_buf_add(b, "\"", 1);
}

/*
 * Number::toString(10) (ECMA-262 6.1.6.1.20): the fewest decimal digits
 * that read back as v (printf's %.*e is correctly rounded, so the first
 * precision that round-trips gives the digits JavaScript picks), laid out
 * plainly for decimal exponents -6 < n <= 21 and as d.ddde±x otherwise.
 */
void rp_js_number(double v, char *out, size_t outlen)
{
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, outlen, "%s", v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (v == 0) {
        snprintf(out, outlen, "0"); /* -0 too */
        return;
    }
    double a = fabs(v);
    char tmp[48], digits[24];
    int k = 0, e = 0;
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, a);
        if (strtod(tmp, NULL) == a || p == 17)
            break;
    }
    /* tmp is d[.ddd]e±xx */
    for (const char *q = tmp; *q != '\0' && *q != 'e'; q++)
        if (isdigit((unsigned char)*q) && k < (int)sizeof digits - 1)
            digits[k++] = *q;
    const char *ep = strchr(tmp, 'e');
    e = ep != NULL ? atoi(ep + 1) : 0;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    int n = e + 1; /* v = 0.d1..dk x 10^n */
    char s[64];
    size_t sl = 0;
    if (v < 0)
        s[sl++] = '-';
    if (k <= n && n <= 21) {
        memcpy(s + sl, digits, (size_t)k);
        sl += (size_t)k;
        for (int i = 0; i < n - k; i++)
            s[sl++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(s + sl, digits, (size_t)n);
        sl += (size_t)n;
        s[sl++] = '.';
        memcpy(s + sl, digits + n, (size_t)(k - n));
        sl += (size_t)(k - n);
    } else if (-6 < n && n <= 0) {
        s[sl++] = '0';
        s[sl++] = '.';
        for (int i = 0; i < -n; i++)
            s[sl++] = '0';
        memcpy(s + sl, digits, (size_t)k);
        sl += (size_t)k;
    } else {
        s[sl++] = digits[0];
        if (k > 1) {
            s[sl++] = '.';
            memcpy(s + sl, digits + 1, (size_t)(k - 1));
            sl += (size_t)(k - 1);
        }
        sl += (size_t)snprintf(s + sl, sizeof s - sl, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    s[sl] = '\0';
    snprintf(out, outlen, "%s", s);
}

void rp_json_number(struct nova_buf *b, double v)
{
    if (!isfinite(v)) {
        nova_buf_str(b, "null");
        return;
    }
    char s[40];
    rp_js_number(v, s, sizeof s);
    nova_buf_str(b, s);
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back
 * (H. Hinnant's civil calendar algorithms). */
int64_t rp_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

void rp_iso_date(int64_t ms, char *out, size_t outlen)
{
    int64_t days = ms / 86400000, rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t y;
    int mo, d;
    civil_from_days(days, &y, &mo, &d);
    char year[24];
    if (y >= 0 && y <= 9999)
        snprintf(year, sizeof year, "%04lld", (long long)y);
    else
        snprintf(year, sizeof year, "%c%06lld", y < 0 ? '-' : '+', (long long)(y < 0 ? -y : y));
    snprintf(out, outlen, "%s-%02d-%02dT%02d:%02d:%02d.%03dZ", year, mo, d, (int)(rem / 3600000),
             (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}

/* ---- node-pg's types -------------------------------------------------------------- */

enum rp_kind rp_kind_of_oid(uint32_t oid)
{
    switch (oid) {
    case 21: /* int2 */
    case 23: /* int4 */
    case 26: /* oid */
        return RP_K_INT;
    case 700: /* float4 */
    case 701: /* float8 */
        return RP_K_FLOAT;
    case 16:
        return RP_K_BOOL;
    case 1082: /* date */
    case 1114: /* timestamp */
    case 1184: /* timestamptz */
        return RP_K_DATE;
    case 114:  /* json */
    case 3802: /* jsonb */
        return RP_K_JSON;
    default: /* int8 and numeric are strings in node-pg, as is every unknown type */
        return RP_K_TEXT;
    }
}

bool rp_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Milliseconds of a proleptic date and time, as Date.UTC computes them
 * (postgres-date puts years 0..99 back with setUTCFullYear). */
static int64_t utc_ms(int64_t year, int month, int day, int h, int mi, int s, double ms)
{
    return rp_days(year, month, day) * 86400000 + (int64_t)h * 3600000 + (int64_t)mi * 60000 +
           (int64_t)s * 1000 + (int64_t)trunc(ms);
}

/*
 * postgres-date 1.0.7 on PostgreSQL's ISO output: "YYYY-MM-DD" (a date, at
 * local midnight), "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]][ BC]". The
 * fraction becomes 1000 * parseFloat(".ffffff") milliseconds, truncated by
 * Date.UTC. The worker's Node process is taken to run in UTC (Nova's
 * node:20-alpine image sets no TZ), so local time is UTC.
 */
int rp_pg_date_ms(const char *text, int64_t *ms)
{
    if (strcmp(text, "infinity") == 0 || strcmp(text, "-infinity") == 0)
        return 1;
    const char *p = text;
    const char *y0 = p;
    while (isdigit((unsigned char)*p))
        p++;
    if (p == y0 || p - y0 > 9 || p[0] != '-' || !rp_digits(p + 1, 2) || p[3] != '-' ||
        !rp_digits(p + 4, 2))
        return -EINVAL;
    int64_t year = strtoll(y0, NULL, 10);
    int month = (p[1] - '0') * 10 + (p[2] - '0');
    int day = (p[4] - '0') * 10 + (p[5] - '0');
    p += 6;
    bool bc = strstr(p, " BC") != NULL && strcmp(p + strlen(p) - 3, " BC") == 0;
    if (bc)
        year = -(year - 1);
    if (month < 1 || month > 12 || day < 1 || day > 31)
        return -EINVAL;
    if (*p == '\0' || strcmp(p, " BC") == 0) {
        *ms = utc_ms(year, month, day, 0, 0, 0, 0);
        return 0;
    }
    if (p[0] != ' ' || !rp_digits(p + 1, 2) || p[3] != ':' || !rp_digits(p + 4, 2) || p[6] != ':' ||
        !rp_digits(p + 7, 2))
        return -EINVAL;
    int h = (p[1] - '0') * 10 + (p[2] - '0');
    int mi = (p[4] - '0') * 10 + (p[5] - '0');
    int s = (p[7] - '0') * 10 + (p[8] - '0');
    const char *timepart = p + 1;
    p += 9;
    double frac = 0;
    if (*p == '.' && isdigit((unsigned char)p[1])) {
        char f[40];
        size_t n = 1;
        while (isdigit((unsigned char)p[n]))
            n++;
        snprintf(f, sizeof f, "%.*s", (int)(n < 30 ? n : 30), p);
        frac = 1000 * strtod(f, NULL);
        p += n;
    }
    /* the zone: Z, or +HH[:MM[:SS]] / -HH..., searched in the time part as
     * postgres-date's /([Z+-])(\d{2})?:?(\d{2})?:?(\d{2})?/ does */
    int64_t offset = 0;
    size_t tl = strlen(text);
    if (!(tl >= 3 && strcmp(text + tl - 3, "+00") == 0)) {
        const char *z = timepart;
        while (*z != '\0' && *z != ' ' && *z != 'Z' && *z != '+' && *z != '-')
            z++;
        if (*z == '+' || *z == '-') {
            int sign = *z == '-' ? -1 : 1;
            int part[3] = {0, 0, 0};
            const char *q = z + 1;
            for (int i = 0; i < 3; i++) {
                if (i > 0 && *q == ':')
                    q++;
                if (isdigit((unsigned char)q[0]) && isdigit((unsigned char)q[1])) {
                    part[i] = (q[0] - '0') * 10 + (q[1] - '0');
                    q += 2;
                } else
                    break;
            }
            offset = (int64_t)sign * (part[0] * 3600 + part[1] * 60 + part[2]) * 1000;
        }
    }
    *ms = utc_ms(year, month, day, h, mi, s, frac) - offset;
    return 0;
}

/* The largest time value a Date holds (ECMA-262 TimeClip). */
#define RP_MAX_TIME 8640000000000000LL

/* JSON.stringify of a value JSON.parse made, with JavaScript's key order:
 * integer keys ("0".."4294967294", canonical) first in numeric order, then
 * the others in the order first seen; a repeated key keeps its first place
 * and its last value. */
static bool array_index(const char *k, uint64_t *idx)
{
    size_t n = strlen(k);
    if (n == 0 || n > 10 || (n > 1 && k[0] == '0') || !rp_digits(k, n))
        return false;
    uint64_t v = strtoull(k, NULL, 10);
    if (v >= 4294967295ULL)
        return false;
    *idx = v;
    return true;
}

static void js_json(struct nova_buf *b, const cJSON *v);

static void js_object(struct nova_buf *b, const cJSON *o)
{
    size_t n = 0;
    for (const cJSON *c = o->child; c != NULL; c = c->next)
        n++;
    const cJSON **items = calloc(n ? n : 1, sizeof *items);
    if (items == NULL) {
        b->oom = true;
        return;
    }
    size_t m = 0;
    for (const cJSON *c = o->child; c != NULL; c = c->next) {
        const char *k = c->string != NULL ? c->string : "";
        size_t i = 0;
        while (i < m && strcmp(items[i]->string != NULL ? items[i]->string : "", k) != 0)
            i++;
        items[i] = c; /* first place, last value */
        if (i == m)
            m++;
    }
    nova_buf_add(b, "{", 1);
    bool first = true;
    /* integer keys, ascending */
    uint64_t last = 0;
    bool any = false;
    for (;;) {
        const cJSON *best = NULL;
        uint64_t bi = 0;
        for (size_t i = 0; i < m; i++) {
            uint64_t idx;
            if (array_index(items[i]->string, &idx) && (!any || idx > last) &&
                (best == NULL || idx < bi)) {
                best = items[i];
                bi = idx;
            }
        }
        if (best == NULL)
            break;
        if (!first)
            nova_buf_add(b, ",", 1);
        first = false;
        rp_json_string(b, best->string, strlen(best->string));
        nova_buf_add(b, ":", 1);
        js_json(b, best);
        last = bi;
        any = true;
    }
    for (size_t i = 0; i < m; i++) {
        uint64_t idx;
        const char *k = items[i]->string != NULL ? items[i]->string : "";
        if (array_index(k, &idx))
            continue;
        if (!first)
            nova_buf_add(b, ",", 1);
        first = false;
        rp_json_string(b, k, strlen(k));
        nova_buf_add(b, ":", 1);
        js_json(b, items[i]);
    }
    nova_buf_add(b, "}", 1);
    free(items);
}

static void js_json(struct nova_buf *b, const cJSON *v)
{
    if (cJSON_IsNull(v))
        nova_buf_str(b, "null");
    else if (cJSON_IsTrue(v))
        nova_buf_str(b, "true");
    else if (cJSON_IsFalse(v))
        nova_buf_str(b, "false");
    else if (cJSON_IsNumber(v))
        rp_json_number(b, v->valuedouble);
    else if (cJSON_IsString(v))
        rp_json_string(b, v->valuestring, strlen(v->valuestring));
    else if (cJSON_IsArray(v)) {
        nova_buf_add(b, "[", 1);
        for (const cJSON *c = v->child; c != NULL; c = c->next) {
            if (c != v->child)
                nova_buf_add(b, ",", 1);
            js_json(b, c);
        }
        nova_buf_add(b, "]", 1);
    } else if (cJSON_IsObject(v))
        js_object(b, v);
    else
        nova_buf_str(b, "null");
}

int rp_value_json(struct nova_buf *b, enum rp_kind kind, const char *text)
{
    if (text == NULL) {
        nova_buf_str(b, "null");
        return 0;
    }
    switch (kind) {
    case RP_K_TEXT:
        break;
    case RP_K_INT: {
        size_t n = strlen(text);
        bool neg = text[0] == '-';
        if (rp_digits(text + neg, n - neg) && n - neg <= 15 && (n - neg == 1 || text[neg] != '0')) {
            if (strcmp(text, "-0") == 0)
                nova_buf_add(b, "0", 1);
            else
                nova_buf_add(b, text, n);
            return 0;
        }
        char *end;
        double d = strtod(text, &end);
        if (end == text)
            break;
        rp_json_number(b, trunc(d));
        return 0;
    }
    case RP_K_FLOAT: {
        char *end;
        double d = strtod(text, &end);
        if (end == text)
            break;
        rp_json_number(b, d); /* NaN and Infinity: null */
        return 0;
    }
    case RP_K_BOOL: {
        static const char *const yes[] = {"TRUE", "t", "true", "y", "yes", "on", "1"};
        bool v = false;
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
            v = v || strcmp(text, yes[i]) == 0;
        nova_buf_str(b, v ? "true" : "false");
        return 0;
    }
    case RP_K_DATE: {
        int64_t ms;
        int rc = rp_pg_date_ms(text, &ms);
        if (rc != 0 || ms > RP_MAX_TIME || ms < -RP_MAX_TIME) {
            nova_buf_str(b, "null"); /* Infinity, Invalid Date: toJSON gives null */
            return rc < 0 ? -EINVAL : 0;
        }
        char iso[40];
        rp_iso_date(ms, iso, sizeof iso);
        nova_buf_add(b, "\"", 1);
        nova_buf_str(b, iso);
        nova_buf_add(b, "\"", 1);
        return 0;
    }
    case RP_K_JSON: {
        cJSON *v = cJSON_Parse(text);
        if (v == NULL)
            break;
        js_json(b, v);
        cJSON_Delete(v);
        return 0;
    }
    }
    rp_json_string(b, text, strlen(text));
    return kind == RP_K_TEXT ? 0 : -EINVAL;
}

void rp_value_text(struct nova_buf *b, enum rp_kind kind, const char *text)
{
    if (text == NULL)
        return;
    switch (kind) {
    case RP_K_INT:
    case RP_K_FLOAT: {
        char *end;
        double d = strtod(text, &end);
        if (end == text)
            break;
        char s[40];
        rp_js_number(kind == RP_K_INT ? trunc(d) : d, s, sizeof s);
        nova_buf_str(b, s);
        return;
    }
    case RP_K_BOOL:
    case RP_K_JSON:
        /* the JSON text is the cell: true/false, or the object as JSON */
        rp_value_json(b, kind, text);
        return;
    case RP_K_DATE: {
        int64_t ms;
        int rc = rp_pg_date_ms(text, &ms);
        if (rc == 1) {
            nova_buf_str(b, text[0] == '-' ? "-Infinity" : "Infinity");
            return;
        }
        if (rc != 0 || ms > RP_MAX_TIME || ms < -RP_MAX_TIME)
            return; /* Invalid Date: an empty cell */
        char iso[40];
        rp_iso_date(ms, iso, sizeof iso);
        nova_buf_str(b, iso);
        return;
    }
    case RP_K_TEXT:
        break;
    }
    nova_buf_str(b, text);
}

/* ---- params and the cache key -------------------------------------------------------- */

static int param_index(const char *k)
{
    for (int i = 0; i < RP_NPARAMS; i++)
        if (strcmp(k, rp_param_names[i]) == 0)
            return i;
    return -1;
}

void rp_params_free(struct rp_params *p)
{
    for (int i = 0; i < RP_NPARAMS; i++) {
        free(p->p[i].text);
        free(p->p[i].json);
    }
    *p = (struct rp_params){0};
}

static int set_string(struct rp_param *q, const char *s)
{
    struct nova_buf j = {0};
    rp_json_string(&j, s, strlen(s));
    q->text = strdup(s);
    q->json = j.p;
    q->truthy = s[0] != '\0';
    if (q->text == NULL || q->json == NULL || j.oom)
        return -ENOMEM;
    return 0;
}

int rp_params_set(struct rp_params *out, int key, const char *value)
{
    if (key < 0 || key >= RP_NPARAMS || out->p[key].given)
        return -EINVAL;
    struct rp_param *q = &out->p[key];
    q->given = true;
    out->order[out->n++] = key;
    if (value == NULL) {
        q->is_null = true;
        return 0;
    }
    return set_string(q, value);
}

int rp_params_parse(const cJSON *params, struct rp_params *out, char *err, size_t errlen)
{
    *out = (struct rp_params){0};
    if (params == NULL)
        return 0;
    if (!cJSON_IsObject(params)) {
        snprintf(err, errlen,
                 "params must be an object of filters (merchantId, startDate, "
                 "endDate, txType)");
        return -EINVAL;
    }
    for (const cJSON *c = params->child; c != NULL; c = c->next) {
        const char *k = c->string != NULL ? c->string : "";
        int i = param_index(k);
        if (i < 0) {
            snprintf(err, errlen,
                     "params.%.60s: unknown filter (merchantId, startDate, endDate, "
                     "txType)",
                     k);
            goto bad;
        }
        struct rp_param *q = &out->p[i];
        if (q->given) {
            snprintf(err, errlen, "params.%s is given twice", k);
            goto bad;
        }
        q->given = true;
        out->order[out->n++] = i;
        if (cJSON_IsNull(c)) {
            q->is_null = true;
        } else if (cJSON_IsString(c)) {
            if (set_string(q, c->valuestring) != 0)
                goto oom;
        } else if (cJSON_IsNumber(c) && isfinite(c->valuedouble)) {
            char s[40];
            rp_js_number(c->valuedouble, s, sizeof s);
            q->text = strdup(s);
            q->json = strdup(s);
            q->truthy = c->valuedouble != 0;
            if (q->text == NULL || q->json == NULL)
                goto oom;
        } else {
            snprintf(err, errlen, "params.%s must be a string, a number or null", k);
            goto bad;
        }
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    rp_params_free(out);
    return -ENOMEM;
bad:
    rp_params_free(out);
    return -EINVAL;
}

void rp_params_json(struct nova_buf *b, const struct rp_params *p)
{
    nova_buf_add(b, "{", 1);
    for (int i = 0; i < p->n; i++) {
        const struct rp_param *q = &p->p[p->order[i]];
        if (i > 0)
            nova_buf_add(b, ",", 1);
        nova_buf_printf(b, "\"%s\":", rp_param_names[p->order[i]]);
        nova_buf_str(b, q->is_null ? "null" : q->json);
    }
    nova_buf_add(b, "}", 1);
}

char *rp_cache_key(enum rp_type type, const struct rp_params *p)
{
    struct nova_buf b = {0};
    nova_buf_printf(&b, "report:%s", rp_type_names[type]);
    bool first = true;
    for (int i = 0; i < RP_NPARAMS; i++) { /* rp_param_names is in sort order */
        const struct rp_param *q = &p->p[i];
        if (!q->given || q->is_null)
            continue;
        nova_buf_add(&b, first ? ":" : "&", 1);
        first = false;
        nova_buf_printf(&b, "%s=%s", rp_param_names[i], q->text);
    }
    return rp_buf_take(&b);
}
