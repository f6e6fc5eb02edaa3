/*
 * Unit tests of the backups plugin's pure parts (their sources linked in):
 *   - the NOVABK1 file format: round trips over many sizes and chunk
 *     boundaries, and the refusals a restore relies on (wrong key, each
 *     kind of truncation, one flipped bit at many offsets, trailing bytes,
 *     another file), with nothing of a bad record ever emitted;
 *   - retention over a simulated year of daily backups with a fake clock,
 *     against the calendar worked out by hand, with failed verifications
 *     and an outage;
 *   - names, connection strings without their password, manifests.
 */
#define _GNU_SOURCE /* memmem */
#include <check.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/backups/bk.h"
#include "../../plugins/backups/bk_crypto.h"
#include "../../plugins/backups/bk_dsn.h"
#include "../../plugins/backups/bk_retention.h"

/* ---- the file format --------------------------------------------------------------- */

struct sink {
    unsigned char *p;
    size_t len, cap;
};

static int sink_emit(void *arg, const unsigned char *data, size_t len)
{
    struct sink *s = arg;
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + len)
            cap *= 2;
        s->p = realloc(s->p, cap);
        ck_assert_ptr_nonnull(s->p);
        s->cap = cap;
    }
    memcpy(s->p + s->len, data, len);
    s->len += len;
    return 0;
}

static unsigned char key1[BK_KEY_BYTES], key2[BK_KEY_BYTES];

static void keys_setup(void)
{
    ck_assert_int_ge(sodium_init(), 0);
    for (int i = 0; i < BK_KEY_BYTES; i++) {
        key1[i] = (unsigned char)i;
        key2[i] = (unsigned char)(i + 1);
    }
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n > 0 ? n : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (unsigned char)(x >> 16);
    }
    return p;
}

/* Encrypts plain, handing it to the encoder in pieces of `piece` bytes. */
static struct sink encrypt(const unsigned char *key, const unsigned char *plain, size_t n,
                           size_t chunk, size_t piece)
{
    struct bk_enc e;
    struct sink out = {0};
    ck_assert_int_eq(bk_enc_init(&e, key, chunk), 0);
    sink_emit(&out, e.head, BK_HEADER_BYTES);
    for (size_t at = 0; at < n; at += piece)
        ck_assert_int_eq(
            bk_enc_update(&e, plain + at, n - at < piece ? n - at : piece, sink_emit, &out), 0);
    ck_assert_int_eq(bk_enc_final(&e, sink_emit, &out), 0);
    ck_assert_uint_eq(e.plain_bytes, n);
    bk_enc_free(&e);
    return out;
}

/* Decrypts in pieces; returns the status and the reason. */
static int decrypt(const unsigned char *key, const unsigned char *file, size_t n, size_t piece,
                   struct sink *plain, enum bk_dec_error *code, char *why, size_t whylen)
{
    struct bk_dec d;
    ck_assert_int_eq(bk_dec_init(&d, key), 0);
    int rc = 0;
    for (size_t at = 0; at < n && rc == 0; at += piece)
        rc = bk_dec_update(&d, file + at, n - at < piece ? n - at : piece, sink_emit, plain, why,
                           whylen);
    if (rc == 0)
        rc = bk_dec_final(&d, sink_emit, plain, why, whylen);
    *code = d.error;
    bk_dec_free(&d);
    return rc;
}

START_TEST(roundtrip_sizes)
{
    const size_t chunk = BK_CHUNK_MIN;
    const size_t sizes[] = {
        0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 7, 10 * chunk - 1, 70000};
    const size_t pieces[] = {1, 3, 1000, 1024, 4096, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t j = 0; j < sizeof pieces / sizeof pieces[0]; j++) {
            size_t n = sizes[i];
            unsigned char *plain = pattern(n, (unsigned)(i * 7 + j));
            struct sink file = encrypt(key1, plain, n, chunk, pieces[j]);
            /* header + one record per chunk, the last one (FINAL) possibly
             * full, or empty for an empty dump */
            size_t records = n == 0 ? 1 : (n + chunk - 1) / chunk;
            ck_assert_uint_eq(file.len, BK_HEADER_BYTES + n + records * BK_ABYTES);
            struct sink back = {0};
            enum bk_dec_error code;
            char why[512] = "";
            ck_assert_msg(decrypt(key1, file.p, file.len, pieces[(j + 2) % 6], &back, &code, why,
                                  sizeof why) == 0,
                          "size %zu piece %zu: %s", n, pieces[j], why);
            ck_assert_uint_eq(back.len, n);
            ck_assert(n == 0 || memcmp(back.p, plain, n) == 0);
            free(back.p);
            free(file.p);
            free(plain);
        }
    }
}
END_TEST

