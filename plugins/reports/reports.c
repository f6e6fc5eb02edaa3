/*
 * reports - Nova's reporting service as background jobs (issue 16;
 * docs/plugins/reports.md has the whole story).
 *
 * Queue `reports`, three job names:
 *   generate   data {type, params}: one report into Nova's Redis cache entry,
 *              for the API or ops;
 *   scheduled  data {period}: what the runtime's scheduler adds for the
 *              `daily`, `weekly` and `monthly` keys: every listed type for
 *              the previous day/week/month, into the cache and into CSV files
 *              in output_dir, then retention, then one `mail` job per file;
 *   mail       data {file, ...}: the e-mail of one file, with its own
 *              attempts and backoff, so a mail server being down never
 *              costs a report or a file.
 *
 * This file holds the config, the schedules, the jobs and their outcomes;
 * the work of one report is rp_run.c's, the rendering rp_json.c's and
 * rp_sql.c's, the message rp_mail.c's, retention rp_keep.c's.
 *
 * Failures: a report that fails does not stop the next one of the run.
 * When some failed for a reason that may pass (database or Redis down, a
 * full disk), the job is retried and the retry redoes only those: what an
 * attempt finished is kept in Redis (reports:progress:<job id>, a hash, for
 * a week) and listed in the final result. A failure that no retry can fix
 * (bad SQL for this schema, a bad filter value) fails the job with every
 * reason and what was written.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nova/http.h>
#include <nova/pg.h>
#include <nova/plugin.h>
#include <nova/redis.h>
#include <nova/sys.h>

#include "rp.h"

#define RP_QUEUE        "reports"
#define RP_JOB_GENERATE "generate"
#define RP_JOB_PERIOD   "scheduled"
#define RP_JOB_MAIL     "mail"
#define RP_PROGRESS_TTL "604800"

struct rp_config {
    int64_t cache_ttl; /* seconds */
    char *daily, *weekly, *monthly;
    char *daily_schedule, *weekly_schedule, *monthly_schedule;
    char *timezone;
    char *output_dir;
    int64_t keep_days, keep_files;
    int64_t concurrency;
    char *smtp_url;
    bool smtp_starttls;
    char *smtp_username, *smtp_password;
    char *mail_from, *mail_to;
    int64_t max_attachment;
    int64_t mail_attempts;
    int64_t mail_backoff_ms;
    int64_t mail_timeout_ms;
};

static const struct nova_config_entry rp_config_table[] = {
    {.key = "cache_ttl",
     .type = NOVA_CONFIG_INT,
     .default_value = "300",
     .offset = offsetof(struct rp_config, cache_ttl),
     .help = "seconds a report stays in Redis (Nova's REPORT_CACHE_TTL)",
     .min = 1,
     .max = 31 * 86400,
     .env = "REPORT_CACHE_TTL"},
    {.key = "daily",
     .type = NOVA_CONFIG_STRING,
     .default_value = "",
     .offset = offsetof(struct rp_config, daily),
     .help = "report types run every day for the previous day (\"user, transaction\"); "
             "empty = none"},
    {.key = "weekly",
     .type = NOVA_CONFIG_STRING,
     .default_value = "",
     .offset = offsetof(struct rp_config, weekly),
     .help = "report types run every Monday for the previous ISO week; empty = none"},
    {.key = "monthly",
     .type = NOVA_CONFIG_STRING,
     .default_value = "",
     .offset = offsetof(struct rp_config, monthly),
     .help = "report types run on the 1st for the previous month; empty = none"},
    {.key = "daily_schedule",
     .type = NOVA_CONFIG_STRING,
     .default_value = "5 0 * * *",
     .offset = offsetof(struct rp_config, daily_schedule),
     .help = "when the daily run starts (cron line or \"every <duration>\")"},
    {.key = "weekly_schedule",
     .type = NOVA_CONFIG_STRING,
     .default_value = "10 0 * * 1",
     .offset = offsetof(struct rp_config, weekly_schedule),
     .help = "when the weekly run starts"},
    {.key = "monthly_schedule",
     .type = NOVA_CONFIG_STRING,
     .default_value = "15 0 1 * *",
     .offset = offsetof(struct rp_config, monthly_schedule),
     .help = "when the monthly run starts"},
    {.key = "timezone",
     .type = NOVA_CONFIG_STRING,
     .default_value = "UTC",
     .offset = offsetof(struct rp_config, timezone),
     .help = "IANA time zone of the schedules and of the periods' days"},
    {.key = "output_dir",
     .type = NOVA_CONFIG_STRING,
     .default_value = "/var/lib/nova-worker/reports",
     .offset = offsetof(struct rp_config, output_dir),
     .help = "directory of the scheduled runs' CSV files (absolute)"},
    {.key = "keep_days",
     .type = NOVA_CONFIG_INT,
     .default_value = "90",
     .offset = offsetof(struct rp_config, keep_days),
     .help = "remove files whose period ended this many days ago; 0 = keep",
     .min = 0,
     .max = 36500},
    {.key = "keep_files",
     .type = NOVA_CONFIG_INT,
     .default_value = "0",
     .offset = offsetof(struct rp_config, keep_files),
     .help = "keep at most this many files per type and period kind; 0 = no limit",
     .min = 0,
     .max = 100000},
    {.key = "concurrency",
     .type = NOVA_CONFIG_INT,
     .default_value = "2",
     .offset = offsetof(struct rp_config, concurrency),
     .help = "jobs of the reports queue run at once by this worker (one connection each)",
     .min = 1,
     .max = 64},
    {.key = "smtp_url",
     .type = NOVA_CONFIG_STRING,
     .offset = offsetof(struct rp_config, smtp_url),
     .help = "smtps://host[:port] or smtp://host[:port] (STARTTLS); unset = no e-mail"},
    {.key = "smtp_starttls",
     .type = NOVA_CONFIG_BOOL,
     .default_value = "yes",
     .offset = offsetof(struct rp_config, smtp_starttls),
     .help = "smtp:// must upgrade with STARTTLS; no = plain text allowed"},
    {.key = "smtp_username",
     .type = NOVA_CONFIG_STRING,
     .offset = offsetof(struct rp_config, smtp_username),
     .help = "SMTP AUTH user; unset = no authentication"},
    {.key = "smtp_password",
     .type = NOVA_CONFIG_SECRET,
     .offset = offsetof(struct rp_config, smtp_password),
     .help = "SMTP AUTH password (smtp_password_file, credential reports-smtp_password)",
     .env = "SMTP_PASSWORD"},
    {.key = "mail_from",
     .type = NOVA_CONFIG_STRING,
     .offset = offsetof(struct rp_config, mail_from),
     .help = "sender address of the report mails"},
    {.key = "mail_to",
     .type = NOVA_CONFIG_STRING,
     .offset = offsetof(struct rp_config, mail_to),
     .help = "recipients, comma separated"},
    {.key = "max_attachment",
     .type = NOVA_CONFIG_INT,
     .default_value = "10485760",
     .offset = offsetof(struct rp_config, max_attachment),
     .help = "bytes; a larger CSV is named in the mail, not attached",
     .min = 0,
     .max = 100 * 1048576},
    {.key = "mail_attempts",
     .type = NOVA_CONFIG_INT,
     .default_value = "10",
     .offset = offsetof(struct rp_config, mail_attempts),
     .help = "tries of each mail job",
     .min = 1,
     .max = 1000},
    {.key = "mail_backoff",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "60s",
     .offset = offsetof(struct rp_config, mail_backoff_ms),
     .help = "first delay between mail tries, doubled each time",
     .min = 100,
     .max = 86400000},
    {.key = "mail_timeout",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "60s",
     .offset = offsetof(struct rp_config, mail_timeout_ms),
     .help = "limit of one SMTP exchange",
     .min = 1000,
     .max = 3600000},
    {.key = NULL},
};

