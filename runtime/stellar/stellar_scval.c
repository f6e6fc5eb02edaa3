#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stellar/stellar_err.h"
#include "stellar/stellar_scval.h"
#include "stellar/stellar_strkey.h"

enum {
    SCV_BOOL = 0,
    SCV_VOID = 1,
    SCV_ERROR = 2,
    SCV_U32 = 3,
    SCV_I32 = 4,
    SCV_U64 = 5,
    SCV_I64 = 6,
    SCV_TIMEPOINT = 7,
    SCV_DURATION = 8,
    SCV_U128 = 9,
    SCV_I128 = 10,
    SCV_U256 = 11,
    SCV_I256 = 12,
    SCV_BYTES = 13,
    SCV_STRING = 14,
    SCV_SYMBOL = 15,
    SCV_VEC = 16,
    SCV_MAP = 17,
    SCV_ADDRESS = 18,
};

/* Decoding state shared down the recursion. */
struct dec {
    struct nova__xdr_reader *r;
    char *err;
    size_t errlen;
};

static int malformed(struct dec *d, const char *msg)
{
    return nova__stellar_fail(d->err, d->errlen, -EBADMSG, "malformed ScVal: %s (at byte %zu)", msg,
                              d->r->off);
}

static int truncated(struct dec *d, const char *what)
{
    return nova__stellar_fail(d->err, d->errlen, -EBADMSG,
                              "malformed ScVal: truncated or bad padding in %s (%zu bytes)", what,
                              d->r->len);
}

static int nomem(struct dec *d)
{
    return nova__stellar_fail(d->err, d->errlen, -ENOMEM, "out of memory");
}

void nova__bigint_to_decimal(const uint8_t *be, size_t n, int is_signed, char *out)
{
    uint8_t mag[32];
    bool neg = is_signed && n > 0 && (be[0] & 0x80);
    if (n > 32)
        n = 32;
    memcpy(mag, be, n);
    if (neg) {
        /* Two's complement negation gives the magnitude (also of the minimum). */
        unsigned carry = 1;
        for (size_t i = n; i-- > 0;) {
            unsigned v = (uint8_t)~mag[i] + carry;
            mag[i] = (uint8_t)v;
            carry = v >> 8;
        }
    }
    char digits[80];
    size_t nd = 0;
    bool nonzero = true;
    while (nonzero) {
        /* Divide the big-endian magnitude by 10 in place. */
        unsigned rem = 0;
        nonzero = false;
        for (size_t i = 0; i < n; i++) {
            unsigned cur = rem << 8 | mag[i];
            mag[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            if (mag[i])
                nonzero = true;
        }
        digits[nd++] = (char)('0' + rem);
    }
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    while (nd > 0)
        out[o++] = digits[--nd];
    out[o] = '\0';
}

static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* Wraps v as {"name": v}; consumes v. */
static cJSON *tagged(const char *name, cJSON *v)
{
    if (v == NULL)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        cJSON_Delete(v);
        return NULL;
    }
    cJSON_AddItemToObject(o, name, v);
    return o;
}

static cJSON *hex_string(const uint8_t *p, size_t n)
{
    char *hex = malloc(2 * n + 1);
    if (hex == NULL)
        return NULL;
    nova__hex_encode(p, n, hex);
    cJSON *s = cJSON_CreateString(hex);
    free(hex);
    return s;
}

/* cJSON strings are C strings: copy out of the (unterminated) XDR bytes. */
static cJSON *byte_string(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    cJSON *j = cJSON_CreateString(s);
    free(s);
    return j;
}

static int read_value(struct dec *d, int depth, cJSON **out);

