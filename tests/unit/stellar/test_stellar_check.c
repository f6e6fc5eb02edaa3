/* `nova-worker stellar check` against the Horizon + RPC test double. */
#include "config.h"

#include <check.h>

#include "unit/testutil.h"
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stellar/cmd_stellar.h"
#include "common/conf.h"
#include "lib/testnet.h"

static struct testnet net;
static char out_buf[65536];

/* Runs `stellar check` (plus extra args) with stdout captured. */
static int run_check(const struct nova__config *cfg, const char *extra)
{
    char path[] = "/tmp/nova-check-out-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    char *argv[] = {"stellar", "check", (char *)(uintptr_t)extra, NULL};
    int rc = nova__cmd_stellar(cfg, extra ? 3 : 2, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    ssize_t n = pread(fd, out_buf, sizeof(out_buf) - 1, 0);
    out_buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return rc;
}

static int count_lines(const char *prefix)
{
    int n = 0;
    for (const char *p = out_buf; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            n++;
    return n;
}

static struct nova__config cfg;

static void suite_setup(void)
{
    static const char *const args[] = {"--ledger-close-ms", "200", NULL};
    if (testnet_start(&net, args) != 0 || testnet_setup(&net, 1, 0) != 0) {
        fprintf(stderr, "the Stellar test double did not start\n");
        exit(1);
    }
}

static void suite_teardown(void)
{
    testnet_stop(&net);
}

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.http.timeout_ms = 5000;
    cfg.http.connect_timeout_ms = 2000;
    cfg.stellar.network = "testnet";
    cfg.stellar.network_passphrase = net.passphrase;
    cfg.stellar.horizon_url = net.url;
    cfg.stellar.soroban_rpc_url = net.rpc_url;
    cfg.stellar.asset_code = "NOVA";
    cfg.stellar.asset_issuer = net.issuer;
    cfg.stellar.distribution_secret = net.dist_secret;
    cfg.stellar.base_fee = 100;
}

/* A new funded account without a NOVA trustline; its secret in out. */
static void new_account(const char *xlm, char out[57])
{
    char body[100];
    long status = 0;
    snprintf(body, sizeof(body), "{\"balance\":\"%s\"}", xlm);
    cJSON *a = testnet_call(&net, "POST", "/_admin/accounts", body, &status);
    ck_assert_int_eq(status, 201);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(a, "secret");
    ck_assert(cJSON_IsString(s));
    snprintf(out, 57, "%s", s->valuestring);
    cJSON_Delete(a);
}

START_TEST(test_all_ok)
{
    ck_assert_int_eq(run_check(&cfg, NULL), 0);
    ck_assert_int_eq(count_lines("error: "), 0);
    ck_assert_int_eq(count_lines("ok: "), 7);
    ck_assert_ptr_nonnull(strstr(out_buf, "ok: Horizon"));
    ck_assert_ptr_nonnull(strstr(out_buf, "Test SDF Network ; September 2015"));
    ck_assert_ptr_nonnull(strstr(out_buf, "issuer account"));
    ck_assert_ptr_nonnull(strstr(out_buf, " exists"));
    ck_assert_ptr_nonnull(strstr(out_buf, "ok: distribution account holds 1000000.0000000 NOVA"));
    ck_assert_ptr_nonnull(strstr(out_buf, "XLM (minimum balance 1.5000000 XLM)"));
    ck_assert_ptr_nonnull(strstr(out_buf, "is healthy"));
    /* The secret never appears. */
    ck_assert_ptr_null(strstr(out_buf, net.dist_secret));
}
END_TEST

START_TEST(test_wrong_network)
{
    cfg.stellar.network_passphrase = "Public Global Stellar Network ; September 2015";
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out_buf, "error: Horizon"));
    ck_assert_ptr_nonnull(strstr(out_buf, "serves the network \"Test SDF Network ; September "
                                          "2015\", but [stellar] network is \"Public Global"));
    ck_assert_int_eq(count_lines("error: "), 1);
}
END_TEST

