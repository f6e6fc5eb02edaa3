/*
 * The Stellar network client against the Horizon + RPC test double
 * (tests/testnet/server.js, started once for the suite and seeded with
 * setup.js). The double validates every envelope with @stellar/stellar-base;
 * its admin API injects faults and shows what was really paid.
 */
#include "config.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "core/host.h"
#include "http/http_client.h"
#include "common/metrics.h"
#include "stellar/stellar.h"
#include "stellar/stellar_client.h"
#include "lib/testnet.h"
#include "unit/testutil.h"

static struct testnet net;
static uv_loop_t loop;
static struct nova__http_client *http;
static struct nova__stellar_client *sc;
static struct nova__services svc;
static struct nova__host_ctx hctx;
static const struct nova_host *host;
static const struct nova_stellar_api *api; /* host->stellar */
static char nova_asset[80];

/* ---- what a callback saw ------------------------------------------------ */

struct got {
    int calls;
    int error;
    long http_status;
    int64_t retry_after_ms;
    int rpc_code;
    char message[700];
    char problem[64];
    /* account */
    int64_t sequence, native;
    size_t ntl;
    char tl_code[16], tl_issuer[60];
    int64_t tl_balance;
    bool tl_auth;
    /* transaction */
    bool has_tx;
    char hash[65], tx_code[40];
    uint32_t ledger;
    bool successful;
    size_t op_count;
    char ops[4][40];
    bool has_result;
    int32_t result_code, result_op0;
    /* ledger / rpc */
    uint32_t seq;
    int64_t closed_at;
    char passphrase[128], status[32];
    /* events */
    size_t nevents;
    char cursor[64];
    char ev_id[4][64], ev_topics[4][400], ev_value[4][200], ev_contract[4][60];
    uint32_t ev_ledger[4];
    size_t ev_topic_count[4];
};

static void copy_status(struct got *g, const struct nova_stellar_status *st)
{
    g->calls++;
    g->error = st->error;
    g->http_status = st->http_status;
    g->retry_after_ms = st->retry_after_ms;
    g->rpc_code = st->rpc_code;
    ck_assert_ptr_nonnull(st->message);
    ck_assert_ptr_nonnull(st->problem);
    snprintf(g->message, sizeof(g->message), "%s", st->message);
    snprintf(g->problem, sizeof(g->problem), "%s", st->problem);
}

static void on_account(void *arg, const struct nova_stellar_status *st,
                       const struct nova_stellar_account *a)
{
    struct got *g = arg;
    copy_status(g, st);
    ck_assert(st->error == 0 ? a != NULL : a == NULL);
    if (a == NULL)
        return;
    g->sequence = a->sequence;
    g->native = a->native_balance;
    g->ntl = a->trustline_count;
    if (a->trustline_count > 0) {
        snprintf(g->tl_code, sizeof(g->tl_code), "%s", a->trustlines[0].asset_code);
        snprintf(g->tl_issuer, sizeof(g->tl_issuer), "%s", a->trustlines[0].asset_issuer);
        g->tl_balance = a->trustlines[0].balance;
        g->tl_auth = a->trustlines[0].authorized;
    }
}

static void on_tx(void *arg, const struct nova_stellar_status *st,
                  const struct nova_stellar_tx_info *t)
{
    struct got *g = arg;
    copy_status(g, st);
    g->has_tx = t != NULL;
    if (t == NULL)
        return;
    snprintf(g->hash, sizeof(g->hash), "%s", t->hash);
    snprintf(g->tx_code, sizeof(g->tx_code), "%s", t->tx_code ? t->tx_code : "(null)");
    g->ledger = t->ledger;
    g->successful = t->successful;
    g->op_count = t->op_count;
    for (size_t i = 0; i < t->op_count && i < 4; i++)
        snprintf(g->ops[i], sizeof(g->ops[i]), "%s", t->op_codes[i]);
    g->has_result = t->result != NULL;
    if (t->result != NULL) {
        g->result_code = t->result->code;
        g->result_op0 = t->result->op_count > 0 ? t->result->ops[0].result : 999;
    }
}

static void on_ledger(void *arg, const struct nova_stellar_status *st,
                      const struct nova_stellar_ledger *l)
{
    struct got *g = arg;
    copy_status(g, st);
    if (l == NULL)
        return;
    g->seq = l->sequence;
    g->closed_at = l->closed_at;
    snprintf(g->passphrase, sizeof(g->passphrase), "%s", l->network_passphrase);
}

static void on_health(void *arg, const struct nova_stellar_status *st,
                      const struct nova_stellar_rpc_health *h)
{
    struct got *g = arg;
    copy_status(g, st);
    if (h == NULL)
        return;
    snprintf(g->status, sizeof(g->status), "%s", h->status);
    g->seq = h->latest_ledger;
}

static void on_rpc_ledger(void *arg, const struct nova_stellar_status *st,
                          const struct nova_stellar_rpc_ledger *l)
{
    struct got *g = arg;
    copy_status(g, st);
    if (l == NULL)
        return;
    g->seq = l->sequence;
    g->closed_at = l->close_time;
}

