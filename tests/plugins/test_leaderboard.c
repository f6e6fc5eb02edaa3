/*
 * Unit tests of the leaderboard plugin (its source linked in): the
 * schedules callback on configs the host fills from a file (defaults,
 * configured values, none) and the rendering of the cached list, which
 * must be byte for byte JSON.stringify() of node-pg's rows.
 */
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/conf.h"

#include "../../plugins/leaderboard/leaderboard.c"

static struct nova__config *conf;
static void *cfg;

/* The plugin's config as the host fills it from a [plugin leaderboard]
 * section holding `lines` (NULL: no section, defaults only). Returns the
 * fill's status; the message goes to err. */
static int fill(const char *lines, char *err, size_t errlen)
{
    const struct nova_plugin *p = nova_plugin_entry();
    const struct nova__plugin_section *section = NULL;
    if (lines != NULL) {
        const char *dir = tu_tempdir();
        char text[1024], path[PATH_MAX];
        snprintf(text, sizeof text, "[plugin leaderboard]\nenabled = yes\n%s", lines);
        tu_write(dir, "test.conf", text, path, sizeof path);
        char lerr[512] = "";
        ck_assert_msg(nova__config_load(path, &conf, lerr, sizeof lerr) == 0, "%s", lerr);
        tu_rmtree(dir);
        section = nova__config_plugin(conf, "leaderboard");
        ck_assert_ptr_nonnull(section);
    }
    return nova__config_fill(p->config, p->config_size, conf, section, &cfg, err, errlen);
}

static void teardown(void)
{
    nova__config_struct_free(nova_plugin_entry()->config, cfg);
    cfg = NULL;
    nova__config_free(conf);
    conf = NULL;
}

START_TEST(schedule_default)
{
    char err[256] = "";
    ck_assert_int_eq(fill(NULL, err, sizeof err), 0);
    const struct nova_plugin *p = nova_plugin_entry();
    ck_assert_ptr_nonnull(p->schedules);
    ck_assert_uint_ge(p->struct_size,
                      offsetof(struct nova_plugin, schedules) + sizeof p->schedules);
    struct nova_schedule out[NOVA_SCHEDULES_MAX];
    memset(out, 0, sizeof out);
    ck_assert_int_eq(p->schedules(cfg, out, NOVA_SCHEDULES_MAX, err, sizeof err), 1);
    ck_assert_str_eq(out[0].id, "leaderboard-refresh");
    ck_assert_str_eq(out[0].queue, "leaderboard");
    ck_assert_str_eq(out[0].job_name, "refresh");
    ck_assert_str_eq(out[0].spec, "every 5m");
    ck_assert_str_eq(out[0].timezone, "UTC");
    ck_assert_ptr_null(out[0].data_json);
    /* the strings live in the config (valid as long as it is) */
    const struct lb_config *c = cfg;
    ck_assert_ptr_eq(out[0].spec, c->schedule);
    ck_assert_ptr_eq(out[0].timezone, c->timezone);
    ck_assert_ptr_eq(out[0].queue, c->queue);
    ck_assert_int_eq(c->limit, 50);
    ck_assert_int_eq(c->ttl_ms, 300000);
}
END_TEST

