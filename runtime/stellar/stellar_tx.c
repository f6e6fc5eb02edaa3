#include "config.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "stellar/stellar_err.h"
#include "stellar/stellar_tx.h"

#define KEY_TYPE_ED25519        0
#define KEY_TYPE_MUXED_ED25519  0x100
#define PUBLIC_KEY_TYPE_ED25519 0
#define PRECOND_NONE            0
#define PRECOND_TIME            1
#define OP_PAYMENT              1

/* ---- assets and memos --------------------------------------------------- */

static bool asset_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int nova__stellar_asset_parse(const char *text, struct nova__stellar_asset *out, char *err,
                              size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] == '\0')
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "asset is empty (use native or CODE:ISSUER)");
    if (strcmp(text, "native") == 0) {
        out->type = NOVA__ASSET_NATIVE;
        return 0;
    }
    const char *colon = strchr(text, ':');
    if (colon == NULL)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "asset \"%.40s\" is not native or CODE:ISSUER", text);
    size_t n = (size_t)(colon - text);
    if (n == 0 || n > 12)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "asset code \"%.*s\" must have 1 to 12 characters",
                                  (int)(n > 20 ? 20 : n), text);
    for (size_t i = 0; i < n; i++)
        if (!asset_char_ok(text[i]))
            return nova__stellar_fail(err, errlen, -EINVAL,
                                      "asset code \"%.*s\" may only contain A-Z, a-z and 0-9",
                                      (int)n, text);
    memcpy(out->code, text, n);
    out->code[n] = '\0';
    out->type = n <= 4 ? NOVA__ASSET_ALPHANUM4 : NOVA__ASSET_ALPHANUM12;
    char e[160];
    if (nova__strkey_decode32(colon + 1, NOVA_STRKEY_ACCOUNT, out->issuer, e, sizeof(e)) < 0)
        return nova__stellar_fail(err, errlen, -EINVAL, "asset issuer: %s", e);
    return 0;
}

int nova__stellar_memo_text(struct nova__stellar_memo *memo, const char *text, char *err,
                            size_t errlen)
{
    size_t n = text ? strlen(text) : 0;
    if (n > NOVA_STELLAR_MEMO_TEXT_MAX)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "memo text is %zu bytes, at most 28 are allowed", n);
    memo->type = NOVA_MEMO_TEXT;
    if (n)
        memcpy(memo->text, text, n);
    memo->text_len = n;
    return 0;
}

/* ---- encoding ------------------------------------------------------------ */

static void put_muxed(struct nova__xdr_writer *w, const struct nova__muxed_account *a)
{
    if (a->muxed) {
        /* XDR order is id then key: the reverse of the M... StrKey payload. */
        nova__xdr_put_i32(w, KEY_TYPE_MUXED_ED25519);
        nova__xdr_put_u64(w, a->id);
    } else {
        nova__xdr_put_i32(w, KEY_TYPE_ED25519);
    }
    nova__xdr_put_fixed(w, a->key, 32);
}

static void put_asset(struct nova__xdr_writer *w, const struct nova__stellar_asset *a)
{
    nova__xdr_put_i32(w, (int32_t)a->type);
    if (a->type == NOVA__ASSET_NATIVE)
        return;
    uint8_t code[12] = {0};
    size_t width = a->type == NOVA__ASSET_ALPHANUM4 ? 4 : 12;
    memcpy(code, a->code, strnlen(a->code, width));
    nova__xdr_put_fixed(w, code, width);
    nova__xdr_put_i32(w, PUBLIC_KEY_TYPE_ED25519);
    nova__xdr_put_fixed(w, a->issuer, 32);
}

