/* Unit tests of the webhook plugin's pure logic (plugins/webhook/wh_logic). */
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "../../plugins/webhook/wh_logic.h"

/* Made by Node's crypto exactly as Nova encrypts (createCipheriv
 * aes-256-gcm, base64(iv | tag | ciphertext)), with this key and iv
 * 0a0b0c0d0e0f101112131415; KEY2 is the reverse of KEY. */
#define KEY    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY2   "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"
#define SECRET "3f2c9a7d1e4b6a8c0d5f7e9b1a3c5e7f9d2b4a6c8e0f1a3b5c7d9e1f2a4b6c8d"
#define ENC_KEY                                                                                    \
    "CgsMDQ4PEBESExQVf+rBXkKndXmB5XxvKBYWNVzbCKtSvOARh2Hsb+jN3SvNeupJiA/H1to4+PVkOOuFEAVi05fl9DSg" \
    "NMaaG3kuvQPZkOFgNnYRr6A3VD0euok="
#define ENC_KEY2                                                                                   \
    "CgsMDQ4PEBESExQVY0ECXCL5j9dEC0T6lXqR+wYI+TknVwQnmyblRwXYh0ZXafwZJ7A4mKVvXul1akQKi6fbDKBnT+W3" \
    "i3qZLTINLEa0JL8EYdxf2UcdsgOtUXA="

START_TEST(delays_parse)
{
    int64_t d[WH_MAX_DELAYS];
    char err[256] = "";
    ck_assert_int_eq(wh_parse_delays("1m, 5m, 30m, 2h, 8h", d, WH_MAX_DELAYS, err, sizeof err), 5);
    ck_assert_int_eq(d[0], 60000);
    ck_assert_int_eq(d[1], 300000);
    ck_assert_int_eq(d[2], 1800000);
    ck_assert_int_eq(d[3], 7200000);
    ck_assert_int_eq(d[4], 28800000);
    ck_assert_int_eq(wh_parse_delays("1500ms 2s,1d", d, WH_MAX_DELAYS, err, sizeof err), 3);
    ck_assert_int_eq(d[0], 1500);
    ck_assert_int_eq(d[2], 86400000);
    ck_assert_int_eq(wh_parse_delays("2000", d, WH_MAX_DELAYS, err, sizeof err), 1);
    ck_assert_int_eq(d[0], 2000);

    static const char *const bad[] = {
        "", " , ", "5x", "m", "-1s", "500ms", "8d", "99999999999999999999s", "1m, soon"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(wh_parse_delays(bad[i], d, WH_MAX_DELAYS, err, sizeof err) == -EINVAL,
                      "'%s' accepted", bad[i]);
        ck_assert_msg(strstr(err, "retry_delays") != NULL, "%s: %s", bad[i], err);
    }
    ck_assert_int_eq(wh_parse_delays("1s 2s 3s", d, 2, err, sizeof err), -EINVAL);
}
END_TEST

/* Attempt k failed: wait delays[k-1]. With the defaults every entry is
 * used, the first after the first attempt (Nova skipped it). */
START_TEST(retry_schedule_has_no_off_by_one)
{
    const int64_t d[] = {60000, 300000, 1800000, 7200000, 28800000};
    for (int k = 1; k <= 5; k++)
        ck_assert_int_eq(wh_retry_delay_ms(d, 5, k, 0, 0.5), d[k - 1]);
    /* past the list: the last one again */
    ck_assert_int_eq(wh_retry_delay_ms(d, 5, 9, 0, 0.5), 28800000);
    ck_assert_int_eq(wh_retry_delay_ms(d, 5, 0, 0, 0.5), 60000);
    /* jitter: +/- pct, uniform */
    ck_assert_int_eq(wh_retry_delay_ms(d, 5, 1, 10, 0.0), 54000);
    ck_assert_int_eq(wh_retry_delay_ms(d, 5, 1, 10, 0.5), 60000);
    int64_t hi = wh_retry_delay_ms(d, 5, 1, 10, 0.999999);
    ck_assert(hi > 65990 && hi <= 66000);
    ck_assert_int_eq(wh_retry_delay_ms(d, 5, 2, 50, 0.0), 150000);
    ck_assert_int_eq(wh_retry_delay_ms(d, 0, 1, 10, 0.3), 0);
}
END_TEST

