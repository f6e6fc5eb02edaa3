/* Outbound guard rules and the Retry-After rule, without any traffic. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_client.h"
#include "http/http_guard.h"

struct ip_case {
    const char *ip;
    int want;        /* 0 allowed, -EACCES refused */
    const char *why; /* substring of the reason when refused */
};

static const struct ip_case ip_cases[] = {
    {"127.0.0.1", -EACCES, "loopback"},
    {"127.255.255.254", -EACCES, "loopback"},
    {"10.0.0.1", -EACCES, "private (10.0.0.0/8)"},
    {"172.16.0.1", -EACCES, "172.16.0.0/12"},
    {"172.31.255.255", -EACCES, "172.16.0.0/12"},
    {"192.168.1.1", -EACCES, "192.168.0.0/16"},
    {"100.64.0.1", -EACCES, "100.64.0.0/10"},
    {"100.127.255.255", -EACCES, "100.64.0.0/10"},
    {"169.254.169.254", -EACCES, "cloud metadata"},
    {"0.0.0.0", -EACCES, "unspecified"},
    {"224.0.0.251", -EACCES, "multicast"},
    {"255.255.255.255", -EACCES, "broadcast"},
    {"198.18.0.1", -EACCES, "benchmarking"},
    {"::1", -EACCES, "loopback"},
    {"::", -EACCES, "unspecified"},
    {"fc00::1", -EACCES, "unique local"},
    {"fd12:3456::1", -EACCES, "unique local"},
    {"fe80::1", -EACCES, "link-local"},
    {"ff02::1", -EACCES, "multicast"},
    {"::ffff:127.0.0.1", -EACCES, "IPv4-mapped"},
    {"::ffff:10.0.0.1", -EACCES, "IPv4-mapped"},
    {"::ffff:169.254.169.254", -EACCES, "IPv4-mapped"},
    {"::10.0.0.1", -EACCES, "IPv4-compatible"},
    {"64:ff9b::a00:1", -EACCES, "NAT64"},
    {"2002:7f00:1::1", -EACCES, "6to4"},
    {"2001:db8::1", -EACCES, "documentation"},
    {"2001:0:4136:e378::1", -EACCES, "Teredo"},
    /* public addresses pass (no connection is made by these checks) */
    {"8.8.8.8", 0, NULL},
    {"1.1.1.1", 0, NULL},
    {"100.63.255.255", 0, NULL},
    {"100.128.0.0", 0, NULL},
    {"172.15.255.255", 0, NULL},
    {"172.32.0.0", 0, NULL},
    {"169.253.255.255", 0, NULL},
    {"11.0.0.1", 0, NULL},
    {"2606:4700:4700::1111", 0, NULL},
    {"::ffff:8.8.8.8", 0, NULL},
    {"64:ff9b::808:808", 0, NULL},
    {"2002:808:808::1", 0, NULL},
};

START_TEST(test_ip_rules)
{
    const struct ip_case *k = &ip_cases[_i];
    char why[256] = "";
    int rc = nova__http_guard_check_ip(k->ip, 80, NULL, why, sizeof why);
    ck_assert_msg(rc == k->want, "%s: got %d want %d (%s)", k->ip, rc, k->want, why);
    if (k->why != NULL)
        ck_assert_msg(strstr(why, k->why) != NULL, "%s: reason '%s' lacks '%s'", k->ip, why,
                      k->why);
}
END_TEST

START_TEST(test_sockaddr_rules)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(443)};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    struct sockaddr un = {.sa_family = AF_UNIX};
    char why[256];

    inet_pton(AF_INET, "10.1.2.3", &in.sin_addr);
    ck_assert_int_eq(
        nova__http_guard_check_sockaddr((struct sockaddr *)&in, sizeof in, NULL, why, sizeof why),
        -EACCES);
    ck_assert_ptr_nonnull(strstr(why, "10.1.2.3"));
    inet_pton(AF_INET, "93.184.216.34", &in.sin_addr);
    ck_assert_int_eq(
        nova__http_guard_check_sockaddr((struct sockaddr *)&in, sizeof in, NULL, why, sizeof why),
        0);
    inet_pton(AF_INET6, "::ffff:192.168.0.1", &in6.sin6_addr);
    ck_assert_int_eq(
        nova__http_guard_check_sockaddr((struct sockaddr *)&in6, sizeof in6, NULL, why, sizeof why),
        -EACCES);
    /* a truncated length is never read past */
    ck_assert_int_eq(
        nova__http_guard_check_sockaddr((struct sockaddr *)&in6, 8, NULL, why, sizeof why),
        -EACCES);
    ck_assert_int_eq(nova__http_guard_check_sockaddr(&un, sizeof un, NULL, why, sizeof why),
                     -EACCES);
    ck_assert_int_eq(nova__http_guard_check_sockaddr(NULL, 0, NULL, why, sizeof why), -EACCES);
    ck_assert_int_eq(nova__http_guard_check_ip("not-an-ip", 80, NULL, why, sizeof why), -EACCES);
}
END_TEST

