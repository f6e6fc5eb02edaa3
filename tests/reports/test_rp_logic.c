/*
 * Unit tests of the reports plugin's pure parts (its sources linked in):
 * JavaScript's Number::toString and JSON.stringify as Nova's Node process
 * prints them (the expected strings were printed by node 20), postgres-date's
 * reading of PostgreSQL timestamps, node-pg's typing of values, params and
 * Nova's cache key, Nova's statements per filter (JavaScript truthiness),
 * RFC 4180 fields, the MIME message, the report file names and their ages,
 * and the config checks and schedules of a config the host fills from a
 * file.
 */
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "common/conf.h"

#include "../../plugins/reports/rp_json.c"
#include "../../plugins/reports/rp_csv.c"
#include "../../plugins/reports/rp_sql.c"
#include "../../plugins/reports/rp_mail.c"
#include "../../plugins/reports/rp_keep.c"
#include "../../plugins/reports/rp_run.c"
#include "../../plugins/reports/reports.c"

static const char *num(double v)
{
    static char s[40];
    rp_js_number(v, s, sizeof s);
    return s;
}

START_TEST(js_numbers)
{
    ck_assert_str_eq(num(0), "0");
    ck_assert_str_eq(num(-0.0), "0");
    ck_assert_str_eq(num(1), "1");
    ck_assert_str_eq(num(-1.5), "-1.5");
    ck_assert_str_eq(num(0.1), "0.1");
    ck_assert_str_eq(num(1e21), "1e+21");
    ck_assert_str_eq(num(1e20), "100000000000000000000");
    ck_assert_str_eq(num(123456789012345680000.0), "123456789012345680000");
    ck_assert_str_eq(num(12345678901234567890.0), "12345678901234567000");
    ck_assert_str_eq(num(1e-7), "1e-7");
    ck_assert_str_eq(num(1.5e-7), "1.5e-7");
    ck_assert_str_eq(num(-1e-7), "-1e-7");
    ck_assert_str_eq(num(0.000001), "0.000001");
    ck_assert_str_eq(num(0.0000015), "0.0000015");
    ck_assert_str_eq(num(2e3), "2000");
    ck_assert_str_eq(num(5e-324), "5e-324");
    ck_assert_str_eq(num(1.7976931348623157e308), "1.7976931348623157e+308");
    ck_assert_str_eq(num(0.1 + 0.2), "0.30000000000000004");
    ck_assert_str_eq(num(1.23e-5), "0.0000123");
    ck_assert_str_eq(num(123.456), "123.456");
    ck_assert_str_eq(num(4.35), "4.35");
    ck_assert_str_eq(num(9007199254740993.0), "9007199254740992");
    ck_assert_str_eq(num(1234567.1234567), "1234567.1234567");
    ck_assert_str_eq(num(1.0 / 3), "0.3333333333333333");
    ck_assert_str_eq(num(NAN), "NaN");
    ck_assert_str_eq(num(-INFINITY), "-Infinity");
    struct nova_buf b = {0};
    rp_json_number(&b, INFINITY);
    rp_json_number(&b, NAN);
    ck_assert_str_eq(b.p, "nullnull");
    nova_buf_free(&b);
}
END_TEST

START_TEST(json_strings)
{
    struct nova_buf b = {0};
    const char s[] = "a\"b\\c\b\f\n\r\t\x01\x1f/\xc3\xa9\xe2\x80\xa8";
    rp_json_string(&b, s, sizeof s - 1);
    ck_assert_str_eq(b.p, "\"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001f/\xc3\xa9\xe2\x80\xa8\"");
    nova_buf_free(&b);
}
END_TEST

static const char *date(const char *pg)
{
    static char iso[40];
    int64_t ms;
    int rc = rp_pg_date_ms(pg, &ms);
    if (rc == 1)
        return "infinity";
    if (rc != 0)
        return "invalid";
    rp_iso_date(ms, iso, sizeof iso);
    return iso;
}

