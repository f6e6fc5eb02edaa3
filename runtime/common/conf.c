#define _GNU_SOURCE
#include "config.h"
#include "common/conf.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define INCLUDE_DEPTH_MAX 8
#define SECRET_FILE_MAX   65536

#define W(f)   offsetof(struct nova__worker_config, f)
#define R(f)   offsetof(struct nova__redis_config, f)
#define P(f)   offsetof(struct nova__postgres_config, f)
#define H(f)   offsetof(struct nova__http_config, f)
#define S(f)   offsetof(struct nova__stellar_config, f)
#define DAY_MS (86400LL * 1000)

static const struct nova_config_entry worker_table[] = {
    {"log_level", NOVA_CONFIG_STRING, "info", W(log_level_name), "error, warn, info or debug", 0, 0,
     "LOG_LEVEL", false},
    {"name", NOVA_CONFIG_STRING, NULL, W(name),
     "worker name shown by Queue.getWorkers() (default: the host name)", 0, 0, NULL, false},
    {"shutdown_timeout", NOVA_CONFIG_DURATION, "30s", W(shutdown_timeout_ms),
     "how long SIGTERM waits for in-flight jobs", 0, DAY_MS, NULL, false},
    {"plugin_dir", NOVA_CONFIG_STRING, NOVA_PLUGIN_PATH, W(plugin_dir),
     "where plugin .so files are looked up: DIR[:DIR...], first match wins", 0, 0,
     "NOVA_PLUGIN_DIR", false},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL, false},
};

static const struct nova_config_entry redis_table[] = {
    {"url", NOVA_CONFIG_SECRET, "redis://127.0.0.1:6379", R(url),
     "redis://[[user]:password@]host:port[/db], rediss://... (TLS) or unix:///path[?db=N]", 0, 0,
     "REDIS_URL", false},
    {"prefix", NOVA_CONFIG_STRING, "bull", R(prefix),
     "BullMQ key prefix; use a hash tag such as {bull} on Redis Cluster", 0, 0, NULL, false},
    {"connect_timeout", NOVA_CONFIG_DURATION, "5s", R(connect_timeout_ms),
     "time to connect, TLS handshake and authentication included", 1, DAY_MS, NULL, false},
    {"lock_duration", NOVA_CONFIG_DURATION, "30s", R(lock_duration_ms),
     "job lock time-to-live; renewed at half of it", 1000, DAY_MS, NULL, false},
    {"stalled_interval", NOVA_CONFIG_DURATION, "30s", R(stalled_interval_ms),
     "period of the stalled-job sweep", 1000, DAY_MS, NULL, false},
    {"max_stalled_count", NOVA_CONFIG_INT, "1", R(max_stalled_count),
     "stalls before a job is failed", 0, 1000, NULL, false},
    {"drain_delay", NOVA_CONFIG_DURATION, "5s", R(drain_delay_ms),
     "longest blocking wait for new jobs", 10, 10000, NULL, false},
    {"username", NOVA_CONFIG_STRING, NULL, R(username), "ACL user when the url names none", 0, 0,
     NULL, false},
    {"password", NOVA_CONFIG_SECRET, NULL, R(password),
     "password or auth token (ElastiCache) when the url has none", 0, 0, NULL, false},
    {"reply_timeout", NOVA_CONFIG_DURATION, "10s", R(reply_timeout_ms),
     "a connection whose command gets no reply for this long is dropped and reconnected", 100,
     DAY_MS, NULL, false},
    {"tcp_keepalive", NOVA_CONFIG_DURATION, "10s", R(tcp_keepalive_ms),
     "idle time before TCP keepalive probes (0 = off)", 0, DAY_MS, NULL, false},
    {"tls_ca_file", NOVA_CONFIG_STRING, NULL, R(tls_ca_file),
     "CA bundle that signs the Redis certificates (rediss://; default: the system store)", 0, 0,
     NULL, false},
    {"tls_cert_file", NOVA_CONFIG_STRING, NULL, R(tls_cert_file),
     "client certificate (PEM chain) for rediss://", 0, 0, NULL, false},
    {"tls_key_file", NOVA_CONFIG_STRING, NULL, R(tls_key_file),
     "private key of tls_cert_file (PEM)", 0, 0, NULL, false},
    {"tls_server_name", NOVA_CONFIG_STRING, NULL, R(tls_server_name),
     "name sent as SNI and checked in the certificate (default: the host)", 0, 0, NULL, false},
    {"tls_skip_verify", NOVA_CONFIG_BOOL, "no", R(tls_skip_verify),
     "yes accepts any certificate (tests only; verification is on by default)", 0, 0, NULL, false},
    {"sentinels", NOVA_CONFIG_STRING, NULL, R(sentinels),
     "Sentinel mode: host:port,... of the sentinels (the url then gives credentials and db)", 0, 0,
     "REDIS_SENTINEL_NODES", false},
    {"sentinel_master", NOVA_CONFIG_STRING, NULL, R(sentinel_master),
     "name of the master the sentinels monitor", 0, 0, "REDIS_SENTINEL_NAME", false},
    {"sentinel_username", NOVA_CONFIG_STRING, NULL, R(sentinel_username),
     "ACL user for the sentinels", 0, 0, NULL, false},
    {"sentinel_password", NOVA_CONFIG_SECRET, NULL, R(sentinel_password),
     "password of the sentinels (default: none)", 0, 0, NULL, false},
    {"cluster_nodes", NOVA_CONFIG_STRING, NULL, R(cluster_nodes),
     "Cluster mode: host:port,... of some cluster nodes (the url then gives credentials)", 0, 0,
     "REDIS_CLUSTER_NODES", false},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL, false},
};

static const struct nova_config_entry postgres_table[] = {
    {"dsn", NOVA_CONFIG_SECRET, NULL, P(dsn),
     "libpq connection string or URI; empty disables PostgreSQL", 0, 0, "DATABASE_URL", false},
    {"pool_min", NOVA_CONFIG_INT, "2", P(pool_min), "connections kept open", 0, 1000, NULL, false},
    {"pool_max", NOVA_CONFIG_INT, "10", P(pool_max), "most connections at once", 1, 1000, NULL,
     false},
    {"connect_timeout", NOVA_CONFIG_DURATION, "5s", P(connect_timeout_ms), "connect timeout", 1,
     DAY_MS, NULL, false},
    {"statement_timeout", NOVA_CONFIG_DURATION, "30s", P(statement_timeout_ms),
     "server-side limit per statement (0 = none)", 0, DAY_MS, NULL, false},
    {"slow_query", NOVA_CONFIG_DURATION, "250ms", P(slow_query_ms),
     "queries slower than this are logged (without parameters)", 0, DAY_MS, NULL, false},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL, false},
};

