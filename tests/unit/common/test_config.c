#include "config.h"
#include "common/conf.h"
#include "common/log.h"
#include "core/config_check.h"
#include "stellar/stellar_strkey.h"
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
    unsetenv("SOROBAN_RPC_URL");
    unsetenv("SOROBAN_RPC_URL_FALLBACK");
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

/* ---- every problem, not the first ----------------------------------------- */

/* The message of diag that contains needle, or NULL. */
static const char *find_msg(const struct nova__config_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->count; i++) {
        if (strstr(d->msg[i], needle) != NULL)
            return d->msg[i];
    }
    return NULL;
}

static void dump(const struct nova__config_diag *d, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < d->count; i++) {
        strncat(buf, d->msg[i], len - strlen(buf) - 1);
        strncat(buf, "\n", len - strlen(buf) - 1);
    }
}

/* diag holds "<file>:<line>: ...<what>...". */
static void expect_at(const struct nova__config_diag *d, const char *file, int line,
                      const char *what)
{
    char where[PATH_MAX + 16], all[8192];
    snprintf(where, sizeof where, "/%s:%d: ", file, line);
    dump(d, all, sizeof all);
    for (size_t i = 0; i < d->count; i++) {
        const char *at = strstr(d->msg[i], where);
        if (at != NULL && strstr(at, what) != NULL)
            return;
    }
    ck_abort_msg("no '%s...%s' among:\n%s", where, what, all);
}

START_TEST(every_problem_of_every_file_is_reported)
{
    clear_env();
    const char *dir = tu_tempdir();
    char sub[PATH_MAX], path[PATH_MAX], dsn[PATH_MAX + 64];
    snprintf(sub, sizeof sub, "%s/conf.d", dir);
    mkdir(sub, 0755);
    tu_write(dir, "conf.d/10-redis.conf",
             "[redis]\n"
             "url = http://:drop-in-pass@cache:6379\n" /* 2: not a redis URL, a secret */
             "lock_duration = soon\n"                  /* 3: not a duration */
             "this is not a key\n"                     /* 4: syntax */
             "colour = blue\n"                         /* 5: unknown key */
             "[plugin echo]\n"
             "enabled = perhaps\n", /* 7: not a boolean */
             NULL, 0);
    tu_write(dir, "conf.d/20-stellar.conf",
             "[stellar]\n"
             "horizon_url = ftp://horizon.example\n" /* 2: not http(s) */
             "soroban_rpc_url = https://\n"          /* 3: no host */
             "network = testnot\n"                   /* 4: neither */
             "[wroker]\n"
             "x = 1\n"  /* 6: unknown section */
             "y = 2\n", /* same section: not reported twice */
             NULL, 0);
    snprintf(dsn, sizeof dsn,
             "[worker]\n"
             "log_levle = debug\n"     /* 2: unknown key */
             "shutdown_timeout = 2x\n" /* 3: not a duration */
             "[ broken\n"              /* 4: syntax */
             "[postgres]\n"
             "pool_max = lots\n"      /* 6: not an integer */
             "dsn_file = %s/absent\n" /* 7: cannot read */
             "another bad line\n"     /* 8: syntax */
             "include = conf.d/*.conf\n",
             dir);
    tu_write(dir, "main.conf", dsn, path, sizeof path);

    struct nova__config_diag d = {0};
    struct nova__config *cfg = NULL;
    int rc = nova__config_load_all(path, &cfg, &d);
    ck_assert_int_ne(rc, 0);
    ck_assert_ptr_nonnull(cfg); /* the best the files allow, for further checks */
    expect_at(&d, "main.conf", 2, "unknown key 'log_levle' in [worker]");
    expect_at(&d, "main.conf", 3, "'2x' is not a duration");
    expect_at(&d, "main.conf", 4, "syntax error");
    expect_at(&d, "main.conf", 6, "'lots' is not an integer");
    expect_at(&d, "main.conf", 7, "dsn_file: cannot read");
    expect_at(&d, "main.conf", 8, "syntax error");
    expect_at(&d, "10-redis.conf", 2, "is not a redis:// URL");
    expect_at(&d, "10-redis.conf", 3, "'soon' is not a duration");
    expect_at(&d, "10-redis.conf", 4, "syntax error");
    expect_at(&d, "10-redis.conf", 5, "unknown key 'colour' in [redis]");
    expect_at(&d, "10-redis.conf", 7, "enabled: 'perhaps' is not a boolean");
    expect_at(&d, "20-stellar.conf", 2, "'ftp://horizon.example' is not a http(s):// URL");
    expect_at(&d, "20-stellar.conf", 3, "'https://' names no host");
    expect_at(&d, "20-stellar.conf", 4, "network: 'testnot' is neither");
    expect_at(&d, "20-stellar.conf", 6, "unknown section [wroker]");
    char all[8192];
    dump(&d, all, sizeof all);
    ck_assert_msg(d.count == 15, "%zu problems:\n%s", d.count, all);
    ck_assert_msg(strstr(all, "drop-in-pass") == NULL, "a secret was echoed:\n%s", all);
    /* A rejected value leaves its default. */
    ck_assert_int_eq(cfg->redis.lock_duration_ms, 30000);
    ck_assert_int_eq(cfg->postgres.pool_max, 10);
    nova__config_free(cfg);
    nova__config_diag_free(&d);

    /* nova__config_load() gives the first problem and says how many follow. */
    rc = nova__config_load(path, &cfg, err, sizeof err);
    ck_assert_int_ne(rc, 0);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(err, ": syntax error (expected [section] or key = value) (and 14 more "
                              "problems; `nova-worker check` lists them all)") != NULL,
                  "%s", err);
    tu_rmtree(dir);
}
END_TEST

