#include "config.h"
#include "common/conf.h"
#include "common/log.h"
#include "unit/testutil.h"

#include <errno.h>

static char err[NOVA_CONFIG_ERRMAX];

static struct nova__config *load_text(const char *text, int *rc_out)
{
    const char *dir = tu_tempdir();
    char path[PATH_MAX];
    tu_write(dir, "nova.conf", text, path, sizeof path);
    struct nova__config *cfg = NULL;
    err[0] = '\0';
    *rc_out = nova__config_load(path, &cfg, err, sizeof err);
    tu_rmtree(dir);
    return cfg;
}

static void clear_env(void)
{
    unsetenv("REDIS_URL");
    unsetenv("DATABASE_URL");
    unsetenv("LOG_LEVEL");
    unsetenv("STELLAR_NETWORK");
    unsetenv("HORIZON_URL");
    unsetenv("ISSUER_PUBLIC");
    unsetenv("DISTRIBUTION_SECRET");
    unsetenv("CREDENTIALS_DIRECTORY");
}

START_TEST(defaults_apply_to_an_empty_file)
{
    clear_env();
    int rc;
    struct nova__config *cfg = load_text("# nothing\n", &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(cfg->redis.url, "redis://127.0.0.1:6379");
    ck_assert_str_eq(cfg->redis.prefix, "bull");
    ck_assert_int_eq(cfg->worker.shutdown_timeout_ms, 30000);
    ck_assert_int_eq(cfg->worker.log_level, NOVA_LOG_INFO);
    ck_assert_int_eq(cfg->postgres.pool_max, 10);
    ck_assert_ptr_null(cfg->postgres.dsn);
    ck_assert_str_eq(cfg->http.listen, "127.0.0.1:9464");
    ck_assert_str_eq(cfg->stellar.network_passphrase, "Test SDF Network ; September 2015");
    ck_assert_ptr_nonnull(cfg->worker.name);
    nova__config_free(cfg);
}
END_TEST

START_TEST(values_types_and_comments)
{
    clear_env();
    int rc;
    struct nova__config *cfg = load_text("; comment\n"
                                         "[worker]\n"
                                         "log_level = debug ; inline comment\n"
                                         "shutdown_timeout = 2m\n"
                                         "name = w1\n"
                                         "[redis]\n"
                                         "url = redis://:pw@localhost:7000/2\n"
                                         "prefix = {bull}\n"
                                         "lock_duration = 5s\n"
                                         "[postgres]\n"
                                         "dsn = postgres://nova@db/nova\n"
                                         "pool_min = 1\n"
                                         "pool_max = 4\n"
                                         "slow_query = 100ms\n"
                                         "[stellar]\n"
                                         "network = public\n",
                                         &rc);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(cfg->worker.log_level, NOVA_LOG_DEBUG);
    ck_assert_int_eq(cfg->worker.shutdown_timeout_ms, 120000);
    ck_assert_str_eq(cfg->worker.name, "w1");
    ck_assert_str_eq(cfg->redis.prefix, "{bull}");
    ck_assert_int_eq(cfg->redis.lock_duration_ms, 5000);
    ck_assert_str_eq(cfg->postgres.dsn, "postgres://nova@db/nova");
    ck_assert_int_eq(cfg->postgres.pool_max, 4);
    ck_assert_int_eq(cfg->postgres.slow_query_ms, 100);
    ck_assert_str_eq(cfg->stellar.network_passphrase,
                     "Public Global Stellar Network ; September 2015");
    nova__config_free(cfg);
}
END_TEST

struct bad_case {
    const char *text;
    const char *expect; /* substring of the error, which must start with the file:line */
    int line;
};

static const struct bad_case bad_cases[] = {
    {"[worker]\nlog_levle = debug\n", "unknown key 'log_levle' in [worker]", 2},
    {"[worker]\nshutdown_timeout = soon\n", "'soon' is not a duration", 2},
    {"[postgres]\npool_max = lots\n", "'lots' is not an integer", 2},
    {"[postgres]\n\npool_max = 0\n", "out of range", 3},
    {"[redis]\nmax_stalled_count = -1\n", "out of range", 2},
    {"[wroker]\nx = 1\n", "unknown section [wroker]", 2},
    {"[worker]\nthis line has no equals sign\n", "syntax error", 2},
    {"[plugin echo]\nenabled = perhaps\n", "enabled: 'perhaps' is not a boolean", 2},
    {"[worker]\nlog_level = loud\n", "log_level: 'loud' is not one of", 2},
    {"stray = 1\n", "outside any section", 1},
    {"[redis]\nurl = http://x\n", "is not a redis:// URL", 2},
    {"[postgres]\npool_min = 5\npool_max = 2\n", "pool_min (5) is larger than pool_max (2)", 2},
    {"[stellar]\nnetwork = testnot\n", "neither testnet, public nor a network passphrase", 2},
    {"[postgres]\ndsn_file = /nonexistent/dsn\n", "dsn_file: cannot read '/nonexistent/dsn'", 2},
};

START_TEST(bad_files_name_file_and_line)
{
    clear_env();
    const struct bad_case *c = &bad_cases[_i];
    int rc;
    struct nova__config *cfg = load_text(c->text, &rc);
    ck_assert_ptr_null(cfg);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err, c->expect) != NULL, "case %d: '%s' lacks '%s'", _i, err, c->expect);
    char where[32];
    snprintf(where, sizeof where, "nova.conf:%d:", c->line);
    ck_assert_msg(strstr(err, where) != NULL, "case %d: '%s' lacks '%s'", _i, err, where);
}
END_TEST

