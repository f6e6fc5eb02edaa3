/*
 * resp - the two halves of the Redis protocol on the engine's hot path,
 * without hiredis's general-purpose machinery:
 *
 * - writing: decimal integers and RESP arguments (`$len\r\n...\r\n`)
 *   straight into a caller's buffer, no snprintf, no sds;
 * - reading: reply-object functions for hiredis's reader that build each
 *   reply (a tree of redisReply, same layout as hiredis's own) in one
 *   arena of a few malloc'd blocks, freed in one go; the last block is
 *   kept for the next reply, so steady traffic allocates nothing.
 *
 * Everything here is single-threaded: a pool belongs to one reader.
 */
#ifndef NOVA_RUNTIME_RESP_H
#define NOVA_RUNTIME_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <hiredis/hiredis.h>

/* Longest decimal text of an int64_t ("-9223372036854775808"), no NUL. */
#define NOVA__RESP_I64_MAX 20

/*
 * Under AddressSanitizer nothing is kept for reuse (reply blocks here,
 * finished requests in redis_conn.c): every reply and request is freed
 * when done, so a reply used after its callback is reported.
 */
#if defined(__SANITIZE_ADDRESS__)
#define NOVA__RESP_REUSE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NOVA__RESP_REUSE 0
#endif
#endif
#ifndef NOVA__RESP_REUSE
#define NOVA__RESP_REUSE 1
#endif

/* "00" "01" ... "99": two digits per division when formatting. */
extern const char nova__resp_digit_pairs[201];

/* The writers are inline: they run a dozen times per job. */

/* Number of decimal digits of v (1 for 0). */
static inline size_t nova__resp_digits(uint64_t v)
{
    size_t n = 1;
    for (;;) {
        if (v < 10)
            return n;
        if (v < 100)
            return n + 1;
        if (v < 1000)
            return n + 2;
        if (v < 10000)
            return n + 3;
        v /= 10000;
        n += 4;
    }
}

/* Decimal text of v into buf (at least NOVA__RESP_I64_MAX bytes), no NUL
 * written; returns its length. */
static inline size_t nova__resp_u64(char *buf, uint64_t v)
{
    size_t n = nova__resp_digits(v);
    char *p = buf + n;
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = nova__resp_digit_pairs[i + 1];
        *--p = nova__resp_digit_pairs[i];
    }
    if (v >= 10) {
        *--p = nova__resp_digit_pairs[v * 2 + 1];
        *--p = nova__resp_digit_pairs[v * 2];
    } else {
        *--p = (char)('0' + v);
    }
    return n;
}

static inline size_t nova__resp_i64(char *buf, int64_t v)
{
    if (v >= 0)
        return nova__resp_u64(buf, (uint64_t)v);
    /* -(v + 1) + 1 avoids negating INT64_MIN. */
    buf[0] = '-';
    return 1 + nova__resp_u64(buf + 1, (uint64_t)(-(v + 1)) + 1);
}

/* Bytes nova__resp_put_arg writes for an argument of len bytes. */
static inline size_t nova__resp_arg_size(size_t len)
{
    return 1 + nova__resp_digits(len) + 2 + len + 2;
}

/* Bytes nova__resp_put_header writes for a command of argc arguments. */
static inline size_t nova__resp_header_size(size_t argc)
{
    return 1 + nova__resp_digits(argc) + 2;
}

/* Writes `*argc\r\n`; returns the end. */
static inline char *nova__resp_put_header(char *p, size_t argc)
{
    *p++ = '*';
    p += nova__resp_u64(p, argc);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Writes `$len\r\n<len bytes of s>\r\n` (s may hold any byte); returns the end. */
static inline char *nova__resp_put_arg(char *p, const void *s, size_t len)
{
    *p++ = '$';
    p += nova__resp_u64(p, len);
    *p++ = '\r';
    *p++ = '\n';
    if (len)
        memcpy(p, s, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* ---- reply arenas -------------------------------------------------------- */

struct nova__resp_block;

/* Per-reader state: where the reply being parsed grows, and the spare
 * block kept from the last reply freed. Zero-initialise; release with
 * nova__resp_pool_release() once the reader is gone. */
struct nova__resp_pool {
    struct nova__resp_block *cur;   /* last block of the reply being parsed */
    struct nova__resp_block *spare; /* kept for the next reply, or NULL */
    size_t hint;                    /* size of the last reply: first block size */
};

/*
 * Makes `reader` build its replies in arenas of `pool` (sets reader->fn
 * and reader->privdata; call before the reader sees any byte). Replies
 * stay redisReply trees readable like hiredis's own (type, integer, len,
 * str NUL-terminated, elements, element) but must be freed with
 * reader->fn->freeObject (as hiredis's async layer does), never with
 * freeReplyObject. The pool must outlive every reply and the reader.
 */
void nova__resp_reader_use(redisReader *reader, struct nova__resp_pool *pool);

/* Frees the spare block. Only once no reply of the pool is alive. */
void nova__resp_pool_release(struct nova__resp_pool *pool);

/* The reply-object functions nova__resp_reader_use installs. */
extern redisReplyObjectFunctions nova__resp_reply_fns;

#endif
