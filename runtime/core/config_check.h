/*
 * config_check - the values `nova-worker check` validates beyond what the
 * config loader (common/conf.c) knows, with the very parsers `run` applies
 * to them when it opens its services: [redis] as the queue engine reads it
 * (URL, TLS files, Sentinel, Cluster), [http] listen as the operations
 * endpoint parses it, [stellar] asset_issuer and distribution_secret with
 * the StrKey decoder (version byte, length and checksum).
 *
 * Every problem is appended to diag as "FILE:LINE: message", or naming the
 * environment variable or credential the value came from. A secret's value
 * is never part of a message.
 */
#ifndef NOVA_RUNTIME_CONFIG_CHECK_H
#define NOVA_RUNTIME_CONFIG_CHECK_H

struct nova__config;
struct nova__config_diag;

/* Returns how many problems were found (0 = all valid). */
int nova__config_check_values(const struct nova__config *cfg, struct nova__config_diag *diag);

#endif
