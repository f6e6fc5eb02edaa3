/*
 * stellar_strkey - SEP-23 StrKeys: base32(version || payload || crc16).
 *
 * The version byte is kind << 3, the checksum CRC16-XModem of version and
 * payload, little-endian; base32 is RFC 4648 upper case without padding.
 * Decoding is strict in the way stellar-base is: only A-Z2-7, the exact
 * length of the kind, unused trailing bits zero (i.e. re-encoding gives
 * the same text back), the expected version byte and a matching checksum.
 * Every rejection says which of those failed.
 */
#ifndef NOVA_RUNTIME_STELLAR_STRKEY_H
#define NOVA_RUNTIME_STELLAR_STRKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nova/stellar.h"

/* Largest payload of the kinds handled here (muxed: 32 + 8). */
#define NOVA__STRKEY_PAYLOAD_MAX 40

/* A MuxedAccount: a G... key, or an M... key with its 64-bit id. */
struct nova__muxed_account {
    uint8_t key[32];
    bool muxed;
    uint64_t id;
};

/* "account id (G...)" etc.; "unknown" for out-of-range values. */
const char *nova__strkey_type_name(enum nova_strkey_type type);

/* Payload length of a kind (32, 40 for muxed, 33 for claimable), 0 when unknown. */
size_t nova__strkey_payload_len(enum nova_strkey_type type);

/* Encodes payload (exactly nova__strkey_payload_len(type) bytes) into out,
 * NUL-terminated. Returns the string length, or -EINVAL (bad type/length),
 * -ENOSPC (outlen too small; NOVA_STRKEY_MAX always suffices). */
int nova__strkey_encode(enum nova_strkey_type type, const uint8_t *payload, size_t len, char *out,
                        size_t outlen);

/* Decodes text. expect = NOVA_STRKEY_ANY accepts every kind. The payload is
 * written into payload[cap] (cap >= NOVA__STRKEY_PAYLOAD_MAX is always
 * enough); *type_out and *len_out may be NULL. Returns 0 or -EINVAL. */
int nova__strkey_decode(const char *text, enum nova_strkey_type expect,
                        enum nova_strkey_type *type_out, uint8_t *payload, size_t cap,
                        size_t *len_out, char *err, size_t errlen);

/* Decodes a 32-byte kind (G, S, C, T, X, L) into key. */
int nova__strkey_decode32(const char *text, enum nova_strkey_type expect, uint8_t key[32],
                          char *err, size_t errlen);

/* Accepts a G... or an M... and fills *out. */
int nova__strkey_decode_muxed(const char *text, struct nova__muxed_account *out, char *err,
                              size_t errlen);
/* G... when !a->muxed, else M...; out needs NOVA_STRKEY_MAX bytes. */
int nova__strkey_encode_muxed(const struct nova__muxed_account *a, char *out, size_t outlen);

/* CRC16-XModem (poly 0x1021, init 0). Exposed for tests. */
uint16_t nova__crc16_xmodem(const uint8_t *data, size_t len);

#endif
