/*
 * rp_keep.c - retention of the report files.
 *
 * The files a scheduled run writes are named after the period they cover
 * (nova-<type>-report-YYYY-MM-DD.csv for a day, -YYYY-Www.csv for an ISO
 * week, -YYYY-MM.csv for a month), so their age is in their name: no stat,
 * and files written by earlier runs of the daemon (or by another worker on
 * a shared directory) are kept or removed by the same rule. The directory
 * is read with host->file->list on the thread pool; only names of that
 * exact form are ever removed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nova/sys.h>

#include "rp.h"

void rp_file_name(char *out, size_t outlen, enum rp_type type, const char *label)
{
    snprintf(out, outlen, "nova-%s-report-%s.csv", rp_type_names[type], label);
}

int rp_file_parse(const char *name, int64_t *end_day, int *group, bool *tmp)
{
    *tmp = false;
    size_t len = strlen(name);
    if (name[0] == '.') {
        if (len < 5 || strcmp(name + len - 4, ".tmp") != 0)
            return 0;
        *tmp = true;
        name++;
        len -= 5;
    }
    if (len < 5 || strncmp(name, "nova-", 5) != 0)
        return 0;
    for (int t = 0; t < RP_NTYPES; t++) {
        char prefix[48];
        int pl = snprintf(prefix, sizeof prefix, "nova-%s-report-", rp_type_names[t]);
        if (strncmp(name, prefix, (size_t)pl) != 0)
            continue;
        const char *l = name + pl;
        size_t ll = len - (size_t)pl;
        if (ll < 4 || strncmp(l + ll - 4, ".csv", 4) != 0)
            return 0;
        ll -= 4;
        if (!rp_digits(l, 4) || l[4] != '-')
            return 0;
        int64_t y = atoi(l);
        if (ll == 10 && rp_digits(l + 5, 2) && l[7] == '-' && rp_digits(l + 8, 2)) {
            int m = atoi(l + 5), d = atoi(l + 8);
            if (m < 1 || m > 12 || d < 1 || d > 31)
                return 0;
            *end_day = rp_days(y, m, d) + 1;
            *group = t * RP_NPERIODS + RP_DAILY;
            return 1;
        }
        if (ll == 8 && l[5] == 'W' && rp_digits(l + 6, 2)) {
            int w = atoi(l + 6);
            if (w < 1 || w > 53)
                return 0;
            /* ISO week 1 holds January 4th; weeks start on Monday */
            int64_t jan4 = rp_days(y, 1, 4);
            int64_t monday = jan4 - ((jan4 % 7 + 7 + 3) % 7);
            *end_day = monday + 7 * w;
            *group = t * RP_NPERIODS + RP_WEEKLY;
            return 1;
        }
        if (ll == 7 && rp_digits(l + 5, 2)) {
            int m = atoi(l + 5);
            if (m < 1 || m > 12)
                return 0;
            *end_day = m == 12 ? rp_days(y + 1, 1, 1) : rp_days(y, m + 1, 1);
            *group = t * RP_NPERIODS + RP_MONTHLY;
            return 1;
        }
        return 0;
    }
    return 0;
}

struct keep {
    const struct nova_host *host;
    char *dir;
    int64_t keep_days, keep_files, today;
    rp_keep_cb cb;
    void *arg;
    struct nova_buf removed;
    int nremoved, pending, status;
    bool listed;
};

struct unlink_req {
    struct keep *k;
    char *name;
};

static void keep_end(struct keep *k)
{
    k->cb(k->arg, k->status, k->removed.p != NULL ? k->removed.p : "", k->nremoved);
    nova_buf_free(&k->removed);
    free(k->dir);
    free(k);
}

static void on_unlinked(void *arg, int status)
{
    struct unlink_req *u = arg;
    struct keep *k = u->k;
    if (status == 0 || status == -ENOENT) {
        if (status == 0) {
            if (k->nremoved++ > 0)
                nova_buf_add(&k->removed, ",", 1);
            rp_json_string(&k->removed, u->name, strlen(u->name));
        }
    } else if (k->status == 0)
        k->status = status;
    free(u->name);
    free(u);
    if (--k->pending == 0 && k->listed)
        keep_end(k);
}

static void remove_file(struct keep *k, const char *name)
{
    struct unlink_req *u = calloc(1, sizeof *u);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", k->dir, name);
    if (u == NULL || (u->name = strdup(name)) == NULL) {
        free(u);
        k->status = -ENOMEM;
        return;
    }
    u->k = k;
    int rc = k->host->file->unlink(k->host, path, on_unlinked, u);
    if (rc != 0) {
        free(u->name);
        free(u);
        if (k->status == 0)
            k->status = rc;
        return;
    }
    k->pending++;
}

static void on_list(void *arg, int status, const char *const *names, size_t n)
{
    struct keep *k = arg;
    if (status != 0) {
        k->status = status == -ENOENT ? 0 : status;
        keep_end(k);
        return;
    }
    /* names are sorted, so within a group the newest label comes last */
    int kept[RP_NTYPES * RP_NPERIODS] = {0};
    for (size_t i = n; i-- > 0;) {
        int64_t end;
        int group;
        bool tmp;
        if (rp_file_parse(names[i], &end, &group, &tmp) != 1)
            continue;
        bool old = false;
        if (tmp)
            old = end < k->today - 1; /* not a file being written now */
        else {
            old = k->keep_days > 0 && end <= k->today - k->keep_days;
            if (k->keep_files > 0 && ++kept[group] > k->keep_files)
                old = true;
        }
        if (old && k->status != -ECANCELED)
            remove_file(k, names[i]);
    }
    k->listed = true;
    if (k->pending == 0)
        keep_end(k);
}

int rp_keep_run(const struct nova_host *host, const char *dir, int64_t keep_days,
                int64_t keep_files, int64_t now_ms, rp_keep_cb cb, void *arg)
{
    if (host->file->struct_size < offsetof(struct nova_file_api, list) + sizeof host->file->list ||
        host->file->list == NULL)
        return -ENOTSUP;
    struct keep *k = calloc(1, sizeof *k);
    if (k == NULL || (k->dir = strdup(dir)) == NULL) {
        free(k);
        return -ENOMEM;
    }
    k->host = host;
    k->keep_days = keep_days;
    k->keep_files = keep_files;
    k->today = now_ms / 86400000;
    k->cb = cb;
    k->arg = arg;
    int rc = host->file->list(host, dir, on_list, k);
    if (rc != 0) {
        free(k->dir);
        free(k);
    }
    return rc;
}
