/*
 * wh_out - the outbound side of the webhook plugin (wh_out.h).
 *
 * A row is due when it is new (status pending, next_retry_at NULL or
 * past) or failed with next_retry_at past and attempts left, and its
 * webhook is active and its breaker not open. A claim moves next_retry_at
 * to now + lease in the statement that locks the row (FOR UPDATE SKIP
 * LOCKED), so no other worker sees it as due until this one recorded the
 * attempt or died; the claimed value is the fence every later write of
 * this worker to the row checks. The number of the attempt made is the
 * row's attempt for a new row (its default 1), attempt + 1 for a failed
 * one; recording writes it, so `attempt` is always the attempts made.
 */
#include "wh_out.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <cjson/cJSON.h>
#include <nova/buf.h>

#define ENDPOINT_BUCKETS   256
#define RECORD_TRIES       6
#define MAX_RESPONSE_BYTES 65536
#define LEASE_MARGIN_MS    60000

static const char SQL_SWEEP[] =
    "WITH s AS (UPDATE webhook_deliveries SET next_retry_at = NULL "
    "WHERE status = 'failed' AND next_retry_at <= now() AND attempt >= $1::int RETURNING id) "
    "SELECT count(*) FROM s";

/* $1 rows wanted, $2 attempts in all (wh_total_attempts), $3 breaker
 * threshold, $4 endpoints to skip (full here), $5 per-endpoint cap, $6
 * lease ms. A half-open endpoint (breaker threshold reached, open_until
 * past) gets one row: its probe. The candidates are due rows as the scan
 * finds them (no sort of the whole backlog: a claim costs the size of the
 * batch, not of the backlog); of those, the oldest due are taken first. */
static const char SQL_CLAIM[] =
    "WITH cand AS ("
    " SELECT d.id, d.webhook_id, coalesce(d.next_retry_at, d.created_at) AS due_at,"
    "  (b.consecutive_failures IS NOT NULL AND b.consecutive_failures >= $3::int) AS probe"
    " FROM webhook_deliveries d"
    " JOIN webhooks w ON w.id = d.webhook_id"
    " LEFT JOIN nova_worker_webhook_breakers b ON b.webhook_id = d.webhook_id"
    " WHERE ((d.status = 'pending' AND (d.next_retry_at IS NULL OR d.next_retry_at <= now())"
    "         AND NOT (d.event_type = 'test' AND d.next_retry_at IS NULL"
    "                  AND d.created_at > now() - interval '1 minute'))"
    "        OR (d.status = 'failed' AND d.next_retry_at <= now() AND d.attempt < $2::int))"
    "   AND w.is_active"
    "   AND (b.open_until IS NULL OR b.open_until <= now())"
    "   AND d.webhook_id <> ALL ($4::int[])"
    " LIMIT $1::int * 2"
    " FOR UPDATE OF d SKIP LOCKED),"
    "ranked AS ("
    " SELECT id, probe, due_at,"
    "  row_number() OVER (PARTITION BY webhook_id ORDER BY due_at, id) AS rn"
    " FROM cand),"
    "picked AS ("
    " SELECT id, probe FROM ranked WHERE rn <= CASE WHEN probe THEN 1 ELSE $5::int END"
    " ORDER BY due_at, id LIMIT $1::int) "
    "UPDATE webhook_deliveries d SET next_retry_at = now() + $6::bigint * interval '1 millisecond' "
    "FROM picked p, webhooks w "
    "WHERE d.id = ANY (ARRAY(SELECT id FROM picked)) AND d.id = p.id AND w.id = d.webhook_id "
    "RETURNING d.id, d.delivery_id::text, d.event_type, d.payload::text, d.status, d.attempt,"
    " d.webhook_id, w.url, w.secret, p.probe, d.next_retry_at::text";

/* The probe of a half-open endpoint is this worker's when it moves
 * open_until first: $1 webhook, $2 lease ms, $3 threshold. */
static const char SQL_PROBE[] =
    "UPDATE nova_worker_webhook_breakers SET open_until = now() + $2::bigint * interval "
    "'1 millisecond', updated_at = now() "
    "WHERE webhook_id = $1::int AND consecutive_failures >= $3::int "
    "AND (open_until IS NULL OR open_until <= now())";

/* A claimed row given back unsent: due again at once ($1 id, $2 fence). */
static const char SQL_RELEASE[] =
    "UPDATE webhook_deliveries SET next_retry_at = CASE WHEN status = 'pending' THEN NULL "
    "ELSE now() END WHERE id = $1::int AND next_retry_at = $2::timestamptz";

