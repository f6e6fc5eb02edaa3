#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "stellar/stellar_amount.h"
#include "stellar/stellar_err.h"

#define AMOUNT_DECIMALS 7

int nova__amount_parse(const char *text, unsigned flags, int64_t *out, char *err, size_t errlen)
{
    if (text == NULL || text[0] == '\0')
        return nova__stellar_fail(err, errlen, -EINVAL, "amount is empty");
    if (text[0] == '-')
        return nova__stellar_fail(err, errlen, -EINVAL, "amount \"%.40s\" is negative", text);

    const char *p = text;
    uint64_t units = 0;
    size_t int_digits = 0;
    const uint64_t max_units = (uint64_t)INT64_MAX / NOVA__STROOPS_PER_UNIT;
    for (; *p >= '0' && *p <= '9'; p++, int_digits++) {
        units = units * 10 + (uint64_t)(*p - '0');
        if (units > max_units)
            return nova__stellar_fail(err, errlen, -EINVAL,
                                      "amount \"%.40s\" is too large (max 922337203685.4775807)",
                                      text);
    }
    if (int_digits == 0)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "amount \"%.40s\" must start with a digit (like 12.5)", text);
    uint64_t frac = 0;
    size_t frac_digits = 0;
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++, frac_digits++) {
            if (frac_digits == AMOUNT_DECIMALS)
                return nova__stellar_fail(err, errlen, -EINVAL,
                                          "amount \"%.40s\" has more than 7 decimal places", text);
            frac = frac * 10 + (uint64_t)(*p - '0');
        }
        if (frac_digits == 0)
            return nova__stellar_fail(err, errlen, -EINVAL,
                                      "amount \"%.40s\" has no digits after '.'", text);
    }
    if (*p != '\0')
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "amount \"%.40s\" is not a decimal number (unexpected '%c')",
                                  text, *p);
    for (size_t i = frac_digits; i < AMOUNT_DECIMALS; i++)
        frac *= 10;
    uint64_t stroops = units * NOVA__STROOPS_PER_UNIT;
    if (stroops > (uint64_t)INT64_MAX - frac)
        return nova__stellar_fail(err, errlen, -EINVAL,
                                  "amount \"%.40s\" is too large (max 922337203685.4775807)", text);
    stroops += frac;
    if (stroops == 0 && !(flags & NOVA_AMOUNT_ALLOW_ZERO))
        return nova__stellar_fail(err, errlen, -EINVAL, "amount must be greater than zero");
    *out = (int64_t)stroops;
    return 0;
}

int nova__amount_format(int64_t stroops, char *buf, size_t len)
{
    /* Work on the magnitude as unsigned so INT64_MIN does not overflow. */
    uint64_t mag = stroops < 0 ? (uint64_t)0 - (uint64_t)stroops : (uint64_t)stroops;
    int n = snprintf(buf, len, "%s%llu.%07llu", stroops < 0 ? "-" : "",
                     (unsigned long long)(mag / NOVA__STROOPS_PER_UNIT),
                     (unsigned long long)(mag % NOVA__STROOPS_PER_UNIT));
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return n;
}
