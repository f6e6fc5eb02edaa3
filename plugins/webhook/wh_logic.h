/*
 * wh_logic - the webhook plugin's pure decisions and encodings: no host
 * calls, no I/O, so tests/webhook/test_wh_logic.c checks them directly.
 *
 *   - configuration lists: retry delays, the action -> points table, the
 *     allowed networks;
 *   - the retry schedule (attempt k failed: wait delays[k-1], jittered;
 *     with max_attempts retries every one of max_attempts delays is used);
 *   - webhook secrets as Nova stores them (AES-256-GCM under
 *     FIELD_ENCRYPTION_KEY, base64(iv12 | tag16 | ciphertext), the previous
 *     key as fallback, legacy plaintext tolerated) and the x-nova-signature;
 *   - the bytes sent (JSONB text made compact) and what is kept of an
 *     answer (its first 1000 characters, as valid UTF-8 without NUL).
 *
 * Secrets: nothing here logs or keeps a secret; callers wipe the buffers
 * they pass (sodium_memzero).
 */
#ifndef NOVA_WH_LOGIC_H
#define NOVA_WH_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WH_MAX_DELAYS      32
#define WH_MAX_ACTIONS     64
#define WH_ACTION_NAME_MAX 64
#define WH_KEY_BYTES       32
#define WH_SECRET_MAX      1024 /* longest decrypted secret accepted */
#define WH_SIGNATURE_HEX   65   /* 64 hex digits and NUL */
#define WH_BODY_CHARS      1000 /* response_body keeps this many characters */
/* Room for WH_BODY_CHARS UTF-16 units as UTF-8 (3 bytes each at most) and NUL. */
#define WH_BODY_BYTES (WH_BODY_CHARS * 3 + 1)

/* "1m, 5m, 30m, 2h, 8h": durations with a unit (ms, s, m, h, d; a bare
 * number is milliseconds), separated by commas and/or blanks; 1 to
 * WH_MAX_DELAYS of them, each from 1 s to 7 days. Returns how many were
 * stored in out, or -EINVAL with the reason in err. */
int wh_parse_delays(const char *spec, int64_t *out, size_t max, char *err, size_t errlen);

/* The wait after failed attempt number `attempt` (1 = the first
 * delivery): delays[attempt - 1], the last one for attempts past the
 * list, spread by +/- jitter_pct percent with `unit` (uniform in [0, 1)).
 * Never below 0. */
int64_t wh_retry_delay_ms(const int64_t *delays, size_t n, int attempt, int jitter_pct,
                          double unit);

struct wh_action {
    char name[WH_ACTION_NAME_MAX + 1];
    int64_t points;
};

/* "purchase:100, sign-up:500, referral:200" (':' or '='): names of up to
 * WH_ACTION_NAME_MAX characters without blanks, points 1..1000000000,
 * each name once. Returns how many, or -EINVAL with err. */
int wh_parse_actions(const char *spec, struct wh_action *out, size_t max, char *err, size_t errlen);

/* The points of action, or -1 when it is not in the table. */
int64_t wh_action_points(const struct wh_action *actions, size_t n, const char *action);

/* Checks an allowed-networks list the way the host's outbound guard reads
 * nova_http_request.guard_allow: entries separated by commas and/or
 * blanks, each a numeric IPv4 or IPv6 address with an optional /prefix.
 * Returns the number of entries (0 for an empty list) or -EINVAL. */
int wh_check_networks(const char *list, char *err, size_t errlen);

/* FIELD_ENCRYPTION_KEY: exactly 64 hex digits. Returns 0 or -EINVAL. */
int wh_parse_key(const char *hex, uint8_t key[WH_KEY_BYTES]);

/* Keys for wh_secret_open(); has_* false when not configured. */
struct wh_keys {
    bool has_current, has_previous;
    uint8_t current[WH_KEY_BYTES];
    uint8_t previous[WH_KEY_BYTES];
};

/* How a stored secret was read. */
enum wh_secret_source {
    WH_SECRET_CURRENT = 1, /* decrypted with FIELD_ENCRYPTION_KEY */
    WH_SECRET_PREVIOUS,    /* decrypted with FIELD_ENCRYPTION_KEY_PREVIOUS */
    WH_SECRET_PLAINTEXT,   /* legacy: stored as it is */
};

/* True for a value Nova treats as ciphertext: the base64 alphabet (with
 * padding) and at least 40 characters. */
bool wh_secret_looks_encrypted(const char *stored);

/*
 * The secret of a webhook from webhooks.secret. A value that looks
 * encrypted is opened with the current key, then the previous one; a
 * legacy plaintext secret (anything else, or Nova's 64 hex digits that no
 * key opens) is used as it is. Writes the secret (NUL-terminated, at most
 * WH_SECRET_MAX bytes) to out and returns its length and *source, or a
 * negative errno with a reason in err that never contains the secret:
 *   -ENOKEY   encrypted, and no FIELD_ENCRYPTION_KEY is configured
 *   -EBADMSG  encrypted, and no configured key opens it (wrong key, or
 *             the value was altered)
 *   -ENOTSUP  encrypted, and this CPU lacks what libsodium's AES-256-GCM
 *             needs (AES-NI and PCLMUL)
 * out must hold WH_SECRET_MAX + 1 bytes; the caller wipes it after use.
 */
int wh_secret_open(const char *stored, const struct wh_keys *keys, char *out,
                   enum wh_secret_source *source, char *err, size_t errlen);

/* x-nova-signature: lowercase hex HMAC-SHA256(secret,
 * "<timestamp>.<delivery_id>.<body>") over exactly these bytes. */
void wh_sign(const char *secret, size_t secret_len, const char *timestamp, const char *delivery_id,
             const char *body, size_t body_len, char hex[WH_SIGNATURE_HEX]);

/* JSON text without the blanks outside strings (PostgreSQL's jsonb output
 * has ", " and ": "); in place. Returns the new length. */
size_t wh_json_compact(char *json);

/* What response_body keeps of an answer: its first max_units UTF-16
 * units (JavaScript's substring(0, max_units)), as valid UTF-8, invalid
 * bytes as U+FFFD and NUL bytes dropped (PostgreSQL text holds neither).
 * out needs max_units * 3 + 1 bytes. Returns the length written. */
size_t wh_clip_text(const char *in, size_t len, size_t max_units, char *out);

#endif
