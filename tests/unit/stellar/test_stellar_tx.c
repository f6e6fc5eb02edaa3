/* Payment transactions and results against the stellar-base vectors. */
#include "config.h"
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stellar/stellar.h"
#include "stellar/stellar_amount.h"
#include "stellar/stellar_tx.h"
#include "stellar_vectors.h"

/* Builds the internal transaction of vector `idx` from its inputs. */
static void vector_tx(const cJSON *t, struct nova__stellar_tx *tx,
                      struct nova__stellar_payment_op *ops, uint8_t seed[32])
{
    const cJSON *in = vget(t, "inputs");
    char err[200], asset[128];
    memset(tx, 0, sizeof(*tx));
    ck_assert_int_eq(
        nova__strkey_decode32(vstr(in, "source_secret"), NOVA_STRKEY_SEED, seed, err, sizeof(err)),
        0);
    ck_assert_int_eq(
        nova__strkey_decode_muxed(vstr(in, "source_account_id"), &tx->source, err, sizeof(err)), 0);
    tx->seq_num = strtoll(vstr(in, "tx_seq_num"), NULL, 10);
    ck_assert_int_eq(tx->seq_num, strtoll(vstr(in, "account_sequence"), NULL, 10) + 1);
    tx->has_time_bounds = true;
    tx->min_time = (uint64_t)vget(in, "time_bounds/min_time")->valuedouble;
    tx->max_time = (uint64_t)vget(in, "time_bounds/max_time")->valuedouble;
    const cJSON *memo = vget(in, "memo_text");
    if (cJSON_IsString(memo))
        ck_assert_int_eq(nova__stellar_memo_text(&tx->memo, memo->valuestring, err, sizeof(err)),
                         0);
    snprintf(asset, sizeof(asset), "%s:%s", vstr(in, "asset/code"), vstr(in, "asset/issuer"));
    const cJSON *pays = vget(in, "payments"), *p;
    size_t n = 0;
    cJSON_ArrayForEach(p, pays)
    {
        memset(&ops[n], 0, sizeof(ops[n]));
        ck_assert_int_eq(nova__strkey_decode_muxed(vstr(p, "destination"), &ops[n].destination, err,
                                                   sizeof(err)),
                         0);
        ck_assert_int_eq(nova__stellar_asset_parse(asset, &ops[n].asset, err, sizeof(err)), 0);
        ck_assert_int_eq(nova__amount_parse(vstr(p, "amount"), 0, &ops[n].amount, err, sizeof(err)),
                         0);
        ck_assert_int_eq(ops[n].amount, strtoll(vstr(p, "amount_stroops"), NULL, 10));
        n++;
    }
    tx->ops = ops;
    tx->op_count = n;
    tx->fee = (uint32_t)(vget(in, "base_fee_per_op")->valueint * (int)n);
    ck_assert_int_eq(tx->fee, vget(t, "outputs/fee_total")->valueint);
}

static void assert_hex(const uint8_t *data, size_t len, const char *want)
{
    char *hex = malloc(2 * len + 1);
    nova__hex_encode(data, len, hex);
    ck_assert_str_eq(hex, want);
    free(hex);
}

static void assert_b64(const uint8_t *data, size_t len, const char *want)
{
    char *b64 = nova__b64_encode(data, len);
    ck_assert_str_eq(b64, want);
    free(b64);
}

