/*
 * backups - encrypted, verified PostgreSQL backups of Nova's database,
 * kept locally and optionally on S3 (docs/plugins/backups.md).
 *
 * This file is the plugin as the runtime sees it: the descriptor, the
 * config table, the schedule (one job per slot per fleet, on queue
 * "backups", job name "backup"), the job handler and the metrics. The work
 * is in bk_run.c (one backup), bk_verify.c, bk_keep.c, bk_s3.c; the
 * `nova-worker backup` command in bk_cli.c.
 *
 * The plugin declares HTTP only (for S3): pg_dump connects by itself with
 * the plugin's own `dsn`, so the core PostgreSQL pool is never needed and
 * `backup keygen`, `list` and `verify` run where no database is reachable.
 */
#include "bk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define C(field) offsetof(struct bk_config, field)

static const struct nova_config_entry bk_config_table[] = {
    {.key = "queue",
     .type = NOVA_CONFIG_STRING,
     .default_value = BK_QUEUE_DEFAULT,
     .offset = C(queue),
     .help = "BullMQ queue of the backup jobs (job name \"backup\")"},
    {.key = "schedule",
     .type = NOVA_CONFIG_STRING,
     .default_value = "0 2 * * *",
     .offset = C(schedule),
     .env = "BACKUP_SCHEDULE_UTC",
     .help = "when the runtime adds a backup job: a cron line, \"every <duration>\", or HH:MM "
             "(daily, UTC); empty = never (jobs added by hand only)"},
    {.key = "timezone",
     .type = NOVA_CONFIG_STRING,
     .default_value = "UTC",
     .offset = C(timezone),
     .help = "IANA time zone a cron schedule is read in (HH:MM is always UTC)"},
    {.key = "backup_dir",
     .type = NOVA_CONFIG_STRING,
     .default_value = "/var/lib/nova-worker/backups",
     .offset = C(backup_dir),
     .help = "directory of the encrypted dumps and their manifests (created 0700)"},
    {.key = "key_file",
     .type = NOVA_CONFIG_STRING,
     .default_value = "",
     .offset = C(key_file),
     .help = "file holding the backup key (64 hex digits; `nova-worker backup keygen FILE`); "
             "else the credential backups-key, else $BACKUP_ENCRYPTION_KEY"},
    {.key = "dsn",
     .type = NOVA_CONFIG_SECRET,
     .default_value = NULL,
     .offset = C(dsn),
     .env = "DATABASE_URL",
     .help = "the database to back up (libpq URI or key=value); the password reaches pg_dump "
             "through its environment, never its command line"},
    {.key = "pg_dump",
     .type = NOVA_CONFIG_STRING,
     .default_value = "pg_dump",
     .offset = C(pg_dump),
     .help = "pg_dump program (a path, or a name looked up in PATH)"},
    {.key = "pg_restore",
     .type = NOVA_CONFIG_STRING,
     .default_value = "pg_restore",
     .offset = C(pg_restore),
     .help = "pg_restore program, for verify and restore"},
    {.key = "psql",
     .type = NOVA_CONFIG_STRING,
     .default_value = "psql",
     .offset = C(psql),
     .help = "psql program, for restore's check that the target database is empty"},
    {.key = "keep_last",
     .type = NOVA_CONFIG_INT,
     .default_value = "0",
     .offset = C(keep_last),
     .help = "keep the N newest backups",
     .min = 0,
     .max = 100000},
    {.key = "keep_daily",
     .type = NOVA_CONFIG_INT,
     .default_value = "7",
     .offset = C(keep_daily),
     .help = "keep the newest backup of each of the N most recent days that have one (UTC)",
     .min = 0,
     .max = 100000},
    {.key = "keep_weekly",
     .type = NOVA_CONFIG_INT,
     .default_value = "4",
     .offset = C(keep_weekly),
     .help = "... of each of the N most recent ISO weeks that have one",
     .min = 0,
     .max = 100000},
    {.key = "keep_monthly",
     .type = NOVA_CONFIG_INT,
     .default_value = "6",
     .offset = C(keep_monthly),
     .help = "... of each of the N most recent months that have one",
     .min = 0,
     .max = 100000},
    {.key = "verify",
     .type = NOVA_CONFIG_BOOL,
     .default_value = "yes",
     .offset = C(verify),
     .help = "after each backup, decrypt it, check its sha256 and run pg_restore --list on it"},
    {.key = "timeout",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "6h",
     .offset = C(timeout_ms),
     .help = "pg_dump is stopped (and the job retried) after this long",
     .min = 1000,
     .max = 7 * 86400000LL},
    {.key = "retry_delay",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "0",
     .offset = C(retry_delay_ms),
     .help = "delay before a failed backup job is retried; 0 = the job's own backoff",
     .min = 0,
     .max = 86400000},
    {.key = "s3_endpoint",
     .type = NOVA_CONFIG_STRING,
     .default_value = "",
     .offset = C(s3_endpoint),
     .help = "S3-compatible endpoint URL (path-style requests); empty = AWS "
             "(https://s3.REGION.amazonaws.com)"},
    {.key = "s3_bucket",
     .type = NOVA_CONFIG_STRING,
     .default_value = "",
     .offset = C(s3_bucket),
     .help = "bucket of the off-site copies; empty = no off-site copy"},
    {.key = "s3_region",
     .type = NOVA_CONFIG_STRING,
     .default_value = "us-east-1",
     .offset = C(s3_region),
     .help = "region the requests are signed for (AWS SigV4)"},
    {.key = "s3_prefix",
     .type = NOVA_CONFIG_STRING,
     .default_value = "",
     .offset = C(s3_prefix),
     .help = "prefix of the object keys, e.g. \"postgres/\""},
    {.key = "s3_access_key_id",
     .type = NOVA_CONFIG_SECRET,
     .default_value = NULL,
     .offset = C(s3_access_key_id),
     .env = "AWS_ACCESS_KEY_ID",
     .help = "S3 access key id"},
    {.key = "s3_secret_access_key",
     .type = NOVA_CONFIG_SECRET,
     .default_value = NULL,
     .offset = C(s3_secret_access_key),
     .env = "AWS_SECRET_ACCESS_KEY",
     .help = "S3 secret access key"},
    {.key = "s3_part_size",
     .type = NOVA_CONFIG_INT,
     .default_value = "8388608",
     .offset = C(s3_part_size),
     .help = "bytes per part of a multipart upload; larger files go up in parts (5 MiB to 5 GiB)",
     .min = 5 * 1024 * 1024,
     .max = 5368709120LL},
    {.key = "s3_timeout",
     .type = NOVA_CONFIG_DURATION,
     .default_value = "5m",
     .offset = C(s3_timeout_ms),
     .help = "time limit of one S3 request (one part)",
     .min = 1000,
     .max = 86400000},
    {.key = NULL},
};