START_TEST(default_chunk_and_header)
{
    size_t n = 3 * BK_CHUNK_DEFAULT + 123;
    unsigned char *plain = pattern(n, 99);
    struct sink file = encrypt(key1, plain, n, BK_CHUNK_DEFAULT, 65536);
    ck_assert_mem_eq(file.p, "NOVABK1", 7);
    ck_assert_uint_eq(file.p[7], 1);
    unsigned char id[BK_KEYID_BYTES];
    bk_key_id(key1, id);
    ck_assert_mem_eq(file.p + 8, id, BK_KEYID_BYTES);
    ck_assert_uint_eq(file.p[24] << 24 | file.p[25] << 16 | file.p[26] << 8 | file.p[27], 65536);
    /* the key id is a one-way hash: it does not contain the key */
    ck_assert(memmem(file.p, file.len, key1, 8) == NULL);
    /* two encryptions of the same data differ (random stream header) */
    struct sink again = encrypt(key1, plain, n, BK_CHUNK_DEFAULT, 65536);
    ck_assert_uint_eq(again.len, file.len);
    ck_assert(memcmp(again.p + BK_FILE_HDR, file.p + BK_FILE_HDR, BK_STREAM_HDR) != 0);
    free(again.p);
    free(file.p);
    free(plain);
}
END_TEST

START_TEST(wrong_key)
{
    unsigned char *plain = pattern(5000, 1);
    struct sink file = encrypt(key1, plain, 5000, BK_CHUNK_MIN, 777);
    struct sink back = {0};
    enum bk_dec_error code;
    char why[512] = "";
    ck_assert_int_eq(decrypt(key2, file.p, file.len, 4096, &back, &code, why, sizeof why),
                     -EBADMSG);
    ck_assert_int_eq(code, BK_DEC_WRONG_KEY);
    ck_assert_msg(strstr(why, "wrong key") != NULL, "%s", why);
    char id1[BK_KEYID_HEX], id2[BK_KEYID_HEX];
    bk_key_id_hex(key1, id1);
    bk_key_id_hex(key2, id2);
    ck_assert_msg(strstr(why, id1) != NULL && strstr(why, id2) != NULL, "%s", why);
    ck_assert_uint_eq(back.len, 0);
    /* a file with the other key's id forged into its header still fails:
     * the header is authenticated with the first record */
    unsigned char id[BK_KEYID_BYTES];
    bk_key_id(key2, id);
    memcpy(file.p + 8, id, BK_KEYID_BYTES);
    ck_assert_int_eq(decrypt(key2, file.p, file.len, 4096, &back, &code, why, sizeof why),
                     -EBADMSG);
    ck_assert_int_eq(code, BK_DEC_AUTH);
    ck_assert_uint_eq(back.len, 0);
    free(file.p);
    free(plain);
}
END_TEST

START_TEST(truncations)
{
    const size_t chunk = BK_CHUNK_MIN, n = 5 * chunk + 100, rec = chunk + BK_ABYTES;
    unsigned char *plain = pattern(n, 2);
    struct sink file = encrypt(key1, plain, n, chunk, 4096);
    /* every cut point of interest: inside the header, at and around each
     * record boundary, one byte short of the end */
    size_t cuts[64], nc = 0;
    cuts[nc++] = 0;
    cuts[nc++] = 5;
    cuts[nc++] = BK_HEADER_BYTES - 1;
    cuts[nc++] = BK_HEADER_BYTES;
    for (size_t r = 1; r <= 5; r++) {
        cuts[nc++] = BK_HEADER_BYTES + r * rec - 1;
        cuts[nc++] = BK_HEADER_BYTES + r * rec;
        cuts[nc++] = BK_HEADER_BYTES + r * rec + 1;
    }
    cuts[nc++] = file.len - 1;
    for (size_t i = 0; i < nc; i++) {
        struct sink back = {0};
        enum bk_dec_error code;
        char why[512] = "";
        ck_assert_int_eq(decrypt(key1, file.p, cuts[i], 1000, &back, &code, why, sizeof why),
                         -EBADMSG);
        ck_assert_msg(code == BK_DEC_TRUNCATED, "cut at %zu: code %d (%s)", cuts[i], code, why);
        ck_assert_msg(strstr(why, "truncated") != NULL || strstr(why, "empty") != NULL,
                      "cut at %zu: %s", cuts[i], why);
        /* what came out is only ever a prefix of the original */
        ck_assert(back.len <= n && (back.len == 0 || memcmp(back.p, plain, back.len) == 0));
        free(back.p);
    }
    free(file.p);
    free(plain);
}
END_TEST

