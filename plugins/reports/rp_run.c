/*
 * rp_run.c - one report, from the database to Redis and the file.
 *
 * Steps, each a callback on the host's loop:
 *   1. begin() a lease; SET TRANSACTION ISOLATION LEVEL REPEATABLE READ,
 *      READ ONLY: the cache's data and the file see one snapshot;
 *   2. the catalog (rp_sql.c: column types, the columns of SELECT *);
 *   3. Nova's statements, rendered into `data` as they arrive;
 *   4. SET report:<...> <json> EX <ttl>;
 *   5. with a file: open a temporary name in the directory, write the
 *      header and rows (the transaction report's rows come from a cursor,
 *      RP_FETCH_ROWS at a time, the next FETCH waiting while two writes
 *      are queued: memory stays bounded whatever the row count), fsync,
 *      close, rename over the final name with the directory fsynced.
 * The lease is committed as soon as the database is no longer needed.
 * A failure at any step rolls back, closes and unlinks the temporary file,
 * then reports; a -ECANCELED (the plugin is stopping) ends at once without
 * new requests, as the host will call nothing after shutdown().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nova/redis.h>
#include <nova/sys.h>

#include "rp.h"

struct rp_run_priv {
    rp_report_cb cb;
    void *arg;
    nova_pg_lease *lease;
    struct rp_catalog cat;
    struct rp_plan plan;
    int stmt;                /* the statement running */
    struct nova_buf part[3]; /* each statement's rendering */
    struct nova_buf csv;     /* the file's bytes, or one batch of them */
    struct nova_buf value;   /* the cache entry */
    double totals[2];        /* revenue */
    char *tmp_path;
    nova_file *file;
    int writes;       /* queued writes */
    bool cursor_open; /* DECLARE done: FETCH may be sent */
    bool fetch_done, fetching;
    int failed_status; /* a write's error, reported once the queue drained */
};

static const struct nova_pg_api *pg_of(struct rp_report *r)
{
    return r->host->pg;
}

static void cleanup(struct rp_report *r);

static void rep_fail(struct rp_report *r, int status, bool transient, const char *fmt, ...)
    NOVA_PRINTF(4, 5);

static void rep_fail(struct rp_report *r, int status, bool transient, const char *fmt, ...)
{
    if (r->status == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->error, sizeof r->error, fmt, ap);
        va_end(ap);
        r->status = status < 0 ? status : -EIO;
        r->transient = transient;
    }
    if (status == -ECANCELED)
        r->cancelled = true;
    cleanup(r);
}

static void finish(struct rp_report *r)
{
    struct rp_run_priv *p = r->priv;
    r->ended_ms = r->host->now_ms(r->host);
    p->cb(p->arg, r);
}

/* File errors a retry may fix (a full disk) or not (permissions, a path
 * that is no directory). */
static bool file_transient(int status)
{
    return !(status == -EACCES || status == -EPERM || status == -EROFS || status == -ENOTDIR ||
             status == -EISDIR || status == -ENAMETOOLONG || status == -EINVAL);
}

/* ---- cleanup after a failure ------------------------------------------------------- */

static void on_cleanup_close(void *arg, int status)
{
    struct rp_report *r = arg;
    if (status == -ECANCELED)
        r->cancelled = true;
    cleanup(r);
}

static void on_cleanup_rollback(void *arg, int status, const nova_pg_result *res)
{
    (void)res;
    on_cleanup_close(arg, status);
}

static void on_cleanup_unlink(void *arg, int status)
{
    struct rp_report *r = arg;
    if (status == -ECANCELED)
        r->cancelled = true;
    free(r->priv->tmp_path);
    r->priv->tmp_path = NULL;
    cleanup(r);
}

/* One step of cleanup per call, then the callback. */
static void cleanup(struct rp_report *r)
{
    struct rp_run_priv *p = r->priv;
    const struct nova_host *h = r->host;
    /* Every queued write and a FETCH call back (with -ECANCELED when the
     * plugin stops) and come back here: finishing before the last one
     * would leave it a freed report. A FETCH whose callback the host
     * detached at shutdown leaves the report to shutdown() (abandon). */
    if (p->writes > 0 || p->fetching)
        return;
    if (p->lease != NULL) {
        nova_pg_lease *l = p->lease;
        p->lease = NULL;
        if (h->pg->rollback(h, l, on_cleanup_rollback, r) == 0)
            return;
    }
    if (r->cancelled) {
        /* no new file request once the host released ours: it closes the
         * file, and the temporary name is replaced by the next run */
        p->file = NULL;
        finish(r);
        return;
    }
    if (p->file != NULL) {
        nova_file *f = p->file;
        p->file = NULL;
        if (h->file->close(f, on_cleanup_close, r) == 0)
            return;
    }
    if (p->tmp_path != NULL) {
        if (h->file->unlink(h, p->tmp_path, on_cleanup_unlink, r) == 0)
            return;
        free(p->tmp_path);
        p->tmp_path = NULL;
    }
    finish(r);
}

