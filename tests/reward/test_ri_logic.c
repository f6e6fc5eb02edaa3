/* Unit tests of the reward_issuance plugin's pure decisions (ri_logic). */
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "../../plugins/reward_issuance/ri.h"
#include "../../plugins/reward_issuance/ri_logic.h"
#include "stellar/stellar.h"
#include "stellar/stellar_client.h"

static const struct nova_stellar_api *st = &nova__stellar_offline_api;

/* Keys from shared/reference/stellar-vectors.json (issuer, distribution). */
#define ISSUER "GBK33AQ2ZYSCUR2AQOCAWSE5ENJ36PUBZIKJVIODWAYWL35CS22K7OPW"
#define WALLET "GAYW7RQYHRUBBNBXZKIQDLW2OXD6ANPOWTH7A5SFQ6I245CY3RN6S2TT"

static cJSON *parse(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    ck_assert_ptr_nonnull(j);
    return j;
}

static int issue(const char *json, struct ri_issue_req *req, char *err, size_t errlen)
{
    cJSON *j = parse(json);
    int rc = nova__ri_parse_issue(st, j, req, err, errlen);
    cJSON_Delete(j);
    return rc;
}

START_TEST(issue_valid_number_and_string)
{
    struct ri_issue_req r;
    char err[256] = "";
    ck_assert_int_eq(issue("{\"issuanceId\":42,\"idempotencyKey\":\"k1\",\"campaignId\":3,"
                           "\"userId\":7,\"walletAddress\":\"" WALLET "\",\"amount\":12.5}",
                           &r, err, sizeof err),
                     0);
    ck_assert_int_eq(r.issuance_id, 42);
    ck_assert_int_eq(r.campaign_id, 3);
    ck_assert(r.has_user);
    ck_assert_int_eq(r.user_id, 7);
    ck_assert_int_eq(r.amount, 125000000);
    ck_assert_str_eq(r.wallet, WALLET);
    ck_assert_str_eq(r.idempotency_key, "k1");

    /* userId absent, amount as a string with 7 decimals, ids as strings */
    ck_assert_int_eq(issue("{\"issuanceId\":\"9\",\"idempotencyKey\":\"abc\",\"campaignId\":1,"
                           "\"walletAddress\":\"" WALLET "\",\"amount\":\"0.0000001\"}",
                           &r, err, sizeof err),
                     0);
    ck_assert(!r.has_user);
    ck_assert_int_eq(r.amount, 1);
    ck_assert_int_eq(r.issuance_id, 9);

    /* 0.1 is not exact in binary but is a whole number of stroops */
    ck_assert_int_eq(issue("{\"issuanceId\":1,\"idempotencyKey\":\"a\",\"campaignId\":1,"
                           "\"walletAddress\":\"" WALLET "\",\"amount\":0.1,\"userId\":null}",
                           &r, err, sizeof err),
                     0);
    ck_assert_int_eq(r.amount, 1000000);
    ck_assert(!r.has_user);

    /* 1e-7 as a JSON number is one stroop; 1e-8 is too precise */
    ck_assert_int_eq(issue("{\"issuanceId\":1,\"idempotencyKey\":\"a\",\"campaignId\":1,"
                           "\"walletAddress\":\"" WALLET "\",\"amount\":1e-7}",
                           &r, err, sizeof err),
                     0);
    ck_assert_int_eq(r.amount, 1);
    ck_assert_int_eq(issue("{\"issuanceId\":1,\"idempotencyKey\":\"a\",\"campaignId\":1,"
                           "\"walletAddress\":\"" WALLET "\",\"amount\":1e-8}",
                           &r, err, sizeof err),
                     -EINVAL);
    ck_assert_int_eq(issue("{\"issuanceId\":1,\"idempotencyKey\":\"a\",\"campaignId\":1,"
                           "\"walletAddress\":\"" WALLET "\",\"amount\":250}",
                           &r, err, sizeof err),
                     0);
    ck_assert_int_eq(r.amount, 2500000000LL);
}
END_TEST

struct bad_case {
    const char *json;
    const char *field;
};