START_TEST(test_distribution_problems)
{
    char secret[57];
    /* Funded, but no trustline. */
    new_account("100", secret);
    cfg.stellar.distribution_secret = secret;
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_ptr_nonnull(
        strstr(out_buf, "error: distribution account has no trustline for NOVA:"));
    ck_assert_int_eq(count_lines("error: "), 1);

    /* Only its minimum balance in XLM. */
    new_account("1", secret);
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out_buf, "not enough left to pay fees"));

    /* Never funded. */
    cJSON *kp = testnet_call(&net, "GET", "/_admin/keypair?label=nova-test/unfunded", NULL, NULL);
    snprintf(secret, sizeof(secret), "%s",
             cJSON_GetObjectItemCaseSensitive(kp, "secret")->valuestring);
    cJSON_Delete(kp);
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out_buf, "does not exist (fund it first)"));

    /* Not a seed; the message must not echo it. */
    cfg.stellar.distribution_secret = "SBADBADBADBADBADBADBADBADBADBADBADBADBADBADBADBADBADBADB";
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out_buf, "error: [stellar] distribution_secret"));
    ck_assert_ptr_null(strstr(out_buf, "SBADBADBAD"));
    ck_assert_ptr_nonnull(strstr(out_buf, "ok: Horizon")); /* the network is still checked */

    /* Not set. */
    cfg.stellar.distribution_secret = NULL;
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out_buf, "error: [stellar] distribution_secret is not set"));
}
END_TEST

START_TEST(test_issuer_problems)
{
    cfg.stellar.asset_issuer = "GABC";
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out_buf, "error: [stellar] asset_issuer is not an account id"));
    cfg.stellar.asset_issuer = net.dist_secret; /* a seed where a G... belongs */
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_ptr_null(strstr(out_buf, net.dist_secret));

    cJSON *kp = testnet_call(&net, "GET", "/_admin/keypair?label=nova-test/no-issuer", NULL, NULL);
    char issuer[57];
    snprintf(issuer, sizeof(issuer), "%s",
             cJSON_GetObjectItemCaseSensitive(kp, "public")->valuestring);
    cJSON_Delete(kp);
    cfg.stellar.asset_issuer = issuer;
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out_buf, "does not exist"));
    ck_assert_ptr_nonnull(strstr(out_buf, "error: distribution account has no trustline"));

    cfg.stellar.asset_issuer = net.dist; /* the distribution account itself */
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out_buf, "is the asset issuer"));
}
END_TEST

START_TEST(test_unreachable_and_usage)
{
    cfg.stellar.horizon_url = "http://127.0.0.1:1";
    cfg.stellar.soroban_rpc_url = "http://127.0.0.1:1/rpc";
    ck_assert_int_eq(run_check(&cfg, NULL), 1);
    ck_assert_int_eq(count_lines("error: "), 4);
    ck_assert_ptr_nonnull(strstr(out_buf, "error: Horizon http://127.0.0.1:1:"));
    ck_assert_ptr_nonnull(strstr(out_buf, "error: Stellar RPC http://127.0.0.1:1/rpc:"));

    setenv("NOVA_WORKER_CONFIG", "/nonexistent/nova-worker.conf", 1);
    ck_assert_int_eq(run_check(NULL, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out_buf, "error: no configuration: "
                                          "/nonexistent/nova-worker.conf does not exist"));
    unsetenv("NOVA_WORKER_CONFIG");

    ck_assert_int_eq(run_check(&cfg, "--help"), 0);
    ck_assert_ptr_nonnull(strstr(out_buf, "Usage: nova-worker stellar check"));
    ck_assert_int_eq(run_check(&cfg, "--bogus"), 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stellar_check");
    TCase *tc = tcase_create("check");
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_all_ok);
    tcase_add_test(tc, test_wrong_network);
    tcase_add_test(tc, test_distribution_problems);
    tcase_add_test(tc, test_issuer_problems);
    tcase_add_test(tc, test_unreachable_and_usage);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
