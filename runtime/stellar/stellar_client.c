#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <sodium.h>
#include "http/http_client.h"
#include "common/log.h"
#include "common/metrics.h"
#include "stellar/stellar.h"
#include "stellar/stellar_amount.h"
#include "stellar/stellar_client.h"
#include "stellar/stellar_err.h"
#include "stellar/stellar_scval.h"
#include "stellar/stellar_strkey.h"
#include "stellar/stellar_tx.h"

#define PROBE_INTERVAL_MS  30000
#define MIN_RETRY_AFTER_MS 1000
#define EVENTS_MAX_BYTES   (16 * 1024 * 1024)
#define MAX_TRUSTLINES     1000 /* Horizon accounts hold far fewer subentries */
#define MAX_ENVELOPE_B64   (200 * 1024)

enum call_kind {
    CALL_ACCOUNT,
    CALL_SUBMIT,
    CALL_LOOKUP,
    CALL_ROOT,
    CALL_PROBE,
    CALL_HEALTH,
    CALL_RPC_LEDGER,
    CALL_EVENTS,
};

struct call {
    struct call *prev, *next;
    struct nova__stellar_client *c; /* NULL once detached */
    enum call_kind kind;
    bool detached; /* its callback already ran (client closed); only the request remains */
    uint64_t rpc_id;
    const char *rpc_method;
    union {
        nova_stellar_account_cb account;
        nova_stellar_tx_cb tx;
        nova_stellar_ledger_cb ledger;
        nova_stellar_rpc_health_cb health;
        nova_stellar_rpc_ledger_cb rpc_ledger;
        nova_stellar_events_cb events;
    } cb;
    void *arg;
    /* RPC calls: what sending the same request to the other URL needs */
    char *rpc_body;
    const void *tag;
    int64_t max_bytes;
    uint64_t events_flags;
    bool on_fallback; /* this attempt went to the fallback URL */
    bool second_try;  /* this attempt is the call's second */
};

struct nova__stellar_client {
    uv_loop_t *loop;
    struct nova__http_client *http;
    struct nova_stellar_network net;
    char *passphrase, *horizon_url, *rpc_url, *asset_code, *asset_issuer, *asset, *dist_account;
    char *rpc_fallback_url;          /* NULL without soroban_rpc_url_fallback */
    uint64_t rpc_primary_down_until; /* uv_now(): RPC calls try the fallback first until then */
    bool rpc_on_fallback;            /* logged the switch to the fallback */
    char *dist_secret;               /* S...; wiped before it is freed */
    int64_t read_timeout_ms, submit_timeout_ms;
    uv_timer_t timer; /* the probe; its close callback frees the client */
    uint64_t probe_interval_ms;
    bool probe_in_flight;
    bool ready;
    bool wrong_network;
    bool closing;
    struct call *calls;
    unsigned in_flight;
    uint64_t next_rpc_id;
    void (*done)(void *arg);
    void *done_arg;
    nova_metric *m_submissions, *m_duration;
};

/* ---- small helpers ------------------------------------------------------ */

static char *dup_or_null(const char *s, bool *oom)
{
    if (s == NULL || s[0] == '\0')
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}

/* A printable excerpt of a body for error messages. */
static void snippet(const char *body, size_t len, char *out, size_t outlen)
{
    size_t n = len < 60 ? len : 60, j = 0;
    for (size_t i = 0; i < n && j + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)body[i];
        out[j++] = (ch >= 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
    }
    out[j] = '\0';
    if (len > n && j + 4 < outlen)
        strcat(out, "...");
}

static const cJSON *member(const cJSON *o, const char *name)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
}

static int get_str(const cJSON *o, const char *name, bool required, const char *dflt,
                   const char **out, char *err, size_t errlen)
{
    const cJSON *v = member(o, name);
    if (v == NULL || cJSON_IsNull(v)) {
        if (required)
            return nova__stellar_fail(err, errlen, -EBADMSG, "\"%s\" is missing", name);
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"%s\" is not a string", name);
    *out = v->valuestring;
    return 0;
}

static int get_u32(const cJSON *o, const char *name, bool required, uint32_t *out, char *err,
                   size_t errlen)
{
    const cJSON *v = member(o, name);
    *out = 0;
    if (v == NULL || cJSON_IsNull(v)) {
        if (required)
            return nova__stellar_fail(err, errlen, -EBADMSG, "\"%s\" is missing", name);
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > 4294967295.0 || floor(v->valuedouble) != v->valuedouble)
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"%s\" is not an unsigned 32-bit integer",
                                  name);
    *out = (uint32_t)v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *o, const char *name, bool required, bool dflt, bool *out,
                    char *err, size_t errlen)
{
    const cJSON *v = member(o, name);
    if (v == NULL || cJSON_IsNull(v)) {
        if (required)
            return nova__stellar_fail(err, errlen, -EBADMSG, "\"%s\" is missing", name);
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"%s\" is not a boolean", name);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A decimal int64 written as a string ("sequence", "closeTime"). */
static int parse_i64(const char *s, int64_t *out)
{
    bool neg = false;
    uint64_t v = 0, max = INT64_MAX;
    if (*s == '-') {
        neg = true;
        s++;
        max = (uint64_t)INT64_MAX + 1;
    }
    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int get_i64_str(const cJSON *o, const char *name, bool required, int64_t *out, char *err,
                       size_t errlen)
{
    const char *s;
    int rc = get_str(o, name, required, NULL, &s, err, errlen);
    *out = 0;
    if (rc < 0 || s == NULL)
        return rc;
    if (parse_i64(s, out) < 0)
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"%s\" is not a 64-bit integer", name);
    return 0;
}

static int get_amount(const cJSON *o, const char *name, bool required, int64_t *out, char *err,
                      size_t errlen)
{
    const char *s;
    char e[160];
    int rc = get_str(o, name, required, NULL, &s, err, errlen);
    *out = 0;
    if (rc < 0 || s == NULL)
        return rc;
    if (nova__amount_parse(s, NOVA_AMOUNT_ALLOW_ZERO, out, e, sizeof(e)) < 0)
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"%s\": %s", name, e);
    return 0;
}

int nova__stellar_parse_time(const char *text, int64_t *out)
{
    int y, mo, d, h, mi, s, n = 0;
    if (text == NULL ||
        sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 || n != 19)
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || y < 1970)
        return -EINVAL;
    const char *p = text + n;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5 || oh > 23 || om > 59)
            return -EINVAL;
        offset = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p != '\0')
        return -EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *out = (int64_t)t - offset;
    return 0;
}

/* ---- parsers ------------------------------------------------------------ */

int nova__stellar_parse_account(const cJSON *json, struct nova_stellar_account *out,
                                struct nova_stellar_trustline *tl, size_t tl_max, char *err,
                                size_t errlen)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(json))
        return nova__stellar_fail(err, errlen, -EBADMSG, "the account is not a JSON object");
    if ((rc = get_str(json, "account_id", false, NULL, &out->account_id, err, errlen)) < 0)
        return rc;
    if (out->account_id == NULL &&
        (rc = get_str(json, "id", true, NULL, &out->account_id, err, errlen)) < 0)
        return rc;
    if ((rc = get_i64_str(json, "sequence", true, &out->sequence, err, errlen)) < 0)
        return rc;
    if ((rc = get_u32(json, "subentry_count", false, &out->subentry_count, err, errlen)) < 0)
        return rc;
    const cJSON *balances = member(json, "balances");
    if (!cJSON_IsArray(balances))
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"balances\" is %s",
                                  balances == NULL ? "missing" : "not an array");
    bool native_seen = false;
    size_t i = 0, n = 0;
    const cJSON *b;
    char e[200];
    cJSON_ArrayForEach(b, balances)
    {
        const char *type;
        i++;
        if ((rc = get_str(b, "asset_type", true, NULL, &type, e, sizeof(e))) < 0)
            return nova__stellar_fail(err, errlen, rc, "balances[%zu]: %s", i - 1, e);
        if (strcmp(type, "native") == 0) {
            if ((rc = get_amount(b, "balance", true, &out->native_balance, e, sizeof(e))) < 0)
                return nova__stellar_fail(err, errlen, rc, "balances[%zu]: %s", i - 1, e);
            native_seen = true;
            continue;
        }
        if (strcmp(type, "credit_alphanum4") != 0 && strcmp(type, "credit_alphanum12") != 0)
            continue; /* liquidity pool shares */
        if (n == tl_max)
            return nova__stellar_fail(err, errlen, -EBADMSG, "more than %zu trustlines", tl_max);
        struct nova_stellar_trustline *t = &tl[n];
        memset(t, 0, sizeof(*t));
        if ((rc = get_str(b, "asset_code", true, NULL, &t->asset_code, e, sizeof(e))) < 0 ||
            (rc = get_str(b, "asset_issuer", true, NULL, &t->asset_issuer, e, sizeof(e))) < 0 ||
            (rc = get_amount(b, "balance", true, &t->balance, e, sizeof(e))) < 0 ||
            (rc = get_amount(b, "limit", true, &t->limit, e, sizeof(e))) < 0 ||
            (rc = get_amount(b, "buying_liabilities", false, &t->buying_liabilities, e,
                             sizeof(e))) < 0 ||
            (rc = get_amount(b, "selling_liabilities", false, &t->selling_liabilities, e,
                             sizeof(e))) < 0 ||
            (rc = get_bool(b, "is_authorized", false, true, &t->authorized, e, sizeof(e))) < 0)
            return nova__stellar_fail(err, errlen, rc, "balances[%zu]: %s", i - 1, e);
        n++;
    }
    if (!native_seen)
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"balances\" has no native entry");
    out->trustline_count = n;
    out->trustlines = tl;
    return 0;
}

