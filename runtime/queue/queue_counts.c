#include "config.h"
#include "queue/queue_counts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "queue/queue.h"
#include "queue/redis_conn.h"

#define STATES 8

/* getJobCounts()'s state names, and the key each one is counted in; the
 * three lists first (LLEN), then the sorted sets (ZCARD). */
static const char *const state_names[STATES] = {
    "waiting", "paused",    "active", "prioritized",
    "delayed", "completed", "failed", "waiting-children",
};
static const char *const state_keys[STATES] = {
    "wait", "paused", "active", "prioritized", "delayed", "completed", "failed", "waiting-children",
};

/* All eight in one atomic read, so the states of a queue add up to one
 * moment (a job moving from active to completed is never counted twice).
 * Every key is declared: on Redis Cluster they share the queue's slot. */
static struct nova__redis_script s_counts = {
    .name = "job_counts",
    .source = "local r = {}\n"
              "for i = 1, #KEYS do\n"
              "  if i <= 3 then r[i] = redis.call('LLEN', KEYS[i])\n"
              "  else r[i] = redis.call('ZCARD', KEYS[i]) end\n"
              "end\n"
              "return r\n",
};

static nova_metric *m_counts;

void nova__queue_counts_init(void)
{
    static const char *const labels[] = {"queue", "state", NULL};
    /* BullMQ's own help text: a family served by both stays one family. */
    m_counts = nova__metric_new(NOVA_METRIC_GAUGE, "bullmq_job_count",
                                "Number of jobs in the queue by state", labels, NULL, 0);
}

/* The reply's queue name travels with the request: the list the refresh
 * was made from may be gone by the time Redis answers. */
struct counts_req {
    size_t len;
    char queue[];
};

static void on_counts(void *arg, int status, const redisReply *r)
{
    struct counts_req *q = arg;
    if (status == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == STATES) {
        for (size_t i = 0; i < STATES; i++) {
            const char *lv[] = {q->queue, state_names[i]};
            if (r->element[i]->type == REDIS_REPLY_INTEGER)
                nova__metric_set(m_counts, lv, (double)r->element[i]->integer);
        }
    } else if (status == 0) {
        /* A key of the wrong type: the queue is damaged, and its counts
         * keep their last values rather than turn into zeros. */
        struct nova__log_ctx lc = {.queue = q->queue};
        nova__log(NOVA_LOG_WARN, &lc, "job counts: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    /* status < 0: Redis went away; the next refresh after it is back
     * replaces the values. */
    free(q);
}

static int ask(struct nova__redis_conn *c, const char *prefix, const char *queue)
{
    char base[1024], keys[STATES][1100];
    const char *argv[STATES];
    int n = nova__queue_key_base(prefix, queue, base, sizeof base);
    if (n < 0)
        return n;
    for (size_t i = 0; i < STATES; i++) {
        snprintf(keys[i], sizeof keys[i], "%s%s", base, state_keys[i]);
        argv[i] = keys[i];
    }
    size_t len = strlen(queue);
    struct counts_req *q = malloc(sizeof *q + len + 1);
    if (q == NULL)
        return -ENOMEM;
    q->len = len;
    memcpy(q->queue, queue, len + 1);
    int rc = nova__redis_conn_eval(c, &s_counts, on_counts, q, STATES, STATES, argv, NULL);
    if (rc < 0)
        free(q);
    return rc;
}

size_t nova__queue_counts_refresh(struct nova__redis_conn *c, const char *prefix,
                                  const char *const *queues, size_t n)
{
    size_t asked = 0;
    if (m_counts == NULL)
        return 0;
    nova__metric_prune(m_counts, 0, queues, n);
    if (c == NULL || !nova__redis_conn_up(c))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (ask(c, prefix, queues[i]) == 0)
            asked++;
    }
    return asked;
}
