#include "wh_logic.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define WH_IV_BYTES  12
#define WH_TAG_BYTES 16
#define MIN_DELAY_MS 1000LL
#define MAX_DELAY_MS (7LL * 86400 * 1000)
#define MAX_POINTS   1000000000LL

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The next entry of a list separated by commas and/or blanks: *start and
 * *len, and the position after it. NULL when the list is done. */
static const char *next_entry(const char *p, const char **start, size_t *len)
{
    while (*p == ',' || is_blank(*p))
        p++;
    if (*p == '\0')
        return NULL;
    *start = p;
    while (*p != '\0' && *p != ',' && !is_blank(*p))
        p++;
    *len = (size_t)(p - *start);
    return p;
}

/* ---- retry delays ---------------------------------------------------------- */

int wh_parse_delays(const char *spec, int64_t *out, size_t max, char *err, size_t errlen)
{
    const char *p = spec != NULL ? spec : "", *e;
    size_t n = 0, len;

    while ((p = next_entry(p, &e, &len)) != NULL) {
        size_t i = 0;
        int64_t v = 0, mult;
        if (len == 0 || e[0] < '0' || e[0] > '9') {
            say(err, errlen, "retry_delays: '%.*s' is not a duration (e.g. 30s, 5m, 2h)", (int)len,
                e);
            return -EINVAL;
        }
        while (i < len && e[i] >= '0' && e[i] <= '9') {
            if (v > MAX_DELAY_MS) {
                say(err, errlen, "retry_delays: '%.*s' is too long (at most 7d)", (int)len, e);
                return -EINVAL;
            }
            v = v * 10 + (e[i] - '0');
            i++;
        }
        const char *unit = e + i;
        size_t ulen = len - i;
        if (ulen == 0 || (ulen == 2 && strncmp(unit, "ms", 2) == 0))
            mult = 1;
        else if (ulen == 1 && unit[0] == 's')
            mult = 1000;
        else if (ulen == 1 && unit[0] == 'm')
            mult = 60000;
        else if (ulen == 1 && unit[0] == 'h')
            mult = 3600000;
        else if (ulen == 1 && unit[0] == 'd')
            mult = 86400000;
        else {
            say(err, errlen, "retry_delays: '%.*s' has an unknown unit (ms, s, m, h or d)",
                (int)len, e);
            return -EINVAL;
        }
        if (v > MAX_DELAY_MS / mult || v * mult > MAX_DELAY_MS || v * mult < MIN_DELAY_MS) {
            say(err, errlen, "retry_delays: '%.*s' is out of range (1s to 7d)", (int)len, e);
            return -EINVAL;
        }
        if (n == max) {
            say(err, errlen, "retry_delays: more than %zu delays", max);
            return -EINVAL;
        }
        out[n++] = v * mult;
    }
    if (n == 0) {
        say(err, errlen, "retry_delays: at least one delay is needed");
        return -EINVAL;
    }
    return (int)n;
}

int64_t wh_retry_delay_ms(const int64_t *delays, size_t n, int attempt, int jitter_pct, double unit)
{
    if (n == 0)
        return 0;
    size_t i = attempt < 1 ? 0 : (size_t)attempt - 1;
    if (i >= n)
        i = n - 1;
    double d = (double)delays[i];
    if (jitter_pct > 0) {
        if (unit < 0)
            unit = 0;
        if (unit >= 1)
            unit = 0.999999;
        d *= 1.0 + (double)jitter_pct / 100.0 * (2.0 * unit - 1.0);
    }
    return d < 0 ? 0 : (int64_t)d;
}

/* ---- actions --------------------------------------------------------------- */

int wh_parse_actions(const char *spec, struct wh_action *out, size_t max, char *err, size_t errlen)
{
    const char *p = spec != NULL ? spec : "", *e;
    size_t n = 0, len;

    while ((p = next_entry(p, &e, &len)) != NULL) {
        size_t name_len = 0;
        while (name_len < len && e[name_len] != ':' && e[name_len] != '=')
            name_len++;
        if (name_len == 0 || name_len == len || name_len > WH_ACTION_NAME_MAX) {
            say(err, errlen, "action_points: '%.*s' is not name:points", (int)len, e);
            return -EINVAL;
        }
        int64_t v = 0;
        size_t i = name_len + 1;
        if (i == len) {
            say(err, errlen, "action_points: '%.*s' has no points", (int)len, e);
            return -EINVAL;
        }
        for (; i < len && v <= MAX_POINTS && e[i] >= '0' && e[i] <= '9'; i++)
            v = v * 10 + (e[i] - '0');
        if (i < len || v < 1 || v > MAX_POINTS) {
            say(err, errlen, "action_points: '%.*s': points must be 1..%lld", (int)len, e,
                (long long)MAX_POINTS);
            return -EINVAL;
        }
        for (size_t k = 0; k < n; k++) {
            if (strlen(out[k].name) == name_len && strncmp(out[k].name, e, name_len) == 0) {
                say(err, errlen, "action_points: '%.*s' is listed twice", (int)name_len, e);
                return -EINVAL;
            }
        }
        if (n == max) {
            say(err, errlen, "action_points: more than %zu actions", max);
            return -EINVAL;
        }
        memcpy(out[n].name, e, name_len);
        out[n].name[name_len] = '\0';
        out[n].points = v;
        n++;
    }
    return (int)n;
}

