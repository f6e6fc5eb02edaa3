/*
 * test_redis_conn - URL parsing and the async connection: handshake
 * (AUTH, SELECT, CLIENT SETNAME), EVALSHA with NOSCRIPT recovery and
 * reconnect after a server restart.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "lib/redis_server.h"
#include "redis_conn.h"

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

static struct nova__redis_script script = {"t", "return tonumber(ARGV[1]) + 1", ""};

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
    tcase_add_test(t, connect_refused_then_close);
    suite_add_tcase(s, t);
    r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
