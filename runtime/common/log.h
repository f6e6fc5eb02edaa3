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

/* Redirect output (tests). fd < 0 restores stderr. The syslog prefix is
 * decided again for the new descriptor. */
void nova__log_set_fd(int fd);

/*
 * journald. Each line starts with "<N>", its syslog priority (error 3,
 * warn 4, info 6, debug 7), when the log descriptor is the journal stream
 * systemd gave the process (JOURNAL_STREAM names its device and inode),
 * or always / never when NOVA_LOG_SYSLOG_PREFIX is 1/yes/true/on or
 * 0/no/false/off. journald turns the prefix into the PRIORITY field and
 * strips it; everything after it is the same JSON object either way.
 */
int nova__log_syslog_priority(enum nova_log_level level);
/* 1 when fd is the stream JOURNAL_STREAM names, else 0. */
int nova__log_stream_is_journal(int fd);
/* mode 1: always prefix, 0: never, < 0: decide again as at start. */
void nova__log_set_syslog_prefix(int mode);
/* Whether lines are prefixed now (decides on first use). */
int nova__log_syslog_prefix(void);

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
