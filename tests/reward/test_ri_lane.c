/*
 * test_ri_lane - the reward lane's decisions (plugins/reward_issuance/
 * ri_lane.c) against scripted Horizon answers and a fake clock, with a
 * real PostgreSQL 15 holding its state.
 *
 * The lane runs on the runtime's host table (the pool, metrics, logs are
 * the real ones); the test replaces only the clock, the timers and the
 * network half of host->stellar. Every Horizon call the lane makes takes
 * the next scripted answer of its kind, delivered asynchronously like the
 * real client does; a call with no answer scripted fails the test. The
 * answers model a Horizon fleet: each carries the Latest-Ledger of the
 * replica that gave it.
 */
#include "config.h"
#include <check.h>
#include "unit/testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/metrics.h"
#include "core/host.h"
#include "lib/pg_server.h"
#include "pg/migrate.h"
#include "pg/pg_pool.h"
#include "stellar/stellar.h"
#include "stellar/stellar_strkey.h"
#include "../../plugins/reward_issuance/ri.h"
#include "../../plugins/reward_issuance/ri_lane.h"

static struct pg_server server;
static int db_serial;

static void server_up(void)
{
    ck_assert_msg(pg_server_start(&server) == 0, "PostgreSQL 15 did not start");
}

static void server_down(void)
{
    pg_server_destroy(&server);
}

/* ---- fake clock and timers ------------------------------------------------ */

#define T0_MS 1700000000000LL

struct ftimer {
    bool active;
    int64_t due_ms;
    uint64_t repeat_ms;
    nova_timer_cb cb;
    void *arg;
};

static int64_t now_ms = T0_MS;
static struct ftimer timers[64];

static int64_t fake_now(const struct nova_host *host)
{
    (void)host;
    return now_ms;
}

static nova_timer *fake_timer_start(const struct nova_host *host, uint64_t after_ms,
                                    uint64_t repeat_ms, nova_timer_cb cb, void *arg)
{
    (void)host;
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        if (!timers[i].active) {
            timers[i] = (struct ftimer){true, now_ms + (int64_t)after_ms, repeat_ms, cb, arg};
            return (nova_timer *)&timers[i];
        }
    }
    ck_abort_msg("out of fake timers");
    return NULL;
}

static void fake_timer_stop(const struct nova_host *host, nova_timer *t)
{
    (void)host;
    if (t != NULL)
        ((struct ftimer *)t)->active = false;
}

/* Moves the clock to the earliest timer and fires it. False when none. */
static bool fire_next_timer(void)
{
    struct ftimer *next = NULL;
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
        if (timers[i].active && (next == NULL || timers[i].due_ms < next->due_ms))
            next = &timers[i];
    if (next == NULL)
        return false;
    if (next->due_ms > now_ms)
        now_ms = next->due_ms;
    nova_timer_cb cb = next->cb;
    void *arg = next->arg;
    if (next->repeat_ms > 0)
        next->due_ms = now_ms + (int64_t)next->repeat_ms;
    else
        next->active = false;
    cb(arg);
    return true;
}

/* ---- scripted Horizon ------------------------------------------------------ */

enum kind { K_ACCOUNT, K_SUBMIT, K_LOOKUP, K_LATEST, K_COUNT };
static const char *const kind_name[] = {"load_account", "submit", "tx_lookup", "latest_ledger"};

struct answer {
    int error;     /* 0, -ENOENT, -ETIMEDOUT, -EREMOTEIO ... */
    long http;     /* http status */
    uint32_t at;   /* Latest-Ledger of the replica that answered */
    int64_t value; /* account: sequence; latest: closed_at (unix s) */
    uint32_t seq;  /* latest: ledger sequence; tx: its ledger */
    bool failed;   /* tx: included as failed */
    const char *tx_code;
    const char *hash;     /* tx: another hash than ours */
    const char *envelope; /* tx: another envelope than ours */
};

static struct answer script[K_COUNT][16];
static size_t scripted[K_COUNT], used[K_COUNT];
static int unexpected;
static char unexpected_what[200];

static void expect(enum kind k, struct answer a)
{
    ck_assert_uint_lt(scripted[k], 16);
    script[k][scripted[k]++] = a;
}

struct delivery {
    enum kind kind;
    struct answer a;
    void *cb;
    void *arg;
};
static struct delivery pending_delivery[8];
static size_t npending;

static char envelope[4096], hash[65], passphrase[] = "Test SDF Network ; September 2015";