static const struct nova_config_entry http_table[] = {
    {"listen", NOVA_CONFIG_STRING, "127.0.0.1:9464", H(listen),
     "address:port of /metrics, /healthz, /livez and /readyz; empty disables", 0, 0, NULL, false},
    {"ca_file", NOVA_CONFIG_STRING, NULL, H(ca_file),
     "CA bundle for outbound TLS (default: the system store)", 0, 0, NULL, false},
    {"timeout", NOVA_CONFIG_DURATION, "10s", H(timeout_ms), "default outbound request timeout", 1,
     DAY_MS, NULL, false},
    {"connect_timeout", NOVA_CONFIG_DURATION, "5s", H(connect_timeout_ms),
     "outbound connect timeout", 1, DAY_MS, NULL, false},
    {"max_response_size", NOVA_CONFIG_INT, "1048576", H(max_response_bytes),
     "largest outbound response body in bytes", 1, 1LL << 32, NULL, false},
    {"max_connections", NOVA_CONFIG_INT, "64", H(max_connections), "outbound connections at once",
     1, 10000, NULL, false},
    {"user_agent", NOVA_CONFIG_STRING, "nova-worker/" PACKAGE_VERSION, H(user_agent),
     "User-Agent of outbound requests", 0, 0, NULL, false},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL, false},
};

static const struct nova_config_entry stellar_table[] = {
    {"network", NOVA_CONFIG_STRING, "testnet", S(network),
     "testnet, public, or a network passphrase", 0, 0, "STELLAR_NETWORK", false},
    {"horizon_url", NOVA_CONFIG_STRING, "https://horizon-testnet.stellar.org", S(horizon_url),
     "Horizon base URL", 0, 0, "HORIZON_URL", false},
    {"soroban_rpc_url", NOVA_CONFIG_STRING, NULL, S(soroban_rpc_url), "Soroban RPC URL", 0, 0,
     "SOROBAN_RPC_URL", false},
    {"soroban_rpc_url_fallback", NOVA_CONFIG_STRING, NULL, S(soroban_rpc_url_fallback),
     "Soroban RPC URL tried when soroban_rpc_url fails", 0, 0, "SOROBAN_RPC_URL_FALLBACK", false},
    {"asset_code", NOVA_CONFIG_STRING, "NOVA", S(asset_code), "reward asset code", 0, 0, NULL,
     false},
    {"asset_issuer", NOVA_CONFIG_STRING, NULL, S(asset_issuer), "reward asset issuer (G...)", 0, 0,
     "ISSUER_PUBLIC", false},
    {"distribution_secret", NOVA_CONFIG_SECRET, NULL, S(distribution_secret),
     "secret seed (S...) of the paying account", 0, 0, "DISTRIBUTION_SECRET", false},
    {"base_fee", NOVA_CONFIG_INT, "100", S(base_fee), "fee per operation in stroops", 100,
     100000000, NULL, false},
    {"tx_timeout", NOVA_CONFIG_DURATION, "30s", S(tx_timeout_ms),
     "validity window (max time) of a signed transaction", 1000, DAY_MS, NULL, false},
    {NULL, 0, NULL, 0, NULL, 0, 0, NULL, false},
};

const struct nova__section_info nova__core_sections[] = {
    {"worker", worker_table}, {"redis", redis_table},     {"postgres", postgres_table},
    {"http", http_table},     {"stellar", stellar_table}, {NULL, NULL},
};

