/*
 * stellar - the offline half of the struct nova_stellar_api table handed
 * to plugins (host->stellar), built from the offline Stellar modules:
 * stellar_strkey, stellar_amount, stellar_xdr, stellar_tx, stellar_scval.
 *
 * The table is static and immutable; its functions are pure and
 * thread-safe. Its network members (appended, see include/nova/stellar.h)
 * are NULL here: the core adds them, forwarding to the daemon's client
 * (stellar/stellar_client.h) tagged with the plugin's host pointer, to
 * make the table plugins see (core/host.c, nova__host_stellar_api).
 */
#ifndef NOVA_RUNTIME_STELLAR_H
#define NOVA_RUNTIME_STELLAR_H

#include "nova/stellar.h"
#include "stellar/stellar_tx.h"

extern const struct nova_stellar_api nova__stellar_offline_api;

/* Converts the public request into the internal transaction description.
 * ops must have room for tx->payment_count entries; seeds for
 * tx->signer_count. Validates everything (StrKeys, assets, memo, time
 * bounds: max_time is required here). The caller wipes seeds afterwards. */
int nova__stellar_payment_tx_convert(const struct nova_stellar_payment_tx *tx,
                                     struct nova__stellar_tx *out,
                                     struct nova__stellar_payment_op *ops, uint8_t (*seeds)[32],
                                     char *err, size_t errlen);

/* The implementations behind the table, callable directly by the runtime. */
int nova__stellar_build_payment(const struct nova_stellar_payment_tx *tx,
                                struct nova_stellar_signed_tx *out, char *err, size_t errlen);
void nova__stellar_signed_tx_free(struct nova_stellar_signed_tx *out);
int nova__stellar_seed_to_account(const char *seed, char *out, char *err, size_t errlen);
int nova__stellar_envelope_hash(const char *envelope_b64, const char *passphrase, char *hash_hex,
                                char *err, size_t errlen);
int nova__stellar_asset_contract_strkey(const char *asset, const char *passphrase, char *out,
                                        char *err, size_t errlen);

#endif
