/*
 * bk_keep - applies the retention rule (bk_retention.c) to the backup
 * directory and to the S3 bucket after each backup.
 *
 * Locally a backup is <name>.json + <name>.dump.enc, and its manifest
 * says whether it was verified. A deleted backup loses its manifest
 * first: a crash in between leaves a dump without manifest, which is
 * neither listed nor restored and is removed as stale by a later run,
 * never a manifest that points at nothing.
 *
 * On S3 a backup is complete once its manifest object exists, and that is
 * uploaded only after the copy of the dump was read back and matched its
 * sha256 (bk_s3.c): complete there means verified. Objects of a backup
 * whose upload never finished are removed a day later.
 */
#include "bk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S3_ORPHAN_MS (24 * 3600 * 1000LL)

struct keep {
    const struct bk_ctx *ctx;
    const nova_job *job;
    char (*names)[BK_NAME_MAX];
    struct bk_item *items;
    size_t n, at;
    int status;
    bk_done_cb cb;
    void *arg;
};

static struct bk_policy policy_of(const struct bk_config *cfg)
{
    return (struct bk_policy){
        .keep_last = cfg->keep_last,
        .keep_daily = cfg->keep_daily,
        .keep_weekly = cfg->keep_weekly,
        .keep_monthly = cfg->keep_monthly,
    };
}

static void keep_end(struct keep *k)
{
    k->cb(k->arg, k->status);
    free(k->names);
    free(k->items);
    free(k);
}

static const char *const loc_local[] = {"local", NULL};
static const char *const loc_s3[] = {"s3", NULL};

/* ---- S3 ----------------------------------------------------------------------------------- */

static void on_s3_deleted(void *arg, int status, const char *reason)
{
    struct keep *k = arg;
    if (status != 0) {
        bk_log(k->ctx, NOVA_LOG_WARN, k->job, "S3 retention: %s", reason);
        if (k->status == 0)
            k->status = status;
    }
    keep_end(k);
}

struct s3name {
    char name[BK_NAME_MAX];
    bool dump, manifest;
    int64_t time_ms;
};