/* $1 id, $2 attempt, $3 http_status, $4 response_body, $5 fence. Answers
 * whether the row was updated, whether the breaker was reset, and whether
 * it was open (then this success closes it). */
static const char SQL_RECORD_OK[] =
    "WITH d AS ("
    " UPDATE webhook_deliveries SET status = 'success', attempt = $2::int,"
    "  http_status = $3::int, response_body = $4, next_retry_at = NULL, delivered_at = now()"
    " WHERE id = $1::int AND next_retry_at = $5::timestamptz RETURNING webhook_id),"
    "b AS ("
    " UPDATE nova_worker_webhook_breakers b SET consecutive_failures = 0, open_until = NULL,"
    "  opened_at = NULL, updated_at = now()"
    " FROM d WHERE b.webhook_id = d.webhook_id"
    "  AND (b.consecutive_failures <> 0 OR b.open_until IS NOT NULL) RETURNING 1),"
    /* the breaker as it was (the statement's snapshot): open or probing */
    "was AS ("
    " SELECT bool_or(k.open_until IS NOT NULL) AS open FROM nova_worker_webhook_breakers k"
    " JOIN d ON k.webhook_id = d.webhook_id) "
    "SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM b),"
    " coalesce((SELECT open FROM was), false)";

/* $1 id, $2 attempt, $3 http_status, $4 response_body, $5 fence, $6 retry
 * in ms (< 0: final), $7 breaker threshold, $8 cooldown ms, $9 whether it
 * counts for the breaker. */
static const char SQL_RECORD_FAIL[] =
    "WITH d AS ("
    " UPDATE webhook_deliveries SET status = 'failed', attempt = $2::int,"
    "  http_status = $3::int, response_body = $4,"
    "  next_retry_at = CASE WHEN $6::bigint < 0 THEN NULL"
    "                  ELSE now() + $6::bigint * interval '1 millisecond' END,"
    "  delivered_at = NULL"
    " WHERE id = $1::int AND next_retry_at = $5::timestamptz RETURNING webhook_id),"
    "b AS ("
    " INSERT INTO nova_worker_webhook_breakers AS b"
    "  (webhook_id, consecutive_failures, open_until, opened_at, last_error, updated_at)"
    " SELECT d.webhook_id, 1,"
    "  CASE WHEN 1 >= $7::int THEN now() + $8::bigint * interval '1 millisecond' END,"
    "  CASE WHEN 1 >= $7::int THEN now() END, left($4, 300), now()"
    " FROM d WHERE $9::bool"
    " ON CONFLICT (webhook_id) DO UPDATE SET"
    "  consecutive_failures = b.consecutive_failures + 1,"
    "  open_until = CASE WHEN b.consecutive_failures + 1 >= $7::int"
    "               THEN now() + $8::bigint * interval '1 millisecond' ELSE b.open_until END,"
    "  opened_at = CASE WHEN b.consecutive_failures + 1 >= $7::int"
    "              THEN coalesce(b.opened_at, now()) ELSE b.opened_at END,"
    "  last_error = EXCLUDED.last_error, updated_at = now()"
    " RETURNING b.consecutive_failures) "
    "SELECT (SELECT count(*) FROM d), (SELECT consecutive_failures FROM b)";

struct delivery;

struct endpoint {
    int64_t webhook_id;
    unsigned inflight;            /* being sent */
    size_t live;                  /* claimed here and not finished */
    bool kicking;                 /* inside ep_kick(): not to be freed */
    struct delivery *head, *tail; /* waiting for a slot */
    struct endpoint *next;        /* hash chain */
};

struct delivery {
    struct wh_out *o;
    struct endpoint *ep;
    struct delivery *next; /* endpoint queue */
    struct delivery *all_prev, *all_next;
    int64_t id;
    int64_t webhook_id;
    int attempt;
    bool probe;
    char delivery_id[40];
    char fence[64];
    char *url, *secret, *event_type, *body;
    size_t body_len;
    int64_t started_ms;
    /* outcome */
    bool success, counts;
    long status;
    int64_t retry_ms; /* -1: final */
    char response[WH_BODY_BYTES];
    int record_tries;
};

struct run {
    nova_job *job;
    int64_t started_ms;
    bool claiming;
    bool exhausted;   /* a claim found fewer due rows than it asked for */
    bool wait_slot;   /* ... but skipped full endpoints: claim again once one has room */
    bool had_full;    /* the claim in flight skipped full endpoints */
    bool in_callback; /* on_claimed() is setting up its rows */
    size_t asked;
    uint64_t claimed, delivered, retrying, failed, released, swept;
};

