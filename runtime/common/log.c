#define _GNU_SOURCE
#include "config.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192
#define MASK         "[REDACTED]"
#define SECRETS_MAX  64

static enum nova_log_level current_level = NOVA_LOG_INFO;
static int log_fd = 2;
/* "<N>" before each line: -1 until decided (on the first line, or by
 * nova__log_set_fd/nova__log_set_syslog_prefix), then 0 or 1. */
static int syslog_prefix = -1;
static pthread_once_t prefix_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[SECRETS_MAX];
static size_t secret_count;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void nova__log_set_level(enum nova_log_level level)
{
    current_level = level;
}

enum nova_log_level nova__log_get_level(void)
{
    return current_level;
}

int nova__log_syslog_priority(enum nova_log_level level)
{
    /* syslog(3)'s LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
    static const int priority[] = {3, 4, 6, 7};
    return (unsigned)level > NOVA_LOG_DEBUG ? 6 : priority[level];
}

const char *nova__log_level_name(enum nova_log_level level)
{
    if ((unsigned)level > NOVA_LOG_DEBUG)
        return "unknown";
    return level_names[level];
}

int nova__log_level_parse(const char *text, enum nova_log_level *out)
{
    for (unsigned i = 0; i <= NOVA_LOG_DEBUG; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (enum nova_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *out = NOVA_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

/* 1/0 for yes/no words, -1 for anything else (auto). */
static int yes_no(const char *v)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off"};
    for (size_t i = 0; v != NULL && i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

int nova__log_stream_is_journal(int fd)
{
    /* systemd sets JOURNAL_STREAM=<device>:<inode> of the stream it
     * connected to stdout/stderr; the variable is inherited, so only a
     * descriptor that is that very stream counts (a shell redirect in a
     * unit, or a child's pipe, is not the journal). */
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char end;
    struct stat st;
    if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &end) != 2)
        return 0;
    if (fstat(fd, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int decide_prefix(int fd)
{
    int forced = yes_no(getenv("NOVA_LOG_SYSLOG_PREFIX"));
    return forced >= 0 ? forced : nova__log_stream_is_journal(fd);
}

static void decide_default_prefix(void)
{
    if (syslog_prefix < 0)
        syslog_prefix = decide_prefix(log_fd);
}

void nova__log_set_syslog_prefix(int mode)
{
    syslog_prefix = mode < 0 ? decide_prefix(log_fd) : mode > 0;
}

int nova__log_syslog_prefix(void)
{
    pthread_once(&prefix_once, decide_default_prefix);
    return syslog_prefix;
}

void nova__log_set_fd(int fd)
{
    log_fd = fd < 0 ? 2 : fd;
    syslog_prefix = decide_prefix(log_fd);
}

void nova__log_add_secret(const char *secret)
{
    if (secret == NULL || strlen(secret) < 4)
        return;
    pthread_mutex_lock(&secrets_lock);
    for (size_t i = 0; i < secret_count; i++) {
        if (strcmp(secrets[i], secret) == 0) {
            pthread_mutex_unlock(&secrets_lock);
            return;
        }
    }
    if (secret_count < SECRETS_MAX) {
        char *copy = strdup(secret);
        if (copy != NULL)
            secrets[secret_count++] = copy;
    }
    pthread_mutex_unlock(&secrets_lock);
}

void nova__log_clear_secrets(void)
{
    pthread_mutex_lock(&secrets_lock);
    for (size_t i = 0; i < secret_count; i++)
        free(secrets[i]);
    secret_count = 0;
    pthread_mutex_unlock(&secrets_lock);
}

/* Replace buf[start, start+len) with MASK, shifting the tail; MASK may be
 * longer than the hidden text, so only mask when the result still fits. */
static size_t mask_span(char *buf, size_t start, size_t len)
{
    size_t mask_len = strlen(MASK);
    size_t total = strlen(buf);
    if (mask_len > len && total + (mask_len - len) >= LOG_LINE_MAX) {
        memset(buf + start, '*', len);
        return len;
    }
    memmove(buf + start + mask_len, buf + start + len, total - start - len + 1);
    memcpy(buf + start, MASK, mask_len);
    return mask_len;
}

static int is_base32(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7');
}

/* Stellar secret seeds: 'S' followed by 55 base32 characters. */
static void redact_seeds(char *buf)
{
    for (size_t i = 0; buf[i] != '\0'; i++) {
        if (buf[i] != 'S' || (i > 0 && is_base32(buf[i - 1])))
            continue;
        size_t n = 1;
        while (n < 56 && is_base32(buf[i + n]))
            n++;
        if (n == 56 && !is_base32(buf[i + 56]))
            i += mask_span(buf, i, 56) - 1;
    }
}

/* scheme://user:password@host -> scheme://user:[REDACTED]@host */
static void redact_url_passwords(char *buf)
{
    char *p = buf;
    while ((p = strstr(p, "://")) != NULL) {
        p += 3;
        char *end = p + strcspn(p, "/@ \t\"'");
        if (*end != '@') {
            continue;
        }
        char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon != NULL && end > colon + 1) {
            size_t adv = mask_span(buf, (size_t)(colon + 1 - buf), (size_t)(end - colon - 1));
            p = colon + 1 + adv;
        }
    }
}

/* key=value and "key":"value" pairs whose key names a secret. */
static void redact_keyed(char *buf)
{
    static const char *const keys[] = {"password", "secret",      "token",         "apikey",
                                       "api_key",  "private_key", "authorization", NULL};
    for (char *p = buf; *p != '\0'; p++) {
        for (size_t k = 0; keys[k] != NULL; k++) {
            size_t kl = strlen(keys[k]);
            if (strncasecmp(p, keys[k], kl) != 0)
                continue;
            char *v = p + kl;
            /* allow suffixes such as secret_key or password_file= */
            while (isalnum((unsigned char)*v) || *v == '_' || *v == '-')
                v++;
            if (*v == '"')
                v++;
            while (*v == ' ')
                v++;
            if (*v != '=' && *v != ':')
                continue;
            v++;
            while (*v == ' ')
                v++;
            int quoted = *v == '"';
            if (quoted)
                v++;
            if (strncasecmp(v, "bearer ", 7) == 0)
                v += 7;
            size_t len = quoted ? strcspn(v, "\"") : strcspn(v, " \t,;&\"'}");
            if (len > 0 && strncmp(v, MASK, strlen(MASK)) != 0)
                mask_span(buf, (size_t)(v - buf), len);
            break;
        }
    }
}

static void redact_bearer(char *buf)
{
    char *p = buf;
    while ((p = strcasestr(p, "bearer ")) != NULL) {
        p += 7;
        size_t len = strcspn(p, " \t\"',;");
        if (len > 0 && strncmp(p, MASK, strlen(MASK)) != 0)
            p += mask_span(buf, (size_t)(p - buf), len);
    }
}

static void redact_registered(char *buf)
{
    pthread_mutex_lock(&secrets_lock);
    for (size_t i = 0; i < secret_count; i++) {
        size_t len = strlen(secrets[i]);
        char *p = buf;
        while ((p = strstr(p, secrets[i])) != NULL)
            p += mask_span(buf, (size_t)(p - buf), len);
    }
    pthread_mutex_unlock(&secrets_lock);
}

void nova__log_redact(char *buf)
{
    redact_registered(buf);
    redact_seeds(buf);
    redact_url_passwords(buf);
    redact_bearer(buf);
    redact_keyed(buf);
}

/* Appends s as a JSON string body (without quotes). Returns the new length. */
static size_t json_escape(char *out, size_t pos, size_t cap, const char *s)
{
    for (; *s != '\0' && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"':
        case '\\':
            out[pos++] = '\\';
            out[pos++] = (char)c;
            break;
        case '\n':
            out[pos++] = '\\';
            out[pos++] = 'n';
            break;
        case '\r':
            out[pos++] = '\\';
            out[pos++] = 'r';
            break;
        case '\t':
            out[pos++] = '\\';
            out[pos++] = 't';
            break;
        default:
            if (c < 0x20)
                pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
            else
                out[pos++] = (char)c;
        }
    }
    return pos;
}

static size_t append_field(char *out, size_t pos, size_t cap, const char *key, const char *val)
{
    if (val == NULL || pos + strlen(key) + 8 >= cap)
        return pos;
    pos += (size_t)snprintf(out + pos, cap - pos, ",\"%s\":\"", key);
    pos = json_escape(out, pos, cap - 3, val);
    out[pos++] = '"';
    return pos;
}

void nova__logv(enum nova_log_level level, const struct nova__log_ctx *ctx, const char *fmt,
                va_list ap)
{
    if (level > current_level)
        return;
    char msg[LOG_LINE_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    nova__log_redact(msg);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);

    char line[LOG_LINE_MAX + 512];
    size_t cap = sizeof line - 2;
    size_t pos = 0;
    /* journald reads "<N>" as the line's syslog priority (SyslogLevelPrefix=,
     * on by default) and strips it, so `journalctl -p warning` works and
     * the stored message is the JSON object alone. */
    if (nova__log_syslog_prefix() > 0)
        pos = (size_t)snprintf(line, cap, "<%d>", nova__log_syslog_priority(level));
    pos += (size_t)snprintf(line + pos, cap - pos,
                            "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\","
                            "\"level\":\"%s\",\"msg\":\"",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec, (long)(tv.tv_usec / 1000), nova__log_level_name(level));
    pos = json_escape(line, pos, cap - 3, msg);
    line[pos++] = '"';
    if (ctx != NULL) {
        char field[512];
        const char *vals[3] = {ctx->plugin, ctx->queue, ctx->job};
        const char *names[3] = {"plugin", "queue", "job"};
        for (int i = 0; i < 3; i++) {
            if (vals[i] == NULL)
                continue;
            snprintf(field, sizeof field, "%s", vals[i]);
            nova__log_redact(field);
            pos = append_field(line, pos, cap - 2, names[i], field);
        }
    }
    line[pos++] = '}';
    line[pos++] = '\n';
    ssize_t ignored = write(log_fd, line, pos);
    (void)ignored;
}

void nova__log(enum nova_log_level level, const struct nova__log_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nova__logv(level, ctx, fmt, ap);
    va_end(ap);
}
