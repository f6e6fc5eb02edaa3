/* ri_lane - the submitter of the distribution account; see ri_lane.h. */
#include "ri_lane.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "ri_logic.h"

struct ri_lane {
    struct ri *ri;
    void (*rows_changed)(void *arg); /* the plugin's, from nova__ri_lane_start() */
    void *rows_changed_arg;
    char source[NOVA_STRKEY_MAX]; /* the transactions' source account */
    const char *secret;           /* its seed (borrowed from the config) */
    bool channel;                 /* a channel account paying for the distribution account */
    nova_timer *timer;
    nova_timer *lease_timer; /* renews the lease while a long chain runs */
    bool lease_busy;
    bool busy;    /* a chain of steps is running */
    bool closing; /* shutdown: do nothing more */
    bool owned;   /* lease held as of the last renewal */
    int64_t lease_renewed_ms;
    bool seq_known;
    int64_t next_seq;
    int64_t net_ahead_s;   /* how far the network clock ran ahead of ours */
    int64_t seq_floor;     /* our own envelopes consumed every sequence below this */
    int reject_streak;     /* envelopes released in a row: back off */
    bool warned_no_header; /* Horizon answers without Latest-Ledger (logged once) */

    /* the open envelope, as last seen */
    struct {
        bool loaded;
        bool fresh; /* built by this chain: submit without a lookup first */
        int64_t id;
        char hash[65];
        char *envelope;
        int64_t max_time; /* as signed and committed; never recomputed */
        int64_t seq;
        int submit_attempts;
        bool rejected;
        char tx_code[64];
        enum ri_lookup lookup;
        uint32_t lookup_ledger; /* Latest-Ledger of the last "not found" */
        int64_t ledger;
        char *result_xdr;
        int64_t latest_close;   /* close time of the latest ledger read since the lookup */
        uint32_t expiry_ledger; /* a ledger that closed after max_time, 0 none known */
        enum ri_seq seq_state;  /* the source account's sequence against seq */
        uint32_t seq_ledger;    /* Latest-Ledger of that account answer */
        bool unresolvable;      /* counted in nova_reward_unresolvable_envelopes */
        int64_t unresolvable_logged_ms;
        int unknown_streak;
    } cur;

    /* batch building */
    nova_pg_lease *lease;
    int64_t build_id;
    size_t build_n;
    int64_t build_pids[NOVA_STELLAR_MAX_OPS];
    int64_t build_issuance[NOVA_STELLAR_MAX_OPS];
    char build_dest[NOVA_STELLAR_MAX_OPS][NOVA_STRKEY_MAX];
    int64_t build_amount[NOVA_STELLAR_MAX_OPS];
    int64_t build_max_time; /* the max time signed into the envelope being built */
    struct nova_stellar_signed_tx signed_tx;
};

#define LOG(lane, lvl, ...) (lane)->ri->host->log((lane)->ri->host, (lvl), NULL, __VA_ARGS__)

static void step(struct ri_lane *lane);
static void act(struct ri_lane *lane);

static void cur_clear(struct ri_lane *lane)
{
    if (lane->cur.unresolvable)
        lane->ri->host->metric_add(lane->ri->m_unresolvable, NULL, -1);
    free(lane->cur.envelope);
    free(lane->cur.result_xdr);
    memset(&lane->cur, 0, sizeof lane->cur);
}

static void on_timer(void *arg)
{
    struct ri_lane *lane = arg;
    lane->timer = NULL;
    if (!lane->closing && !lane->busy)
        step(lane);
}

/* Ends the running chain and runs the next step after delay_ms. */
static void schedule(struct ri_lane *lane, int64_t delay_ms)
{
    lane->busy = false;
    if (lane->closing)
        return;
    const struct nova_host *h = lane->ri->host;
    if (lane->timer != NULL) {
        h->timer_stop(h, lane->timer);
        lane->timer = NULL;
    }
    lane->timer = h->timer_start(h, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0, on_timer, lane);
}

static int64_t idle_delay(const struct ri_lane *lane)
{
    int64_t d = lane->ri->cfg->batch_wait_ms / 4;
    return d < 20 ? 20 : d > 250 ? 250 : d;
}

static int64_t backoff(struct ri_lane *lane)
{
    int s = lane->cur.unknown_streak++;
    int64_t d = 250LL << (s > 5 ? 5 : s);
    return d > 5000 ? 5000 : d;
}

/* The pause after a call that told nothing: the backoff, or longer when
 * Horizon asked for it (429: -EAGAIN with retry_after_ms). */
static int64_t retry_delay(struct ri_lane *lane, const struct nova_stellar_status *st)
{
    int64_t d = backoff(lane);
    if (st->error == -EAGAIN && st->retry_after_ms > d)
        d = st->retry_after_ms;
    return d;
}

/* A statement failed: log it and come back later; the database is the
 * truth, so the next step simply starts over from it. */
static void db_trouble(struct ri_lane *lane, const char *what, int status,
                       const nova_pg_result *res)
{
    if (status == -ECANCELED || lane->closing) {
        lane->busy = false;
        return;
    }
    LOG(lane, NOVA_LOG_WARN, "lane: %s failed: %s", what,
        res != NULL ? lane->ri->pg->error_message(res) : "");
    schedule(lane, 1000);
}

static int query(struct ri_lane *lane, const char *sql, int n, const char *const *params,
                 nova_pg_cb cb)
{
    return lane->ri->pg->query(lane->ri->host, sql, n, params, cb, lane);
}

static bool get_i64(struct ri_lane *lane, const nova_pg_result *res, int row, int col, int64_t *out)
{
    return lane->ri->pg->get_int64(res, row, col, out) == 0;
}

/* ---- lease ----------------------------------------------------------------- */

static const char SQL_LEASE[] =
    "INSERT INTO nova_worker_lanes (source_account, owner, lease_until) "
    "VALUES ($1, $2, now() + $3::double precision * interval '1 millisecond') "
    "ON CONFLICT (source_account) DO UPDATE SET owner = EXCLUDED.owner, "
    "lease_until = EXCLUDED.lease_until, updated_at = now() "
    "WHERE nova_worker_lanes.owner = EXCLUDED.owner OR nova_worker_lanes.lease_until IS NULL "
    "OR nova_worker_lanes.lease_until < now() "
    "RETURNING next_seq";

static void load_open(struct ri_lane *lane);