static size_t core_offset(const char *section)
{
    if (strcmp(section, "worker") == 0)
        return offsetof(struct nova__config, worker);
    if (strcmp(section, "redis") == 0)
        return offsetof(struct nova__config, redis);
    if (strcmp(section, "postgres") == 0)
        return offsetof(struct nova__config, postgres);
    if (strcmp(section, "http") == 0)
        return offsetof(struct nova__config, http);
    return offsetof(struct nova__config, stellar);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) NOVA_PRINTF(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- value parsing ------------------------------------------------------ */

static int parse_int(const char *text, long long *out)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*text))
        text++;
    if (*text == '\0')
        return -EINVAL;
    long long v = strtoll(text, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_duration(const char *text, long long *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*text))
        return -EINVAL;
    long long v = strtoll(text, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    long long mult;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return -EINVAL;
    if (v > LLONG_MAX / mult)
        return -ERANGE;
    *out = v * mult;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1", NULL};
    static const char *const no[] = {"no", "false", "off", "0", NULL};
    for (int i = 0; yes[i] != NULL; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int nova__config_parse_value(enum nova_config_type type, const char *text, int64_t min, int64_t max,
                             void *dst, char *err, size_t errlen)
{
    long long v;
    int rc;
    switch (type) {
    case NOVA_CONFIG_STRING:
    case NOVA_CONFIG_SECRET: {
        char *copy = strdup(text);
        if (copy == NULL)
            return -ENOMEM;
        char **slot = dst;
        free(*slot);
        *slot = copy;
        return 0;
    }
    case NOVA_CONFIG_BOOL:
        if (parse_bool(text, dst) != 0) {
            set_err(err, errlen, "'%s' is not a boolean (use yes or no)", text);
            return -EINVAL;
        }
        return 0;
    case NOVA_CONFIG_INT:
        rc = parse_int(text, &v);
        if (rc != 0) {
            set_err(err, errlen, "'%s' is not an integer", text);
            return -EINVAL;
        }
        break;
    case NOVA_CONFIG_DURATION:
        rc = parse_duration(text, &v);
        if (rc != 0) {
            set_err(err, errlen, "'%s' is not a duration (examples: 250ms, 5s, 2m, 1h)", text);
            return -EINVAL;
        }
        break;
    default:
        set_err(err, errlen, "unknown value type %d", (int)type);
        return -EINVAL;
    }
    if (min < max && (v < min || v > max)) {
        if (type == NOVA_CONFIG_DURATION)
            set_err(err, errlen, "'%s' is out of range (%lldms to %lldms)", text, (long long)min,
                    (long long)max);
        else
            set_err(err, errlen, "%lld is out of range (%lld to %lld)", v, (long long)min,
                    (long long)max);
        return -ERANGE;
    }
    *(int64_t *)dst = v;
    return 0;
}

/* ---- problems -------------------------------------------------------------- */

static void diag_vadd(struct nova__config_diag *d, const char *fmt, va_list ap)
{
    char *msg = NULL;
    if (d == NULL)
        return;
    if (vasprintf(&msg, fmt, ap) < 0) {
        d->oom = true;
        return;
    }
    char **list = realloc(d->msg, (d->count + 1) * sizeof *list);
    if (list == NULL) {
        free(msg);
        d->oom = true;
        return;
    }
    d->msg = list;
    d->msg[d->count++] = msg;
}

void nova__config_diag_add(struct nova__config_diag *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(d, fmt, ap);
    va_end(ap);
}

void nova__config_diag_free(struct nova__config_diag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->count; i++)
        free(d->msg[i]);
    free(d->msg);
    memset(d, 0, sizeof *d);
}

/* Keeps the first error code of a run of checks. */
static void note(int *rc, int code)
{
    if (*rc == 0)
        *rc = code;
}

const char *nova__config_origin_text(const struct nova__config_origin *o, char *buf, size_t len)
{
    switch (o != NULL ? o->source : NOVA__CONFIG_UNSET) {
    case NOVA__CONFIG_FILE:
    case NOVA__CONFIG_KEY_FILE:
        snprintf(buf, len, "%s:%d", o->file, o->line);
        break;
    case NOVA__CONFIG_CREDENTIAL:
        snprintf(buf, len, "credential %s", o->name);
        break;
    case NOVA__CONFIG_ENVIRONMENT:
        snprintf(buf, len, "environment variable %s", o->name);
        break;
    case NOVA__CONFIG_DEFAULT:
        snprintf(buf, len, "default");
        break;
    case NOVA__CONFIG_UNSET:
        snprintf(buf, len, "unset");
        break;
    }
    return buf;
}

void nova__config_diag_key(struct nova__config_diag *d, const struct nova__config_origin *o,
                           const char *section, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    switch (o != NULL ? o->source : NOVA__CONFIG_UNSET) {
    case NOVA__CONFIG_FILE:
        nova__config_diag_add(d, "%s:%d: [%s] %s %s", o->file, o->line, section, key, msg);
        break;
    case NOVA__CONFIG_KEY_FILE:
        nova__config_diag_add(d, "%s:%d: [%s] %s (from %s_file %s) %s", o->file, o->line, section,
                              key, key, o->path, msg);
        break;
    case NOVA__CONFIG_CREDENTIAL:
        nova__config_diag_add(d, "[%s] %s (from credential %s) %s", section, key, o->name, msg);
        break;
    case NOVA__CONFIG_ENVIRONMENT:
        nova__config_diag_add(d, "[%s] %s (from environment variable %s) %s", section, key, o->name,
                              msg);
        break;
    case NOVA__CONFIG_DEFAULT:
        nova__config_diag_add(d, "[%s] %s (default) %s", section, key, msg);
        break;
    case NOVA__CONFIG_UNSET:
        nova__config_diag_add(d, "[%s] %s %s", section, key, msg);
        break;
    }
}

/* The first problem for callers with one buffer, and how many follow. */
static void first_problem(const struct nova__config_diag *d, const char *what, char *err,
                          size_t errlen)
{
    if (d->count == 0)
        set_err(err, errlen, "%s: out of memory", what);
    else if (d->count == 1)
        set_err(err, errlen, "%s", d->msg[0]);
    else
        set_err(err, errlen, "%s (and %zu more problem%s; `nova-worker check` lists them all)",
                d->msg[0], d->count - 1, d->count > 2 ? "s" : "");
}

/* ---- file parsing --------------------------------------------------------- */

#define SYNTAX_ERRORS_MAX 100

struct parse_state {
    struct nova__config *cfg;
    struct nova__config_diag *diag;
    const struct parse_state *parent; /* the including file's, NULL for the top file */
    const char *file;
    dev_t dev;
    ino_t ino;
    int line;
    int section_line;
    int unknown_section_line; /* the header of the unknown section reported last */
    int depth;
    int rc; /* the first error */
    FILE *fp;
    /* Re-reading a file for the syntax errors after the first one: the
     * handler does nothing and the lines already reported read as comments. */
    bool quiet;
    const int *skip;
    size_t nskip;
};

static int parse_file(struct nova__config *cfg, const char *path, int depth,
                      struct nova__config_diag *diag, const struct parse_state *parent,
                      bool *unreadable);

/* Reading through our own reader lets us know the line inih is on, which
 * the Debian build of inih does not report to handlers. A line longer than
 * inih's buffer is an error here; inih would read its rest as more lines. */
static char *counting_reader(char *buf, int size, void *stream)
{
    struct parse_state *st = stream;
    char *r = fgets(buf, size, st->fp);
    if (r == NULL)
        return NULL;
    st->line++;
    size_t n = strlen(buf);
    if (size > 1 && n == (size_t)size - 1 && buf[n - 1] != '\n') {
        int c = getc(st->fp);
        if (c != EOF && c != '\n') {
            while (c != EOF && c != '\n')
                c = getc(st->fp);
            if (!st->quiet) {
                nova__config_diag_add(st->diag, "%s:%d: line longer than %d characters", st->file,
                                      st->line, size - 1);
                note(&st->rc, -EINVAL);
            }
            snprintf(buf, (size_t)size, ";\n");
            return buf;
        }
    }
    for (size_t i = 0; i < st->nskip; i++) {
        if (st->skip[i] == st->line) {
            snprintf(buf, (size_t)size, ";\n");
            return buf;
        }
    }
    const char *p = r + strspn(r, " \t");
    if (*p == '[')
        st->section_line = st->line;
    return r;
}

static int add_entry(struct parse_state *st, const char *section, const char *key,
                     const char *value)
{
    struct nova__config *cfg = st->cfg;
    struct nova__config_entry *e =
        realloc(cfg->entries, (cfg->entry_count + 1) * sizeof *cfg->entries);
    if (e == NULL)
        return -ENOMEM;
    cfg->entries = e;
    e = &cfg->entries[cfg->entry_count];
    memset(e, 0, sizeof *e);
    e->file = strdup(st->file);
    e->line = st->line;
    e->section_line = st->section_line;
    e->section = strdup(section);
    e->key = strdup(key);
    e->value = strdup(value);
    cfg->entry_count++;
    if (e->file == NULL || e->section == NULL || e->key == NULL || e->value == NULL)
        return -ENOMEM;
    return 0;
}

/* glob() reports a directory it cannot read through a callback without a
 * user pointer; the configuration is read by one thread at a time. */
static _Thread_local int glob_errno;
static _Thread_local char glob_errpath[PATH_MAX];

static int glob_error(const char *path, int eerrno)
{
    if (eerrno == ENOENT || eerrno == ENOTDIR)
        return 0; /* an absent conf.d is normal */
    glob_errno = eerrno;
    snprintf(glob_errpath, sizeof glob_errpath, "%s", path);
    return 1;
}

static void do_include(struct parse_state *st, const char *pattern)
{
    char full[PATH_MAX];
    if (pattern[0] == '/') {
        snprintf(full, sizeof full, "%s", pattern);
    } else {
        const char *slash = strrchr(st->file, '/');
        int dirlen = slash ? (int)(slash - st->file) : 1;
        snprintf(full, sizeof full, "%.*s/%s", dirlen, slash ? st->file : ".", pattern);
    }
    if (st->depth + 1 >= INCLUDE_DEPTH_MAX) {
        nova__config_diag_add(st->diag, "%s:%d: includes nested deeper than %d", st->file, st->line,
                              INCLUDE_DEPTH_MAX);
        note(&st->rc, -ELOOP);
        return;
    }
    glob_t g;
    glob_errno = 0;
    int grc = glob(full, 0, glob_error, &g);
    if (grc == GLOB_NOMATCH)
        return; /* an empty or absent conf.d is normal */
    if (grc != 0) {
        if (grc == GLOB_ABORTED && glob_errno != 0)
            nova__config_diag_add(st->diag, "%s:%d: cannot read include '%s': %s: %s", st->file,
                                  st->line, pattern, glob_errpath, strerror(glob_errno));
        else
            nova__config_diag_add(st->diag, "%s:%d: cannot read include '%s'", st->file, st->line,
                                  pattern);
        note(&st->rc, grc == GLOB_NOSPACE ? -ENOMEM : -EIO);
        globfree(&g);
        return;
    }
    for (size_t i = 0; i < g.gl_pathc; i++)
        note(&st->rc, parse_file(st->cfg, g.gl_pathv[i], st->depth + 1, st->diag, st, NULL));
    globfree(&g);
}

static int known_section(const char *section)
{
    for (int i = 0; nova__core_sections[i].name != NULL; i++) {
        if (strcmp(section, nova__core_sections[i].name) == 0)
            return 1;
    }
    return strncmp(section, "plugin ", 7) == 0 && section[7] != '\0' &&
           strchr(section + 7, ' ') == NULL;
}

/* Every problem is reported and reading goes on, so the handler always
 * returns 1: inih's own error line is then always a syntax error. */
static int on_ini_entry(void *user, const char *section, const char *key, const char *value)
{
    struct parse_state *st = user;
    if (st->quiet || key == NULL)
        return 1; /* re-reading, or a bare section header */
    bool known = section[0] == '\0' || known_section(section);
    if (!known && st->unknown_section_line != st->section_line) {
        st->unknown_section_line = st->section_line;
        nova__config_diag_add(st->diag,
                              "%s:%d: unknown section [%s] (expected worker, redis, postgres, "
                              "http, stellar or plugin NAME)",
                              st->file, st->line, section);
        note(&st->rc, -EINVAL);
    }
    /* include is a directive, allowed anywhere: the drop-ins are read at
     * that point, so they override what came before and are overridden by
     * what follows. */
    if (strcmp(key, "include") == 0) {
        do_include(st, value);
        return 1;
    }
    if (!known)
        return 1;
    if (section[0] == '\0') {
        nova__config_diag_add(st->diag,
                              "%s:%d: '%s' is outside any section (only 'include' may be)",
                              st->file, st->line, key);
        note(&st->rc, -EINVAL);
        return 1;
    }
    if (add_entry(st, section, key, value) != 0) {
        st->diag->oom = true;
        note(&st->rc, -ENOMEM);
    }
    return 1;
}

/* Reads path into cfg->entries, reporting every problem; *unreadable (may
 * be NULL) tells whether the file could not be opened at all. Returns 0 or
 * the -errno of the first problem. */
static int parse_file(struct nova__config *cfg, const char *path, int depth,
                      struct nova__config_diag *diag, const struct parse_state *parent,
                      bool *unreadable)
{
    char site[PATH_MAX + 32] = "";
    if (parent != NULL)
        snprintf(site, sizeof site, "%s:%d: include: ", parent->file, parent->line);
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        int e = errno;
        nova__config_diag_add(diag, "%s%s: cannot open: %s", site, path, strerror(e));
        if (unreadable != NULL)
            *unreadable = true;
        return -e;
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || S_ISDIR(sb.st_mode)) {
        nova__config_diag_add(diag, "%s%s: cannot open: %s", site, path,
                              S_ISDIR(sb.st_mode) ? strerror(EISDIR) : strerror(errno));
        fclose(fp);
        if (unreadable != NULL)
            *unreadable = true;
        return S_ISDIR(sb.st_mode) ? -EISDIR : -EIO;
    }
    for (const struct parse_state *p = parent; p != NULL; p = p->parent) {
        if (p->dev == sb.st_dev && p->ino == sb.st_ino) {
            nova__config_diag_add(diag, "%s%s is already being read (an include loop)", site, path);
            fclose(fp);
            return -ELOOP;
        }
    }
    struct parse_state st = {
        .cfg = cfg,
        .diag = diag,
        .parent = parent,
        .file = path,
        .dev = sb.st_dev,
        .ino = sb.st_ino,
        .depth = depth,
        .fp = fp,
    };
    int line = ini_parse_stream(counting_reader, &st, on_ini_entry, &st);
    /* inih reports only its first bad line: read the file again with each
     * bad line blanked out (which changes nothing else) to find the next. */
    int bad[SYNTAX_ERRORS_MAX];
    size_t nbad = 0;
    while (line > 0) {
        nova__config_diag_add(diag, "%s:%d: syntax error (expected [section] or key = value)", path,
                              line);
        note(&st.rc, -EINVAL);
        if (nbad == SYNTAX_ERRORS_MAX)
            break;
        bad[nbad++] = line;
        rewind(fp);
        st.line = 0;
        st.quiet = true;
        st.skip = bad;
        st.nskip = nbad;
        line = ini_parse_stream(counting_reader, &st, on_ini_entry, &st);
    }
    if (line < 0) {
        nova__config_diag_add(diag, "%s: cannot parse (out of memory)", path);
        note(&st.rc, -ENOMEM);
    }
    fclose(fp);
    return st.rc;
}

