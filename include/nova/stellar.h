/*
 * nova/stellar.h - Stellar services for plugins (host->stellar).
 *
 * The table holds an offline part (StrKey validation, exact amount
 * conversion, building and signing payment transactions, decoding
 * TransactionResult XDR and Soroban ScVal XDR) and, appended after it, the
 * network part: the configured network, signing with the configured
 * distribution key, and asynchronous Horizon and Stellar RPC calls.
 * docs/stellar.md is the guide (statuses, the ambiguity rule).
 *
 * Calling convention
 *   - Pure functions do not take the host pointer: they touch no runtime
 *     state, are thread-safe and can be called from init() or from any
 *     callback. Network calls take `const struct nova_host *` first, like
 *     every other host service, so they are attributed to (and cancelled
 *     with) the calling plugin.
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

/* ---- network calls: statuses and results ---------------------------------
 *
 * Every network call returns 0 and later runs its callback exactly once
 * (from the loop thread, never from inside the call), or returns a
 * negative errno and never runs it: -EINVAL (bad argument; the reason is
 * logged with the plugin's name), -ENOTSUP (no [stellar] client, or no
 * soroban_rpc_url for RPC calls), -ENOMEM, -ECANCELED (shutting down).
 *
 * The callback gets a status and, when status->error says so, a result.
 * Both and everything reachable from them are borrowed for the callback.
 *
 * status->error:
 *   0            success; the result is set
 *   -ENOENT      Horizon answered 404 not_found (account / transaction)
 *   -EREMOTEIO   the server refused definitively: submit -> the
 *                transaction failed or was rejected (result holds the codes);
 *                RPC -> a JSON-RPC error (rpc_code, message)
 *   -ETIMEDOUT   submit: OUTCOME UNKNOWN (504, timeout, lost connection,
 *                5xx, an unreadable answer...). The transaction may still be
 *                applied: look the hash up and resubmit the SAME envelope;
 *                never rebuild until its max_time has provably passed.
 *                Other calls: the request timed out.
 *   -EAGAIN      rate limited (429), or unavailable (503) on reads and RPC:
 *                the request was not processed; wait retry_after_ms first.
 *                The client never retries by itself. (A 503 on submit is
 *                -ETIMEDOUT: Horizon may have forwarded the envelope.)
 *   -EINVAL      submit: Horizon refused the envelope as malformed (it was
 *                never forwarded); other calls: Horizon said bad_request
 *   -EBADMSG     the answer was not what the API promises (not JSON, a
 *                field missing or of the wrong type, undecodable XDR);
 *                message names what was wrong
 *   -EIO         any other HTTP error status (message has status and title)
 *   -ECANCELED   the plugin is stopping or the daemon shutting down. For
 *                submit this is also "outcome unknown".
 *   other        transport errors of nova/http.h (-ECONNREFUSED ...);
 *                submit maps them all to -ETIMEDOUT.
 */
struct nova_stellar_status {
    int error;
    long http_status;       /* 0 when no response was received */
    int64_t retry_after_ms; /* -EAGAIN: milliseconds to wait (>= 1000); otherwise -1 */
    const char *problem;    /* Horizon problem type ("not_found", "transaction_failed"...), or "" */
    int rpc_code;           /* JSON-RPC error code (-32600 ...) with -EREMOTEIO from RPC, else 0 */
    const char *message;    /* one line, "" on success; never NULL */
    /* Since ABI 1.1. Horizon's Latest-Ledger header: the last ledger the
     * replica that answered had ingested. A Horizon fleet's replicas lag
     * each other, so an answer (a "not found", an account's sequence) holds
     * as of this ledger only. 0 when the answer had no such header (RPC,
     * transport errors). */
    uint32_t latest_ledger;
};

/* The configured network ([stellar] section), valid while the host is. */
struct nova_stellar_network {
    const char *passphrase;
    const char *horizon_url;          /* without a trailing slash */
    const char *rpc_url;              /* NULL when soroban_rpc_url is not set */
    const char *asset_code;           /* NULL when not set */
    const char *asset_issuer;         /* G..., NULL when not set */
    const char *asset;                /* "CODE:ISSUER" for asset fields, NULL without both */
    const char *distribution_account; /* G... of the distribution secret, NULL without one.
                                         The secret itself is never exposed. */
    int64_t base_fee;                 /* stroops per operation */
    int64_t tx_timeout_ms;            /* validity window to put in max_time */
};

/* A trustline of an account (credit assets only; pool shares are skipped). */
struct nova_stellar_trustline {
    const char *asset_code;
    const char *asset_issuer;
    int64_t balance; /* stroops */
    int64_t limit;   /* stroops */
    int64_t buying_liabilities;
    int64_t selling_liabilities;
    bool authorized; /* is_authorized */
};