static void on_events(void *arg, const struct nova_stellar_status *st,
                      const struct nova_stellar_events_page *p)
{
    struct got *g = arg;
    copy_status(g, st);
    if (p == NULL)
        return;
    g->nevents = p->event_count;
    snprintf(g->cursor, sizeof(g->cursor), "%s", p->cursor ? p->cursor : "");
    g->seq = p->latest_ledger;
    for (size_t i = 0; i < p->event_count && i < 4; i++) {
        const struct nova_stellar_event *e = &p->events[i];
        char *t = cJSON_PrintUnformatted(e->topics), *v = cJSON_PrintUnformatted(e->value);
        snprintf(g->ev_topics[i], sizeof(g->ev_topics[i]), "%s", t);
        snprintf(g->ev_value[i], sizeof(g->ev_value[i]), "%s", v);
        cJSON_free(t);
        cJSON_free(v);
        snprintf(g->ev_id[i], sizeof(g->ev_id[i]), "%s", e->id);
        snprintf(g->ev_contract[i], sizeof(g->ev_contract[i]), "%s", e->contract_id);
        g->ev_ledger[i] = e->ledger;
        g->ev_topic_count[i] = e->topic_count;
        ck_assert_str_eq(e->paging_token, e->id);
        ck_assert_uint_eq((size_t)cJSON_GetArraySize(e->topics), e->topic_count);
    }
}

