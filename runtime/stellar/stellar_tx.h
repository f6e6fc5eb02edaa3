/*
 * stellar_tx - payment transactions: XDR, hash, signatures, envelopes,
 * and TransactionResult decoding.
 *
 * Encoding follows Stellar-transaction.x for a v1 envelope
 * (ENVELOPE_TYPE_TX = 2) holding PAYMENT operations only:
 *   Transaction = MuxedAccount source, uint32 fee, int64 seqNum,
 *                 Preconditions (NONE or TIME), Memo, Operation<100>, ext 0
 *   hash        = sha256(sha256(passphrase) || 00000002 || Transaction)
 *   signature   = ed25519(seed, hash); hint = last 4 bytes of the public key
 * All inputs are validated before anything is written (1..100 ops, amount
 * > 0, memo text <= 28 bytes, min_time <= max_time unless max_time is 0,
 * asset codes), with an error naming the operation and field.
 */
#ifndef NOVA_RUNTIME_STELLAR_TX_H
#define NOVA_RUNTIME_STELLAR_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nova/stellar.h"
#include "stellar/stellar_strkey.h"
#include "stellar/stellar_xdr.h"

#define NOVA__ENVELOPE_TYPE_TX 2

enum nova__asset_type {
    NOVA__ASSET_NATIVE = 0,
    NOVA__ASSET_ALPHANUM4 = 1,
    NOVA__ASSET_ALPHANUM12 = 2,
};

struct nova__stellar_asset {
    enum nova__asset_type type;
    char code[13]; /* NUL-terminated, 1-4 (alphanum4) or 5-12 (alphanum12) of [A-Za-z0-9] */
    uint8_t issuer[32];
};

struct nova__stellar_payment_op {
    struct nova__muxed_account destination;
    struct nova__stellar_asset asset;
    int64_t amount; /* stroops, > 0 */
    bool has_source;
    struct nova__muxed_account source;
};

struct nova__stellar_memo {
    enum nova_stellar_memo_type type;
    uint8_t text[NOVA_STELLAR_MEMO_TEXT_MAX]; /* bytes, not NUL-terminated */
    size_t text_len;
    uint64_t id;
    uint8_t hash[32]; /* MEMO_HASH and MEMO_RETURN */
};

struct nova__stellar_tx {
    struct nova__muxed_account source;
    uint32_t fee;
    int64_t seq_num;
    bool has_time_bounds; /* false: PRECOND_NONE */
    uint64_t min_time, max_time;
    struct nova__stellar_memo memo;
    const struct nova__stellar_payment_op *ops; /* borrowed */
    size_t op_count;
};

struct nova__stellar_signature {
    uint8_t hint[4];
    uint8_t sig[64];
};

/* "native", or "CODE:G..." (the code's length picks alphanum4/12). */
int nova__stellar_asset_parse(const char *text, struct nova__stellar_asset *out, char *err,
                              size_t errlen);
/* Sets out->text from a C string; -EINVAL when longer than 28 bytes. */
int nova__stellar_memo_text(struct nova__stellar_memo *memo, const char *text, char *err,
                            size_t errlen);

/* Appends the Transaction XDR to w. Returns 0, -EINVAL (reason in err) or
 * the writer's error. Nothing is written when validation fails. */
int nova__stellar_tx_encode(const struct nova__stellar_tx *tx, struct nova__xdr_writer *w,
                            char *err, size_t errlen);

/* sha256 of the passphrase. */
void nova__stellar_network_id(const char *passphrase, uint8_t out[32]);
/* The transaction hash of a Transaction XDR for a network. */
void nova__stellar_tx_hash(const char *passphrase, const uint8_t *tx_xdr, size_t len,
                           uint8_t hash[32]);

/* Derives the ed25519 public key of a 32-byte seed. Returns 0 or -EIO
 * (libsodium unusable). */
int nova__stellar_seed_public_key(const uint8_t seed[32], uint8_t pk[32]);
/* Signs a 32-byte hash. The expanded secret key is wiped afterwards. */
int nova__stellar_sign_hash(const uint8_t seed[32], const uint8_t hash[32],
                            struct nova__stellar_signature *out);

/* Appends 00000002 || tx_xdr || signatures<20> to w. */
void nova__stellar_envelope_encode(const uint8_t *tx_xdr, size_t len,
                                   const struct nova__stellar_signature *sigs, size_t nsigs,
                                   struct nova__xdr_writer *w);

/* Encodes, hashes, signs with every seed (1..20) and returns the signed
 * envelope as base64 in *envelope_b64 (malloc'd, caller frees). */
int nova__stellar_tx_sign(const struct nova__stellar_tx *tx, const char *passphrase,
                          const uint8_t (*seeds)[32], size_t nseeds, char **envelope_b64,
                          uint8_t hash[32], char *err, size_t errlen);

/* A decoded v1 envelope of payment operations. */
struct nova__stellar_envelope {
    struct nova__stellar_tx tx;           /* tx.ops = ops */
    struct nova__stellar_payment_op *ops; /* malloc'd, tx.op_count entries */
    struct nova__stellar_signature sigs[NOVA_STELLAR_MAX_SIGNATURES];
    size_t sig_count;
    const uint8_t *tx_xdr; /* the Transaction bytes inside the decoded input (borrowed) */
    size_t tx_len;
};

/* Decodes a TransactionEnvelope of type ENVELOPE_TYPE_TX whose operations
 * are all payments - exactly what nova__stellar_tx_sign() produces, so
 * re-encoding gives the same bytes. Anything else (other envelope or
 * operation types, PRECOND_V2, Soroban data, non-canonical asset codes,
 * truncation, trailing bytes) is -EBADMSG with the reason in err. On
 * success release with nova__stellar_envelope_free(); out->tx_xdr points
 * into xdr, so xdr must outlive out. */
int nova__stellar_envelope_decode(const uint8_t *xdr, size_t len,
                                  struct nova__stellar_envelope *out, char *err, size_t errlen);
void nova__stellar_envelope_free(struct nova__stellar_envelope *env);

/* Decodes a TransactionResult (only PAYMENT operation results). Any
 * truncation, trailing bytes, unknown code or discriminant, more than 100
 * operation results or a non-payment operation result is -EBADMSG with the
 * reason in err; *out is zeroed first. */
int nova__stellar_result_decode(const uint8_t *xdr, size_t len, struct nova_stellar_tx_result *out,
                                char *err, size_t errlen);
int nova__stellar_result_decode_b64(const char *b64, struct nova_stellar_tx_result *out, char *err,
                                    size_t errlen);

/* The Stellar Asset Contract id of an asset on a network:
 * sha256(ENVELOPE_TYPE_CONTRACT_ID || network id || FROM_ASSET || Asset). */
int nova__stellar_asset_contract_id(const char *passphrase, const struct nova__stellar_asset *asset,
                                    uint8_t out[32]);

/* Horizon's POST /transactions body: "tx=" and the envelope with every
 * byte outside [A-Za-z0-9-._~] percent-encoded ('+', '/', '=' included:
 * a raw '+' would arrive as a space). malloc'd; NULL on allocation failure. */
char *nova__stellar_horizon_form_body(const char *envelope_b64);

/* Horizon's spelling of result codes ("tx_bad_seq", "op_no_trust"...);
 * "unknown" for codes this build does not know. */
const char *nova__stellar_tx_code_name(int32_t code);
const char *nova__stellar_op_code_name(int32_t code);
const char *nova__stellar_payment_code_name(int32_t code);

#endif