static const char *const rp_columns[] = {
    "users.created_at",         "users.is_deleted",
    "users.referred_by",        "campaigns.id",
    "campaigns.name",           "campaigns.reward_rate",
    "campaigns.start_date",     "campaigns.end_date",
    "campaigns.is_active",      "campaigns.merchant_id",
    "campaigns.created_at",     "transactions.id",
    "transactions.amount",      "transactions.tx_type",
    "transactions.campaign_id", "transactions.merchant_id",
    "transactions.created_at",  "merchants.id",
    "merchants.name",           NULL,
};

/* ---- config checks (pure: also used by the schedules callback) ----------------------- */

static const char *period_types(const struct rp_config *cfg, int period)
{
    const char *t[] = {cfg->daily, cfg->weekly, cfg->monthly};
    return t[period] != NULL ? t[period] : "";
}

static const char *period_spec(const struct rp_config *cfg, int period)
{
    const char *t[] = {cfg->daily_schedule, cfg->weekly_schedule, cfg->monthly_schedule};
    return t[period];
}

/* A mail address as the host's mail() takes it: something@something,
 * without blanks or brackets. */
static bool address_ok(const char *a, size_t n)
{
    if (n == 0 || n > 320 || memchr(a, '@', n) == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)a[i] <= ' ' || a[i] == '<' || a[i] == '>' || a[i] == ',' || a[i] == 0x7f)
            return false;
    return true;
}

/* The next entry of mail_to (comma separated, blanks around entries
 * trimmed, empty entries skipped): its start and length, *p moved past it.
 * False at the end of the list. */
static bool next_address(const char **p, const char **addr, size_t *len)
{
    const char *s = *p;
    while (*s != '\0') {
        while (*s == ',' || *s == ' ' || *s == '\t')
            s++;
        const char *w = s;
        while (*s != '\0' && *s != ',')
            s++;
        const char *e = s;
        while (e > w && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e == w)
            continue;
        *p = s;
        *addr = w;
        *len = (size_t)(e - w);
        return true;
    }
    *p = s;
    return false;
}

static int check_config(const struct rp_config *cfg, unsigned types[RP_NPERIODS], char *err,
                        size_t errlen)
{
    bool any = false;
    for (int p = 0; p < RP_NPERIODS; p++) {
        char e[160];
        if (rp_type_list(period_types(cfg, p), &types[p], e, sizeof e) != 0) {
            snprintf(err, errlen, "%s: %s", rp_period_names[p], e);
            return -EINVAL;
        }
        if (types[p] != 0 && (period_spec(cfg, p) == NULL || period_spec(cfg, p)[0] == '\0')) {
            snprintf(err, errlen, "%s lists reports but %s_schedule is empty", rp_period_names[p],
                     rp_period_names[p]);
            return -EINVAL;
        }
        any = any || types[p] != 0;
    }
    if (any && (cfg->output_dir == NULL || cfg->output_dir[0] != '/')) {
        snprintf(err, errlen, "output_dir must be an absolute path");
        return -EINVAL;
    }
    if (cfg->smtp_url != NULL && cfg->smtp_url[0] != '\0') {
        if (strncmp(cfg->smtp_url, "smtp://", 7) != 0 &&
            strncmp(cfg->smtp_url, "smtps://", 8) != 0) {
            snprintf(err, errlen, "smtp_url must start with smtps:// or smtp://");
            return -EINVAL;
        }
        if (cfg->mail_from == NULL || !address_ok(cfg->mail_from, strlen(cfg->mail_from))) {
            snprintf(err, errlen, "smtp_url is set: mail_from must be an address");
            return -EINVAL;
        }
        const char *p = cfg->mail_to != NULL ? cfg->mail_to : "", *w;
        size_t wl;
        int n = 0;
        while (next_address(&p, &w, &wl)) {
            if (!address_ok(w, wl)) {
                snprintf(err, errlen, "mail_to: \"%.*s\" is not an address", (int)wl, w);
                return -EINVAL;
            }
            n++;
        }
        if (n == 0) {
            snprintf(err, errlen, "smtp_url is set: mail_to must list at least one address");
            return -EINVAL;
        }
    }
    return 0;
}

static bool mail_on(const struct rp_config *cfg)
{
    return cfg->smtp_url != NULL && cfg->smtp_url[0] != '\0';
}

static const char *const period_ids[RP_NPERIODS] = {"reports-daily", "reports-weekly",
                                                    "reports-monthly"};
static const char *const period_data[RP_NPERIODS] = {
    "{\"period\":\"daily\"}", "{\"period\":\"weekly\"}", "{\"period\":\"monthly\"}"};

/* Pure: one schedule per period that lists types. */
static int rp_schedules(const void *config, struct nova_schedule *out, size_t max, char *err,
                        size_t errlen)
{
    const struct rp_config *cfg = config;
    unsigned types[RP_NPERIODS];
    int rc = check_config(cfg, types, err, errlen);
    if (rc != 0)
        return rc;
    size_t n = 0;
    for (int p = 0; p < RP_NPERIODS; p++) {
        if (types[p] == 0)
            continue;
        if (n == max) {
            snprintf(err, errlen, "no room for the %s schedule", rp_period_names[p]);
            return -ENOSPC;
        }
        out[n++] = (struct nova_schedule){
            .id = period_ids[p],
            .queue = RP_QUEUE,
            .job_name = RP_JOB_PERIOD,
            .spec = period_spec(cfg, p),
            .timezone = cfg->timezone,
            .data_json = period_data[p],
        };
    }
    return (int)n;
}

