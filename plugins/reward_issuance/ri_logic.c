/* ri_logic - pure decisions of reward_issuance; see ri_logic.h. */
#include "ri_logic.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>
#include <nova/plugin.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) NOVA_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* A JSON integer that fits int64 exactly, or a string of digits. */
static int get_int(const cJSON *v, bool allow_string, int64_t *out)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d != floor(d) || d < -9007199254740992.0 || d > 9007199254740992.0)
            return -EINVAL;
        *out = (int64_t)d;
        return 0;
    }
    if (allow_string && cJSON_IsString(v) && v->valuestring[0] != '\0') {
        const char *s = v->valuestring;
        size_t n = strlen(s);
        if (n > 18 || strspn(s, "0123456789") != n)
            return -EINVAL;
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    return -EINVAL;
}

int nova__ri_amount(const struct nova_stellar_api *st, const cJSON *v, int64_t *out, char *err,
                    size_t errlen)
{
    char text[64];
    if (cJSON_IsString(v)) {
        if (strlen(v->valuestring) >= sizeof text)
            return fail(err, errlen, "amount: too long");
        snprintf(text, sizeof text, "%s", v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        /* JSON numbers arrive as doubles: take the shortest decimal with at
         * most 7 places that reads back as the same double (0.1 -> "0.1");
         * when none does, the number has more than 7 decimals. */
        double d = v->valuedouble;
        if (!isfinite(d) || d <= 0)
            return fail(err, errlen, "amount: must be a positive number");
        if (d > 1e15)
            return fail(err, errlen, "amount: too large");
        bool found = false;
        for (int places = 0; places <= 7 && !found; places++) {
            snprintf(text, sizeof text, "%.*f", places, d);
            found = strtod(text, NULL) == d;
        }
        if (!found)
            return fail(err, errlen, "amount: more than 7 decimals");
    } else {
        return fail(err, errlen, "amount: must be a number or a decimal string");
    }
    char why[160] = "";
    int64_t stroops = 0;
    if (st->amount_parse(text, 0, &stroops, why, sizeof why) != 0)
        return fail(err, errlen, "amount: %s", why);
    *out = stroops;
    return 0;
}

int nova__ri_parse_issue(const struct nova_stellar_api *st, const cJSON *data,
                         struct ri_issue_req *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(data))
        return fail(err, errlen, "job data: not a JSON object");

    const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, "issuanceId");
    if (get_int(v, true, &out->issuance_id) != 0 || out->issuance_id <= 0)
        return fail(err, errlen, "issuanceId: must be a positive integer");

    v = cJSON_GetObjectItemCaseSensitive(data, "idempotencyKey");
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return fail(err, errlen, "idempotencyKey: must be a non-empty string");
    if (strlen(v->valuestring) >= sizeof out->idempotency_key)
        return fail(err, errlen, "idempotencyKey: longer than %zu bytes",
                    sizeof out->idempotency_key - 1);
    snprintf(out->idempotency_key, sizeof out->idempotency_key, "%s", v->valuestring);

    v = cJSON_GetObjectItemCaseSensitive(data, "campaignId");
    if (get_int(v, true, &out->campaign_id) != 0 || out->campaign_id <= 0)
        return fail(err, errlen, "campaignId: must be a positive integer");

    /* userId is absent when the API had none; null is treated the same. */
    v = cJSON_GetObjectItemCaseSensitive(data, "userId");
    if (v != NULL && !cJSON_IsNull(v)) {
        if (get_int(v, true, &out->user_id) != 0 || out->user_id <= 0)
            return fail(err, errlen, "userId: must be a positive integer when present");
        out->has_user = true;
    }

    v = cJSON_GetObjectItemCaseSensitive(data, "walletAddress");
    if (!cJSON_IsString(v))
        return fail(err, errlen, "walletAddress: must be a string");
    char why[160] = "";
    if (strlen(v->valuestring) >= sizeof out->wallet ||
        st->strkey_validate(v->valuestring, NOVA_STRKEY_ACCOUNT, why, sizeof why) != 0)
        return fail(err, errlen, "walletAddress: not a valid Stellar account (G...)%s%s",
                    why[0] ? ": " : "", why);
    snprintf(out->wallet, sizeof out->wallet, "%s", v->valuestring);

    v = cJSON_GetObjectItemCaseSensitive(data, "amount");
    return nova__ri_amount(st, v, &out->amount, err, errlen);
}