int64_t wh_action_points(const struct wh_action *actions, size_t n, const char *action)
{
    if (action == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(actions[i].name, action) == 0)
            return actions[i].points;
    }
    return -1;
}

/* ---- allowed networks ------------------------------------------------------ */

int wh_check_networks(const char *list, char *err, size_t errlen)
{
    const char *p = list != NULL ? list : "", *e;
    size_t len;
    int n = 0;

    while ((p = next_entry(p, &e, &len)) != NULL) {
        char tok[80];
        unsigned char addr[16];
        if (len >= sizeof tok) {
            say(err, errlen, "allow_networks: entry '%.40s...' is too long", e);
            return -EINVAL;
        }
        memcpy(tok, e, len);
        tok[len] = '\0';
        char *slash = strchr(tok, '/');
        long bits = -1;
        if (slash != NULL) {
            *slash = '\0';
            const char *d = slash + 1;
            size_t dl = strlen(d);
            bits = 0;
            if (dl == 0 || dl > 3)
                bits = -2;
            for (; bits >= 0 && *d != '\0'; d++) {
                if (*d < '0' || *d > '9')
                    bits = -2;
                else
                    bits = bits * 10 + (*d - '0');
            }
        }
        int maxbits = inet_pton(AF_INET, tok, addr) == 1    ? 32
                      : inet_pton(AF_INET6, tok, addr) == 1 ? 128
                                                            : -1;
        if (maxbits < 0 || bits == -2 || bits > maxbits) {
            say(err, errlen,
                "allow_networks: '%.*s' is not an IPv4 or IPv6 network (address or "
                "address/prefix, numeric)",
                (int)len, e);
            return -EINVAL;
        }
        n++;
    }
    return n;
}

/* ---- secrets --------------------------------------------------------------- */

int wh_parse_key(const char *hex, uint8_t key[WH_KEY_BYTES])
{
    size_t bin_len = 0;
    const char *end = NULL;

    if (hex == NULL || strlen(hex) != WH_KEY_BYTES * 2)
        return -EINVAL;
    if (sodium_hex2bin(key, WH_KEY_BYTES, hex, WH_KEY_BYTES * 2, NULL, &bin_len, &end) != 0 ||
        bin_len != WH_KEY_BYTES || end == NULL || *end != '\0') {
        sodium_memzero(key, WH_KEY_BYTES);
        return -EINVAL;
    }
    return 0;
}

bool wh_secret_looks_encrypted(const char *s)
{
    size_t n = 0, pad = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0)
            return false; /* '=' only at the end */
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    }
    return n >= 40 && pad <= 2;
}

static bool is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return n == 64;
}

/* AES-256-GCM open of iv12 | tag16 | ct with key into out (ct bytes and a
 * NUL). libsodium wants ct | tag. Returns the length, or -1. */
static long gcm_open(const uint8_t *blob, size_t len, const uint8_t key[WH_KEY_BYTES], char *out)
{
    size_t ct_len = len - WH_IV_BYTES - WH_TAG_BYTES;
    uint8_t *joined = malloc(len - WH_IV_BYTES);
    unsigned long long plain_len = 0;
    long rc = -1;

    if (joined == NULL)
        return -1;
    memcpy(joined, blob + WH_IV_BYTES + WH_TAG_BYTES, ct_len);
    memcpy(joined + ct_len, blob + WH_IV_BYTES, WH_TAG_BYTES);
    if (crypto_aead_aes256gcm_decrypt((unsigned char *)out, &plain_len, NULL, joined,
                                      (unsigned long long)(ct_len + WH_TAG_BYTES), NULL, 0, blob,
                                      key) == 0 &&
        plain_len == ct_len) {
        out[ct_len] = '\0';
        rc = (long)ct_len;
    }
    sodium_memzero(joined, len - WH_IV_BYTES);
    free(joined);
    return rc;
}

int wh_secret_open(const char *stored, const struct wh_keys *keys, char *out,
                   enum wh_secret_source *source, char *err, size_t errlen)
{
    size_t slen = stored != NULL ? strlen(stored) : 0;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    int rc;

