/*
 * webhook - Nova's webhooks, both ways (docs/plugins/webhook.md).
 *
 * Outbound: the rows of Nova's webhook_deliveries are the work list. A
 * scheduled run (`schedule`, job `deliver` on `dispatch_queue`) claims the
 * due ones in bounded batches with FOR UPDATE SKIP LOCKED, sends each
 * attempt signed exactly as Nova's receivers verify it, through the host's
 * guarded HTTP client, and records it in Nova's columns; retries follow
 * `retry_delays`, and a circuit breaker pauses an endpoint that keeps
 * failing (wh_out.c). Deliveries are created by
 * nova_worker_webhook_reward_distributed() and
 * nova_worker_webhook_distribution_paid() (migrations/105_webhook.sql) in
 * the transaction that confirms a reward, or by Nova's API.
 *
 * Inbound: process-inbound-action jobs on webhook-delivery credit the
 * action's points once per job (wh_in.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include <nova/http.h>
#include <nova/pg.h>
#include <nova/plugin.h>

#include "wh.h"
#include "wh_in.h"
#include "wh_logic.h"
#include "wh_out.h"

#define DELIVER_JOB "deliver"
#define INBOUND_JOB "process-inbound-action"

static const struct nova_config_entry wh_config_table[] = {
    {.key = "outbound",
     .type = NOVA_CONFIG_BOOL,
     .default_value = "yes",
     .offset = offsetof(struct wh_config, outbound),
     .help = "deliver webhook_deliveries rows to merchant endpoints"},
    {.key = "inbound",
     .type = NOVA_CONFIG_BOOL,
     .default_value = "yes",
     .offset = offsetof(struct wh_config, inbound),
     .help = "credit process-inbound-action jobs"},
    {.key = "schedule",
     .type = NOVA_CONFIG_STRING,
     .default_value = "every 10s",
     .offset = offsetof(struct wh_config, schedule),
     .help = "when a delivery run starts (every <duration>, or a cron line); empty: never"},
    {.key = "timezone",
     .type = NOVA_CONFIG_STRING,
     .default_value = "UTC",
     .offset = offsetof(struct wh_config, timezone),
     .help = "IANA time zone a cron schedule is read in"},
    {.key = "dispatch_queue",
     .type = NOVA_CONFIG_STRING,
     .default_value = "webhook-dispatch",
     .offset = offsetof(struct wh_config, dispatch_queue),
     .help = "queue of the scheduled delivery runs (job " DELIVER_JOB ")"},
    {.key = "inbound_queue",
     .type = NOVA_CONFIG_STRING,
     .default_value = "webhook-delivery",
     .offset = offsetof(struct wh_config, inbound_queue),
     .help = "queue Nova's API puts " INBOUND_JOB " jobs on"},
    {.key = "inbound_concurrency",
     .type = NOVA_CONFIG_INT,
     .default_value = "4",
     .offset = offsetof(struct wh_config, inbound_concurrency),
     .help = "inbound action jobs in flight per worker",
     .min = 1,
     .max = 1000},
    {.key = "concurrency",
     .type = NOVA_CONFIG_INT,
     .default_value = "32",
     .offset = offsetof(struct wh_config, concurrency),
     .help = "deliveries claimed and in flight per worker",
     .min = 1,
     .max = 10000},
    {.key = "endpoint_concurrency",
     .type = NOVA_CONFIG_INT,
     .default_value = "4",
     .offset = offsetof(struct wh_config, endpoint_concurrency),
     .help = "requests in flight to one webhook endpoint per worker",
     .min = 1,
     .max = 1000},
    {.key = "batch_size",
     .type = NOVA_CONFIG_INT,
     .default_value = "100",
     .offset = offsetof(struct wh_config, batch_size),
     .help = "rows claimed per statement",
     .min = 1,
     .max = 1000},
    {.key = "run_limit",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "1m",
     .offset = offsetof(struct wh_config, run_limit_ms),
     .help = "a run claims no more rows after this long (the next run goes on)",
     .min = 1000,
     .max = 3600000},
    {.key = "timeout",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "10s",
     .offset = offsetof(struct wh_config, timeout_ms),
     .help = "one delivery attempt, connection to last byte",
     .min = 100,
     .max = 300000,
     .env = "WEBHOOK_TIMEOUT_MS"},
    {.key = "retry_delays",
     .type = NOVA_CONFIG_STRING,
     .default_value = "1m, 5m, 30m, 2h, 8h",
     .offset = offsetof(struct wh_config, retry_delays),
     .help = "wait after failed attempt 1, 2, ... (the last repeats)"},
    {.key = "retry_jitter",
     .type = NOVA_CONFIG_INT,
     .default_value = "10",
     .offset = offsetof(struct wh_config, retry_jitter),
     .help = "each wait is spread by +/- this percentage",
     .min = 0,
     .max = 50},
    {.key = "max_attempts",
     .type = NOVA_CONFIG_INT,
     .default_value = "5",
     .offset = offsetof(struct wh_config, max_attempts),
     .help = "attempts after the first delivery, one per retry_delays entry (the last "
             "repeats); then it is failed for good",
     .min = 0,
     .max = 99,
     .env = "WEBHOOK_MAX_ATTEMPTS"},
    {.key = "breaker_threshold",
     .type = NOVA_CONFIG_INT,
     .default_value = "5",
     .offset = offsetof(struct wh_config, breaker_threshold),
     .help = "failed attempts in a row that pause an endpoint (0: no circuit breaker)",
     .min = 0,
     .max = 100000},
    {.key = "breaker_cooldown",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "5m",
     .offset = offsetof(struct wh_config, breaker_cooldown_ms),
     .help = "how long a paused endpoint waits before one probe delivery",
     .min = 1000,
     .max = 86400000},
    {.key = "allow_networks",
     .type = NOVA_CONFIG_STRING,
     .default_value = "",
     .offset = offsetof(struct wh_config, allow_networks),
     .help = "CIDR list the outbound guard lets through (private ranges of your own)"},
    {.key = "https_only",
     .type = NOVA_CONFIG_BOOL,
     .default_value = "no",
     .offset = offsetof(struct wh_config, https_only),
     .help = "refuse http:// webhook URLs"},
    {.key = "encryption_key",
     .type = NOVA_CONFIG_SECRET,
     .offset = offsetof(struct wh_config, encryption_key),
     .help = "64 hex digits: the key Nova encrypts webhook secrets with",
     .env = "FIELD_ENCRYPTION_KEY"},
    {.key = "encryption_key_previous",
     .type = NOVA_CONFIG_SECRET,
     .offset = offsetof(struct wh_config, encryption_key_previous),
     .help = "64 hex digits: the key before the last rotation, tried second",
     .env = "FIELD_ENCRYPTION_KEY_PREVIOUS"},
    {.key = "action_points",
     .type = NOVA_CONFIG_STRING,
     .default_value = "purchase:100, sign-up:500, referral:200",
     .offset = offsetof(struct wh_config, action_points),
     .help = "points credited per inbound action, name:points"},
    {.key = NULL},
};

static const char *const wh_columns[] = {
    "webhooks.id",
    "webhooks.merchant_id",
    "webhooks.url",
    "webhooks.secret",
    "webhooks.events",
    "webhooks.is_active",
    "webhook_deliveries.id",
    "webhook_deliveries.webhook_id",
    "webhook_deliveries.event_type",
    "webhook_deliveries.payload",
    "webhook_deliveries.status",
    "webhook_deliveries.http_status",
    "webhook_deliveries.response_body",
    "webhook_deliveries.attempt",
    "webhook_deliveries.next_retry_at",
    "webhook_deliveries.delivered_at",
    "webhook_deliveries.created_at",
    "webhook_deliveries.delivery_id",
    "nova_worker_webhook_breakers.open_until",
    "nova_worker_webhook_dispatches.reference",
    "users.id",
    "user_balance.balance",
    "point_transactions.balance_before",
    "point_transactions.balance_after",
    "point_transactions.description",
    "audit_logs.after_state",
    "audit_logs.actor_type",
    "nova_worker_processed_jobs.result",
    NULL,
};

/* Everything init() would refuse, without the host: shared by init() and
 * the schedules callback, so `nova-worker check` reports it too. */