static int check_asset(const struct nova__stellar_asset *a, size_t op, char *err, size_t errlen)
{
    if (a->type == NOVA__ASSET_NATIVE)
        return 0;
    if (a->type != NOVA__ASSET_ALPHANUM4 && a->type != NOVA__ASSET_ALPHANUM12)
        return nova__stellar_fail(err, errlen, -EINVAL, "operation %zu: unknown asset type %d", op,
                                  (int)a->type);
    size_t n = strnlen(a->code, sizeof(a->code));
    bool four = a->type == NOVA__ASSET_ALPHANUM4;
    if (n == sizeof(a->code) || n == 0 || (four && n > 4) || (!four && n < 5))
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "operation %zu: asset code must have %s characters", op,
                                  four ? "1 to 4" : "5 to 12");
    for (size_t i = 0; i < n; i++)
        if (!asset_char_ok(a->code[i]))
            return nova__stellar_fail(err, errlen, -EINVAL,
                                      "operation %zu: asset code may only contain A-Z, a-z, 0-9",
                                      op);
    return 0;
}

static int check_tx(const struct nova__stellar_tx *tx, char *err, size_t errlen)
{
    if (tx->op_count == 0 || tx->ops == NULL)
        return nova__stellar_fail(err, errlen, -EINVAL, "a transaction needs at least 1 operation");
    if (tx->op_count > NOVA_STELLAR_MAX_OPS)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "%zu operations, at most 100 fit in one transaction",
                                  tx->op_count);
    if (tx->has_time_bounds && tx->max_time != 0 && tx->min_time > tx->max_time)
        return nova__stellar_fail(err, errlen, -EINVAL, "min_time %llu is after max_time %llu",
                                  (unsigned long long)tx->min_time,
                                  (unsigned long long)tx->max_time);
    switch (tx->memo.type) {
    case NOVA_MEMO_NONE:
    case NOVA_MEMO_ID:
    case NOVA_MEMO_HASH:
    case NOVA_MEMO_RETURN:
        break;
    case NOVA_MEMO_TEXT:
        if (tx->memo.text_len > NOVA_STELLAR_MEMO_TEXT_MAX)
            return nova__stellar_fail(err, errlen, -EINVAL, "memo text longer than 28 bytes");
        break;
    default:
        return nova__stellar_fail(err, errlen, -EINVAL, "unknown memo type %d", (int)tx->memo.type);
    }
    for (size_t i = 0; i < tx->op_count; i++) {
        const struct nova__stellar_payment_op *op = &tx->ops[i];
        if (op->amount <= 0)
            return nova__stellar_fail(err, errlen, -EINVAL,
                                      "operation %zu: amount must be greater than zero", i + 1);
        int rc = check_asset(&op->asset, i + 1, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int nova__stellar_tx_encode(const struct nova__stellar_tx *tx, struct nova__xdr_writer *w,
                            char *err, size_t errlen)
{
    int rc = check_tx(tx, err, errlen);
    if (rc < 0)
        return rc;
    put_muxed(w, &tx->source);
    nova__xdr_put_u32(w, tx->fee);
    nova__xdr_put_i64(w, tx->seq_num);
    if (tx->has_time_bounds) {
        nova__xdr_put_i32(w, PRECOND_TIME);
        nova__xdr_put_u64(w, tx->min_time);
        nova__xdr_put_u64(w, tx->max_time);
    } else {
        nova__xdr_put_i32(w, PRECOND_NONE);
    }
    nova__xdr_put_i32(w, (int32_t)tx->memo.type);
    switch (tx->memo.type) {
    case NOVA_MEMO_TEXT:
        nova__xdr_put_var(w, tx->memo.text, tx->memo.text_len);
        break;
    case NOVA_MEMO_ID:
        nova__xdr_put_u64(w, tx->memo.id);
        break;
    case NOVA_MEMO_HASH:
    case NOVA_MEMO_RETURN:
        nova__xdr_put_fixed(w, tx->memo.hash, 32);
        break;
    default:
        break;
    }
    nova__xdr_put_u32(w, (uint32_t)tx->op_count);
    for (size_t i = 0; i < tx->op_count; i++) {
        const struct nova__stellar_payment_op *op = &tx->ops[i];
        nova__xdr_put_u32(w, op->has_source ? 1 : 0);
        if (op->has_source)
            put_muxed(w, &op->source);
        nova__xdr_put_i32(w, OP_PAYMENT);
        put_muxed(w, &op->destination);
        put_asset(w, &op->asset);
        nova__xdr_put_i64(w, op->amount);
    }
    nova__xdr_put_i32(w, 0); /* ext: v0 */
    if (w->err)
        return nova__stellar_fail(err, errlen, w->err, "cannot encode the transaction: %s",
                                  strerror(-w->err));
    return 0;
}

/* ---- hashing and signing ------------------------------------------------- */

void nova__stellar_network_id(const char *passphrase, uint8_t out[32])
{
    crypto_hash_sha256(out, (const unsigned char *)passphrase, strlen(passphrase));
}

void nova__stellar_tx_hash(const char *passphrase, const uint8_t *tx_xdr, size_t len,
                           uint8_t hash[32])
{
    static const uint8_t envelope_type[4] = {0, 0, 0, NOVA__ENVELOPE_TYPE_TX};
    uint8_t network_id[32];
    crypto_hash_sha256_state st;
    nova__stellar_network_id(passphrase, network_id);
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, network_id, 32);
    crypto_hash_sha256_update(&st, envelope_type, 4);
    crypto_hash_sha256_update(&st, tx_xdr, len);
    crypto_hash_sha256_final(&st, hash);
}

int nova__stellar_seed_public_key(const uint8_t seed[32], uint8_t pk[32])
{
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    if (sodium_init() < 0)
        return -EIO;
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof(sk));
    return 0;
}

