/*
 * tz - TZif reader and POSIX TZ rules (see tz.h).
 *
 * A zone is a table of transitions (UTC instant -> offset) plus, for
 * instants after the last one, the footer's POSIX TZ rule. Offsets are
 * kept east-positive, as in TZif; the TZ string's are west-positive and
 * are negated when parsed.
 */
#include "config.h"
#include "sched/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_MAX_FILE     (1024 * 1024) /* real zone files are a few KiB */
#define TZ_MAX_NAME     255
#define TZ_MAX_TIMES    (1 << 20)
#define TZ_MAX_OFFSET   93599 /* RFC 8536: utoff SHOULD be in -89999..93599 */
#define TZ_RULE_MAXHOUR 167   /* RFC 8536 3.3.1: rule times -167..167 hours */
#define DAY             86400

/* One rule of a POSIX TZ string: the date and local time DST starts or ends. */
struct tz_rule {
    char kind;    /* 'J' (Jn, 1-365, no Feb 29), 'D' (n, 0-365), 'M' (Mm.w.d) */
    int day;      /* J and D: the day number; M: the weekday 0-6 */
    int week;     /* M: 1-5, 5 = the last such weekday of the month */
    int month;    /* M: 1-12 */
    int32_t time; /* local time of day, seconds; may be negative or over 24 h */
};

struct nova__tz {
    char *name;
    size_t ntimes;
    int64_t *times;    /* transition instants, strictly ascending */
    uint8_t *idx;      /* local time type of each transition */
    size_t ntypes;     /* >= 1 */
    int32_t *type_off; /* offset of each local time type */
    bool has_rule;     /* footer present and non-empty */
    bool has_dst;      /* the footer names a DST period */
    int32_t std_off, dst_off;
    struct tz_rule start, end; /* when DST starts (local std time) and ends (local DST time) */
};

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

/* ---- civil calendar ----------------------------------------------------- */

int64_t nova__tz_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to January 1st of year y (proleptic Gregorian). */
static int64_t days_before_year(int64_t y)
{
    /* Leap years in [1, y - 1], counted with floor division so that years
     * before 1 work too; 719162 days separate 0001-01-01 from 1970-01-01. */
    int64_t n = y - 1;
    int64_t leaps =
        nova__tz_floor_div(n, 4) - nova__tz_floor_div(n, 100) + nova__tz_floor_div(n, 400);
    return 365 * n + leaps - 719162;
}

int64_t nova__tz_days_from_civil(int64_t y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t days = days_before_year(y) + before[m - 1] + d - 1;
    if (m > 2 && is_leap(y))
        days++;
    return days;
}

void nova__tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    /* Guess the year from the mean Gregorian year, then correct it. */
    int64_t year = 1970 + nova__tz_floor_div(days * 400, 146097);
    while (days_before_year(year) > days)
        year--;
    while (days_before_year(year + 1) <= days)
        year++;
    int64_t yday = days - days_before_year(year);
    int month = 1;
    while (yday >= days_in_month(year, month)) {
        yday -= days_in_month(year, month);
        month++;
    }
    *y = year;
    *m = month;
    *d = (int)yday + 1;
}

int nova__tz_weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday. */
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* ---- POSIX TZ rules ----------------------------------------------------- */

/* Keeps rule arithmetic far from overflow; the rules are periodic, so
 * instants beyond some hundred million years get the answer of the bound. */
#define T_BOUND ((int64_t)1 << 52)
static int64_t clamp_t(int64_t t)
{
    return t > T_BOUND ? T_BOUND : t < -T_BOUND ? -T_BOUND : t;
}

/* The UTC instant a rule names in year y, with off the offset in force
 * just before it (standard time for the start of DST, DST for its end). */
static int64_t rule_instant(const struct tz_rule *r, int64_t y, int32_t off)
{
    int64_t day;
    if (r->kind == 'J') {
        day = nova__tz_days_from_civil(y, 1, 1) + r->day - 1;
        if (r->day >= 60 && is_leap(y))
            day++;
    } else if (r->kind == 'D') {
        day = nova__tz_days_from_civil(y, 1, 1) + r->day;
    } else {
        int64_t first = nova__tz_days_from_civil(y, r->month, 1);
        int dd = (r->day - nova__tz_weekday(first) + 7) % 7 + 7 * (r->week - 1);
        while (dd >= days_in_month(y, r->month))
            dd -= 7;
        day = first + dd;
    }
    return day * DAY + r->time - off;
}

