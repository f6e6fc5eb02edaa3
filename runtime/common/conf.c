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
     "address:port of /metrics, /healthz and /readyz; empty disables", 0, 0, NULL, false},
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

/* ---- file parsing --------------------------------------------------------- */

struct parse_state {
    struct nova__config *cfg;
    const char *file;
    int line;
    int section_line;
    int depth;
    int rc;
    char *err;
    size_t errlen;
    FILE *fp;
};

static int parse_file(struct nova__config *cfg, const char *path, int depth, char *err,
                      size_t errlen);

/* Reading through our own reader lets us know the line inih is on, which
 * the Debian build of inih does not report to handlers. */
static char *counting_reader(char *buf, int size, void *stream)
{
    struct parse_state *st = stream;
    char *r = fgets(buf, size, st->fp);
    if (r != NULL) {
        st->line++;
        const char *p = r + strspn(r, " \t");
        if (*p == '[')
            st->section_line = st->line;
    }
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

static int do_include(struct parse_state *st, const char *pattern)
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
        set_err(st->err, st->errlen, "%s:%d: includes nested deeper than %d", st->file, st->line,
                INCLUDE_DEPTH_MAX);
        return -ELOOP;
    }
    glob_t g;
    int grc = glob(full, 0, NULL, &g);
    if (grc == GLOB_NOMATCH)
        return 0; /* an empty or absent conf.d is normal */
    if (grc != 0) {
        set_err(st->err, st->errlen, "%s:%d: cannot read include '%s'", st->file, st->line,
                pattern);
        return -EIO;
    }
    int rc = 0;
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
        rc = parse_file(st->cfg, g.gl_pathv[i], st->depth + 1, st->err, st->errlen);
    globfree(&g);
    return rc;
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

static int on_ini_entry(void *user, const char *section, const char *key, const char *value)
{
    struct parse_state *st = user;
    if (st->rc != 0)
        return 0;
    if (key == NULL)
        return 1; /* a bare section header */
    if (section[0] != '\0' && !known_section(section)) {
        set_err(st->err, st->errlen,
                "%s:%d: unknown section [%s] (expected worker, redis, postgres, http, stellar "
                "or plugin NAME)",
                st->file, st->line, section);
        st->rc = -EINVAL;
        return 0;
    }
    /* include is a directive, allowed anywhere: the drop-ins are read at
     * that point, so they override what came before and are overridden by
     * what follows. */
    if (strcmp(key, "include") == 0) {
        st->rc = do_include(st, value);
        return st->rc == 0;
    }
    if (section[0] == '\0') {
        set_err(st->err, st->errlen, "%s:%d: '%s' is outside any section (only 'include' may be)",
                st->file, st->line, key);
        st->rc = -EINVAL;
        return 0;
    }
    st->rc = add_entry(st, section, key, value);
    return st->rc == 0;
}

static int parse_file(struct nova__config *cfg, const char *path, int depth, char *err,
                      size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        int e = errno;
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    struct parse_state st = {
        .cfg = cfg, .file = path, .depth = depth, .err = err, .errlen = errlen, .fp = fp};
    int line = ini_parse_stream(counting_reader, &st, on_ini_entry, &st);
    fclose(fp);
    if (st.rc != 0)
        return st.rc;
    if (line > 0) {
        set_err(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path, line);
        return -EINVAL;
    }
    if (line < 0) {
        set_err(err, errlen, "%s: cannot parse (out of memory)", path);
        return -ENOMEM;
    }
    return 0;
}

/* ---- filling structs from tables --------------------------------------- */

static int read_secret_file(const char *path, char **out, char *why, size_t whylen)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        set_err(why, whylen, "cannot read '%s': %s", path, strerror(errno));
        return -errno;
    }
    char *buf = malloc(SECRET_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(fp);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, SECRET_FILE_MAX + 1, fp);
    fclose(fp);
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

