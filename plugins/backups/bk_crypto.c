/*
 * bk_crypto - the NOVABK1 backup file format; see bk_crypto.h for why it
 * exists and its layout.
 */
#include "bk_crypto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char bk_magic[7] = {'N', 'O', 'V', 'A', 'B', 'K', '1'};
#define BK_VERSION 1

/* Domain separation: the key id must never equal any other hash of the key. */
static const char bk_keyid_label[] = "nova-worker backups key id v1";

void bk_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void bk_sha256_hex(crypto_hash_sha256_state *st, char hex[BK_SHA_HEX])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(st, digest);
    sodium_bin2hex(hex, BK_SHA_HEX, digest, sizeof digest);
}

int bk_key_parse(const char *text, size_t len, unsigned char key[BK_KEY_BYTES], char *err,
                 size_t errlen)
{
    size_t n = len;
    if (n > 0 && text[n - 1] == '\n') {
        n--;
        if (n > 0 && text[n - 1] == '\r')
            n--;
    }
    if (n != BK_KEY_HEX) {
        bk_set_err(err, errlen,
                   "the key must be %d hexadecimal digits (a trailing newline allowed), "
                   "found %zu characters",
                   BK_KEY_HEX, n);
        return -EINVAL;
    }
    if (sodium_hex2bin(key, BK_KEY_BYTES, text, BK_KEY_HEX, NULL, NULL, NULL) != 0) {
        sodium_memzero(key, BK_KEY_BYTES);
        /* the first character that is not a hex digit, counted from 1 */
        bk_set_err(err, errlen, "the key must be hexadecimal digits only (character %zu is not)",
                   strspn(text, "0123456789abcdefABCDEF") + 1);
        return -EINVAL;
    }
    return 0;
}

void bk_key_id(const unsigned char key[BK_KEY_BYTES], unsigned char id[BK_KEYID_BYTES])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, BK_KEYID_BYTES);
    crypto_generichash_update(&h, (const unsigned char *)bk_keyid_label, sizeof bk_keyid_label - 1);
    crypto_generichash_update(&h, key, BK_KEY_BYTES);
    crypto_generichash_final(&h, id, BK_KEYID_BYTES);
}