/* The offset the footer rule gives at t. */
static int32_t rule_offset(const struct nova__tz *tz, int64_t t)
{
    if (!tz->has_dst)
        return tz->std_off;
    t = clamp_t(t);
    int64_t y;
    int m, d;
    nova__tz_civil_from_days(nova__tz_floor_div(t + tz->std_off, DAY), &y, &m, &d);
    /* The latest start or end at or before t decides; rule times may spill
     * into the neighbouring years, so look at three. When an end and a
     * start coincide (DST all year: "0/0,J365/25") the start wins. */
    int64_t best = INT64_MIN;
    bool dst = false;
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t e = rule_instant(&tz->end, yy, tz->dst_off);
        int64_t s = rule_instant(&tz->start, yy, tz->std_off);
        if (e <= t && e > best) {
            best = e;
            dst = false;
        }
        if (s <= t && s >= best) {
            best = s;
            dst = true;
        }
    }
    return dst ? tz->dst_off : tz->std_off;
}

/* ---- queries ------------------------------------------------------------ */

/* Index of the last transition at or before t, or -1. */
static ptrdiff_t last_at_or_before(const struct nova__tz *tz, int64_t t)
{
    size_t lo = 0, hi = tz->ntimes; /* answer + 1 is in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->times[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

int32_t nova__tz_offset_at(const struct nova__tz *tz, int64_t t)
{
    if (tz->ntimes == 0)
        return tz->has_rule ? rule_offset(tz, t) : tz->type_off[0];
    if (t > tz->times[tz->ntimes - 1] && tz->has_rule)
        return rule_offset(tz, t);
    ptrdiff_t i = last_at_or_before(tz, t);
    return tz->type_off[i < 0 ? 0 : tz->idx[i]];
}

int64_t nova__tz_next_change(const struct nova__tz *tz, int64_t t)
{
    if (tz->ntimes > 0 && t < tz->times[tz->ntimes - 1]) {
        size_t i = (size_t)(last_at_or_before(tz, t) + 1);
        for (; i < tz->ntimes; i++) {
            int32_t before = tz->type_off[i == 0 ? 0 : tz->idx[i - 1]];
            if (tz->type_off[tz->idx[i]] != before)
                return tz->times[i];
        }
        t = tz->times[tz->ntimes - 1];
    }
    if (!tz->has_rule || !tz->has_dst || tz->std_off == tz->dst_off)
        return INT64_MAX;
    /* Rule instants after t, in order, until one changes the offset. Each
     * year has a start and an end, so two years past t's hold a change
     * unless DST lasts all year. */
    if (t >= T_BOUND)
        return INT64_MAX;
    t = clamp_t(t);
    int64_t y;
    int m, d;
    nova__tz_civil_from_days(nova__tz_floor_div(t + tz->std_off, DAY), &y, &m, &d);
    int64_t from = t;
    for (int pass = 0; pass < 8; pass++) {
        int64_t best = INT64_MAX;
        for (int64_t yy = y - 1; yy <= y + 2; yy++) {
            int64_t e = rule_instant(&tz->end, yy, tz->dst_off);
            int64_t s = rule_instant(&tz->start, yy, tz->std_off);
            if (e > from && e < best)
                best = e;
            if (s > from && s < best)
                best = s;
        }
        if (best == INT64_MAX)
            return INT64_MAX;
        if (nova__tz_offset_at(tz, best) != nova__tz_offset_at(tz, best - 1))
            return best;
        from = best;
    }
    return INT64_MAX;
}

const char *nova__tz_name(const struct nova__tz *tz)
{
    return tz->name;
}

void nova__tz_free(struct nova__tz *tz)
{
    if (tz == NULL)
        return;
    free(tz->name);
    free(tz->times);
    free(tz->idx);
    free(tz->type_off);
    free(tz);
}

/* ---- the footer's TZ string --------------------------------------------- */

/* Digits into *out, at most maxdigits of them; false when there are none. */
static bool tzs_number(const char **pp, int maxdigits, int *out)
{
    const char *p = *pp;
    int v = 0, n = 0;
    while (*p >= '0' && *p <= '9' && n < maxdigits) {
        v = v * 10 + (*p - '0');
        p++;
        n++;
    }
    if (n == 0 || (*p >= '0' && *p <= '9'))
        return false;
    *pp = p;
    *out = v;
    return true;
}

