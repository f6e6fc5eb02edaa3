/*
 * ri - state shared by the reward_issuance plugin's modules: the plugin
 * instance (config, host, metrics), the payment waiters and the lane.
 *
 * Ownership: struct ri is allocated by init() and freed by shutdown(); the
 * config it points to is host-owned (plugin.h rule 2). Everything runs on
 * the host's loop thread.
 */
#ifndef NOVA_RI_H
#define NOVA_RI_H

#include <stdbool.h>
#include <stdint.h>
#include <nova/pg.h>
#include <nova/plugin.h>
#include <nova/stellar.h>

struct ri_lane;

#define RI_MAX_CHANNELS 32

struct ri_config {
    char *horizon_url;
    char *network;
    char *asset_code;
    char *asset_issuer;
    char *distribution_secret;
    char *channel_secrets;
    int64_t base_fee;
    int64_t tx_timeout_ms;
    int64_t batch_max;
    int64_t batch_wait_ms;
    int64_t submit_timeout_ms; /* deprecated, ignored (0 = unset) */
    int64_t lease_ms;
    int64_t concurrency;
    int64_t distribution_concurrency;
    int64_t job_timeout_ms;
    int64_t poll_ms;
    char *queue_prefix;
    char *worker_name;
};

struct ri_waiter;

struct ri {
    const struct nova_host *host;
    const struct ri_config *cfg;
    const struct nova_pg_api *pg;
    const struct nova_stellar_api *st;
    char passphrase[128];
    /* Effective settings: the plugin's keys, else the core [stellar] section. */
    char horizon_url[512];
    char asset_code[16];
    char asset_issuer[NOVA_STRKEY_MAX];
    bool host_signs;              /* no distribution_secret here: the host signs with [stellar]'s */
    char source[NOVA_STRKEY_MAX]; /* the distribution account G... */
    char owner[160];              /* lane lease owner id of this process */
    bool stopping;

    /* lanes[0] pays from the distribution account itself, the others
     * from the channel accounts */
    struct ri_lane *lanes[1 + RI_MAX_CHANNELS];
    size_t lane_count;
    char *channel_seeds[RI_MAX_CHANNELS]; /* malloc'ed copies, wiped at shutdown */
    char channel_ids[RI_MAX_CHANNELS][NOVA_STRKEY_MAX];
    size_t channel_count;

    /* payments waited on by jobs of this process, polled together */
    struct ri_waiter *waiters;
    size_t waiter_count;
    nova_timer *poll_timer;
    bool poll_busy;
    nova_timer *depth_timer;

    nova_metric *m_issuances;    /* reward_issuances_total{status} */
    nova_metric *m_duration;     /* reward_issuance_duration_seconds{status} */
    nova_metric *m_depth;        /* reward_queue_depth */
    nova_metric *m_dlq;          /* nova_reward_dlq_total{reason} */
    nova_metric *m_dlq_depth;    /* nova_reward_dlq_depth */
    nova_metric *m_submits;      /* nova_reward_submissions_total{result} */
    nova_metric *m_batch;        /* nova_reward_batch_size */
    nova_metric *m_open;         /* nova_reward_open_transactions */
    nova_metric *m_unresolvable; /* nova_reward_unresolvable_envelopes */

    /* The highest Latest-Ledger of any Horizon answer this process got:
     * Horizon's replicas lag each other, and a negative answer (no such
     * account, no trustline) is taken as true only from a replica at least
     * this far along (ri_fresh_answer). */
    uint32_t horizon_ledger;
    /* The highest ledger whose close time (unix seconds) this process has
     * heard from Horizon's GET /, and whether such a question is out. */
    uint32_t clock_ledger;
    int64_t clock_closed_at;
    bool clock_asking;
};

/* Records the ledger an answer was given at; true when that replica is as
 * far along as any this process has heard from (and said which ledger). */
static inline bool ri_fresh_answer(struct ri *ri, uint32_t latest_ledger)
{
    if (latest_ledger == 0)
        return false;
    if (latest_ledger > ri->horizon_ledger)
        ri->horizon_ledger = latest_ledger;
    return latest_ledger >= ri->horizon_ledger;
}

/* Records a close time Horizon reported (GET /). */
static inline void ri_note_close(struct ri *ri, uint32_t sequence, int64_t closed_at)
{
    if (sequence > ri->clock_ledger && closed_at > 0) {
        ri->clock_ledger = sequence;
        ri->clock_closed_at = closed_at;
    }
}

/* A negative pre-flight answer (no such account, no trustline) given at
 * latest_ledger is acted on only when it describes the network after the
 * job was made: no replica is known to be further along, and a ledger at
 * or below it closed after the job's timestamp. Without the second half a
 * process that has just started, whose first answer comes from a replica
 * behind the recipient's creation, would take that replica's word. */
static inline bool ri_negative_proven(struct ri *ri, uint32_t latest_ledger, int64_t job_ms)
{
    if (!ri_fresh_answer(ri, latest_ledger))
        return false;
    return ri->clock_ledger != 0 && ri->clock_ledger <= latest_ledger &&
           ri->clock_closed_at > job_ms / 1000;
}

/* How often an unproven negative pre-flight answer is asked again, the
 * first wait, and the longest: together they outlast a ledger close on the
 * public network (about 5 s). Then the payment is queued anyway and the
 * network decides. */
#define RI_PREFLIGHT_TRIES       6
#define RI_PREFLIGHT_WAIT_MS     300
#define RI_PREFLIGHT_WAIT_MAX_MS 2400

static inline uint64_t ri_preflight_wait_ms(int tries)
{
    uint64_t ms = RI_PREFLIGHT_WAIT_MS;
    while (--tries > 0 && ms < RI_PREFLIGHT_WAIT_MAX_MS)
        ms *= 2;
    return ms < RI_PREFLIGHT_WAIT_MAX_MS ? ms : RI_PREFLIGHT_WAIT_MAX_MS;
}

#endif
