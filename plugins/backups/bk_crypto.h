/*
 * bk_crypto - the encrypted backup file format (NOVABK1) and the backup key.
 *
 * Why a format of our own: a dump must be encrypted while it streams out of
 * pg_dump, with nothing but libsodium, and a restore must be able to tell a
 * wrong key, a truncated file and a modified byte apart before a single row
 * reaches the target database. libsodium's secretstream does the streaming
 * AEAD (each chunk authenticated, ordered, the last one tagged FINAL so a
 * truncation at a chunk boundary is caught); this file adds a fixed header
 * naming the format and the key, authenticated with the first chunk.
 *
 * Layout (docs/plugins/backups.md, "File format"):
 *
 *   offset size
 *   0      7    magic "NOVABK1"
 *   7      1    format version (1)
 *   8      16   key id: BLAKE2b-128 of the key under a fixed label
 *   24     4    plaintext chunk size, big-endian (65536)
 *   28     4    zero
 *   32     24   crypto_secretstream_xchacha20poly1305 header
 *   56     ...  records: chunk_size + 17 bytes each, the last one shorter
 *               (or as long) and tagged FINAL; bytes 0..31 are the
 *               additional data of the first record.
 *
 * Pure code: no I/O, no allocation but the coder's own buffer, no state
 * outside the structs. tests/backups/test_backups.c covers it.
 */
#ifndef NOVA_BK_CRYPTO_H
#define NOVA_BK_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define BK_KEY_BYTES     32
#define BK_KEY_HEX       64
#define BK_KEYID_BYTES   16
#define BK_KEYID_HEX     (2 * BK_KEYID_BYTES + 1)
#define BK_SHA_HEX       (2 * crypto_hash_sha256_BYTES + 1)
#define BK_FILE_HDR      32 /* magic, version, key id, chunk size, zero */
#define BK_STREAM_HDR    crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define BK_HEADER_BYTES  (BK_FILE_HDR + BK_STREAM_HDR)
#define BK_ABYTES        crypto_secretstream_xchacha20poly1305_ABYTES
#define BK_CHUNK_DEFAULT 65536
#define BK_CHUNK_MIN     1024
#define BK_CHUNK_MAX     (16 * 1024 * 1024)
#define BK_SCHEME        "NOVABK1: libsodium crypto_secretstream_xchacha20poly1305, 64 KiB chunks"

/* Parses a key as written in a key file: exactly 64 hex digits, then at
 * most one newline ("\n" or "\r\n"). Returns 0 or -EINVAL with a reason
 * that never quotes the text. */
int bk_key_parse(const char *text, size_t len, unsigned char key[BK_KEY_BYTES], char *err,
                 size_t errlen);

/* The key id recorded in headers and manifests: a one-way hash, so it can
 * be logged and compared without revealing the key. */
void bk_key_id(const unsigned char key[BK_KEY_BYTES], unsigned char id[BK_KEYID_BYTES]);
void bk_key_id_hex(const unsigned char key[BK_KEY_BYTES], char hex[BK_KEYID_HEX]);

/* Emits one piece of output (a record, or plaintext); data is valid during
 * the call. A non-zero return stops the coder and is passed back. */
typedef int (*bk_emit_fn)(void *arg, const unsigned char *data, size_t len);

struct bk_enc {
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned char head[BK_HEADER_BYTES];
    unsigned char *plain;  /* chunk_size bytes being filled */
    unsigned char *record; /* chunk_size + BK_ABYTES */
    size_t chunk, fill;
    uint64_t records, plain_bytes;
    bool finished;
};

/* Starts a file: head (BK_HEADER_BYTES) is in e->head, to be written first.
 * chunk: plaintext bytes per record (BK_CHUNK_MIN..BK_CHUNK_MAX). Returns 0,
 * -EINVAL or -ENOMEM. */
int bk_enc_init(struct bk_enc *e, const unsigned char key[BK_KEY_BYTES], size_t chunk);
/* Adds plaintext; emits every record that is complete. */
int bk_enc_update(struct bk_enc *e, const void *data, size_t len, bk_emit_fn emit, void *arg);
/* Emits the last record (tagged FINAL, possibly empty). */
int bk_enc_final(struct bk_enc *e, bk_emit_fn emit, void *arg);
void bk_enc_free(struct bk_enc *e);

enum bk_dec_error {
    BK_DEC_OK = 0,
    BK_DEC_NOT_BACKUP, /* magic */
    BK_DEC_VERSION,    /* unknown format version */
    BK_DEC_WRONG_KEY,  /* key id differs */
    BK_DEC_BAD_HEADER, /* chunk size out of range, reserved bytes set */
    BK_DEC_AUTH,       /* a record does not authenticate: modified */
    BK_DEC_TRUNCATED,  /* ends before the FINAL record */
    BK_DEC_TRAILING,   /* bytes after the FINAL record */
};

struct bk_dec {
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned char key[BK_KEY_BYTES];
    unsigned char keyid[BK_KEYID_BYTES];
    unsigned char head[BK_HEADER_BYTES];
    size_t head_fill;
    unsigned char *record; /* chunk + BK_ABYTES */
    unsigned char *plain;
    size_t chunk, fill;
    uint64_t records, offset, plain_bytes; /* offset: encrypted bytes consumed */
    bool started, finished;
    enum bk_dec_error error;
};

/* Returns 0 or -ENOMEM (the buffers come once the header is read). */
int bk_dec_init(struct bk_dec *d, const unsigned char key[BK_KEY_BYTES]);
/* Consumes encrypted bytes, emitting the plaintext of every record that
 * authenticates. Returns 0, the emitter's non-zero value, or -EBADMSG
 * with the reason in err (and d->error set); nothing of a record that does
 * not authenticate is emitted. */
int bk_dec_update(struct bk_dec *d, const void *data, size_t len, bk_emit_fn emit, void *arg,
                  char *err, size_t errlen);
/* The end of the file: the last record, and the check that FINAL came. */
int bk_dec_final(struct bk_dec *d, bk_emit_fn emit, void *arg, char *err, size_t errlen);
void bk_dec_free(struct bk_dec *d);

/* Finishes st: its digest in lower-case hex. */
void bk_sha256_hex(crypto_hash_sha256_state *st, char hex[BK_SHA_HEX]);

/* Formats a reason into err (nothing when err is NULL or errlen 0): how
 * the parsers of the plugin (key, DSN, manifest) say what is wrong. */
void bk_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* NOVA_BK_CRYPTO_H */
