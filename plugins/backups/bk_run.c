/*
 * bk_run - one backup, from pg_dump to retention, for a job of the queue
 * or `nova-worker backup now`.
 *
 * pg_dump --format=custom runs as a child of the loop; each chunk of its
 * stdout is encrypted (bk_crypto), hashed and queued to host->file as it
 * arrives, into <name>.dump.enc.tmp. While more than BK_INFLIGHT_HIGH bytes
 * wait for the disk, pg_dump is paused (its pipe fills and it blocks), so
 * memory is bounded by a few MiB whatever the size of the database. Only a
 * dump that pg_dump finished with status 0 and that reached the disk whole
 * (fsync) is renamed to its final name; every failure removes the .tmp.
 *
 * Then the manifest (tmp, fsync, rename), the verification (decrypt into
 * pg_restore --list), the S3 copy and retention. The name comes from the
 * job's timestamp, which is its schedule slot: a retried slot finds its own
 * backup and resumes after the last step that completed instead of dumping
 * again.
 */
#include "bk.h"
#include "bk_dsn.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define BK_WRITE_BUF     (1u << 20)
#define BK_INFLIGHT_HIGH (4u << 20)
#define BK_INFLIGHT_LOW  (1u << 20)

struct run {
    const struct bk_ctx *ctx;
    const struct nova_host *host;
    const struct bk_config *cfg;
    nova_job *job;
    bk_run_cb cb;
    void *arg;
    int64_t started_ms;
    char name[BK_NAME_MAX];
    char *tmp, *final, *mpath;
    unsigned char key[BK_KEY_BYTES];
    struct bk_dsn dsn;
    char **env;
    struct bk_manifest man;

    /* the dump */
    nova_file *f;
    nova_process *proc;
    nova_timer *timer;
    struct bk_enc enc;
    bool enc_ready;
    crypto_hash_sha256_state sha;
    unsigned char *out;
    size_t out_fill;
    uint64_t size, inflight;
    bool paused, timed_out, dump_exited, finishing, synced, sync_pending, aborting, closing;
    int write_err, sync_err;
    int dump_status, dump_code, dump_signal;
    char dump_err[640];

    bool s3_copied;
    char reason[BK_REASON_MAX];
    char result[1024];
};

struct wreq {
    struct run *run;
    size_t len;
};

static void run_free(struct run *r)
{
    sodium_memzero(r->key, sizeof r->key);
    bk_dsn_free(&r->dsn);
    bk_strv_free(r->env);
    if (r->enc_ready)
        bk_enc_free(&r->enc);
    free(r->out);
    free(r->tmp);
    free(r->final);
    free(r->mpath);
    free(r);
}

static void run_end(struct run *r, int status, bool transient)
{
    struct bk_outcome o = {
        .status = status,
        .transient = transient,
        .reason = r->reason,
        .name = r->name[0] != '\0' ? r->name : NULL,
        .result = status == 0 ? r->result : NULL,
    };
    r->cb(r->arg, &o);
    run_free(r);
}

static void run_fail(struct run *r, int status, bool transient, const char *fmt, ...)
    NOVA_PRINTF(4, 5);

static void run_fail(struct run *r, int status, bool transient, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    run_end(r, status < 0 ? status : -EIO, transient);
}

/* The last lines of a child's stderr, on one line, for a reason. */
static void tail_lines(char *out, size_t outlen, const char *tail)
{
    size_t n = strlen(tail);
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r' || tail[n - 1] == ' '))
        n--;
    size_t start = n > outlen - 1 ? n - (outlen - 1) : 0;
    size_t k = 0;
    for (size_t i = start; i < n && k + 1 < outlen; i++)
        out[k++] = tail[i] == '\n' || tail[i] == '\r' ? ' ' : tail[i];
    out[k] = '\0';
}

static void step_retention(struct run *r);
static void step_s3(struct run *r);
static void step_verify(struct run *r);
static void step_dump(struct run *r);

/* ---- success ------------------------------------------------------------------------- */

