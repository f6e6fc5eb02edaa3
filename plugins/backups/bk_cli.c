/*
 * bk_cli - `nova-worker backup ...`, the operator's side of the plugin:
 * list, now, verify, restore, fetch and keygen. Each works from the
 * [plugin backups] section of the config given with -c (or its defaults
 * and environment), on the runtime's loop, without the daemon: only what
 * the subcommand needs is touched, so keygen, list and verify work on a
 * host where the database is not reachable.
 *
 * restore is careful in this order: the target must be reachable and empty
 * (unless --force), the whole file must decrypt and match its manifest's
 * sha256, and only then does pg_restore run, in one transaction.
 */
#include "bk.h"
#include "bk_dsn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static const char bk_usage[] =
    "usage: nova-worker backup COMMAND [ARGS] [-c FILE]\n"
    "  list                           the backups in backup_dir and on S3, newest first\n"
    "  now                            make one backup now and print its name\n"
    "  verify NAME                    decrypt NAME, check its sha256, run pg_restore --list\n"
    "  restore NAME --into DSN [--force] [--no-owner]\n"
    "                                 restore NAME into the database DSN, which must be empty\n"
    "                                 unless --force (objects of the backup are then dropped\n"
    "                                 and recreated); the password belongs in PGPASSWORD or\n"
    "                                 ~/.pgpass, not in DSN\n"
    "  fetch NAME                     download NAME from S3 into backup_dir\n"
    "  keygen FILE                    write a new random backup key to FILE (mode 0600)\n"
    "The keys come from [plugin backups] of FILE (docs/plugins/backups.md).\n";

struct cli {
    struct bk_ctx ctx;
    const struct nova_host *host;
    nova_command_done_fn done;
    char name[BK_NAME_MAX];
    char mpath[4096], path[4096];
    const char *into;
    bool force, no_owner;
    unsigned char key[BK_KEY_BYTES];
    struct bk_manifest man;
    bool have_manifest;
    struct bk_dsn target;
    char **env;
    nova_file *f;
    char keyfile[4096];
    char keytext[BK_KEY_HEX + 2];
    /* list */
    struct row {
        char name[BK_NAME_MAX];
        int64_t time_ms;
        uint64_t size;
        enum bk_state state;
        bool local, s3, readable;
    } * rows;
    size_t nrows, at;
};

/* Frees the command and ends it with code. */
static void cli_exit(struct cli *c, int code)
{
    const struct nova_host *host = c->host;
    nova_command_done_fn done = c->done;
    sodium_memzero(c->key, sizeof c->key);
    sodium_memzero(c->keytext, sizeof c->keytext);
    bk_dsn_free(&c->target);
    bk_strv_free(c->env);
    free(c->rows);
    free(c);
    fflush(stdout);
    fflush(stderr);
    done(host, code);
}

static void cli_fail(struct cli *c, int code, const char *fmt, ...) NOVA_PRINTF(3, 4);

