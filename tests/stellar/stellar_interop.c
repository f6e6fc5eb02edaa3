/*
 * stellar-interop - our side of the @stellar/stellar-base cross-check.
 *
 * Reads one JSON case per line on stdin and prints one JSON answer per
 * line on stdout (same order). interop.mjs generates the cases, computes
 * the expected answers with stellar-base and compares. Kinds:
 *   strkey_encode {type, hex}            -> {strkey}
 *   strkey_decode {type, strkey}         -> {ok, hex | error}
 *   amount_format {stroops}              -> {text}
 *   amount_parse  {text}                 -> {ok, stroops | error}
 *   tx            {passphrase, source, fee, seq, timebounds, memo, ops, seeds}
 *                                        -> {ok, tx_xdr, hash, envelope, public_envelope?}
 *   scval         {b64}                  -> {ok, json | error}
 *   result        {b64}                  -> {ok, fee_charged, transaction, inner?, operations}
 *   sac           {asset, passphrase}    -> {ok, contract}
 *   envelope      {b64, passphrase}      -> {ok, hash, tx_xdr, signatures}
 */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "stellar/stellar.h"
#include "stellar/stellar_amount.h"
#include "stellar/stellar_scval.h"
#include "stellar/stellar_strkey.h"
#include "stellar/stellar_tx.h"