/* ---- the schedule ------------------------------------------------------------------------ */

/* Cron lines for HH:MM (Nova's BACKUP_SCHEDULE_UTC), one per minute of
 * the day, in static storage since schedules() must return strings that
 * outlive the call and may not allocate. */
static char bk_hhmm_specs[24 * 60][32];

/* "HH:MM" -> its slot in bk_hhmm_specs, or -1 when spec is not HH:MM;
 * -2 when it looks like HH:MM but is out of range. */
static int hhmm_index(const char *spec)
{
    int h = 0, m = 0, digits = 0;
    const char *p = spec;
    while (*p >= '0' && *p <= '9' && digits < 3) {
        h = h * 10 + (*p++ - '0');
        digits++;
    }
    if (digits < 1 || digits > 2 || *p != ':')
        return -1;
    p++;
    if (!(p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] == '\0'))
        return -1;
    m = (p[0] - '0') * 10 + (p[1] - '0');
    if (h > 23 || m > 59)
        return -2;
    return h * 60 + m;
}

static int bk_schedules(const void *config, struct nova_schedule *out, size_t max, char *err,
                        size_t errlen)
{
    const struct bk_config *cfg = config;
    if (cfg->schedule == NULL || cfg->schedule[0] == '\0')
        return 0;
    if (max < 1) {
        snprintf(err, errlen, "no room for the backups schedule");
        return -ENOSPC;
    }
    const char *spec = cfg->schedule, *tz = cfg->timezone;
    int i = hhmm_index(spec);
    if (i == -2) {
        snprintf(err, errlen, "schedule '%s': HH:MM must be 00:00 to 23:59 (UTC)", spec);
        return -EINVAL;
    }
    if (i >= 0) {
        snprintf(bk_hhmm_specs[i], sizeof bk_hhmm_specs[i], "%d %d * * *", i % 60, i / 60);
        spec = bk_hhmm_specs[i];
        tz = "UTC";
    }
    out[0] = (struct nova_schedule){
        .id = BK_SCHEDULE_ID,
        .queue = cfg->queue,
        .job_name = BK_JOB_NAME,
        .spec = spec,
        .timezone = tz,
        .data_json = NULL,
    };
    return 1;
}