static void on_lease(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    if (status != 0)
        return db_trouble(lane, "lease", status, res);
    const struct nova_host *h = lane->ri->host;
    bool was = lane->owned;
    lane->owned = lane->ri->pg->ntuples(res) == 1;
    if (!lane->owned) {
        if (was)
            LOG(lane, NOVA_LOG_WARN, "lane %s: lease lost to another worker", lane->source);
        cur_clear(lane);
        lane->seq_known = false;
        return schedule(lane, lane->ri->cfg->lease_ms / 3);
    }
    lane->lease_renewed_ms = h->now_ms(h);
    if (!was) {
        LOG(lane, NOVA_LOG_INFO, "lane %s: lease acquired by %s", lane->source, lane->ri->owner);
        cur_clear(lane); /* rebuild the view from the database */
        lane->seq_known = false;
    }
    int64_t seq;
    if (!lane->seq_known && get_i64(lane, res, 0, 0, &seq)) {
        lane->next_seq = seq;
        lane->seq_known = true;
    }
    load_open(lane);
}

/* The repeating renewal: a submission may take longer than the lease
 * (Horizon's 30 s), and the lease must not lapse under it. */
static void on_lease_tick_done(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    lane->lease_busy = false;
    if (status != 0 || lane->closing)
        return;
    if (lane->ri->pg->ntuples(res) == 1) {
        lane->lease_renewed_ms = lane->ri->host->now_ms(lane->ri->host);
    } else if (lane->owned) {
        LOG(lane, NOVA_LOG_WARN, "lane %s: lease lost to another worker", lane->source);
        lane->owned = false;
    }
}

static void on_lease_tick(void *arg)
{
    struct ri_lane *lane = arg;
    struct ri *ri = lane->ri;
    if (lane->closing || lane->lease_busy || !lane->owned)
        return;
    char ms[32];
    snprintf(ms, sizeof ms, "%" PRId64, ri->cfg->lease_ms);
    const char *p[] = {lane->source, ri->owner, ms};
    if (ri->pg->query(ri->host, SQL_LEASE, 3, p, on_lease_tick_done, lane) == 0)
        lane->lease_busy = true;
}

static void step(struct ri_lane *lane)
{
    struct ri *ri = lane->ri;
    const struct nova_host *h = ri->host;
    lane->busy = true;
    if (lane->owned && h->now_ms(h) - lane->lease_renewed_ms < ri->cfg->lease_ms / 3)
        return load_open(lane);
    char ms[32];
    snprintf(ms, sizeof ms, "%" PRId64, ri->cfg->lease_ms);
    const char *p[] = {lane->source, ri->owner, ms};
    if (query(lane, SQL_LEASE, 3, p, on_lease) != 0)
        schedule(lane, 1000);
}

/* ---- the open envelope --------------------------------------------------------- */

static const char SQL_OPEN[] =
    "SELECT id, tx_hash, envelope_xdr, extract(epoch from max_time)::bigint, sequence, "
    "submit_attempts FROM nova_worker_stellar_txs "
    "WHERE source_account = $1 AND status IN ('prepared', 'submitted') ORDER BY id LIMIT 1";

static void load_seq(struct ri_lane *lane);
static void check_pending(struct ri_lane *lane);

static void on_open(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    if (status != 0)
        return db_trouble(lane, "open envelopes", status, res);
    const struct nova_pg_api *pg = lane->ri->pg;
    if (pg->ntuples(res) == 0) {
        cur_clear(lane);
        lane->ri->host->metric_set(lane->ri->m_open, NULL, 0);
        if (!lane->seq_known)
            return load_seq(lane);
        return check_pending(lane);
    }
    lane->ri->host->metric_set(lane->ri->m_open, NULL, 1);
    int64_t id = 0;
    (void)get_i64(lane, res, 0, 0, &id);
    if (!lane->cur.loaded || lane->cur.id != id) {
        /* Not the envelope we were handling (a restart, a takeover, or the
         * one we built): start from what the database knows. */
        bool fresh = lane->cur.fresh && lane->cur.id == id;
        cur_clear(lane);
        lane->cur.loaded = true;
        lane->cur.fresh = fresh;
        lane->cur.id = id;
        snprintf(lane->cur.hash, sizeof lane->cur.hash, "%s", pg->get_text(res, 0, 1));
        lane->cur.envelope = strdup(pg->get_text(res, 0, 2));
        (void)get_i64(lane, res, 0, 3, &lane->cur.max_time);
        (void)get_i64(lane, res, 0, 4, &lane->cur.seq);
        int64_t a = 0;
        (void)get_i64(lane, res, 0, 5, &a);
        lane->cur.submit_attempts = (int)a;
        lane->cur.latest_close = -1;
        if (lane->cur.envelope == NULL)
            return schedule(lane, 1000);
    }
    act(lane);
}

static void load_open(struct ri_lane *lane)
{
    const char *p[] = {lane->source};
    if (query(lane, SQL_OPEN, 1, p, on_open) != 0)
        schedule(lane, 1000);
}

/* ---- sequence -------------------------------------------------------------------- */

static const char SQL_SET_SEQ[] = "UPDATE nova_worker_lanes SET next_seq = $2, updated_at = now() "
                                  "WHERE source_account = $1 AND owner = $3 RETURNING next_seq";

static void on_seq_saved(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    if (status != 0)
        return db_trouble(lane, "saving the sequence", status, res);
    if (lane->ri->pg->ntuples(res) != 1) {
        lane->owned = false;
        return schedule(lane, 0);
    }
    lane->seq_known = true;
    check_pending(lane);
}

static void on_source_account(void *arg, const struct nova_stellar_status *st,
                              const struct nova_stellar_account *account)
{
    struct ri_lane *lane = arg;
    if (lane->closing || st->error == -ECANCELED) {
        lane->busy = false;
        return;
    }
    if (st->error != 0 || account == NULL) {
        LOG(lane, NOVA_LOG_WARN, "lane %s: cannot load the account: %s", lane->source, st->message);
        int64_t d = st->error == -EAGAIN && st->retry_after_ms > 2000 ? st->retry_after_ms : 2000;
        return schedule(lane, d);
    }
    /* A lagging Horizon replica may report an older sequence; what our own
     * confirmed envelopes consumed is a floor. */
    lane->next_seq = account->sequence + 1;
    if (lane->next_seq < lane->seq_floor)
        lane->next_seq = lane->seq_floor;
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, lane->next_seq);
    const char *p[] = {lane->source, buf, lane->ri->owner};
    if (query(lane, SQL_SET_SEQ, 3, p, on_seq_saved) != 0)
        schedule(lane, 1000);
}

