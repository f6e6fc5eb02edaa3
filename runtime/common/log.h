/*
 * log - JSON-lines logging to stderr with secret redaction.
 *
 * Every record is one line: {"ts":..., "level":..., "msg":..., "plugin":...,
 * "queue":..., "job":...}, written with a single write(2) so lines from
 * several processes never interleave. Before a message is written, Stellar
 * secret seeds, URL passwords, bearer tokens, key=value secrets and every
 * string registered with nova__log_add_secret() are replaced.
 * Safe to call from any thread.
 */
#ifndef NOVA_RUNTIME_LOG_H
#define NOVA_RUNTIME_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include "nova/plugin.h"

/* Context fields; any may be NULL. Borrowed for the duration of the call. */
struct nova__log_ctx {
    const char *plugin;
    const char *queue;
    const char *job;
};

void nova__log_set_level(enum nova_log_level level);
enum nova_log_level nova__log_get_level(void);
/* Parses error|warn|warning|info|debug. Returns 0 or -EINVAL. */
int nova__log_level_parse(const char *text, enum nova_log_level *out);
const char *nova__log_level_name(enum nova_log_level level);

/* Redirect output (tests). fd < 0 restores stderr. */
void nova__log_set_fd(int fd);

/* Remember a secret value so it is masked wherever it appears in a log
 * message. The string is copied; values shorter than 4 bytes are ignored
 * (they would mask ordinary words). */
void nova__log_add_secret(const char *secret);
void nova__log_clear_secrets(void);

/* Rewrites buf in place (never longer), masking every secret it finds. */
void nova__log_redact(char *buf);

void nova__logv(enum nova_log_level level, const struct nova__log_ctx *ctx, const char *fmt,
                va_list ap);
void nova__log(enum nova_log_level level, const struct nova__log_ctx *ctx, const char *fmt, ...)
    NOVA_PRINTF(3, 4);

#define nova__log_error(...) nova__log(NOVA_LOG_ERROR, NULL, __VA_ARGS__)
#define nova__log_warn(...)  nova__log(NOVA_LOG_WARN, NULL, __VA_ARGS__)
#define nova__log_info(...)  nova__log(NOVA_LOG_INFO, NULL, __VA_ARGS__)
#define nova__log_debug(...) nova__log(NOVA_LOG_DEBUG, NULL, __VA_ARGS__)

#endif