/* ---- the file ------------------------------------------------------------------------- */

static void file_finish(struct rp_report *r);
static void fetch_next(struct rp_report *r);
static void commit(struct rp_report *r);

static void on_renamed(void *arg, int status)
{
    struct rp_report *r = arg;
    if (status != 0)
        return rep_fail(r, status, file_transient(status), "renaming %s to %s: %s",
                        r->priv->tmp_path, r->csv_path, strerror(-status));
    free(r->priv->tmp_path);
    r->priv->tmp_path = NULL;
    finish(r);
}

static void on_closed(void *arg, int status)
{
    struct rp_report *r = arg;
    const struct nova_host *h = r->host;
    if (status != 0)
        return rep_fail(r, status, file_transient(status), "closing %s: %s", r->priv->tmp_path,
                        strerror(-status));
    int rc = h->file->rename(h, r->priv->tmp_path, r->csv_path, true, on_renamed, r);
    if (rc != 0)
        rep_fail(r, rc, false, "renaming %s: %s", r->priv->tmp_path, strerror(-rc));
}

static void on_synced(void *arg, int status)
{
    struct rp_report *r = arg;
    struct rp_run_priv *p = r->priv;
    if (status != 0)
        return rep_fail(r, status, file_transient(status), "fsync of %s: %s", p->tmp_path,
                        strerror(-status));
    nova_file *f = p->file;
    p->file = NULL;
    int rc = r->host->file->close(f, on_closed, r);
    if (rc != 0)
        rep_fail(r, rc, false, "closing %s: %s", p->tmp_path, strerror(-rc));
}

/* Before the cache entry (the database is done with) or after the
 * transaction file's cursor ended (the file is open). */
static void write_cache(struct rp_report *r);

static void on_committed(void *arg, int status, const nova_pg_result *res)
{
    struct rp_report *r = arg;
    if (status != 0)
        return rep_fail(r, status, nova_pg_error_retryable(status) || status == -EINVAL,
                        "COMMIT: %s", pg_of(r)->error_message(res));
    if (r->priv->file != NULL)
        file_finish(r);
    else
        write_cache(r);
}

static void commit(struct rp_report *r)
{
    struct rp_run_priv *p = r->priv;
    nova_pg_lease *l = p->lease;
    p->lease = NULL;
    int rc = r->host->pg->commit(r->host, l, on_committed, r);
    if (rc != 0) {
        p->lease = l;
        rep_fail(r, rc, rc != -EINVAL, "COMMIT not started: %s", strerror(-rc));
    }
}

/* Every byte is queued and written: fsync, close, rename. */
static void file_finish(struct rp_report *r)
{
    struct rp_run_priv *p = r->priv;
    int rc = r->host->file->sync(p->file, on_synced, r);
    if (rc != 0)
        rep_fail(r, rc, false, "fsync of %s: %s", p->tmp_path, strerror(-rc));
}

/* A queued write failed (the first error is kept). */
static void write_failed(struct rp_report *r)
{
    struct rp_run_priv *p = r->priv;
    rep_fail(r, p->failed_status, file_transient(p->failed_status), "writing %s: %s", p->tmp_path,
             strerror(-p->failed_status));
}

static void on_written(void *arg, int status)
{
    struct rp_report *r = arg;
    struct rp_run_priv *p = r->priv;
    p->writes--;
    if (status != 0 && p->failed_status == 0)
        p->failed_status = status;
    if (r->status != 0 || r->cancelled || status == -ECANCELED) {
        if (status == -ECANCELED)
            r->cancelled = true;
        if (p->failed_status != 0 && r->status == 0)
            return write_failed(r);
        return cleanup(r);
    }
    if (p->failed_status != 0) {
        if (p->writes > 0 || p->fetching)
            return; /* wait for the others, then fail */
        return write_failed(r);
    }
    if (!p->fetch_done) {
        if (p->cursor_open && !p->fetching && p->writes < 2)
            fetch_next(r);
        return;
    }
    if (p->writes == 0 && !p->fetching) {
        if (p->lease != NULL)
            commit(r); /* then file_finish */
        else
            file_finish(r);
    }
}