static const struct bad_case bad_cases[] = {
    {"[]", "job data"},
    {"{\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET "\",\"amount\":1}",
     "issuanceId"},
    {"{\"issuanceId\":0,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET
     "\",\"amount\":1}",
     "issuanceId"},
    {"{\"issuanceId\":1.5,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET
     "\",\"amount\":1}",
     "issuanceId"},
    {"{\"issuanceId\":1,\"campaignId\":1,\"walletAddress\":\"" WALLET "\",\"amount\":1}",
     "idempotencyKey"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"walletAddress\":\"" WALLET "\",\"amount\":1}",
     "campaignId"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"userId\":\"x\","
     "\"walletAddress\":\"" WALLET "\",\"amount\":1}",
     "userId"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"GABC\","
     "\"amount\":1}",
     "walletAddress"},
    /* a seed is not an account, and is never echoed */
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":42,"
     "\"amount\":1}",
     "walletAddress"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET
     "\",\"amount\":0}",
     "amount"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET
     "\",\"amount\":-5}",
     "amount"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET
     "\",\"amount\":\"1.12345678\"}",
     "amount"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET
     "\",\"amount\":1.12345678}",
     "amount"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET
     "\",\"amount\":\"-1\"}",
     "amount"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET
     "\",\"amount\":\"1e3\"}",
     "amount"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET
     "\"}",
     "amount"},
    {"{\"issuanceId\":1,\"idempotencyKey\":\"k\",\"campaignId\":1,\"walletAddress\":\"" WALLET
     "\",\"amount\":true}",
     "amount"},
};

START_TEST(issue_invalid_names_field)
{
    const struct bad_case *c = &bad_cases[_i];
    struct ri_issue_req r;
    char err[256] = "";
    ck_assert_int_eq(issue(c->json, &r, err, sizeof err), -EINVAL);
    ck_assert_msg(strncmp(err, c->field, strlen(c->field)) == 0, "case %d: '%s' does not name %s",
                  _i, err, c->field);
}
END_TEST

START_TEST(distribute_parse)
{
    cJSON *j = parse("{\"campaignId\":5,\"merchantId\":2,\"defaultAmount\":\"3\",\"recipients\":["
                     "{\"walletAddress\":\"" WALLET "\"},"
                     "{\"walletAddress\":\"" WALLET "\",\"amount\":\"1.5\"},"
                     "{\"walletAddress\":\"nope\"},"
                     "{\"walletAddress\":\"" WALLET "\",\"amount\":\"0\"}]}");
    struct ri_dist_req d;
    char err[256] = "";
    ck_assert_int_eq(nova__ri_parse_distribute(st, j, 1000, &d, err, sizeof err), 0);
    ck_assert_uint_eq(d.count, 4);
    ck_assert_int_eq(d.campaign_id, 5);
    ck_assert_int_eq(d.merchant_id, 2);
    ck_assert_int_eq(d.recipients[0].amount, 30000000);
    ck_assert_str_eq(d.recipients[0].error, "");
    ck_assert_int_eq(d.recipients[1].amount, 15000000);
    ck_assert_str_eq(d.recipients[2].error, "invalid_address");
    ck_assert(strncmp(d.recipients[3].error, "invalid_amount", 14) == 0);
    nova__ri_dist_free(&d);
    ck_assert_int_eq(nova__ri_parse_distribute(st, j, 3, &d, err, sizeof err), -EINVAL);
    ck_assert(strstr(err, "recipients") != NULL);
    cJSON_Delete(j);

    j = parse("{\"campaignId\":5,\"recipients\":[]}");
    ck_assert_int_eq(nova__ri_parse_distribute(st, j, 10, &d, err, sizeof err), -EINVAL);
    cJSON_Delete(j);
    j = parse("{\"recipients\":[{\"walletAddress\":\"" WALLET "\"}]}");
    ck_assert_int_eq(nova__ri_parse_distribute(st, j, 10, &d, err, sizeof err), -EINVAL);
    ck_assert(strstr(err, "campaignId") != NULL);
    cJSON_Delete(j);
}
END_TEST

