/* StrKey codec against the stellar-base vectors, plus every rejection reason. */
#include "config.h"
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stellar/stellar.h"
#include "stellar/stellar_strkey.h"
#include "stellar/stellar_tx.h"
#include "stellar_vectors.h"

static void roundtrip32(const char *path, enum nova_strkey_type type)
{
    const cJSON *list = vget(vectors(), path), *item;
    int count = 0;
    cJSON_ArrayForEach(item, list)
    {
        const char *strkey = vstr(item, "strkey");
        uint8_t raw[32], got[32];
        char enc[NOVA_STRKEY_MAX], err[200];
        unhex(vstr(item, "raw_hex"), raw, sizeof(raw));
        ck_assert_int_eq(nova__strkey_encode(type, raw, 32, enc, sizeof(enc)), 56);
        ck_assert_str_eq(enc, strkey);
        ck_assert_msg(nova__strkey_decode32(strkey, type, got, err, sizeof(err)) == 0, "%s: %s",
                      strkey, err);
        ck_assert_mem_eq(got, raw, 32);
        /* ANY also accepts it and reports the kind. */
        enum nova_strkey_type t;
        size_t len;
        uint8_t any[NOVA__STRKEY_PAYLOAD_MAX];
        ck_assert_int_eq(nova__strkey_decode(strkey, NOVA_STRKEY_ANY, &t, any, sizeof(any), &len,
                                             err, sizeof(err)),
                         0);
        ck_assert_int_eq(t, type);
        ck_assert_uint_eq(len, 32);
        count++;
    }
    ck_assert_int_gt(count, 0);
}

START_TEST(account_ids)
{
    roundtrip32("strkey/account_ids", NOVA_STRKEY_ACCOUNT);
    roundtrip32("strkey/edge_account_ids", NOVA_STRKEY_ACCOUNT);
}
END_TEST

START_TEST(secret_seeds)
{
    roundtrip32("strkey/secret_seeds", NOVA_STRKEY_SEED);
}
END_TEST

START_TEST(contract_ids)
{
    roundtrip32("strkey/contract_ids", NOVA_STRKEY_CONTRACT);
}
END_TEST

START_TEST(keys_derive)
{
    /* Every S seed derives its G account (crypto_sign_seed_keypair). */
    const cJSON *keys = vget(vectors(), "keys"), *k;
    int count = 0;
    cJSON_ArrayForEach(k, keys)
    {
        char account[NOVA_STRKEY_MAX], err[200];
        uint8_t seed[32], want_seed[32], pk[32], want_pk[32];
        ck_assert_int_eq(
            nova__stellar_offline_api.seed_to_account(vstr(k, "secret"), account, err, sizeof(err)),
            0);
        ck_assert_str_eq(account, vstr(k, "account_id"));
        ck_assert_int_eq(
            nova__strkey_decode32(vstr(k, "secret"), NOVA_STRKEY_SEED, seed, err, sizeof(err)), 0);
        unhex(vstr(k, "seed_hex"), want_seed, 32);
        ck_assert_mem_eq(seed, want_seed, 32);
        ck_assert_int_eq(nova__stellar_seed_public_key(seed, pk), 0);
        unhex(vstr(k, "public_key_hex"), want_pk, 32);
        ck_assert_mem_eq(pk, want_pk, 32);
        count++;
    }
    ck_assert_int_eq(count, 5);
}
END_TEST