START_TEST(include_problems_name_the_include_line)
{
    clear_env();
    const char *dir = tu_tempdir();
    char path[PATH_MAX], text[PATH_MAX * 2];
    /* A directory that cannot be read (a symlink loop), a file including
     * itself, a matched directory: each is reported at its include line. */
    snprintf(text, sizeof text, "%s/loop.d", dir);
    ck_assert_int_eq(symlink(text, text), 0);
    snprintf(text, sizeof text, "%s/dir.d", dir);
    mkdir(text, 0755);
    snprintf(text, sizeof text, "%s/dir.d/x.conf", dir);
    mkdir(text, 0755);
    tu_write(dir, "self.conf", "[worker]\ninclude = self.conf\n", NULL, 0);
    tu_write(dir, "main.conf",
             "include = loop.d/*.conf\n"
             "include = self.conf\n"
             "include = dir.d/*.conf\n"
             "include = absent.d/*.conf\n",
             path, sizeof path);
    struct nova__config_diag d = {0};
    struct nova__config *cfg = NULL;
    ck_assert_int_ne(nova__config_load_all(path, &cfg, &d), 0);
    expect_at(&d, "main.conf", 1, "cannot read include 'loop.d/*.conf'");
    expect_at(&d, "self.conf", 2, "self.conf is already being read (an include loop)");
    expect_at(&d, "main.conf", 3, "x.conf: cannot open: Is a directory");
    char all[4096];
    dump(&d, all, sizeof all);
    ck_assert_msg(d.count == 3, "%s", all);
    nova__config_free(cfg);
    nova__config_diag_free(&d);

    /* A line longer than the parser's buffer is one error, not several. */
    memset(text, 'x', 300);
    memcpy(text, "[worker]\nname = ", 16);
    strcpy(text + 300, "\nshutdown_timeout = never\n");
    tu_write(dir, "long.conf", text, path, sizeof path);
    ck_assert_int_ne(nova__config_load_all(path, &cfg, &d), 0);
    expect_at(&d, "long.conf", 2, "line longer than");
    expect_at(&d, "long.conf", 3, "'never' is not a duration");
    dump(&d, all, sizeof all);
    ck_assert_msg(d.count == 2, "%s", all);
    nova__config_free(cfg);
    nova__config_diag_free(&d);
    tu_rmtree(dir);
}
END_TEST

/* Loads text and runs the checks `check` adds; returns the problems. */
static struct nova__config_diag check_text(const char *text)
{
    const char *dir = tu_tempdir();
    char path[PATH_MAX];
    tu_write(dir, "nova.conf", text, path, sizeof path);
    struct nova__config_diag d = {0};
    struct nova__config *cfg = NULL;
    nova__config_load_all(path, &cfg, &d);
    if (cfg != NULL)
        nova__config_check_values(cfg, &d);
    nova__config_free(cfg);
    tu_rmtree(dir);
    return d;
}

struct value_case {
    const char *text;
    const char *expect; /* NULL: valid; else a substring of the one problem */
};