static int validate(const struct wh_config *cfg, struct wh *into, char *err, size_t errlen)
{
    int64_t delays[WH_MAX_DELAYS];
    struct wh_action actions[WH_MAX_ACTIONS];
    uint8_t key[WH_KEY_BYTES];
    int n;

    n = wh_parse_delays(cfg->retry_delays, delays, WH_MAX_DELAYS, err, errlen);
    if (n < 0)
        return n;
    if (into != NULL) {
        memcpy(into->delays, delays, (size_t)n * sizeof delays[0]);
        into->ndelays = (size_t)n;
    }
    n = wh_parse_actions(cfg->action_points, actions, WH_MAX_ACTIONS, err, errlen);
    if (n < 0)
        return n;
    if (into != NULL) {
        memcpy(into->actions, actions, (size_t)n * sizeof actions[0]);
        into->nactions = (size_t)n;
    }
    if (wh_check_networks(cfg->allow_networks, err, errlen) < 0)
        return -EINVAL;
    const char *const keys[] = {cfg->encryption_key, cfg->encryption_key_previous};
    for (int i = 0; i < 2; i++) {
        if (keys[i] == NULL || keys[i][0] == '\0')
            continue;
        if (wh_parse_key(keys[i], key) != 0) {
            snprintf(err, errlen, "%s: must be 64 hex digits (FIELD_ENCRYPTION_KEY%s's format)",
                     i == 0 ? "encryption_key" : "encryption_key_previous",
                     i == 0 ? "" : "_PREVIOUS");
            return -EINVAL;
        }
        if (into != NULL) {
            memcpy(i == 0 ? into->keys.current : into->keys.previous, key, WH_KEY_BYTES);
            if (i == 0)
                into->keys.has_current = true;
            else
                into->keys.has_previous = true;
        }
        sodium_memzero(key, sizeof key);
    }
    if (!cfg->outbound && !cfg->inbound) {
        snprintf(err, errlen, "outbound and inbound are both off: nothing to do");
        return -EINVAL;
    }
    return 0;
}