/* ---- state ----------------------------------------------------------------------------- */

struct rp_job;

struct rp {
    const struct nova_host *host;
    const struct rp_config *cfg;
    char **mail_to; /* NULL-terminated, from cfg->mail_to */
    struct rp_job *jobs;
    nova_metric *m_runs;     /* nova_reports_runs_total{type,outcome} */
    nova_metric *m_rows;     /* nova_reports_rows_total{type} */
    nova_metric *m_seconds;  /* nova_reports_duration_seconds{type} */
    nova_metric *m_bytes;    /* nova_reports_file_bytes_total{type} */
    nova_metric *m_mails;    /* nova_reports_mails_total{outcome} */
    nova_metric *m_mail_err; /* nova_reports_mail_failures_total */
    nova_metric *m_removed;  /* nova_reports_files_removed_total */
};

/* One job of any name, from on_job() to its outcome. */
struct rp_job {
    struct rp *rp;
    struct rp_job *prev, *next;
    nova_job *job;
    struct rp_report *rep; /* the report running, freed by shutdown() if still here */
    /* scheduled */
    int period;
    unsigned pending_types; /* bit set (1u << type) of the types not run yet */
    char *start, *end, *label;
    char *progress_key;
    struct nova_buf done;   /* JSON items of the reports finished, comma separated */
    struct nova_buf failed; /* JSON items of the failures */
    struct nova_buf reason; /* the failures in words */
    bool any_transient, any_permanent, cancelled;
    char *item; /* the item being saved in the progress hash */
    char *removed_json;
    /* mail */
    char *mail_path, *mail_name;
    struct nova_buf mail_text;
    struct nova_buf attachment;
    nova_file *file;
    bool attach;
};

static void job_free(struct rp_job *j)
{
    struct rp *rp = j->rp;
    if (j->prev != NULL)
        j->prev->next = j->next;
    else if (rp->jobs == j)
        rp->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    free(j->start);
    free(j->end);
    free(j->label);
    free(j->progress_key);
    free(j->item);
    free(j->removed_json);
    free(j->mail_path);
    free(j->mail_name);
    nova_buf_free(&j->done);
    nova_buf_free(&j->failed);
    nova_buf_free(&j->reason);
    nova_buf_free(&j->mail_text);
    nova_buf_free(&j->attachment);
    free(j);
}

static struct rp_job *job_new(struct rp *rp, nova_job *job)
{
    struct rp_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->rp = rp;
    j->job = job;
    j->next = rp->jobs;
    if (rp->jobs != NULL)
        rp->jobs->prev = j;
    rp->jobs = j;
    return j;
}

/* Ends a job with a retry (after its backoff) or a failure, and frees it. */
static void job_end(struct rp_job *j, bool retry, const char *reason)
{
    const struct nova_host *h = j->rp->host;
    if (retry)
        h->job_retry(j->job, reason, -1);
    else
        h->job_fail(j->job, reason);
    job_free(j);
}

static void count_run(struct rp *rp, struct rp_report *rep, const char *outcome)
{
    const struct nova_host *h = rp->host;
    const char *lv[] = {rp_type_names[rep->type], outcome, NULL};
    h->metric_add(rp->m_runs, lv, 1);
    const char *lt[] = {rp_type_names[rep->type], NULL};
    if (rep->status == 0) {
        h->metric_add(rp->m_rows, lt, (double)rep->rows);
        if (rep->csv_path != NULL)
            h->metric_add(rp->m_bytes, lt, (double)rep->bytes);
    }
    double secs = (double)(rep->ended_ms - rep->started_ms) / 1000.0;
    h->metric_observe(rp->m_seconds, lt, secs < 0 ? 0 : secs);
}

/* The result item of a finished report. */
static void report_item(struct nova_buf *b, const struct rp_report *rep, const char *mail_job)
{
    nova_buf_printf(b, "{\"type\":\"%s\",\"cacheKey\":", rp_type_names[rep->type]);
    rp_json_string(b, rep->cache_key, strlen(rep->cache_key));
    nova_buf_printf(b, ",\"rows\":%" PRId64, rep->rows);
    if (rep->csv_path != NULL) {
        nova_buf_str(b, ",\"file\":");
        rp_json_string(b, rep->csv_path, strlen(rep->csv_path));
        nova_buf_printf(b, ",\"bytes\":%" PRId64, rep->bytes);
    }
    if (mail_job != NULL) {
        nova_buf_str(b, ",\"mail\":");
        rp_json_string(b, mail_job, strlen(mail_job));
    }
    nova_buf_add(b, "}", 1);
}

/* ---- generate ------------------------------------------------------------------------- */

static void on_generated(void *arg, struct rp_report *rep)
{
    struct rp_job *j = arg;
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    if (rep->status == 0) {
        struct nova_buf res = {0};
        nova_buf_str(&res, "{\"reports\":[");
        report_item(&res, rep, NULL);
        nova_buf_str(&res, "]}");
        h->log(h, NOVA_LOG_INFO, j->job,
               "report %s: %" PRId64 " rows, %s (ttl %" PRId64 " s), %" PRId64 " ms",
               rp_type_names[rep->type], rep->rows, rep->cache_key, rep->cache_ttl_s,
               rep->ended_ms - rep->started_ms);
        count_run(rp, rep, "ok");
        h->job_done(j->job, res.oom ? NULL : res.p);
        nova_buf_free(&res);
    } else {
        bool retry = rep->transient || rep->cancelled;
        h->log(h, retry ? NOVA_LOG_WARN : NOVA_LOG_ERROR, j->job, "report %s failed: %s",
               rp_type_names[rep->type], rep->error);
        count_run(rp, rep, retry ? "retry" : "failed");
        if (retry)
            h->job_retry(j->job, rep->error, -1);
        else
            h->job_fail(j->job, rep->error);
    }
    j->rep = NULL;
    rp_report_free(rep);
    job_free(j);
}