static const struct value_case value_cases[] = {
    /* [http] listen: IPv4, localhost or [IPv6], port 0 to 65535; empty disables. */
    {"[http]\nlisten = 127.0.0.1:9464\n", NULL},
    {"[http]\nlisten = 0.0.0.0:0\n", NULL},
    {"[http]\nlisten = [::1]:65535\n", NULL},
    {"[http]\nlisten = localhost:9464\n", NULL},
    {"[http]\nlisten =\n", NULL},
    {"[http]\nlisten = 127.0.0.1:65536\n",
     "nova.conf:2: [http] listen '127.0.0.1:65536': bad port"},
    {"[http]\nlisten = 127.0.0.1:\n", "nova.conf:2: [http] listen '127.0.0.1:': bad port"},
    {"[http]\nlisten = 9464\n", "nova.conf:2: [http] listen '9464': expected host:port"},
    {"[http]\nlisten = ::1:9464\n", "is not an IP address"},
    {"[http]\nlisten = metrics.example:9464\n", "'metrics.example' is not an IP address"},
    /* URLs and their schemes. */
    {"[redis]\nurl = rediss://user:pw@cache.example:6380/2\n", NULL},
    {"[redis]\nurl = unix:///run/redis/redis.sock?db=1\n", NULL},
    {"[redis]\nurl = unix://run/redis.sock\n", "nova.conf:2: url: the value (a secret, not shown) "
                                               "needs an absolute socket path"},
    {"[redis]\nurl = redis://:pw@/0\n", "nova.conf:2: url: the value (a secret, not shown) names "
                                        "no host"},
    {"[redis]\nurl = redis://:pw@cache:notaport\n", "nova.conf:2: redis url: bad host or port"},
    {"[stellar]\nhorizon_url = http://127.0.0.1:8000/\n", NULL},
    {"[stellar]\nhorizon_url = horizon.stellar.org\n", "nova.conf:2: horizon_url: "
                                                       "'horizon.stellar.org' is not a http(s)://"},
    {"[stellar]\nsoroban_rpc_url = https://rpc.example/ x\n", "contains a blank"},
    {"[stellar]\nsoroban_rpc_url_fallback = https://rpc2.example\n",
     "soroban_rpc_url_fallback is set but soroban_rpc_url is not"},
    {"[postgres]\ndsn = postgresql://nova@db/nova\n", NULL},
    {"[postgres]\ndsn = host=db dbname=nova\n", NULL},
    {"[postgres]\ndsn = mysql://nova:pw@db/nova\n", "nova.conf:2: dsn: the value (a secret, not "
                                                    "shown) is neither a postgresql:// URI"},
    {"[postgres]\ndsn = nova\n", "is neither a postgresql:// URI nor a key=value"},
    /* Stellar keys: version byte, length and checksum. */
    {"[stellar]\nasset_issuer = GA\n", "nova.conf:2: [stellar] asset_issuer 'GA' is not a valid "
                                       "public key (G..., 56 characters, checksum): wrong length"},
};

START_TEST(values_are_checked_as_run_checks_them)
{
    clear_env();
    const struct value_case *c = &value_cases[_i];
    struct nova__config_diag d = check_text(c->text);
    char all[4096];
    dump(&d, all, sizeof all);
    if (c->expect == NULL) {
        ck_assert_msg(d.count == 0, "case %d: %s", _i, all);
    } else {
        ck_assert_msg(d.count == 1, "case %d: %zu problems:\n%s", _i, d.count, all);
        ck_assert_msg(strstr(d.msg[0], c->expect) != NULL, "case %d: '%s' lacks '%s'", _i, d.msg[0],
                      c->expect);
    }
    ck_assert_msg(strstr(all, ":pw@") == NULL && strstr(all, "nova:pw") == NULL,
                  "case %d echoes a secret: %s", _i, all);
    nova__config_diag_free(&d);
}
END_TEST