START_TEST(memos_fit)
{
    char m[NOVA_STELLAR_MEMO_TEXT_MAX + 1];
    ck_assert_int_eq(nova__ri_memo_issuance(42, m), 0);
    ck_assert_str_eq(m, "nova:i42");
    ck_assert_int_eq(nova__ri_memo_issuance(INT64_MAX, m), 0);
    ck_assert_str_eq(m, "nova:i9223372036854775807");
    ck_assert_uint_le(strlen(m), NOVA_STELLAR_MEMO_TEXT_MAX);
    ck_assert_int_eq(nova__ri_memo_batch(7, m), 0);
    ck_assert_str_eq(m, "nova:b7");
    ck_assert_int_eq(nova__ri_memo_batch(-1, m), -ERANGE);
}
END_TEST

/* One trustline as load_account() reports it (stroops). */
static struct nova_stellar_trustline line(const char *code, const char *issuer, int64_t balance,
                                          int64_t limit, bool authorized)
{
    return (struct nova_stellar_trustline){.asset_code = code,
                                           .asset_issuer = issuer,
                                           .balance = balance,
                                           .limit = limit,
                                           .authorized = authorized};
}

static int trust(const struct nova_stellar_trustline *lines, size_t n, int64_t amount, char *reason)
{
    struct nova_stellar_account a = {.account_id = WALLET,
                                     .sequence = 1,
                                     .native_balance = 100000000,
                                     .trustline_count = n,
                                     .trustlines = lines};
    return nova__ri_check_trustline(&a, WALLET, "NOVA", ISSUER, amount, reason, 64);
}

START_TEST(trustline_checks)
{
    char reason[64] = "";
    /* authorized, plenty of room (the native balance is not a trustline) */
    struct nova_stellar_trustline ok = line("NOVA", ISSUER, 10000000, INT64_MAX, true);
    ck_assert_int_eq(trust(&ok, 1, 100, reason), 0);
    /* only XLM: no trustline at all */
    ck_assert_int_eq(trust(NULL, 0, 1, reason), -EINVAL);
    ck_assert_str_eq(reason, "no_trustline");
    /* same code, other issuer */
    struct nova_stellar_trustline other = line("NOVA", WALLET, 0, 1000000000, true);
    ck_assert_int_eq(trust(&other, 1, 1, reason), -EINVAL);
    ck_assert_str_eq(reason, "no_trustline");
    struct nova_stellar_trustline frozen = line("NOVA", ISSUER, 0, 1000000000, false);
    ck_assert_int_eq(trust(&frozen, 1, 1, reason), -EINVAL);
    ck_assert_str_eq(reason, "not_authorized");
    /* balance 99, limit 100: room for exactly 1 unit */
    struct nova_stellar_trustline full = line("NOVA", ISSUER, 990000000, 1000000000, true);
    ck_assert_int_eq(trust(&full, 1, 10000001, reason), -EINVAL);
    ck_assert_str_eq(reason, "line_full");
    ck_assert_int_eq(trust(&full, 1, 10000000, reason), 0);
    /* incoming offers (buying liabilities) take room too */
    full.buying_liabilities = 1;
    ck_assert_int_eq(trust(&full, 1, 10000000, reason), -EINVAL);
    ck_assert_str_eq(reason, "line_full");
    /* the right line is found among others */
    struct nova_stellar_trustline two[] = {other, ok};
    ck_assert_int_eq(trust(two, 2, 100, reason), 0);
    /* the issuer needs no trustline for its own asset */
    struct nova_stellar_account issuer = {.account_id = ISSUER};
    ck_assert_int_eq(nova__ri_check_trustline(&issuer, ISSUER, "NOVA", ISSUER, 5, reason, 64), 0);
}
END_TEST

START_TEST(batch_ready_rules)
{
    ck_assert(!nova__ri_batch_ready(0, 100, 99999, 1000));
    ck_assert(!nova__ri_batch_ready(5, 100, 10, 1000));
    ck_assert(nova__ri_batch_ready(5, 100, 1000, 1000));
    ck_assert(nova__ri_batch_ready(100, 100, 0, 1000));
    ck_assert(nova__ri_batch_ready(1, 1, 0, 1000));
}
END_TEST