/* Queues the CSV buffer's bytes (the host copies them). False when that
 * failed: the report failed. */
static bool write_csv(struct rp_report *r)
{
    struct rp_run_priv *p = r->priv;
    int rc = p->csv.oom ? -ENOMEM : 0;
    if (rc == 0 && p->csv.len > 0)
        rc = r->host->file->write(p->file, p->csv.p, p->csv.len, on_written, r);
    if (rc != 0) {
        rep_fail(r, rc, rc == -ENOMEM, "writing %s: %s", p->tmp_path, strerror(-rc));
        return false;
    }
    if (p->csv.len == 0)
        return true;
    r->bytes += (int64_t)p->csv.len;
    p->writes++;
    nova_buf_reset(&p->csv);
    return true;
}

static void on_fetch(void *arg, int status, const nova_pg_result *res)
{
    struct rp_report *r = arg;
    struct rp_run_priv *p = r->priv;
    const struct nova_pg_api *pg = pg_of(r);
    p->fetching = false;
    if (r->status != 0 || r->cancelled || status == -ECANCELED) {
        if (status == -ECANCELED)
            r->cancelled = true;
        return cleanup(r);
    }
    if (status != 0)
        return rep_fail(r, status, nova_pg_error_retryable(status), "FETCH: %s",
                        pg->error_message(res));
    int n = pg->ntuples(res);
    rp_rows_csv(&p->csv, pg, res, p->plan.csv_cursor.cols, p->plan.csv_cursor.ncols);
    r->rows += n;
    if (n < RP_FETCH_ROWS)
        p->fetch_done = true;
    if (!write_csv(r))
        return;
    if (!p->fetch_done) {
        if (p->writes < 2)
            fetch_next(r);
    } else if (p->writes == 0) {
        commit(r);
    }
}

static void fetch_next(struct rp_report *r)
{
    struct rp_run_priv *p = r->priv;
    char sql[64];
    snprintf(sql, sizeof sql, "FETCH %d FROM nova_reports_csv", RP_FETCH_ROWS);
    int rc = r->host->pg->lease_query(r->host, p->lease, sql, 0, NULL, on_fetch, r);
    if (rc != 0)
        return rep_fail(r, rc, nova_pg_error_retryable(rc), "FETCH not started: %s", strerror(-rc));
    p->fetching = true;
}

static void on_declared(void *arg, int status, const nova_pg_result *res)
{
    struct rp_report *r = arg;
    if (status != 0)
        return rep_fail(r, status, nova_pg_error_retryable(status), "DECLARE CURSOR: %s",
                        pg_of(r)->error_message(res));
    r->priv->cursor_open = true;
    fetch_next(r);
}

static void on_tuple_fraction(void *arg, int status, const nova_pg_result *res)
{
    struct rp_report *r = arg;
    struct rp_run_priv *p = r->priv;
    if (status != 0)
        return rep_fail(r, status, nova_pg_error_retryable(status), "SET LOCAL: %s",
                        pg_of(r)->error_message(res));
    const struct rp_stmt *s = &p->plan.csv_cursor;
    int rc =
        r->host->pg->lease_query(r->host, p->lease, s->sql, s->nparams, s->params, on_declared, r);
    if (rc != 0)
        rep_fail(r, rc, nova_pg_error_retryable(rc), "DECLARE not started: %s", strerror(-rc));
}

static void on_open(void *arg, int status, nova_file *f)
{
    struct rp_report *r = arg;
    struct rp_run_priv *p = r->priv;
    if (status != 0)
        return rep_fail(r, status, file_transient(status), "opening %s: %s", p->tmp_path,
                        strerror(-status));
    p->file = f;
    if (!write_csv(r)) /* the header, and the rows when they are in memory */
        return;
    if (p->plan.csv_from >= 0) {
        p->fetch_done = true;
        if (p->writes == 0)
            file_finish(r);
        return;
    }
    /* the cursor: planned for the whole result, as Nova's query is */
    int rc = r->host->pg->lease_query(r->host, p->lease, "SET LOCAL cursor_tuple_fraction = 1", 0,
                                      NULL, on_tuple_fraction, r);
    if (rc != 0)
        rep_fail(r, rc, nova_pg_error_retryable(rc), "SET LOCAL not started: %s", strerror(-rc));
}

