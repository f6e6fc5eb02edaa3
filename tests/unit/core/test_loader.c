#include "config.h"
#include "common/conf.h"
#include "core/loader.h"
#include "unit/testutil.h"

#include <errno.h>

static char fixture_dir[PATH_MAX];
static char err[NOVA_CONFIG_ERRMAX];

static void setup(void)
{
    snprintf(fixture_dir, sizeof fixture_dir, "%s/tests/fixtures/.libs", tu_builddir());
    err[0] = '\0';
}

static int open_fixture(const char *name, struct nova__plugin **p)
{
    return nova__plugin_open(fixture_dir, name, p, err, sizeof err);
}

START_TEST(good_plugin_loads_configures_and_inits)
{
    struct nova__plugin *p = NULL;
    ck_assert_msg(open_fixture("good", &p) == 0, "%s", err);
    ck_assert_str_eq(p->desc.name, "good");
    ck_assert_str_eq(p->desc.version, "0.0.1");
    ck_assert_int_eq(nova__plugin_configure(p, NULL, NULL, err, sizeof err), 0);
    struct nova__services svc = {0};
    uv_loop_t loop;
    uv_loop_init(&loop);
    svc.loop = &loop;
    ck_assert_msg(nova__plugin_init(p, &svc, err, sizeof err) == 0, "%s", err);
    ck_assert(p->initialized);
    ck_assert_int_eq(*(int *)p->state, 3); /* the config default reached init() */
    ck_assert_int_eq(p->host.host.abi_major, NOVA_ABI_MAJOR);
    ck_assert_int_eq(p->host.host.struct_size, sizeof(struct nova_host));
    nova__plugin_close(p);
    uv_loop_close(&loop);
}
END_TEST

START_TEST(wrong_major_names_field_and_values)
{
    struct nova__plugin *p = NULL;
    ck_assert_int_eq(open_fixture("wrong_major", &p), -EPROTO);
    ck_assert_ptr_null(p);
    char expect[128];
    snprintf(expect, sizeof expect, "abi_major is %d but this nova-worker supports %d",
             NOVA_ABI_MAJOR + 1, NOVA_ABI_MAJOR);
    ck_assert_msg(strstr(err, expect) != NULL, "%s", err);
    ck_assert_msg(strstr(err, "wrong_major.so") != NULL, "%s", err);
    ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

START_TEST(newer_minor_is_refused)
{
    struct nova__plugin *p = NULL;
    ck_assert_int_eq(open_fixture("newer_minor", &p), -EPROTO);
    char expect[128];
    snprintf(expect, sizeof expect, "abi_minor is %d, newer than this nova-worker's %d",
             NOVA_ABI_MINOR + 1, NOVA_ABI_MINOR);
    ck_assert_msg(strstr(err, expect) != NULL, "%s", err);
}
END_TEST

START_TEST(short_struct_is_refused)
{
    struct nova__plugin *p = NULL;
    ck_assert_int_eq(open_fixture("short_struct", &p), -EPROTO);
    ck_assert_msg(strstr(err, "struct_size is 24") != NULL, "%s", err);
}
END_TEST

START_TEST(missing_entry_point)
{
    struct nova__plugin *p = NULL;
    ck_assert_int_eq(open_fixture("no_entry", &p), -ENOEXEC);
    ck_assert_msg(strstr(err, "does not export nova_plugin_entry()") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "plugin no_entry:") == err, "%s", err);
}
END_TEST

START_TEST(missing_file)
{
    struct nova__plugin *p = NULL;
    ck_assert_int_eq(open_fixture("absent", &p), -ENOENT);
    ck_assert_msg(strstr(err, "plugin absent:") == err, "%s", err);
    ck_assert_msg(strstr(err, "absent.so: No such file or directory") != NULL, "%s", err);
}
END_TEST

START_TEST(unresolved_dependency_fails_at_load)
{
    struct nova__plugin *p = NULL;
    ck_assert_int_eq(open_fixture("unresolved", &p), -ENOEXEC);
    ck_assert_msg(strstr(err, "plugin unresolved: cannot load:") == err, "%s", err);
    ck_assert_msg(strstr(err, "nova_fixture_symbol_that_does_not_exist") != NULL, "%s", err);
}
END_TEST