/* ---- filling structs from tables --------------------------------------- */

static int read_secret_file(const char *path, char **out, char *why, size_t whylen)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        int e = errno;
        set_err(why, whylen, "cannot read '%s': %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(SECRET_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(fp);
        set_err(why, whylen, "out of memory");
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, SECRET_FILE_MAX + 1, fp);
    int failed = ferror(fp) ? errno : 0;
    fclose(fp);
    if (failed != 0) {
        free(buf);
        set_err(why, whylen, "cannot read '%s': %s", path, strerror(failed));
        return -failed;
    }
    if (n > SECRET_FILE_MAX) {
        free(buf);
        set_err(why, whylen, "'%s' is larger than %d bytes", path, SECRET_FILE_MAX);
        return -EFBIG;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        set_err(why, whylen, "'%s' contains a NUL byte", path);
        return -EINVAL;
    }
    *out = buf;
    return 0;
}

/* The credential a secret may come from: "<prefix>-<key>" with '_' as '-'. */
static void credential_name(char *out, size_t len, const char *prefix, const char *key)
{
    snprintf(out, len, "%s-%s", prefix, key);
    for (char *p = out; *p != '\0'; p++) {
        if (*p == '_' || *p == ' ')
            *p = '-';
    }
}

/* Masks the whole secret and, for connection strings, the password in it,
 * since libraries quote the parts of a DSN separately in their errors. */
static void register_secret(const char *text)
{
    nova__log_add_secret(text);
    char part[512];
    const char *scheme = strstr(text, "://");
    if (scheme != NULL) {
        const char *user = scheme + 3;
        const char *at = strchr(user, '@');
        const char *colon = at ? memchr(user, ':', (size_t)(at - user)) : NULL;
        if (colon != NULL && (size_t)(at - colon - 1) < sizeof part) {
            memcpy(part, colon + 1, (size_t)(at - colon - 1));
            part[at - colon - 1] = '\0';
            nova__log_add_secret(part);
        }
    }
    const char *pw = strstr(text, "password=");
    if (pw != NULL) {
        pw += strlen("password=");
        size_t len = strcspn(pw, " \t'&");
        if (len < sizeof part) {
            memcpy(part, pw, len);
            part[len] = '\0';
            nova__log_add_secret(part);
        }
    }
}

static struct nova__config_entry *last_entry(const struct nova__config *cfg, const char *section,
                                             const char *key)
{
    struct nova__config_entry *found = NULL;
    for (size_t i = 0; cfg != NULL && i < cfg->entry_count; i++) {
        struct nova__config_entry *e = &cfg->entries[i];
        if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0)
            found = e;
    }
    return found;
}

size_t nova__config_table_len(const struct nova_config_entry *table)
{
    size_t n = 0;
    while (table != NULL && table[n].key != NULL)
        n++;
    return n;
}