START_TEST(split_fates_and_labels)
{
    ck_assert_int_eq(nova__ri_op_fate("op_success"), RI_OP_REQUEUE);
    ck_assert_int_eq(nova__ri_op_fate("op_no_trust"), RI_OP_FAIL);
    ck_assert_int_eq(nova__ri_op_fate("op_underfunded"), RI_OP_FAIL);
    ck_assert_int_eq(nova__ri_op_fate(NULL), RI_OP_FAIL);
    ck_assert_str_eq(nova__ri_reason_label("op_no_trust"), "no_trustline");
    ck_assert_str_eq(nova__ri_reason_label("no_trustline"), "no_trustline");
    ck_assert_str_eq(nova__ri_reason_label("op_underfunded"), "underfunded");
    ck_assert_str_eq(nova__ri_reason_label("op_line_full"), "line_full");
    ck_assert_str_eq(nova__ri_reason_label("tx_bad_auth"), "stellar");
    ck_assert_str_eq(nova__ri_reason_label(NULL), "stellar");
}
END_TEST

/* The old HTTP-level cases, as the host's submit() reports them
 * (docs/stellar.md): the status it gives for each answer, then the class. */
START_TEST(classify_submissions)
{
    /* 200, successful: true -> 0 */
    ck_assert_int_eq(nova__ri_classify_submit(0, 200), RI_SUBMIT_SUCCESS);
    /* 200, successful: false -> -EREMOTEIO with 200: in a ledger as failed */
    ck_assert_int_eq(nova__ri_classify_submit(-EREMOTEIO, 200), RI_SUBMIT_FAILED);
    ck_assert(!nova__ri_submit_rejected(-EREMOTEIO, 200));
    /* 400 transaction_failed -> -EREMOTEIO with 400: rejected (or failed in
     * a ledger: the lookup tells) */
    ck_assert_int_eq(nova__ri_classify_submit(-EREMOTEIO, 400), RI_SUBMIT_FAILED);
    ck_assert(nova__ri_submit_rejected(-EREMOTEIO, 400));
    /* 400 transaction_malformed / bad_request -> -EINVAL with 400 */
    ck_assert_int_eq(nova__ri_classify_submit(-EINVAL, 400), RI_SUBMIT_MALFORMED);
    ck_assert(!nova__ri_submit_rejected(-EINVAL, 400));
    /* 504 transaction_submission_timeout, 502, 503 -> -ETIMEDOUT */
    ck_assert_int_eq(nova__ri_classify_submit(-ETIMEDOUT, 504), RI_SUBMIT_UNKNOWN);
    ck_assert_int_eq(nova__ri_classify_submit(-ETIMEDOUT, 502), RI_SUBMIT_UNKNOWN);
    ck_assert_int_eq(nova__ri_classify_submit(-ETIMEDOUT, 503), RI_SUBMIT_UNKNOWN);
    ck_assert(!nova__ri_submit_rejected(-ETIMEDOUT, 504));
    /* 429 rate_limit_exceeded -> -EAGAIN: look it up, then resend */
    ck_assert_int_eq(nova__ri_classify_submit(-EAGAIN, 429), RI_SUBMIT_UNKNOWN);
    /* our timeout, a reset connection (even after a 200 status line) ->
     * -ETIMEDOUT without a response */
    ck_assert_int_eq(nova__ri_classify_submit(-ETIMEDOUT, 0), RI_SUBMIT_UNKNOWN);
    /* a 200 whose body is unreadable -> -ETIMEDOUT with 200 */
    ck_assert_int_eq(nova__ri_classify_submit(-ETIMEDOUT, 200), RI_SUBMIT_UNKNOWN);
    /* shutting down mid-request: also unknown */
    ck_assert_int_eq(nova__ri_classify_submit(-ECANCELED, 0), RI_SUBMIT_UNKNOWN);
    /* an -EINVAL that is not Horizon's 400 tells nothing about the envelope;
     * neither does a status the API does not promise */
    ck_assert_int_eq(nova__ri_classify_submit(-EINVAL, 0), RI_SUBMIT_UNKNOWN);
    ck_assert_int_eq(nova__ri_classify_submit(-EBADMSG, 400), RI_SUBMIT_UNKNOWN);
    ck_assert_int_eq(nova__ri_classify_submit(-EIO, 400), RI_SUBMIT_UNKNOWN);
    ck_assert_int_eq(nova__ri_classify_submit(-ECONNRESET, 200), RI_SUBMIT_UNKNOWN);
}
END_TEST