START_TEST(test_allow_list_is_exact)
{
    const struct nova__http_guard_allow allow[] = {{"127.0.0.1", 8080}, {NULL, 0}};
    ck_assert_int_eq(nova__http_guard_check_ip("127.0.0.1", 8080, allow, NULL, 0), 0);
    ck_assert_int_eq(nova__http_guard_check_ip("127.0.0.1", 8081, allow, NULL, 0), -EACCES);
    ck_assert_int_eq(nova__http_guard_check_ip("127.0.0.2", 8080, allow, NULL, 0), -EACCES);
}
END_TEST

/* A request's own allowance (nova_http_request.guard_allow). */
START_TEST(test_nets_parse)
{
    struct nova__http_guard_nets *n = NULL;
    char why[256] = "";

    ck_assert_int_eq(nova__http_guard_nets_parse(NULL, &n, why, sizeof why), 0);
    ck_assert_ptr_null(n);
    ck_assert_int_eq(nova__http_guard_nets_parse(" , \t", &n, why, sizeof why), 0);
    ck_assert_ptr_null(n);

    ck_assert_int_eq(nova__http_guard_nets_parse("10.0.0.0/8, 127.0.0.1 192.168.7.9/24,"
                                                 "fd00:1::/64 ::1 2001:db8::/0",
                                                 &n, why, sizeof why),
                     0);
    ck_assert_ptr_nonnull(n);
    ck_assert_uint_eq(n->n, 6);
    ck_assert_int_eq(n->net[0].family, AF_INET);
    ck_assert_uint_eq(n->net[0].bits, 8);
    ck_assert_uint_eq(n->net[1].bits, 32); /* an address alone is one host */
    ck_assert_uint_eq(n->net[2].bits, 24);
    ck_assert_uint_eq(n->net[2].addr[3], 0); /* host bits cleared */
    ck_assert_int_eq(n->net[3].family, AF_INET6);
    ck_assert_uint_eq(n->net[4].bits, 128);
    ck_assert_uint_eq(n->net[5].bits, 0);
    nova__http_guard_nets_free(n);

    static const char *const bad[] = {
        "10.0.0.0/33", "::/129",     "10.0.0.0/",    "10.0.0.0/8x",      "localhost",
        "10.0.0",      "0x7f.0.0.1", "127.0.0.1/-1", "10.0.0.0/8, nope", "1.2.3.4/0008",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        n = NULL;
        ck_assert_msg(nova__http_guard_nets_parse(bad[i], &n, why, sizeof why) == -EINVAL,
                      "'%s' was accepted", bad[i]);
        ck_assert_ptr_null(n);
        ck_assert_msg(strstr(why, "allowed networks") != NULL, "%s: %s", bad[i], why);
    }
}
END_TEST