/* Calls once the whole script is used up are the lane going on with its
 * next piece of work (reloading a sequence after a release, a later
 * lookup) while the test looks at the state the script led to: they are
 * parked, never answered, as a Horizon that has not answered yet. A call
 * beyond its kind's answers while other answers are still due is a call
 * the test did not expect, and fails it. */
static int parked;

static bool all_answers_used(void)
{
    for (int k = 0; k < K_COUNT; k++)
        if (used[k] < scripted[k])
            return false;
    return true;
}

static int take(enum kind k, void *cb, void *arg)
{
    if (used[k] >= scripted[k] && all_answers_used()) {
        parked++;
        return 0;
    }
    if (used[k] >= scripted[k]) {
        unexpected++;
        snprintf(unexpected_what, sizeof unexpected_what, "unscripted %s call (#%zu)", kind_name[k],
                 used[k] + 1);
        return -EIO;
    }
    ck_assert_uint_lt(npending, 8);
    pending_delivery[npending++] = (struct delivery){k, script[k][used[k]++], cb, arg};
    return 0;
}

static int s_load_account(const struct nova_host *h, const char *account_id,
                          nova_stellar_account_cb cb, void *arg)
{
    (void)h;
    (void)account_id;
    return take(K_ACCOUNT, (void *)cb, arg);
}

static int s_submit(const struct nova_host *h, const char *env, nova_stellar_tx_cb cb, void *arg)
{
    (void)h;
    char err[200];
    snprintf(envelope, sizeof envelope, "%s", env);
    ck_assert_msg(nova__stellar_envelope_hash(env, passphrase, hash, err, sizeof err) == 0, "%s",
                  err);
    return take(K_SUBMIT, (void *)cb, arg);
}

static int s_tx_lookup(const struct nova_host *h, const char *hash_hex, nova_stellar_tx_cb cb,
                       void *arg)
{
    (void)h;
    ck_assert_str_eq(hash_hex, hash);
    return take(K_LOOKUP, (void *)cb, arg);
}

static int s_latest_ledger(const struct nova_host *h, nova_stellar_ledger_cb cb, void *arg)
{
    (void)h;
    return take(K_LATEST, (void *)cb, arg);
}

static void deliver(struct delivery *d)
{
    struct nova_stellar_status st = {.error = d->a.error,
                                     .http_status = d->a.http,
                                     .retry_after_ms = -1,
                                     .problem = d->a.error == -ENOENT ? "not_found" : "",
                                     .message = d->a.error ? "scripted error" : "",
                                     .latest_ledger = d->a.at};
    switch (d->kind) {
    case K_ACCOUNT: {
        struct nova_stellar_account acct = {.account_id = "G", .sequence = d->a.value};
        ((nova_stellar_account_cb)d->cb)(d->arg, &st, d->a.error == 0 ? &acct : NULL);
        break;
    }
    case K_LATEST: {
        struct nova_stellar_ledger l = {
            .sequence = d->a.seq, .closed_at = d->a.value, .network_passphrase = passphrase};
        ((nova_stellar_ledger_cb)d->cb)(d->arg, &st, d->a.error == 0 ? &l : NULL);
        break;
    }
    case K_SUBMIT:
    case K_LOOKUP:
    default: {
        struct nova_stellar_tx_info tx = {
            .hash = d->a.hash ? d->a.hash : hash,
            .ledger = d->a.seq,
            .successful = !d->a.failed,
            .tx_code = d->a.tx_code ? d->a.tx_code : (d->a.failed ? "tx_failed" : "tx_success"),
            .result_xdr = "",
            .envelope_xdr = d->a.envelope ? d->a.envelope : envelope,
            .created_at = "",
            .fee_charged = -1,
        };
        bool has_tx = d->a.error == 0 || (d->a.error == -EREMOTEIO);
        ((nova_stellar_tx_cb)d->cb)(d->arg, &st, has_tx ? &tx : NULL);
        break;
    }
    }
}

static struct nova_stellar_api scripted_api;

/* ---- the world --------------------------------------------------------------- */

static uv_loop_t loop;
static uv_timer_t tick;
static struct nova__pg_pool *pool;
static struct nova__services svc;
static struct nova__host_ctx ctx;
static struct ri_config cfg;
static struct ri ri;
static struct ri_lane *lane;
static char db[32], seed[NOVA_STRKEY_MAX], account[NOVA_STRKEY_MAX], issuer[NOVA_STRKEY_MAX];
static int rows_changed;

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void on_rows_changed(void *arg)
{
    (void)arg;
    rows_changed++;
}