static enum nova_strkey_type type_of(const char *t)
{
    if (t == NULL)
        return NOVA_STRKEY_ANY;
    switch (t[0]) {
    case 'G':
        return NOVA_STRKEY_ACCOUNT;
    case 'S':
        return NOVA_STRKEY_SEED;
    case 'M':
        return NOVA_STRKEY_MUXED;
    case 'C':
        return NOVA_STRKEY_CONTRACT;
    default:
        return NOVA_STRKEY_ANY;
    }
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *fail(cJSON *res, const char *err)
{
    cJSON_AddBoolToObject(res, "ok", 0);
    cJSON_AddStringToObject(res, "error", err);
    return res;
}

static cJSON *do_strkey_encode(const cJSON *c, cJSON *res)
{
    uint8_t buf[64];
    char out[NOVA_STRKEY_MAX];
    const char *hex = str(c, "hex");
    size_t n = hex ? strlen(hex) / 2 : 0;
    if (n > sizeof(buf) || nova__hex_decode(hex, buf, n) < 0)
        return fail(res, "bad hex");
    if (nova__strkey_encode(type_of(str(c, "type")), buf, n, out, sizeof(out)) < 0)
        return fail(res, "encode failed");
    cJSON_AddStringToObject(res, "strkey", out);
    return res;
}

static cJSON *do_strkey_decode(const cJSON *c, cJSON *res)
{
    uint8_t buf[NOVA__STRKEY_PAYLOAD_MAX];
    size_t n;
    char err[200], hex[2 * NOVA__STRKEY_PAYLOAD_MAX + 1];
    if (nova__strkey_decode(str(c, "strkey"), type_of(str(c, "type")), NULL, buf, sizeof(buf), &n,
                            err, sizeof(err)) < 0)
        return fail(res, err);
    nova__hex_encode(buf, n, hex);
    cJSON_AddBoolToObject(res, "ok", 1);
    cJSON_AddStringToObject(res, "hex", hex);
    return res;
}

static cJSON *do_amount_format(const cJSON *c, cJSON *res)
{
    char buf[NOVA_AMOUNT_MAX];
    const char *s = str(c, "stroops");
    nova__amount_format(s ? strtoll(s, NULL, 10) : 0, buf, sizeof(buf));
    cJSON_AddStringToObject(res, "text", buf);
    return res;
}

static cJSON *do_amount_parse(const cJSON *c, cJSON *res)
{
    int64_t v;
    char err[200], num[32];
    if (nova__amount_parse(str(c, "text"), 0, &v, err, sizeof(err)) < 0)
        return fail(res, err);
    snprintf(num, sizeof(num), "%" PRId64, v);
    cJSON_AddBoolToObject(res, "ok", 1);
    cJSON_AddStringToObject(res, "stroops", num);
    return res;
}

static uint64_t u64_of(const cJSON *o, const char *key)
{
    const char *s = str(o, key);
    return s ? strtoull(s, NULL, 10) : 0;
}

static cJSON *do_tx(const cJSON *c, cJSON *res)
{
    char err[300];
    struct nova__stellar_tx tx;
    static struct nova__stellar_payment_op ops[NOVA_STELLAR_MAX_OPS];
    static struct nova_stellar_payment pays[NOVA_STELLAR_MAX_OPS];
    uint8_t seeds[NOVA_STELLAR_MAX_SIGNATURES][32];
    char seed_strs[NOVA_STELLAR_MAX_SIGNATURES][NOVA_STRKEY_MAX];
    const char *seed_ptrs[NOVA_STELLAR_MAX_SIGNATURES];
    memset(&tx, 0, sizeof(tx));

    const char *pass = str(c, "passphrase");
    if (nova__strkey_decode_muxed(str(c, "source"), &tx.source, err, sizeof(err)) < 0)
        return fail(res, err);
    tx.fee = (uint32_t)u64_of(c, "fee");
    tx.seq_num = (int64_t)u64_of(c, "seq");
    const cJSON *tb = cJSON_GetObjectItem(c, "timebounds");
    if (cJSON_IsObject(tb)) {
        tx.has_time_bounds = true;
        tx.min_time = u64_of(tb, "min");
        tx.max_time = u64_of(tb, "max");
    }
    const cJSON *memo = cJSON_GetObjectItem(c, "memo");
    const char *mt = str(memo, "type");
    if (mt && strcmp(mt, "text") == 0) {
        if (nova__stellar_memo_text(&tx.memo, str(memo, "value"), err, sizeof(err)) < 0)
            return fail(res, err);
    } else if (mt && strcmp(mt, "id") == 0) {
        tx.memo.type = NOVA_MEMO_ID;
        tx.memo.id = u64_of(memo, "value");
    } else if (mt && (strcmp(mt, "hash") == 0 || strcmp(mt, "return") == 0)) {
        tx.memo.type = mt[0] == 'h' ? NOVA_MEMO_HASH : NOVA_MEMO_RETURN;
        if (nova__hex_decode(str(memo, "value"), tx.memo.hash, 32) < 0)
            return fail(res, "bad memo hash");
    }
    const cJSON *op;
    size_t n = 0;
    cJSON_ArrayForEach(op, cJSON_GetObjectItem(c, "ops"))
    {
        if (n == NOVA_STELLAR_MAX_OPS)
            return fail(res, "too many ops");
        struct nova__stellar_payment_op *o = &ops[n];
        memset(o, 0, sizeof(*o));
        memset(&pays[n], 0, sizeof(pays[n]));
        if (nova__strkey_decode_muxed(str(op, "dest"), &o->destination, err, sizeof(err)) < 0 ||
            nova__stellar_asset_parse(str(op, "asset"), &o->asset, err, sizeof(err)) < 0 ||
            nova__amount_parse(str(op, "amount"), 0, &o->amount, err, sizeof(err)) < 0)
            return fail(res, err);
        pays[n].destination = str(op, "dest");
        pays[n].asset = str(op, "asset");
        pays[n].amount = o->amount;
        if (str(op, "source") != NULL) {
            if (nova__strkey_decode_muxed(str(op, "source"), &o->source, err, sizeof(err)) < 0)
                return fail(res, err);
            o->has_source = true;
            pays[n].source = str(op, "source");
        }
        n++;
    }
    tx.ops = ops;
    tx.op_count = n;
    size_t nseeds = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(c, "seeds"))
    {
        if (nseeds == NOVA_STELLAR_MAX_SIGNATURES || !cJSON_IsString(s) ||
            nova__hex_decode(s->valuestring, seeds[nseeds], 32) < 0)
            return fail(res, "bad seed");
        nova__strkey_encode(NOVA_STRKEY_SEED, seeds[nseeds], 32, seed_strs[nseeds],
                            NOVA_STRKEY_MAX);
        seed_ptrs[nseeds] = seed_strs[nseeds];
        nseeds++;
    }

