/*
 * stellar_err - the error-message convention of the Stellar modules.
 *
 * Every function that can reject input takes (char *err, size_t errlen)
 * and writes one line naming what was wrong. err may be NULL.
 */
#ifndef NOVA_RUNTIME_STELLAR_ERR_H
#define NOVA_RUNTIME_STELLAR_ERR_H

#include <stddef.h>
#include "nova/plugin.h"

/* Formats the message into err (when err && errlen) and returns rc, so
 * callers can write `return nova__stellar_fail(err, errlen, -EINVAL, ...)`. */
int nova__stellar_fail(char *err, size_t errlen, int rc, const char *fmt, ...) NOVA_PRINTF(4, 5);

/* Prefixes the message already in err with "prefix: " (truncating). */
void nova__stellar_err_prefix(char *err, size_t errlen, const char *prefix);

#endif