static void load_seq(struct ri_lane *lane)
{
    const struct nova_host *h = lane->ri->host;
    if (lane->ri->st->load_account(h, lane->source, on_source_account, lane) != 0)
        schedule(lane, 1000);
}

/* ---- batching ------------------------------------------------------------------------ */

static const char SQL_PENDING[] =
    "SELECT count(*)::bigint, COALESCE((extract(epoch from now() - min(created_at)) * "
    "1000)::bigint, 0) FROM (SELECT created_at FROM nova_worker_payments WHERE status = "
    "'pending' AND asset_code = $1 AND asset_issuer = $2 ORDER BY id LIMIT $3) s";

static void build(struct ri_lane *lane);

static void on_pending(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    if (status != 0)
        return db_trouble(lane, "pending payments", status, res);
    int64_t n = 0, age = 0;
    (void)get_i64(lane, res, 0, 0, &n);
    (void)get_i64(lane, res, 0, 1, &age);
    const struct ri_config *cfg = lane->ri->cfg;
    if (nova__ri_batch_ready((size_t)n, (size_t)cfg->batch_max, age, cfg->batch_wait_ms))
        return build(lane);
    int64_t d = idle_delay(lane);
    if (n > 0 && cfg->batch_wait_ms - age < d)
        d = cfg->batch_wait_ms - age;
    schedule(lane, d);
}

static void check_pending(struct ri_lane *lane)
{
    char lim[32];
    snprintf(lim, sizeof lim, "%" PRId64, lane->ri->cfg->batch_max);
    const char *p[] = {lane->ri->asset_code, lane->ri->asset_issuer, lim};
    if (query(lane, SQL_PENDING, 3, p, on_pending) != 0)
        schedule(lane, 1000);
}

static const char SQL_LOCK_LANE[] =
    "SELECT next_seq, nextval(pg_get_serial_sequence('nova_worker_stellar_txs', 'id')) "
    "FROM nova_worker_lanes WHERE source_account = $1 AND owner = $2 AND lease_until > now() "
    "FOR UPDATE";
static const char SQL_CLAIM[] =
    "SELECT id, destination, (amount * 10000000)::bigint, issuance_id FROM nova_worker_payments "
    "WHERE status = 'pending' AND asset_code = $1 AND asset_issuer = $2 ORDER BY id LIMIT $3 "
    "FOR UPDATE SKIP LOCKED";
static const char SQL_INSERT_TX[] =
    "WITH t AS (INSERT INTO nova_worker_stellar_txs (id, source_account, sequence, tx_hash, "
    "envelope_xdr, max_time, fee_stroops, memo, status) VALUES ($1, $2, $3, $4, $5, "
    "to_timestamp($6), $7, $8, 'prepared') RETURNING id) "
    "UPDATE nova_worker_payments p SET status = 'prepared', stellar_tx_id = (SELECT id FROM t), "
    "op_index = a.ord - 1, error_message = NULL, updated_at = now() "
    "FROM unnest($9::bigint[]) WITH ORDINALITY AS a(pid, ord) WHERE p.id = a.pid "
    "AND p.status = 'pending'";

static void build_abort(struct ri_lane *lane, const char *what, int status,
                        const nova_pg_result *res);

static void on_rolled_back(void *arg, int status, const nova_pg_result *res)
{
    (void)res;
    struct ri_lane *lane = arg;
    if (lane->closing || status == -ECANCELED) {
        lane->busy = false;
        return;
    }
    schedule(lane, 1000);
}

static void build_abort(struct ri_lane *lane, const char *what, int status,
                        const nova_pg_result *res)
{
    struct ri *ri = lane->ri;
    ri->st->signed_tx_free(&lane->signed_tx);
    if (status == -ECANCELED || lane->closing) {
        lane->busy = false;
        return; /* the pool rolls leases back on shutdown */
    }
    if (what != NULL)
        LOG(lane, NOVA_LOG_WARN, "lane: building a batch: %s%s%s", what, res ? ": " : "",
            res ? ri->pg->error_message(res) : "");
    nova_pg_lease *l = lane->lease;
    lane->lease = NULL;
    if (l == NULL || ri->pg->rollback(ri->host, l, on_rolled_back, lane) != 0)
        schedule(lane, 1000);
}

static void on_built(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    struct ri *ri = lane->ri;
    if (status != 0) {
        /* Unknown commit outcome included: never submit what may not be
         * recorded; the next step reads the truth back. */
        ri->st->signed_tx_free(&lane->signed_tx);
        return db_trouble(lane, "committing a batch", status, res);
    }
    cur_clear(lane);
    lane->cur.loaded = true;
    lane->cur.fresh = true;
    lane->cur.id = lane->build_id;
    snprintf(lane->cur.hash, sizeof lane->cur.hash, "%s", lane->signed_tx.hash_hex);
    lane->cur.envelope = lane->signed_tx.envelope_b64;
    lane->signed_tx.envelope_b64 = NULL;
    ri->st->signed_tx_free(&lane->signed_tx);
    lane->cur.seq = lane->next_seq;
    lane->cur.max_time = lane->build_max_time;
    lane->cur.latest_close = -1;
    ri->host->metric_observe(ri->m_batch, NULL, (double)lane->build_n);
    ri->host->metric_set(ri->m_open, NULL, 1);
    LOG(lane, NOVA_LOG_INFO, "lane: envelope %" PRId64 " seq %" PRId64 " with %zu payment(s): %s",
        lane->cur.id, lane->cur.seq, lane->build_n, lane->cur.hash);
    act(lane);
}

static void on_tx_inserted(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    struct ri *ri = lane->ri;
    if (status != 0)
        return build_abort(lane, "recording the envelope", status, res);
    if (ri->pg->affected_rows(res) != (int64_t)lane->build_n)
        return build_abort(lane, "payments changed under the lock", 0, NULL);
    nova_pg_lease *l = lane->lease;
    lane->lease = NULL;
    if (ri->pg->commit(ri->host, l, on_built, lane) != 0) {
        ri->st->signed_tx_free(&lane->signed_tx);
        schedule(lane, 1000);
    }
}