START_TEST(classify_lookups)
{
    ck_assert_int_eq(nova__ri_classify_lookup(0, true), RI_LOOKUP_SUCCESS);
    ck_assert_int_eq(nova__ri_classify_lookup(0, false), RI_LOOKUP_FAILED);
    /* only Horizon's not_found problem means "not in a ledger" */
    ck_assert_int_eq(nova__ri_classify_lookup(-ENOENT, false), RI_LOOKUP_NOT_FOUND);
    /* a bare 404 (-EBADMSG), 429/503 (-EAGAIN), timeouts, other errors */
    ck_assert_int_eq(nova__ri_classify_lookup(-EBADMSG, false), RI_LOOKUP_ERROR);
    ck_assert_int_eq(nova__ri_classify_lookup(-EAGAIN, false), RI_LOOKUP_ERROR);
    ck_assert_int_eq(nova__ri_classify_lookup(-ETIMEDOUT, true), RI_LOOKUP_ERROR);
    ck_assert_int_eq(nova__ri_classify_lookup(-EIO, true), RI_LOOKUP_ERROR);
    ck_assert_int_eq(nova__ri_classify_lookup(-ECONNREFUSED, false), RI_LOOKUP_ERROR);
}
END_TEST

START_TEST(decide_envelope_fate)
{
    struct ri_envelope_view v = {
        .submit_attempts = 1, .max_time = 1000, .latest_ledger_close = 900};
    /* no lookup yet or lookup error: look up first */
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_LOOKUP);
    v.lookup = RI_LOOKUP_ERROR;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_LOOKUP);
    v.lookup = RI_LOOKUP_SUCCESS;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_CONFIRM);
    v.lookup = RI_LOOKUP_FAILED;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_SPLIT);

    /* unknown outcome, not found, still valid: same envelope again */
    v.lookup = RI_LOOKUP_NOT_FOUND;
    v.lookup_ledger = 500;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_RESUBMIT);
    /* ledger closed exactly at max_time: still valid (close time <= maxTime) */
    v.latest_ledger_close = 1000;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_RESUBMIT);
    /* latest ledger not read since the lookup: read it, never guess */
    v.latest_ledger_close = -1;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_LEDGER);
    /* a close time after max_time but no ledger number learned from it */
    v.latest_ledger_close = 1001;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_LEDGER);

    /* rejected on its only submission: release at once */
    v.rejected = true;
    v.latest_ledger_close = 900;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_RELEASE);
    /* rejected after an earlier (ambiguous) submission: an old copy may
     * still be queued or applied, so the rejection is no verdict */
    v.submit_attempts = 2;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_RESUBMIT);
    v.submit_attempts = 3;
    v.latest_ledger_close = -1;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_LEDGER);

    /* prepared but never sent (crash after commit): send it */
    struct ri_envelope_view p = {.submit_attempts = 0,
                                 .lookup = RI_LOOKUP_NOT_FOUND,
                                 .max_time = 1000,
                                 .latest_ledger_close = 10};
    ck_assert_int_eq(nova__ri_decide(&p), RI_ACT_RESUBMIT);
    ck_assert_str_eq(nova__ri_action_name(RI_ACT_EXPIRE), "expire");
    ck_assert_str_eq(nova__ri_action_name(RI_ACT_UNRESOLVABLE), "unresolvable");
}
END_TEST

