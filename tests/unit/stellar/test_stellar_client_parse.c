/*
 * The Stellar client's parsers on their own: Horizon and RPC bodies with
 * missing or wrong fields, malformed XDR, and the getEvents request built
 * from a query (compared with the reference request of the vectors).
 */
#include "config.h"

#include <check.h>

#include "unit/testutil.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stellar/stellar_client.h"
#include "stellar_vectors.h"

static char err[600];

#define DIST   "GAYW7RQYHRUBBNBXZKIQDLW2OXD6ANPOWTH7A5SFQ6I245CY3RN6S2TT"
#define ISSUER "GBK33AQ2ZYSCUR2AQOCAWSE5ENJ36PUBZIKJVIODWAYWL35CS22K7OPW"

static const char *account_json =
    "{\"id\":\"" DIST "\",\"account_id\":\"" DIST "\",\"sequence\":\"4294967296123\","
    "\"subentry_count\":1,\"balances\":["
    "{\"balance\":\"1000.5000000\",\"limit\":\"922337203685.4775807\","
    "\"buying_liabilities\":\"0.0000000\",\"selling_liabilities\":\"0.0000000\","
    "\"is_authorized\":true,\"asset_type\":\"credit_alphanum4\",\"asset_code\":\"NOVA\","
    "\"asset_issuer\":\"" ISSUER "\"},"
    "{\"balance\":\"3.0000000\",\"liquidity_pool_id\":\"abcd\","
    "\"asset_type\":\"liquidity_pool_shares\"},"
    "{\"balance\":\"9999.9999900\",\"asset_type\":\"native\"}]}";

/* Parses account_json with one substitution applied (from -> to). */
static int account_with(const char *from, const char *to, struct nova_stellar_account *a,
                        struct nova_stellar_trustline *tl, size_t tl_max, cJSON **keep)
{
    char text[2048];
    const char *at = from ? strstr(account_json, from) : NULL;
    if (from != NULL)
        ck_assert_ptr_nonnull(at);
    if (at == NULL)
        snprintf(text, sizeof(text), "%s", account_json);
    else
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - account_json), account_json, to,
                 at + strlen(from));
    *keep = cJSON_Parse(text);
    ck_assert_ptr_nonnull(*keep);
    return nova__stellar_parse_account(*keep, a, tl, tl_max, err, sizeof(err));
}

START_TEST(test_account)
{
    struct nova_stellar_account a;
    struct nova_stellar_trustline tl[4];
    cJSON *j;
    ck_assert_int_eq(account_with(NULL, NULL, &a, tl, 4, &j), 0);
    ck_assert_str_eq(a.account_id, DIST);
    ck_assert_int_eq(a.sequence, 4294967296123LL);
    ck_assert_int_eq(a.native_balance, 99999999900LL);
    ck_assert_uint_eq(a.subentry_count, 1);
    ck_assert_uint_eq(a.trustline_count, 1); /* pool shares skipped */
    ck_assert_str_eq(a.trustlines[0].asset_code, "NOVA");
    ck_assert_str_eq(a.trustlines[0].asset_issuer, ISSUER);
    ck_assert_int_eq(a.trustlines[0].balance, 10005000000LL);
    ck_assert_int_eq(a.trustlines[0].limit, INT64_MAX);
    ck_assert(a.trustlines[0].authorized);
    cJSON_Delete(j);

    static const struct {
        const char *from, *to, *want;
    } bad[] = {
        {"\"sequence\":\"4294967296123\"", "\"sequence\":4294967296123",
         "\"sequence\" is not a string"},
        {"\"sequence\":\"4294967296123\"", "\"sequence\":\"12x\"", "\"sequence\" is not a 64-bit"},
        {"\"sequence\":\"4294967296123\"", "\"sequence\":\"99999999999999999999\"", "64-bit"},
        {"\"sequence\":\"4294967296123\",", "", "\"sequence\" is missing"},
        {"\"balance\":\"1000.5000000\"", "\"balance\":\"1e3\"", "balances[0]: \"balance\""},
        {"\"asset_code\":\"NOVA\",", "", "balances[0]: \"asset_code\" is missing"},
        {"\"is_authorized\":true", "\"is_authorized\":\"yes\"",
         "\"is_authorized\" is not a boolean"},
        {"{\"balance\":\"9999.9999900\",\"asset_type\":\"native\"}",
         "{\"balance\":\"1.0000000\",\"asset_type\":\"credit_alphanum4\"}", "balances[2]"},
        {"\"balances\":[", "\"balancez\":[", "\"balances\" is missing"},
        {"\"subentry_count\":1", "\"subentry_count\":-1", "\"subentry_count\" is not an unsigned"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(account_with(bad[i].from, bad[i].to, &a, tl, 4, &j), -EBADMSG);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err,
                      bad[i].want);
        cJSON_Delete(j);
    }
    /* No native balance at all. */
    ck_assert_int_eq(account_with(",{\"balance\":\"9999.9999900\",\"asset_type\":\"native\"}", "",
                                  &a, tl, 4, &j),
                     -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "no native"));
    cJSON_Delete(j);
    /* More trustlines than room. */
    ck_assert_int_eq(account_with(NULL, NULL, &a, tl, 0, &j), -EBADMSG);
    cJSON_Delete(j);
    /* Not an object. */
    j = cJSON_Parse("[1]");
    ck_assert_int_eq(nova__stellar_parse_account(j, &a, tl, 4, err, sizeof(err)), -EBADMSG);
    cJSON_Delete(j);
}
END_TEST