static int wh_schedules(const void *config, struct nova_schedule *out, size_t max, char *err,
                        size_t errlen)
{
    const struct wh_config *cfg = config;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -EIO;
    }
    int rc = validate(cfg, NULL, err, errlen);
    if (rc < 0)
        return rc;
    if (!cfg->outbound || cfg->schedule == NULL || cfg->schedule[0] == '\0' || max < 1)
        return 0;
    out[0] = (struct nova_schedule){
        .id = "webhook-deliver",
        .queue = cfg->dispatch_queue,
        .job_name = DELIVER_JOB,
        .spec = cfg->schedule,
        .timezone = cfg->timezone,
        .data_json = "{}",
    };
    return 1;
}

static void on_deliver_job(void *arg, nova_job *job)
{
    struct wh *wh = arg;
    wh_out_run(wh->out, job);
}

static void wh_free(struct wh *wh)
{
    wh_out_free(wh->out);
    sodium_memzero(&wh->keys, sizeof wh->keys);
    free(wh);
}

static int wh_init(const struct nova_host *host, const void *config, void **state)
{
    const struct wh_config *cfg = config;
    char err[512] = "";

    if (!NOVA_HOST_HAS(host, pg) || !NOVA_HOST_HAS(host, subscribe) ||
        (cfg->outbound && !NOVA_HOST_HAS(host, http))) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "webhook needs PostgreSQL, the HTTP client and queues from the host");
        return -ENOTSUP;
    }
    if (sodium_init() < 0) {
        host->log(host, NOVA_LOG_ERROR, NULL, "libsodium failed to initialise");
        return -EIO;
    }
    struct wh *wh = calloc(1, sizeof *wh);
    if (wh == NULL)
        return -ENOMEM;
    wh->host = host;
    wh->cfg = cfg;
    wh->pg = host->pg;
    wh->http = host->http;
    if (validate(cfg, wh, err, sizeof err) != 0) {
        host->log(host, NOVA_LOG_ERROR, NULL, "%s", err);
        wh_free(wh);
        return -EINVAL;
    }
    if ((wh->keys.has_current || wh->keys.has_previous) && !crypto_aead_aes256gcm_is_available())
        host->log(host, NOVA_LOG_WARN, NULL,
                  "AES-256-GCM is not available on this CPU (libsodium needs AES-NI and PCLMUL): "
                  "deliveries of webhooks with encrypted secrets fail with that reason");
    if (cfg->outbound && !wh->keys.has_current && !wh->keys.has_previous)
        host->log(host, NOVA_LOG_WARN, NULL,
                  "no encryption_key (FIELD_ENCRYPTION_KEY): only webhooks whose secret is "
                  "stored in plaintext can be delivered");

    static const char *const l_result[] = {"result", NULL};
    static const char *const l_state[] = {"state", NULL};
    wh->m_deliveries = host->metric_new(
        host, NOVA_METRIC_COUNTER, "nova_webhook_deliveries_total",
        "Webhook delivery attempts recorded: success, retry (failed, another attempt due) or "
        "failed (no attempts left)",
        l_result, NULL, 0);
    wh->m_duration =
        host->metric_new(host, NOVA_METRIC_HISTOGRAM, "nova_webhook_delivery_duration_seconds",
                         "Time from sending a webhook attempt to its outcome", NULL, NULL, 0);
    wh->m_breaker =
        host->metric_new(host, NOVA_METRIC_COUNTER, "nova_webhook_breaker_transitions_total",
                         "Circuit breaker transitions of webhook endpoints (open: "
                         "opened or a probe failed; closed: delivered again)",
                         l_state, NULL, 0);
    wh->m_inbound = host->metric_new(
        host, NOVA_METRIC_COUNTER, "nova_webhook_inbound_actions_total",
        "Inbound action jobs: credited, duplicate (credited by an earlier run), unrecognized, "
        "rejected (not a user) or error",
        l_result, NULL, 0);
    wh->m_claimed =
        host->metric_new(host, NOVA_METRIC_COUNTER, "nova_webhook_claimed_total",
                         "webhook_deliveries rows claimed for an attempt", NULL, NULL, 0);

    int rc = 0;
    if (cfg->outbound) {
        wh->out = wh_out_new(wh);
        if (wh->out == NULL) {
            wh_free(wh);
            return -ENOMEM;
        }
        static const char *const deliver_names[] = {DELIVER_JOB, NULL};
        struct nova_subscription sub = {
            .struct_size = sizeof sub,
            .queue = cfg->dispatch_queue,
            .job_names = deliver_names,
            .concurrency = 1,
            .handle = on_deliver_job,
            .arg = wh,
        };
        rc = host->subscribe(host, &sub);
    }
    if (rc == 0 && cfg->inbound) {
        static const char *const inbound_names[] = {INBOUND_JOB, NULL};
        struct nova_subscription sub = {
            .struct_size = sizeof sub,
            .queue = cfg->inbound_queue,
            .job_names = inbound_names,
            .concurrency = (unsigned)cfg->inbound_concurrency,
            .handle = wh_in_handle,
            .arg = wh,
        };
        rc = host->subscribe(host, &sub);
    }
    if (rc != 0) {
        host->log(host, NOVA_LOG_ERROR, NULL, "webhook: subscribing failed (%d)", rc);
        wh_free(wh);
        return rc;
    }
    const char *allow = cfg->allow_networks != NULL ? cfg->allow_networks : "";
    if (cfg->outbound)
        host->log(host, NOVA_LOG_INFO, NULL,
                  "delivering webhook_deliveries on %s (%s, job %s): %" PRId64
                  " in flight, %" PRId64 " per endpoint, %" PRId64 " attempts, timeout %" PRId64
                  " ms%s%s",
                  cfg->dispatch_queue,
                  cfg->schedule != NULL && cfg->schedule[0] != '\0' ? cfg->schedule : "no schedule",
                  DELIVER_JOB, cfg->concurrency, cfg->endpoint_concurrency, wh_total_attempts(cfg),
                  cfg->timeout_ms, allow[0] != '\0' ? ", guard lets through " : "", allow);
    if (cfg->inbound)
        host->log(host, NOVA_LOG_INFO, NULL, "crediting %s jobs on %s (%zu actions)", INBOUND_JOB,
                  cfg->inbound_queue, wh->nactions);
    *state = wh;
    return 0;
}

static void wh_stop(void *state)
{
    struct wh *wh = state;
    if (wh->out != NULL)
        wh_out_stop(wh->out);
}

static void wh_shutdown(void *state)
{
    wh_free(state);
}

static const struct nova_plugin wh_plugin = {
    NOVA_PLUGIN_ABI,
    .requires = NOVA_REQUIRES_PG | NOVA_REQUIRES_HTTP,
    .name = "webhook",
    .version = "1.0.0",
    .description = "Nova's merchant webhooks delivered once per attempt, inbound actions "
                   "credited once",
    .config = wh_config_table,
    .config_size = sizeof(struct wh_config),
    .required_columns = wh_columns,
    .init = wh_init,
    .stop = wh_stop,
    .shutdown = wh_shutdown,
    .schedules = wh_schedules,
};

NOVA_PLUGIN_DEFINE(wh_plugin)
