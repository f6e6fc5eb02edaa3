/*
 * svc_httpd - the table of nova-httpd.so (common/svc.h): /metrics,
 * /healthz and /readyz (httpd/httpd.h).
 */
#ifndef NOVA_RUNTIME_SVC_HTTPD_H
#define NOVA_RUNTIME_SVC_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include "common/svc.h"

struct nova__httpd;

struct nova__svc_httpd {
    int (*start)(const char *listen, struct nova__httpd **out, char *err, size_t errlen);
    void (*set_ready)(struct nova__httpd *h, bool ready, const char *reason);
    void (*stop)(struct nova__httpd *h);
};

/* Linked into nova-httpd.so, and into libnova_full.la for the tests. */
extern const struct nova__svc_httpd nova__svc_httpd_table;

/* Loads nova-httpd.so on first use (nova__svc_load()). */
static inline const struct nova__svc_httpd *nova__svc_httpd(const char *needed_by, char *err,
                                                            size_t errlen)
{
    return nova__svc_load(NOVA__SVC_HTTPD, sizeof(struct nova__svc_httpd), needed_by, err, errlen);
}

#endif