START_TEST(flipped_bytes)
{
    const size_t chunk = BK_CHUNK_MIN, n = 4 * chunk + 10, rec = chunk + BK_ABYTES;
    unsigned char *plain = pattern(n, 3);
    struct sink file = encrypt(key1, plain, n, chunk, 4096);
    /* a sample of offsets in every part of the file, and every 37th byte */
    for (size_t off = 0; off < file.len; off += (off < BK_HEADER_BYTES + 40 ? 1 : 37)) {
        for (int bit = 0; bit < 8; bit += 7) {
            file.p[off] ^= (unsigned char)(1u << bit);
            struct sink back = {0};
            enum bk_dec_error code;
            char why[512] = "";
            int rc = decrypt(key1, file.p, file.len, 3000, &back, &code, why, sizeof why);
            file.p[off] ^= (unsigned char)(1u << bit);
            ck_assert_msg(rc == -EBADMSG, "flip at %zu accepted", off);
            ck_assert_msg(code != BK_DEC_OK, "flip at %zu", off);
            /* the record holding the flip, and what follows it, is never
             * emitted: the output is a prefix that ends before it */
            size_t rec_index = off < BK_HEADER_BYTES ? 0 : (off - BK_HEADER_BYTES) / rec;
            ck_assert_msg(back.len <= rec_index * chunk, "flip at %zu: %zu bytes emitted", off,
                          back.len);
            ck_assert(back.len == 0 || memcmp(back.p, plain, back.len) == 0);
            free(back.p);
        }
    }
    /* the messages say what failed */
    file.p[BK_HEADER_BYTES + 2 * rec + 5] ^= 1;
    struct sink back = {0};
    enum bk_dec_error code;
    char why[512] = "";
    decrypt(key1, file.p, file.len, 3000, &back, &code, why, sizeof why);
    ck_assert_int_eq(code, BK_DEC_AUTH);
    ck_assert_msg(strstr(why, "record 2") != NULL && strstr(why, "modified") != NULL, "%s", why);
    free(back.p);
    file.p[BK_HEADER_BYTES + 2 * rec + 5] ^= 1;
    file.p[0] ^= 1;
    back = (struct sink){0};
    decrypt(key1, file.p, file.len, 3000, &back, &code, why, sizeof why);
    ck_assert_int_eq(code, BK_DEC_NOT_BACKUP);
    ck_assert_msg(strstr(why, "not a nova-worker backup") != NULL, "%s", why);
    free(back.p);
    free(file.p);
    free(plain);
}
END_TEST

START_TEST(trailing_and_swapped)
{
    const size_t chunk = BK_CHUNK_MIN, n = 3 * chunk, rec = chunk + BK_ABYTES;
    unsigned char *plain = pattern(n, 4);
    struct sink file = encrypt(key1, plain, n, chunk, 4096);
    struct sink longer = {0};
    sink_emit(&longer, file.p, file.len);
    sink_emit(&longer, (const unsigned char *)"junk", 4);
    struct sink back = {0};
    enum bk_dec_error code;
    char why[512] = "";
    ck_assert_int_eq(decrypt(key1, longer.p, longer.len, 500, &back, &code, why, sizeof why),
                     -EBADMSG);
    ck_assert_int_eq(code, BK_DEC_TRAILING);
    free(back.p);
    /* records 0 and 1 swapped: order is authenticated too */
    unsigned char *tmp = malloc(rec);
    memcpy(tmp, file.p + BK_HEADER_BYTES + rec, rec);
    memmove(file.p + BK_HEADER_BYTES + rec, file.p + BK_HEADER_BYTES, rec);
    memcpy(file.p + BK_HEADER_BYTES, tmp, rec);
    back = (struct sink){0};
    ck_assert_int_eq(decrypt(key1, file.p, file.len, 500, &back, &code, why, sizeof why), -EBADMSG);
    ck_assert_int_eq(code, BK_DEC_AUTH);
    ck_assert_uint_eq(back.len, 0);
    free(tmp);
    free(back.p);
    free(longer.p);
    free(file.p);
    free(plain);
}
END_TEST