static void run_succeed(struct run *r)
{
    const struct bk_ctx *ctx = r->ctx;
    int64_t now = r->host->now_ms(r->host);
    snprintf(r->result, sizeof r->result,
             "{\"name\":\"%s\",\"file\":\"%s.dump.enc\",\"size_bytes\":%" PRIu64
             ",\"sha256\":\"%s\",\"verified\":%s,\"s3\":%s}",
             r->name, r->name, r->man.size, r->man.sha256,
             r->man.state == BK_VERIFIED ? "true" : "false", r->s3_copied ? "true" : "false");
    if (ctx->m_last_success != NULL) {
        ctx->host->metric_set(ctx->m_last_success, NULL, (double)now / 1000.0);
        ctx->host->metric_set(ctx->m_size, NULL, (double)r->man.size);
        ctx->host->metric_observe(ctx->m_duration, NULL, (double)(now - r->started_ms) / 1000.0);
    }
    bk_log(ctx, NOVA_LOG_INFO, r->job, "backup %s done: %" PRIu64 " bytes, sha256 %s%s%s", r->name,
           r->man.size, r->man.sha256, r->man.state == BK_VERIFIED ? ", verified" : "",
           r->s3_copied ? ", copied to S3" : "");
    run_end(r, 0, false);
}

static void on_retention(void *arg, int status)
{
    struct run *r = arg;
    if (status == -ECANCELED)
        return run_fail(r, status, true, "worker stopping during retention");
    /* a backup that exists is a success even when old ones could not be
     * deleted; the reason was logged and the next run tries again */
    run_succeed(r);
}

static void step_retention(struct run *r)
{
    int rc = bk_retention_apply(r->ctx, r->job, on_retention, r);
    if (rc != 0) {
        bk_log(r->ctx, NOVA_LOG_WARN, r->job, "retention not applied: %s", strerror(-rc));
        run_succeed(r);
    }
}

/* ---- S3 --------------------------------------------------------------------------------- */

static void on_s3(void *arg, int status, const char *reason)
{
    struct run *r = arg;
    if (status != 0) {
        if (r->ctx->m_s3_fail != NULL)
            r->host->metric_add(r->ctx->m_s3_fail, NULL, 1);
        return run_fail(r, status, true, "S3 copy of %s failed (the local backup is kept): %s",
                        r->name, reason);
    }
    r->s3_copied = true;
    step_retention(r);
}

static void step_s3(struct run *r)
{
    if (!bk_s3_enabled(r->cfg))
        return step_retention(r);
    int rc = bk_s3_upload(r->ctx, r->name, &r->man, on_s3, r);
    if (rc != 0) {
        if (r->ctx->m_s3_fail != NULL)
            r->host->metric_add(r->ctx->m_s3_fail, NULL, 1);
        run_fail(r, rc, rc != -EINVAL, "S3 copy of %s not started: %s", r->name, strerror(-rc));
    }
}

/* ---- verification --------------------------------------------------------------------------- */

static void on_verdict_written(void *arg, int status)
{
    struct run *r = arg;
    if (r->man.state == BK_FAILED)
        return run_fail(r, -EBADMSG, true, "verification of %s failed: %s", r->name,
                        r->man.verify_error);
    if (status < 0)
        return run_fail(r, status, true, "writing the manifest %s: %s", r->mpath,
                        strerror(-status));
    step_s3(r);
}

