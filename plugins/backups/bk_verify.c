/*
 * bk_verify - reads an encrypted backup back: hashes the encrypted bytes,
 * decrypts them chunk by chunk and, for `verify` and `restore`, feeds the
 * plaintext to pg_restore's stdin. One read is in flight at a time and the
 * next waits until pg_restore took the previous plaintext, so memory stays
 * at a few hundred KiB whatever the size of the backup, and a slow restore
 * slows the reading instead of filling memory.
 *
 * A record that does not authenticate stops everything at once: pg_restore
 * is killed with SIGKILL before its stdin is closed, so the server sees a
 * broken connection and rolls the --single-transaction back instead of
 * committing a prefix.
 */
#include "bk.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define V_READ 262144

struct vrun {
    const struct bk_ctx *ctx;
    const struct nova_host *host;
    struct bk_vreq req; /* its pointers are to the copies below */
    char *path, *sha_expected, *program;
    char key_id[BK_KEYID_HEX]; /* the manifest's, or "" */
    char **argv, **env;
    struct bk_dec dec;
    crypto_hash_sha256_state sha;
    nova_file *f;
    nova_process *proc;
    bool file_done, child_running, child_gone, stdin_closed, killed, failed;
    size_t pending; /* stdin writes not yet taken */
    int exit_status, exit_code, term_signal;
    char *child_err;
    char out_tail[256]; /* the last bytes of pg_restore's stdout */
    size_t out_len;
    unsigned toc_lines;
    bool at_line_start;
    struct bk_vresult res;
    bk_verify_cb cb;
    void *arg;
};

static int strv_dup(const char *const *in, char ***out)
{
    size_t n = 0;
    *out = NULL;
    if (in == NULL)
        return 0;
    while (in[n] != NULL)
        n++;
    char **v = calloc(n + 1, sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((v[i] = strdup(in[i])) == NULL) {
            bk_strv_free(v);
            return -ENOMEM;
        }
    }
    *out = v;
    return 0;
}

static void vrun_free(struct vrun *v)
{
    bk_dec_free(&v->dec);
    free(v->path);
    free(v->sha_expected);
    free(v->child_err);
    free(v->program);
    bk_strv_free(v->argv);
    bk_strv_free(v->env);
    free(v);
}

static void v_finish(struct vrun *v)
{
    if (!v->file_done || v->child_running || v->pending > 0 || v->f != NULL)
        return;
    struct bk_vresult *r = &v->res;
    if (!v->failed && v->req.mode != BK_V_CHECK) {
        const char *prog = v->req.mode == BK_V_LIST ? "pg_restore --list" : "pg_restore";
        if (v->exit_status < 0) {
            snprintf(r->error, sizeof r->error, "%s did not run: %s", prog,
                     strerror(-v->exit_status));
            v->failed = true;
        } else if (v->exit_code != 0) {
            /* pg_restore --list only reads the file: it refused the dump */
            r->file_bad = v->req.mode == BK_V_LIST && v->term_signal == 0;
            snprintf(r->error, sizeof r->error, "%s %s %d: %s", prog,
                     v->term_signal > 0 ? "was killed by signal" : "exited",
                     v->term_signal > 0 ? v->term_signal : v->exit_code,
                     v->child_err != NULL && v->child_err[0] ? v->child_err : "(no message)");
            v->failed = true;
        } else if (v->req.mode == BK_V_LIST && v->toc_lines == 0) {
            r->file_bad = true;
            snprintf(r->error, sizeof r->error, "pg_restore --list listed no entry");
            v->failed = true;
        }
    }
    r->ok = !v->failed;
    r->toc_entries = v->toc_lines;
    v->cb(v->arg, r);
    vrun_free(v);
}

/* Stops the pipeline with a reason (the first one wins). */
static void v_fail(struct vrun *v, const char *fmt, ...) NOVA_PRINTF(2, 3);

static void v_fail(struct vrun *v, const char *fmt, ...)
{
    if (!v->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->res.error, sizeof v->res.error, fmt, ap);
        va_end(ap);
        v->failed = true;
    }
    if (v->child_running && !v->killed) {
        v->killed = true;
        v->host->process->kill(v->proc, SIGKILL);
    }
}

static void v_closed(void *arg, int status)
{
    struct vrun *v = arg;
    (void)status;
    v->f = NULL;
    v_finish(v);
}