int nova__stellar_sign_hash(const uint8_t seed[32], const uint8_t hash[32],
                            struct nova__stellar_signature *out)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    if (sodium_init() < 0)
        return -EIO;
    crypto_sign_seed_keypair(pk, sk, seed);
    crypto_sign_detached(out->sig, NULL, hash, 32, sk);
    sodium_memzero(sk, sizeof(sk));
    memcpy(out->hint, pk + 28, 4);
    return 0;
}

void nova__stellar_envelope_encode(const uint8_t *tx_xdr, size_t len,
                                   const struct nova__stellar_signature *sigs, size_t nsigs,
                                   struct nova__xdr_writer *w)
{
    nova__xdr_put_i32(w, NOVA__ENVELOPE_TYPE_TX);
    nova__xdr_put_raw(w, tx_xdr, len);
    nova__xdr_put_u32(w, (uint32_t)nsigs);
    for (size_t i = 0; i < nsigs; i++) {
        nova__xdr_put_fixed(w, sigs[i].hint, 4);
        nova__xdr_put_var(w, sigs[i].sig, 64);
    }
}

int nova__stellar_tx_sign(const struct nova__stellar_tx *tx, const char *passphrase,
                          const uint8_t (*seeds)[32], size_t nseeds, char **envelope_b64,
                          uint8_t hash[32], char *err, size_t errlen)
{
    *envelope_b64 = NULL;
    if (passphrase == NULL || passphrase[0] == '\0')
        return nova__stellar_fail(err, errlen, -EINVAL, "network passphrase is empty");
    if (nseeds == 0 || nseeds > NOVA_STELLAR_MAX_SIGNATURES)
        return nova__stellar_fail(err, errlen, -EINVAL, "%zu signers, expected 1 to 20", nseeds);
    struct nova__xdr_writer txw = {0}, env = {0};
    struct nova__stellar_signature sigs[NOVA_STELLAR_MAX_SIGNATURES];
    int rc = nova__stellar_tx_encode(tx, &txw, err, errlen);
    if (rc < 0)
        goto out;
    nova__stellar_tx_hash(passphrase, txw.data, txw.len, hash);
    for (size_t i = 0; i < nseeds; i++) {
        if ((rc = nova__stellar_sign_hash(seeds[i], hash, &sigs[i])) < 0) {
            nova__stellar_fail(err, errlen, rc, "libsodium could not be initialised");
            goto out;
        }
    }
    nova__stellar_envelope_encode(txw.data, txw.len, sigs, nseeds, &env);
    if (env.err) {
        rc = nova__stellar_fail(err, errlen, env.err, "cannot encode the envelope");
        goto out;
    }
    if ((*envelope_b64 = nova__b64_encode(env.data, env.len)) == NULL)
        rc = nova__stellar_fail(err, errlen, -ENOMEM, "out of memory");
out:
    nova__xdr_free(&txw);
    nova__xdr_free(&env);
    return rc;
}

