/*
 * Unit tests of the daily_bonus plugin (its source linked in): the
 * schedules callback on configs the host fills from a file (defaults,
 * configured values, none), the DAILY_BONUS_POINTS fallback, and where the
 * day of a job comes from (data.day, the scheduler's slot in the job id,
 * the job's timestamp).
 */
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "common/conf.h"

#include "../../plugins/daily_bonus/daily_bonus.c"

static struct nova__config *conf;
static void *cfg;

/* The plugin's config as the host fills it from a [plugin daily_bonus]
 * section holding `lines` (NULL: no section, defaults only). */
static int fill(const char *lines, char *err, size_t errlen)
{
    const struct nova_plugin *p = nova_plugin_entry();
    const struct nova__plugin_section *section = NULL;
    if (lines != NULL) {
        const char *dir = tu_tempdir();
        char text[1024], path[PATH_MAX];
        snprintf(text, sizeof text, "[plugin daily_bonus]\nenabled = yes\n%s", lines);
        tu_write(dir, "test.conf", text, path, sizeof path);
        char lerr[512] = "";
        ck_assert_msg(nova__config_load(path, &conf, lerr, sizeof lerr) == 0, "%s", lerr);
        tu_rmtree(dir);
        section = nova__config_plugin(conf, "daily_bonus");
        ck_assert_ptr_nonnull(section);
    }
    return nova__config_fill(p->config, p->config_size, conf, section, &cfg, err, errlen);
}

static void setup(void)
{
    unsetenv("DAILY_BONUS_POINTS");
}

static void teardown(void)
{
    nova__config_struct_free(nova_plugin_entry()->config, cfg);
    cfg = NULL;
    nova__config_free(conf);
    conf = NULL;
    unsetenv("DAILY_BONUS_POINTS");
}

START_TEST(schedule_default)
{
    char err[256] = "";
    ck_assert_int_eq(fill(NULL, err, sizeof err), 0);
    const struct nova_plugin *p = nova_plugin_entry();
    ck_assert_ptr_nonnull(p->schedules);
    struct nova_schedule out[NOVA_SCHEDULES_MAX];
    memset(out, 0, sizeof out);
    ck_assert_int_eq(p->schedules(cfg, out, NOVA_SCHEDULES_MAX, err, sizeof err), 1);
    ck_assert_str_eq(out[0].id, "daily-bonus-grant");
    ck_assert_str_eq(out[0].queue, "daily-bonus");
    ck_assert_str_eq(out[0].job_name, "grant");
    ck_assert_str_eq(out[0].spec, "0 0 * * *");
    ck_assert_str_eq(out[0].timezone, "UTC");
    ck_assert_ptr_null(out[0].data_json);
    const struct db_config *c = cfg;
    ck_assert_ptr_eq(out[0].spec, c->schedule);
    ck_assert_ptr_eq(out[0].timezone, c->timezone);
    ck_assert_ptr_eq(out[0].queue, c->queue);
    ck_assert_int_eq(c->points, 10);
    ck_assert_int_eq(c->batch_size, 500);
    ck_assert_int_eq(c->lock_duration_ms, 30000);
}
END_TEST

START_TEST(schedule_configured)
{
    char err[256] = "";
    ck_assert_int_eq(fill("schedule = 30 2 * * *\ntimezone = America/New_York\n"
                          "queue = bonus-2\nbatch_size = 5\n",
                          err, sizeof err),
                     0);
    struct nova_schedule out[2];
    memset(out, 0, sizeof out);
    ck_assert_int_eq(nova_plugin_entry()->schedules(cfg, out, 2, err, sizeof err), 1);
    ck_assert_str_eq(out[0].id, "daily-bonus-grant");
    ck_assert_str_eq(out[0].queue, "bonus-2");
    ck_assert_str_eq(out[0].job_name, "grant");
    ck_assert_str_eq(out[0].spec, "30 2 * * *");
    ck_assert_str_eq(out[0].timezone, "America/New_York");
    ck_assert_ptr_null(out[0].data_json);
    ck_assert_ptr_null(out[1].id);
    ck_assert_int_eq(((const struct db_config *)cfg)->batch_size, 5);
}
END_TEST

START_TEST(schedule_none_and_no_room)
{
    char err[256] = "";
    ck_assert_int_eq(fill("schedule =\n", err, sizeof err), 0);
    struct nova_schedule out[1];
    memset(out, 0, sizeof out);
    ck_assert_int_eq(nova_plugin_entry()->schedules(cfg, out, 1, err, sizeof err), 0);
    ck_assert_ptr_null(out[0].id);
    teardown();
    ck_assert_int_eq(fill(NULL, err, sizeof err), 0);
    err[0] = '\0';
    ck_assert_int_eq(nova_plugin_entry()->schedules(cfg, out, 0, err, sizeof err), -ENOSPC);
    ck_assert_str_ne(err, "");
}
END_TEST