START_TEST(muxed)
{
    const cJSON *m = vget(vectors(), "strkey/muxed_accounts/0");
    struct nova__muxed_account a;
    uint8_t key[32];
    char err[200], enc[NOVA_STRKEY_MAX];
    ck_assert_int_eq(nova__strkey_decode_muxed(vstr(m, "strkey"), &a, err, sizeof(err)), 0);
    ck_assert(a.muxed);
    ck_assert_uint_eq(a.id, strtoull(vstr(m, "id"), NULL, 10));
    unhex(vstr(m, "raw_hex"), key, 32);
    ck_assert_mem_eq(a.key, key, 32);
    ck_assert_int_eq(nova__strkey_encode_muxed(&a, enc, sizeof(enc)), 69);
    ck_assert_str_eq(enc, vstr(m, "strkey"));

    /* The raw payload is key || big-endian id. */
    uint8_t payload[40], want[40];
    unhex(vstr(m, "payload_hex"), want, 40);
    ck_assert_int_eq(nova__strkey_decode(vstr(m, "strkey"), NOVA_STRKEY_MUXED, NULL, payload,
                                         sizeof(payload), NULL, err, sizeof(err)),
                     0);
    ck_assert_mem_eq(payload, want, 40);

    /* A G... is a MuxedAccount too, without id. */
    ck_assert_int_eq(nova__strkey_decode_muxed(vstr(m, "account_id"), &a, err, sizeof(err)), 0);
    ck_assert(!a.muxed);
    ck_assert_mem_eq(a.key, key, 32);
    ck_assert_int_eq(nova__strkey_encode_muxed(&a, enc, sizeof(enc)), 56);
    ck_assert_str_eq(enc, vstr(m, "account_id"));
}
END_TEST

START_TEST(invalid_vectors)
{
    /* Each rejected key must also give the right reason. */
    static const char *const reasons[] = {"checksum", "lower case", "wrong length", "version byte"};
    const cJSON *list = vget(vectors(), "invalid_strkeys"), *item;
    int i = 0;
    cJSON_ArrayForEach(item, list)
    {
        char err[200] = "";
        uint8_t key[32];
        ck_assert_int_lt(i, 4);
        ck_assert_int_eq(
            nova__strkey_decode32(vstr(item, "strkey"), NOVA_STRKEY_ACCOUNT, key, err, sizeof(err)),
            -EINVAL);
        ck_assert_msg(strstr(err, reasons[i]) != NULL, "%s: \"%s\" lacks \"%s\"",
                      vstr(item, "strkey"), err, reasons[i]);
        ck_assert_int_eq(nova__stellar_offline_api.strkey_validate(vstr(item, "strkey"),
                                                                   NOVA_STRKEY_ACCOUNT, NULL, 0),
                         -EINVAL);
        i++;
    }
    ck_assert_int_eq(i, 4);
}
END_TEST

static void expect_reject(const char *text, enum nova_strkey_type type, const char *reason)
{
    char err[200] = "";
    uint8_t buf[NOVA__STRKEY_PAYLOAD_MAX];
    ck_assert_int_eq(
        nova__strkey_decode(text, type, NULL, buf, sizeof(buf), NULL, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, reason) != NULL, "%s: \"%s\" lacks \"%s\"", text ? text : "(null)",
                  err, reason);
}

