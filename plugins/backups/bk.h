/*
 * bk.h - what the parts of the backups plugin share: its config, the
 * context every pipeline runs in (host table, config, metrics), and the
 * entry points of each part, so that backups.c (descriptor, jobs),
 * bk_cli.c (the `backup` command), bk_run.c (one backup), bk_verify.c
 * (decrypting into pg_restore), bk_s3.c (off-site copies) and bk_io.c
 * (small asynchronous helpers) call each other only through here.
 *
 * Everything runs on the host's loop through the host table: children
 * with host->process, files with host->file, S3 with host->http. No call
 * here blocks.
 */
#ifndef NOVA_BK_H
#define NOVA_BK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nova/http.h>
#include <nova/plugin.h>
#include <nova/sys.h>

#include "bk_crypto.h"
#include "bk_retention.h"

#define BK_QUEUE_DEFAULT "backups"
#define BK_JOB_NAME      "backup"
#define BK_SCHEDULE_ID   "backups"
#define BK_REASON_MAX    1024
/* A *.tmp file (or a dump without manifest) untouched this long belongs to
 * no running backup: the next run removes it. */
#define BK_STALE_MS (3600 * 1000LL)

struct bk_config {
    char *queue;
    char *schedule; /* cron line, "every ...", or HH:MM (UTC); "" = none */
    char *timezone;
    char *backup_dir;
    char *key_file;
    char *dsn; /* secret */
    char *pg_dump;
    char *pg_restore;
    char *psql;
    int64_t keep_last;
    int64_t keep_daily;
    int64_t keep_weekly;
    int64_t keep_monthly;
    bool verify;
    int64_t timeout_ms;
    int64_t retry_delay_ms;
    char *s3_endpoint;
    char *s3_bucket;
    char *s3_region;
    char *s3_prefix;
    char *s3_access_key_id;     /* secret */
    char *s3_secret_access_key; /* secret */
    int64_t s3_part_size;
    int64_t s3_timeout_ms;
};

struct bk_ctx {
    const struct nova_host *host;
    const struct bk_config *cfg;
    bool cli; /* a `backup` command, not the daemon: progress goes to stderr */
    /* metrics; NULL in the command */
    nova_metric *m_runs;         /* nova_backup_runs_total{outcome} */
    nova_metric *m_last_success; /* nova_backup_last_success_timestamp_seconds */
    nova_metric *m_duration;     /* nova_backup_duration_seconds */
    nova_metric *m_size;         /* nova_backup_size_bytes */
    nova_metric *m_verify_fail;  /* nova_backup_verify_failures_total */
    nova_metric *m_s3_fail;      /* nova_backup_s3_upload_failures_total */
    nova_metric *m_deleted;      /* nova_backup_retention_deleted_total{location} */
    nova_metric *m_kept;         /* nova_backup_kept{location} */
};

/* A log line: JSON through the host in the daemon, stderr in a command. */
void bk_log(const struct bk_ctx *ctx, enum nova_log_level level, const nova_job *job,
            const char *fmt, ...) NOVA_PRINTF(4, 5);

bool bk_s3_enabled(const struct bk_config *cfg);

/* "<dir>/<name><ext>", malloc'd; NULL when out of memory. */
char *bk_path(const char *dir, const char *name, const char *ext);

/* ---- bk_io.c: small asynchronous helpers ---------------------------------------- */

/* Reads a whole (small) file. status: 0, -ENOENT, -EFBIG (larger than max),
 * or another -errno. data is NUL-terminated, valid during the call. */
typedef void (*bk_slurp_cb)(void *arg, int status, const char *data, size_t len);
int bk_slurp(const struct bk_ctx *ctx, const char *path, size_t max, bk_slurp_cb cb, void *arg);

/* Writes data to path + ".tmp" (mode), fsyncs, closes and renames it over
 * path, fsyncing the directory: readers see the old file or the new one,
 * never a part. cb(arg, 0 or -errno). */
typedef void (*bk_done_cb)(void *arg, int status);
int bk_write_atomic(const struct bk_ctx *ctx, const char *path, const void *data, size_t len,
                    int mode, bk_done_cb cb, void *arg);

/* Runs a program to its end, keeping at most max bytes of its stdout.
 * status: 0 or -errno (could not start; -ECANCELED); exit_code -1 with a
 * signal. out is NUL-terminated. */
typedef void (*bk_capture_cb)(void *arg, int status, int exit_code, int term_signal,
                              const char *out, size_t out_len, const char *err_tail);
int bk_capture(const struct bk_ctx *ctx, const char *file, const char *const *argv,
               const char *const *env, size_t max, bk_capture_cb cb, void *arg);

/* One regular file of the backup directory. */
struct bk_dirent {
    char name[BK_NAME_MAX + 32];
    uint64_t size;
    int64_t mtime_ms;
};
/* Lists the regular files of dir (through find(1), off the loop). A
 * missing directory is an empty list. */
typedef void (*bk_list_cb)(void *arg, int status, const struct bk_dirent *ents, size_t n,
                           const char *err);
int bk_list_dir(const struct bk_ctx *ctx, const char *dir, bk_list_cb cb, void *arg);

/* Loads the backup key: key_file, else the credential backups-key in
 * $CREDENTIALS_DIRECTORY, else $BACKUP_ENCRYPTION_KEY. status 0 with the
 * key, or -errno with a reason (that never contains the key). */
typedef void (*bk_key_cb)(void *arg, int status, const unsigned char *key, const char *err);
int bk_key_load(const struct bk_ctx *ctx, bk_key_cb cb, void *arg);