void bk_key_id_hex(const unsigned char key[BK_KEY_BYTES], char hex[BK_KEYID_HEX])
{
    unsigned char id[BK_KEYID_BYTES];
    bk_key_id(key, id);
    sodium_bin2hex(hex, BK_KEYID_HEX, id, sizeof id);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- encoder ------------------------------------------------------------------ */

int bk_enc_init(struct bk_enc *e, const unsigned char key[BK_KEY_BYTES], size_t chunk)
{
    memset(e, 0, sizeof *e);
    if (chunk < BK_CHUNK_MIN || chunk > BK_CHUNK_MAX)
        return -EINVAL;
    if (sodium_init() < 0)
        return -EIO;
    e->chunk = chunk;
    e->plain = malloc(chunk);
    e->record = malloc(chunk + BK_ABYTES);
    if (e->plain == NULL || e->record == NULL) {
        bk_enc_free(e);
        return -ENOMEM;
    }
    memcpy(e->head, bk_magic, sizeof bk_magic);
    e->head[7] = BK_VERSION;
    bk_key_id(key, e->head + 8);
    put_be32(e->head + 24, (uint32_t)chunk);
    crypto_secretstream_xchacha20poly1305_init_push(&e->st, e->head + BK_FILE_HDR, key);
    return 0;
}

static int enc_record(struct bk_enc *e, unsigned char tag, bk_emit_fn emit, void *arg)
{
    unsigned long long clen = 0;
    /* The file header rides as additional data of the first record, so a
     * changed key id, version or chunk size cannot go unnoticed. */
    const unsigned char *ad = e->records == 0 ? e->head : NULL;
    crypto_secretstream_xchacha20poly1305_push(&e->st, e->record, &clen, e->plain, e->fill, ad,
                                               ad != NULL ? BK_FILE_HDR : 0, tag);
    e->records++;
    e->plain_bytes += e->fill;
    e->fill = 0;
    return emit(arg, e->record, (size_t)clen);
}

int bk_enc_update(struct bk_enc *e, const void *data, size_t len, bk_emit_fn emit, void *arg)
{
    const unsigned char *p = data;
    if (e->finished)
        return -EINVAL;
    while (len > 0) {
        size_t n = e->chunk - e->fill;
        if (n > len)
            n = len;
        memcpy(e->plain + e->fill, p, n);
        e->fill += n;
        p += n;
        len -= n;
        /* A full chunk waits for more input or the end: the last record
         * must carry FINAL, and only the end tells which one is last. */
        if (e->fill == e->chunk && len > 0) {
            int rc = enc_record(e, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, emit, arg);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int bk_enc_final(struct bk_enc *e, bk_emit_fn emit, void *arg)
{
    if (e->finished)
        return -EINVAL;
    e->finished = true;
    return enc_record(e, crypto_secretstream_xchacha20poly1305_TAG_FINAL, emit, arg);
}

void bk_enc_free(struct bk_enc *e)
{
    if (e->plain != NULL)
        sodium_memzero(e->plain, e->chunk);
    free(e->plain);
    free(e->record);
    sodium_memzero(&e->st, sizeof e->st);
    e->plain = e->record = NULL;
}

/* ---- decoder ------------------------------------------------------------------ */

int bk_dec_init(struct bk_dec *d, const unsigned char key[BK_KEY_BYTES])
{
    memset(d, 0, sizeof *d);
    if (sodium_init() < 0)
        return -EIO;
    memcpy(d->key, key, BK_KEY_BYTES);
    bk_key_id(key, d->keyid);
    return 0;
}

static int dec_fail(struct bk_dec *d, enum bk_dec_error code, char *err, size_t errlen,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int dec_fail(struct bk_dec *d, enum bk_dec_error code, char *err, size_t errlen,
                    const char *fmt, ...)
{
    d->error = code;
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EBADMSG;
}

/* Reads the header once it is complete: refuses another format, version
 * or key before any decryption is attempted, with the reason. */
static int dec_header(struct bk_dec *d, char *err, size_t errlen)
{
    if (d->head[7] != BK_VERSION)
        return dec_fail(d, BK_DEC_VERSION, err, errlen,
                        "unsupported backup format version %u (this nova-worker reads %d)",
                        d->head[7], BK_VERSION);
    if (sodium_memcmp(d->head + 8, d->keyid, BK_KEYID_BYTES) != 0) {
        char have[BK_KEYID_HEX], want[BK_KEYID_HEX];
        sodium_bin2hex(have, sizeof have, d->head + 8, BK_KEYID_BYTES);
        sodium_bin2hex(want, sizeof want, d->keyid, BK_KEYID_BYTES);
        return dec_fail(d, BK_DEC_WRONG_KEY, err, errlen,
                        "wrong key: the file was encrypted with key id %s, the configured key "
                        "has key id %s",
                        have, want);
    }
    uint32_t chunk = get_be32(d->head + 24);
    if (chunk < BK_CHUNK_MIN || chunk > BK_CHUNK_MAX || get_be32(d->head + 28) != 0)
        return dec_fail(d, BK_DEC_BAD_HEADER, err, errlen,
                        "corrupt header: chunk size %u or reserved bytes out of range", chunk);
    if (crypto_secretstream_xchacha20poly1305_init_pull(&d->st, d->head + BK_FILE_HDR, d->key) != 0)
        return dec_fail(d, BK_DEC_BAD_HEADER, err, errlen, "corrupt stream header");
    d->chunk = chunk;
    d->record = malloc(chunk + BK_ABYTES);
    d->plain = malloc(chunk);
    if (d->record == NULL || d->plain == NULL)
        return -ENOMEM;
    d->started = true;
    return 0;
}

static int dec_record(struct bk_dec *d, bool at_end, bk_emit_fn emit, void *arg, char *err,
                      size_t errlen)
{
    unsigned long long mlen = 0;
    unsigned char tag = 0;
    const unsigned char *ad = d->records == 0 ? d->head : NULL;
    uint64_t at = d->offset - d->fill;
    if (crypto_secretstream_xchacha20poly1305_pull(&d->st, d->plain, &mlen, &tag, d->record,
                                                   d->fill, ad,
                                                   ad != NULL ? BK_FILE_HDR : 0) != 0) {
        if (at_end && d->fill < d->chunk + BK_ABYTES)
            return dec_fail(d, BK_DEC_TRUNCATED, err, errlen,
                            "truncated or corrupted: the last record (%llu, at byte %llu, %zu "
                            "bytes) does not authenticate",
                            (unsigned long long)d->records, (unsigned long long)at, d->fill);
        if (d->records == 0)
            return dec_fail(d, BK_DEC_AUTH, err, errlen,
                            "modified or corrupted: the header or the first record (at byte %llu) "
                            "does not authenticate",
                            (unsigned long long)at);
        return dec_fail(d, BK_DEC_AUTH, err, errlen,
                        "modified or corrupted: record %llu (bytes %llu to %llu) does not "
                        "authenticate",
                        (unsigned long long)d->records, (unsigned long long)at,
                        (unsigned long long)(at + d->fill - 1));
    }
    d->records++;
    d->plain_bytes += mlen;
    d->fill = 0;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
        d->finished = true;
    else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        return dec_fail(d, BK_DEC_AUTH, err, errlen, "record %llu carries an unexpected tag %u",
                        (unsigned long long)d->records - 1, tag);
    return mlen > 0 ? emit(arg, d->plain, (size_t)mlen) : 0;
}

int bk_dec_update(struct bk_dec *d, const void *data, size_t len, bk_emit_fn emit, void *arg,
                  char *err, size_t errlen)
{
    const unsigned char *p = data;
    if (d->error != BK_DEC_OK)
        return -EBADMSG;
    while (len > 0) {
        if (!d->started) {
            size_t n = BK_HEADER_BYTES - d->head_fill;
            if (n > len)
                n = len;
            memcpy(d->head + d->head_fill, p, n);
            d->head_fill += n;
            d->offset += n;
            p += n;
            len -= n;
            size_t m = d->head_fill < sizeof bk_magic ? d->head_fill : sizeof bk_magic;
            if (memcmp(d->head, bk_magic, m) != 0)
                return dec_fail(d, BK_DEC_NOT_BACKUP, err, errlen,
                                "not a nova-worker backup (no NOVABK1 header)");
            if (d->head_fill == BK_HEADER_BYTES) {
                int rc = dec_header(d, err, errlen);
                if (rc != 0)
                    return rc;
            }
            continue;
        }
        if (d->finished)
            return dec_fail(d, BK_DEC_TRAILING, err, errlen,
                            "%zu unexpected bytes after the final record (at byte %llu)", len,
                            (unsigned long long)d->offset);
        size_t rec = d->chunk + BK_ABYTES;
        size_t n = rec - d->fill;
        if (n > len)
            n = len;
        memcpy(d->record + d->fill, p, n);
        d->fill += n;
        d->offset += n;
        p += n;
        len -= n;
        if (d->fill == rec) {
            int rc = dec_record(d, false, emit, arg, err, errlen);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int bk_dec_final(struct bk_dec *d, bk_emit_fn emit, void *arg, char *err, size_t errlen)
{
    if (d->error != BK_DEC_OK)
        return -EBADMSG;
    if (!d->started) {
        if (d->head_fill == 0)
            return dec_fail(d, BK_DEC_TRUNCATED, err, errlen, "the file is empty");
        return dec_fail(d, BK_DEC_TRUNCATED, err, errlen,
                        "truncated: the file ends inside the %d-byte header (%zu bytes)",
                        BK_HEADER_BYTES, d->head_fill);
    }
    if (d->finished)
        return 0;
    if (d->fill > 0) {
        int rc = dec_record(d, true, emit, arg, err, errlen);
        if (rc != 0)
            return rc;
        if (d->finished)
            return 0;
    }
    return dec_fail(d, BK_DEC_TRUNCATED, err, errlen,
                    "truncated: the file ends after record %llu (byte %llu) without the final "
                    "record",
                    (unsigned long long)d->records, (unsigned long long)d->offset);
}

void bk_dec_free(struct bk_dec *d)
{
    if (d->plain != NULL)
        sodium_memzero(d->plain, d->chunk);
    free(d->plain);
    free(d->record);
    sodium_memzero(d->key, sizeof d->key);
    sodium_memzero(&d->st, sizeof d->st);
    d->plain = d->record = NULL;
}