/* [+|-]h[h...][:mm[:ss]] with hours up to maxh; seconds into *out. */
static bool tzs_hms(const char **pp, int maxh, int32_t *out)
{
    const char *p = *pp;
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    int h, mi = 0, s = 0;
    if (!tzs_number(&p, maxh > 99 ? 3 : 2, &h) || h > maxh)
        return false;
    if (*p == ':') {
        p++;
        if (!tzs_number(&p, 2, &mi) || mi > 59)
            return false;
        if (*p == ':') {
            p++;
            if (!tzs_number(&p, 2, &s) || s > 59)
                return false;
        }
    }
    *pp = p;
    *out = sign * (h * 3600 + mi * 60 + s);
    return true;
}

/* A zone abbreviation: three or more letters, or <...> of letters, digits, + and -. */
static bool tzs_abbr(const char **pp)
{
    const char *p = *pp, *start;
    if (*p == '<') {
        start = ++p;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
               *p == '+' || *p == '-')
            p++;
        if (*p != '>' || p - start < 3)
            return false;
        *pp = p + 1;
        return true;
    }
    start = p;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    if (p - start < 3)
        return false;
    *pp = p;
    return true;
}

static bool tzs_rule(const char **pp, struct tz_rule *r)
{
    const char *p = *pp;
    if (*p == 'J') {
        p++;
        r->kind = 'J';
        if (!tzs_number(&p, 3, &r->day) || r->day < 1 || r->day > 365)
            return false;
    } else if (*p == 'M') {
        p++;
        r->kind = 'M';
        if (!tzs_number(&p, 2, &r->month) || r->month < 1 || r->month > 12 || *p++ != '.')
            return false;
        if (!tzs_number(&p, 1, &r->week) || r->week < 1 || r->week > 5 || *p++ != '.')
            return false;
        if (!tzs_number(&p, 1, &r->day) || r->day > 6)
            return false;
    } else {
        r->kind = 'D';
        if (!tzs_number(&p, 3, &r->day) || r->day > 365)
            return false;
    }
    r->time = 7200; /* POSIX default: 02:00 */
    if (*p == '/') {
        p++;
        if (!tzs_hms(&p, TZ_RULE_MAXHOUR, &r->time))
            return false;
    }
    *pp = p;
    return true;
}

/* std offset [dst [offset] ,start[/time],end[/time]] into tz. */
static bool parse_tz_string(const char *s, struct nova__tz *tz)
{
    const char *p = s;
    int32_t v;
    if (!tzs_abbr(&p) || !tzs_hms(&p, 24, &v))
        return false;
    tz->std_off = -v;
    tz->has_rule = true;
    if (*p == '\0')
        return true;
    if (!tzs_abbr(&p))
        return false;
    tz->dst_off = tz->std_off + 3600;
    if (*p != ',') {
        if (!tzs_hms(&p, 24, &v))
            return false;
        tz->dst_off = -v;
    }
    /* TZif footers always carry the rule when they name DST (RFC 8536). */
    if (*p++ != ',' || !tzs_rule(&p, &tz->start) || *p++ != ',' || !tzs_rule(&p, &tz->end))
        return false;
    tz->has_dst = true;
    return *p == '\0';
}

/* ---- TZif --------------------------------------------------------------- */

