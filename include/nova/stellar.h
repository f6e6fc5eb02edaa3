/*
 * nova/stellar.h - Stellar services for plugins (host->stellar).
 *
 * Today the table holds the offline part: StrKey validation, exact
 * amount conversion, building and signing payment transactions, decoding
 * TransactionResult XDR and Soroban ScVal XDR. Network calls (Horizon and
 * Stellar RPC) are appended later; see the marked section at the end of
 * struct nova_stellar_api.
 *
 * Calling convention
 *   - Pure functions do not take the host pointer: they touch no runtime
 *     state, are thread-safe and can be called from init() or from any
 *     callback. Network calls (later) take `const struct nova_host *` first,
 *     like every other host service, so they can be attributed to a plugin.
 *   - Return 0 or a negative errno (-EINVAL for bad input, -ENOMEM, -EIO
 *     when libsodium cannot initialise). On error a one-line reason that
 *     names the bad field is written into err (always NUL-terminated when
 *     errlen > 0); err may be NULL.
 *   - Strings passed in are borrowed for the duration of the call.
 *   - Secret seeds are wiped from the host's memory before the call returns.
 *
 * Compatibility: fields of struct nova_stellar_api are only ever appended.
 * Test a member with NOVA_STELLAR_HAS() before calling it.
 *
 * Example - one payment, signed, persisted before it is submitted:
 *
 *     const struct nova_stellar_api *st = host->stellar;
 *     struct nova_stellar_payment pay = {.destination = dest, .amount = stroops};
 *     struct nova_stellar_payment_tx tx = {
 *         .struct_size = sizeof(tx),
 *         .network_passphrase = "Test SDF Network ; September 2015",
 *         .fee = 100, .seq_num = account_sequence + 1,
 *         .max_time = now_s + 300, .asset = "NOVA:GBK33AQ...",
 *         .payments = &pay, .payment_count = 1,
 *         .signer_secrets = &distribution_secret, .signer_count = 1,
 *     };
 *     struct nova_stellar_signed_tx out;
 *     char err[256];
 *     if (st->build_payment(&tx, &out, err, sizeof(err)) < 0)
 *         return fail_job(err);        // names the bad field, e.g. "payment 1: ..."
 *     store(out.hash_hex, out.envelope_b64, tx.seq_num, tx.max_time);
 *     st->signed_tx_free(&out);
 */
#ifndef NOVA_STELLAR_H
#define NOVA_STELLAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;
struct nova_host;

/* ---- StrKeys (SEP-23) --------------------------------------------------- */

enum nova_strkey_type {
    NOVA_STRKEY_ANY = 0,        /* decode: accept every kind below */
    NOVA_STRKEY_ACCOUNT,        /* G..., ed25519 public key, 32 bytes */
    NOVA_STRKEY_SEED,           /* S..., ed25519 secret seed, 32 bytes */
    NOVA_STRKEY_MUXED,          /* M..., 32-byte key then 8-byte big-endian id */
    NOVA_STRKEY_CONTRACT,       /* C..., contract id, 32 bytes */
    NOVA_STRKEY_PRE_AUTH_TX,    /* T..., 32 bytes */
    NOVA_STRKEY_HASH_X,         /* X..., 32 bytes */
    NOVA_STRKEY_LIQUIDITY_POOL, /* L..., 32 bytes */
    NOVA_STRKEY_CLAIMABLE,      /* B..., 1 type byte + 32 bytes */
};

/* Room for the longest StrKey handled here (M..., 69 chars) and its NUL. */
#define NOVA_STRKEY_MAX 70

/* ---- amounts ------------------------------------------------------------ */

/* 1 unit = 10^7 stroops. "-922337203685.4775807" is the longest format. */
#define NOVA_AMOUNT_MAX        24
#define NOVA_AMOUNT_ALLOW_ZERO 1u /* amount_parse flag: accept "0" */

/* ---- payment transactions ------------------------------------------------ */

