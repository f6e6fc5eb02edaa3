/*
 * test_cmd_queue - `nova-worker queue stats|add|failed|retry` against a
 * real redis-server.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "queue/cmd_queue.h"
#include "lib/redis_server.h"
#include "unit/testutil.h"

static struct nova_test_redis R;
static struct nova__config cfg;
static redisContext *sync_c;
static char out[16384];

static void setup(void)
{
    ck_assert_int_eq(nova_test_redis_start(&R), 0);
    memset(&cfg, 0, sizeof(cfg));
    cfg.redis.url = R.url;
    cfg.redis.prefix = (char *)"bull";
    sync_c = redisConnect("127.0.0.1", R.port);
    ck_assert_ptr_nonnull(sync_c);
}

static void teardown(void)
{
    redisFree(sync_c);
    nova_test_redis_stop(&R);
}

/* Runs the subcommand with stdout captured into `out`. */
static int run(int argc, const char **argv)
{
    char path[] = "/tmp/nova-cmdq-XXXXXX";
    int fd = mkstemp(path), saved, rc;
    ssize_t n;
    ck_assert_int_ge(fd, 0);
    unlink(path);
    fflush(stdout);
    saved = dup(1);
    dup2(fd, 1);
    rc = nova__cmd_queue(&cfg, argc, (char **)argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    n = pread(fd, out, sizeof(out) - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

static long long rint_(const char *cmd)
{
    redisReply *r = redisCommand(sync_c, cmd);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

START_TEST(add_stats_failed_retry)
{
    const char *add1[] = {"queue", "add", "mail", "send", "{\"to\":\"a@b\"}"};
    const char *add2[] = {"queue", "add",     "mail",  "send",       "{}", "--job-id",
                          "m-1",   "--delay", "60000", "--attempts", "3"};
    const char *stats[] = {"queue", "stats", "mail"};
    const char *all[] = {"queue", "stats"};
    const char *failed[] = {"queue", "failed", "mail"};
    const char *retry[] = {"queue", "retry", "mail", "1"};
    const char *retry_none[] = {"queue", "retry", "mail", "nope"};
    redisReply *r;
    ck_assert_int_eq(run(5, add1), 0);
    ck_assert_str_eq(out, "1\n");
    ck_assert_int_eq(run(11, add2), 0);
    ck_assert_str_eq(out, "m-1\n");
    ck_assert_int_eq(run(11, add2), 0);
    ck_assert_ptr_nonnull(strstr(out, "duplicate"));
    r = redisCommand(sync_c, "HGET bull:mail:m-1 opts");
    ck_assert_str_eq(r->str, "{\"attempts\":3,\"delay\":60000,\"jobId\":\"m-1\"}");
    freeReplyObject(r);
    ck_assert_int_eq(run(3, stats), 0);
    ck_assert_ptr_nonnull(strstr(out, "mail: waiting=1 "));
    ck_assert_ptr_nonnull(strstr(out, "delayed=1 "));
    ck_assert_int_eq(run(2, all), 0);
    ck_assert_ptr_nonnull(strstr(out, "mail:"));

    /* fail job 1 by hand, as a worker would have */
    freeReplyObject(redisCommand(sync_c, "LREM bull:mail:wait 0 1"));
    freeReplyObject(redisCommand(sync_c, "ZADD bull:mail:failed 1 1"));
    freeReplyObject(
        redisCommand(sync_c, "HSET bull:mail:1 failedReason %s atm 1 finishedOn 1", "smtp down"));
    ck_assert_int_eq(run(3, failed), 0);
    ck_assert_str_eq(out, "1\tattempts=1\tsmtp down\n");
    ck_assert_int_eq(run(4, retry), 0);
    ck_assert_str_eq(out, "1\n");
    ck_assert_int_eq(rint_("ZCARD bull:mail:failed"), 0);
    ck_assert_int_eq(rint_("LLEN bull:mail:wait"), 1);
    ck_assert_int_eq(rint_("HEXISTS bull:mail:1 finishedOn"), 0);
    ck_assert_int_eq(run(4, retry_none), 1);
}
END_TEST

START_TEST(usage_and_errors)
{
    const char *help[] = {"queue", "--help"};
    const char *addhelp[] = {"queue", "add", "--help"};
    const char *bad[] = {"queue", "frobnicate"};
    const char *badjson[] = {"queue", "add", "q", "n", "{nope"};
    const char *badid[] = {"queue", "add", "q", "n", "{}", "--job-id", "123"};
    const char *baddelay[] = {"queue", "add", "q", "n", "{}", "--delay", "soon"};
    const char *none[] = {"queue"};
    ck_assert_int_eq(run(2, help), 0);
    ck_assert_ptr_nonnull(strstr(out, "retry QUEUE"));
    ck_assert_int_eq(run(3, addhelp), 0);
    ck_assert_ptr_nonnull(strstr(out, "--job-id"));
    ck_assert_int_eq(run(2, bad), 2);
    ck_assert_int_eq(run(5, badjson), 2);
    ck_assert_int_eq(run(7, badid), 2);
    ck_assert_int_eq(run(7, baddelay), 2);
    ck_assert_int_eq(run(1, none), 2);
    cfg.redis.url = (char *)"redis://127.0.0.1:1";
    {
        const char *stats[] = {"queue", "stats", "q"};
        ck_assert_int_eq(run(3, stats), 1);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cmd_queue");
    TCase *t = tcase_create("cli");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, add_stats_failed_retry);
    tcase_add_test(t, usage_and_errors);
    suite_add_tcase(s, t);
    return tu_run(s);
}
