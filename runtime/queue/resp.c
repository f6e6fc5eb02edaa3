#include "config.h"
#include "queue/resp.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- integers ------------------------------------------------------------ */

const char nova__resp_digit_pairs[201] = "00010203040506070809"
                                         "10111213141516171819"
                                         "20212223242526272829"
                                         "30313233343536373839"
                                         "40414243444546474849"
                                         "50515253545556575859"
                                         "60616263646566676869"
                                         "70717273747576777879"
                                         "80818283848586878889"
                                         "90919293949596979899";

/* ---- reply arenas ------------------------------------------------------------ */

#define BLOCK_MIN 4096         /* first block of a reply, at least */
#define SPARE_MAX (256 * 1024) /* larger blocks are never kept */
#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

/*
 * A reply is a chain of blocks; its root object sits at the start of the
 * first block's data, right after the header, which is how freeObject
 * finds the chain from the root pointer hiredis hands back.
 */
struct nova__resp_block {
    struct nova__resp_block *next; /* next block of the same reply */
    struct nova__resp_pool *pool;
    void *root; /* the root object, in a reply's first block; else NULL */
    size_t cap; /* data bytes after the header */
    size_t used;
    size_t pad; /* keeps the data 16-byte aligned */
};

static struct nova__resp_block *block_new(struct nova__resp_pool *pool, size_t cap)
{
    struct nova__resp_block *b = malloc(sizeof(*b) + cap);
    if (!b)
        return NULL;
    b->next = NULL;
    b->pool = pool;
    b->root = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

/* Room for the root of a new reply: the spare block when big enough. */
static void *alloc_root(struct nova__resp_pool *pool, size_t size)
{
    struct nova__resp_block *b = pool->spare;
    size_t want = pool->hint > BLOCK_MIN ? pool->hint : BLOCK_MIN;
    if (want < size)
        want = size;
    if (b && b->cap >= want) {
        pool->spare = NULL;
        b->next = NULL;
        b->used = 0;
    } else {
        b = block_new(pool, ALIGN8(want));
        if (!b)
            return NULL;
    }
    b->used = size;
    b->root = b + 1;
    pool->cur = b;
    return b + 1;
}

/* Room for a child object of the reply being parsed. Inline, like
 * reply_new: they run for every element of every reply. */
static inline __attribute__((always_inline)) void *alloc_child(struct nova__resp_pool *pool,
                                                               size_t size)
{
    struct nova__resp_block *b = pool->cur;
    void *p;
    if (!b)
        return NULL; /* cannot happen: hiredis creates the root first */
    if (b->cap - b->used < size) {
        size_t cap = b->cap * 2;
        struct nova__resp_block *nb;
        if (cap < size)
            cap = size;
        nb = block_new(pool, ALIGN8(cap));
        if (!nb)
            return NULL;
        b->next = nb;
        pool->cur = b = nb;
    }
    p = (char *)(b + 1) + b->used;
    b->used += size;
    return p;
}

/* A zeroed redisReply plus `extra` bytes after it, linked into its parent. */
static inline __attribute__((always_inline)) redisReply *reply_new(const redisReadTask *task,
                                                                   int type, size_t extra)
{
    struct nova__resp_pool *pool = task->privdata;
    size_t size = ALIGN8(sizeof(redisReply) + extra);
    redisReply *r = task->parent ? alloc_child(pool, size) : alloc_root(pool, size);
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->type = type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r = reply_new(task, task->type, len + 1);
    if (!r)
        return NULL;
    r->str = (char *)(r + 1);
    if (len)
        memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

#if defined(HIREDIS_MAJOR) && HIREDIS_MAJOR >= 1
static void *create_array(const redisReadTask *task, size_t elements)
#else
static void *create_array(const redisReadTask *task, int elements)
#endif
{
    size_t n = (size_t)elements;
    redisReply *r = reply_new(task, task->type, n * sizeof(redisReply *));
    if (!r)
        return NULL;
    r->elements = n;
    r->element = n ? (redisReply **)(void *)(r + 1) : NULL;
    return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = reply_new(task, REDIS_REPLY_INTEGER, 0);
    if (r)
        r->integer = value;
    return r;
}

static void *create_nil(const redisReadTask *task)
{
    return reply_new(task, REDIS_REPLY_NIL, 0);
}

static void free_object(void *obj)
{
    struct nova__resp_block *b, *next, *keep = NULL;
    struct nova__resp_pool *pool;
    size_t total = 0;
    if (!obj)
        return;
    b = (struct nova__resp_block *)obj - 1;
    if (b->root != obj)
        return; /* not a root (hiredis never does this): freed with its root */
    pool = b->pool;
    for (; b; b = next) {
        next = b->next;
        total += b->used;
        if (b == pool->cur)
            pool->cur = NULL;
        if (NOVA__RESP_REUSE && b->cap <= SPARE_MAX && (!keep || b->cap > keep->cap)) {
            free(keep);
            keep = b;
        } else {
            free(b);
        }
    }
    if (keep) {
        keep->root = NULL;
        if (!pool->spare || keep->cap > pool->spare->cap) {
            free(pool->spare);
            pool->spare = keep;
        } else {
            free(keep);
        }
    }
    /* The next first block fits the largest recent reply; the size
     * decays slowly so one big reply does not pin memory for ever. */
    if (total > SPARE_MAX)
        total = SPARE_MAX;
    if (total > pool->hint)
        pool->hint = total;
    else
        pool->hint -= (pool->hint - total) / 16;
}

redisReplyObjectFunctions nova__resp_reply_fns = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
    .createNil = create_nil,
    .freeObject = free_object,
};

void nova__resp_reader_use(redisReader *reader, struct nova__resp_pool *pool)
{
    reader->fn = &nova__resp_reply_fns;
    reader->privdata = pool;
}

void nova__resp_pool_release(struct nova__resp_pool *pool)
{
    free(pool->spare);
    pool->spare = NULL;
    pool->cur = NULL;
}
