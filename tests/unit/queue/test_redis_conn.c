/*
 * test_redis_conn - URL parsing and the async connection: handshake
 * (AUTH, SELECT, CLIENT SETNAME), EVALSHA with NOSCRIPT recovery,
 * reconnect after a server restart, and the deferred write path (commands
 * of one loop turn go out in one write, in the same turn a reply asked for
 * them; a burst larger than the socket buffer is delivered whole; closing
 * or resetting a connection with unsent commands).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "lib/redis_server.h"
#include "queue/redis_conn.h"
#include "queue/resp.h"
#include "unit/testutil.h"

START_TEST(url_parsing)
{
    struct nova__redis_target t;
    char err[256];
    ck_assert_int_eq(nova__redis_url_parse("redis://127.0.0.1:6380/2", &t, err, sizeof(err)), 0);
    ck_assert_str_eq(t.host, "127.0.0.1");
    ck_assert_int_eq(t.port, 6380);
    ck_assert_int_eq(t.db, 2);
    ck_assert_ptr_null(t.password);
    nova__redis_target_free(&t);
    ck_assert_int_eq(nova__redis_url_parse("redis://:p%40ss@redis.local", &t, err, sizeof(err)), 0);
    ck_assert_str_eq(t.password, "p@ss");
    ck_assert_ptr_null(t.username);
    ck_assert_int_eq(t.port, 6379);
    nova__redis_target_free(&t);
    ck_assert_int_eq(nova__redis_url_parse("redis://nova:secret@h:1/0", &t, err, sizeof(err)), 0);
    ck_assert_str_eq(t.username, "nova");
    ck_assert_str_eq(t.password, "secret");
    nova__redis_target_free(&t);
    ck_assert_int_eq(nova__redis_url_parse("unix:///run/redis.sock?db=3", &t, err, sizeof(err)), 0);
    ck_assert_str_eq(t.unix_path, "/run/redis.sock");
    ck_assert_int_eq(t.db, 3);
    nova__redis_target_free(&t);
    ck_assert_int_eq(nova__redis_url_parse("redis://[::1]:7000", &t, err, sizeof(err)), 0);
    ck_assert_str_eq(t.host, "::1");
    ck_assert_int_eq(t.port, 7000);
    nova__redis_target_free(&t);
    ck_assert_int_eq(nova__redis_url_parse("http://x", &t, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(nova__redis_url_parse("redis://h:99999", &t, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(nova__redis_url_parse("redis://h/abc", &t, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(nova__redis_url_parse("redis://:pw@", &t, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(strstr(err, "pw"));
    ck_assert_int_eq(nova__redis_url_parse("", &t, err, sizeof(err)), -EINVAL);
}
END_TEST

struct state {
    int ups, downs;
    int replies;
    long long last_int;
    char last_str[128];
    int last_status;
};

static void on_state(void *arg, bool up)
{
    struct state *s = arg;
    if (up)
        s->ups++;
    else
        s->downs++;
}

static void on_reply(void *arg, int status, const redisReply *r)
{
    struct state *s = arg;
    s->replies++;
    s->last_status = status;
    if (status == 0 && r->type == REDIS_REPLY_INTEGER)
        s->last_int = r->integer;
    if (status == 0 && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                        r->type == REDIS_REPLY_ERROR))
        snprintf(s->last_str, sizeof(s->last_str), "%s", r->str);
}

static void run_until(uv_loop_t *loop, int *counter, int want, int ms)
{
    for (int i = 0; i < ms / 5 && *counter < want; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    ck_assert_int_ge(*counter, want);
}

static void closed(void *arg)
{
    *(int *)arg = 1;
}

static struct nova__redis_script script = {.name = "t", .source = "return tonumber(ARGV[1]) + 1"};

START_TEST(connect_auth_select_eval_reconnect)
{
    struct nova_test_redis rs;
    struct nova__redis_target t;
    struct nova__redis_conn *c;
    struct state st = {0};
    char url[128], err[256];
    uv_loop_t loop;
    int done = 0;
    redisContext *sync;
    redisReply *r;
    ck_assert_int_eq(nova_test_redis_start(&rs), 0);
    sync = redisConnect("127.0.0.1", rs.port);
    freeReplyObject(redisCommand(sync, "CONFIG SET requirepass s3cret"));
    redisFree(sync);
    snprintf(url, sizeof(url), "redis://:s3cret@127.0.0.1:%d/3", rs.port);
    ck_assert_int_eq(nova__redis_url_parse(url, &t, err, sizeof(err)), 0);
    uv_loop_init(&loop);
    struct nova__redis_conn_opts o = {.target = &t,
                                      .client_name = "bull:cTE=:w:ctest",
                                      .what = "test",
                                      .connect_timeout_ms = 1000,
                                      .on_state = on_state,
                                      .arg = &st};
    ck_assert_int_eq(nova__redis_conn_new(&loop, &o, &c), 0);
    nova__redis_target_free(&t);
    run_until(&loop, &st.ups, 1, 3000);
    ck_assert(nova__redis_conn_up(c));
    {
        const char *argv[] = {"CLIENT", "GETNAME"};
        ck_assert_int_eq(nova__redis_conn_command(c, on_reply, &st, 2, argv, NULL), 0);
        run_until(&loop, &st.replies, 1, 2000);
        ck_assert_str_eq(st.last_str, "bull:cTE=:w:ctest");
    }
    {
        const char *argv[] = {"SET", "k", "v"};
        nova__redis_conn_command(c, on_reply, &st, 3, argv, NULL);
        run_until(&loop, &st.replies, 2, 2000);
        sync = redisConnect("127.0.0.1", rs.port);
        freeReplyObject(redisCommand(sync, "AUTH s3cret"));
        freeReplyObject(redisCommand(sync, "SELECT 3"));
        r = redisCommand(sync, "GET k");
        ck_assert_str_eq(r->str, "v"); /* it went to db 3 */
        freeReplyObject(r);
    }
    {
        const char *argv[] = {"41"};
        ck_assert_int_eq(nova__redis_conn_eval(c, &script, on_reply, &st, 0, 1, argv, NULL), 0);
        run_until(&loop, &st.replies, 3, 2000);
        ck_assert_int_eq(st.last_int, 42);
        uv_run(&loop, UV_RUN_NOWAIT);
        freeReplyObject(redisCommand(sync, "SCRIPT FLUSH"));
        argv[0] = "1";
        ck_assert_int_eq(nova__redis_conn_eval(c, &script, on_reply, &st, 0, 1, argv, NULL), 0);
        run_until(&loop, &st.replies, 4, 2000);
        ck_assert_int_eq(st.last_status, 0);
        ck_assert_int_eq(st.last_int, 2);
    }
    redisFree(sync);
    ck_assert_int_eq(nova_test_redis_halt(&rs), 0);
    run_until(&loop, &st.downs, 1, 3000);
    ck_assert(!nova__redis_conn_up(c));
    {
        const char *argv[] = {"PING"};
        ck_assert_int_eq(nova__redis_conn_command(c, on_reply, &st, 1, argv, NULL), -ENOTCONN);
    }
    ck_assert_int_eq(nova_test_redis_resume(&rs), 0); /* the AOF keeps requirepass? no: set again */
    sync = redisConnect("127.0.0.1", rs.port);
    freeReplyObject(redisCommand(sync, "CONFIG SET requirepass s3cret"));
    redisFree(sync);
    run_until(&loop, &st.ups, 2, 8000);
    nova__redis_conn_close(c, closed, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    nova_test_redis_stop(&rs);
}
END_TEST