static void do_generate(struct rp_job *j)
{
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    const cJSON *data = h->job_data(j->job);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(data, "type");
    char err[256] = "";
    int t = cJSON_IsString(type) ? rp_type_from_name(type->valuestring) : -1;
    if (t < 0) {
        snprintf(err, sizeof err,
                 "data.type must be one of user, campaign, transaction, revenue%s%.40s%s",
                 cJSON_IsString(type) ? " (got \"" : "",
                 cJSON_IsString(type) ? type->valuestring : "", cJSON_IsString(type) ? "\")" : "");
        return job_end(j, false, err);
    }
    for (const cJSON *c = data->child; c != NULL; c = c->next)
        if (c->string == NULL ||
            (strcmp(c->string, "type") != 0 && strcmp(c->string, "params") != 0)) {
            snprintf(err, sizeof err, "data.%.40s: unknown field (generate takes type and params)",
                     c->string != NULL ? c->string : "");
            return job_end(j, false, err);
        }
    struct rp_report *rep = calloc(1, sizeof *rep);
    if (rep == NULL)
        return job_end(j, true, "out of memory");
    if (rp_params_parse(cJSON_GetObjectItemCaseSensitive(data, "params"), &rep->params, err,
                        sizeof err) != 0) {
        rp_report_free(rep);
        return job_end(j, false, err);
    }
    rep->host = h;
    rep->job = j->job;
    rep->type = (enum rp_type)t;
    rep->cache_ttl_s = rp->cfg->cache_ttl;
    j->rep = rep;
    int rc = rp_report_run(rep, on_generated, j);
    if (rc != 0) {
        j->rep = NULL;
        snprintf(err, sizeof err, "report not started: %s", strerror(-rc));
        rp_report_free(rep);
        job_end(j, rc != -EINVAL, err);
    }
}

/* ---- scheduled runs ------------------------------------------------------------------- */

static void run_next(struct rp_job *j);

static void period_end(struct rp_job *j)
{
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    if (j->cancelled)
        return job_end(j, true, "worker stopping");
    struct nova_buf res = {0};
    nova_buf_printf(&res, "{\"period\":\"%s\",\"startDate\":", rp_period_names[j->period]);
    rp_json_string(&res, j->start, strlen(j->start));
    nova_buf_str(&res, ",\"endDate\":");
    rp_json_string(&res, j->end, strlen(j->end));
    nova_buf_str(&res, ",\"reports\":[");
    if (j->done.p != NULL)
        nova_buf_str(&res, j->done.p);
    nova_buf_str(&res, "],\"failed\":[");
    if (j->failed.p != NULL)
        nova_buf_str(&res, j->failed.p);
    nova_buf_str(&res, "],\"removed\":[");
    if (j->removed_json != NULL)
        nova_buf_str(&res, j->removed_json);
    nova_buf_str(&res, "]}");
    bool last = h->job_attempts_made(j->job) + 1 >= h->job_attempts_max(j->job);
    if (!j->any_transient && !j->any_permanent) {
        h->log(h, NOVA_LOG_INFO, j->job, "%s reports for %s done", rp_period_names[j->period],
               j->label);
        h->job_done(j->job, res.oom ? NULL : res.p);
    } else {
        struct nova_buf why = {0};
        nova_buf_printf(&why, "%s", j->reason.p != NULL ? j->reason.p : "");
        if (j->done.len > 0)
            nova_buf_printf(&why, "; written: %s", j->done.p);
        const char *reason = why.p != NULL ? why.p : "failed";
        if (j->any_transient && !last)
            h->job_retry(j->job, reason, -1);
        else
            h->job_fail(j->job, reason);
        nova_buf_free(&why);
    }
    nova_buf_free(&res);
    job_free(j);
}

static void on_kept(void *arg, int status, const char *removed_json, int removed)
{
    struct rp_job *j = arg;
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    if (status == -ECANCELED)
        j->cancelled = true;
    else if (status != 0)
        h->log(h, NOVA_LOG_WARN, j->job, "retention in %s: %s", rp->cfg->output_dir,
               strerror(-status));
    if (removed > 0) {
        h->metric_add(rp->m_removed, NULL, removed);
        h->log(h, NOVA_LOG_INFO, j->job, "retention removed %d file(s) from %s", removed,
               rp->cfg->output_dir);
    }
    j->removed_json = strdup(removed_json);
    period_end(j);
}

static void after_reports(struct rp_job *j)
{
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    if (j->cancelled)
        return period_end(j);
    int rc = rp_keep_run(h, rp->cfg->output_dir, rp->cfg->keep_days, rp->cfg->keep_files,
                         h->now_ms(h), on_kept, j);
    if (rc != 0) {
        if (rc != -ENOTSUP)
            h->log(h, NOVA_LOG_WARN, j->job, "retention not started: %s", strerror(-rc));
        period_end(j);
    }
}

static void on_progress_saved(void *arg, int status, const struct nova_redis_reply *reply)
{
    (void)reply;
    struct rp_job *j = arg;
    if (status == -ECANCELED)
        j->cancelled = true;
    /* a lost progress entry only means more work on a retry */
    free(j->item);
    j->item = NULL;
    run_next(j);
}

static void on_progress_expire(void *arg, int status, const struct nova_redis_reply *reply)
{
    struct rp_job *j = arg;
    const struct nova_host *h = j->rp->host;
    if (status == -ECANCELED || j->cancelled)
        return on_progress_saved(j, status, reply);
    const char *argv[] = {"EXPIRE", j->progress_key, RP_PROGRESS_TTL};
    if (h->redis->command(h, 3, argv, NULL, on_progress_saved, j) != 0)
        on_progress_saved(j, 0, NULL);
}

/* Keeps a finished report's item for the retries of this job. */
static void save_progress(struct rp_job *j, int type)
{
    const struct nova_host *h = j->rp->host;
    const char *argv[] = {"HSET", j->progress_key, rp_type_names[type], j->item};
    if (h->redis->command(h, 4, argv, NULL, on_progress_expire, j) != 0)
        on_progress_saved(j, 0, NULL);
}

struct mail_enqueue {
    struct rp_job *j;
    struct rp_report *rep;
    char id[200];
};

static void report_done(struct rp_job *j, struct rp_report *rep, const char *mail_job);

static void on_mail_enqueued(void *arg, int status, const char *job_id)
{
    (void)job_id;
    struct mail_enqueue *m = arg;
    struct rp_job *j = m->j;
    const struct nova_host *h = j->rp->host;
    if (status == -ECANCELED)
        j->cancelled = true;
    if (status != 0) {
        h->log(h, NOVA_LOG_WARN, j->job, "the mail of %s was not queued: %s", m->rep->csv_path,
               strerror(-status));
        h->metric_add(j->rp->m_mail_err, NULL, 1);
    }
    report_done(j, m->rep, status == 0 ? m->id : NULL);
    free(m);
}