static void wait_for(struct got *g, int calls)
{
    uint64_t deadline = uv_hrtime() + 20000000000ull;
    while (g->calls < calls && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_int_eq(g->calls, calls);
}

/* ---- fixtures ----------------------------------------------------------- */

static void on_done(void *arg)
{
    (*(int *)arg)++;
}

static void suite_setup(void)
{
    static const char *const args[] = {"--ledger-close-ms", "200", NULL};
    if (testnet_start(&net, args) != 0 || testnet_setup(&net, 2, 1) != 0) {
        fprintf(stderr, "the Stellar test double did not start\n");
        exit(1);
    }
    snprintf(nova_asset, sizeof(nova_asset), "NOVA:%s", net.issuer);
}

static void suite_teardown(void)
{
    testnet_stop(&net);
}

static struct nova__stellar_config make_cfg(const char *passphrase)
{
    struct nova__stellar_config cfg = {
        .network = "testnet",
        .network_passphrase = (char *)(uintptr_t)passphrase,
        .horizon_url = net.url,
        .soroban_rpc_url = net.rpc_url,
        .asset_code = "NOVA",
        .asset_issuer = net.issuer,
        .distribution_secret = net.dist_secret,
        .base_fee = 100,
        .tx_timeout_ms = 30000,
    };
    return cfg;
}

static void setup(void)
{
    nova__metrics_reset();
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    struct nova__http_config hc = {.timeout_ms = 10000, .connect_timeout_ms = 2000};
    ck_assert_int_eq(nova__http_client_new(&loop, &hc, &http), 0);
    struct nova__stellar_config cfg = make_cfg(net.passphrase);
    ck_assert_int_eq(nova__stellar_client_new(&loop, http, &cfg, &sc), 0);
    memset(&svc, 0, sizeof(svc));
    svc.loop = &loop;
    svc.http = http;
    svc.stellar = sc;
    nova__host_init(&hctx, &svc, "test-plugin", NULL);
    host = &hctx.host;
    api = host->stellar;
    cJSON_Delete(testnet_call(&net, "DELETE", "/_admin/faults", NULL, NULL));
}

static void close_all(void)
{
    int done = 0;
    if (sc != NULL)
        nova__stellar_client_close(sc, on_done, &done);
    else
        done++;
    nova__http_client_close(http, on_done, &done);
    while (done < 2)
        uv_run(&loop, UV_RUN_ONCE);
    sc = NULL;
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static void teardown(void)
{
    close_all();
}

static void fault(const char *json)
{
    long status = 0;
    cJSON_Delete(testnet_call(&net, "POST", "/_admin/faults", json, &status));
    ck_assert_int_eq(status, 200);
}

static double metric(const char *name, enum nova_metric_type type, const char *label,
                     const char *value)
{
    const char *const names[] = {label, NULL};
    nova_metric *m = nova__metric_new(type, name, "", names, NULL, 0);
    ck_assert_ptr_nonnull(m);
    return nova__metric_value(m, (const char *[]){value});
}

static double submissions(const char *result)
{
    double v =
        metric("nova_worker_stellar_submissions_total", NOVA_METRIC_COUNTER, "result", result);
    return v < 0 ? 0 : v;
}

/* ---- helpers ------------------------------------------------------------ */

static int64_t dist_sequence(void)
{
    struct got g = {0};
    ck_assert_int_eq(api->load_account(host, net.dist, on_account, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
    return g.sequence;
}

static void sign(int64_t seq, const char *dest, int64_t amount, struct nova_stellar_signed_tx *out)
{
    char err[300];
    struct nova_stellar_payment p = {.destination = dest, .amount = amount};
    struct nova_stellar_payment_tx tx = {
        .struct_size = sizeof(tx),
        .fee = 100,
        .seq_num = seq,
        .max_time = (uint64_t)time(NULL) + 300,
        .asset = nova_asset,
        .payments = &p,
        .payment_count = 1,
    };
    int rc = api->build_payment_distribution(host, &tx, out, err, sizeof(err));
    ck_assert_msg(rc == 0, "build: %s", err);
}

static void submit(const char *envelope, struct got *g)
{
    memset(g, 0, sizeof(*g));
    ck_assert_int_eq(api->submit(host, envelope, on_tx, g), 0);
    ck_assert_int_eq(g->calls, 0); /* never from inside the call */
    wait_for(g, 1);
}

static void lookup(const char *hash, struct got *g)
{
    memset(g, 0, sizeof(*g));
    ck_assert_int_eq(api->tx_lookup(host, hash, on_tx, g), 0);
    wait_for(g, 1);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_network_and_distribution_key)
{
    const struct nova_stellar_network *n = api->network(host);
    ck_assert_ptr_nonnull(n);
    ck_assert_str_eq(n->passphrase, net.passphrase);
    ck_assert_str_eq(n->horizon_url, net.url);
    ck_assert_str_eq(n->rpc_url, net.rpc_url);
    ck_assert_str_eq(n->asset, nova_asset);
    ck_assert_str_eq(n->distribution_account, net.dist);
    ck_assert_int_eq(n->base_fee, 100);

    /* A host without a Stellar client. */
    struct nova__services none = {.loop = &loop, .http = http};
    struct nova__host_ctx other;
    nova__host_init(&other, &none, "other", NULL);
    struct got g = {0};
    ck_assert_ptr_null(api->network(&other.host));
    ck_assert_int_eq(api->load_account(&other.host, net.dist, on_account, &g), -ENOTSUP);

    /* No distribution secret configured. */
    struct nova__stellar_config cfg = make_cfg(net.passphrase);
    cfg.distribution_secret = NULL;
    struct nova__stellar_client *c2;
    ck_assert_int_eq(nova__stellar_client_new(&loop, http, &cfg, &c2), 0);
    ck_assert_ptr_null(nova__stellar_client_network(c2)->distribution_account);
    struct nova_stellar_payment p = {.destination = net.recipient[0], .amount = 1};
    struct nova_stellar_payment_tx tx = {.struct_size = sizeof(tx),
                                         .fee = 100,
                                         .seq_num = 2,
                                         .max_time = 5,
                                         .asset = nova_asset,
                                         .payments = &p,
                                         .payment_count = 1};
    struct nova_stellar_signed_tx out;
    char err[200];
    ck_assert_int_eq(nova__stellar_client_build_payment(c2, &tx, &out, err, sizeof(err)), -ENOKEY);
    ck_assert_ptr_nonnull(strstr(err, "distribution_secret"));
    nova__stellar_client_close(c2, NULL, NULL);

    /* A bad secret is refused at creation, without echoing it. */
    cfg.distribution_secret = "SBADSECRETXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
    ck_assert_int_eq(nova__stellar_client_new(&loop, http, &cfg, &c2), -EINVAL);
}
END_TEST

START_TEST(test_load_account)
{
    struct got g = {0};
    ck_assert_int_eq(api->load_account(host, net.dist, on_account, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
    ck_assert_int_eq(g.http_status, 200);
    ck_assert_int_gt(g.sequence, 0);
    ck_assert_int_gt(g.native, 1000 * 10000000LL);
    ck_assert_uint_eq(g.ntl, 1);
    ck_assert_str_eq(g.tl_code, "NOVA");
    ck_assert_str_eq(g.tl_issuer, net.issuer);
    ck_assert_int_gt(g.tl_balance, 0);
    ck_assert(g.tl_auth);

    /* The recipient without a trustline. */
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->load_account(host, net.recipient[1], on_account, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
    ck_assert_uint_eq(g.ntl, 0);

    /* A valid key that was never funded: 404 not_found. */
    cJSON *kp = testnet_call(&net, "GET", "/_admin/keypair?label=nova-test/nobody", NULL, NULL);
    const cJSON *pub = cJSON_GetObjectItemCaseSensitive(kp, "public");
    ck_assert(cJSON_IsString(pub));
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->load_account(host, pub->valuestring, on_account, &g), 0);
    cJSON_Delete(kp);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -ENOENT);
    ck_assert_int_eq(g.http_status, 404);
    ck_assert_str_eq(g.problem, "not_found");
    ck_assert(nova__stellar_client_ready(sc));

    /* Bad ids are refused before any request; the callback never runs. */
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->load_account(host, "GABC", on_account, &g), -EINVAL);
    ck_assert_int_eq(api->load_account(host, net.dist_secret, on_account, &g), -EINVAL);
    ck_assert_int_eq(api->load_account(host, net.dist, NULL, &g), -EINVAL);
    ck_assert_uint_eq(nova__stellar_client_in_flight(sc), 0);
    ck_assert_int_eq(g.calls, 0);
}
END_TEST

START_TEST(test_submit_success_exactly_once)
{
    struct nova_stellar_signed_tx tx;
    struct got g;
    int64_t seq = dist_sequence();
    sign(seq + 1, net.recipient[0], 125000000, &tx);
    submit(tx.envelope_b64, &g);
    ck_assert_msg(g.error == 0, "%s", g.message);
    ck_assert(g.has_tx);
    ck_assert_str_eq(g.hash, tx.hash_hex);
    ck_assert_int_gt(g.ledger, 0);
    ck_assert(g.successful);
    ck_assert_str_eq(g.tx_code, "tx_success");
    ck_assert(g.has_result);
    ck_assert_int_eq(g.result_code, 0);
    ck_assert_int_eq(testnet_payments_for(&net, tx.hash_hex), 1);
    uint32_t ledger = g.ledger;

    /* Resubmitting the same envelope is idempotent: answered from history. */
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, 0);
    ck_assert_uint_eq(g.ledger, ledger);
    ck_assert_int_eq(testnet_payments_for(&net, tx.hash_hex), 1);
    ck_assert_int_eq(dist_sequence(), seq + 1);

    lookup(tx.hash_hex, &g);
    ck_assert_int_eq(g.error, 0);
    ck_assert(g.successful);
    ck_assert_uint_eq(g.ledger, ledger);
    ck_assert_str_eq(g.tx_code, "tx_success");
    ck_assert(submissions("ok") == 2);

    /* Bad arguments. */
    ck_assert_int_eq(api->submit(host, "", on_tx, &g), -EINVAL);
    ck_assert_int_eq(api->submit(host, "not base64!", on_tx, &g), -EINVAL);
    ck_assert_int_eq(api->tx_lookup(host, "abc", on_tx, &g), -EINVAL);
    nova__stellar_signed_tx_free(&tx);

    /* Horizon refuses an undecodable envelope (never forwarded): -EINVAL. */
    submit("AAAA", &g);
    ck_assert_int_eq(g.error, -EINVAL);
    ck_assert_str_eq(g.problem, "transaction_malformed");
    ck_assert(submissions("error") == 1);
}
END_TEST

START_TEST(test_submit_failures_decoded)
{
    struct nova_stellar_signed_tx tx;
    struct got g;
    int64_t seq = dist_sequence();

    /* Injected tx_bad_seq: rejected before a ledger, nothing consumed. */
    fault("{\"kind\":\"bad_seq\"}");
    sign(seq + 1, net.recipient[0], 10000000, &tx);
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, -EREMOTEIO);
    ck_assert_int_eq(g.http_status, 400);
    ck_assert_str_eq(g.problem, "transaction_failed");
    ck_assert_str_eq(g.tx_code, "tx_bad_seq");
    ck_assert(g.has_result);
    ck_assert_int_eq(g.result_code, -5);
    ck_assert_uint_eq(g.op_count, 0);
    ck_assert_uint_eq(g.ledger, 0);
    ck_assert_ptr_nonnull(strstr(g.message, "tx_bad_seq"));
    lookup(tx.hash_hex, &g);
    ck_assert_int_eq(g.error, -ENOENT);
    nova__stellar_signed_tx_free(&tx);

    /* A real wrong sequence number. */
    sign(seq + 5, net.recipient[0], 10000000, &tx);
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, -EREMOTEIO);
    ck_assert_str_eq(g.tx_code, "tx_bad_seq");
    nova__stellar_signed_tx_free(&tx);

    /* A recipient without a trustline: included as failed, seq consumed. */
    sign(seq + 1, net.recipient[1], 10000000, &tx);
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, -EREMOTEIO);
    ck_assert_str_eq(g.tx_code, "tx_failed");
    ck_assert_uint_eq(g.op_count, 1);
    ck_assert_str_eq(g.ops[0], "op_no_trust");
    ck_assert(g.has_result);
    ck_assert_int_eq(g.result_code, -1);
    ck_assert_int_eq(g.result_op0, -6);
    ck_assert_int_eq(testnet_payments_for(&net, tx.hash_hex), 0);
    lookup(tx.hash_hex, &g);
    ck_assert_int_eq(g.error, 0);
    ck_assert(!g.successful);
    ck_assert_int_gt(g.ledger, 0);
    ck_assert_str_eq(g.tx_code, "tx_failed");
    ck_assert_str_eq(g.ops[0], "op_no_trust");
    nova__stellar_signed_tx_free(&tx);
    ck_assert_int_eq(dist_sequence(), seq + 1);

    /* The distribution account short of NOVA. */
    fault("{\"kind\":\"op_underfunded\"}");
    sign(seq + 2, net.recipient[0], 10000000, &tx);
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, -EREMOTEIO);
    ck_assert_str_eq(g.ops[0], "op_underfunded");
    ck_assert_int_eq(g.result_op0, -2);
    ck_assert_int_eq(testnet_payments_for(&net, tx.hash_hex), 0);
    nova__stellar_signed_tx_free(&tx);
    ck_assert(submissions("tx_failed") == 4);
}
END_TEST

