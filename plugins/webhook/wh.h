/*
 * wh - state shared by the webhook plugin's modules: the config, the
 * plugin instance (host, parsed settings, metrics). webhook.c owns it;
 * wh_out.c (outbound deliveries) and wh_in.c (inbound actions) use it.
 *
 * Ownership: struct wh is allocated by init() and freed by shutdown();
 * the config it points to is host-owned (plugin.h rule 2). Everything runs
 * on the host's loop thread.
 */
#ifndef NOVA_WH_H
#define NOVA_WH_H

#include <stdbool.h>
#include <stdint.h>
#include <nova/http.h>
#include <nova/pg.h>
#include <nova/plugin.h>

#include "wh_logic.h"

struct wh_config {
    bool outbound;
    bool inbound;
    char *schedule;
    char *timezone;
    char *dispatch_queue;
    char *inbound_queue;
    int64_t inbound_concurrency;
    int64_t concurrency;
    int64_t endpoint_concurrency;
    int64_t batch_size;
    int64_t run_limit_ms;
    int64_t timeout_ms;
    char *retry_delays;
    int64_t retry_jitter;
    int64_t max_attempts;
    int64_t breaker_threshold;
    int64_t breaker_cooldown_ms;
    char *allow_networks;
    bool https_only;
    char *encryption_key;
    char *encryption_key_previous;
    char *action_points;
};

struct wh_out;

struct wh {
    const struct nova_host *host;
    const struct wh_config *cfg;
    const struct nova_pg_api *pg;
    const struct nova_http_api *http;

    /* parsed settings */
    int64_t delays[WH_MAX_DELAYS];
    size_t ndelays;
    struct wh_action actions[WH_MAX_ACTIONS];
    size_t nactions;
    struct wh_keys keys; /* wiped at shutdown */

    struct wh_out *out; /* NULL when outbound = no */

    nova_metric *m_deliveries; /* nova_webhook_deliveries_total{result} */
    nova_metric *m_duration;   /* nova_webhook_delivery_duration_seconds */
    nova_metric *m_breaker;    /* nova_webhook_breaker_transitions_total{state} */
    nova_metric *m_inbound;    /* nova_webhook_inbound_actions_total{result} */
    nova_metric *m_claimed;    /* nova_webhook_claimed_total */
};

/* max_attempts counts the attempts after the first delivery (Nova's
 * WEBHOOK_MAX_ATTEMPTS bounded its retry poller): attempt k fails, the
 * next comes after retry_delays[k - 1], so the default 5 uses each of the
 * 5 default delays. A delivery is attempted at most this many times. */
static inline int64_t wh_total_attempts(const struct wh_config *cfg)
{
    return cfg->max_attempts + 1;
}

#endif