/* The mail job of a file: its own attempts and backoff. */
static bool enqueue_mail(struct rp_job *j, struct rp_report *rep)
{
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    struct mail_enqueue *m = calloc(1, sizeof *m);
    if (m == NULL)
        return false;
    m->j = j;
    m->rep = rep;
    /* one mail per run and type: the scheduler's job id made a custom id */
    snprintf(m->id, sizeof m->id, "mail-%s-%s", h->job_id(j->job), rp_type_names[rep->type]);
    for (char *p = m->id; *p != '\0'; p++)
        if (*p == ':')
            *p = '-';
    struct nova_buf d = {0};
    nova_buf_printf(&d, "{\"type\":\"%s\",\"period\":\"%s\",\"label\":", rp_type_names[rep->type],
                    rp_period_names[j->period]);
    rp_json_string(&d, j->label, strlen(j->label));
    nova_buf_str(&d, ",\"startDate\":");
    rp_json_string(&d, j->start, strlen(j->start));
    nova_buf_str(&d, ",\"endDate\":");
    rp_json_string(&d, j->end, strlen(j->end));
    nova_buf_str(&d, ",\"file\":");
    rp_json_string(&d, rep->csv_path, strlen(rep->csv_path));
    nova_buf_printf(&d, ",\"rows\":%" PRId64 ",\"bytes\":%" PRId64 ",\"summary\":", rep->rows,
                    rep->bytes);
    const char *sum = rep->summary != NULL ? rep->summary : "";
    rp_json_string(&d, sum, strlen(sum));
    nova_buf_str(&d, "}");
    struct nova_job_options o = {
        .struct_size = sizeof o,
        .job_id = m->id,
        .attempts = (int)rp->cfg->mail_attempts,
        .backoff_type = "exponential",
        .backoff_delay_ms = rp->cfg->mail_backoff_ms,
        .remove_on_complete = 1000,
        .remove_on_fail = 1000,
    };
    int rc = d.oom ? -ENOMEM : h->enqueue(h, RP_QUEUE, RP_JOB_MAIL, d.p, &o, on_mail_enqueued, m);
    nova_buf_free(&d);
    if (rc != 0) {
        h->log(h, NOVA_LOG_WARN, j->job, "the mail of %s was not queued: %s", rep->csv_path,
               strerror(-rc));
        h->metric_add(rp->m_mail_err, NULL, 1);
        free(m);
        return false;
    }
    return true;
}

static void report_done(struct rp_job *j, struct rp_report *rep, const char *mail_job)
{
    struct nova_buf item = {0};
    report_item(&item, rep, mail_job);
    if (j->done.len > 0)
        nova_buf_add(&j->done, ",", 1);
    nova_buf_str(&j->done, item.p != NULL ? item.p : "{}");
    int type = rep->type;
    j->rep = NULL;
    rp_report_free(rep);
    if (item.oom || j->cancelled) {
        nova_buf_free(&item);
        return run_next(j);
    }
    j->item = item.p;
    save_progress(j, type);
}

/* Adds "type: why" to the reasons of the run's failures. */
static void add_reason(struct rp_job *j, int type, const char *why)
{
    nova_buf_printf(&j->reason, "%s%s: %s", j->reason.len > 0 ? "; " : "", rp_type_names[type],
                    why);
}

static void on_period_report(void *arg, struct rp_report *rep)
{
    struct rp_job *j = arg;
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    if (rep->cancelled)
        j->cancelled = true;
    if (rep->status == 0) {
        h->log(h, NOVA_LOG_INFO, j->job,
               "report %s (%s %s): %" PRId64 " rows, %s, %s (%" PRId64 " bytes), %" PRId64 " ms",
               rp_type_names[rep->type], rp_period_names[j->period], j->label, rep->rows,
               rep->cache_key, rep->csv_path, rep->bytes, rep->ended_ms - rep->started_ms);
        count_run(rp, rep, "ok");
        if (mail_on(rp->cfg) && !j->cancelled && enqueue_mail(j, rep))
            return; /* on_mail_enqueued goes on */
        return report_done(j, rep, NULL);
    }
    bool transient = rep->transient || rep->cancelled;
    h->log(h, transient ? NOVA_LOG_WARN : NOVA_LOG_ERROR, j->job, "report %s (%s %s) failed: %s",
           rp_type_names[rep->type], rp_period_names[j->period], j->label, rep->error);
    count_run(rp, rep, transient ? "retry" : "failed");
    j->rep = NULL;
    if (transient)
        j->any_transient = true;
    else
        j->any_permanent = true;
    if (j->failed.len > 0)
        nova_buf_add(&j->failed, ",", 1);
    nova_buf_printf(&j->failed, "{\"type\":\"%s\",\"error\":", rp_type_names[rep->type]);
    rp_json_string(&j->failed, rep->error, strlen(rep->error));
    nova_buf_printf(&j->failed, ",\"retry\":%s}", transient ? "true" : "false");
    add_reason(j, rep->type, rep->error);
    rp_report_free(rep);
    run_next(j);
}

static void run_next(struct rp_job *j)
{
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    if (j->cancelled || j->pending_types == 0)
        return after_reports(j);
    int t = 0;
    while (!(j->pending_types & (1u << t)))
        t++;
    j->pending_types &= ~(1u << t);
    struct rp_report *rep = calloc(1, sizeof *rep);
    char name[128];
    rp_file_name(name, sizeof name, (enum rp_type)t, j->label);
    if (rep == NULL || rp_params_set(&rep->params, RP_P_START, j->start) != 0 ||
        rp_params_set(&rep->params, RP_P_END, j->end) != 0 ||
        (rep->csv_dir = strdup(rp->cfg->output_dir)) == NULL ||
        (rep->csv_name = strdup(name)) == NULL) {
        rp_report_free(rep);
        j->any_transient = true;
        add_reason(j, t, "out of memory");
        return run_next(j);
    }
    rep->host = h;
    rep->job = j->job;
    rep->type = (enum rp_type)t;
    rep->cache_ttl_s = rp->cfg->cache_ttl;
    j->rep = rep;
    int rc = rp_report_run(rep, on_period_report, j);
    if (rc != 0) {
        rep->status = rc;
        rep->transient = rc != -EINVAL;
        rep->cancelled = rc == -ECANCELED;
        snprintf(rep->error, sizeof rep->error, "not started: %s", strerror(-rc));
        rep->started_ms = rep->ended_ms = h->now_ms(h);
        on_period_report(j, rep);
    }
}

/* What earlier attempts of this job finished: kept, not redone. */
static void on_progress(void *arg, int status, const struct nova_redis_reply *reply)
{
    struct rp_job *j = arg;
    if (status == -ECANCELED) {
        j->cancelled = true;
        return period_end(j);
    }
    if (status == 0 && reply != NULL && reply->type == NOVA_REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            int t = rp_type_from_name(reply->element[i].str);
            if (t < 0 || !(j->pending_types & (1u << t)))
                continue;
            j->pending_types &= ~(1u << t);
            if (j->done.len > 0)
                nova_buf_add(&j->done, ",", 1);
            nova_buf_add(&j->done, reply->element[i + 1].str, reply->element[i + 1].len);
        }
    }
    run_next(j);
}