static void on_s3_listed(void *arg, int status, const char *reason, const struct bk_s3_object *objs,
                         size_t n)
{
    struct keep *k = arg;
    const struct bk_ctx *ctx = k->ctx;
    if (status != 0) {
        bk_log(ctx, NOVA_LOG_WARN, k->job, "S3 retention: listing failed: %s", reason);
        k->status = status;
        return keep_end(k);
    }
    const char *prefix = ctx->cfg->s3_prefix != NULL ? ctx->cfg->s3_prefix : "";
    size_t plen = strlen(prefix);
    struct s3name *set = calloc(n > 0 ? n : 1, sizeof *set);
    struct bk_item *items = calloc(n > 0 ? n : 1, sizeof *items);
    const char **del = calloc(2 * n + 1, sizeof *del);
    char(*keys)[600] = calloc(2 * n + 1, sizeof *keys);
    size_t m = 0, nd = 0;
    if (set == NULL || items == NULL || del == NULL || keys == NULL) {
        free(set);
        free(items);
        free(del);
        free(keys);
        k->status = -ENOMEM;
        return keep_end(k);
    }
    for (size_t i = 0; i < n; i++) {
        const char *key = objs[i].key;
        if (strncmp(key, prefix, plen) != 0)
            continue;
        const char *base = key + plen;
        const char *ext = NULL;
        size_t bl = strlen(base);
        bool dump = false;
        if (bl > 9 && strcmp(base + bl - 9, ".dump.enc") == 0) {
            ext = base + bl - 9;
            dump = true;
        } else if (bl > 5 && strcmp(base + bl - 5, ".json") == 0) {
            ext = base + bl - 5;
        }
        if (ext == NULL || (size_t)(ext - base) >= BK_NAME_MAX || strchr(base, '/') != NULL)
            continue;
        char name[BK_NAME_MAX];
        memcpy(name, base, (size_t)(ext - base));
        name[ext - base] = '\0';
        int64_t t = bk_name_time(name);
        if (t < 0)
            continue;
        size_t j = 0;
        while (j < m && strcmp(set[j].name, name) != 0)
            j++;
        if (j == m) {
            snprintf(set[m].name, sizeof set[m].name, "%s", name);
            set[m].time_ms = t;
            m++;
        }
        if (dump)
            set[j].dump = true;
        else
            set[j].manifest = true;
    }
    int64_t now = ctx->host->now_ms(ctx->host);
    size_t ni = 0, kept = 0;
    struct s3name **idx = calloc(m > 0 ? m : 1, sizeof *idx);
    for (size_t j = 0; idx != NULL && j < m; j++) {
        if (set[j].dump && set[j].manifest) {
            items[ni].time_ms = set[j].time_ms;
            items[ni].state = BK_VERIFIED;
            idx[ni++] = &set[j];
        } else if (set[j].time_ms < now - S3_ORPHAN_MS) {
            /* an upload that never completed */
            if (set[j].manifest)
                snprintf(keys[nd++], sizeof keys[0], "%s%s.json", prefix, set[j].name);
            if (set[j].dump)
                snprintf(keys[nd++], sizeof keys[0], "%s%s.dump.enc", prefix, set[j].name);
        }
    }
    if (idx != NULL) {
        struct bk_policy policy = policy_of(ctx->cfg);
        kept = bk_retention_plan(items, ni, &policy);
        for (size_t i = 0; i < ni; i++) {
            if (items[i].keep)
                continue;
            snprintf(keys[nd++], sizeof keys[0], "%s%s.json", prefix, idx[i]->name);
            snprintf(keys[nd++], sizeof keys[0], "%s%s.dump.enc", prefix, idx[i]->name);
            bk_log(ctx, NOVA_LOG_INFO, k->job, "retention: deleting %s from S3", idx[i]->name);
        }
    }
    for (size_t i = 0; i < nd; i++)
        del[i] = keys[i];
    if (ctx->m_kept != NULL) {
        ctx->host->metric_set(ctx->m_kept, loc_s3, (double)kept);
        ctx->host->metric_add(ctx->m_deleted, loc_s3, (double)(ni - kept));
    }
    int rc = idx == NULL ? -ENOMEM : nd > 0 ? bk_s3_delete(ctx, del, nd, on_s3_deleted, k) : 1;
    free(idx);
    free(set);
    free(items);
    free(del);
    free(keys);
    if (rc != 0) {
        if (rc < 0)
            k->status = rc;
        keep_end(k);
    }
}

static void keep_s3(struct keep *k)
{
    if (!bk_s3_enabled(k->ctx->cfg))
        return keep_end(k);
    int rc = bk_s3_list(k->ctx, on_s3_listed, k);
    if (rc != 0) {
        k->status = rc;
        keep_end(k);
    }
}

/* ---- local ----------------------------------------------------------------------------------- */

static void on_local_deleted(void *arg, int status)
{
    struct keep *k = arg;
    if (status < 0) {
        bk_log(k->ctx, NOVA_LOG_WARN, k->job, "retention: deleting old backups: %s",
               strerror(-status));
        k->status = status;
        if (status == -ECANCELED)
            return keep_end(k);
    }
    keep_s3(k);
}