/* GET /accounts/{id} */
struct nova_stellar_account {
    const char *account_id;
    int64_t sequence;        /* last used sequence number: the next tx uses sequence + 1 */
    int64_t native_balance;  /* XLM in stroops */
    uint32_t subentry_count; /* minimum balance = (2 + subentry_count) x base reserve */
    size_t trustline_count;
    const struct nova_stellar_trustline *trustlines;
};

/* A transaction as Horizon reported it (submit, lookup). */
struct nova_stellar_tx_info {
    const char *hash; /* hex; "" when the answer did not say */
    uint32_t ledger;  /* the ledger it is in; 0 when the answer does not say
                         (a 400 from submit: only a lookup tells whether the
                         failed transaction is in a ledger or was rejected before) */
    bool successful;
    const char *tx_code;         /* "tx_success", "tx_failed", "tx_bad_seq"...; NULL when unknown */
    const char *inner_code;      /* fee bumps: the inner transaction's code, else NULL */
    size_t op_count;             /* entries in op_codes (0 when Horizon gave none) */
    const char *const *op_codes; /* per operation: "op_success", "op_no_trust"... */
    const struct nova_stellar_tx_result *result; /* decoded result_xdr, NULL when absent or
                                                    not decodable (e.g. non-payment ops) */
    const char *result_xdr;                      /* base64, "" when absent */
    const char *envelope_xdr;                    /* base64, "" when absent */
    const char *created_at;                      /* RFC 3339, "" when absent */
    int64_t fee_charged;                         /* stroops, -1 when unknown */
};

/* Horizon's GET / : the latest ingested ledger. */
struct nova_stellar_ledger {
    uint32_t sequence;     /* history_latest_ledger */
    int64_t closed_at;     /* its close time, unix seconds */
    uint32_t elder_ledger; /* history_elder_ledger: oldest ledger Horizon can look up */
    uint32_t core_ledger;  /* core_latest_ledger, 0 when absent */
    const char *network_passphrase;
};

/* RPC getHealth */
struct nova_stellar_rpc_health {
    const char *status;                                      /* "healthy" */
    uint32_t latest_ledger, oldest_ledger, retention_window; /* 0 when absent */
};

/* RPC getLatestLedger */
struct nova_stellar_rpc_ledger {
    const char *id; /* ledger hash hex, "" when absent */
    uint32_t sequence;
    uint32_t protocol_version; /* 0 when absent */
    int64_t close_time;        /* unix seconds, 0 when absent (RPC < v25) */
};

/* RPC getEvents. A filter matches an event when every part set matches;
 * an event is returned when it matches ANY filter (none = all events). */
#define NOVA_STELLAR_MAX_EVENT_FILTERS    5
#define NOVA_STELLAR_MAX_FILTER_CONTRACTS 5
#define NOVA_STELLAR_MAX_TOPIC_FILTERS    5
#define NOVA_STELLAR_MAX_TOPIC_SEGMENTS   4
#define NOVA_STELLAR_MAX_EVENTS_LIMIT     10000

struct nova_stellar_event_filter {
    const char *type; /* "contract", "system" (or a comma list); NULL = any */
    /* C... ids; the first NULL ends the list. */
    const char *contract_ids[NOVA_STELLAR_MAX_FILTER_CONTRACTS];
    /* Up to 5 topic filters; a row is used when its first segment is set,
     * its segments end at the first NULL. Segment: a base64 ScVal (exact
     * match), "*" (any one topic) or "**" (any rest, last segment only).
     * Without "**" the event must have exactly that many topics. */
    const char *topics[NOVA_STELLAR_MAX_TOPIC_FILTERS][NOVA_STELLAR_MAX_TOPIC_SEGMENTS];
};

struct nova_stellar_events_query {
    uint32_t struct_size;  /* sizeof(struct nova_stellar_events_query) */
    uint32_t start_ledger; /* first ledger (inclusive); must be 0 with a cursor */
    uint32_t end_ledger;   /* exclusive, 0 = none; not allowed with a cursor */
    const char *cursor;    /* the previous page's cursor, or NULL */
    const struct nova_stellar_event_filter *filters;
    size_t filter_count; /* 0..5 */
    uint32_t limit;      /* 0 = the server's default (100); at most 10000 */
    /* Appended: read only when struct_size covers it, so a plugin built
     * before it gets 0. NOVA_STELLAR_EVENTS_* bits. */
    uint64_t flags;
};

/* flags: deliver an event whose topic or value XDR this build cannot decode
 * (a newer protocol's ScVal type, a corrupt answer) with topics and value
 * NULL and its raw base64 in topic_xdr/value_xdr, instead of failing the
 * whole page with -EBADMSG. Decode the raw XDR with scval_decode() to learn
 * why. Without the flag, topics and value are never NULL. */
#define NOVA_STELLAR_EVENTS_KEEP_UNDECODABLE (1u << 0)

