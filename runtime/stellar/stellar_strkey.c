#include "config.h"
#include <errno.h>
#include <string.h>
#include "stellar/stellar_err.h"
#include "stellar/stellar_strkey.h"

struct kind {
    enum nova_strkey_type type;
    char letter;
    uint8_t version; /* kind << 3: makes the first base32 letter the familiar one */
    uint8_t payload_len;
    const char *name;
};

static const struct kind kinds[] = {
    {NOVA_STRKEY_ACCOUNT, 'G', 6 << 3, 32, "account id (G...)"},
    {NOVA_STRKEY_SEED, 'S', 18 << 3, 32, "secret seed (S...)"},
    {NOVA_STRKEY_MUXED, 'M', 12 << 3, 40, "muxed account (M...)"},
    {NOVA_STRKEY_CONTRACT, 'C', 2 << 3, 32, "contract id (C...)"},
    {NOVA_STRKEY_PRE_AUTH_TX, 'T', 19 << 3, 32, "pre-auth tx hash (T...)"},
    {NOVA_STRKEY_HASH_X, 'X', 23 << 3, 32, "hash-x signer (X...)"},
    {NOVA_STRKEY_LIQUIDITY_POOL, 'L', 11 << 3, 32, "liquidity pool id (L...)"},
    {NOVA_STRKEY_CLAIMABLE, 'B', 1 << 3, 33, "claimable balance id (B...)"},
};

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static const struct kind *kind_of(enum nova_strkey_type type)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].type == type)
            return &kinds[i];
    return NULL;
}

static const struct kind *kind_of_version(uint8_t version)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].version == version)
            return &kinds[i];
    return NULL;
}

/* Characters needed for n bytes without padding. */
static size_t b32_len(size_t n)
{
    return (n * 8 + 4) / 5;
}

const char *nova__strkey_type_name(enum nova_strkey_type type)
{
    const struct kind *k = kind_of(type);
    return k ? k->name : "unknown";
}

size_t nova__strkey_payload_len(enum nova_strkey_type type)
{
    const struct kind *k = kind_of(type);
    return k ? k->payload_len : 0;
}