static void holder_reset(struct nova__stellar_tx_holder *h)
{
    memset(&h->info, 0, sizeof(h->info));
    h->info.hash = "";
    h->info.result_xdr = "";
    h->info.envelope_xdr = "";
    h->info.created_at = "";
    h->info.fee_charged = -1;
    h->info.op_codes = h->ops;
}

/* Decodes result_xdr when present; codes come from it unless already set. */
static void holder_decode_result(struct nova__stellar_tx_holder *h)
{
    if (h->info.result_xdr[0] == '\0' ||
        nova__stellar_result_decode_b64(h->info.result_xdr, &h->result, NULL, 0) < 0)
        return;
    h->info.result = &h->result;
    if (h->info.fee_charged < 0)
        h->info.fee_charged = h->result.fee_charged;
    if (h->info.tx_code == NULL) {
        h->info.tx_code = h->result.name;
        if (h->result.has_inner)
            h->info.inner_code = h->result.inner_name;
        for (size_t i = 0; i < h->result.op_count; i++)
            h->ops[i] = h->result.ops[i].name;
        h->info.op_count = h->result.op_count;
    }
}

int nova__stellar_parse_tx(const cJSON *json, struct nova__stellar_tx_holder *out, char *err,
                           size_t errlen)
{
    int rc;
    holder_reset(out);
    if (!cJSON_IsObject(json))
        return nova__stellar_fail(err, errlen, -EBADMSG, "the transaction is not a JSON object");
    struct nova_stellar_tx_info *t = &out->info;
    if ((rc = get_str(json, "hash", true, NULL, &t->hash, err, errlen)) < 0)
        return rc;
    uint8_t raw[32];
    if (nova__hex_decode(t->hash, raw, 32) < 0)
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"hash\" is not 64 hex digits");
    if ((rc = get_u32(json, "ledger", true, &t->ledger, err, errlen)) < 0)
        return rc;
    if (t->ledger == 0)
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"ledger\" is 0");
    if ((rc = get_bool(json, "successful", true, false, &t->successful, err, errlen)) < 0)
        return rc;
    if ((rc = get_str(json, "result_xdr", false, "", &t->result_xdr, err, errlen)) < 0 ||
        (rc = get_str(json, "envelope_xdr", false, "", &t->envelope_xdr, err, errlen)) < 0 ||
        (rc = get_str(json, "created_at", false, "", &t->created_at, err, errlen)) < 0)
        return rc;
    const char *fee;
    if ((rc = get_str(json, "fee_charged", false, NULL, &fee, err, errlen)) < 0)
        return rc;
    if (fee != NULL && parse_i64(fee, &t->fee_charged) < 0)
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"fee_charged\" is not an integer");
    holder_decode_result(out);
    return 0;
}

int nova__stellar_parse_tx_failed(const cJSON *json, struct nova__stellar_tx_holder *out, char *err,
                                  size_t errlen)
{
    int rc;
    holder_reset(out);
    const cJSON *extras = member(json, "extras");
    if (!cJSON_IsObject(extras))
        return nova__stellar_fail(err, errlen, -EBADMSG, "transaction_failed without \"extras\"");
    const cJSON *codes = member(extras, "result_codes");
    if (!cJSON_IsObject(codes))
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"extras.result_codes\" is %s",
                                  codes == NULL ? "missing" : "not an object");
    struct nova_stellar_tx_info *t = &out->info;
    if ((rc = get_str(codes, "transaction", true, NULL, &t->tx_code, err, errlen)) < 0 ||
        (rc = get_str(codes, "inner_transaction", false, NULL, &t->inner_code, err, errlen)) < 0) {
        nova__stellar_err_prefix(err, errlen, "extras.result_codes");
        return rc;
    }
    const cJSON *ops = member(codes, "operations");
    if (ops != NULL && !cJSON_IsNull(ops)) {
        if (!cJSON_IsArray(ops))
            return nova__stellar_fail(err, errlen, -EBADMSG,
                                      "\"extras.result_codes.operations\" is not an array");
        const cJSON *op;
        cJSON_ArrayForEach(op, ops)
        {
            if (t->op_count == NOVA_STELLAR_MAX_OPS)
                return nova__stellar_fail(err, errlen, -EBADMSG,
                                          "more than 100 operation result codes");
            if (!cJSON_IsString(op))
                return nova__stellar_fail(err, errlen, -EBADMSG,
                                          "operation result code %zu is not a string",
                                          t->op_count + 1);
            out->ops[t->op_count++] = op->valuestring;
        }
    }
    if ((rc = get_str(extras, "result_xdr", false, "", &t->result_xdr, err, errlen)) < 0 ||
        (rc = get_str(extras, "envelope_xdr", false, "", &t->envelope_xdr, err, errlen)) < 0) {
        nova__stellar_err_prefix(err, errlen, "extras");
        return rc;
    }
    holder_decode_result(out);
    t->successful = false;
    return 0;
}

int nova__stellar_parse_root(const cJSON *json, struct nova_stellar_ledger *out, char *err,
                             size_t errlen)
{
    int rc;
    const char *closed;
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(json))
        return nova__stellar_fail(err, errlen, -EBADMSG, "the root resource is not a JSON object");
    if ((rc = get_u32(json, "history_latest_ledger", true, &out->sequence, err, errlen)) < 0 ||
        (rc = get_str(json, "history_latest_ledger_closed_at", true, NULL, &closed, err, errlen)) <
            0 ||
        (rc = get_u32(json, "history_elder_ledger", false, &out->elder_ledger, err, errlen)) < 0 ||
        (rc = get_u32(json, "core_latest_ledger", false, &out->core_ledger, err, errlen)) < 0 ||
        (rc = get_str(json, "network_passphrase", true, NULL, &out->network_passphrase, err,
                      errlen)) < 0)
        return rc;
    if (nova__stellar_parse_time(closed, &out->closed_at) < 0)
        return nova__stellar_fail(err, errlen, -EBADMSG,
                                  "\"history_latest_ledger_closed_at\" is not an RFC 3339 time");
    return 0;
}

void nova__stellar_events_free(struct nova__stellar_events_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ndecoded; i++)
        cJSON_Delete(s->decoded[i]);
    free(s->decoded);
    free(s->events);
    free(s->topic_xdr);
    memset(s, 0, sizeof(*s));
}

/* keep: NOVA_STELLAR_EVENTS_KEEP_UNDECODABLE - an undecodable topic or value
 * leaves topics and value NULL instead of failing the event. */