/* Replies kept by value for the checks below (a reply is only valid
 * during its callback). */
struct got {
    int n, status;
    int type;
    long long integer;
    size_t len, elements;
    char *str; /* malloc'd copy of the bytes, for strings */
    char first[64];
};

static void on_got(void *arg, int status, const redisReply *r)
{
    struct got *g = arg;
    g->n++;
    g->status = status;
    free(g->str);
    g->str = NULL;
    if (status < 0)
        return;
    g->type = r->type;
    g->integer = r->integer;
    g->len = r->len;
    g->elements = r->elements;
    if (r->str) {
        g->str = malloc(r->len + 1);
        memcpy(g->str, r->str, r->len + 1);
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->str)
        snprintf(g->first, sizeof(g->first), "%s", r->element[0]->str);
}

static struct nova__redis_script keys_script = {
    .name = "keys",
    .source = "redis.call('SET', KEYS[1], ARGV[1]) redis.call('SET', KEYS[2], ARGV[2]) "
              "return {KEYS[1], string.len(ARGV[1]) + string.len(ARGV[2]), ARGV[3]}"};

/* The in-place command builder: binary, empty and large arguments, a
 * large reply (read in many pieces into one arena), many commands in one
 * pipeline, and NOSCRIPT replay of a built EVALSHA after SCRIPT FLUSH. */
