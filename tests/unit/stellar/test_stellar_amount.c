/* Exact decimal <-> stroops conversion. */
#include "config.h"
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stellar/stellar.h"
#include "stellar/stellar_amount.h"
#include "stellar_vectors.h"

START_TEST(vector_amounts)
{
    const cJSON *t;
    int count = 0;
    cJSON_ArrayForEach(t, vget(vectors(), "transactions"))
    {
        const cJSON *p;
        cJSON_ArrayForEach(p, vget(t, "inputs/payments"))
        {
            int64_t v;
            char err[200];
            ck_assert_int_eq(nova__amount_parse(vstr(p, "amount"), 0, &v, err, sizeof(err)), 0);
            ck_assert_int_eq(v, strtoll(vstr(p, "amount_stroops"), NULL, 10));
            count++;
        }
    }
    ck_assert_int_eq(count, 5);
}
END_TEST

START_TEST(good)
{
    const struct {
        const char *text;
        int64_t stroops;
        const char *canonical;
    } cases[] = {
        {"12.5", 125000000, "12.5000000"},
        {"250.75", 2507500000, "250.7500000"},
        {"0.0000001", 1, "0.0000001"},
        {"1", 10000000, "1.0000000"},
        {"007.1", 71000000, "7.1000000"},
        {"922337203685.4775807", INT64_MAX, "922337203685.4775807"},
        {"922337203685", 9223372036850000000, "922337203685.0000000"},
        {"0.1234567", 1234567, "0.1234567"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = -1;
        char err[200], buf[NOVA_AMOUNT_MAX];
        ck_assert_msg(nova__amount_parse(cases[i].text, 0, &v, err, sizeof(err)) == 0, "%s: %s",
                      cases[i].text, err);
        ck_assert_int_eq(v, cases[i].stroops);
        ck_assert_int_eq(nova__amount_format(v, buf, sizeof(buf)), (int)strlen(cases[i].canonical));
        ck_assert_str_eq(buf, cases[i].canonical);
        /* The canonical form parses back to the same value. */
        ck_assert_int_eq(nova__amount_parse(buf, 0, &v, err, sizeof(err)), 0);
        ck_assert_int_eq(v, cases[i].stroops);
    }
    int64_t v;
    ck_assert_int_eq(nova__amount_parse("0", NOVA_AMOUNT_ALLOW_ZERO, &v, NULL, 0), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(nova__amount_parse("0.0000000", NOVA_AMOUNT_ALLOW_ZERO, &v, NULL, 0), 0);
}
END_TEST

START_TEST(bad)
{
    const struct {
        const char *text;
        const char *reason;
    } cases[] = {
        {NULL, "empty"},
        {"", "empty"},
        {"-1", "negative"},
        {"-0.5", "negative"},
        {"0", "greater than zero"},
        {"0.0000000", "greater than zero"},
        {"1.00000001", "more than 7 decimal places"},
        {"1.00000000", "more than 7 decimal places"},
        {"922337203685.4775808", "too large"},
        {"922337203686", "too large"},
        {"99999999999999999999999", "too large"},
        {"1e7", "unexpected 'e'"},
        {"1,5", "unexpected ','"},
        {" 1", "must start with a digit"},
        {"1 ", "unexpected ' '"},
        {"+1", "must start with a digit"},
        {".5", "must start with a digit"},
        {"5.", "no digits after"},
        {"0x10", "unexpected 'x'"},
        {"NaN", "must start with a digit"},
        {"1.2.3", "unexpected '.'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = 42;
        char err[200] = "";
        ck_assert_int_eq(nova__amount_parse(cases[i].text, 0, &v, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, cases[i].reason) != NULL, "%s: \"%s\" lacks \"%s\"",
                      cases[i].text ? cases[i].text : "(null)", err, cases[i].reason);
        ck_assert_int_eq(v, 42); /* untouched on error */
    }
}
END_TEST

START_TEST(format_edges)
{
    char buf[NOVA_AMOUNT_MAX];
    ck_assert_int_eq(nova__amount_format(0, buf, sizeof(buf)), 9);
    ck_assert_str_eq(buf, "0.0000000");
    ck_assert_int_eq(nova__amount_format(-1, buf, sizeof(buf)), 10);
    ck_assert_str_eq(buf, "-0.0000001");
    ck_assert_int_eq(nova__amount_format(INT64_MIN, buf, sizeof(buf)), 21);
    ck_assert_str_eq(buf, "-922337203685.4775808");
    ck_assert_int_eq(nova__amount_format(INT64_MAX, buf, 5), -ENOSPC);
    ck_assert_int_eq(nova__stellar_offline_api.amount_format(125000000, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "12.5000000");
    /* Exhaustive round trip over a stride of the whole positive range. */
    for (int64_t v = 1; v > 0 && v < INT64_MAX - 9007199254740993; v += 9007199254740993) {
        int64_t back;
        ck_assert_int_gt(nova__amount_format(v, buf, sizeof(buf)), 0);
        ck_assert_int_eq(nova__amount_parse(buf, 0, &back, NULL, 0), 0);
        ck_assert_int_eq(back, v);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stellar_amount");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, vector_amounts);
    tcase_add_test(tc, good);
    tcase_add_test(tc, bad);
    tcase_add_test(tc, format_edges);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