static int parse_event(const cJSON *ev, struct nova_stellar_event *out, const char **topic_slots,
                       struct nova__stellar_events_store *s, bool keep, char *err, size_t errlen)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(ev))
        return nova__stellar_fail(err, errlen, -EBADMSG, "not a JSON object");
    if ((rc = get_str(ev, "id", true, NULL, &out->id, err, errlen)) < 0 ||
        (rc = get_str(ev, "pagingToken", false, out->id, &out->paging_token, err, errlen)) < 0 ||
        (rc = get_str(ev, "type", true, NULL, &out->type, err, errlen)) < 0 ||
        (rc = get_u32(ev, "ledger", true, &out->ledger, err, errlen)) < 0 ||
        (rc = get_str(ev, "ledgerClosedAt", false, "", &out->ledger_closed_at, err, errlen)) < 0 ||
        (rc = get_str(ev, "contractId", false, "", &out->contract_id, err, errlen)) < 0 ||
        (rc = get_str(ev, "txHash", false, "", &out->tx_hash, err, errlen)) < 0 ||
        (rc = get_u32(ev, "transactionIndex", false, &out->transaction_index, err, errlen)) < 0 ||
        (rc = get_u32(ev, "operationIndex", false, &out->operation_index, err, errlen)) < 0 ||
        (rc = get_bool(ev, "inSuccessfulContractCall", false, true,
                       &out->in_successful_contract_call, err, errlen)) < 0 ||
        (rc = get_str(ev, "value", true, NULL, &out->value_xdr, err, errlen)) < 0)
        return rc;
    if (out->contract_id[0] != '\0' &&
        nova__strkey_decode(out->contract_id, NOVA_STRKEY_CONTRACT, NULL,
                            (uint8_t[NOVA__STRKEY_PAYLOAD_MAX]){0}, NOVA__STRKEY_PAYLOAD_MAX, NULL,
                            NULL, 0) < 0)
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"contractId\" is not a C... strkey");
    char e[200];
    bool undecodable = false;
    cJSON *topics = cJSON_CreateArray();
    if (topics == NULL)
        return nova__stellar_fail(err, errlen, -ENOMEM, "out of memory");
    s->decoded[s->ndecoded++] = topics;
    out->topics = topics;
    out->topic_xdr = topic_slots;
    const cJSON *t, *arr = member(ev, "topic");
    if (arr != NULL && !cJSON_IsNull(arr)) {
        if (!cJSON_IsArray(arr))
            return nova__stellar_fail(err, errlen, -EBADMSG, "\"topic\" is not an array");
        cJSON_ArrayForEach(t, arr)
        {
            cJSON *v = NULL;
            if (!cJSON_IsString(t))
                return nova__stellar_fail(err, errlen, -EBADMSG, "topic %zu is not a string",
                                          out->topic_count + 1);
            topic_slots[out->topic_count++] = t->valuestring;
            if (undecodable)
                continue;
            if ((rc = nova__scval_decode_b64(t->valuestring, &v, e, sizeof(e))) < 0) {
                if (rc == -ENOMEM || !keep)
                    return nova__stellar_fail(err, errlen, rc == -ENOMEM ? rc : -EBADMSG,
                                              "topic %zu: %s", out->topic_count, e);
                undecodable = true;
                continue;
            }
            cJSON_AddItemToArray(topics, v);
        }
    }
    cJSON *value = NULL;
    if (!undecodable && (rc = nova__scval_decode_b64(out->value_xdr, &value, e, sizeof(e))) < 0) {
        if (rc == -ENOMEM || !keep)
            return nova__stellar_fail(err, errlen, rc == -ENOMEM ? rc : -EBADMSG, "value: %s", e);
        undecodable = true;
    }
    if (undecodable) {
        /* the topics array stays in s->decoded, freed with the page */
        out->topics = NULL;
        out->value = NULL;
        return 0;
    }
    s->decoded[s->ndecoded++] = value;
    out->value = value;
    return 0;
}

int nova__stellar_parse_events(const cJSON *result, struct nova__stellar_events_store *s, char *err,
                               size_t errlen)
{
    return nova__stellar_parse_events_flags(result, 0, s, err, errlen);
}

int nova__stellar_parse_events_flags(const cJSON *result, uint64_t flags,
                                     struct nova__stellar_events_store *s, char *err, size_t errlen)
{
    int rc;
    bool keep = (flags & NOVA_STELLAR_EVENTS_KEEP_UNDECODABLE) != 0;
    memset(s, 0, sizeof(*s));
    struct nova_stellar_events_page *p = &s->page;
    if ((rc = get_str(result, "cursor", false, NULL, &p->cursor, err, errlen)) < 0 ||
        (rc = get_u32(result, "latestLedger", true, &p->latest_ledger, err, errlen)) < 0 ||
        (rc = get_u32(result, "oldestLedger", false, &p->oldest_ledger, err, errlen)) < 0)
        return rc;
    const cJSON *events = member(result, "events");
    if (events == NULL || cJSON_IsNull(events))
        return 0; /* an empty page */
    if (!cJSON_IsArray(events))
        return nova__stellar_fail(err, errlen, -EBADMSG, "\"events\" is not an array");
    size_t n = (size_t)cJSON_GetArraySize(events), ntopics = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, events)
    {
        const cJSON *t = member(ev, "topic");
        if (cJSON_IsArray(t))
            ntopics += (size_t)cJSON_GetArraySize(t);
    }
    if (n == 0)
        return 0;
    s->events = calloc(n, sizeof(*s->events));
    s->decoded = calloc(2 * n, sizeof(*s->decoded));
    s->topic_xdr = calloc(ntopics + 1, sizeof(*s->topic_xdr));
    if (s->events == NULL || s->decoded == NULL || s->topic_xdr == NULL) {
        nova__stellar_events_free(s);
        return nova__stellar_fail(err, errlen, -ENOMEM, "out of memory");
    }
    size_t i = 0, used = 0;
    char e[300];
    cJSON_ArrayForEach(ev, events)
    {
        if ((rc = parse_event(ev, &s->events[i], s->topic_xdr + used, s, keep, e, sizeof(e))) < 0) {
            const char *id = NULL;
            get_str(ev, "id", false, NULL, &id, NULL, 0);
            nova__stellar_events_free(s);
            return nova__stellar_fail(err, errlen, rc, "event %zu%s%s%s: %s", i + 1,
                                      id ? " (id " : "", id ? id : "", id ? ")" : "", e);
        }
        used += s->events[i].topic_count;
        i++;
    }
    p->events = s->events;
    p->event_count = n;
    return 0;
}

/* ---- getEvents parameters ----------------------------------------------- */

static int topic_segment_ok(const char *seg, bool last, char *err, size_t errlen)
{
    if (strcmp(seg, "*") == 0)
        return 0;
    if (strcmp(seg, "**") == 0)
        return last ? 0
                    : nova__stellar_fail(err, errlen, -EINVAL,
                                         "\"**\" is only allowed as the last segment");
    cJSON *v = NULL;
    char e[200];
    if (nova__scval_decode_b64(seg, &v, e, sizeof(e)) < 0)
        return nova__stellar_fail(err, errlen, -EINVAL, "not \"*\", \"**\" or a base64 ScVal (%s)",
                                  e);
    cJSON_Delete(v);
    return 0;
}

static int add_filter(cJSON *filters, const struct nova_stellar_event_filter *f, char *err,
                      size_t errlen)
{
    char e[300];
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(filters, o))
        return nova__stellar_fail(err, errlen, -ENOMEM, "out of memory");
    if (f->type != NULL) {
        if (f->type[0] == '\0')
            return nova__stellar_fail(err, errlen, -EINVAL, "type is empty (NULL means any)");
        cJSON_AddStringToObject(o, "type", f->type);
    }
    if (f->contract_ids[0] != NULL) {
        cJSON *ids = cJSON_AddArrayToObject(o, "contractIds");
        for (size_t i = 0; i < NOVA_STELLAR_MAX_FILTER_CONTRACTS && f->contract_ids[i]; i++) {
            if (nova__strkey_decode(f->contract_ids[i], NOVA_STRKEY_CONTRACT, NULL,
                                    (uint8_t[NOVA__STRKEY_PAYLOAD_MAX]){0},
                                    NOVA__STRKEY_PAYLOAD_MAX, NULL, e, sizeof(e)) < 0)
                return nova__stellar_fail(err, errlen, -EINVAL, "contract id %zu: %s", i + 1, e);
            cJSON_AddItemToArray(ids, cJSON_CreateString(f->contract_ids[i]));
        }
    }
    cJSON *topics = NULL;
    for (size_t i = 0; i < NOVA_STELLAR_MAX_TOPIC_FILTERS; i++) {
        if (f->topics[i][0] == NULL)
            continue;
        if (topics == NULL)
            topics = cJSON_AddArrayToObject(o, "topics");
        cJSON *row = cJSON_CreateArray();
        cJSON_AddItemToArray(topics, row);
        for (size_t j = 0; j < NOVA_STELLAR_MAX_TOPIC_SEGMENTS && f->topics[i][j]; j++) {
            bool last = j + 1 == NOVA_STELLAR_MAX_TOPIC_SEGMENTS || f->topics[i][j + 1] == NULL;
            if (topic_segment_ok(f->topics[i][j], last, e, sizeof(e)) < 0)
                return nova__stellar_fail(err, errlen, -EINVAL, "topic filter %zu segment %zu: %s",
                                          i + 1, j + 1, e);
            cJSON_AddItemToArray(row, cJSON_CreateString(f->topics[i][j]));
        }
    }
    return 0;
}