static int read_address(struct dec *d, cJSON **out)
{
    int32_t type;
    const uint8_t *key;
    char strkey[NOVA_STRKEY_MAX];
    if (nova__xdr_get_i32(d->r, &type) < 0)
        return truncated(d, "address type");
    switch (type) {
    case 0: { /* account: PublicKey union, ed25519 only */
        int32_t kt;
        if (nova__xdr_get_i32(d->r, &kt) < 0)
            return truncated(d, "account address");
        if (kt != 0)
            return malformed(d, "unknown public key type in account address");
        if (nova__xdr_get_fixed(d->r, 32, &key) < 0)
            return truncated(d, "account address");
        nova__strkey_encode(NOVA_STRKEY_ACCOUNT, key, 32, strkey, sizeof(strkey));
        break;
    }
    case 1: /* contract */
        if (nova__xdr_get_fixed(d->r, 32, &key) < 0)
            return truncated(d, "contract address");
        nova__strkey_encode(NOVA_STRKEY_CONTRACT, key, 32, strkey, sizeof(strkey));
        break;
    case 2: { /* muxed account: id then key, like MuxedAccount */
        struct nova__muxed_account m = {.muxed = true};
        if (nova__xdr_get_u64(d->r, &m.id) < 0 || nova__xdr_get_fixed(d->r, 32, &key) < 0)
            return truncated(d, "muxed address");
        memcpy(m.key, key, 32);
        nova__strkey_encode_muxed(&m, strkey, sizeof(strkey));
        break;
    }
    case 3: { /* claimable balance: ClaimableBalanceID union, v0 hash */
        int32_t bt;
        uint8_t payload[33] = {0};
        if (nova__xdr_get_i32(d->r, &bt) < 0)
            return truncated(d, "claimable balance address");
        if (bt != 0)
            return malformed(d, "unknown claimable balance id type");
        if (nova__xdr_get_fixed(d->r, 32, &key) < 0)
            return truncated(d, "claimable balance address");
        memcpy(payload + 1, key, 32);
        nova__strkey_encode(NOVA_STRKEY_CLAIMABLE, payload, 33, strkey, sizeof(strkey));
        break;
    }
    case 4: /* liquidity pool */
        if (nova__xdr_get_fixed(d->r, 32, &key) < 0)
            return truncated(d, "liquidity pool address");
        nova__strkey_encode(NOVA_STRKEY_LIQUIDITY_POOL, key, 32, strkey, sizeof(strkey));
        break;
    default:
        return malformed(d, "unknown address type");
    }
    if ((*out = tagged("address", cJSON_CreateString(strkey))) == NULL)
        return nomem(d);
    return 0;
}

static int read_error(struct dec *d, cJSON **out)
{
    static const char *const types[] = {"contract", "wasm_vm", "context", "storage", "object",
                                        "crypto",   "events",  "budget",  "value",   "auth"};
    static const char *const codes[] = {
        "arith_domain",   "index_bounds",   "invalid_input",  "missing_value",   "existing_value",
        "exceeded_limit", "invalid_action", "internal_error", "unexpected_type", "unexpected_size"};
    int32_t type;
    uint32_t code;
    if (nova__xdr_get_i32(d->r, &type) < 0 || nova__xdr_get_u32(d->r, &code) < 0)
        return truncated(d, "error");
    if (type < 0 || type > 9)
        return malformed(d, "unknown error type");
    cJSON *v;
    if (type == 0) {
        v = cJSON_CreateNumber(code);
    } else {
        if (code > 9)
            return malformed(d, "unknown error code");
        v = cJSON_CreateString(codes[code]);
    }
    cJSON *inner = cJSON_CreateObject();
    if (v == NULL || inner == NULL) {
        cJSON_Delete(v);
        cJSON_Delete(inner);
        return nomem(d);
    }
    cJSON_AddItemToObject(inner, types[type], v);
    if ((*out = tagged("error", inner)) == NULL)
        return nomem(d);
    return 0;
}

