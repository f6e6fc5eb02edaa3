/*
 * stellar_amount - decimal amounts <-> int64 stroops, exactly.
 *
 * 1 unit (XLM, NOVA...) = 10^7 stroops. Parsing uses integer arithmetic
 * only: "250.75" is 2507500000, never a double. Accepted text: one or
 * more digits, optionally followed by '.' and 1 to 7 digits. Rejected with
 * a reason: empty, a sign (negative amounts are named as such), spaces,
 * exponents or other junk, more than 7 decimal places (even zeros:
 * "1.00000000" is ambiguous input, not a rounding question), values above
 * INT64_MAX stroops (922337203685.4775807), and zero unless
 * NOVA_AMOUNT_ALLOW_ZERO is given.
 */
#ifndef NOVA_RUNTIME_STELLAR_AMOUNT_H
#define NOVA_RUNTIME_STELLAR_AMOUNT_H

#include <stddef.h>
#include <stdint.h>
#include "nova/stellar.h"

#define NOVA__STROOPS_PER_UNIT 10000000

/* Returns 0 or -EINVAL (reason in err); *out is set only on success. */
int nova__amount_parse(const char *text, unsigned flags, int64_t *out, char *err, size_t errlen);

/* Canonical form, always 7 decimals ("12.5000000", "-0.0000001"); len must
 * be >= NOVA_AMOUNT_MAX. Returns the length or -ENOSPC. */
int nova__amount_format(int64_t stroops, char *buf, size_t len);

#endif
