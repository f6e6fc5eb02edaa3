/*
 * test_resp - the RESP writer (integers, arguments, binary safety) against
 * hiredis's own formatter and parser, and the arena reply builder against
 * hiredis's default reply objects, fed whole, in pieces and byte by byte.
 */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "queue/resp.h"
#include "unit/testutil.h"

/* ---- integers ---------------------------------------------------------------- */

static void check_i64(int64_t v)
{
    char ours[NOVA__RESP_I64_MAX + 1], ref[32];
    size_t n = nova__resp_i64(ours, v);
    ours[n] = '\0';
    snprintf(ref, sizeof(ref), "%" PRId64, v);
    ck_assert_str_eq(ours, ref);
    ck_assert_uint_eq(n, strlen(ref));
}

static void check_u64(uint64_t v)
{
    char ours[NOVA__RESP_I64_MAX + 1], ref[32];
    size_t n = nova__resp_u64(ours, v);
    ours[n] = '\0';
    snprintf(ref, sizeof(ref), "%" PRIu64, v);
    ck_assert_str_eq(ours, ref);
    ck_assert_uint_eq(nova__resp_digits(v), strlen(ref));
}

START_TEST(integers)
{
    uint64_t p = 1;
    check_i64(0);
    check_i64(-1);
    check_i64(INT64_MAX);
    check_i64(INT64_MIN);
    check_i64(INT64_MIN + 1);
    check_u64(UINT64_MAX);
    check_u64(0);
    /* Every power of ten and its neighbours: where the digit count changes. */
    for (int i = 0; i < 20; i++) {
        check_u64(p);
        check_u64(p - 1);
        check_u64(p + 1);
        if (p <= (uint64_t)INT64_MAX) {
            check_i64((int64_t)p);
            check_i64(-(int64_t)p);
            check_i64((int64_t)p - 1);
            check_i64(1 - (int64_t)p);
        }
        p *= 10;
    }
    for (int64_t v = -100000; v <= 100000; v += 7)
        check_i64(v);
    /* Never writes past its length. */
    {
        char buf[24];
        memset(buf, 'x', sizeof(buf));
        ck_assert_uint_eq(nova__resp_i64(buf, INT64_MIN), 20);
        ck_assert_int_eq(buf[20], 'x');
    }
}
END_TEST

/* ---- writing commands ------------------------------------------------------------ */

/* Formats argv with our writer; caller frees. */
static char *format(int argc, const char **argv, const size_t *lens, size_t *outlen)
{
    size_t size = nova__resp_header_size((size_t)argc);
    char *buf, *p;
    for (int i = 0; i < argc; i++)
        size += nova__resp_arg_size(lens[i]);
    buf = malloc(size);
    ck_assert_ptr_nonnull(buf);
    p = nova__resp_put_header(buf, (size_t)argc);
    for (int i = 0; i < argc; i++)
        p = nova__resp_put_arg(p, argv[i], lens[i]);
    ck_assert_uint_eq((size_t)(p - buf), size);
    *outlen = size;
    return buf;
}

static void check_same_as_hiredis(int argc, const char **argv, const size_t *lens)
{
    size_t n;
    char *ours = format(argc, argv, lens, &n);
    char *ref = NULL;
    int rn = redisFormatCommandArgv(&ref, argc, argv, lens);
    ck_assert_int_eq(rn, (int)n);
    ck_assert_int_eq(memcmp(ours, ref, n), 0);
    /* A command is an array of bulk strings: hiredis's reader reads it back. */
    {
        redisReader *rd = redisReaderCreate();
        void *obj = NULL;
        redisReply *r;
        ck_assert_int_eq(redisReaderFeed(rd, ours, n), REDIS_OK);
        ck_assert_int_eq(redisReaderGetReply(rd, &obj), REDIS_OK);
        r = obj;
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
        ck_assert_uint_eq(r->elements, (size_t)argc);
        for (int i = 0; i < argc; i++) {
            ck_assert_uint_eq(r->element[i]->len, lens[i]);
            ck_assert_int_eq(memcmp(r->element[i]->str, argv[i], lens[i]), 0);
        }
        freeReplyObject(r);
        redisReaderFree(rd);
    }
    free(ours);
    free(ref);
}

