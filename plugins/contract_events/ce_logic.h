/*
 * ce_logic - the contract_events plugin's pure decisions: the contract set,
 * RPC cursors and positions, event types, ScVal JSON to the values
 * stellar-base's scValToNative() gives, and the rows written for a page.
 * No host calls: the ScVal decoder comes in as a function pointer (the
 * host's scval_decode), so the unit tests run it with the runtime's.
 */
#ifndef NOVA_PLUGIN_CE_LOGIC_H
#define NOVA_PLUGIN_CE_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include <nova/stellar.h>

/* getEvents takes 5 filters of 5 contract ids: one request covers 25. */
#define CE_MAX_CONTRACTS (NOVA_STELLAR_MAX_EVENT_FILTERS * NOVA_STELLAR_MAX_FILTER_CONTRACTS)
#define CE_ID_LEN        56 /* a C... StrKey */
/* contract_events.event_type is VARCHAR(50). */
#define CE_TYPE_MAX 50
/* An RPC cursor: "%019d-%010d" (a TOID past 2^63 takes 20 digits). */
#define CE_CURSOR_MAX 40

/* Nova's environment names for its contracts, in the order Nova lists them. */
extern const char *const ce_contract_env[];

/* host->stellar->scval_decode */
typedef int (*ce_decode_fn)(const char *b64, cJSON **out, char *err, size_t errlen);
/* 0 when id is a C... contract id (host->stellar->strkey_validate) */
typedef int (*ce_validate_fn)(void *ctx, const char *id, char *err, size_t errlen);

struct ce_contracts {
    size_t n;
    char ids[CE_MAX_CONTRACTS][CE_ID_LEN + 1]; /* sorted, distinct */
};

/* Adds the ids of a list (separated by commas, blanks or newlines; empty
 * entries skipped) to set, validated, sorted and without duplicates.
 * -EINVAL names the entry (what) and why; -E2BIG past CE_MAX_CONTRACTS. */
int ce_contracts_add(struct ce_contracts *set, const char *list, const char *what,
                     ce_validate_fn validate, void *ctx, char *err, size_t errlen);

/* "{C...,C...}": the set as a text[] literal. out needs n * 57 + 3 bytes. */
void ce_contracts_array(const struct ce_contracts *set, char *out, size_t len);

/* The advisory lock's name: "nova-worker contract_events " and the ids. */
void ce_lock_name(const struct ce_contracts *set, char *out, size_t len);

/* Fills filters (type "contract", 5 ids each) and returns how many. */
size_t ce_filters(const struct ce_contracts *set,
                  struct nova_stellar_event_filter out[NOVA_STELLAR_MAX_EVENT_FILTERS]);

/* ---- cursors and positions ------------------------------------------- */

/* True for an RPC cursor: 19 or 20 digits (a TOID), '-', 10 digits. */
bool ce_cursor_valid(const char *cursor);
/* The ledger of a valid cursor (its TOID's high 32 bits). */
uint32_t ce_cursor_ledger(const char *cursor);

/* Where the next page starts: after a cursor, or at a ledger. */
struct ce_pos {
    char cursor[CE_CURSOR_MAX]; /* "" = start at ledger */
    uint32_t ledger;            /* the cursor's ledger, or the start ledger */
};
void ce_pos_cursor(struct ce_pos *p, const char *cursor);
void ce_pos_ledger(struct ce_pos *p, uint32_t ledger);
/* <0, 0, >0 as a is before, at, after b (a start ledger L is before every
 * cursor of L). */
int ce_pos_cmp(const struct ce_pos *a, const struct ce_pos *b);

/* ---- events ------------------------------------------------------------ */

/* event_type from decoded topics (scval_decode's JSON): two non-empty
 * Symbols -> "tag:name" lower-cased; else a leading non-empty Symbol ->
 * "name"; else the RPC's event type ("contract"). Returns 0, or -E2BIG when
 * "tag:name" is longer than CE_TYPE_MAX (out then holds the tag alone).
 * topics may be NULL. out needs CE_TYPE_MAX + 1 bytes. */
int ce_event_type(const cJSON *topics, const char *rpc_type, char *out);

/* scval_decode's typed JSON to what scValToNative() returns, as JSON:
 * bool, null, u32/i32 as numbers; 64/128/256-bit integers, timepoints and
 * durations as decimal strings; bytes as lower-case hex; symbols, strings
 * and addresses as strings; vec as an array; map as an object (keys as
 * JavaScript turns them into property names); errors as
 * {"type":"contract","code":N} or {"type":"system","code":N,"value":"scec..."}.
 * A string that is not UTF-8 is decoded with U+FFFD for bad bytes, as
 * TextDecoder does (NUL too: PostgreSQL's jsonb refuses \u0000). NULL when
 * the JSON is not scval_decode's (err says why) or out of memory. */
cJSON *ce_native(const cJSON *typed, char *err, size_t errlen);

/* One event as the RPC served it or as a row keeps it (event_data). */
struct ce_raw {
    const char *id, *type, *contract_id, *tx_hash, *ledger_closed_at;
    uint32_t ledger, transaction_index, operation_index;
    bool in_successful_contract_call;
    const char *const *topic_xdr;
    size_t topic_count;
    const char *value_xdr;
    const cJSON *topics, *value; /* decoded (typed) when known, else NULL */
};

void ce_raw_from_event(const struct nova_stellar_event *ev, struct ce_raw *out);

/* The row for one event, a JSON object with the columns event_id,
 * contract_id, event_type, event_data, transaction_hash, ledger_sequence,
 * status ("processed", or "failed" with error_message when an XDR does not
 * decode or the type is too long). event_data holds the event's metadata,
 * topics and value (native), schema_version and fields of a data tuple (a
 * vec whose first element is a u32) or fields of a map, and the raw XDR
 * under "xdr" (what the retry pass decodes again). NULL when out of memory. */
cJSON *ce_row(const struct ce_raw *ev, ce_decode_fn decode);

/* The raw event back from a row's event_data (strings point into it;
 * topic slots into the caller's array of max). -EINVAL when event_data
 * lacks what ce_row() wrote. */
int ce_raw_from_data(const cJSON *event_data, struct ce_raw *out, const char **topic_slots,
                     size_t max);

/* The lag in ledgers of a position behind the RPC's latest ledger. */
uint32_t ce_lag(uint32_t latest, const struct ce_pos *pos);

#endif
