/*
 * sched - parsing schedule specs and stepping to their next slots (see sched.h).
 *
 * A cron slot is searched for in local wall-clock time: from a local time
 * L, step field by field (month, day, hour, minute, second) to the next L
 * whose fields match, then map L to the first UTC instant that shows it.
 * Local times in a gap have no instant and are skipped past the gap.
 * Because only first occurrences count, the slots' local times increase
 * with their UTC instants, which is what makes this search exact.
 */
#include "config.h"
#include "sched/sched.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DAY        86400
#define MAX_OFFSET 93600               /* bound on |UTC offset| (tz.c refuses larger ones) */
#define MIN_MS     (-62135596800000LL) /* 0001-01-01T00:00:00Z */
#define MAX_MS     (253402300799999LL) /* 9999-12-31T23:59:59.999Z */

#if defined(__GNUC__)
static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- every -------------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int parse_every(const char *p, struct nova__sched *out, char *err, size_t errlen)
{
    while (is_blank(*p))
        p++;
    if (*p == '\0') {
        set_err(err, errlen, "every: missing duration (e.g. \"every 5m\")");
        return -EINVAL;
    }
    const char *start = p;
    int64_t n = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        if (digits++ >= 15) {
            set_err(err, errlen, "every: \"%s\" is too large", start);
            return -EINVAL;
        }
        n = n * 10 + (*p++ - '0');
    }
    if (digits == 0) {
        set_err(err, errlen,
                "every: \"%s\" is not a duration: expected a whole number and a unit "
                "(ms, s, m, h, d), e.g. \"every 5m\"",
                start);
        return -EINVAL;
    }
    const char *unit = p;
    while (*p != '\0' && !is_blank(*p))
        p++;
    size_t ulen = (size_t)(p - unit);
    if (ulen == 0) {
        set_err(err, errlen, "every: %.*s has no unit; use ms, s, m, h or d (e.g. \"every 5m\")",
                (int)(unit - start), start);
        return -EINVAL;
    }
    while (is_blank(*p))
        p++;
    if (*p != '\0') {
        set_err(err, errlen, "every: unexpected \"%s\" after the duration", p);
        return -EINVAL;
    }
    int64_t scale;
    if (ulen == 2 && strncmp(unit, "ms", 2) == 0)
        scale = 1;
    else if (ulen == 1 && unit[0] == 's')
        scale = 1000;
    else if (ulen == 1 && unit[0] == 'm')
        scale = 60 * 1000;
    else if (ulen == 1 && unit[0] == 'h')
        scale = 3600 * 1000;
    else if (ulen == 1 && unit[0] == 'd')
        scale = DAY * 1000LL;
    else {
        set_err(err, errlen,
                "every: \"%.*s\": unknown unit; use ms, s, m, h or d (e.g. \"every 5m\")",
                (int)(unit - start + ulen), start);
        return -EINVAL;
    }
    if (n > NOVA__SCHED_MAX_EVERY / scale) {
        set_err(err, errlen, "every: %.*s is above the maximum of 3650d",
                (int)(unit - start + ulen), start);
        return -EINVAL;
    }
    int64_t ms = n * scale;
    if (ms < NOVA__SCHED_MIN_EVERY) {
        set_err(err, errlen, "every: %.*s is below the minimum of 1000 ms (1s)",
                (int)(unit - start + ulen), start);
        return -EINVAL;
    }
    out->kind = NOVA__SCHED_EVERY;
    out->every_ms = ms;
    return 0;
}

/* ---- cron fields -------------------------------------------------------- */

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };

static const struct {
    const char *name;
    int min, max;
} field_def[F_COUNT] = {
    {"second", 0, 59},       {"minute", 0, 59}, {"hour", 0, 23},
    {"day-of-month", 1, 31}, {"month", 1, 12},  {"day-of-week", 0, 7},
};