static char *offset_date(const char *local, int off_s)
{
    struct nova_buf b = {0};
    nova_buf_str(&b, local);
    if (off_s == 0)
        nova_buf_str(&b, "Z");
    else {
        int a = off_s < 0 ? -off_s : off_s;
        nova_buf_printf(&b, "%c%02d:%02d", off_s < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    }
    return rp_buf_take(&b);
}

/*
 * The previous period of the job's slot, in the configured time zone:
 * daily the day before the slot's day, weekly the ISO week (Monday to
 * Sunday) before the slot's, monthly the month before. startDate is its
 * first instant, endDate its last microsecond (Nova filters created_at <=
 * endDate), both with the zone's offset; label names the files.
 */
static const char period_sql[] =
    "WITH l AS (SELECT date_trunc($3, to_timestamp($1::bigint / 1000.0) AT TIME ZONE $2) AS cur), "
    "p AS (SELECT cur - ('1 ' || $3)::interval AS ls, cur AS le FROM l), "
    "i AS (SELECT ls, ls AT TIME ZONE $2 AS s_at, (le AT TIME ZONE $2) - interval '1 microsecond' "
    "AS e_at FROM p) "
    "SELECT to_char(ls, 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
    "extract(epoch FROM ls - (s_at AT TIME ZONE 'UTC'))::int, "
    "to_char(e_at AT TIME ZONE $2, 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
    "extract(epoch FROM (e_at AT TIME ZONE $2) - (e_at AT TIME ZONE 'UTC'))::int, "
    "CASE $3 WHEN 'day' THEN to_char(ls, 'YYYY-MM-DD') WHEN 'week' THEN to_char(ls, "
    "'IYYY-\"W\"IW') ELSE to_char(ls, 'YYYY-MM') END FROM i";

static void on_period(void *arg, int status, const nova_pg_result *res)
{
    struct rp_job *j = arg;
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    const struct nova_pg_api *pg = h->pg;
    if (status != 0 || pg->ntuples(res) != 1) {
        char why[400];
        snprintf(why, sizeof why, "computing the %s period: %s", rp_period_names[j->period],
                 status != 0 ? pg->error_message(res) : "no row");
        return job_end(j, status == -ECANCELED || nova_pg_error_retryable(status), why);
    }
    int64_t so = 0, eo = 0;
    pg->get_int64(res, 0, 1, &so);
    pg->get_int64(res, 0, 3, &eo);
    j->start = offset_date(pg->get_text(res, 0, 0), (int)so);
    j->end = offset_date(pg->get_text(res, 0, 2), (int)eo);
    j->label = strdup(pg->get_text(res, 0, 4));
    struct nova_buf key = {0};
    nova_buf_printf(&key, "reports:progress:%s", h->job_id(j->job));
    j->progress_key = key.p;
    if (j->start == NULL || j->end == NULL || j->label == NULL || key.oom)
        return job_end(j, true, "out of memory");
    if (h->job_attempts_made(j->job) > 0) {
        const char *argv[] = {"HGETALL", j->progress_key};
        if (h->redis->command(h, 2, argv, NULL, on_progress, j) == 0)
            return;
    }
    run_next(j);
}

static void do_period(struct rp_job *j)
{
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    const cJSON *data = h->job_data(j->job);
    const cJSON *period = cJSON_GetObjectItemCaseSensitive(data, "period");
    int p = -1;
    for (int i = 0; i < RP_NPERIODS && cJSON_IsString(period); i++)
        if (strcmp(period->valuestring, rp_period_names[i]) == 0)
            p = i;
    if (p < 0)
        return job_end(j, false, "data.period must be daily, weekly or monthly");
    unsigned types[RP_NPERIODS];
    char err[200];
    if (check_config(rp->cfg, types, err, sizeof err) != 0)
        return job_end(j, false, err);
    j->period = p;
    j->pending_types = types[p];
    /* data.types: a subset to run now (`nova-worker queue add` by ops) */
    const cJSON *only = cJSON_GetObjectItemCaseSensitive(data, "types");
    if (cJSON_IsString(only)) {
        unsigned set;
        if (rp_type_list(only->valuestring, &set, err, sizeof err) != 0)
            return job_end(j, false, err);
        j->pending_types = set;
    } else if (only != NULL) {
        return job_end(j, false, "data.types must be a string (\"user, campaign\")");
    }
    if (j->pending_types == 0) {
        char why[80];
        snprintf(why, sizeof why, "no report types are configured for %s", rp_period_names[p]);
        return job_end(j, false, why);
    }
    static const char *const units[] = {"day", "week", "month"};
    char ms[24];
    snprintf(ms, sizeof ms, "%" PRId64, h->job_timestamp_ms(j->job));
    const char *tz =
        rp->cfg->timezone != NULL && rp->cfg->timezone[0] != '\0' ? rp->cfg->timezone : "UTC";
    const char *params[] = {ms, tz, units[p]};
    int rc = h->pg->query(h, period_sql, 3, params, on_period, j);
    if (rc != 0) {
        snprintf(err, sizeof err, "period query not started: %s", strerror(-rc));
        job_end(j, true, err);
    }
}

/* ---- mail ------------------------------------------------------------------------------- */

static void mail_end(struct rp_job *j, int status, bool retry, const char *fmt, ...)
    NOVA_PRINTF(4, 5);

static void mail_end(struct rp_job *j, int status, bool retry, const char *fmt, ...)
{
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *outcome = status == 0 ? "sent" : retry ? "retry" : "failed";
    const char *lv[] = {outcome, NULL};
    h->metric_add(rp->m_mails, lv, 1);
    if (status == 0) {
        h->log(h, NOVA_LOG_INFO, j->job, "%s", msg);
        char res[128];
        snprintf(res, sizeof res, "{\"sent\":true,\"attached\":%s}", j->attach ? "true" : "false");
        h->job_done(j->job, res);
    } else {
        h->metric_add(rp->m_mail_err, NULL, 1);
        h->log(h, retry ? NOVA_LOG_WARN : NOVA_LOG_ERROR, j->job, "%s", msg);
        if (retry)
            h->job_retry(j->job, msg, -1);
        else
            h->job_fail(j->job, msg);
    }
    job_free(j);
}

static void on_sent(void *arg, const struct nova_http_response *res)
{
    struct rp_job *j = arg;
    if (res->error == 0)
        return mail_end(j, 0, false, "mailed %s to %s", j->mail_name, j->rp->cfg->mail_to);
    /* a refused address or message stays refused; the rest may pass */
    bool retry = !(res->error == -EIO && res->status >= 500 && res->status < 600) &&
                 res->error != -EACCES && res->error != -EINVAL;
    mail_end(j, res->error, retry, "mail of %s: %s", j->mail_name, res->error_message);
}

static void send_mail(struct rp_job *j)
{
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    const cJSON *data = h->job_data(j->job);
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "type"));
    const char *period = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "period"));
    const char *label = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "label"));
    const char *start = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "startDate"));
    const char *end = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "endDate"));
    const char *summary = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "summary"));
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(data, "rows");
    char subject[200];
    snprintf(subject, sizeof subject, "Nova %s %s report %s", period, type, label);
    struct nova_buf body = {0};
    nova_buf_printf(&body, "Nova Rewards %s report, %s\n\nPeriod: %s to %s\nRows: %.0f\n\n%s\n",
                    type, period, start, end, cJSON_IsNumber(rows) ? rows->valuedouble : 0.0,
                    summary != NULL ? summary : "");
    if (j->attach)
        nova_buf_printf(&body, "The CSV file is attached (%s).\n", j->mail_name);
    else
        nova_buf_printf(&body,
                        "The CSV file (%zu bytes or more) is larger than max_attachment (%" PRId64
                        " bytes) and is not attached. It is on the worker at %s.\n",
                        j->attachment.len, rp->cfg->max_attachment, j->mail_path);
    char msgid[160];
    snprintf(msgid, sizeof msgid, "<%s.%" PRId64 "@nova-worker>", h->job_id(j->job), h->now_ms(h));
    for (char *p = msgid; *p != '\0'; p++)
        if (*p == ':')
            *p = '.';
    struct rp_mail_parts parts = {
        .from = rp->cfg->mail_from,
        .to = (const char *const *)rp->mail_to,
        .subject = subject,
        .body = body.p != NULL ? body.p : "",
        .filename = j->attach ? j->mail_name : NULL,
        .attachment = j->attachment.p,
        .attachment_len = j->attachment.len,
        .date_ms = h->now_ms(h),
        .message_id = msgid,
    };
    size_t len = 0;
    char *msg = body.oom ? NULL : rp_mail_build(&parts, &len);
    nova_buf_free(&body);
    nova_buf_free(&j->attachment);
    if (msg == NULL)
        return mail_end(j, -ENOMEM, true, "mail of %s: out of memory", j->mail_name);
    struct nova_mail_request mq = {
        .struct_size = sizeof mq,
        .url = rp->cfg->smtp_url,
        .from = rp->cfg->mail_from,
        .to = (const char *const *)rp->mail_to,
        .message = msg,
        .message_len = len,
        .username = rp->cfg->smtp_username,
        .password = rp->cfg->smtp_password,
        .timeout_ms = rp->cfg->mail_timeout_ms,
        .flags = rp->cfg->smtp_starttls ? 0 : NOVA_MAIL_ALLOW_PLAINTEXT,
    };
    int rc = h->http->mail(h, &mq, on_sent, j);
    free(msg);
    if (rc != 0)
        mail_end(j, rc, rc != -EINVAL, "mail of %s not started: %s", j->mail_name, strerror(-rc));
}

