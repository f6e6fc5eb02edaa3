/*
 * svc_httpd - the /metrics endpoint table (nova-httpd.so; see httpd/svc_httpd.h).
 */
#include "config.h"
#include "httpd/svc_httpd.h"
#include "httpd/httpd.h"

const struct nova__svc_httpd nova__svc_httpd_table = {
    .start = nova__httpd_start,
    .set_ready = nova__httpd_set_ready,
    .stop = nova__httpd_stop,
};

#ifdef NOVA_SVC_MODULE
NOVA__SVC_EXPORT("httpd", nova__svc_httpd_table);
#endif