int nova__ri_parse_distribute(const struct nova_stellar_api *st, const cJSON *data,
                              size_t max_recipients, struct ri_dist_req *out, char *err,
                              size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(data))
        return fail(err, errlen, "job data: not a JSON object");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, "campaignId");
    if (get_int(v, true, &out->campaign_id) != 0 || out->campaign_id <= 0)
        return fail(err, errlen, "campaignId: must be a positive integer");
    v = cJSON_GetObjectItemCaseSensitive(data, "merchantId");
    if (v != NULL && (get_int(v, true, &out->merchant_id) != 0 || out->merchant_id <= 0))
        return fail(err, errlen, "merchantId: must be a positive integer");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(data, "recipients");
    if (!cJSON_IsArray(list))
        return fail(err, errlen, "recipients: must be an array");
    int n = cJSON_GetArraySize(list);
    if (n <= 0)
        return fail(err, errlen, "recipients: empty");
    if ((size_t)n > max_recipients)
        return fail(err, errlen, "recipients: %d is more than the %zu allowed", n, max_recipients);
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(data, "defaultAmount");

    out->recipients = calloc((size_t)n, sizeof *out->recipients);
    if (out->recipients == NULL)
        return -ENOMEM;
    out->count = (size_t)n;
    size_t i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, list)
    {
        struct ri_recipient *rc = &out->recipients[i++];
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(r, "walletAddress");
        if (!cJSON_IsString(w) || strlen(w->valuestring) >= sizeof rc->wallet) {
            snprintf(rc->error, sizeof rc->error, "invalid_address");
            if (cJSON_IsString(w))
                snprintf(rc->wallet, sizeof rc->wallet, "%.56s", w->valuestring);
            continue;
        }
        snprintf(rc->wallet, sizeof rc->wallet, "%s", w->valuestring);
        if (st->strkey_validate(rc->wallet, NOVA_STRKEY_ACCOUNT, NULL, 0) != 0) {
            snprintf(rc->error, sizeof rc->error, "invalid_address");
            continue;
        }
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "amount");
        if (a == NULL || cJSON_IsNull(a))
            a = def;
        char why[RI_REASON_MAX] = "";
        if (nova__ri_amount(st, a, &rc->amount, why, sizeof why) != 0) {
            rc->amount = 0;
            snprintf(rc->error, sizeof rc->error, "invalid_amount: %s", why);
        }
    }
    return 0;
}

void nova__ri_dist_free(struct ri_dist_req *req)
{
    if (req == NULL)
        return;
    free(req->recipients);
    req->recipients = NULL;
    req->count = 0;
}

int nova__ri_memo_issuance(int64_t issuance_id, char out[NOVA_STELLAR_MEMO_TEXT_MAX + 1])
{
    if (issuance_id < 0)
        return -ERANGE;
    /* "nova:i" + at most 19 digits = 25 bytes <= 28. */
    snprintf(out, NOVA_STELLAR_MEMO_TEXT_MAX + 1, "nova:i%" PRId64, issuance_id);
    return 0;
}

int nova__ri_memo_batch(int64_t envelope_id, char out[NOVA_STELLAR_MEMO_TEXT_MAX + 1])
{
    if (envelope_id < 0)
        return -ERANGE;
    snprintf(out, NOVA_STELLAR_MEMO_TEXT_MAX + 1, "nova:b%" PRId64, envelope_id);
    return 0;
}