START_TEST(key_text)
{
    unsigned char k[BK_KEY_BYTES];
    char err[256];
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
    ck_assert_int_eq(bk_key_parse(hex, 64, k, err, sizeof err), 0);
    ck_assert_mem_eq(k, key1, BK_KEY_BYTES);
    char buf[80];
    snprintf(buf, sizeof buf, "%s\n", hex);
    ck_assert_int_eq(bk_key_parse(buf, 65, k, err, sizeof err), 0);
    snprintf(buf, sizeof buf, "%s\r\n", hex);
    ck_assert_int_eq(bk_key_parse(buf, 66, k, err, sizeof err), 0);
    snprintf(buf, sizeof buf, "%s\n\n", hex);
    ck_assert_int_eq(bk_key_parse(buf, 66, k, err, sizeof err), -EINVAL);
    ck_assert_int_eq(bk_key_parse(hex, 63, k, err, sizeof err), -EINVAL);
    snprintf(buf, sizeof buf, "%.63sg", hex);
    ck_assert_int_eq(bk_key_parse(buf, 64, k, err, sizeof err), -EINVAL);
    /* the reason never quotes the text */
    ck_assert(strstr(err, "0001") == NULL);
    snprintf(buf, sizeof buf, " %s", hex);
    ck_assert_int_eq(bk_key_parse(buf, 65, k, err, sizeof err), -EINVAL);
}
END_TEST

/* ---- retention over a simulated year ------------------------------------------------------- */

#define DAY (86400000LL)

struct world {
    struct bk_item items[2000];
    size_t n;
};

static const struct bk_policy defaults = {
    .keep_last = 0, .keep_daily = 7, .keep_weekly = 4, .keep_monthly = 6};

static int64_t at(const char *name_time)
{
    char name[64];
    snprintf(name, sizeof name, "nova-db-%s", name_time);
    int64_t t = bk_name_time(name);
    ck_assert_msg(t >= 0, "%s", name_time);
    return t;
}

/* One backup made "now", then retention applied, as each scheduled job
 * does; deleted backups are gone for good. */
static void backup_and_prune(struct world *w, int64_t now, enum bk_state state,
                             const struct bk_policy *p)
{
    w->items[w->n].time_ms = now;
    w->items[w->n].state = state;
    w->n++;
    bk_retention_plan(w->items, w->n, p);
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->items[i].keep)
            w->items[k++] = w->items[i];
    w->n = k;
}