static void cli_fail(struct cli *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("nova-worker backup: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cli_exit(c, code);
}

/* NAME as given: a bare name, or a file name of it. */
static bool take_name(struct cli *c, const char *arg)
{
    char n[BK_NAME_MAX + 16];
    if (strchr(arg, '/') != NULL || strlen(arg) >= sizeof n)
        return false;
    snprintf(n, sizeof n, "%s", arg);
    size_t len = strlen(n);
    static const char *const exts[] = {".dump.enc", ".json"};
    for (size_t i = 0; i < 2; i++) {
        size_t k = strlen(exts[i]);
        if (len > k && strcmp(n + len - k, exts[i]) == 0) {
            n[len - k] = '\0';
            break;
        }
    }
    if (bk_name_time(n) < 0)
        return false;
    snprintf(c->name, sizeof c->name, "%s", n);
    snprintf(c->mpath, sizeof c->mpath, "%s/%s.json", c->ctx.cfg->backup_dir, n);
    snprintf(c->path, sizeof c->path, "%s/%s.dump.enc", c->ctx.cfg->backup_dir, n);
    return true;
}

/* ---- keygen --------------------------------------------------------------------------- */

static void keygen_closed(void *arg, int status)
{
    struct cli *c = arg;
    if (status < 0)
        return cli_fail(c, 1, "closing %s: %s", c->keyfile, strerror(-status));
    char id[BK_KEYID_HEX];
    bk_key_id_hex(c->key, id);
    printf("wrote a new backup key to %s (key id %s)\n", c->keyfile, id);
    fprintf(stderr, "Keep a copy of it somewhere safe, away from the backups: they cannot be "
                    "restored without it.\n");
    cli_exit(c, 0);
}

static void keygen_removed(void *arg, int status)
{
    (void)status;
    cli_exit(arg, 1);
}

/* A key file that was not written whole must not stay behind. */
static void keygen_failed_closed(void *arg, int status)
{
    struct cli *c = arg;
    (void)status;
    if (c->host->file->unlink(c->host, c->keyfile, keygen_removed, c) != 0)
        cli_exit(c, 1);
}

static void keygen_synced(void *arg, int status)
{
    struct cli *c = arg;
    if (status < 0)
        fprintf(stderr, "nova-worker backup: writing %s: %s\n", c->keyfile, strerror(-status));
    nova_file_cb next = status < 0 ? keygen_failed_closed : keygen_closed;
    if (c->host->file->close(c->f, next, c) != 0)
        next(c, -EIO);
}

static void keygen_written(void *arg, int status)
{
    struct cli *c = arg;
    if (status < 0)
        return keygen_synced(c, status);
    if (c->host->file->sync(c->f, keygen_synced, c) != 0)
        keygen_synced(c, -EIO);
}

static void keygen_opened(void *arg, int status, nova_file *f)
{
    struct cli *c = arg;
    if (status == -EEXIST)
        return cli_fail(c, 1,
                        "%s exists: refusing to overwrite a key (the backups made with it could "
                        "no longer be decrypted)",
                        c->keyfile);
    if (status < 0)
        return cli_fail(c, 1, "cannot create %s: %s", c->keyfile, strerror(-status));
    c->f = f;
    randombytes_buf(c->key, sizeof c->key);
    sodium_bin2hex(c->keytext, sizeof c->keytext, c->key, sizeof c->key);
    c->keytext[BK_KEY_HEX] = '\n';
    if (c->host->file->write(f, c->keytext, BK_KEY_HEX + 1, keygen_written, c) != 0)
        keygen_written(c, -EIO);
}

static void cmd_keygen(struct cli *c, const char *file)
{
    snprintf(c->keyfile, sizeof c->keyfile, "%s", file);
    int rc = c->host->file->open(c->host, file, NOVA_FILE_WRITE | NOVA_FILE_EXCL, 0600,
                                 keygen_opened, c);
    if (rc != 0)
        cli_fail(c, 1, "cannot create %s: %s", file, strerror(-rc));
}

/* ---- now ---------------------------------------------------------------------------------- */

static void now_done(void *arg, const struct bk_outcome *o)
{
    struct cli *c = arg;
    if (o->status != 0)
        return cli_fail(c, 1, "%s", o->reason);
    printf("%s\n", o->name);
    cli_exit(c, 0);
}

static void cmd_now(struct cli *c)
{
    int rc = bk_run_start(&c->ctx, c->host->now_ms(c->host), NULL, now_done, c);
    if (rc != 0)
        cli_fail(c, 1, "backup not started: %s", strerror(-rc));
}

/* ---- list ------------------------------------------------------------------------------------ */

static int by_time(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    return x->time_ms < y->time_ms ? 1 : x->time_ms > y->time_ms ? -1 : strcmp(x->name, y->name);
}

static void list_print(struct cli *c, int code)
{
    qsort(c->rows, c->nrows, sizeof *c->rows, by_time);
    if (c->nrows == 0) {
        fprintf(stderr, "no backups in %s%s\n", c->ctx.cfg->backup_dir,
                bk_s3_enabled(c->ctx.cfg) ? " nor on S3" : "");
    } else {
        printf("%-44s %-20s %14s %-8s %s\n", "NAME", "CREATED", "SIZE", "VERIFIED", "WHERE");
        for (size_t i = 0; i < c->nrows; i++) {
            const struct row *r = &c->rows[i];
            char when[40];
            bk_iso_time(when, sizeof when, r->time_ms);
            const char *ver = !r->local                 ? "-"
                              : !r->readable            ? "?"
                              : r->state == BK_VERIFIED ? "yes"
                              : r->state == BK_FAILED   ? "FAILED"
                                                        : "no";
            printf("%-44s %-20s %14" PRIu64 " %-8s %s\n", r->name, when, r->size, ver,
                   r->local && r->s3 ? "local,s3"
                   : r->local        ? "local"
                                     : "s3");
        }
    }
    cli_exit(c, code);
}

static struct row *row_of(struct cli *c, const char *name)
{
    for (size_t i = 0; i < c->nrows; i++)
        if (strcmp(c->rows[i].name, name) == 0)
            return &c->rows[i];
    return NULL;
}

static void list_s3(void *arg, int status, const char *reason, const struct bk_s3_object *objs,
                    size_t n)
{
    struct cli *c = arg;
    if (status != 0) {
        fprintf(stderr, "nova-worker backup: S3: %s\n", reason);
        return list_print(c, 1);
    }
    const char *prefix = c->ctx.cfg->s3_prefix != NULL ? c->ctx.cfg->s3_prefix : "";
    size_t plen = strlen(prefix);
    struct row *rows = realloc(c->rows, (c->nrows + n + 1) * sizeof *rows);
    if (rows == NULL)
        return cli_fail(c, 1, "out of memory");
    c->rows = rows;
    for (size_t i = 0; i < n; i++) {
        const char *key = objs[i].key;
        size_t kl = strlen(key);
        if (strncmp(key, prefix, plen) != 0 || kl - plen <= 9 || kl - plen - 9 >= BK_NAME_MAX ||
            strcmp(key + kl - 9, ".dump.enc") != 0)
            continue;
        char name[BK_NAME_MAX];
        memcpy(name, key + plen, kl - plen - 9);
        name[kl - plen - 9] = '\0';
        if (bk_name_time(name) < 0)
            continue;
        /* complete only with its manifest (bk_keep.c) */
        char mkey[600];
        snprintf(mkey, sizeof mkey, "%s%s.json", prefix, name);
        bool complete = false;
        for (size_t j = 0; j < n && !complete; j++)
            complete = strcmp(objs[j].key, mkey) == 0;
        if (!complete)
            continue;
        struct row *r = row_of(c, name);
        if (r == NULL) {
            r = &c->rows[c->nrows++];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "%s", name);
            r->time_ms = bk_name_time(name);
            r->size = objs[i].size;
        }
        r->s3 = true;
    }
    list_print(c, 0);
}

