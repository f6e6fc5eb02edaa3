/*
 * test_redis_conn - URL parsing and the async connection: handshake
 * (AUTH, SELECT, CLIENT SETNAME), EVALSHA with NOSCRIPT recovery and
 * reconnect after a server restart.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "lib/redis_server.h"
#include "redis_conn.h"
#include "resp.h"

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

int main(void)
{
    Suite *s = suite_create("redis_conn");
    TCase *t = tcase_create("conn");
    SRunner *r;
    int failed;
    tcase_set_timeout(t, 30);
    tcase_add_test(t, url_parsing);
    tcase_add_test(t, connect_auth_select_eval_reconnect);
    tcase_add_test(t, built_commands_and_noscript_replay);
    tcase_add_test(t, connect_refused_then_close);
    suite_add_tcase(s, t);
    r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
