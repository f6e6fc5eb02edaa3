/*
 * sched - schedule specs and their slots, for BullMQ job schedulers.
 *
 * A spec is "every <duration>" or a cron line; a slot is a UTC instant in
 * unix milliseconds (a scheduler's job id is "repeat:<id>:<slot ms>", so
 * Node's bullmq and this code must agree on every slot). Pure: no I/O but
 * reading a zone file at parse time, no global state, no logging; a parsed
 * schedule is immutable and may be shared between threads.
 *
 * every <n><unit>: unit ms, s, m, h or d; at least 1000 ms, at most 3650 d.
 * The slots are the multiples of the duration counted from the unix epoch.
 *
 * Cron: 5 fields (minute hour day-of-month month day-of-week) or 6 (second
 * first), separated by blanks. Each field is a list "a,b-c,..." of "*", a
 * number, a range "a-b", or a step "*\/n", "a-b/n", "a/n" (= a-<max>/n).
 * Months may be named jan..dec and weekdays sun..sat (any case); weekdays
 * run 0-7, 0 and 7 both Sunday. Rejected, each with a reason: "L", "W",
 * "#", "?", "@daily"-style shortcuts, backwards ranges, out-of-range values.
 *
 * Days: when day-of-month and day-of-week are both restricted a day matches
 * if either does; when one is unrestricted only the other counts. To equal
 * the npm cron-parser that bullmq uses (4.9.0), "unrestricted" is decided
 * as it does, by counting a field's entries (duplicates included, a range
 * ending at weekday 7 adds 0): day-of-month is unrestricted in a month when
 * it has at least as many entries as that month can have days (29 for
 * February), e.g. "*", "1-31", "*\/1", or "1-30" in April; day-of-week is
 * unrestricted with exactly 8 ("*", "0-7", "1-7"). And as in cron-parser a
 * stepped weekday range ending at 7 also holds Sunday ("2-7/2", "2/2").
 * These differ from cron(5) only for such spellings; "*" is the same.
 *
 * Time zones and DST: cron fields match the LOCAL wall-clock time of the
 * schedule's zone. A local time that does not exist (spring-forward gap)
 * does not fire; a local time that exists twice (fall-back overlap) fires
 * once, at its first occurrence (the earlier UTC instant). So "30 2 * * *"
 * in Europe/Paris skips the last Sunday of March, and "0 * * * *" in
 * America/New_York fires 23 times on its spring-forward day and 24 times
 * on its fall-back day (01:00 EDT, not again at 01:00 EST). cron-parser
 * 4.9.0 differs only there, and follows no single rule: it usually fires a
 * gap time moved forward by the gap (02:30 -> 03:30) but skips gaps that
 * start at midnight, and it fires an overlap time twice when the hour
 * field has all 24 hours ("*"), once otherwise.
 * tests/unit/sched/sched_interop.js counts these cases.
 */
#ifndef NOVA_RUNTIME_SCHED_SCHED_H
#define NOVA_RUNTIME_SCHED_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sched/tz.h"

#define NOVA__SCHED_SPEC_MAX   128 /* spec length limit, NUL included */
#define NOVA__SCHED_ERRMAX     256 /* room for the messages; longer ones are truncated */
#define NOVA__SCHED_MIN_EVERY  1000LL
#define NOVA__SCHED_MAX_EVERY  (3650LL * 86400 * 1000)
#define NOVA__SCHED_HORIZON_MS (1827LL * 86400 * 1000) /* "none within 5 years" */

enum nova__sched_kind { NOVA__SCHED_EVERY, NOVA__SCHED_CRON };

struct nova__sched {
    enum nova__sched_kind kind;
    int64_t every_ms; /* every: the period */
    /* cron: bit n set when value n matches */
    uint64_t sec;        /* 0-59 */
    uint64_t min;        /* 0-59 */
    uint32_t hour;       /* 0-23 */
    uint32_t dom;        /* 1-31 */
    uint16_t mon;        /* 1-12 */
    uint8_t dow;         /* 0-6, Sunday = 0 (7 is folded into 0) */
    uint16_t dom_any;    /* bit m: day-of-month counts as unrestricted in month m */
    bool dow_any;        /* day-of-week counts as unrestricted */
    struct nova__tz *tz; /* always set (UTC when no zone was given) */
    char spec[NOVA__SCHED_SPEC_MAX];
};

/*
 * spec: as above; timezone: an IANA name for cron lines (NULL or "" = UTC),
 * validated but unused for "every". Returns 0 or -EINVAL (bad spec, bad
 * zone name or file), -ENOENT (unknown zone), -ENOMEM, with a one-line
 * reason in err ("cron field 2 (hour): 24 is out of range 0-23"). On error
 * *out owns nothing (nova__sched_free on it is harmless).
 */
int nova__sched_parse(const char *spec, const char *timezone, struct nova__sched *out, char *err,
                      size_t errlen);

/* Frees the zone; s itself is the caller's. */
void nova__sched_free(struct nova__sched *s);

/*
 * The first slot strictly after after_ms (unix ms), in unix ms (slots are
 * whole seconds, and may be before 1970); -1 when
 * there is none within NOVA__SCHED_HORIZON_MS (about 5 years; e.g.
 * "0 0 30 2 *"), or when after_ms is outside the years 1-9999.
 */
int64_t nova__sched_next(const struct nova__sched *s, int64_t after_ms);

/* Fills out[0..n) with the next n slots after after_ms, each after the one
 * before; returns how many (fewer when one has no successor within the
 * horizon). */
size_t nova__sched_next_n(const struct nova__sched *s, int64_t after_ms, int64_t *out, size_t n);

/* A schedule id as a job scheduler key takes it: 1-100 of letters,
 * digits, '-', '_' and '.'. */
bool nova__sched_valid_id(const char *id);

#endif