static const char *sample_xdr(const char *name)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, vget(vectors(), "horizon_result_xdr_samples"))
    {
        if (strcmp(vstr(s, "name"), name) == 0)
            return vstr(s, "result_xdr");
    }
    ck_abort_msg("no sample %s", name);
    return NULL;
}

START_TEST(test_transaction)
{
    char text[1024];
    struct nova__stellar_tx_holder *h = malloc(sizeof(*h));
    snprintf(text, sizeof(text),
             "{\"hash\":\"f08689af9d2f52e89ba1ad66a5efbd6afa80ff2efc984aed56ba387c17fef9a9\","
             "\"ledger\":1234,\"successful\":false,\"fee_charged\":\"300\","
             "\"created_at\":\"2025-01-01T00:00:05Z\",\"result_xdr\":\"%s\"}",
             sample_xdr("tx_failed_second_op_no_trust"));
    cJSON *j = cJSON_Parse(text);
    ck_assert_int_eq(nova__stellar_parse_tx(j, h, err, sizeof(err)), 0);
    ck_assert_uint_eq(h->info.ledger, 1234);
    ck_assert(!h->info.successful);
    ck_assert_int_eq(h->info.fee_charged, 300);
    ck_assert_str_eq(h->info.tx_code, "tx_failed");
    ck_assert_uint_eq(h->info.op_count, 3);
    ck_assert_str_eq(h->info.op_codes[0], "op_success");
    ck_assert_str_eq(h->info.op_codes[1], "op_no_trust");
    ck_assert_ptr_nonnull(h->info.result);
    ck_assert_int_eq(h->info.result->ops[1].result, -6);
    ck_assert_str_eq(h->info.envelope_xdr, "");
    cJSON_Delete(j);

    /* Undecodable result_xdr: still found, but no codes. */
    j = cJSON_Parse(
        "{\"hash\":\"f08689af9d2f52e89ba1ad66a5efbd6afa80ff2efc984aed56ba387c17fef9a9\","
        "\"ledger\":5,\"successful\":true,\"result_xdr\":\"AAAA\"}");
    ck_assert_int_eq(nova__stellar_parse_tx(j, h, err, sizeof(err)), 0);
    ck_assert_ptr_null(h->info.result);
    ck_assert_ptr_null(h->info.tx_code);
    ck_assert_int_eq(h->info.fee_charged, -1);
    cJSON_Delete(j);

    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"ledger\":5,\"successful\":true}", "\"hash\" is missing"},
        {"{\"hash\":\"zz\",\"ledger\":5,\"successful\":true}", "\"hash\" is not 64 hex"},
        {"{\"hash\":\"f08689af9d2f52e89ba1ad66a5efbd6afa80ff2efc984aed56ba387c17fef9a9\","
         "\"successful\":true}",
         "\"ledger\" is missing"},
        {"{\"hash\":\"f08689af9d2f52e89ba1ad66a5efbd6afa80ff2efc984aed56ba387c17fef9a9\","
         "\"ledger\":1.5,\"successful\":true}",
         "\"ledger\" is not an unsigned"},
        {"{\"hash\":\"f08689af9d2f52e89ba1ad66a5efbd6afa80ff2efc984aed56ba387c17fef9a9\","
         "\"ledger\":5,\"successful\":\"true\"}",
         "\"successful\" is not a boolean"},
        {"{\"hash\":\"f08689af9d2f52e89ba1ad66a5efbd6afa80ff2efc984aed56ba387c17fef9a9\","
         "\"ledger\":5,\"successful\":true,\"fee_charged\":\"x\"}",
         "\"fee_charged\""},
        {"\"text\"", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = cJSON_Parse(bad[i].json);
        ck_assert_ptr_nonnull(j);
        ck_assert_int_eq(nova__stellar_parse_tx(j, h, err, sizeof(err)), -EBADMSG);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "case %zu: \"%s\"", i, err);
        cJSON_Delete(j);
    }
    free(h);
}
END_TEST