uint16_t nova__crc16_xmodem(const uint8_t *data, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(data[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

static void b32_encode(const uint8_t *in, size_t n, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = b32_alphabet[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

int nova__strkey_encode(enum nova_strkey_type type, const uint8_t *payload, size_t len, char *out,
                        size_t outlen)
{
    const struct kind *k = kind_of(type);
    if (k == NULL || payload == NULL || len != k->payload_len)
        return -EINVAL;
    uint8_t raw[1 + NOVA__STRKEY_PAYLOAD_MAX + 2];
    size_t n = 1 + len + 2;
    if (out == NULL || outlen < b32_len(n) + 1)
        return -ENOSPC;
    raw[0] = k->version;
    memcpy(raw + 1, payload, len);
    uint16_t crc = nova__crc16_xmodem(raw, 1 + len);
    raw[1 + len] = (uint8_t)(crc & 0xff);
    raw[2 + len] = (uint8_t)(crc >> 8);
    b32_encode(raw, n, out);
    return (int)b32_len(n);
}

static int b32_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

int nova__strkey_decode(const char *text, enum nova_strkey_type expect,
                        enum nova_strkey_type *type_out, uint8_t *payload, size_t cap,
                        size_t *len_out, char *err, size_t errlen)
{
    const struct kind *want = NULL;
    if (expect != NOVA_STRKEY_ANY && (want = kind_of(expect)) == NULL)
        return nova__stellar_fail(err, errlen, -EINVAL, "unsupported StrKey kind %d", expect);
    const char *what = want ? want->name : "StrKey";
    if (text == NULL || text[0] == '\0')
        return nova__stellar_fail(err, errlen, -EINVAL, "%s is empty", what);

    /* Alphabet first: it explains lower case and '=' padding precisely. */
    size_t n = 0;
    for (; text[n] != '\0'; n++) {
        if (n >= 128)
            return nova__stellar_fail(err, errlen, -EINVAL, "%s is too long", what);
        if (b32_value(text[n]) < 0) {
            unsigned char c = (unsigned char)text[n];
            const char *why = c == '='                 ? "'=' padding is not allowed"
                              : (c >= 'a' && c <= 'z') ? "lower case is not allowed"
                                                       : "only A-Z and 2-7 are allowed";
            /* Never echo characters of what may be a secret seed. */
            bool secret = (want && want->type == NOVA_STRKEY_SEED) || text[0] == 'S';
            if (secret)
                return nova__stellar_fail(err, errlen, -EINVAL,
                                          "invalid %s: bad character at position %zu (%s)", what,
                                          n + 1, why);
            if (c >= 0x20 && c < 0x7f)
                return nova__stellar_fail(err, errlen, -EINVAL,
                                          "invalid %s: character '%c' at position %zu (%s)", what,
                                          c, n + 1, why);
            return nova__stellar_fail(err, errlen, -EINVAL,
                                      "invalid %s: byte 0x%02x at position %zu (%s)", what, c,
                                      n + 1, why);
        }
    }

    /* The kind follows from the first letter; report a wrong kind as such
     * rather than as a length problem (an M... where a G... is expected). */
    const struct kind *k = NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].letter == text[0])
            k = &kinds[i];
    if (k == NULL)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "invalid %s: version byte: unknown StrKey kind '%c'", what,
                                  text[0]);
    if (want != NULL && k != want)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "invalid %s: version byte: this is a %s, expected a %s", what,
                                  k->name, want->name);
    what = k->name;
    size_t nbytes = 1 + (size_t)k->payload_len + 2;
    if (n != b32_len(nbytes))
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "invalid %s: wrong length (%zu characters, expected %zu)", what,
                                  n, b32_len(nbytes));

    uint8_t raw[1 + NOVA__STRKEY_PAYLOAD_MAX + 2 + 1];
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 5) | (uint32_t)b32_value(text[i]);
        bits += 5;
        if (bits >= 8) {
            raw[o++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
        acc &= 0xff; /* keep only bits not yet emitted */
    }
    /* Leftover bits must be zero or two texts would name the same key. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "invalid %s: non-canonical encoding (unused trailing bits set)",
                                  what);
    if (o != nbytes)
        return nova__stellar_fail(err, errlen, -EINVAL, "invalid %s: wrong length", what);
    if (raw[0] != k->version) {
        const struct kind *other = kind_of_version(raw[0]);
        return nova__stellar_fail(
            err, errlen, -EINVAL, "invalid %s: version byte 0x%02x%s%s, expected 0x%02x", what,
            raw[0], other ? " is a " : "", other ? other->name : "", k->version);
    }
    uint16_t crc = nova__crc16_xmodem(raw, nbytes - 2);
    uint16_t got = (uint16_t)(raw[nbytes - 2] | (raw[nbytes - 1] << 8));
    if (crc != got)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "invalid %s: checksum mismatch (typo or truncated key)", what);
    if (payload == NULL || cap < k->payload_len)
        return nova__stellar_fail(err, errlen, -EINVAL, "payload buffer too small");
    memcpy(payload, raw + 1, k->payload_len);
    if (type_out)
        *type_out = k->type;
    if (len_out)
        *len_out = k->payload_len;
    return 0;
}

int nova__strkey_decode32(const char *text, enum nova_strkey_type expect, uint8_t key[32],
                          char *err, size_t errlen)
{
    if (nova__strkey_payload_len(expect) != 32)
        return nova__stellar_fail(err, errlen, -EINVAL, "%s is not a 32-byte StrKey kind",
                                  nova__strkey_type_name(expect));
    return nova__strkey_decode(text, expect, NULL, key, 32, NULL, err, errlen);
}

int nova__strkey_decode_muxed(const char *text, struct nova__muxed_account *out, char *err,
                              size_t errlen)
{
    uint8_t buf[NOVA__STRKEY_PAYLOAD_MAX];
    enum nova_strkey_type type;
    if (text != NULL && text[0] == 'M') {
        int rc = nova__strkey_decode(text, NOVA_STRKEY_MUXED, &type, buf, sizeof(buf), NULL, err,
                                     errlen);
        if (rc < 0)
            return rc;
        /* StrKey order is key then big-endian id (the XDR order is the reverse). */
        memcpy(out->key, buf, 32);
        out->id = 0;
        for (int i = 0; i < 8; i++)
            out->id = (out->id << 8) | buf[32 + i];
        out->muxed = true;
        return 0;
    }
    int rc =
        nova__strkey_decode(text, NOVA_STRKEY_ACCOUNT, &type, buf, sizeof(buf), NULL, err, errlen);
    if (rc < 0)
        return rc;
    memcpy(out->key, buf, 32);
    out->muxed = false;
    out->id = 0;
    return 0;
}

int nova__strkey_encode_muxed(const struct nova__muxed_account *a, char *out, size_t outlen)
{
    if (!a->muxed)
        return nova__strkey_encode(NOVA_STRKEY_ACCOUNT, a->key, 32, out, outlen);
    uint8_t buf[40];
    memcpy(buf, a->key, 32);
    for (int i = 0; i < 8; i++)
        buf[32 + i] = (uint8_t)(a->id >> (56 - 8 * i));
    return nova__strkey_encode(NOVA_STRKEY_MUXED, buf, sizeof(buf), out, outlen);
}