static int read_seq(struct dec *d, int depth, bool is_map, cJSON **out)
{
    const char *what = is_map ? "map" : "vec";
    bool present;
    uint32_t count;
    if (nova__xdr_get_bool(d->r, &present) < 0)
        return truncated(d, what);
    if (!present) {
        if ((*out = tagged(what, cJSON_CreateNull())) == NULL)
            return nomem(d);
        return 0;
    }
    if (depth >= NOVA__SCVAL_MAX_DEPTH)
        return nova__stellar_fail(d->err, d->errlen, -EBADMSG,
                                  "malformed ScVal: vec/map nesting deeper than %d",
                                  NOVA__SCVAL_MAX_DEPTH);
    if (nova__xdr_get_u32(d->r, &count) < 0)
        return truncated(d, what);
    /* Every ScVal takes at least 4 bytes: refuse counts the input cannot hold
     * before looping (a 4-byte count must not cost 4 billion iterations). */
    if ((uint64_t)count * (is_map ? 8 : 4) > nova__xdr_remaining(d->r))
        return nova__stellar_fail(d->err, d->errlen, -EBADMSG,
                                  "malformed ScVal: %s of %" PRIu32 " entries in %zu bytes", what,
                                  count, nova__xdr_remaining(d->r));
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL)
        return nomem(d);
    for (uint32_t i = 0; i < count; i++) {
        cJSON *item = NULL;
        int rc;
        if (is_map) {
            cJSON *k = NULL, *v = NULL;
            if ((rc = read_value(d, depth + 1, &k)) < 0) {
                cJSON_Delete(arr);
                return rc;
            }
            if ((rc = read_value(d, depth + 1, &v)) < 0) {
                cJSON_Delete(k);
                cJSON_Delete(arr);
                return rc;
            }
            item = cJSON_CreateObject();
            if (item == NULL) {
                cJSON_Delete(k);
                cJSON_Delete(v);
                cJSON_Delete(arr);
                return nomem(d);
            }
            cJSON_AddItemToObject(item, "key", k);
            cJSON_AddItemToObject(item, "val", v);
        } else if ((rc = read_value(d, depth + 1, &item)) < 0) {
            cJSON_Delete(arr);
            return rc;
        }
        cJSON_AddItemToArray(arr, item);
    }
    if ((*out = tagged(what, arr)) == NULL)
        return nomem(d);
    return 0;
}

static int read_value(struct dec *d, int depth, cJSON **out)
{
    int32_t type;
    char num[80];
    *out = NULL;
    if (nova__xdr_get_i32(d->r, &type) < 0)
        return truncated(d, "type");
    cJSON *v = NULL;
    const char *name = NULL;
    switch (type) {
    case SCV_BOOL: {
        bool b;
        if (nova__xdr_get_bool(d->r, &b) < 0)
            return malformed(d, "bool is not 0 or 1 (or truncated)");
        name = "bool", v = cJSON_CreateBool(b);
        break;
    }
    case SCV_VOID:
        name = "void", v = cJSON_CreateNull();
        break;
    case SCV_ERROR:
        return read_error(d, out);
    case SCV_U32: {
        uint32_t u;
        if (nova__xdr_get_u32(d->r, &u) < 0)
            return truncated(d, "u32");
        name = "u32", v = cJSON_CreateNumber(u);
        break;
    }
    case SCV_I32: {
        int32_t i;
        if (nova__xdr_get_i32(d->r, &i) < 0)
            return truncated(d, "i32");
        name = "i32", v = cJSON_CreateNumber(i);
        break;
    }
    case SCV_U64:
    case SCV_TIMEPOINT:
    case SCV_DURATION: {
        uint64_t u;
        name = type == SCV_U64 ? "u64" : type == SCV_TIMEPOINT ? "timepoint" : "duration";
        if (nova__xdr_get_u64(d->r, &u) < 0)
            return truncated(d, name);
        snprintf(num, sizeof(num), "%" PRIu64, u);
        v = cJSON_CreateString(num);
        break;
    }
    case SCV_I64: {
        int64_t i;
        if (nova__xdr_get_i64(d->r, &i) < 0)
            return truncated(d, "i64");
        snprintf(num, sizeof(num), "%" PRId64, i);
        name = "i64", v = cJSON_CreateString(num);
        break;
    }
    case SCV_U128:
    case SCV_I128:
    case SCV_U256:
    case SCV_I256: {
        /* The hi/lo parts are consecutive big-endian words, so the arm is
         * simply a 16- or 32-byte big-endian integer. */
        size_t n = (type == SCV_U128 || type == SCV_I128) ? 16 : 32;
        const uint8_t *p;
        name = type == SCV_U128   ? "u128"
               : type == SCV_I128 ? "i128"
               : type == SCV_U256 ? "u256"
                                  : "i256";
        if (nova__xdr_get_fixed(d->r, n, &p) < 0)
            return truncated(d, name);
        nova__bigint_to_decimal(p, n, type == SCV_I128 || type == SCV_I256, num);
        v = cJSON_CreateString(num);
        break;
    }
    case SCV_BYTES: {
        const uint8_t *p;
        uint32_t n;
        if (nova__xdr_get_var(d->r, UINT32_MAX, &p, &n) < 0)
            return truncated(d, "bytes");
        name = "bytes", v = hex_string(p, n);
        break;
    }
    case SCV_STRING: {
        const uint8_t *p;
        uint32_t n;
        if (nova__xdr_get_var(d->r, UINT32_MAX, &p, &n) < 0)
            return truncated(d, "string");
        if (utf8_valid(p, n))
            name = "string", v = byte_string(p, n);
        else
            name = "string_hex", v = hex_string(p, n);
        break;
    }
    case SCV_SYMBOL: {
        const uint8_t *p;
        uint32_t n;
        if (nova__xdr_get_var(d->r, 32, &p, &n) < 0)
            return malformed(d, "symbol longer than 32 bytes, truncated or badly padded");
        for (uint32_t i = 0; i < n; i++) {
            uint8_t c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_'))
                return malformed(d, "symbol has a character outside [A-Za-z0-9_]");
        }
        name = "symbol", v = byte_string(p, n);
        break;
    }
    case SCV_VEC:
        return read_seq(d, depth, false, out);
    case SCV_MAP:
        return read_seq(d, depth, true, out);
    case SCV_ADDRESS:
        return read_address(d, out);
    default:
        if (type >= 19 && type <= 21)
            return nova__stellar_fail(d->err, d->errlen, -EBADMSG,
                                      "unsupported ScVal type %d (contract instance / ledger key)",
                                      (int)type);
        return nova__stellar_fail(d->err, d->errlen, -EBADMSG, "malformed ScVal: unknown type %d",
                                  (int)type);
    }
    if ((*out = tagged(name, v)) == NULL)
        return nomem(d);
    return 0;
}

