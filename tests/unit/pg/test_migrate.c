/*
 * test_migrate - `nova-worker migrate` against a real PostgreSQL 15.
 */
#include "config.h"

#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg/cmd_migrate.h"
#include "common/conf.h"
#include "pg/migrate.h"
#include "lib/pg_server.h"

static struct pg_server server;
static char migrations_dir[1024];

static void server_up(void)
{
    const char *src = getenv("NOVA_SRCDIR");
    snprintf(migrations_dir, sizeof migrations_dir, "%s/migrations",
             src != NULL ? src : NOVA_TEST_SRCDIR);
    ck_assert_msg(pg_server_start(&server) == 0, "PostgreSQL 15 did not start");
}

static void server_down(void)
{
    pg_server_destroy(&server);
}

/* Counts *.sql files in the shipped migrations directory. */
static int shipped_count(void)
{
    char cmd[1100], out[32];
    snprintf(cmd, sizeof cmd, "ls %s/*.sql | wc -l", migrations_dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(fgets(out, sizeof out, p));
    pclose(p);
    return atoi(out);
}

static const char *value(const char *db, const char *sql)
{
    static char buf[256];
    ck_assert_msg(pg_server_query_value(&server, db, sql, buf, sizeof buf) == 0, "query: %s", sql);
    return buf;
}

static struct nova__config cfg_for(const char *db, char *dsn, size_t len)
{
    struct nova__config cfg;
    memset(&cfg, 0, sizeof cfg);
    pg_server_dsn(&server, db, NULL, dsn, len);
    cfg.postgres.dsn = dsn;
    return cfg;
}

/* Runs the CLI entry point with stdout/stderr captured into out. */
static int cli(const char *db, char *out, size_t outlen, int argc, const char **argv)
{
    char dsn[512];
    struct nova__config cfg = cfg_for(db, dsn, sizeof dsn);
    FILE *cap = tmpfile();
    ck_assert_ptr_nonnull(cap);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(cap), 1);
    dup2(fileno(cap), 2);
    int rc = nova__cmd_migrate(&cfg, argc, (char **)argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    rewind(cap);
    size_t n = fread(out, 1, outlen - 1, cap);
    out[n] = '\0';
    fclose(cap);
    return rc;
}

static int migrate(const char *db, char *out, size_t outlen)
{
    const char *argv[] = {"migrate", "--dir", migrations_dir, NULL};
    return cli(db, out, outlen, 3, argv);
}

static const char *const worker_tables[] = {"users",
                                            "merchants",
                                            "campaigns",
                                            "reward_issuances",
                                            "point_transactions",
                                            "user_balance",
                                            "transactions",
                                            "webhooks",
                                            "webhook_deliveries",
                                            "contract_events",
                                            "contract_event_cursors",
                                            "audit_logs",
                                            "reward_issuance_failures",
                                            "nova_worker_stellar_txs",
                                            "nova_worker_payments",
                                            "nova_worker_processed_jobs",
                                            "nova_worker_migrations",
                                            NULL};

static void assert_tables(const char *db)
{
    char sql[256];
    for (size_t i = 0; worker_tables[i] != NULL; i++) {
        snprintf(sql, sizeof sql, "SELECT to_regclass('%s') IS NOT NULL", worker_tables[i]);
        ck_assert_msg(strcmp(value(db, sql), "t") == 0, "table %s missing", worker_tables[i]);
    }
}

START_TEST(test_empty_db_twice_is_noop)
{
    char out[4096];
    ck_assert_int_eq(pg_server_create_db(&server, "m_empty"), 0);
    int rc = migrate("m_empty", out, sizeof out);
    ck_assert_msg(rc == 0, "migrate failed: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "applied 001_nova_schema.sql"));
    assert_tables("m_empty");
    char n[16];
    snprintf(n, sizeof n, "%d", shipped_count());
    ck_assert_str_eq(value("m_empty", "SELECT count(*) FROM nova_worker_migrations"), n);

    /* The balance trigger keeps user_balance at balance_after. */
    ck_assert_int_eq(
        pg_server_exec(&server, "m_empty",
                       "INSERT INTO users (wallet_address) VALUES ('GA1');"
                       "INSERT INTO point_transactions (user_id, type, amount, "
                       "balance_before, balance_after) VALUES (1, 'earned', 70, 0, 70)"),
        0);
    ck_assert_str_eq(value("m_empty", "SELECT balance FROM user_balance WHERE user_id = 1"), "70");

    const char *schema_before = value("m_empty", "SELECT md5(string_agg(table_name || '.' || "
                                                 "column_name, ',' ORDER BY table_name, "
                                                 "column_name)) FROM information_schema.columns "
                                                 "WHERE table_schema = 'public'");
    char before[256];
    snprintf(before, sizeof before, "%s", schema_before);
    rc = migrate("m_empty", out, sizeof out);
    ck_assert_msg(rc == 0, "second migrate failed: %s", out);
    ck_assert_msg(strstr(out, "nothing to apply") != NULL, "output: %s", out);
    ck_assert_str_eq(value("m_empty", "SELECT count(*) FROM nova_worker_migrations"), n);
    ck_assert_str_eq(value("m_empty", "SELECT md5(string_agg(table_name || '.' || column_name, "
                                      "',' ORDER BY table_name, column_name)) FROM "
                                      "information_schema.columns WHERE table_schema = 'public'"),
                     before);

    const char *st[] = {"migrate", "--status", "--dir", migrations_dir, NULL};
    rc = cli("m_empty", out, sizeof out, 4, st);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "001_nova_schema.sql") != NULL && strstr(out, " 0 pending") != NULL,
                  "status: %s", out);
}
END_TEST

