/* libFuzzer target: StrKey decoding. Whatever decodes must re-encode to
 * exactly the same text (there is one spelling per key).
 *
 * fuzz-sources: runtime/stellar/stellar_err.c runtime/stellar/stellar_strkey.c
 * fuzz-packages: libsodium libcjson
 */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "stellar/stellar_strkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[160];
    if (size >= sizeof(text))
        size = sizeof(text) - 1;
    memcpy(text, data, size);
    text[size] = '\0';
    uint8_t payload[NOVA__STRKEY_PAYLOAD_MAX];
    size_t len;
    enum nova_strkey_type type;
    char err[200], again[NOVA_STRKEY_MAX];
    if (nova__strkey_decode(text, NOVA_STRKEY_ANY, &type, payload, sizeof(payload), &len, err,
                            sizeof(err)) == 0) {
        if (nova__strkey_encode(type, payload, len, again, sizeof(again)) < 0 ||
            strcmp(again, text) != 0)
            abort();
    }
    struct nova__muxed_account m;
    if (nova__strkey_decode_muxed(text, &m, err, sizeof(err)) == 0) {
        if (nova__strkey_encode_muxed(&m, again, sizeof(again)) < 0 || strcmp(again, text) != 0)
            abort();
    }
    return 0;
}