int nova__stellar_asset_contract_id(const char *passphrase, const struct nova__stellar_asset *asset,
                                    uint8_t out[32])
{
    static const uint8_t head[4] = {0, 0, 0, 8}; /* ENVELOPE_TYPE_CONTRACT_ID */
    static const uint8_t from_asset[4] = {0, 0, 0, 1};
    struct nova__xdr_writer w = {0};
    uint8_t network_id[32];
    char err[160];
    if (check_asset(asset, 0, err, sizeof(err)) < 0)
        return -EINVAL;
    nova__stellar_network_id(passphrase, network_id);
    nova__xdr_put_raw(&w, head, 4);
    nova__xdr_put_raw(&w, network_id, 32);
    nova__xdr_put_raw(&w, from_asset, 4);
    put_asset(&w, asset);
    int rc = w.err;
    if (rc == 0)
        crypto_hash_sha256(out, w.data, w.len);
    nova__xdr_free(&w);
    return rc;
}

char *nova__stellar_horizon_form_body(const char *envelope_b64)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(envelope_b64);
    char *out = malloc(3 + 3 * n + 1), *o = out;
    if (out == NULL)
        return NULL;
    memcpy(o, "tx=", 3);
    o += 3;
    for (const unsigned char *p = (const unsigned char *)envelope_b64; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* ---- envelope decoding -------------------------------------------------- */

struct envdec {
    struct nova__xdr_reader r;
    char *err;
    size_t errlen;
};

static int env_bad(struct envdec *d, const char *what)
{
    return nova__stellar_fail(d->err, d->errlen, -EBADMSG,
                              "malformed TransactionEnvelope: %s (at byte %zu of %zu)", what,
                              d->r.off, d->r.len);
}

static int get_muxed(struct envdec *d, struct nova__muxed_account *a, const char *what)
{
    int32_t type;
    const uint8_t *key;
    memset(a, 0, sizeof(*a));
    if (nova__xdr_get_i32(&d->r, &type) < 0)
        return env_bad(d, what);
    if (type == KEY_TYPE_MUXED_ED25519) {
        a->muxed = true;
        if (nova__xdr_get_u64(&d->r, &a->id) < 0)
            return env_bad(d, what);
    } else if (type != KEY_TYPE_ED25519) {
        return env_bad(d, "unsupported account key type");
    }
    if (nova__xdr_get_fixed(&d->r, 32, &key) < 0)
        return env_bad(d, what);
    memcpy(a->key, key, 32);
    return 0;
}

static int get_asset(struct envdec *d, struct nova__stellar_asset *a)
{
    int32_t type, kt;
    const uint8_t *code, *issuer;
    memset(a, 0, sizeof(*a));
    if (nova__xdr_get_i32(&d->r, &type) < 0)
        return env_bad(d, "asset");
    if (type == NOVA__ASSET_NATIVE)
        return 0;
    if (type != NOVA__ASSET_ALPHANUM4 && type != NOVA__ASSET_ALPHANUM12)
        return env_bad(d, "unknown asset type");
    size_t width = type == NOVA__ASSET_ALPHANUM4 ? 4 : 12;
    if (nova__xdr_get_fixed(&d->r, width, &code) < 0 || nova__xdr_get_i32(&d->r, &kt) < 0)
        return env_bad(d, "asset");
    if (kt != PUBLIC_KEY_TYPE_ED25519)
        return env_bad(d, "unsupported issuer key type");
    if (nova__xdr_get_fixed(&d->r, 32, &issuer) < 0)
        return env_bad(d, "asset issuer");
    /* Canonical codes only: characters, then zero padding to the width. */
    size_t n = 0;
    while (n < width && code[n] != 0)
        n++;
    for (size_t i = n; i < width; i++)
        if (code[i] != 0)
            return env_bad(d, "asset code has bytes after its zero padding");
    a->type = (enum nova__asset_type)type;
    memcpy(a->code, code, n);
    a->code[n] = '\0';
    memcpy(a->issuer, issuer, 32);
    char e[160];
    if (check_asset(a, 0, e, sizeof(e)) < 0)
        return env_bad(d, "asset code is not 1-4 / 5-12 characters of A-Z, a-z, 0-9");
    return 0;
}

int nova__stellar_envelope_decode(const uint8_t *xdr, size_t len,
                                  struct nova__stellar_envelope *out, char *err, size_t errlen)
{
    struct envdec d = {.err = err, .errlen = errlen};
    struct nova__stellar_tx *tx = &out->tx;
    int32_t v;
    uint32_t count;
    int rc;
    memset(out, 0, sizeof(*out));
    nova__xdr_reader_init(&d.r, xdr, len);
    if (nova__xdr_get_i32(&d.r, &v) < 0)
        return env_bad(&d, "envelope type");
    if (v != NOVA__ENVELOPE_TYPE_TX)
        return env_bad(&d, "only v1 transaction envelopes (type 2) are supported");
    size_t tx_start = d.r.off;
    if ((rc = get_muxed(&d, &tx->source, "source account")) < 0)
        return rc;
    if (nova__xdr_get_u32(&d.r, &tx->fee) < 0 || nova__xdr_get_i64(&d.r, &tx->seq_num) < 0 ||
        nova__xdr_get_i32(&d.r, &v) < 0)
        return env_bad(&d, "fee, sequence or preconditions");
    if (v == PRECOND_TIME) {
        tx->has_time_bounds = true;
        if (nova__xdr_get_u64(&d.r, &tx->min_time) < 0 ||
            nova__xdr_get_u64(&d.r, &tx->max_time) < 0)
            return env_bad(&d, "time bounds");
        /* Never valid on the network, and our encoder refuses it too. */
        if (tx->max_time != 0 && tx->min_time > tx->max_time)
            return env_bad(&d, "min_time is after max_time");
    } else if (v != PRECOND_NONE) {
        return env_bad(&d, "only PRECOND_NONE and PRECOND_TIME are supported");
    }
    if (nova__xdr_get_i32(&d.r, &v) < 0)
        return env_bad(&d, "memo");
    const uint8_t *p;
    uint32_t n;
    switch (v) {
    case NOVA_MEMO_NONE:
        break;
    case NOVA_MEMO_TEXT:
        if (nova__xdr_get_var(&d.r, NOVA_STELLAR_MEMO_TEXT_MAX, &p, &n) < 0)
            return env_bad(&d, "memo text (at most 28 bytes)");
        memcpy(tx->memo.text, p, n);
        tx->memo.text_len = n;
        break;
    case NOVA_MEMO_ID:
        if (nova__xdr_get_u64(&d.r, &tx->memo.id) < 0)
            return env_bad(&d, "memo id");
        break;
    case NOVA_MEMO_HASH:
    case NOVA_MEMO_RETURN:
        if (nova__xdr_get_fixed(&d.r, 32, &p) < 0)
            return env_bad(&d, "memo hash");
        memcpy(tx->memo.hash, p, 32);
        break;
    default:
        return env_bad(&d, "unknown memo type");
    }
    tx->memo.type = (enum nova_stellar_memo_type)v;
    if (nova__xdr_get_u32(&d.r, &count) < 0)
        return env_bad(&d, "operation count");
    if (count == 0 || count > NOVA_STELLAR_MAX_OPS)
        return env_bad(&d, "operation count must be 1 to 100");
    out->ops = calloc(count, sizeof(*out->ops));
    if (out->ops == NULL)
        return nova__stellar_fail(err, errlen, -ENOMEM, "out of memory");
    for (uint32_t i = 0; i < count; i++) {
        struct nova__stellar_payment_op *op = &out->ops[i];
        bool present;
        if (nova__xdr_get_bool(&d.r, &present) < 0) {
            rc = env_bad(&d, "operation source flag");
            goto fail;
        }
        op->has_source = present;
        if (present && (rc = get_muxed(&d, &op->source, "operation source")) < 0)
            goto fail;
        if (nova__xdr_get_i32(&d.r, &v) < 0) {
            rc = env_bad(&d, "operation type");
            goto fail;
        }
        if (v != OP_PAYMENT) {
            rc = env_bad(&d, "only payment operations are supported");
            goto fail;
        }
        if ((rc = get_muxed(&d, &op->destination, "destination")) < 0 ||
            (rc = get_asset(&d, &op->asset)) < 0)
            goto fail;
        if (nova__xdr_get_i64(&d.r, &op->amount) < 0) {
            rc = env_bad(&d, "amount");
            goto fail;
        }
        if (op->amount <= 0) {
            rc = env_bad(&d, "amount must be greater than zero");
            goto fail;
        }
    }
    tx->ops = out->ops;
    tx->op_count = count;
    if (nova__xdr_get_i32(&d.r, &v) < 0 || v != 0) {
        rc = env_bad(&d, "transaction ext must be 0 (no Soroban data)");
        goto fail;
    }
    out->tx_xdr = xdr + tx_start;
    out->tx_len = d.r.off - tx_start;
    if (nova__xdr_get_u32(&d.r, &count) < 0 || count > NOVA_STELLAR_MAX_SIGNATURES) {
        rc = env_bad(&d, "signature count (at most 20)");
        goto fail;
    }
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *hint;
        if (nova__xdr_get_fixed(&d.r, 4, &hint) < 0 || nova__xdr_get_var(&d.r, 64, &p, &n) < 0) {
            rc = env_bad(&d, "signature");
            goto fail;
        }
        if (n != 64) {
            rc = env_bad(&d, "signature is not 64 bytes (ed25519)");
            goto fail;
        }
        memcpy(out->sigs[i].hint, hint, 4);
        memcpy(out->sigs[i].sig, p, 64);
    }
    out->sig_count = count;
    if (nova__xdr_remaining(&d.r) != 0) {
        rc = env_bad(&d, "trailing bytes");
        goto fail;
    }
    return 0;
fail:
    nova__stellar_envelope_free(out);
    return rc;
}

