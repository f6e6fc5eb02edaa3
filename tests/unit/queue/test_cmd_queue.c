/*
 * test_cmd_queue - `nova-worker queue ...` against a real redis-server:
 * stats, add, failed, retry, list, show, remove, clean, promote, pause,
 * resume and replay, their --json documents, their errors and exit codes,
 * and the parsers behind them (durations, dead-letter data).
 */
#include "config.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "queue/cmd_queue.h"
#include "queue/cmd_queue_int.h"
#include "lib/redis_server.h"
#include "unit/testutil.h"

static struct nova_test_redis R;
static struct nova__config cfg;
static redisContext *sync_c;
static char out[65536];
static char errout[16384];

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

/* Runs the subcommand with stdout captured into `out`, stderr into `errout`. */
static int run(int argc, const char **argv)
{
    char path[] = "/tmp/nova-cmdq-XXXXXX", epath[] = "/tmp/nova-cmdq-err-XXXXXX";
    int fd = mkstemp(path), efd = mkstemp(epath), saved, esaved, rc;
    ssize_t n;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(efd, 0);
    unlink(path);
    unlink(epath);
    fflush(stdout);
    fflush(stderr);
    saved = dup(1);
    esaved = dup(2);
    dup2(fd, 1);
    dup2(efd, 2);
    rc = nova__cmd_queue(&cfg, argc, (char **)argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, 1);
    dup2(esaved, 2);
    close(saved);
    close(esaved);
    n = pread(fd, out, sizeof(out) - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    n = pread(efd, errout, sizeof(errout) - 1, 0);
    errout[n > 0 ? n : 0] = '\0';
    close(fd);
    close(efd);
    return rc;
}

/* run() with the arguments after "queue" listed, NULL-terminated. */
static int runl(const char *first, ...)
{
    const char *av[32] = {"queue", first};
    int n = 2;
    va_list ap;
    va_start(ap, first);
    while (n < 31 && (av[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    return run(n, av);
}
#define RUN(...) runl(__VA_ARGS__, (const char *)NULL)

/* stdout parsed as one JSON document (the caller deletes it). */
static cJSON *out_json(void)
{
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    return j;
}

static const char *rstr(const char *cmd)
{
    static char buf[4096];
    redisReply *r = redisCommand(sync_c, cmd);
    snprintf(buf, sizeof(buf), "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "(nil)");
    freeReplyObject(r);
    return buf;
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

START_TEST(durations_and_dead_letter_data)
{
    static const struct {
        const char *in;
        long long ms;
    } d[] = {{"7d", 604800000LL},
             {"12h", 43200000LL},
             {"30m", 1800000LL},
             {"45s", 45000LL},
             {"500ms", 500LL},
             {"1h30m", 5400000LL},
             {"2w", 1209600000LL},
             {"0", 0},
             {"", -1},
             {"7", -1},
             {"7x", -1},
             {"-1d", -1},
             {"d", -1},
             {"1.5h", -1},
             {"1h30", -1},
             {"99999999999999999w", -1}};
    static const struct {
        const char *in, *want;
    } dl[] = {
        {"{\"issuanceId\":1,\"failedReason\":\"no_trustline\",\"amount\":1.5}",
         "{\"issuanceId\":1,\"amount\":1.5}"},
        {"{\"failedReason\":\"x\",\"a\":1}", "{\"a\":1}"},
        {"{\"a\":1,\"failedReason\":\"x\"}", "{\"a\":1}"},
        {"{\"failedReason\":\"x\"}", "{}"},
        {"{\"a\":{\"failedReason\":\"in\"},\"failedReason\":\"out\"}",
         "{\"a\":{\"failedReason\":\"in\"}}"},
        {"{\"s\":\"a\\\",\\\"failedReason\\\":1\",\"failedReason\":\"r\",\"l\":[1,{\"b\":\"}\"}]}",
         "{\"s\":\"a\\\",\\\"failedReason\\\":1\",\"l\":[1,{\"b\":\"}\"}]}"},
        {"{\"failed\\u0052eason\":\"x\",\"b\":true}", "{\"b\":true}"},
        {"{\"amount\":12345678.123456789,\"failedReason\":\"x\"}",
         "{\"amount\":12345678.123456789}"},
        {"{\"raw\":\"[1,2]\",\"failedReason\":\"invalid payload\"}", "[1,2]"},
        {"{\"raw\":\"[1,2]\"}", "{\"raw\":\"[1,2]\"}"},
        {"{ \"a\" : 1 }", "{ \"a\" : 1 }"},
    };
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
        ck_assert_msg(nova__queue_parse_duration(d[i].in) == d[i].ms, "duration '%s'", d[i].in);
    for (size_t i = 0; i < sizeof(dl) / sizeof(dl[0]); i++) {
        char *got = nova__queue_dead_letter_data(dl[i].in);
        ck_assert_ptr_nonnull(got);
        ck_assert_str_eq(got, dl[i].want);
        free(got);
    }
    ck_assert_ptr_null(nova__queue_dead_letter_data("[1]"));
    ck_assert_ptr_null(nova__queue_dead_letter_data("nope"));
    ck_assert_ptr_null(nova__queue_dead_letter_data("\"s\""));
}
END_TEST

START_TEST(list_and_show)
{
    cJSON *j, *jobs;
    ck_assert_int_eq(RUN("add", "mail", "send", "{\"to\":\"a\"}"), 0);
    ck_assert_int_eq(RUN("add", "mail", "send", "{\"to\":\"b\"}", "--job-id", "m-2"), 0);
    ck_assert_int_eq(RUN("add", "mail", "later", "{}", "--job-id", "m-3", "--delay", "60000"), 0);
    ck_assert_int_eq(RUN("add", "mail", "send", "{}", "--json"), 0);
    j = out_json();
    ck_assert_str_eq(cJSON_GetObjectItem(j, "id")->valuestring, "4");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "duplicate")));
    cJSON_Delete(j);

    /* newest first, as getJobs; --limit */
    ck_assert_int_eq(RUN("list", "mail", "waiting"), 0);
    ck_assert_ptr_eq(strstr(out, "4\tsend\tcreated="), out);
    ck_assert_ptr_nonnull(strstr(out, "\nm-2\tsend\tcreated="));
    ck_assert_ptr_nonnull(strstr(errout, "3 of 3 waiting jobs of mail"));
    ck_assert_int_eq(RUN("list", "mail", "wait", "--limit", "1"), 0);
    ck_assert_ptr_null(strchr(out, '\n') ? strchr(strchr(out, '\n') + 1, '\t') : NULL);
    ck_assert_int_eq(RUN("list", "mail", "delayed", "--json"), 0);
    j = out_json();
    ck_assert_int_eq(cJSON_GetObjectItem(j, "total")->valueint, 1);
    jobs = cJSON_GetObjectItem(j, "jobs");
    ck_assert_int_eq(cJSON_GetArraySize(jobs), 1);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0), "id")->valuestring, "m-3");
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0), "due"));
    cJSON_Delete(j);
    ck_assert_int_eq(RUN("list", "mail", "nonsense"), 2);
    ck_assert_int_eq(RUN("list", "mail"), 2);

    /* a failed job, as a worker leaves it */
    freeReplyObject(redisCommand(sync_c, "LREM bull:mail:wait 0 m-2"));
    freeReplyObject(redisCommand(sync_c, "ZADD bull:mail:failed 1700000000000 m-2"));
    freeReplyObject(redisCommand(sync_c,
                                 "HSET bull:mail:m-2 failedReason %s atm 3 ats 3 processedOn "
                                 "1699999999000 finishedOn 1700000000000 stacktrace %s",
                                 "smtp down", "[\"Error: smtp down\",\"  at send\"]"));
    ck_assert_int_eq(RUN("list", "mail", "failed"), 0);
    ck_assert_ptr_nonnull(strstr(out, "m-2\tsend\tcreated="));
    ck_assert_ptr_nonnull(
        strstr(out, "\tattempts=3\tfinished=2023-11-14T22:13:20.000Z\treason=smtp down\n"));
    ck_assert_int_eq(RUN("show", "m-2"), 0); /* found in the only queue that has it */
    ck_assert_ptr_nonnull(strstr(out, "state            failed\n"));
    ck_assert_ptr_nonnull(strstr(out, "finishedOn       2023-11-14T22:13:20.000Z\n"));
    ck_assert_ptr_nonnull(strstr(out, "stacktrace\n  Error: smtp down\n    at send\n"));
    ck_assert_int_eq(RUN("show", "mail", "m-2", "--json"), 0);
    j = out_json();
    ck_assert_str_eq(cJSON_GetObjectItem(j, "state")->valuestring, "failed");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "failedReason")->valuestring, "smtp down");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "attemptsMade")->valueint, 3);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "processedOn")->valuestring,
                     "2023-11-14T22:13:19.000Z");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "stacktrace")), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "to")->valuestring, "b");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "opts"), "jobId")->valuestring,
                     "m-2");
    cJSON_Delete(j);
    ck_assert_int_eq(RUN("show", "m-3", "--json"), 0);
    j = out_json();
    ck_assert_str_eq(cJSON_GetObjectItem(j, "state")->valuestring, "delayed");
    cJSON_Delete(j);

    /* the same id in two queues: name one */
    ck_assert_int_eq(RUN("add", "sms", "send", "{}", "--job-id", "m-2"), 0);
    ck_assert_int_eq(RUN("show", "m-2"), 1);
    ck_assert_ptr_nonnull(strstr(errout, "exists in several queues: mail sms"));
    ck_assert_int_eq(RUN("show", "m-2", "--queue", "sms", "--json"), 0);
    j = out_json();
    ck_assert_str_eq(cJSON_GetObjectItem(j, "state")->valuestring, "waiting");
    cJSON_Delete(j);
    ck_assert_int_eq(RUN("show", "nope"), 1);
    ck_assert_ptr_nonnull(strstr(errout, "job 'nope' not found in any queue"));
    ck_assert_int_eq(RUN("show", "mail", "nope"), 1);
    ck_assert_ptr_nonnull(strstr(errout, "job 'nope' not found in queue 'mail'"));
    ck_assert_int_eq(RUN("show"), 2);
    ck_assert_int_eq(RUN("show", "a", "b", "c"), 2);
    ck_assert_int_eq(RUN("failed", "mail", "--json"), 0);
    j = out_json();
    jobs = cJSON_GetObjectItem(j, "jobs");
    ck_assert_int_eq(cJSON_GetArraySize(jobs), 1);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0), "failedReason")->valuestring,
                     "smtp down");
    cJSON_Delete(j);
    ck_assert_int_eq(RUN("stats", "--json"), 0);
    j = out_json();
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "mail"), "waiting")->valueint, 2);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "mail"), "failed")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sms"), "waiting")->valueint, 1);
    cJSON_Delete(j);
}
END_TEST

