#include "config.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "stellar/stellar_xdr.h"

/* Nothing Stellar encodes comes close; stops a runaway encoder early. */
#define XDR_WRITER_MAX (16u << 20)

static bool reserve(struct nova__xdr_writer *w, size_t n)
{
    if (w->err)
        return false;
    if (n > XDR_WRITER_MAX || w->len > XDR_WRITER_MAX - n) {
        w->err = -E2BIG;
        return false;
    }
    if (w->len + n <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n)
        cap *= 2;
    uint8_t *d = realloc(w->data, cap);
    if (d == NULL) {
        w->err = -ENOMEM;
        return false;
    }
    w->data = d;
    w->cap = cap;
    return true;
}

void nova__xdr_put_raw(struct nova__xdr_writer *w, const void *p, size_t n)
{
    if (n == 0 || !reserve(w, n))
        return;
    memcpy(w->data + w->len, p, n);
    w->len += n;
}

void nova__xdr_put_u32(struct nova__xdr_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    nova__xdr_put_raw(w, b, 4);
}

void nova__xdr_put_i32(struct nova__xdr_writer *w, int32_t v)
{
    nova__xdr_put_u32(w, (uint32_t)v);
}

void nova__xdr_put_u64(struct nova__xdr_writer *w, uint64_t v)
{
    nova__xdr_put_u32(w, (uint32_t)(v >> 32));
    nova__xdr_put_u32(w, (uint32_t)v);
}

void nova__xdr_put_i64(struct nova__xdr_writer *w, int64_t v)
{
    nova__xdr_put_u64(w, (uint64_t)v);
}

void nova__xdr_put_fixed(struct nova__xdr_writer *w, const void *p, size_t n)
{
    static const uint8_t zero[4];
    nova__xdr_put_raw(w, p, n);
    if (n % 4)
        nova__xdr_put_raw(w, zero, 4 - n % 4);
}

void nova__xdr_put_var(struct nova__xdr_writer *w, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        if (!w->err)
            w->err = -E2BIG;
        return;
    }
    nova__xdr_put_u32(w, (uint32_t)n);
    nova__xdr_put_fixed(w, p, n);
}

void nova__xdr_free(struct nova__xdr_writer *w)
{
    free(w->data);
    memset(w, 0, sizeof(*w));
}

void nova__xdr_reader_init(struct nova__xdr_reader *r, const void *data, size_t len)
{
    r->p = data;
    r->len = data ? len : 0;
    r->off = 0;
    r->err = 0;
}

size_t nova__xdr_remaining(const struct nova__xdr_reader *r)
{
    return r->err ? 0 : r->len - r->off;
}

static const uint8_t *take(struct nova__xdr_reader *r, size_t n)
{
    if (r->err || n > r->len - r->off) {
        r->err = -EBADMSG;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

int nova__xdr_get_u32(struct nova__xdr_reader *r, uint32_t *v)
{
    const uint8_t *b = take(r, 4);
    if (b == NULL)
        return -EBADMSG;
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return 0;
}

int nova__xdr_get_i32(struct nova__xdr_reader *r, int32_t *v)
{
    uint32_t u = 0;
    int rc = nova__xdr_get_u32(r, &u);
    if (rc == 0)
        *v = (int32_t)u;
    return rc;
}

int nova__xdr_get_u64(struct nova__xdr_reader *r, uint64_t *v)
{
    uint32_t hi = 0, lo = 0;
    if (nova__xdr_get_u32(r, &hi) < 0 || nova__xdr_get_u32(r, &lo) < 0)
        return -EBADMSG;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}

int nova__xdr_get_i64(struct nova__xdr_reader *r, int64_t *v)
{
    uint64_t u = 0;
    int rc = nova__xdr_get_u64(r, &u);
    if (rc == 0)
        *v = (int64_t)u;
    return rc;
}

int nova__xdr_get_bool(struct nova__xdr_reader *r, bool *v)
{
    uint32_t u = 0;
    if (nova__xdr_get_u32(r, &u) < 0)
        return r->err;
    if (u > 1)
        return r->err = -EBADMSG;
    *v = u == 1;
    return 0;
}

int nova__xdr_get_fixed(struct nova__xdr_reader *r, size_t n, const uint8_t **p)
{
    size_t padded = n + (4 - n % 4) % 4;
    if (padded < n)
        return r->err = -EBADMSG;
    const uint8_t *b = take(r, padded);
    if (b == NULL)
        return r->err;
    for (size_t i = n; i < padded; i++)
        if (b[i] != 0)
            return r->err = -EBADMSG;
    *p = b;
    return 0;
}

int nova__xdr_get_var(struct nova__xdr_reader *r, uint32_t max, const uint8_t **p, uint32_t *n)
{
    uint32_t len = 0;
    if (nova__xdr_get_u32(r, &len) < 0)
        return r->err;
    if (len > max)
        return r->err = -EBADMSG;
    if (nova__xdr_get_fixed(r, len, p) < 0)
        return r->err;
    *n = len;
    return 0;
}

char *nova__b64_encode(const void *data, size_t len)
{
    size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc(n);
    if (out == NULL)
        return NULL;
    sodium_bin2base64(out, n, data, len, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

int nova__b64_decode(const char *text, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (text == NULL)
        return -EINVAL;
    size_t tl = strlen(text);
    /* Padded base64 is always a multiple of 4 characters. */
    if (tl % 4 != 0)
        return -EINVAL;
    /* Check the alphabet ourselves: libsodium 1.0.18 maps some bytes >= 0x80
     * onto base64 digits (found by tests/fuzz/fuzz_xdr), and '=' may only
     * end the text. */
    for (size_t i = 0; i < tl; i++) {
        char c = text[i];
        bool digit = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '+' || c == '/';
        if (!digit && !(c == '=' && i + 2 >= tl && (i + 1 == tl || text[i + 1] == '=')))
            return -EINVAL;
    }
    size_t cap = tl / 4 * 3 + 1;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    const char *end = NULL;
    size_t n = 0;
    if (sodium_base642bin(buf, cap, text, tl, NULL, &n, &end, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        end != text + tl) {
        free(buf);
        return -EINVAL;
    }
    *out = buf;
    *len = n;
    return 0;
}

void nova__hex_encode(const void *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int nova__hex_decode(const char *text, void *out, size_t len)
{
    uint8_t *b = out;
    if (text == NULL || strlen(text) != 2 * len)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
