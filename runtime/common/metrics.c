#include "config.h"
#include "common/metrics.h"
#include "nova/buf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LABELS 8

static const double default_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10,   30};

struct series {
    struct series *next;
    char **label_values;
    double value;     /* counter/gauge value, histogram sum */
    uint64_t count;   /* histogram observations */
    uint64_t *bucket; /* histogram cumulative counts per bucket */
};

struct nova_metric {
    struct nova_metric *next;
    enum nova_metric_type type;
    char *name;
    char *help;
    size_t label_count;
    char *label_names[MAX_LABELS];
    double *buckets;
    size_t bucket_count;
    struct series *series;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nova_metric *registry;
static double process_start_time;

static int valid_name(const char *s, int allow_colon)
{
    if (s == NULL || *s == '\0' || isdigit((unsigned char)*s))
        return 0;
    for (; *s != '\0'; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_' || (allow_colon && *s == ':')))
            return 0;
    }
    return 1;
}

static size_t count_labels(const char *const *labels)
{
    size_t n = 0;
    while (labels != NULL && labels[n] != NULL)
        n++;
    return n;
}

static void free_series(const struct nova_metric *m, struct series *s)
{
    for (size_t i = 0; i < m->label_count; i++)
        free(s->label_values[i]);
    free(s->label_values);
    free(s->bucket);
    free(s);
}

static void free_metric(struct nova_metric *m)
{
    struct series *s = m->series;
    while (s != NULL) {
        struct series *next = s->next;
        free_series(m, s);
        s = next;
    }
    for (size_t i = 0; i < m->label_count; i++)
        free(m->label_names[i]);
    free(m->buckets);
    free(m->name);
    free(m->help);
    free(m);
}

nova_metric *nova__metric_new(enum nova_metric_type type, const char *name, const char *help,
                              const char *const *label_names, const double *buckets,
                              size_t bucket_count)
{
    size_t nlabels = count_labels(label_names);
    if (!valid_name(name, 1) || nlabels > MAX_LABELS)
        return NULL;
    for (size_t i = 0; i < nlabels; i++) {
        if (!valid_name(label_names[i], 0) || strcmp(label_names[i], "le") == 0)
            return NULL;
    }
    if (type == NOVA_METRIC_HISTOGRAM && buckets == NULL) {
        buckets = default_buckets;
        bucket_count = sizeof default_buckets / sizeof default_buckets[0];
    }

    pthread_mutex_lock(&registry_lock);
    if (process_start_time == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        process_start_time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    }
    for (struct nova_metric *m = registry; m != NULL; m = m->next) {
        if (strcmp(m->name, name) != 0)
            continue;
        int same = m->type == type && m->label_count == nlabels;
        for (size_t i = 0; same && i < nlabels; i++)
            same = strcmp(m->label_names[i], label_names[i]) == 0;
        pthread_mutex_unlock(&registry_lock);
        return same ? m : NULL;
    }
    struct nova_metric *m = calloc(1, sizeof *m);
    if (m == NULL)
        goto oom;
    m->type = type;
    m->name = strdup(name);
    m->help = strdup(help != NULL ? help : name);
    m->label_count = nlabels;
    int ok = m->name != NULL && m->help != NULL;
    for (size_t i = 0; i < nlabels; i++) {
        m->label_names[i] = strdup(label_names[i]);
        ok = ok && m->label_names[i] != NULL;
    }
    if (type == NOVA_METRIC_HISTOGRAM) {
        m->buckets = malloc(bucket_count * sizeof(double));
        ok = ok && m->buckets != NULL;
        if (m->buckets != NULL)
            memcpy(m->buckets, buckets, bucket_count * sizeof(double));
        m->bucket_count = bucket_count;
    }
    if (!ok) {
        free_metric(m);
        goto oom;
    }
    m->next = registry;
    registry = m;
    pthread_mutex_unlock(&registry_lock);
    return m;
oom:
    pthread_mutex_unlock(&registry_lock);
    return NULL;
}

/* Called with the lock held. */
static struct series *find_series(struct nova_metric *m, const char *const *values, int create)
{
    for (struct series *s = m->series; s != NULL; s = s->next) {
        size_t i = 0;
        while (i < m->label_count && strcmp(s->label_values[i], values[i] ? values[i] : "") == 0)
            i++;
        if (i == m->label_count)
            return s;
    }
    if (!create)
        return NULL;
    struct series *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->label_values = calloc(m->label_count + 1, sizeof(char *));
    if (m->bucket_count > 0)
        s->bucket = calloc(m->bucket_count, sizeof(uint64_t));
    int ok = s->label_values != NULL && (m->bucket_count == 0 || s->bucket != NULL);
    for (size_t i = 0; ok && i < m->label_count; i++) {
        s->label_values[i] = strdup(values[i] ? values[i] : "");
        ok = s->label_values[i] != NULL;
    }
    if (!ok) {
        for (size_t i = 0; s->label_values != NULL && i < m->label_count; i++)
            free(s->label_values[i]);
        free(s->label_values);
        free(s->bucket);
        free(s);
        return NULL;
    }
    s->next = m->series;
    m->series = s;
    return s;
}

static const char *const no_labels[MAX_LABELS + 1];

static void update(nova_metric *m, const char *const *values, double v, int op)
{
    if (m == NULL)
        return;
    if (values == NULL)
        values = no_labels;
    pthread_mutex_lock(&registry_lock);
    struct series *s = find_series(m, values, 1);
    if (s != NULL) {
        switch (op) {
        case 0:
            s->value += v;
            break;
        case 1:
            s->value = v;
            break;
        default:
            s->value += v;
            s->count++;
            for (size_t i = 0; i < m->bucket_count; i++) {
                if (v <= m->buckets[i])
                    s->bucket[i]++;
            }
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

void nova__metric_add(nova_metric *metric, const char *const *label_values, double value)
{
    update(metric, label_values, value, 0);
}

void nova__metric_set(nova_metric *metric, const char *const *label_values, double value)
{
    update(metric, label_values, value, 1);
}

void nova__metric_observe(nova_metric *metric, const char *const *label_values, double value)
{
    update(metric, label_values, value, 2);
}

void nova__metric_touch(nova_metric *metric, const char *const *label_values)
{
    if (metric == NULL)
        return;
    pthread_mutex_lock(&registry_lock);
    (void)find_series(metric, label_values ? label_values : no_labels, 1);
    pthread_mutex_unlock(&registry_lock);
}

size_t nova__metric_prune(nova_metric *metric, size_t label, const char *const *keep, size_t nkeep)
{
    size_t removed = 0;
    if (metric == NULL || label >= metric->label_count)
        return 0;
    pthread_mutex_lock(&registry_lock);
    struct series **pp = &metric->series;
    while (*pp != NULL) {
        struct series *s = *pp;
        bool kept = false;
        for (size_t i = 0; i < nkeep && !kept; i++)
            kept = keep[i] != NULL && strcmp(s->label_values[label], keep[i]) == 0;
        if (kept) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        free_series(metric, s);
        removed++;
    }
    pthread_mutex_unlock(&registry_lock);
    return removed;
}

double nova__metric_value(nova_metric *metric, const char *const *label_values)
{
    if (metric == NULL)
        return -1;
    pthread_mutex_lock(&registry_lock);
    struct series *s = find_series(metric, label_values ? label_values : no_labels, 0);
    double v =
        s == NULL ? -1 : (metric->type == NOVA_METRIC_HISTOGRAM ? (double)s->count : s->value);
    pthread_mutex_unlock(&registry_lock);
    return v;
}

/* Runs of plain characters go out in one piece: a render now runs on the
 * loop, and a page of label values is mostly plain text. */
static void put_escaped(struct nova_buf *b, const char *s, int quote)
{
    while (*s != '\0') {
        size_t run = strcspn(s, quote ? "\\\n\"" : "\\\n");
        if (run > 0)
            nova_buf_add(b, s, run);
        s += run;
        if (*s == '\\')
            nova_buf_printf(b, "\\\\");
        else if (*s == '\n')
            nova_buf_printf(b, "\\n");
        else if (*s == '"')
            nova_buf_printf(b, "\\\"");
        else
            break;
        s++;
    }
}

static void put_number(struct nova_buf *b, double v)
{
    if (isinf(v))
        nova_buf_printf(b, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        nova_buf_printf(b, "NaN");
    else if (v == (double)(int64_t)v && fabs(v) < 1e15)
        nova_buf_printf(b, "%lld", (long long)v);
    else {
        /* The shortest form that reads back as the same double. */
        char tmp[64];
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(tmp, sizeof tmp, "%.*g", precision, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
        nova_buf_printf(b, "%s", tmp);
    }
}

static void put_labels(struct nova_buf *b, const struct nova_metric *m, const struct series *s,
                       const char *le)
{
    if (m->label_count == 0 && le == NULL)
        return;
    nova_buf_printf(b, "{");
    for (size_t i = 0; i < m->label_count; i++) {
        nova_buf_printf(b, "%s%s=\"", i ? "," : "", m->label_names[i]);
        put_escaped(b, s->label_values[i], 1);
        nova_buf_printf(b, "\"");
    }
    if (le != NULL)
        nova_buf_printf(b, "%sle=\"%s\"", m->label_count ? "," : "", le);
    nova_buf_printf(b, "}");
}

static void render_process(struct nova_buf *b)
{
    long rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        long size;
        if (fscanf(f, "%ld %ld", &size, &rss_pages) != 2)
            rss_pages = 0;
        fclose(f);
    }
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        while (readdir(d) != NULL)
            fds++;
        closedir(d);
        fds -= 3; /* ".", ".." and the directory's own descriptor */
    }
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    nova_buf_printf(
        b,
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n",
        rss_pages * sysconf(_SC_PAGESIZE));
    nova_buf_printf(b,
                    "# HELP process_open_fds Number of open file descriptors.\n"
                    "# TYPE process_open_fds gauge\nprocess_open_fds %d\n",
                    fds);
    nova_buf_printf(b,
                    "# HELP process_cpu_seconds_total Total user and system CPU time in seconds.\n"
                    "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n",
                    (double)cpu.tv_sec + cpu.tv_nsec / 1e9);
    nova_buf_printf(b,
                    "# HELP process_start_time_seconds Start time of the process since the epoch.\n"
                    "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
                    process_start_time);
}

int nova__metrics_render(char **out, size_t *len)
{
    static const char *const type_names[] = {"", "counter", "gauge", "histogram"};
    struct nova_buf b = {0};
    pthread_mutex_lock(&registry_lock);
    for (struct nova_metric *m = registry; m != NULL; m = m->next) {
        nova_buf_printf(&b, "# HELP %s ", m->name);
        put_escaped(&b, m->help, 0);
        nova_buf_printf(&b, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
        for (struct series *s = m->series; s != NULL; s = s->next) {
            if (m->type != NOVA_METRIC_HISTOGRAM) {
                nova_buf_printf(&b, "%s", m->name);
                put_labels(&b, m, s, NULL);
                nova_buf_printf(&b, " ");
                put_number(&b, s->value);
                nova_buf_printf(&b, "\n");
                continue;
            }
            for (size_t i = 0; i < m->bucket_count; i++) {
                char le[64];
                snprintf(le, sizeof le, "%g", m->buckets[i]);
                nova_buf_printf(&b, "%s_bucket", m->name);
                put_labels(&b, m, s, le);
                nova_buf_printf(&b, " %llu\n", (unsigned long long)s->bucket[i]);
            }
            nova_buf_printf(&b, "%s_bucket", m->name);
            put_labels(&b, m, s, "+Inf");
            nova_buf_printf(&b, " %llu\n%s_sum", (unsigned long long)s->count, m->name);
            put_labels(&b, m, s, NULL);
            nova_buf_printf(&b, " ");
            put_number(&b, s->value);
            nova_buf_printf(&b, "\n%s_count", m->name);
            put_labels(&b, m, s, NULL);
            nova_buf_printf(&b, " %llu\n", (unsigned long long)s->count);
        }
    }
    pthread_mutex_unlock(&registry_lock);
    render_process(&b);
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

void nova__metrics_reset(void)
{
    pthread_mutex_lock(&registry_lock);
    while (registry != NULL) {
        struct nova_metric *next = registry->next;
        free_metric(registry);
        registry = next;
    }
    pthread_mutex_unlock(&registry_lock);
}