static void expect_days(const struct world *w, const char *const *days, size_t nd)
{
    char have[4096] = "", want[4096] = "";
    int64_t sorted[2000];
    for (size_t i = 0; i < w->n; i++)
        sorted[i] = w->items[i].time_ms;
    for (size_t i = 0; i < w->n; i++)
        for (size_t j = i + 1; j < w->n; j++)
            if (sorted[j] > sorted[i]) {
                int64_t t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
    for (size_t i = 0; i < w->n; i++) {
        char iso[40];
        bk_iso_time(iso, sizeof iso, sorted[i]);
        iso[10] = '\0';
        strcat(have, iso);
        strcat(have, " ");
    }
    for (size_t i = 0; i < nd; i++) {
        strcat(want, days[i]);
        strcat(want, " ");
    }
    ck_assert_msg(strcmp(have, want) == 0, "kept:\n  %s\nexpected:\n  %s", have, want);
}

START_TEST(year_of_daily_backups)
{
    struct world *w = calloc(1, sizeof *w);
    int64_t start = at("20260101T020000Z");
    for (int d = 0; d < 365; d++) {
        backup_and_prune(w, start + d * DAY, BK_VERIFIED, &defaults);
        /* at every step: never more than the policy allows, the newest kept */
        ck_assert_uint_le(w->n, 7 + 4 + 6);
        bool newest = false;
        for (size_t i = 0; i < w->n; i++)
            newest |= w->items[i].time_ms == start + d * DAY;
        ck_assert(newest);
    }
    /* 2026-12-31 (a Thursday): the last 7 days; the newest of the ISO
     * weeks starting Dec 28, 21, 14, 7; of the months Dec to Jul */
    static const char *const want[] = {"2026-12-31", "2026-12-30", "2026-12-29", "2026-12-28",
                                       "2026-12-27", "2026-12-26", "2026-12-25", "2026-12-20",
                                       "2026-12-13", "2026-11-30", "2026-10-31", "2026-09-30",
                                       "2026-08-31", "2026-07-31"};
    expect_days(w, want, sizeof want / sizeof want[0]);
    free(w);
}
END_TEST

START_TEST(year_with_several_a_day_and_keep_last)
{
    /* four backups a day (every 6 h) for a year, keep_last 3 */
    struct world *w = calloc(1, sizeof *w);
    struct bk_policy p = defaults;
    p.keep_last = 3;
    int64_t start = at("20260101T000000Z");
    for (int s = 0; s < 365 * 4; s++)
        backup_and_prune(w, start + s * (DAY / 4), BK_VERIFIED, &p);
    /* the last is 2026-12-31T18:00; keep_last adds 12:00 and 06:00 of
     * that day; the newest of each day is its 18:00 backup */
    ck_assert_uint_eq(w->n, 16);
    size_t on_last_day = 0;
    int64_t last_day = at("20261231T000000Z");
    for (size_t i = 0; i < w->n; i++) {
        if (w->items[i].time_ms >= last_day)
            on_last_day++;
        else {
            char iso[40];
            bk_iso_time(iso, sizeof iso, w->items[i].time_ms);
            ck_assert_msg(strstr(iso, "T18:00:00Z") != NULL, "kept %s", iso);
        }
    }
    ck_assert_uint_eq(on_last_day, 3);
    free(w);
}
END_TEST

START_TEST(failed_verifications_and_outage)
{
    struct world *w = calloc(1, sizeof *w);
    int64_t start = at("20260101T020000Z");
    for (int d = 0; d < 200; d++)
        backup_and_prune(w, start + d * DAY, BK_VERIFIED, &defaults);
    int64_t last_good = start + 199 * DAY; /* 2026-07-19 */
    /* ten days of backups that fail verification: none takes a period,
     * the good ones before are kept as if the failures did not exist */
    for (int d = 200; d < 210; d++)
        backup_and_prune(w, start + d * DAY, BK_FAILED, &defaults);
    size_t failed = 0;
    bool newest_good = false;
    for (size_t i = 0; i < w->n; i++) {
        failed += w->items[i].state == BK_FAILED;
        newest_good |= w->items[i].time_ms == last_good;
    }
    ck_assert_uint_eq(failed, 0);
    ck_assert(newest_good);
    /* then an outage of 50 days: the next backup does not age the old
     * ones out, since only days with a backup count. Before: Jul 13-19
     * daily, Jul 12, 5 and Jun 28 weekly, Jun 30 to Feb 28 monthly (15);
     * Sep 8 pushes out only the oldest of each kind. */
    ck_assert_uint_eq(w->n, 15);
    backup_and_prune(w, start + 250 * DAY, BK_VERIFIED, &defaults);
    static const char *const want[] = {"2026-09-08", "2026-07-19", "2026-07-18", "2026-07-17",
                                       "2026-07-16", "2026-07-15", "2026-07-14", "2026-07-12",
                                       "2026-07-05", "2026-06-30", "2026-05-31", "2026-04-30",
                                       "2026-03-31"};
    expect_days(w, want, sizeof want / sizeof want[0]);
    /* with every keep_* at 0, the newest and the newest verified stay */
    struct bk_policy none = {0};
    backup_and_prune(w, start + 251 * DAY, BK_UNVERIFIED, &none);
    ck_assert_uint_eq(w->n, 2);
    ck_assert(w->items[0].time_ms == start + 250 * DAY || w->items[1].time_ms == start + 250 * DAY);
    free(w);
}
END_TEST

START_TEST(why_bits)
{
    struct bk_item it[3] = {
        {.time_ms = at("20260310T020000Z"), .state = BK_VERIFIED},
        {.time_ms = at("20260311T020000Z"), .state = BK_UNVERIFIED},
        {.time_ms = at("20260311T030000Z"), .state = BK_FAILED},
    };
    struct bk_policy p = {.keep_daily = 1};
    ck_assert_uint_eq(bk_retention_plan(it, 3, &p), 2);
    ck_assert(it[0].keep && (it[0].why & BK_WHY_VERIFIED));
    ck_assert(it[1].keep && (it[1].why & BK_WHY_NEWEST) && (it[1].why & BK_WHY_DAILY));
    ck_assert(!it[2].keep);
}
END_TEST

/* ---- names, DSNs, manifests
 * ---------------------------------------------------------------------- */

START_TEST(names)
{
    char name[BK_NAME_MAX];
    int64_t t = at("20261207T020304Z");
    bk_name_make(name, sizeof name, "nova", t);
    ck_assert_str_eq(name, "nova-nova-20261207T020304Z");
    ck_assert_int_eq(bk_name_time(name), t);
    bk_name_make(name, sizeof name, "my db/x", t + 999);
    ck_assert_str_eq(name, "nova-my_db_x-20261207T020304Z");
    bk_name_make(name, sizeof name, NULL, 0);
    ck_assert_str_eq(name, "nova-db-19700101T000000Z");
    ck_assert_int_eq(bk_name_time("nova-db-19700101T000000Z"), 0);
    ck_assert_int_eq(bk_name_time("nova-a-b-20240229T235959Z"), at("20240229T235959Z"));
    ck_assert_int_eq(bk_name_time("nova-db-20250229T000000Z"), -1);
    ck_assert_int_eq(bk_name_time("nova-db-20251301T000000Z"), -1);
    ck_assert_int_eq(bk_name_time("nova--20250101T000000Z"), -1);
    ck_assert_int_eq(bk_name_time("other-db-20250101T000000Z"), -1);
    ck_assert_int_eq(bk_name_time("nova-d b-20250101T000000Z"), -1);
    char iso[40];
    bk_iso_time(iso, sizeof iso, t);
    ck_assert_str_eq(iso, "2026-12-07T02:03:04Z");
}
END_TEST

START_TEST(dsns)
{
    struct bk_dsn d;
    char err[256];
    ck_assert_int_eq(bk_dsn_parse("postgresql://nova:s%40cret@db.example:6432/nova_prod?sslmode="
                                  "require&application_name=x",
                                  &d, err, sizeof err),
                     0);
    ck_assert_str_eq(d.password, "s@cret");
    ck_assert_str_eq(d.dbname, "nova_prod");
    ck_assert_str_eq(d.host, "db.example");
    ck_assert_ptr_null(strstr(d.conninfo, "cret"));
    ck_assert_str_eq(d.conninfo, "user='nova' host='db.example' port='6432' dbname='nova_prod' "
                                 "sslmode='require' application_name='x'");
    bk_dsn_free(&d);

    ck_assert_int_eq(bk_dsn_parse("postgres://[::1]:5433,h2/db", &d, err, sizeof err), 0);
    ck_assert_ptr_null(d.password);
    ck_assert_str_eq(d.conninfo, "host='::1,h2' port='5433,' dbname='db'");
    bk_dsn_free(&d);

    ck_assert_int_eq(
        bk_dsn_parse("postgresql:///nova?host=%2Fvar%2Frun%2Fpostgresql", &d, err, sizeof err), 0);
    ck_assert_str_eq(d.conninfo, "dbname='nova' host='/var/run/postgresql'");
    bk_dsn_free(&d);

    ck_assert_int_eq(bk_dsn_parse("host=localhost password='it''s\\' x' user=bob dbname = 'a b'",
                                  &d, err, sizeof err),
                     -EINVAL);
    bk_dsn_free(&d);
    ck_assert_int_eq(bk_dsn_parse("host=localhost password='it\\'s x' user=bob dbname = 'a b'", &d,
                                  err, sizeof err),
                     0);
    ck_assert_str_eq(d.password, "it's x");
    ck_assert_str_eq(d.dbname, "a b");
    ck_assert_str_eq(d.conninfo, "host='localhost' user='bob' dbname='a b'");
    bk_dsn_free(&d);

    ck_assert_int_eq(bk_dsn_parse("postgresql://u:p@h/d?password=q", &d, err, sizeof err), 0);
    ck_assert_str_eq(d.password, "q");
    ck_assert_ptr_null(strstr(d.conninfo, "password"));
    bk_dsn_free(&d);

    ck_assert_int_eq(bk_dsn_parse("postgresql://u@h/d?ssl=true", &d, err, sizeof err), 0);
    ck_assert_str_eq(d.conninfo, "user='u' host='h' dbname='d' sslmode='require'");
    ck_assert_str_eq(d.dbname, "d");
    bk_dsn_free(&d);

    ck_assert_int_eq(bk_dsn_parse("postgresql://u:%zz@h/d", &d, err, sizeof err), -EINVAL);
    ck_assert_ptr_null(strstr(err, "zz"));
    bk_dsn_free(&d);
    ck_assert_int_eq(bk_dsn_parse("", &d, err, sizeof err), -EINVAL);
    bk_dsn_free(&d);
    ck_assert_int_eq(bk_dsn_parse("host", &d, err, sizeof err), -EINVAL);
    bk_dsn_free(&d);
}
END_TEST

START_TEST(manifests)
{
    struct bk_manifest m = {0}, back;
    snprintf(m.name, sizeof m.name, "nova-nova-20261207T020000Z");
    m.created_ms = bk_name_time(m.name);
    m.finished_ms = m.created_ms + 65000;
    snprintf(m.database, sizeof m.database, "nova");
    snprintf(m.pg_dump_version, sizeof m.pg_dump_version, "pg_dump (PostgreSQL) 15.8");
    m.dump_bytes = 123456789012ULL;
    m.size = 123460000000ULL;
    memset(m.sha256, 'a', 64);
    bk_key_id_hex(key1, m.key_id);
    m.chunk_size = 65536;
    m.duration_ms = 65000;
    m.state = BK_VERIFIED;
    m.verified_ms = m.finished_ms + 1000;
    char *json = bk_manifest_render(&m);
    ck_assert_ptr_nonnull(json);
    ck_assert_ptr_nonnull(strstr(json, "\"created_at\":\t\"2026-12-07T02:00:00Z\""));
    ck_assert_ptr_nonnull(strstr(json, "\"verified\":\ttrue"));
    ck_assert_ptr_nonnull(strstr(json, "crypto_secretstream_xchacha20poly1305"));
    char err[256];
    ck_assert_int_eq(bk_manifest_parse(json, strlen(json), &back, err, sizeof err), 0);
    ck_assert_str_eq(back.name, m.name);
    ck_assert_uint_eq(back.size, m.size);
    ck_assert_uint_eq(back.dump_bytes, m.dump_bytes);
    ck_assert_str_eq(back.sha256, m.sha256);
    ck_assert_str_eq(back.key_id, m.key_id);
    ck_assert_int_eq(back.state, BK_VERIFIED);
    ck_assert_int_eq(back.verified_ms, m.verified_ms);
    ck_assert_int_eq(back.finished_ms, m.finished_ms);
    free(json);
    m.state = BK_FAILED;
    snprintf(m.verify_error, sizeof m.verify_error, "sha256 mismatch");
    json = bk_manifest_render(&m);
    ck_assert_int_eq(bk_manifest_parse(json, strlen(json), &back, err, sizeof err), 0);
    ck_assert_int_eq(back.state, BK_FAILED);
    ck_assert_str_eq(back.verify_error, "sha256 mismatch");
    free(json);
    ck_assert_int_eq(bk_manifest_parse("{}", 2, &back, err, sizeof err), -EINVAL);
    ck_assert_int_eq(bk_manifest_parse("nope", 4, &back, err, sizeof err), -EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("backups");
    TCase *c = tcase_create("format");
    tcase_add_unchecked_fixture(c, keys_setup, NULL);
    tcase_set_timeout(c, 60);
    tcase_add_test(c, roundtrip_sizes);
    tcase_add_test(c, default_chunk_and_header);
    tcase_add_test(c, wrong_key);
    tcase_add_test(c, truncations);
    tcase_add_test(c, flipped_bytes);
    tcase_add_test(c, trailing_and_swapped);
    tcase_add_test(c, key_text);
    suite_add_tcase(s, c);
    c = tcase_create("retention");
    tcase_add_test(c, year_of_daily_backups);
    tcase_add_test(c, year_with_several_a_day_and_keep_last);
    tcase_add_test(c, failed_verifications_and_outage);
    tcase_add_test(c, why_bits);
    suite_add_tcase(s, c);
    c = tcase_create("names");
    tcase_add_unchecked_fixture(c, keys_setup, NULL);
    tcase_add_test(c, names);
    tcase_add_test(c, dsns);
    tcase_add_test(c, manifests);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