static void list_next(struct cli *c);

static void list_manifest(void *arg, int status, const char *data, size_t len)
{
    struct cli *c = arg;
    struct row *r = &c->rows[c->at];
    struct bk_manifest m;
    char why[256];
    if (status == 0 && bk_manifest_parse(data, len, &m, why, sizeof why) == 0) {
        r->readable = true;
        r->state = m.state;
        r->size = m.size;
    }
    c->at++;
    list_next(c);
}

static void list_next(struct cli *c)
{
    if (c->at == c->nrows) {
        if (!bk_s3_enabled(c->ctx.cfg))
            return list_print(c, 0);
        int rc = bk_s3_list(&c->ctx, list_s3, c);
        if (rc != 0) {
            fprintf(stderr, "nova-worker backup: S3 listing not started: %s\n", strerror(-rc));
            list_print(c, 1);
        }
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", c->ctx.cfg->backup_dir, c->rows[c->at].name);
    if (bk_slurp(&c->ctx, path, 1 << 16, list_manifest, c) != 0)
        list_manifest(c, -EIO, "", 0);
}

static void list_dir(void *arg, int status, const struct bk_dirent *ents, size_t n, const char *err)
{
    struct cli *c = arg;
    if (status < 0)
        return cli_fail(c, 1, "%s", err);
    c->rows = calloc(n + 1, sizeof *c->rows);
    if (c->rows == NULL)
        return cli_fail(c, 1, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ents[i].name);
        if (len <= 9 || len - 9 >= BK_NAME_MAX || strcmp(ents[i].name + len - 9, ".dump.enc") != 0)
            continue;
        struct row *r = &c->rows[c->nrows];
        memcpy(r->name, ents[i].name, len - 9);
        r->name[len - 9] = '\0';
        char json[BK_NAME_MAX + 8];
        snprintf(json, sizeof json, "%s.json", r->name);
        bool has = false;
        for (size_t j = 0; j < n && !has; j++)
            has = strcmp(ents[j].name, json) == 0;
        if ((r->time_ms = bk_name_time(r->name)) < 0 || !has)
            continue;
        r->local = true;
        r->size = ents[i].size;
        c->nrows++;
    }
    list_next(c);
}

