/*
 * stellar_xdr - RFC 4506 XDR primitives, base64 and hex.
 *
 * The writer grows a heap buffer and remembers the first failure
 * (allocation, oversize), so encoders write field after field and check
 * once at the end. The reader is bounded: every get checks the remaining
 * length first and never reads past len; a failure sets r->err and every
 * later get fails too, so decoders can check once per structure.
 */
#ifndef NOVA_RUNTIME_STELLAR_XDR_H
#define NOVA_RUNTIME_STELLAR_XDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writer. Zero-initialise, write, check err, then nova__xdr_free(). data
 * is heap memory owned by the writer until nova__xdr_free(). */
struct nova__xdr_writer {
    uint8_t *data;
    size_t len, cap;
    int err; /* 0 or the first -errno */
};

void nova__xdr_put_u32(struct nova__xdr_writer *w, uint32_t v);
void nova__xdr_put_i32(struct nova__xdr_writer *w, int32_t v);
void nova__xdr_put_u64(struct nova__xdr_writer *w, uint64_t v);
void nova__xdr_put_i64(struct nova__xdr_writer *w, int64_t v);
/* opaque[n]: n bytes then zero padding to a multiple of 4. */
void nova__xdr_put_fixed(struct nova__xdr_writer *w, const void *p, size_t n);
/* opaque<> / string<>: length, bytes, padding. */
void nova__xdr_put_var(struct nova__xdr_writer *w, const void *p, size_t n);
void nova__xdr_put_raw(struct nova__xdr_writer *w, const void *p, size_t n);
void nova__xdr_free(struct nova__xdr_writer *w);

/* Reader over borrowed bytes. */
struct nova__xdr_reader {
    const uint8_t *p;
    size_t len, off;
    int err; /* 0 or -EBADMSG once anything failed */
};

void nova__xdr_reader_init(struct nova__xdr_reader *r, const void *data, size_t len);
int nova__xdr_get_u32(struct nova__xdr_reader *r, uint32_t *v);
int nova__xdr_get_i32(struct nova__xdr_reader *r, int32_t *v);
int nova__xdr_get_u64(struct nova__xdr_reader *r, uint64_t *v);
int nova__xdr_get_i64(struct nova__xdr_reader *r, int64_t *v);
/* XDR bool: exactly 0 or 1, anything else is malformed. */
int nova__xdr_get_bool(struct nova__xdr_reader *r, bool *v);
/* opaque[n]: *p points into the input; the padding must be zero. */
int nova__xdr_get_fixed(struct nova__xdr_reader *r, size_t n, const uint8_t **p);
/* opaque<max>: length (<= max), bytes, zero padding. */
int nova__xdr_get_var(struct nova__xdr_reader *r, uint32_t max, const uint8_t **p, uint32_t *n);
size_t nova__xdr_remaining(const struct nova__xdr_reader *r);

/* Base64 (RFC 4648 standard alphabet, with '=' padding). encode returns a
 * malloc'd NUL-terminated string or NULL on allocation failure. decode
 * returns a malloc'd buffer in *out (free() it; at least 1 byte even for
 * empty input) or -EINVAL on any invalid character, padding or length. */
char *nova__b64_encode(const void *data, size_t len);
int nova__b64_decode(const char *text, uint8_t **out, size_t *len);

/* Lower-case hex; out needs 2 * len + 1 bytes. */
void nova__hex_encode(const void *data, size_t len, char *out);
/* Exactly 2 * len hex digits; returns 0 or -EINVAL. */
int nova__hex_decode(const char *text, void *out, size_t len);

#endif