/* A rejected value leaves the row's default behind, so that a caller that
 * goes on checking does not trip over a field left empty. */
static void apply_default(const struct nova_config_entry *row, void *slot)
{
    char why[256];
    if (row->default_value != NULL)
        nova__config_parse_value(row->type, row->default_value, row->min, row->max, slot, why,
                                 sizeof why);
}

/* Finds the text of one row: key or key_file in the files, credential,
 * environment, default. Returns 0 with *text (NULL when unset; *owned is
 * what to free), or -errno after reporting why. */
static int row_text(const struct nova_config_entry *row, const struct nova__config *cfg,
                    const char *section, const char *cred_prefix, struct nova__config_origin *o,
                    const char **text, char **owned, struct nova__config_diag *diag)
{
    char why[PATH_MAX + 128];
    struct nova__config_entry *e = last_entry(cfg, section, row->key);
    *text = NULL;
    *owned = NULL;
    if (row->type == NOVA_CONFIG_SECRET) {
        char file_key[128];
        snprintf(file_key, sizeof file_key, "%s_file", row->key);
        struct nova__config_entry *fe = last_entry(cfg, section, file_key);
        /* The later of key and key_file wins, as with any override. */
        if (fe != NULL && (e == NULL || fe > e)) {
            o->source = NOVA__CONFIG_KEY_FILE;
            o->file = fe->file;
            o->line = fe->line;
            o->path = fe->value;
            int rc = read_secret_file(fe->value, owned, why, sizeof why);
            if (rc != 0) {
                nova__config_diag_add(diag, "%s:%d: %s: %s", fe->file, fe->line, file_key, why);
                return rc;
            }
            *text = *owned;
            return 0;
        }
    }
    if (e != NULL) {
        o->source = NOVA__CONFIG_FILE;
        o->file = e->file;
        o->line = e->line;
        *text = e->value;
        return 0;
    }
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    if (row->type == NOVA_CONFIG_SECRET && creds != NULL && creds[0] != '\0') {
        char path[PATH_MAX];
        credential_name(o->name, sizeof o->name, cred_prefix, row->key);
        snprintf(path, sizeof path, "%s/%s", creds, o->name);
        if (access(path, F_OK) == 0) {
            o->source = NOVA__CONFIG_CREDENTIAL;
            int rc = read_secret_file(path, owned, why, sizeof why);
            if (rc != 0) {
                nova__config_diag_add(diag, "credential %s: %s", o->name, why);
                return rc;
            }
            *text = *owned;
            return 0;
        }
        o->name[0] = '\0';
    }
    const char *env = row->env != NULL ? getenv(row->env) : NULL;
    if (env != NULL && env[0] != '\0') {
        o->source = NOVA__CONFIG_ENVIRONMENT;
        snprintf(o->name, sizeof o->name, "%s", row->env);
        *text = env;
        return 0;
    }
    if (row->default_value != NULL) {
        o->source = NOVA__CONFIG_DEFAULT;
        *text = row->default_value;
    }
    return 0;
}

/* Fills dst from the rows of table, reporting every problem. origins (one
 * per row) may be NULL. Returns 0 or the -errno of the first problem. */
static int fill_section(const struct nova_config_entry *table, void *dst,
                        const struct nova__config *cfg, const char *section,
                        const char *cred_prefix, struct nova__config_diag *diag,
                        struct nova__config_origin *origins)
{
    int rc = 0;
    /* Unknown keys first, so a typo is reported before the values. */
    for (size_t i = 0; cfg != NULL && i < cfg->entry_count; i++) {
        struct nova__config_entry *e = &cfg->entries[i];
        if (strcmp(e->section, section) != 0)
            continue;
        int known = strncmp(section, "plugin ", 7) == 0 && strcmp(e->key, "enabled") == 0;
        for (size_t t = 0; !known && table != NULL && table[t].key != NULL; t++) {
            size_t kl = strlen(table[t].key);
            known = strcmp(e->key, table[t].key) == 0 ||
                    (table[t].type == NOVA_CONFIG_SECRET &&
                     strncmp(e->key, table[t].key, kl) == 0 && strcmp(e->key + kl, "_file") == 0);
        }
        if (!known) {
            nova__config_diag_add(diag, "%s:%d: unknown key '%s' in [%s]", e->file, e->line, e->key,
                                  section);
            note(&rc, -EINVAL);
            continue;
        }
        e->used = true;
    }

    for (size_t t = 0; table != NULL && table[t].key != NULL; t++) {
        const struct nova_config_entry *row = &table[t];
        void *slot = (char *)dst + row->offset;
        struct nova__config_origin scratch, *o = origins != NULL ? &origins[t] : &scratch;
        const char *text;
        char *owned;
        memset(o, 0, sizeof *o);

        int r = row_text(row, cfg, section, cred_prefix, o, &text, &owned, diag);
        if (r != 0) {
            o->invalid = true;
            note(&rc, r);
            apply_default(row, slot);
            continue;
        }
        if (text == NULL) {
            if (row->required) {
                nova__config_diag_add(diag, "%s: [%s] %s is required%s%s%s",
                                      cfg ? cfg->path : "config", section, row->key,
                                      row->env ? " (or set " : "", row->env ? row->env : "",
                                      row->env ? ")" : "");
                o->invalid = true;
                note(&rc, -EINVAL);
            }
            continue;
        }
        char why[256] = "out of memory";
        r = nova__config_parse_value(row->type, text, row->min, row->max, slot, why, sizeof why);
        if (r != 0) {
            char where[PATH_MAX + 64];
            if (o->source == NOVA__CONFIG_DEFAULT)
                snprintf(where, sizeof where, "default of [%s] %s", section, row->key);
            else
                nova__config_origin_text(o, where, sizeof where);
            nova__config_diag_add(diag, "%s: %s: %s", where, row->key, why);
            o->invalid = true;
            note(&rc, r);
            if (text != row->default_value)
                apply_default(row, slot);
        } else if (row->type == NOVA_CONFIG_SECRET && text != row->default_value) {
            register_secret(text);
        }
        free(owned);
    }
    return rc;
}

int nova__config_fill_all(const struct nova_config_entry *table, size_t config_size,
                          const struct nova__config *cfg,
                          const struct nova__plugin_section *section, void **out,
                          struct nova__config_diag *diag, struct nova__config_origin *origins)
{
    *out = NULL;
    void *dst = calloc(1, config_size > 0 ? config_size : 1);
    if (dst == NULL) {
        diag->oom = true;
        return -ENOMEM;
    }
    char sect[256] = "plugin";
    const char *name = section ? section->name : "";
    if (section != NULL)
        snprintf(sect, sizeof sect, "plugin %s", name);
    int rc = fill_section(table, dst, section ? cfg : NULL, sect, name, diag, origins);
    if (rc == 0 && diag->oom)
        rc = -ENOMEM;
    if (rc != 0) {
        nova__config_struct_free(table, dst);
        return rc;
    }
    *out = dst;
    return 0;
}

int nova__config_fill(const struct nova_config_entry *table, size_t config_size,
                      const struct nova__config *cfg, const struct nova__plugin_section *section,
                      void **out, char *err, size_t errlen)
{
    struct nova__config_diag diag = {0};
    int rc = nova__config_fill_all(table, config_size, cfg, section, out, &diag, NULL);
    if (rc != 0)
        first_problem(&diag, section ? section->name : "plugin", err, errlen);
    nova__config_diag_free(&diag);
    return rc;
}

