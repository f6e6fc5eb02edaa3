/* ScVal XDR -> JSON against the vectors, limits and malformed input. */
#include "config.h"
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stellar/stellar.h"
#include "stellar/stellar_scval.h"
#include "stellar_vectors.h"

static char *decode_b64(const char *b64)
{
    cJSON *j = NULL;
    char err[200];
    ck_assert_msg(nova__scval_decode_b64(b64, &j, err, sizeof(err)) == 0, "%s: %s", b64, err);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

START_TEST(vectors_to_json)
{
    const char *dest1 = vstr(vectors(), "keys/dest1/account_id");
    const char *dest2 = vstr(vectors(), "keys/dest2/account_id");
    char want_addr[128], want_vec[200], want_map[256];
    snprintf(want_addr, sizeof(want_addr), "{\"address\":\"%s\"}", dest1);
    snprintf(want_vec, sizeof(want_vec), "{\"vec\":[{\"symbol\":\"stake\"},{\"address\":\"%s\"}]}",
             dest2);
    snprintf(want_map, sizeof(want_map),
             "{\"map\":[{\"key\":{\"symbol\":\"amount\"},\"val\":{\"i128\":\"125000000\"}},"
             "{\"key\":{\"symbol\":\"user\"},\"val\":{\"address\":\"%s\"}}]}",
             dest1);
    const struct {
        const char *name, *json;
    } want[] = {
        {"symbol_mint", "{\"symbol\":\"mint\"}"},
        {"symbol_claim", "{\"symbol\":\"claim\"}"},
        {"symbol_stake", "{\"symbol\":\"stake\"}"},
        {"symbol_unstake", "{\"symbol\":\"unstake\"}"},
        {"symbol_transfer", "{\"symbol\":\"transfer\"}"},
        {"u32_42", "{\"u32\":42}"},
        {"i32_minus_1", "{\"i32\":-1}"},
        {"u64_1e12", "{\"u64\":\"1000000000000\"}"},
        {"i128_125000000", "{\"i128\":\"125000000\"}"},
        {"i128_minus_5", "{\"i128\":\"-5\"}"},
        {"i128_2pow64_plus_1", "{\"i128\":\"18446744073709551617\"}"},
        {"u128_1", "{\"u128\":\"1\"}"},
        {"address_account_dest1", want_addr},
        {"address_contract",
         "{\"address\":\"CAALUM5KAJR2NDIJRCOJAUEQP7QXWBP4Z7RLWY4FXQBNVIPWKFK4GQJO\"}"},
        {"string_hello", "{\"string\":\"hello\"}"},
        {"bool_true", "{\"bool\":true}"},
        {"void", "{\"void\":null}"},
        {"vec_symbol_address", want_vec},
        {"map_amount_user", want_map},
    };
    const cJSON *v;
    int count = 0;
    cJSON_ArrayForEach(v, vget(vectors(), "soroban/scvals"))
    {
        const char *name = vstr(v, "name");
        const char *expect = NULL;
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
            if (strcmp(want[i].name, name) == 0)
                expect = want[i].json;
        ck_assert_msg(expect != NULL, "no expectation for vector %s", name);
        char *got = decode_b64(vstr(v, "xdr_base64"));
        ck_assert_str_eq(got, expect);
        free(got);

        /* The hex form decodes the same way; every strict prefix fails. */
        uint8_t raw[256];
        size_t n = unhex(vstr(v, "xdr_hex"), raw, sizeof(raw));
        for (size_t k = 0; k < n; k++) {
            cJSON *j = (cJSON *)1;
            ck_assert_int_eq(nova__scval_decode(raw, k, &j, NULL, 0), -EBADMSG);
            ck_assert_ptr_null(j);
        }
        raw[n] = 0; /* trailing bytes are an error too */
        raw[n + 1] = raw[n + 2] = raw[n + 3] = 0;
        cJSON *j;
        ck_assert_int_eq(nova__scval_decode(raw, n + 4, &j, NULL, 0), -EBADMSG);
        count++;
    }
    ck_assert_int_eq(count, 19);
}
END_TEST

START_TEST(event_topics)
{
    const cJSON *ev = vget(vectors(), "soroban/sample_get_events/response/result/events/0");
    cJSON *topics;
    char err[200];
    ck_assert_int_eq(nova__scval_decode_topics(vget(ev, "topic"), &topics, err, sizeof(err)), 0);
    char *s = cJSON_PrintUnformatted(topics);
    char want[200];
    snprintf(want, sizeof(want), "[{\"symbol\":\"mint\"},{\"address\":\"%s\"}]",
             vstr(vectors(), "keys/dest1/account_id"));
    ck_assert_str_eq(s, want);
    free(s);
    cJSON_Delete(topics);
    cJSON *value;
    ck_assert_int_eq(
        nova__stellar_offline_api.scval_decode(vstr(ev, "value"), &value, err, sizeof(err)), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(value, "i128")->valuestring, "125000000");
    cJSON_Delete(value);

    /* Filter segments of the sample request are ScVals too. */
    const cJSON *seg =
        vget(vectors(), "soroban/sample_get_events/request/params/filters/0/topics/1/0");
    char *claim = decode_b64(seg->valuestring);
    ck_assert_str_eq(claim, "{\"symbol\":\"claim\"}");
    free(claim);

    cJSON *bad = cJSON_Parse("[\"AAAADwAAAARtaW50\", \"AAAA\"]");
    ck_assert_int_eq(nova__scval_decode_topics(bad, &topics, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "topic 2"));
    ck_assert_ptr_null(topics);
    cJSON_Delete(bad);
    ck_assert_int_eq(nova__scval_decode_topics(NULL, &topics, err, sizeof(err)), 0);
    ck_assert_int_eq(cJSON_GetArraySize(topics), 0);
    cJSON_Delete(topics);
}
END_TEST

static char *decode_writer(struct nova__xdr_writer *w, int expect_rc, char *err, size_t errlen)
{
    cJSON *j = NULL;
    ck_assert_int_eq(w->err, 0);
    int rc = nova__scval_decode(w->data, w->len, &j, err, errlen);
    ck_assert_msg(rc == expect_rc, "rc %d, expected %d (%s)", rc, expect_rc, err);
    nova__xdr_free(w);
    if (rc < 0)
        return NULL;
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

START_TEST(integers)
{
    const struct {
        int type;
        uint64_t words[4];
        int nwords;
        const char *json;
    } cases[] = {
        {10,
         {0x8000000000000000ull, 0},
         2,
         "{\"i128\":\"-170141183460469231731687303715884105728\"}"},
        {10,
         {0x7fffffffffffffffull, UINT64_MAX},
         2,
         "{\"i128\":\"170141183460469231731687303715884105727\"}"},
        {10, {0, 0}, 2, "{\"i128\":\"0\"}"},
        {10, {UINT64_MAX, UINT64_MAX}, 2, "{\"i128\":\"-1\"}"},
        {9, {UINT64_MAX, UINT64_MAX}, 2, "{\"u128\":\"340282366920938463463374607431768211455\"}"},
        {11,
         {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX},
         4,
         "{\"u256\":"
         "\"115792089237316195423570985008687907853269984665640564039457584007913129639935\"}"},
        {12,
         {0x8000000000000000ull, 0, 0, 0},
         4,
         "{\"i256\":\"-"
         "57896044618658097711785492504343953926634992332820282019728792003956564819968\"}"},
        {12, {0, 0, 1, 0}, 4, "{\"i256\":\"18446744073709551616\"}"},
        {6, {0x8000000000000000ull}, 1, "{\"i64\":\"-9223372036854775808\"}"},
        {5, {UINT64_MAX}, 1, "{\"u64\":\"18446744073709551615\"}"},
        {7, {1735689600}, 1, "{\"timepoint\":\"1735689600\"}"},
        {8, {300}, 1, "{\"duration\":\"300\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nova__xdr_writer w = {0};
        char err[200];
        nova__xdr_put_i32(&w, cases[i].type);
        for (int k = 0; k < cases[i].nwords; k++)
            nova__xdr_put_u64(&w, cases[i].words[k]);
        char *s = decode_writer(&w, 0, err, sizeof(err));
        ck_assert_str_eq(s, cases[i].json);
        free(s);
    }
    struct nova__xdr_writer w = {0};
    char err[200];
    nova__xdr_put_i32(&w, 3);
    nova__xdr_put_u32(&w, UINT32_MAX);
    char *s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_str_eq(s, "{\"u32\":4294967295}");
    free(s);
    nova__xdr_put_i32(&w, 4);
    nova__xdr_put_i32(&w, INT32_MIN);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_str_eq(s, "{\"i32\":-2147483648}");
    free(s);
}
END_TEST

START_TEST(other_kinds)
{
    struct nova__xdr_writer w = {0};
    char err[200], *s;
    uint8_t key[32];
    memset(key, 0, 32);

    nova__xdr_put_i32(&w, 13); /* bytes -> hex */
    nova__xdr_put_var(&w, "\x00\xba\x33", 3);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_str_eq(s, "{\"bytes\":\"00ba33\"}");
    free(s);

    nova__xdr_put_i32(&w, 14); /* not UTF-8 -> string_hex */
    nova__xdr_put_var(&w, "a\xff", 2);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_str_eq(s, "{\"string_hex\":\"61ff\"}");
    free(s);

    nova__xdr_put_i32(&w, 14); /* embedded NUL -> string_hex */
    nova__xdr_put_var(&w, "a\0b", 3);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_str_eq(s, "{\"string_hex\":\"610062\"}");
    free(s);

    nova__xdr_put_i32(&w, 14); /* UTF-8 passes through */
    nova__xdr_put_var(&w, "\xc3\xa9t\xc3\xa9", 5);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_str_eq(s, "{\"string\":\"\xc3\xa9t\xc3\xa9\"}");
    free(s);

    nova__xdr_put_i32(&w, 16); /* absent vec */
    nova__xdr_put_u32(&w, 0);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_str_eq(s, "{\"vec\":null}");
    free(s);

    nova__xdr_put_i32(&w, 17); /* empty map */
    nova__xdr_put_u32(&w, 1);
    nova__xdr_put_u32(&w, 0);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_str_eq(s, "{\"map\":[]}");
    free(s);

    nova__xdr_put_i32(&w, 2); /* contract error */
    nova__xdr_put_i32(&w, 0);
    nova__xdr_put_u32(&w, 7);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_str_eq(s, "{\"error\":{\"contract\":7}}");
    free(s);

    nova__xdr_put_i32(&w, 2); /* budget / exceeded_limit */
    nova__xdr_put_i32(&w, 7);
    nova__xdr_put_u32(&w, 5);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_str_eq(s, "{\"error\":{\"budget\":\"exceeded_limit\"}}");
    free(s);

    nova__xdr_put_i32(&w, 18); /* muxed address */
    nova__xdr_put_i32(&w, 2);
    nova__xdr_put_u64(&w, 1234567890123456789ull);
    uint8_t d1[32];
    unhex(vstr(vectors(), "strkey/muxed_accounts/0/raw_hex"), d1, 32);
    nova__xdr_put_fixed(&w, d1, 32);
    s = decode_writer(&w, 0, err, sizeof(err));
    char want[128];
    snprintf(want, sizeof(want), "{\"address\":\"%s\"}",
             vstr(vectors(), "strkey/muxed_accounts/0/strkey"));
    ck_assert_str_eq(s, want);
    free(s);

    nova__xdr_put_i32(&w, 18); /* claimable balance */
    nova__xdr_put_i32(&w, 3);
    nova__xdr_put_i32(&w, 0);
    nova__xdr_put_fixed(&w, key, 32);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_int_eq(strncmp(s, "{\"address\":\"B", 13), 0);
    free(s);

    nova__xdr_put_i32(&w, 18); /* liquidity pool */
    nova__xdr_put_i32(&w, 4);
    nova__xdr_put_fixed(&w, key, 32);
    s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_int_eq(strncmp(s, "{\"address\":\"L", 13), 0);
    free(s);
}
END_TEST

START_TEST(malformed)
{
    struct nova__xdr_writer w = {0};
    char err[200];
    const struct {
        int32_t words[4];
        int n;
        const char *reason;
    } cases[] = {
        {{22}, 1, "unknown type 22"},
        {{-1}, 1, "unknown type -1"},
        {{19}, 1, "unsupported ScVal type 19"},
        {{0, 2}, 2, "bool is not 0 or 1"},
        {{18, 5}, 2, "unknown address type"},
        {{18, 0, 1}, 3, "unknown public key type"},
        {{2, 10, 0}, 3, "unknown error type"},
        {{2, 1, 10}, 3, "unknown error code"},
        {{16, 2}, 2, "truncated or bad padding in vec"},
        {{16, 1, 100}, 3, "vec of 100 entries in 0 bytes"},
        {{17, 1, 1, 1}, 4, "map of 1 entries in 4 bytes"},
        {{15, 33}, 2, "symbol longer than 32 bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int k = 0; k < cases[i].n; k++)
            nova__xdr_put_i32(&w, cases[i].words[k]);
        decode_writer(&w, -EBADMSG, err, sizeof(err));
        ck_assert_msg(strstr(err, cases[i].reason) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err,
                      cases[i].reason);
    }
    /* Symbol characters are checked. */
    nova__xdr_put_i32(&w, 15);
    nova__xdr_put_var(&w, "a-b", 3);
    decode_writer(&w, -EBADMSG, err, sizeof(err));
    ck_assert_ptr_nonnull(strstr(err, "outside [A-Za-z0-9_]"));
    /* Non-zero padding. */
    nova__xdr_put_i32(&w, 15);
    nova__xdr_put_u32(&w, 1);
    nova__xdr_put_raw(&w, "a\0\0\1", 4);
    decode_writer(&w, -EBADMSG, err, sizeof(err));
    /* Not base64. */
    cJSON *j;
    ck_assert_int_eq(nova__scval_decode_b64("AAAAAQ", &j, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "base64"));
}
END_TEST

START_TEST(depth_limit)
{
    /* NOVA__SCVAL_MAX_DEPTH nested vecs decode; one more does not. */
    for (int depth = NOVA__SCVAL_MAX_DEPTH; depth <= NOVA__SCVAL_MAX_DEPTH + 1; depth++) {
        struct nova__xdr_writer w = {0};
        char err[200];
        for (int i = 0; i < depth; i++) {
            nova__xdr_put_i32(&w, 16);
            nova__xdr_put_u32(&w, 1);
            nova__xdr_put_u32(&w, 1);
        }
        nova__xdr_put_i32(&w, 1);
        char *s =
            decode_writer(&w, depth == NOVA__SCVAL_MAX_DEPTH ? 0 : -EBADMSG, err, sizeof(err));
        if (depth > NOVA__SCVAL_MAX_DEPTH)
            ck_assert_ptr_nonnull(strstr(err, "nesting deeper"));
        free(s);
    }
    /* A wide vec is fine (count bounded by the input, not by a constant). */
    struct nova__xdr_writer w = {0};
    char err[200];
    nova__xdr_put_i32(&w, 16);
    nova__xdr_put_u32(&w, 1);
    nova__xdr_put_u32(&w, 5000);
    for (int i = 0; i < 5000; i++)
        nova__xdr_put_i32(&w, 1);
    char *s = decode_writer(&w, 0, err, sizeof(err));
    ck_assert_ptr_nonnull(s);
    free(s);
}
END_TEST

START_TEST(event_ids)
{
    const cJSON *e;
    int count = 0;
    cJSON_ArrayForEach(e, vget(vectors(), "soroban/event_ids"))
    {
        char id[NOVA__EVENT_ID_MAX];
        ck_assert_int_eq(nova__stellar_event_id((uint32_t)vget(e, "ledger")->valuedouble,
                                                (uint32_t)vget(e, "tx_index")->valueint,
                                                (uint32_t)vget(e, "op_index")->valueint,
                                                (uint32_t)vget(e, "event_index")->valueint, id),
                         0);
        ck_assert_str_eq(id, vstr(e, "id"));
        count++;
    }
    ck_assert_int_eq(count, 3);
    /* The sample response's event id and cursor. */
    char id[NOVA__EVENT_ID_MAX];
    ck_assert_int_eq(nova__stellar_event_id(1000000, 1, 0, 0, id), 0);
    ck_assert_str_eq(id, vstr(vectors(), "soroban/sample_get_events/response/result/events/0/id"));
    ck_assert_str_eq(id, vstr(vectors(), "soroban/sample_get_events/response/result/cursor"));
    ck_assert_int_eq(nova__stellar_event_id(UINT32_MAX, (1u << 20) - 1, 4095, UINT32_MAX, id), 0);
    ck_assert_str_eq(id, "18446744073709551615-4294967295");
    ck_assert_int_eq(nova__stellar_event_id(1, 1u << 20, 0, 0, id), -EINVAL);
    ck_assert_int_eq(nova__stellar_event_id(1, 0, 4096, 0, id), -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stellar_scval");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, vectors_to_json);
    tcase_add_test(tc, event_topics);
    tcase_add_test(tc, integers);
    tcase_add_test(tc, other_kinds);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, depth_limit);
    tcase_add_test(tc, event_ids);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