START_TEST(pg_dates)
{
    /* node -e 'console.log(require("postgres-date")(s).toISOString())' */
    ck_assert_str_eq(date("2024-06-01 12:34:56.123456+00"), "2024-06-01T12:34:56.123Z");
    ck_assert_str_eq(date("2024-06-01 12:34:56.999999+05:30"), "2024-06-01T07:04:56.999Z");
    ck_assert_str_eq(date("2024-06-01 12:34:56-08"), "2024-06-01T20:34:56.000Z");
    ck_assert_str_eq(date("0099-12-31 23:59:59.5+00"), "0099-12-31T23:59:59.500Z");
    ck_assert_str_eq(date("2024-02-29"), "2024-02-29T00:00:00.000Z");
    ck_assert_str_eq(date("1999-12-31 23:59:59.0005+00"), "1999-12-31T23:59:59.000Z");
    ck_assert_str_eq(date("0044-03-15 12:00:00+00 BC"), "-000043-03-15T12:00:00.000Z");
    ck_assert_str_eq(date("2024-06-01 00:00:00.57+00"), "2024-06-01T00:00:00.570Z");
    ck_assert_str_eq(date("2024-06-01 00:00:00.29+00"), "2024-06-01T00:00:00.290Z");
    ck_assert_str_eq(date("12345-01-01 00:00:00+00"), "+012345-01-01T00:00:00.000Z");
    ck_assert_str_eq(date("2024-06-01 12:34:56.123+01:02:03"), "2024-06-01T11:32:53.123Z");
    ck_assert_str_eq(date("2024-06-01 12:34:56.123"), "2024-06-01T12:34:56.123Z");
    ck_assert_str_eq(date("infinity"), "infinity");
    ck_assert_str_eq(date("-infinity"), "infinity");
    ck_assert_str_eq(date("not a date"), "invalid");
    ck_assert_str_eq(date("2024-13-01"), "invalid");
}
END_TEST

static const char *value(enum rp_kind k, const char *text)
{
    static struct nova_buf b;
    nova_buf_free(&b);
    rp_value_json(&b, k, text);
    return b.p;
}

static const char *cell(enum rp_kind k, const char *text)
{
    static struct nova_buf b;
    nova_buf_free(&b);
    rp_value_text(&b, k, text);
    return b.p != NULL ? b.p : "";
}

START_TEST(node_pg_values)
{
    ck_assert_int_eq(rp_kind_of_oid(23), RP_K_INT);
    ck_assert_int_eq(rp_kind_of_oid(20), RP_K_TEXT); /* int8: a string */
    ck_assert_int_eq(rp_kind_of_oid(1700), RP_K_TEXT);
    ck_assert_int_eq(rp_kind_of_oid(701), RP_K_FLOAT);
    ck_assert_int_eq(rp_kind_of_oid(1184), RP_K_DATE);
    ck_assert_int_eq(rp_kind_of_oid(3802), RP_K_JSON);
    ck_assert_str_eq(value(RP_K_INT, "-42"), "-42");
    ck_assert_str_eq(value(RP_K_TEXT, "123.4500000"), "\"123.4500000\"");
    ck_assert_str_eq(value(RP_K_TEXT, NULL), "null");
    ck_assert_str_eq(value(RP_K_FLOAT, "1e+21"), "1e+21");
    ck_assert_str_eq(value(RP_K_FLOAT, "NaN"), "null");
    ck_assert_str_eq(value(RP_K_FLOAT, "-Infinity"), "null");
    ck_assert_str_eq(value(RP_K_BOOL, "t"), "true");
    ck_assert_str_eq(value(RP_K_BOOL, "f"), "false");
    ck_assert_str_eq(value(RP_K_DATE, "2024-06-01 12:34:56.123456+00"),
                     "\"2024-06-01T12:34:56.123Z\"");
    ck_assert_str_eq(value(RP_K_DATE, "infinity"), "null");
    /* JSON.stringify(JSON.parse(x)), as node 20 printed it */
    ck_assert_str_eq(
        value(RP_K_JSON,
              "{\"b\": {\"z\": 1, \"a\": 2}, \"10\": 1, \"2\": [1.50, 2e3, true, null, 0.1], "
              "\"\xc3\xa9\": \"\xe6\x97\xa5\", \"x\": \"a\\u0001\\t\\\"\\\\/\", \"01\": 0, "
              "\"4294967295\": 1, \"4294967294\": 2, \"-1\": 3, \"big\": 12345678901234567890, "
              "\"k\": 1, \"k\": 2}"),
        "{\"2\":[1.5,2000,true,null,0.1],\"10\":1,\"4294967294\":2,\"b\":{\"z\":1,\"a\":2},"
        "\"\xc3\xa9\":\"\xe6\x97\xa5\",\"x\":\"a\\u0001\\t\\\"\\\\/\",\"01\":0,\"4294967295\":1,"
        "\"-1\":3,\"big\":12345678901234567000,\"k\":2}");
    /* the same values as CSV cells */
    ck_assert_str_eq(cell(RP_K_TEXT, NULL), "");
    ck_assert_str_eq(cell(RP_K_TEXT, "a,b"), "a,b");
    ck_assert_str_eq(cell(RP_K_INT, "7"), "7");
    ck_assert_str_eq(cell(RP_K_BOOL, "t"), "true");
    ck_assert_str_eq(cell(RP_K_DATE, "2024-02-29"), "2024-02-29T00:00:00.000Z");
    ck_assert_str_eq(cell(RP_K_JSON, "{\"a\": [1, 2.50]}"), "{\"a\":[1,2.5]}");
}
END_TEST