    out[0] = '\0';
    if (stored == NULL || slen == 0) {
        say(err, errlen, "the webhook has no secret");
        return -EINVAL;
    }
    if (!wh_secret_looks_encrypted(stored)) {
        if (slen > WH_SECRET_MAX) {
            say(err, errlen, "the webhook secret is longer than %d bytes", WH_SECRET_MAX);
            return -EINVAL;
        }
        memcpy(out, stored, slen + 1);
        *source = WH_SECRET_PLAINTEXT;
        return (int)slen;
    }
    blob = malloc(slen);
    if (blob == NULL)
        return -ENOMEM;
    if (sodium_base642bin(blob, slen, stored, slen, NULL, &blob_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        blob_len < WH_IV_BYTES + WH_TAG_BYTES + 1 ||
        blob_len - WH_IV_BYTES - WH_TAG_BYTES > WH_SECRET_MAX) {
        blob_len = 0; /* not Nova's ciphertext: only the legacy rule below can apply */
    }
    if (blob_len > 0 && (keys->has_current || keys->has_previous)) {
        if (!crypto_aead_aes256gcm_is_available()) {
            if (is_hex64(stored))
                goto plaintext;
            say(err, errlen,
                "the webhook secret is encrypted but AES-256-GCM is not available on this CPU "
                "(libsodium needs AES-NI and PCLMUL)");
            rc = -ENOTSUP;
            goto out;
        }
        long n;
        if (keys->has_current && (n = gcm_open(blob, blob_len, keys->current, out)) >= 0) {
            *source = WH_SECRET_CURRENT;
            rc = (int)n;
            goto out;
        }
        if (keys->has_previous && (n = gcm_open(blob, blob_len, keys->previous, out)) >= 0) {
            *source = WH_SECRET_PREVIOUS;
            rc = (int)n;
            goto out;
        }
    }
    /* Nova's secrets are 64 hex digits, which also read as base64: stored
     * unencrypted (before Nova encrypted them), they are used as they are. */
    if (is_hex64(stored))
        goto plaintext;
    if (!keys->has_current && !keys->has_previous) {
        say(err, errlen,
            "the webhook secret is encrypted and FIELD_ENCRYPTION_KEY is not configured "
            "(encryption_key)");
        rc = -ENOKEY;
    } else if (blob_len == 0) {
        say(err, errlen,
            "the webhook secret looks encrypted but is not base64(iv | tag | ciphertext)");
        rc = -EBADMSG;
    } else {
        say(err, errlen,
            "the webhook secret cannot be decrypted with FIELD_ENCRYPTION_KEY%s (wrong key, or "
            "the stored value was altered)",
            keys->has_previous ? " nor FIELD_ENCRYPTION_KEY_PREVIOUS" : "");
        rc = -EBADMSG;
    }
    out[0] = '\0';
    goto out;

plaintext:
    memcpy(out, stored, slen + 1);
    *source = WH_SECRET_PLAINTEXT;
    rc = (int)slen;
out:
    sodium_memzero(blob, slen);
    free(blob);
    return rc;
}

void wh_sign(const char *secret, size_t secret_len, const char *timestamp, const char *delivery_id,
             const char *body, size_t body_len, char hex[WH_SIGNATURE_HEX])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)timestamp, strlen(timestamp));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)delivery_id, strlen(delivery_id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, WH_SIGNATURE_HEX, mac, sizeof mac);
    sodium_memzero(&st, sizeof st);
}

/* ---- bytes ------------------------------------------------------------------ */

size_t wh_json_compact(char *json)
{
    size_t r = 0, w = 0;
    bool in_string = false;

    for (; json[r] != '\0'; r++) {
        char c = json[r];
        if (in_string) {
            json[w++] = c;
            if (c == '\\' && json[r + 1] != '\0')
                json[w++] = json[++r];
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
            json[w++] = c;
        } else if (!is_blank(c)) {
            json[w++] = c;
        }
    }
    json[w] = '\0';
    return w;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return need;
}

size_t wh_clip_text(const char *in, size_t len, size_t max_units, char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, w = 0, units = 0;

    while (i < len) {
        if (s[i] == 0) {
            i++;
            continue;
        }
        size_t n = utf8_seq(s + i, len - i);
        size_t u = n == 4 ? 2 : 1; /* astral characters are two UTF-16 units */
        if (units + u > max_units)
            break;
        if (n == 0) {
            memcpy(out + w, "\xef\xbf\xbd", 3);
            w += 3;
            i++;
        } else {
            memcpy(out + w, s + i, n);
            w += n;
            i += n;
        }
        units += u;
    }
    out[w] = '\0';
    return w;
}