static int fill_section(const struct nova_config_entry *table, void *dst,
                        const struct nova__config *cfg, const char *section,
                        const char *cred_prefix, char *err, size_t errlen)
{
    char why[256];
    /* Unknown keys first, so a typo is reported even when a value is bad. */
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
            set_err(err, errlen, "%s:%d: unknown key '%s' in [%s]", e->file, e->line, e->key,
                    section);
            return -EINVAL;
        }
        e->used = true;
    }

    for (size_t t = 0; table != NULL && table[t].key != NULL; t++) {
        const struct nova_config_entry *row = &table[t];
        void *slot = (char *)dst + row->offset;
        struct nova__config_entry *e = last_entry(cfg, section, row->key);
        const char *text = NULL;
        char *owned = NULL;
        char origin[PATH_MAX + 64];

        if (row->type == NOVA_CONFIG_SECRET) {
            char file_key[128];
            snprintf(file_key, sizeof file_key, "%s_file", row->key);
            struct nova__config_entry *fe = last_entry(cfg, section, file_key);
            /* The later of key and key_file wins, as with any override. */
            if (fe != NULL && (e == NULL || fe > e)) {
                int rc = read_secret_file(fe->value, &owned, why, sizeof why);
                if (rc != 0) {
                    set_err(err, errlen, "%s:%d: %s: %s", fe->file, fe->line, file_key, why);
                    return rc;
                }
                text = owned;
                snprintf(origin, sizeof origin, "%s:%d", fe->file, fe->line);
                e = NULL;
            }
        }
        if (text == NULL && e != NULL) {
            text = e->value;
            snprintf(origin, sizeof origin, "%s:%d", e->file, e->line);
        }
        if (text == NULL && row->type == NOVA_CONFIG_SECRET && getenv("CREDENTIALS_DIRECTORY")) {
            char cred[128], path[PATH_MAX];
            credential_name(cred, sizeof cred, cred_prefix, row->key);
            snprintf(path, sizeof path, "%s/%s", getenv("CREDENTIALS_DIRECTORY"), cred);
            if (access(path, F_OK) == 0) {
                int rc = read_secret_file(path, &owned, why, sizeof why);
                if (rc != 0) {
                    set_err(err, errlen, "credential %s: %s", cred, why);
                    return rc;
                }
                text = owned;
                snprintf(origin, sizeof origin, "credential %s", cred);
            }
        }
        if (text == NULL && row->env != NULL && getenv(row->env) != NULL &&
            getenv(row->env)[0] != '\0') {
            text = getenv(row->env);
            snprintf(origin, sizeof origin, "environment variable %s", row->env);
        }
        if (text == NULL && row->default_value != NULL) {
            text = row->default_value;
            snprintf(origin, sizeof origin, "default of [%s] %s", section, row->key);
        }
        if (text == NULL) {
            if (row->required) {
                set_err(err, errlen, "%s: [%s] %s is required%s%s", cfg ? cfg->path : "config",
                        section, row->key, row->env ? " (or set " : "", row->env ? row->env : "");
                if (row->env != NULL && err != NULL)
                    strncat(err, ")", errlen - strlen(err) - 1);
                return -EINVAL;
            }
            continue;
        }
        int rc =
            nova__config_parse_value(row->type, text, row->min, row->max, slot, why, sizeof why);
        if (rc != 0) {
            set_err(err, errlen, "%s: %s: %s", origin, row->key, why);
            free(owned);
            return rc;
        }
        if (row->type == NOVA_CONFIG_SECRET && text != row->default_value)
            register_secret(text);
        free(owned);
    }
    return 0;
}

int nova__config_fill(const struct nova_config_entry *table, size_t config_size,
                      const struct nova__config *cfg, const struct nova__plugin_section *section,
                      void **out, char *err, size_t errlen)
{
    *out = NULL;
    void *dst = calloc(1, config_size > 0 ? config_size : 1);
    if (dst == NULL)
        return -ENOMEM;
    char sect[256] = "plugin";
    const char *name = section ? section->name : "";
    if (section != NULL)
        snprintf(sect, sizeof sect, "plugin %s", name);
    int rc = fill_section(table, dst, section ? cfg : NULL, sect, name, err, errlen);
    if (rc != 0) {
        nova__config_struct_free(table, dst);
        return rc;
    }
    *out = dst;
    return 0;
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

static int collect_plugins(struct nova__config *cfg, char *err, size_t errlen)
{
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
        if (en != NULL && parse_bool(en->value, &p->enabled) != 0) {
            set_err(err, errlen, "%s:%d: enabled: '%s' is not a boolean (use yes or no)", en->file,
                    en->line, en->value);
            return -EINVAL;
        }
    }
    return 0;
}

static int check_url(const struct nova__config *cfg, const char *section, const char *key,
                     const char *value, const char *const *schemes, char *err, size_t errlen)
{
    if (value == NULL || value[0] == '\0')
        return 0;
    for (int i = 0; schemes[i] != NULL; i++) {
        if (strncmp(value, schemes[i], strlen(schemes[i])) == 0 &&
            value[strlen(schemes[i])] != '\0')
            return 0;
    }
    const struct nova__config_entry *e = last_entry(cfg, section, key);
    if (e != NULL)
        set_err(err, errlen, "%s:%d: %s: '%s' is not a %s URL", e->file, e->line, key,
                strncmp(key, "url", 3) == 0 ? "[redacted]" : value, schemes[0]);
    else
        set_err(err, errlen, "[%s] %s is not a %s URL", section, key, schemes[0]);
    return -EINVAL;
}

