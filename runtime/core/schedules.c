/* schedules - the plugins' schedules; see schedules.h. */
#include "config.h"
#include "core/schedules.h"
#include "sched/sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "core/loader.h"
#include "queue/schedulers.h"

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) NOVA_PRINTF(4, 5);
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

void nova__schedules_free(struct nova__plugin_schedules *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        nova__sched_free(&s->parsed[i]);
        free(s->data[i]);
    }
    memset(s, 0, sizeof *s);
}

int nova__schedules_collect(const struct nova__plugin *p, const void *config,
                            struct nova__plugin_schedules *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (p->desc.schedules == NULL)
        return 0;
    char why[256] = "";
    int n = p->desc.schedules(config, out->decl, NOVA_SCHEDULES_MAX, why, sizeof why);
    if (n < 0) {
        memset(out->decl, 0, sizeof out->decl);
        return fail(err, errlen, n, "schedules: %s", why[0] ? why : strerror(-n));
    }
    if (n > NOVA_SCHEDULES_MAX)
        return fail(err, errlen, -EINVAL, "schedules: %d returned, at most %d fit", n,
                    NOVA_SCHEDULES_MAX);
    for (int i = 0; i < n; i++) {
        const struct nova_schedule *d = &out->decl[i];
        const char *id = d->id != NULL ? d->id : "(null)";
        int rc = 0;
        if (!nova__sched_valid_id(d->id))
            rc = fail(err, errlen, -EINVAL,
                      "schedule \"%s\": the id must be 1-100 letters, digits, '-', '_' or '.'", id);
        else if (d->queue == NULL || d->queue[0] == '\0')
            rc = fail(err, errlen, -EINVAL, "schedule %s: no queue", id);
        else if (d->job_name == NULL || d->job_name[0] == '\0')
            rc = fail(err, errlen, -EINVAL, "schedule %s: no job name", id);
        for (int k = 0; rc == 0 && k < i; k++)
            if (strcmp(out->decl[k].id, d->id) == 0 && strcmp(out->decl[k].queue, d->queue) == 0)
                rc = fail(err, errlen, -EINVAL, "schedule %s: declared twice on queue %s", id,
                          d->queue);
        if (rc == 0 && nova__sched_parse(d->spec != NULL ? d->spec : "", d->timezone,
                                         &out->parsed[i], why, sizeof why) < 0)
            rc = fail(err, errlen, -EINVAL, "schedule %s: %s", id, why);
        if (rc == 0) {
            out->n = (size_t)i + 1; /* so a later failure frees this one */
            cJSON *data = cJSON_Parse(d->data_json != NULL ? d->data_json : "{}");
            if (!cJSON_IsObject(data))
                rc = fail(err, errlen, -EINVAL, "schedule %s: data is not a JSON object: %.80s", id,
                          d->data_json);
            else if ((out->data[i] = cJSON_PrintUnformatted(data)) == NULL)
                rc = fail(err, errlen, -ENOMEM, "out of memory");
            cJSON_Delete(data);
        }
        if (rc != 0) {
            nova__schedules_free(out);
            return rc;
        }
    }
    out->n = (size_t)n;
    return 0;
}

int nova__schedules_sync(struct nova__queue_engine *e, const char *plugin,
                         const struct nova__plugin_schedules *s, const char *const *queues,
                         size_t nqueues, void (*done)(void *arg, int failures), void *arg)
{
    struct nova__sched_entry entries[NOVA_SCHEDULES_MAX];
    for (size_t i = 0; i < s->n; i++)
        entries[i] = (struct nova__sched_entry){.id = s->decl[i].id,
                                                .queue = s->decl[i].queue,
                                                .job_name = s->decl[i].job_name,
                                                .data_json = s->data[i],
                                                .sched = &s->parsed[i]};
    /* The schedules' own queues count too: one may have been dropped from
     * a queue the plugin no longer subscribes to. */
    const char *all[64];
    size_t n = 0;
    for (size_t i = 0; i < nqueues && n < 64; i++)
        all[n++] = queues[i];
    for (size_t i = 0; i < s->n && n < 64; i++) {
        bool seen = false;
        for (size_t k = 0; k < n && !seen; k++)
            seen = strcmp(all[k], s->decl[i].queue) == 0;
        if (!seen)
            all[n++] = s->decl[i].queue;
    }
    return nova__queue_sched_sync(e, plugin, entries, s->n, all, n, done, arg);
}

void nova__schedules_format_time(const struct nova__sched *s, int64_t ms, char *buf, size_t len)
{
    int32_t off = s != NULL && s->tz != NULL ? nova__tz_offset_at(s->tz, ms / 1000) : 0;
    time_t t = (time_t)(ms / 1000 + off);
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    if (off == 0)
        snprintf(buf, len, "%sZ", day);
    else
        snprintf(buf, len, "%s%c%02d:%02d", day, off < 0 ? '-' : '+', abs(off) / 3600,
                 abs(off) % 3600 / 60);
}
