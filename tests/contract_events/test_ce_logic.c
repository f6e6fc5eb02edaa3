/* Unit tests of the contract_events plugin's pure decisions (ce_logic),
 * with the runtime's ScVal decoder. Expected values of scValToNative()
 * were printed by @stellar/stellar-base 15.0.0 (tests/testnet). */
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "../../plugins/contract_events/ce_logic.h"
#include "stellar/stellar.h"
#include "stellar/stellar_strkey.h"

static const struct nova_stellar_api *st = &nova__stellar_offline_api;

#define C1 "CCF7DQZIZBSJISL53NFEL2FDNPEVCF5UEOMTX2FT2JRLB7AIKXOXWBAB"
#define G1 "GAYW7RQYHRUBBNBXZKIQDLW2OXD6ANPOWTH7A5SFQ6I245CY3RN6S2TT"

/* base64 ScVals made with stellar-base */
#define X_NOVA_RWD "AAAADwAAAAhub3ZhX3J3ZA=="
#define X_STAKED   "AAAADwAAAAZTdGFrZWQAAA=="
/* (u32 1, G1, i128 min, u64 max) */
#define X_TUPLE                                                                                    \
    "AAAAEAAAAAEAAAAEAAAAAwAAAAEAAAASAAAAAAAAAAAxb8YYPGgQtDfKkQGu2nXH4DXutM/"                      \
    "wdkWHka50WNxb6QAAAAqAAAA"                                                                     \
    "AAAAAAAAAAAAAAAAAAAAABf//////////"
/* {amount: i128 5, schema_version: u32 2} */
#define X_MAP                                                                                      \
    "AAAAEQAAAAEAAAACAAAADwAAAAZhbW91bnQAAAAAAAoAAAAAAAAAAAAAAAAAAAAFAAAADwAAAA5zY2hlbWFfdmVyc2lv" \
    "bgA"                                                                                          \
    "AAAAAAwAAAAI="
/* String bytes 61 c3 28 ed a0 80 62 (not UTF-8) */
#define X_BADSTR "AAAADgAAAAdhwyjtoIBiAA=="
#define X_ERR    "AAAAAgAAAAcAAAAF"
#define X_ERRC   "AAAAAgAAAAAAAAAH"
/* {1: true, [void, 2, [a, b]]: void, bytes "hi": bytes 00ff} */
#define X_MAPKEYS                                                                                  \
    "AAAAEQAAAAEAAAADAAAAAwAAAAEAAAAAAAAAAQAAABAAAAABAAAAAwAAAAEAAAADAAAAAgAAABAAAAABAAAAAgAAAA8A" \
    "AAA"                                                                                          \
    "BYQAAAAAAAA8AAAABYgAAAAAAAAEAAAANAAAAAmhpAAAAAAANAAAAAgD/AAA="

static int validate(void *ctx, const char *id, char *err, size_t errlen)
{
    (void)ctx;
    return st->strkey_validate(id, NOVA_STRKEY_CONTRACT, err, errlen);
}

static cJSON *decode(const char *b64)
{
    cJSON *v = NULL;
    char err[200];
    ck_assert_msg(st->scval_decode(b64, &v, err, sizeof err) == 0, "%s", err);
    return v;
}

/* The native value of a base64 ScVal, as compact JSON text. */
static char *native_text(const char *b64)
{
    cJSON *typed = decode(b64);
    char err[200] = "";
    cJSON *n = ce_native(typed, err, sizeof err);
    ck_assert_msg(n != NULL, "%s", err);
    char *text = cJSON_PrintUnformatted(n);
    cJSON_Delete(n);
    cJSON_Delete(typed);
    return text;
}

static void expect_native(const char *b64, const char *json)
{
    char *got = native_text(b64);
    cJSON *a = cJSON_Parse(got), *b = cJSON_Parse(json);
    ck_assert_ptr_nonnull(b);
    ck_assert_msg(cJSON_Compare(a, b, true), "got %s, want %s", got, json);
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(got);
}