int nova__ri_check_trustline(const struct nova_stellar_account *account, const char *account_id,
                             const char *code, const char *issuer, int64_t amount, char *reason,
                             size_t reasonlen)
{
    if (account_id != NULL && strcmp(account_id, issuer) == 0)
        return 0;
    for (size_t i = 0; account != NULL && i < account->trustline_count; i++) {
        const struct nova_stellar_trustline *t = &account->trustlines[i];
        if (t->asset_code == NULL || t->asset_issuer == NULL || strcmp(t->asset_code, code) != 0 ||
            strcmp(t->asset_issuer, issuer) != 0)
            continue;
        if (!t->authorized)
            return fail(reason, reasonlen, "not_authorized");
        /* What is already promised to arrive (buying liabilities) counts
         * against the limit too. */
        int64_t headroom = t->limit - t->balance - t->buying_liabilities;
        if (headroom < amount)
            return fail(reason, reasonlen, "line_full");
        return 0;
    }
    return fail(reason, reasonlen, "no_trustline");
}

bool nova__ri_batch_ready(size_t pending, size_t batch_max, int64_t oldest_age_ms, int64_t wait_ms)
{
    if (pending == 0)
        return false;
    return pending >= batch_max || oldest_age_ms >= wait_ms;
}

enum ri_op_fate nova__ri_op_fate(const char *op_code)
{
    /* Only an operation that itself succeeded was merely rolled back by
     * its neighbours' failure; an unknown or missing code fails the payment
     * rather than paying into the same failure again. */
    return op_code != NULL && strcmp(op_code, "op_success") == 0 ? RI_OP_REQUEUE : RI_OP_FAIL;
}

const char *nova__ri_reason_label(const char *code)
{
    static const struct {
        const char *code, *label;
    } map[] = {
        {"op_no_trust", "no_trustline"},         {"no_trustline", "no_trustline"},
        {"op_underfunded", "underfunded"},       {"underfunded", "underfunded"},
        {"op_line_full", "line_full"},           {"line_full", "line_full"},
        {"op_no_destination", "no_destination"}, {"no_destination", "no_destination"},
        {"op_not_authorized", "not_authorized"}, {"not_authorized", "not_authorized"},
        {"op_src_no_trust", "source_no_trust"},  {"op_src_not_authorized", "source_no_trust"},
    };
    if (code == NULL)
        return "stellar";
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(code, map[i].code) == 0)
            return map[i].label;
    return "stellar";
}

enum ri_submit_class nova__ri_classify_submit(int error, long http_status)
{
    switch (error) {
    case 0:
        return RI_SUBMIT_SUCCESS;
    case -EREMOTEIO:
        /* a definite "failed": in a ledger as failed, or rejected before
         * one; the lookup tells which */
        return RI_SUBMIT_FAILED;
    case -EINVAL:
        /* Horizon's own 400 transaction_malformed / bad_request: never
         * forwarded. Without that 400 the call itself was refused and says
         * nothing about the envelope. */
        return http_status == 400 ? RI_SUBMIT_MALFORMED : RI_SUBMIT_UNKNOWN;
    default:
        /* -ETIMEDOUT (504, timeout, 5xx, a dropped connection, an
         * unreadable answer), -ECANCELED, -EAGAIN (429: not processed, but
         * looking the hash up first costs nothing) and anything else: the
         * outcome is unknown. */
        return RI_SUBMIT_UNKNOWN;
    }
}

bool nova__ri_submit_rejected(int error, long http_status)
{
    return error == -EREMOTEIO && http_status == 400;
}