START_TEST(test_transaction_failed)
{
    char text[1024];
    struct nova__stellar_tx_holder *h = malloc(sizeof(*h));
    snprintf(text, sizeof(text),
             "{\"type\":\"https://stellar.org/horizon-errors/transaction_failed\",\"status\":400,"
             "\"extras\":{\"envelope_xdr\":\"AAAA\",\"result_xdr\":\"%s\",\"result_codes\":"
             "{\"transaction\":\"tx_failed\",\"operations\":[\"op_underfunded\"]}}}",
             sample_xdr("tx_failed_op_underfunded"));
    cJSON *j = cJSON_Parse(text);
    ck_assert_int_eq(nova__stellar_parse_tx_failed(j, h, err, sizeof(err)), 0);
    ck_assert_str_eq(h->info.tx_code, "tx_failed");
    ck_assert_uint_eq(h->info.op_count, 1);
    ck_assert_str_eq(h->info.op_codes[0], "op_underfunded");
    ck_assert_ptr_nonnull(h->info.result);
    ck_assert_int_eq(h->info.result->ops[0].result, -2);
    ck_assert_int_eq(h->info.fee_charged, 100);
    ck_assert_uint_eq(h->info.ledger, 0);
    ck_assert_str_eq(h->info.envelope_xdr, "AAAA");
    cJSON_Delete(j);

    /* Codes without result_xdr are enough. */
    j = cJSON_Parse("{\"extras\":{\"result_codes\":{\"transaction\":\"tx_bad_seq\"}}}");
    ck_assert_int_eq(nova__stellar_parse_tx_failed(j, h, err, sizeof(err)), 0);
    ck_assert_str_eq(h->info.tx_code, "tx_bad_seq");
    ck_assert_ptr_null(h->info.result);
    cJSON_Delete(j);

    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{}", "without \"extras\""},
        {"{\"extras\":{}}", "\"extras.result_codes\" is missing"},
        {"{\"extras\":{\"result_codes\":{}}}", "extras.result_codes: \"transaction\" is missing"},
        {"{\"extras\":{\"result_codes\":{\"transaction\":\"tx_failed\",\"operations\":\"x\"}}}",
         "not an array"},
        {"{\"extras\":{\"result_codes\":{\"transaction\":\"tx_failed\",\"operations\":[1]}}}",
         "operation result code 1 is not a string"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = cJSON_Parse(bad[i].json);
        ck_assert_int_eq(nova__stellar_parse_tx_failed(j, h, err, sizeof(err)), -EBADMSG);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "case %zu: \"%s\"", i, err);
        cJSON_Delete(j);
    }
    free(h);
}
END_TEST

