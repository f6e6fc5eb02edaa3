#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "stellar/stellar.h"
#include "stellar/stellar_amount.h"
#include "stellar/stellar_err.h"
#include "stellar/stellar_scval.h"
#include "stellar/stellar_strkey.h"

static int strkey_validate(const char *text, enum nova_strkey_type expect, char *err, size_t errlen)
{
    uint8_t payload[NOVA__STRKEY_PAYLOAD_MAX];
    int rc = nova__strkey_decode(text, expect, NULL, payload, sizeof(payload), NULL, err, errlen);
    sodium_memzero(payload, sizeof(payload)); /* may have been a seed */
    return rc;
}

int nova__stellar_seed_to_account(const char *seed, char *out, char *err, size_t errlen)
{
    uint8_t raw[32], pk[32];
    int rc = nova__strkey_decode32(seed, NOVA_STRKEY_SEED, raw, err, errlen);
    if (rc < 0)
        return rc;
    rc = nova__stellar_seed_public_key(raw, pk);
    sodium_memzero(raw, sizeof(raw));
    if (rc < 0)
        return nova__stellar_fail(err, errlen, rc, "libsodium could not be initialised");
    rc = nova__strkey_encode(NOVA_STRKEY_ACCOUNT, pk, 32, out, NOVA_STRKEY_MAX);
    return rc < 0 ? nova__stellar_fail(err, errlen, rc, "cannot encode the account id") : 0;
}

static int amount_format(int64_t stroops, char *buf, size_t len)
{
    int rc = nova__amount_format(stroops, buf, len);
    return rc < 0 ? rc : 0;
}

int nova__stellar_payment_tx_convert(const struct nova_stellar_payment_tx *tx,
                                     struct nova__stellar_tx *out,
                                     struct nova__stellar_payment_op *ops, uint8_t (*seeds)[32],
                                     char *err, size_t errlen)
{
    char e[200];
    int rc;
    memset(out, 0, sizeof(*out));
    if (tx == NULL || tx->struct_size < sizeof(struct nova_stellar_payment_tx))
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "payment request struct_size is wrong (rebuild the plugin)");
    if (tx->network_passphrase == NULL || tx->network_passphrase[0] == '\0')
        return nova__stellar_fail(err, errlen, -EINVAL, "network_passphrase is empty");
    if (tx->payment_count == 0 || tx->payment_count > NOVA_STELLAR_MAX_OPS || tx->payments == NULL)
        return nova__stellar_fail(err, errlen, -EINVAL, "payment_count is %zu, expected 1 to 100",
                                  tx->payment_count);
    if (tx->signer_count == 0 || tx->signer_count > NOVA_STELLAR_MAX_SIGNATURES ||
        tx->signer_secrets == NULL)
        return nova__stellar_fail(err, errlen, -EINVAL, "signer_count is %zu, expected 1 to 20",
                                  tx->signer_count);
    if (tx->max_time == 0)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "max_time is required: without it a lost transaction can "
                                  "never be declared expired");
    if (tx->min_time > tx->max_time)
        return nova__stellar_fail(err, errlen, -EINVAL, "min_time is after max_time");
    if (tx->seq_num <= 0)
        return nova__stellar_fail(err, errlen, -EINVAL, "seq_num must be positive");

    for (size_t i = 0; i < tx->signer_count; i++) {
        if (nova__strkey_decode32(tx->signer_secrets[i], NOVA_STRKEY_SEED, seeds[i], e, sizeof(e)) <
            0)
            return nova__stellar_fail(err, errlen, -EINVAL, "signer %zu: %s", i + 1, e);
    }
    if (tx->source_account != NULL) {
        if (nova__strkey_decode_muxed(tx->source_account, &out->source, e, sizeof(e)) < 0)
            return nova__stellar_fail(err, errlen, -EINVAL, "source_account: %s", e);
    } else {
        if ((rc = nova__stellar_seed_public_key(seeds[0], out->source.key)) < 0)
            return nova__stellar_fail(err, errlen, rc, "libsodium could not be initialised");
    }
    out->fee = tx->fee;
    out->seq_num = tx->seq_num;
    out->has_time_bounds = true;
    out->min_time = tx->min_time;
    out->max_time = tx->max_time;
    switch (tx->memo_type) {
    case NOVA_MEMO_NONE:
        break;
    case NOVA_MEMO_TEXT:
        if ((rc = nova__stellar_memo_text(&out->memo, tx->memo_text, err, errlen)) < 0)
            return rc;
        break;
    case NOVA_MEMO_ID:
        out->memo.type = NOVA_MEMO_ID;
        out->memo.id = tx->memo_id;
        break;
    case NOVA_MEMO_HASH:
    case NOVA_MEMO_RETURN:
        out->memo.type = tx->memo_type;
        memcpy(out->memo.hash, tx->memo_hash, 32);
        break;
    default:
        return nova__stellar_fail(err, errlen, -EINVAL, "unknown memo_type %d", (int)tx->memo_type);
    }

    struct nova__stellar_asset default_asset;
    bool have_default = false;
    if (tx->asset != NULL) {
        if (nova__stellar_asset_parse(tx->asset, &default_asset, e, sizeof(e)) < 0)
            return nova__stellar_fail(err, errlen, -EINVAL, "asset: %s", e);
        have_default = true;
    }
    for (size_t i = 0; i < tx->payment_count; i++) {
        const struct nova_stellar_payment *p = &tx->payments[i];
        struct nova__stellar_payment_op *op = &ops[i];
        memset(op, 0, sizeof(*op));
        if (nova__strkey_decode_muxed(p->destination, &op->destination, e, sizeof(e)) < 0)
            return nova__stellar_fail(err, errlen, -EINVAL, "payment %zu: destination: %s", i + 1,
                                      e);
        if (p->asset != NULL) {
            if (nova__stellar_asset_parse(p->asset, &op->asset, e, sizeof(e)) < 0)
                return nova__stellar_fail(err, errlen, -EINVAL, "payment %zu: asset: %s", i + 1, e);
        } else if (have_default) {
            op->asset = default_asset;
        } else {
            return nova__stellar_fail(err, errlen, -EINVAL,
                                      "payment %zu: no asset (set the payment's or the "
                                      "transaction's asset)",
                                      i + 1);
        }
        if (p->amount <= 0)
            return nova__stellar_fail(err, errlen, -EINVAL,
                                      "payment %zu: amount must be greater than zero", i + 1);
        op->amount = p->amount;
        if (p->source != NULL) {
            if (nova__strkey_decode_muxed(p->source, &op->source, e, sizeof(e)) < 0)
                return nova__stellar_fail(err, errlen, -EINVAL, "payment %zu: source: %s", i + 1,
                                          e);
            op->has_source = true;
        }
    }
    out->ops = ops;
    out->op_count = tx->payment_count;
    return 0;
}