static void on_claimed(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    struct ri *ri = lane->ri;
    const struct nova_pg_api *pg = ri->pg;
    if (status != 0)
        return build_abort(lane, "claiming payments", status, res);
    int n = pg->ntuples(res);
    if (n <= 0)
        return build_abort(lane, NULL, 0, NULL);
    struct nova_stellar_payment pays[NOVA_STELLAR_MAX_OPS];
    lane->build_n = (size_t)n;
    for (int i = 0; i < n; i++) {
        (void)get_i64(lane, res, i, 0, &lane->build_pids[i]);
        snprintf(lane->build_dest[i], sizeof lane->build_dest[i], "%s", pg->get_text(res, i, 1));
        (void)get_i64(lane, res, i, 2, &lane->build_amount[i]);
        lane->build_issuance[i] = 0;
        (void)get_i64(lane, res, i, 3, &lane->build_issuance[i]);
        pays[i] = (struct nova_stellar_payment){.destination = lane->build_dest[i],
                                                .amount = lane->build_amount[i],
                                                .source = lane->channel ? ri->source : NULL};
    }
    char memo[NOVA_STELLAR_MEMO_TEXT_MAX + 1];
    if (n == 1 && lane->build_issuance[0] > 0)
        nova__ri_memo_issuance(lane->build_issuance[0], memo);
    else
        nova__ri_memo_batch(lane->build_id, memo);
    char asset[96];
    snprintf(asset, sizeof asset, "%s:%s", ri->asset_code, ri->asset_issuer);
    /* The network's clock decides validity: when its ledgers closed later
     * than our clock says (seen in GET /), count from theirs. */
    int64_t now_s = ri->host->now_ms(ri->host) / 1000 + lane->net_ahead_s;
    int64_t max_time = now_s + ri->cfg->tx_timeout_ms / 1000;
    lane->build_max_time = max_time;
    /* A channel account is the transaction's source (fee, sequence); the
     * payments still leave the distribution account, which signs too. */
    const char *signers[] = {lane->secret, ri->cfg->distribution_secret};
    struct nova_stellar_payment_tx tx = {
        .struct_size = sizeof tx,
        .network_passphrase = ri->passphrase,
        .source_account = lane->source,
        .fee = (uint32_t)(ri->cfg->base_fee * n),
        .seq_num = lane->next_seq,
        .max_time = (uint64_t)max_time,
        .memo_type = NOVA_MEMO_TEXT,
        .memo_text = memo,
        .asset = asset,
        .payments = pays,
        .payment_count = (size_t)n,
        .signer_secrets = lane->channel ? signers : signers + 1,
        .signer_count = lane->channel ? 2 : 1,
    };
    char err[256] = "";
    int rc_sign;
    if (ri->host_signs) {
        /* The host holds the distribution secret ([stellar]); a channel
         * lane adds its own signature. */
        tx.signer_secrets = lane->channel ? &lane->secret : NULL;
        tx.signer_count = lane->channel ? 1 : 0;
        rc_sign =
            ri->st->build_payment_distribution(ri->host, &tx, &lane->signed_tx, err, sizeof err);
    } else {
        rc_sign = ri->st->build_payment(&tx, &lane->signed_tx, err, sizeof err);
    }
    if (rc_sign != 0) {
        LOG(lane, NOVA_LOG_ERROR, "lane: cannot sign a batch: %s", err);
        return build_abort(lane, "signing", 0, NULL);
    }
    /* The envelope, its hash, sequence and max time are committed before
     * anything is sent (design-brief principle 4). */
    char id[32], seq[32], mt[32], fee[32];
    snprintf(id, sizeof id, "%" PRId64, lane->build_id);
    snprintf(seq, sizeof seq, "%" PRId64, lane->next_seq);
    snprintf(mt, sizeof mt, "%" PRId64, max_time);
    snprintf(fee, sizeof fee, "%" PRId64, ri->cfg->base_fee * n);
    size_t cap = (size_t)n * 22 + 3;
    char *arr = malloc(cap);
    if (arr == NULL)
        return build_abort(lane, "out of memory", 0, NULL);
    size_t off = 0;
    arr[off++] = '{';
    for (int i = 0; i < n; i++)
        off +=
            (size_t)snprintf(arr + off, cap - off, "%s%" PRId64, i ? "," : "", lane->build_pids[i]);
    snprintf(arr + off, cap - off, "}");
    const char *p[] = {
        id,  lane->source, seq, lane->signed_tx.hash_hex, lane->signed_tx.envelope_b64, mt,
        fee, memo,         arr};
    int rc = pg->lease_query(ri->host, lane->lease, SQL_INSERT_TX, 9, p, on_tx_inserted, lane);
    free(arr);
    if (rc != 0)
        build_abort(lane, "recording the envelope", rc, NULL);
}

static void on_lane_locked(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    struct ri *ri = lane->ri;
    if (status != 0)
        return build_abort(lane, "locking the lane", status, res);
    int64_t seq = 0;
    if (ri->pg->ntuples(res) != 1 || !get_i64(lane, res, 0, 0, &seq) ||
        !get_i64(lane, res, 0, 1, &lane->build_id)) {
        /* lease lapsed, or the sequence was reset: start over */
        lane->owned = false;
        lane->seq_known = false;
        return build_abort(lane, NULL, 0, NULL);
    }
    lane->next_seq = seq;
    char lim[32];
    snprintf(lim, sizeof lim, "%" PRId64, ri->cfg->batch_max);
    const char *p[] = {ri->asset_code, ri->asset_issuer, lim};
    if (ri->pg->lease_query(ri->host, lane->lease, SQL_CLAIM, 3, p, on_claimed, lane) != 0)
        build_abort(lane, "claiming payments", -EIO, NULL);
}

static void on_begun(void *arg, int status, nova_pg_lease *l, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    struct ri *ri = lane->ri;
    if (status != 0)
        return db_trouble(lane, "begin", status, res);
    lane->lease = l;
    const char *p[] = {lane->source, ri->owner};
    if (ri->pg->lease_query(ri->host, l, SQL_LOCK_LANE, 2, p, on_lane_locked, lane) != 0)
        build_abort(lane, "locking the lane", -EIO, NULL);
}

static void build(struct ri_lane *lane)
{
    if (lane->ri->pg->begin(lane->ri->host, on_begun, lane) != 0)
        schedule(lane, 1000);
}

/* ---- resolution ---------------------------------------------------------------------- */

/* Every statement that resolves an envelope first takes the lane's lease
 * row under FOR UPDATE and writes only while this worker holds the lease
 * ($owner): a worker that stalled past its lease changes nothing. */