static char *key_of(enum rp_type t, const char *params_json, char *err, size_t errlen, int *rc)
{
    cJSON *p = params_json != NULL ? cJSON_Parse(params_json) : NULL;
    struct rp_params ps;
    *rc = rp_params_parse(p, &ps, err, errlen);
    cJSON_Delete(p);
    if (*rc != 0)
        return NULL;
    char *k = rp_cache_key(t, &ps);
    rp_params_free(&ps);
    return k;
}

START_TEST(params_and_cache_key)
{
    char err[200];
    int rc;
    char *k = key_of(RP_USER, NULL, err, sizeof err, &rc);
    ck_assert_str_eq(k, "report:user");
    free(k);
    k = key_of(RP_TRANSACTION, "{\"txType\":\"a\",\"merchantId\":7,\"endDate\":null}", err,
               sizeof err, &rc);
    ck_assert_str_eq(k, "report:transaction:merchantId=7&txType=a");
    free(k);
    k = key_of(RP_CAMPAIGN, "{\"startDate\":\"\",\"merchantId\":0,\"endDate\":\"2024-01-01\"}", err,
               sizeof err, &rc);
    ck_assert_str_eq(k, "report:campaign:endDate=2024-01-01&merchantId=0&startDate=");
    free(k);
    k = key_of(RP_REVENUE, "{\"merchantId\":1.5e21}", err, sizeof err, &rc);
    ck_assert_str_eq(k, "report:revenue:merchantId=1.5e+21");
    free(k);
    ck_assert_ptr_null(key_of(RP_USER, "{\"merchantID\":1}", err, sizeof err, &rc));
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_str_eq(err, "params.merchantID: unknown filter (merchantId, startDate, endDate, "
                          "txType)");
    ck_assert_ptr_null(key_of(RP_USER, "{\"txType\":true}", err, sizeof err, &rc));
    ck_assert_str_eq(err, "params.txType must be a string, a number or null");
    ck_assert_ptr_null(
        key_of(RP_USER, "{\"txType\":\"a\",\"txType\":\"b\"}", err, sizeof err, &rc));
    ck_assert_str_eq(err, "params.txType is given twice");
    ck_assert_ptr_null(key_of(RP_USER, "[]", err, sizeof err, &rc));

    /* JSON.stringify(params): the order given, values as JavaScript prints them */
    cJSON *p = cJSON_Parse("{\"txType\":\"a\\\"b\",\"merchantId\":3.0,\"endDate\":null}");
    struct rp_params ps;
    ck_assert_int_eq(rp_params_parse(p, &ps, err, sizeof err), 0);
    struct nova_buf b = {0};
    rp_params_json(&b, &ps);
    ck_assert_str_eq(b.p, "{\"txType\":\"a\\\"b\",\"merchantId\":3,\"endDate\":null}");
    nova_buf_free(&b);
    rp_params_free(&ps);
    cJSON_Delete(p);
}
END_TEST