struct wh_out {
    struct wh *wh;
    struct endpoint *buckets[ENDPOINT_BUCKETS];
    struct delivery *all;
    size_t live;
    struct run *run;
    bool stopping;
    int64_t lease_ms;
};

static void pump(struct wh_out *o);
static void ep_kick(struct wh_out *o, struct endpoint *ep);

/* ---- endpoints --------------------------------------------------------------- */

static struct endpoint *ep_get(struct wh_out *o, int64_t webhook_id, bool create)
{
    size_t b = (size_t)((uint64_t)webhook_id % ENDPOINT_BUCKETS);
    for (struct endpoint *e = o->buckets[b]; e != NULL; e = e->next) {
        if (e->webhook_id == webhook_id)
            return e;
    }
    if (!create)
        return NULL;
    struct endpoint *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->webhook_id = webhook_id;
    e->next = o->buckets[b];
    o->buckets[b] = e;
    return e;
}

static void ep_drop_if_idle(struct wh_out *o, struct endpoint *ep)
{
    if (ep->live > 0 || ep->kicking)
        return;
    size_t b = (size_t)((uint64_t)ep->webhook_id % ENDPOINT_BUCKETS);
    for (struct endpoint **pp = &o->buckets[b]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == ep) {
            *pp = ep->next;
            free(ep);
            return;
        }
    }
}

/* ---- deliveries --------------------------------------------------------------- */

static void d_wipe_secret(struct delivery *d)
{
    if (d->secret != NULL) {
        sodium_memzero(d->secret, strlen(d->secret));
        free(d->secret);
        d->secret = NULL;
    }
}

static void d_free(struct delivery *d)
{
    struct wh_out *o = d->o;
    if (d->all_prev != NULL)
        d->all_prev->all_next = d->all_next;
    else
        o->all = d->all_next;
    if (d->all_next != NULL)
        d->all_next->all_prev = d->all_prev;
    d_wipe_secret(d);
    free(d->url);
    free(d->event_type);
    free(d->body);
    free(d);
}

/* The delivery is over (recorded, released or abandoned). */
static void d_done(struct delivery *d)
{
    struct wh_out *o = d->o;
    struct endpoint *ep = d->ep;
    o->live--;
    d_free(d);
    if (ep != NULL) {
        ep->live--;
        ep_kick(o, ep);
    }
    if (o->run != NULL)
        o->run->wait_slot = false;
    pump(o);
}

static void on_released(void *arg, int status, const nova_pg_result *res)
{
    struct delivery *d = arg;
    struct wh *wh = d->o->wh;
    if (status != 0 && status != -ECANCELED)
        wh->host->log(wh->host, NOVA_LOG_WARN, NULL,
                      "webhook delivery %s: giving the claim back failed (%s); it is due again "
                      "when the claim expires",
                      d->delivery_id, wh->pg->error_message(res));
    if (d->o->run != NULL && status == 0)
        d->o->run->released++;
    d_done(d);
}

/* Gives a claimed row back unsent. */
static void d_release(struct delivery *d)
{
    struct wh *wh = d->o->wh;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, d->id);
    const char *p[] = {id, d->fence};
    if (wh->pg->query(wh->host, SQL_RELEASE, 2, p, on_released, d) != 0)
        d_done(d); /* the claim expires by itself */
}

/* Gives back every delivery of ep still waiting for a slot. ep stays
 * allocated while they live, and is not touched after the last. */
static void ep_release_waiting(struct endpoint *ep)
{
    struct delivery *list = ep->head, *d;
    ep->head = ep->tail = NULL;
    while ((d = list) != NULL) {
        list = d->next;
        d->next = NULL;
        d_release(d);
    }
}

/* ---- recording ------------------------------------------------------------------ */

static void record(struct delivery *d);

static void on_record_timer(void *arg)
{
    record(arg);
}

static void count_outcome(struct delivery *d, const char *result)
{
    struct wh *wh = d->o->wh;
    const char *lv[] = {result, NULL};
    wh->host->metric_add(wh->m_deliveries, lv, 1);
    double secs = (double)(wh->host->now_ms(wh->host) - d->started_ms) / 1000.0;
    wh->host->metric_observe(wh->m_duration, NULL, secs < 0 ? 0 : secs);
}

