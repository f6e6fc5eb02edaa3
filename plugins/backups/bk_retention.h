/*
 * bk_retention - which backups to keep: a pure function of the set of
 * backups (their times and verification states) and the policy, so that
 * the same rule applies to the local directory and to the S3 bucket, and
 * a simulated year of backups can be checked against a fake clock
 * (tests/backups/test_backups.c).
 *
 * Also the backup names, since the time a backup stands for is in its
 * name (nova-<database>-<YYYYmmddTHHMMSSZ>): retention on S3 works from a
 * listing alone.
 */
#ifndef NOVA_BK_RETENTION_H
#define NOVA_BK_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_NAME_MAX 128

enum bk_state {
    BK_UNVERIFIED = 0, /* complete, not (yet) verified: counts for the periods */
    BK_VERIFIED,       /* complete and verified */
    BK_FAILED,         /* its verification failed: never kept by a period */
};

/* The keep_* keys of [plugin backups]. */
struct bk_policy {
    int64_t keep_last;    /* the N newest */
    int64_t keep_daily;   /* the newest of each of the N most recent UTC days that have one */
    int64_t keep_weekly;  /* ... ISO weeks (Monday to Sunday, UTC) */
    int64_t keep_monthly; /* ... calendar months (UTC) */
};

struct bk_item {
    int64_t time_ms;     /* the time in its name */
    enum bk_state state; /* in */
    bool keep;           /* out */
    unsigned why;        /* out: BK_WHY_* bits */
};

#define BK_WHY_LAST     1u
#define BK_WHY_DAILY    2u
#define BK_WHY_WEEKLY   4u
#define BK_WHY_MONTHLY  8u
#define BK_WHY_NEWEST   16u /* the newest backup that did not fail */
#define BK_WHY_VERIFIED 32u /* the newest verified backup */

/*
 * Marks items[i].keep. Kept: the newest non-failed backup of each of the
 * keep_daily most recent days that have one (and likewise per week and
 * month), the keep_last newest non-failed ones, and always the newest
 * non-failed backup and the newest verified one. Periods without a backup
 * do not count, so a pause in backups never ages everything out. Order of
 * items does not matter. Returns how many are kept.
 */
size_t bk_retention_plan(struct bk_item *items, size_t n, const struct bk_policy *policy);

/* "nova-<db>-YYYYmmddTHHMMSSZ" for db (characters other than letters,
 * digits, '_' and '-' become '_'; at most 63 of them). */
void bk_name_make(char *out, size_t outlen, const char *db, int64_t time_ms);
/* The time of a backup name (seconds resolution), or -1 when name is not
 * one. */
int64_t bk_name_time(const char *name);
/* ISO 8601 UTC, "2026-12-07T02:00:00Z". */
void bk_iso_time(char *out, size_t outlen, int64_t time_ms);

#endif /* NOVA_BK_RETENTION_H */