START_TEST(test_nets_let_listed_addresses_through)
{
    struct nova__http_guard_nets *n = NULL;
    char why[256];

    ck_assert_int_eq(
        nova__http_guard_nets_parse("127.0.0.1/32, 10.20.0.0/16, fd00:1::/64", &n, why, sizeof why),
        0);
    /* listed: passes, on any port */
    ck_assert_int_eq(nova__http_guard_check_ip_nets("127.0.0.1", 80, NULL, n, why, sizeof why), 0);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("127.0.0.1", 9, NULL, n, why, sizeof why), 0);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("10.20.255.1", 443, NULL, n, why, sizeof why),
                     0);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("fd00:1::5", 443, NULL, n, why, sizeof why), 0);
    /* the IPv4 blocks also cover the IPv4-mapped form */
    ck_assert_int_eq(
        nova__http_guard_check_ip_nets("::ffff:127.0.0.1", 80, NULL, n, why, sizeof why), 0);
    /* neighbours stay refused, with the usual reason */
    ck_assert_int_eq(nova__http_guard_check_ip_nets("127.0.0.2", 80, NULL, n, why, sizeof why),
                     -EACCES);
    ck_assert_ptr_nonnull(strstr(why, "loopback"));
    ck_assert_int_eq(nova__http_guard_check_ip_nets("10.21.0.1", 80, NULL, n, why, sizeof why),
                     -EACCES);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("fd00:2::5", 80, NULL, n, why, sizeof why),
                     -EACCES);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("::1", 80, NULL, n, why, sizeof why), -EACCES);
    ck_assert_int_eq(
        nova__http_guard_check_ip_nets("169.254.169.254", 80, NULL, n, why, sizeof why), -EACCES);
    /* public addresses pass either way */
    ck_assert_int_eq(nova__http_guard_check_ip_nets("8.8.8.8", 80, NULL, n, why, sizeof why), 0);

    /* the same on sockets and on URL literals */
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    ck_assert_int_eq(nova__http_guard_check_sockaddr_nets((struct sockaddr *)&in, sizeof in, NULL,
                                                          n, why, sizeof why),
                     0);
    ck_assert_int_eq(
        nova__http_guard_check_sockaddr((struct sockaddr *)&in, sizeof in, NULL, why, sizeof why),
        -EACCES);
    ck_assert_int_eq(
        nova__http_guard_check_url_nets("http://127.0.0.1:8080/hook", NULL, n, why, sizeof why), 0);
    ck_assert_int_eq(
        nova__http_guard_check_url_nets("http://127.0.0.3:8080/hook", NULL, n, why, sizeof why),
        -EACCES);
    /* an allowance never lifts the scheme or user-information rules */
    ck_assert_int_eq(
        nova__http_guard_check_url_nets("gopher://127.0.0.1:70/", NULL, n, why, sizeof why),
        -EACCES);
    ck_assert_int_eq(
        nova__http_guard_check_url_nets("http://u:p@127.0.0.1:8080/", NULL, n, why, sizeof why),
        -EACCES);
    /* no allowance: nothing matches */
    ck_assert(!nova__http_guard_nets_match(NULL, AF_INET, &in.sin_addr));
    nova__http_guard_nets_free(n);

    /* a /0 lets every address of its family through */
    ck_assert_int_eq(nova__http_guard_nets_parse("0.0.0.0/0", &n, why, sizeof why), 0);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("10.1.2.3", 80, NULL, n, why, sizeof why), 0);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("::1", 80, NULL, n, why, sizeof why), -EACCES);
    nova__http_guard_nets_free(n);
    /* odd prefix lengths */
    ck_assert_int_eq(nova__http_guard_nets_parse("172.16.0.0/12 fe80::/10", &n, why, sizeof why),
                     0);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("172.31.255.255", 80, NULL, n, why, sizeof why),
                     0);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("172.32.0.1", 80, NULL, n, why, sizeof why), 0);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("fe80::1", 80, NULL, n, why, sizeof why), 0);
    ck_assert_int_eq(nova__http_guard_check_ip_nets("fec0::1", 80, NULL, n, why, sizeof why),
                     -EACCES);
    nova__http_guard_nets_free(n);
}
END_TEST

struct url_case {
    const char *url;
    int want;
    const char *why;
};

static const struct url_case url_cases[] = {
    {"https://hooks.example.com/nova", 0, NULL},
    {"http://hooks.example.com:8080/x?y=1", 0, NULL},
    {"HTTPS://Hooks.Example.com/", 0, NULL},
    {"https://[2606:4700:4700::1111]/", 0, NULL},
    {"ftp://hooks.example.com/", -EACCES, "scheme 'ftp'"},
    {"file:///etc/passwd", -EACCES, "scheme 'file'"},
    {"gopher://127.0.0.1:6379/_FLUSHALL", -EACCES, "scheme"},
    {"dict://127.0.0.1:6379/", -EACCES, "scheme"},
    {"https://user:pw@hooks.example.com/", -EACCES, "user information"},
    {"https://hooks.example.com@10.0.0.1/", -EACCES, "user information"},
    {"http://127.0.0.1/", -EACCES, "loopback"},
    {"http://10.0.0.1/", -EACCES, "10.0.0.0/8"},
    {"http://169.254.169.254/latest/meta-data/", -EACCES, "cloud metadata"},
    {"http://[::1]:8080/", -EACCES, "loopback"},
    {"http://[::ffff:127.0.0.1]/", -EACCES, "IPv4-mapped"},
    {"http://[fe80::1%25eth0]/", -EACCES, "link-local"},
    {"http://2130706433/", -EACCES, "loopback"},
    {"http://0x7f.1/", -EACCES, "loopback"},
    {"http://0/", -EACCES, "unspecified"},
    {"not a url", -EINVAL, "malformed URL"},
    {"", -EINVAL, "empty URL"},
    {"http://:80/", -EINVAL, NULL},
};