static int finish_core(struct nova__config *cfg, char *err, size_t errlen)
{
    struct nova__config_entry *e;
    if (nova__log_level_parse(cfg->worker.log_level_name, &cfg->worker.log_level) != 0) {
        e = last_entry(cfg, "worker", "log_level");
        set_err(err, errlen, "%s:%d: log_level: '%s' is not one of error, warn, info, debug",
                e ? e->file : "environment variable LOG_LEVEL", e ? e->line : 0,
                cfg->worker.log_level_name);
        return -EINVAL;
    }
    if (cfg->worker.name == NULL) {
        char host[256] = "nova-worker";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        cfg->worker.name = strdup(host);
        if (cfg->worker.name == NULL)
            return -ENOMEM;
    }
    static const char *const redis_schemes[] = {"redis://", "rediss://", "unix://", NULL};
    static const char *const http_schemes[] = {"http", NULL};
    int rc = check_url(cfg, "redis", "url", cfg->redis.url, redis_schemes, err, errlen);
    if (rc == 0)
        rc = check_url(cfg, "stellar", "horizon_url", cfg->stellar.horizon_url, http_schemes, err,
                       errlen);
    if (rc == 0)
        rc = check_url(cfg, "stellar", "soroban_rpc_url", cfg->stellar.soroban_rpc_url,
                       http_schemes, err, errlen);
    if (rc == 0)
        rc = check_url(cfg, "stellar", "soroban_rpc_url_fallback",
                       cfg->stellar.soroban_rpc_url_fallback, http_schemes, err, errlen);
    if (rc != 0)
        return rc;
    if (cfg->stellar.soroban_rpc_url_fallback != NULL &&
        cfg->stellar.soroban_rpc_url_fallback[0] != '\0' &&
        (cfg->stellar.soroban_rpc_url == NULL || cfg->stellar.soroban_rpc_url[0] == '\0')) {
        e = last_entry(cfg, "stellar", "soroban_rpc_url_fallback");
        set_err(err, errlen,
                "%s:%d: soroban_rpc_url_fallback is set but soroban_rpc_url is not (the "
                "fallback is only tried when the first fails)",
                e ? e->file : "environment variable SOROBAN_RPC_URL_FALLBACK", e ? e->line : 0);
        return -EINVAL;
    }
    if (cfg->postgres.pool_min > cfg->postgres.pool_max) {
        e = last_entry(cfg, "postgres", "pool_min");
        set_err(err, errlen, "%s:%d: pool_min (%lld) is larger than pool_max (%lld)",
                e ? e->file : cfg->path, e ? e->line : 0, (long long)cfg->postgres.pool_min,
                (long long)cfg->postgres.pool_max);
        return -EINVAL;
    }
    const char *net = cfg->stellar.network;
    const char *pass = net;
    if (strcasecmp(net, "testnet") == 0)
        pass = "Test SDF Network ; September 2015";
    else if (strcasecmp(net, "public") == 0 || strcasecmp(net, "mainnet") == 0 ||
             strcasecmp(net, "pubnet") == 0)
        pass = "Public Global Stellar Network ; September 2015";
    else if (strchr(net, ' ') == NULL) {
        e = last_entry(cfg, "stellar", "network");
        set_err(err, errlen,
                "%s:%d: network: '%s' is neither testnet, public nor a network passphrase",
                e ? e->file : "environment variable STELLAR_NETWORK", e ? e->line : 0, net);
        return -EINVAL;
    }
    cfg->stellar.network_passphrase = strdup(pass);
    return cfg->stellar.network_passphrase ? 0 : -ENOMEM;
}

int nova__config_load(const char *path, struct nova__config **out, char *err, size_t errlen)
{
    *out = NULL;
    struct nova__config *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        return -ENOMEM;
    cfg->path = strdup(path);
    int rc = cfg->path ? parse_file(cfg, path, 0, err, errlen) : -ENOMEM;
    for (int i = 0; rc == 0 && nova__core_sections[i].name != NULL; i++) {
        const char *name = nova__core_sections[i].name;
        rc = fill_section(nova__core_sections[i].table, (char *)cfg + core_offset(name), cfg, name,
                          name, err, errlen);
    }
    if (rc == 0)
        rc = collect_plugins(cfg, err, errlen);
    if (rc == 0)
        rc = finish_core(cfg, err, errlen);
    if (rc != 0) {
        if (rc == -ENOMEM && err != NULL && err[0] == '\0')
            set_err(err, errlen, "%s: out of memory", path);
        nova__config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
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