struct nova_stellar_event {
    const char *id;           /* unique and ordered: de-duplicate on it */
    const char *paging_token; /* older RPCs' pagingToken, else = id */
    const char *type;         /* "contract" | "system" */
    uint32_t ledger;
    const char *ledger_closed_at;                /* RFC 3339, "" when absent */
    const char *contract_id;                     /* C..., "" when none */
    const char *tx_hash;                         /* hex, "" when absent */
    uint32_t transaction_index, operation_index; /* 0 when absent */
    bool in_successful_contract_call;
    const struct cJSON *topics;   /* array of decoded ScVals (see scval_decode); NULL
                                     only with NOVA_STELLAR_EVENTS_KEEP_UNDECODABLE */
    const struct cJSON *value;    /* the decoded ScVal; NULL like topics */
    const char *const *topic_xdr; /* the base64 topics as received */
    size_t topic_count;
    const char *value_xdr; /* the base64 value as received */
};

struct nova_stellar_events_page {
    size_t event_count;
    const struct nova_stellar_event *events;
    const char *cursor;     /* pass as the next query's cursor (store it only after the
                               page's events are stored); NULL when the RPC sent none */
    uint32_t latest_ledger; /* the RPC's latest ledger */
    uint32_t oldest_ledger; /* 0 when absent */
};

typedef void (*nova_stellar_account_cb)(void *arg, const struct nova_stellar_status *st,
                                        const struct nova_stellar_account *account);
typedef void (*nova_stellar_tx_cb)(void *arg, const struct nova_stellar_status *st,
                                   const struct nova_stellar_tx_info *tx);
typedef void (*nova_stellar_ledger_cb)(void *arg, const struct nova_stellar_status *st,
                                       const struct nova_stellar_ledger *ledger);
typedef void (*nova_stellar_rpc_health_cb)(void *arg, const struct nova_stellar_status *st,
                                           const struct nova_stellar_rpc_health *health);
typedef void (*nova_stellar_rpc_ledger_cb)(void *arg, const struct nova_stellar_status *st,
                                           const struct nova_stellar_rpc_ledger *ledger);
typedef void (*nova_stellar_events_cb)(void *arg, const struct nova_stellar_status *st,
                                       const struct nova_stellar_events_page *page);

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

    /* -- network part ----------------------------------------------------
     * APPEND-ONLY from here: never reorder or remove members. Calls take
     * the host first; see "network calls" above for the statuses. */

    /* The configured network; NULL when the daemon has no [stellar] client. */
    const struct nova_stellar_network *(*network)(const struct nova_host *host);

    /* build_payment() signed with the configured distribution secret,
     * which never leaves the host: its signature comes first, then one per
     * tx->signer_secrets entry (may be NULL/0, e.g. a channel account's
     * seed). tx->source_account NULL = the distribution account;
     * tx->network_passphrase NULL = the configured one. -ENOTSUP without a
     * client, -ENOKEY without a configured distribution secret. */
    int (*build_payment_distribution)(const struct nova_host *host,
                                      const struct nova_stellar_payment_tx *tx,
                                      struct nova_stellar_signed_tx *out, char *err, size_t errlen);

    /* GET /accounts/{account_id} (G...). -ENOENT: no such account. */
    int (*load_account)(const struct nova_host *host, const char *account_id,
                        nova_stellar_account_cb cb, void *arg);

    /* POST /transactions with a signed envelope (base64). 0: in a ledger,
     * successful. -EREMOTEIO: failed or rejected, tx has the codes (look the
     * hash up to learn whether it consumed its sequence). -ETIMEDOUT,
     * -ECANCELED: OUTCOME UNKNOWN (see above). -EAGAIN: not processed. */
    int (*submit)(const struct nova_host *host, const char *envelope_b64, nova_stellar_tx_cb cb,
                  void *arg);

    /* GET /transactions/{hash} (64 hex digits). 0: in a ledger (check
     * tx->successful); -ENOENT: not (yet) in a ledger this Horizon knows. */
    int (*tx_lookup)(const struct nova_host *host, const char *hash_hex, nova_stellar_tx_cb cb,
                     void *arg);

    /* GET / : latest ingested ledger and its close time (the expiry rule:
     * a transaction whose max_time < closed_at and whose lookup is -ENOENT
     * can never be applied). */
    int (*latest_ledger)(const struct nova_host *host, nova_stellar_ledger_cb cb, void *arg);

    /* Stellar RPC (JSON-RPC 2.0): getHealth, getLatestLedger, getEvents.
     * With [stellar] soroban_rpc_url_fallback, a call the RPC failed is
     * sent once to the other URL (docs/stellar.md). */
    int (*rpc_health)(const struct nova_host *host, nova_stellar_rpc_health_cb cb, void *arg);
    int (*rpc_latest_ledger)(const struct nova_host *host, nova_stellar_rpc_ledger_cb cb,
                             void *arg);
    int (*get_events)(const struct nova_host *host, const struct nova_stellar_events_query *query,
                      nova_stellar_events_cb cb, void *arg);
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