/* Nova's statements: a filter exactly for a truthy value, $n in push order. */
START_TEST(statements)
{
    struct rp_catalog cat = {.tx_amount_sum = RP_K_TEXT};
    struct rp_params ps = {0};
    struct rp_plan plan;
    ck_assert_int_eq(rp_params_set(&ps, RP_P_END, "2024-02-01"), 0);
    ck_assert_int_eq(rp_params_set(&ps, RP_P_MERCHANT, ""), 0);
    ck_assert_int_eq(rp_plan_build(&plan, RP_USER, &ps, &cat), 0);
    ck_assert_int_eq(plan.nstmt, 2);
    ck_assert_ptr_nonnull(
        strstr(plan.stmt[0].sql, "WHERE is_deleted = FALSE AND created_at <= $1"));
    ck_assert_ptr_nonnull(
        strstr(plan.stmt[1].sql, "WHERE referred_by IS NOT NULL AND created_at <= $1"));
    ck_assert_int_eq(plan.stmt[1].nparams, 1);
    ck_assert_str_eq(plan.stmt[1].params[0], "2024-02-01");
    rp_plan_free(&plan);
    ck_assert_int_eq(rp_plan_build(&plan, RP_CAMPAIGN, &ps, &cat), 0);
    ck_assert_ptr_nonnull(strstr(plan.stmt[0].sql, " WHERE c.created_at <= $1 GROUP BY c.id"));
    rp_plan_free(&plan);
    rp_params_free(&ps);

    memset(&ps, 0, sizeof ps);
    rp_params_set(&ps, RP_P_TXTYPE, "refund");
    rp_params_set(&ps, RP_P_START, "2024-01-01");
    rp_params_set(&ps, RP_P_MERCHANT, "3");
    ck_assert_int_eq(rp_plan_build(&plan, RP_TRANSACTION, &ps, &cat), 0);
    ck_assert_ptr_nonnull(strstr(plan.stmt[1].sql,
                                 "SELECT * FROM transactions WHERE merchant_id = $1 AND "
                                 "created_at >= $2 AND tx_type = $3 ORDER BY created_at DESC "
                                 "LIMIT 500"));
    ck_assert_str_eq(plan.stmt[1].params[0], "3");
    ck_assert_str_eq(plan.stmt[1].params[2], "refund");
    ck_assert_int_eq(plan.csv_from, -1);
    ck_assert_ptr_nonnull(strstr(plan.csv_cursor.sql, "ORDER BY created_at DESC"));
    ck_assert_ptr_null(strstr(plan.csv_cursor.sql, "LIMIT"));
    rp_plan_free(&plan);
    ck_assert_int_eq(rp_plan_build(&plan, RP_REVENUE, &ps, &cat), 0);
    ck_assert_ptr_nonnull(strstr(plan.stmt[0].sql, "WHERE tx_type IN ('distribution', "
                                                   "'redemption') AND t.created_at >= $1 GROUP"));
    ck_assert_int_eq(plan.stmt[0].nparams, 1);
    rp_plan_free(&plan);
    rp_params_free(&ps);
}
END_TEST