/* The last entry of a queue's events stream, as "event a b c d". */
static const char *last_event(const char *queue)
{
    static char buf[512];
    redisReply *r = redisCommand(sync_c, "XREVRANGE bull:%s:events + - COUNT 1", queue);
    buf[0] = '\0';
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *f = r->element[0]->element[1];
        for (size_t i = 0; i < f->elements; i++)
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? " " : "",
                     f->element[i]->str);
    }
    freeReplyObject(r);
    return buf;
}

START_TEST(remove_and_promote)
{
    cJSON *j;
    ck_assert_int_eq(RUN("add", "mail", "send", "{}", "--job-id", "d-1", "--delay", "60000"), 0);
    ck_assert_int_eq(RUN("add", "mail", "send", "{}", "--job-id", "w-1"), 0);
    ck_assert_int_eq(RUN("promote", "d-1"), 0);
    ck_assert_str_eq(out, "d-1 promoted in mail\n");
    ck_assert_str_eq(last_event("mail"), "event waiting jobId d-1 prev delayed");
    ck_assert_str_eq(rstr("HGET bull:mail:d-1 delay"), "0");
    ck_assert_int_eq(rint_("ZCARD bull:mail:delayed"), 0);
    ck_assert_int_eq(rint_("LLEN bull:mail:wait"), 2);
    ck_assert_str_eq(rstr("ZSCORE bull:mail:marker 0"), "0");
    ck_assert_int_eq(RUN("promote", "mail", "w-1", "nope", "--json"), 1);
    j = out_json();
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "promoted")), 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "errors")), 2);
    cJSON_Delete(j);
    ck_assert_ptr_nonnull(strstr(errout, "job 'w-1' of mail is not delayed (it is waiting)"));
    ck_assert_ptr_nonnull(strstr(errout, "job 'nope' not found in queue 'mail'"));

    /* remove: logs and dedup key go, a `removed` event */
    freeReplyObject(redisCommand(sync_c, "RPUSH bull:mail:w-1:logs line"));
    freeReplyObject(redisCommand(sync_c, "HSET bull:mail:w-1 deid dd"));
    freeReplyObject(redisCommand(sync_c, "SET bull:mail:de:dd w-1"));
    ck_assert_int_eq(RUN("remove", "mail", "w-1"), 0);
    ck_assert_str_eq(out, "w-1 removed from mail (was waiting)\n");
    ck_assert_str_eq(last_event("mail"), "event removed jobId w-1 prev wait");
    ck_assert_int_eq(rint_("EXISTS bull:mail:w-1 bull:mail:w-1:logs bull:mail:de:dd"), 0);
    ck_assert_int_eq(rint_("LLEN bull:mail:wait"), 1);
    /* refused: a running job, a scheduler's next run, a flow */
    freeReplyObject(redisCommand(sync_c, "SET bull:mail:d-1:lock tok"));
    ck_assert_int_eq(RUN("remove", "d-1"), 1);
    ck_assert_ptr_nonnull(strstr(errout, "is locked: a worker is running it"));
    freeReplyObject(redisCommand(sync_c, "DEL bull:mail:d-1:lock"));
    freeReplyObject(redisCommand(sync_c, "ZADD bull:mail:repeat 5000 tick"));
    freeReplyObject(
        redisCommand(sync_c, "HSET bull:mail:repeat:tick:5000 name t data {} rjk tick"));
    freeReplyObject(redisCommand(sync_c, "ZADD bull:mail:delayed 20480000 repeat:tick:5000"));
    ck_assert_int_eq(RUN("remove", "mail", "repeat:tick:5000"), 1);
    ck_assert_ptr_nonnull(strstr(errout, "next run of job scheduler 'tick'"));
    freeReplyObject(redisCommand(sync_c, "HSET bull:mail:d-1 parentKey bull:p:1"));
    ck_assert_int_eq(RUN("remove", "mail", "d-1", "--json"), 1);
    ck_assert_ptr_nonnull(strstr(errout, "unfinished child of flow parent bull:p:1"));
    j = out_json();
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "removed")), 0);
    cJSON_Delete(j);
    freeReplyObject(redisCommand(sync_c, "HDEL bull:mail:d-1 parentKey"));
    ck_assert_int_eq(RUN("remove", "d-1", "--json"), 0);
    j = out_json();
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "removed"), 0), "prev")
            ->valuestring,
        "wait");
    cJSON_Delete(j);
    ck_assert_int_eq(rint_("LLEN bull:mail:wait"), 0);
    ck_assert_int_eq(RUN("remove", "gone"), 1);
    ck_assert_int_eq(RUN("remove"), 2);
}
END_TEST