static void breaker_event(struct delivery *d, const char *state)
{
    struct wh *wh = d->o->wh;
    const char *lv[] = {state, NULL};
    wh->host->metric_add(wh->m_breaker, lv, 1);
}

static void on_recorded(void *arg, int status, const nova_pg_result *res)
{
    struct delivery *d = arg;
    struct wh_out *o = d->o;
    struct wh *wh = o->wh;
    const struct nova_pg_api *pg = wh->pg;
    const struct nova_host *h = wh->host;

    if (status == -ECANCELED) {
        d_done(d);
        return;
    }
    if (status != 0) {
        /* Until it is recorded the row stays claimed: keep trying while the
         * claim lasts, else it is sent again once the claim expires. */
        if (nova_pg_error_retryable(status) && ++d->record_tries < RECORD_TRIES) {
            uint64_t wait = 500u << d->record_tries;
            if (h->timer_start(h, wait, 0, on_record_timer, d) != NULL)
                return;
        }
        h->log(h, NOVA_LOG_ERROR, NULL,
               "webhook delivery %s: recording attempt %d failed (%s); it will be sent again "
               "when its claim expires",
               d->delivery_id, d->attempt, pg->error_message(res));
        d_done(d);
        return;
    }
    int64_t updated = 0, breaker = 0;
    bool was_open = false;
    pg->get_int64(res, 0, 0, &updated);
    pg->get_int64(res, 0, 1, &breaker);
    if (d->success)
        pg->get_bool(res, 0, 2, &was_open);
    if (updated == 0) {
        h->log(h, NOVA_LOG_WARN, NULL,
               "webhook delivery %s: attempt %d was made but the row was claimed again meanwhile "
               "(claim expired after %" PRId64 " ms): outcome not recorded",
               d->delivery_id, d->attempt, o->lease_ms);
        d_done(d);
        return;
    }
    struct run *r = o->run;
    if (d->success) {
        count_outcome(d, "success");
        if (r != NULL)
            r->delivered++;
        if (breaker > 0 && was_open) {
            breaker_event(d, "closed");
            h->log(h, NOVA_LOG_INFO, NULL,
                   "webhook %" PRId64 ": circuit breaker closed (delivery %s succeeded)",
                   d->webhook_id, d->delivery_id);
        }
    } else {
        if (d->retry_ms < 0) {
            count_outcome(d, "failed");
            if (r != NULL)
                r->failed++;
            h->log(h, NOVA_LOG_WARN, NULL,
                   "webhook delivery %s (webhook %" PRId64 ", %s) failed for good after %d "
                   "attempts: %s",
                   d->delivery_id, d->webhook_id, d->event_type, d->attempt, d->response);
        } else {
            count_outcome(d, "retry");
            if (r != NULL)
                r->retrying++;
            h->log(h, NOVA_LOG_INFO, NULL,
                   "webhook delivery %s (webhook %" PRId64 ") attempt %d failed, next in %" PRId64
                   " s: %.200s",
                   d->delivery_id, d->webhook_id, d->attempt, d->retry_ms / 1000, d->response);
        }
        int64_t threshold = wh->cfg->breaker_threshold;
        if (d->counts && threshold > 0 && breaker >= threshold) {
            if (breaker == threshold || d->probe) {
                breaker_event(d, "open");
                h->log(h, NOVA_LOG_WARN, NULL,
                       "webhook %" PRId64 ": circuit breaker %s after %" PRId64
                       " failures in a row; next probe in %" PRId64 " s",
                       d->webhook_id, d->probe ? "stays open (probe failed)" : "opened", breaker,
                       wh->cfg->breaker_cooldown_ms / 1000);
            }
            /* what still waits here would only fail too */
            if (d->ep != NULL)
                ep_release_waiting(d->ep);
        }
    }
    d_done(d);
}