static void cmd_list(struct cli *c)
{
    int rc = bk_list_dir(&c->ctx, c->ctx.cfg->backup_dir, list_dir, c);
    if (rc != 0)
        cli_fail(c, 1, "cannot list %s: %s", c->ctx.cfg->backup_dir, strerror(-rc));
}

/* ---- fetch ------------------------------------------------------------------------------------
 */

static void fetch_done(void *arg, int status, const char *reason)
{
    struct cli *c = arg;
    if (status != 0)
        return cli_fail(c, 1, "fetching %s from S3: %s", c->name, reason);
    printf("fetched %s into %s (sha256 checked)\n", c->name, c->ctx.cfg->backup_dir);
    cli_exit(c, 0);
}

static void cmd_fetch(struct cli *c)
{
    if (!bk_s3_enabled(c->ctx.cfg))
        return cli_fail(c, 1, "no S3 storage configured (s3_bucket)");
    int rc = bk_s3_fetch(&c->ctx, c->name, fetch_done, c);
    if (rc != 0)
        cli_fail(c, 1, "fetch not started: %s",
                 rc == -EINVAL ? "S3 credentials missing (s3_access_key_id, s3_secret_access_key)"
                               : strerror(-rc));
}

/* ---- verify and restore: manifest, key ---------------------------------------------------------
 */

static void verify_recorded(void *arg, int status)
{
    struct cli *c = arg;
    if (status < 0)
        fprintf(stderr, "nova-worker backup: could not record the result in %s: %s\n", c->mpath,
                strerror(-status));
    cli_exit(c, c->man.state == BK_VERIFIED ? 0 : 1);
}

static void verify_done(void *arg, const struct bk_vresult *res)
{
    struct cli *c = arg;
    if (res->ok) {
        printf("%s: OK: sha256 %s, %" PRIu64 " bytes, %" PRIu64
               " bytes of dump, %u entries listed by pg_restore\n",
               c->name, res->sha256, res->size, res->plain_bytes, res->toc_entries);
        c->man.state = BK_VERIFIED;
        c->man.verified_ms = c->host->now_ms(c->host);
        c->man.verify_error[0] = '\0';
    } else {
        fprintf(stderr, "nova-worker backup: %s: verification FAILED: %s\n", c->name, res->error);
        c->man.state = BK_FAILED;
        snprintf(c->man.verify_error, sizeof c->man.verify_error, "%s", res->error);
    }
    /* retention reads the verdict from the manifest; a wrong key or a
     * missing pg_restore says nothing about the backup itself */
    if (!res->ok && !res->file_bad)
        return cli_exit(c, 1);
    char *json = c->have_manifest ? bk_manifest_render(&c->man) : NULL;
    if (json == NULL)
        return cli_exit(c, res->ok ? 0 : 1);
    int rc = bk_write_atomic(&c->ctx, c->mpath, json, strlen(json), 0600, verify_recorded, c);
    free(json);
    if (rc != 0)
        verify_recorded(c, rc);
}