void nova__stellar_envelope_free(struct nova__stellar_envelope *env)
{
    if (env == NULL)
        return;
    free(env->ops);
    memset(env, 0, sizeof(*env));
}

/* ---- result codes ------------------------------------------------------- */

static const char *const tx_names[] = {
    /* index = -code, codes 0 .. -18 */
    "tx_success",
    "tx_failed",
    "tx_too_early",
    "tx_too_late",
    "tx_missing_operation",
    "tx_bad_seq",
    "tx_bad_auth",
    "tx_insufficient_balance",
    "tx_no_source_account",
    "tx_insufficient_fee",
    "tx_bad_auth_extra",
    "tx_internal_error",
    "tx_not_supported",
    "tx_fee_bump_inner_failed",
    "tx_bad_sponsorship",
    "tx_bad_minseq_age_or_gap",
    "tx_malformed",
    "tx_soroban_invalid",
    /* -18 is newer than Horizon 24; named in Horizon's style. */
    "tx_frozen_key_accessed",
};

const char *nova__stellar_tx_code_name(int32_t code)
{
    if (code == 1)
        return "tx_fee_bump_inner_success";
    if (code <= 0 && code >= -(int32_t)(sizeof(tx_names) / sizeof(tx_names[0]) - 1))
        return tx_names[-code];
    return "unknown";
}

