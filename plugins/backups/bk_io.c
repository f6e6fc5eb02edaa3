/*
 * bk_io - the small asynchronous building blocks of the backups plugin:
 * whole-file reads and atomic writes through host->file, short programs
 * through host->process (find(1) lists the backup directory so the loop
 * never runs readdir on a slow disk), the key, and the environment of the
 * PostgreSQL clients. Each helper calls back exactly once, never from
 * inside the call that started it, unless that call returned an error.
 */
#include "bk.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

extern char **environ;

void bk_log(const struct bk_ctx *ctx, enum nova_log_level level, const nova_job *job,
            const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ctx->cli) {
        if (level <= NOVA_LOG_INFO)
            fprintf(stderr, "nova-worker backup: %s\n", msg);
        return;
    }
    ctx->host->log(ctx->host, level, job, "%s", msg);
}

bool bk_s3_enabled(const struct bk_config *cfg)
{
    return cfg->s3_bucket != NULL && cfg->s3_bucket[0] != '\0';
}

char *bk_path(const char *dir, const char *name, const char *ext)
{
    size_t len = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *p = malloc(len);
    if (p != NULL)
        snprintf(p, len, "%s/%s%s", dir, name, ext);
    return p;
}

/* ---- slurp ------------------------------------------------------------------------ */

struct slurp {
    const struct bk_ctx *ctx;
    nova_file *f;
    char *buf;
    size_t len, max;
    int status;
    bk_slurp_cb cb;
    void *arg;
};

static void slurp_end(struct slurp *s)
{
    if (s->buf != NULL)
        s->buf[s->len] = '\0';
    s->cb(s->arg, s->status, s->buf != NULL ? s->buf : "", s->len);
    if (s->buf != NULL) {
        sodium_memzero(s->buf, s->len); /* it may have held a key */
        free(s->buf);
    }
    free(s);
}

static void slurp_closed(void *arg, int status)
{
    struct slurp *s = arg;
    if (s->status == 0 && status < 0)
        s->status = status;
    slurp_end(s);
}

static void slurp_close(struct slurp *s)
{
    if (s->ctx->host->file->close(s->f, slurp_closed, s) != 0)
        slurp_end(s);
}