#define SQL_FENCE(src, owner)                                                                      \
    "lk AS (SELECT 1 FROM nova_worker_lanes WHERE source_account = " src " AND owner = " owner     \
    " AND lease_until > now() FOR UPDATE), "

static const char SQL_CONFIRM[] = "WITH " SQL_FENCE(
    "$3",
    "$4") "t AS (UPDATE nova_worker_stellar_txs SET status = 'confirmed', "
          "ledger = $2, result_code = 'tx_success', resolved_at = now(), updated_at = now() "
          "WHERE id = $1 AND status IN ('prepared', 'submitted') AND EXISTS (SELECT 1 FROM lk) "
          "RETURNING id, tx_hash, sequence), "
          "p AS (UPDATE nova_worker_payments SET status = 'confirmed', error_message = NULL, "
          "confirmed_at = now(), updated_at = now() WHERE stellar_tx_id IN (SELECT id FROM t) "
          "RETURNING id, issuance_id), "
          "i AS (UPDATE reward_issuances SET status = 'confirmed', tx_hash = (SELECT tx_hash FROM "
          "t), "
          "error_message = NULL, updated_at = now() WHERE id IN (SELECT issuance_id FROM p) "
          "RETURNING "
          "id), "
          "l AS (UPDATE nova_worker_lanes SET next_seq = (SELECT sequence FROM t) + 1, updated_at "
          "= "
          "now() WHERE source_account = $3 AND EXISTS (SELECT 1 FROM t) RETURNING 1), "
          /* reward.distributed webhooks (migration 105), queued in the same
           * transaction as the confirmation: a payment is announced exactly
           * when, and only if, it is recorded as paid. The final SELECT
           * names them, so PostgreSQL runs them. */
          "wi AS (SELECT nova_worker_webhook_reward_distributed(i.id, (SELECT tx_hash FROM t)) "
          "AS n FROM i), "
          "wp AS (SELECT nova_worker_webhook_distribution_paid(p.id, (SELECT tx_hash FROM t)) "
          "AS n FROM p WHERE p.issuance_id IS NULL) "
          "SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM i), (SELECT count(*) FROM l), "
          "(SELECT COALESCE(sum(n), 0) FROM wi) + (SELECT COALESCE(sum(n), 0) FROM wp)";

static const char SQL_SPLIT[] = "WITH " SQL_FENCE(
    "$5",
    "$6") "t AS (UPDATE nova_worker_stellar_txs SET status = 'failed', "
          "ledger = $2, result_code = $3, resolved_at = now(), updated_at = now() "
          "WHERE id = $1 AND status IN ('prepared', 'submitted') AND EXISTS (SELECT 1 FROM lk) "
          "RETURNING id, sequence), "
          "c AS (SELECT q.id, COALESCE(($4::text[])[q.op_index + 1], 'op_unknown') AS code "
          "FROM nova_worker_payments q WHERE q.stellar_tx_id IN (SELECT id FROM t)), "
          "p AS (UPDATE nova_worker_payments p SET "
          "status = CASE WHEN c.code = 'op_success' THEN 'pending' ELSE 'failed' END, "
          "error_message = CASE WHEN c.code = 'op_success' THEN NULL ELSE c.code END, "
          "stellar_tx_id = CASE WHEN c.code = 'op_success' THEN NULL ELSE p.stellar_tx_id END, "
          "op_index = CASE WHEN c.code = 'op_success' THEN NULL ELSE p.op_index END, "
          "updated_at = now() FROM c WHERE p.id = c.id RETURNING p.status), "
          "l AS (UPDATE nova_worker_lanes SET next_seq = (SELECT sequence FROM t) + 1, updated_at "
          "= "
          "now() WHERE source_account = $5 AND EXISTS (SELECT 1 FROM t) RETURNING 1) "
          "SELECT (SELECT count(*) FROM p WHERE status = 'pending'), "
          "(SELECT count(*) FROM p WHERE status = 'failed'), (SELECT count(*) FROM l)";

/* $4: the submit_attempts the decision was made on (-1: any); $5/$6 the
 * payments' new status and error. The sequence is reloaded afterwards. */
static const char SQL_RELEASE[] = "WITH " SQL_FENCE(
    "$7::text",
    "$8::text") "t AS (UPDATE nova_worker_stellar_txs SET status = "
                "$2::text, result_code = $3::text, resolved_at = now(), updated_at = now() WHERE "
                "id = "
                "$1::bigint AND status IN ('prepared', 'submitted') AND ($4::int < 0 OR "
                "submit_attempts = "
                "$4::int) AND EXISTS (SELECT 1 FROM lk) RETURNING id), "
                "p AS (UPDATE nova_worker_payments SET status = $5::text, error_message = "
                "$6::text, "
                "stellar_tx_id = CASE WHEN $5::text = 'pending' THEN NULL ELSE stellar_tx_id END, "
                "op_index = CASE WHEN $5::text = 'pending' THEN NULL ELSE op_index END, updated_at "
                "= now() "
                "WHERE stellar_tx_id IN (SELECT id FROM t) RETURNING id), "
                "l AS (UPDATE nova_worker_lanes SET next_seq = NULL, updated_at = now() "
                "WHERE source_account = $7::text AND EXISTS (SELECT 1 FROM t) RETURNING 1) "
                "SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM p)";

static void on_resolved(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    if (status != 0)
        return db_trouble(lane, "recording an outcome", status, res);
    cur_clear(lane);
    lane->ri->host->metric_set(lane->ri->m_open, NULL, 0);
    lane->rows_changed(lane->rows_changed_arg);
    /* Rejections in a row (fee too low, bad key, clock) would otherwise
     * rebuild and resend as fast as Horizon answers. */
    int s = lane->reject_streak;
    schedule(lane, s == 0 ? 0 : (100LL << (s > 6 ? 6 : s)));
}

static void count_submit(struct ri_lane *lane, const char *result)
{
    const char *lv[] = {result, NULL};
    lane->ri->host->metric_add(lane->ri->m_submits, lv, 1);
}

static void confirm(struct ri_lane *lane)
{
    char id[32], ledger[32];
    snprintf(id, sizeof id, "%" PRId64, lane->cur.id);
    snprintf(ledger, sizeof ledger, "%" PRId64, lane->cur.ledger);
    lane->seq_known = true;
    lane->next_seq = lane->cur.seq + 1;
    if (lane->seq_floor < lane->next_seq)
        lane->seq_floor = lane->next_seq;
    lane->reject_streak = 0;
    count_submit(lane, "success");
    LOG(lane, NOVA_LOG_INFO, "lane: envelope %" PRId64 " confirmed in ledger %" PRId64 ": %s",
        lane->cur.id, lane->cur.ledger, lane->cur.hash);
    const char *p[] = {id, ledger, lane->source, lane->ri->owner};
    if (query(lane, SQL_CONFIRM, 4, p, on_resolved) != 0)
        schedule(lane, 1000);
}