/* Expiry across Horizon replicas: ledger 120 closed after max_time. */
START_TEST(decide_expiry_needs_a_proof_across_replicas)
{
    struct ri_envelope_view v = {.submit_attempts = 2,
                                 .lookup = RI_LOOKUP_NOT_FOUND,
                                 .max_time = 1000,
                                 .latest_ledger_close = 1005,
                                 .expiry_ledger = 120};
    /* The bug this replaces: "not found" from a replica at ledger 115
     * (lagging) and a latest ledger past max_time from another replica.
     * The envelope may be in ledgers 116..120: look again. */
    v.lookup_ledger = 115;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_LOOKUP);
    /* no Latest-Ledger header at all: never a proof */
    v.lookup_ledger = 0;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_LOOKUP);
    /* not found as of 120 or later: now the account's sequence must say
     * nothing with the envelope's sequence applied */
    v.lookup_ledger = 120;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_SEQUENCE);
    /* sequence unused, but read from a replica still at 118: ask again */
    v.seq = RI_SEQ_UNUSED;
    v.seq_ledger = 118;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_SEQUENCE);
    /* unused as of 121: no transaction with it applied up to there, none
     * can after 120: expired, whatever the history retention */
    v.seq_ledger = 121;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_EXPIRE);
    v.seq_ledger = 120;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_EXPIRE);

    /* sequence consumed by ledger 119 and the lookup replica (at 120) does
     * not know the transaction: beyond its history, or not ours. Wait. */
    v.seq = RI_SEQ_CONSUMED;
    v.seq_ledger = 119;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_UNRESOLVABLE);
    /* consumed as of 125, lookup only as of 120: the lookup may be behind */
    v.seq_ledger = 125;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_LOOKUP);
    /* found after all: confirm, whatever came before */
    v.lookup = RI_LOOKUP_SUCCESS;
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_CONFIRM);
    /* rejected on the only submission still needs no expiry proof */
    struct ri_envelope_view r = {.submit_attempts = 1,
                                 .rejected = true,
                                 .lookup = RI_LOOKUP_NOT_FOUND,
                                 .lookup_ledger = 10,
                                 .max_time = 1000,
                                 .latest_ledger_close = -1};
    ck_assert_int_eq(nova__ri_decide(&r), RI_ACT_RELEASE);
}
END_TEST

/* Answers about another transaction confirm nothing. */
START_TEST(tx_answers_must_be_ours)
{
    const char *hash = "3389e9f0f1a65f19736cacf544c2e825313e8447f569233bb8db39aa607c8889";
    const char *env = "AAAAAgAAAAB...";
    struct nova_stellar_tx_info tx = {.hash = hash, .envelope_xdr = env, .ledger = 5};
    ck_assert(nova__ri_tx_matches(&tx, hash, env));
    tx.hash = "3389E9F0F1A65F19736CACF544C2E825313E8447F569233BB8DB39AA607C8889";
    ck_assert(nova__ri_tx_matches(&tx, hash, env));
    tx.hash = "0389e9f0f1a65f19736cacf544c2e825313e8447f569233bb8db39aa607c8889";
    ck_assert(!nova__ri_tx_matches(&tx, hash, env));
    tx.hash = hash;
    tx.envelope_xdr = "AAAAAgAAAAC...";
    ck_assert(!nova__ri_tx_matches(&tx, hash, env));
    tx.envelope_xdr = "";
    ck_assert(!nova__ri_tx_matches(&tx, hash, env));
    tx.hash = "";
    tx.envelope_xdr = env;
    ck_assert(!nova__ri_tx_matches(&tx, hash, env));
    ck_assert(!nova__ri_tx_matches(NULL, hash, env));
}
END_TEST

/* The close time decide() compares with max_time now comes from the
 * host's latest_ledger() (closed_at), parsed by nova__stellar_parse_time. */
static int64_t close_time(const char *text)
{
    int64_t t = -1;
    return nova__stellar_parse_time(text, &t) == 0 ? t : -1;
}