START_TEST(csv_fields)
{
    struct nova_buf b = {0};
    rp_csv_field(&b, "plain", 5, true);
    rp_csv_field(&b, "a,b", 3, false);
    rp_csv_field(&b, "say \"hi\"", 8, false);
    rp_csv_field(&b, "two\nlines", 9, false);
    rp_csv_field(&b, "cr\r", 3, false);
    rp_csv_field(&b, "", 0, false);
    rp_csv_field(&b, "\xe6\x97\xa5\xe6\x9c\xac", 6, false);
    rp_csv_end_row(&b);
    ck_assert_str_eq(b.p, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\r\",,"
                          "\xe6\x97\xa5\xe6\x9c\xac\r\n");
    nova_buf_free(&b);
}
END_TEST

START_TEST(mime_message)
{
    static const char *const to[] = {"a@x.test", "b@x.test", NULL};
    static const char csv[] = "h1,h2\r\n1,\"x,y\"\r\n";
    struct rp_mail_parts m = {
        .from = "reports@x.test",
        .to = to,
        .subject = "Nova daily user report 2024-06-30",
        .body = "line 1\nline 2",
        .filename = "nova-user-report-2024-06-30.csv",
        .attachment = csv,
        .attachment_len = sizeof csv - 1,
        .date_ms = 1719792000000LL, /* 2024-07-01T00:00:00Z, a Monday */
        .message_id = "<1@x>",
    };
    size_t len;
    char *msg = rp_mail_build(&m, &len);
    ck_assert_ptr_nonnull(msg);
    ck_assert_uint_eq(strlen(msg), len);
    ck_assert_ptr_nonnull(strstr(msg, "To: a@x.test, b@x.test\r\n"));
    ck_assert_ptr_nonnull(strstr(msg, "Date: Mon, 01 Jul 2024 00:00:00 +0000\r\n"));
    ck_assert_ptr_nonnull(strstr(msg, "\r\n\r\nline 1\r\nline 2\r\n--"));
    ck_assert_ptr_nonnull(strstr(msg, "filename=\"nova-user-report-2024-06-30.csv\""));
    /* base64 of the CSV bytes */
    ck_assert_ptr_nonnull(strstr(msg, "\r\n\r\naDEsaDINCjEsIngseSINCg==\r\n--"));
    for (const char *p = msg; (p = strchr(p, '\n')) != NULL; p++)
        ck_assert_int_eq(p[-1], '\r');
    free(msg);
    /* a non-ASCII subject and body, no header injection */
    m.subject = "R\xc3\xa9sum\xc3\xa9\r\nBcc: evil@x.test";
    m.body = "caf\xc3\xa9";
    m.filename = NULL;
    msg = rp_mail_build(&m, &len);
    ck_assert_ptr_null(strstr(msg, "\r\nBcc:"));
    ck_assert_ptr_nonnull(strstr(msg, "Subject: =?UTF-8?B?"));
    ck_assert_ptr_nonnull(strstr(msg, "Content-Transfer-Encoding: base64\r\n\r\nY2Fmw6k=\r\n"));
    ck_assert_ptr_null(strstr(msg, "attachment"));
    free(msg);
}
END_TEST