static void split(struct ri_lane *lane)
{
    struct ri *ri = lane->ri;
    struct nova_stellar_tx_result *r = calloc(1, sizeof *r);
    if (r == NULL)
        return schedule(lane, 1000);
    char err[160] = "";
    const char *txname = "tx_failed";
    char codes[NOVA_STELLAR_MAX_OPS * 32 + 3] = "{}";
    if (lane->cur.result_xdr != NULL &&
        ri->st->decode_result(lane->cur.result_xdr, r, err, sizeof err) == 0) {
        txname = r->has_inner ? r->inner_name : r->name;
        size_t off = 0;
        codes[off++] = '{';
        for (size_t i = 0; i < r->op_count; i++)
            off += (size_t)snprintf(codes + off, sizeof codes - off, "%s%s", i ? "," : "",
                                    r->ops[i].name ? r->ops[i].name : "op_unknown");
        snprintf(codes + off, sizeof codes - off, "}");
    } else {
        LOG(lane, NOVA_LOG_WARN, "lane: envelope %" PRId64 " failed, result undecodable: %s",
            lane->cur.id, err);
    }
    char id[32], ledger[32], txcode[64];
    snprintf(id, sizeof id, "%" PRId64, lane->cur.id);
    snprintf(ledger, sizeof ledger, "%" PRId64, lane->cur.ledger);
    snprintf(txcode, sizeof txcode, "%s", txname ? txname : "tx_failed");
    free(r);
    lane->next_seq = lane->cur.seq + 1;
    if (lane->seq_floor < lane->next_seq)
        lane->seq_floor = lane->next_seq;
    count_submit(lane, "failed_included");
    LOG(lane, NOVA_LOG_WARN, "lane: envelope %" PRId64 " included as failed (%s %s): splitting",
        lane->cur.id, txcode, codes);
    const char *p[] = {id, ledger, txcode, codes, lane->source, lane->ri->owner};
    if (query(lane, SQL_SPLIT, 6, p, on_resolved) != 0)
        schedule(lane, 1000);
}

static void release(struct ri_lane *lane, const char *tx_status, const char *code,
                    int attempts_guard, const char *pay_status, const char *pay_error)
{
    char id[32], guard[16];
    snprintf(id, sizeof id, "%" PRId64, lane->cur.id);
    snprintf(guard, sizeof guard, "%d", attempts_guard);
    lane->seq_known = false;
    if (strcmp(tx_status, "expired") != 0)
        lane->reject_streak++;
    count_submit(lane, strcmp(tx_status, "expired") == 0 ? "expired" : "rejected");
    LOG(lane, NOVA_LOG_WARN, "lane: envelope %" PRId64 " %s (%s): payments %s", lane->cur.id,
        tx_status, code, pay_status);
    const char *p[] = {id,         tx_status, code,         guard,
                       pay_status, pay_error, lane->source, lane->ri->owner};
    if (query(lane, SQL_RELEASE, 8, p, on_resolved) != 0)
        schedule(lane, 1000);
}

/* ---- submit and look up ------------------------------------------------------------ */

static const char SQL_SUBMITTING[] =
    "UPDATE nova_worker_stellar_txs SET status = 'submitted', submit_attempts = "
    "submit_attempts + 1, submitted_at = COALESCE(submitted_at, now()), updated_at = now() "
    "WHERE id = $1 AND status IN ('prepared', 'submitted') AND EXISTS (SELECT 1 FROM "
    "nova_worker_lanes WHERE source_account = $2 AND owner = $3 AND lease_until > now()) "
    "RETURNING submit_attempts";

static void perform(struct ri_lane *lane, enum ri_action a);

static struct ri_envelope_view view_of(const struct ri_lane *lane)
{
    return (struct ri_envelope_view){
        .submit_attempts = lane->cur.submit_attempts,
        .rejected = lane->cur.rejected,
        .lookup = lane->cur.lookup,
        .lookup_ledger = lane->cur.lookup_ledger,
        .max_time = lane->cur.max_time,
        .latest_ledger_close = lane->cur.latest_close,
        .expiry_ledger = lane->cur.expiry_ledger,
        .seq = lane->cur.seq_state,
        .seq_ledger = lane->cur.seq_ledger,
    };
}

/* After an answer: act on the decision at once, unless it asks the same
 * question again (a lagging replica, Horizon trouble): then wait first. */
static void after_answer(struct ri_lane *lane, enum ri_action asked,
                         const struct nova_stellar_status *st)
{
    struct ri_envelope_view v = view_of(lane);
    enum ri_action a = nova__ri_decide(&v);
    if (a == asked)
        return schedule(lane, retry_delay(lane, st));
    perform(lane, a);
}

/* Is this Horizon answer about our envelope, byte for byte? A lookup or
 * submit result for another hash, or whose envelope is not the one we
 * signed, confirms nothing. */
static bool answer_is_ours(struct ri_lane *lane, const struct nova_stellar_tx_info *tx,
                           const char *what)
{
    if (nova__ri_tx_matches(tx, lane->cur.hash, lane->cur.envelope))
        return true;
    bool same_hash = tx != NULL && tx->hash != NULL && strcasecmp(tx->hash, lane->cur.hash) == 0;
    LOG(lane, NOVA_LOG_ERROR,
        "lane: envelope %" PRId64 " (%s): the %s answer %s%s%s; it confirms nothing", lane->cur.id,
        lane->cur.hash, what,
        same_hash ? "carries another envelope than the one signed"
                  : "is about another transaction ",
        same_hash ? "" : (tx != NULL && tx->hash != NULL && tx->hash[0] ? tx->hash : "(no hash)"),
        "");
    return false;
}