int nova__stellar_events_params(const struct nova_stellar_events_query *q, cJSON **out, char *err,
                                size_t errlen)
{
    char e[300];
    *out = NULL;
    if (q == NULL || q->struct_size < offsetof(struct nova_stellar_events_query, flags))
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "events query struct_size is wrong (rebuild the plugin)");
    bool has_cursor = q->cursor != NULL && q->cursor[0] != '\0';
    if (has_cursor && (q->start_ledger != 0 || q->end_ledger != 0))
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "a cursor excludes start_ledger and end_ledger");
    if (!has_cursor && q->start_ledger == 0)
        return nova__stellar_fail(err, errlen, -EINVAL, "start_ledger or cursor is required");
    if (q->end_ledger != 0 && q->end_ledger <= q->start_ledger)
        return nova__stellar_fail(err, errlen, -EINVAL, "end_ledger must be after start_ledger");
    if (q->filter_count > NOVA_STELLAR_MAX_EVENT_FILTERS || (q->filter_count && !q->filters))
        return nova__stellar_fail(err, errlen, -EINVAL, "filter_count is %zu, at most 5",
                                  q->filter_count);
    if (q->limit > NOVA_STELLAR_MAX_EVENTS_LIMIT)
        return nova__stellar_fail(err, errlen, -EINVAL, "limit %" PRIu32 " is above 10000",
                                  q->limit);
    cJSON *p = cJSON_CreateObject();
    if (p == NULL)
        return nova__stellar_fail(err, errlen, -ENOMEM, "out of memory");
    if (!has_cursor)
        cJSON_AddNumberToObject(p, "startLedger", q->start_ledger);
    if (q->end_ledger != 0)
        cJSON_AddNumberToObject(p, "endLedger", q->end_ledger);
    cJSON *filters = cJSON_AddArrayToObject(p, "filters");
    for (size_t i = 0; i < q->filter_count; i++) {
        int rc = add_filter(filters, &q->filters[i], e, sizeof(e));
        if (rc < 0) {
            cJSON_Delete(p);
            return nova__stellar_fail(err, errlen, rc, "filter %zu: %s", i + 1, e);
        }
    }
    cJSON *pg = cJSON_AddObjectToObject(p, "pagination");
    if (has_cursor)
        cJSON_AddStringToObject(pg, "cursor", q->cursor);
    if (q->limit != 0)
        cJSON_AddNumberToObject(pg, "limit", q->limit);
    *out = p;
    return 0;
}

/* ---- the client --------------------------------------------------------- */

static void metrics_init(struct nova__stellar_client *c)
{
    static const char *const result_labels[] = {"result", NULL};
    static const char *const api_labels[] = {"api", NULL};
    c->m_submissions =
        nova__metric_new(NOVA_METRIC_COUNTER, "nova_worker_stellar_submissions_total",
                         "Transaction submissions to Horizon by outcome", result_labels, NULL, 0);
    c->m_duration =
        nova__metric_new(NOVA_METRIC_HISTOGRAM, "nova_worker_stellar_request_duration_seconds",
                         "Duration of Horizon and Stellar RPC requests", api_labels, NULL, 0);
}

static void client_free(struct nova__stellar_client *c)
{
    if (c->dist_secret != NULL) {
        sodium_memzero(c->dist_secret, strlen(c->dist_secret));
        free(c->dist_secret);
    }
    free(c->passphrase);
    free(c->horizon_url);
    free(c->rpc_url);
    free(c->rpc_fallback_url);
    free(c->asset_code);
    free(c->asset_issuer);
    free(c->asset);
    free(c->dist_account);
    free(c);
}

static char *strip_slashes(char *url)
{
    if (url != NULL) {
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
            url[--n] = '\0';
    }
    return url;
}

int nova__stellar_client_new(uv_loop_t *loop, struct nova__http_client *http,
                             const struct nova__stellar_config *cfg,
                             struct nova__stellar_client **out)
{
    char e[200];
    bool oom = false;
    *out = NULL;
    if (loop == NULL || http == NULL || cfg == NULL)
        return -EINVAL;
    if (cfg->horizon_url == NULL || cfg->horizon_url[0] == '\0') {
        nova__log_error("[stellar] horizon_url is not set");
        return -EINVAL;
    }
    if (cfg->network_passphrase == NULL || cfg->network_passphrase[0] == '\0') {
        nova__log_error("[stellar] the network passphrase is empty");
        return -EINVAL;
    }
    if (cfg->asset_issuer != NULL && cfg->asset_issuer[0] != '\0' &&
        nova__strkey_decode32(cfg->asset_issuer, NOVA_STRKEY_ACCOUNT, (uint8_t[32]){0}, e,
                              sizeof(e)) < 0) {
        nova__log_error("[stellar] asset_issuer: %s", e);
        return -EINVAL;
    }
    struct nova__stellar_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->loop = loop;
    c->http = http;
    c->passphrase = dup_or_null(cfg->network_passphrase, &oom);
    c->horizon_url = strip_slashes(dup_or_null(cfg->horizon_url, &oom));
    c->rpc_url = dup_or_null(cfg->soroban_rpc_url, &oom);
    c->rpc_fallback_url = dup_or_null(cfg->soroban_rpc_url_fallback, &oom);
    c->asset_code = dup_or_null(cfg->asset_code, &oom);
    c->asset_issuer = dup_or_null(cfg->asset_issuer, &oom);
    if (c->asset_code != NULL && c->asset_issuer != NULL) {
        size_t n = strlen(c->asset_code) + strlen(c->asset_issuer) + 2;
        if ((c->asset = malloc(n)) == NULL)
            oom = true;
        else
            snprintf(c->asset, n, "%s:%s", c->asset_code, c->asset_issuer);
    }
    if (cfg->distribution_secret != NULL && cfg->distribution_secret[0] != '\0') {
        char account[NOVA_STRKEY_MAX];
        if (nova__stellar_seed_to_account(cfg->distribution_secret, account, e, sizeof(e)) < 0) {
            nova__log_error("[stellar] distribution_secret: %s", e);
            client_free(c);
            return -EINVAL;
        }
        c->dist_secret = dup_or_null(cfg->distribution_secret, &oom);
        c->dist_account = dup_or_null(account, &oom);
    }
    if (oom) {
        client_free(c);
        return -ENOMEM;
    }
    c->net.passphrase = c->passphrase;
    c->net.horizon_url = c->horizon_url;
    c->net.rpc_url = c->rpc_url;
    c->net.asset_code = c->asset_code;
    c->net.asset_issuer = c->asset_issuer;
    c->net.asset = c->asset;
    c->net.distribution_account = c->dist_account;
    c->net.base_fee = cfg->base_fee > 0 ? cfg->base_fee : 100;
    c->net.tx_timeout_ms = cfg->tx_timeout_ms > 0 ? cfg->tx_timeout_ms : 30000;
    c->submit_timeout_ms = NOVA__STELLAR_SUBMIT_TIMEOUT_MS;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    metrics_init(c);
    *out = c;
    return 0;
}

static void on_client_closed(uv_handle_t *handle)
{
    struct nova__stellar_client *c = handle->data;
    void (*done)(void *) = c->done;
    void *arg = c->done_arg;
    client_free(c);
    if (done != NULL)
        done(arg);
}

static void call_unlink(struct nova__stellar_client *c, struct call *k)
{
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        c->calls = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    c->in_flight--;
}

static void deliver_cancelled(struct call *k, const char *message);

void nova__stellar_client_close(struct nova__stellar_client *c, void (*done)(void *arg), void *arg)
{
    if (c == NULL || c->closing)
        return;
    c->closing = true;
    c->done = done;
    c->done_arg = arg;
    uv_timer_stop(&c->timer);
    /* The runtime's own calls are tagged with the client. */
    nova__http_cancel_tag(c->http, c);
    /* Plugin calls still running (their host should have cancelled them
     * already): answer them now; their requests end later on their own. */
    struct call *k;
    while ((k = c->calls) != NULL) {
        call_unlink(c, k);
        k->detached = true;
        k->c = NULL;
        deliver_cancelled(k, "cancelled: the Stellar client is closing");
    }
    uv_close((uv_handle_t *)&c->timer, on_client_closed);
}

bool nova__stellar_client_ready(const struct nova__stellar_client *c)
{
    return c != NULL && c->ready && !c->wrong_network;
}

void nova__stellar_client_set_timeouts(struct nova__stellar_client *c, int64_t read_ms,
                                       int64_t submit_ms)
{
    c->read_timeout_ms = read_ms > 0 ? read_ms : 0;
    c->submit_timeout_ms = submit_ms > 0 ? submit_ms : NOVA__STELLAR_SUBMIT_TIMEOUT_MS;
}