START_TEST(test_url_rules)
{
    const struct url_case *k = &url_cases[_i];
    char why[256] = "";
    int rc = nova__http_guard_check_url(k->url, NULL, why, sizeof why);
    ck_assert_msg(rc == k->want, "%s: got %d want %d (%s)", k->url, rc, k->want, why);
    if (k->why != NULL)
        ck_assert_msg(strstr(why, k->why) != NULL, "%s: reason '%s' lacks '%s'", k->url, why,
                      k->why);
}
END_TEST

START_TEST(test_https_only_rule)
{
    char why[256];
    ck_assert_int_eq(nova__http_guard_check_https("https://hooks.example.com/", why, sizeof why),
                     0);
    ck_assert_int_eq(nova__http_guard_check_https("HTTPS://hooks.example.com/", why, sizeof why),
                     0);
    ck_assert_int_eq(nova__http_guard_check_https("http://hooks.example.com/", why, sizeof why),
                     -EACCES);
    ck_assert_ptr_nonnull(strstr(why, "https only"));
    ck_assert_int_eq(nova__http_guard_check_https("ftp://x/", why, sizeof why), -EACCES);
    ck_assert_int_eq(nova__http_guard_check_https("no url", why, sizeof why), -EINVAL);
    ck_assert_int_eq(nova__http_guard_check_https(NULL, why, sizeof why), -EINVAL);
}
END_TEST

START_TEST(test_retry_after_rule)
{
    const int64_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */

    ck_assert_int_eq(nova__http_retry_after_parse(429, "2", NULL, now), 2000);
    ck_assert_int_eq(nova__http_retry_after_parse(503, " 120 ", NULL, now), 120000);
    ck_assert_int_eq(nova__http_retry_after_parse(429, "0", NULL, now), 0);
    ck_assert_int_eq(nova__http_retry_after_parse(429, "Tue, 14 Nov 2023 22:13:50 GMT", NULL, now),
                     30000);
    /* the other two HTTP-date forms */
    ck_assert_int_eq(
        nova__http_retry_after_parse(503, "Tuesday, 14-Nov-23 22:13:25 GMT", NULL, now), 5000);
    ck_assert_int_eq(nova__http_retry_after_parse(503, "Tue Nov 14 22:13:21 2023", NULL, now),
                     1000);
    /* a date in the past: retry now */
    ck_assert_int_eq(nova__http_retry_after_parse(429, "Tue, 14 Nov 2023 22:00:00 GMT", NULL, now),
                     0);
    /* capped at a day, no overflow */
    ck_assert_int_eq(nova__http_retry_after_parse(429, "99999999999999999999999", NULL, now),
                     86400000);
    /* Horizon's X-RateLimit-Reset when Retry-After is absent or garbage */
    ck_assert_int_eq(nova__http_retry_after_parse(429, NULL, "7", now), 7000);
    ck_assert_int_eq(nova__http_retry_after_parse(429, "soon", "3", now), 3000);
    /* retryable, no hint */
    ck_assert_int_eq(nova__http_retry_after_parse(503, NULL, NULL, now), 0);
    ck_assert_int_eq(nova__http_retry_after_parse(503, "-5", NULL, now), 0);
    /* not retryable */
    ck_assert_int_eq(nova__http_retry_after_parse(200, "5", NULL, now), -1);
    ck_assert_int_eq(nova__http_retry_after_parse(500, "5", NULL, now), -1);
    ck_assert_int_eq(nova__http_retry_after_parse(0, NULL, NULL, now), -1);
    ck_assert_int_eq(nova__http_retry_after_ms(NULL), -1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http_guard");
    TCase *t = tcase_create("rules");
    tcase_add_loop_test(t, test_ip_rules, 0, (int)(sizeof ip_cases / sizeof ip_cases[0]));
    tcase_add_test(t, test_sockaddr_rules);
    tcase_add_test(t, test_allow_list_is_exact);
    tcase_add_test(t, test_nets_parse);
    tcase_add_test(t, test_nets_let_listed_addresses_through);
    tcase_add_loop_test(t, test_url_rules, 0, (int)(sizeof url_cases / sizeof url_cases[0]));
    tcase_add_test(t, test_https_only_rule);
    tcase_add_test(t, test_retry_after_rule);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