START_TEST(test_root_and_time)
{
    struct nova_stellar_ledger l;
    cJSON *j = cJSON_Parse("{\"history_latest_ledger\":1200,\"history_latest_ledger_closed_at\":"
                           "\"2025-01-01T00:00:05Z\",\"history_elder_ledger\":2,"
                           "\"core_latest_ledger\":1201,\"network_passphrase\":\"Test SDF "
                           "Network ; September 2015\"}");
    ck_assert_int_eq(nova__stellar_parse_root(j, &l, err, sizeof(err)), 0);
    ck_assert_uint_eq(l.sequence, 1200);
    ck_assert_int_eq(l.closed_at, 1735689605);
    ck_assert_uint_eq(l.elder_ledger, 2);
    ck_assert_uint_eq(l.core_ledger, 1201);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"history_latest_ledger\":1200,\"history_latest_ledger_closed_at\":"
                    "\"yesterday\",\"network_passphrase\":\"x\"}");
    ck_assert_int_eq(nova__stellar_parse_root(j, &l, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "RFC 3339"));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"history_latest_ledger\":1200,\"history_latest_ledger_closed_at\":"
                    "\"2025-01-01T00:00:05Z\"}");
    ck_assert_int_eq(nova__stellar_parse_root(j, &l, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "network_passphrase"));
    cJSON_Delete(j);

    int64_t t;
    ck_assert_int_eq(nova__stellar_parse_time("1970-01-01T00:00:00Z", &t), 0);
    ck_assert_int_eq(t, 0);
    ck_assert_int_eq(nova__stellar_parse_time("2025-01-01T00:00:05.250Z", &t), 0);
    ck_assert_int_eq(t, 1735689605);
    ck_assert_int_eq(nova__stellar_parse_time("2025-01-01T01:00:05+01:00", &t), 0);
    ck_assert_int_eq(t, 1735689605);
    ck_assert_int_eq(nova__stellar_parse_time("2024-12-31T23:00:05-01:00", &t), 0);
    ck_assert_int_eq(t, 1735689605);
    static const char *const bad[] = {"",
                                      "2025-01-01",
                                      "2025-01-01 00:00:05Z",
                                      "2025-13-01T00:00:05Z",
                                      "2025-01-01T00:00:05",
                                      "2025-01-01T00:00:05Zx",
                                      "2025-01-01T00:00:05.Z",
                                      "2025-01-01T00:00:05+1:00",
                                      NULL};
    for (size_t i = 0; bad[i] != NULL; i++)
        ck_assert_msg(nova__stellar_parse_time(bad[i], &t) == -EINVAL, "%s", bad[i]);
    ck_assert_int_eq(nova__stellar_parse_time(NULL, &t), -EINVAL);
}
END_TEST

START_TEST(test_events_reference_sample)
{
    const cJSON *result = vget(vectors(), "soroban/sample_get_events/response/result");
    struct nova__stellar_events_store s;
    ck_assert_int_eq(nova__stellar_parse_events(result, &s, err, sizeof(err)), 0);
    ck_assert_uint_eq(s.page.event_count, 1);
    ck_assert_str_eq(s.page.cursor, "0004294967296004096-0000000000");
    ck_assert_uint_eq(s.page.latest_ledger, 1000100);
    ck_assert_uint_eq(s.page.oldest_ledger, 879141);
    const struct nova_stellar_event *e = &s.page.events[0];
    ck_assert_str_eq(e->id, "0004294967296004096-0000000000");
    ck_assert_str_eq(e->paging_token, e->id);
    ck_assert_str_eq(e->type, "contract");
    ck_assert_uint_eq(e->ledger, 1000000);
    ck_assert_uint_eq(e->transaction_index, 1);
    ck_assert_str_eq(e->tx_hash,
                     "f08689af9d2f52e89ba1ad66a5efbd6afa80ff2efc984aed56ba387c17fef9a9");
    ck_assert_uint_eq(e->topic_count, 2);
    ck_assert_str_eq(e->topic_xdr[0], "AAAADwAAAARtaW50");
    char *t = cJSON_PrintUnformatted(e->topics), *v = cJSON_PrintUnformatted(e->value);
    char want[200];
    snprintf(want, sizeof(want), "[{\"symbol\":\"mint\"},{\"address\":\"%s\"}]",
             vstr(vectors(), "keys/dest1/account_id"));
    ck_assert_str_eq(t, want);
    ck_assert_str_eq(v, "{\"i128\":\"125000000\"}");
    cJSON_free(t);
    cJSON_free(v);
    nova__stellar_events_free(&s);
}
END_TEST

/* Replaces the first event member `key` of the sample with raw JSON. */
static int events_with(const char *key, const char *raw, struct nova__stellar_events_store *s)
{
    cJSON *result =
        cJSON_Duplicate(vget(vectors(), "soroban/sample_get_events/response/result"), 1);
    cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(result, "events"), 0);
    if (raw == NULL)
        cJSON_DeleteItemFromObjectCaseSensitive(ev, key);
    else
        cJSON_ReplaceItemInObjectCaseSensitive(ev, key, cJSON_Parse(raw));
    int rc = nova__stellar_parse_events(result, s, err, sizeof(err));
    cJSON_Delete(result);
    return rc;
}