static void on_submitted(void *arg, const struct nova_stellar_status *st,
                         const struct nova_stellar_tx_info *tx)
{
    struct ri_lane *lane = arg;
    /* Cancelled is also "outcome unknown": the database still says
     * submitted, and whoever runs the lane next looks the hash up. */
    if (lane->closing || st->error == -ECANCELED) {
        lane->busy = false;
        return;
    }
    lane->cur.fresh = false;
    lane->cur.rejected = false;
    lane->cur.lookup = RI_LOOKUP_NONE;
    lane->cur.latest_close = -1;
    enum ri_submit_class cls = nova__ri_classify_submit(st->error, st->http_status);
    if (cls == RI_SUBMIT_SUCCESS && (tx == NULL || tx->ledger == 0))
        cls = RI_SUBMIT_UNKNOWN; /* cannot confirm without a ledger: the lookup will tell */
    if (cls == RI_SUBMIT_SUCCESS && !answer_is_ours(lane, tx, "submit"))
        cls = RI_SUBMIT_UNKNOWN;
    switch (cls) {
    case RI_SUBMIT_SUCCESS:
        lane->cur.unknown_streak = 0;
        lane->cur.lookup = RI_LOOKUP_SUCCESS;
        lane->cur.ledger = tx->ledger;
        return confirm(lane);
    case RI_SUBMIT_FAILED:
        lane->cur.rejected = nova__ri_submit_rejected(st->error, st->http_status);
        snprintf(lane->cur.tx_code, sizeof lane->cur.tx_code, "%s",
                 tx != NULL && tx->tx_code != NULL ? tx->tx_code : "tx_failed");
        return act(lane); /* decide() asks for the lookup */
    case RI_SUBMIT_MALFORMED:
        /* An envelope Horizon cannot decode can never apply; building it
         * again would give the same bytes, so its payments fail. */
        LOG(lane, NOVA_LOG_ERROR, "lane: envelope %" PRId64 " malformed: %s", lane->cur.id,
            st->message);
        return release(lane, "failed", "transaction_malformed", lane->cur.submit_attempts, "failed",
                       "transaction_malformed");
    case RI_SUBMIT_UNKNOWN:
    default:
        LOG(lane, NOVA_LOG_WARN, "lane: envelope %" PRId64 " outcome unknown (%s): will look it up",
            lane->cur.id, st->message);
        count_submit(lane, "unknown");
        return schedule(lane, retry_delay(lane, st));
    }
}

static void on_submitting(void *arg, int status, const nova_pg_result *res)
{
    struct ri_lane *lane = arg;
    if (status != 0)
        return db_trouble(lane, "counting a submission", status, res);
    int64_t n = 0;
    if (lane->ri->pg->ntuples(res) != 1 || !get_i64(lane, res, 0, 0, &n)) {
        /* resolved by someone else, or our lease lapsed */
        cur_clear(lane);
        lane->owned = false;
        return schedule(lane, 0);
    }
    lane->cur.submit_attempts = (int)n;
    if (lane->ri->st->submit(lane->ri->host, lane->cur.envelope, on_submitted, lane) != 0)
        schedule(lane, 1000);
}

static void submit(struct ri_lane *lane)
{
    char id[32];
    snprintf(id, sizeof id, "%" PRId64, lane->cur.id);
    const char *p[] = {id, lane->source, lane->ri->owner};
    if (query(lane, SQL_SUBMITTING, 3, p, on_submitting) != 0)
        schedule(lane, 1000);
}

static bool cancelled(struct ri_lane *lane, const struct nova_stellar_status *st)
{
    if (lane->closing || st->error == -ECANCELED) {
        lane->busy = false;
        return true;
    }
    return false;
}

/* A ledger number from Horizon's Latest-Ledger header, or 0 (logged once:
 * without it no "not found" can ever prove an expiry). */
static uint32_t answered_at(struct ri_lane *lane, const struct nova_stellar_status *st)
{
    (void)ri_fresh_answer(lane->ri, st->latest_ledger);
    if (st->latest_ledger == 0 && !lane->warned_no_header) {
        lane->warned_no_header = true;
        LOG(lane, NOVA_LOG_WARN,
            "lane %s: Horizon answered without a Latest-Ledger header: expired envelopes cannot "
            "be told apart from lagging answers and stay open (is a proxy dropping it?)",
            lane->source);
    }
    return st->latest_ledger;
}

static void on_latest(void *arg, const struct nova_stellar_status *st,
                      const struct nova_stellar_ledger *ledger)
{
    struct ri_lane *lane = arg;
    if (cancelled(lane, st))
        return;
    (void)ri_fresh_answer(lane->ri, st->latest_ledger);
    if (st->error == 0 && ledger != NULL && ledger->closed_at > 0) {
        ri_note_close(lane->ri, ledger->sequence, ledger->closed_at);
        lane->cur.latest_close = ledger->closed_at;
        int64_t ahead = ledger->closed_at - lane->ri->host->now_ms(lane->ri->host) / 1000;
        lane->net_ahead_s = ahead > 0 ? ahead : 0;
        /* A closed ledger's close time is the same fact on every replica:
         * once one closed after max_time, no later ledger can include the
         * envelope. Keep the lowest such ledger. */
        if (ledger->closed_at > lane->cur.max_time && ledger->sequence > 0 &&
            (lane->cur.expiry_ledger == 0 || ledger->sequence < lane->cur.expiry_ledger))
            lane->cur.expiry_ledger = ledger->sequence;
    } else if (st->error != 0) {
        LOG(lane, NOVA_LOG_WARN, "lane: latest ledger unknown: %s", st->message);
    }
    after_answer(lane, RI_ACT_LEDGER, st);
}

static void on_sequence(void *arg, const struct nova_stellar_status *st,
                        const struct nova_stellar_account *account)
{
    struct ri_lane *lane = arg;
    if (cancelled(lane, st))
        return;
    if (st->error == 0 && account != NULL) {
        uint32_t at = answered_at(lane, st);
        /* Keep the newest view: a lagging replica's older answer adds nothing. */
        if (at >= lane->cur.seq_ledger) {
            lane->cur.seq_state =
                account->sequence >= lane->cur.seq ? RI_SEQ_CONSUMED : RI_SEQ_UNUSED;
            lane->cur.seq_ledger = at;
        }
    } else {
        /* -ENOENT too: a replica behind the account's creation */
        LOG(lane, NOVA_LOG_WARN, "lane %s: sequence unknown: %s", lane->source, st->message);
    }
    after_answer(lane, RI_ACT_SEQUENCE, st);
}