void nova__config_struct_free(const struct nova_config_entry *table, void *config)
{
    if (config == NULL)
        return;
    for (size_t t = 0; table != NULL && table[t].key != NULL; t++) {
        if (table[t].type == NOVA_CONFIG_STRING || table[t].type == NOVA_CONFIG_SECRET)
            free(*(char **)((char *)config + table[t].offset));
    }
    free(config);
}

/* ---- the whole configuration ---------------------------------------------- */

static struct nova__config_origin *core_origin(const struct nova__config *cfg, const char *section,
                                               const char *key)
{
    size_t base = 0;
    if (cfg == NULL || cfg->origins == NULL)
        return NULL;
    for (int i = 0; nova__core_sections[i].name != NULL; i++) {
        const struct nova_config_entry *t = nova__core_sections[i].table;
        if (strcmp(nova__core_sections[i].name, section) == 0) {
            for (size_t r = 0; t[r].key != NULL; r++) {
                if (strcmp(t[r].key, key) == 0)
                    return &cfg->origins[base + r];
            }
            return NULL;
        }
        base += nova__config_table_len(t);
    }
    return NULL;
}

const struct nova__config_origin *nova__config_origin(const struct nova__config *cfg,
                                                      const char *section, const char *key)
{
    return core_origin(cfg, section, key);
}

static int collect_plugins(struct nova__config *cfg, struct nova__config_diag *diag)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->entry_count; i++) {
        const char *section = cfg->entries[i].section;
        if (strncmp(section, "plugin ", 7) != 0 || nova__config_plugin(cfg, section + 7) != NULL)
            continue;
        struct nova__plugin_section *p =
            realloc(cfg->plugins, (cfg->plugin_count + 1) * sizeof *cfg->plugins);
        if (p == NULL)
            return -ENOMEM;
        cfg->plugins = p;
        p = &cfg->plugins[cfg->plugin_count++];
        memset(p, 0, sizeof *p);
        p->name = strdup(section + 7);
        p->file = strdup(cfg->entries[i].file);
        p->line = cfg->entries[i].section_line;
        if (p->name == NULL || p->file == NULL)
            return -ENOMEM;
        struct nova__config_entry *en = last_entry(cfg, section, "enabled");
        if (en != NULL) {
            p->enabled_file = en->file;
            p->enabled_line = en->line;
        }
        if (en != NULL && parse_bool(en->value, &p->enabled) != 0) {
            nova__config_diag_add(diag, "%s:%d: enabled: '%s' is not a boolean (use yes or no)",
                                  en->file, en->line, en->value);
            p->enabled = false;
            note(&rc, -EINVAL);
        }
    }
    return rc;
}

/* Whether what follows SCHEME:// names a host (unix://: an absolute path). */
static bool url_has_host(const char *scheme, const char *rest)
{
    if (strcmp(scheme, "unix://") == 0)
        return rest[0] == '/';
    size_t n = strcspn(rest, "/?#"); /* the authority: [userinfo@]host[:port] */
    const char *at = memrchr(rest, '@', n);
    const char *host = at != NULL ? at + 1 : rest;
    return host < rest + n && *host != ':';
}

/* SCHEME://HOST... with one of schemes, without blanks or control
 * characters. Reports why not, without the value when it is a secret. */
static int check_url(const struct nova__config *cfg, const char *section, const char *key,
                     const char *value, const char *const *schemes, const char *what,
                     const char *expected, bool secret, struct nova__config_diag *diag)
{
    struct nova__config_origin *o = core_origin(cfg, section, key);
    if (value == NULL || value[0] == '\0' || o->invalid)
        return 0;
    char where[PATH_MAX + 64], shown[512];
    nova__config_origin_text(o, where, sizeof where);
    if (secret)
        snprintf(shown, sizeof shown, "the value (a secret, not shown)");
    else
        snprintf(shown, sizeof shown, "'%s'", value);
    const char *why = NULL;
    for (const char *p = value; *p != '\0' && why == NULL; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            why = "contains a blank or control character";
    }
    for (int i = 0; why == NULL && schemes[i] != NULL; i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(value, schemes[i], n) != 0)
            continue;
        if (url_has_host(schemes[i], value + n))
            return 0;
        why = strcmp(schemes[i], "unix://") == 0 ? "needs an absolute socket path after unix://"
                                                 : "names no host";
    }
    if (why != NULL)
        nova__config_diag_add(diag, "%s: %s: %s %s", where, key, shown, why);
    else
        nova__config_diag_add(diag, "%s: %s: %s is not a %s URL (expected %s)", where, key, shown,
                              what, expected);
    o->invalid = true;
    return -EINVAL;
}

/* libpq takes a URI (postgresql:// or postgres://) or key=value pairs. */
static int check_dsn(const struct nova__config *cfg, struct nova__config_diag *diag)
{
    const char *dsn = cfg->postgres.dsn;
    struct nova__config_origin *o = core_origin(cfg, "postgres", "dsn");
    if (dsn == NULL || dsn[0] == '\0' || o->invalid)
        return 0;
    if (strncmp(dsn, "postgresql://", 13) == 0 || strncmp(dsn, "postgres://", 11) == 0 ||
        (strstr(dsn, "://") == NULL && strchr(dsn, '=') != NULL))
        return 0;
    char where[PATH_MAX + 64];
    nova__config_diag_add(diag,
                          "%s: dsn: the value (a secret, not shown) is neither a postgresql:// "
                          "URI nor a key=value connection string",
                          nova__config_origin_text(o, where, sizeof where));
    o->invalid = true;
    return -EINVAL;
}

/* Where a problem with two keys is: the first of them set in a file. */
static const char *pair_where(const struct nova__config_origin *a,
                              const struct nova__config_origin *b, char *buf, size_t len)
{
    if (a != NULL && a->source != NOVA__CONFIG_FILE && b != NULL && b->source == NOVA__CONFIG_FILE)
        a = b;
    return nova__config_origin_text(a, buf, len);
}