/* A decryption of NAME (mode), checked against its manifest when there is
 * one; argv and env: the pg_restore to feed, or NULL. */
static struct bk_vreq cli_vreq(const struct cli *c, enum bk_vmode mode, const char *const *argv,
                               char **env)
{
    return (struct bk_vreq){
        .path = c->path,
        .key = c->key,
        .sha256 = c->have_manifest ? c->man.sha256 : NULL,
        .size = c->have_manifest ? c->man.size : 0,
        .key_id = c->have_manifest ? c->man.key_id : NULL,
        .mode = mode,
        .program = argv != NULL ? c->ctx.cfg->pg_restore : NULL,
        .argv = argv,
        .env = (const char *const *)env,
    };
}

static void restore_done(void *arg, const struct bk_vresult *res)
{
    struct cli *c = arg;
    if (!res->ok)
        return cli_fail(c, 1, "restore of %s into %s FAILED (rolled back): %s", c->name,
                        c->target.dbname ? c->target.dbname : "the database", res->error);
    printf("restored %s into %s (%" PRIu64 " bytes of dump)\n", c->name,
           c->target.dbname ? c->target.dbname : "the database", res->plain_bytes);
    cli_exit(c, 0);
}

static void restore_checked(void *arg, const struct bk_vresult *res)
{
    struct cli *c = arg;
    if (!res->ok)
        return cli_fail(c, 1, "refused: %s cannot be restored: %s; nothing was restored", c->name,
                        res->error);
    char *dbarg = bk_dsn_dbname_arg(&c->target);
    if (dbarg == NULL)
        return cli_fail(c, 1, "out of memory");
    const char *argv[12];
    size_t n = 0;
    argv[n++] = c->ctx.cfg->pg_restore;
    argv[n++] = dbarg;
    argv[n++] = "--no-password";
    argv[n++] = "--single-transaction";
    argv[n++] = "--exit-on-error";
    if (c->force) {
        argv[n++] = "--clean";
        argv[n++] = "--if-exists";
    }
    if (c->no_owner) {
        argv[n++] = "--no-owner";
        argv[n++] = "--no-privileges";
    }
    argv[n] = NULL;
    struct bk_vreq req = cli_vreq(c, BK_V_RESTORE, argv, c->env);
    fprintf(stderr, "nova-worker backup: %s decrypts and matches its manifest; restoring into %s\n",
            c->name, c->target.dbname ? c->target.dbname : "the database");
    int rc = bk_verify_start(&c->ctx, &req, restore_done, c);
    free(dbarg);
    if (rc != 0)
        cli_fail(c, 1, "restore not started: %s", strerror(-rc));
}

static void restore_check(struct cli *c)
{
    struct bk_vreq req = cli_vreq(c, BK_V_CHECK, NULL, NULL);
    int rc = bk_verify_start(&c->ctx, &req, restore_checked, c);
    if (rc != 0)
        cli_fail(c, 1, "cannot read %s: %s", c->path, strerror(-rc));
}

static void psql_failed(struct cli *c, int status)
{
    cli_fail(c, 1, "%s cannot start: %s", c->ctx.cfg->psql,
             status == -ENOENT ? "not found (set psql = /path/to/psql)" : strerror(-status));
}