static void v_close_file(struct vrun *v)
{
    v->file_done = true;
    if (v->f == NULL)
        return v_finish(v);
    if (v->host->file->close(v->f, v_closed, v) != 0) {
        v->f = NULL;
        v_finish(v);
    }
}

static void v_read_next(struct vrun *v);

static void v_stdin_taken(void *arg, int status)
{
    struct vrun *v = arg;
    v->pending--;
    if (status == -EPIPE) {
        /* pg_restore --list stops reading after the table of contents:
         * the rest is still decrypted, to authenticate every record */
        v->child_gone = true;
    } else if (status < 0 && !v->child_gone) {
        v->child_gone = true;
        if (v->req.mode == BK_V_RESTORE && !v->failed)
            v_fail(v, "writing to pg_restore failed: %s", strerror(-status));
    }
    if (v->pending > 0)
        return;
    if (v->file_done)
        return v_finish(v);
    v_read_next(v);
}

static int v_emit(void *arg, const unsigned char *data, size_t len)
{
    struct vrun *v = arg;
    if (v->req.mode == BK_V_CHECK || v->child_gone || !v->child_running)
        return 0;
    int rc = v->host->process->write_stdin(v->proc, data, len, v_stdin_taken, v);
    if (rc == 0)
        v->pending++;
    else
        v->child_gone = true;
    return 0;
}

/* A decryption failure: whose fault it is decides what happens to the
 * backup. A header naming another key is a wrong key, unless the manifest
 * names the configured key: then the header itself was changed. */
static void v_dec_failed(struct vrun *v, const char *why)
{
    char kid[BK_KEYID_HEX];
    sodium_bin2hex(kid, sizeof kid, v->dec.keyid, BK_KEYID_BYTES);
    if (v->dec.error == BK_DEC_WRONG_KEY && strcmp(v->key_id, kid) == 0) {
        v->res.file_bad = true;
        return v_fail(v,
                      "modified or corrupted: the header names another key than the manifest "
                      "and the configured key (%s)",
                      kid);
    }
    v->res.file_bad = v->dec.error != BK_DEC_WRONG_KEY && v->dec.error != BK_DEC_OK;
    v_fail(v, "%s", why);
}

static void v_end_of_input(struct vrun *v)
{
    char why[512];
    if (bk_dec_final(&v->dec, v_emit, v, why, sizeof why) != 0) {
        v_dec_failed(v, why);
        return v_close_file(v);
    }
    bk_sha256_hex(&v->sha, v->res.sha256);
    v->res.plain_bytes = v->dec.plain_bytes;
    if ((v->sha_expected != NULL && strcmp(v->sha_expected, v->res.sha256) != 0) ||
        (v->req.size > 0 && v->req.size != v->res.size))
        v->res.file_bad = true;
    if (v->sha_expected != NULL && strcmp(v->sha_expected, v->res.sha256) != 0)
        v_fail(v, "sha256 mismatch: the manifest says %s, the file has %s", v->sha_expected,
               v->res.sha256);
    else if (v->req.size > 0 && v->req.size != v->res.size)
        v_fail(v, "size mismatch: the manifest says %llu bytes, the file has %llu",
               (unsigned long long)v->req.size, (unsigned long long)v->res.size);
    else if (v->child_running && !v->stdin_closed) {
        v->stdin_closed = true;
        v->host->process->close_stdin(v->proc);
    }
    v_close_file(v);
}

static void v_read(void *arg, int status, const void *data, size_t len)
{
    struct vrun *v = arg;
    if (status < 0) {
        v_fail(v, "reading %s: %s", v->path, strerror(-status));
        return v_close_file(v);
    }
    if (len == 0)
        return v_end_of_input(v);
    crypto_hash_sha256_update(&v->sha, data, len);
    v->res.size += len;
    char why[512];
    if (bk_dec_update(&v->dec, data, len, v_emit, v, why, sizeof why) != 0) {
        v_dec_failed(v, why);
        return v_close_file(v);
    }
    if (v->failed) /* the child died meanwhile (restore) */
        return v_close_file(v);
    if (v->pending == 0)
        v_read_next(v);
}

static void v_read_next(struct vrun *v)
{
    if (v->failed)
        return v_close_file(v);
    int rc = v->host->file->read(v->f, V_READ, v_read, v);
    if (rc != 0) {
        v_fail(v, "reading %s: %s", v->path, strerror(-rc));
        v_close_file(v);
    }
}

