#include "config.h"
#include "common/log.h"
#include "unit/testutil.h"

#include <cjson/cJSON.h>
#include <fcntl.h>

static const char *redact(const char *in)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s", in);
    nova__log_redact(buf);
    return buf;
}

#define SEED "SBGWSG6BTNCKCOB3DIFBGCVMUPQFYPA2G4O34RMTB343OYPXU5DJDVMN"

START_TEST(stellar_seeds_are_masked)
{
    const char *out = redact("signing with " SEED " now");
    ck_assert_ptr_null(strstr(out, SEED));
    ck_assert_str_eq(out, "signing with [REDACTED] now");
    /* Public keys (G...) and shorter S-words stay. */
    out = redact("GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H SECRETARY");
    ck_assert_str_eq(out, "GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H SECRETARY");
}
END_TEST

START_TEST(url_passwords_tokens_and_keyed_values)
{
    ck_assert_str_eq(redact("connect postgres://nova:hunter22@db:5432/nova failed"),
                     "connect postgres://nova:[REDACTED]@db:5432/nova failed");
    ck_assert_str_eq(redact("redis://:p4ss@127.0.0.1:6379"), "redis://:[REDACTED]@127.0.0.1:6379");
    ck_assert_str_eq(redact("Authorization: Bearer abc.def.ghi"),
                     "Authorization: Bearer [REDACTED]");
    ck_assert_str_eq(redact("host=db password=s3cret user=nova"),
                     "host=db password=[REDACTED] user=nova");
    ck_assert_str_eq(redact("{\"secret\":\"xyz\",\"ok\":1}"),
                     "{\"secret\":\"[REDACTED]\",\"ok\":1}");
    ck_assert_str_eq(redact("nothing to hide"), "nothing to hide");
}
END_TEST

START_TEST(registered_secrets_are_masked_everywhere)
{
    nova__log_add_secret("whsec_0123456789");
    nova__log_add_secret("ab"); /* too short to register */
    ck_assert_str_eq(redact("sig whsec_0123456789 and whsec_0123456789"),
                     "sig [REDACTED] and [REDACTED]");
    ck_assert_str_eq(redact("ab cab"), "ab cab");
    nova__log_clear_secrets();
    ck_assert_str_eq(redact("whsec_0123456789"), "whsec_0123456789");
}
END_TEST

START_TEST(lines_are_json_with_context_and_levels)
{
    char path[] = "/tmp/nova-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    nova__log_set_fd(fd);
    nova__log_set_level(NOVA_LOG_INFO);
    struct nova__log_ctx ctx = {.plugin = "echo", .queue = "q\"1", .job = "42"};
    nova__log(NOVA_LOG_INFO, &ctx, "paid %s with \"quotes\"\nand newline", SEED);
    nova__log(NOVA_LOG_DEBUG, NULL, "hidden at info level");
    nova__log_error("plain");
    nova__log_set_fd(-1);
    close(fd);

    FILE *f = fopen(path, "r");
    char line[4096];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    cJSON *j = cJSON_Parse(line);
    ck_assert_msg(j != NULL, "not JSON: %s", line);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "level")->valuestring, "info");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "plugin")->valuestring, "echo");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "queue")->valuestring, "q\"1");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "job")->valuestring, "42");
    const char *msg = cJSON_GetObjectItem(j, "msg")->valuestring;
    ck_assert_str_eq(msg, "paid [REDACTED] with \"quotes\"\nand newline");
    ck_assert_int_eq(strlen(cJSON_GetObjectItem(j, "ts")->valuestring), 24);
    cJSON_Delete(j);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_nonnull(strstr(line, "\"msg\":\"plain\""));
    ck_assert_ptr_null(fgets(line, sizeof line, f)); /* the debug line was filtered */
    fclose(f);
    unlink(path);
}
END_TEST

START_TEST(level_names)
{
    enum nova_log_level l;
    ck_assert_int_eq(nova__log_level_parse("WARNING", &l), 0);
    ck_assert_int_eq(l, NOVA_LOG_WARN);
    ck_assert_int_eq(nova__log_level_parse("debug", &l), 0);
    ck_assert_int_eq(l, NOVA_LOG_DEBUG);
    ck_assert_int_ne(nova__log_level_parse("verbose", &l), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, stellar_seeds_are_masked);
    tcase_add_test(tc, url_passwords_tokens_and_keyed_values);
    tcase_add_test(tc, registered_secrets_are_masked_everywhere);
    tcase_add_test(tc, lines_are_json_with_context_and_levels);
    tcase_add_test(tc, level_names);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