START_TEST(missing_file_is_an_error)
{
    struct nova__config *cfg = NULL;
    int rc = nova__config_load("/nonexistent/nova.conf", &cfg, err, sizeof err);
    ck_assert_int_eq(rc, -ENOENT);
    ck_assert_ptr_null(cfg);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/nova.conf: cannot open"));
}
END_TEST

START_TEST(includes_override_in_name_order)
{
    clear_env();
    const char *dir = tu_tempdir();
    char sub[PATH_MAX], path[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/conf.d", dir);
    mkdir(sub, 0755);
    tu_write(dir, "conf.d/20-b.conf", "[redis]\nprefix = second\n[plugin echo]\nenabled = yes\n",
             NULL, 0);
    tu_write(dir, "conf.d/10-a.conf", "[redis]\nprefix = first\n", NULL, 0);
    tu_write(dir, "conf.d/ignored.txt", "[nonsense\n", NULL, 0);
    /* The include stands last, inside a section: drop-ins override the file. */
    tu_write(dir, "main.conf",
             "include = absent.d/*.conf\n[redis]\nprefix = main\ninclude = conf.d/*.conf\n", path,
             sizeof path);
    struct nova__config *cfg = NULL;
    int rc = nova__config_load(path, &cfg, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(cfg->redis.prefix, "second");
    const struct nova__plugin_section *echo = nova__config_plugin(cfg, "echo");
    ck_assert_ptr_nonnull(echo);
    ck_assert(echo->enabled);
    ck_assert_ptr_nonnull(strstr(echo->file, "20-b.conf"));
    ck_assert_int_eq(echo->line, 3);
    nova__config_free(cfg);

    /* An error inside a drop-in names the drop-in. */
    tu_write(dir, "conf.d/30-c.conf", "[redis]\n\nbogus = 1\n", NULL, 0);
    rc = nova__config_load(path, &cfg, err, sizeof err);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err, "30-c.conf:3: unknown key 'bogus'") != NULL, "%s", err);
    tu_rmtree(dir);
}
END_TEST