/* ---- jobs --------------------------------------------------------------------------------- */

struct bk_plugin {
    struct bk_ctx ctx;
};

struct jobrun {
    struct bk_plugin *st;
    nova_job *job;
};

static void on_run_done(void *arg, const struct bk_outcome *o)
{
    struct jobrun *jr = arg;
    const struct bk_ctx *ctx = &jr->st->ctx;
    const struct nova_host *h = ctx->host;
    const char *outcome;
    if (o->status == 0) {
        h->job_done(jr->job, o->result);
        outcome = "ok";
    } else if (o->transient) {
        bk_log(ctx, NOVA_LOG_WARN, jr->job, "backup failed, to be retried: %s", o->reason);
        h->job_retry(jr->job, o->reason,
                     ctx->cfg->retry_delay_ms > 0 ? ctx->cfg->retry_delay_ms : -1);
        outcome = "retry";
    } else {
        bk_log(ctx, NOVA_LOG_ERROR, jr->job, "backup failed: %s", o->reason);
        h->job_fail(jr->job, o->reason);
        outcome = "failed";
    }
    const char *lv[] = {outcome, NULL};
    h->metric_add(ctx->m_runs, lv, 1);
    free(jr);
}

/* The time a job's backup is named after, the same on every attempt: the
 * slot of a scheduled run (its id is repeat:<scheduler>:<slot ms>; its
 * timestamp is when the scheduler queued it, before the slot), else the
 * time the job was added. */
static int64_t job_time(const struct nova_host *h, const nova_job *job)
{
    const char *id = h->job_id(job);
    const char *colon = id != NULL && strncmp(id, "repeat:", 7) == 0 ? strrchr(id, ':') : NULL;
    if (colon != NULL && colon[1] != '\0') {
        char *end = NULL;
        long long slot = strtoll(colon + 1, &end, 10);
        if (*end == '\0' && slot > 0)
            return slot;
    }
    return h->job_timestamp_ms(job);
}

static void on_job(void *arg, nova_job *job)
{
    struct bk_plugin *st = arg;
    const struct nova_host *h = st->ctx.host;
    struct jobrun *jr = calloc(1, sizeof *jr);
    if (jr == NULL) {
        h->job_retry(job, "out of memory", -1);
        return;
    }
    jr->st = st;
    jr->job = job;
    int rc = bk_run_start(&st->ctx, job_time(h, job), job, on_run_done, jr);
    if (rc != 0) {
        free(jr);
        h->job_retry(job, rc == -ENOMEM ? "out of memory" : "backup not started", -1);
    }
}

