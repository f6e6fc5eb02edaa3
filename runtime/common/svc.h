/*
 * svc - the library-heavy services as modules loaded only when needed.
 *
 * PostgreSQL (libpq) and the outbound HTTP and Stellar clients (libcurl)
 * pull in some 30 shared libraries (Kerberos, LDAP, SSH, nghttp2...). A
 * worker that only runs queue jobs uses none of them, so the nova-worker
 * binary does not link them: each service is a module in the module
 * directory, loaded on first need:
 *
 *   nova-pg.so     pg/pg_pool.c, pg/migrate.c            [postgres] dsn, `migrate`
 *   nova-http.so   http/http_client.c, http_guard.c,     a plugin requiring HTTP or
 *                  stellar/stellar_client.c              Stellar, `stellar check`
 *
 * The /metrics endpoint (httpd/) needs only libuv and is in the binary.
 *
 * The directory is NOVA_MODULE_DIR from the environment when set (the
 * build tree: runtime/.libs), else the compiled-in $(pkglibdir)/modules.
 *
 * A module is opened once (RTLD_NOW | RTLD_LOCAL) and exports one symbol,
 * nova_service_module (struct nova__svc_module). The loader checks its
 * interface version, its struct sizes and its name, then hands it the
 * core's table (struct nova__svc_core: the logger, the metrics registry
 * and the offline Stellar library, which must stay one per process), and
 * from then on the core calls the service through the module's const
 * table. Modules come from the same build as the binary; any mismatch
 * means a broken install and is reported naming the file and both values.
 *
 * This header knows no service: each service's folder declares its own
 * table and the typed accessor that loads it (pg/svc_pg.h,
 * http/svc_http.h), and the core lends its table with
 * nova__svc_set_core() before the first load (runtime/core/main.c).
 *
 * The test programs link the services directly (libnova_full.la): there
 * the same functions return the linked-in tables and never dlopen
 * (core/svc_builtin.c); the daemon binary uses common/svc.c.
 *
 * Everything here runs on the loop (main) thread.
 */
#ifndef NOVA_RUNTIME_SVC_H
#define NOVA_RUNTIME_SVC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>
#include "nova/stellar.h"
#include "common/log.h"
#include "common/metrics.h"

struct cJSON;

/* Bump on any change to the structs below. */
#define NOVA__SVC_VERSION 1

/* The exported symbol of every module. */
#define NOVA__SVC_SYMBOL "nova_service_module"

/* What the core lends a module. The module's copies of these functions
 * (runtime/svc_import.c) forward here, so its log lines are redacted like
 * the core's and its metrics appear on /metrics. */
struct nova__svc_core {
    uint32_t version;     /* NOVA__SVC_VERSION */
    uint32_t struct_size; /* sizeof(struct nova__svc_core) */

    void (*logv)(enum nova_log_level level, const struct nova__log_ctx *ctx, const char *fmt,
                 va_list ap);
    void (*log_add_secret)(const char *secret);

    nova_metric *(*metric_new)(enum nova_metric_type type, const char *name, const char *help,
                               const char *const *label_names, const double *buckets,
                               size_t bucket_count);
    void (*metric_add)(nova_metric *metric, const char *const *label_values, double value);
    void (*metric_set)(nova_metric *metric, const char *const *label_values, double value);
    void (*metric_observe)(nova_metric *metric, const char *const *label_values, double value);
    int (*metrics_render)(char **out, size_t *len);

    /* The offline Stellar library, used by the Stellar client. */
    int (*amount_parse)(const char *text, unsigned flags, int64_t *out, char *err, size_t errlen);
    int (*hex_decode)(const char *text, void *out, size_t len);
    int (*scval_decode_b64)(const char *b64, struct cJSON **out, char *err, size_t errlen);
    int (*build_payment)(const struct nova_stellar_payment_tx *tx,
                         struct nova_stellar_signed_tx *out, char *err, size_t errlen);
    int (*seed_to_account)(const char *seed, char *out, char *err, size_t errlen);
    int (*result_decode_b64)(const char *b64, struct nova_stellar_tx_result *out, char *err,
                             size_t errlen);
    char *(*horizon_form_body)(const char *envelope_b64);
    int (*strkey_decode)(const char *text, enum nova_strkey_type expect,
                         enum nova_strkey_type *type_out, uint8_t *payload, size_t cap,
                         size_t *len_out, char *err, size_t errlen);
    int (*strkey_decode32)(const char *text, enum nova_strkey_type expect, uint8_t key[32],
                           char *err, size_t errlen);
};

/* What a module exports as nova_service_module. */
struct nova__svc_module {
    uint32_t version;     /* NOVA__SVC_VERSION the module was built with */
    uint32_t struct_size; /* sizeof(struct nova__svc_module) */
    uint32_t core_size;   /* sizeof(struct nova__svc_core) it expects */
    uint32_t table_size;  /* sizeof its service table */
    const char *name;     /* "pg" or "http" */
    /* Called once, before the table is used; core outlives the module. */
    void (*bind)(const struct nova__svc_core *core);
    const void *table; /* struct nova__svc_pg / _http */
};

enum nova__svc_id { NOVA__SVC_PG, NOVA__SVC_HTTP, NOVA__SVC_COUNT };

/* The core's table, lent to every module loaded after this call. Borrowed:
 * it must outlive every module (a static table). Call once, first thing. */
void nova__svc_set_core(const struct nova__svc_core *core);

/*
 * Returns the service's table, loading its module on first use; later
 * calls return the same table. table_size is what this build's table
 * measures (the module must agree). needed_by says why, for the error
 * ("[postgres] dsn is set"): on failure NULL is returned and err holds
 * "<needed_by>, but the PostgreSQL module <path> cannot be loaded: <why>".
 * A failed load is retried on the next call. Use the typed accessors of
 * the service headers (nova__svc_pg() ...).
 */
const void *nova__svc_load(enum nova__svc_id id, size_t table_size, const char *needed_by,
                           char *err, size_t errlen);

/* The table when the module is already loaded, else NULL; never loads. */
const void *nova__svc_loaded(enum nova__svc_id id);

/* Closes every loaded module. Only once nothing of theirs runs any more
 * (clients closed, the endpoint stopped); later loads start afresh. */
void nova__svc_unload_all(void);

/* The directory modules are read from (NOVA_MODULE_DIR or built in). */
const char *nova__svc_module_dir(void);

/* In a module: the table the core lent at bind time (common/svc_import.c). */
const struct nova__svc_core *nova__svc_core_lent(void);

/* In a module: exports nova_service_module for its table (one per module). */
#define NOVA__SVC_EXPORT(svc_name, svc_table)                                                      \
    void nova__svc_bind(const struct nova__svc_core *core);                                        \
    __attribute__((visibility("default"))) const struct nova__svc_module nova_service_module = {   \
        .version = NOVA__SVC_VERSION,                                                              \
        .struct_size = sizeof(struct nova__svc_module),                                            \
        .core_size = sizeof(struct nova__svc_core),                                                \
        .table_size = sizeof(svc_table),                                                           \
        .name = svc_name,                                                                          \
        .bind = nova__svc_bind,                                                                    \
        .table = &svc_table,                                                                       \
    }

#endif
