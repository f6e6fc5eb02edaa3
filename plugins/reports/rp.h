/*
 * rp.h - what the files of the reports plugin share (docs/plugins/reports.md).
 *
 * The plugin reproduces Nova's reportingService: four report types, each
 * cached in Redis as JSON.stringify({type, generatedAt, params, data}) of
 * what node-pg returns for Nova's SQL. The pure parts (JavaScript's number
 * and date formatting, the params and the cache key, CSV fields, the MIME
 * message) are kept apart from the asynchronous engine so that the unit
 * tests can include them alone:
 *
 *   rp_json.c  a growable buffer; JSON.stringify's strings and numbers;
 *              node-pg's value types (dates, json); params and cache key
 *   rp_csv.c   RFC 4180 fields and rows
 *   rp_sql.c   Nova's statements per type and their result columns
 *   rp_mail.c  the MIME message of a report mail
 *   rp_run.c   one report: PostgreSQL lease, Redis SET, the CSV file
 *   rp_keep.c  retention of the files in output_dir
 *   reports.c  config, schedules, jobs, metrics
 */
#ifndef NOVA_REPORTS_RP_H
#define NOVA_REPORTS_RP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nova/pg.h>
#include <nova/buf.h>
#include <nova/plugin.h>

struct cJSON;

/* ---- report types and periods -------------------------------------------- */

enum rp_type { RP_USER, RP_CAMPAIGN, RP_TRANSACTION, RP_REVENUE, RP_NTYPES };
enum rp_period { RP_DAILY, RP_WEEKLY, RP_MONTHLY, RP_NPERIODS };

extern const char *const rp_type_names[RP_NTYPES];
extern const char *const rp_period_names[RP_NPERIODS];

/* The type named name (exactly), or -1. */
int rp_type_from_name(const char *name);
/* Parses "user, campaign" into a bit set of types (1u << type). Returns 0,
 * or -EINVAL with the offending word in err. "" gives 0 types. */
int rp_type_list(const char *text, unsigned *out, char *err, size_t errlen);

/* ---- a growable buffer ----------------------------------------------------- */

/* Text buffers are <nova/buf.h>'s struct nova_buf. */

/* The buffer's text, now the caller's (the buffer is reset); NULL when an
 * append failed (the buffer is freed). */
static inline char *rp_buf_take(struct nova_buf *b)
{
    if (b->oom) {
        nova_buf_free(b);
        return NULL;
    }
    char *p = b->p;
    *b = (struct nova_buf){0};
    return p;
}

/* True when n > 0 and s[0..n) are all ASCII digits. */
bool rp_digits(const char *s, size_t n);

/* ---- JavaScript's formatting ------------------------------------------------ */

/* JSON.stringify of a string of n bytes (UTF-8). */
void rp_json_string(struct nova_buf *b, const char *s, size_t n);
/* String(v) for a JavaScript number: the shortest round-trip digits in
 * Number::toString's layout ("1e+21", "0.000001", "1.5e-7"); "NaN",
 * "Infinity", "-Infinity". out holds at least 32 bytes. */
void rp_js_number(double v, char *out, size_t outlen);
/* JSON.stringify of a number: as above, null when not finite. */
void rp_json_number(struct nova_buf *b, double v);
/* Date.prototype.toISOString of a time value in ms ("2024-05-01T00:00:00.000Z",
 * "+010000-01-01T..." outside years 0..9999). */
void rp_iso_date(int64_t ms, char *out, size_t outlen);

/* Days since 1970-01-01 of a (proleptic Gregorian) date. */
int64_t rp_days(int64_t y, int m, int d);

/* ---- node-pg's types ------------------------------------------------------- */

/* How node-pg (pg-types, text format) hands a column to JavaScript. */
enum rp_kind {
    RP_K_TEXT = 0, /* a string: text, varchar, numeric, int8, uuid, unknown types */
    RP_K_INT,      /* int2, int4, oid: parseInt -> number */
    RP_K_FLOAT,    /* float4, float8: parseFloat -> number */
    RP_K_BOOL,     /* bool */
    RP_K_DATE,     /* date, timestamp, timestamptz: a Date (postgres-date) */
    RP_K_JSON,     /* json, jsonb: JSON.parse */
};

enum rp_kind rp_kind_of_oid(uint32_t oid);

/* Appends the value (text form from PostgreSQL, NULL = SQL NULL) as
 * JSON.stringify writes what node-pg parsed. Returns 0, or -EINVAL when
 * the text is not what the kind expects (then a JSON string is written). */
int rp_value_json(struct nova_buf *b, enum rp_kind kind, const char *text);
/* The same value as a CSV cell's text (null: empty; strings as they are;
 * numbers as String(); dates as toISOString(); json as JSON.stringify). */
