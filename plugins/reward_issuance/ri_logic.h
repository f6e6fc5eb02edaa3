/*
 * ri_logic - the pure decisions of the reward_issuance plugin: payload
 * validation, memos, trustline pre-flight, batching, and the state machine
 * of one signed envelope (what to do after a submission or a lookup).
 *
 * Nothing here does I/O or keeps state; every function is deterministic
 * and unit-tested (tests/reward/test_ri_logic.c). The Stellar helpers
 * (StrKey and amount parsing) come from the host's offline table, passed
 * in as `st`.
 */
#ifndef NOVA_RI_LOGIC_H
#define NOVA_RI_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nova/stellar.h>

struct cJSON;

#define RI_KEY_MAX    256 /* idempotency keys: reward_issuances.idempotency_key VARCHAR(255) */
#define RI_REASON_MAX 256

/* ---- payloads ------------------------------------------------------------ */

/* Nova's issue-reward data (nova-rewards-system.md §2.2). */
struct ri_issue_req {
    int64_t issuance_id;
    char idempotency_key[RI_KEY_MAX];
    int64_t campaign_id;
    bool has_user;
    int64_t user_id;
    char wallet[NOVA_STRKEY_MAX];
    int64_t amount; /* stroops */
};

/*
 * Validates and converts the job data. amount may be a JSON number or a
 * string; either way > 0 with at most 7 decimals. Returns 0, or -EINVAL
 * with a reason naming the field in err.
 */
int nova__ri_parse_issue(const struct nova_stellar_api *st, const struct cJSON *data,
                         struct ri_issue_req *out, char *err, size_t errlen);

struct ri_recipient {
    char wallet[NOVA_STRKEY_MAX];
    int64_t amount;            /* stroops; 0 when invalid */
    char error[RI_REASON_MAX]; /* "" when valid, else why it cannot be paid */
};

/* Nova's distribute data: campaignId, merchantId, recipients
 * [{walletAddress, amount?}], defaultAmount. */
struct ri_dist_req {
    int64_t campaign_id;
    int64_t merchant_id;
    size_t count;
    struct ri_recipient *recipients; /* malloc'ed, free with nova__ri_dist_free */
};

/* Structural problems (no recipients array, > max_recipients, no campaign)
 * are -EINVAL with err; a bad individual recipient only gets its error set. */
int nova__ri_parse_distribute(const struct nova_stellar_api *st, const struct cJSON *data,
                              size_t max_recipients, struct ri_dist_req *out, char *err,
                              size_t errlen);
void nova__ri_dist_free(struct ri_dist_req *req);

/* JSON number or string -> stroops (> 0, <= 7 decimals). */
int nova__ri_amount(const struct nova_stellar_api *st, const struct cJSON *v, int64_t *out,
                    char *err, size_t errlen);

/* ---- memos --------------------------------------------------------------- */

/* Text memos (<= 28 bytes, NUL included in out[29]): "nova:i<issuanceId>"
 * for an envelope paying one issuance, "nova:b<envelope id>" for a batch.
 * Return 0, or -ERANGE if the id is negative (cannot happen with SERIAL). */
int nova__ri_memo_issuance(int64_t issuance_id, char out[NOVA_STELLAR_MEMO_TEXT_MAX + 1]);
int nova__ri_memo_batch(int64_t envelope_id, char out[NOVA_STELLAR_MEMO_TEXT_MAX + 1]);

/* ---- trustline pre-flight -------------------------------------------------- */

/*
 * Checks an account as host->stellar->load_account() reported it for a
 * usable trustline to code:issuer able to receive `amount` stroops.
 * Returns 0, or -EINVAL with a reason of "no_trustline", "not_authorized"
 * or "line_full" in reason. A payment to the issuer itself (account_id ==
 * issuer) needs no trustline.
 */
int nova__ri_check_trustline(const struct nova_stellar_account *account, const char *account_id,
                             const char *code, const char *issuer, int64_t amount, char *reason,
                             size_t reasonlen);

/* ---- batching ---------------------------------------------------------------- */

/* True when a batch should be built now: batch_max payments are waiting,
 * or the oldest has waited wait_ms. */
bool nova__ri_batch_ready(size_t pending, size_t batch_max, int64_t oldest_age_ms, int64_t wait_ms);

/* What becomes of one payment of an envelope that was included as failed:
 * its operation said op_success (rolled back with the others: queue it
 * again) or failed (the payment failed with that code). */
enum ri_op_fate { RI_OP_REQUEUE = 0, RI_OP_FAIL };
enum ri_op_fate nova__ri_op_fate(const char *op_code);

/* Short, stable reason for an operation or transaction code, used in
 * error messages and as the nova_reward_dlq_total label: "no_trustline",
 * "underfunded", "line_full", "no_destination", "not_authorized",
 * "source_no_trust", or "stellar" for anything else. */
const char *nova__ri_reason_label(const char *code);

/* ---- one envelope's state machine --------------------------------------- */