START_TEST(stellar_keys_use_the_strkey_checksum)
{
    clear_env();
    uint8_t raw[32];
    char issuer[NOVA_STRKEY_MAX], seed[NOVA_STRKEY_MAX], text[512];
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(i * 7 + 1);
    ck_assert_int_eq(nova__strkey_encode(NOVA_STRKEY_ACCOUNT, raw, 32, issuer, sizeof issuer), 56);
    ck_assert_int_eq(nova__strkey_encode(NOVA_STRKEY_SEED, raw, 32, seed, sizeof seed), 56);

    snprintf(text, sizeof text, "[stellar]\nasset_issuer = %s\ndistribution_secret = %s\n", issuer,
             seed);
    struct nova__config_diag d = check_text(text);
    ck_assert_msg(d.count == 0, "%s", d.count ? d.msg[0] : "");
    nova__config_diag_free(&d);

    /* One character off: the checksum no longer matches. */
    issuer[10] = issuer[10] == 'A' ? 'B' : 'A';
    seed[10] = seed[10] == 'A' ? 'B' : 'A';
    snprintf(text, sizeof text, "[stellar]\nasset_issuer = %s\n\ndistribution_secret = %s\n",
             issuer, seed);
    d = check_text(text);
    char all[4096];
    dump(&d, all, sizeof all);
    ck_assert_msg(d.count == 2, "%s", all);
    ck_assert_ptr_nonnull(find_msg(&d, "nova.conf:2: [stellar] asset_issuer '"));
    ck_assert_ptr_nonnull(find_msg(&d, "is not a valid public key (G..., 56 characters, "
                                       "checksum): checksum mismatch"));
    ck_assert_ptr_nonnull(find_msg(&d, "nova.conf:4: [stellar] distribution_secret is not a "
                                       "valid secret seed (S..., 56 characters, checksum): "
                                       "checksum mismatch"));
    ck_assert_msg(strstr(all, seed) == NULL, "the seed was echoed: %s", all);
    nova__config_diag_free(&d);

    /* From a credential: the message names it, never the value. */
    const char *dir = tu_tempdir();
    char creds[PATH_MAX], path[PATH_MAX];
    snprintf(creds, sizeof creds, "%s/creds", dir);
    mkdir(creds, 0700);
    tu_write(dir, "creds/stellar-distribution-secret", "SNOTASEEDATALLBUTASECRET\n", NULL, 0);
    tu_write(dir, "nova.conf", "[stellar]\nnetwork = testnet\n", path, sizeof path);
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    struct nova__config *cfg = NULL;
    ck_assert_int_eq(nova__config_load_all(path, &cfg, &d), 0);
    ck_assert_int_eq(nova__config_check_values(cfg, &d), 1);
    ck_assert_msg(strstr(d.msg[0], "[stellar] distribution_secret (from credential "
                                   "stellar-distribution-secret) is not a valid secret seed "
                                   "(S..., 56 characters, checksum)") == d.msg[0],
                  "%s", d.msg[0]);
    ck_assert_ptr_null(strstr(d.msg[0], "NOTASEED"));
    nova__config_free(cfg);
    nova__config_diag_free(&d);

    /* From the environment: named as such. */
    unsetenv("CREDENTIALS_DIRECTORY");
    setenv("ISSUER_PUBLIC", "GNOTAKEY", 1);
    ck_assert_int_eq(nova__config_load_all(path, &cfg, &d), 0);
    ck_assert_int_eq(nova__config_check_values(cfg, &d), 1);
    ck_assert_msg(strstr(d.msg[0], "[stellar] asset_issuer (from environment variable "
                                   "ISSUER_PUBLIC) 'GNOTAKEY' is not a valid public key") != NULL,
                  "%s", d.msg[0]);
    nova__config_free(cfg);
    nova__config_diag_free(&d);
    nova__log_clear_secrets();
    clear_env();
    tu_rmtree(dir);
}
END_TEST

/* ---- check --print ----------------------------------------------------------- */

static char *print_core(const struct nova__config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    nova__config_print_core(cfg, f);
    fclose(f);
    return buf;
}

/* out has the line "<start>...<end>" (end at the end of the line). */
static void expect_line(const char *out, const char *start, const char *end)
{
    const char *p = strstr(out, start);
    ck_assert_msg(p != NULL && (p == out || p[-1] == '\n'), "no line '%s' in:\n%s", start, out);
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    size_t el = strlen(end);
    ck_assert_msg(n >= el && strncmp(p + n - el, end, el) == 0, "line '%.*s' does not end in '%s'",
                  (int)n, p, end);
}