START_TEST(test_outcome_unknown_then_lookup)
{
    struct nova_stellar_signed_tx tx;
    struct got g;
    int64_t seq = dist_sequence();

    /* 504 with the transaction applied. */
    fault("{\"kind\":\"timeout_applied\"}");
    sign(seq + 1, net.recipient[0], 20000000, &tx);
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, -ETIMEDOUT);
    ck_assert_int_eq(g.http_status, 504);
    ck_assert_str_eq(g.problem, "transaction_submission_timeout");
    ck_assert(!g.has_tx);
    ck_assert_ptr_nonnull(strstr(g.message, "outcome unknown"));
    lookup(tx.hash_hex, &g);
    ck_assert_int_eq(g.error, 0);
    ck_assert(g.successful);
    ck_assert_int_eq(testnet_payments_for(&net, tx.hash_hex), 1);
    nova__stellar_signed_tx_free(&tx);

    /* 504 without: not found, and resubmitting the same envelope pays once. */
    fault("{\"kind\":\"timeout_not_applied\"}");
    sign(seq + 2, net.recipient[0], 20000000, &tx);
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, -ETIMEDOUT);
    lookup(tx.hash_hex, &g);
    ck_assert_int_eq(g.error, -ENOENT);
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, 0);
    ck_assert_int_eq(testnet_payments_for(&net, tx.hash_hex), 1);
    nova__stellar_signed_tx_free(&tx);

    /* The connection drops after the transaction was applied. A fresh
     * HTTP client: on a reused keep-alive connection libcurl would resend
     * the POST by itself (harmless, the envelope is the same) and hide the
     * drop. */
    fault("{\"kind\":\"disconnect\",\"apply\":true}");
    sign(seq + 3, net.recipient[0], 20000000, &tx);
    {
        struct nova__http_client *h2;
        struct nova__stellar_client *c2;
        struct nova__http_config hc = {.timeout_ms = 10000};
        struct nova__stellar_config cfg = make_cfg(net.passphrase);
        int done = 0;
        ck_assert_int_eq(nova__http_client_new(&loop, &hc, &h2), 0);
        ck_assert_int_eq(nova__stellar_client_new(&loop, h2, &cfg, &c2), 0);
        memset(&g, 0, sizeof(g));
        ck_assert_int_eq(nova__stellar_submit(c2, NULL, tx.envelope_b64, on_tx, &g, NULL, 0), 0);
        wait_for(&g, 1);
        nova__stellar_client_close(c2, on_done, &done);
        nova__http_client_close(h2, on_done, &done);
        while (done < 2)
            uv_run(&loop, UV_RUN_ONCE);
    }
    ck_assert_int_eq(g.error, -ETIMEDOUT);
    ck_assert_int_eq(g.http_status, 0);
    lookup(tx.hash_hex, &g);
    ck_assert_int_eq(g.error, 0);
    ck_assert_int_eq(testnet_payments_for(&net, tx.hash_hex), 1);
    nova__stellar_signed_tx_free(&tx);

    /* A 5xx from a proxy, body not JSON. */
    fault("{\"kind\":\"status\",\"status\":502,\"body\":\"<html>bad gateway</html>\"}");
    sign(seq + 5, net.recipient[0], 20000000, &tx);
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, -ETIMEDOUT);
    ck_assert_int_eq(g.http_status, 502);
    ck_assert_ptr_nonnull(strstr(g.message, "bad gateway"));
    ck_assert(!nova__stellar_client_ready(sc));
    nova__stellar_signed_tx_free(&tx);
    ck_assert(submissions("timeout") == 4); /* the fresh client counts in the same registry */
}
END_TEST

