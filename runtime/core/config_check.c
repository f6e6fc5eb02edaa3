#define _GNU_SOURCE
#include "config.h"
#include "core/config_check.h"
#include "common/conf.h"
#include "httpd/httpd.h"
#include "queue/redis_conn.h"
#include "stellar/stellar_strkey.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The reason of a StrKey rejection without its "invalid KIND: " prefix,
 * which the message around it already says. */
static const char *strkey_reason(const char *why)
{
    const char *p = strncmp(why, "invalid ", 8) == 0 ? strstr(why, ": ") : NULL;
    return p != NULL ? p + 2 : why;
}

static int check_strkeys(const struct nova__config *cfg, struct nova__config_diag *diag)
{
    int problems = 0;
    char why[256];
    uint8_t key[32];
    const struct nova__config_origin *o = nova__config_origin(cfg, "stellar", "asset_issuer");
    const char *issuer = cfg->stellar.asset_issuer;
    if (issuer != NULL && issuer[0] != '\0' && !o->invalid &&
        nova__strkey_decode32(issuer, NOVA_STRKEY_ACCOUNT, key, why, sizeof why) != 0) {
        nova__config_diag_key(diag, o, "stellar", "asset_issuer",
                              "'%s' is not a valid public key (G..., 56 characters, "
                              "checksum): %s",
                              issuer, strkey_reason(why));
        problems++;
    }
    o = nova__config_origin(cfg, "stellar", "distribution_secret");
    const char *seed = cfg->stellar.distribution_secret;
    if (seed != NULL && seed[0] != '\0' && !o->invalid &&
        nova__strkey_decode32(seed, NOVA_STRKEY_SEED, key, why, sizeof why) != 0) {
        /* The decoder never quotes a seed's characters; a reason that
         * quotes anything is left out all the same. */
        const char *reason = strkey_reason(why);
        bool quotes = strchr(reason, '\'') != NULL;
        nova__config_diag_key(diag, o, "stellar", "distribution_secret",
                              "is not a valid secret seed (S..., 56 characters, checksum)%s%s",
                              quotes ? "" : ": ", quotes ? "" : reason);
        problems++;
    }
    explicit_bzero(key, sizeof key); /* the seed's bytes */
    return problems;
}

static int check_listen(const struct nova__config *cfg, struct nova__config_diag *diag)
{
    char why[256];
    if (nova__httpd_check_listen(cfg->http.listen, why, sizeof why) == 0)
        return 0;
    /* "listen '...': bad port" reads "[http] listen '...': bad port". */
    const char *msg = strncmp(why, "listen ", 7) == 0 ? why + 7 : why;
    nova__config_diag_key(diag, nova__config_origin(cfg, "http", "listen"), "http", "listen", "%s",
                          msg);
    return 1;
}

/* The location of a [redis] problem: the url's for "redis url ...", the
 * key's for "[redis] KEY ...". */
static const struct nova__config_origin *redis_origin(const struct nova__config *cfg,
                                                      const char *msg)
{
    char key[64];
    if (strncmp(msg, "redis url", 9) == 0)
        return nova__config_origin(cfg, "redis", "url");
    if (strncmp(msg, "[redis] ", 8) != 0)
        return NULL;
    size_t n = strcspn(msg + 8, " :,");
    if (n == 0 || n >= sizeof key)
        return NULL;
    memcpy(key, msg + 8, n);
    key[n] = '\0';
    return nova__config_origin(cfg, "redis", key);
}

static int check_redis(const struct nova__config *cfg, struct nova__config_diag *diag)
{
    char why[512], where[PATH_MAX + 64];
    struct nova__redis_target target;
    /* A [redis] key already rejected by the loader would only be reported twice. */
    static const char *const keys[] = {"url",           "password",         "tls_ca_file",
                                       "tls_cert_file", "tls_key_file",     "sentinels",
                                       "cluster_nodes", "sentinel_password"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const struct nova__config_origin *o = nova__config_origin(cfg, "redis", keys[i]);
        if (o != NULL && o->invalid)
            return 0;
    }
    if (nova__redis_target_from_config(&cfg->redis, &target, why, sizeof why) == 0) {
        nova__redis_target_free(&target);
        return 0;
    }
    const struct nova__config_origin *o = redis_origin(cfg, why);
    if (o != NULL && (o->source == NOVA__CONFIG_FILE || o->source == NOVA__CONFIG_KEY_FILE))
        nova__config_diag_add(diag, "%s:%d: %s", o->file, o->line, why);
    else if (o != NULL && o->source != NOVA__CONFIG_DEFAULT && o->source != NOVA__CONFIG_UNSET)
        nova__config_diag_add(diag, "%s: %s", nova__config_origin_text(o, where, sizeof where),
                              why);
    else
        nova__config_diag_add(diag, "%s", why);
    return 1;
}

int nova__config_check_values(const struct nova__config *cfg, struct nova__config_diag *diag)
{
    return check_redis(cfg, diag) + check_listen(cfg, diag) + check_strkeys(cfg, diag);
}