static void on_target_count(void *arg, int status, int exit_code, int term_signal, const char *out,
                            size_t out_len, const char *err_tail)
{
    struct cli *c = arg;
    (void)out_len;
    (void)term_signal;
    if (status < 0)
        return psql_failed(c, status);
    if (exit_code != 0)
        return cli_fail(c, 1, "refused: cannot inspect the target database: %s", err_tail);
    long n = strtol(out, NULL, 10);
    if (n > 0 && !c->force)
        return cli_fail(c, 1,
                        "refused: the database %s is not empty (%ld tables, views or sequences); "
                        "restore into an empty database, or add --force to drop and recreate the "
                        "objects of the backup in it; nothing was restored",
                        c->target.dbname ? c->target.dbname : "", n);
    if (n > 0)
        fprintf(stderr, "nova-worker backup: --force: restoring over %ld existing objects\n", n);
    restore_check(c);
}

static void restore_target(struct cli *c)
{
    char *dbarg = bk_dsn_dbname_arg(&c->target);
    if (dbarg == NULL)
        return cli_fail(c, 1, "out of memory");
    const char *argv[] = {
        c->ctx.cfg->psql,
        "-X",
        "-q",
        "-A",
        "-t",
        "-w",
        "-v",
        "ON_ERROR_STOP=1",
        dbarg,
        "-c",
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname !~ '^pg_(toast|temp)'",
        NULL};
    int rc = bk_capture(&c->ctx, c->ctx.cfg->psql, argv, (const char *const *)c->env, 256,
                        on_target_count, c);
    free(dbarg);
    if (rc != 0)
        psql_failed(c, rc);
}

static void on_cli_key(void *arg, int status, const unsigned char *key, const char *err)
{
    struct cli *c = arg;
    if (status < 0)
        return cli_fail(c, 1, "%s", err);
    memcpy(c->key, key, BK_KEY_BYTES);
    if (c->have_manifest) {
        char id[BK_KEYID_HEX];
        bk_key_id_hex(c->key, id);
        if (strcmp(id, c->man.key_id) != 0) {
            const char *what = c->into != NULL ? "refused" : "verification FAILED";
            if (c->into == NULL) {
                /* record it like any failed verification */
                struct bk_vresult res = {.ok = false};
                snprintf(res.error, sizeof res.error,
                         "wrong key: %s was encrypted with key id %s, the configured key has key "
                         "id %s",
                         c->name, c->man.key_id, id);
                return verify_done(c, &res);
            }
            return cli_fail(c, 1,
                            "%s: wrong key: %s was encrypted with key id %s, the configured key "
                            "has key id %s; nothing was restored",
                            what, c->name, c->man.key_id, id);
        }
    }
    if (c->into != NULL)
        return restore_target(c);
    const char *argv[] = {c->ctx.cfg->pg_restore, "--list", NULL};
    struct bk_vreq req = cli_vreq(c, BK_V_LIST, argv, NULL);
    int rc = bk_verify_start(&c->ctx, &req, verify_done, c);
    if (rc != 0)
        cli_fail(c, 1, "cannot read %s: %s", c->path, strerror(-rc));
}

static void on_cli_manifest(void *arg, int status, const char *data, size_t len)
{
    struct cli *c = arg;
    char why[256];
    if (status == -ENOENT)
        return cli_fail(c, 1, "no backup %s in %s%s", c->name, c->ctx.cfg->backup_dir,
                        bk_s3_enabled(c->ctx.cfg) ? " (`nova-worker backup fetch NAME` "
                                                    "downloads it from S3)"
                                                  : "");
    if (status < 0)
        return cli_fail(c, 1, "cannot read %s: %s", c->mpath, strerror(-status));
    if (bk_manifest_parse(data, len, &c->man, why, sizeof why) != 0)
        return cli_fail(c, 1, "%s: %s", c->mpath, why);
    c->have_manifest = true;
    int rc = bk_key_load(&c->ctx, on_cli_key, c);
    if (rc != 0)
        cli_fail(c, 1, "cannot load the key: %s", strerror(-rc));
}

static void cmd_verify_or_restore(struct cli *c)
{
    int rc = bk_slurp(&c->ctx, c->mpath, 1 << 16, on_cli_manifest, c);
    if (rc != 0)
        cli_fail(c, 1, "cannot read %s: %s", c->mpath, strerror(-rc));
}