START_TEST(test_events_malformed)
{
    struct nova__stellar_events_store s;
    static const struct {
        const char *key, *raw, *want;
    } bad[] = {
        {"value", "\"AAAA\"", "event 1 (id 0004294967296004096-0000000000): value:"},
        {"value", "\"AAAADw==\"", "value:"},
        {"value", "\"not base64\"", "value:"},
        {"value", NULL, "\"value\" is missing"},
        {"topic", "[\"AAAADwAAAARtaW50\",\"AAAAEgAAAAA=\"]", "topic 2:"},
        {"topic", "[7]", "topic 1 is not a string"},
        {"topic", "\"AAAADwAAAARtaW50\"", "\"topic\" is not an array"},
        {"id", NULL, "event 1: \"id\" is missing"},
        {"ledger", "\"1000000\"", "\"ledger\" is not an unsigned"},
        {"contractId", "\"GAYW7RQYHRUBBNBXZKIQDLW2OXD6ANPOWTH7A5SFQ6I245CY3RN6S2TT\"",
         "\"contractId\" is not a C"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(events_with(bad[i].key, bad[i].raw, &s), -EBADMSG);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "case %zu: \"%s\"", i, err);
        ck_assert_ptr_null(s.events);
    }
    /* Optional fields may be absent (older RPCs); topics may be missing. */
    ck_assert_int_eq(events_with("topic", NULL, &s), 0);
    ck_assert_uint_eq(s.page.events[0].topic_count, 0);
    ck_assert_int_eq(cJSON_GetArraySize(s.page.events[0].topics), 0);
    nova__stellar_events_free(&s);
    ck_assert_int_eq(events_with("txHash", NULL, &s), 0);
    ck_assert_str_eq(s.page.events[0].tx_hash, "");
    nova__stellar_events_free(&s);

    /* Page-level fields. */
    cJSON *r = cJSON_Parse("{\"events\":[],\"cursor\":\"x\"}");
    ck_assert_int_eq(nova__stellar_parse_events(r, &s, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "latestLedger"));
    cJSON_Delete(r);
    r = cJSON_Parse("{\"events\":{},\"latestLedger\":5}");
    ck_assert_int_eq(nova__stellar_parse_events(r, &s, err, sizeof(err)), -EBADMSG);
    cJSON_Delete(r);
    r = cJSON_Parse("{\"latestLedger\":5}");
    ck_assert_int_eq(nova__stellar_parse_events(r, &s, err, sizeof(err)), 0);
    ck_assert_uint_eq(s.page.event_count, 0);
    ck_assert_ptr_null(s.page.cursor);
    nova__stellar_events_free(&s);
    cJSON_Delete(r);
}
END_TEST

/* NOVA_STELLAR_EVENTS_KEEP_UNDECODABLE: an event whose XDR does not decode
 * comes with topics and value NULL and its raw base64; the page lives.
 * What is not XDR trouble still fails the page. */
START_TEST(test_events_keep_undecodable)
{
    static const char *const page =
        "{\"latestLedger\":9,\"cursor\":\"c\",\"events\":["
        "{\"id\":\"1\",\"type\":\"contract\",\"ledger\":5,\"topic\":[\"AAAADwAAAARtaW50\"],"
        "\"value\":\"AAAAAwAAAAE=\"},"
        "{\"id\":\"2\",\"type\":\"contract\",\"ledger\":5,\"topic\":[\"AAAADwAAAARtaW50\","
        "\"AAAADw==\",\"AAAAAwAAAAE=\"],\"value\":\"AAAAAwAAAAE=\"},"
        "{\"id\":\"3\",\"type\":\"contract\",\"ledger\":6,\"value\":\"AAAAEAAAAAEAAAAF\"},"
        "{\"id\":\"4\",\"type\":\"contract\",\"ledger\":6,\"topic\":[],\"value\":\"AAAAAQ==\"}]}";
    cJSON *r = cJSON_Parse(page);
    struct nova__stellar_events_store s;
    ck_assert_int_eq(nova__stellar_parse_events(r, &s, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "event 2 (id 2): topic 2:"));
    ck_assert_int_eq(nova__stellar_parse_events_flags(r, NOVA_STELLAR_EVENTS_KEEP_UNDECODABLE, &s,
                                                      err, sizeof(err)),
                     0);
    ck_assert_uint_eq(s.page.event_count, 4);
    const struct nova_stellar_event *e = s.page.events;
    ck_assert_ptr_nonnull(e[0].topics);
    ck_assert_ptr_nonnull(e[0].value);
    ck_assert_ptr_null(e[1].topics);
    ck_assert_ptr_null(e[1].value);
    ck_assert_uint_eq(e[1].topic_count, 3);
    ck_assert_str_eq(e[1].topic_xdr[1], "AAAADw==");
    ck_assert_str_eq(e[1].topic_xdr[2], "AAAAAwAAAAE=");
    ck_assert_ptr_null(e[2].value);
    ck_assert_ptr_null(e[2].topics);
    ck_assert_str_eq(e[2].value_xdr, "AAAAEAAAAAEAAAAF");
    ck_assert_ptr_nonnull(e[3].value);
    ck_assert_str_eq(e[3].topic_xdr == NULL ? "" : "ok", "ok");
    nova__stellar_events_free(&s);
    cJSON_Delete(r);
    /* a structural fault is never kept */
    r = cJSON_Parse("{\"latestLedger\":9,\"events\":[{\"id\":\"1\",\"type\":\"contract\","
                    "\"ledger\":5,\"topic\":[7],\"value\":\"AAAAAQ==\"}]}");
    ck_assert_int_eq(nova__stellar_parse_events_flags(r, NOVA_STELLAR_EVENTS_KEEP_UNDECODABLE, &s,
                                                      err, sizeof(err)),
                     -EBADMSG);
    cJSON_Delete(r);
}
END_TEST