const struct nova_stellar_network *
nova__stellar_client_network(const struct nova__stellar_client *c)
{
    return c != NULL ? &c->net : NULL;
}

unsigned nova__stellar_client_in_flight(const struct nova__stellar_client *c)
{
    return c->in_flight;
}

int nova__stellar_client_build_payment(const struct nova__stellar_client *c,
                                       const struct nova_stellar_payment_tx *tx,
                                       struct nova_stellar_signed_tx *out, char *err, size_t errlen)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (c == NULL)
        return nova__stellar_fail(err, errlen, -ENOTSUP, "no [stellar] client");
    if (c->dist_secret == NULL)
        return nova__stellar_fail(err, errlen, -ENOKEY,
                                  "[stellar] distribution_secret is not configured");
    if (tx == NULL || tx->struct_size < sizeof(*tx))
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "payment request struct_size is wrong (rebuild the plugin)");
    if (tx->signer_count > NOVA_STELLAR_MAX_SIGNATURES - 1 ||
        (tx->signer_count > 0 && tx->signer_secrets == NULL))
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "signer_count is %zu, at most 19 besides the distribution key",
                                  tx->signer_count);
    const char *signers[NOVA_STELLAR_MAX_SIGNATURES];
    signers[0] = c->dist_secret;
    for (size_t i = 0; i < tx->signer_count; i++)
        signers[i + 1] = tx->signer_secrets[i];
    struct nova_stellar_payment_tx copy = *tx;
    copy.struct_size = sizeof(copy);
    copy.signer_secrets = signers;
    copy.signer_count = tx->signer_count + 1;
    if (copy.source_account == NULL)
        copy.source_account = c->dist_account;
    if (copy.network_passphrase == NULL)
        copy.network_passphrase = c->passphrase;
    int rc = nova__stellar_build_payment(&copy, out, err, errlen);
    /* Signer numbers in messages count the distribution key as signer 1. */
    return rc;
}

/* ---- requests ----------------------------------------------------------- */

static void on_http(void *arg, const struct nova_http_response *res);

static struct call *call_new(struct nova__stellar_client *c, enum call_kind kind, void *arg)
{
    struct call *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->c = c;
    k->kind = kind;
    k->arg = arg;
    return k;
}

static void call_free(struct call *k)
{
    if (k != NULL)
        free(k->rpc_body);
    free(k);
}

/* Sends the request; on failure k is freed and the error returned. */
static int call_start(struct nova__stellar_client *c, struct call *k, const void *tag,
                      const struct nova_http_request *req)
{
    int rc = nova__http_request_tagged(c->http, req, on_http, k, tag != NULL ? tag : c);
    if (rc < 0) {
        call_free(k);
        return rc;
    }
    k->next = c->calls;
    if (k->next != NULL)
        k->next->prev = k;
    c->calls = k;
    c->in_flight++;
    return 0;
}

static int horizon_get(struct nova__stellar_client *c, struct call *k, const void *tag,
                       const char *path)
{
    static const char *const headers[] = {"Accept: application/json", NULL};
    size_t n = strlen(c->horizon_url) + strlen(path) + 1;
    char *url = malloc(n);
    if (url == NULL) {
        free(k);
        return -ENOMEM;
    }
    snprintf(url, n, "%s%s", c->horizon_url, path);
    struct nova_http_request req = {
        .struct_size = sizeof(req),
        .method = "GET",
        .url = url,
        .headers = headers,
        .timeout_ms = c->read_timeout_ms,
    };
    int rc = call_start(c, k, tag, &req);
    free(url);
    return rc;
}

static int check_open(struct nova__stellar_client *c, const void *cb, char *err, size_t errlen)
{
    if (c == NULL)
        return nova__stellar_fail(err, errlen, -ENOTSUP, "no [stellar] client");
    if (c->closing)
        return nova__stellar_fail(err, errlen, -ECANCELED, "the Stellar client is closing");
    if (cb == NULL)
        return nova__stellar_fail(err, errlen, -EINVAL, "no callback");
    return 0;
}

int nova__stellar_load_account(struct nova__stellar_client *c, const void *tag,
                               const char *account_id, nova_stellar_account_cb cb, void *arg,
                               char *err, size_t errlen)
{
    char e[200], path[128];
    int rc = check_open(c, (const void *)cb, err, errlen);
    if (rc < 0)
        return rc;
    if (nova__strkey_decode32(account_id, NOVA_STRKEY_ACCOUNT, (uint8_t[32]){0}, e, sizeof(e)) < 0)
        return nova__stellar_fail(err, errlen, -EINVAL, "account id: %s", e);
    struct call *k = call_new(c, CALL_ACCOUNT, arg);
    if (k == NULL)
        return -ENOMEM;
    k->cb.account = cb;
    snprintf(path, sizeof(path), "/accounts/%s", account_id);
    return horizon_get(c, k, tag, path);
}

int nova__stellar_tx_lookup(struct nova__stellar_client *c, const void *tag, const char *hash_hex,
                            nova_stellar_tx_cb cb, void *arg, char *err, size_t errlen)
{
    char path[128];
    int rc = check_open(c, (const void *)cb, err, errlen);
    if (rc < 0)
        return rc;
    if (hash_hex == NULL || strlen(hash_hex) != 64 ||
        nova__hex_decode(hash_hex, (uint8_t[32]){0}, 32) < 0)
        return nova__stellar_fail(err, errlen, -EINVAL, "hash is not 64 hex digits");
    struct call *k = call_new(c, CALL_LOOKUP, arg);
    if (k == NULL)
        return -ENOMEM;
    k->cb.tx = cb;
    snprintf(path, sizeof(path), "/transactions/%s", hash_hex);
    return horizon_get(c, k, tag, path);
}

int nova__stellar_latest_ledger(struct nova__stellar_client *c, const void *tag,
                                nova_stellar_ledger_cb cb, void *arg, char *err, size_t errlen)
{
    int rc = check_open(c, (const void *)cb, err, errlen);
    if (rc < 0)
        return rc;
    struct call *k = call_new(c, CALL_ROOT, arg);
    if (k == NULL)
        return -ENOMEM;
    k->cb.ledger = cb;
    return horizon_get(c, k, tag, "/");
}

static bool b64_chars(const char *s)
{
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/' || ch == '='))
            return false;
    }
    return true;
}

int nova__stellar_submit(struct nova__stellar_client *c, const void *tag, const char *envelope_b64,
                         nova_stellar_tx_cb cb, void *arg, char *err, size_t errlen)
{
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                          "Accept: application/json", NULL};
    int rc = check_open(c, (const void *)cb, err, errlen);
    if (rc < 0)
        return rc;
    if (envelope_b64 == NULL || envelope_b64[0] == '\0')
        return nova__stellar_fail(err, errlen, -EINVAL, "the envelope is empty");
    if (strlen(envelope_b64) > MAX_ENVELOPE_B64 || !b64_chars(envelope_b64))
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "the envelope is not base64 (or larger than 200 KiB)");
    char *body = nova__stellar_horizon_form_body(envelope_b64);
    size_t n = strlen(c->horizon_url) + sizeof("/transactions");
    char *url = malloc(n);
    struct call *k = call_new(c, CALL_SUBMIT, arg);
    if (body == NULL || url == NULL || k == NULL) {
        free(body);
        free(url);
        free(k);
        return -ENOMEM;
    }
    k->cb.tx = cb;
    snprintf(url, n, "%s/transactions", c->horizon_url);
    struct nova_http_request req = {
        .struct_size = sizeof(req),
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = strlen(body),
        .timeout_ms = c->submit_timeout_ms,
    };
    rc = call_start(c, k, tag, &req);
    free(body);
    free(url);
    return rc;
}

/* Sends k's JSON-RPC body to the primary URL or the fallback; links k.
 * On failure k is left to the caller. */
static int rpc_send(struct nova__stellar_client *c, struct call *k, bool fallback)
{
    static const char *const headers[] = {"Content-Type: application/json",
                                          "Accept: application/json", NULL};
    struct nova_http_request req = {
        .struct_size = sizeof(req),
        .method = "POST",
        .url = fallback ? c->rpc_fallback_url : c->rpc_url,
        .headers = headers,
        .body = k->rpc_body,
        .body_len = strlen(k->rpc_body),
        .timeout_ms = c->read_timeout_ms,
        .max_response_bytes = k->max_bytes,
    };
    int rc = nova__http_request_tagged(c->http, &req, on_http, k, k->tag);
    if (rc < 0)
        return rc;
    k->on_fallback = fallback;
    k->next = c->calls;
    if (k->next != NULL)
        k->next->prev = k;
    c->calls = k;
    c->in_flight++;
    return 0;
}