bool nova__ri_tx_matches(const struct nova_stellar_tx_info *tx, const char *hash_hex,
                         const char *envelope_b64)
{
    if (tx == NULL || tx->hash == NULL || hash_hex == NULL || envelope_b64 == NULL)
        return false;
    if (strlen(tx->hash) != 64 || strcasecmp(tx->hash, hash_hex) != 0)
        return false;
    /* Horizon returns the envelope it applied; ours is canonical XDR, so
     * the same transaction has the same base64. */
    return tx->envelope_xdr != NULL && strcmp(tx->envelope_xdr, envelope_b64) == 0;
}

enum ri_lookup nova__ri_classify_lookup(int error, bool successful)
{
    if (error == 0)
        return successful ? RI_LOOKUP_SUCCESS : RI_LOOKUP_FAILED;
    /* Only Horizon's not_found problem is "not in a ledger"; a 404 from a
     * proxy is -EBADMSG in the host and tells nothing. */
    if (error == -ENOENT)
        return RI_LOOKUP_NOT_FOUND;
    return RI_LOOKUP_ERROR;
}

enum ri_action nova__ri_decide(const struct ri_envelope_view *v)
{
    switch (v->lookup) {
    case RI_LOOKUP_SUCCESS:
        return RI_ACT_CONFIRM;
    case RI_LOOKUP_FAILED:
        return RI_ACT_SPLIT;
    case RI_LOOKUP_NOT_FOUND:
        break;
    case RI_LOOKUP_NONE:
    case RI_LOOKUP_ERROR:
    default:
        return RI_ACT_LOOKUP;
    }
    /* Rejected before any ledger on its only submission: no copy of the
     * envelope exists anywhere, it can never apply. A rejection of a later
     * submission proves nothing: an earlier copy may be queued or applied
     * (that is why a resubmission can be refused as tx_bad_seq). */
    if (v->rejected && v->submit_attempts == 1)
        return RI_ACT_RELEASE;
    if (v->expiry_ledger == 0) {
        if (v->latest_ledger_close < 0)
            return RI_ACT_LEDGER;
        /* The newest ledger seen closed within max_time: still valid. (A
         * lagging replica may report an old ledger; that only delays.) */
        if (v->latest_ledger_close <= v->max_time)
            return RI_ACT_RESUBMIT;
        return RI_ACT_LEDGER; /* a close time without its ledger number: read again */
    }
    /* No ledger after expiry_ledger can include the envelope. A "not
     * found" covers only the ledgers its replica had ingested. */
    if (v->lookup_ledger < v->expiry_ledger)
        return RI_ACT_LOOKUP;
    switch (v->seq) {
    case RI_SEQ_UNUSED:
        /* Sequence S unused as of a ledger at or after expiry_ledger: no
         * transaction with S applied up to there, and ours cannot apply
         * later. This holds whatever Horizon's history retention is. */
        return v->seq_ledger >= v->expiry_ledger ? RI_ACT_EXPIRE : RI_ACT_SEQUENCE;
    case RI_SEQ_CONSUMED:
        /* Some transaction with S applied by seq_ledger. If the replica
         * that did not find ours had ingested that ledger too, it is not
         * ours in any history that replica keeps. */
        return v->lookup_ledger >= v->seq_ledger ? RI_ACT_UNRESOLVABLE : RI_ACT_LOOKUP;
    case RI_SEQ_UNKNOWN:
    default:
        return RI_ACT_SEQUENCE;
    }
}

const char *nova__ri_action_name(enum ri_action a)
{
    switch (a) {
    case RI_ACT_CONFIRM:
        return "confirm";
    case RI_ACT_SPLIT:
        return "split";
    case RI_ACT_RELEASE:
        return "release";
    case RI_ACT_EXPIRE:
        return "expire";
    case RI_ACT_RESUBMIT:
        return "resubmit";
    case RI_ACT_LOOKUP:
        return "lookup";
    case RI_ACT_LEDGER:
        return "ledger";
    case RI_ACT_SEQUENCE:
        return "sequence";
    case RI_ACT_UNRESOLVABLE:
        return "unresolvable";
    }
    return "?";
}