/* The environment of a PostgreSQL client child: the password (if any),
 * PGAPPNAME, and the PG* variables of this process. NULL-terminated; free
 * with bk_strv_free. */
char **bk_pg_env(const char *password);
/* Frees a NULL-terminated array of strings (or NULL), wiping each: an
 * environment may hold PGPASSWORD. */
void bk_strv_free(char **v);

/* Unlinks paths one after the other, ignoring -ENOENT; cb gets the first
 * other error (the rest are still tried). paths are copied. */
int bk_unlink_all(const struct bk_ctx *ctx, const char *const *paths, size_t n, bk_done_cb cb,
                  void *arg);

/* ---- manifests ------------------------------------------------------------------ */

struct bk_manifest {
    char name[BK_NAME_MAX];
    int64_t created_ms;
    int64_t finished_ms;
    char database[128];
    char pg_dump_version[128];
    uint64_t dump_bytes; /* plaintext, as pg_dump wrote it */
    uint64_t size;       /* the encrypted file */
    char sha256[BK_SHA_HEX];
    char key_id[BK_KEYID_HEX];
    uint32_t chunk_size;
    int64_t duration_ms;
    enum bk_state state;
    int64_t verified_ms;
    char verify_error[BK_REASON_MAX];
};

char *bk_manifest_render(const struct bk_manifest *m); /* malloc'd JSON, NULL = no memory */
int bk_manifest_parse(const char *text, size_t len, struct bk_manifest *m, char *err,
                      size_t errlen);

/* ---- bk_verify.c: decrypt a backup file, optionally into a program ------------------ */

enum bk_vmode {
    BK_V_CHECK,   /* decrypt and hash only */
    BK_V_LIST,    /* ... into `pg_restore --list` */
    BK_V_RESTORE, /* ... into `pg_restore --dbname=...` */
};

struct bk_vreq {
    const char *path;
    const unsigned char *key;
    const char *sha256; /* expected, or NULL */
    uint64_t size;      /* expected, or 0 */
    const char *key_id; /* the manifest's key id, or NULL */
    enum bk_vmode mode;
    const char *program;     /* LIST/RESTORE: the pg_restore to run */
    const char *const *argv; /* its argv */
    const char *const *env;  /* its environment */
};

struct bk_vresult {
    bool ok;
    /* not ok because of the file itself (corrupt, truncated, other sha256,
     * pg_restore rejects it), not because of the key or the tools: only
     * then is the backup marked as failed, which retention acts on */
    bool file_bad;
    char error[BK_REASON_MAX]; /* why not ok */
    char sha256[BK_SHA_HEX];
    uint64_t size, plain_bytes;
    unsigned toc_entries; /* LIST: entries pg_restore listed */
};

typedef void (*bk_verify_cb)(void *arg, const struct bk_vresult *res);
int bk_verify_start(const struct bk_ctx *ctx, const struct bk_vreq *req, bk_verify_cb cb,
                    void *arg);

/* ---- bk_run.c: one backup --------------------------------------------------------------- */

struct bk_outcome {
    int status;         /* 0 ok; else -errno */
    bool transient;     /* worth a retry */
    const char *reason; /* when status != 0 */
    const char *name;   /* the backup, when one was made (or found) */
    const char *result; /* JSON for job_done, when ok */
};
typedef void (*bk_run_cb)(void *arg, const struct bk_outcome *out);

/* Makes the backup of time_ms (its name), verifies it, copies it to S3 and
 * applies retention. job may be NULL (the command). */
int bk_run_start(const struct bk_ctx *ctx, int64_t time_ms, nova_job *job, bk_run_cb cb, void *arg);

/* Applies retention to the local directory (and S3); cb(arg, 0 or -errno). */
int bk_retention_apply(const struct bk_ctx *ctx, const nova_job *job, bk_done_cb cb, void *arg);

/* ---- bk_s3.c: the off-site copy ------------------------------------------------------------- */

struct bk_s3_object {
    char key[512];
    uint64_t size;
};

/* Uploads <dir>/<name>.dump.enc (multipart above s3_part_size), checks the
 * copy against sha256 by reading it back, then uploads the manifest.
 * Skips a backup whose manifest is already there. cb(arg, 0 or -errno,
 * reason). */
typedef void (*bk_s3_cb)(void *arg, int status, const char *reason);
int bk_s3_upload(const struct bk_ctx *ctx, const char *name, const struct bk_manifest *m,
                 bk_s3_cb cb, void *arg);

/* Lists the objects under s3_prefix. */
typedef void (*bk_s3_list_cb)(void *arg, int status, const char *reason,
                              const struct bk_s3_object *objs, size_t n);
int bk_s3_list(const struct bk_ctx *ctx, bk_s3_list_cb cb, void *arg);

/* Deletes objects (keys as listed). */
int bk_s3_delete(const struct bk_ctx *ctx, const char *const *keys, size_t n, bk_s3_cb cb,
                 void *arg);

/* Downloads <prefix><name>.dump.enc and .json into the backup directory,
 * checking the sha256 of the manifest. */
int bk_s3_fetch(const struct bk_ctx *ctx, const char *name, bk_s3_cb cb, void *arg);

/* ---- bk_cli.c ------------------------------------------------------------------------ */

void bk_cli_run(const struct nova_host *host, const void *config, int argc, char **argv,
                nova_command_done_fn done);

#endif /* NOVA_BK_H */