START_TEST(pause_and_resume)
{
    cJSON *j;
    ck_assert_int_eq(RUN("add", "mail", "send", "{}"), 0);
    ck_assert_int_eq(RUN("pause", "mail"), 0);
    ck_assert_str_eq(out, "mail paused\n");
    ck_assert_str_eq(rstr("HGET bull:mail:meta paused"), "1");
    ck_assert_int_eq(rint_("LLEN bull:mail:paused"), 1);
    ck_assert_int_eq(rint_("EXISTS bull:mail:wait bull:mail:marker"), 0);
    ck_assert_str_eq(last_event("mail"), "event paused");
    /* added while paused: to the paused list */
    ck_assert_int_eq(RUN("add", "mail", "send", "{}"), 0);
    ck_assert_int_eq(rint_("LLEN bull:mail:paused"), 2);
    ck_assert_int_eq(RUN("pause", "mail", "--json"), 0);
    j = out_json();
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "wasPaused")));
    cJSON_Delete(j);
    ck_assert_int_eq(RUN("resume", "mail"), 0);
    ck_assert_str_eq(out, "mail resumed\n");
    ck_assert_int_eq(rint_("HEXISTS bull:mail:meta paused"), 0);
    ck_assert_int_eq(rint_("LLEN bull:mail:wait"), 2);
    ck_assert_int_eq(rint_("EXISTS bull:mail:paused"), 0);
    ck_assert_str_eq(rstr("ZSCORE bull:mail:marker 0"), "0");
    ck_assert_str_eq(last_event("mail"), "event resumed");
    ck_assert_int_eq(RUN("resume", "mail", "--json"), 0);
    j = out_json();
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "wasPaused")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "paused")));
    cJSON_Delete(j);
    ck_assert_int_eq(RUN("pause"), 2);
    ck_assert_int_eq(RUN("pause", "a", "b"), 2);
    ck_assert_int_eq(RUN("pause", "fresh"), 0);
    ck_assert_ptr_nonnull(strstr(errout, "note: queue 'fresh' has no jobs"));
}
END_TEST

