#include "config.h"
#include "common/metrics.h"
#include "unit/testutil.h"

static char *render(void)
{
    char *text;
    size_t len;
    ck_assert_int_eq(nova__metrics_render(&text, &len), 0);
    ck_assert_int_eq(strlen(text), len);
    return text;
}

START_TEST(counters_gauges_histograms_render)
{
    nova__metrics_reset();
    static const char *const labels[] = {"queue", "outcome", NULL};
    nova_metric *c =
        nova__metric_new(NOVA_METRIC_COUNTER, "nova_test_jobs_total", "Jobs.", labels, NULL, 0);
    ck_assert_ptr_nonnull(c);
    const char *v1[] = {"echo", "completed"};
    const char *v2[] = {"we\"ird\\q\n", "failed"};
    nova__metric_add(c, v1, 2);
    nova__metric_add(c, v1, 1);
    nova__metric_add(c, v2, 1);
    ck_assert(nova__metric_value(c, v1) == 3);

    nova_metric *g =
        nova__metric_new(NOVA_METRIC_GAUGE, "nova_test_depth", "Depth.", NULL, NULL, 0);
    nova__metric_set(g, NULL, 7.5);
    static const double buckets[] = {0.1, 1};
    nova_metric *h =
        nova__metric_new(NOVA_METRIC_HISTOGRAM, "nova_test_seconds", "Latency.", NULL, buckets, 2);
    nova__metric_observe(h, NULL, 0.05);
    nova__metric_observe(h, NULL, 0.5);
    nova__metric_observe(h, NULL, 5);

    /* The same registration returns the same metric; a conflicting one fails. */
    ck_assert_ptr_eq(
        nova__metric_new(NOVA_METRIC_COUNTER, "nova_test_jobs_total", "x", labels, NULL, 0), c);
    ck_assert_ptr_null(
        nova__metric_new(NOVA_METRIC_GAUGE, "nova_test_jobs_total", "x", labels, NULL, 0));
    ck_assert_ptr_null(nova__metric_new(NOVA_METRIC_GAUGE, "bad-name", "x", NULL, NULL, 0));

    char *text = render();
    ck_assert_ptr_nonnull(strstr(text, "# TYPE nova_test_jobs_total counter\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "nova_test_jobs_total{queue=\"echo\",outcome=\"completed\"} 3\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "nova_test_jobs_total{queue=\"we\\\"ird\\\\q\\n\",outcome=\"failed\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "nova_test_depth 7.5\n"));
    ck_assert_ptr_nonnull(strstr(text, "nova_test_seconds_bucket{le=\"0.1\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "nova_test_seconds_bucket{le=\"1\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "nova_test_seconds_bucket{le=\"+Inf\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "nova_test_seconds_count 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "nova_test_seconds_sum 5.55"));
    ck_assert_ptr_nonnull(strstr(text, "process_resident_memory_bytes "));
    ck_assert_int_eq(text[strlen(text) - 1], '\n');

    /* promtool is the reference parser of the exposition format. */
    ck_assert_msg(strcmp(PROMTOOL, "no") != 0, "promtool not found: apt-get install prometheus");
    char path[] = "/tmp/nova-metrics-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s check metrics < %s 2>&1", PROMTOOL, path);
    FILE *p = popen(cmd, "r");
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    unlink(path);
    ck_assert_msg(status == 0, "promtool rejected the exposition: %s", out);
    free(text);
    nova__metrics_reset();
}
END_TEST

START_TEST(touch_creates_zero_series_and_prune_drops_others)
{
    static const char *const labels[] = {"queue", "state", NULL};
    static const char *const qp[] = {"queue", "plugin", NULL};
    nova_metric *g = nova__metric_new(NOVA_METRIC_GAUGE, "nova_test_count", "x", labels, NULL, 0);
    nova_metric *h =
        nova__metric_new(NOVA_METRIC_HISTOGRAM, "nova_test_wait_seconds", "x", qp, NULL, 0);
    const char *a_wait[] = {"a", "waiting"};
    const char *a_done[] = {"a", "completed"};
    const char *b_wait[] = {"b", "waiting"};
    const char *c_wait[] = {"c", "waiting"};
    const char *hq[] = {"a", "echo"};

    /* touch: a series at 0 that a later add/observe continues; touching an
     * existing series changes nothing. */
    nova__metric_touch(g, a_wait);
    ck_assert(nova__metric_value(g, a_wait) == 0.0);
    nova__metric_set(g, a_wait, 5);
    nova__metric_touch(g, a_wait);
    ck_assert(nova__metric_value(g, a_wait) == 5.0);
    nova__metric_touch(h, hq);
    ck_assert(nova__metric_value(h, hq) == 0.0);
    nova__metric_touch(NULL, hq);
    char *text;
    size_t len;
    ck_assert_int_eq(nova__metrics_render(&text, &len), 0);
    ck_assert_ptr_nonnull(
        strstr(text, "nova_test_wait_seconds_count{queue=\"a\",plugin=\"echo\"} 0\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "nova_test_wait_seconds_bucket{queue=\"a\",plugin=\"echo\",le=\"+Inf\"} 0\n"));
    free(text);

    /* prune by the first label: b and c go, a's two series stay. */
    nova__metric_set(g, a_done, 1);
    nova__metric_set(g, b_wait, 2);
    nova__metric_set(g, c_wait, 3);
    const char *keep[] = {"a", "z"};
    ck_assert_uint_eq(nova__metric_prune(g, 0, keep, 2), 2);
    ck_assert(nova__metric_value(g, a_wait) == 5.0);
    ck_assert(nova__metric_value(g, a_done) == 1.0);
    ck_assert(nova__metric_value(g, b_wait) == -1.0);
    ck_assert(nova__metric_value(g, c_wait) == -1.0);
    /* by the second label; an empty list removes everything; a label the
     * metric does not have removes nothing. */
    const char *done[] = {"completed"};
    ck_assert_uint_eq(nova__metric_prune(g, 1, done, 1), 1);
    ck_assert(nova__metric_value(g, a_done) == 1.0);
    ck_assert_uint_eq(nova__metric_prune(g, 2, NULL, 0), 0);
    ck_assert_uint_eq(nova__metric_prune(g, 0, NULL, 0), 1);
    ck_assert(nova__metric_value(g, a_done) == -1.0);
    ck_assert_int_eq(nova__metrics_render(&text, &len), 0);
    ck_assert_ptr_nonnull(strstr(text, "# TYPE nova_test_count gauge\n"));
    ck_assert_ptr_null(strstr(text, "nova_test_count{"));
    free(text);
    nova__metrics_reset();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, counters_gauges_histograms_render);
    tcase_add_test(tc, touch_creates_zero_series_and_prune_drops_others);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