START_TEST(init_failure_is_reported)
{
    struct nova__plugin *p = NULL;
    ck_assert_int_eq(open_fixture("init_fails", &p), 0);
    ck_assert_int_eq(nova__plugin_configure(p, NULL, NULL, err, sizeof err), 0);
    struct nova__services svc = {0};
    ck_assert_int_eq(nova__plugin_init(p, &svc, err, sizeof err), -EIO);
    ck_assert(!p->initialized);
    ck_assert_msg(strstr(err, "plugin init_fails: init failed") != NULL, "%s", err);
    nova__plugin_close(p); /* shutdown must not run after a failed init */
}
END_TEST

START_TEST(requires_unconfigured_service)
{
    struct nova__plugin *p = NULL;
    ck_assert_int_eq(open_fixture("needs_pg", &p), 0);
    struct nova__services svc = {0};
    ck_assert_int_eq(nova__plugin_check_requires(p, &svc, err, sizeof err), -ENOTSUP);
    ck_assert_msg(strstr(err, "requires PostgreSQL") != NULL, "%s", err);
    nova__plugin_close(p);
}
END_TEST

START_TEST(config_errors_name_file_and_line)
{
    const char *dir = tu_tempdir();
    char path[PATH_MAX];
    tu_write(dir, "n.conf", "[plugin good]\nenabled = yes\ncount = 11\n", path, sizeof path);
    struct nova__config *cfg = NULL;
    ck_assert_int_eq(nova__config_load(path, &cfg, err, sizeof err), 0);
    struct nova__plugin *p = NULL;
    ck_assert_int_eq(open_fixture("good", &p), 0);
    ck_assert_int_ne(
        nova__plugin_configure(p, cfg, nova__config_plugin(cfg, "good"), err, sizeof err), 0);
    ck_assert_msg(strstr(err, "n.conf:3: count: 11 is out of range (1 to 10)") != NULL, "%s", err);
    nova__plugin_close(p);
    nova__config_free(cfg);
    tu_rmtree(dir);
}
END_TEST

/* plugin_dir is a search path: directories that are missing or lack the
 * plugin are skipped, the first holding it wins, a miss names every path
 * tried; the listing merges the directories without repeats. */
START_TEST(plugin_dir_is_a_search_path)
{
    const char *tmp = tu_tempdir();
    char path[PATH_MAX * 3];
    snprintf(path, sizeof path, "/nonexistent/nova:%s::%s", tmp, fixture_dir);
    struct nova__plugin *p = NULL;
    ck_assert_msg(nova__plugin_open(path, "good", &p, err, sizeof err) == 0, "%s", err);
    ck_assert(strncmp(p->path, fixture_dir, strlen(fixture_dir)) == 0);
    nova__plugin_close(p);

    ck_assert_int_eq(nova__plugin_open(path, "absent", &p, err, sizeof err), -ENOENT);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err, "/nonexistent/nova/absent.so") != NULL && strstr(err, tmp) != NULL &&
                      strstr(err, "tests/fixtures/.libs/absent.so") != NULL,
                  "%s", err);

    char **names = NULL;
    snprintf(path, sizeof path, "%s:%s:/nonexistent", fixture_dir, fixture_dir);
    int n = nova__plugin_names(path, &names);
    ck_assert_int_gt(n, 3);
    int good = 0;
    for (int i = 0; i < n; i++) {
        good += strcmp(names[i], "good") == 0;
        if (i > 0)
            ck_assert_int_lt(strcmp(names[i - 1], names[i]), 0); /* sorted, no repeats */
    }
    ck_assert_int_eq(good, 1);
    nova__plugin_names_free(names, n);
    tu_rmtree(tmp);
}
END_TEST

START_TEST(bad_names_are_refused_before_any_path_is_built)
{
    struct nova__plugin *p = NULL;
    ck_assert_int_eq(open_fixture("../good", &p), -EINVAL);
    ck_assert_int_eq(open_fixture("", &p), -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, good_plugin_loads_configures_and_inits);
    tcase_add_test(tc, wrong_major_names_field_and_values);
    tcase_add_test(tc, newer_minor_is_refused);
    tcase_add_test(tc, short_struct_is_refused);
    tcase_add_test(tc, missing_entry_point);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, unresolved_dependency_fails_at_load);
    tcase_add_test(tc, init_failure_is_reported);
    tcase_add_test(tc, requires_unconfigured_service);
    tcase_add_test(tc, config_errors_name_file_and_line);
    tcase_add_test(tc, bad_names_are_refused_before_any_path_is_built);
    tcase_add_test(tc, plugin_dir_is_a_search_path);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