static void on_mail_closed(void *arg, int status)
{
    struct rp_job *j = arg;
    if (status == -ECANCELED)
        return mail_end(j, status, true, "worker stopping");
    send_mail(j);
}

static void on_mail_read(void *arg, int status, const void *data, size_t len)
{
    struct rp_job *j = arg;
    const struct nova_host *h = j->rp->host;
    if (status == -ECANCELED)
        return mail_end(j, status, true, "worker stopping");
    if (status != 0) {
        nova_file *f = j->file;
        j->file = NULL;
        h->file->close(f, on_mail_closed, j); /* then sent without the file */
        j->attach = false;
        h->log(h, NOVA_LOG_WARN, j->job, "reading %s: %s", j->mail_path, strerror(-status));
        return;
    }
    nova_buf_add(&j->attachment, data, len);
    if (j->attachment.oom)
        return mail_end(j, -ENOMEM, true, "mail of %s: out of memory", j->mail_name);
    bool too_big = (int64_t)j->attachment.len > j->rp->cfg->max_attachment;
    if (len > 0 && !too_big) {
        int rc = h->file->read(j->file, 256 * 1024, on_mail_read, j);
        if (rc == 0)
            return;
        too_big = true;
    }
    j->attach = !too_big;
    nova_file *f = j->file;
    j->file = NULL;
    if (h->file->close(f, on_mail_closed, j) != 0)
        send_mail(j);
}

static void on_mail_open(void *arg, int status, nova_file *f)
{
    struct rp_job *j = arg;
    const struct nova_host *h = j->rp->host;
    if (status == -ECANCELED)
        return mail_end(j, status, true, "worker stopping");
    if (status != 0)
        return mail_end(j, status, false, "mail of %s: %s (retention may have removed it)",
                        j->mail_path, strerror(-status));
    j->file = f;
    int rc = h->file->read(f, 256 * 1024, on_mail_read, j);
    if (rc != 0) {
        j->file = NULL;
        j->attach = false;
        if (h->file->close(f, on_mail_closed, j) != 0)
            send_mail(j);
    }
}

static void do_mail(struct rp_job *j)
{
    struct rp *rp = j->rp;
    const struct nova_host *h = rp->host;
    if (!mail_on(rp->cfg) || !NOVA_HOST_HAS(h, http) ||
        h->http->struct_size < offsetof(struct nova_http_api, mail) + sizeof h->http->mail ||
        h->http->mail == NULL)
        return job_end(j, false,
                       "e-mail is not configured (smtp_url) or this host cannot send mail");
    const cJSON *data = h->job_data(j->job);
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "file"));
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(data, "bytes");
    static const char *const need[] = {"type", "period", "label", "startDate", "endDate"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, need[i])) == NULL) {
            char why[80];
            snprintf(why, sizeof why, "data.%s must be a string", need[i]);
            return job_end(j, false, why);
        }
    if (file == NULL || file[0] != '/')
        return job_end(j, false, "data.file must be an absolute path");
    const char *slash = strrchr(file, '/');
    j->mail_path = strdup(file);
    j->mail_name = strdup(slash + 1);
    if (j->mail_path == NULL || j->mail_name == NULL)
        return job_end(j, true, "out of memory");
    if (cJSON_IsNumber(bytes) && bytes->valuedouble > (double)rp->cfg->max_attachment) {
        j->attachment.len = (size_t)bytes->valuedouble; /* named in the body only */
        j->attach = false;
        send_mail(j);
        return;
    }
    int rc = h->file->open(h, file, NOVA_FILE_READ, 0, on_mail_open, j);
    if (rc != 0)
        mail_end(j, rc, false, "mail of %s: %s", file, strerror(-rc));
}