START_TEST(transaction_vectors)
{
    const cJSON *t = vget(vectors(), "transactions")->child;
    int count = 0;
    for (; t; t = t->next, count++) {
        const cJSON *out = vget(t, "outputs");
        struct nova__stellar_tx tx;
        struct nova__stellar_payment_op ops[3];
        uint8_t seed[32], nid[32], hash[32];
        char err[200];
        const char *pass = vstr(t, "inputs/network_passphrase");
        vector_tx(t, &tx, ops, seed);

        nova__stellar_network_id(pass, nid);
        assert_hex(nid, 32, vstr(out, "network_id_hex"));

        struct nova__xdr_writer w = {0};
        ck_assert_msg(nova__stellar_tx_encode(&tx, &w, err, sizeof(err)) == 0, "%s", err);
        assert_hex(w.data, w.len, vstr(out, "transaction_xdr_hex"));
        assert_b64(w.data, w.len, vstr(out, "transaction_xdr_base64"));

        /* signature base = network id || 00000002 || tx */
        struct nova__xdr_writer base = {0};
        nova__xdr_put_raw(&base, nid, 32);
        nova__xdr_put_i32(&base, NOVA__ENVELOPE_TYPE_TX);
        nova__xdr_put_raw(&base, w.data, w.len);
        assert_hex(base.data, base.len, vstr(out, "signature_base_hex"));
        nova__xdr_free(&base);

        nova__stellar_tx_hash(pass, w.data, w.len, hash);
        assert_hex(hash, 32, vstr(out, "tx_hash_hex"));

        struct nova__xdr_writer env = {0};
        nova__stellar_envelope_encode(w.data, w.len, NULL, 0, &env);
        assert_b64(env.data, env.len, vstr(out, "unsigned_envelope_xdr_base64"));
        nova__xdr_free(&env);

        struct nova__stellar_signature sig;
        ck_assert_int_eq(nova__stellar_sign_hash(seed, hash, &sig), 0);
        assert_hex(sig.hint, 4, vstr(out, "signature_hint_hex"));
        assert_hex(sig.sig, 64, vstr(out, "signature_hex"));
        nova__stellar_envelope_encode(w.data, w.len, &sig, 1, &env);
        assert_b64(env.data, env.len, vstr(out, "signed_envelope_xdr_base64"));
        nova__xdr_free(&env);

        /* The all-in-one path gives the same bytes. */
        char *b64 = NULL;
        uint8_t hash2[32];
        ck_assert_int_eq(nova__stellar_tx_sign(&tx, pass, (const uint8_t(*)[32])seed, 1, &b64,
                                               hash2, err, sizeof(err)),
                         0);
        ck_assert_str_eq(b64, vstr(out, "signed_envelope_xdr_base64"));
        ck_assert_mem_eq(hash2, hash, 32);
        free(b64);
        nova__xdr_free(&w);
    }
    ck_assert_int_eq(count, 3);
}
END_TEST

START_TEST(public_api_vectors)
{
    /* The plugin-facing table, driven with strings only. */
    const cJSON *t = vget(vectors(), "transactions")->child;
    for (; t; t = t->next) {
        const cJSON *in = vget(t, "inputs");
        struct nova_stellar_payment pays[3];
        size_t n = 0;
        const cJSON *p;
        char asset[128], err[200];
        cJSON_ArrayForEach(p, vget(in, "payments"))
        {
            memset(&pays[n], 0, sizeof(pays[n]));
            pays[n].destination = vstr(p, "destination");
            ck_assert_int_eq(nova__stellar_offline_api.amount_parse(
                                 vstr(p, "amount"), 0, &pays[n].amount, err, sizeof(err)),
                             0);
            n++;
        }
        snprintf(asset, sizeof(asset), "%s:%s", vstr(in, "asset/code"), vstr(in, "asset/issuer"));
        const char *secret = vstr(in, "source_secret");
        const cJSON *memo = vget(in, "memo_text");
        struct nova_stellar_payment_tx req = {
            .struct_size = sizeof(req),
            .network_passphrase = vstr(in, "network_passphrase"),
            .fee = (uint32_t)vget(t, "outputs/fee_total")->valueint,
            .seq_num = strtoll(vstr(in, "tx_seq_num"), NULL, 10),
            .min_time = (uint64_t)vget(in, "time_bounds/min_time")->valuedouble,
            .max_time = (uint64_t)vget(in, "time_bounds/max_time")->valuedouble,
            .memo_type = cJSON_IsString(memo) ? NOVA_MEMO_TEXT : NOVA_MEMO_NONE,
            .memo_text = cJSON_IsString(memo) ? memo->valuestring : NULL,
            .asset = asset,
            .payments = pays,
            .payment_count = n,
            .signer_secrets = &secret,
            .signer_count = 1,
        };
        struct nova_stellar_signed_tx out;
        ck_assert_msg(nova__stellar_offline_api.build_payment(&req, &out, err, sizeof(err)) == 0,
                      "%s", err);
        ck_assert_str_eq(out.envelope_b64, vstr(t, "outputs/signed_envelope_xdr_base64"));
        ck_assert_str_eq(out.hash_hex, vstr(t, "outputs/tx_hash_hex"));
        nova__stellar_offline_api.signed_tx_free(&out);
        ck_assert_ptr_null(out.envelope_b64);

        /* Explicit source account = the signer's: same bytes. */
        req.source_account = vstr(in, "source_account_id");
        ck_assert_int_eq(nova__stellar_offline_api.build_payment(&req, &out, err, sizeof(err)), 0);
        ck_assert_str_eq(out.hash_hex, vstr(t, "outputs/tx_hash_hex"));
        nova__stellar_offline_api.signed_tx_free(&out);
    }
}
END_TEST