int nova__stellar_build_payment(const struct nova_stellar_payment_tx *tx,
                                struct nova_stellar_signed_tx *out, char *err, size_t errlen)
{
    struct nova__stellar_tx itx;
    struct nova__stellar_payment_op *ops = NULL;
    uint8_t seeds[NOVA_STELLAR_MAX_SIGNATURES][32];
    int rc;
    if (out == NULL)
        return nova__stellar_fail(err, errlen, -EINVAL, "no output");
    memset(out, 0, sizeof(*out));
    if (tx != NULL && tx->payment_count > 0 && tx->payment_count <= NOVA_STELLAR_MAX_OPS &&
        (ops = calloc(tx->payment_count, sizeof(*ops))) == NULL)
        return nova__stellar_fail(err, errlen, -ENOMEM, "out of memory");
    rc = nova__stellar_payment_tx_convert(tx, &itx, ops, seeds, err, errlen);
    if (rc == 0)
        rc = nova__stellar_tx_sign(&itx, tx->network_passphrase, (const uint8_t(*)[32])seeds,
                                   tx->signer_count, &out->envelope_b64, out->hash, err, errlen);
    if (rc == 0)
        nova__hex_encode(out->hash, 32, out->hash_hex);
    else
        memset(out, 0, sizeof(*out));
    sodium_memzero(seeds, sizeof(seeds));
    free(ops);
    return rc;
}

void nova__stellar_signed_tx_free(struct nova_stellar_signed_tx *out)
{
    if (out == NULL)
        return;
    free(out->envelope_b64);
    memset(out, 0, sizeof(*out));
}

int nova__stellar_envelope_hash(const char *envelope_b64, const char *passphrase, char *hash_hex,
                                char *err, size_t errlen)
{
    struct nova__stellar_envelope env;
    uint8_t *raw, hash[32];
    size_t len;
    if (passphrase == NULL || passphrase[0] == '\0')
        return nova__stellar_fail(err, errlen, -EINVAL, "network passphrase is empty");
    int rc = nova__b64_decode(envelope_b64, &raw, &len);
    if (rc == -ENOMEM)
        return nova__stellar_fail(err, errlen, rc, "out of memory");
    if (rc < 0)
        return nova__stellar_fail(err, errlen, -EBADMSG, "envelope is not valid base64");
    rc = nova__stellar_envelope_decode(raw, len, &env, err, errlen);
    if (rc == 0) {
        nova__stellar_tx_hash(passphrase, env.tx_xdr, env.tx_len, hash);
        nova__hex_encode(hash, 32, hash_hex);
        nova__stellar_envelope_free(&env);
    }
    free(raw);
    return rc;
}

static int decode_result(const char *b64, struct nova_stellar_tx_result *out, char *err,
                         size_t errlen)
{
    return nova__stellar_result_decode_b64(b64, out, err, errlen);
}

static int scval_decode(const char *b64, struct cJSON **out, char *err, size_t errlen)
{
    return nova__scval_decode_b64(b64, out, err, errlen);
}

int nova__stellar_asset_contract_strkey(const char *asset, const char *passphrase, char *out,
                                        char *err, size_t errlen)
{
    struct nova__stellar_asset a;
    uint8_t id[32];
    char e[200];
    if (passphrase == NULL || passphrase[0] == '\0')
        return nova__stellar_fail(err, errlen, -EINVAL, "network passphrase is empty");
    if (nova__stellar_asset_parse(asset, &a, e, sizeof(e)) < 0)
        return nova__stellar_fail(err, errlen, -EINVAL, "asset: %s", e);
    int rc = nova__stellar_asset_contract_id(passphrase, &a, id);
    if (rc < 0)
        return nova__stellar_fail(err, errlen, rc, "cannot derive the contract id");
    rc = nova__strkey_encode(NOVA_STRKEY_CONTRACT, id, 32, out, NOVA_STRKEY_MAX);
    return rc < 0 ? nova__stellar_fail(err, errlen, rc, "cannot encode the contract id") : 0;
}

const struct nova_stellar_api nova__stellar_offline_api = {
    .struct_size = sizeof(struct nova_stellar_api),
    .strkey_validate = strkey_validate,
    .seed_to_account = nova__stellar_seed_to_account,
    .amount_parse = nova__amount_parse,
    .amount_format = amount_format,
    .build_payment = nova__stellar_build_payment,
    .signed_tx_free = nova__stellar_signed_tx_free,
    .decode_result = decode_result,
    .scval_decode = scval_decode,
    .asset_contract_id = nova__stellar_asset_contract_strkey,
};
