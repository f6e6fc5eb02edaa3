/* libFuzzer target: ScVal decoding. Whatever decodes must print as JSON
 * that parses back; everything else must be an error, never a crash.
 *
 * fuzz-sources: runtime/stellar/stellar_err.c runtime/stellar/stellar_strkey.c
 * fuzz-sources: runtime/stellar/stellar_xdr.c runtime/stellar/stellar_scval.c
 * fuzz-packages: libsodium libcjson
 */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "stellar/stellar_scval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    cJSON *json = NULL;
    char err[200];
    if (nova__scval_decode(copy, size, &json, err, sizeof(err)) == 0) {
        char *text = cJSON_PrintUnformatted(json);
        if (text == NULL)
            abort();
        cJSON *back = cJSON_Parse(text);
        if (back == NULL || !cJSON_Compare(json, back, 1))
            abort();
        cJSON_Delete(back);
        free(text);
        cJSON_Delete(json);
    } else if (json != NULL) {
        abort(); /* errors leave nothing behind */
    }
    free(copy);
    return 0;
}