START_TEST(test_contracts)
{
    struct ce_contracts set;
    char err[300];
    memset(&set, 0, sizeof set);
    /* blanks and repeats skipped, sorted */
    ck_assert_int_eq(
        ce_contracts_add(&set, " " C1 ",,\n" C1, "contract_ids", validate, NULL, err, sizeof err),
        0);
    ck_assert_int_eq(ce_contracts_add(&set, NULL, "X", validate, NULL, err, sizeof err), 0);
    ck_assert_int_eq(ce_contracts_add(&set, "", "X", validate, NULL, err, sizeof err), 0);
    ck_assert_uint_eq(set.n, 1);
    /* a G... is refused, naming where it came from */
    ck_assert_int_eq(
        ce_contracts_add(&set, G1, "REWARD_POOL_CONTRACT_ID", validate, NULL, err, sizeof err),
        -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "REWARD_POOL_CONTRACT_ID: " G1));
    char arr[200], lock[200];
    ce_contracts_array(&set, arr, sizeof arr);
    ck_assert_str_eq(arr, "{" C1 "}");
    ce_lock_name(&set, lock, sizeof lock);
    ck_assert_str_eq(lock, "nova-worker contract_events " C1);

    /* 26 distinct contract ids (sha256 of labels) are one too many */
    struct ce_contracts big;
    memset(&big, 0, sizeof big);
    int rc = 0;
    for (int i = 0; i < 26 && rc == 0; i++) {
        unsigned char raw[32];
        char id[NOVA_STRKEY_MAX];
        memset(raw, i + 1, sizeof raw);
        ck_assert_int_gt(nova__strkey_encode(NOVA_STRKEY_CONTRACT, raw, 32, id, sizeof id), 0);
        rc = ce_contracts_add(&big, id, "contract_ids", validate, NULL, err, sizeof err);
        if (i < 25)
            ck_assert_int_eq(rc, 0);
    }
    ck_assert_int_eq(rc, -E2BIG);
    ck_assert_uint_eq(big.n, 25);
    for (size_t i = 1; i < big.n; i++)
        ck_assert_int_lt(strcmp(big.ids[i - 1], big.ids[i]), 0);
    struct nova_stellar_event_filter f[NOVA_STELLAR_MAX_EVENT_FILTERS];
    ck_assert_uint_eq(ce_filters(&big, f), 5);
    ck_assert_str_eq(f[4].contract_ids[4], big.ids[24]);
    ck_assert_str_eq(f[0].type, "contract");
    memset(&big, 0, sizeof big);
    ck_assert_int_eq(ce_contracts_add(&big, C1, "x", validate, NULL, err, sizeof err), 0);
    ck_assert_uint_eq(ce_filters(&big, f), 1);
    ck_assert_ptr_null(f[0].contract_ids[1]);
}
END_TEST

START_TEST(test_cursors)
{
    ck_assert(ce_cursor_valid("0004294967296000000-0000000001"));
    ck_assert(!ce_cursor_valid("now"));
    ck_assert(!ce_cursor_valid("123456789"));             /* a Horizon paging token */
    ck_assert(!ce_cursor_valid("0004294967296000000-1")); /* index not 10 digits */
    ck_assert(!ce_cursor_valid("0004294967296000000-0000000001x"));
    ck_assert(ce_cursor_valid("18446744073709551615-4294967295"));
    ck_assert(!ce_cursor_valid("18446744073709551616-4294967295"));
    /* ledger 1000 = 1000 << 32 = 4294967296000 */
    ck_assert_uint_eq(ce_cursor_ledger("0000004294967296000-0000000000"), 1000);
    ck_assert_uint_eq(ce_cursor_ledger("0000004299262263295-4294967295"), 1000);

    struct ce_pos start, a, b;
    ce_pos_ledger(&start, 1000);
    ce_pos_cursor(&a, "0000004294967300096-0000000000"); /* ledger 1000, tx 1 */
    ce_pos_cursor(&b, "0000004294967300096-0000000003");
    ck_assert_int_lt(ce_pos_cmp(&start, &a), 0);
    ck_assert_int_lt(ce_pos_cmp(&a, &b), 0);
    ck_assert_int_gt(ce_pos_cmp(&b, &a), 0);
    ck_assert_int_eq(ce_pos_cmp(&b, &b), 0);
    struct ce_pos later;
    ce_pos_ledger(&later, 1001);
    ck_assert_int_gt(ce_pos_cmp(&later, &b), 0);
    ck_assert_uint_eq(ce_lag(1010, &b), 10);
    ck_assert_uint_eq(ce_lag(999, &b), 0);
}
END_TEST