static int finish_core(struct nova__config *cfg, struct nova__config_diag *diag)
{
    int rc = 0;
    char where[PATH_MAX + 64];
    struct nova__config_origin *o = core_origin(cfg, "worker", "log_level");
    if (cfg->worker.log_level_name == NULL ||
        nova__log_level_parse(cfg->worker.log_level_name, &cfg->worker.log_level) != 0) {
        if (!o->invalid)
            nova__config_diag_add(diag,
                                  "%s: log_level: '%s' is not one of error, warn, info, debug",
                                  nova__config_origin_text(o, where, sizeof where),
                                  cfg->worker.log_level_name ? cfg->worker.log_level_name : "");
        o->invalid = true;
        cfg->worker.log_level = NOVA_LOG_INFO;
        note(&rc, -EINVAL);
    }
    if (cfg->worker.name == NULL) {
        char host[256] = "nova-worker";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        cfg->worker.name = strdup(host);
        if (cfg->worker.name == NULL)
            return -ENOMEM;
        core_origin(cfg, "worker", "name")->source = NOVA__CONFIG_DEFAULT;
    }

    static const char *const redis_schemes[] = {"redis://", "rediss://", "unix://", NULL};
    static const char *const http_schemes[] = {"https://", "http://", NULL};
    static const char *const stellar_urls[] = {"horizon_url", "soroban_rpc_url",
                                               "soroban_rpc_url_fallback"};
    const char *stellar_values[] = {cfg->stellar.horizon_url, cfg->stellar.soroban_rpc_url,
                                    cfg->stellar.soroban_rpc_url_fallback};
    note(&rc, check_url(cfg, "redis", "url", cfg->redis.url, redis_schemes, "redis://",
                        "redis://, rediss:// or unix://", true, diag));
    for (size_t i = 0; i < sizeof stellar_urls / sizeof stellar_urls[0]; i++)
        note(&rc, check_url(cfg, "stellar", stellar_urls[i], stellar_values[i], http_schemes,
                            "http(s)://", "http:// or https://", false, diag));
    note(&rc, check_dsn(cfg, diag));

    if (cfg->stellar.soroban_rpc_url_fallback != NULL &&
        cfg->stellar.soroban_rpc_url_fallback[0] != '\0' &&
        (cfg->stellar.soroban_rpc_url == NULL || cfg->stellar.soroban_rpc_url[0] == '\0')) {
        o = core_origin(cfg, "stellar", "soroban_rpc_url_fallback");
        nova__config_diag_add(diag,
                              "%s: soroban_rpc_url_fallback is set but soroban_rpc_url is not (the "
                              "fallback is only tried when the first fails)",
                              nova__config_origin_text(o, where, sizeof where));
        note(&rc, -EINVAL);
    }
    const struct nova__config_origin *pmin = core_origin(cfg, "postgres", "pool_min");
    const struct nova__config_origin *pmax = core_origin(cfg, "postgres", "pool_max");
    if (!pmin->invalid && !pmax->invalid && cfg->postgres.pool_min > cfg->postgres.pool_max) {
        nova__config_diag_add(diag, "%s: pool_min (%lld) is larger than pool_max (%lld)",
                              pair_where(pmin, pmax, where, sizeof where),
                              (long long)cfg->postgres.pool_min, (long long)cfg->postgres.pool_max);
        note(&rc, -EINVAL);
    }

    const char *net = cfg->stellar.network ? cfg->stellar.network : "testnet";
    const char *pass = net;
    o = core_origin(cfg, "stellar", "network");
    if (strcasecmp(net, "testnet") == 0) {
        pass = "Test SDF Network ; September 2015";
    } else if (strcasecmp(net, "public") == 0 || strcasecmp(net, "mainnet") == 0 ||
               strcasecmp(net, "pubnet") == 0) {
        pass = "Public Global Stellar Network ; September 2015";
    } else if (strchr(net, ' ') == NULL) {
        nova__config_diag_add(diag,
                              "%s: network: '%s' is neither testnet, public nor a network "
                              "passphrase",
                              nova__config_origin_text(o, where, sizeof where), net);
        o->invalid = true;
        note(&rc, -EINVAL);
        pass = "Test SDF Network ; September 2015";
    }
    cfg->stellar.network_passphrase = strdup(pass);
    if (cfg->stellar.network_passphrase == NULL)
        return -ENOMEM;
    return rc;
}

static size_t core_rows(void)
{
    size_t n = 0;
    for (int i = 0; nova__core_sections[i].name != NULL; i++)
        n += nova__config_table_len(nova__core_sections[i].table);
    return n;
}

int nova__config_load_all(const char *path, struct nova__config **out,
                          struct nova__config_diag *diag)
{
    *out = NULL;
    struct nova__config *cfg = calloc(1, sizeof *cfg);
    if (cfg != NULL) {
        cfg->path = strdup(path);
        cfg->origins = calloc(core_rows(), sizeof *cfg->origins);
    }
    if (cfg == NULL || cfg->path == NULL || cfg->origins == NULL) {
        nova__config_free(cfg);
        diag->oom = true;
        return -ENOMEM;
    }
    bool unreadable = false;
    int rc = parse_file(cfg, path, 0, diag, NULL, &unreadable);
    if (unreadable) {
        nova__config_free(cfg);
        return rc;
    }
    struct nova__config_origin *origins = cfg->origins;
    for (int i = 0; nova__core_sections[i].name != NULL; i++) {
        const char *name = nova__core_sections[i].name;
        const struct nova_config_entry *table = nova__core_sections[i].table;
        note(&rc,
             fill_section(table, (char *)cfg + core_offset(name), cfg, name, name, diag, origins));
        origins += nova__config_table_len(table);
    }
    note(&rc, collect_plugins(cfg, diag));
    note(&rc, finish_core(cfg, diag));
    if (rc == -ENOMEM || diag->oom) {
        diag->oom = true;
        nova__config_free(cfg);
        return -ENOMEM;
    }
    *out = cfg;
    return rc;
}

int nova__config_load(const char *path, struct nova__config **out, char *err, size_t errlen)
{
    struct nova__config_diag diag = {0};
    struct nova__config *cfg = NULL;
    int rc = nova__config_load_all(path, &cfg, &diag);
    if (rc != 0) {
        first_problem(&diag, path, err, errlen);
        nova__config_free(cfg);
        cfg = NULL;
    }
    nova__config_diag_free(&diag);
    *out = cfg;
    return rc;
}

const struct nova__plugin_section *nova__config_plugin(const struct nova__config *cfg,
                                                       const char *name)
{
    for (size_t i = 0; cfg != NULL && i < cfg->plugin_count; i++) {
        if (strcmp(cfg->plugins[i].name, name) == 0)
            return &cfg->plugins[i];
    }
    return NULL;
}

void nova__config_free(struct nova__config *cfg)
{
    if (cfg == NULL)
        return;
    for (int i = 0; nova__core_sections[i].name != NULL; i++) {
        const struct nova_config_entry *t = nova__core_sections[i].table;
        char *base = (char *)cfg + core_offset(nova__core_sections[i].name);
        for (size_t r = 0; t[r].key != NULL; r++) {
            if (t[r].type == NOVA_CONFIG_STRING || t[r].type == NOVA_CONFIG_SECRET)
                free(*(char **)(base + t[r].offset));
        }
    }
    free(cfg->stellar.network_passphrase);
    for (size_t i = 0; i < cfg->entry_count; i++) {
        free(cfg->entries[i].file);
        free(cfg->entries[i].section);
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }
    free(cfg->entries);
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        free(cfg->plugins[i].name);
        free(cfg->plugins[i].file);
    }
    free(cfg->plugins);
    free(cfg->origins);
    free(cfg->path);
    free(cfg);
}

static const char *type_name(enum nova_config_type t)
{
    switch (t) {
    case NOVA_CONFIG_STRING:
        return "string";
    case NOVA_CONFIG_INT:
        return "integer";
    case NOVA_CONFIG_BOOL:
        return "yes/no";
    case NOVA_CONFIG_DURATION:
        return "duration";
    case NOVA_CONFIG_SECRET:
        return "secret";
    }
    return "?";
}