const char *nova__stellar_op_code_name(int32_t code)
{
    static const char *const names[] = {
        "op_inner",
        "op_bad_auth",
        "op_no_source_account",
        "op_not_supported",
        "op_too_many_subentries",
        "op_exceeded_work_limit",
        "op_too_many_sponsoring",
    };
    if (code <= 0 && code >= -(int32_t)(sizeof(names) / sizeof(names[0]) - 1))
        return names[-code];
    return "unknown";
}

const char *nova__stellar_payment_code_name(int32_t code)
{
    static const char *const names[] = {
        "op_success",      "op_malformed",          "op_underfunded",
        "op_src_no_trust", "op_src_not_authorized", "op_no_destination",
        "op_no_trust",     "op_not_authorized",     "op_line_full",
        "op_no_issuer",
    };
    if (code <= 0 && code >= -(int32_t)(sizeof(names) / sizeof(names[0]) - 1))
        return names[-code];
    return "unknown";
}

/* ---- result decoding ----------------------------------------------------- */

/* The reader only fails here by running out of input. */
static int bad(struct nova__xdr_reader *r, char *err, size_t errlen, const char *what)
{
    return nova__stellar_fail(err, errlen, -EBADMSG,
                              "malformed TransactionResult: truncated at the %s (%zu bytes)", what,
                              r->len);
}