START_TEST(built_commands_and_noscript_replay)
{
    struct nova_test_redis rs;
    struct nova__redis_target t;
    struct nova__redis_conn *c;
    struct state st = {0};
    struct got g = {0};
    char url[128], err[256];
    uv_loop_t loop;
    int done = 0;
    size_t big = 2 * 1024 * 1024 + 3;
    char *bigval = malloc(big);
    static const char bin[] = {'x', '\0', '\r', '\n', '$', '3', '\r', '\n', '*', '\xfe'};
    redisContext *sync;
    for (size_t i = 0; i < big; i++)
        bigval[i] = (char)(i * 7 + 1);
    ck_assert_int_eq(nova_test_redis_start(&rs), 0);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", rs.port);
    ck_assert_int_eq(nova__redis_url_parse(url, &t, err, sizeof(err)), 0);
    uv_loop_init(&loop);
    struct nova__redis_conn_opts o = {
        .target = &t, .what = "test", .connect_timeout_ms = 1000, .on_state = on_state, .arg = &st};
    ck_assert_int_eq(nova__redis_conn_new(&loop, &o, &c), 0);
    nova__redis_target_free(&t);
    run_until(&loop, &st.ups, 1, 3000);
    {
        /* SET bin-key <binary> ; GET it back byte for byte. */
        struct nova__redis_cmd *m = nova__redis_cmd_new(c, 0);
        ck_assert_ptr_nonnull(m);
        nova__redis_cmd_str(m, "SET");
        nova__redis_cmd_arg(m, bin, sizeof(bin)); /* the key itself is binary */
        nova__redis_cmd_arg(m, bin, sizeof(bin));
        ck_assert_int_eq(nova__redis_conn_send(m, on_got, &g), 0);
        m = nova__redis_cmd_new(c, 0);
        nova__redis_cmd_str(m, "GET");
        nova__redis_cmd_arg(m, bin, sizeof(bin));
        ck_assert_int_eq(nova__redis_conn_send(m, on_got, &g), 0);
        run_until(&loop, &g.n, 2, 2000);
        ck_assert_int_eq(g.type, REDIS_REPLY_STRING);
        ck_assert_uint_eq(g.len, sizeof(bin));
        ck_assert_int_eq(memcmp(g.str, bin, sizeof(bin)), 0);
    }
    {
        /* Arguments written in place with room/wrote, between appends. */
        struct nova__redis_cmd *m = nova__redis_cmd_new(c, 0);
        char *p;
        nova__redis_cmd_str(m, "SET");
        p = nova__redis_cmd_room(m, 2 * sizeof(bin) + 64);
        ck_assert_ptr_nonnull(p);
        p = nova__resp_put_arg(p, "room", 4);
        p = nova__resp_put_arg(p, bin, sizeof(bin));
        nova__redis_cmd_wrote(m, p, 2);
        nova__redis_cmd_str(m, "GET"); /* SET ... GET: returns the old value (nil) */
        ck_assert_int_eq(nova__redis_conn_send(m, on_got, &g), 0);
        m = nova__redis_cmd_new(c, 0);
        nova__redis_cmd_str(m, "GET");
        nova__redis_cmd_str(m, "room");
        ck_assert_int_eq(nova__redis_conn_send(m, on_got, &g), 0);
        run_until(&loop, &g.n, 4, 2000);
        ck_assert_int_eq(g.type, REDIS_REPLY_STRING);
        ck_assert_uint_eq(g.len, sizeof(bin));
        ck_assert_int_eq(memcmp(g.str, bin, sizeof(bin)), 0);
        g.n -= 2; /* the counts below predate this block */
    }
    {
        /* An empty argument and a negative integer argument. */
        struct nova__redis_cmd *m = nova__redis_cmd_new(c, 0);
        nova__redis_cmd_str(m, "SET");
        nova__redis_cmd_str(m, "empty");
        nova__redis_cmd_arg(m, "", 0);
        ck_assert_int_eq(nova__redis_conn_send(m, on_got, &g), 0);
        m = nova__redis_cmd_new(c, 0);
        nova__redis_cmd_str(m, "STRLEN");
        nova__redis_cmd_str(m, "empty");
        ck_assert_int_eq(nova__redis_conn_send(m, on_got, &g), 0);
        run_until(&loop, &g.n, 4, 2000);
        ck_assert_int_eq(g.type, REDIS_REPLY_INTEGER);
        ck_assert_int_eq(g.integer, 0);
        m = nova__redis_cmd_new(c, 0);
        nova__redis_cmd_str(m, "INCRBY");
        nova__redis_cmd_str(m, "n");
        nova__redis_cmd_i64(m, INT64_MIN + 1);
        ck_assert_int_eq(nova__redis_conn_send(m, on_got, &g), 0);
        run_until(&loop, &g.n, 5, 2000);
        ck_assert_int_eq(g.integer, INT64_MIN + 1);
    }
    {
        /* 2 MiB each way: the buffer grows past its first size, the reply
         * arrives in many reads. */
        const char *argv[] = {"SET", "big", bigval};
        size_t lens[] = {3, 3, big};
        const char *get[] = {"GET", "big"};
        ck_assert_int_eq(nova__redis_conn_command(c, on_got, &g, 3, argv, lens), 0);
        ck_assert_int_eq(nova__redis_conn_command(c, on_got, &g, 2, get, NULL), 0);
        run_until(&loop, &g.n, 7, 4000);
        ck_assert_int_eq(g.type, REDIS_REPLY_STRING);
        ck_assert_uint_eq(g.len, big);
        ck_assert_int_eq(memcmp(g.str, bigval, big), 0);
    }
    {
        /* 300 commands in one pipeline, answered in order. */
        for (int i = 0; i < 300; i++) {
            struct nova__redis_cmd *m = nova__redis_cmd_new(c, 16);
            nova__redis_cmd_str(m, "RPUSH");
            nova__redis_cmd_str(m, "list");
            nova__redis_cmd_i64(m, i);
            ck_assert_int_eq(nova__redis_conn_send(m, on_got, &g), 0);
        }
        run_until(&loop, &g.n, 307, 4000);
        ck_assert_int_eq(g.integer, 300);
    }
    {
        /* EVALSHA built in place, two keys and binary arguments: first sent
         * as EVAL (sha unknown), then by sha; after SCRIPT FLUSH the
         * NOSCRIPT answer is replayed as EVAL from the same buffer. */
        for (int round = 0; round < 3; round++) {
            struct nova__redis_cmd *m = nova__redis_cmd_new(c, 0);
            nova__redis_cmd_str(m, "k1");
            nova__redis_cmd_str(m, "k2");
            nova__redis_cmd_arg(m, bin, sizeof(bin));
            nova__redis_cmd_arg(m, "", 0);
            nova__redis_cmd_i64(m, round);
            if (round == 2) {
                ck_assert_int_eq(strlen(keys_script.sha), 40); /* known: EVALSHA is sent */
                sync = redisConnect("127.0.0.1", rs.port);
                freeReplyObject(redisCommand(sync, "SCRIPT FLUSH"));
                redisFree(sync);
            }
            ck_assert_int_eq(nova__redis_conn_send_eval(m, &keys_script, 2, on_got, &g), 0);
            run_until(&loop, &g.n, 308 + round, 2000);
            ck_assert_int_eq(g.status, 0);
            ck_assert_int_eq(g.type, REDIS_REPLY_ARRAY);
            ck_assert_uint_eq(g.elements, 3);
            ck_assert_str_eq(g.first, "k1");
            /* let SCRIPT LOAD's answer arrive */
            for (int i = 0; i < 20 && !keys_script.sha[0]; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                usleep(5000);
            }
        }
        sync = redisConnect("127.0.0.1", rs.port);
        {
            redisReply *r = redisCommand(sync, "GET k1");
            ck_assert_uint_eq(r->len, sizeof(bin));
            ck_assert_int_eq(memcmp(r->str, bin, sizeof(bin)), 0);
            freeReplyObject(r);
            r = redisCommand(sync, "INFO commandstats");
            /* one NOSCRIPT replay: EVAL ran twice (first use, replay) */
            ck_assert_ptr_nonnull(strstr(r->str, "cmdstat_eval:calls=2,"));
            freeReplyObject(r);
        }
        redisFree(sync);
    }
    /* A command built and dropped costs nothing and sends nothing. */
    nova__redis_cmd_drop(nova__redis_cmd_new(c, 10));
    nova__redis_conn_close(c, closed, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    nova_test_redis_stop(&rs);
    free(g.str);
    free(bigval);
}
END_TEST

START_TEST(connect_refused_then_close)
{
    struct nova__redis_target t;
    struct nova__redis_conn *c;
    struct state st = {0};
    char err[256];
    uv_loop_t loop;
    int done = 0;
    /* port 1 is never a Redis server */
    ck_assert_int_eq(nova__redis_url_parse("redis://127.0.0.1:1", &t, err, sizeof(err)), 0);
    uv_loop_init(&loop);
    struct nova__redis_conn_opts o = {
        .target = &t, .what = "test", .connect_timeout_ms = 300, .on_state = on_state, .arg = &st};
    ck_assert_int_eq(nova__redis_conn_new(&loop, &o, &c), 0);
    nova__redis_target_free(&t);
    for (int i = 0; i < 60; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    ck_assert_int_eq(st.ups, 0);
    ck_assert(!nova__redis_conn_up(c));
    nova__redis_conn_close(c, closed, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- deferred writes ---------------------------------------------------- */

/* Read events Redis has processed so far, over all clients (INFO stats,
 * Redis 7): each write of ours that Redis finds in its own read adds one,
 * and so does the INFO call itself. Counted on the server because this
 * process's own write count also moves with Check's fork-mode reports and
 * with valgrind. */
static long long redis_reads(redisContext *sync)
{
    long long n = -1;
    redisReply *r = redisCommand(sync, "INFO stats");
    const char *p;
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    p = strstr(r->str, "total_reads_processed:");
    ck_assert_ptr_nonnull(p);
    n = strtoll(p + strlen("total_reads_processed:"), NULL, 10);
    freeReplyObject(r);
    return n;
}

static struct nova__redis_conn *open_conn(uv_loop_t *loop, int port, struct state *st)
{
    struct nova__redis_target t;
    struct nova__redis_conn *c;
    char url[64], err[256];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    ck_assert_int_eq(nova__redis_url_parse(url, &t, err, sizeof(err)), 0);
    struct nova__redis_conn_opts o = {
        .target = &t, .what = "test", .connect_timeout_ms = 2000, .on_state = on_state, .arg = st};
    ck_assert_int_eq(nova__redis_conn_new(loop, &o, &c), 0);
    nova__redis_target_free(&t);
    run_until(loop, &st->ups, 1, 3000);
    return c;
}

static void close_conn(uv_loop_t *loop, struct nova__redis_conn *c)
{
    int done = 0;
    nova__redis_conn_close(c, closed, &done);
    /* Returns only when no handle is left active: a flush handle left
     * running would spin here until the test times out. */
    uv_run(loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(uv_loop_close(loop), 0);
}

/* Replies counted in order: each carries the INCR value it expects. */
struct seq {
    struct state *st;
    long long want;
    int bad;
};

static void on_seq(void *arg, int status, const redisReply *r)
{
    struct seq *q = arg;
    q->st->replies++;
    if (status != 0 || r->type != REDIS_REPLY_INTEGER || r->integer != q->want)
        q->bad++;
}

START_TEST(burst_in_one_write)
{
    struct nova_test_redis rs;
    struct state st = {0};
    struct seq q[500];
    uv_loop_t loop;
    struct nova__redis_conn *c;
    redisContext *sync;
    long long r0, r1, r2;
    const char *argv[] = {"INCR", "n"};
    ck_assert_int_eq(nova_test_redis_start(&rs), 0);
    uv_loop_init(&loop);
    c = open_conn(&loop, rs.port, &st);
    sync = redisConnect("127.0.0.1", rs.port);
    ck_assert_ptr_nonnull(sync);
    r0 = redis_reads(sync);
    for (int i = 0; i < 500; i++) {
        q[i] = (struct seq){.st = &st, .want = i + 1};
        ck_assert_int_eq(nova__redis_conn_command(c, on_seq, &q[i], 2, argv, NULL), 0);
    }
    /* Queued, not yet written: the write waits for the loop (the only
     * read since r0 is this INFO's own). */
    r1 = redis_reads(sync);
    ck_assert_int_eq(r1 - r0, 1);
    run_until(&loop, &st.replies, 500, 3000);
    r2 = redis_reads(sync);
    for (int i = 0; i < 500; i++)
        ck_assert_int_eq(q[i].bad, 0);
    /* ~14 KiB of commands, one write: Redis read them in one go (plus
     * the read of the INFO). */
    ck_assert_int_eq(r2 - r1, 2);
    redisFree(sync);
    close_conn(&loop, c);
    nova_test_redis_stop(&rs);
}
END_TEST

/* A chain of round trips, each command sent from the previous reply's
 * callback, and a prepare handle counting loop iterations. */
struct chain {
    struct nova__redis_conn *c;
    struct state *st;
    int left;
    int bad;
    int turns;
};

static void on_chain(void *arg, int status, const redisReply *r)
{
    struct chain *ch = arg;
    const char *argv[] = {"PING"};
    ch->st->replies++;
    if (status != 0 || r->type != REDIS_REPLY_STATUS)
        ch->bad++;
    if (--ch->left > 0 && nova__redis_conn_command(ch->c, on_chain, ch, 1, argv, NULL) != 0)
        ch->bad++;
}

static void count_turn(uv_prepare_t *h)
{
    ((struct chain *)h->data)->turns++;
}

START_TEST(reply_sends_next_in_same_turn)
{
    struct nova_test_redis rs;
    struct state st = {0};
    struct chain ch = {0};
    uv_loop_t loop;
    uv_prepare_t turn;
    const char *argv[] = {"PING"};
    redisContext *sync;
    long long r0, r1;
    int rc;
    ck_assert_int_eq(nova_test_redis_start(&rs), 0);
    uv_loop_init(&loop);
    ch.c = open_conn(&loop, rs.port, &st);
    ch.st = &st;
    ch.left = 200;
    uv_prepare_init(&loop, &turn);
    turn.data = &ch;
    uv_prepare_start(&turn, count_turn);
    sync = redisConnect("127.0.0.1", rs.port);
    ck_assert_ptr_nonnull(sync);
    r0 = redis_reads(sync);
    rc = nova__redis_conn_command(ch.c, on_chain, &ch, 1, argv, NULL);
    while (rc == 0 && st.replies < 200 && ch.bad == 0)
        uv_run(&loop, UV_RUN_ONCE); /* blocks in poll until a reply arrives */
    r1 = redis_reads(sync);
    redisFree(sync);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ch.bad, 0);
    ck_assert_int_eq(st.replies, 200);
    ck_assert_int_eq(r1 - r0, 200 + 1); /* one write per command, + INFO */
    /* Each round trip is one loop turn (the reply's callback queues the
     * next command and the check phase of that turn writes it). Waiting
     * for a "writable" event instead takes two turns per round trip. */
    ck_assert_int_le(ch.turns, 200 + 200 / 4);
    uv_close((uv_handle_t *)&turn, NULL);
    close_conn(&loop, ch.c);
    nova_test_redis_stop(&rs);
}
END_TEST

#define BIG_N   12
#define BIG_LEN ((size_t)3 << 20)

START_TEST(burst_larger_than_socket_buffer)
{
    struct nova_test_redis rs;
    struct state st = {0};
    struct seq q[BIG_N + 1];
    uv_loop_t loop;
    struct nova__redis_conn *c;
    redisContext *sync;
    redisReply *r;
    long long r0, r1;
    char *big = malloc(BIG_LEN);
    char key[BIG_N][16];
    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(nova_test_redis_start(&rs), 0);
    uv_loop_init(&loop);
    c = open_conn(&loop, rs.port, &st);
    int failed = 0;
    sync = redisConnect("127.0.0.1", rs.port);
    ck_assert_ptr_nonnull(sync);
    r0 = redis_reads(sync);
    /* 36 MiB queued in one turn: far more than a socket takes at once, so
     * the flush leaves data behind and the rest must follow on
     * writability, in order, with nothing lost. */
    for (int i = 0; i < BIG_N; i++) {
        const char *argv[] = {"APPEND", key[i], big};
        size_t len[] = {6, 0, BIG_LEN};
        memset(big, 'a' + i, BIG_LEN);
        snprintf(key[i], sizeof(key[i]), "big%d", i);
        len[1] = strlen(key[i]);
        q[i] = (struct seq){.st = &st, .want = (long long)BIG_LEN};
        if (nova__redis_conn_command(c, on_seq, &q[i], 3, argv, len) != 0)
            failed++;
    }
    {
        const char *argv[] = {"INCR", "after"};
        q[BIG_N] = (struct seq){.st = &st, .want = 1};
        if (nova__redis_conn_command(c, on_seq, &q[BIG_N], 2, argv, NULL) != 0)
            failed++;
    }
    for (int i = 0; i < 20000 && st.replies < BIG_N + 1; i++)
        uv_run(&loop, UV_RUN_ONCE);
    r1 = redis_reads(sync);
    ck_assert_int_eq(failed, 0);
    ck_assert_int_eq(st.replies, BIG_N + 1);
    for (int i = 0; i <= BIG_N; i++)
        ck_assert_int_eq(q[i].bad, 0);
    ck_assert_int_gt(r1 - r0, 1);
    for (int i = 0; i < BIG_N; i++) {
        r = redisCommand(sync, "GETRANGE big%d -1 -1", i);
        ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
        ck_assert_int_eq(r->str[0], 'a' + i);
        freeReplyObject(r);
    }
    redisFree(sync);
    free(big);
    close_conn(&loop, c);
    nova_test_redis_stop(&rs);
}
END_TEST

START_TEST(close_and_reset_with_unsent_commands)
{
    struct nova_test_redis rs;
    struct state st = {0};
    struct state st2 = {0};
    uv_loop_t loop;
    struct nova__redis_conn *c;
    const char *argv[] = {"INCR", "lost"};
    redisContext *sync;
    redisReply *r;
    ck_assert_int_eq(nova_test_redis_start(&rs), 0);
    uv_loop_init(&loop);
    c = open_conn(&loop, rs.port, &st);
    /* Reset with commands queued but unsent: they fail, nothing is
     * written later from freed memory, and the connection comes back. */
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(nova__redis_conn_command(c, on_reply, &st2, 2, argv, NULL), 0);
    nova__redis_conn_reset(c);
    ck_assert_int_eq(st2.replies, 10);
    ck_assert_int_eq(st2.last_status, -ECONNRESET);
    run_until(&loop, &st.ups, 2, 3000);
    {
        const char *get[] = {"GET", "lost"};
        ck_assert_int_eq(nova__redis_conn_command(c, on_reply, &st2, 2, get, NULL), 0);
        run_until(&loop, &st2.replies, 11, 2000);
        ck_assert_int_eq(st2.last_status, 0);
        ck_assert_str_eq(st2.last_str, ""); /* nil: no INCR reached Redis */
    }
    /* Close with commands queued but unsent. */
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(nova__redis_conn_command(c, on_reply, &st2, 2, argv, NULL), 0);
    close_conn(&loop, c);
    ck_assert_int_eq(st2.replies, 21);
    ck_assert_int_eq(st2.last_status, -ECANCELED);
    sync = redisConnect("127.0.0.1", rs.port);
    ck_assert_ptr_nonnull(sync);
    r = redisCommand(sync, "EXISTS lost");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    redisFree(sync);
    nova_test_redis_stop(&rs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_conn");
    TCase *t = tcase_create("conn");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, url_parsing);
    tcase_add_test(t, connect_auth_select_eval_reconnect);
    tcase_add_test(t, built_commands_and_noscript_replay);
    tcase_add_test(t, connect_refused_then_close);
    tcase_add_test(t, burst_in_one_write);
    tcase_add_test(t, reply_sends_next_in_same_turn);
    tcase_add_test(t, burst_larger_than_socket_buffer);
    tcase_add_test(t, close_and_reset_with_unsent_commands);
    suite_add_tcase(s, t);
    return tu_run(s);
}