static void record(struct delivery *d)
{
    struct wh *wh = d->o->wh;
    char id[24], attempt[16], status[16], retry[24], threshold[24], cooldown[24];
    int rc;

    snprintf(id, sizeof id, "%" PRId64, d->id);
    snprintf(attempt, sizeof attempt, "%d", d->attempt);
    snprintf(status, sizeof status, "%ld", d->status);
    const char *http_status = d->status > 0 ? status : NULL;
    if (d->success) {
        const char *p[] = {id, attempt, http_status, d->response, d->fence};
        rc = wh->pg->query(wh->host, SQL_RECORD_OK, 5, p, on_recorded, d);
    } else {
        snprintf(retry, sizeof retry, "%" PRId64, d->retry_ms);
        snprintf(threshold, sizeof threshold, "%" PRId64,
                 wh->cfg->breaker_threshold > 0 ? wh->cfg->breaker_threshold : 1);
        snprintf(cooldown, sizeof cooldown, "%" PRId64, wh->cfg->breaker_cooldown_ms);
        const char *counts = d->counts && wh->cfg->breaker_threshold > 0 ? "true" : "false";
        const char *p[] = {id,    attempt,   http_status, d->response, d->fence,
                           retry, threshold, cooldown,    counts};
        rc = wh->pg->query(wh->host, SQL_RECORD_FAIL, 9, p, on_recorded, d);
    }
    if (rc != 0) {
        wh->host->log(wh->host, NOVA_LOG_ERROR, NULL,
                      "webhook delivery %s: cannot record attempt %d (%d); it will be sent again "
                      "when its claim expires",
                      d->delivery_id, d->attempt, rc);
        d_done(d);
    }
}

/* A failed attempt: the next one after the schedule, or none. */
static void fail_attempt(struct delivery *d, const char *why, bool counts)
{
    struct wh *wh = d->o->wh;
    d->success = false;
    d->counts = counts;
    if (why != NULL)
        wh_clip_text(why, strlen(why), WH_BODY_CHARS, d->response);
    if (d->attempt >= wh_total_attempts(wh->cfg))
        d->retry_ms = -1;
    else
        d->retry_ms =
            wh_retry_delay_ms(wh->delays, wh->ndelays, d->attempt, (int)wh->cfg->retry_jitter,
                              (double)randombytes_uniform(1000000) / 1000000.0);
}

/* ---- sending --------------------------------------------------------------------- */

static void on_response(void *arg, const struct nova_http_response *res)
{
    struct delivery *d = arg;
    struct endpoint *ep = d->ep;

    ep->inflight--;
    ep_kick(d->o, ep); /* recording does not hold a request slot */
    if (res->error == -ECANCELED) {
        /* the daemon is going down: unknown whether it arrived; the claim
         * expires and the attempt is made again */
        d_done(d);
        return;
    }
    d->status = res->status;
    bool answered_2xx = res->status >= 200 && res->status < 300;
    if (answered_2xx && (res->error == 0 || res->error == -EFBIG)) {
        d->success = true;
        wh_clip_text(res->body, res->body_len, WH_BODY_CHARS, d->response);
    } else if (res->error != 0) {
        fail_attempt(d, res->error_message, true);
    } else if (res->status >= 300 && res->status < 400 && res->body_len == 0) {
        fail_attempt(d, "redirect not followed", true);
    } else {
        fail_attempt(d, NULL, true);
        wh_clip_text(res->body, res->body_len, WH_BODY_CHARS, d->response);
    }
    record(d);
}

static void send(struct delivery *d)
{
    struct wh *wh = d->o->wh;
    const struct nova_host *h = wh->host;
    char secret[WH_SECRET_MAX + 1], err[256] = "";
    enum wh_secret_source src = WH_SECRET_PLAINTEXT;

    d->started_ms = h->now_ms(h);
    int slen = wh_secret_open(d->secret, &wh->keys, secret, &src, err, sizeof err);
    d_wipe_secret(d);
    if (slen < 0) {
        h->log(h, NOVA_LOG_WARN, NULL, "webhook %" PRId64 " (delivery %s): %s", d->webhook_id,
               d->delivery_id, err);
        /* not the endpoint's fault: the breaker does not count it */
        fail_attempt(d, err, false);
        record(d);
        return;
    }
    char ts[24], sig[WH_SIGNATURE_HEX];
    snprintf(ts, sizeof ts, "%" PRId64, h->now_ms(h));
    wh_sign(secret, (size_t)slen, ts, d->delivery_id, d->body, d->body_len, sig);
    sodium_memzero(secret, sizeof secret);

    char h_ts[48], h_id[64], h_sig[96];
    snprintf(h_ts, sizeof h_ts, "x-nova-timestamp: %s", ts);
    snprintf(h_id, sizeof h_id, "x-nova-delivery-id: %s", d->delivery_id);
    snprintf(h_sig, sizeof h_sig, "x-nova-signature: %s", sig);
    const char *headers[] = {"Content-Type: application/json",
                             "User-Agent: NovaRewards-Webhook/1.0",
                             "Accept:",
                             h_ts,
                             h_id,
                             h_sig,
                             NULL};
    const char *allow = wh->cfg->allow_networks;
    struct nova_http_request req = {
        .struct_size = sizeof req,
        .method = "POST",
        .url = d->url,
        .headers = headers,
        .body = d->body,
        .body_len = d->body_len,
        .timeout_ms = wh->cfg->timeout_ms,
        .max_response_bytes = MAX_RESPONSE_BYTES,
        .flags = NOVA_HTTP_GUARD | NOVA_HTTP_SEND_ONCE |
                 (wh->cfg->https_only ? NOVA_HTTP_HTTPS_ONLY : 0),
        .guard_allow = allow != NULL && allow[0] != '\0' ? allow : NULL,
    };
    d->ep->inflight++;
    int rc = wh->http->request(h, &req, on_response, d);
    if (rc != 0) {
        d->ep->inflight--;
        char why[96];
        snprintf(why, sizeof why, "the HTTP client refused the request (%s)",
                 rc == -EINVAL ? "invalid URL or header" : "unavailable");
        fail_attempt(d, why, rc == -EINVAL);
        record(d);
    }
}