static void on_mkdir(void *arg, int status)
{
    struct rp_report *r = arg;
    struct rp_run_priv *p = r->priv;
    if (status != 0)
        return rep_fail(r, status, file_transient(status), "creating %s: %s", r->csv_dir,
                        strerror(-status));
    int rc = r->host->file->open(r->host, p->tmp_path, NOVA_FILE_WRITE, 0640, on_open, r);
    if (rc != 0) {
        free(p->tmp_path); /* nothing was created */
        p->tmp_path = NULL;
        rep_fail(r, rc, false, "opening %s: %s", r->csv_dir, strerror(-rc));
    }
}

static void file_start(struct rp_report *r)
{
    struct rp_run_priv *p = r->priv;
    struct nova_buf path = {0}, tmp = {0};
    nova_buf_printf(&path, "%s/%s", r->csv_dir, r->csv_name);
    nova_buf_printf(&tmp, "%s/.%s.tmp", r->csv_dir, r->csv_name);
    if (path.oom || tmp.oom) {
        nova_buf_free(&path);
        nova_buf_free(&tmp);
        return rep_fail(r, -ENOMEM, true, "out of memory");
    }
    r->csv_path = path.p;
    int rc = r->host->file->mkdir(r->host, r->csv_dir, 0750, on_mkdir, r);
    if (rc != 0) {
        nova_buf_free(&tmp);
        return rep_fail(r, rc, false, "creating %s: %s", r->csv_dir, strerror(-rc));
    }
    p->tmp_path = tmp.p;
}

/* ---- the cache entry -------------------------------------------------------------------- */

static void on_set(void *arg, int status, const struct nova_redis_reply *reply)
{
    struct rp_report *r = arg;
    struct rp_run_priv *p = r->priv;
    nova_buf_free(&p->value);
    if (status == -ECANCELED)
        r->cancelled = true;
    if (status != 0)
        return rep_fail(r, status, true, "SET %s: %s", r->cache_key, strerror(-status));
    if (reply->type == NOVA_REDIS_REPLY_ERROR)
        return rep_fail(r, -EIO, true, "SET %s: %s", r->cache_key, reply->str);
    if (r->csv_dir != NULL)
        file_start(r);
    else
        finish(r);
}

static void write_cache(struct rp_report *r)
{
    struct rp_run_priv *p = r->priv;
    const struct nova_host *h = r->host;
    struct nova_buf *v = &p->value;
    char iso[40];
    rp_iso_date(h->now_ms(h), iso, sizeof iso);
    /* JSON.stringify({type, generatedAt, params, data}) */
    nova_buf_printf(
        v, "{\"type\":\"%s\",\"generatedAt\":\"%s\",\"params\":", rp_type_names[r->type], iso);
    rp_params_json(v, &r->params);
    nova_buf_str(v, ",\"data\":");
    switch (r->type) {
    case RP_USER: {
        /* {...totals.rows[0], ...referrals.rows[0]}: two one-row objects merged */
        struct nova_buf *a = &p->part[0], *b = &p->part[1];
        nova_buf_add(v, "{", 1);
        if (a->len > 2)
            nova_buf_add(v, a->p + 1, a->len - 2);
        if (a->len > 2 && b->len > 2)
            nova_buf_add(v, ",", 1);
        if (b->len > 2)
            nova_buf_add(v, b->p + 1, b->len - 2);
        nova_buf_add(v, "}", 1);
        break;
    }
    case RP_CAMPAIGN:
        nova_buf_add(v, "[", 1);
        nova_buf_add(v, p->part[0].p, p->part[0].len);
        nova_buf_add(v, "]", 1);
        break;
    case RP_TRANSACTION:
        nova_buf_str(v, "{\"summary\":[");
        nova_buf_add(v, p->part[0].p, p->part[0].len);
        nova_buf_str(v, "],\"transactions\":[");
        nova_buf_add(v, p->part[1].p, p->part[1].len);
        nova_buf_str(v, "]}");
        break;
    case RP_REVENUE:
        nova_buf_str(v, "{\"byMerchant\":[");
        nova_buf_add(v, p->part[0].p, p->part[0].len);
        nova_buf_str(v, "],\"totals\":{\"total_distributed\":");
        rp_json_number(v, p->totals[0]);
        nova_buf_str(v, ",\"total_redeemed\":");
        rp_json_number(v, p->totals[1]);
        nova_buf_str(v, "}}");
        break;
    default:
        break;
    }
    nova_buf_add(v, "}", 1);
    for (int i = 0; i < 3; i++)
        nova_buf_free(&p->part[i]);
    if (v->oom)
        return rep_fail(r, -ENOMEM, true, "out of memory rendering the report");
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRId64, r->cache_ttl_s);
    const char *argv[] = {"SET", r->cache_key, v->p, "EX", ttl};
    size_t lens[] = {3, strlen(r->cache_key), v->len, 2, strlen(ttl)};
    int rc = h->redis->command(h, 5, argv, lens, on_set, r);
    if (rc != 0)
        rep_fail(r, rc, rc != -EINVAL, "SET %s: %s", r->cache_key, strerror(-rc));
}