#define NOVA_STELLAR_MAX_OPS        100
#define NOVA_STELLAR_MAX_SIGNATURES 20
#define NOVA_STELLAR_MEMO_TEXT_MAX  28 /* bytes */

enum nova_stellar_memo_type {
    NOVA_MEMO_NONE = 0,
    NOVA_MEMO_TEXT = 1,
    NOVA_MEMO_ID = 2,
    NOVA_MEMO_HASH = 3,
    NOVA_MEMO_RETURN = 4,
};

struct nova_stellar_payment {
    const char *destination; /* G... or M... */
    const char *asset;       /* "native" or "CODE:G...ISSUER"; NULL = the transaction's asset */
    int64_t amount;          /* stroops, > 0 */
    const char *source;      /* NULL, or G.../M...: the operation's source account
                                (channel accounts pay from another account) */
};

struct nova_stellar_payment_tx {
    uint32_t struct_size;           /* sizeof(struct nova_stellar_payment_tx) */
    const char *network_passphrase; /* e.g. "Test SDF Network ; September 2015" */
    const char *source_account;     /* G.../M...; NULL = the first signer's G... */
    uint32_t fee;                   /* maximum total fee in stroops (base fee x ops) */
    int64_t seq_num;                /* the account's current sequence + 1 */
    uint64_t min_time;              /* unix seconds, 0 = none */
    uint64_t max_time;              /* unix seconds, required (> 0, >= min_time):
                                       it is what lets a lost transaction expire */
    enum nova_stellar_memo_type memo_type;
    const char *memo_text; /* NOVA_MEMO_TEXT: at most 28 bytes */
    uint64_t memo_id;      /* NOVA_MEMO_ID */
    uint8_t memo_hash[32]; /* NOVA_MEMO_HASH / NOVA_MEMO_RETURN */
    const char *asset;     /* default asset of the payments, may be NULL when
                              every payment names its own */
    const struct nova_stellar_payment *payments;
    size_t payment_count;              /* 1..NOVA_STELLAR_MAX_OPS */
    const char *const *signer_secrets; /* S... seeds; each adds one signature */
    size_t signer_count;               /* 1..NOVA_STELLAR_MAX_SIGNATURES */
};

struct nova_stellar_signed_tx {
    char hash_hex[65]; /* transaction hash, lower-case hex */
    uint8_t hash[32];
    char *envelope_b64; /* signed TransactionEnvelope, base64; owned by the caller,
                           release with nova_stellar_api.signed_tx_free() */
};

/* ---- transaction results ----------------------------------------------- */

struct nova_stellar_op_result {
    int32_t code;     /* OperationResultCode: 0 = opINNER, < 0 = op_bad_auth ... */
    int32_t type;     /* OperationType when code == 0 (1 = PAYMENT), else -1 */
    int32_t result;   /* the operation's own result code when code == 0 (PaymentResultCode) */
    const char *name; /* Horizon's spelling: "op_success", "op_no_trust", "op_bad_auth"... */
};

struct nova_stellar_tx_result {
    int64_t fee_charged;
    int32_t code;     /* TransactionResultCode: 0 txSUCCESS, -1 txFAILED, -5 txBAD_SEQ ... */
    const char *name; /* "tx_success", "tx_bad_seq"... (codes this build does not know,
                         e.g. from a newer protocol, make decoding fail: their arm is unknown) */
    /* Fee bumps (code 1 / -13): the inner transaction's result; ops are the inner ones. */
    bool has_inner;
    uint8_t inner_hash[32];
    int64_t inner_fee_charged;
    int32_t inner_code;
    const char *inner_name;
    size_t op_count; /* entries in ops; 0 unless the (inner) code is success/failed */
    struct nova_stellar_op_result ops[NOVA_STELLAR_MAX_OPS];
};

/* ---- the service table -------------------------------------------------- */

struct nova_stellar_api {
    uint32_t struct_size;

    /* -- offline, pure (no host argument) -- */

    /* 0 when text is a canonical StrKey of kind `expect` (ANY: any kind). */
    int (*strkey_validate)(const char *text, enum nova_strkey_type expect, char *err,
                           size_t errlen);
    /* Derives the G... account id of an S... seed into out[NOVA_STRKEY_MAX]. */
    int (*seed_to_account)(const char *seed, char *out, char *err, size_t errlen);