START_TEST(rfc3339_close_times)
{
    ck_assert_int_eq(close_time("2026-11-26T07:40:15Z"), 1795678815);
    ck_assert_int_eq(close_time("2026-11-26T07:40:15.999Z"), 1795678815);
    ck_assert_int_eq(close_time("2026-11-26T07:40:15+00:00"), 1795678815);
    ck_assert_int_eq(close_time("1970-01-01T00:00:00Z"), 0);
    /* other offsets are converted (the ri_horizon parser refused them) */
    ck_assert_int_eq(close_time("2026-11-26T07:40:15+02:00"), 1795678815 - 7200);
    /* garbage is unknown (-1): never expire on a guess */
    ck_assert_int_eq(close_time("2026-11-26 07:40:15"), -1);
    ck_assert_int_eq(close_time("yesterday"), -1);
    ck_assert_int_eq(close_time(""), -1);
    ck_assert_int_eq(close_time(NULL), -1);
    /* and an unparsable root is no close time at all for decide() */
    struct ri_envelope_view v = {.submit_attempts = 2,
                                 .lookup = RI_LOOKUP_NOT_FOUND,
                                 .max_time = 1795678815,
                                 .latest_ledger_close = close_time("yesterday")};
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_LEDGER);
    v.latest_ledger_close = close_time("2026-11-26T07:40:15Z");
    ck_assert_int_eq(nova__ri_decide(&v), RI_ACT_RESUBMIT);
}
END_TEST

/* A negative pre-flight answer is acted on only when proven current. The
 * process that has just started and hears first from a replica behind the
 * recipient's creation must not take its word (seen in e2e_fleet). */
START_TEST(negative_preflight_needs_a_current_proof)
{
    struct ri ri = {0};
    const int64_t job_ms = 1795678815500; /* 07:40:15.500 */
    /* nothing heard yet: the first answer is the freshest known, and still
     * proves nothing */
    ck_assert(!ri_negative_proven(&ri, 995, job_ms));
    ck_assert_uint_eq(ri.horizon_ledger, 995);
    /* a close time from before the job (same second) is no proof */
    ri_note_close(&ri, 995, 1795678815);
    ck_assert(!ri_negative_proven(&ri, 995, job_ms));
    /* a ledger that closed after the job */
    ri_note_close(&ri, 1000, 1795678816);
    ck_assert_uint_eq(ri.clock_ledger, 1000);
    /* an older close time never replaces a newer one */
    ri_note_close(&ri, 999, 1795678810);
    ck_assert_uint_eq(ri.clock_ledger, 1000);
    ck_assert(ri_negative_proven(&ri, 1000, job_ms));
    ck_assert(ri_negative_proven(&ri, 1003, job_ms));
    /* the answer of a replica behind another: stale, whatever the clock */
    ck_assert(!ri_negative_proven(&ri, 1001, job_ms));
    /* no Latest-Ledger at all (0) is never proof */
    ck_assert(!ri_negative_proven(&ri, 0, job_ms));
    /* a job made after every close time known: wait for a newer one */
    ck_assert(!ri_negative_proven(&ri, 1003, 1795678817000));
    /* waits double, capped, and the tries outlast a ledger close (~5 s) */
    ck_assert_uint_eq(ri_preflight_wait_ms(1), 300);
    ck_assert_uint_eq(ri_preflight_wait_ms(2), 600);
    ck_assert_uint_eq(ri_preflight_wait_ms(4), 2400);
    ck_assert_uint_eq(ri_preflight_wait_ms(9), 2400);
    uint64_t total = 0;
    for (int t = 1; t < RI_PREFLIGHT_TRIES; t++)
        total += ri_preflight_wait_ms(t);
    ck_assert_uint_ge(total, 6000);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ri_logic");
    TCase *t = tcase_create("core");
    tcase_add_test(t, issue_valid_number_and_string);
    tcase_add_loop_test(t, issue_invalid_names_field, 0,
                        (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(t, distribute_parse);
    tcase_add_test(t, memos_fit);
    tcase_add_test(t, trustline_checks);
    tcase_add_test(t, batch_ready_rules);
    tcase_add_test(t, split_fates_and_labels);
    tcase_add_test(t, classify_submissions);
    tcase_add_test(t, classify_lookups);
    tcase_add_test(t, decide_envelope_fate);
    tcase_add_test(t, decide_expiry_needs_a_proof_across_replicas);
    tcase_add_test(t, tx_answers_must_be_ours);
    tcase_add_test(t, rfc3339_close_times);
    tcase_add_test(t, negative_preflight_needs_a_current_proof);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