START_TEST(test_events_params_reference)
{
    /* The reference request of the vectors, built from a query. */
    struct nova_stellar_event_filter f = {
        .type = "contract",
        .contract_ids = {"CAALUM5KAJR2NDIJRCOJAUEQP7QXWBP4Z7RLWY4FXQBNVIPWKFK4GQJO"},
        .topics = {{"AAAADwAAAARtaW50", "*"}, {"AAAADwAAAAVjbGFpbQAAAA==", "**"}},
    };
    struct nova_stellar_events_query q = {.struct_size = sizeof(q),
                                          .start_ledger = 1000000,
                                          .filters = &f,
                                          .filter_count = 1,
                                          .limit = 100};
    cJSON *p;
    ck_assert_int_eq(nova__stellar_events_params(&q, &p, err, sizeof(err)), 0);
    ck_assert(cJSON_Compare(p, vget(vectors(), "soroban/sample_get_events/request/params"), 1));
    cJSON_Delete(p);

    /* Cursor paging: no startLedger. */
    struct nova_stellar_events_query c = {.struct_size = sizeof(c), .cursor = "0000-1"};
    ck_assert_int_eq(nova__stellar_events_params(&c, &p, err, sizeof(err)), 0);
    char *text = cJSON_PrintUnformatted(p);
    ck_assert_str_eq(text, "{\"filters\":[],\"pagination\":{\"cursor\":\"0000-1\"}}");
    cJSON_free(text);
    cJSON_Delete(p);

    const struct {
        struct nova_stellar_events_query q;
        const char *want;
    } bad[] = {
        {{.struct_size = 4, .start_ledger = 1}, "struct_size"},
        {{.struct_size = sizeof(q)}, "start_ledger or cursor"},
        {{.struct_size = sizeof(q), .cursor = "x", .end_ledger = 9}, "cursor excludes"},
        {{.struct_size = sizeof(q), .start_ledger = 9, .end_ledger = 9}, "end_ledger"},
        {{.struct_size = sizeof(q), .start_ledger = 9, .filter_count = 6, .filters = &f},
         "at most 5"},
        {{.struct_size = sizeof(q), .start_ledger = 9, .limit = 10001}, "above 10000"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(nova__stellar_events_params(&bad[i].q, &p, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_null(p);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "case %zu: \"%s\"", i, err);
    }
    struct nova_stellar_event_filter bf = {.type = ""};
    q.filters = &bf;
    ck_assert_int_eq(nova__stellar_events_params(&q, &p, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "filter 1: type is empty"));
    struct nova_stellar_event_filter bt = {.topics = {{"*"}, {"AAAADwAAAARtaW50", "AAAA"}}};
    q.filters = &bt;
    ck_assert_int_eq(nova__stellar_events_params(&q, &p, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "topic filter 2 segment 2"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stellar_client_parse");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_account);
    tcase_add_test(tc, test_transaction);
    tcase_add_test(tc, test_transaction_failed);
    tcase_add_test(tc, test_root_and_time);
    tcase_add_test(tc, test_events_reference_sample);
    tcase_add_test(tc, test_events_malformed);
    tcase_add_test(tc, test_events_keep_undecodable);
    tcase_add_test(tc, test_events_params_reference);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