static void expect_build_error(struct nova_stellar_payment_tx *req, const char *reason)
{
    struct nova_stellar_signed_tx out;
    char err[300] = "";
    ck_assert_int_eq(nova__stellar_build_payment(req, &out, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, reason) != NULL, "\"%s\" lacks \"%s\"", err, reason);
    ck_assert_ptr_null(out.envelope_b64);
}

START_TEST(public_api_errors)
{
    const char *secret = vstr(vectors(), "keys/source/secret");
    const char *issuer = vstr(vectors(), "keys/issuer/account_id");
    char asset[128];
    snprintf(asset, sizeof(asset), "NOVA:%s", issuer);
    struct nova_stellar_payment pay = {.destination = vstr(vectors(), "keys/dest1/account_id"),
                                       .amount = 1};
    struct nova_stellar_payment_tx good = {
        .struct_size = sizeof(good),
        .network_passphrase = "Test SDF Network ; September 2015",
        .fee = 100,
        .seq_num = 5,
        .max_time = 10,
        .asset = asset,
        .payments = &pay,
        .payment_count = 1,
        .signer_secrets = &secret,
        .signer_count = 1,
    };
    struct nova_stellar_signed_tx out;
    ck_assert_int_eq(nova__stellar_build_payment(&good, &out, NULL, 0), 0);
    nova__stellar_signed_tx_free(&out);

    struct nova_stellar_payment_tx r = good;
    r.struct_size = 8;
    expect_build_error(&r, "struct_size");
    r = good, r.network_passphrase = "";
    expect_build_error(&r, "network_passphrase");
    r = good, r.payment_count = 0;
    expect_build_error(&r, "payment_count is 0");
    r = good, r.payment_count = 101;
    expect_build_error(&r, "payment_count is 101");
    r = good, r.signer_count = 0;
    expect_build_error(&r, "signer_count");
    r = good, r.max_time = 0;
    expect_build_error(&r, "max_time is required");
    r = good, r.min_time = 11;
    expect_build_error(&r, "min_time is after max_time");
    r = good, r.seq_num = 0;
    expect_build_error(&r, "seq_num");
    r = good, r.memo_type = NOVA_MEMO_TEXT, r.memo_text = "12345678901234567890123456789";
    expect_build_error(&r, "at most 28");
    r = good, r.memo_type = 9;
    expect_build_error(&r, "memo_type");
    const char *bad_secret = issuer; /* a G where an S is needed */
    r = good, r.signer_secrets = &bad_secret;
    expect_build_error(&r, "signer 1: invalid secret seed (S...): version byte");
    r = good, r.source_account = "GABC";
    expect_build_error(&r, "source_account: invalid account id (G...): wrong length");
    r = good, r.asset = "NOVA";
    expect_build_error(&r, "not native or CODE:ISSUER");
    r = good, r.asset = "NOVA-1:GA";
    expect_build_error(&r, "may only contain");
    r = good, r.asset = "ABCDEFGHIJKLM:GA";
    expect_build_error(&r, "1 to 12 characters");
    r = good, r.asset = "NOVA:GA";
    expect_build_error(&r, "asset issuer");
    r = good, r.asset = NULL;
    expect_build_error(&r, "payment 1: no asset");

    struct nova_stellar_payment pays[2] = {pay, pay};
    r = good, r.payments = pays, r.payment_count = 2;
    pays[1].amount = 0;
    expect_build_error(&r, "payment 2: amount must be greater than zero");
    pays[1].amount = 1, pays[1].destination = "MAAA";
    expect_build_error(&r, "payment 2: destination: invalid muxed account (M...): wrong length");
    pays[1].destination = pay.destination, pays[1].source = secret;
    expect_build_error(&r, "payment 2: source: invalid account id (G...): version byte");
    pays[1].source = NULL, pays[1].asset = "native:x";
    expect_build_error(&r, "payment 2: asset");
}
END_TEST