START_TEST(file_names)
{
    char name[128];
    rp_file_name(name, sizeof name, RP_TRANSACTION, "2024-06-30");
    ck_assert_str_eq(name, "nova-transaction-report-2024-06-30.csv");
    int64_t end;
    int group;
    bool tmp;
    ck_assert_int_eq(rp_file_parse(name, &end, &group, &tmp), 1);
    ck_assert_int_eq(end, rp_days(2024, 7, 1));
    ck_assert_int_eq(group, RP_TRANSACTION * RP_NPERIODS + RP_DAILY);
    ck_assert(!tmp);
    /* ISO week 2024-W01 is 2024-01-01 (a Monday) .. 2024-01-07 */
    ck_assert_int_eq(rp_file_parse("nova-user-report-2024-W01.csv", &end, &group, &tmp), 1);
    ck_assert_int_eq(end, rp_days(2024, 1, 8));
    /* 2021-W01 starts on 2021-01-04 */
    ck_assert_int_eq(rp_file_parse("nova-user-report-2021-W01.csv", &end, &group, &tmp), 1);
    ck_assert_int_eq(end, rp_days(2021, 1, 11));
    ck_assert_int_eq(rp_file_parse("nova-revenue-report-2024-12.csv", &end, &group, &tmp), 1);
    ck_assert_int_eq(end, rp_days(2025, 1, 1));
    ck_assert_int_eq(group, RP_REVENUE * RP_NPERIODS + RP_MONTHLY);
    ck_assert_int_eq(rp_file_parse(".nova-user-report-2024-06-30.csv.tmp", &end, &group, &tmp), 1);
    ck_assert(tmp);
    ck_assert_int_eq(rp_file_parse("nova-user-report-latest.csv", &end, &group, &tmp), 0);
    ck_assert_int_eq(rp_file_parse("nova-users-report-2024-06-30.csv", &end, &group, &tmp), 0);
    ck_assert_int_eq(rp_file_parse("nova-user-report-2024-06-30.csv.bak", &end, &group, &tmp), 0);
    ck_assert_int_eq(rp_file_parse("notes.txt", &end, &group, &tmp), 0);
    ck_assert_int_eq(rp_file_parse(".nova-user-report-2024-06-30.csv", &end, &group, &tmp), 0);
}
END_TEST

START_TEST(type_lists)
{
    unsigned set;
    char err[160];
    ck_assert_int_eq(rp_type_list(" user,campaign  revenue,", &set, err, sizeof err), 0);
    ck_assert_uint_eq(set, (1u << RP_USER) | (1u << RP_CAMPAIGN) | (1u << RP_REVENUE));
    ck_assert_int_eq(rp_type_list("", &set, err, sizeof err), 0);
    ck_assert_uint_eq(set, 0);
    ck_assert_int_eq(rp_type_list("user, transactions", &set, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "\"transactions\""));
}
END_TEST

/* ---- config and schedules, filled by the host from a file ---------------------- */

static struct nova__config *conf;
static void *cfg;

static int fill(const char *lines, char *err, size_t errlen)
{
    const struct nova_plugin *p = nova_plugin_entry();
    const struct nova__plugin_section *section = NULL;
    if (lines != NULL) {
        const char *dir = tu_tempdir();
        char text[2048], path[PATH_MAX];
        snprintf(text, sizeof text, "[plugin reports]\nenabled = yes\n%s", lines);
        tu_write(dir, "test.conf", text, path, sizeof path);
        char lerr[512] = "";
        ck_assert_msg(nova__config_load(path, &conf, lerr, sizeof lerr) == 0, "%s", lerr);
        tu_rmtree(dir);
        section = nova__config_plugin(conf, "reports");
        ck_assert_ptr_nonnull(section);
    }
    return nova__config_fill(p->config, p->config_size, conf, section, &cfg, err, errlen);
}

static void cfg_teardown(void)
{
    nova__config_struct_free(nova_plugin_entry()->config, cfg);
    cfg = NULL;
    nova__config_free(conf);
    conf = NULL;
    unsetenv("REPORT_CACHE_TTL");
}

START_TEST(config_defaults)
{
    char err[256] = "";
    ck_assert_int_eq(fill(NULL, err, sizeof err), 0);
    const struct rp_config *c = cfg;
    ck_assert_int_eq(c->cache_ttl, 300);
    ck_assert_int_eq(c->keep_days, 90);
    ck_assert(c->smtp_starttls);
    struct nova_schedule s[NOVA_SCHEDULES_MAX];
    ck_assert_int_eq(rp_schedules(cfg, s, NOVA_SCHEDULES_MAX, err, sizeof err), 0);
}
END_TEST