/* ---- the plugin --------------------------------------------------------------------------- */

static void on_job(void *arg, nova_job *job)
{
    struct rp *rp = arg;
    const struct nova_host *h = rp->host;
    struct rp_job *j = job_new(rp, job);
    if (j == NULL) {
        h->job_retry(job, "out of memory", -1);
        return;
    }
    const char *name = h->job_name(job);
    if (strcmp(name, RP_JOB_GENERATE) == 0)
        do_generate(j);
    else if (strcmp(name, RP_JOB_PERIOD) == 0)
        do_period(j);
    else
        do_mail(j);
}

static char **split_addresses(const char *list)
{
    size_t n = 0, cap = 4;
    char **v = calloc(cap + 1, sizeof *v);
    const char *p = list != NULL ? list : "", *w;
    size_t wl;
    while (v != NULL && next_address(&p, &w, &wl)) {
        if (n == cap) {
            char **nv = realloc(v, (cap * 2 + 1) * sizeof *v);
            if (nv == NULL)
                break;
            v = nv;
            cap *= 2;
        }
        v[n] = strndup(w, wl);
        if (v[n] == NULL)
            break;
        v[++n] = NULL;
    }
    return v;
}

static void free_addresses(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

static int rp_init(const struct nova_host *host, const void *config, void **state)
{
    const struct rp_config *cfg = config;
    if (!NOVA_HOST_HAS(host, pg) || !NOVA_HOST_HAS(host, redis) || !NOVA_HOST_HAS(host, file) ||
        !NOVA_HOST_HAS(host, subscribe)) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "reports needs PostgreSQL, Redis, files and queues from the host");
        return -ENOTSUP;
    }
    unsigned types[RP_NPERIODS];
    char err[256];
    if (check_config(cfg, types, err, sizeof err) != 0) {
        host->log(host, NOVA_LOG_ERROR, NULL, "reports: %s", err);
        return -EINVAL;
    }
    if (mail_on(cfg) && (!NOVA_HOST_HAS(host, http) || host->http->mail == NULL)) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "reports: smtp_url is set but the host has no mail()");
        return -ENOTSUP;
    }
    struct rp *rp = calloc(1, sizeof *rp);
    if (rp == NULL)
        return -ENOMEM;
    rp->host = host;
    rp->cfg = cfg;
    if (mail_on(cfg) && (rp->mail_to = split_addresses(cfg->mail_to)) == NULL) {
        free(rp);
        return -ENOMEM;
    }
    static const char *const l_type_outcome[] = {"type", "outcome", NULL};
    static const char *const l_type[] = {"type", NULL};
    static const char *const l_outcome[] = {"outcome", NULL};
    static const double buckets[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900};
    rp->m_runs = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_reports_runs_total",
                                  "Reports run, by type and outcome (ok, retry, failed)",
                                  l_type_outcome, NULL, 0);
    rp->m_rows = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_reports_rows_total",
                                  "Rows of the reports written, by type", l_type, NULL, 0);
    rp->m_seconds = host->metric_new(host, NOVA_METRIC_HISTOGRAM, "nova_reports_duration_seconds",
                                     "Time of one report (queries, cache, file), by type", l_type,
                                     buckets, sizeof buckets / sizeof buckets[0]);
    rp->m_bytes = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_reports_file_bytes_total",
                                   "Bytes of the CSV files written, by type", l_type, NULL, 0);
    rp->m_mails =
        host->metric_new(host, NOVA_METRIC_COUNTER, "nova_reports_mails_total",
                         "Mail jobs by outcome (sent, retry, failed)", l_outcome, NULL, 0);
    rp->m_mail_err =
        host->metric_new(host, NOVA_METRIC_COUNTER, "nova_reports_mail_failures_total",
                         "Report mails that failed an attempt or were not queued", NULL, NULL, 0);
    rp->m_removed = host->metric_new(host, NOVA_METRIC_COUNTER, "nova_reports_files_removed_total",
                                     "Report files removed by retention", NULL, NULL, 0);
    static const char *const names[] = {RP_JOB_GENERATE, RP_JOB_PERIOD, RP_JOB_MAIL, NULL};
    struct nova_subscription sub = {
        .struct_size = sizeof sub,
        .queue = RP_QUEUE,
        .job_names = names,
        .concurrency = (unsigned)cfg->concurrency,
        .handle = on_job,
        .arg = rp,
    };
    int rc = host->subscribe(host, &sub);
    if (rc != 0) {
        free_addresses(rp->mail_to);
        free(rp);
        return rc;
    }
    host->log(host, NOVA_LOG_INFO, NULL,
              "reports: queue %s, ttl %" PRId64 " s, daily \"%s\", weekly \"%s\", monthly \"%s\" "
              "(%s), files in %s, mail %s",
              RP_QUEUE, cfg->cache_ttl, period_types(cfg, RP_DAILY), period_types(cfg, RP_WEEKLY),
              period_types(cfg, RP_MONTHLY), cfg->timezone != NULL ? cfg->timezone : "UTC",
              cfg->output_dir != NULL ? cfg->output_dir : "-", mail_on(cfg) ? "on" : "off");
    *state = rp;
    return 0;
}

/* A job still listed waits on a statement whose callback the host detached
 * (the shutdown timeout gave the job back; its outcome is ignored): its
 * report is freed here. The others ended on the host's -ECANCELED. */
static void rp_shutdown(void *state)
{
    struct rp *rp = state;
    while (rp->jobs != NULL) {
        struct rp_job *j = rp->jobs;
        rp_report_abandon(j->rep);
        j->rep = NULL;
        job_end(j, true, "worker stopped");
    }
    free_addresses(rp->mail_to);
    free(rp);
}

static const struct nova_plugin rp_plugin = {
    NOVA_PLUGIN_ABI,
    /* HTTP: the host's mail() lives in the HTTP module (libcurl). */
    .requires = NOVA_REQUIRES_REDIS | NOVA_REQUIRES_PG | NOVA_REQUIRES_HTTP,
    .name = "reports",
    .version = "1.0.0",
    .description = "Nova's reports (user, campaign, transaction, revenue) into its Redis cache, "
                   "CSV files and e-mail",
    .config = rp_config_table,
    .config_size = sizeof(struct rp_config),
    .required_columns = rp_columns,
    .init = rp_init,
    .shutdown = rp_shutdown,
    .schedules = rp_schedules,
};

NOVA_PLUGIN_DEFINE(rp_plugin)