static void keypair(uint8_t fill, char *seed_out, char *account_out)
{
    uint8_t raw[32];
    char err[120];
    memset(raw, fill, sizeof raw);
    ck_assert_int_ge(nova__strkey_encode(NOVA_STRKEY_SEED, raw, 32, seed_out, NOVA_STRKEY_MAX), 0);
    ck_assert_int_eq(nova__stellar_seed_to_account(seed_out, account_out, err, sizeof err), 0);
}

static void sql(const char *text)
{
    ck_assert_int_eq(pg_server_exec(&server, db, text), 0);
}

static void value(const char *text, char *out, size_t len)
{
    ck_assert_msg(pg_server_query_value(&server, db, text, out, len) == 0, "query: %s", text);
}

static void world_up(void)
{
    snprintf(db, sizeof db, "lane_%d_%d", (int)getpid(), ++db_serial);
    ck_assert_int_eq(pg_server_create_db(&server, db), 0);
    char dsn[512], err[300];
    pg_server_dsn(&server, db, NULL, dsn, sizeof dsn);
    FILE *devnull = fopen("/dev/null", "w");
    ck_assert_msg(nova__migrate(dsn, NOVA_TEST_SRCDIR "/migrations", NOVA_MIGRATE_APPLY, devnull,
                                err, sizeof err) == 0,
                  "migrate: %s", err);
    fclose(devnull);

    memset(timers, 0, sizeof timers);
    memset(scripted, 0, sizeof scripted);
    memset(used, 0, sizeof used);
    npending = 0;
    unexpected = 0;
    parked = 0;
    rows_changed = 0;
    now_ms = T0_MS;
    hash[0] = envelope[0] = '\0';

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    struct nova__postgres_config pc = {.dsn = dsn,
                                       .pool_min = 1,
                                       .pool_max = 4,
                                       .connect_timeout_ms = 5000,
                                       .statement_timeout_ms = 10000};
    ck_assert_int_eq(nova__pg_pool_new(&loop, &pc, &pool), 0);
    memset(&svc, 0, sizeof svc);
    svc.loop = &loop;
    svc.pg = pool;
    nova__host_init(&ctx, &svc, "reward_issuance", NULL);
    ctx.host.now_ms = fake_now;
    ctx.host.timer_start = fake_timer_start;
    ctx.host.timer_stop = fake_timer_stop;
    scripted_api = *nova__host_stellar_api();
    scripted_api.load_account = s_load_account;
    scripted_api.submit = s_submit;
    scripted_api.tx_lookup = s_tx_lookup;
    scripted_api.latest_ledger = s_latest_ledger;
    ctx.host.stellar = &scripted_api;

    keypair(7, seed, account);
    char iseed[NOVA_STRKEY_MAX];
    keypair(9, iseed, issuer);
    memset(&cfg, 0, sizeof cfg);
    cfg.distribution_secret = seed;
    cfg.base_fee = 100;
    cfg.tx_timeout_ms = 60000;
    cfg.batch_max = 10;
    cfg.batch_wait_ms = 0;
    cfg.lease_ms = 15000;
    memset(&ri, 0, sizeof ri);
    ri.host = &ctx.host;
    ri.cfg = &cfg;
    ri.pg = ctx.host.pg;
    ri.st = &scripted_api;
    snprintf(ri.passphrase, sizeof ri.passphrase, "%s", passphrase);
    snprintf(ri.asset_code, sizeof ri.asset_code, "NOVA");
    snprintf(ri.asset_issuer, sizeof ri.asset_issuer, "%s", issuer);
    snprintf(ri.source, sizeof ri.source, "%s", account);
    snprintf(ri.owner, sizeof ri.owner, "test-owner");
    const struct nova_host *h = &ctx.host;
    ri.m_open =
        h->metric_new(h, NOVA_METRIC_GAUGE, "nova_reward_open_transactions", "x", NULL, NULL, 0);
    ri.m_unresolvable = h->metric_new(h, NOVA_METRIC_GAUGE, "nova_reward_unresolvable_envelopes",
                                      "x", NULL, NULL, 0);
    static const char *const l_result[] = {"result", NULL};
    ri.m_submits = h->metric_new(h, NOVA_METRIC_COUNTER, "nova_reward_submissions_total", "x",
                                 l_result, NULL, 0);
    static const double b[] = {1, 10, 100};
    ri.m_batch = h->metric_new(h, NOVA_METRIC_HISTOGRAM, "nova_reward_batch_size", "x", NULL, b, 3);
    ck_assert_ptr_nonnull(ri.m_open);
    ck_assert_ptr_nonnull(ri.m_unresolvable);

    /* three payments waiting for the lane */
    char q[1024];
    for (int i = 1; i <= 3; i++) {
        char dest_seed[NOVA_STRKEY_MAX], dest[NOVA_STRKEY_MAX];
        keypair((uint8_t)(20 + i), dest_seed, dest);
        snprintf(q, sizeof q,
                 "INSERT INTO nova_worker_payments (reference, kind, destination, asset_code, "
                 "asset_issuer, amount) VALUES ('t:%d', 'distribution', '%s', 'NOVA', '%s', %d)",
                 i, dest, issuer, i);
        sql(q);
    }
    lane = NULL;
}