static void v_child_out(void *arg, const void *data, size_t len)
{
    struct vrun *v = arg;
    const char *p = data;
    /* pg_restore --list: one line per entry, ';' starts a comment */
    for (size_t i = 0; i < len; i++) {
        if (v->at_line_start && p[i] != ';' && p[i] != '\n')
            v->toc_lines++;
        v->at_line_start = p[i] == '\n';
    }
}

static void v_child_exit(void *arg, int status, int exit_code, int term_signal,
                         const char *stderr_tail)
{
    struct vrun *v = arg;
    v->child_running = false;
    v->child_gone = true;
    v->exit_status = status;
    v->exit_code = exit_code;
    v->term_signal = term_signal;
    /* one line is enough for a reason: the last non-empty one */
    size_t n = strlen(stderr_tail);
    while (n > 0 && (stderr_tail[n - 1] == '\n' || stderr_tail[n - 1] == '\r'))
        n--;
    const char *start = stderr_tail;
    for (size_t i = 0; i < n; i++)
        if (stderr_tail[i] == '\n' && i + 1 < n)
            start = stderr_tail + i + 1;
    size_t len = (size_t)(stderr_tail + n - start);
    free(v->child_err);
    v->child_err = malloc(len + 1);
    if (v->child_err != NULL) {
        memcpy(v->child_err, start, len);
        v->child_err[len] = '\0';
    }
    if (v->req.mode == BK_V_RESTORE && !v->file_done && !v->failed)
        v_fail(v, "pg_restore %s %d before the whole backup was read: %s",
               term_signal > 0 ? "was killed by signal" : "exited",
               term_signal > 0 ? term_signal : exit_code, v->child_err != NULL ? v->child_err : "");
    v_finish(v);
}

static void v_opened(void *arg, int status, nova_file *f)
{
    struct vrun *v = arg;
    if (status < 0) {
        v_fail(v, "cannot open %s: %s", v->path, strerror(-status));
        v->file_done = true;
        return v_finish(v);
    }
    v->f = f;
    if (v->req.mode != BK_V_CHECK) {
        struct nova_process_spec spec = {
            .struct_size = sizeof spec,
            .file = v->req.program,
            .argv = v->req.argv,
            .env = v->req.env,
            .stdin_pipe = true,
            .stderr_keep = 2048,
        };
        int rc = v->host->process->spawn(v->host, &spec, v_child_out, v_child_exit, v, &v->proc);
        if (rc != 0) {
            v_fail(v, "%s cannot start: %s", v->req.program,
                   rc == -ENOENT ? "not found (set pg_restore = /path/to/pg_restore)"
                                 : strerror(-rc));
            return v_close_file(v);
        }
        v->child_running = true;
    }
    v_read_next(v);
}

int bk_verify_start(const struct bk_ctx *ctx, const struct bk_vreq *req, bk_verify_cb cb, void *arg)
{
    struct vrun *v = calloc(1, sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    /* the child starts once the file is open: argv and env must outlive
     * the caller's frame */
    if (strv_dup(req->argv, &v->argv) != 0 || strv_dup(req->env, &v->env) != 0 ||
        (req->program != NULL && (v->program = strdup(req->program)) == NULL)) {
        vrun_free(v);
        return -ENOMEM;
    }
    v->ctx = ctx;
    v->host = ctx->host;
    v->req = *req;
    v->req.argv = (const char *const *)v->argv;
    v->req.env = (const char *const *)v->env;
    v->req.program = v->program;
    v->req.path = NULL;
    v->req.sha256 = NULL;
    v->req.key = NULL;
    snprintf(v->key_id, sizeof v->key_id, "%s", req->key_id != NULL ? req->key_id : "");
    v->req.key_id = NULL;
    v->cb = cb;
    v->arg = arg;
    v->at_line_start = true;
    v->path = strdup(req->path);
    v->sha_expected = req->sha256 != NULL && req->sha256[0] != '\0' ? strdup(req->sha256) : NULL;
    if (v->path == NULL || bk_dec_init(&v->dec, req->key) != 0 ||
        (req->sha256 != NULL && req->sha256[0] != '\0' && v->sha_expected == NULL)) {
        vrun_free(v);
        return -ENOMEM;
    }
    crypto_hash_sha256_init(&v->sha);
    int rc = ctx->host->file->open(ctx->host, v->path, NOVA_FILE_READ, 0, v_opened, v);
    if (rc != 0)
        vrun_free(v);
    return rc;
}
