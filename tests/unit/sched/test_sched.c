/*
 * Unit tests of runtime/sched: time zones (tz.c) and schedule specs and
 * slots (sched.c).
 *
 * Expected instants are written by hand as UTC civil times, converted by
 * glibc's timegm() (not by the code under test); each comment says which
 * local time it is and why. Zone facts used: Europe/Paris is UTC+1 (CET)
 * and UTC+2 (CEST) from the last Sunday of March 01:00 UTC to the last
 * Sunday of October 01:00 UTC; America/New_York is UTC-5 (EST) and UTC-4
 * (EDT) from the second Sunday of March 02:00 local to the first Sunday of
 * November 02:00 local; Australia/Sydney is UTC+10 (AEST) and UTC+11
 * (AEDT) from the first Sunday of October 02:00 local to the first Sunday
 * of April 03:00 local; Asia/Kolkata is UTC+5:30 all year.
 */
#include "config.h"
#include "sched/sched.h"
#include "sched/tz.h"
#include "unit/testutil.h"

#include <errno.h>
#include <time.h>

/* Unix ms of a UTC civil time, by glibc. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm) * 1000;
}

static const char *iso(int64_t ms, char *buf, size_t len)
{
    if (ms < 0 && ms % 1000 != 0) {
        snprintf(buf, len, "%lld", (long long)ms);
        return buf;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

static void parse_ok(const char *spec, const char *tz, struct nova__sched *s)
{
    char err[NOVA__SCHED_ERRMAX] = "";
    int rc = nova__sched_parse(spec, tz, s, err, sizeof err);
    ck_assert_msg(rc == 0, "\"%s\" [%s]: %s", spec, tz ? tz : "UTC", err);
}

/* The next n slots after `after` must be want[0..n). */
static void expect_slots(const char *spec, const char *tz, int64_t after, const int64_t *want,
                         size_t n)
{
    struct nova__sched s;
    parse_ok(spec, tz, &s);
    int64_t got[32];
    ck_assert_uint_le(n, 32);
    size_t k = nova__sched_next_n(&s, after, got, n);
    char a[40], b[40], c[40];
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(i < k, "\"%s\" [%s] after %s: only %zu slots, want %s next", spec,
                      tz ? tz : "UTC", iso(after, a, sizeof a), k, iso(want[i], b, sizeof b));
        ck_assert_msg(got[i] == want[i], "\"%s\" [%s] after %s: slot %zu is %s, want %s", spec,
                      tz ? tz : "UTC", iso(after, a, sizeof a), i, iso(got[i], b, sizeof b),
                      iso(want[i], c, sizeof c));
    }
    nova__sched_free(&s);
}

#define SLOTS(...)  ((const int64_t[]){__VA_ARGS__})
#define NSLOTS(...) (sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define EXPECT(spec, tz, after, ...)                                                               \
    expect_slots(spec, tz, after, SLOTS(__VA_ARGS__), NSLOTS(__VA_ARGS__))

static int64_t next_of(const char *spec, const char *tz, int64_t after)
{
    struct nova__sched s;
    parse_ok(spec, tz, &s);
    int64_t t = nova__sched_next(&s, after);
    nova__sched_free(&s);
    return t;
}

/* ---- parse errors ------------------------------------------------------- */

static const struct {
    const char *spec;
    const char *msg;
} bad_specs[] = {
    {"", "empty schedule spec"},
    {"   ", "empty schedule spec"},
    {"every", "every: missing duration (e.g. \"every 5m\")"},
    {"every 500ms", "every: 500ms is below the minimum of 1000 ms (1s)"},
    {"every 999ms", "every: 999ms is below the minimum of 1000 ms (1s)"},
    {"every 0s", "every: 0s is below the minimum of 1000 ms (1s)"},
    {"every 5x", "every: \"5x\": unknown unit; use ms, s, m, h or d (e.g. \"every 5m\")"},
    {"every 5M", "every: \"5M\": unknown unit; use ms, s, m, h or d (e.g. \"every 5m\")"},
    {"every 5", "every: 5 has no unit; use ms, s, m, h or d (e.g. \"every 5m\")"},
    {"every five", "every: \"five\" is not a duration: expected a whole number and a unit (ms, "
                   "s, m, h, d), e.g. \"every 5m\""},
    {"every 1.5h", "every: \"1.5h\": unknown unit; use ms, s, m, h or d (e.g. \"every 5m\")"},
    {"every 5m now", "every: unexpected \"now\" after the duration"},
    {"every 3651d", "every: 3651d is above the maximum of 3650d"},
    {"* * * *", "cron line has 4 fields; expected 5 (minute hour day-of-month month day-of-week) "
                "or 6 (second first)"},
    {"0 0 0 * * * *", "cron line has 7 fields; expected 5 (minute hour day-of-month month "
                      "day-of-week) or 6 (second first)"},
    {"0 24 * * *", "cron field 2 (hour): 24 is out of range 0-23"},
    {"60 * * * *", "cron field 1 (minute): 60 is out of range 0-59"},
    {"60 0 * * * *", "cron field 1 (second): 60 is out of range 0-59"},
    {"0 0 24 * * *", "cron field 3 (hour): 24 is out of range 0-23"},
    {"0 0 0 * *", "cron field 3 (day-of-month): 0 is out of range 1-31"},
    {"0 0 32 * *", "cron field 3 (day-of-month): 32 is out of range 1-31"},
    {"0 0 * 13 *", "cron field 4 (month): 13 is out of range 1-12"},
    {"0 0 * 0 *", "cron field 4 (month): 0 is out of range 1-12"},
    {"0 0 * * 8", "cron field 5 (day-of-week): 8 is out of range 0-7"},
    {"0 0 * * 1-99999999", "cron field 5 (day-of-week): 99999999 is out of range 0-7"},
    {"0 0 L * *", "cron field 3 (day-of-month): \"L\" (last) is not supported"},
    {"0 0 15W * *", "cron field 3 (day-of-month): \"W\" (nearest weekday) is not supported"},
    {"0 0 LW * *", "cron field 3 (day-of-month): \"L\" (last) is not supported"},
    {"0 0 * * 5L", "cron field 5 (day-of-week): \"L\" (last) is not supported"},
    {"0 0 * * 5#3", "cron field 5 (day-of-week): \"#\" (nth weekday) is not supported"},
    {"0 0 ? * mon", "cron field 3 (day-of-month): \"?\" is not supported; use \"*\""},
    {"0 0 * * ?", "cron field 5 (day-of-week): \"?\" is not supported; use \"*\""},
    {"0 0 * * fri-mon", "cron field 5 (day-of-week): range \"fri-mon\" is backwards (5 > 1)"},
    {"30-10 * * * *", "cron field 1 (minute): range \"30-10\" is backwards (30 > 10)"},
    {"*/0 * * * *", "cron field 1 (minute): step 0 is out of range 1-59"},
    {"*/60 * * * *", "cron field 1 (minute): step 60 is out of range 1-59"},
    {"0 */x * * *", "cron field 2 (hour): step \"x\" is not a number"},
    {"0 */ * * *", "cron field 2 (hour): step \"\" is not a number"},
    {"1,,2 * * * *", "cron field 1 (minute): empty list item in \"1,,2\""},
    {"1, * * * *", "cron field 1 (minute): empty list item in \"1,\""},
    {"0 0 * foo *", "cron field 4 (month): \"foo\" is not a month name (jan..dec)"},
    {"0 0 * january *", "cron field 4 (month): \"january\" is not a month name (jan..dec)"},
    {"0 0 * * funday", "cron field 5 (day-of-week): \"funday\" is not a weekday name (sun..sat)"},
    {"0 mon * * *", "cron field 2 (hour): \"mon\" is not a number (names are allowed in month and "
                    "day-of-week only)"},
    {"*-5 * * * *", "cron field 1 (minute): unexpected character '-'"},
    {"1-5-7 * * * *", "cron field 1 (minute): unexpected character '-'"},
    {"1/2/3 * * * *", "cron field 1 (minute): unexpected character '/'"},
    {"0 0 * * 1-", "cron field 5 (day-of-week): missing value"},
    {"0 0 1 1 * extra", "cron field 6 (day-of-week): \"extra\" is not a weekday name (sun..sat)"},
    {"@daily", "\"@daily\": cron shortcuts are not supported; write the fields (e.g. \"0 0 * * "
               "*\")"},
    {"0 0 * * \x01", "schedule spec: unexpected byte 0x01 at column 9"},
    {"0 0 * * mon\xc3\xa9", "schedule spec: unexpected byte 0xc3 at column 12"},
    {"every 5m\x7f", "schedule spec: unexpected byte 0x7f at column 9"},
};