START_TEST(print_shows_every_value_and_its_origin)
{
    clear_env();
    const char *dir = tu_tempdir();
    char sub[PATH_MAX], path[PATH_MAX], text[PATH_MAX * 2], want[PATH_MAX * 2];
    snprintf(sub, sizeof sub, "%s/conf.d", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/creds", dir);
    mkdir(sub, 0700);
    tu_write(dir, "conf.d/10-redis.conf", "[redis]\n\nurl = redis://:file-pass-1@10.0.0.5:6379\n",
             NULL, 0);
    tu_write(dir, "creds/postgres-dsn", "postgresql://nova:cred-pass-2@db/nova?sslmode=require\n",
             NULL, 0);
    tu_write(dir, "seed", "SFILESEEDVALUE3\n", NULL, 0);
    snprintf(text, sizeof text,
             "[worker]\nshutdown_timeout = 2m\n[stellar]\ndistribution_secret_file = %s/seed\n"
             "include = conf.d/*.conf\n[redis]\npassword = plain-pass-4\n",
             dir);
    tu_write(dir, "main.conf", text, path, sizeof path);
    setenv("CREDENTIALS_DIRECTORY", sub, 1);
    setenv("HORIZON_URL", "https://horizon.stellar.org", 1);

    struct nova__config_diag d = {0};
    struct nova__config *cfg = NULL;
    ck_assert_int_eq(nova__config_load_all(path, &cfg, &d), 0);
    char *out = print_core(cfg);

    snprintf(want, sizeof want, "   # %s/conf.d/10-redis.conf:3", dir);
    expect_line(out, "[redis] url = redis://:***@10.0.0.5:6379   # ", want);
    snprintf(want, sizeof want, "   # %s:7", path);
    expect_line(out, "[redis] password = ***", want);
    expect_line(out, "[postgres] dsn = postgresql://nova:***@db/nova?sslmode=require   # ",
                "credential postgres-dsn");
    snprintf(want, sizeof want, "   # distribution_secret_file %s/seed (%s:4)", dir, path);
    expect_line(out, "[stellar] distribution_secret = ***", want);
    expect_line(out, "[stellar] horizon_url = https://horizon.stellar.org   # ", "env HORIZON_URL");
    snprintf(want, sizeof want, "   # %s:2", path);
    expect_line(out, "[worker] shutdown_timeout = 2m", want);
    expect_line(out, "[worker] log_level = info   # ", "default");
    expect_line(out, "[postgres] slow_query = 250ms   # ", "default");
    expect_line(out, "[redis] tls_skip_verify = no   # ", "default");
    expect_line(out, "[stellar] asset_issuer =   # ", "unset");
    expect_line(out, "[http] max_connections = 64   # ", "default");
    ck_assert_ptr_null(strstr(out, "file-pass-1"));
    ck_assert_ptr_null(strstr(out, "cred-pass-2"));
    ck_assert_ptr_null(strstr(out, "SFILESEEDVALUE3"));
    ck_assert_ptr_null(strstr(out, "plain-pass-4"));
    /* One line per core key. */
    size_t lines = 0, keys = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    for (int i = 0; nova__core_sections[i].name != NULL; i++)
        keys += nova__config_table_len(nova__core_sections[i].table);
    ck_assert_uint_eq(lines, keys);
    free(out);
    nova__config_free(cfg);
    nova__config_diag_free(&d);
    nova__log_clear_secrets();
    clear_env();
    tu_rmtree(dir);
}
END_TEST

START_TEST(secrets_are_masked)
{
    char buf[256];
    static const char *const cases[][2] = {
        {"redis://:pw@10.0.0.5:6379", "redis://:***@10.0.0.5:6379"},
        {"rediss://user:pw@cache:6380/2", "rediss://user:***@cache:6380/2"},
        {"redis://token@cache", "redis://***@cache"},
        {"redis://127.0.0.1:6379", "redis://127.0.0.1:6379"},
        {"unix:///run/redis.sock?db=1", "unix:///run/redis.sock?db=1"},
        {"postgresql://u:p@db/nova?sslmode=require&password=x",
         "postgresql://u:***@db/nova?sslmode=require&password=***"},
        {"host=db user=nova password=x", "***"},
        {"SBSECRETSEED", "***"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_str_eq(nova__config_mask_secret(cases[i][0], buf, sizeof buf), cases[i][1]);
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
    tcase_add_test(tc, every_problem_of_every_file_is_reported);
    tcase_add_test(tc, include_problems_name_the_include_line);
    tcase_add_loop_test(tc, values_are_checked_as_run_checks_them, 0,
                        (int)(sizeof value_cases / sizeof value_cases[0]));
    tcase_add_test(tc, stellar_keys_use_the_strkey_checksum);
    tcase_add_test(tc, print_shows_every_value_and_its_origin);
    tcase_add_test(tc, secrets_are_masked);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
