/* `nova-worker stellar ...`: sign-payment against the vectors, and errors. */
#include "config.h"
#include <check.h>

#include "unit/testutil.h"
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "stellar/cmd_stellar.h"
#include "stellar_vectors.h"

static char out_buf[65536], err_buf[65536];

/* Runs the command with stdout/stderr captured into out_buf/err_buf. */
static int run(int argc, char **argv)
{
    char out_path[] = "/tmp/nova-stellar-out-XXXXXX", err_path[] = "/tmp/nova-stellar-err-XXXXXX";
    int ofd = mkstemp(out_path), efd = mkstemp(err_path);
    ck_assert_int_ge(ofd, 0);
    ck_assert_int_ge(efd, 0);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(ofd, 1);
    dup2(efd, 2);
    int rc = nova__cmd_stellar(NULL, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    ssize_t n = pread(ofd, out_buf, sizeof(out_buf) - 1, 0);
    out_buf[n > 0 ? n : 0] = '\0';
    n = pread(efd, err_buf, sizeof(err_buf) - 1, 0);
    err_buf[n > 0 ? n : 0] = '\0';
    close(ofd);
    close(efd);
    unlink(out_path);
    unlink(err_path);
    return rc;
}

static char secret_path[64];

static void write_secret(const char *text)
{
    snprintf(secret_path, sizeof(secret_path), "/tmp/nova-stellar-secret-XXXXXX");
    int fd = mkstemp(secret_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

START_TEST(sign_payment_vectors)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, vget(vectors(), "transactions"))
    {
        const cJSON *in = vget(t, "inputs");
        char line[200];
        snprintf(line, sizeof(line), "  %s\n", vstr(in, "source_secret"));
        write_secret(line); /* surrounding whitespace is ignored */
        char *argv[64];
        char strs[64][160];
        int argc = 0;
#define ARG(...)                                                                                   \
    do {                                                                                           \
        snprintf(strs[argc], sizeof(strs[argc]), __VA_ARGS__);                                     \
        argv[argc] = strs[argc];                                                                   \
        argc++;                                                                                    \
    } while (0)
        ARG("stellar");
        ARG("sign-payment");
        ARG("--network-passphrase");
        ARG("%s", vstr(in, "network_passphrase"));
        ARG("--source-secret-file=%s", secret_path);
        ARG("--sequence");
        ARG("%s", vstr(in, "tx_seq_num"));
        ARG("--fee");
        ARG("%d", vget(t, "outputs/fee_total")->valueint);
        ARG("--min-time");
        ARG("%.0f", vget(in, "time_bounds/min_time")->valuedouble);
        ARG("--max-time");
        ARG("%.0f", vget(in, "time_bounds/max_time")->valuedouble);
        ARG("--asset");
        ARG("%s:%s", vstr(in, "asset/code"), vstr(in, "asset/issuer"));
        if (cJSON_IsString(vget(in, "memo_text"))) {
            ARG("--memo-text");
            ARG("%s", vstr(in, "memo_text"));
        }
        const cJSON *p;
        cJSON_ArrayForEach(p, vget(in, "payments"))
        {
            ARG("--pay");
            ARG("%s:%s", vstr(p, "destination"), vstr(p, "amount"));
        }
#undef ARG
        int rc = run(argc, argv);
        unlink(secret_path);
        ck_assert_msg(rc == 0, "rc %d: %s", rc, err_buf);
        char want[2048];
        snprintf(want, sizeof(want), "%s\n%s\n", vstr(t, "outputs/signed_envelope_xdr_base64"),
                 vstr(t, "outputs/tx_hash_hex"));
        ck_assert_str_eq(out_buf, want);
        ck_assert_str_eq(err_buf, "");
    }
}
END_TEST

static void expect_usage(const char *reason, int argc, char **argv)
{
    int rc = run(argc, argv);
    ck_assert_msg(rc == 2, "rc %d for %s", rc, reason);
    ck_assert_msg(strstr(err_buf, reason) != NULL, "stderr \"%s\" lacks \"%s\"", err_buf, reason);
    ck_assert_str_eq(out_buf, "");
}

START_TEST(sign_payment_errors)
{
    write_secret(vstr(vectors(), "keys/source/secret"));
    const char *dest = vstr(vectors(), "keys/dest1/account_id");
    char pay[128], asset[128], bad_pay[128], file_opt[128];
    snprintf(pay, sizeof(pay), "%s:1.5", dest);
    snprintf(bad_pay, sizeof(bad_pay), "%s:1.123456789", dest);
    snprintf(asset, sizeof(asset), "NOVA:%s", vstr(vectors(), "keys/issuer/account_id"));
    snprintf(file_opt, sizeof(file_opt), "--source-secret-file=%s", secret_path);
    char *base[] = {"stellar", "sign-payment", "--network-passphrase",
                    "x",       file_opt,       "--sequence",
                    "5",       "--max-time",   "100",
                    "--asset", asset};
    char *argv[32];
    int n = (int)(sizeof(base) / sizeof(base[0]));
#define WITH(...)                                                                                  \
    do {                                                                                           \
        char *extra[] = {__VA_ARGS__};                                                             \
        memcpy(argv, base, sizeof(base));                                                          \
        memcpy(argv + n, extra, sizeof(extra));                                                    \
        argc = n + (int)(sizeof(extra) / sizeof(extra[0]));                                        \
    } while (0)
    int argc;
    WITH("--pay", pay);
    ck_assert_int_eq(run(argc, argv), 0);
    ck_assert_ptr_nonnull(strchr(out_buf, '\n'));

    WITH("--pay", bad_pay);
    expect_usage("--pay 1: amount \"1.123456789\" has more than 7 decimal places", argc, argv);
    WITH("--pay", "GABC:1");
    expect_usage("--pay 1: destination: invalid account id (G...): wrong length", argc, argv);
    WITH("--pay", "nocolon");
    expect_usage("expected DEST:AMOUNT", argc, argv);
    WITH("--pay", pay, "--fee", "-1");
    expect_usage("--fee \"-1\"", argc, argv);
    WITH("--pay", pay, "--fee", "4294967296");
    expect_usage("--fee \"4294967296\"", argc, argv);
    WITH("--pay", pay, "--min-time", "200");
    expect_usage("--min-time is after --max-time", argc, argv);
    WITH("--pay", pay, "--memo-text", "12345678901234567890123456789");
    expect_usage("--memo-text is 29 bytes", argc, argv);
    WITH("--pay", pay, "--bogus");
    expect_usage("unknown argument \"--bogus\"", argc, argv);
    WITH("--pay");
    expect_usage("--pay needs a value", argc, argv);
    WITH("--fee", "100");
    expect_usage("at least one --pay", argc, argv);
    WITH("--pay", pay, "--asset", "NOVA");
    expect_usage("--asset: asset \"NOVA\" is not native or CODE:ISSUER", argc, argv);
    WITH("--pay", pay, "--sequence", "9223372036854775808");
    expect_usage("--sequence \"9223372036854775808\"", argc, argv);
    WITH("--pay", pay, "--source-secret-file", "/nonexistent/secret");
    expect_usage("--source-secret-file: cannot open /nonexistent/secret", argc, argv);
    unlink(secret_path);

    /* A G... in the secret file is rejected without echoing it. */
    write_secret(dest);
    snprintf(file_opt, sizeof(file_opt), "--source-secret-file=%s", secret_path);
    WITH("--pay", pay);
    expect_usage("version byte", argc, argv);
    unlink(secret_path);

    char *no_max[] = {"stellar", "sign-payment", "--network-passphrase",
                      "x",       "--sequence",   "1",
                      "--asset", "native",       "--pay",
                      pay};
    expect_usage("--max-time is required", 10, no_max);
    char *no_secret[] = {"stellar", "sign-payment", "--network-passphrase",
                         "x",       "--sequence",   "1",
                         "--asset", "native",       "--pay",
                         pay,       "--max-time",   "9"};
    expect_usage("--source-secret-file is required", 12, no_secret);
#undef WITH
}
END_TEST

START_TEST(dispatch_and_decoders)
{
    char *help[] = {"stellar", "--help"};
    ck_assert_int_eq(run(2, help), 0);
    ck_assert_ptr_nonnull(strstr(out_buf, "sign-payment"));
    char *none[] = {"stellar"};
    ck_assert_int_eq(run(1, none), 2);
    char *unknown[] = {"stellar", "frobnicate"};
    ck_assert_int_eq(run(2, unknown), 2);
    ck_assert_ptr_nonnull(strstr(err_buf, "unknown command \"frobnicate\""));
    char *sp_help[] = {"stellar", "sign-payment", "--help"};
    ck_assert_int_eq(run(3, sp_help), 0);
    ck_assert_ptr_nonnull(strstr(out_buf, "--source-secret-file"));

    char *dr[] = {"stellar", "decode-result",
                  "AAAAAAAAASz/////AAAAAwAAAAAAAAABAAAAAAAAAAAAAAAB////+gAAAAAAAAABAAAAAAAAAAA="};
    ck_assert_int_eq(run(3, dr), 0);
    ck_assert_str_eq(out_buf, "{\"fee_charged\":\"300\",\"transaction\":\"tx_failed\",\"code\":-1,"
                              "\"operations\":[\"op_success\",\"op_no_trust\",\"op_success\"]}\n");
    char *dr_bad[] = {"stellar", "decode-result", "AAAA"};
    ck_assert_int_eq(run(3, dr_bad), 1);
    ck_assert_ptr_nonnull(strstr(err_buf, "malformed TransactionResult"));
    /* decode-envelope: hash and the verified signer. */
    char env_b64[1024], pass[128];
    snprintf(env_b64, sizeof(env_b64), "%s",
             vstr(vectors(), "transactions/0/outputs/signed_envelope_xdr_base64"));
    snprintf(pass, sizeof(pass), "%s", vstr(vectors(), "transactions/0/inputs/network_passphrase"));
    char *de[] = {"stellar", "decode-envelope", "--network-passphrase", pass, env_b64};
    ck_assert_int_eq(run(5, de), 0);
    cJSON *j = cJSON_Parse(out_buf);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "hash")->valuestring,
                     vstr(vectors(), "transactions/0/outputs/tx_hash_hex"));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "sequence")->valuestring,
                     vstr(vectors(), "transactions/0/inputs/tx_seq_num"));
    const cJSON *sig = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "signatures"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(sig, "signer")->valuestring,
                     vstr(vectors(), "keys/source/account_id"));
    const cJSON *op = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "operations"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(op, "amount")->valuestring, "12.5000000");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "memo"), "value")->valuestring,
                     "nova-reward-42");
    cJSON_Delete(j);
    /* On another network the signature does not verify and the hash differs. */
    char *de_pub[] = {"stellar", "decode-envelope", "--network-passphrase",
                      "Public Global Stellar Network ; September 2015", env_b64};
    ck_assert_int_eq(run(5, de_pub), 0);
    ck_assert_ptr_nonnull(strstr(out_buf, "\"signer\":null"));
    char *de_bad[] = {"stellar", "decode-envelope", "AAAAAQ=="};
    ck_assert_int_eq(run(3, de_bad), 1);
    ck_assert_ptr_nonnull(strstr(err_buf, "only v1 transaction envelopes"));

    char *ds[] = {"stellar", "decode-scval", "AAAADwAAAARtaW50", "AAAACv////////////////////s="};
    ck_assert_int_eq(run(4, ds), 0);
    ck_assert_str_eq(out_buf, "{\"symbol\":\"mint\"}\n{\"i128\":\"-5\"}\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stellar_cmd");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sign_payment_vectors);
    tcase_add_test(tc, sign_payment_errors);
    tcase_add_test(tc, dispatch_and_decoders);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