static void slurp_read(void *arg, int status, const void *data, size_t len)
{
    struct slurp *s = arg;
    if (status < 0) {
        s->status = status;
        return slurp_close(s);
    }
    if (len == 0)
        return slurp_close(s);
    if (s->len + len > s->max) {
        s->status = -EFBIG;
        return slurp_close(s);
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    int rc = s->ctx->host->file->read(s->f, 65536, slurp_read, s);
    if (rc != 0) {
        s->status = rc;
        slurp_close(s);
    }
}

static void slurp_opened(void *arg, int status, nova_file *f)
{
    struct slurp *s = arg;
    if (status < 0) {
        s->status = status;
        return slurp_end(s);
    }
    s->f = f;
    int rc = s->ctx->host->file->read(f, 65536, slurp_read, s);
    if (rc != 0) {
        s->status = rc;
        slurp_close(s);
    }
}

int bk_slurp(const struct bk_ctx *ctx, const char *path, size_t max, bk_slurp_cb cb, void *arg)
{
    struct slurp *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->ctx = ctx;
    s->max = max;
    s->cb = cb;
    s->arg = arg;
    s->buf = malloc(max + 1);
    if (s->buf == NULL) {
        free(s);
        return -ENOMEM;
    }
    int rc = ctx->host->file->open(ctx->host, path, NOVA_FILE_READ, 0, slurp_opened, s);
    if (rc != 0) {
        free(s->buf);
        free(s);
    }
    return rc;
}

/* ---- atomic write ------------------------------------------------------------------ */

struct awrite {
    const struct bk_ctx *ctx;
    char *path, *tmp;
    void *data;
    size_t len;
    nova_file *f;
    int status;
    bk_done_cb cb;
    void *arg;
};

static void awrite_end(struct awrite *w)
{
    w->cb(w->arg, w->status);
    free(w->path);
    free(w->tmp);
    free(w->data);
    free(w);
}

static void awrite_unlinked(void *arg, int status)
{
    (void)status;
    awrite_end(arg);
}

static void awrite_fail(struct awrite *w, int status)
{
    if (w->status == 0)
        w->status = status;
    if (w->ctx->host->file->unlink(w->ctx->host, w->tmp, awrite_unlinked, w) != 0)
        awrite_end(w);
}

static void awrite_renamed(void *arg, int status)
{
    struct awrite *w = arg;
    if (status < 0)
        return awrite_fail(w, status);
    awrite_end(w);
}

static void awrite_closed(void *arg, int status)
{
    struct awrite *w = arg;
    if (w->status == 0 && status < 0)
        w->status = status;
    if (w->status != 0)
        return awrite_fail(w, w->status);
    int rc = w->ctx->host->file->rename(w->ctx->host, w->tmp, w->path, true, awrite_renamed, w);
    if (rc != 0)
        awrite_fail(w, rc);
}

static void awrite_close(struct awrite *w)
{
    int rc = w->ctx->host->file->close(w->f, awrite_closed, w);
    if (rc != 0)
        awrite_fail(w, rc);
}

static void awrite_synced(void *arg, int status)
{
    struct awrite *w = arg;
    if (w->status == 0 && status < 0)
        w->status = status;
    awrite_close(w);
}

static void awrite_written(void *arg, int status)
{
    struct awrite *w = arg;
    if (status < 0) {
        w->status = status;
        return awrite_close(w);
    }
    int rc = w->ctx->host->file->sync(w->f, awrite_synced, w);
    if (rc != 0) {
        w->status = rc;
        awrite_close(w);
    }
}

static void awrite_opened(void *arg, int status, nova_file *f)
{
    struct awrite *w = arg;
    if (status < 0) {
        w->status = status;
        return awrite_end(w);
    }
    w->f = f;
    int rc = w->ctx->host->file->write(f, w->data, w->len, awrite_written, w);
    if (rc != 0) {
        w->status = rc;
        awrite_close(w);
    }
}

int bk_write_atomic(const struct bk_ctx *ctx, const char *path, const void *data, size_t len,
                    int mode, bk_done_cb cb, void *arg)
{
    struct awrite *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->ctx = ctx;
    w->cb = cb;
    w->arg = arg;
    w->len = len;
    w->path = strdup(path);
    w->tmp = malloc(strlen(path) + 5);
    w->data = malloc(len > 0 ? len : 1);
    if (w->path == NULL || w->tmp == NULL || w->data == NULL) {
        free(w->path);
        free(w->tmp);
        free(w->data);
        free(w);
        return -ENOMEM;
    }
    sprintf(w->tmp, "%s.tmp", path);
    memcpy(w->data, data, len);
    int rc = ctx->host->file->open(ctx->host, w->tmp, NOVA_FILE_WRITE, mode, awrite_opened, w);
    if (rc != 0) {
        free(w->path);
        free(w->tmp);
        free(w->data);
        free(w);
    }
    return rc;
}

/* ---- capture ------------------------------------------------------------------------ */

struct capture {
    char *out;
    size_t len, max;
    bk_capture_cb cb;
    void *arg;
};

static void capture_out(void *arg, const void *data, size_t len)
{
    struct capture *c = arg;
    size_t n = c->max - c->len;
    if (n > len)
        n = len;
    memcpy(c->out + c->len, data, n);
    c->len += n;
}

static void capture_exit(void *arg, int status, int exit_code, int term_signal,
                         const char *stderr_tail)
{
    struct capture *c = arg;
    c->out[c->len] = '\0';
    c->cb(c->arg, status, exit_code, term_signal, c->out, c->len, stderr_tail);
    free(c->out);
    free(c);
}

int bk_capture(const struct bk_ctx *ctx, const char *file, const char *const *argv,
               const char *const *env, size_t max, bk_capture_cb cb, void *arg)
{
    struct capture *c = calloc(1, sizeof *c);
    if (c == NULL || (c->out = malloc(max + 1)) == NULL) {
        free(c);
        return -ENOMEM;
    }
    c->max = max;
    c->cb = cb;
    c->arg = arg;
    struct nova_process_spec spec = {
        .struct_size = sizeof spec,
        .file = file,
        .argv = argv,
        .env = env,
    };
    int rc = ctx->host->process->spawn(ctx->host, &spec, capture_out, capture_exit, c, NULL);
    if (rc != 0) {
        free(c->out);
        free(c);
    }
    return rc;
}

/* ---- directory listing ------------------------------------------------------------- */

struct listing {
    bk_list_cb cb;
    void *arg;
};

static void list_done(void *arg, int status, int exit_code, int term_signal, const char *out,
                      size_t out_len, const char *err_tail)
{
    struct listing *l = arg;
    (void)out_len;
    if (status < 0) {
        char why[256];
        snprintf(why, sizeof why, "find: %s", strerror(-status));
        l->cb(l->arg, status, NULL, 0, why);
        free(l);
        return;
    }
    if (exit_code != 0) {
        if (strstr(err_tail, "No such file or directory") != NULL) {
            l->cb(l->arg, 0, NULL, 0, "");
        } else {
            char why[512];
            snprintf(why, sizeof why, "listing the backup directory failed (find exited %d%s): %s",
                     exit_code, term_signal > 0 ? " on a signal" : "", err_tail);
            l->cb(l->arg, -EIO, NULL, 0, why);
        }
        free(l);
        return;
    }
    size_t cap = 0, n = 0;
    for (const char *p = out; *p != '\0'; p++)
        cap += *p == '\n';
    struct bk_dirent *ents = calloc(cap > 0 ? cap : 1, sizeof *ents);
    if (ents == NULL) {
        l->cb(l->arg, -ENOMEM, NULL, 0, "out of memory");
        free(l);
        return;
    }
    for (const char *p = out; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        const char *t1 = memchr(p, '\t', len);
        const char *t2 = t1 != NULL ? memchr(t1 + 1, '\t', len - (size_t)(t1 + 1 - p)) : NULL;
        if (t2 != NULL && (size_t)(t1 - p) < sizeof ents[n].name && n < cap) {
            memcpy(ents[n].name, p, (size_t)(t1 - p));
            ents[n].name[t1 - p] = '\0';
            ents[n].size = strtoull(t1 + 1, NULL, 10);
            ents[n].mtime_ms = (int64_t)(strtod(t2 + 1, NULL) * 1000.0);
            n++;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    l->cb(l->arg, 0, ents, n, "");
    free(ents);
    free(l);
}

int bk_list_dir(const struct bk_ctx *ctx, const char *dir, bk_list_cb cb, void *arg)
{
    struct listing *l = calloc(1, sizeof *l);
    if (l == NULL)
        return -ENOMEM;
    l->cb = cb;
    l->arg = arg;
    const char *argv[] = {"find", dir,       "-mindepth",        "1", "-maxdepth", "1", "-type",
                          "f",    "-printf", "%f\\t%s\\t%T@\\n", NULL};
    static const char *const env[] = {"LC_ALL=C", NULL};
    int rc = bk_capture(ctx, "find", argv, env, 4 << 20, list_done, l);
    if (rc != 0)
        free(l);
    return rc;
}

/* ---- the key --------------------------------------------------------------------------- */

struct keyload {
    char where[300];
    bool from_credential;
    bk_key_cb cb;
    void *arg;
};

static void key_give(struct keyload *k, const char *text, size_t len)
{
    unsigned char key[BK_KEY_BYTES];
    char why[256], err[1024];
    if (bk_key_parse(text, len, key, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "backup key from %s: %s", k->where, why);
        k->cb(k->arg, -EINVAL, NULL, err);
    } else {
        k->cb(k->arg, 0, key, "");
    }
    sodium_memzero(key, sizeof key);
}

static void key_from_env(void *arg)
{
    struct keyload *k = arg;
    const char *v = getenv("BACKUP_ENCRYPTION_KEY");
    if (v != NULL && v[0] != '\0') {
        snprintf(k->where, sizeof k->where, "the environment variable BACKUP_ENCRYPTION_KEY");
        key_give(k, v, strlen(v));
    } else {
        k->cb(k->arg, -ENOKEY, NULL,
              "no backup key: set key_file in [plugin backups], load the systemd credential "
              "backups-key, or set BACKUP_ENCRYPTION_KEY (create a key with `nova-worker backup "
              "keygen FILE`)");
    }
    free(k);
}

static void key_read(void *arg, int status, const char *data, size_t len)
{
    struct keyload *k = arg;
    if (status == -ENOENT && k->from_credential) {
        /* no credential: the environment is the fallback */
        key_from_env(k);
        return;
    }
    if (status < 0) {
        char err[1024];
        snprintf(err, sizeof err, "backup key: cannot read %s: %s%s", k->where,
                 status == -EFBIG ? "larger than a key file" : strerror(-status),
                 status == -ENOENT ? " (create it with `nova-worker backup keygen FILE`)" : "");
        k->cb(k->arg, status, NULL, err);
    } else {
        key_give(k, data, len);
    }
    free(k);
}

int bk_key_load(const struct bk_ctx *ctx, bk_key_cb cb, void *arg)
{
    struct keyload *k = calloc(1, sizeof *k);
    if (k == NULL)
        return -ENOMEM;
    k->cb = cb;
    k->arg = arg;
    const char *file = ctx->cfg->key_file;
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    int rc;
    char path[4096];
    if (file != NULL && file[0] != '\0') {
        snprintf(k->where, sizeof k->where, "key_file %s", file);
        rc = bk_slurp(ctx, file, 256, key_read, k);
    } else if (creds != NULL && creds[0] != '\0') {
        snprintf(path, sizeof path, "%s/backups-key", creds);
        snprintf(k->where, sizeof k->where, "the credential backups-key");
        k->from_credential = true;
        rc = bk_slurp(ctx, path, 256, key_read, k);
    } else {
        /* deferred, so that cb never runs inside this call */
        rc = ctx->host->timer_start(ctx->host, 0, 0, key_from_env, k) != NULL ? 0 : -ENOMEM;
    }
    if (rc != 0)
        free(k);
    return rc;
}

/* ---- environment of the PostgreSQL clients ----------------------------------------- */

char **bk_pg_env(const char *password)
{
    size_t n = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++)
        n++;
    char **env = calloc(n + 3, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t k = 0;
    bool app = false;
    /* libpq's own variables (PGHOST, PGSSLMODE, PGPASSFILE, ...) keep
     * working as for any client; a password in the DSN wins over
     * PGPASSWORD. */
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, "PG", 2) != 0)
            continue;
        if (password != NULL && strncmp(*e, "PGPASSWORD=", 11) == 0)
            continue;
        app |= strncmp(*e, "PGAPPNAME=", 10) == 0;
        if ((env[k++] = strdup(*e)) == NULL)
            goto fail;
    }
    if (password != NULL) {
        size_t len = strlen(password) + 12;
        if ((env[k] = malloc(len)) == NULL)
            goto fail;
        snprintf(env[k++], len, "PGPASSWORD=%s", password);
    }
    if (!app && (env[k++] = strdup("PGAPPNAME=nova-worker-backups")) == NULL)
        goto fail;
    return env;
fail:
    bk_strv_free(env);
    return NULL;
}