    /* "12.5" -> 125000000. Digits, optionally '.' and 1..7 digits; no sign,
     * spaces or exponent; > 0 unless NOVA_AMOUNT_ALLOW_ZERO. */
    int (*amount_parse)(const char *text, unsigned flags, int64_t *stroops, char *err,
                        size_t errlen);
    /* 125000000 -> "12.5000000" (always 7 decimals, like Horizon). len >= NOVA_AMOUNT_MAX. */
    int (*amount_format)(int64_t stroops, char *buf, size_t len);

    /* Builds the v1 TransactionEnvelope (PRECOND_TIME, payment operations),
     * signs it with every signer and fills *out. On error *out is zeroed. */
    int (*build_payment)(const struct nova_stellar_payment_tx *tx,
                         struct nova_stellar_signed_tx *out, char *err, size_t errlen);
    /* Frees out->envelope_b64 and zeroes *out. NULL-safe. */
    void (*signed_tx_free)(struct nova_stellar_signed_tx *out);

    /* Decodes a base64 TransactionResult (Horizon's result_xdr,
     * error_result_xdr). */
    int (*decode_result)(const char *result_xdr_b64, struct nova_stellar_tx_result *out, char *err,
                         size_t errlen);

    /* Decodes one base64 ScVal (a getEvents topic or value) into JSON; the
     * caller frees *out with cJSON_Delete(). Every value is an object with
     * one member naming its type, so nothing is lost:
     *   {"bool":true} {"void":null} {"u32":42} {"i32":-1}
     *   {"u64":"..."} {"i64":"..."} {"timepoint":"..."} {"duration":"..."}
     *   {"u128":"..."} {"i128":"-5"} {"u256":"..."} {"i256":"..."}  (decimal strings)
     *   {"bytes":"00ba33"} (lower-case hex)  {"symbol":"mint"}
     *   {"string":"hello"}, or {"string_hex":"..."} when not UTF-8 / has NUL
     *   {"address":"G..."} (also C..., M..., B..., L...)
     *   {"vec":[...]} {"map":[{"key":...,"val":...}]} ({"vec":null} when absent)
     *   {"error":{"contract":7}} {"error":{"budget":"exceeded_limit"}}
     * Malformed XDR, more than 32 nested vec/map levels and the contract
     * instance / ledger key types are -EBADMSG. */
    int (*scval_decode)(const char *b64, struct cJSON **out, char *err, size_t errlen);

    /* The C... id of an asset's Stellar Asset Contract on a network (the
     * contract whose events carry classic movements of the asset).
     * asset: "native" or "CODE:G..."; out[NOVA_STRKEY_MAX]. */
    int (*asset_contract_id)(const char *asset, const char *network_passphrase, char *out,
                             char *err, size_t errlen);

    /* -- network calls --------------------------------------------------
     * APPEND-ONLY from here. Reserved for the Horizon/RPC client
     * (runtime/stellar_client.c), all asynchronous and taking
     * `const struct nova_host *host` first, with the usual rule (an error
     * return means the callback never fires, otherwise exactly once):
     *   load_account   GET /accounts/{id}          -> sequence, balances
     *   submit         POST /transactions           -> result / result codes
     *   tx_lookup      GET /transactions/{hash}     -> found / not found
     *   latest_ledger  GET / and getLatestLedger    -> ledger, close time
     *   get_events     getEvents with cursor paging -> events (topics via scval_decode)
     * Never reorder or remove members above this comment. */
};

/* True when this table provides `member`. */
#define NOVA_STELLAR_HAS(api, member)                                                              \
    ((api) != NULL &&                                                                              \
     offsetof(struct nova_stellar_api, member) + sizeof((api)->member) <= (api)->struct_size &&    \
     (api)->member != NULL)

#ifdef __cplusplus
}
#endif
#endif /* NOVA_STELLAR_H */