START_TEST(test_status_before_migrate)
{
    char out[4096];
    ck_assert_int_eq(pg_server_create_db(&server, "m_status"), 0);
    const char *st[] = {"migrate", "--status", "--dir", migrations_dir, NULL};
    ck_assert_int_eq(cli("m_status", out, sizeof out, 4, st), 0);
    ck_assert_msg(strstr(out, "0 applied") != NULL && strstr(out, "pending") != NULL, "status: %s",
                  out);
    /* --status changes nothing */
    ck_assert_str_eq(value("m_status", "SELECT to_regclass('users') IS NULL"), "t");
}
END_TEST

START_TEST(test_concurrent_runs)
{
    ck_assert_int_eq(pg_server_create_db(&server, "m_conc"), 0);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0) {
            char dsn[512];
            struct nova__config cfg = cfg_for("m_conc", dsn, sizeof dsn);
            const char *argv[] = {"migrate", "--dir", migrations_dir, NULL};
            freopen("/dev/null", "w", stdout);
            _exit(nova__cmd_migrate(&cfg, 3, (char **)argv));
        }
    }
    for (int i = 0; i < 4; i++) {
        int st;
        ck_assert_int_eq(waitpid(kids[i], &st, 0), kids[i]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run %d failed", i);
    }
    char n[16];
    snprintf(n, sizeof n, "%d", shipped_count());
    ck_assert_str_eq(value("m_conc", "SELECT count(*) FROM nova_worker_migrations"), n);
    assert_tables("m_conc");
}
END_TEST

START_TEST(test_on_nova_api_database)
{
    char out[4096], path[1100], *sql;
    const char *src = getenv("NOVA_SRCDIR");
    snprintf(path, sizeof path, "%s/tests/fixtures/nova_api_schema.sql",
             src != NULL ? src : NOVA_TEST_SRCDIR);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    sql = calloc(1, 65536);
    ck_assert_uint_gt(fread(sql, 1, 65535, f), 0);
    fclose(f);
    ck_assert_int_eq(pg_server_create_db(&server, "m_nova"), 0);
    ck_assert_int_eq(pg_server_exec(&server, "m_nova", sql), 0);
    free(sql);

    int rc = migrate("m_nova", out, sizeof out);
    ck_assert_msg(rc == 0, "migrate on Nova's schema failed: %s", out);
    assert_tables("m_nova");
    /* the API's data, tables and bookkeeping are untouched */
    ck_assert_str_eq(value("m_nova", "SELECT count(*) FROM schema_migrations"), "5");
    ck_assert_str_eq(value("m_nova", "SELECT count(*) FROM merchants"), "1");
    ck_assert_str_eq(value("m_nova", "SELECT balance FROM user_balance WHERE user_id = 1"), "100");
    ck_assert_str_eq(value("m_nova", "SELECT to_regclass('user_balances') IS NOT NULL"), "t");
    /* the API's own trigger function stayed in place */
    ck_assert_int_eq(pg_server_exec(&server, "m_nova",
                                    "INSERT INTO point_transactions (user_id, type, amount, "
                                    "balance_before, balance_after) "
                                    "VALUES (1, 'earned', 5, 100, 105)"),
                     0);
    ck_assert_str_eq(value("m_nova", "SELECT balance || ' ' || (updated_at < '2001-01-01') "
                                     "FROM user_balance WHERE user_id = 1"),
                     "105 true");
    /* columns the workers need were added where the API lacked them */
    ck_assert_str_eq(value("m_nova", "SELECT count(*) FROM information_schema.columns WHERE "
                                     "(table_name, column_name) IN (('audit_logs', 'after_state'), "
                                     "('audit_logs', 'actor_type'), ('users', 'last_login_at'), "
                                     "('webhook_deliveries', 'delivery_id'))"),
                     "4");
    /* no twin of an index the API already has under its own name */
    ck_assert_str_eq(value("m_nova", "SELECT count(*) FROM pg_indexes WHERE tablename = "
                                     "'reward_issuances' AND indexdef LIKE '%(status)'"),
                     "1");
    ck_assert_str_eq(value("m_nova", "SELECT count(*) FROM pg_indexes WHERE tablename = "
                                     "'point_transactions' AND indexdef LIKE '%(user_id)'"),
                     "1");
    rc = migrate("m_nova", out, sizeof out);
    ck_assert_msg(rc == 0 && strstr(out, "nothing to apply") != NULL, "second run: %s", out);
}
END_TEST