/* Our own timeout fires while Horizon holds the answer until the ledger
 * closes; the transaction is in that ledger: "unknown" was right. A double
 * whose ledgers close only on request makes the timing deterministic. */
START_TEST(test_own_timeout_while_applied)
{
    static const char *const args[] = {"--ledger-close-ms", "0", NULL};
    struct testnet slow;
    ck_assert_int_eq(testnet_start(&slow, args), 0);
    ck_assert_int_eq(testnet_setup(&slow, 1, 0), 0);
    struct nova__stellar_config cfg = make_cfg(slow.passphrase);
    char asset[80];
    snprintf(asset, sizeof(asset), "NOVA:%s", slow.issuer);
    cfg.horizon_url = slow.url;
    cfg.soroban_rpc_url = slow.rpc_url;
    cfg.asset_issuer = slow.issuer;
    cfg.distribution_secret = slow.dist_secret;
    struct nova__stellar_client *c2;
    ck_assert_int_eq(nova__stellar_client_new(&loop, http, &cfg, &c2), 0);
    nova__stellar_client_set_timeouts(c2, 0, 400);

    struct got g = {0};
    ck_assert_int_eq(nova__stellar_load_account(c2, NULL, slow.dist, on_account, &g, NULL, 0), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
    struct nova_stellar_payment p = {.destination = slow.recipient[0], .amount = 5};
    struct nova_stellar_payment_tx tx = {.struct_size = sizeof(tx),
                                         .fee = 100,
                                         .seq_num = g.sequence + 1,
                                         .max_time = (uint64_t)time(NULL) + 300,
                                         .asset = asset,
                                         .payments = &p,
                                         .payment_count = 1};
    struct nova_stellar_signed_tx out;
    char err[200];
    ck_assert_int_eq(nova__stellar_client_build_payment(c2, &tx, &out, err, sizeof(err)), 0);
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(nova__stellar_submit(c2, NULL, out.envelope_b64, on_tx, &g, NULL, 0), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -ETIMEDOUT);
    ck_assert_int_eq(g.http_status, 0);
    ck_assert_ptr_nonnull(strstr(g.message, "outcome unknown"));
    /* It is in the open ledger; once that closes, the lookup finds it. */
    cJSON_Delete(testnet_call(&slow, "POST", "/_admin/close-ledger", "{}", NULL));
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(nova__stellar_tx_lookup(c2, NULL, out.hash_hex, on_tx, &g, NULL, 0), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
    ck_assert(g.successful);
    ck_assert_int_eq(testnet_payments_for(&slow, out.hash_hex), 1);
    nova__stellar_signed_tx_free(&out);
    nova__stellar_client_close(c2, NULL, NULL);
    testnet_stop(&slow);
}
END_TEST

START_TEST(test_rate_limited)
{
    struct nova_stellar_signed_tx tx;
    struct got g;
    int64_t seq = dist_sequence();
    fault("{\"kind\":\"rate_limit\",\"retry_after\":2}");
    sign(seq + 1, net.recipient[0], 30000000, &tx);
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, -EAGAIN);
    ck_assert_int_eq(g.http_status, 429);
    ck_assert_int_eq(g.retry_after_ms, 2000);
    ck_assert_str_eq(g.problem, "rate_limit_exceeded");
    ck_assert_int_eq(testnet_payments_for(&net, tx.hash_hex), 0);
    /* Exactly one request reached the double: the client does not retry. */
    cJSON *subs = testnet_call(&net, "GET", "/_admin/submissions", NULL, NULL);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(subs, "submissions"), *s;
    int seen = 0;
    cJSON_ArrayForEach(s, list)
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(s, "result");
        if (cJSON_IsString(r) && strcmp(r->valuestring, "rate_limited") == 0)
            seen++;
    }
    cJSON_Delete(subs);
    ck_assert_int_eq(seen, 1);
    submit(tx.envelope_b64, &g);
    ck_assert_int_eq(g.error, 0);
    ck_assert_int_eq(testnet_payments_for(&net, tx.hash_hex), 1);
    nova__stellar_signed_tx_free(&tx);
    ck_assert(submissions("rate_limited") == 1);

    /* A 429 without a usable delay still waits at least a second. */
    fault("{\"kind\":\"rate_limit\",\"retry_after\":0,\"target\":\"horizon\"}");
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->load_account(host, net.dist, on_account, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -EAGAIN);
    ck_assert_int_eq(g.retry_after_ms, 1000);
    /* And on the RPC. */
    fault("{\"kind\":\"rate_limit\",\"retry_after\":3,\"target\":\"rpc\"}");
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->rpc_health(host, on_health, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -EAGAIN);
    ck_assert_int_eq(g.retry_after_ms, 3000);
}
END_TEST