void rp_value_text(struct nova_buf *b, enum rp_kind kind, const char *text);
/* postgres-date: a date/timestamp text to ms since the epoch as node-pg's
 * Date holds it (the process time zone taken as UTC). 0 and *ms, 1 for
 * +-infinity (JSON null), -EINVAL when unparsable (Invalid Date: null). */
int rp_pg_date_ms(const char *text, int64_t *ms);

/* ---- params and the cache key ---------------------------------------------- */

/* Nova's filters, in the byte order of their names (the cache key's). */
enum rp_param_key { RP_P_END, RP_P_MERCHANT, RP_P_START, RP_P_TXTYPE, RP_NPARAMS };
extern const char *const rp_param_names[RP_NPARAMS];

struct rp_param {
    bool given;   /* the key is in params (null included) */
    bool is_null; /* its value is null: out of the cache key, no filter */
    bool truthy;  /* JavaScript truthiness: what Nova's `if (x)` filters on */
    char *text;   /* `${v}`: the cache key's value and the SQL parameter */
    char *json;   /* JSON.stringify(v) */
};

struct rp_params {
    struct rp_param p[RP_NPARAMS];
    int order[RP_NPARAMS]; /* the keys in the order given (JSON.stringify's) */
    int n;
};

/* Reads a params object (NULL = {}): keys among the four filters, values a
 * string, a number or null. Returns 0 or -EINVAL with a reason in err
 * naming the key. */
int rp_params_parse(const struct cJSON *params, struct rp_params *out, char *err, size_t errlen);
/* Builds params from text values (NULL = absent), in key order. */
int rp_params_set(struct rp_params *out, int key, const char *value);
void rp_params_free(struct rp_params *p);
/* JSON.stringify(params). */
void rp_params_json(struct nova_buf *b, const struct rp_params *p);
/* Nova's cacheKey(type, params): "report:<type>" then ":" and k=v pairs
 * joined by '&', keys sorted, null values dropped. malloc'd, NULL = OOM. */
char *rp_cache_key(enum rp_type type, const struct rp_params *p);

/* ---- CSV --------------------------------------------------------------------- */

/* One field, quoted when it holds a comma, a quote, CR or LF (quotes
 * doubled); first = no separator before it. */
void rp_csv_field(struct nova_buf *b, const char *s, size_t n, bool first);
void rp_csv_end_row(struct nova_buf *b); /* CRLF */

/* ---- Nova's SQL -------------------------------------------------------------- */

/* A result column: its name (the JSON key and CSV header) and how node-pg
 * types it. */
struct rp_col {
    const char *name; /* borrowed: static, or the catalog's copy */
    enum rp_kind kind;
};

/* The catalog facts the renderer needs: the columns of `transactions` in
 * SELECT * order, and the kinds of the columns Nova's statements name. */
struct rp_catalog {
    struct rp_col *tx_cols; /* names malloc'd */
    int n_tx_cols;
    enum rp_kind campaign_id, campaign_name, reward_rate, start_date, end_date, is_active;
    enum rp_kind merchant_id, merchant_name, tx_type, tx_amount_sum;
};

/* The statement reading the catalog: rows of (table, column, type oid) for
 * transactions, campaigns and merchants, in attnum order. */
extern const char rp_catalog_sql[];
/* Fills cat from that statement's result. 0 or -ENOMEM / -ENOENT (no
 * transactions table). */
int rp_catalog_load(struct rp_catalog *cat, const struct nova_pg_api *pg,
                    const nova_pg_result *res);
void rp_catalog_free(struct rp_catalog *cat);

/* One of Nova's statements for a report, with its parameters (borrowed
 * from the params) and the columns of its result. */
struct rp_stmt {
    char *sql;
    int nparams;
    const char *params[RP_NPARAMS];
    const struct rp_col *cols; /* into the stmt's own array or the catalog */
    int ncols;
    struct rp_col own[8];
};

/* What a report runs, in order: Nova's statements (their results make the
 * cache's data), then the CSV's (csv: the statement whose rows are the
 * file, when it is not one of Nova's: the transaction report streams all
 * rows through a cursor). */
struct rp_plan {
    struct rp_stmt stmt[3];
    int nstmt;
    int csv_from; /* index in stmt of the statement whose rows are the CSV; -1: csv_cursor */
    struct rp_stmt csv_cursor; /* DECLARE ... CURSOR (transaction only) */
};

int rp_plan_build(struct rp_plan *plan, enum rp_type type, const struct rp_params *params,
                  const struct rp_catalog *cat);
void rp_plan_free(struct rp_plan *plan);

/* Renders a result's rows as JSON objects (keys in column order, node-pg's
 * types) separated by commas, without the brackets. */
void rp_rows_json(struct nova_buf *b, const struct nova_pg_api *pg, const nova_pg_result *res,
                  const struct rp_col *cols, int ncols);