/* How host->stellar->submit() ended. */
enum ri_submit_class {
    RI_SUBMIT_SUCCESS = 0, /* 0: in a ledger, successful */
    RI_SUBMIT_FAILED,      /* -EREMOTEIO: failed or rejected; look the hash up to learn which */
    RI_SUBMIT_MALFORMED,   /* -EINVAL with a 400 (transaction_malformed / bad_request):
                              Horizon never forwarded it, our envelope is bad */
    RI_SUBMIT_UNKNOWN,     /* -ETIMEDOUT, -ECANCELED, -EAGAIN (429), anything else */
};

/* error, http_status: the members of the submit callback's struct
 * nova_stellar_status (nova/stellar.h). Only a definite verdict is
 * anything but UNKNOWN: an -EINVAL without Horizon's 400 did not come
 * from Horizon and proves nothing. */
enum ri_submit_class nova__ri_classify_submit(int error, long http_status);

/* True when a FAILED submission was Horizon's 400 transaction_failed
 * (rejected, or failed in a ledger: only a lookup tells) rather than a 200
 * saying it is in a ledger as failed. */
bool nova__ri_submit_rejected(int error, long http_status);

enum ri_lookup {
    RI_LOOKUP_NONE = 0,  /* not looked up (yet) */
    RI_LOOKUP_SUCCESS,   /* tx_lookup 0, successful */
    RI_LOOKUP_FAILED,    /* tx_lookup 0, not successful (included as failed) */
    RI_LOOKUP_NOT_FOUND, /* tx_lookup -ENOENT: Horizon's not_found problem */
    RI_LOOKUP_ERROR,     /* anything else (-EAGAIN, -EBADMSG, a bare 404...): no information */
};

/* True when a transaction Horizon returned (lookup or submit) is the
 * envelope we signed: the same hash (any case) and, byte for byte, the
 * same envelope. An answer about anything else confirms nothing. */
bool nova__ri_tx_matches(const struct nova_stellar_tx_info *tx, const char *hash_hex,
                         const char *envelope_b64);

/* error: the tx_lookup status; successful: tx->successful (read only when
 * error is 0). */
enum ri_lookup nova__ri_classify_lookup(int error, bool successful);

/* What the source account's sequence number says about an envelope with
 * sequence S (host->stellar->load_account() of the lane's source). */
enum ri_seq {
    RI_SEQ_UNKNOWN = 0, /* not read since the envelope went unresolved */
    RI_SEQ_UNUSED,      /* account sequence < S: nothing with S applied, as of seq_ledger */
    RI_SEQ_CONSUMED,    /* account sequence >= S: some transaction with S applied by seq_ledger */
};

enum ri_action {
    RI_ACT_CONFIRM = 0,  /* in a ledger, successful: payments confirmed */
    RI_ACT_SPLIT,        /* in a ledger, failed: fail the bad ops, requeue the rest */
    RI_ACT_RELEASE,      /* provably never applied and never will: requeue its payments */
    RI_ACT_EXPIRE,       /* provably never applied and past max_time: requeue its payments */
    RI_ACT_RESUBMIT,     /* unknown and still valid: send the same envelope again */
    RI_ACT_LOOKUP,       /* unknown: look the hash up (again) */
    RI_ACT_LEDGER,       /* not found: read the latest ledger (has one closed after max_time?) */
    RI_ACT_SEQUENCE,     /* not found after max_time: read the source account's sequence */
    RI_ACT_UNRESOLVABLE, /* not found, yet its sequence was used: beyond Horizon's history, or
                            another transaction used the account. Never released: ops decide */
};

/*
 * What the lane knows about its open envelope. Each Horizon answer holds
 * as of the ledger its replica had ingested (its Latest-Ledger header):
 * the ledger numbers below are those, 0 when unknown or absent.
 */
struct ri_envelope_view {
    int submit_attempts;         /* submissions recorded, this one included */
    bool rejected;               /* the last submission got 400 transaction_failed */
    enum ri_lookup lookup;       /* result of the last lookup after that submission */
    uint32_t lookup_ledger;      /* NOT_FOUND: the Latest-Ledger of that answer */
    int64_t max_time;            /* unix seconds, as signed in the envelope */
    int64_t latest_ledger_close; /* close time of the latest ledger read since the lookup, -1 */
    uint32_t expiry_ledger;      /* a ledger known to have closed after max_time, 0 none */
    enum ri_seq seq;             /* the source account's sequence against the envelope's */
    uint32_t seq_ledger;         /* the Latest-Ledger of that account answer */
};

/*
 * The decision after a submission outcome and/or lookup. Expiry needs a
 * proof that holds across Horizon replicas at different heights
 * (docs/plugins/reward_issuance.md, "Why an expiry is a proof"): a ledger
 * E that closed after max_time, a "not found" from a replica that had
 * ingested E, and the source account's sequence still below the
 * envelope's as of E or later. Anything less is waited on.
 */
enum ri_action nova__ri_decide(const struct ri_envelope_view *v);

const char *nova__ri_action_name(enum ri_action a);

#endif
