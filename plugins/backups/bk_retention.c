/*
 * bk_retention - the retention rule and backup names; see bk_retention.h.
 */
#include "bk_retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000LL

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm), so
 * that no libc time zone state is involved. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

enum period { P_DAY, P_WEEK, P_MONTH };

static int64_t period_of(int64_t time_ms, enum period p)
{
    int64_t day = floor_div(time_ms, DAY_MS);
    switch (p) {
    case P_DAY:
        return day;
    case P_WEEK:
        /* 1970-01-01 was a Thursday: +3 makes weeks start on Monday */
        return floor_div(day + 3, 7);
    case P_MONTH: {
        int64_t y;
        unsigned m, d;
        civil_from_days(day, &y, &m, &d);
        return y * 12 + (int64_t)m - 1;
    }
    }
    return day;
}

static int by_time_desc(const void *a, const void *b)
{
    const struct bk_item *x = *(const struct bk_item *const *)a;
    const struct bk_item *y = *(const struct bk_item *const *)b;
    return x->time_ms < y->time_ms ? 1 : x->time_ms > y->time_ms ? -1 : 0;
}

/* Walks from the newest: the first non-failed item of each new period is
 * that period's newest; the first `count` periods keep theirs. */
static void keep_periods(struct bk_item **sorted, size_t n, enum period p, int64_t count,
                         unsigned why)
{
    int64_t taken = 0, last = 0;
    bool any = false;
    for (size_t i = 0; i < n && taken < count; i++) {
        if (sorted[i]->state == BK_FAILED)
            continue;
        int64_t key = period_of(sorted[i]->time_ms, p);
        if (any && key == last)
            continue;
        any = true;
        last = key;
        sorted[i]->why |= why;
        taken++;
    }
}

size_t bk_retention_plan(struct bk_item *items, size_t n, const struct bk_policy *policy)
{
    if (n == 0)
        return 0;
    struct bk_item **sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL) {
        /* Without memory to decide, deleting nothing is the safe answer. */
        for (size_t i = 0; i < n; i++)
            items[i].keep = true;
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].why = 0;
        sorted[i] = &items[i];
    }
    qsort(sorted, n, sizeof *sorted, by_time_desc);

    int64_t last = 0;
    bool newest = false, verified = false;
    for (size_t i = 0; i < n; i++) {
        struct bk_item *it = sorted[i];
        if (it->state == BK_FAILED)
            continue;
        if (!newest) {
            it->why |= BK_WHY_NEWEST;
            newest = true;
        }
        if (!verified && it->state == BK_VERIFIED) {
            it->why |= BK_WHY_VERIFIED;
            verified = true;
        }
        if (last < policy->keep_last) {
            it->why |= BK_WHY_LAST;
            last++;
        }
    }
    keep_periods(sorted, n, P_DAY, policy->keep_daily, BK_WHY_DAILY);
    keep_periods(sorted, n, P_WEEK, policy->keep_weekly, BK_WHY_WEEKLY);
    keep_periods(sorted, n, P_MONTH, policy->keep_monthly, BK_WHY_MONTHLY);
    free(sorted);

    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].keep = items[i].why != 0;
        kept += items[i].keep;
    }
    return kept;
}

void bk_name_make(char *out, size_t outlen, const char *db, int64_t time_ms)
{
    char clean[64];
    size_t k = 0;
    for (const char *p = db != NULL && db[0] != '\0' ? db : "db"; *p != '\0' && k < 63; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        clean[k++] = ok ? c : '_';
    }
    clean[k] = '\0';
    int64_t secs = floor_div(time_ms, 1000);
    int64_t day = floor_div(secs, 86400), sod = secs - day * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(out, outlen, "nova-%s-%04lld%02u%02uT%02d%02d%02dZ", clean, (long long)y, m, d,
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
}

int64_t bk_name_time(const char *name)
{
    size_t len = strlen(name);
    /* "nova-" + at least one character + "-" + 16 */
    if (len < 5 + 1 + 1 + 16 || len >= BK_NAME_MAX || strncmp(name, "nova-", 5) != 0)
        return -1;
    const char *t = name + len - 16;
    if (t[-1] != '-' || t[8] != 'T' || t[15] != 'Z')
        return -1;
    for (const char *p = name + 5; p < t - 1; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return -1;
    }
    int v[14];
    static const int pos[14] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14};
    for (int i = 0; i < 14; i++) {
        char c = t[pos[i]];
        if (c < '0' || c > '9')
            return -1;
        v[i] = c - '0';
    }
    int64_t y = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3];
    unsigned mo = (unsigned)(v[4] * 10 + v[5]), d = (unsigned)(v[6] * 10 + v[7]);
    int h = v[8] * 10 + v[9], mi = v[10] * 10 + v[11], s = v[12] * 10 + v[13];
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59)
        return -1;
    int64_t days = days_from_civil(y, mo, d);
    /* reject dates like Feb 30 that do not round-trip */
    int64_t yy;
    unsigned mm, dd;
    civil_from_days(days, &yy, &mm, &dd);
    if (yy != y || mm != mo || dd != d)
        return -1;
    return ((days * 86400) + h * 3600 + mi * 60 + s) * 1000;
}

void bk_iso_time(char *out, size_t outlen, int64_t time_ms)
{
    int64_t secs = floor_div(time_ms, 1000);
    int64_t day = floor_div(secs, 86400), sod = secs - day * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(out, outlen, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60));
}