START_TEST(actions_parse)
{
    struct wh_action a[WH_MAX_ACTIONS];
    char err[256] = "";
    int n = wh_parse_actions("purchase:100, sign-up:500, referral:200", a, WH_MAX_ACTIONS, err,
                             sizeof err);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(wh_action_points(a, 3, "purchase"), 100);
    ck_assert_int_eq(wh_action_points(a, 3, "sign-up"), 500);
    ck_assert_int_eq(wh_action_points(a, 3, "referral"), 200);
    ck_assert_int_eq(wh_action_points(a, 3, "refund"), -1);
    ck_assert_int_eq(wh_action_points(a, 3, "Purchase"), -1);
    ck_assert_int_eq(wh_action_points(a, 3, NULL), -1);
    ck_assert_int_eq(wh_parse_actions("review=25", a, WH_MAX_ACTIONS, err, sizeof err), 1);
    ck_assert_int_eq(wh_parse_actions("", a, WH_MAX_ACTIONS, err, sizeof err), 0);
    static const char *const bad[] = {"purchase", "purchase:",    ":5",
                                      "a:0",      "a:-1",         "a:1x",
                                      "a:1, a:2", "a:1000000001", "x:99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(wh_parse_actions(bad[i], a, WH_MAX_ACTIONS, err, sizeof err) == -EINVAL,
                      "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(networks_check)
{
    char err[256] = "";
    ck_assert_int_eq(wh_check_networks("", err, sizeof err), 0);
    ck_assert_int_eq(wh_check_networks(NULL, err, sizeof err), 0);
    ck_assert_int_eq(wh_check_networks("127.0.0.1/32, 10.0.0.0/8 fd00::/8,::1", err, sizeof err),
                     4);
    static const char *const bad[] = {"127.0.0.1/33", "localhost",  "10.0.0.0/",
                                      "::/129",       "10.0.0.0/x", "1.2.3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(wh_check_networks(bad[i], err, sizeof err) == -EINVAL, "'%s'", bad[i]);
        ck_assert_ptr_nonnull(strstr(err, "allow_networks"));
    }
}
END_TEST

static struct wh_keys keys_of(const char *current, const char *previous)
{
    struct wh_keys k;
    memset(&k, 0, sizeof k);
    if (current != NULL) {
        ck_assert_int_eq(wh_parse_key(current, k.current), 0);
        k.has_current = true;
    }
    if (previous != NULL) {
        ck_assert_int_eq(wh_parse_key(previous, k.previous), 0);
        k.has_previous = true;
    }
    return k;
}

START_TEST(secrets_as_nova_stores_them)
{
    char out[WH_SECRET_MAX + 1], err[256];
    enum wh_secret_source src;
    struct wh_keys k;

    if (!crypto_aead_aes256gcm_is_available()) {
        /* the plugin reports this per delivery; nothing to decrypt here */
        k = keys_of(KEY, NULL);
        ck_assert_int_eq(wh_secret_open(ENC_KEY, &k, out, &src, err, sizeof err), -ENOTSUP);
        return;
    }
    /* the current key */
    k = keys_of(KEY, NULL);
    ck_assert_int_eq(wh_secret_open(ENC_KEY, &k, out, &src, err, sizeof err), 64);
    ck_assert_str_eq(out, SECRET);
    ck_assert_int_eq(src, WH_SECRET_CURRENT);
    /* encrypted under the previous key */
    k = keys_of(KEY, KEY2);
    ck_assert_int_eq(wh_secret_open(ENC_KEY2, &k, out, &src, err, sizeof err), 64);
    ck_assert_str_eq(out, SECRET);
    ck_assert_int_eq(src, WH_SECRET_PREVIOUS);
    /* a wrong key: a clear reason, and never the secret */
    k = keys_of(KEY2, NULL);
    err[0] = '\0';
    ck_assert_int_eq(wh_secret_open(ENC_KEY, &k, out, &src, err, sizeof err), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "cannot be decrypted with FIELD_ENCRYPTION_KEY"));
    ck_assert_ptr_null(strstr(err, SECRET));
    ck_assert_str_eq(out, "");
    k = keys_of(KEY2, KEY2);
    ck_assert_int_eq(wh_secret_open(ENC_KEY, &k, out, &src, err, sizeof err), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "nor FIELD_ENCRYPTION_KEY_PREVIOUS"));
    /* no key at all */
    k = keys_of(NULL, NULL);
    ck_assert_int_eq(wh_secret_open(ENC_KEY, &k, out, &src, err, sizeof err), -ENOKEY);
    ck_assert_ptr_nonnull(strstr(err, "FIELD_ENCRYPTION_KEY is not configured"));
    /* an altered byte fails the tag */
    char tampered[] = ENC_KEY;
    tampered[60] = tampered[60] == 'A' ? 'B' : 'A';
    k = keys_of(KEY, NULL);
    ck_assert_int_eq(wh_secret_open(tampered, &k, out, &src, err, sizeof err), -EBADMSG);
    /* legacy plaintext: Nova's 64 hex digits (also base64-shaped), with or
     * without keys, and anything not base64-shaped */
    ck_assert_int_eq(wh_secret_open(SECRET, &k, out, &src, err, sizeof err), 64);
    ck_assert_str_eq(out, SECRET);
    ck_assert_int_eq(src, WH_SECRET_PLAINTEXT);
    k = keys_of(NULL, NULL);
    ck_assert_int_eq(wh_secret_open(SECRET, &k, out, &src, err, sizeof err), 64);
    ck_assert_int_eq(wh_secret_open("whsec_short-secret!", &k, out, &src, err, sizeof err), 19);
    ck_assert_str_eq(out, "whsec_short-secret!");
    ck_assert_int_eq(wh_secret_open("", &k, out, &src, err, sizeof err), -EINVAL);
}
END_TEST