static int bk_init(const struct nova_host *host, const void *config, void **state)
{
    const struct bk_config *cfg = config;
    if (!NOVA_HOST_HAS(host, process) || !NOVA_HOST_HAS(host, file) ||
        !NOVA_HOST_HAS(host, subscribe)) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "backups needs child processes, files and queues from the host (ABI 1.3)");
        return -ENOTSUP;
    }
    if (sodium_init() < 0)
        return -EIO;
    if (cfg->queue == NULL || cfg->queue[0] == '\0' || cfg->backup_dir == NULL ||
        cfg->backup_dir[0] != '/') {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "backups: queue must not be empty and backup_dir must be an absolute path");
        return -EINVAL;
    }
    if (cfg->dsn == NULL || cfg->dsn[0] == '\0')
        host->log(host, NOVA_LOG_WARN, NULL,
                  "backups: no dsn (nor DATABASE_URL): every backup job will fail");
    if (bk_s3_enabled(cfg) &&
        (cfg->s3_access_key_id == NULL || cfg->s3_secret_access_key == NULL)) {
        host->log(host, NOVA_LOG_ERROR, NULL,
                  "backups: s3_bucket is set but s3_access_key_id / s3_secret_access_key are not "
                  "(nor AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)");
        return -EINVAL;
    }
    if (bk_s3_enabled(cfg) && !NOVA_HOST_HAS(host, http)) {
        host->log(host, NOVA_LOG_ERROR, NULL, "backups: S3 needs the host's HTTP client");
        return -ENOTSUP;
    }
    struct bk_plugin *st = calloc(1, sizeof *st);
    if (st == NULL)
        return -ENOMEM;
    struct bk_ctx *ctx = &st->ctx;
    ctx->host = host;
    ctx->cfg = cfg;
    static const char *const l_outcome[] = {"outcome", NULL};
    static const char *const l_location[] = {"location", NULL};
    static const double secs[] = {1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 28800};
    ctx->m_runs =
        host->metric_new(host, NOVA_METRIC_COUNTER, "nova_backup_runs_total",
                         "Backup jobs by outcome (ok, retry, failed)", l_outcome, NULL, 0);
    ctx->m_last_success = host->metric_new(
        host, NOVA_METRIC_GAUGE, "nova_backup_last_success_timestamp_seconds",
        "Unix time of the last backup that completed (dumped, verified, copied)", NULL, NULL, 0);
    ctx->m_duration = host->metric_new(host, NOVA_METRIC_HISTOGRAM, "nova_backup_duration_seconds",
                                       "Time of one backup job, from start to retention", NULL,
                                       secs, sizeof secs / sizeof secs[0]);
    ctx->m_size = host->metric_new(host, NOVA_METRIC_GAUGE, "nova_backup_size_bytes",
                                   "Size of the last encrypted backup file", NULL, NULL, 0);
    ctx->m_verify_fail = host->metric_new(
        host, NOVA_METRIC_COUNTER, "nova_backup_verify_failures_total",
        "Backups that failed their verification (alert on any increase)", NULL, NULL, 0);
    ctx->m_s3_fail =
        host->metric_new(host, NOVA_METRIC_COUNTER, "nova_backup_s3_upload_failures_total",
                         "Off-site copies to S3 that failed", NULL, NULL, 0);
    ctx->m_deleted = host->metric_new(
        host, NOVA_METRIC_COUNTER, "nova_backup_retention_deleted_total",
        "Backups deleted by retention, by location (local, s3)", l_location, NULL, 0);
    ctx->m_kept =
        host->metric_new(host, NOVA_METRIC_GAUGE, "nova_backup_kept",
                         "Backups kept after the last retention, by location", l_location, NULL, 0);
    /* present from the start, so that an alert on an increase sees 0 */
    host->metric_add(ctx->m_verify_fail, NULL, 0);
    host->metric_add(ctx->m_s3_fail, NULL, 0);
    static const char *const names[] = {BK_JOB_NAME, NULL};
    struct nova_subscription sub = {
        .struct_size = sizeof sub,
        .queue = cfg->queue,
        .job_names = names,
        .concurrency = 1,
        .handle = on_job,
        .arg = st,
    };
    int rc = host->subscribe(host, &sub);
    if (rc != 0) {
        free(st);
        return rc;
    }
    host->log(host, NOVA_LOG_INFO, NULL,
              "backups: queue %s, schedule \"%s\", dir %s, keep last %" PRId64 " / daily %" PRId64
              " / weekly %" PRId64 " / monthly %" PRId64 ", verify %s, S3 %s",
              cfg->queue, cfg->schedule != NULL ? cfg->schedule : "", cfg->backup_dir,
              cfg->keep_last, cfg->keep_daily, cfg->keep_weekly, cfg->keep_monthly,
              cfg->verify ? "yes" : "no", bk_s3_enabled(cfg) ? cfg->s3_bucket : "off");
    *state = st;
    return 0;
}

static void bk_shutdown(void *state)
{
    free(state);
}

static const struct nova_command bk_commands[] = {
    {.name = "backup",
     .summary = "list, make, verify, restore and fetch database backups; make a backup key",
     .usage = "usage: nova-worker backup list [-c FILE]\n"
              "       nova-worker backup now [-c FILE]\n"
              "       nova-worker backup verify NAME [-c FILE]\n"
              "       nova-worker backup restore NAME --into DSN [--force] [--no-owner] [-c FILE]\n"
              "       nova-worker backup fetch NAME [-c FILE]\n"
              "       nova-worker backup keygen FILE\n"
              "The [plugin backups] section of FILE gives backup_dir, the key, the database and "
              "S3.\n",
     .run = bk_cli_run},
    {.name = NULL},
};

static const struct nova_plugin bk_plugin = {
    NOVA_PLUGIN_ABI,
    .requires = NOVA_REQUIRES_HTTP,
    .name = "backups",
    .version = "1.0.0",
    .description = "Encrypted, verified PostgreSQL backups, kept locally and on S3",
    .config = bk_config_table,
    .config_size = sizeof(struct bk_config),
    .init = bk_init,
    .shutdown = bk_shutdown,
    .schedules = bk_schedules,
    .commands = bk_commands,
};

NOVA_PLUGIN_DEFINE(bk_plugin)