static void expect_type(const char *json, const char *want, int rc_want)
{
    cJSON *t = json != NULL ? cJSON_Parse(json) : NULL;
    char out[CE_TYPE_MAX + 1];
    ck_assert_int_eq(ce_event_type(t, "contract", out), rc_want);
    ck_assert_str_eq(out, want);
    cJSON_Delete(t);
}

START_TEST(test_event_type)
{
    expect_type("[{\"symbol\":\"NOVA_RWD\"},{\"symbol\":\"Staked\"}]", "nova_rwd:staked", 0);
    expect_type("[{\"symbol\":\"mint\"},{\"address\":\"" G1 "\"},{\"symbol\":\"x\"}]", "mint", 0);
    expect_type("[{\"string\":\"mint\"}]", "contract", 0);
    expect_type("[{\"symbol\":\"\"},{\"symbol\":\"a\"}]", "contract", 0);
    expect_type("[{\"symbol\":\"tag\"},{\"symbol\":\"\"}]", "tag", 0);
    expect_type("[]", "contract", 0);
    expect_type(NULL, "contract", 0);
    /* 20 + 1 + 30 characters do not fit VARCHAR(50): the tag alone */
    expect_type("[{\"symbol\":\"aaaaaaaaaaaaaaaaaaaa\"},{\"symbol\":"
                "\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}]",
                "aaaaaaaaaaaaaaaaaaaa", -E2BIG);
    expect_type("[{\"symbol\":\"aaaaaaaaaaaaaaaaaaa\"},{\"symbol\":"
                "\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}]",
                "aaaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 0);
}
END_TEST

START_TEST(test_native)
{
    expect_native(X_TUPLE, "[1,\"" G1 "\",\"-170141183460469231731687303715884105728\","
                           "\"18446744073709551615\"]");
    expect_native(X_MAP, "{\"amount\":\"5\",\"schema_version\":2}");
    expect_native(X_BADSTR, "\"a\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                            "b\"");
    expect_native(X_ERR, "{\"type\":\"system\",\"code\":5,\"value\":\"scecExceededLimit\"}");
    expect_native(X_ERRC, "{\"type\":\"contract\",\"code\":7}");
    /* keys as JavaScript names them; bytes values as hex */
    expect_native(X_MAPKEYS, "{\"1\":true,\",2,a,b\":null,\"hi\":\"00ff\"}");
    expect_native(X_NOVA_RWD, "\"nova_rwd\"");

    /* typed JSON made by hand: the other arms */
    static const char *const cases[][2] = {
        {"{\"bool\":false}", "false"},
        {"{\"void\":null}", "null"},
        {"{\"i32\":-7}", "-7"},
        {"{\"u32\":4294967295}", "4294967295"},
        {"{\"i64\":\"-9223372036854775808\"}", "\"-9223372036854775808\""},
        {"{\"timepoint\":\"1735689600\"}", "\"1735689600\""},
        {"{\"duration\":\"60\"}", "\"60\""},
        {"{\"u256\":\"1\"}", "\"1\""},
        {"{\"bytes\":\"\"}", "\"\""},
        {"{\"string\":\"hello\"}", "\"hello\""},
        {"{\"string_hex\":\"f09f9880e282\"}", "\"\xf0\x9f\x98\x80\xef\xbf\xbd\""},
        {"{\"string_hex\":\"610062\"}", "\"a\xef\xbf\xbd"
                                        "b\""},
        {"{\"vec\":null}", "[]"},
        {"{\"map\":null}", "{}"},
        {"{\"map\":[{\"key\":{\"symbol\":\"a\"},\"val\":{\"u32\":1}},"
         "{\"key\":{\"string\":\"a\"},\"val\":{\"u32\":2}}]}",
         "{\"a\":2}"},
        {"{\"map\":[{\"key\":{\"map\":[]},\"val\":{\"bool\":true}},"
         "{\"key\":{\"void\":null},\"val\":{\"bool\":false}}]}",
         "{\"[object Object]\":true,\"null\":false}"},
        {"{\"address\":\"" C1 "\"}", "\"" C1 "\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *typed = cJSON_Parse(cases[i][0]), *want = cJSON_Parse(cases[i][1]);
        char err[200] = "";
        ck_assert_ptr_nonnull(typed);
        ck_assert_ptr_nonnull(want);
        cJSON *got = ce_native(typed, err, sizeof err);
        ck_assert_msg(got != NULL, "%s: %s", cases[i][0], err);
        char *text = cJSON_PrintUnformatted(got);
        ck_assert_msg(cJSON_Compare(got, want, true), "%s: got %s, want %s", cases[i][0], text,
                      cases[i][1]);
        free(text);
        cJSON_Delete(got);
        cJSON_Delete(want);
        cJSON_Delete(typed);
    }
    /* what the decoder never gives is refused */
    static const char *const bad[] = {"{}", "{\"u32\":1,\"i32\":2}",    "{\"nope\":1}",
                                      "[]", "{\"string_hex\":\"abc\"}", "{\"error\":{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *typed = cJSON_Parse(bad[i]);
        char err[200] = "";
        ck_assert_ptr_null(ce_native(typed, err, sizeof err));
        ck_assert_msg(err[0] != '\0', "%s", bad[i]);
        cJSON_Delete(typed);
    }
}
END_TEST

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", name);
    return v->valuestring;
}

START_TEST(test_rows)
{
    const char *topics[] = {X_NOVA_RWD, X_STAKED};
    struct ce_raw raw = {
        .id = "0000004294967300096-0000000002",
        .type = "contract",
        .contract_id = C1,
        .tx_hash = "ab12",
        .ledger_closed_at = "2025-01-01T00:00:05Z",
        .ledger = 1000,
        .transaction_index = 1,
        .in_successful_contract_call = true,
        .topic_xdr = topics,
        .topic_count = 2,
        .value_xdr = X_TUPLE,
    };
    /* decoded by the row itself (topics and value NULL) */
    cJSON *row = ce_row(&raw, st->scval_decode);
    ck_assert_ptr_nonnull(row);
    ck_assert_str_eq(str(row, "status"), "processed");
    ck_assert_str_eq(str(row, "event_type"), "nova_rwd:staked");
    ck_assert_str_eq(str(row, "event_id"), raw.id);
    ck_assert_str_eq(str(row, "contract_id"), C1);
    ck_assert_str_eq(str(row, "transaction_hash"), "ab12");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, "error_message")));
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(row, "ledger_sequence")->valueint, 1000);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(row, "event_data");
    cJSON *want = cJSON_Parse(
        "{\"id\":\"0000004294967300096-0000000002\",\"type\":\"contract\",\"contract_id\":\"" C1
        "\",\"ledger\":1000,\"ledger_closed_at\":\"2025-01-01T00:00:05Z\",\"tx_hash\":\"ab12\","
        "\"transaction_index\":1,\"operation_index\":0,\"in_successful_contract_call\":true,"
        "\"xdr\":{\"topics\":[\"" X_NOVA_RWD "\",\"" X_STAKED "\"],\"value\":\"" X_TUPLE "\"},"
        "\"topics\":[\"nova_rwd\",\"Staked\"],\"schema_version\":1,\"fields\":[\"" G1
        "\",\"-170141183460469231731687303715884105728\",\"18446744073709551615\"],"
        "\"value\":[1,\"" G1 "\",\"-170141183460469231731687303715884105728\","
        "\"18446744073709551615\"]}");
    char *text = cJSON_PrintUnformatted(d);
    ck_assert_msg(cJSON_Compare(d, want, true), "%s", text);
    free(text);
    cJSON_Delete(want);

    /* the retry pass reads the raw event back from event_data */
    const char *slots[8];
    struct ce_raw back;
    ck_assert_int_eq(ce_raw_from_data(d, &back, slots, 8), 0);
    ck_assert_str_eq(back.id, raw.id);
    ck_assert_uint_eq(back.topic_count, 2);
    ck_assert_str_eq(back.topic_xdr[1], X_STAKED);
    ck_assert_str_eq(back.value_xdr, X_TUPLE);
    ck_assert_uint_eq(back.ledger, 1000);
    ck_assert_str_eq(back.tx_hash, "ab12");
    cJSON *again = ce_row(&back, st->scval_decode);
    ck_assert(cJSON_Compare(again, row, true));
    cJSON_Delete(again);
    ck_assert_int_eq(ce_raw_from_data(cJSON_GetObjectItemCaseSensitive(d, "xdr"), &back, slots, 8),
                     -EINVAL);
    cJSON_Delete(row);

    /* pre-decoded topics and value (the RPC client's) give the same row */
    cJSON *dt = cJSON_CreateArray();
    cJSON_AddItemToArray(dt, decode(X_NOVA_RWD));
    cJSON_AddItemToArray(dt, decode(X_STAKED));
    cJSON *dv = decode(X_MAP);
    struct ce_raw pre = raw;
    pre.value_xdr = X_MAP;
    pre.topics = dt;
    pre.value = dv;
    row = ce_row(&pre, NULL);
    d = cJSON_GetObjectItemCaseSensitive(row, "event_data");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(d, "schema_version")->valueint, 2);
    ck_assert_str_eq(str(cJSON_GetObjectItemCaseSensitive(d, "fields"), "amount"), "5");
    cJSON_Delete(row);
    cJSON_Delete(dt);
    cJSON_Delete(dv);

    /* bad XDR: failed with its reason, the raw kept, the type from the topics */
    struct ce_raw bad = raw;
    bad.value_xdr = "AAAAEAAAAAEAAAAF"; /* a vec of 5 elements, truncated */
    row = ce_row(&bad, st->scval_decode);
    ck_assert_str_eq(str(row, "status"), "failed");
    ck_assert_str_eq(str(row, "event_type"), "nova_rwd:staked");
    ck_assert_ptr_nonnull(strstr(str(row, "error_message"), "value: "));
    d = cJSON_GetObjectItemCaseSensitive(row, "event_data");
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(d, "value"));
    ck_assert_str_eq(str(cJSON_GetObjectItemCaseSensitive(d, "xdr"), "value"), bad.value_xdr);
    cJSON_Delete(row);
    const char *bad_topics[] = {X_NOVA_RWD, "!!!"};
    bad = raw;
    bad.topic_xdr = bad_topics;
    row = ce_row(&bad, st->scval_decode);
    ck_assert_str_eq(str(row, "status"), "failed");
    ck_assert_str_eq(str(row, "event_type"), "contract");
    ck_assert_ptr_nonnull(strstr(str(row, "error_message"), "topic 2: "));
    cJSON_Delete(row);

    /* a type longer than the column: failed, stored under the tag */
    const char *long_topics[] = {"AAAADwAAABRhYWFhYWFhYWFhYWFhYWFhYWFhYQ==",
                                 "AAAADwAAAB5iYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmIAAA=="};
    bad = raw;
    bad.topic_xdr = long_topics;
    row = ce_row(&bad, st->scval_decode);
    ck_assert_str_eq(str(row, "status"), "failed");
    ck_assert_str_eq(str(row, "event_type"), "aaaaaaaaaaaaaaaaaaaa");
    ck_assert_ptr_nonnull(strstr(str(row, "error_message"), "longer than 50"));
    cJSON_Delete(row);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ce_logic");
    TCase *tc = tcase_create("logic");
    tcase_add_test(tc, test_contracts);
    tcase_add_test(tc, test_cursors);
    tcase_add_test(tc, test_event_type);
    tcase_add_test(tc, test_native);
    tcase_add_test(tc, test_rows);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
