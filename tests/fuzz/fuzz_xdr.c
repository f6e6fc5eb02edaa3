/* libFuzzer target: TransactionResult and TransactionEnvelope decoding
 * (raw and base64), base64 itself and the bounded XDR reader. Malformed
 * input must be an error, never a crash or an over-read (ASan watches).
 *
 * fuzz-sources: runtime/stellar/stellar_err.c runtime/stellar/stellar_strkey.c
 * fuzz-sources: runtime/stellar/stellar_xdr.c runtime/stellar/stellar_tx.c
 * fuzz-packages: libsodium libcjson
 */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "nova/stellar.h"
#include "stellar/stellar_tx.h"
#include "stellar/stellar_xdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct nova_stellar_tx_result res;
    char err[200];
    /* An exact-size heap copy so ASan catches a read one byte too far. */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    if (nova__stellar_result_decode(copy, size, &res, err, sizeof(err)) == 0) {
        if (res.op_count > NOVA_STELLAR_MAX_OPS || res.name == NULL)
            abort();
        for (size_t i = 0; i < res.op_count; i++)
            if (res.ops[i].name == NULL)
                abort();
    }

    /* Envelopes: whatever decodes re-encodes to exactly the input. */
    struct nova__stellar_envelope env;
    if (nova__stellar_envelope_decode(copy, size, &env, err, sizeof(err)) == 0) {
        struct nova__xdr_writer w = {0}, t = {0};
        nova__stellar_envelope_encode(env.tx_xdr, env.tx_len, env.sigs, env.sig_count, &w);
        if (nova__stellar_tx_encode(&env.tx, &t, err, sizeof(err)) != 0 || w.len != size ||
            memcmp(w.data, copy, size) != 0 || t.len != env.tx_len ||
            memcmp(t.data, env.tx_xdr, t.len) != 0)
            abort();
        nova__xdr_free(&w);
        nova__xdr_free(&t);
        nova__stellar_envelope_free(&env);
    }

    /* The same bytes as base64 text. */
    char *text = malloc(size + 1);
    if (text != NULL) {
        memcpy(text, data, size);
        text[size] = '\0';
        (void)nova__stellar_result_decode_b64(text, &res, err, sizeof(err));
        uint8_t *raw;
        size_t len;
        if (nova__b64_decode(text, &raw, &len) == 0) {
            char *again = nova__b64_encode(raw, len);
            if (again == NULL || strcmp(again, text) != 0)
                abort(); /* strict decoding means one spelling */
            free(again);
            free(raw);
        }
        free(text);
    }

    /* Drive the reader with the input as a script of reads. */
    struct nova__xdr_reader r;
    nova__xdr_reader_init(&r, copy, size);
    for (size_t i = 0; i < size && nova__xdr_remaining(&r) > 0; i++) {
        const uint8_t *p;
        uint32_t n, u32;
        uint64_t u64;
        bool b;
        switch (copy[i] % 5) {
        case 0:
            nova__xdr_get_u32(&r, &u32);
            break;
        case 1:
            nova__xdr_get_u64(&r, &u64);
            break;
        case 2:
            nova__xdr_get_bool(&r, &b);
            break;
        case 3:
            nova__xdr_get_fixed(&r, copy[i] % 37, &p);
            break;
        default:
            if (nova__xdr_get_var(&r, 64, &p, &n) == 0 && (p + n > copy + size))
                abort();
            break;
        }
        if (r.off > r.len)
            abort();
    }
    free(copy);
    return 0;
}