static void ep_kick(struct wh_out *o, struct endpoint *ep)
{
    if (ep->kicking)
        return; /* the loop below goes on */
    ep->kicking = true;
    while (ep->head != NULL && ep->inflight < (unsigned)o->wh->cfg->endpoint_concurrency) {
        struct delivery *d = ep->head;
        ep->head = d->next;
        if (ep->head == NULL)
            ep->tail = NULL;
        d->next = NULL;
        if (o->stopping)
            d_release(d);
        else
            send(d);
    }
    ep->kicking = false;
    ep_drop_if_idle(o, ep);
}

static void ep_enqueue(struct delivery *d)
{
    struct endpoint *ep = d->ep;
    d->next = NULL;
    if (ep->tail != NULL)
        ep->tail->next = d;
    else
        ep->head = d;
    ep->tail = d;
    ep_kick(d->o, ep);
}

static void on_probe(void *arg, int status, const nova_pg_result *res)
{
    struct delivery *d = arg;
    struct wh *wh = d->o->wh;
    if (status == -ECANCELED) {
        d_done(d);
        return;
    }
    if (status == 0 && wh->pg->affected_rows(res) == 1) {
        wh->host->log(wh->host, NOVA_LOG_INFO, NULL,
                      "webhook %" PRId64 ": circuit breaker half-open, probing with delivery %s",
                      d->webhook_id, d->delivery_id);
        ep_enqueue(d);
        return;
    }
    /* another worker probes this endpoint */
    d_release(d);
}

/* ---- claims ----------------------------------------------------------------------- */

static char *dup_field(const struct nova_pg_api *pg, const nova_pg_result *res, int row, int col)
{
    const char *v = pg->get_text(res, row, col);
    return strdup(v != NULL ? v : "");
}