static void world_down(void)
{
    if (lane != NULL) {
        nova__ri_lane_close(lane);
        nova__host_release(&ctx);
        nova__ri_lane_free(lane);
        lane = NULL;
    }
    nova__pg_pool_close(pool, NULL, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    for (int i = 0; i < 200 && uv_loop_alive(&loop); i++)
        uv_run(&loop, UV_RUN_ONCE);
    uv_loop_close(&loop);
}

static void start_lane(void)
{
    ck_assert_int_eq(nova__ri_lane_start(&ri, ri.source, seed, false, on_rows_changed, NULL, &lane),
                     0);
}

static bool pg_busy(void)
{
    struct nova__pg_pool_stats st;
    nova__pg_pool_stats(pool, &st);
    return st.in_use > 0 || st.waiting > 0 || st.connecting > 0;
}

/* Runs the world until cond() holds: PostgreSQL round trips on the real
 * loop, scripted answers in order, and fake time only when nothing else
 * can move. Fails on an unscripted call. */
static void run_until(bool (*cond)(void), const char *what)
{
    for (int i = 0; i < 20000; i++) {
        ck_assert_msg(unexpected == 0, "%s (waiting for %s)", unexpected_what, what);
        if (!pg_busy() && npending == 0 && cond())
            return;
        uv_run(&loop, UV_RUN_NOWAIT);
        if (pg_busy()) {
            uv_run(&loop, UV_RUN_ONCE);
            continue;
        }
        if (npending > 0) {
            struct delivery d = pending_delivery[0];
            memmove(pending_delivery, pending_delivery + 1, --npending * sizeof d);
            deliver(&d);
            continue;
        }
        ck_assert_msg(fire_next_timer(),
                      "nothing left to run while waiting for %s (%d call(s) after the script "
                      "ran out)",
                      what, parked);
    }
    ck_abort_msg("gave up waiting for %s", what);
}

static char tx_status[32], pay_status[128];

static bool tx_is(const char *status)
{
    value("SELECT COALESCE((SELECT status FROM nova_worker_stellar_txs ORDER BY id LIMIT 1), "
          "'none')",
          tx_status, sizeof tx_status);
    return strcmp(tx_status, status) == 0;
}

static bool first_confirmed(void)
{
    return tx_is("confirmed");
}

static bool first_expired(void)
{
    return tx_is("expired");
}

static bool first_failed(void)
{
    return tx_is("failed");
}

static bool submitted_once(void)
{
    return used[K_SUBMIT] >= 1;
}

static bool answers_used_up(void)
{
    return all_answers_used();
}

static void payments(char *out, size_t len)
{
    value("SELECT string_agg(status, ',' ORDER BY id) FROM nova_worker_payments", out, len);
}

static int64_t signed_max_time(void)
{
    char v[32];
    value("SELECT extract(epoch from max_time)::bigint FROM nova_worker_stellar_txs ORDER BY id "
          "LIMIT 1",
          v, sizeof v);
    return strtoll(v, NULL, 10);
}

/* account 1000: the lane's first envelope uses sequence 1001 */
static void script_start(void)
{
    expect(K_ACCOUNT, (struct answer){.at = 90, .value = 1000});
}

/* ---- tests ----------------------------------------------------------------------- */

/* The double payment this issue was about: a "not found" from a replica
 * at ledger 100 and a latest ledger past max_time from an up-to-date one.
 * The envelope is in ledger 105: the lane must look again, not expire. */
START_TEST(lagging_not_found_is_no_expiry)
{
    script_start();
    expect(K_SUBMIT, (struct answer){.error = -ETIMEDOUT, .http = 504, .at = 100});
    expect(K_LOOKUP, (struct answer){.error = -ENOENT, .http = 404, .at = 100});
    expect(K_LATEST, (struct answer){.at = 130, .seq = 130, .value = T0_MS / 1000 + 3600});
    expect(K_LOOKUP, (struct answer){.at = 131, .seq = 105});
    start_lane();
    run_until(first_confirmed, "the envelope confirmed");
    ck_assert_uint_eq(used[K_SUBMIT], 1);
    ck_assert_uint_eq(used[K_LOOKUP], 2);
    payments(pay_status, sizeof pay_status);
    ck_assert_str_eq(pay_status, "confirmed,confirmed,confirmed");
    char n[16];
    value("SELECT count(*) FROM nova_worker_stellar_txs", n, sizeof n);
    ck_assert_str_eq(n, "1");
    ck_assert_int_ge(rows_changed, 1);
}
END_TEST

/* Expiry on a proof: not found as of ledger 131 >= 130 (closed after
 * max_time), the sequence still unused as of 131. */
START_TEST(expiry_on_proof)
{
    script_start();
    expect(K_SUBMIT, (struct answer){.error = -ETIMEDOUT, .http = 504, .at = 100});
    expect(K_LOOKUP, (struct answer){.error = -ENOENT, .http = 404, .at = 131});
    expect(K_LATEST, (struct answer){.at = 130, .seq = 130, .value = T0_MS / 1000 + 3600});
    /* a lagging replica's account answer is no proof... */
    expect(K_ACCOUNT, (struct answer){.at = 125, .value = 1000});
    /* ...an up-to-date one is */
    expect(K_ACCOUNT, (struct answer){.at = 132, .value = 1000});
    start_lane();
    run_until(first_expired, "the envelope expired");
    ck_assert_uint_eq(used[K_ACCOUNT], 3);
    ck_assert_uint_eq(used[K_SUBMIT], 1);
    payments(pay_status, sizeof pay_status);
    ck_assert_str_eq(pay_status, "pending,pending,pending");
}
END_TEST

/* Still valid (the newest ledger closed at max_time exactly): resubmit the
 * same envelope, which the lane built with the max time it committed. */
START_TEST(still_valid_resubmits_same_envelope)
{
    script_start();
    expect(K_SUBMIT, (struct answer){.error = -ETIMEDOUT, .http = 504, .at = 100});
    expect(K_LOOKUP, (struct answer){.error = -ENOENT, .http = 404, .at = 101});
    start_lane();
    run_until(submitted_once, "the first submission");
    int64_t max_time = signed_max_time();
    ck_assert_int_eq(max_time, T0_MS / 1000 + 60);
    expect(K_LATEST, (struct answer){.at = 101, .seq = 101, .value = max_time});
    char first[sizeof envelope];
    snprintf(first, sizeof first, "%s", envelope);
    expect(K_SUBMIT, (struct answer){.at = 102, .seq = 102});
    run_until(first_confirmed, "the resubmitted envelope confirmed");
    ck_assert_str_eq(envelope, first);
    ck_assert_uint_eq(used[K_SUBMIT], 2);
}
END_TEST

/* Sequence used, transaction unknown: beyond the history retention, or
 * another user of the account. Never released; counted; looked at again. */
START_TEST(used_sequence_without_transaction_is_unresolvable)
{
    script_start();
    expect(K_SUBMIT, (struct answer){.error = -ETIMEDOUT, .http = 504, .at = 100});
    expect(K_LOOKUP, (struct answer){.error = -ENOENT, .http = 404, .at = 130});
    expect(K_LATEST, (struct answer){.at = 130, .seq = 130, .value = T0_MS / 1000 + 3600});
    expect(K_ACCOUNT, (struct answer){.at = 129, .value = 1001});
    /* 30 s later: the same again */
    expect(K_LOOKUP, (struct answer){.error = -ENOENT, .http = 404, .at = 140});
    expect(K_ACCOUNT, (struct answer){.at = 139, .value = 1001});
    start_lane();
    run_until(answers_used_up, "every scripted answer");
    ck_assert(tx_is("submitted"));
    payments(pay_status, sizeof pay_status);
    ck_assert_str_eq(pay_status, "prepared,prepared,prepared");
    ck_assert(nova__metric_value(ri.m_unresolvable, NULL) == 1);
    ck_assert_int_ge(now_ms - T0_MS, 30000);
}
END_TEST

/* A rejection of the envelope's first submission releases its payments. */
START_TEST(first_submission_rejected_releases)
{
    script_start();
    expect(
        K_SUBMIT,
        (struct answer){
            .error = -EREMOTEIO, .http = 400, .at = 100, .failed = true, .tx_code = "tx_bad_seq"});
    expect(K_LOOKUP, (struct answer){.error = -ENOENT, .http = 404, .at = 100});
    start_lane();
    run_until(first_failed, "the envelope released");
    payments(pay_status, sizeof pay_status);
    ck_assert_str_eq(pay_status, "pending,pending,pending");
}
END_TEST

/* A 400 after an earlier ambiguous submission is no verdict: the first
 * copy was applied; the lane keeps the envelope and finds it. */
START_TEST(rejection_after_ambiguous_submit_is_no_verdict)
{
    script_start();
    expect(K_SUBMIT, (struct answer){.error = -ETIMEDOUT, .http = 504, .at = 100});
    expect(K_LOOKUP, (struct answer){.error = -ENOENT, .http = 404, .at = 100});
    expect(K_LATEST, (struct answer){.at = 100, .seq = 100, .value = T0_MS / 1000});
    expect(
        K_SUBMIT,
        (struct answer){
            .error = -EREMOTEIO, .http = 400, .at = 101, .failed = true, .tx_code = "tx_bad_seq"});
    expect(K_LOOKUP, (struct answer){.error = -ENOENT, .http = 404, .at = 100});
    expect(K_LATEST, (struct answer){.at = 101, .seq = 101, .value = T0_MS / 1000 + 1});
    expect(K_SUBMIT, (struct answer){.at = 102, .seq = 101}); /* duplicate: the applied copy */
    start_lane();
    run_until(first_confirmed, "the envelope confirmed");
    ck_assert_uint_eq(used[K_SUBMIT], 3);
    char n[16];
    value("SELECT count(*) FROM nova_worker_stellar_txs", n, sizeof n);
    ck_assert_str_eq(n, "1");
}
END_TEST

/* Answers about another transaction, or with another envelope, confirm
 * nothing. */
START_TEST(answers_for_other_transactions_are_ignored)
{
    static const char other[] = "00000000000000000000000000000000000000000000000000000000deadbeef";
    script_start();
    expect(K_SUBMIT, (struct answer){.at = 100, .seq = 100, .hash = other});
    expect(K_LOOKUP, (struct answer){.at = 101, .seq = 100, .envelope = "AAAAAgAAAAB="});
    expect(K_LOOKUP, (struct answer){.at = 102, .seq = 100});
    start_lane();
    run_until(first_confirmed, "the envelope confirmed");
    ck_assert_uint_eq(used[K_LOOKUP], 2);
}
END_TEST

/* A worker that lost its lease changes nothing, even with the answer. */
START_TEST(lost_lease_writes_nothing)
{
    script_start();
    expect(K_SUBMIT, (struct answer){.error = -ETIMEDOUT, .http = 504, .at = 100});
    start_lane();
    run_until(submitted_once, "the first submission");
    sql("UPDATE nova_worker_lanes SET owner = 'another-worker', lease_until = now() + interval "
        "'1 hour'");
    expect(K_LOOKUP, (struct answer){.at = 101, .seq = 100});
    run_until(answers_used_up, "the lookup answered");
    /* the CONFIRM ran fenced: nothing written */
    for (int i = 0; i < 50; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (pg_busy())
            uv_run(&loop, UV_RUN_ONCE);
    }
    ck_assert(tx_is("submitted"));
    payments(pay_status, sizeof pay_status);
    ck_assert_str_eq(pay_status, "prepared,prepared,prepared");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ri_lane");
    TCase *t = tcase_create("lane");
    tcase_set_timeout(t, 60);
    tcase_add_unchecked_fixture(t, server_up, server_down);
    tcase_add_checked_fixture(t, world_up, world_down);
    tcase_add_test(t, lagging_not_found_is_no_expiry);
    tcase_add_test(t, expiry_on_proof);
    tcase_add_test(t, still_valid_resubmits_same_envelope);
    tcase_add_test(t, used_sequence_without_transaction_is_unresolvable);
    tcase_add_test(t, first_submission_rejected_releases);
    tcase_add_test(t, rejection_after_ambiguous_submit_is_no_verdict);
    tcase_add_test(t, answers_for_other_transactions_are_ignored);
    tcase_add_test(t, lost_lease_writes_nothing);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