/* ---- dispatch
 * ------------------------------------------------------------------------------------- */

static void usage_error(struct cli *c, const char *fmt, const char *arg) NOVA_PRINTF(2, 0);

static void usage_error(struct cli *c, const char *fmt, const char *arg)
{
    char msg[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(msg, sizeof msg, fmt, arg);
#pragma GCC diagnostic pop
    fprintf(stderr, "nova-worker backup: %s\n%s", msg, bk_usage);
    cli_exit(c, 2);
}

void bk_cli_run(const struct nova_host *host, const void *config, int argc, char **argv,
                nova_command_done_fn done)
{
    struct cli *c = calloc(1, sizeof *c);
    if (c == NULL) {
        fprintf(stderr, "nova-worker backup: out of memory\n");
        done(host, 1);
        return;
    }
    c->host = host;
    c->done = done;
    c->ctx.host = host;
    c->ctx.cfg = config;
    c->ctx.cli = true;
    if (sodium_init() < 0)
        return cli_fail(c, 1, "libsodium cannot start");
    if (!NOVA_HOST_HAS(host, process) || !NOVA_HOST_HAS(host, file))
        return cli_fail(c, 1, "this nova-worker lacks child processes and files (ABI 1.3)");
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (sub == NULL)
        return usage_error(c, "%s", "a command is required");
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0) {
        fputs(bk_usage, stdout);
        return cli_exit(c, 0);
    }
    if (strcmp(sub, "keygen") == 0) {
        if (argc != 3)
            return usage_error(c, "%s", "keygen takes one FILE");
        return cmd_keygen(c, argv[2]);
    }
    if (strcmp(sub, "list") == 0 || strcmp(sub, "now") == 0) {
        if (argc != 2)
            return usage_error(c, "%s takes no argument", sub);
        return strcmp(sub, "list") == 0 ? cmd_list(c) : cmd_now(c);
    }
    if (strcmp(sub, "verify") == 0 || strcmp(sub, "fetch") == 0) {
        if (argc != 3)
            return usage_error(c, "%s takes one NAME", sub);
        if (!take_name(c, argv[2]))
            return usage_error(c, "'%s' is not a backup name (nova-DB-YYYYmmddTHHMMSSZ)", argv[2]);
        return strcmp(sub, "verify") == 0 ? cmd_verify_or_restore(c) : cmd_fetch(c);
    }
    if (strcmp(sub, "restore") == 0) {
        const char *name = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--into") == 0 && i + 1 < argc)
                c->into = argv[++i];
            else if (strncmp(argv[i], "--into=", 7) == 0)
                c->into = argv[i] + 7;
            else if (strcmp(argv[i], "--force") == 0)
                c->force = true;
            else if (strcmp(argv[i], "--no-owner") == 0)
                c->no_owner = true;
            else if (argv[i][0] != '-' && name == NULL)
                name = argv[i];
            else
                return usage_error(c, "restore: unexpected argument '%s'", argv[i]);
        }
        if (name == NULL || c->into == NULL)
            return usage_error(c, "%s", "restore needs NAME and --into DSN");
        if (!take_name(c, name))
            return usage_error(c, "'%s' is not a backup name (nova-DB-YYYYmmddTHHMMSSZ)", name);
        char why[256];
        if (bk_dsn_parse(c->into, &c->target, why, sizeof why) != 0)
            return cli_fail(c, 2, "--into: %s", why);
        if (c->target.password != NULL)
            fprintf(stderr, "nova-worker backup: warning: the --into DSN holds a password, which "
                            "`ps` shows to every user; prefer PGPASSWORD or ~/.pgpass\n");
        c->env = bk_pg_env(c->target.password);
        if (c->env == NULL)
            return cli_fail(c, 1, "out of memory");
        return cmd_verify_or_restore(c);
    }
    usage_error(c, "unknown command '%s'", sub);
}