static void unresolvable(struct ri_lane *lane)
{
    const struct nova_host *h = lane->ri->host;
    int64_t now = h->now_ms(h);
    if (!lane->cur.unresolvable) {
        lane->cur.unresolvable = true;
        h->metric_add(lane->ri->m_unresolvable, NULL, 1);
    }
    if (lane->cur.unresolvable_logged_ms == 0 || now - lane->cur.unresolvable_logged_ms >= 600000) {
        lane->cur.unresolvable_logged_ms = now;
        LOG(lane, NOVA_LOG_ERROR,
            "lane %s: envelope %" PRId64 " (%s, sequence %" PRId64 ") is not found on Horizon "
            "(as of ledger %" PRIu32 "), but the account's sequence number passed it by ledger "
            "%" PRIu32 ": either the transaction is older than Horizon's history retention, or "
            "another transaction used the account. Its payments stay unresolved until ops "
            "decide (docs/plugins/reward_issuance.md, \"Unresolvable envelopes\")",
            lane->source, lane->cur.id, lane->cur.hash, lane->cur.seq, lane->cur.lookup_ledger,
            lane->cur.seq_ledger);
    }
    /* Look again later: a replica with the history may answer. */
    lane->cur.lookup = RI_LOOKUP_NONE;
    lane->cur.seq_state = RI_SEQ_UNKNOWN;
    lane->cur.seq_ledger = 0;
    schedule(lane, 30000);
}

static void on_lookup(void *arg, const struct nova_stellar_status *st,
                      const struct nova_stellar_tx_info *tx)
{
    struct ri_lane *lane = arg;
    if (cancelled(lane, st))
        return;
    enum ri_lookup lookup = nova__ri_classify_lookup(st->error, tx != NULL && tx->successful);
    if ((lookup == RI_LOOKUP_SUCCESS || lookup == RI_LOOKUP_FAILED) &&
        !answer_is_ours(lane, tx, "lookup"))
        lookup = RI_LOOKUP_ERROR;
    lane->cur.lookup = lookup;
    lane->cur.latest_close = -1;
    lane->cur.ledger = lookup == RI_LOOKUP_ERROR || tx == NULL ? 0 : (int64_t)tx->ledger;
    free(lane->cur.result_xdr);
    lane->cur.result_xdr = lookup != RI_LOOKUP_ERROR && tx != NULL && tx->result_xdr[0] != '\0'
                               ? strdup(tx->result_xdr)
                               : NULL;
    if (lookup == RI_LOOKUP_NOT_FOUND)
        lane->cur.lookup_ledger = answered_at(lane, st);
    if (lookup == RI_LOOKUP_ERROR) {
        LOG(lane, NOVA_LOG_WARN, "lane: envelope %" PRId64 " lookup told nothing: %s", lane->cur.id,
            st->message);
        lane->cur.lookup = RI_LOOKUP_NONE;
        return schedule(lane, retry_delay(lane, st));
    }
    after_answer(lane, RI_ACT_LOOKUP, st);
}

/* Carries out a decision of nova__ri_decide() for the open envelope. */
static void perform(struct ri_lane *lane, enum ri_action a)
{
    struct ri *ri = lane->ri;
    int rc = 0;
    switch (a) {
    case RI_ACT_CONFIRM:
        return confirm(lane);
    case RI_ACT_SPLIT:
        return split(lane);
    case RI_ACT_RELEASE:
        return release(lane, "failed", lane->cur.tx_code[0] ? lane->cur.tx_code : "rejected",
                       lane->cur.submit_attempts, "pending", NULL);
    case RI_ACT_EXPIRE:
        LOG(lane, NOVA_LOG_INFO,
            "lane %s: envelope %" PRId64 " expired: ledger %" PRIu32 " closed after its max "
            "time, Horizon did not find it as of ledger %" PRIu32 " and sequence %" PRId64
            " was still unused as of ledger %" PRIu32,
            lane->source, lane->cur.id, lane->cur.expiry_ledger, lane->cur.lookup_ledger,
            lane->cur.seq, lane->cur.seq_ledger);
        return release(lane, "expired", "expired", -1, "pending", NULL);
    case RI_ACT_RESUBMIT:
        /* still valid and not found: send the same envelope again */
        return submit(lane);
    case RI_ACT_UNRESOLVABLE:
        return unresolvable(lane);
    case RI_ACT_LEDGER:
        rc = ri->st->latest_ledger(ri->host, on_latest, lane);
        break;
    case RI_ACT_SEQUENCE:
        rc = ri->st->load_account(ri->host, lane->source, on_sequence, lane);
        break;
    case RI_ACT_LOOKUP:
    default:
        rc = ri->st->tx_lookup(ri->host, lane->cur.hash, on_lookup, lane);
        break;
    }
    if (rc != 0)
        schedule(lane, 1000);
}

/* Runs the decision for the open envelope (lane->cur). */
static void act(struct ri_lane *lane)
{
    if (lane->cur.fresh)
        return submit(lane);
    struct ri_envelope_view v = view_of(lane);
    perform(lane, nova__ri_decide(&v));
}

/* ---- lifecycle ---------------------------------------------------------------------- */

int nova__ri_lane_start(struct ri *ri, const char *source, const char *secret, bool channel,
                        void (*rows_changed)(void *arg), void *arg, struct ri_lane **out)
{
    struct ri_lane *lane = calloc(1, sizeof *lane);
    if (lane == NULL)
        return -ENOMEM;
    lane->ri = ri;
    lane->rows_changed = rows_changed;
    lane->rows_changed_arg = arg;
    snprintf(lane->source, sizeof lane->source, "%s", source);
    lane->secret = secret;
    lane->channel = channel;
    lane->cur.latest_close = -1;
    uint64_t every = (uint64_t)(ri->cfg->lease_ms / 3 > 0 ? ri->cfg->lease_ms / 3 : 1);
    lane->lease_timer = ri->host->timer_start(ri->host, every, every, on_lease_tick, lane);
    *out = lane;
    schedule(lane, 0);
    return 0;
}

void nova__ri_lane_poke(struct ri_lane *lane)
{
    if (lane != NULL && !lane->busy && !lane->closing)
        schedule(lane, 0);
}

void nova__ri_lane_close(struct ri_lane *lane)
{
    if (lane == NULL)
        return;
    /* Called from shutdown(): the host already stopped the timer. */
    lane->closing = true;
    lane->timer = NULL;
    lane->lease_timer = NULL;
}

void nova__ri_lane_free(struct ri_lane *lane)
{
    if (lane == NULL)
        return;
    cur_clear(lane);
    lane->ri->st->signed_tx_free(&lane->signed_tx);
    free(lane);
}