START_TEST(test_latest_ledger_and_rpc)
{
    struct got g = {0};
    ck_assert_int_eq(api->latest_ledger(host, on_ledger, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
    ck_assert_int_ge(g.seq, 1000);
    ck_assert_str_eq(g.passphrase, net.passphrase);
    int64_t now = (int64_t)time(NULL);
    ck_assert_int_le(llabs(g.closed_at - now), 120);
    uint32_t horizon_seq = g.seq;

    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->rpc_health(host, on_health, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
    ck_assert_str_eq(g.status, "healthy");
    ck_assert_int_ge(g.seq, horizon_seq);

    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->rpc_latest_ledger(host, on_rpc_ledger, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
    ck_assert_int_ge(g.seq, horizon_seq);
    ck_assert_int_le(llabs(g.closed_at - now), 120);

    ck_assert(metric("nova_worker_stellar_request_duration_seconds", NOVA_METRIC_HISTOGRAM, "api",
                     "horizon") == 1);
    ck_assert(metric("nova_worker_stellar_request_duration_seconds", NOVA_METRIC_HISTOGRAM, "api",
                     "rpc") == 2);

    /* The runtime's own calls (tag NULL) use the same code. */
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(nova__stellar_latest_ledger(sc, NULL, on_ledger, &g, NULL, 0), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
}
END_TEST

static const char *sac_id(void)
{
    static char id[NOVA_STRKEY_MAX];
    char err[200];
    ck_assert_int_eq(api->asset_contract_id(nova_asset, net.passphrase, id, err, sizeof(err)), 0);
    return id;
}

static void events_page(const struct nova_stellar_events_query *q, struct got *g)
{
    memset(g, 0, sizeof(*g));
    ck_assert_int_eq(api->get_events(host, q, on_events, g), 0);
    wait_for(g, 1);
}

START_TEST(test_get_events_filters_and_cursor)
{
    const char *cid = sac_id();
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"close_ledger\":true,\"events\":["
             "{\"contractId\":\"%s\",\"topic\":[{\"symbol\":\"mint\"},{\"address\":\"%s\"}],"
             "\"value\":{\"i128\":\"125000000\"}},"
             "{\"contractId\":\"%s\",\"topic\":[{\"symbol\":\"claim\"}],"
             "\"value\":{\"map\":{\"amount\":{\"i128\":\"7\"}}}},"
             "{\"contractId\":\"%s\",\"topic\":[{\"symbol\":\"mint\"},{\"address\":\"%s\"}],"
             "\"value\":{\"i128\":\"-5\"}},"
             "{\"contractId\":\"%s\",\"topic\":[{\"symbol\":\"mint\"},{\"address\":\"%s\"},"
             "{\"u32\":1}],\"value\":{\"void\":null}}]}",
             cid, net.recipient[0], cid, cid, net.recipient[1], cid, net.recipient[0]);
    long status = 0;
    cJSON *made = testnet_call(&net, "POST", "/_admin/events", body, &status);
    ck_assert_int_eq(status, 201);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(made, "events"), 0);
    uint32_t ledger = (uint32_t)cJSON_GetObjectItemCaseSensitive(first, "ledger")->valuedouble;
    char first_id[64];
    snprintf(first_id, sizeof(first_id), "%s",
             cJSON_GetObjectItemCaseSensitive(first, "id")->valuestring);
    cJSON_Delete(made);

    /* mint events with exactly two topics, one per page. */
    struct nova_stellar_event_filter f = {
        .type = "contract",
        .contract_ids = {cid},
        .topics = {{"AAAADwAAAARtaW50", "*"}},
    };
    struct nova_stellar_events_query q = {.struct_size = sizeof(q),
                                          .start_ledger = ledger,
                                          .filters = &f,
                                          .filter_count = 1,
                                          .limit = 1};
    struct got g;
    events_page(&q, &g);
    ck_assert_msg(g.error == 0, "%s", g.message);
    ck_assert_uint_eq(g.nevents, 1);
    ck_assert_str_eq(g.ev_id[0], first_id);
    ck_assert_str_eq(g.ev_contract[0], cid);
    ck_assert_uint_eq(g.ev_ledger[0], ledger);
    ck_assert_uint_eq(g.ev_topic_count[0], 2);
    char want[300];
    snprintf(want, sizeof(want), "[{\"symbol\":\"mint\"},{\"address\":\"%s\"}]", net.recipient[0]);
    ck_assert_str_eq(g.ev_topics[0], want);
    ck_assert_str_eq(g.ev_value[0], "{\"i128\":\"125000000\"}");
    ck_assert_str_eq(g.cursor, first_id);

    char cursor[64];
    snprintf(cursor, sizeof(cursor), "%s", g.cursor);
    q.start_ledger = 0;
    q.cursor = cursor;
    events_page(&q, &g);
    ck_assert_int_eq(g.error, 0);
    ck_assert_uint_eq(g.nevents, 1);
    snprintf(want, sizeof(want), "[{\"symbol\":\"mint\"},{\"address\":\"%s\"}]", net.recipient[1]);
    ck_assert_str_eq(g.ev_topics[0], want);
    ck_assert_str_eq(g.ev_value[0], "{\"i128\":\"-5\"}");

    snprintf(cursor, sizeof(cursor), "%s", g.cursor);
    events_page(&q, &g);
    ck_assert_int_eq(g.error, 0);
    ck_assert_uint_eq(g.nevents, 0); /* the 3-topic mint and the claim do not match */
    ck_assert_str_ne(g.cursor, cursor);

    /* "**" takes any rest; a second filter adds the claim event. */
    struct nova_stellar_event_filter two[2] = {
        {.contract_ids = {cid}, .topics = {{"AAAADwAAAARtaW50", "**"}}},
        {.topics = {{"AAAADwAAAAVjbGFpbQAAAA=="}}},
    };
    struct nova_stellar_events_query all = {.struct_size = sizeof(all),
                                            .start_ledger = ledger,
                                            .end_ledger = ledger + 1,
                                            .filters = two,
                                            .filter_count = 2};
    events_page(&all, &g);
    ck_assert_int_eq(g.error, 0);
    ck_assert_uint_eq(g.nevents, 4);
    ck_assert_str_eq(g.ev_topics[1], "[{\"symbol\":\"claim\"}]");
    ck_assert_str_eq(g.ev_value[1], "{\"map\":[{\"key\":{\"symbol\":\"amount\"},\"val\":"
                                    "{\"i128\":\"7\"}}]}");
    ck_assert_str_eq(g.ev_value[3], "{\"void\":null}");

    /* Out of the retention range: a JSON-RPC error. */
    struct nova_stellar_events_query old = {.struct_size = sizeof(old), .start_ledger = 1};
    events_page(&old, &g);
    ck_assert_int_eq(g.error, -EREMOTEIO);
    ck_assert_int_eq(g.rpc_code, -32600);
    ck_assert_ptr_nonnull(strstr(g.message, "ledger range"));

    /* Bad queries are refused before any request. */
    struct nova_stellar_event_filter bad = {.topics = {{"**", "*"}}};
    q.filters = &bad;
    ck_assert_int_eq(api->get_events(host, &q, on_events, &g), -EINVAL);
    bad.topics[0][0] = "not base64!";
    ck_assert_int_eq(api->get_events(host, &q, on_events, &g), -EINVAL);
    struct nova_stellar_event_filter badc = {.contract_ids = {net.dist}};
    q.filters = &badc;
    ck_assert_int_eq(api->get_events(host, &q, on_events, &g), -EINVAL);
    q.filters = &f;
    q.start_ledger = ledger; /* with a cursor */
    ck_assert_int_eq(api->get_events(host, &q, on_events, &g), -EINVAL);
    q.cursor = NULL;
    q.start_ledger = 0;
    ck_assert_int_eq(api->get_events(host, &q, on_events, &g), -EINVAL);
    q.start_ledger = ledger;
    q.limit = 10001;
    ck_assert_int_eq(api->get_events(host, &q, on_events, &g), -EINVAL);
    ck_assert_uint_eq(nova__stellar_client_in_flight(sc), 0);
}
END_TEST

START_TEST(test_garbage_answers)
{
    struct got g = {0};
    /* A 500 with an HTML body. */
    fault("{\"kind\":\"status\",\"status\":500,\"target\":\"horizon\","
          "\"body\":\"<html>oops</html>\"}");
    ck_assert_int_eq(api->load_account(host, net.dist, on_account, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -EIO);
    ck_assert_int_eq(g.http_status, 500);
    ck_assert_ptr_nonnull(strstr(g.message, "oops"));
    ck_assert(!nova__stellar_client_ready(sc));

    /* A 404 that is not Horizon's not_found must not read as "no such
     * account" (or "transaction not in a ledger"). */
    fault("{\"kind\":\"status\",\"status\":404,\"target\":\"horizon\",\"body\":\"nope\"}");
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->tx_lookup(host,
                                    "00000000000000000000000000000000000000000000000000000000"
                                    "00000000",
                                    on_tx, &g),
                     0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -EBADMSG);
    ck_assert_ptr_nonnull(strstr(g.message, "nope"));

    /* RPC: a non-JSON 500, and a JSON-RPC error object. */
    fault("{\"kind\":\"status\",\"status\":500,\"target\":\"rpc\",\"body\":\"xyz\"}");
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->rpc_latest_ledger(host, on_rpc_ledger, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -EIO);
    ck_assert_ptr_nonnull(strstr(g.message, "xyz"));
    fault("{\"kind\":\"rpc_error\",\"target\":\"rpc\",\"code\":-32603,\"message\":\"boom\"}");
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->rpc_health(host, on_health, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -EREMOTEIO);
    ck_assert_int_eq(g.rpc_code, -32603);
    ck_assert_ptr_nonnull(strstr(g.message, "boom"));

    /* The same answer after recovery makes the client ready again. */
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(api->latest_ledger(host, on_ledger, &g), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
    ck_assert(nova__stellar_client_ready(sc));

    /* Horizon is unreachable. */
    struct nova__stellar_config cfg = make_cfg(net.passphrase);
    cfg.horizon_url = "http://127.0.0.1:1";
    struct nova__stellar_client *c2;
    ck_assert_int_eq(nova__stellar_client_new(&loop, http, &cfg, &c2), 0);
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(nova__stellar_load_account(c2, NULL, net.dist, on_account, &g, NULL, 0), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -ECONNREFUSED);
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(nova__stellar_submit(c2, NULL, "AAAA", on_tx, &g, NULL, 0), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -ETIMEDOUT); /* a submit never reports "not sent" */
    ck_assert(!nova__stellar_client_ready(c2));
    nova__stellar_client_close(c2, NULL, NULL);
}
END_TEST

static int faults_pending(void)
{
    cJSON *f = testnet_call(&net, "GET", "/_admin/faults", NULL, NULL);
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f, "faults"));
    cJSON_Delete(f);
    return n;
}

/* soroban_rpc_url_fallback: the double serves the RPC at /soroban/rpc (the
 * primary here) and /rpc (the fallback); faults with path "/soroban" hit
 * the primary only. */
START_TEST(test_rpc_fallback)
{
    char primary[300], fallback[300];
    snprintf(primary, sizeof(primary), "%s/soroban/rpc", net.url);
    snprintf(fallback, sizeof(fallback), "%s/rpc", net.url);
    struct nova__stellar_config cfg = make_cfg(net.passphrase);
    cfg.soroban_rpc_url = primary;
    cfg.soroban_rpc_url_fallback = fallback;
    struct nova__stellar_client *c2;
    ck_assert_int_eq(nova__stellar_client_new(&loop, http, &cfg, &c2), 0);
    struct got g = {0};

    /* the primary is unavailable: the fallback answers the same call */
    fault("{\"kind\":\"status\",\"status\":503,\"target\":\"rpc\",\"path\":\"/soroban\"}");
    ck_assert_int_eq(nova__stellar_rpc_latest_ledger(c2, NULL, on_rpc_ledger, &g, NULL, 0), 0);
    wait_for(&g, 1);
    ck_assert_msg(g.error == 0, "%s", g.message);
    ck_assert_uint_gt(g.seq, 0);
    ck_assert_int_eq(faults_pending(), 0);

    /* then the fallback is asked first: the primary's fault stays */
    fault("{\"kind\":\"rpc_error\",\"code\":-32603,\"target\":\"rpc\",\"path\":\"/soroban\"}");
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(nova__stellar_rpc_health(c2, NULL, on_health, &g, NULL, 0), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, 0);
    ck_assert_int_eq(faults_pending(), 1);

    /* both fail (the fallback answers 500, the primary is unhealthy): one
     * second attempt, whose answer is the call's */
    fault("{\"kind\":\"status\",\"status\":500,\"target\":\"rpc\"}");
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(nova__stellar_rpc_health(c2, NULL, on_health, &g, NULL, 0), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -EREMOTEIO);
    ck_assert_int_eq(g.rpc_code, -32603);
    ck_assert_int_eq(faults_pending(), 0);

    /* an answer about the request itself is no reason to ask the other */
    fault("{\"kind\":\"status\",\"status\":500,\"target\":\"rpc\",\"path\":\"/soroban\"}");
    struct nova_stellar_events_query old = {.struct_size = sizeof(old), .start_ledger = 1};
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(nova__stellar_get_events(c2, NULL, &old, on_events, &g, NULL, 0), 0);
    wait_for(&g, 1);
    ck_assert_int_eq(g.error, -EREMOTEIO);
    ck_assert_int_eq(g.rpc_code, -32600);
    ck_assert_int_eq(faults_pending(), 1);
    ck_assert_uint_eq(nova__stellar_client_in_flight(c2), 0);
    nova__stellar_client_close(c2, NULL, NULL);
}
END_TEST

START_TEST(test_cancellation)
{
    struct got a = {0}, b = {0}, c = {0};
    /* Each request is held for a while by the double. */
    fault("{\"kind\":\"delay\",\"delay_ms\":3000,\"target\":\"horizon\",\"count\":3}");

    /* The host cancels a plugin's HTTP requests before its shutdown: its
     * Stellar calls end with it, once, before cancel returns. */
    ck_assert_int_eq(api->load_account(host, net.dist, on_account, &a), 0);
    ck_assert_uint_eq(nova__stellar_client_in_flight(sc), 1);
    nova__host_release(&hctx);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.error, -ECANCELED);
    ck_assert_uint_eq(nova__stellar_client_in_flight(sc), 0);

    /* Closing the client cancels the runtime's calls and any plugin call
     * left behind; done runs afterwards, from the loop. */
    ck_assert_int_eq(nova__stellar_latest_ledger(sc, NULL, on_ledger, &b, NULL, 0), 0);
    ck_assert_int_eq(
        api->tx_lookup(host, "0000000000000000000000000000000000000000000000000000000000000000",
                       on_tx, &c),
        0);
    int done = 0;
    nova__stellar_client_close(sc, on_done, &done);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(b.error, -ECANCELED);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.error, -ECANCELED);
    ck_assert_int_eq(done, 0);
    struct got d = {0};
    ck_assert_int_eq(api->load_account(host, net.dist, on_account, &d), -ECANCELED);
    while (done == 0)
        uv_run(&loop, UV_RUN_ONCE);
    sc = NULL;
    /* Nothing runs twice once the orphaned request ends (client closed). */
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(d.calls, 0);
}
END_TEST