START_TEST(schedule_configured)
{
    char err[256] = "";
    ck_assert_int_eq(fill("schedule = */10 * * * *\ntimezone = Europe/Paris\nqueue = lb-2\n"
                          "limit = 100\nttl = 10m\n",
                          err, sizeof err),
                     0);
    struct nova_schedule out[2];
    memset(out, 0, sizeof out);
    ck_assert_int_eq(nova_plugin_entry()->schedules(cfg, out, 2, err, sizeof err), 1);
    ck_assert_str_eq(out[0].id, "leaderboard-refresh");
    ck_assert_str_eq(out[0].queue, "lb-2");
    ck_assert_str_eq(out[0].job_name, "refresh");
    ck_assert_str_eq(out[0].spec, "*/10 * * * *");
    ck_assert_str_eq(out[0].timezone, "Europe/Paris");
    ck_assert_ptr_null(out[0].data_json);
    ck_assert_ptr_eq(out[0].spec, ((const struct lb_config *)cfg)->schedule);
    /* untouched past what it returns */
    ck_assert_ptr_null(out[1].id);
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

START_TEST(limit_bounds)
{
    char err[256] = "";
    ck_assert_int_ne(fill("limit = 101\n", err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "limit"));
    teardown();
    ck_assert_int_ne(fill("limit = 0\n", err, sizeof err), 0);
}
END_TEST

/* ---- rendering ---- */

struct table {
    const char *const (*cells)[3];
};

static const char *cell(void *ctx, int row, int col)
{
    const struct table *t = ctx;
    return t->cells[row][col];
}

static void expect_render(const char *const (*rows)[3], int n, const char *want)
{
    struct table t = {rows};
    char *got = lb_render(n, cell, &t);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(render_rows)
{
    /* what node-pg returns for Nova's query (int4, int8, int8) */
    static const char *const rows[][3] = {
        {"7", "500", "1"},
        {"12", "500", "1"},
        {"3", "90", "3"},
    };
    expect_render(rows, 3,
                  "[{\"user_id\":7,\"total_points\":\"500\",\"rank\":\"1\"},"
                  "{\"user_id\":12,\"total_points\":\"500\",\"rank\":\"1\"},"
                  "{\"user_id\":3,\"total_points\":\"90\",\"rank\":\"3\"}]");
    expect_render(NULL, 0, "[]");
}
END_TEST

START_TEST(render_types)
{
    /* numeric sums (Nova's 007 shape) stay their text; NULL is null; a
     * user_id that is no int4 (the wallet-keyed 006 shape) is a string,
     * as node-pg gives it */
    static const char *const rows[][3] = {
        {"-2147483648", "-5", "1"}, {"2147483647", "12.5000000", "2"}, {"2147483648", NULL, "3"},
        {NULL, "1", NULL},          {"GABC\"\\\n\x01", "0", "5"},      {"007", "1", "6"},
    };
    expect_render(rows, 6,
                  "[{\"user_id\":-2147483648,\"total_points\":\"-5\",\"rank\":\"1\"},"
                  "{\"user_id\":2147483647,\"total_points\":\"12.5000000\",\"rank\":\"2\"},"
                  "{\"user_id\":\"2147483648\",\"total_points\":null,\"rank\":\"3\"},"
                  "{\"user_id\":null,\"total_points\":\"1\",\"rank\":null},"
                  "{\"user_id\":\"GABC\\\"\\\\\\n\\u0001\",\"total_points\":\"0\",\"rank\":\"5\"},"
                  "{\"user_id\":\"007\",\"total_points\":\"1\",\"rank\":\"6\"}]");
}
END_TEST

START_TEST(queries)
{
    /* Nova's ranking with ties ordered by user_id, the weekly one over the
     * last 7 days, both limited by $1 */
    ck_assert_str_eq(lb_periods[0].key, "leaderboard:weekly");
    ck_assert_str_eq(lb_periods[1].key, "leaderboard:alltime");
    ck_assert_str_eq(lb_periods[1].sql,
                     "SELECT user_id, total_points, rank FROM (SELECT user_id, SUM(amount) AS "
                     "total_points, RANK() OVER (ORDER BY SUM(amount) DESC) AS rank FROM "
                     "point_transactions WHERE type = 'earned' GROUP BY user_id) ranked ORDER BY "
                     "rank, user_id LIMIT $1");
    ck_assert_ptr_nonnull(strstr(lb_periods[0].sql,
                                 "WHERE type = 'earned' AND created_at >= NOW() - INTERVAL "
                                 "'7 days' GROUP BY user_id"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("leaderboard");
    TCase *tc = tcase_create("schedules");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, schedule_default);
    tcase_add_test(tc, schedule_configured);
    tcase_add_test(tc, schedule_none_and_no_room);
    tcase_add_test(tc, limit_bounds);
    suite_add_tcase(s, tc);
    tc = tcase_create("render");
    tcase_add_test(tc, render_rows);
    tcase_add_test(tc, render_types);
    tcase_add_test(tc, queries);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
