/*
 * stellar_import - the offline Stellar library as nova-http.so sees it.
 *
 * Linked only into that module: the Stellar client calls these as it does
 * when linked into the binary, and each call goes to the core's own
 * library through the table the core lent the module
 * (common/svc_import.c), so the process keeps one Stellar library.
 */
#include "config.h"
#include "common/svc.h"
#include "stellar/stellar.h"
#include "stellar/stellar_amount.h"
#include "stellar/stellar_scval.h"
#include "stellar/stellar_strkey.h"
#include "stellar/stellar_tx.h"
#include "stellar/stellar_xdr.h"

int nova__amount_parse(const char *text, unsigned flags, int64_t *out, char *err, size_t errlen)
{
    return nova__svc_core_lent()->amount_parse(text, flags, out, err, errlen);
}

int nova__hex_decode(const char *text, void *out, size_t len)
{
    return nova__svc_core_lent()->hex_decode(text, out, len);
}

int nova__scval_decode_b64(const char *b64, cJSON **out, char *err, size_t errlen)
{
    return nova__svc_core_lent()->scval_decode_b64(b64, out, err, errlen);
}

int nova__stellar_build_payment(const struct nova_stellar_payment_tx *tx,
                                struct nova_stellar_signed_tx *out, char *err, size_t errlen)
{
    return nova__svc_core_lent()->build_payment(tx, out, err, errlen);
}

int nova__stellar_seed_to_account(const char *seed, char *out, char *err, size_t errlen)
{
    return nova__svc_core_lent()->seed_to_account(seed, out, err, errlen);
}

int nova__stellar_result_decode_b64(const char *b64, struct nova_stellar_tx_result *out, char *err,
                                    size_t errlen)
{
    return nova__svc_core_lent()->result_decode_b64(b64, out, err, errlen);
}

char *nova__stellar_horizon_form_body(const char *envelope_b64)
{
    return nova__svc_core_lent()->horizon_form_body(envelope_b64);
}

int nova__strkey_decode(const char *text, enum nova_strkey_type expect,
                        enum nova_strkey_type *type_out, uint8_t *payload, size_t cap,
                        size_t *len_out, char *err, size_t errlen)
{
    return nova__svc_core_lent()->strkey_decode(text, expect, type_out, payload, cap, len_out, err,
                                                errlen);
}

int nova__strkey_decode32(const char *text, enum nova_strkey_type expect, uint8_t key[32],
                          char *err, size_t errlen)
{
    return nova__svc_core_lent()->strkey_decode32(text, expect, key, err, errlen);
}