START_TEST(environment_fills_unset_values_only)
{
    clear_env();
    setenv("REDIS_URL", "redis://env-host:6390", 1);
    setenv("LOG_LEVEL", "warn", 1);
    setenv("DATABASE_URL", "postgres://u:envpass@h/db", 1);
    setenv("STELLAR_NETWORK", "public", 1);
    int rc;
    struct nova__config *cfg = load_text("[worker]\nlog_level = error\n", &rc);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(cfg->redis.url, "redis://env-host:6390");
    ck_assert_int_eq(cfg->worker.log_level, NOVA_LOG_ERROR); /* the file wins */
    ck_assert_str_eq(cfg->postgres.dsn, "postgres://u:envpass@h/db");
    ck_assert_str_eq(cfg->stellar.network_passphrase,
                     "Public Global Stellar Network ; September 2015");
    nova__config_free(cfg);

    setenv("LOG_LEVEL", "shouty", 1);
    cfg = load_text("", &rc);
    ck_assert_ptr_null(cfg);
    ck_assert_ptr_nonnull(strstr(err, "environment variable LOG_LEVEL"));
    clear_env();
}
END_TEST

START_TEST(secrets_from_files_and_credentials_are_redacted)
{
    clear_env();
    const char *dir = tu_tempdir();
    char secret_path[PATH_MAX], cfg_text[PATH_MAX + 64], path[PATH_MAX];
    tu_write(dir, "dsn", "postgres://u:filepass-123@h/db\n", secret_path, sizeof secret_path);
    snprintf(cfg_text, sizeof cfg_text, "[postgres]\ndsn_file = %s\n", secret_path);
    tu_write(dir, "a.conf", cfg_text, path, sizeof path);
    struct nova__config *cfg = NULL;
    ck_assert_int_eq(nova__config_load(path, &cfg, err, sizeof err), 0);
    ck_assert_str_eq(cfg->postgres.dsn, "postgres://u:filepass-123@h/db"); /* newline trimmed */
    nova__config_free(cfg);

    /* systemd credential: <section>-<key>, used when the file sets nothing. */
    char creds[PATH_MAX];
    snprintf(creds, sizeof creds, "%s/creds", dir);
    mkdir(creds, 0700);
    tu_write(dir, "creds/stellar-distribution-secret", "SCREDENTIALVALUE123\n", NULL, 0);
    tu_write(dir, "b.conf", "[stellar]\nnetwork = testnet\n", path, sizeof path);
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    setenv("DISTRIBUTION_SECRET", "SENVIRONMENTVALUE", 1);
    ck_assert_int_eq(nova__config_load(path, &cfg, err, sizeof err), 0);
    ck_assert_str_eq(cfg->stellar.distribution_secret, "SCREDENTIALVALUE123");
    char line[128] = "leaked SCREDENTIALVALUE123 and filepass-123 here";
    nova__log_redact(line);
    ck_assert_ptr_null(strstr(line, "SCREDENTIALVALUE123"));
    ck_assert_ptr_null(strstr(line, "filepass-123"));
    nova__config_free(cfg);
    nova__log_clear_secrets();
    clear_env();
    tu_rmtree(dir);
}
END_TEST

START_TEST(value_parser)
{
    int64_t v;
    bool b;
    char why[128];
    ck_assert_int_eq(nova__config_parse_value(NOVA_CONFIG_DURATION, "1h", 0, 0, &v, why, 128), 0);
    ck_assert_int_eq(v, 3600000);
    ck_assert_int_eq(nova__config_parse_value(NOVA_CONFIG_DURATION, "250", 0, 0, &v, why, 128), 0);
    ck_assert_int_eq(v, 250);
    ck_assert_int_eq(nova__config_parse_value(NOVA_CONFIG_DURATION, "-5s", 0, 0, &v, why, 128),
                     -EINVAL);
    ck_assert_int_eq(nova__config_parse_value(NOVA_CONFIG_DURATION, "5 s", 0, 0, &v, why, 128),
                     -EINVAL);
    ck_assert_int_eq(
        nova__config_parse_value(NOVA_CONFIG_INT, "99999999999999999999", 0, 0, &v, why, 128),
        -EINVAL);
    ck_assert_int_eq(nova__config_parse_value(NOVA_CONFIG_INT, "12", 1, 10, &v, why, 128), -ERANGE);
    ck_assert_ptr_nonnull(strstr(why, "12 is out of range (1 to 10)"));
    ck_assert_int_eq(nova__config_parse_value(NOVA_CONFIG_BOOL, "On", 0, 0, &b, why, 128), 0);
    ck_assert(b);
    ck_assert_int_eq(nova__config_parse_value(NOVA_CONFIG_BOOL, "nope", 0, 0, &b, why, 128),
                     -EINVAL);
}
END_TEST