START_TEST(clean)
{
    cJSON *j;
    long long now = qc_now_ms();
    /* 1500 completed two days ago, 3 just now */
    freeReplyObject(redisCommand(
        sync_c, "EVAL %s 0 %lld",
        "for i = 1, 1500 do local f = ARGV[1] - 172800000 + i "
        "redis.call('HSET', 'bull:c:o' .. i, 'name', 'n', 'data', '{}', 'timestamp', f, "
        "'finishedOn', f) redis.call('ZADD', 'bull:c:completed', f, 'o' .. i) "
        "redis.call('RPUSH', 'bull:c:o' .. i .. ':logs', 'x') end "
        "for i = 1, 3 do redis.call('HSET', 'bull:c:n' .. i, 'name', 'n', 'finishedOn', ARGV[1]) "
        "redis.call('ZADD', 'bull:c:completed', ARGV[1], 'n' .. i) end",
        now));
    ck_assert_int_eq(RUN("clean", "c", "completed", "--older-than", "1d"), 0);
    ck_assert_str_eq(out, "cleaned 1500 completed jobs older than 1d from c\n");
    ck_assert_int_eq(rint_("ZCARD bull:c:completed"), 3);
    ck_assert_int_eq(rint_("EXISTS bull:c:o1 bull:c:o1:logs bull:c:o1500"), 0);
    ck_assert_str_eq(last_event("c"), "event cleaned count 500");
    /* waiting jobs by creation time; a running one stays */
    ck_assert_int_eq(RUN("add", "c", "w", "{}", "--job-id", "w1"), 0);
    ck_assert_int_eq(RUN("add", "c", "w", "{}", "--job-id", "w2"), 0);
    freeReplyObject(redisCommand(sync_c, "HSET bull:c:w1 timestamp 1000"));
    ck_assert_int_eq(RUN("clean", "c", "waiting", "--older-than", "1h", "--json"), 0);
    j = out_json();
    ck_assert_int_eq(cJSON_GetObjectItem(j, "cleaned")->valueint, 1);
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "ids"), 0)->valuestring, "w1");
    cJSON_Delete(j);
    freeReplyObject(redisCommand(sync_c, "LREM bull:c:wait 0 w2"));
    freeReplyObject(redisCommand(sync_c, "LPUSH bull:c:active w2"));
    freeReplyObject(redisCommand(sync_c, "SET bull:c:w2:lock tok"));
    ck_assert_int_eq(RUN("clean", "c", "active", "--older-than", "0", "--json"), 0);
    j = out_json();
    ck_assert_int_eq(cJSON_GetObjectItem(j, "cleaned")->valueint, 0);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "skipped")->valueint, 1);
    cJSON_Delete(j);
    freeReplyObject(redisCommand(sync_c, "DEL bull:c:w2:lock"));
    ck_assert_int_eq(RUN("clean", "c", "active", "--older-than", "0"), 0);
    ck_assert_int_eq(rint_("LLEN bull:c:active"), 0);
    /* delayed (a set by rank): 1200 old ones over two windows, one new, and
     * the pending run of a job scheduler, which stays */
    freeReplyObject(redisCommand(
        sync_c, "EVAL %s 0",
        "for i = 1, 1200 do redis.call('HSET', 'bull:c:dl' .. i, 'name', 'n', 'timestamp', i) "
        "redis.call('ZADD', 'bull:c:delayed', (1000000 + i) * 4096, 'dl' .. i) end "
        "redis.call('HSET', 'bull:c:repeat:t:5', 'name', 'n', 'timestamp', 1, 'rjk', 't') "
        "redis.call('ZADD', 'bull:c:repeat', 5, 't') "
        "redis.call('ZADD', 'bull:c:delayed', 4096, 'repeat:t:5')"));
    ck_assert_int_eq(RUN("add", "c", "n", "{}", "--job-id", "fresh", "--delay", "60000"), 0);
    ck_assert_int_eq(RUN("clean", "c", "delayed", "--older-than", "1d", "--json"), 0);
    j = out_json();
    ck_assert_int_eq(cJSON_GetObjectItem(j, "cleaned")->valueint, 1200);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "skipped")->valueint, 1);
    cJSON_Delete(j);
    ck_assert_int_eq(rint_("ZCARD bull:c:delayed"), 2);
    ck_assert_int_eq(rint_("EXISTS bull:c:dl1 bull:c:dl1200 bull:c:repeat:t:5 bull:c:fresh"), 2);
    /* paused (a list), with --limit across windows */
    freeReplyObject(redisCommand(
        sync_c, "EVAL %s 0",
        "for i = 1, 1500 do redis.call('HSET', 'bull:c:pz' .. i, 'name', 'n', 'timestamp', i) "
        "redis.call('LPUSH', 'bull:c:paused', 'pz' .. i) end"));
    ck_assert_int_eq(RUN("clean", "c", "paused", "--older-than", "1h", "--limit", "1100"), 0);
    ck_assert_str_eq(out, "cleaned 1100 paused jobs older than 1h from c\n");
    ck_assert_int_eq(rint_("LLEN bull:c:paused"), 400);
    ck_assert_int_eq(RUN("clean", "c", "paused", "--older-than", "1h"), 0);
    ck_assert_int_eq(rint_("EXISTS bull:c:paused"), 0);
    /* --limit */
    ck_assert_int_eq(RUN("clean", "c", "completed", "--older-than", "0", "--limit", "2"), 0);
    ck_assert_int_eq(rint_("ZCARD bull:c:completed"), 1);
    ck_assert_int_eq(RUN("clean", "c", "completed", "--older-than", "7x"), 2);
    ck_assert_ptr_nonnull(strstr(errout, "'7x' is not a duration"));
    ck_assert_int_eq(RUN("clean", "c", "completed"), 2);
    ck_assert_int_eq(RUN("clean", "c", "waiting-children", "--older-than", "1d"), 2);
}
END_TEST