    struct nova__xdr_writer w = {0};
    if (nova__stellar_tx_encode(&tx, &w, err, sizeof(err)) < 0)
        return fail(res, err);
    char *tx_b64 = nova__b64_encode(w.data, w.len);
    nova__xdr_free(&w);
    char *env = NULL;
    uint8_t hash[32];
    char hex[65];
    if (nova__stellar_tx_sign(&tx, pass, (const uint8_t(*)[32])seeds, nseeds, &env, hash, err,
                              sizeof(err)) < 0) {
        free(tx_b64);
        return fail(res, err);
    }
    nova__hex_encode(hash, 32, hex);
    cJSON_AddBoolToObject(res, "ok", 1);
    cJSON_AddStringToObject(res, "tx_xdr", tx_b64);
    cJSON_AddStringToObject(res, "hash", hex);
    cJSON_AddStringToObject(res, "envelope", env);
    free(tx_b64);
    free(env);

    /* The plugin API covers the subset it allows: PRECOND_TIME with a max time. */
    if (tx.has_time_bounds && tx.max_time != 0 && tx.min_time <= tx.max_time) {
        struct nova_stellar_payment_tx req = {
            .struct_size = sizeof(req),
            .network_passphrase = pass,
            .source_account = str(c, "source"),
            .fee = tx.fee,
            .seq_num = tx.seq_num,
            .min_time = tx.min_time,
            .max_time = tx.max_time,
            .memo_type = tx.memo.type,
            .memo_id = tx.memo.id,
            .payments = pays,
            .payment_count = n,
            .signer_secrets = seed_ptrs,
            .signer_count = nseeds,
        };
        char text[NOVA_STELLAR_MEMO_TEXT_MAX + 1];
        memcpy(text, tx.memo.text, tx.memo.text_len);
        text[tx.memo.text_len] = '\0';
        req.memo_text = text;
        memcpy(req.memo_hash, tx.memo.hash, 32);
        struct nova_stellar_signed_tx out;
        if (nova__stellar_offline_api.build_payment(&req, &out, err, sizeof(err)) < 0) {
            cJSON_AddStringToObject(res, "public_error", err);
        } else {
            cJSON_AddStringToObject(res, "public_envelope", out.envelope_b64);
            cJSON_AddStringToObject(res, "public_hash", out.hash_hex);
            nova__stellar_offline_api.signed_tx_free(&out);
        }
    }
    return res;
}

static cJSON *do_scval(const cJSON *c, cJSON *res)
{
    cJSON *json;
    char err[200];
    if (nova__scval_decode_b64(str(c, "b64"), &json, err, sizeof(err)) < 0)
        return fail(res, err);
    cJSON_AddBoolToObject(res, "ok", 1);
    cJSON_AddItemToObject(res, "json", json);
    return res;
}

static cJSON *do_result(const cJSON *c, cJSON *res)
{
    static struct nova_stellar_tx_result r;
    char err[200], num[32];
    if (nova__stellar_offline_api.decode_result(str(c, "b64"), &r, err, sizeof(err)) < 0)
        return fail(res, err);
    cJSON_AddBoolToObject(res, "ok", 1);
    snprintf(num, sizeof(num), "%" PRId64, r.fee_charged);
    cJSON_AddStringToObject(res, "fee_charged", num);
    cJSON_AddStringToObject(res, "transaction", r.name);
    if (r.has_inner) {
        char hex[65];
        nova__hex_encode(r.inner_hash, 32, hex);
        snprintf(num, sizeof(num), "%" PRId64, r.inner_fee_charged);
        cJSON_AddStringToObject(res, "inner", r.inner_name);
        cJSON_AddStringToObject(res, "inner_hash", hex);
        cJSON_AddStringToObject(res, "inner_fee_charged", num);
    }
    cJSON *ops = cJSON_AddArrayToObject(res, "operations");
    for (size_t i = 0; i < r.op_count; i++)
        cJSON_AddItemToArray(ops, cJSON_CreateString(r.ops[i].name));
    return res;
}