/* Writes name=content files into a fresh temp dir. */
static void make_dir(char *dir, size_t len, const char *const *files)
{
    snprintf(dir, len, "/tmp/nova-mig-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (size_t i = 0; files[i] != NULL; i += 2) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(files[i + 1], f);
        fclose(f);
    }
}

static void rm_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_failing_file_rolls_back)
{
    char dir[64], out[4096], err[1024];
    const char *files[] = {"001_ok.sql", "CREATE TABLE a (x int);\n", "002_bad.sql",
                           "CREATE TABLE b (x int);\nSELECT 1/0;\n", NULL};
    make_dir(dir, sizeof dir, files);
    ck_assert_int_eq(pg_server_create_db(&server, "m_bad"), 0);
    char dsn[512];
    pg_server_dsn(&server, "m_bad", NULL, dsn, sizeof dsn);
    FILE *o = tmpfile();
    int rc = nova__migrate(dsn, dir, NOVA_MIGRATE_APPLY, o, err, sizeof err);
    fclose(o);
    ck_assert_int_eq(rc, -EIO);
    ck_assert_msg(strstr(err, "002_bad.sql: 22012: division by zero") != NULL, "err: %s", err);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_str_eq(value("m_bad", "SELECT to_regclass('a') IS NOT NULL"), "t");
    ck_assert_str_eq(value("m_bad", "SELECT to_regclass('b') IS NULL"), "t");
    ck_assert_str_eq(value("m_bad", "SELECT string_agg(name, ',') FROM nova_worker_migrations"),
                     "001_ok.sql");

    /* fixed file: applies; then editing an applied file is refused */
    const char *fixed[] = {"002_bad.sql", "CREATE TABLE b (x int);\n", NULL};
    char dir2[64];
    make_dir(dir2, sizeof dir2, fixed);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cp %s/002_bad.sql %s/", dir2, dir);
    ck_assert_int_eq(system(cmd), 0);
    const char *argv[] = {"migrate", "--dir", dir, NULL};
    ck_assert_int_eq(cli("m_bad", out, sizeof out, 3, argv), 0);
    snprintf(cmd, sizeof cmd, "echo '-- edited' >> %s/001_ok.sql", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(cli("m_bad", out, sizeof out, 3, argv), 1);
    ck_assert_msg(strstr(out, "001_ok.sql was changed after it was applied") != NULL, "out: %s",
                  out);
    rm_dir(dir);
    rm_dir(dir2);
}
END_TEST

/* A file marked "-- migrate: idempotent" runs again when it changed (001
 * works on any state of a Nova database, so a newer 001 can reach a
 * database an older one migrated); any other changed file is refused. */
START_TEST(test_idempotent_file_runs_again_when_changed)
{
    char dir[64], out[4096];
    const char *files[] = {"001_same.sql",
                           "-- migrate: idempotent\nCREATE TABLE IF NOT EXISTS a (x int);\n",
                           "002_plain.sql", "CREATE TABLE b (x int);\n", NULL};
    make_dir(dir, sizeof dir, files);
    ck_assert_int_eq(pg_server_create_db(&server, "m_idem"), 0);
    const char *argv[] = {"migrate", "--dir", dir, NULL};
    ck_assert_int_eq(cli("m_idem", out, sizeof out, 3, argv), 0);
    char before[80];
    snprintf(before, sizeof before, "%s",
             value("m_idem", "SELECT checksum FROM nova_worker_migrations WHERE version = 1"));
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "echo 'ALTER TABLE a ADD COLUMN IF NOT EXISTS y int;' >> %s/001_same.sql", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(cli("m_idem", out, sizeof out, 3, argv), 0);
    ck_assert_msg(strstr(out, "applied again (changed) 001_same.sql") != NULL, "out: %s", out);
    ck_assert_str_eq(value("m_idem", "SELECT count(*) FROM information_schema.columns WHERE "
                                     "table_name = 'a' AND column_name = 'y'"),
                     "1");
    ck_assert_str_ne(
        value("m_idem", "SELECT checksum FROM nova_worker_migrations WHERE version = 1"), before);
    ck_assert_str_eq(value("m_idem", "SELECT count(*) FROM nova_worker_migrations"), "2");
    /* then it is applied: nothing to do */
    ck_assert_int_eq(cli("m_idem", out, sizeof out, 3, argv), 0);
    ck_assert_msg(strstr(out, "nothing to apply") != NULL, "out: %s", out);
    /* the unmarked one is still refused when edited */
    snprintf(cmd, sizeof cmd, "echo '-- edited' >> %s/002_plain.sql", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(cli("m_idem", out, sizeof out, 3, argv), 1);
    ck_assert_msg(strstr(out, "002_plain.sql was changed after it was applied") != NULL, "out: %s",
                  out);
    rm_dir(dir);
}
END_TEST

START_TEST(test_bad_input)
{
    char out[4096], dir[64];
    ck_assert_int_eq(pg_server_create_db(&server, "m_input"), 0);
    const char *help[] = {"migrate", "--help", NULL};
    ck_assert_int_eq(cli("m_input", out, sizeof out, 2, help), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: nova-worker migrate"));
    const char *unknown[] = {"migrate", "--frobnicate", NULL};
    ck_assert_int_eq(cli("m_input", out, sizeof out, 2, unknown), 2);
    ck_assert_ptr_nonnull(strstr(out, "--frobnicate"));
    const char *nodir[] = {"migrate", "--dir", NULL};
    ck_assert_int_eq(cli("m_input", out, sizeof out, 2, nodir), 2);
    const char *missing[] = {"migrate", "--dir=/nonexistent/nova", NULL};
    ck_assert_int_eq(cli("m_input", out, sizeof out, 2, missing), 1);
    ck_assert_msg(strstr(out, "/nonexistent/nova") != NULL, "out: %s", out);

    const char *files[] = {"01_short.sql", "SELECT 1;", NULL};
    make_dir(dir, sizeof dir, files);
    const char *badname[] = {"migrate", "--dir", dir, NULL};
    ck_assert_int_eq(cli("m_input", out, sizeof out, 3, badname), 1);
    ck_assert_msg(strstr(out, "01_short.sql: bad migration file name") != NULL, "out: %s", out);
    rm_dir(dir);

    const char *dup[] = {"001_a.sql", "SELECT 1;", "001_b.sql", "SELECT 1;", NULL};
    make_dir(dir, sizeof dir, dup);
    ck_assert_int_eq(cli("m_input", out, sizeof out, 3, badname), 1);
    ck_assert_msg(strstr(out, "share version 001") != NULL, "out: %s", out);
    rm_dir(dir);

    /* wrong password: one line, no password */
    char dsn[512], err[1024];
    snprintf(dsn, sizeof dsn, "postgresql://postgres:Not-The-Pw1@127.0.0.1:%d/m_input",
             server.port);
    FILE *o = tmpfile();
    ck_assert_int_eq(nova__migrate(dsn, migrations_dir, NOVA_MIGRATE_APPLY, o, err, sizeof err),
                     -ECONNREFUSED);
    fclose(o);
    ck_assert_msg(strstr(err, "password authentication failed") != NULL, "err: %s", err);
    ck_assert_ptr_null(strstr(err, "Not-The-Pw1"));
    ck_assert_ptr_null(strchr(err, '\n'));
    o = tmpfile();
    ck_assert_int_eq(nova__migrate("host=127.0.0.1 s3cretTok", migrations_dir, NOVA_MIGRATE_APPLY,
                                   o, err, sizeof err),
                     -ECONNREFUSED);
    fclose(o);
    ck_assert_msg(strstr(err, "cannot connect") != NULL, "err: %s", err);
    ck_assert_msg(strstr(err, "s3cretTok") == NULL, "password-like token leaked: %s", err);
    ck_assert_int_eq(
        nova__migrate(NULL, migrations_dir, NOVA_MIGRATE_APPLY, stdout, err, sizeof err), -EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("migrate");
    TCase *tc = tcase_create("migrate");
    tcase_add_unchecked_fixture(tc, server_up, server_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_empty_db_twice_is_noop);
    tcase_add_test(tc, test_status_before_migrate);
    tcase_add_test(tc, test_concurrent_runs);
    tcase_add_test(tc, test_on_nova_api_database);
    tcase_add_test(tc, test_failing_file_rolls_back);
    tcase_add_test(tc, test_idempotent_file_runs_again_when_changed);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