static void on_claimed(void *arg, int status, const nova_pg_result *res)
{
    struct wh_out *o = arg;
    struct wh *wh = o->wh;
    const struct nova_pg_api *pg = wh->pg;
    const struct nova_host *h = wh->host;
    struct run *r = o->run;

    if (status == -ECANCELED)
        return;
    if (r != NULL)
        r->claiming = false;
    if (status != 0) {
        h->log(h, NOVA_LOG_WARN, NULL, "webhook: claiming due deliveries failed: %s",
               pg->error_message(res));
        if (r != NULL)
            r->exhausted = true; /* the next scheduled run tries again */
        pump(o);
        return;
    }
    int rows = pg->ntuples(res);
    if (r != NULL) {
        r->claimed += (uint64_t)rows;
        if ((size_t)rows < r->asked) {
            /* nothing more is due now, but maybe for the endpoints skipped
             * as full: claim again when one of them has room */
            if (!r->had_full)
                r->exhausted = true;
            else if (o->live > 0)
                r->wait_slot = true;
        }
        r->in_callback = true;
    }
    if (rows > 0)
        h->metric_add(wh->m_claimed, NULL, rows);
    for (int i = 0; i < rows; i++) {
        struct delivery *d = calloc(1, sizeof *d);
        int64_t webhook_id = 0, id = 0, attempt = 1;
        if (d == NULL || pg->get_int64(res, i, 0, &id) != 0 ||
            pg->get_int64(res, i, 6, &webhook_id) != 0) {
            free(d);
            continue; /* the claim expires */
        }
        d->o = o;
        d->id = id;
        d->webhook_id = webhook_id;
        pg->get_int64(res, i, 5, &attempt);
        const char *st = pg->get_text(res, i, 4);
        /* attempt counts the attempts made; a new row holds its default 1 */
        d->attempt = st != NULL && strcmp(st, "pending") == 0 ? (int)(attempt < 1 ? 1 : attempt)
                                                              : (int)attempt + 1;
        bool probe = false;
        pg->get_bool(res, i, 9, &probe);
        d->probe = probe;
        snprintf(d->delivery_id, sizeof d->delivery_id, "%s",
                 pg->get_text(res, i, 1) ? pg->get_text(res, i, 1) : "");
        snprintf(d->fence, sizeof d->fence, "%s",
                 pg->get_text(res, i, 10) ? pg->get_text(res, i, 10) : "");
        d->event_type = dup_field(pg, res, i, 2);
        d->body = dup_field(pg, res, i, 3);
        d->url = dup_field(pg, res, i, 7);
        d->secret = dup_field(pg, res, i, 8);
        d->ep = ep_get(o, webhook_id, true);
        d->all_next = o->all;
        if (o->all != NULL)
            o->all->all_prev = d;
        o->all = d;
        o->live++;
        if (d->event_type == NULL || d->body == NULL || d->url == NULL || d->secret == NULL ||
            d->ep == NULL) {
            d->ep = NULL;
            d_done(d);
            continue;
        }
        d->ep->live++;
        d->body_len = wh_json_compact(d->body);
        if (d->probe) {
            char idt[24], lease[24], threshold[24];
            snprintf(idt, sizeof idt, "%" PRId64, d->webhook_id);
            snprintf(lease, sizeof lease, "%" PRId64, o->lease_ms);
            snprintf(threshold, sizeof threshold, "%" PRId64, wh->cfg->breaker_threshold);
            const char *p[] = {idt, lease, threshold};
            if (pg->query(h, SQL_PROBE, 3, p, on_probe, d) != 0)
                d_release(d);
        } else {
            ep_enqueue(d);
        }
    }
    if (r != NULL)
        r->in_callback = false;
    pump(o);
}

/* Endpoints this process already has endpoint_concurrency rows of, as an
 * int[] literal. */
static char *full_endpoints(struct wh_out *o)
{
    struct nova_buf s = {0};
    nova_buf_add(&s, "{", 1);
    for (size_t b = 0; b < ENDPOINT_BUCKETS; b++) {
        for (struct endpoint *e = o->buckets[b]; e != NULL; e = e->next) {
            if (e->live < (size_t)o->wh->cfg->endpoint_concurrency)
                continue;
            nova_buf_printf(&s, "%s%" PRId64, s.len > 1 ? "," : "", e->webhook_id);
        }
    }
    nova_buf_add(&s, "}", 1);
    if (s.oom) {
        nova_buf_free(&s);
        return NULL;
    }
    return s.p;
}

static void claim(struct wh_out *o, size_t want)
{
    struct wh *wh = o->wh;
    const struct wh_config *cfg = wh->cfg;
    char n[24], max[24], threshold[24], cap[24], lease[24];
    char *full = full_endpoints(o);
    if (full == NULL) {
        o->run->exhausted = true;
        return;
    }
    o->run->had_full = strcmp(full, "{}") != 0;
    snprintf(n, sizeof n, "%zu", want);
    snprintf(max, sizeof max, "%" PRId64, wh_total_attempts(cfg));
    /* without a breaker nothing is ever half-open */
    snprintf(threshold, sizeof threshold, "%" PRId64,
             cfg->breaker_threshold > 0 ? cfg->breaker_threshold : (int64_t)2147483647);
    snprintf(cap, sizeof cap, "%" PRId64, cfg->endpoint_concurrency);
    snprintf(lease, sizeof lease, "%" PRId64, o->lease_ms);
    const char *p[] = {n, max, threshold, full, cap, lease};
    o->run->claiming = true;
    o->run->asked = want;
    if (wh->pg->query(wh->host, SQL_CLAIM, 6, p, on_claimed, o) != 0) {
        o->run->claiming = false;
        o->run->exhausted = true;
    }
    free(full);
}

/* ---- runs ------------------------------------------------------------------------- */