static int decode_op_results(struct nova__xdr_reader *r, struct nova_stellar_tx_result *out,
                             char *err, size_t errlen)
{
    uint32_t count;
    if (nova__xdr_get_u32(r, &count) < 0)
        return bad(r, err, errlen, "operation result count");
    if (count > NOVA_STELLAR_MAX_OPS)
        return nova__stellar_fail(err, errlen, -EBADMSG,
                                  "malformed TransactionResult: %u operation results (max 100)",
                                  count);
    for (uint32_t i = 0; i < count; i++) {
        struct nova_stellar_op_result *op = &out->ops[i];
        if (nova__xdr_get_i32(r, &op->code) < 0)
            return bad(r, err, errlen, "operation result code");
        op->type = -1;
        op->result = 0;
        if (op->code != 0) {
            /* Outer failures (op_bad_auth ...) have void arms. */
            if (op->code > 0 || op->code < -6)
                return nova__stellar_fail(err, errlen, -EBADMSG,
                                          "malformed TransactionResult: operation %u has unknown "
                                          "result code %d",
                                          i + 1, op->code);
            op->name = nova__stellar_op_code_name(op->code);
            continue;
        }
        if (nova__xdr_get_i32(r, &op->type) < 0)
            return bad(r, err, errlen, "operation type");
        if (op->type != OP_PAYMENT)
            return nova__stellar_fail(err, errlen, -EBADMSG,
                                      "operation %u: results of operation type %d are not "
                                      "supported (only payments)",
                                      i + 1, op->type);
        if (nova__xdr_get_i32(r, &op->result) < 0)
            return bad(r, err, errlen, "payment result code");
        if (op->result > 0 || op->result < -9)
            return nova__stellar_fail(err, errlen, -EBADMSG,
                                      "malformed TransactionResult: operation %u has unknown "
                                      "payment result code %d",
                                      i + 1, op->result);
        op->name = nova__stellar_payment_code_name(op->result);
    }
    out->op_count = count;
    return 0;
}