/* ---- Nova's statements -------------------------------------------------------------------- */

static void run_stmt(struct rp_report *r);

/* The first row's cells as "name: value" lines of the mail summary. */
static void summary_cells(struct rp_report *r, const nova_pg_result *res, const struct rp_stmt *s,
                          int row)
{
    const struct nova_pg_api *pg = pg_of(r);
    struct nova_buf b = {0};
    if (r->summary != NULL)
        nova_buf_str(&b, r->summary);
    for (int c = 0; c < s->ncols; c++) {
        nova_buf_printf(&b, "%s%s: ", c == 0 ? "" : ", ", s->cols[c].name);
        rp_value_text(&b, s->cols[c].kind, pg->get_text(res, row, c));
    }
    nova_buf_str(&b, "\n");
    free(r->summary);
    r->summary = b.oom ? NULL : b.p;
    if (b.oom)
        free(b.p);
}

static void on_stmt(void *arg, int status, const nova_pg_result *res)
{
    struct rp_report *r = arg;
    struct rp_run_priv *p = r->priv;
    const struct nova_pg_api *pg = pg_of(r);
    if (status != 0)
        return rep_fail(r, status, nova_pg_error_retryable(status), "%s report: %s",
                        rp_type_names[r->type], pg->error_message(res));
    const struct rp_stmt *s = &p->plan.stmt[p->stmt];
    int n = pg->ntuples(res);
    rp_rows_json(&p->part[p->stmt], pg, res, s->cols, s->ncols);
    bool want_csv = r->csv_dir != NULL;
    switch (r->type) {
    case RP_USER:
        /* one CSV row of both statements' cells */
        if (n > 0) {
            summary_cells(r, res, s, 0);
            if (want_csv) {
                struct nova_buf cell = {0};
                rp_row_csv(&p->csv, &cell, pg, res, 0, s->cols, s->ncols, p->stmt == 0);
                nova_buf_free(&cell);
            }
        }
        if (p->stmt == 1) {
            r->rows = 1;
            if (want_csv)
                rp_csv_end_row(&p->csv);
        }
        break;
    case RP_CAMPAIGN:
    case RP_REVENUE:
        r->rows = n;
        if (want_csv)
            rp_rows_csv(&p->csv, pg, res, s->cols, s->ncols);
        if (r->type == RP_REVENUE) {
            rp_revenue_totals(pg, res, &p->totals[0], &p->totals[1]);
            struct nova_buf b = {0};
            char d[40], x[40];
            rp_js_number(p->totals[0], d, sizeof d);
            rp_js_number(p->totals[1], x, sizeof x);
            nova_buf_printf(&b, "%d merchants; total_distributed: %s, total_redeemed: %s\n", n, d,
                            x);
            free(r->summary);
            r->summary = b.p;
        } else {
            struct nova_buf b = {0};
            nova_buf_printf(&b, "%d campaigns\n", n);
            free(r->summary);
            r->summary = b.p;
        }
        break;
    case RP_TRANSACTION:
        if (p->stmt == 0)
            for (int i = 0; i < n; i++)
                summary_cells(r, res, s, i);
        else if (!want_csv)
            r->rows = n;
        break;
    default:
        break;
    }
    p->stmt++;
    run_stmt(r);
}

static void run_stmt(struct rp_report *r)
{
    struct rp_run_priv *p = r->priv;
    if (p->stmt == p->plan.nstmt) {
        /* the database is needed further only by the transaction file's cursor */
        if (r->csv_dir == NULL || p->plan.csv_from >= 0)
            commit(r); /* then write_cache */
        else
            write_cache(r);
        return;
    }
    const struct rp_stmt *s = &p->plan.stmt[p->stmt];
    int rc = r->host->pg->lease_query(r->host, p->lease, s->sql, s->nparams, s->params, on_stmt, r);
    if (rc != 0)
        rep_fail(r, rc, nova_pg_error_retryable(rc), "%s report not started: %s",
                 rp_type_names[r->type], strerror(-rc));
}