static void finish_run(struct wh_out *o)
{
    struct run *r = o->run;
    const struct nova_host *h = o->wh->host;
    char result[320];
    o->run = NULL;
    snprintf(result, sizeof result,
             "{\"claimed\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"retrying\":%" PRIu64
             ",\"failed\":%" PRIu64 ",\"released\":%" PRIu64 ",\"expired\":%" PRIu64 "}",
             r->claimed, r->delivered, r->retrying, r->failed, r->released, r->swept);
    if (r->claimed > 0 || r->swept > 0)
        h->log(h, NOVA_LOG_INFO, r->job, "webhook run: %s", result);
    h->job_done(r->job, result);
    free(r);
}

static void pump(struct wh_out *o)
{
    struct run *r = o->run;
    const struct wh_config *cfg = o->wh->cfg;
    const struct nova_host *h = o->wh->host;

    if (r == NULL || r->claiming || r->in_callback)
        return;
    bool over = o->stopping || h->job_cancelled(r->job) ||
                h->now_ms(h) - r->started_ms >= cfg->run_limit_ms;
    size_t room = o->live < (size_t)cfg->concurrency ? (size_t)cfg->concurrency - o->live : 0;
    size_t batch = (size_t)cfg->batch_size < (size_t)cfg->concurrency ? (size_t)cfg->batch_size
                                                                      : (size_t)cfg->concurrency;
    if (!over && !r->exhausted && !r->wait_slot && room > 0 &&
        (o->live == 0 || room * 2 >= batch)) {
        claim(o, room < batch ? room : batch);
        if (r->claiming)
            return;
    }
    if (o->live == 0 && !r->claiming)
        finish_run(o);
}

static void on_swept(void *arg, int status, const nova_pg_result *res)
{
    struct wh_out *o = arg;
    struct wh *wh = o->wh;
    struct run *r = o->run;
    if (status == -ECANCELED || r == NULL)
        return;
    r->claiming = false;
    int64_t n = 0;
    if (status == 0 && wh->pg->get_int64(res, 0, 0, &n) == 0 && n > 0) {
        r->swept = (uint64_t)n;
        const char *lv[] = {"failed", NULL};
        wh->host->metric_add(wh->m_deliveries, lv, (double)n);
        wh->host->log(wh->host, NOVA_LOG_WARN, r->job,
                      "%" PRId64 " failed deliveries had no attempts left (%" PRId64
                      " in all): failed for good",
                      n, wh_total_attempts(wh->cfg));
    } else if (status != 0) {
        wh->host->log(wh->host, NOVA_LOG_WARN, r->job, "webhook: sweep failed: %s",
                      wh->pg->error_message(res));
    }
    pump(o);
}

void wh_out_run(struct wh_out *o, nova_job *job)
{
    struct wh *wh = o->wh;
    const struct nova_host *h = wh->host;
    if (o->run != NULL || o->stopping) {
        /* one run at a time per process; the next slot comes soon */
        h->job_done(job, "{\"skipped\":true,\"reason\":\"run_in_progress\"}");
        return;
    }
    struct run *r = calloc(1, sizeof *r);
    if (r == NULL) {
        h->job_retry(job, "out of memory", -1);
        return;
    }
    r->job = job;
    r->started_ms = h->now_ms(h);
    o->run = r;
    char max[24];
    snprintf(max, sizeof max, "%" PRId64, wh_total_attempts(wh->cfg));
    const char *p[] = {max};
    r->claiming = true; /* the sweep runs first */
    if (wh->pg->query(h, SQL_SWEEP, 1, p, on_swept, o) != 0) {
        r->claiming = false;
        pump(o);
    }
}

struct wh_out *wh_out_new(struct wh *wh)
{
    struct wh_out *o = calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    o->wh = wh;
    /* a claimed row waits at most one request for a slot, then is sent */
    o->lease_ms = 2 * wh->cfg->timeout_ms + LEASE_MARGIN_MS;
    return o;
}

void wh_out_stop(struct wh_out *o)
{
    o->stopping = true;
    for (size_t b = 0; b < ENDPOINT_BUCKETS; b++) {
        for (struct endpoint *e = o->buckets[b]; e != NULL;) {
            struct endpoint *next = e->next; /* a release may free e once idle */
            ep_release_waiting(e);
            e = next;
        }
    }
    pump(o);
}

void wh_out_free(struct wh_out *o)
{
    if (o == NULL)
        return;
    while (o->all != NULL)
        d_free(o->all);
    for (size_t b = 0; b < ENDPOINT_BUCKETS; b++) {
        while (o->buckets[b] != NULL) {
            struct endpoint *e = o->buckets[b];
            o->buckets[b] = e->next;
            free(e);
        }
    }
    free(o->run);
    free(o);
}