START_TEST(encoding_details)
{
    /* Hand-checked encodings of the parts the vectors do not cover. */
    struct nova__stellar_payment_op op = {.amount = 7};
    struct nova__stellar_tx tx = {.fee = 1, .seq_num = 2, .ops = &op, .op_count = 1};
    struct nova__xdr_writer w = {0};
    char err[200];
    /* PRECOND_NONE, MEMO_ID, native asset, muxed op source. */
    tx.memo.type = NOVA_MEMO_ID;
    tx.memo.id = 0x0102030405060708ull;
    op.has_source = true;
    op.source.muxed = true;
    op.source.id = 9;
    op.asset.type = NOVA__ASSET_NATIVE;
    ck_assert_int_eq(nova__stellar_tx_encode(&tx, &w, err, sizeof(err)), 0);
    const char *want = "00000000" /* source ed25519 */
                       "0000000000000000000000000000000000000000000000000000000000000000"
                       "00000001"         /* fee */
                       "0000000000000002" /* seq */
                       "00000000"         /* PRECOND_NONE */
                       "00000002"
                       "0102030405060708" /* MEMO_ID */
                       "00000001"         /* 1 op */
                       "00000001"         /* source present */
                       "00000100"
                       "0000000000000009" /* muxed: id then key */
                       "0000000000000000000000000000000000000000000000000000000000000000"
                       "00000001" /* PAYMENT */
                       "00000000"
                       "0000000000000000000000000000000000000000000000000000000000000000"
                       "00000000"         /* native */
                       "0000000000000007" /* amount */
                       "00000000";        /* ext */
    assert_hex(w.data, w.len, want);
    nova__xdr_free(&w);

    /* alphanum12 pads the code to 12 bytes; MEMO_HASH is 32 raw bytes. */
    char e[200];
    ck_assert_int_eq(nova__stellar_asset_parse(
                         "NOVAPOINTS:GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF",
                         &op.asset, e, sizeof(e)),
                     0);
    ck_assert_int_eq(op.asset.type, NOVA__ASSET_ALPHANUM12);
    op.has_source = false;
    tx.memo.type = NOVA_MEMO_HASH;
    memset(tx.memo.hash, 0xab, 32);
    tx.has_time_bounds = true;
    tx.min_time = 1;
    tx.max_time = 0; /* 0 = unbounded: allowed with any min_time */
    ck_assert_int_eq(nova__stellar_tx_encode(&tx, &w, err, sizeof(err)), 0);
    char *hex = malloc(2 * w.len + 1);
    nova__hex_encode(w.data, w.len, hex);
    char want_memo[32 + 8 + 8 + 8 + 64 + 1] = "00000001"
                                              "0000000000000001"
                                              "0000000000000000"
                                              "00000003";
    for (int i = 0; i < 32; i++)
        strcat(want_memo, "ab");
    ck_assert_ptr_nonnull(strstr(hex, want_memo));
    ck_assert_ptr_nonnull(strstr(hex, "00000002"
                                      "4e4f5641504f494e54530000" /* NOVAPOINTS\0\0 */
                                      "00000000"));
    free(hex);
    nova__xdr_free(&w);

    /* "ABC" is alphanum4, zero-padded. */
    ck_assert_int_eq(
        nova__stellar_asset_parse("ABC:GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF",
                                  &op.asset, e, sizeof(e)),
        0);
    ck_assert_int_eq(op.asset.type, NOVA__ASSET_ALPHANUM4);
    ck_assert_int_eq(nova__stellar_tx_encode(&tx, &w, err, sizeof(err)), 0);
    hex = malloc(2 * w.len + 1);
    nova__hex_encode(w.data, w.len, hex);
    ck_assert_ptr_nonnull(strstr(hex, "0000000141424300"));
    free(hex);
    nova__xdr_free(&w);

    /* Internal validation: nothing is written on error. */
    tx.min_time = 5, tx.max_time = 4;
    ck_assert_int_eq(nova__stellar_tx_encode(&tx, &w, err, sizeof(err)), -EINVAL);
    ck_assert_uint_eq(w.len, 0);
    tx.max_time = 0;
    op.amount = -1;
    ck_assert_int_eq(nova__stellar_tx_encode(&tx, &w, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "operation 1: amount must be greater than zero");
    op.amount = 1;
    op.asset.type = NOVA__ASSET_ALPHANUM12; /* "ABC" is too short for 12 */
    ck_assert_int_eq(nova__stellar_tx_encode(&tx, &w, err, sizeof(err)), -EINVAL);
    tx.op_count = 0;
    ck_assert_int_eq(nova__stellar_tx_encode(&tx, &w, err, sizeof(err)), -EINVAL);
    tx.op_count = 101;
    ck_assert_int_eq(nova__stellar_tx_encode(&tx, &w, err, sizeof(err)), -EINVAL);
    ck_assert_uint_eq(w.len, 0);
}
END_TEST

START_TEST(many_ops_and_signers)
{
    /* 100 operations and 20 signatures: the largest envelope we build. */
    static struct nova__stellar_payment_op ops[100];
    uint8_t seeds[20][32];
    for (int i = 0; i < 100; i++) {
        memset(&ops[i], 0, sizeof(ops[i]));
        ops[i].destination.muxed = true;
        ops[i].destination.id = (uint64_t)i;
        ops[i].amount = i + 1;
        ops[i].has_source = true;
    }
    for (int i = 0; i < 20; i++)
        memset(seeds[i], i, 32);
    struct nova__stellar_tx tx = {.ops = ops, .op_count = 100, .fee = 10000, .seq_num = 1};
    char *b64;
    uint8_t hash[32];
    char err[200];
    ck_assert_int_eq(nova__stellar_tx_sign(&tx, "x", (const uint8_t(*)[32])seeds, 20, &b64, hash,
                                           err, sizeof(err)),
                     0);
    uint8_t *raw;
    size_t len;
    ck_assert_int_eq(nova__b64_decode(b64, &raw, &len), 0);
    /* type + tx(source 36, fee 4, seq 8, precond 4, memo 4, count 4,
     * 100 x (source flag 4 + G 36 + op type 4 + M 44 + native 4 + amount 8), ext 4)
     * + signature count + 20 x (hint 4 + length 4 + 64) */
    ck_assert_uint_eq(len, 4 + (36 + 4 + 8 + 4 + 4 + 4 + 100 * 100 + 4) + 4 + 20 * 72);
    free(raw);
    free(b64);
    ck_assert_int_eq(nova__stellar_tx_sign(&tx, "x", (const uint8_t(*)[32])seeds, 21, &b64, hash,
                                           err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_null(b64);
}
END_TEST

START_TEST(result_vectors)
{
    const cJSON *s;
    int count = 0;
    cJSON_ArrayForEach(s, vget(vectors(), "horizon_result_xdr_samples"))
    {
        struct nova_stellar_tx_result res;
        char err[200];
        ck_assert_msg(nova__stellar_offline_api.decode_result(vstr(s, "result_xdr"), &res, err,
                                                              sizeof(err)) == 0,
                      "%s: %s", vstr(s, "name"), err);
        ck_assert_str_eq(res.name, vstr(s, "result_codes/transaction"));
        const cJSON *ops = cJSON_GetObjectItem(vget(s, "result_codes"), "operations");
        ck_assert_uint_eq(res.op_count, (size_t)cJSON_GetArraySize(ops));
        for (size_t i = 0; i < res.op_count; i++) {
            ck_assert_str_eq(res.ops[i].name, cJSON_GetArrayItem(ops, (int)i)->valuestring);
            ck_assert_int_eq(res.ops[i].code, 0);
            ck_assert_int_eq(res.ops[i].type, 1);
        }
        count++;
    }
    ck_assert_int_eq(count, 8);

    struct nova_stellar_tx_result res;
    ck_assert_int_eq(
        nova__stellar_result_decode_b64(
            "AAAAAAAAASz/////AAAAAwAAAAAAAAABAAAAAAAAAAAAAAAB////+gAAAAAAAAABAAAAAAAAAAA=", &res,
            NULL, 0),
        0);
    ck_assert_int_eq(res.fee_charged, 300);
    ck_assert_int_eq(res.code, -1);
    ck_assert_int_eq(res.ops[1].result, -6);
}
END_TEST

START_TEST(result_codes_and_fee_bump)
{
    /* A fee-bump result wrapping a failed inner transaction with an outer
     * op failure and a payment failure. */
    struct nova__xdr_writer w = {0};
    uint8_t h[32];
    memset(h, 0x11, 32);
    nova__xdr_put_i64(&w, 400);
    nova__xdr_put_i32(&w, -13);
    nova__xdr_put_fixed(&w, h, 32);
    nova__xdr_put_i64(&w, 200);
    nova__xdr_put_i32(&w, -1);
    nova__xdr_put_u32(&w, 2);
    nova__xdr_put_i32(&w, -1); /* op_bad_auth */
    nova__xdr_put_i32(&w, 0);
    nova__xdr_put_i32(&w, 1);
    nova__xdr_put_i32(&w, -9); /* op_no_issuer */
    nova__xdr_put_i32(&w, 0);  /* inner ext */
    nova__xdr_put_i32(&w, 0);  /* ext */
    struct nova_stellar_tx_result res;
    char err[200];
    ck_assert_int_eq(nova__stellar_result_decode(w.data, w.len, &res, err, sizeof(err)), 0);
    ck_assert_str_eq(res.name, "tx_fee_bump_inner_failed");
    ck_assert(res.has_inner);
    ck_assert_int_eq(res.inner_fee_charged, 200);
    ck_assert_str_eq(res.inner_name, "tx_failed");
    ck_assert_mem_eq(res.inner_hash, h, 32);
    ck_assert_uint_eq(res.op_count, 2);
    ck_assert_str_eq(res.ops[0].name, "op_bad_auth");
    ck_assert_int_eq(res.ops[0].type, -1);
    ck_assert_str_eq(res.ops[1].name, "op_no_issuer");

    /* Every prefix is truncated, and one extra byte is trailing garbage. */
    for (size_t n = 0; n < w.len; n++)
        ck_assert_int_eq(nova__stellar_result_decode(w.data, n, &res, err, sizeof(err)), -EBADMSG);
    nova__xdr_put_raw(&w, "\0\0\0\0", 4);
    ck_assert_int_eq(nova__stellar_result_decode(w.data, w.len, &res, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "trailing"));
    nova__xdr_free(&w);

    /* Names as Horizon spells them. */
    ck_assert_str_eq(nova__stellar_tx_code_name(-5), "tx_bad_seq");
    ck_assert_str_eq(nova__stellar_tx_code_name(-3), "tx_too_late");
    ck_assert_str_eq(nova__stellar_tx_code_name(-9), "tx_insufficient_fee");
    ck_assert_str_eq(nova__stellar_tx_code_name(-17), "tx_soroban_invalid");
    ck_assert_str_eq(nova__stellar_tx_code_name(1), "tx_fee_bump_inner_success");
    ck_assert_str_eq(nova__stellar_tx_code_name(-19), "unknown");
    ck_assert_str_eq(nova__stellar_tx_code_name(2), "unknown");
    ck_assert_str_eq(nova__stellar_payment_code_name(-2), "op_underfunded");
    ck_assert_str_eq(nova__stellar_payment_code_name(-5), "op_no_destination");
    ck_assert_str_eq(nova__stellar_payment_code_name(-10), "unknown");
    ck_assert_str_eq(nova__stellar_op_code_name(-2), "op_no_source_account");

    /* Malformed: non-payment op type, unknown op code, too many results,
     * non-zero ext, base64 junk. */
    const struct {
        const char *b64;
        const char *reason;
    } bad[] = {
        {"AAAAAAAAAGQAAAAAAAAAAQAAAAAAAAACAAAAAAAAAAA=", "operation type 2"},
        {"AAAAAAAAAGQAAAAAAAAAAf////kAAAAA", "unknown result code -7"},
        {"AAAAAAAAAGQAAAAAAAAAZQ==", "101 operation results"},
        {"AAAAAAAAAAD////7AAAAAQ==", "ext version 1"},
        {"AAAAAAAAAGT/////AAAAAQAAAAAAAAAB////9gAAAAA=", "payment result code -10"},
        {"AAAAAAAAAAD////tAAAAAA==", "unknown result code -19"},
        {"not base64!", "base64"},
        {"", "truncated"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(nova__stellar_result_decode_b64(bad[i].b64, &res, err, sizeof(err)),
                         -EBADMSG);
        ck_assert_msg(strstr(err, bad[i].reason) != NULL, "%s: \"%s\" lacks \"%s\"", bad[i].b64,
                      err, bad[i].reason);
    }
}
END_TEST

START_TEST(xdr_reader_bounds)
{
    uint8_t buf[8] = {0, 0, 0, 5, 'a', 'b', 'c', 'd'};
    struct nova__xdr_reader r;
    const uint8_t *p;
    uint32_t n;
    nova__xdr_reader_init(&r, buf, sizeof(buf));
    ck_assert_int_eq(nova__xdr_get_var(&r, 100, &p, &n), -EBADMSG); /* 5 + 3 pad > 4 left */
    nova__xdr_reader_init(&r, buf, sizeof(buf));
    ck_assert_int_eq(nova__xdr_get_var(&r, 4, &p, &n), -EBADMSG); /* over max */
    buf[3] = 3;
    buf[7] = 1; /* non-zero padding */
    nova__xdr_reader_init(&r, buf, sizeof(buf));
    ck_assert_int_eq(nova__xdr_get_var(&r, 100, &p, &n), -EBADMSG);
    buf[7] = 0;
    nova__xdr_reader_init(&r, buf, sizeof(buf));
    ck_assert_int_eq(nova__xdr_get_var(&r, 100, &p, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(nova__xdr_remaining(&r), 0);
    /* After an error every later read fails too. */
    uint64_t u;
    ck_assert_int_eq(nova__xdr_get_u64(&r, &u), -EBADMSG);
    ck_assert_uint_eq(nova__xdr_remaining(&r), 0);
    /* A huge declared length cannot wrap the bounds check. */
    uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    nova__xdr_reader_init(&r, huge, 4);
    ck_assert_int_eq(nova__xdr_get_var(&r, UINT32_MAX, &p, &n), -EBADMSG);
    bool b;
    uint8_t two[4] = {0, 0, 0, 2};
    nova__xdr_reader_init(&r, two, 4);
    ck_assert_int_eq(nova__xdr_get_bool(&r, &b), -EBADMSG);

    /* base64 strictness */
    uint8_t *out;
    size_t len;
    ck_assert_int_eq(nova__b64_decode("AAAAAQ==", &out, &len), 0);
    ck_assert_uint_eq(len, 4);
    free(out);
    ck_assert_int_eq(nova__b64_decode("AAAAAQ=", &out, &len), -EINVAL);
    ck_assert_int_eq(nova__b64_decode("AAAAAQ", &out, &len), -EINVAL);
    ck_assert_int_eq(nova__b64_decode("AAAA AQ==", &out, &len), -EINVAL);
    ck_assert_int_eq(nova__b64_decode("AAAAAR==", &out, &len), -EINVAL); /* non-zero bits */
    /* Bytes >= 0x80 are not base64 (libsodium alone accepts some of them). */
    ck_assert_int_eq(nova__b64_decode("A\xff\xff\xff", &out, &len), -EINVAL);
    ck_assert_int_eq(nova__b64_decode("AAA\xc3", &out, &len), -EINVAL);
    ck_assert_int_eq(nova__b64_decode("A=AA", &out, &len), -EINVAL);
    ck_assert_int_eq(nova__b64_decode("AA=A", &out, &len), -EINVAL);
    ck_assert_int_eq(nova__b64_decode("A===", &out, &len), -EINVAL);
    ck_assert_int_eq(nova__b64_decode("", &out, &len), 0);
    ck_assert_uint_eq(len, 0);
    free(out);
}
END_TEST

START_TEST(envelope_vectors)
{
    const cJSON *t;
    int count = 0;
    cJSON_ArrayForEach(t, vget(vectors(), "transactions"))
    {
        const cJSON *out = vget(t, "outputs");
        const char *pass = vstr(t, "inputs/network_passphrase");
        uint8_t *raw;
        size_t len;
        char err[200], hash_hex[65];
        ck_assert_int_eq(nova__b64_decode(vstr(out, "signed_envelope_xdr_base64"), &raw, &len), 0);
        struct nova__stellar_envelope env;
        ck_assert_msg(nova__stellar_envelope_decode(raw, len, &env, err, sizeof(err)) == 0, "%s",
                      err);
        assert_hex(env.tx_xdr, env.tx_len, vstr(out, "transaction_xdr_hex"));
        ck_assert_uint_eq(env.sig_count, 1);
        assert_hex(env.sigs[0].sig, 64, vstr(out, "signature_hex"));
        assert_hex(env.sigs[0].hint, 4, vstr(out, "signature_hint_hex"));
        ck_assert_uint_eq(env.tx.op_count, (size_t)cJSON_GetArraySize(vget(t, "inputs/payments")));
        /* Re-encoding the decoded transaction gives the same bytes. */
        struct nova__xdr_writer w = {0};
        ck_assert_int_eq(nova__stellar_tx_encode(&env.tx, &w, err, sizeof(err)), 0);
        ck_assert_uint_eq(w.len, env.tx_len);
        ck_assert_mem_eq(w.data, env.tx_xdr, w.len);
        nova__xdr_free(&w);
        nova__stellar_envelope_free(&env);
        ck_assert_int_eq(nova__stellar_envelope_hash(vstr(out, "signed_envelope_xdr_base64"), pass,
                                                     hash_hex, err, sizeof(err)),
                         0);
        ck_assert_str_eq(hash_hex, vstr(out, "tx_hash_hex"));
        ck_assert_int_eq(nova__stellar_envelope_hash(vstr(out, "unsigned_envelope_xdr_base64"),
                                                     pass, hash_hex, err, sizeof(err)),
                         0);
        ck_assert_str_eq(hash_hex, vstr(out, "tx_hash_hex"));
        /* Every strict prefix and any trailing byte is malformed. */
        for (size_t n = 0; n < len; n++)
            ck_assert_int_eq(nova__stellar_envelope_decode(raw, n, &env, NULL, 0), -EBADMSG);
        uint8_t *more = malloc(len + 4);
        memcpy(more, raw, len);
        memset(more + len, 0, 4);
        ck_assert_int_eq(nova__stellar_envelope_decode(more, len + 4, &env, err, sizeof(err)),
                         -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err, "trailing bytes"));
        free(more);
        free(raw);
        count++;
    }
    ck_assert_int_eq(count, 3);

    /* Unsupported or malformed envelopes, each with its reason. */
    uint8_t *raw;
    size_t len;
    char err[200];
    struct nova__stellar_envelope env;
    const char *b64 = vstr(vectors(), "transactions/0/outputs/signed_envelope_xdr_base64");
    const struct {
        size_t off;
        uint8_t byte;
        const char *reason;
    } bad[] = {
        {3, 5, "only v1 transaction envelopes"},
        {7, 1, "unsupported account key type"},
        {55, 2, "only PRECOND_NONE and PRECOND_TIME"},
        {59, 0xff, "min_time is after max_time"},
        {75, 5, "unknown memo type"},
        {79, 29, "memo text"},
        {99, 0, "operation count must be 1 to 100"},
        {103, 2, "operation source flag"},
        {107, 2, "only payment operations"},
        {147, 3, "unknown asset type"},
        {148, 0, "after its zero padding"},
        {151, '-', "asset code is not"},
        {188, 0x80, "amount must be greater than zero"},
        {199, 1, "transaction ext must be 0"},
        {203, 21, "signature count"},
        {211, 60, "signature is not 64 bytes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(nova__b64_decode(b64, &raw, &len), 0);
        ck_assert_uint_eq(len, 276);
        raw[bad[i].off] = bad[i].byte;
        ck_assert_int_eq(nova__stellar_envelope_decode(raw, len, &env, err, sizeof(err)), -EBADMSG);
        ck_assert_msg(strstr(err, bad[i].reason) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err,
                      bad[i].reason);
        free(raw);
    }
    char hash_hex[65];
    ck_assert_int_eq(nova__stellar_envelope_hash("AAAA", "x", hash_hex, err, sizeof(err)),
                     -EBADMSG);
    ck_assert_int_eq(nova__stellar_envelope_hash("A", "x", hash_hex, err, sizeof(err)), -EBADMSG);
    ck_assert_int_eq(nova__stellar_envelope_hash(b64, "", hash_hex, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(remaining_vectors)
{
    /* networks */
    uint8_t nid[32];
    nova__stellar_network_id(vstr(vectors(), "networks/testnet_passphrase"), nid);
    assert_hex(nid, 32, vstr(vectors(), "networks/testnet_network_id_hex"));
    nova__stellar_network_id(vstr(vectors(), "networks/public_passphrase"), nid);
    assert_hex(nid, 32, vstr(vectors(), "networks/public_network_id_hex"));

    /* Horizon form bodies */
    const cJSON *t;
    cJSON_ArrayForEach(t, vget(vectors(), "transactions"))
    {
        char *body = nova__stellar_horizon_form_body(vstr(t, "outputs/signed_envelope_xdr_base64"));
        ck_assert_str_eq(body, vstr(t, "outputs/horizon_form_body"));
        free(body);
    }
    char *body = nova__stellar_horizon_form_body("a+b/c=");
    ck_assert_str_eq(body, "tx=a%2Bb%2Fc%3D");
    free(body);

    /* The NOVA Stellar Asset Contract on testnet. */
    char asset[128], out[NOVA_STRKEY_MAX], err[200];
    snprintf(asset, sizeof(asset), "NOVA:%s", vstr(vectors(), "keys/issuer/account_id"));
    ck_assert_int_eq(
        nova__stellar_offline_api.asset_contract_id(
            asset, vstr(vectors(), "networks/testnet_passphrase"), out, err, sizeof(err)),
        0);
    ck_assert_str_eq(out, vstr(vectors(), "soroban/nova_sac_contract_id_testnet"));
    ck_assert_int_eq(
        nova__stellar_offline_api.asset_contract_id("NOVA", "x", out, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(nova__stellar_offline_api.asset_contract_id(asset, "", out, err, sizeof(err)),
                     -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stellar_tx");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, transaction_vectors);
    tcase_add_test(tc, public_api_vectors);
    tcase_add_test(tc, public_api_errors);
    tcase_add_test(tc, encoding_details);
    tcase_add_test(tc, many_ops_and_signers);
    tcase_add_test(tc, result_vectors);
    tcase_add_test(tc, result_codes_and_fee_bump);
    tcase_add_test(tc, xdr_reader_bounds);
    tcase_add_test(tc, remaining_vectors);
    tcase_add_test(tc, envelope_vectors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
