/* libFuzzer target: amount parsing. Whatever parses must format to the
 * canonical text, which parses back to the same number of stroops.
 *
 * fuzz-sources: runtime/stellar/stellar_err.c runtime/stellar/stellar_amount.c
 * fuzz-packages: libsodium libcjson
 */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "stellar/stellar_amount.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[64], buf[NOVA_AMOUNT_MAX], err[200];
    if (size >= sizeof(text))
        size = sizeof(text) - 1;
    memcpy(text, data, size);
    text[size] = '\0';
    int64_t v, back;
    if (nova__amount_parse(text, NOVA_AMOUNT_ALLOW_ZERO, &v, err, sizeof(err)) == 0) {
        if (v < 0 || nova__amount_format(v, buf, sizeof(buf)) < 0)
            abort();
        if (nova__amount_parse(buf, NOVA_AMOUNT_ALLOW_ZERO, &back, err, sizeof(err)) != 0 ||
            back != v)
            abort();
    }
    return 0;
}
