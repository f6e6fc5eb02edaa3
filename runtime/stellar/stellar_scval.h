/*
 * stellar_scval - Soroban ScVal XDR -> JSON, for contract events.
 *
 * Every value becomes a JSON object with exactly one member naming its
 * type, so nothing is lost (a symbol and a string stay distinguishable,
 * 64- and 128-bit integers stay exact):
 *
 *   SCV_BOOL      {"bool":true}            SCV_VOID     {"void":null}
 *   SCV_U32       {"u32":42}               SCV_I32      {"i32":-1}
 *   SCV_U64       {"u64":"1000000000000"}  SCV_I64      {"i64":"-5"}
 *   SCV_TIMEPOINT {"timepoint":"..."}      SCV_DURATION {"duration":"..."}
 *   SCV_U128/I128/U256/I256  {"i128":"-170141183460469231731687303715884105728"}
 *                 (decimal strings: JSON numbers are doubles)
 *   SCV_BYTES     {"bytes":"00ba33"}       lower-case hex (hex, not base64:
 *                                          ids and hashes are read as hex)
 *   SCV_STRING    {"string":"hello"}       when valid UTF-8 without NUL,
 *                 otherwise {"string_hex":"..."} (XDR strings are bytes)
 *   SCV_SYMBOL    {"symbol":"mint"}        [A-Za-z0-9_]{0,32}, else malformed
 *   SCV_ADDRESS   {"address":"G..."}       G (account), C (contract),
 *                                          M (muxed), B (claimable), L (pool)
 *   SCV_VEC       {"vec":[...]}            {"vec":null} when absent
 *   SCV_MAP       {"map":[{"key":...,"val":...}, ...]}  (in XDR order)
 *   SCV_ERROR     {"error":{"contract":7}} or {"error":{"budget":"exceeded_limit"}}
 *
 * Contract instances and ledger-key variants (types 19-21) never appear in
 * events and are rejected. Nesting deeper than NOVA__SCVAL_MAX_DEPTH
 * vec/map levels is rejected, as is any truncation, non-zero padding,
 * unknown discriminant or trailing byte.
 */
#ifndef NOVA_RUNTIME_STELLAR_SCVAL_H
#define NOVA_RUNTIME_STELLAR_SCVAL_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "stellar/stellar_xdr.h"

#define NOVA__SCVAL_MAX_DEPTH 32

/* Decodes exactly one ScVal occupying all len bytes. On success *out is a
 * new cJSON tree the caller frees with cJSON_Delete(); on error *out is
 * NULL and err says why (-EBADMSG malformed, -ENOMEM). */
int nova__scval_decode(const uint8_t *xdr, size_t len, cJSON **out, char *err, size_t errlen);

/* The same from base64 (a getEvents topic segment or value). */
int nova__scval_decode_b64(const char *b64, cJSON **out, char *err, size_t errlen);

/* Reads one ScVal from r (which may hold more). */
int nova__scval_read(struct nova__xdr_reader *r, cJSON **out, char *err, size_t errlen);

/* Decodes a getEvents "topic" array (base64 strings) into a JSON array of
 * decoded values. NULL or an empty array gives an empty array. */
int nova__scval_decode_topics(const cJSON *topics, cJSON **out, char *err, size_t errlen);

/* getEvents event id: "%019llu-%010u" of the TOID (ledger << 32 |
 * tx_index << 12 | op_index) and the event's index; out needs
 * NOVA__EVENT_ID_MAX bytes (a TOID past 2^63 takes 20 digits).
 * tx_index must be < 2^20 and op_index < 2^12 (-EINVAL otherwise). */
#define NOVA__EVENT_ID_MAX 32
int nova__stellar_event_id(uint32_t ledger, uint32_t tx_index, uint32_t op_index,
                           uint32_t event_index, char *out);

/* Writes the decimal form of a big-endian two's-complement (is_signed) or
 * unsigned integer of n bytes (n <= 32); out needs 80 bytes. */
void nova__bigint_to_decimal(const uint8_t *be, size_t n, int is_signed, char *out);

#endif