void bk_strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        sodium_memzero(v[i], strlen(v[i]));
        free(v[i]);
    }
    free(v);
}

/* ---- unlinks ------------------------------------------------------------------------------ */

struct unlinks {
    const struct bk_ctx *ctx;
    char **paths;
    size_t n, at;
    int status;
    bk_done_cb cb;
    void *arg;
};

static void unlinks_next(struct unlinks *u);

static void unlinks_one(void *arg, int status)
{
    struct unlinks *u = arg;
    if (status < 0 && status != -ENOENT && u->status == 0)
        u->status = status;
    unlinks_next(u);
}

static void unlinks_next(struct unlinks *u)
{
    while (u->at < u->n) {
        const char *p = u->paths[u->at++];
        int rc = u->ctx->host->file->unlink(u->ctx->host, p, unlinks_one, u);
        if (rc == 0)
            return;
        if (u->status == 0)
            u->status = rc;
        if (rc == -ECANCELED)
            break;
    }
    u->cb(u->arg, u->status);
    for (size_t i = 0; i < u->n; i++)
        free(u->paths[i]);
    free(u->paths);
    free(u);
}

static void unlinks_start(void *arg)
{
    unlinks_next(arg);
}

int bk_unlink_all(const struct bk_ctx *ctx, const char *const *paths, size_t n, bk_done_cb cb,
                  void *arg)
{
    struct unlinks *u = calloc(1, sizeof *u);
    if (u == NULL)
        return -ENOMEM;
    u->ctx = ctx;
    u->cb = cb;
    u->arg = arg;
    u->paths = calloc(n > 0 ? n : 1, sizeof *u->paths);
    if (u->paths == NULL) {
        free(u);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if ((u->paths[i] = strdup(paths[i])) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(u->paths[j]);
            free(u->paths);
            free(u);
            return -ENOMEM;
        }
    }
    u->n = n;
    if (ctx->host->timer_start(ctx->host, 0, 0, unlinks_start, u) == NULL) {
        for (size_t i = 0; i < n; i++)
            free(u->paths[i]);
        free(u->paths);
        free(u);
        return -ENOMEM;
    }
    return 0;
}