static int rpc_call(struct nova__stellar_client *c, struct call *k, const void *tag,
                    const char *method, cJSON *params, int64_t max_bytes)
{
    cJSON *body = cJSON_CreateObject();
    int rc = -ENOMEM;
    if (body == NULL)
        goto out;
    k->rpc_id = ++c->next_rpc_id;
    k->rpc_method = method;
    k->tag = tag != NULL ? tag : c;
    k->max_bytes = max_bytes;
    cJSON_AddStringToObject(body, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(body, "id", (double)k->rpc_id);
    cJSON_AddStringToObject(body, "method", method);
    if (params != NULL) {
        cJSON_AddItemToObject(body, "params", params);
        params = NULL;
    }
    if ((k->rpc_body = cJSON_PrintUnformatted(body)) == NULL)
        goto out;
    /* the primary, unless it failed a moment ago and there is a fallback */
    bool fallback = c->rpc_fallback_url != NULL && uv_now(c->loop) < c->rpc_primary_down_until;
    rc = rpc_send(c, k, fallback);
    if (rc == 0)
        k = NULL; /* in flight */
out:
    cJSON_Delete(params);
    cJSON_Delete(body);
    call_free(k);
    return rc;
}

static int check_rpc(struct nova__stellar_client *c, const void *cb, char *err, size_t errlen)
{
    int rc = check_open(c, cb, err, errlen);
    if (rc == 0 && c->rpc_url == NULL)
        rc = nova__stellar_fail(err, errlen, -ENOTSUP, "[stellar] soroban_rpc_url is not set");
    return rc;
}

int nova__stellar_rpc_health(struct nova__stellar_client *c, const void *tag,
                             nova_stellar_rpc_health_cb cb, void *arg, char *err, size_t errlen)
{
    int rc = check_rpc(c, (const void *)cb, err, errlen);
    if (rc < 0)
        return rc;
    struct call *k = call_new(c, CALL_HEALTH, arg);
    if (k == NULL)
        return -ENOMEM;
    k->cb.health = cb;
    return rpc_call(c, k, tag, "getHealth", NULL, 0);
}

int nova__stellar_rpc_latest_ledger(struct nova__stellar_client *c, const void *tag,
                                    nova_stellar_rpc_ledger_cb cb, void *arg, char *err,
                                    size_t errlen)
{
    int rc = check_rpc(c, (const void *)cb, err, errlen);
    if (rc < 0)
        return rc;
    struct call *k = call_new(c, CALL_RPC_LEDGER, arg);
    if (k == NULL)
        return -ENOMEM;
    k->cb.rpc_ledger = cb;
    return rpc_call(c, k, tag, "getLatestLedger", NULL, 0);
}

int nova__stellar_get_events(struct nova__stellar_client *c, const void *tag,
                             const struct nova_stellar_events_query *query,
                             nova_stellar_events_cb cb, void *arg, char *err, size_t errlen)
{
    cJSON *params;
    int rc = check_rpc(c, (const void *)cb, err, errlen);
    if (rc < 0)
        return rc;
    if ((rc = nova__stellar_events_params(query, &params, err, errlen)) < 0)
        return rc;
    struct call *k = call_new(c, CALL_EVENTS, arg);
    if (k == NULL) {
        cJSON_Delete(params);
        return -ENOMEM;
    }
    k->cb.events = cb;
    if (query->struct_size >=
        offsetof(struct nova_stellar_events_query, flags) + sizeof(query->flags))
        k->events_flags = query->flags;
    return rpc_call(c, k, tag, "getEvents", params, EVENTS_MAX_BYTES);
}

/* ---- responses ---------------------------------------------------------- */

struct outcome {
    struct nova_stellar_status st;
    char msg[640];
    char problem[64];
    cJSON *json;
};

static void outcome_init(struct outcome *o)
{
    memset(&o->st, 0, sizeof(o->st));
    o->msg[0] = '\0';
    o->problem[0] = '\0';
    o->json = NULL;
    o->st.retry_after_ms = -1;
    o->st.message = o->msg;
    o->st.problem = o->problem;
}

static int fail(struct outcome *o, int error, const char *fmt, ...) NOVA_PRINTF(3, 4);
static int fail(struct outcome *o, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
    va_end(ap);
    o->st.error = error;
    return error;
}

/* Horizon's Latest-Ledger header, 0 when absent or not a ledger number. */
static uint32_t latest_ledger_header(const struct nova_http_response *res)
{
    const char *v = nova__http_header(res, "Latest-Ledger");
    int64_t n;
    if (v == NULL || parse_i64(v, &n) != 0 || n <= 0 || n > UINT32_MAX)
        return 0;
    return (uint32_t)n;
}

/* Reads the body as JSON and, when it is a problem document, its type. */
static void read_body(struct outcome *o, const struct nova_http_response *res)
{
    o->st.http_status = res->status;
    o->st.latest_ledger = latest_ledger_header(res);
    if (res->body_len > 0)
        o->json = cJSON_ParseWithLength(res->body, res->body_len);
    const char *type = NULL;
    get_str(o->json, "type", false, NULL, &type, NULL, 0);
    if (type != NULL) {
        const char *slash = strrchr(type, '/');
        snprintf(o->problem, sizeof(o->problem), "%s", slash ? slash + 1 : type);
    }
}

static void problem_text(const struct outcome *o, const struct nova_http_response *res, char *out,
                         size_t outlen)
{
    const char *detail = NULL, *title = NULL;
    get_str(o->json, "detail", false, NULL, &detail, NULL, 0);
    get_str(o->json, "title", false, NULL, &title, NULL, 0);
    if (o->json != NULL)
        snprintf(out, outlen, "%s%s%s", o->problem[0] ? o->problem : (title ? title : "error"),
                 detail ? ": " : "", detail ? detail : "");
    else if (res->body_len == 0)
        snprintf(out, outlen, "empty body");
    else {
        char s[80];
        snippet(res->body, res->body_len, s, sizeof(s));
        snprintf(out, outlen, "body \"%s\"", s);
    }
}

static void rate_limited(struct outcome *o, const struct nova_http_response *res, const char *who)
{
    int64_t ms = nova__http_retry_after_ms(res);
    o->st.retry_after_ms = ms < MIN_RETRY_AFTER_MS ? MIN_RETRY_AFTER_MS : ms;
    fail(o, -EAGAIN, "%s: HTTP %ld (%s), retry after %" PRId64 " ms", who, res->status,
         res->status == 429 ? "rate limited" : "unavailable", o->st.retry_after_ms);
}

/* The common part of Horizon reads. Returns 1 when o->json is a 200 body
 * to parse, otherwise the status is final. */
static int horizon_read(struct nova__stellar_client *c, struct outcome *o,
                        const struct nova_http_response *res, const char *what)
{
    char text[400];
    if (res->error == -ECANCELED)
        return fail(o, -ECANCELED, "Horizon %s: cancelled", what), 0;
    if (res->error != 0 && res->error != -EBADMSG) {
        c->ready = false;
        o->st.http_status = res->status;
        return fail(o, res->error, "Horizon %s: %s", what, res->error_message), 0;
    }
    read_body(o, res);
    if (res->status == 429 || res->status == 503) {
        if (res->status == 503)
            c->ready = false;
        rate_limited(o, res, "Horizon");
        return 0;
    }
    problem_text(o, res, text, sizeof(text));
    if (res->status == 200) {
        if (o->json == NULL) {
            c->ready = false;
            return fail(o, -EBADMSG, "Horizon %s: the answer is not JSON (%s)", what, text), 0;
        }
        return 1;
    }
    if (res->status == 404 && strcmp(o->problem, "not_found") == 0) {
        c->ready = true;
        return fail(o, -ENOENT, "Horizon %s: not found", what), 0;
    }
    if (res->status >= 500 || o->json == NULL)
        c->ready = false;
    else
        c->ready = true;
    if (res->status == 400 && o->json != NULL)
        return fail(o, -EINVAL, "Horizon %s: HTTP 400 %s", what, text), 0;
    if (o->json == NULL && res->status < 500)
        return fail(o, -EBADMSG, "Horizon %s: HTTP %ld with a %s that is not a problem document",
                    what, res->status, text),
               0;
    return fail(o, -EIO, "Horizon %s: HTTP %ld %s", what, res->status, text), 0;
}

static void handle_account(struct nova__stellar_client *c, struct call *k,
                           const struct nova_http_response *res)
{
    struct outcome o;
    struct nova_stellar_account acct;
    struct nova_stellar_trustline *tl = NULL;
    const struct nova_stellar_account *result = NULL;
    char e[400];
    outcome_init(&o);
    if (horizon_read(c, &o, res, "account") == 1) {
        const cJSON *b = member(o.json, "balances");
        size_t n = cJSON_IsArray(b) ? (size_t)cJSON_GetArraySize(b) : 0;
        if (n > MAX_TRUSTLINES)
            n = MAX_TRUSTLINES;
        tl = calloc(n + 1, sizeof(*tl));
        if (tl == NULL) {
            fail(&o, -ENOMEM, "out of memory");
        } else if (nova__stellar_parse_account(o.json, &acct, tl, n, e, sizeof(e)) < 0) {
            c->ready = false;
            fail(&o, -EBADMSG, "Horizon account: %s", e);
        } else {
            c->ready = true;
            result = &acct;
        }
    }
    k->cb.account(k->arg, &o.st, result);
    free(tl);
    cJSON_Delete(o.json);
}

static void handle_lookup(struct nova__stellar_client *c, struct call *k,
                          const struct nova_http_response *res)
{
    struct outcome o;
    struct nova__stellar_tx_holder *h = NULL;
    const struct nova_stellar_tx_info *result = NULL;
    char e[400];
    outcome_init(&o);
    if (horizon_read(c, &o, res, "transaction lookup") == 1) {
        if ((h = malloc(sizeof(*h))) == NULL) {
            fail(&o, -ENOMEM, "out of memory");
        } else if (nova__stellar_parse_tx(o.json, h, e, sizeof(e)) < 0) {
            c->ready = false;
            fail(&o, -EBADMSG, "Horizon transaction lookup: %s", e);
        } else {
            c->ready = true;
            result = &h->info;
        }
    }
    k->cb.tx(k->arg, &o.st, result);
    free(h);
    cJSON_Delete(o.json);
}

/* Only the probe logs: a caller of latest_ledger reports it its own way. */
static void check_network(struct nova__stellar_client *c, const struct nova_stellar_ledger *l,
                          bool log)
{
    bool wrong = strcmp(l->network_passphrase, c->passphrase) != 0;
    if (wrong && !c->wrong_network && log)
        nova__log_error("Horizon %s serves the network \"%s\", but [stellar] network is \"%s\"",
                        c->horizon_url, l->network_passphrase, c->passphrase);
    c->wrong_network = wrong;
}

static void handle_root(struct nova__stellar_client *c, struct call *k,
                        const struct nova_http_response *res)
{
    struct outcome o;
    struct nova_stellar_ledger l;
    const struct nova_stellar_ledger *result = NULL;
    char e[400];
    outcome_init(&o);
    if (horizon_read(c, &o, res, "root") == 1) {
        if (nova__stellar_parse_root(o.json, &l, e, sizeof(e)) < 0) {
            c->ready = false;
            fail(&o, -EBADMSG, "Horizon root: %s", e);
        } else {
            c->ready = true;
            check_network(c, &l, k->kind == CALL_PROBE);
            result = &l;
        }
    }
    if (k->kind == CALL_PROBE) {
        c->probe_in_flight = false;
        if (o.st.error != 0 && o.st.error != -ECANCELED)
            nova__log_warn("Stellar readiness probe: %s", o.msg);
    } else {
        k->cb.ledger(k->arg, &o.st, result);
    }
    cJSON_Delete(o.json);
}

static const char *submission_label(int error)
{
    switch (error) {
    case 0:
        return "ok";
    case -EREMOTEIO:
        return "tx_failed";
    case -ETIMEDOUT:
        return "timeout";
    case -EAGAIN:
        return "rate_limited";
    default:
        return "error";
    }
}

/* POST /transactions. Anything that is not a definite verdict is "outcome
 * unknown": the transaction may be (or become) part of a ledger. */
static void handle_submit(struct nova__stellar_client *c, struct call *k,
                          const struct nova_http_response *res)
{
    struct outcome o;
    struct nova__stellar_tx_holder *h = malloc(sizeof(*h));
    const struct nova_stellar_tx_info *result = NULL;
    char e[400], text[400];
    outcome_init(&o);
    if (res->error == -ECANCELED) {
        fail(&o, -ECANCELED, "submit: cancelled; outcome unknown (look the hash up)");
    } else if (res->error != 0 && res->error != -EBADMSG) {
        c->ready = false;
        o.st.http_status = res->status;
        fail(&o, -ETIMEDOUT, "submit: outcome unknown: %s", res->error_message);
    } else if (h == NULL) {
        fail(&o, -ETIMEDOUT, "submit: outcome unknown: out of memory reading the answer");
    } else {
        read_body(&o, res);
        problem_text(&o, res, text, sizeof(text));
        if (res->status == 429) {
            rate_limited(&o, res, "submit");
        } else if (res->status == 200) {
            if (o.json == NULL) {
                c->ready = false;
                fail(&o, -ETIMEDOUT,
                     "submit: outcome unknown: HTTP 200 but the answer is not "
                     "JSON (%s)",
                     text);
            } else if (nova__stellar_parse_tx(o.json, h, e, sizeof(e)) < 0) {
                c->ready = false;
                fail(&o, -ETIMEDOUT, "submit: outcome unknown: HTTP 200 but %s", e);
            } else {
                c->ready = true;
                result = &h->info;
                if (!h->info.successful)
                    fail(&o, -EREMOTEIO, "submit: included as failed (%s)",
                         h->info.tx_code ? h->info.tx_code : "no result code");
            }
        } else if (res->status == 400 && strcmp(o.problem, "transaction_failed") == 0) {
            if (nova__stellar_parse_tx_failed(o.json, h, e, sizeof(e)) < 0) {
                c->ready = false;
                fail(&o, -ETIMEDOUT, "submit: outcome unknown: transaction_failed but %s", e);
            } else {
                c->ready = true;
                result = &h->info;
                char ops[320] = "";
                size_t used = 0;
                for (size_t i = 0; i < h->info.op_count && used + 40 < sizeof(ops); i++)
                    used += (size_t)snprintf(ops + used, sizeof(ops) - used, "%s%s", i ? "," : " [",
                                             h->info.op_codes[i]);
                if (used > 0)
                    strcat(ops, "]");
                fail(&o, -EREMOTEIO, "submit: transaction failed: %s%s", h->info.tx_code, ops);
            }
        } else if (res->status == 400 && (strcmp(o.problem, "transaction_malformed") == 0 ||
                                          strcmp(o.problem, "bad_request") == 0)) {
            c->ready = true;
            fail(&o, -EINVAL, "submit: refused, never forwarded: %s", text);
        } else {
            if (res->status >= 500 && strcmp(o.problem, "transaction_submission_timeout") != 0)
                c->ready = false;
            fail(&o, -ETIMEDOUT, "submit: outcome unknown: HTTP %ld %s", res->status, text);
        }
    }
    const char *label[] = {submission_label(o.st.error)};
    nova__metric_add(c->m_submissions, label, 1);
    k->cb.tx(k->arg, &o.st, result);
    free(h);
    cJSON_Delete(o.json);
}

/* The common part of RPC calls. Returns the "result" member, or NULL with
 * the status set. */
static const cJSON *rpc_read(struct outcome *o, const struct call *k,
                             const struct nova_http_response *res)
{
    const char *m = k->rpc_method;
    char text[400];
    if (res->error == -ECANCELED)
        return fail(o, -ECANCELED, "RPC %s: cancelled", m), NULL;
    if (res->error != 0 && res->error != -EBADMSG) {
        o->st.http_status = res->status;
        return fail(o, res->error, "RPC %s: %s", m, res->error_message), NULL;
    }
    read_body(o, res);
    o->problem[0] = '\0';
    if (res->status == 429 || res->status == 503) {
        rate_limited(o, res, "RPC");
        return NULL;
    }
    problem_text(o, res, text, sizeof(text));
    if (res->status != 200)
        return fail(o, -EIO, "RPC %s: HTTP %ld %s", m, res->status, text), NULL;
    if (!cJSON_IsObject(o->json))
        return fail(o, -EBADMSG, "RPC %s: the answer is not a JSON object (%s)", m, text), NULL;
    const char *version = NULL;
    const cJSON *id = member(o->json, "id");
    get_str(o->json, "jsonrpc", false, NULL, &version, NULL, 0);
    if (version == NULL || strcmp(version, "2.0") != 0)
        return fail(o, -EBADMSG, "RPC %s: \"jsonrpc\" is not \"2.0\"", m), NULL;
    const cJSON *error = member(o->json, "error");
    if (error != NULL) {
        const char *msg = NULL;
        const cJSON *code = member(error, "code");
        get_str(error, "message", false, NULL, &msg, NULL, 0);
        if (!cJSON_IsNumber(code))
            return fail(o, -EBADMSG, "RPC %s: an error without a numeric \"code\"", m), NULL;
        o->st.rpc_code = code->valueint;
        return fail(o, -EREMOTEIO, "RPC %s: error %d: %s", m, o->st.rpc_code, msg ? msg : ""), NULL;
    }
    if (!cJSON_IsNumber(id) || id->valuedouble != (double)k->rpc_id)
        return fail(o, -EBADMSG, "RPC %s: \"id\" does not match the request", m), NULL;
    const cJSON *result = member(o->json, "result");
    if (!cJSON_IsObject(result))
        return fail(o, -EBADMSG, "RPC %s: \"result\" is %s", m,
                    result == NULL ? "missing" : "not an object"),
               NULL;
    return result;
}

static void handle_health(struct call *k, struct outcome *o, const cJSON *r)
{
    struct nova_stellar_rpc_health h;
    const struct nova_stellar_rpc_health *out = NULL;
    char e[300];
    if (r != NULL) {
        memset(&h, 0, sizeof(h));
        if (get_str(r, "status", true, NULL, &h.status, e, sizeof(e)) < 0 ||
            get_u32(r, "latestLedger", false, &h.latest_ledger, e, sizeof(e)) < 0 ||
            get_u32(r, "oldestLedger", false, &h.oldest_ledger, e, sizeof(e)) < 0 ||
            get_u32(r, "ledgerRetentionWindow", false, &h.retention_window, e, sizeof(e)) < 0)
            fail(o, -EBADMSG, "RPC getHealth: %s", e);
        else
            out = &h;
    }
    k->cb.health(k->arg, &o->st, out);
}

static void handle_rpc_ledger(struct call *k, struct outcome *o, const cJSON *r)
{
    struct nova_stellar_rpc_ledger l;
    const struct nova_stellar_rpc_ledger *out = NULL;
    char e[300];
    if (r != NULL) {
        memset(&l, 0, sizeof(l));
        if (get_str(r, "id", false, "", &l.id, e, sizeof(e)) < 0 ||
            get_u32(r, "sequence", true, &l.sequence, e, sizeof(e)) < 0 ||
            get_u32(r, "protocolVersion", false, &l.protocol_version, e, sizeof(e)) < 0 ||
            get_i64_str(r, "closeTime", false, &l.close_time, e, sizeof(e)) < 0)
            fail(o, -EBADMSG, "RPC getLatestLedger: %s", e);
        else
            out = &l;
    }
    k->cb.rpc_ledger(k->arg, &o->st, out);
}

static void handle_events(struct call *k, struct outcome *o, const cJSON *r)
{
    struct nova__stellar_events_store s;
    const struct nova_stellar_events_page *out = NULL;
    char e[500];
    memset(&s, 0, sizeof(s));
    if (r != NULL) {
        int rc = nova__stellar_parse_events_flags(r, k->events_flags, &s, e, sizeof(e));
        if (rc < 0)
            fail(o, rc == -ENOMEM ? rc : -EBADMSG, "RPC getEvents: %s", e);
        else
            out = &s.page;
    }
    k->cb.events(k->arg, &o->st, out);
    nova__stellar_events_free(&s);
}

/* The server failed, as opposed to answering: worth the other URL. */
static bool rpc_server_failed(const struct outcome *o)
{
    switch (o->st.error) {
    case 0:
    case -ECANCELED:
    case -ENOMEM:
        return false;
    case -EREMOTEIO:
        return o->st.rpc_code == -32603;
    default:
        return true;
    }
}

/* An RPC answer (or failure) came: fall back, or hand it to the caller.
 * Returns true when k was sent again (it lives on). */
static bool rpc_answered(struct nova__stellar_client *c, struct call *k,
                         const struct nova_http_response *res)
{
    struct outcome o;
    outcome_init(&o);
    const cJSON *r = rpc_read(&o, k, res);
    if (c->rpc_fallback_url != NULL && r == NULL && rpc_server_failed(&o)) {
        if (!k->on_fallback) {
            c->rpc_primary_down_until = uv_now(c->loop) + NOVA__STELLAR_RPC_FALLBACK_HOLD_MS;
            if (!c->rpc_on_fallback)
                nova__log_warn("Soroban RPC %s failed (%s): trying the fallback %s first for "
                               "the next %d s",
                               c->rpc_url, o.msg, c->rpc_fallback_url,
                               NOVA__STELLAR_RPC_FALLBACK_HOLD_MS / 1000);
            c->rpc_on_fallback = true;
        }
        if (!k->second_try && !c->closing) {
            k->second_try = true;
            if (rpc_send(c, k, !k->on_fallback) == 0) {
                cJSON_Delete(o.json);
                return true;
            }
        }
    } else if (c->rpc_fallback_url != NULL && !k->on_fallback && c->rpc_on_fallback &&
               o.st.error != -ECANCELED) {
        /* the primary answers again */
        c->rpc_primary_down_until = 0;
        c->rpc_on_fallback = false;
        nova__log_info("Soroban RPC %s answers again; the fallback is no longer preferred",
                       c->rpc_url);
    }
    switch (k->kind) {
    case CALL_HEALTH:
        handle_health(k, &o, r);
        break;
    case CALL_RPC_LEDGER:
        handle_rpc_ledger(k, &o, r);
        break;
    case CALL_EVENTS:
        handle_events(k, &o, r);
        break;
    default:
        break;
    }
    cJSON_Delete(o.json);
    return false;
}

static bool is_rpc(enum call_kind kind)
{
    return kind == CALL_HEALTH || kind == CALL_RPC_LEDGER || kind == CALL_EVENTS;
}

static void on_http(void *arg, const struct nova_http_response *res)
{
    struct call *k = arg;
    if (k->detached) {
        call_free(k);
        return;
    }
    struct nova__stellar_client *c = k->c;
    call_unlink(c, k);
    if (res->error != -ECANCELED) {
        const char *label[] = {is_rpc(k->kind) ? "rpc" : "horizon"};
        nova__metric_observe(c->m_duration, label, (double)res->total_time_ms / 1000.0);
    }
    switch (k->kind) {
    case CALL_ACCOUNT:
        handle_account(c, k, res);
        break;
    case CALL_SUBMIT:
        handle_submit(c, k, res);
        break;
    case CALL_LOOKUP:
        handle_lookup(c, k, res);
        break;
    case CALL_ROOT:
    case CALL_PROBE:
        handle_root(c, k, res);
        break;
    case CALL_HEALTH:
    case CALL_RPC_LEDGER:
    case CALL_EVENTS:
        if (rpc_answered(c, k, res))
            return; /* sent to the other RPC URL */
        break;
    }
    call_free(k);
}

static void deliver_cancelled(struct call *k, const char *message)
{
    struct outcome o;
    outcome_init(&o);
    fail(&o, -ECANCELED, "%s", message);
    switch (k->kind) {
    case CALL_ACCOUNT:
        k->cb.account(k->arg, &o.st, NULL);
        break;
    case CALL_SUBMIT:
    case CALL_LOOKUP:
        k->cb.tx(k->arg, &o.st, NULL);
        break;
    case CALL_ROOT:
        k->cb.ledger(k->arg, &o.st, NULL);
        break;
    case CALL_PROBE:
        break;
    case CALL_HEALTH:
        k->cb.health(k->arg, &o.st, NULL);
        break;
    case CALL_RPC_LEDGER:
        k->cb.rpc_ledger(k->arg, &o.st, NULL);
        break;
    case CALL_EVENTS:
        k->cb.events(k->arg, &o.st, NULL);
        break;
    }
}

/* ---- readiness probe ---------------------------------------------------- */

static void on_probe_timer(uv_timer_t *t)
{
    struct nova__stellar_client *c = t->data;
    if (c->closing || c->probe_in_flight)
        return;
    struct call *k = call_new(c, CALL_PROBE, NULL);
    if (k == NULL)
        return;
    if (horizon_get(c, k, c, "/") == 0)
        c->probe_in_flight = true;
}

int nova__stellar_client_probe(struct nova__stellar_client *c, uint64_t interval_ms)
{
    if (c == NULL || c->closing)
        return -ECANCELED;
    c->probe_interval_ms = interval_ms ? interval_ms : PROBE_INTERVAL_MS;
    uv_timer_start(&c->timer, on_probe_timer, 0, c->probe_interval_ms);
    return 0;
}