START_TEST(points_env_fallback)
{
    char err[256] = "";
    setenv("DAILY_BONUS_POINTS", "25", 1);
    ck_assert_int_eq(fill("batch_size = 7\n", err, sizeof err), 0);
    ck_assert_int_eq(((const struct db_config *)cfg)->points, 25);
    teardown();
    /* the file wins over the environment */
    setenv("DAILY_BONUS_POINTS", "25", 1);
    ck_assert_int_eq(fill("points = 3\n", err, sizeof err), 0);
    ck_assert_int_eq(((const struct db_config *)cfg)->points, 3);
    teardown();
    ck_assert_int_ne(fill("points = 0\n", err, sizeof err), 0);
    teardown();
    ck_assert_int_ne(fill("batch_size = 0\n", err, sizeof err), 0);
}
END_TEST

/* ---- the day of a job ---- */

static int source(const char *data_json, const char *job_id, int64_t ts, char day[11], int64_t *ms,
                  char *err, size_t errlen)
{
    cJSON *data = cJSON_Parse(data_json);
    ck_assert_ptr_nonnull(data);
    int rc = db_day_source(data, job_id, ts, day, ms, err, errlen);
    cJSON_Delete(data);
    return rc;
}

START_TEST(day_from_data)
{
    char day[11] = "", err[128] = "";
    int64_t ms = -1;
    /* a manual run names its day; it wins over a slot */
    ck_assert_int_eq(source("{\"day\":\"2026-03-26\"}", "repeat:daily-bonus-grant:1774569600000", 5,
                            day, &ms, err, sizeof err),
                     DB_DAY_DATA);
    ck_assert_str_eq(day, "2026-03-26");
    ck_assert_int_eq(ms, -1);
    static const char *const bad[] = {"{\"day\":\"2026-3-26\"}", "{\"day\":20260326}",
                                      "{\"day\":\"26/03/2026\"}", "{\"day\":\"2026-03-26T00:00Z\"}",
                                      "{\"day\":\"\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_int_eq(source(bad[i], "1", 5, day, &ms, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "YYYY-MM-DD"));
    }
}
END_TEST

START_TEST(day_from_slot_or_timestamp)
{
    char day[11] = "", err[128] = "";
    int64_t ms = -1;
    /* the scheduler's job: its timestamp is when it was made (the slot
     * before), its id carries the slot */
    ck_assert_int_eq(source("{}", "repeat:daily-bonus-grant:1774569600000", 1774483200123, day, &ms,
                            err, sizeof err),
                     DB_DAY_SLOT);
    ck_assert_int_eq(ms, 1774569600000);
    ck_assert_int_eq(source("{\"day\":null}", "repeat:x:0", 7, day, &ms, err, sizeof err),
                     DB_DAY_SLOT);
    ck_assert_int_eq(ms, 0);
    /* anything else: the job's timestamp */
    static const char *const ids[] = {"42",        "manual-run",   "repeat:daily-bonus-grant",
                                      "repeat::",  "repeat:x:12a", "repeat:x:1234567890123456",
                                      "Repeat:x:1"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        ms = -1;
        ck_assert_int_eq(source("{\"other\":1}", ids[i], 1774483200123, day, &ms, err, sizeof err),
                         DB_DAY_TIMESTAMP);
        ck_assert_int_eq(ms, 1774483200123);
    }
    ms = -1;
    ck_assert_int_eq(source("[]", NULL, 99, day, &ms, err, sizeof err), DB_DAY_TIMESTAMP);
    ck_assert_int_eq(ms, 99);
}
END_TEST

START_TEST(array_literals)
{
    static const int64_t v[] = {1, 22, 9007199254740993};
    char *s = array_text(v, 3);
    ck_assert_str_eq(s, "{1,22,9007199254740993}");
    free(s);
    s = array_text(v, 0);
    ck_assert_str_eq(s, "{}");
    free(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("daily_bonus");
    TCase *tc = tcase_create("schedules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, schedule_default);
    tcase_add_test(tc, schedule_configured);
    tcase_add_test(tc, schedule_none_and_no_room);
    tcase_add_test(tc, points_env_fallback);
    suite_add_tcase(s, tc);
    tc = tcase_create("day");
    tcase_add_test(tc, day_from_data);
    tcase_add_test(tc, day_from_slot_or_timestamp);
    tcase_add_test(tc, array_literals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