int nova__scval_read(struct nova__xdr_reader *r, cJSON **out, char *err, size_t errlen)
{
    struct dec d = {.r = r, .err = err, .errlen = errlen};
    int rc = read_value(&d, 0, out);
    if (rc < 0) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

int nova__scval_decode(const uint8_t *xdr, size_t len, cJSON **out, char *err, size_t errlen)
{
    struct nova__xdr_reader r;
    nova__xdr_reader_init(&r, xdr, len);
    int rc = nova__scval_read(&r, out, err, errlen);
    if (rc < 0)
        return rc;
    if (nova__xdr_remaining(&r) != 0) {
        cJSON_Delete(*out);
        *out = NULL;
        return nova__stellar_fail(err, errlen, -EBADMSG, "malformed ScVal: %zu trailing bytes",
                                  nova__xdr_remaining(&r));
    }
    return 0;
}

int nova__scval_decode_b64(const char *b64, cJSON **out, char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    *out = NULL;
    int rc = nova__b64_decode(b64, &buf, &len);
    if (rc == -ENOMEM)
        return nova__stellar_fail(err, errlen, rc, "out of memory");
    if (rc < 0)
        return nova__stellar_fail(err, errlen, -EBADMSG, "ScVal is not valid base64");
    rc = nova__scval_decode(buf, len, out, err, errlen);
    free(buf);
    return rc;
}

int nova__scval_decode_topics(const cJSON *topics, cJSON **out, char *err, size_t errlen)
{
    *out = cJSON_CreateArray();
    if (*out == NULL)
        return nova__stellar_fail(err, errlen, -ENOMEM, "out of memory");
    if (topics == NULL)
        return 0;
    if (!cJSON_IsArray(topics)) {
        cJSON_Delete(*out);
        *out = NULL;
        return nova__stellar_fail(err, errlen, -EINVAL, "event topic is not an array");
    }
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, topics)
    {
        cJSON *v = NULL;
        int rc = cJSON_IsString(t) ? nova__scval_decode_b64(t->valuestring, &v, err, errlen)
                                   : nova__stellar_fail(err, errlen, -EINVAL, "not a string");
        if (rc < 0) {
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "topic %d", i + 1);
            nova__stellar_err_prefix(err, errlen, prefix);
            cJSON_Delete(*out);
            *out = NULL;
            return rc;
        }
        cJSON_AddItemToArray(*out, v);
        i++;
    }
    return 0;
}

int nova__stellar_event_id(uint32_t ledger, uint32_t tx_index, uint32_t op_index,
                           uint32_t event_index, char *out)
{
    if (tx_index >= (1u << 20) || op_index >= (1u << 12))
        return -EINVAL;
    uint64_t toid = (uint64_t)ledger << 32 | (uint64_t)tx_index << 12 | op_index;
    snprintf(out, NOVA__EVENT_ID_MAX, "%019" PRIu64 "-%010" PRIu32, toid, event_index);
    return 0;
}