START_TEST(config_schedules)
{
    char err[256] = "";
    setenv("REPORT_CACHE_TTL", "120", 1);
    ck_assert_int_eq(fill("daily = user, transaction\nmonthly = revenue\ntimezone = Europe/Paris\n"
                          "output_dir = /srv/reports\n",
                          err, sizeof err),
                     0);
    ck_assert_int_eq(((const struct rp_config *)cfg)->cache_ttl, 120);
    struct nova_schedule s[NOVA_SCHEDULES_MAX];
    ck_assert_int_eq(rp_schedules(cfg, s, NOVA_SCHEDULES_MAX, err, sizeof err), 2);
    ck_assert_str_eq(s[0].id, "reports-daily");
    ck_assert_str_eq(s[0].queue, "reports");
    ck_assert_str_eq(s[0].job_name, "scheduled");
    ck_assert_str_eq(s[0].spec, "5 0 * * *");
    ck_assert_str_eq(s[0].timezone, "Europe/Paris");
    ck_assert_str_eq(s[0].data_json, "{\"period\":\"daily\"}");
    ck_assert_str_eq(s[1].id, "reports-monthly");
    ck_assert_str_eq(s[1].spec, "15 0 1 * *");
    ck_assert_str_eq(s[1].data_json, "{\"period\":\"monthly\"}");
    ck_assert_int_eq(rp_schedules(cfg, s, 1, err, sizeof err), -ENOSPC);
}
END_TEST

START_TEST(config_refused)
{
    char err[256] = "";
    struct nova_schedule s[NOVA_SCHEDULES_MAX];
    ck_assert_int_eq(fill("weekly = user, users\n", err, sizeof err), 0);
    ck_assert_int_eq(rp_schedules(cfg, s, NOVA_SCHEDULES_MAX, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "weekly: unknown report type \"users\" (user, campaign, transaction, "
                          "revenue)");
    cfg_teardown();
    ck_assert_int_eq(fill("daily = user\noutput_dir = relative/dir\n", err, sizeof err), 0);
    ck_assert_int_eq(rp_schedules(cfg, s, NOVA_SCHEDULES_MAX, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "output_dir must be an absolute path");
    cfg_teardown();
    ck_assert_int_eq(fill("smtp_url = smtp://mail.test\nmail_from = r@x.test\n", err, sizeof err),
                     0);
    ck_assert_int_eq(rp_schedules(cfg, s, NOVA_SCHEDULES_MAX, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "smtp_url is set: mail_to must list at least one address");
    cfg_teardown();
    ck_assert_int_eq(fill("smtp_url = smtp://mail.test\nmail_from = r@x.test\n"
                          "mail_to = a@x.test, b c@x.test\n",
                          err, sizeof err),
                     0);
    ck_assert_int_eq(rp_schedules(cfg, s, NOVA_SCHEDULES_MAX, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "mail_to: \"b c@x.test\" is not an address");
    cfg_teardown();
    ck_assert_int_eq(fill("smtp_url = http://mail.test\n", err, sizeof err), 0);
    ck_assert_int_eq(rp_schedules(cfg, s, NOVA_SCHEDULES_MAX, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "smtp_url must start with smtps:// or smtp://");
    cfg_teardown();
    ck_assert_int_eq(fill("daily = user\ndaily_schedule =\n", err, sizeof err), 0);
    ck_assert_int_eq(rp_schedules(cfg, s, NOVA_SCHEDULES_MAX, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "daily lists reports but daily_schedule is empty");
    cfg_teardown();
    ck_assert_int_ne(fill("cache_ttl = 0\n", err, sizeof err), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rp_logic");
    TCase *t = tcase_create("logic");
    tcase_add_test(t, js_numbers);
    tcase_add_test(t, json_strings);
    tcase_add_test(t, pg_dates);
    tcase_add_test(t, node_pg_values);
    tcase_add_test(t, params_and_cache_key);
    tcase_add_test(t, statements);
    tcase_add_test(t, csv_fields);
    tcase_add_test(t, mime_message);
    tcase_add_test(t, file_names);
    tcase_add_test(t, type_lists);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("config");
    tcase_add_checked_fixture(c, NULL, cfg_teardown);
    tcase_add_test(c, config_defaults);
    tcase_add_test(c, config_schedules);
    tcase_add_test(c, config_refused);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