START_TEST(commands)
{
    {
        const char *argv[] = {"SET", "key", "value"};
        size_t lens[] = {3, 3, 5};
        check_same_as_hiredis(3, argv, lens);
    }
    {
        /* Binary bytes, CRLF and NUL inside, and an empty argument. */
        static const char bin[] = {'a', '\0', '\r', '\n', '$', '*', '\xff', 'z'};
        const char *argv[] = {"HSET", "", bin, "x"};
        size_t lens[] = {4, 0, sizeof(bin), 1};
        check_same_as_hiredis(4, argv, lens);
    }
    {
        /* A large argument: the length field has 7 digits. */
        size_t big = 3 * 1024 * 1024 + 17;
        char *v = malloc(big);
        const char *argv[] = {"SET", "k", v};
        size_t lens[] = {3, 1, big};
        for (size_t i = 0; i < big; i++)
            v[i] = (char)(i * 31);
        check_same_as_hiredis(3, argv, lens);
        free(v);
    }
    {
        /* Many arguments: a multi-digit count. */
        const char *argv[1234];
        size_t lens[1234];
        for (int i = 0; i < 1234; i++) {
            argv[i] = "abcdefghij" + i % 10;
            lens[i] = strlen(argv[i]);
        }
        check_same_as_hiredis(1234, argv, lens);
    }
    ck_assert_uint_eq(nova__resp_arg_size(0), 6);      /* $0\r\n\r\n */
    ck_assert_uint_eq(nova__resp_arg_size(10), 17);    /* $10\r\n + 10 + \r\n */
    ck_assert_uint_eq(nova__resp_header_size(100), 6); /* *100\r\n */
}
END_TEST

/* ---- reply arenas ---------------------------------------------------------------- */

static void same_reply(const redisReply *a, const redisReply *b)
{
    ck_assert_int_eq(a->type, b->type);
    switch (a->type) {
    case REDIS_REPLY_INTEGER:
        ck_assert_int_eq(a->integer, b->integer);
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        ck_assert_uint_eq(a->len, b->len);
        ck_assert_int_eq(memcmp(a->str, b->str, a->len), 0);
        ck_assert_int_eq(a->str[a->len], '\0'); /* NUL-terminated like hiredis's */
        break;
    case REDIS_REPLY_ARRAY:
        ck_assert_uint_eq(a->elements, b->elements);
        if (a->elements == 0)
            ck_assert_ptr_null(a->element);
        for (size_t i = 0; i < a->elements; i++)
            same_reply(a->element[i], b->element[i]);
        break;
    default:
        break;
    }
}

/* Feeds text to both readers in chunks of `step` bytes (0: at once) and
 * compares every reply; returns how many there were. */
static int compare_stream(const char *text, size_t len, size_t step, struct nova__resp_pool *pool)
{
    redisReader *ours = redisReaderCreate();
    redisReader *ref = redisReaderCreate();
    size_t off = 0;
    int n = 0;
    nova__resp_reader_use(ours, pool);
    ck_assert_ptr_eq(ours->fn, &nova__resp_reply_fns);
    while (off < len) {
        size_t k = step && step < len - off ? step : len - off;
        void *a = NULL, *b = NULL;
        ck_assert_int_eq(redisReaderFeed(ours, text + off, k), REDIS_OK);
        ck_assert_int_eq(redisReaderFeed(ref, text + off, k), REDIS_OK);
        off += k;
        for (;;) {
            ck_assert_int_eq(redisReaderGetReply(ours, &a), REDIS_OK);
            ck_assert_int_eq(redisReaderGetReply(ref, &b), REDIS_OK);
            ck_assert((a == NULL) == (b == NULL));
            if (!a)
                break;
            same_reply(a, b);
            ours->fn->freeObject(a);
            freeReplyObject(b);
            n++;
        }
    }
    redisReaderFree(ours);
    redisReaderFree(ref);
    return n;
}

static char *big_stream(size_t *len)
{
    /* *3 of: a 200,000-byte bulk, a nested array of 5,000 small items
     * (well past one block), and an error. */
    size_t cap = 1024 * 1024, n = 0;
    char *s = malloc(cap);
    n += (size_t)sprintf(s + n, "*3\r\n$200000\r\n");
    for (int i = 0; i < 200000; i++)
        s[n++] = (char)('a' + i % 26);
    n += (size_t)sprintf(s + n, "\r\n*5000\r\n");
    for (int i = 0; i < 5000; i++) {
        if (i % 3 == 0)
            n += (size_t)sprintf(s + n, ":%d\r\n", -i);
        else if (i % 3 == 1) {
            n += (size_t)sprintf(s + n, "$%d\r\nv", 1 + i % 7);
            for (int k = 0; k < i % 7; k++)
                s[n++] = (char)('0' + k);
            n += (size_t)sprintf(s + n, "\r\n");
        } else
            n += (size_t)sprintf(s + n, "*2\r\n$-1\r\n+s%d\r\n", i);
    }
    n += (size_t)sprintf(s + n, "-ERR last\r\n");
    *len = n;
    return s;
}