static void local_decide(struct keep *k)
{
    const struct bk_ctx *ctx = k->ctx;
    struct bk_policy policy = policy_of(ctx->cfg);
    size_t kept = bk_retention_plan(k->items, k->n, &policy);
    size_t nd = 0;
    const char **del = calloc(2 * k->n + 1, sizeof *del);
    char **owned = calloc(2 * k->n + 1, sizeof *owned);
    const char *dir = ctx->cfg->backup_dir;
    for (size_t i = 0; del != NULL && owned != NULL && i < k->n; i++) {
        if (k->items[i].keep)
            continue;
        static const char *const exts[] = {".json", ".dump.enc"};
        for (size_t e = 0; e < 2; e++) {
            if ((owned[nd] = bk_path(dir, k->names[i], exts[e])) == NULL)
                break;
            del[nd] = owned[nd];
            nd++;
        }
        bk_log(ctx, NOVA_LOG_INFO, k->job, "retention: deleting %s", k->names[i]);
    }
    if (ctx->m_kept != NULL) {
        ctx->host->metric_set(ctx->m_kept, loc_local, (double)kept);
        ctx->host->metric_add(ctx->m_deleted, loc_local, (double)(k->n - kept));
    }
    int rc =
        del != NULL && owned != NULL ? bk_unlink_all(ctx, del, nd, on_local_deleted, k) : -ENOMEM;
    for (size_t i = 0; owned != NULL && i < nd; i++)
        free(owned[i]);
    free(owned);
    free(del);
    if (rc != 0) {
        k->status = rc;
        keep_end(k);
    }
}

static void read_next(struct keep *k);

static void on_manifest(void *arg, int status, const char *data, size_t len)
{
    struct keep *k = arg;
    struct bk_item *it = &k->items[k->at];
    struct bk_manifest m;
    char why[256];
    if (status == -ECANCELED) {
        k->status = status;
        return keep_end(k);
    }
    if (status == 0 && bk_manifest_parse(data, len, &m, why, sizeof why) == 0)
        it->state = m.state;
    else
        /* unreadable: treated as unverified, never as failed, so that a
         * damaged manifest cannot make retention delete good backups */
        it->state = BK_UNVERIFIED;
    k->at++;
    read_next(k);
}

static void read_next(struct keep *k)
{
    if (k->at == k->n)
        return local_decide(k);
    char *path = bk_path(k->ctx->cfg->backup_dir, k->names[k->at], ".json");
    int rc = path != NULL ? bk_slurp(k->ctx, path, 1 << 16, on_manifest, k) : -ENOMEM;
    free(path);
    if (rc != 0) {
        k->status = rc;
        keep_end(k);
    }
}

static void on_listed(void *arg, int status, const struct bk_dirent *ents, size_t n,
                      const char *err)
{
    struct keep *k = arg;
    if (status < 0) {
        bk_log(k->ctx, NOVA_LOG_WARN, k->job, "retention: %s", err);
        k->status = status;
        return keep_end(k);
    }
    k->names = calloc(n > 0 ? n : 1, sizeof *k->names);
    k->items = calloc(n > 0 ? n : 1, sizeof *k->items);
    if (k->names == NULL || k->items == NULL) {
        k->status = -ENOMEM;
        return keep_end(k);
    }
    /* a backup is a manifest with its dump beside it */
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ents[i].name);
        if (len <= 5 || len - 5 >= BK_NAME_MAX || strcmp(ents[i].name + len - 5, ".json") != 0)
            continue;
        char name[BK_NAME_MAX], dump[BK_NAME_MAX + 16];
        memcpy(name, ents[i].name, len - 5);
        name[len - 5] = '\0';
        int64_t t = bk_name_time(name);
        snprintf(dump, sizeof dump, "%s.dump.enc", name);
        bool has_dump = false;
        for (size_t j = 0; j < n && !has_dump; j++)
            has_dump = strcmp(ents[j].name, dump) == 0;
        if (t < 0 || !has_dump)
            continue;
        snprintf(k->names[k->n], BK_NAME_MAX, "%s", name);
        k->items[k->n].time_ms = t;
        k->n++;
    }
    read_next(k);
}

int bk_retention_apply(const struct bk_ctx *ctx, const nova_job *job, bk_done_cb cb, void *arg)
{
    struct keep *k = calloc(1, sizeof *k);
    if (k == NULL)
        return -ENOMEM;
    k->ctx = ctx;
    k->job = job;
    k->cb = cb;
    k->arg = arg;
    int rc = bk_list_dir(ctx, ctx->cfg->backup_dir, on_listed, k);
    if (rc != 0)
        free(k);
    return rc;
}