static void on_catalog(void *arg, int status, const nova_pg_result *res)
{
    struct rp_report *r = arg;
    struct rp_run_priv *p = r->priv;
    const struct nova_pg_api *pg = pg_of(r);
    if (status != 0)
        return rep_fail(r, status, nova_pg_error_retryable(status), "reading the catalog: %s",
                        pg->error_message(res));
    int rc = rp_catalog_load(&p->cat, pg, res);
    if (rc == -ENOENT)
        return rep_fail(r, -ENOENT, false, "no transactions table in this database");
    if (rc == 0)
        rc = rp_plan_build(&p->plan, r->type, &r->params, &p->cat);
    if (rc != 0)
        return rep_fail(r, rc, true, "building the statements: %s", strerror(-rc));
    if (r->csv_dir != NULL) {
        /* the header: the columns of the rows the file holds */
        if (r->type == RP_USER)
            rp_csv_header(&p->csv,
                          (const struct rp_col[]){{"total_users", RP_K_TEXT},
                                                  {"new_last_30d", RP_K_TEXT},
                                                  {"total_referrals", RP_K_TEXT}},
                          3);
        else if (p->plan.csv_from >= 0)
            rp_csv_header(&p->csv, p->plan.stmt[p->plan.csv_from].cols,
                          p->plan.stmt[p->plan.csv_from].ncols);
        else
            rp_csv_header(&p->csv, p->plan.csv_cursor.cols, p->plan.csv_cursor.ncols);
    }
    run_stmt(r);
}

static void on_snapshot(void *arg, int status, const nova_pg_result *res)
{
    struct rp_report *r = arg;
    if (status != 0)
        return rep_fail(r, status, nova_pg_error_retryable(status), "SET TRANSACTION: %s",
                        pg_of(r)->error_message(res));
    int rc =
        r->host->pg->lease_query(r->host, r->priv->lease, rp_catalog_sql, 0, NULL, on_catalog, r);
    if (rc != 0)
        rep_fail(r, rc, nova_pg_error_retryable(rc), "catalog query not started: %s",
                 strerror(-rc));
}

static void on_begin(void *arg, int status, nova_pg_lease *lease, const nova_pg_result *res)
{
    struct rp_report *r = arg;
    if (status != 0)
        return rep_fail(r, status, nova_pg_error_retryable(status), "BEGIN: %s",
                        pg_of(r)->error_message(res));
    r->priv->lease = lease;
    int rc = r->host->pg->lease_query(r->host, lease,
                                      "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                                      0, NULL, on_snapshot, r);
    if (rc != 0)
        rep_fail(r, rc, nova_pg_error_retryable(rc), "SET TRANSACTION not started: %s",
                 strerror(-rc));
}

int rp_report_run(struct rp_report *r, rp_report_cb cb, void *arg)
{
    r->priv = calloc(1, sizeof *r->priv);
    r->cache_key = rp_cache_key(r->type, &r->params);
    if (r->priv == NULL || r->cache_key == NULL)
        return -ENOMEM;
    r->priv->cb = cb;
    r->priv->arg = arg;
    r->started_ms = r->host->now_ms(r->host);
    return r->host->pg->begin(r->host, on_begin, r);
}

static void on_abandoned(void *arg, int status, const nova_pg_result *res)
{
    (void)arg;
    (void)status;
    (void)res;
}

void rp_report_abandon(struct rp_report *r)
{
    if (r == NULL)
        return;
    struct rp_run_priv *p = r->priv;
    /* a lease without a statement running goes back now; one with a
     * statement (its callback detached by the host) is rolled back by the
     * host */
    if (p != NULL && p->lease != NULL)
        (void)r->host->pg->rollback(r->host, p->lease, on_abandoned, NULL);
    if (p != NULL)
        p->lease = NULL;
    rp_report_free(r);
}

void rp_report_free(struct rp_report *r)
{
    if (r == NULL)
        return;
    struct rp_run_priv *p = r->priv;
    if (p != NULL) {
        rp_catalog_free(&p->cat);
        rp_plan_free(&p->plan);
        for (int i = 0; i < 3; i++)
            nova_buf_free(&p->part[i]);
        nova_buf_free(&p->csv);
        nova_buf_free(&p->value);
        free(p->tmp_path);
        free(p);
    }
    rp_params_free(&r->params);
    free(r->csv_dir);
    free(r->csv_name);
    free(r->cache_key);
    free(r->csv_path);
    free(r->summary);
    free(r);
}