static void on_verified(void *arg, const struct bk_vresult *res)
{
    struct run *r = arg;
    if (!res->ok && strstr(res->error, "did not run: Operation canceled") != NULL)
        return run_fail(r, -ECANCELED, true, "worker stopping during the verification");
    if (res->ok) {
        r->man.state = BK_VERIFIED;
        r->man.verified_ms = r->host->now_ms(r->host);
        r->man.verify_error[0] = '\0';
        bk_log(r->ctx, NOVA_LOG_INFO, r->job, "backup %s verified: sha256 ok, %u entries listed",
               r->name, res->toc_entries);
    } else {
        if (r->ctx->m_verify_fail != NULL)
            r->host->metric_add(r->ctx->m_verify_fail, NULL, 1);
        bk_log(r->ctx, NOVA_LOG_ERROR, r->job, "backup %s FAILED verification: %s", r->name,
               res->error);
        if (!res->file_bad)
            /* the tools, not the file: the backup stays as it was */
            return run_fail(r, -EIO, true, "verification of %s could not run: %s", r->name,
                            res->error);
        r->man.state = BK_FAILED;
        snprintf(r->man.verify_error, sizeof r->man.verify_error, "%s", res->error);
    }
    char *json = bk_manifest_render(&r->man);
    if (json == NULL)
        return run_fail(r, -ENOMEM, true, "out of memory rendering the manifest");
    int rc = bk_write_atomic(r->ctx, r->mpath, json, strlen(json), 0600, on_verdict_written, r);
    free(json);
    if (rc != 0)
        run_fail(r, rc, true, "writing the manifest %s: %s", r->mpath, strerror(-rc));
}

static void step_verify(struct run *r)
{
    if (!r->cfg->verify)
        return step_s3(r);
    const char *argv[] = {r->cfg->pg_restore, "--list", NULL};
    struct bk_vreq req = {
        .path = r->final,
        .key = r->key,
        .sha256 = r->man.sha256,
        .size = r->man.size,
        .key_id = r->man.key_id,
        .mode = BK_V_LIST,
        .program = r->cfg->pg_restore,
        .argv = argv,
        .env = NULL,
    };
    int rc = bk_verify_start(r->ctx, &req, on_verified, r);
    if (rc != 0)
        run_fail(r, rc, true, "verification of %s not started: %s", r->name, strerror(-rc));
}

/* ---- the manifest ------------------------------------------------------------------------------
 */

static void on_manifest(void *arg, int status)
{
    struct run *r = arg;
    if (status < 0)
        return run_fail(r, status, true, "writing the manifest %s: %s", r->mpath,
                        strerror(-status));
    step_verify(r);
}

static void write_manifest(struct run *r)
{
    struct bk_manifest *m = &r->man;
    int64_t now = r->host->now_ms(r->host);
    snprintf(m->name, sizeof m->name, "%s", r->name);
    m->created_ms = bk_name_time(r->name);
    m->finished_ms = now;
    snprintf(m->database, sizeof m->database, "%s", r->dsn.dbname ? r->dsn.dbname : "");
    m->dump_bytes = r->enc.plain_bytes;
    m->size = r->size;
    bk_sha256_hex(&r->sha, m->sha256);
    bk_key_id_hex(r->key, m->key_id);
    m->chunk_size = BK_CHUNK_DEFAULT;
    m->duration_ms = now - r->started_ms;
    m->state = BK_UNVERIFIED;
    char *json = bk_manifest_render(m);
    if (json == NULL)
        return run_fail(r, -ENOMEM, true, "out of memory rendering the manifest");
    int rc = bk_write_atomic(r->ctx, r->mpath, json, strlen(json), 0600, on_manifest, r);
    free(json);
    if (rc != 0)
        run_fail(r, rc, true, "writing the manifest %s: %s", r->mpath, strerror(-rc));
}

/* ---- the dump ---------------------------------------------------------------------------------
 */

static void dump_advance(struct run *r);

static void on_written(void *arg, int status)
{
    struct wreq *w = arg;
    struct run *r = w->run;
    r->inflight -= w->len;
    free(w);
    if (status < 0 && r->write_err == 0) {
        r->write_err = status;
        /* nothing more can be kept: stop pg_dump, then clean up */
        if (!r->dump_exited && r->proc != NULL)
            r->host->process->kill(r->proc, SIGTERM);
    }
    if (r->paused && r->inflight <= BK_INFLIGHT_LOW && !r->dump_exited) {
        r->paused = false;
        r->host->process->resume(r->proc);
    }
    dump_advance(r);
}