START_TEST(replay)
{
    cJSON *j, *o, *b;
    /* dead letters, as the reward_issuance plugin adds them */
    ck_assert_int_eq(
        RUN("add", "reward-issuance-dlq", "dead-letter",
            "{\"issuanceId\":7,\"idempotencyKey\":\"k7\",\"campaignId\":1,"
            "\"walletAddress\":\"GA\",\"amount\":\"1.5\",\"failedReason\":\"no_trustline\"}"),
        0);
    ck_assert_str_eq(out, "1\n");
    ck_assert_int_eq(RUN("add", "reward-issuance-dlq", "dead-letter",
                         "{\"issuanceId\":8,\"amount\":2,\"failedReason\":\"x\"}"),
                     0);
    ck_assert_int_eq(RUN("add", "reward-issuance-dlq", "something-else", "{}"), 0);

    /* a dead letter's reason is in its data */
    ck_assert_int_eq(RUN("list", "reward-issuance-dlq", "waiting", "--limit", "0"), 0);
    ck_assert_ptr_nonnull(strstr(out, "1\tdead-letter\tcreated="));
    ck_assert_ptr_nonnull(strstr(out, "\treason=no_trustline\n"));
    /* --dry-run changes nothing */
    ck_assert_int_eq(RUN("replay", "reward-issuance-dlq", "--all", "--dry-run"), 0);
    ck_assert_str_eq(out, "1 -> 1-replay-1 {\"issuanceId\":7,\"idempotencyKey\":\"k7\","
                          "\"campaignId\":1,\"walletAddress\":\"GA\",\"amount\":\"1.5\"}\n"
                          "2 -> 2-replay-1 {\"issuanceId\":8,\"amount\":2}\n");
    ck_assert_int_eq(rint_("LLEN bull:reward-issuance-dlq:wait"), 3);
    ck_assert_int_eq(rint_("EXISTS bull:reward-issuance:id"), 0);

    /* a taken id is skipped */
    freeReplyObject(redisCommand(sync_c, "HSET bull:reward-issuance:1-replay-1 name old"));
    ck_assert_int_eq(RUN("replay", "reward-issuance-dlq", "1"), 0);
    ck_assert_str_eq(out, "1 -> 1-replay-2\n");
    ck_assert_int_eq(rint_("EXISTS bull:reward-issuance-dlq:1"), 0);
    ck_assert_int_eq(rint_("LLEN bull:reward-issuance-dlq:wait"), 2);
    ck_assert_str_eq(last_event("reward-issuance-dlq"), "event removed jobId 1 prev wait");
    ck_assert_int_eq(rint_("LLEN bull:reward-issuance:wait"), 1);
    ck_assert_str_eq(rstr("HGET bull:reward-issuance:1-replay-2 name"), "issue-reward");
    ck_assert_str_eq(rstr("HGET bull:reward-issuance:1-replay-2 data"),
                     "{\"issuanceId\":7,\"idempotencyKey\":\"k7\",\"campaignId\":1,"
                     "\"walletAddress\":\"GA\",\"amount\":\"1.5\"}");
    o = cJSON_Parse(rstr("HGET bull:reward-issuance:1-replay-2 opts"));
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "attempts")->valueint, 3);
    b = cJSON_GetObjectItem(o, "backoff");
    ck_assert_str_eq(cJSON_GetObjectItem(b, "type")->valuestring, "exponential");
    ck_assert_int_eq(cJSON_GetObjectItem(b, "delay")->valueint, 1000);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "removeOnComplete")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "removeOnFail")));
    ck_assert_str_eq(cJSON_GetObjectItem(o, "jobId")->valuestring, "1-replay-2");
    ck_assert_int_eq(cJSON_GetArraySize(o), 5);
    cJSON_Delete(o);
    ck_assert_str_eq(last_event("reward-issuance"), "event waiting jobId 1-replay-2");

    /* errors: not found, not a dead letter; the others still go */
    ck_assert_int_eq(RUN("replay", "reward-issuance-dlq", "1", "3", "2", "--json"), 1);
    ck_assert_ptr_nonnull(strstr(errout, "job '1' not found in reward-issuance-dlq"));
    ck_assert_ptr_nonnull(strstr(errout, "job '3' of reward-issuance-dlq is not a dead letter"));
    j = out_json();
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "replayed")), 1);
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "replayed"), 0), "newId")
            ->valuestring,
        "2-replay-1");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "errors")), 2);
    cJSON_Delete(j);
    ck_assert_int_eq(rint_("LLEN bull:reward-issuance-dlq:wait"), 1);
    /* --all leaves what is not a dead letter */
    ck_assert_int_eq(RUN("replay", "reward-issuance-dlq", "--all"), 0);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(errout, "skipped job '3'"));
    /* a dead letter without a JSON object as data */
    ck_assert_int_eq(RUN("add", "reward-issuance-dlq", "dead-letter", "[1]"), 0);
    ck_assert_int_eq(RUN("replay", "reward-issuance-dlq", "4"), 1);
    ck_assert_ptr_nonnull(strstr(errout, "has no JSON object as data"));
    freeReplyObject(redisCommand(sync_c, "DEL bull:reward-issuance-dlq:4"));
    freeReplyObject(redisCommand(sync_c, "LREM bull:reward-issuance-dlq:wait 0 4"));
    /* --to */
    ck_assert_int_eq(RUN("add", "reward-issuance-dlq", "dead-letter", "{\"failedReason\":\"x\"}"),
                     0);
    ck_assert_int_eq(RUN("replay", "reward-issuance-dlq", "5", "--to", "elsewhere"), 0);
    ck_assert_str_eq(out, "5 -> 5-replay-1\n");
    ck_assert_str_eq(rstr("HGET bull:elsewhere:5-replay-1 data"), "{}");
    /* usage */
    ck_assert_int_eq(RUN("replay", "reward-issuance-dlq"), 2);
    ck_assert_int_eq(RUN("replay", "reward-issuance-dlq", "1", "--all"), 2);
    ck_assert_int_eq(RUN("replay", "mail", "--all"), 2);
    ck_assert_ptr_nonnull(strstr(errout, "--to QUEUE"));
    ck_assert_int_eq(RUN("replay", "x-dlq", "--all", "--to", "x-dlq"), 2);
    ck_assert_int_eq(RUN("replay"), 2);
}
END_TEST

