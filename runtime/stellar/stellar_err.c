#include "config.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "stellar/stellar_err.h"

int nova__stellar_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void nova__stellar_err_prefix(char *err, size_t errlen, const char *prefix)
{
    if (err == NULL || errlen == 0)
        return;
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", err);
    snprintf(err, errlen, "%s: %s", prefix, tmp);
}