static const char small_stream[] =
    "+OK\r\n"
    "-NOSCRIPT No matching script\r\n"
    ":0\r\n:-9223372036854775808\r\n:9223372036854775807\r\n"
    "$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n"
    "$5\r\na\r\nb\0\r\n" /* binary: CR, LF and NUL inside */
    "*3\r\n:1\r\n*2\r\n$3\r\nfoo\r\n*1\r\n*1\r\n*0\r\n-ERR nested\r\n"
    "*4\r\n*2\r\n$2\r\nid\r\n$-1\r\n$0\r\n\r\n+\r\n*-1\r\n";

START_TEST(arena_replies)
{
    struct nova__resp_pool pool = {0};
    size_t len = sizeof(small_stream) - 1;
    /* 12 replies, whole, in pieces, byte by byte. */
    ck_assert_int_eq(compare_stream(small_stream, len, 0, &pool), 12);
    ck_assert_int_eq(compare_stream(small_stream, len, 7, &pool), 12);
    ck_assert_int_eq(compare_stream(small_stream, len, 1, &pool), 12);
    if (NOVA__RESP_REUSE)
        ck_assert_ptr_nonnull(pool.spare); /* a block is kept for the next reply */
    else
        ck_assert_ptr_null(pool.spare); /* ASan: nothing kept */
    ck_assert_ptr_null(pool.cur);
    {
        char *big;
        size_t blen;
        big = big_stream(&blen);
        ck_assert_int_eq(compare_stream(big, blen, 0, &pool), 1);
        ck_assert_int_eq(compare_stream(big, blen, 4093, &pool), 1);
        ck_assert_int_eq(compare_stream(big, blen, 1, &pool), 1);
        free(big);
    }
    /* The first block now fits such a reply. */
    ck_assert_uint_ge(pool.hint, 200000);
    nova__resp_pool_release(&pool);
    ck_assert_ptr_null(pool.spare);
}
END_TEST

START_TEST(arena_reuse_and_abandon)
{
    struct nova__resp_pool pool = {0};
    redisReader *rd = redisReaderCreate();
    void *a = NULL, *b = NULL;
    nova__resp_reader_use(rd, &pool);
    /* Steady traffic reuses the same block: the next root lands where the
     * last one was. */
    ck_assert_int_eq(redisReaderFeed(rd, "*2\r\n:1\r\n$1\r\nx\r\n", 15), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &a), REDIS_OK);
    ck_assert_ptr_nonnull(a);
    rd->fn->freeObject(a);
    ck_assert_int_eq(redisReaderFeed(rd, ":7\r\n", 4), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &b), REDIS_OK);
    if (NOVA__RESP_REUSE)
        ck_assert_ptr_eq(a, b);
    ck_assert_int_eq(((redisReply *)b)->integer, 7);
    /* Freeing a child is a no-op: it goes with its root. */
    rd->fn->freeObject(b);
    ck_assert_int_eq(redisReaderFeed(rd, "*1\r\n$2\r\nok\r\n", 12), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &a), REDIS_OK);
    rd->fn->freeObject(((redisReply *)a)->element[0]);
    ck_assert_str_eq(((redisReply *)a)->element[0]->str, "ok");
    rd->fn->freeObject(a);
    rd->fn->freeObject(NULL);
    /* A reply cut short stays with the reader, which frees it. */
    ck_assert_int_eq(redisReaderFeed(rd, "*3\r\n$3\r\nabc\r\n:5\r\n", 17), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &a), REDIS_OK);
    ck_assert_ptr_null(a);
    redisReaderFree(rd);
    /* A protocol error in the middle frees the partial reply. */
    rd = redisReaderCreate();
    nova__resp_reader_use(rd, &pool);
    ck_assert_int_eq(redisReaderFeed(rd, "*2\r\n$1\r\nx\r\n?bad\r\n", 17), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &a), REDIS_ERR);
    redisReaderFree(rd);
    ck_assert_ptr_null(pool.cur);
    nova__resp_pool_release(&pool);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resp");
    TCase *t = tcase_create("resp");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, integers);
    tcase_add_test(t, commands);
    tcase_add_test(t, arena_replies);
    tcase_add_test(t, arena_reuse_and_abandon);
    suite_add_tcase(s, t);
    return tu_run(s);
}