/* The CSV header row of cols, and a result's rows as CSV rows. */
void rp_csv_header(struct nova_buf *b, const struct rp_col *cols, int ncols);
/* The cells of one row as CSV fields, without the row's end (first: no
 * separator before its first cell). cell is scratch space, reused across
 * calls and freed by the caller; when it cannot grow, b is marked oom. */
void rp_row_csv(struct nova_buf *b, struct nova_buf *cell, const struct nova_pg_api *pg,
                const nova_pg_result *res, int row, const struct rp_col *cols, int ncols,
                bool first);
void rp_rows_csv(struct nova_buf *b, const struct nova_pg_api *pg, const nova_pg_result *res,
                 const struct rp_col *cols, int ncols);
/* The revenue report's totals: parseFloat summed in row order. */
void rp_revenue_totals(const struct nova_pg_api *pg, const nova_pg_result *res, double *dist,
                       double *redeemed);

/* ---- mail -------------------------------------------------------------------- */

struct rp_mail_parts {
    const char *from;       /* header From: and envelope */
    const char *const *to;  /* NULL-terminated */
    const char *subject;    /* ASCII or UTF-8 (encoded as RFC 2047 when not ASCII) */
    const char *body;       /* UTF-8 text, LF or CRLF line ends */
    const char *filename;   /* attachment name, NULL = no attachment */
    const void *attachment; /* its bytes */
    size_t attachment_len;
    int64_t date_ms;        /* the Date: header */
    const char *message_id; /* "<...@...>" */
};

/* The whole RFC 5322 message (CRLF line ends, multipart/mixed with a
 * text/plain part and a base64 text/csv part). malloc'd; NULL = OOM. */
char *rp_mail_build(const struct rp_mail_parts *m, size_t *len);

/* ---- retention (rp_keep.c) ----------------------------------------------------- */

/* The file name of a report of a period: nova-<type>-report-<label>.csv. */
void rp_file_name(char *out, size_t outlen, enum rp_type type, const char *label);
/* For a name in output_dir: 1 and the UTC day (days since the epoch) the
 * file's period ends (exclusive) and its group (type and label form) when
 * it is one of ours (tmp: the temporary name of one), 0 otherwise. */
int rp_file_parse(const char *name, int64_t *end_day, int *group, bool *tmp);

/* Removed names, as a JSON array of strings (no brackets), and how many. */
typedef void (*rp_keep_cb)(void *arg, int status, const char *removed_json, int removed);

/* Lists dir and unlinks the report files whose period ended keep_days or
 * more days before now (0 = no age limit), and in each group (type and
 * period kind) all but the newest keep_files (0 = no count limit);
 * temporary files left by a crash when their period ended over a day ago.
 * Other files are never touched. cb runs once unless an error returns. */
int rp_keep_run(const struct nova_host *host, const char *dir, int64_t keep_days,
                int64_t keep_files, int64_t now_ms, rp_keep_cb cb, void *arg);

/* ---- one report (rp_run.c) ---------------------------------------------------- */

struct rp_report;
typedef void (*rp_report_cb)(void *arg, struct rp_report *rep);

/* Rows per FETCH of the transaction file's cursor: what bounds memory. */
#define RP_FETCH_ROWS 1000

struct rp_report {
    /* in: set before rp_report_run() */
    const struct nova_host *host;
    nova_job *job; /* for log lines; NULL outside a job */
    enum rp_type type;
    struct rp_params params; /* owned: freed with the report */
    int64_t cache_ttl_s;
    char *csv_dir;  /* owned; NULL = no file */
    char *csv_name; /* owned: the file's name in csv_dir */
    /* out: valid in the callback */
    int status;     /* 0 or -errno */
    bool transient; /* the failure may pass on a retry */
    bool cancelled; /* the host is stopping: no further request was made */
    char error[512];
    char *cache_key;
    char *csv_path; /* the file written (NULL when none) */
    int64_t rows;   /* rows of the report: the file's, or data's */
    int64_t bytes;  /* the file's size */
    char *summary;  /* a few lines for the mail body */
    int64_t started_ms, ended_ms;
    struct rp_run_priv *priv;
};

/* Runs the report: Nova's statements in one read-only REPEATABLE READ
 * transaction, the cache entry SET with its TTL, then the file (written to
 * a temporary name, fsynced, renamed). cb runs exactly once, later, unless
 * this returns an error (-ENOMEM, or what the first host call returned). */
int rp_report_run(struct rp_report *rep, rp_report_cb cb, void *arg);
void rp_report_free(struct rp_report *rep);
/* For shutdown(): a report whose callback the host detached (a statement
 * was running): gives its lease back when it can, and frees it. */
void rp_report_abandon(struct rp_report *rep);

#endif
