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

/* Logs one line per level to a fresh file and returns how many lines
 * started with their syslog priority ("<3>" for error ... "<7>" for
 * debug); every line must be the same JSON object behind the prefix. */
static int prefixed_lines(int fd, const char *path)
{
    static const enum nova_log_level levels[] = {NOVA_LOG_ERROR, NOVA_LOG_WARN, NOVA_LOG_INFO,
                                                 NOVA_LOG_DEBUG};
    static const char *const want[] = {"<3>", "<4>", "<6>", "<7>"};
    nova__log_set_level(NOVA_LOG_DEBUG);
    ck_assert_int_eq(ftruncate(fd, 0), 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    for (int i = 0; i < 4; i++)
        nova__log(levels[i], NULL, "line %d", i);
    nova__log_set_level(NOVA_LOG_INFO);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096];
    int prefixed = 0;
    for (int i = 0; i < 4; i++) {
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        const char *json = line;
        if (strncmp(line, want[i], 3) == 0) {
            prefixed++;
            json = line + 3;
        }
        ck_assert_msg(json[0] == '{', "neither a prefix nor JSON: %s", line);
        cJSON *j = cJSON_Parse(json);
        ck_assert_msg(j != NULL, "not JSON after the prefix: %s", line);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "level")->valuestring,
                         nova__log_level_name(levels[i]));
        char msg[16];
        snprintf(msg, sizeof msg, "line %d", i);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "msg")->valuestring, msg);
        cJSON_Delete(j);
    }
    ck_assert_ptr_null(fgets(line, sizeof line, f));
    fclose(f);
    return prefixed;
}

START_TEST(journal_stream_gets_syslog_priorities)
{
    char path[] = "/tmp/nova-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    char stream[64];
    unsetenv("NOVA_LOG_SYSLOG_PREFIX");

    /* Not under systemd: plain JSON lines. */
    unsetenv("JOURNAL_STREAM");
    nova__log_set_fd(fd);
    ck_assert_int_eq(nova__log_stream_is_journal(fd), 0);
    ck_assert_int_eq(prefixed_lines(fd, path), 0);

    /* JOURNAL_STREAM names this very descriptor: every line is prefixed. */
    snprintf(stream, sizeof stream, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", stream, 1);
    nova__log_set_fd(fd);
    ck_assert_int_eq(nova__log_stream_is_journal(fd), 1);
    ck_assert_int_eq(nova__log_syslog_prefix(), 1);
    ck_assert_int_eq(prefixed_lines(fd, path), 4);

    /* Inherited from a unit but pointing elsewhere (stderr redirected, a
     * child's pipe): not the journal. Garbage is not the journal either. */
    snprintf(stream, sizeof stream, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", stream, 1);
    nova__log_set_fd(fd);
    ck_assert_int_eq(prefixed_lines(fd, path), 0);
    setenv("JOURNAL_STREAM", "12:", 1);
    ck_assert_int_eq(nova__log_stream_is_journal(fd), 0);

    nova__log_set_fd(-1);
    unsetenv("JOURNAL_STREAM");
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(syslog_prefix_forced_on_or_off)
{
    char path[] = "/tmp/nova-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    char stream[64];
    snprintf(stream, sizeof stream, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);

    unsetenv("JOURNAL_STREAM");
    setenv("NOVA_LOG_SYSLOG_PREFIX", "yes", 1);
    nova__log_set_fd(fd);
    ck_assert_int_eq(prefixed_lines(fd, path), 4);

    setenv("JOURNAL_STREAM", stream, 1);
    setenv("NOVA_LOG_SYSLOG_PREFIX", "0", 1);
    nova__log_set_fd(fd);
    ck_assert_int_eq(prefixed_lines(fd, path), 0);

    setenv("NOVA_LOG_SYSLOG_PREFIX", "auto", 1);
    nova__log_set_fd(fd);
    ck_assert_int_eq(prefixed_lines(fd, path), 4);

    /* And from code, whatever the environment says. */
    nova__log_set_syslog_prefix(0);
    ck_assert_int_eq(prefixed_lines(fd, path), 0);
    nova__log_set_syslog_prefix(1);
    unsetenv("JOURNAL_STREAM");
    ck_assert_int_eq(prefixed_lines(fd, path), 4);
    nova__log_set_syslog_prefix(-1); /* auto again: no journal now */
    ck_assert_int_eq(prefixed_lines(fd, path), 0);

    ck_assert_int_eq(nova__log_syslog_priority(NOVA_LOG_ERROR), 3);
    ck_assert_int_eq(nova__log_syslog_priority(NOVA_LOG_WARN), 4);
    ck_assert_int_eq(nova__log_syslog_priority(NOVA_LOG_INFO), 6);
    ck_assert_int_eq(nova__log_syslog_priority(NOVA_LOG_DEBUG), 7);

    nova__log_set_fd(-1);
    unsetenv("NOVA_LOG_SYSLOG_PREFIX");
    close(fd);
    unlink(path);
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
    tcase_add_test(tc, journal_stream_gets_syslog_priorities);
    tcase_add_test(tc, syslog_prefix_forced_on_or_off);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