START_TEST(secret_shapes_and_keys)
{
    uint8_t key[WH_KEY_BYTES];
    ck_assert(wh_secret_looks_encrypted(ENC_KEY));
    ck_assert(wh_secret_looks_encrypted(SECRET)); /* why hex needs the legacy rule */
    ck_assert(!wh_secret_looks_encrypted("short+base64=="));
    ck_assert(!wh_secret_looks_encrypted("this one has blanks in it and is long enough to be"));
    ck_assert(!wh_secret_looks_encrypted("AAAA=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    ck_assert(!wh_secret_looks_encrypted(NULL));
    ck_assert_int_eq(wh_parse_key(KEY, key), 0);
    ck_assert_uint_eq(key[31], 0x1f);
    ck_assert_int_eq(wh_parse_key("00", key), -EINVAL);
    ck_assert_int_eq(wh_parse_key(KEY "00", key), -EINVAL);
    ck_assert_int_eq(
        wh_parse_key("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", key),
        -EINVAL);
    ck_assert_int_eq(wh_parse_key(NULL, key), -EINVAL);
}
END_TEST

/* The vector is Node's createHmac('sha256', secret).update(`${ts}.${id}.${body}`). */
START_TEST(signature_matches_nodes)
{
    const char *body = "{\"data\":{\"amount\":\"1.5000000\"},\"event\":\"reward.distributed\","
                       "\"timestamp\":\"2026-01-02T03:04:05.678Z\"}";
    char hex[WH_SIGNATURE_HEX];
    wh_sign(SECRET, strlen(SECRET), "1767323045678", "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", body,
            strlen(body), hex);
    ck_assert_str_eq(hex, "d2d7461b9b628e9e61f658ee6fdcb57bfb3fe016a24eb406b9257e29877b718e");
    /* one byte of the body more: another signature */
    wh_sign(SECRET, strlen(SECRET), "1767323045678", "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", body,
            strlen(body) - 1, hex);
    ck_assert_str_ne(hex, "d2d7461b9b628e9e61f658ee6fdcb57bfb3fe016a24eb406b9257e29877b718e");
}
END_TEST

START_TEST(json_compact)
{
    char a[] = "{\"data\": {\"note\": \"a, b: \\\"c\\\" \\\\\", \"n\": [1, 2]}, \"event\": \"x\"}";
    size_t n = wh_json_compact(a);
    ck_assert_str_eq(a,
                     "{\"data\":{\"note\":\"a, b: \\\"c\\\" \\\\\",\"n\":[1,2]},\"event\":\"x\"}");
    ck_assert_uint_eq(n, strlen(a));
    char b[] = " \n{ }\t";
    ck_assert_uint_eq(wh_json_compact(b), 2);
    ck_assert_str_eq(b, "{}");
}
END_TEST

START_TEST(clip_response_bodies)
{
    char out[WH_BODY_BYTES];
    /* 1000 characters of a longer body */
    char *big = malloc(5000);
    memset(big, 'x', 5000);
    ck_assert_uint_eq(wh_clip_text(big, 5000, WH_BODY_CHARS, out), 1000);
    /* multibyte characters count as characters, not bytes */
    for (int i = 0; i < 1500; i++)
        memcpy(big + i * 3, "\xe2\x82\xac", 3); /* U+20AC */
    ck_assert_uint_eq(wh_clip_text(big, 4500, WH_BODY_CHARS, out), 3000);
    /* astral characters are two UTF-16 units, as in JavaScript */
    for (int i = 0; i < 600; i++)
        memcpy(big + i * 4, "\xf0\x9f\x98\x80", 4); /* U+1F600 */
    ck_assert_uint_eq(wh_clip_text(big, 2400, WH_BODY_CHARS, out), 2000);
    free(big);
    /* invalid UTF-8 becomes U+FFFD; NUL bytes are dropped */
    ck_assert_uint_eq(wh_clip_text("a\xff"
                                   "b\0c\xc3",
                                   6, WH_BODY_CHARS, out),
                      9);
    ck_assert_str_eq(out, "a\xef\xbf\xbd"
                          "bc\xef\xbf\xbd");
    /* overlong and surrogate encodings are invalid too */
    wh_clip_text("\xc0\xaf\xed\xa0\x80", 5, WH_BODY_CHARS, out);
    ck_assert_ptr_null(strstr(out, "\xc0"));
    ck_assert_ptr_null(strstr(out, "\xed\xa0"));
    ck_assert_uint_eq(wh_clip_text("", 0, WH_BODY_CHARS, out), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("wh_logic");
    TCase *t = tcase_create("logic");
    tcase_add_test(t, delays_parse);
    tcase_add_test(t, retry_schedule_has_no_off_by_one);
    tcase_add_test(t, actions_parse);
    tcase_add_test(t, networks_check);
    tcase_add_test(t, secrets_as_nova_stores_them);
    tcase_add_test(t, secret_shapes_and_keys);
    tcase_add_test(t, signature_matches_nodes);
    tcase_add_test(t, json_compact);
    tcase_add_test(t, clip_response_bodies);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    return tu_run(suite());
}