static const char *const month_names[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* Where a field is being parsed, for error messages. */
struct field_ctx {
    int f;   /* F_* */
    int pos; /* 1-based position in the line as written */
    char *err;
    size_t errlen;
};

#if defined(__GNUC__)
static int field_err(const struct field_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#endif
static int field_err(const struct field_ctx *c, const char *fmt, ...)
{
    if (c->err != NULL && c->errlen > 0) {
        int n = snprintf(c->err, c->errlen, "cron field %d (%s): ", c->pos, field_def[c->f].name);
        if (n >= 0 && (size_t)n < c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int unsupported(const struct field_ctx *c, char ch)
{
    static const struct {
        char ch;
        const char *what;
    } special[] = {
        {'L', "\"L\" (last) is not supported"},
        {'W', "\"W\" (nearest weekday) is not supported"},
        {'#', "\"#\" (nth weekday) is not supported"},
        {'?', "\"?\" is not supported; use \"*\""},
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (special[i].ch == ch)
            return field_err(c, "%s", special[i].what);
    return field_err(c, "unexpected character '%c'", ch);
}

/* A number or, in month and day-of-week, a three-letter name; range-checked. */
static int parse_value(const struct field_ctx *c, const char **pp, const char *end, int *out)
{
    const char *p = *pp;
    int lo = field_def[c->f].min, hi = field_def[c->f].max;
    if (p < end && *p >= '0' && *p <= '9') {
        long v = 0;
        const char *start = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (v < 100000)
                v = v * 10 + (*p - '0');
            p++;
        }
        if (v < lo || v > hi)
            return field_err(c, "%.*s is out of range %d-%d", (int)(p - start), start, lo, hi);
        *pp = p;
        *out = (int)v;
        return 0;
    }
    if (p < end && is_alpha(*p)) {
        const char *start = p;
        while (p < end && is_alpha(*p))
            p++;
        size_t n = (size_t)(p - start);
        if (n <= 2 && (*start == 'L' || *start == 'l' || *start == 'W' || *start == 'w'))
            return unsupported(c, (char)(*start & ~0x20));
        const char *const *names = c->f == F_MON ? month_names : c->f == F_DOW ? day_names : NULL;
        int count = c->f == F_MON ? 12 : 7;
        if (names == NULL)
            return field_err(c,
                             "\"%.*s\" is not a number (names are allowed in month and "
                             "day-of-week only)",
                             (int)n, start);
        for (int i = 0; n == 3 && i < count; i++) {
            if (strncasecmp(start, names[i], 3) == 0) {
                *pp = p;
                *out = c->f == F_MON ? i + 1 : i;
                return 0;
            }
        }
        return field_err(c, "\"%.*s\" is not a %s name (%s)", (int)n, start,
                         c->f == F_MON ? "month" : "weekday",
                         c->f == F_MON ? "jan..dec" : "sun..sat");
    }
    if (p < end)
        return unsupported(c, *p);
    return field_err(c, "missing value");
}

/*
 * One field: a comma-separated list. cnt[v] counts how often value v is in
 * the list as cron-parser builds it (duplicates kept; a weekday range that
 * ends at 7 also holds 0; a lone 7 is 0): its length decides whether
 * day-of-month and day-of-week count as unrestricted (see sched.h).
 */
static int parse_field(const struct field_ctx *c, const char *text, const char *end,
                       uint16_t cnt[64])
{
    int fmin = field_def[c->f].min, fmax = field_def[c->f].max;
    const char *p = text;
    for (;;) {
        const char *item = p;
        if (p == end || *p == ',')
            return field_err(c, "empty list item in \"%.*s\"", (int)(end - text), text);
        int lo, hi, step = 1;
        bool range = false;
        if (*p == '*') {
            p++;
            lo = fmin;
            hi = fmax;
            range = true;
        } else {
            int rc = parse_value(c, &p, end, &lo);
            if (rc != 0)
                return rc;
            hi = lo;
            if (p < end && *p == '-') {
                p++;
                rc = parse_value(c, &p, end, &hi);
                if (rc != 0)
                    return rc;
                if (hi < lo)
                    return field_err(c, "range \"%.*s\" is backwards (%d > %d)", (int)(p - item),
                                     item, lo, hi);
                range = true;
            }
        }
        if (p < end && *p == '/') {
            p++;
            const char *s = p;
            long v = 0;
            while (p < end && *p >= '0' && *p <= '9') {
                if (v < 100000)
                    v = v * 10 + (*p - '0');
                p++;
            }
            if (p == s) {
                const char *e = p;
                while (e < end && *e != ',')
                    e++;
                return field_err(c, "step \"%.*s\" is not a number", (int)(e - s), s);
            }
            if (v < 1 || v > fmax)
                return field_err(c, "step %.*s is out of range 1-%d", (int)(p - s), s, fmax);
            step = (int)v;
            if (!range)
                hi = fmax; /* "a/n" is "a-<max>/n" */
            range = true;
        }
        if (p < end && *p != ',')
            return unsupported(c, *p);

        if (!range) {
            cnt[c->f == F_DOW ? lo % 7 : lo]++;
        } else {
            /* cron-parser puts 0 first into a weekday range ending at 7
             * (or 0), whatever the step. */
            bool sunday = c->f == F_DOW && hi % 7 == 0;
            if (sunday)
                cnt[0]++;
            for (int v = lo; v <= hi; v += step)
                if (!(sunday && v == 0))
                    cnt[v]++;
        }
        if (p == end)
            return 0;
        p++; /* ',' */
    }
}

static int parse_cron(const char *line, struct nova__sched *out, char *err, size_t errlen)
{
    const char *tok[F_COUNT];
    const char *tok_end[F_COUNT];
    int n = 0;
    for (const char *p = line; *p;) {
        while (is_blank(*p))
            p++;
        if (*p == '\0')
            break;
        if (n < F_COUNT)
            tok[n] = p;
        while (*p && !is_blank(*p))
            p++;
        if (n < F_COUNT)
            tok_end[n] = p;
        n++;
    }
    if (n != 5 && n != 6) {
        set_err(err, errlen,
                "cron line has %d field%s; expected 5 (minute hour day-of-month month "
                "day-of-week) or 6 (second first)",
                n, n == 1 ? "" : "s");
        return -EINVAL;
    }
    uint16_t cnt[F_COUNT][64];
    memset(cnt, 0, sizeof cnt);
    int first = n == 6 ? F_SEC : F_MIN;
    if (first == F_MIN)
        cnt[F_SEC][0] = 1; /* 5 fields: at second 0 */
    for (int f = first; f < F_COUNT; f++) {
        int i = f - first;
        struct field_ctx c = {f, i + 1, err, errlen};
        int rc = parse_field(&c, tok[i], tok_end[i], cnt[f]);
        if (rc != 0)
            return rc;
    }

    memset(out, 0, sizeof *out);
    out->kind = NOVA__SCHED_CRON;
    int len[F_COUNT] = {0};
    for (int f = 0; f < F_COUNT; f++) {
        for (int v = 0; v < 64; v++) {
            if (cnt[f][v] == 0)
                continue;
            len[f] += cnt[f][v];
            switch (f) {
            case F_SEC:
                out->sec |= (uint64_t)1 << v;
                break;
            case F_MIN:
                out->min |= (uint64_t)1 << v;
                break;
            case F_HOUR:
                out->hour |= (uint32_t)1 << v;
                break;
            case F_DOM:
                out->dom |= (uint32_t)1 << v;
                break;
            case F_MON:
                out->mon |= (uint16_t)(1u << v);
                break;
            default:
                out->dow |= (uint8_t)(1u << (v % 7));
                break;
            }
        }
    }
    /* cron-parser's rule: with a single month, days that month cannot have
     * are dropped first; day-of-month is then unrestricted in a month when
     * the list is at least as long as that month can be (Feb: 29). */
    static const int most_days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int dom_len = len[F_DOM];
    if (len[F_MON] == 1) {
        int only = __builtin_ctz(out->mon);
        dom_len = 0;
        for (int d = 1; d <= most_days[only]; d++)
            dom_len += cnt[F_DOM][d];
    }
    for (int m = 1; m <= 12; m++)
        if (dom_len >= most_days[m])
            out->dom_any |= (uint16_t)(1u << m);
    out->dow_any = len[F_DOW] == 8;
    return 0;
}

/* ---- parse -------------------------------------------------------------- */

int nova__sched_parse(const char *spec, const char *timezone, struct nova__sched *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (spec == NULL) {
        set_err(err, errlen, "empty schedule spec");
        return -EINVAL;
    }
    size_t len = strlen(spec);
    if (len >= sizeof out->spec) {
        set_err(err, errlen, "schedule spec is longer than %zu characters", sizeof out->spec - 1);
        return -EINVAL;
    }
    /* Refused up front so that every message below is printable. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)spec[i];
        if ((c < 0x20 || c > 0x7e) && !is_blank((char)c)) {
            set_err(err, errlen, "schedule spec: unexpected byte 0x%02x at column %zu", c, i + 1);
            return -EINVAL;
        }
    }
    char line[NOVA__SCHED_SPEC_MAX];
    memcpy(line, spec, len + 1);
    const char *p = line;
    while (is_blank(*p))
        p++;
    if (*p == '\0') {
        set_err(err, errlen, "empty schedule spec");
        return -EINVAL;
    }
    struct nova__sched s;
    memset(&s, 0, sizeof s);
    int rc;
    if (strncasecmp(p, "every", 5) == 0 && (p[5] == '\0' || is_blank(p[5]))) {
        rc = parse_every(p + 5, &s, err, errlen);
    } else if (*p == '@') {
        set_err(err, errlen,
                "\"%s\": cron shortcuts are not supported; write the fields (e.g. \"0 0 * * *\")",
                p);
        rc = -EINVAL;
    } else {
        rc = parse_cron(line, &s, err, errlen);
    }
    if (rc != 0)
        return rc;
    rc = nova__tz_load(timezone, &s.tz, err, errlen);
    if (rc != 0)
        return rc;
    memcpy(s.spec, spec, len + 1);
    *out = s;
    return 0;
}

void nova__sched_free(struct nova__sched *s)
{
    if (s == NULL)
        return;
    nova__tz_free(s->tz);
    s->tz = NULL;
}

/* ---- next slot ---------------------------------------------------------- */

/* The lowest set bit of mask at or above from (below width), or -1. */
static int next_bit(uint64_t mask, int from, int width)
{
    if (from >= width)
        return -1;
    uint64_t m = mask >> from;
    if (m == 0)
        return -1;
    int b = from + __builtin_ctzll(m);
    return b < width ? b : -1;
}

static bool day_matches(const struct nova__sched *s, int m, int d, int wday)
{
    bool dom = (s->dom >> d) & 1u;
    bool dow = (s->dow >> wday) & 1u;
    if (s->dow_any)
        return dom;
    if ((s->dom_any >> m) & 1u)
        return dow;
    return dom || dow;
}

/* Advances *io (local seconds) to the first local time at or after it
 * whose fields match; false when that is past limit. */
static bool next_local(const struct nova__sched *s, int64_t *io, int64_t limit)
{
    int64_t days = nova__tz_floor_div(*io, DAY);
    int64_t sod = *io - days * DAY;
    int64_t y;
    int m, d;
    nova__tz_civil_from_days(days, &y, &m, &d);
    int H = (int)(sod / 3600), M = (int)(sod / 60 % 60), S = (int)(sod % 60);
    int64_t limit_days = nova__tz_floor_div(limit, DAY);
    static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (;;) {
        if (days > limit_days)
            return false;
        if (!((s->mon >> m) & 1u)) {
            int nm = next_bit(s->mon, m + 1, 13);
            if (nm < 0) {
                y++;
                nm = next_bit(s->mon, 1, 13);
            }
            m = nm;
            d = 1;
            days = nova__tz_days_from_civil(y, m, 1);
            H = M = S = 0;
            continue;
        }
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (d > dim[m] + (m == 2 && leap)) {
            /* days already counts this first day of the next month */
            if (++m > 12) {
                m = 1;
                y++;
            }
            d = 1;
            H = M = S = 0;
            continue;
        }
        if (!day_matches(s, m, d, nova__tz_weekday(days))) {
            d++;
            days++;
            H = M = S = 0;
            continue;
        }
        int h = next_bit(s->hour, H, 24);
        if (h < 0) {
            d++;
            days++;
            H = M = S = 0;
            continue;
        }
        if (h != H) {
            H = h;
            M = S = 0;
        }
        int mi = next_bit(s->min, M, 60);
        if (mi < 0) {
            H++;
            M = S = 0;
            continue;
        }
        if (mi != M) {
            M = mi;
            S = 0;
        }
        int sc = next_bit(s->sec, S, 60);
        if (sc < 0) {
            M++;
            S = 0;
            continue;
        }
        *io = days * DAY + H * 3600 + M * 60 + sc;
        return *io <= limit;
    }
}

/*
 * The first UTC instant whose local time is L, or INT64_MIN when L falls in
 * a gap; then *gap_end is the first local time after the gap. The offset is
 * constant between changes, so each stretch [t, next change) with offset o
 * holds L exactly when L - o lies in it; stretches are tried in order.
 */
static int64_t first_instant(const struct nova__tz *tz, int64_t L, int64_t *gap_end)
{
    int64_t t = L - MAX_OFFSET - 1, hi = L + MAX_OFFSET + 1;
    int32_t o = nova__tz_offset_at(tz, t);
    *gap_end = L + 1;
    for (;;) {
        int64_t change = nova__tz_next_change(tz, t);
        int64_t c = L - o;
        if (c >= t && c < change)
            return c;
        if (change > hi)
            return INT64_MIN;
        int32_t o2 = nova__tz_offset_at(tz, change);
        if (o2 > o && L >= change + o && L < change + o2)
            *gap_end = change + o2;
        t = change;
        o = o2;
    }
}

int64_t nova__sched_next(const struct nova__sched *s, int64_t after_ms)
{
    if (s->kind == NOVA__SCHED_EVERY) {
        if (s->every_ms <= 0)
            return -1; /* not a parsed schedule */
        int64_t q = nova__tz_floor_div(after_ms, s->every_ms) + 1;
        if (q > INT64_MAX / s->every_ms)
            return -1;
        return q * s->every_ms;
    }
    if (after_ms < MIN_MS || after_ms > MAX_MS || s->tz == NULL || s->mon == 0)
        return -1;
    const struct nova__tz *tz = s->tz;
    int64_t t0 = nova__tz_floor_div(after_ms, 1000) + 1; /* slots are whole seconds */
    int64_t limit = t0 - 1 + NOVA__SCHED_HORIZON_MS / 1000;
    int64_t local_limit = limit + MAX_OFFSET;
    int64_t gap_end;
    int64_t L = t0 + nova__tz_offset_at(tz, t0);
    int64_t first = first_instant(tz, L, &gap_end);
    if (first != INT64_MIN && first < t0) {
        /* t0 repeats a local time (fall-back overlap): every local time up
         * to the end of the repeat showed first before t0. Resume there. */
        int64_t change = nova__tz_next_change(tz, first);
        if (change <= t0)
            L = change + nova__tz_offset_at(tz, change - 1);
    }
    for (int guard = 0; guard < 1000000; guard++) {
        if (!next_local(s, &L, local_limit))
            return -1;
        int64_t t = first_instant(tz, L, &gap_end);
        if (t == INT64_MIN) {
            L = gap_end; /* a gap: these local times do not exist */
            continue;
        }
        if (t > limit)
            return -1;
        if (t >= t0)
            return t * 1000;
        L++; /* only with odd zone data (two changes inside one repeat) */
    }
    return -1;
}

size_t nova__sched_next_n(const struct nova__sched *s, int64_t after_ms, int64_t *out, size_t n)
{
    size_t i = 0;
    for (; i < n; i++) {
        int64_t t = nova__sched_next(s, after_ms);
        if (t == -1) /* slots are whole seconds, so -1 is never one */
            break;
        out[i] = t;
        after_ms = t;
    }
    return i;
}

bool nova__sched_valid_id(const char *id)
{
    if (id == NULL || id[0] == '\0' || strlen(id) > 100)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}