START_TEST(rejections)
{
    const char *g = "GD4CHC2EKQWZC3ERCA5B5GTAOJML2PJ7U7TDTZM6CU4JS2AY52FWBZMW";
    const char *m = "MD4CHC2EKQWZC3ERCA5B5GTAOJML2PJ7U7TDTZM6CU4JS2AY52FWAEJCCD2H32MBCW2RI";
    char buf[128];
    expect_reject(NULL, NOVA_STRKEY_ACCOUNT, "empty");
    expect_reject("", NOVA_STRKEY_ACCOUNT, "empty");
    snprintf(buf, sizeof(buf), "%s=", g);
    expect_reject(buf, NOVA_STRKEY_ACCOUNT, "padding");
    snprintf(buf, sizeof(buf), "%.10s1%s", g, g + 11); /* '1' is not base32 */
    expect_reject(buf, NOVA_STRKEY_ACCOUNT, "only A-Z and 2-7");
    /* A seed's characters are never echoed. */
    expect_reject("SBYHXU63OLJOEGCWK6KDJORCHOGNWC6KVKQDNW6SEFJ7GWKVL5HK6sWJ", NOVA_STRKEY_SEED,
                  "bad character at position 54 (lower case");
    char err[200];
    ck_assert_int_eq(nova__strkey_decode("SBYHXU63OLJOEGCWK6KDJORCHOGNWC6KVKQDNW6SEFJ7GWKVL5HK6sWJ",
                                         NOVA_STRKEY_ANY, NULL, (uint8_t[40]){0}, 40, NULL, err,
                                         sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_null(strstr(err, "'s'"));
    snprintf(buf, sizeof(buf), "%s ", g);
    expect_reject(buf, NOVA_STRKEY_ACCOUNT, "position 57");
    snprintf(buf, sizeof(buf), "%sA", g);
    expect_reject(buf, NOVA_STRKEY_ACCOUNT, "wrong length");
    expect_reject(m, NOVA_STRKEY_ACCOUNT, "version byte");
    expect_reject(g, NOVA_STRKEY_MUXED, "version byte");
    expect_reject(g, NOVA_STRKEY_CONTRACT, "version byte");
    expect_reject("QD4CHC2EKQWZC3ERCA5B5GTAOJML2PJ7U7TDTZM6CU4JS2AY52FWBZMW", NOVA_STRKEY_ANY,
                  "unknown StrKey kind");
    /* Second letter carries the low 3 bits of the version byte. */
    snprintf(buf, sizeof(buf), "G7%s", g + 2);
    expect_reject(buf, NOVA_STRKEY_ACCOUNT, "version byte 0x37");
    /* M... has one unused trailing bit: setting it is non-canonical. */
    snprintf(buf, sizeof(buf), "%s", m);
    buf[68] = 'J'; /* 'I' = 8, 'J' = 9: flips the lowest (unused) bit */
    expect_reject(buf, NOVA_STRKEY_MUXED, "non-canonical");
    /* Changing a middle character breaks the checksum. */
    snprintf(buf, sizeof(buf), "%s", g);
    buf[20] = buf[20] == 'A' ? 'B' : 'A';
    expect_reject(buf, NOVA_STRKEY_ACCOUNT, "checksum");
    snprintf(buf, sizeof(buf), "%s", m);
    buf[30] = buf[30] == 'A' ? 'B' : 'A';
    expect_reject(buf, NOVA_STRKEY_MUXED, "checksum");
}
END_TEST

START_TEST(crc_and_kinds)
{
    /* The CRC-16/XMODEM check value. */
    ck_assert_uint_eq(nova__crc16_xmodem((const uint8_t *)"123456789", 9), 0x31c3);
    uint8_t zero[33] = {0};
    char out[NOVA_STRKEY_MAX];
    ck_assert_int_eq(nova__strkey_encode(NOVA_STRKEY_ACCOUNT, zero, 32, out, sizeof(out)), 56);
    ck_assert_str_eq(out, "GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF");
    const struct {
        enum nova_strkey_type t;
        char letter;
        int len;
    } k[] = {{NOVA_STRKEY_SEED, 'S', 56},           {NOVA_STRKEY_CONTRACT, 'C', 56},
             {NOVA_STRKEY_PRE_AUTH_TX, 'T', 56},    {NOVA_STRKEY_HASH_X, 'X', 56},
             {NOVA_STRKEY_LIQUIDITY_POOL, 'L', 56}, {NOVA_STRKEY_CLAIMABLE, 'B', 58}};
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        size_t plen = nova__strkey_payload_len(k[i].t);
        uint8_t back[NOVA__STRKEY_PAYLOAD_MAX];
        size_t blen;
        enum nova_strkey_type bt;
        ck_assert_int_eq(nova__strkey_encode(k[i].t, zero, plen, out, sizeof(out)), k[i].len);
        ck_assert_int_eq(out[0], k[i].letter);
        ck_assert_int_eq(
            nova__strkey_decode(out, NOVA_STRKEY_ANY, &bt, back, sizeof(back), &blen, NULL, 0), 0);
        ck_assert_int_eq(bt, k[i].t);
        ck_assert_uint_eq(blen, plen);
    }
    /* Wrong payload length or a small buffer are refused, not overflowed. */
    ck_assert_int_eq(nova__strkey_encode(NOVA_STRKEY_ACCOUNT, zero, 31, out, sizeof(out)), -EINVAL);
    ck_assert_int_eq(nova__strkey_encode(NOVA_STRKEY_ACCOUNT, zero, 32, out, 56), -ENOSPC);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stellar_strkey");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, account_ids);
    tcase_add_test(tc, secret_seeds);
    tcase_add_test(tc, contract_ids);
    tcase_add_test(tc, keys_derive);
    tcase_add_test(tc, muxed);
    tcase_add_test(tc, invalid_vectors);
    tcase_add_test(tc, rejections);
    tcase_add_test(tc, crc_and_kinds);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