START_TEST(connection_errors)
{
    cfg.redis.url = (char *)"redis://:sekret@127.0.0.1:1";
    ck_assert_int_eq(RUN("show", "x"), 1);
    ck_assert_ptr_nonnull(
        strstr(errout, "nova-worker queue show: cannot connect to Redis at 127.0.0.1:1"));
    ck_assert_ptr_null(strstr(errout, "sekret"));
    ck_assert_int_eq(RUN("replay", "reward-issuance-dlq", "--all"), 1);
    ck_assert_ptr_nonnull(strstr(errout, "127.0.0.1:1"));
    /* usage errors need no connection */
    ck_assert_int_eq(RUN("clean", "q", "completed"), 2);
    ck_assert_ptr_null(strstr(errout, "cannot connect"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cmd_queue");
    TCase *t = tcase_create("cli");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, add_stats_failed_retry);
    tcase_add_test(t, usage_and_errors);
    tcase_add_test(t, durations_and_dead_letter_data);
    tcase_add_test(t, list_and_show);
    tcase_add_test(t, remove_and_promote);
    tcase_add_test(t, pause_and_resume);
    tcase_add_test(t, clean);
    tcase_add_test(t, replay);
    tcase_add_test(t, connection_errors);
    suite_add_tcase(s, t);
    return tu_run(s);
}