struct tzif_header {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool read_header(const uint8_t *p, size_t len, struct tzif_header *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return false;
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return true;
}

/* Bytes of the data block after a header, or 0 when the counts are absurd. */
static size_t block_size(const struct tzif_header *h, size_t timesize)
{
    if (h->timecnt > TZ_MAX_TIMES || h->typecnt > 256 || h->charcnt > 65536 ||
        h->leapcnt > TZ_MAX_TIMES || h->isutcnt > 256 || h->isstdcnt > 256)
        return 0;
    return (size_t)h->timecnt * (timesize + 1) + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (timesize + 4) + h->isstdcnt + h->isutcnt;
}

/* Parses the zone file in buf into tz; a reason into why on failure. */
static int parse_tzif(const uint8_t *buf, size_t len, struct nova__tz *tz, const char **why)
{
    struct tzif_header h;
    if (!read_header(buf, len, &h)) {
        *why = "not a TZif file";
        return -EINVAL;
    }
    uint8_t version = buf[4];
    if (version != 0 && (version < '2' || version > '9')) {
        *why = "unknown TZif version";
        return -EINVAL;
    }
    size_t timesize = 4;
    const uint8_t *p = buf + 44;
    size_t left = len - 44;
    size_t size = block_size(&h, 4);
    if (size == 0 && h.typecnt != 0) {
        *why = "implausible counts in the TZif header";
        return -EINVAL;
    }
    if (version != 0) {
        /* Skip the 32-bit block; the 64-bit header and block follow. */
        if (size > left || !read_header(p + size, left - size, &h)) {
            *why = "truncated TZif file (version 2+ header)";
            return -EINVAL;
        }
        p += size + 44;
        left -= size + 44;
        timesize = 8;
        size = block_size(&h, 8);
    }
    if (h.typecnt == 0) {
        *why = "TZif file has no local time types";
        return -EINVAL;
    }
    if (size == 0) {
        *why = "implausible counts in the TZif header";
        return -EINVAL;
    }
    if ((h.isutcnt != 0 && h.isutcnt != h.typecnt) ||
        (h.isstdcnt != 0 && h.isstdcnt != h.typecnt)) {
        *why = "inconsistent counts in the TZif header";
        return -EINVAL;
    }
    if (h.leapcnt != 0) {
        *why = "the file has leap-second records (a \"right/\" zone); use the plain zone";
        return -EINVAL;
    }
    if (size > left) {
        *why = "truncated TZif file";
        return -EINVAL;
    }
    tz->ntimes = h.timecnt;
    tz->ntypes = h.typecnt;
    tz->times = malloc(sizeof *tz->times * (h.timecnt ? h.timecnt : 1));
    tz->idx = malloc(h.timecnt ? h.timecnt : 1);
    tz->type_off = malloc(sizeof *tz->type_off * h.typecnt);
    if (tz->times == NULL || tz->idx == NULL || tz->type_off == NULL) {
        *why = "out of memory";
        return -ENOMEM;
    }
    const uint8_t *q = p;
    for (size_t i = 0; i < h.timecnt; i++, q += timesize) {
        tz->times[i] = timesize == 8 ? be64(q) : (int64_t)(int32_t)be32(q);
        if (i > 0 && tz->times[i] <= tz->times[i - 1]) {
            *why = "transition times are not in ascending order";
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < h.timecnt; i++, q++) {
        if (*q >= h.typecnt) {
            *why = "a transition names a local time type that does not exist";
            return -EINVAL;
        }
        tz->idx[i] = *q;
    }
    for (size_t i = 0; i < h.typecnt; i++, q += 6) {
        int32_t off = (int32_t)be32(q);
        if (off < -TZ_MAX_OFFSET || off > TZ_MAX_OFFSET) {
            *why = "a UTC offset is out of range";
            return -EINVAL;
        }
        tz->type_off[i] = off;
    }
    p += size;
    left -= size;
    if (version == 0)
        return 0;

    /* Footer: "\n<POSIX TZ string>\n"; empty when no rule applies. */
    if (left < 2 || p[0] != '\n') {
        *why = "missing TZ string footer";
        return -EINVAL;
    }
    const uint8_t *nl = memchr(p + 1, '\n', left - 1);
    if (nl == NULL || (size_t)(nl - p) > 256) {
        *why = "malformed TZ string footer";
        return -EINVAL;
    }
    char footer[257];
    size_t flen = (size_t)(nl - p) - 1;
    memcpy(footer, p + 1, flen);
    footer[flen] = '\0';
    if (flen == 0)
        return 0;
    if (memchr(footer, '\0', flen) != NULL || !parse_tz_string(footer, tz)) {
        *why = "cannot parse the TZ string footer";
        return -EINVAL;
    }
    if (tz->std_off < -TZ_MAX_OFFSET || tz->std_off > TZ_MAX_OFFSET ||
        tz->dst_off < -TZ_MAX_OFFSET || tz->dst_off > TZ_MAX_OFFSET) {
        *why = "a UTC offset in the TZ string footer is out of range";
        return -EINVAL;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------ */

static bool is_utc_name(const char *name)
{
    return name == NULL || name[0] == '\0' || strcmp(name, "UTC") == 0 ||
           strcmp(name, "Etc/UTC") == 0;
}

static int check_name(const char *name, char *err, size_t errlen)
{
    size_t len = strlen(name);
    if (len > TZ_MAX_NAME) {
        set_err(err, errlen, "time zone name is longer than %d bytes", TZ_MAX_NAME);
        return -EINVAL;
    }
    if (name[0] == '/') {
        set_err(err, errlen,
                "time zone \"%s\": absolute paths are not allowed; use an IANA name such as "
                "\"Europe/Paris\"",
                name);
        return -EINVAL;
    }
    for (const char *c = name; *c; c++) {
        bool ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= '0' && *c <= '9') || strchr("/_+-.", *c) != NULL;
        if (!ok) {
            char shown[TZ_MAX_NAME + 1];
            for (size_t i = 0; i <= len; i++) {
                unsigned char b = (unsigned char)name[i];
                shown[i] = i < len && (b < 0x20 || b > 0x7e) ? '?' : name[i];
            }
            set_err(err, errlen, "time zone \"%s\": character 0x%02x is not allowed in a name",
                    shown, (unsigned char)*c);
            return -EINVAL;
        }
    }
    for (const char *c = name; c != NULL;) {
        const char *slash = strchr(c, '/');
        size_t n = slash ? (size_t)(slash - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.') {
            set_err(err, errlen, "time zone \"%s\": \"..\" is not allowed in a zone name", name);
            return -EINVAL;
        }
        c = slash ? slash + 1 : NULL;
    }
    return 0;
}

/* Reads the whole regular file at path into a malloc'd buffer. */
static int read_file(const char *path, uint8_t **out, size_t *outlen, const char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        *why = e == ENOENT || e == ENOTDIR ? "no such zone" : strerror(e);
        return e == ENOTDIR ? -ENOENT : -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *why = "not a zone file";
        return -EINVAL;
    }
    if (st.st_size > TZ_MAX_FILE) {
        close(fd);
        *why = "file too large for a zone file";
        return -EINVAL;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        *why = "out of memory";
        return -ENOMEM;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            *why = strerror(e);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap) {
            /* The file grew since fstat: accept it only up to the limit. */
            if (cap > TZ_MAX_FILE) {
                free(buf);
                close(fd);
                *why = "file too large for a zone file";
                return -EINVAL;
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                close(fd);
                *why = "out of memory";
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
    }
    close(fd);
    *out = buf;
    *outlen = len;
    return 0;
}

int nova__tz_load(const char *name, struct nova__tz **out, char *err, size_t errlen)
{
    *out = NULL;
    struct nova__tz *tz = calloc(1, sizeof *tz);
    if (tz == NULL) {
        set_err(err, errlen, "time zone: out of memory");
        return -ENOMEM;
    }
    if (is_utc_name(name)) {
        tz->name = strdup(name == NULL || name[0] == '\0' ? "UTC" : name);
        tz->ntypes = 1;
        tz->type_off = calloc(1, sizeof *tz->type_off);
        if (tz->name == NULL || tz->type_off == NULL) {
            nova__tz_free(tz);
            set_err(err, errlen, "time zone: out of memory");
            return -ENOMEM;
        }
        *out = tz;
        return 0;
    }
    int rc = check_name(name, err, errlen);
    if (rc != 0) {
        free(tz);
        return rc;
    }
    const char *dir = getenv("TZDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = NOVA__TZ_DEFAULT_DIR;
    size_t plen = strlen(dir) + strlen(name) + 2;
    char *path = malloc(plen);
    tz->name = strdup(name);
    if (path == NULL || tz->name == NULL) {
        free(path);
        nova__tz_free(tz);
        set_err(err, errlen, "time zone: out of memory");
        return -ENOMEM;
    }
    snprintf(path, plen, "%s/%s", dir, name);
    uint8_t *buf = NULL;
    size_t len = 0;
    const char *why = NULL;
    rc = read_file(path, &buf, &len, &why);
    if (rc == 0) {
        rc = parse_tzif(buf, len, tz, &why);
        free(buf);
    }
    if (rc != 0) {
        if (rc == -ENOENT)
            set_err(err, errlen, "time zone \"%s\": unknown zone (no file %s)", name, path);
        else
            set_err(err, errlen, "time zone \"%s\": %s: %s", name, path, why);
        free(path);
        nova__tz_free(tz);
        return rc;
    }
    free(path);
    *out = tz;
    return 0;
}