struct plug_cfg {
    char *s;
    int64_t n;
    bool f;
    int64_t d;
    char *secret;
};

static const struct nova_config_entry plug_table[] = {
    {.key = "s",
     .type = NOVA_CONFIG_STRING,
     .default_value = "dflt",
     .offset = offsetof(struct plug_cfg, s)},
    {.key = "n",
     .type = NOVA_CONFIG_INT,
     .offset = offsetof(struct plug_cfg, n),
     .min = 1,
     .max = 5,
     .required = true},
    {.key = "f",
     .type = NOVA_CONFIG_BOOL,
     .default_value = "yes",
     .offset = offsetof(struct plug_cfg, f)},
    {.key = "d",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "1s",
     .offset = offsetof(struct plug_cfg, d),
     .env = "NOVA_TEST_PLUG_D"},
    {.key = "token", .type = NOVA_CONFIG_SECRET, .offset = offsetof(struct plug_cfg, secret)},
    {.key = NULL},
};

START_TEST(plugin_sections_fill_the_plugin_struct)
{
    clear_env();
    setenv("NOVA_TEST_PLUG_D", "7s", 1);
    int rc;
    struct nova__config *cfg = load_text("[plugin p]\nenabled = yes\nn = 4\ns = x\n", &rc);
    ck_assert_int_eq(rc, 0);
    void *out = NULL;
    rc = nova__config_fill(plug_table, sizeof(struct plug_cfg), cfg, nova__config_plugin(cfg, "p"),
                           &out, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    struct plug_cfg *pc = out;
    ck_assert_str_eq(pc->s, "x");
    ck_assert_int_eq(pc->n, 4);
    ck_assert(pc->f);
    ck_assert_int_eq(pc->d, 7000);
    ck_assert_ptr_null(pc->secret);
    nova__config_struct_free(plug_table, out);
    nova__config_free(cfg);
    unsetenv("NOVA_TEST_PLUG_D");

    cfg = load_text("[plugin p]\nn = 9\n", &rc);
    rc = nova__config_fill(plug_table, sizeof(struct plug_cfg), cfg, nova__config_plugin(cfg, "p"),
                           &out, err, sizeof err);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err, "nova.conf:2: n: 9 is out of range (1 to 5)") != NULL, "%s", err);
    nova__config_free(cfg);

    cfg = load_text("[plugin p]\nn = 2\nextra = 1\n", &rc);
    rc = nova__config_fill(plug_table, sizeof(struct plug_cfg), cfg, nova__config_plugin(cfg, "p"),
                           &out, err, sizeof err);
    ck_assert_msg(strstr(err, "nova.conf:3: unknown key 'extra' in [plugin p]") != NULL, "%s", err);
    nova__config_free(cfg);

    cfg = load_text("[plugin p]\ns = y\n", &rc);
    rc = nova__config_fill(plug_table, sizeof(struct plug_cfg), cfg, nova__config_plugin(cfg, "p"),
                           &out, err, sizeof err);
    ck_assert_msg(strstr(err, "[plugin p] n is required") != NULL, "%s", err);
    nova__config_free(cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults_apply_to_an_empty_file);
    tcase_add_test(tc, values_types_and_comments);
    tcase_add_loop_test(tc, bad_files_name_file_and_line, 0,
                        (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, missing_file_is_an_error);
    tcase_add_test(tc, includes_override_in_name_order);
    tcase_add_test(tc, environment_fills_unset_values_only);
    tcase_add_test(tc, secrets_from_files_and_credentials_are_redacted);
    tcase_add_test(tc, value_parser);
    tcase_add_test(tc, plugin_sections_fill_the_plugin_struct);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