START_TEST(parse_errors_name_what_is_wrong)
{
    struct nova__sched s;
    char err[NOVA__SCHED_ERRMAX] = "";
    int rc = nova__sched_parse(bad_specs[_i].spec, NULL, &s, err, sizeof err);
    ck_assert_msg(rc == -EINVAL, "\"%s\": rc %d", bad_specs[_i].spec, rc);
    ck_assert_str_eq(err, bad_specs[_i].msg);
    ck_assert_ptr_null(s.tz);
    nova__sched_free(&s); /* harmless after an error */
    ck_assert_int_eq(nova__sched_next(&s, 0), -1);
}
END_TEST

START_TEST(parse_limits_and_fields)
{
    struct nova__sched s;
    char err[NOVA__SCHED_ERRMAX];
    char longspec[200];
    memset(longspec, '*', sizeof longspec - 1);
    longspec[sizeof longspec - 1] = '\0';
    ck_assert_int_eq(nova__sched_parse(longspec, NULL, &s, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "schedule spec is longer than 127 characters");
    ck_assert_int_eq(nova__sched_parse(NULL, NULL, &s, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "empty schedule spec");
    /* A tiny or missing buffer truncates, never overflows. */
    char tiny[8];
    ck_assert_int_eq(nova__sched_parse("0 24 * * *", NULL, &s, tiny, sizeof tiny), -EINVAL);
    ck_assert_str_eq(tiny, "cron fi");
    ck_assert_int_eq(nova__sched_parse("0 24 * * *", NULL, &s, NULL, 0), -EINVAL);

    /* Every kind of field syntax lands in the bit sets. */
    parse_ok("  5,10-12,20-40/10,50/5  0-23/6  */10  jan,MAR-may/2  Mon-FRI  ", NULL, &s);
    ck_assert_int_eq(s.kind, NOVA__SCHED_CRON);
    ck_assert_uint_eq(s.sec, 1); /* 5 fields: second 0 */
    uint64_t want_min = (1ull << 5) | (1ull << 10) | (1ull << 11) | (1ull << 12) | (1ull << 20) |
                        (1ull << 30) | (1ull << 40) | (1ull << 50) | (1ull << 55);
    ck_assert_uint_eq(s.min, want_min);
    ck_assert_uint_eq(s.hour, (1u << 0) | (1u << 6) | (1u << 12) | (1u << 18));
    ck_assert_uint_eq(s.dom, (1u << 1) | (1u << 11) | (1u << 21) | (1u << 31));
    ck_assert_uint_eq(s.mon, (1u << 1) | (1u << 3) | (1u << 5));
    ck_assert_uint_eq(s.dow, 0x3e); /* Monday..Friday */
    ck_assert(!s.dow_any);
    ck_assert_uint_eq(s.dom_any, 0);
    ck_assert_str_eq(s.spec, "  5,10-12,20-40/10,50/5  0-23/6  */10  jan,MAR-may/2  Mon-FRI  ");
    ck_assert_str_eq(nova__tz_name(s.tz), "UTC");
    nova__sched_free(&s);
    ck_assert_ptr_null(s.tz);

    parse_ok("*/15 0 12 * * sun,7", "", &s);
    ck_assert_uint_eq(s.sec, (1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45));
    ck_assert_uint_eq(s.dow, 1); /* 7 is Sunday, 0 */
    ck_assert(s.dow_any == false);
    ck_assert_uint_eq(s.dom_any, 0x1ffe); /* "*": every month */
    nova__sched_free(&s);

    parse_ok("0 0 * * *", "Etc/UTC", &s);
    ck_assert_str_eq(nova__tz_name(s.tz), "Etc/UTC");
    ck_assert(s.dow_any);
    nova__sched_free(&s);

    /* Any white space separates; a trailing newline is harmless. */
    parse_ok("0\t0 * * *\n", NULL, &s);
    ck_assert_uint_eq(s.hour, 1);
    nova__sched_free(&s);
    ck_assert_int_eq(nova__sched_next(&s, 0), -1); /* freed: no zone, no slot */

    parse_ok("EVERY  90s ", "Europe/Paris", &s);
    ck_assert_int_eq(s.kind, NOVA__SCHED_EVERY);
    ck_assert_int_eq(s.every_ms, 90000);
    ck_assert_str_eq(nova__tz_name(s.tz), "Europe/Paris");
    nova__sched_free(&s);
}
END_TEST

START_TEST(timezone_names_are_checked)
{
    unsetenv("TZDIR");
    struct nova__sched s;
    char err[NOVA__SCHED_ERRMAX];
    static const struct {
        const char *tz;
        int rc;
        const char *msg;
    } cases[] = {
        {"Mars/Olympus", -ENOENT,
         "time zone \"Mars/Olympus\": unknown zone (no file /usr/share/zoneinfo/Mars/Olympus)"},
        {"../etc/passwd", -EINVAL,
         "time zone \"../etc/passwd\": \"..\" is not allowed in a zone name"},
        {"Europe/../../etc/passwd", -EINVAL,
         "time zone \"Europe/../../etc/passwd\": \"..\" is not allowed in a zone name"},
        {"Europe/..", -EINVAL, "time zone \"Europe/..\": \"..\" is not allowed in a zone name"},
        {"/etc/localtime", -EINVAL,
         "time zone \"/etc/localtime\": absolute paths are not allowed; use an IANA name such as "
         "\"Europe/Paris\""},
        {"Europe/Paris ", -EINVAL,
         "time zone \"Europe/Paris \": character 0x20 is not allowed in a name"},
        {"Europe/Paris\n", -EINVAL,
         "time zone \"Europe/Paris?\": character 0x0a is not allowed in a name"},
        {"Europe", -EINVAL, "time zone \"Europe\": /usr/share/zoneinfo/Europe: not a zone file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        int rc = nova__sched_parse("0 0 * * *", cases[i].tz, &s, err, sizeof err);
        ck_assert_msg(rc == cases[i].rc, "%s: rc %d", cases[i].tz, rc);
        ck_assert_str_eq(err, cases[i].msg);
        ck_assert_ptr_null(s.tz);
    }
    /* "every" ignores its zone but still validates it. */
    ck_assert_int_eq(nova__sched_parse("every 5m", "Mars/Olympus", &s, err, sizeof err), -ENOENT);
    ck_assert_str_eq(err, "time zone \"Mars/Olympus\": unknown zone (no file "
                          "/usr/share/zoneinfo/Mars/Olympus)");
    /* A spec error is reported before the zone's. */
    ck_assert_int_eq(nova__sched_parse("0 24 * * *", "Mars/Olympus", &s, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "cron field 2 (hour): 24 is out of range 0-23");

    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    struct nova__tz *tz;
    ck_assert_int_eq(nova__tz_load(longname, &tz, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "time zone name is longer than 255 bytes");
    ck_assert_ptr_null(tz);
}
END_TEST

/* ---- every -------------------------------------------------------------- */

START_TEST(every_counts_from_the_epoch)
{
    EXPECT("every 5m", NULL, 0, 300000, 600000, 900000);
    EXPECT("every 5m", NULL, 299999, 300000);
    EXPECT("every 5m", NULL, 300000, 600000); /* strictly after */
    /* 1700000000123 / 300000 = 5666666.67: the next multiple is 5666667 * 300000. */
    EXPECT("every 5m", NULL, 1700000000123LL, 1700000100000LL, 1700000400000LL);
    EXPECT("every 1500ms", NULL, 1000, 1500, 3000, 4500);
    EXPECT("every 1000ms", NULL, 1, 1000, 2000);
    EXPECT("every 2s", NULL, -1, 0, 2000);
    EXPECT("every 2s", NULL, -2001, -2000, 0);
    EXPECT("every 2h", NULL, utc(2025, 3, 30, 0, 59, 0), utc(2025, 3, 30, 2, 0, 0));
    /* Whole days in UTC whatever the zone: "every" ignores it. */
    EXPECT("every 1d", "Europe/Paris", utc(2025, 3, 30, 12, 0, 0), utc(2025, 3, 31, 0, 0, 0),
           utc(2025, 4, 1, 0, 0, 0));
    EXPECT("every 3650d", NULL, 0, 3650LL * 86400000);
}
END_TEST

/* ---- cron in UTC -------------------------------------------------------- */

START_TEST(cron_month_ends_skip_short_months)
{
    /* The 31st: no such day in February, April, June, September, November. */
    EXPECT("0 0 31 * *", NULL, utc(2025, 1, 31, 0, 0, 0), utc(2025, 3, 31, 0, 0, 0),
           utc(2025, 5, 31, 0, 0, 0), utc(2025, 7, 31, 0, 0, 0), utc(2025, 8, 31, 0, 0, 0),
           utc(2025, 10, 31, 0, 0, 0), utc(2025, 12, 31, 0, 0, 0), utc(2026, 1, 31, 0, 0, 0));
    /* The 29th: February 2025 has 28 days. */
    EXPECT("0 0 29 * *", NULL, utc(2025, 1, 29, 0, 0, 0), utc(2025, 3, 29, 0, 0, 0),
           utc(2025, 4, 29, 0, 0, 0));
    /* The 30th and 31st of every month, at 23:59:59 (6 fields). */
    EXPECT("59 59 23 30,31 * *", NULL, utc(2024, 1, 31, 12, 0, 0), utc(2024, 1, 31, 23, 59, 59),
           utc(2024, 3, 30, 23, 59, 59), utc(2024, 3, 31, 23, 59, 59),
           utc(2024, 4, 30, 23, 59, 59));
}
END_TEST

START_TEST(cron_feb_29_fires_in_leap_years_only)
{
    EXPECT("0 12 29 2 *", NULL, utc(2023, 3, 1, 0, 0, 0), utc(2024, 2, 29, 12, 0, 0),
           utc(2028, 2, 29, 12, 0, 0), utc(2032, 2, 29, 12, 0, 0));
    /* 2100 is not a leap year; 2104 is more than 5 years after 2096-03-01. */
    ck_assert_int_eq(next_of("0 12 29 2 *", NULL, utc(2096, 3, 1, 0, 0, 0)), -1);
    ck_assert_int_eq(next_of("0 12 29 2 *", NULL, utc(2099, 3, 1, 0, 0, 0)),
                     utc(2104, 2, 29, 12, 0, 0));
}
END_TEST

START_TEST(cron_day_of_month_or_day_of_week)
{
    /* cron(5)'s example: 08:30 on the 1st and 15th, plus every Friday.
     * 2025-08-01 is a Friday: Fridays 1, 8, 15, 22, 29; September 1 is a
     * Monday, 5, 12, 19 are Fridays, 15 a Monday. */
    EXPECT("30 8 1,15 * 5", NULL, utc(2025, 7, 31, 12, 0, 0), utc(2025, 8, 1, 8, 30, 0),
           utc(2025, 8, 8, 8, 30, 0), utc(2025, 8, 15, 8, 30, 0), utc(2025, 8, 22, 8, 30, 0),
           utc(2025, 8, 29, 8, 30, 0), utc(2025, 9, 1, 8, 30, 0), utc(2025, 9, 5, 8, 30, 0),
           utc(2025, 9, 12, 8, 30, 0), utc(2025, 9, 15, 8, 30, 0), utc(2025, 9, 19, 8, 30, 0));
    /* The 13th or a Friday, not "Friday the 13th": June 2025 has Fridays
     * 6, 13, 20, 27; July 4, 11, 18 are Fridays and the 13th a Sunday. */
    EXPECT("0 0 13 * fri", NULL, utc(2025, 6, 1, 0, 0, 0), utc(2025, 6, 6, 0, 0, 0),
           utc(2025, 6, 13, 0, 0, 0), utc(2025, 6, 20, 0, 0, 0), utc(2025, 6, 27, 0, 0, 0),
           utc(2025, 7, 4, 0, 0, 0), utc(2025, 7, 11, 0, 0, 0), utc(2025, 7, 13, 0, 0, 0),
           utc(2025, 7, 18, 0, 0, 0));
    /* Only one restricted: only it counts. */
    EXPECT("0 0 13 * *", NULL, utc(2025, 6, 1, 0, 0, 0), utc(2025, 6, 13, 0, 0, 0),
           utc(2025, 7, 13, 0, 0, 0));
    EXPECT("0 0 * * fri", NULL, utc(2025, 6, 1, 0, 0, 0), utc(2025, 6, 6, 0, 0, 0),
           utc(2025, 6, 13, 0, 0, 0));
    /* Weekday 7 is Sunday like 0: 2025-08-03 and 08-10 are Sundays. */
    EXPECT("0 0 * * 7", NULL, utc(2025, 8, 1, 0, 0, 0), utc(2025, 8, 3, 0, 0, 0),
           utc(2025, 8, 10, 0, 0, 0));
    EXPECT("0 0 * * 0", NULL, utc(2025, 8, 1, 0, 0, 0), utc(2025, 8, 3, 0, 0, 0));
    /* A full weekday list that is not "*" still restricts (cron-parser
     * agrees): with 0-6 every day matches. */
    EXPECT("0 0 1 * 0-6", NULL, utc(2025, 8, 1, 0, 0, 0), utc(2025, 8, 2, 0, 0, 0),
           utc(2025, 8, 3, 0, 0, 0));
}
END_TEST

START_TEST(cron_follows_cron_parser_where_it_differs_from_cron5)
{
    /* cron-parser counts "1-30" in April (30 days) as unrestricted, so only
     * the Mondays fire: April 2026 has Mondays 6, 13, 20, 27, April 2027
     * 5, 12, 19, 26. (cron(5) would fire every day of April.) */
    EXPECT("0 0 1-30 4 mon", NULL, utc(2026, 1, 1, 0, 0, 0), utc(2026, 4, 6, 0, 0, 0),
           utc(2026, 4, 13, 0, 0, 0), utc(2026, 4, 20, 0, 0, 0), utc(2026, 4, 27, 0, 0, 0),
           utc(2027, 4, 5, 0, 0, 0));
    /* A weekday range ending at 7 with a step also holds Sunday: "2-7/2"
     * is Tuesday, Thursday, Saturday and Sunday. 2025-08-02 is a Saturday. */
    EXPECT("0 0 * * 2-7/2", NULL, utc(2025, 8, 1, 0, 0, 0), utc(2025, 8, 2, 0, 0, 0),
           utc(2025, 8, 3, 0, 0, 0), utc(2025, 8, 5, 0, 0, 0), utc(2025, 8, 7, 0, 0, 0),
           utc(2025, 8, 9, 0, 0, 0), utc(2025, 8, 10, 0, 0, 0));
}
END_TEST

START_TEST(cron_names_steps_and_seconds)
{
    /* Weekdays of January and July, any case. 2025-07-01 is a Tuesday,
     * 2026-01-01 a Thursday. */
    EXPECT("0 9 * jan,JUL Mon-FRI", NULL, utc(2025, 6, 30, 12, 0, 0), utc(2025, 7, 1, 9, 0, 0),
           utc(2025, 7, 2, 9, 0, 0), utc(2025, 7, 3, 9, 0, 0), utc(2025, 7, 4, 9, 0, 0),
           utc(2025, 7, 7, 9, 0, 0));
    EXPECT("0 9 * jan,JUL Mon-FRI", NULL, utc(2025, 7, 31, 10, 0, 0), utc(2026, 1, 1, 9, 0, 0),
           utc(2026, 1, 2, 9, 0, 0), utc(2026, 1, 5, 9, 0, 0));
    EXPECT("0 0 1 feb-dec/3 *", NULL, utc(2025, 1, 1, 0, 0, 0), utc(2025, 2, 1, 0, 0, 0),
           utc(2025, 5, 1, 0, 0, 0), utc(2025, 8, 1, 0, 0, 0), utc(2025, 11, 1, 0, 0, 0),
           utc(2026, 2, 1, 0, 0, 0));
    EXPECT("*/20 * * * *", NULL, utc(2025, 1, 1, 10, 5, 0), utc(2025, 1, 1, 10, 20, 0),
           utc(2025, 1, 1, 10, 40, 0), utc(2025, 1, 1, 11, 0, 0));
    EXPECT("5-50/15 * * * *", NULL, utc(2025, 1, 1, 10, 0, 0), utc(2025, 1, 1, 10, 5, 0),
           utc(2025, 1, 1, 10, 20, 0), utc(2025, 1, 1, 10, 35, 0), utc(2025, 1, 1, 10, 50, 0),
           utc(2025, 1, 1, 11, 5, 0));
    /* "a/n" runs to the field's end: 10, 35. */
    EXPECT("10/25 * * * *", NULL, utc(2025, 1, 1, 10, 0, 0), utc(2025, 1, 1, 10, 10, 0),
           utc(2025, 1, 1, 10, 35, 0), utc(2025, 1, 1, 11, 10, 0));
    /* Exactly on a slot: the next one (strictly after). */
    EXPECT("0 0-12/6 * * *", NULL, utc(2025, 1, 1, 0, 0, 0), utc(2025, 1, 1, 6, 0, 0),
           utc(2025, 1, 1, 12, 0, 0), utc(2025, 1, 2, 0, 0, 0));
    EXPECT("0 0-12/6 * * *", NULL, utc(2025, 1, 1, 6, 0, 0) - 1, utc(2025, 1, 1, 6, 0, 0));
    /* Six fields: seconds first; milliseconds in after round up. */
    EXPECT("*/10 * * * * *", NULL, utc(2025, 1, 1, 12, 0, 5) + 500, utc(2025, 1, 1, 12, 0, 10),
           utc(2025, 1, 1, 12, 0, 20), utc(2025, 1, 1, 12, 0, 30));
    EXPECT("30 0 12 * * *", NULL, utc(2025, 1, 1, 12, 0, 30), utc(2025, 1, 2, 12, 0, 30));
    EXPECT("30 0 12 * * *", NULL, utc(2025, 1, 1, 12, 0, 30) - 1, utc(2025, 1, 1, 12, 0, 30));
    EXPECT("* * * * * *", NULL, utc(2025, 12, 31, 23, 59, 59), utc(2026, 1, 1, 0, 0, 0),
           utc(2026, 1, 1, 0, 0, 1));
    /* New Year across a year end. */
    EXPECT("0 0 1 1 *", NULL, utc(2025, 6, 1, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0),
           utc(2027, 1, 1, 0, 0, 0));
    /* Before 1970. */
    EXPECT("0 0 1 1 *", NULL, utc(1969, 6, 1, 0, 0, 0), 0);
}
END_TEST

START_TEST(cron_that_never_fires_gives_minus_one)
{
    ck_assert_int_eq(next_of("0 0 30 2 *", NULL, utc(2025, 1, 1, 0, 0, 0)), -1);
    ck_assert_int_eq(next_of("0 0 31 4,6,9,11 *", "Europe/Paris", utc(2025, 1, 1, 0, 0, 0)), -1);
    struct nova__sched s;
    parse_ok("0 0 30 2 *", NULL, &s);
    int64_t out[3];
    ck_assert_uint_eq(nova__sched_next_n(&s, 0, out, 3), 0);
    nova__sched_free(&s);
    /* Outside the years 1-9999. */
    ck_assert_int_eq(next_of("* * * * *", NULL, 253402300800000LL), -1);
    ck_assert_int_eq(next_of("* * * * *", NULL, INT64_MIN), -1);
    ck_assert_int_eq(next_of("* * * * *", NULL, INT64_MAX), -1);
    /* The last minute of 9999 still has a slot. */
    ck_assert_int_eq(next_of("59 23 31 12 *", NULL, 253402300000000LL), 253402300740000LL);
}
END_TEST

/* ---- DST ---------------------------------------------------------------- */

START_TEST(dst_europe_paris)
{
    const char *z = "Europe/Paris";
    /* 2025-03-30: 02:00 CET jumps to 03:00 CEST at 01:00 UTC, so 02:30
     * does not exist that day; the next 02:30 is 03-31 02:30 CEST. */
    EXPECT("30 2 * * *", z, utc(2025, 3, 29, 12, 0, 0), utc(2025, 3, 31, 0, 30, 0),
           utc(2025, 4, 1, 0, 30, 0));
    /* 2025-10-26: 03:00 CEST falls back to 02:00 CET at 01:00 UTC; 02:30
     * happens at 00:30 UTC (CEST) and at 01:30 UTC (CET): fires once. */
    EXPECT("30 2 * * *", z, utc(2025, 10, 25, 12, 0, 0), utc(2025, 10, 26, 0, 30, 0),
           utc(2025, 10, 27, 1, 30, 0));
    /* Hourly across the spring gap: 01:00 CET, then 03:00 CEST. */
    EXPECT("0 * * * *", z, utc(2025, 3, 29, 23, 30, 0), utc(2025, 3, 30, 0, 0, 0),
           utc(2025, 3, 30, 1, 0, 0), utc(2025, 3, 30, 2, 0, 0));
    /* Hourly across the autumn overlap: 02:00 CEST, (02:00 CET is a
     * repeat), 03:00 CET. */
    EXPECT("0 * * * *", z, utc(2025, 10, 25, 23, 30, 0), utc(2025, 10, 26, 0, 0, 0),
           utc(2025, 10, 26, 2, 0, 0), utc(2025, 10, 26, 3, 0, 0));
    /* A whole minute list inside the gap: 02:00-02:59 are all skipped. */
    EXPECT("* 2 * * *", z, utc(2025, 3, 29, 12, 0, 0), utc(2025, 3, 31, 0, 0, 0),
           utc(2025, 3, 31, 0, 1, 0));
}
END_TEST

START_TEST(dst_america_new_york)
{
    const char *z = "America/New_York";
    /* 2025-03-09: 02:00 EST jumps to 03:00 EDT (07:00 UTC): no 02:30. */
    EXPECT("30 2 * * *", z, utc(2025, 3, 8, 12, 0, 0), utc(2025, 3, 10, 6, 30, 0),
           utc(2025, 3, 11, 6, 30, 0));
    /* 2025-11-02: 02:00 EDT falls back to 01:00 EST (06:00 UTC): 01:30
     * fires at 05:30 UTC (EDT) only; the next day it is 06:30 UTC (EST). */
    EXPECT("30 1 * * *", z, utc(2025, 11, 1, 12, 0, 0), utc(2025, 11, 2, 5, 30, 0),
           utc(2025, 11, 3, 6, 30, 0));
    /* Hourly, spring: 00:00 EST, 01:00 EST, 03:00 EDT, 04:00 EDT. */
    EXPECT("0 * * * *", z, utc(2025, 3, 9, 4, 30, 0), utc(2025, 3, 9, 5, 0, 0),
           utc(2025, 3, 9, 6, 0, 0), utc(2025, 3, 9, 7, 0, 0), utc(2025, 3, 9, 8, 0, 0));
    /* Hourly, autumn: 00:00 EDT, 01:00 EDT, (01:00 EST repeats), 02:00 EST. */
    EXPECT("0 * * * *", z, utc(2025, 11, 2, 3, 30, 0), utc(2025, 11, 2, 4, 0, 0),
           utc(2025, 11, 2, 5, 0, 0), utc(2025, 11, 2, 7, 0, 0), utc(2025, 11, 2, 8, 0, 0));
    /* Starting inside the repeat (01:10 EST): 01:30 already happened in
     * EDT, so the next is 02:00 EST. */
    EXPECT("*/30 * * * *", z, utc(2025, 11, 2, 6, 10, 0), utc(2025, 11, 2, 7, 0, 0),
           utc(2025, 11, 2, 7, 30, 0));
    /* Starting in the first pass (01:10 EDT): 01:30 EDT, then 02:00 EST. */
    EXPECT("*/30 * * * *", z, utc(2025, 11, 2, 5, 10, 0), utc(2025, 11, 2, 5, 30, 0),
           utc(2025, 11, 2, 7, 0, 0));
    /* Every second of the repeated hour fires once: 01:59:59 EDT, then 02:00:00 EST. */
    EXPECT("* * * * * *", z, utc(2025, 11, 2, 5, 59, 58), utc(2025, 11, 2, 5, 59, 59),
           utc(2025, 11, 2, 7, 0, 0));
    EXPECT("* * * * * *", z, utc(2025, 11, 2, 6, 30, 0), utc(2025, 11, 2, 7, 0, 0));
}
END_TEST

START_TEST(zones_kolkata_and_sydney)
{
    /* Kolkata, UTC+5:30: 09:00 IST is 03:30 UTC; :30 local is :00 UTC. */
    EXPECT("0 9 * * *", "Asia/Kolkata", utc(2025, 6, 1, 0, 0, 0), utc(2025, 6, 1, 3, 30, 0),
           utc(2025, 6, 2, 3, 30, 0));
    EXPECT("30 * * * *", "Asia/Kolkata", utc(2025, 6, 1, 0, 10, 0), utc(2025, 6, 1, 1, 0, 0),
           utc(2025, 6, 1, 2, 0, 0));
    const char *z = "Australia/Sydney";
    /* Summer in January (AEDT, +11), winter in July (AEST, +10). */
    EXPECT("0 9 * * *", z, utc(2025, 1, 14, 12, 0, 0), utc(2025, 1, 14, 22, 0, 0));
    EXPECT("0 9 * * *", z, utc(2025, 7, 14, 12, 0, 0), utc(2025, 7, 14, 23, 0, 0));
    /* 2025-10-05: 02:00 AEST jumps to 03:00 AEDT: no 02:30; 10-06 02:30
     * AEDT is 10-05 15:30 UTC. */
    EXPECT("30 2 * * *", z, utc(2025, 10, 4, 0, 0, 0), utc(2025, 10, 5, 15, 30, 0));
    /* 2025-04-06: 03:00 AEDT falls back to 02:00 AEST: 02:30 AEDT (04-05
     * 15:30 UTC) fires, 02:30 AEST does not; 04-07 02:30 AEST is 04-06
     * 16:30 UTC. */
    EXPECT("30 2 * * *", z, utc(2025, 4, 5, 0, 0, 0), utc(2025, 4, 5, 15, 30, 0),
           utc(2025, 4, 6, 16, 30, 0));
}
END_TEST

START_TEST(dates_after_2037_use_the_footer_rule)
{
    /* Zone files store transitions up to 2037 at most; later ones come from
     * the footer ("CET-1CEST,M3.5.0,M10.5.0/3"). 2040-03-25 and 2040-10-28
     * are the last Sundays of March and October 2040. */
    struct nova__tz *tz;
    char err[NOVA__SCHED_ERRMAX];
    unsetenv("TZDIR");
    ck_assert_int_eq(nova__tz_load("Europe/Paris", &tz, err, sizeof err), 0);
    ck_assert_int_eq(nova__tz_offset_at(tz, utc(2040, 1, 1, 0, 0, 0) / 1000), 3600);
    ck_assert_int_eq(nova__tz_offset_at(tz, utc(2040, 3, 25, 0, 59, 59) / 1000), 3600);
    ck_assert_int_eq(nova__tz_offset_at(tz, utc(2040, 3, 25, 1, 0, 0) / 1000), 7200);
    ck_assert_int_eq(nova__tz_offset_at(tz, utc(2040, 10, 28, 0, 59, 59) / 1000), 7200);
    ck_assert_int_eq(nova__tz_offset_at(tz, utc(2040, 10, 28, 1, 0, 0) / 1000), 3600);
    ck_assert_int_eq(nova__tz_next_change(tz, utc(2040, 1, 1, 0, 0, 0) / 1000),
                     utc(2040, 3, 25, 1, 0, 0) / 1000);
    ck_assert_int_eq(nova__tz_next_change(tz, utc(2040, 3, 25, 1, 0, 0) / 1000),
                     utc(2040, 10, 28, 1, 0, 0) / 1000);
    /* In the table: 2025's changes. */
    ck_assert_int_eq(nova__tz_next_change(tz, utc(2025, 1, 1, 0, 0, 0) / 1000),
                     utc(2025, 3, 30, 1, 0, 0) / 1000);
    ck_assert_int_eq(nova__tz_next_change(tz, utc(2025, 3, 30, 1, 0, 0) / 1000 - 1),
                     utc(2025, 3, 30, 1, 0, 0) / 1000);
    /* Across the table's end: the last stored change is in October 2037. */
    ck_assert_int_eq(nova__tz_next_change(tz, utc(2037, 10, 1, 0, 0, 0) / 1000),
                     utc(2037, 10, 25, 1, 0, 0) / 1000);
    ck_assert_int_eq(nova__tz_next_change(tz, utc(2037, 10, 25, 1, 0, 0) / 1000),
                     utc(2038, 3, 28, 1, 0, 0) / 1000);
    nova__tz_free(tz);

    EXPECT("0 12 * * *", "Europe/Paris", utc(2040, 7, 1, 0, 0, 0), utc(2040, 7, 1, 10, 0, 0));
    EXPECT("0 12 * * *", "Europe/Paris", utc(2040, 1, 1, 0, 0, 0), utc(2040, 1, 1, 11, 0, 0));
    EXPECT("30 2 * * *", "Europe/Paris", utc(2040, 3, 24, 12, 0, 0), utc(2040, 3, 26, 0, 30, 0));
    /* New York 2050: EDT (-4) in July; 2050-11-06 is its first Sunday of
     * November: 01:30 EDT fires (05:30 UTC), 01:30 EST does not. */
    EXPECT("0 12 * * *", "America/New_York", utc(2050, 7, 1, 0, 0, 0), utc(2050, 7, 1, 16, 0, 0));
    EXPECT("30 1 * * *", "America/New_York", utc(2050, 11, 5, 12, 0, 0), utc(2050, 11, 6, 5, 30, 0),
           utc(2050, 11, 7, 6, 30, 0));
    /* Sydney 2045, south: AEDT (+11) in January. */
    EXPECT("0 9 * * *", "Australia/Sydney", utc(2045, 1, 10, 0, 0, 0), utc(2045, 1, 10, 22, 0, 0));
}
END_TEST

/* ---- zone files --------------------------------------------------------- */

static void put32(uint8_t **p, uint32_t v)
{
    (*p)[0] = (uint8_t)(v >> 24);
    (*p)[1] = (uint8_t)(v >> 16);
    (*p)[2] = (uint8_t)(v >> 8);
    (*p)[3] = (uint8_t)v;
    *p += 4;
}

static void put_header(uint8_t **p, char version, uint32_t leapcnt, uint32_t timecnt,
                       uint32_t typecnt, uint32_t charcnt)
{
    memcpy(*p, "TZif", 4);
    (*p)[4] = (uint8_t)version;
    memset(*p + 5, 0, 15);
    *p += 20;
    put32(p, 0);
    put32(p, 0);
    put32(p, leapcnt);
    put32(p, timecnt);
    put32(p, typecnt);
    put32(p, charcnt);
}

static void write_bytes(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* A version 2+ file with one local time type (offset off) and no
 * transitions: the footer TZ string decides everything. */
static void write_footer_zone(const char *dir, const char *name, char version, int32_t off,
                              const char *footer)
{
    uint8_t buf[512], *p = buf;
    for (int block = 0; block < 2; block++) {
        put_header(&p, version, 0, 0, 1, 4);
        put32(&p, (uint32_t)off);
        *p++ = 0;
        *p++ = 0;
        memcpy(p, "AAA", 4);
        p += 4;
    }
    *p++ = '\n';
    memcpy(p, footer, strlen(footer));
    p += strlen(footer);
    *p++ = '\n';
    write_bytes(dir, name, buf, (size_t)(p - buf));
}

static struct nova__tz *load(const char *name)
{
    struct nova__tz *tz = NULL;
    char err[NOVA__SCHED_ERRMAX] = "";
    int rc = nova__tz_load(name, &tz, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: %s", name, err);
    return tz;
}

static int32_t off_at(struct nova__tz *tz, int y, int mo, int d, int h, int mi, int s)
{
    return nova__tz_offset_at(tz, utc(y, mo, d, h, mi, s) / 1000);
}

START_TEST(tzdir_override_and_file_formats)
{
    const char *dir = tu_tempdir();
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/Test", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);

    /* A copy of a real zone under another name. */
    FILE *in = fopen("/usr/share/zoneinfo/Asia/Kolkata", "rb");
    ck_assert_ptr_nonnull(in);
    uint8_t copy[8192];
    size_t n = fread(copy, 1, sizeof copy, in);
    fclose(in);
    write_bytes(dir, "Test/Zone", copy, n);

    /* Version 1: two types, one transition at 1e9 from +1h to +2h. */
    uint8_t v1[128], *p = v1;
    put_header(&p, 0, 0, 1, 2, 8);
    put32(&p, 1000000000);
    *p++ = 1;
    put32(&p, 3600);
    *p++ = 0;
    *p++ = 0;
    put32(&p, 7200);
    *p++ = 1;
    *p++ = 4;
    memcpy(p, "ONE\0TWO\0", 8); /* the two abbreviations */
    p += 8;
    write_bytes(dir, "v1", v1, (size_t)(p - v1));

    /* Footer rules, checked against glibc's reading of the same TZ strings.
     * "AAA-2BBB,J60/-1,300/26": UTC+2, DST +3 from J60 (March 1, Feb 29
     * not counted) at -01:00, i.e. the day before at 23:00 local = 21:00
     * UTC, to zero-based day 300 (Feb 29 counted: 2023-10-28, 2024-10-27)
     * at 26:00 DST = the next day 02:00 local = 23:00 UTC on day 300. */
    write_footer_zone(dir, "j_and_n", '2', 7200, "AAA-2BBB,J60/-1,300/26");
    /* "CCC3DDD2,M3.5.0/-2,M10.5.0/27": UTC-3, DST UTC-2 from the last
     * Sunday of March at -02:00 (2025-03-29 22:00 local = 03-30 01:00 UTC)
     * to the last Sunday of October at 27:00 DST (2025-10-27 03:00 local
     * = 05:00 UTC). */
    write_footer_zone(dir, "m_rule", '3', -10800, "CCC3DDD2,M3.5.0/-2,M10.5.0/27");
    /* RFC 8536's DST all year: "EST5EDT,0/0,J365/25" is always UTC-4. */
    write_footer_zone(dir, "all_year", '4', -18000, "EST5EDT,0/0,J365/25");
    write_footer_zone(dir, "quoted", '2', 19800, "<+0530>-5:30");
    write_footer_zone(dir, "bad_footer", '2', 0, "XX0");
    write_footer_zone(dir, "no_rule", '2', 0, "AAA0BBB");

    /* Version 1 with one leap-second record. */
    uint8_t leap[128] = {0};
    p = leap;
    put_header(&p, 0, 1, 0, 1, 4);
    p += 6;
    memcpy(p, "AAA", 4);
    p += 4;
    put32(&p, 78796800);
    put32(&p, 1);
    write_bytes(dir, "leap", leap, (size_t)(p - leap));
    write_bytes(dir, "junk", (const uint8_t *)"not a zone file at all, really not", 34);
    write_bytes(dir, "tiny", v1, 30);
    write_bytes(dir, "short", v1, 50);

    ck_assert_int_eq(setenv("TZDIR", dir, 1), 0);
    struct nova__tz *tz = load("Test/Zone");
    ck_assert_str_eq(nova__tz_name(tz), "Test/Zone");
    ck_assert_int_eq(nova__tz_offset_at(tz, 1750000000), 19800);
    ck_assert_int_eq(nova__tz_next_change(tz, 1750000000), INT64_MAX);
    nova__tz_free(tz);
    EXPECT("0 9 * * *", "Test/Zone", utc(2025, 6, 1, 0, 0, 0), utc(2025, 6, 1, 3, 30, 0));

    tz = load("v1");
    ck_assert_int_eq(nova__tz_offset_at(tz, 999999999), 3600);
    ck_assert_int_eq(nova__tz_offset_at(tz, 1000000000), 7200);
    ck_assert_int_eq(nova__tz_offset_at(tz, INT64_MIN), 3600);
    ck_assert_int_eq(nova__tz_offset_at(tz, INT64_MAX), 7200);
    ck_assert_int_eq(nova__tz_next_change(tz, 0), 1000000000);
    ck_assert_int_eq(nova__tz_next_change(tz, 1000000000), INT64_MAX);
    nova__tz_free(tz);

    tz = load("j_and_n");
    ck_assert_int_eq(off_at(tz, 2023, 2, 28, 20, 59, 59), 7200);
    ck_assert_int_eq(off_at(tz, 2023, 2, 28, 21, 0, 0), 10800);
    ck_assert_int_eq(off_at(tz, 2023, 10, 28, 22, 59, 59), 10800);
    ck_assert_int_eq(off_at(tz, 2023, 10, 28, 23, 0, 0), 7200);
    ck_assert_int_eq(off_at(tz, 2024, 2, 29, 20, 59, 59), 7200);
    ck_assert_int_eq(off_at(tz, 2024, 2, 29, 21, 0, 0), 10800);
    ck_assert_int_eq(off_at(tz, 2024, 10, 27, 22, 59, 59), 10800);
    ck_assert_int_eq(off_at(tz, 2024, 10, 27, 23, 0, 0), 7200);
    ck_assert_int_eq(nova__tz_next_change(tz, utc(2024, 1, 1, 0, 0, 0) / 1000),
                     utc(2024, 2, 29, 21, 0, 0) / 1000);
    nova__tz_free(tz);

    tz = load("m_rule");
    ck_assert_int_eq(off_at(tz, 2025, 3, 30, 0, 59, 59), -10800);
    ck_assert_int_eq(off_at(tz, 2025, 3, 30, 1, 0, 0), -7200);
    ck_assert_int_eq(off_at(tz, 2025, 10, 27, 4, 59, 59), -7200);
    ck_assert_int_eq(off_at(tz, 2025, 10, 27, 5, 0, 0), -10800);
    nova__tz_free(tz);
    /* Its gap is 2025-03-29 22:00-23:00 local (DST starts at -02:00 on
     * Sunday, i.e. Saturday 22:00): 22:30 fires on 03-28 (UTC-3, 01:30 UTC
     * the next day), not on 03-29, then on 03-30 (UTC-2, 00:30 UTC). */
    EXPECT("30 22 * * *", "m_rule", utc(2025, 3, 28, 12, 0, 0), utc(2025, 3, 29, 1, 30, 0),
           utc(2025, 3, 31, 0, 30, 0));

    tz = load("all_year");
    ck_assert_int_eq(off_at(tz, 2030, 1, 1, 0, 0, 0), -14400);
    ck_assert_int_eq(off_at(tz, 2030, 7, 1, 0, 0, 0), -14400);
    ck_assert_int_eq(off_at(tz, 2031, 1, 1, 4, 59, 59), -14400);
    ck_assert_int_eq(off_at(tz, 2031, 1, 1, 5, 0, 0), -14400);
    ck_assert_int_eq(nova__tz_next_change(tz, 0), INT64_MAX);
    nova__tz_free(tz);

    tz = load("quoted");
    ck_assert_int_eq(off_at(tz, 2030, 1, 1, 0, 0, 0), 19800);
    nova__tz_free(tz);

    char err[NOVA__SCHED_ERRMAX];
    static const struct {
        const char *name;
        int rc;
        const char *why;
    } bad[] = {
        {"bad_footer", -EINVAL, "cannot parse the TZ string footer"},
        {"no_rule", -EINVAL, "cannot parse the TZ string footer"},
        {"leap", -EINVAL, "leap-second records"},
        {"junk", -EINVAL, "not a TZif file"},
        {"tiny", -EINVAL, "not a TZif file"},
        {"short", -EINVAL, "truncated TZif file"},
        {"Asia/Kolkata", -ENOENT, "unknown zone (no file "},
        {"Test", -EINVAL, "not a zone file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        tz = NULL;
        int rc = nova__tz_load(bad[i].name, &tz, err, sizeof err);
        ck_assert_msg(rc == bad[i].rc, "%s: rc %d (%s)", bad[i].name, rc, err);
        ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s: %s", bad[i].name, err);
        ck_assert_msg(strstr(err, dir) != NULL, "%s: %s", bad[i].name, err);
        ck_assert_ptr_null(tz);
    }
    unsetenv("TZDIR");
    tu_rmtree(dir);
}
END_TEST

START_TEST(utc_and_calendar_helpers)
{
    struct nova__tz *tz = load(NULL);
    ck_assert_str_eq(nova__tz_name(tz), "UTC");
    ck_assert_int_eq(nova__tz_offset_at(tz, 1750000000), 0);
    ck_assert_int_eq(nova__tz_next_change(tz, 0), INT64_MAX);
    nova__tz_free(tz);
    tz = load("UTC");
    ck_assert_str_eq(nova__tz_name(tz), "UTC");
    nova__tz_free(tz);
    nova__tz_free(NULL);

    ck_assert_int_eq(nova__tz_days_from_civil(1970, 1, 1), 0);
    ck_assert_int_eq(nova__tz_weekday(0), 4); /* Thursday */
    ck_assert_int_eq(nova__tz_weekday(-1), 3);
    /* Every 13th day from 1600 to 2400 against glibc. */
    for (int64_t days = -135140; days < 157000; days += 13) {
        time_t t = (time_t)(days * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        int64_t y;
        int m, d;
        nova__tz_civil_from_days(days, &y, &m, &d);
        ck_assert_int_eq(y, tm.tm_year + 1900);
        ck_assert_int_eq(m, tm.tm_mon + 1);
        ck_assert_int_eq(d, tm.tm_mday);
        ck_assert_int_eq(nova__tz_weekday(days), tm.tm_wday);
        ck_assert_int_eq(nova__tz_days_from_civil(y, m, d), days);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("sched");
    tcase_add_loop_test(tc, parse_errors_name_what_is_wrong, 0,
                        (int)(sizeof bad_specs / sizeof bad_specs[0]));
    tcase_add_test(tc, parse_limits_and_fields);
    tcase_add_test(tc, timezone_names_are_checked);
    tcase_add_test(tc, every_counts_from_the_epoch);
    tcase_add_test(tc, cron_month_ends_skip_short_months);
    tcase_add_test(tc, cron_feb_29_fires_in_leap_years_only);
    tcase_add_test(tc, cron_day_of_month_or_day_of_week);
    tcase_add_test(tc, cron_follows_cron_parser_where_it_differs_from_cron5);
    tcase_add_test(tc, cron_names_steps_and_seconds);
    tcase_add_test(tc, cron_that_never_fires_gives_minus_one);
    tcase_add_test(tc, dst_europe_paris);
    tcase_add_test(tc, dst_america_new_york);
    tcase_add_test(tc, zones_kolkata_and_sydney);
    tcase_add_test(tc, dates_after_2037_use_the_footer_rule);
    tcase_add_test(tc, tzdir_override_and_file_formats);
    tcase_add_test(tc, utc_and_calendar_helpers);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