static cJSON *do_sac(const cJSON *c, cJSON *res)
{
    char out[NOVA_STRKEY_MAX], err[200];
    if (nova__stellar_offline_api.asset_contract_id(str(c, "asset"), str(c, "passphrase"), out, err,
                                                    sizeof(err)) < 0)
        return fail(res, err);
    cJSON_AddBoolToObject(res, "ok", 1);
    cJSON_AddStringToObject(res, "contract", out);
    return res;
}

static cJSON *do_envelope(const cJSON *c, cJSON *res)
{
    uint8_t *raw, hash[32];
    size_t len;
    char err[200], hex[2 * sizeof(struct nova__stellar_signature) + 1];
    struct nova__stellar_envelope env;
    if (nova__b64_decode(str(c, "b64"), &raw, &len) < 0)
        return fail(res, "not base64");
    if (nova__stellar_envelope_decode(raw, len, &env, err, sizeof(err)) < 0) {
        free(raw);
        return fail(res, err);
    }
    /* Re-encoding must reproduce the input exactly. */
    struct nova__xdr_writer w = {0};
    nova__stellar_envelope_encode(env.tx_xdr, env.tx_len, env.sigs, env.sig_count, &w);
    struct nova__xdr_writer t = {0};
    int rc = nova__stellar_tx_encode(&env.tx, &t, err, sizeof(err));
    if (rc < 0 || w.err || w.len != len || memcmp(w.data, raw, len) != 0 || t.len != env.tx_len ||
        memcmp(t.data, env.tx_xdr, t.len) != 0) {
        fail(res, "re-encoding differs from the input");
    } else {
        nova__stellar_tx_hash(str(c, "passphrase"), env.tx_xdr, env.tx_len, hash);
        nova__hex_encode(hash, 32, hex);
        cJSON_AddBoolToObject(res, "ok", 1);
        cJSON_AddStringToObject(res, "hash", hex);
        cJSON *sigs = cJSON_AddArrayToObject(res, "signatures");
        for (size_t i = 0; i < env.sig_count; i++) {
            nova__hex_encode(&env.sigs[i], sizeof(env.sigs[i]), hex);
            cJSON_AddItemToArray(sigs, cJSON_CreateString(hex));
        }
    }
    nova__xdr_free(&w);
    nova__xdr_free(&t);
    nova__stellar_envelope_free(&env);
    free(raw);
    return res;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        cJSON *c = cJSON_Parse(line);
        cJSON *res = cJSON_CreateObject();
        const char *kind = str(c, "kind");
        if (kind == NULL)
            fail(res, "no kind");
        else if (strcmp(kind, "strkey_encode") == 0)
            do_strkey_encode(c, res);
        else if (strcmp(kind, "strkey_decode") == 0)
            do_strkey_decode(c, res);
        else if (strcmp(kind, "amount_format") == 0)
            do_amount_format(c, res);
        else if (strcmp(kind, "amount_parse") == 0)
            do_amount_parse(c, res);
        else if (strcmp(kind, "tx") == 0)
            do_tx(c, res);
        else if (strcmp(kind, "scval") == 0)
            do_scval(c, res);
        else if (strcmp(kind, "result") == 0)
            do_result(c, res);
        else if (strcmp(kind, "sac") == 0)
            do_sac(c, res);
        else if (strcmp(kind, "envelope") == 0)
            do_envelope(c, res);
        else
            fail(res, "unknown kind");
        char *out = cJSON_PrintUnformatted(res);
        puts(out);
        free(out);
        cJSON_Delete(res);
        cJSON_Delete(c);
    }
    free(line);
    return 0;
}