static int decode_ext(struct nova__xdr_reader *r, char *err, size_t errlen)
{
    int32_t v;
    if (nova__xdr_get_i32(r, &v) < 0)
        return bad(r, err, errlen, "ext");
    if (v != 0)
        return nova__stellar_fail(err, errlen, -EBADMSG,
                                  "malformed TransactionResult: unknown ext version %d", v);
    return 0;
}

int nova__stellar_result_decode(const uint8_t *xdr, size_t len, struct nova_stellar_tx_result *out,
                                char *err, size_t errlen)
{
    struct nova__xdr_reader r;
    int rc;
    memset(out, 0, sizeof(*out));
    out->name = out->inner_name = "unknown";
    nova__xdr_reader_init(&r, xdr, len);
    if (nova__xdr_get_i64(&r, &out->fee_charged) < 0)
        return bad(&r, err, errlen, "fee charged");
    if (nova__xdr_get_i32(&r, &out->code) < 0)
        return bad(&r, err, errlen, "result code");
    out->name = nova__stellar_tx_code_name(out->code);
    /* Only the known codes have a known arm; guessing "void" for a newer
     * code could misread a payment outcome, so refuse instead. */
    if (strcmp(out->name, "unknown") == 0)
        return nova__stellar_fail(err, errlen, -EBADMSG,
                                  "malformed TransactionResult: unknown result code %d", out->code);
    if (out->code == 0 || out->code == -1) {
        if ((rc = decode_op_results(&r, out, err, errlen)) < 0)
            return rc;
    } else if (out->code == 1 || out->code == -13) {
        /* InnerTransactionResultPair: hash, then the inner result. */
        const uint8_t *hash;
        out->has_inner = true;
        if (nova__xdr_get_fixed(&r, 32, &hash) < 0)
            return bad(&r, err, errlen, "inner transaction hash");
        memcpy(out->inner_hash, hash, 32);
        if (nova__xdr_get_i64(&r, &out->inner_fee_charged) < 0 ||
            nova__xdr_get_i32(&r, &out->inner_code) < 0)
            return bad(&r, err, errlen, "inner result");
        out->inner_name = nova__stellar_tx_code_name(out->inner_code);
        if (strcmp(out->inner_name, "unknown") == 0)
            return nova__stellar_fail(err, errlen, -EBADMSG,
                                      "malformed TransactionResult: unknown inner result code %d",
                                      out->inner_code);
        if (out->inner_code == 1 || out->inner_code == -13)
            return nova__stellar_fail(err, errlen, -EBADMSG,
                                      "malformed TransactionResult: nested fee bump result");
        if (out->inner_code == 0 || out->inner_code == -1) {
            if ((rc = decode_op_results(&r, out, err, errlen)) < 0)
                return rc;
        }
        if ((rc = decode_ext(&r, err, errlen)) < 0)
            return rc;
    }
    if ((rc = decode_ext(&r, err, errlen)) < 0)
        return rc;
    if (nova__xdr_remaining(&r) != 0)
        return nova__stellar_fail(err, errlen, -EBADMSG,
                                  "malformed TransactionResult: %zu trailing bytes",
                                  nova__xdr_remaining(&r));
    return 0;
}

int nova__stellar_result_decode_b64(const char *b64, struct nova_stellar_tx_result *out, char *err,
                                    size_t errlen)
{
    uint8_t *buf;
    size_t len;
    memset(out, 0, sizeof(*out));
    out->name = out->inner_name = "unknown";
    int rc = nova__b64_decode(b64, &buf, &len);
    if (rc == -ENOMEM)
        return nova__stellar_fail(err, errlen, rc, "out of memory");
    if (rc < 0)
        return nova__stellar_fail(err, errlen, -EBADMSG, "result XDR is not valid base64");
    rc = nova__stellar_result_decode(buf, len, out, err, errlen);
    free(buf);
    return rc;
}