START_TEST(test_readiness_probe)
{
    ck_assert(!nova__stellar_client_ready(sc));
    ck_assert_int_eq(nova__stellar_client_probe(sc, 60000), 0);
    uint64_t deadline = uv_hrtime() + 10000000000ull;
    while (!nova__stellar_client_ready(sc) && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert(nova__stellar_client_ready(sc));

    /* A Horizon of another network never makes the client ready. */
    struct nova__stellar_client *c2;
    struct nova__stellar_config cfg = make_cfg("Public Global Stellar Network ; September 2015");
    ck_assert_int_eq(nova__stellar_client_new(&loop, http, &cfg, &c2), 0);
    ck_assert_int_eq(nova__stellar_client_probe(c2, 60000), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    deadline = uv_hrtime() + 10000000000ull;
    while (nova__stellar_client_in_flight(c2) > 0 && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_uint_eq(nova__stellar_client_in_flight(c2), 0);
    ck_assert(!nova__stellar_client_ready(c2));
    nova__stellar_client_close(c2, NULL, NULL);
}
END_TEST

static Suite *stellar_client_suite(void)
{
    Suite *s = suite_create("stellar_client");
    TCase *tc = tcase_create("testnet");
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_network_and_distribution_key);
    tcase_add_test(tc, test_load_account);
    tcase_add_test(tc, test_submit_success_exactly_once);
    tcase_add_test(tc, test_submit_failures_decoded);
    tcase_add_test(tc, test_outcome_unknown_then_lookup);
    tcase_add_test(tc, test_own_timeout_while_applied);
    tcase_add_test(tc, test_rate_limited);
    tcase_add_test(tc, test_latest_ledger_and_rpc);
    tcase_add_test(tc, test_get_events_filters_and_cursor);
    tcase_add_test(tc, test_garbage_answers);
    tcase_add_test(tc, test_rpc_fallback);
    tcase_add_test(tc, test_cancellation);
    tcase_add_test(tc, test_readiness_probe);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(stellar_client_suite());
}