static int flush_out(struct run *r)
{
    if (r->out_fill == 0)
        return 0;
    struct wreq *w = malloc(sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->run = r;
    w->len = r->out_fill;
    int rc = r->host->file->write(r->f, r->out, r->out_fill, on_written, w);
    if (rc != 0) {
        free(w);
        return rc;
    }
    r->inflight += r->out_fill;
    r->out_fill = 0;
    return 0;
}

/* Encrypted bytes, in file order: hashed, buffered, written. */
static int emit_encrypted(void *arg, const unsigned char *data, size_t len)
{
    struct run *r = arg;
    crypto_hash_sha256_update(&r->sha, data, len);
    r->size += len;
    while (len > 0) {
        size_t n = BK_WRITE_BUF - r->out_fill;
        if (n > len)
            n = len;
        memcpy(r->out + r->out_fill, data, n);
        r->out_fill += n;
        data += n;
        len -= n;
        if (r->out_fill == BK_WRITE_BUF) {
            int rc = flush_out(r);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static void on_dump_out(void *arg, const void *data, size_t len)
{
    struct run *r = arg;
    if (r->write_err != 0)
        return; /* pg_dump is being stopped: the rest is dropped */
    int rc = bk_enc_update(&r->enc, data, len, emit_encrypted, r);
    if (rc != 0) {
        r->write_err = rc;
        r->host->process->kill(r->proc, SIGTERM);
        return;
    }
    if (!r->paused && r->inflight >= BK_INFLIGHT_HIGH) {
        r->paused = true;
        r->host->process->pause(r->proc);
    }
}

static void on_dump_exit(void *arg, int status, int exit_code, int term_signal,
                         const char *stderr_tail)
{
    struct run *r = arg;
    r->dump_exited = true;
    r->proc = NULL;
    r->dump_status = status;
    r->dump_code = exit_code;
    r->dump_signal = term_signal;
    tail_lines(r->dump_err, sizeof r->dump_err, stderr_tail);
    if (r->timer != NULL) {
        r->host->timer_stop(r->host, r->timer);
        r->timer = NULL;
    }
    dump_advance(r);
}

static void on_timeout(void *arg)
{
    struct run *r = arg;
    r->timer = NULL;
    if (!r->dump_exited && r->proc != NULL) {
        r->timed_out = true;
        r->host->process->kill(r->proc, SIGTERM);
    }
}

/* ---- abort: close, remove the .tmp, report ---- */

static void dump_failed_report(struct run *r)
{
    int64_t secs = r->cfg->timeout_ms / 1000;
    if (r->dump_status == -ECANCELED || r->write_err == -ECANCELED)
        run_fail(r, -ECANCELED, true, "worker stopping during the dump of %s", r->name);
    else if (r->dump_status < 0)
        run_fail(r, r->dump_status, true, "pg_dump could not run: %s", strerror(-r->dump_status));
    else if (r->timed_out)
        run_fail(r, -ETIMEDOUT, true, "pg_dump did not finish within %" PRId64 " s (timeout)",
                 secs);
    else if (r->write_err != 0)
        run_fail(r, r->write_err, true, "writing %s: %s", r->tmp, strerror(-r->write_err));
    else if (r->sync_err != 0)
        run_fail(r, r->sync_err, true, "fsync of %s: %s", r->tmp, strerror(-r->sync_err));
    else if (r->dump_signal > 0)
        run_fail(r, -EIO, true, "pg_dump was killed by signal %d: %s", r->dump_signal, r->dump_err);
    else
        run_fail(r, -EIO, true, "pg_dump exited %d: %s", r->dump_code,
                 r->dump_err[0] ? r->dump_err : "(no message)");
}

static void on_tmp_removed(void *arg, int status)
{
    (void)status;
    dump_failed_report(arg);
}

static void remove_tmp(struct run *r)
{
    if (r->host->file->unlink(r->host, r->tmp, on_tmp_removed, r) != 0)
        dump_failed_report(r);
}

static void on_abort_closed(void *arg, int status)
{
    struct run *r = arg;
    (void)status;
    remove_tmp(r);
}

static void dump_abort(struct run *r)
{
    nova_file *f = r->f;
    r->f = NULL;
    if (f == NULL || r->host->file->close(f, on_abort_closed, r) != 0)
        remove_tmp(r);
}

/* ---- success: fsync, close, rename ---- */

static void on_renamed(void *arg, int status)
{
    struct run *r = arg;
    if (status < 0) {
        r->write_err = status;
        return remove_tmp(r);
    }
    write_manifest(r);
}

static void on_dump_closed(void *arg, int status)
{
    struct run *r = arg;
    if (status < 0) {
        r->write_err = status;
        return remove_tmp(r);
    }
    int rc = r->host->file->rename(r->host, r->tmp, r->final, true, on_renamed, r);
    if (rc != 0) {
        r->write_err = rc;
        remove_tmp(r);
    }
}

static void on_synced(void *arg, int status)
{
    struct run *r = arg;
    r->sync_pending = false;
    r->synced = true;
    if (status < 0)
        r->sync_err = status;
    dump_advance(r);
}

/* Moves the dump on once pg_dump ended and the disk took every byte. */
static void dump_advance(struct run *r)
{
    if (r->aborting || r->closing || !r->dump_exited || r->inflight > 0 || r->sync_pending)
        return;
    bool ok = r->dump_status == 0 && r->dump_code == 0 && r->dump_signal == 0 &&
              r->write_err == 0 && r->sync_err == 0 && !r->timed_out;
    if (!ok) {
        r->aborting = true;
        return dump_abort(r);
    }
    if (!r->finishing) {
        r->finishing = true;
        int rc = bk_enc_final(&r->enc, emit_encrypted, r);
        if (rc == 0)
            rc = flush_out(r);
        if (rc == 0) {
            /* queued after the writes: it covers them all */
            rc = r->host->file->sync(r->f, on_synced, r);
            r->sync_pending = rc == 0;
        }
        if (rc != 0) {
            r->write_err = rc;
            dump_advance(r);
        }
        return;
    }
    if (!r->synced)
        return;
    r->closing = true;
    nova_file *f = r->f;
    r->f = NULL;
    int rc = r->host->file->close(f, on_dump_closed, r);
    if (rc != 0) {
        r->write_err = rc;
        remove_tmp(r);
    }
}

/* A failure before pg_dump ran: nothing to wait for. */
static void dump_not_started(struct run *r, int rc)
{
    r->dump_exited = true;
    r->dump_status = rc;
    r->aborting = true;
    dump_abort(r);
}

static void on_tmp_open(void *arg, int status, nova_file *f)
{
    struct run *r = arg;
    if (status < 0)
        return run_fail(r, status, true, "cannot create %s: %s", r->tmp, strerror(-status));
    r->f = f;
    r->out = malloc(BK_WRITE_BUF);
    int rc = r->out != NULL ? bk_enc_init(&r->enc, r->key, BK_CHUNK_DEFAULT) : -ENOMEM;
    r->enc_ready = rc == 0;
    if (rc == 0) {
        crypto_hash_sha256_init(&r->sha);
        rc = emit_encrypted(r, r->enc.head, BK_HEADER_BYTES);
    }
    r->env = rc == 0 ? bk_pg_env(r->dsn.password) : NULL;
    if (rc == 0 && r->env == NULL)
        rc = -ENOMEM;
    if (rc != 0)
        return dump_not_started(r, rc);
    /* the password is in env (PGPASSWORD), never in argv */
    char *dbarg = bk_dsn_dbname_arg(&r->dsn);
    if (dbarg == NULL)
        return dump_not_started(r, -ENOMEM);
    const char *argv[] = {r->cfg->pg_dump, "--format=custom", "--no-password", dbarg, NULL};
    struct nova_process_spec spec = {
        .struct_size = sizeof spec,
        .file = r->cfg->pg_dump,
        .argv = argv,
        .env = (const char *const *)r->env,
        .stderr_keep = 2048,
    };
    rc = r->host->process->spawn(r->host, &spec, on_dump_out, on_dump_exit, r, &r->proc);
    free(dbarg);
    if (rc != 0)
        return dump_not_started(r, rc);
    if (r->cfg->timeout_ms > 0)
        r->timer = r->host->timer_start(r->host, (uint64_t)r->cfg->timeout_ms, 0, on_timeout, r);
    bk_log(r->ctx, NOVA_LOG_INFO, r->job, "backup %s: pg_dump of %s started", r->name,
           r->dsn.dbname ? r->dsn.dbname : "the default database");
}

static void pg_dump_failed(struct run *r, int status)
{
    run_fail(r, status, status != -ENOENT, "%s cannot start: %s", r->cfg->pg_dump,
             status == -ENOENT ? "not found (install postgresql-client, or set pg_dump = "
                                 "/path/to/pg_dump)"
                               : strerror(-status));
}

static void on_version(void *arg, int status, int exit_code, int term_signal, const char *out,
                       size_t out_len, const char *err_tail)
{
    struct run *r = arg;
    (void)out_len;
    (void)term_signal;
    if (status == -ECANCELED)
        return run_fail(r, status, true, "worker stopping");
    if (status < 0)
        return pg_dump_failed(r, status);
    if (exit_code != 0)
        return run_fail(r, -EIO, true, "%s --version exited %d: %s", r->cfg->pg_dump, exit_code,
                        err_tail);
    size_t n = strcspn(out, "\r\n");
    snprintf(r->man.pg_dump_version, sizeof r->man.pg_dump_version, "%.*s", (int)n, out);
    int rc = r->host->file->open(r->host, r->tmp, NOVA_FILE_WRITE, 0600, on_tmp_open, r);
    if (rc != 0)
        run_fail(r, rc, true, "cannot create %s: %s", r->tmp, strerror(-rc));
}

static void step_dump(struct run *r)
{
    memset(&r->man, 0, sizeof r->man);
    const char *argv[] = {r->cfg->pg_dump, "--version", NULL};
    int rc = bk_capture(r->ctx, r->cfg->pg_dump, argv, NULL, 1024, on_version, r);
    if (rc != 0)
        pg_dump_failed(r, rc);
}

/* ---- the start: key, directory, stale files, an earlier attempt --------------------------- */

static void on_existing(void *arg, int status, const char *data, size_t len)
{
    struct run *r = arg;
    struct bk_manifest m;
    char why[256];
    if (status == 0 && bk_manifest_parse(data, len, &m, why, sizeof why) == 0 &&
        strcmp(m.name, r->name) == 0 && m.state != BK_FAILED) {
        /* an earlier attempt of this slot got this far: go on from there */
        r->man = m;
        bk_log(r->ctx, NOVA_LOG_INFO, r->job, "backup %s exists (%s): resuming after it", r->name,
               m.state == BK_VERIFIED ? "verified" : "not verified");
        if (m.state == BK_VERIFIED || !r->cfg->verify)
            return step_s3(r);
        return step_verify(r);
    }
    if (status == -ECANCELED)
        return run_fail(r, status, true, "worker stopping");
    step_dump(r);
}

static void on_stale_removed(void *arg, int status)
{
    struct run *r = arg;
    if (status < 0 && status != -ECANCELED)
        bk_log(r->ctx, NOVA_LOG_WARN, r->job, "removing stale files: %s", strerror(-status));
    int rc = bk_slurp(r->ctx, r->mpath, 1 << 16, on_existing, r);
    if (rc != 0)
        step_dump(r);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void on_listed(void *arg, int status, const struct bk_dirent *ents, size_t n,
                      const char *err)
{
    struct run *r = arg;
    if (status < 0)
        return run_fail(r, status, true, "%s", err);
    int64_t now = r->host->now_ms(r->host);
    const char **paths = calloc(n > 0 ? n : 1, sizeof *paths);
    char **owned = calloc(n > 0 ? n : 1, sizeof *owned);
    size_t k = 0;
    for (size_t i = 0; paths != NULL && owned != NULL && i < n; i++) {
        const char *nm = ents[i].name;
        if (strncmp(nm, "nova-", 5) != 0 || ents[i].mtime_ms > now - BK_STALE_MS)
            continue;
        bool stale = has_suffix(nm, ".tmp");
        if (!stale && has_suffix(nm, ".dump.enc")) {
            /* a dump without its manifest: the run that made it died
             * between the two renames */
            size_t base = strlen(nm) - strlen(".dump.enc");
            stale = true;
            for (size_t j = 0; j < n; j++)
                if (strncmp(ents[j].name, nm, base) == 0 &&
                    strcmp(ents[j].name + base, ".json") == 0)
                    stale = false;
        }
        if (!stale)
            continue;
        if ((owned[k] = bk_path(r->cfg->backup_dir, nm, "")) == NULL)
            break;
        paths[k] = owned[k];
        bk_log(r->ctx, NOVA_LOG_INFO, r->job, "removing stale %s", nm);
        k++;
    }
    int rc = paths != NULL ? bk_unlink_all(r->ctx, paths, k, on_stale_removed, r) : -ENOMEM;
    for (size_t i = 0; i < k; i++)
        free(owned[i]);
    free(owned);
    free(paths);
    if (rc != 0)
        on_stale_removed(r, 0);
}

static void on_dir(void *arg, int status)
{
    struct run *r = arg;
    if (status < 0)
        return run_fail(r, status, status != -EACCES, "cannot create backup_dir %s: %s",
                        r->cfg->backup_dir, strerror(-status));
    int rc = bk_list_dir(r->ctx, r->cfg->backup_dir, on_listed, r);
    if (rc != 0)
        run_fail(r, rc, true, "cannot list %s: %s", r->cfg->backup_dir,
                 rc == -ENOENT ? "find(1) not found" : strerror(-rc));
}

static void on_key(void *arg, int status, const unsigned char *key, const char *err)
{
    struct run *r = arg;
    if (status < 0)
        return run_fail(r, status, false, "%s", err);
    memcpy(r->key, key, BK_KEY_BYTES);
    int rc = r->host->file->mkdir(r->host, r->cfg->backup_dir, 0700, on_dir, r);
    if (rc != 0)
        run_fail(r, rc, true, "cannot create backup_dir %s: %s", r->cfg->backup_dir, strerror(-rc));
}

static void on_bad_dsn(void *arg)
{
    run_end(arg, -EINVAL, false);
}

int bk_run_start(const struct bk_ctx *ctx, int64_t time_ms, nova_job *job, bk_run_cb cb, void *arg)
{
    struct run *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->ctx = ctx;
    r->host = ctx->host;
    r->cfg = ctx->cfg;
    r->job = job;
    r->cb = cb;
    r->arg = arg;
    r->started_ms = ctx->host->now_ms(ctx->host);
    char why[256];
    int rc = bk_dsn_parse(ctx->cfg->dsn, &r->dsn, why, sizeof why);
    if (rc != 0) {
        /* reported through cb like every other failure, after this call */
        snprintf(r->reason, sizeof r->reason, "dsn: %s", why);
        if (ctx->host->timer_start(ctx->host, 0, 0, on_bad_dsn, r) == NULL) {
            run_free(r);
            return -ENOMEM;
        }
        return 0;
    }
    bk_name_make(r->name, sizeof r->name, r->dsn.dbname, time_ms);
    r->tmp = bk_path(ctx->cfg->backup_dir, r->name, ".dump.enc.tmp");
    r->final = bk_path(ctx->cfg->backup_dir, r->name, ".dump.enc");
    r->mpath = bk_path(ctx->cfg->backup_dir, r->name, ".json");
    if (r->tmp == NULL || r->final == NULL || r->mpath == NULL) {
        run_free(r);
        return -ENOMEM;
    }
    rc = bk_key_load(ctx, on_key, r);
    if (rc != 0)
        run_free(r);
    return rc;
}