void nova__config_print_table(const struct nova_config_entry *table, FILE *out)
{
    for (size_t t = 0; table != NULL && table[t].key != NULL; t++) {
        const struct nova_config_entry *r = &table[t];
        fprintf(out, "  %-22s %-9s", r->key, type_name(r->type));
        if (r->default_value != NULL)
            fprintf(out, " default %s", r->default_value[0] ? r->default_value : "(empty)");
        else if (r->required)
            fprintf(out, " required");
        if (r->env != NULL)
            fprintf(out, ", env %s", r->env);
        if (r->type == NOVA_CONFIG_SECRET)
            fprintf(out, ", %s_file or a credential", r->key);
        fprintf(out, "\n      %s\n", r->help ? r->help : "");
    }
}

/* ---- check --print ------------------------------------------------------- */

/* Whether a query parameter's value is likely a credential. */
static bool secret_param(const char *name, size_t len)
{
    static const char *const words[] = {"pass", "secret", "token", "key", "auth", "cred", "sig"};
    char low[64];
    if (len >= sizeof low)
        return true;
    for (size_t i = 0; i < len; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[len] = '\0';
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strstr(low, words[i]) != NULL)
            return true;
    }
    return false;
}

struct outbuf {
    char *buf;
    size_t len, used;
};

static void put(struct outbuf *o, const char *s, size_t n)
{
    if (o->used + n >= o->len)
        n = o->used + 1 < o->len ? o->len - o->used - 1 : 0;
    memcpy(o->buf + o->used, s, n);
    o->used += n;
    o->buf[o->used] = '\0';
}

static void puts_(struct outbuf *o, const char *s)
{
    put(o, s, strlen(s));
}

/* A URL with the password of its userinfo and every password-like query
 * value as "***". With secret, a userinfo without ':' is taken as a
 * password (redis://TOKEN@host); otherwise it is the user. */
static void mask_url(const char *value, const char *sep, bool secret, struct outbuf *o)
{
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', alen);
    put(o, value, (size_t)(auth - value));
    if (at != NULL) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon != NULL) {
            put(o, auth, (size_t)(colon - auth));
            puts_(o, ":***@");
        } else if (secret) {
            puts_(o, "***@");
        } else {
            put(o, auth, (size_t)(at - auth) + 1);
        }
        auth = at + 1;
        alen = strcspn(auth, "/?#");
    }
    const char *path = auth + alen;
    size_t plen = strcspn(path, "?#");
    put(o, auth, (size_t)(path + plen - auth));
    const char *q = path + plen;
    if (*q == '?') {
        q++;
        puts_(o, "?");
        while (*q != '\0' && *q != '#') {
            size_t n = strcspn(q, "&#");
            const char *eq = memchr(q, '=', n);
            if (eq != NULL && secret_param(q, (size_t)(eq - q))) {
                put(o, q, (size_t)(eq - q) + 1);
                puts_(o, "***");
            } else {
                put(o, q, n);
            }
            q += n;
            if (*q == '&') {
                puts_(o, "&");
                q++;
            }
        }
    }
    if (*q == '#')
        puts_(o, "#***");
}

/* "scheme://" with a valid scheme name, or NULL. */
static const char *url_scheme_end(const char *value)
{
    const char *sep = strstr(value, "://");
    if (sep == NULL || sep == value || !isalpha((unsigned char)value[0]))
        return NULL;
    for (const char *p = value; p < sep; p++) {
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
            return NULL;
    }
    return sep;
}

const char *nova__config_mask_secret(const char *value, char *buf, size_t len)
{
    struct outbuf o = {buf, len, 0};
    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (value == NULL || value[0] == '\0')
        return buf;
    const char *sep = url_scheme_end(value);
    if (sep == NULL)
        puts_(&o, "***");
    else
        mask_url(value, sep, true, &o);
    return buf;
}

/* A duration in its largest whole unit. */
static void format_duration(int64_t ms, char *buf, size_t len)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; ms != 0 && i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, len, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(buf, len, ms == 0 ? "0" : "%lldms", (long long)ms);
}

static void print_origin(const struct nova_config_entry *row, const struct nova__config_origin *o,
                         FILE *out)
{
    switch (o != NULL ? o->source : NOVA__CONFIG_UNSET) {
    case NOVA__CONFIG_FILE:
        fprintf(out, "%s:%d", o->file, o->line);
        break;
    case NOVA__CONFIG_KEY_FILE:
        fprintf(out, "%s_file %s (%s:%d)", row->key, o->path, o->file, o->line);
        break;
    case NOVA__CONFIG_CREDENTIAL:
        fprintf(out, "credential %s", o->name);
        break;
    case NOVA__CONFIG_ENVIRONMENT:
        fprintf(out, "env %s", o->name);
        break;
    case NOVA__CONFIG_DEFAULT:
        fputs("default", out);
        break;
    case NOVA__CONFIG_UNSET:
        fputs("unset", out);
        break;
    }
    if (o != NULL && o->invalid)
        fputs(", invalid", out);
}

void nova__config_print_values(const struct nova_config_entry *table, const void *config,
                               const char *section, const struct nova__config_origin *origins,
                               FILE *out)
{
    for (size_t t = 0; table != NULL && table[t].key != NULL; t++) {
        const struct nova_config_entry *row = &table[t];
        const struct nova__config_origin *o = origins != NULL ? &origins[t] : NULL;
        const void *slot = (const char *)config + row->offset;
        char value[2048] = "";
        struct outbuf ob = {value, sizeof value, 0};
        if (o != NULL && o->invalid && o->source != NOVA__CONFIG_UNSET) {
            snprintf(value, sizeof value, "(invalid)");
        } else if (config != NULL) {
            const char *s, *sep;
            switch (row->type) {
            case NOVA_CONFIG_SECRET:
                nova__config_mask_secret(*(char *const *)slot, value, sizeof value);
                break;
            case NOVA_CONFIG_STRING:
                s = *(char *const *)slot;
                if (s != NULL && (sep = url_scheme_end(s)) != NULL)
                    mask_url(s, sep, false, &ob);
                else
                    snprintf(value, sizeof value, "%s", s ? s : "");
                break;
            case NOVA_CONFIG_INT:
                snprintf(value, sizeof value, "%lld", (long long)*(const int64_t *)slot);
                break;
            case NOVA_CONFIG_DURATION:
                format_duration(*(const int64_t *)slot, value, sizeof value);
                break;
            case NOVA_CONFIG_BOOL:
                snprintf(value, sizeof value, "%s", *(const bool *)slot ? "yes" : "no");
                break;
            }
        }
        fprintf(out, "[%s] %s =%s%s   # ", section, row->key, value[0] ? " " : "", value);
        print_origin(row, o, out);
        fputc('\n', out);
    }
}

void nova__config_print_core(const struct nova__config *cfg, FILE *out)
{
    const struct nova__config_origin *origins = cfg->origins;
    for (int i = 0; nova__core_sections[i].name != NULL; i++) {
        const char *name = nova__core_sections[i].name;
        const struct nova_config_entry *table = nova__core_sections[i].table;
        nova__config_print_values(table, (const char *)cfg + core_offset(name), name, origins, out);
        origins += nova__config_table_len(table);
    }
}
