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

/* How often a negative pre-flight answer from a lagging replica is asked
 * again before the payment is queued anyway (the network then decides). */
#define RI_PREFLIGHT_TRIES   4
#define RI_PREFLIGHT_WAIT_MS 300

#endif
