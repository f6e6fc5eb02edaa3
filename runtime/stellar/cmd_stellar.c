#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <uv.h>
#include <sodium.h>
#include "stellar/cmd_stellar.h"
#include "common/conf.h"
#include "stellar/stellar.h"
#include "stellar/stellar_amount.h"
#include "http/svc_http.h"
#include "stellar/stellar_scval.h"
#include "stellar/stellar_strkey.h"
#include "stellar/stellar_tx.h"

#define EXIT_USAGE 2

struct subcommand {
    const char *name;
    int (*run)(const struct nova__config *cfg, int argc, char **argv);
    const char *summary;
};

static int usage_error(const char *cmd, const char *fmt, ...) NOVA_PRINTF(2, 3);
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nova-worker stellar %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see nova-worker stellar %s --help)\n", cmd);
    return EXIT_USAGE;
}

static int failure(const char *cmd, const char *fmt, ...) NOVA_PRINTF(2, 3);
static int failure(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nova-worker stellar %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAILURE;
}

/* Matches "--name value" and "--name=value"; advances *i past the value.
 * Returns 1 on a match with *value set, 0 when arg is another option, -1
 * when the value is missing. */
static int option(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

static bool parse_u64(const char *text, uint64_t max, uint64_t *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return false;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Reads a secret seed file: the S... key, surrounding whitespace ignored. */
static int read_secret_file(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    char buf[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -errno;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            sodium_memzero(buf, sizeof(buf));
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == sizeof(buf) - 1)
            break;
    }
    close(fd);
    buf[n] = '\0';
    char *s = buf;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t len = strlen(s);
    while (len > 0 &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    int rc = 0;
    if (len == 0 || len >= outlen) {
        snprintf(err, errlen, "%s does not hold one secret seed (S...)", path);
        rc = -EINVAL;
    } else {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

static void sign_payment_help(FILE *f)
{
    fputs("Usage: nova-worker stellar sign-payment [OPTIONS] --pay DEST:AMOUNT...\n"
          "\n"
          "Builds a v1 transaction of payment operations, signs it with the source\n"
          "secret and prints two lines: the signed envelope (base64, ready for\n"
          "POST /transactions) and the transaction hash (hex). Nothing is sent.\n"
          "\n"
          "  --network-passphrase P   network passphrase, e.g.\n"
          "                           \"Test SDF Network ; September 2015\"\n"
          "                           (default: [stellar] network of the config)\n"
          "  --source-secret-file F   file holding the source account's S... seed; the\n"
          "                           transaction source is its G... account\n"
          "                           (default: [stellar] distribution secret)\n"
          "  --sequence N             the transaction's sequence number: the account's\n"
          "                           current sequence + 1 (required)\n"
          "  --fee N                  maximum total fee in stroops for the whole\n"
          "                           transaction (default: base fee x payments,\n"
          "                           base fee 100 or [stellar] base_fee)\n"
          "  --min-time T             earliest ledger close time, unix seconds (default 0)\n"
          "  --max-time T             latest ledger close time, unix seconds (required)\n"
          "  --memo-text TEXT         text memo, at most 28 bytes\n"
          "  --asset CODE:ISSUER      the asset paid, or `native` for XLM\n"
          "                           (default: [stellar] asset_code/asset_issuer)\n"
          "  --pay DEST:AMOUNT        one payment: G... or M... destination and a decimal\n"
          "                           amount with up to 7 places; repeat for up to 100\n"
          "  -h, --help               this help\n",
          f);
}

static int cmd_sign_payment(const struct nova__config *cfg, int argc, char **argv)
{
    static const char *const cmd = "sign-payment";
    const char *passphrase = NULL, *secret_file = NULL, *memo = NULL, *asset = NULL;
    const char *seq_text = NULL, *fee_text = NULL, *min_text = NULL, *max_text = NULL;
    struct nova_stellar_payment pays[NOVA_STELLAR_MAX_OPS];
    char *dests[NOVA_STELLAR_MAX_OPS];
    size_t npay = 0;
    int rc = EXIT_USAGE;
    char asset_buf[96];
    char secret[128] = "";
    char err[320];

    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            sign_payment_help(stdout);
            rc = 0;
            goto out;
        }
#define OPT(name, var)                                                                             \
    if ((m = option(argc, argv, &i, name, &v)) != 0) {                                             \
        if (m < 0) {                                                                               \
            rc = usage_error(cmd, "%s needs a value", name);                                       \
            goto out;                                                                              \
        }                                                                                          \
        var = v;                                                                                   \
        continue;                                                                                  \
    }
        OPT("--network-passphrase", passphrase)
        OPT("--source-secret-file", secret_file)
        OPT("--sequence", seq_text)
        OPT("--fee", fee_text)
        OPT("--min-time", min_text)
        OPT("--max-time", max_text)
        OPT("--memo-text", memo)
        OPT("--asset", asset)
#undef OPT
        if ((m = option(argc, argv, &i, "--pay", &v)) != 0) {
            if (m < 0) {
                rc = usage_error(cmd, "--pay needs a value");
                goto out;
            }
            if (npay == NOVA_STELLAR_MAX_OPS) {
                rc = usage_error(cmd, "more than 100 --pay options (one transaction holds at "
                                      "most 100 operations)");
                goto out;
            }
            const char *colon = strrchr(v, ':');
            if (colon == NULL) {
                rc = usage_error(cmd, "--pay %zu \"%s\": expected DEST:AMOUNT", npay + 1, v);
                goto out;
            }
            dests[npay] = strndup(v, (size_t)(colon - v));
            if (dests[npay] == NULL) {
                rc = failure(cmd, "out of memory");
                goto out;
            }
            memset(&pays[npay], 0, sizeof(pays[npay]));
            pays[npay].destination = dests[npay];
            npay++;
            if (nova__strkey_decode_muxed(dests[npay - 1], &(struct nova__muxed_account){0}, err,
                                          sizeof(err)) < 0) {
                rc = usage_error(cmd, "--pay %zu: destination: %s", npay, err);
                goto out;
            }
            if (nova__amount_parse(colon + 1, 0, &pays[npay - 1].amount, err, sizeof(err)) < 0) {
                rc = usage_error(cmd, "--pay %zu: %s", npay, err);
                goto out;
            }
            continue;
        }
        rc = usage_error(cmd, "unknown argument \"%s\"", argv[i]);
        goto out;
    }

    /* Defaults from the config when one was loaded. */
    if (passphrase == NULL && cfg != NULL && cfg->stellar.network_passphrase != NULL)
        passphrase = cfg->stellar.network_passphrase;
    if (asset == NULL && cfg != NULL && cfg->stellar.asset_code != NULL &&
        cfg->stellar.asset_issuer != NULL) {
        snprintf(asset_buf, sizeof(asset_buf), "%s:%s", cfg->stellar.asset_code,
                 cfg->stellar.asset_issuer);
        asset = asset_buf;
    }
    if (passphrase == NULL || passphrase[0] == '\0') {
        rc = usage_error(cmd, "--network-passphrase is required");
        goto out;
    }
    if (asset == NULL) {
        rc = usage_error(cmd, "--asset is required (CODE:ISSUER or native)");
        goto out;
    }
    struct nova__stellar_asset parsed_asset;
    if (nova__stellar_asset_parse(asset, &parsed_asset, err, sizeof(err)) < 0) {
        rc = usage_error(cmd, "--asset: %s", err);
        goto out;
    }
    if (npay == 0) {
        rc = usage_error(cmd, "at least one --pay DEST:AMOUNT is required");
        goto out;
    }
    uint64_t seq = 0, fee = 0, min_time = 0, max_time = 0;
    if (seq_text == NULL) {
        rc = usage_error(cmd, "--sequence is required (the account's sequence + 1)");
        goto out;
    }
    if (!parse_u64(seq_text, INT64_MAX, &seq) || seq == 0) {
        rc = usage_error(cmd, "--sequence \"%s\" is not a positive 64-bit integer", seq_text);
        goto out;
    }
    if (fee_text != NULL) {
        if (!parse_u64(fee_text, UINT32_MAX, &fee)) {
            rc = usage_error(cmd, "--fee \"%s\" is not a number of stroops (0 to 4294967295)",
                             fee_text);
            goto out;
        }
    } else {
        uint64_t base =
            (cfg != NULL && cfg->stellar.base_fee > 0) ? (uint64_t)cfg->stellar.base_fee : 100;
        fee = base * npay;
        if (fee > UINT32_MAX) {
            rc = usage_error(cmd, "the default fee overflows; pass --fee");
            goto out;
        }
    }
    if (min_text != NULL && !parse_u64(min_text, UINT64_MAX, &min_time)) {
        rc = usage_error(cmd, "--min-time \"%s\" is not a unix time in seconds", min_text);
        goto out;
    }
    if (max_text == NULL) {
        rc = usage_error(cmd, "--max-time is required (unix seconds): it bounds how long the "
                              "transaction can be applied");
        goto out;
    }
    if (!parse_u64(max_text, UINT64_MAX, &max_time) || max_time == 0) {
        rc = usage_error(cmd, "--max-time \"%s\" is not a positive unix time in seconds", max_text);
        goto out;
    }
    if (min_time > max_time) {
        rc = usage_error(cmd, "--min-time is after --max-time");
        goto out;
    }
    if (memo != NULL && strlen(memo) > NOVA_STELLAR_MEMO_TEXT_MAX) {
        rc = usage_error(cmd, "--memo-text is %zu bytes, at most 28 are allowed", strlen(memo));
        goto out;
    }
    if (secret_file != NULL) {
        if (read_secret_file(secret_file, secret, sizeof(secret), err, sizeof(err)) < 0) {
            rc = usage_error(cmd, "--source-secret-file: %s", err);
            goto out;
        }
    } else if (cfg != NULL && cfg->stellar.distribution_secret != NULL) {
        snprintf(secret, sizeof(secret), "%s", cfg->stellar.distribution_secret);
    } else {
        rc = usage_error(cmd, "--source-secret-file is required");
        goto out;
    }
    if (nova__stellar_offline_api.strkey_validate(secret, NOVA_STRKEY_SEED, err, sizeof(err)) < 0) {
        /* The message never echoes the secret itself. */
        rc = usage_error(cmd, "--source-secret-file: %s", err);
        goto out;
    }

    const char *signers[1] = {secret};
    struct nova_stellar_payment_tx tx = {
        .struct_size = sizeof(tx),
        .network_passphrase = passphrase,
        .fee = (uint32_t)fee,
        .seq_num = (int64_t)seq,
        .min_time = min_time,
        .max_time = max_time,
        .memo_type = memo ? NOVA_MEMO_TEXT : NOVA_MEMO_NONE,
        .memo_text = memo,
        .asset = asset,
        .payments = pays,
        .payment_count = npay,
        .signer_secrets = signers,
        .signer_count = 1,
    };
    struct nova_stellar_signed_tx out;
    if (nova__stellar_build_payment(&tx, &out, err, sizeof(err)) < 0) {
        rc = failure(cmd, "%s", err);
        goto out;
    }
    printf("%s\n%s\n", out.envelope_b64, out.hash_hex);
    nova__stellar_signed_tx_free(&out);
    rc = fflush(stdout) == 0 ? 0 : failure(cmd, "cannot write the output: %s", strerror(errno));
out:
    sodium_memzero(secret, sizeof(secret));
    for (size_t k = 0; k < npay; k++)
        free(dests[k]);
    return rc;
}

static int print_json(const char *cmd, cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    if (text == NULL)
        return failure(cmd, "out of memory");
    printf("%s\n", text);
    free(text);
    return fflush(stdout) == 0 ? 0 : failure(cmd, "cannot write the output");
}

/* The JSON form of a TransactionResult mirrors Horizon's result_codes. */
static cJSON *result_json(const struct nova_stellar_tx_result *res)
{
    char fee[32];
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    snprintf(fee, sizeof(fee), "%" PRId64, res->fee_charged);
    cJSON_AddStringToObject(o, "fee_charged", fee);
    cJSON_AddStringToObject(o, "transaction", res->name);
    cJSON_AddNumberToObject(o, "code", res->code);
    if (res->has_inner) {
        char hex[65];
        nova__hex_encode(res->inner_hash, 32, hex);
        cJSON_AddStringToObject(o, "inner_transaction", res->inner_name);
        cJSON_AddStringToObject(o, "inner_hash", hex);
    }
    if (res->op_count > 0 || res->code == 0 || res->code == -1 || res->inner_code == 0 ||
        res->inner_code == -1) {
        cJSON *ops = cJSON_AddArrayToObject(o, "operations");
        for (size_t i = 0; ops && i < res->op_count; i++)
            cJSON_AddItemToArray(ops, cJSON_CreateString(res->ops[i].name));
    }
    return o;
}

static int cmd_decode_result(const struct nova__config *cfg, int argc, char **argv)
{
    static const char *const cmd = "decode-result";
    char err[256];
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        puts("Usage: nova-worker stellar decode-result RESULT_XDR_BASE64\n"
             "Prints the TransactionResult as JSON: fee_charged, transaction (tx_...),\n"
             "operations (op_...), like Horizon's result_codes.");
        return 0;
    }
    if (argc != 2)
        return usage_error(cmd, "expected one base64 TransactionResult");
    struct nova_stellar_tx_result *res = malloc(sizeof(*res));
    if (res == NULL)
        return failure(cmd, "out of memory");
    if (nova__stellar_result_decode_b64(argv[1], res, err, sizeof(err)) < 0) {
        free(res);
        return failure(cmd, "%s", err);
    }
    cJSON *json = result_json(res);
    free(res);
    if (json == NULL)
        return failure(cmd, "out of memory");
    return print_json(cmd, json);
}

static void add_muxed(cJSON *o, const char *key, const struct nova__muxed_account *a)
{
    char text[NOVA_STRKEY_MAX];
    nova__strkey_encode_muxed(a, text, sizeof(text));
    cJSON_AddStringToObject(o, key, text);
}

/* Which key made a signature: the transaction source or an operation
 * source whose hint matches and whose key verifies it. */
static bool signed_by(const struct nova__stellar_signature *sig, const uint8_t key[32],
                      const uint8_t hash[32])
{
    return memcmp(sig->hint, key + 28, 4) == 0 &&
           crypto_sign_verify_detached(sig->sig, hash, 32, key) == 0;
}

static cJSON *envelope_json(const struct nova__stellar_envelope *env, const char *passphrase)
{
    const struct nova__stellar_tx *tx = &env->tx;
    char num[32], hex[65];
    uint8_t hash[32];
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    if (passphrase != NULL) {
        nova__stellar_tx_hash(passphrase, env->tx_xdr, env->tx_len, hash);
        nova__hex_encode(hash, 32, hex);
        cJSON_AddStringToObject(o, "hash", hex);
    }
    add_muxed(o, "source", &tx->source);
    cJSON_AddNumberToObject(o, "fee", tx->fee);
    snprintf(num, sizeof(num), "%" PRId64, tx->seq_num);
    cJSON_AddStringToObject(o, "sequence", num);
    if (tx->has_time_bounds) {
        cJSON *tb = cJSON_AddObjectToObject(o, "time_bounds");
        snprintf(num, sizeof(num), "%" PRIu64, tx->min_time);
        cJSON_AddStringToObject(tb, "min_time", num);
        snprintf(num, sizeof(num), "%" PRIu64, tx->max_time);
        cJSON_AddStringToObject(tb, "max_time", num);
    } else {
        cJSON_AddNullToObject(o, "time_bounds");
    }
    cJSON *memo = cJSON_AddObjectToObject(o, "memo");
    static const char *const memo_types[] = {"none", "text", "id", "hash", "return"};
    cJSON_AddStringToObject(memo, "type", memo_types[tx->memo.type]);
    if (tx->memo.type == NOVA_MEMO_TEXT) {
        char text[NOVA_STELLAR_MEMO_TEXT_MAX + 1];
        memcpy(text, tx->memo.text, tx->memo.text_len);
        text[tx->memo.text_len] = '\0';
        if (strlen(text) == tx->memo.text_len) {
            cJSON_AddStringToObject(memo, "value", text);
        } else {
            nova__hex_encode(tx->memo.text, tx->memo.text_len, hex);
            cJSON_AddStringToObject(memo, "value_hex", hex);
        }
    } else if (tx->memo.type == NOVA_MEMO_ID) {
        snprintf(num, sizeof(num), "%" PRIu64, tx->memo.id);
        cJSON_AddStringToObject(memo, "value", num);
    } else if (tx->memo.type != NOVA_MEMO_NONE) {
        nova__hex_encode(tx->memo.hash, 32, hex);
        cJSON_AddStringToObject(memo, "value", hex);
    }
    cJSON *ops = cJSON_AddArrayToObject(o, "operations");
    for (size_t i = 0; i < tx->op_count; i++) {
        const struct nova__stellar_payment_op *op = &tx->ops[i];
        cJSON *j = cJSON_CreateObject();
        char amount[NOVA_AMOUNT_MAX], issuer[NOVA_STRKEY_MAX], asset[NOVA_STRKEY_MAX + 14];
        cJSON_AddItemToArray(ops, j);
        cJSON_AddStringToObject(j, "type", "payment");
        if (op->has_source)
            add_muxed(j, "source", &op->source);
        add_muxed(j, "destination", &op->destination);
        if (op->asset.type == NOVA__ASSET_NATIVE) {
            cJSON_AddStringToObject(j, "asset", "native");
        } else {
            nova__strkey_encode(NOVA_STRKEY_ACCOUNT, op->asset.issuer, 32, issuer, sizeof(issuer));
            snprintf(asset, sizeof(asset), "%s:%s", op->asset.code, issuer);
            cJSON_AddStringToObject(j, "asset", asset);
        }
        nova__amount_format(op->amount, amount, sizeof(amount));
        cJSON_AddStringToObject(j, "amount", amount);
    }
    cJSON *sigs = cJSON_AddArrayToObject(o, "signatures");
    for (size_t i = 0; i < env->sig_count; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToArray(sigs, j);
        nova__hex_encode(env->sigs[i].hint, 4, hex);
        cJSON_AddStringToObject(j, "hint", hex);
        if (passphrase == NULL)
            continue;
        const uint8_t *signer = NULL;
        if (signed_by(&env->sigs[i], tx->source.key, hash))
            signer = tx->source.key;
        for (size_t k = 0; signer == NULL && k < tx->op_count; k++)
            if (tx->ops[k].has_source && signed_by(&env->sigs[i], tx->ops[k].source.key, hash))
                signer = tx->ops[k].source.key;
        if (signer != NULL) {
            char g[NOVA_STRKEY_MAX];
            nova__strkey_encode(NOVA_STRKEY_ACCOUNT, signer, 32, g, sizeof(g));
            cJSON_AddStringToObject(j, "signer", g);
        } else {
            cJSON_AddNullToObject(j, "signer");
        }
    }
    return o;
}

static int cmd_decode_envelope(const struct nova__config *cfg, int argc, char **argv)
{
    static const char *const cmd = "decode-envelope";
    const char *passphrase = NULL, *b64 = NULL;
    char err[256];
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            puts("Usage: nova-worker stellar decode-envelope [--network-passphrase P] "
                 "ENVELOPE_BASE64\n"
                 "Prints a v1 envelope of payments as JSON. With the passphrase (or the\n"
                 "config's network) it adds the transaction hash and, per signature, the\n"
                 "source account whose key verifies it (null when none does).");
            return 0;
        }
        if ((m = option(argc, argv, &i, "--network-passphrase", &v)) != 0) {
            if (m < 0)
                return usage_error(cmd, "--network-passphrase needs a value");
            passphrase = v;
            continue;
        }
        if (argv[i][0] == '-' || b64 != NULL)
            return usage_error(cmd, "unexpected argument \"%s\"", argv[i]);
        b64 = argv[i];
    }
    if (b64 == NULL)
        return usage_error(cmd, "expected one base64 TransactionEnvelope");
    if (passphrase == NULL && cfg != NULL)
        passphrase = cfg->stellar.network_passphrase;
    if (sodium_init() < 0)
        return failure(cmd, "libsodium could not be initialised");
    uint8_t *raw;
    size_t len;
    if (nova__b64_decode(b64, &raw, &len) < 0)
        return failure(cmd, "the envelope is not valid base64");
    struct nova__stellar_envelope env;
    if (nova__stellar_envelope_decode(raw, len, &env, err, sizeof(err)) < 0) {
        free(raw);
        return failure(cmd, "%s", err);
    }
    cJSON *json = envelope_json(&env, passphrase);
    nova__stellar_envelope_free(&env);
    free(raw);
    if (json == NULL)
        return failure(cmd, "out of memory");
    return print_json(cmd, json);
}

static int cmd_decode_scval(const struct nova__config *cfg, int argc, char **argv)
{
    static const char *const cmd = "decode-scval";
    char err[256];
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        puts("Usage: nova-worker stellar decode-scval SCVAL_XDR_BASE64...\n"
             "Prints each ScVal (a getEvents topic or value) as JSON, one per line.");
        return 0;
    }
    if (argc < 2)
        return usage_error(cmd, "expected one or more base64 ScVals");
    for (int i = 1; i < argc; i++) {
        cJSON *json;
        if (nova__scval_decode_b64(argv[i], &json, err, sizeof(err)) < 0)
            return failure(cmd, "argument %d: %s", i, err);
        int rc = print_json(cmd, json);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- check: the [stellar] section against the live network -------------- */

/* Stellar's base reserve (protocol constant since 2019): 0.5 XLM. */
#define BASE_RESERVE_STROOPS 5000000

struct check {
    const struct nova__config *cfg;
    const struct nova__svc_http *m; /* the HTTP module: both clients */
    uv_loop_t loop;
    struct nova__http_client *http;
    struct nova__stellar_client *sc;
    int errors;
    int step;
    bool issuer_ok, dist_ok;
    char dist[NOVA_STRKEY_MAX];
};

static void check_line(struct check *ck, bool ok, const char *fmt, ...) NOVA_PRINTF(3, 4);
static void check_line(struct check *ck, bool ok, const char *fmt, ...)
{
    va_list ap;
    fputs(ok ? "ok: " : "error: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    if (!ok)
        ck->errors++;
}

static void check_next(struct check *ck);

static void check_root(void *arg, const struct nova_stellar_status *st,
                       const struct nova_stellar_ledger *l)
{
    struct check *ck = arg;
    const struct nova__stellar_config *s = &ck->cfg->stellar;
    if (st->error != 0) {
        check_line(ck, false, "Horizon %s: %s", s->horizon_url, st->message);
    } else if (strcmp(l->network_passphrase, s->network_passphrase) != 0) {
        check_line(ck, false,
                   "Horizon %s serves the network \"%s\", but [stellar] network is \"%s\"",
                   s->horizon_url, l->network_passphrase, s->network_passphrase);
    } else {
        check_line(ck, true, "Horizon %s serves \"%s\" (latest ledger %" PRIu32 ")", s->horizon_url,
                   l->network_passphrase, l->sequence);
    }
    check_next(ck);
}

static void check_issuer(void *arg, const struct nova_stellar_status *st,
                         const struct nova_stellar_account *a)
{
    struct check *ck = arg;
    const char *issuer = ck->cfg->stellar.asset_issuer;
    if (st->error == -ENOENT)
        check_line(ck, false, "issuer account %s does not exist", issuer);
    else if (st->error != 0)
        check_line(ck, false, "issuer account %s: %s", issuer, st->message);
    else
        check_line(ck, true, "issuer account %s exists", issuer);
    check_next(ck);
}

static void check_distribution(void *arg, const struct nova_stellar_status *st,
                               const struct nova_stellar_account *a)
{
    struct check *ck = arg;
    const struct nova__stellar_config *s = &ck->cfg->stellar;
    char amount[NOVA_AMOUNT_MAX], reserve[NOVA_AMOUNT_MAX];
    if (st->error == -ENOENT) {
        check_line(ck, false, "distribution account %s does not exist (fund it first)", ck->dist);
        check_next(ck);
        return;
    }
    if (st->error != 0) {
        check_line(ck, false, "distribution account %s: %s", ck->dist, st->message);
        check_next(ck);
        return;
    }
    check_line(ck, true, "distribution account %s exists (sequence %" PRId64 ")", ck->dist,
               a->sequence);
    int64_t min = (2 + (int64_t)a->subentry_count) * BASE_RESERVE_STROOPS;
    int64_t margin = 100 * (s->base_fee > 0 ? s->base_fee : 100); /* fees of 100 transactions */
    nova__amount_format(a->native_balance, amount, sizeof(amount));
    nova__amount_format(min, reserve, sizeof(reserve));
    check_line(ck, a->native_balance - min >= margin,
               "distribution account holds %s XLM (minimum balance %s XLM%s)", amount, reserve,
               a->native_balance - min >= margin ? "" : ": not enough left to pay fees");
    const struct nova_stellar_trustline *tl = NULL;
    for (size_t i = 0; i < a->trustline_count; i++)
        if (strcmp(a->trustlines[i].asset_code, s->asset_code) == 0 &&
            strcmp(a->trustlines[i].asset_issuer, s->asset_issuer) == 0)
            tl = &a->trustlines[i];
    if (tl == NULL) {
        check_line(ck, false, "distribution account has no trustline for %s:%s", s->asset_code,
                   s->asset_issuer);
    } else if (!tl->authorized) {
        check_line(ck, false, "distribution account's %s trustline is not authorized by the issuer",
                   s->asset_code);
    } else {
        nova__amount_format(tl->balance, amount, sizeof(amount));
        check_line(ck, tl->balance > 0, "distribution account holds %s %s", amount, s->asset_code);
    }
    check_next(ck);
}

static void check_rpc(void *arg, const struct nova_stellar_status *st,
                      const struct nova_stellar_rpc_health *h)
{
    struct check *ck = arg;
    const char *url = ck->cfg->stellar.soroban_rpc_url;
    if (st->error != 0)
        check_line(ck, false, "Stellar RPC %s: %s", url, st->message);
    else
        check_line(ck, strcmp(h->status, "healthy") == 0,
                   "Stellar RPC %s is %s (latest ledger %" PRIu32 ")", url, h->status,
                   h->latest_ledger);
    check_next(ck);
}

/* Runs the next network step; ends the loop after the last one. */
static void check_next(struct check *ck)
{
    char err[300] = "";
    int rc = 0;
    switch (ck->step++) {
    case 0:
        rc = ck->m->latest_ledger(ck->sc, NULL, check_root, ck, err, sizeof(err));
        break;
    case 1:
        if (!ck->issuer_ok)
            return check_next(ck);
        rc = ck->m->load_account(ck->sc, NULL, ck->cfg->stellar.asset_issuer, check_issuer, ck, err,
                                 sizeof(err));
        break;
    case 2:
        if (!ck->dist_ok)
            return check_next(ck);
        rc = ck->m->load_account(ck->sc, NULL, ck->dist, check_distribution, ck, err, sizeof(err));
        break;
    case 3:
        if (ck->cfg->stellar.soroban_rpc_url == NULL || !ck->cfg->stellar.soroban_rpc_url[0])
            return check_next(ck);
        rc = ck->m->rpc_health(ck->sc, NULL, check_rpc, ck, err, sizeof(err));
        break;
    default:
        ck->m->stellar_close(ck->sc, NULL, NULL);
        ck->m->client_close(ck->http, NULL, NULL);
        ck->sc = NULL;
        ck->http = NULL;
        return;
    }
    if (rc < 0) {
        check_line(ck, false, "cannot start step %d: %s", ck->step, err[0] ? err : strerror(-rc));
        check_next(ck);
    }
}

static void check_help(FILE *f)
{
    fputs("Usage: nova-worker stellar check [-c FILE]\n"
          "\n"
          "Checks the [stellar] section against the network: Horizon serves the\n"
          "configured network passphrase; asset_issuer is a valid account id and the\n"
          "account exists; the distribution account (from distribution_secret) exists,\n"
          "holds XLM above its minimum balance and an authorized trustline for\n"
          "asset_code:asset_issuer with a positive balance; the Stellar RPC (when\n"
          "soroban_rpc_url is set) is healthy. Prints one line per finding, \"ok: ...\"\n"
          "or \"error: ...\"; exits 0 only when every line is ok. Nothing is sent\n"
          "that changes the network.\n",
          f);
}

static int cmd_check(const struct nova__config *cfg, int argc, char **argv)
{
    static const char *const cmd = "check";
    char e[300];
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        check_help(stdout);
        return 0;
    }
    if (argc != 1)
        return usage_error(cmd, "unexpected argument \"%s\"", argv[1]);
    if (cfg == NULL) {
        const char *path =
            getenv("NOVA_WORKER_CONFIG") ? getenv("NOVA_WORKER_CONFIG") : NOVA_CONFIG_FILE;
        printf("error: no configuration: %s does not exist or is not readable (pass -c FILE)\n",
               path);
        return EXIT_FAILURE;
    }
    struct check *ck = calloc(1, sizeof(*ck));
    if (ck == NULL)
        return failure(cmd, "out of memory");
    ck->cfg = cfg;
    const struct nova__stellar_config *s = &cfg->stellar;
    if (s->horizon_url == NULL || s->horizon_url[0] == '\0' || s->network_passphrase == NULL) {
        check_line(ck, false, "[stellar] horizon_url and network must be set");
        free(ck);
        return EXIT_FAILURE;
    }
    if (s->asset_code == NULL || s->asset_code[0] == '\0') {
        check_line(ck, false, "[stellar] asset_code is not set");
    }
    if (s->asset_issuer == NULL || s->asset_issuer[0] == '\0') {
        check_line(ck, false, "[stellar] asset_issuer is not set");
    } else if (nova__strkey_decode32(s->asset_issuer, NOVA_STRKEY_ACCOUNT, (uint8_t[32]){0}, e,
                                     sizeof(e)) < 0) {
        /* The value is not echoed: it might be a seed put in the wrong key. */
        check_line(ck, false, "[stellar] asset_issuer is not an account id: %s", e);
    } else if (s->asset_code != NULL && s->asset_code[0] != '\0') {
        char asset[96];
        struct nova__stellar_asset parsed;
        snprintf(asset, sizeof(asset), "%s:%s", s->asset_code, s->asset_issuer);
        if (nova__stellar_asset_parse(asset, &parsed, e, sizeof(e)) < 0) {
            check_line(ck, false, "[stellar] asset %s: %s", asset, e);
        } else {
            check_line(ck, true, "asset %s (issuer is a valid account id)", asset);
            ck->issuer_ok = true;
        }
    }
    if (s->distribution_secret == NULL || s->distribution_secret[0] == '\0') {
        check_line(ck, false, "[stellar] distribution_secret is not set");
    } else if (nova__stellar_seed_to_account(s->distribution_secret, ck->dist, e, sizeof(e)) < 0) {
        check_line(ck, false, "[stellar] distribution_secret: %s", e); /* never echoes it */
    } else if (ck->issuer_ok && strcmp(ck->dist, s->asset_issuer) == 0) {
        check_line(ck, false,
                   "the distribution account %s is the asset issuer; pay from a "
                   "separate account",
                   ck->dist);
    } else {
        ck->dist_ok = ck->issuer_ok;
        if (!ck->issuer_ok)
            check_line(ck, true, "distribution account %s (trustline not checked)", ck->dist);
    }

    char why[NOVA_CONFIG_ERRMAX];
    ck->m = nova__svc_http("`nova-worker stellar check` needs the HTTP client", why, sizeof why);
    if (ck->m == NULL) {
        check_line(ck, false, "%s", why);
        free(ck);
        fflush(stdout);
        return EXIT_FAILURE;
    }
    int rc = uv_loop_init(&ck->loop);
    if (rc == 0)
        rc = ck->m->client_new(&ck->loop, &cfg->http, &ck->http);
    if (rc == 0) {
        /* The check signs nothing: the client never gets the secret, and a
         * bad issuer (already reported) must not stop the network checks. */
        struct nova__stellar_config copy = *s;
        copy.distribution_secret = NULL;
        if (!ck->issuer_ok)
            copy.asset_issuer = NULL;
        rc = ck->m->stellar_new(&ck->loop, ck->http, &copy, &ck->sc);
        if (rc != 0)
            ck->m->client_close(ck->http, NULL, NULL);
    }
    if (rc != 0) {
        check_line(ck, false, "cannot create the Stellar client: %s", strerror(-rc));
    } else {
        check_next(ck);
    }
    uv_run(&ck->loop, UV_RUN_DEFAULT);
    uv_loop_close(&ck->loop);
    nova__svc_unload_all();
    int errors = ck->errors;
    free(ck);
    fflush(stdout);
    return errors == 0 ? 0 : EXIT_FAILURE;
}

static const struct subcommand subcommands[] = {
    {"sign-payment", cmd_sign_payment, "build and sign a payment transaction (offline)"},
    {"decode-envelope", cmd_decode_envelope, "decode a signed envelope, its hash and signers"},
    {"decode-result", cmd_decode_result, "decode a TransactionResult (result_xdr) to JSON"},
    {"decode-scval", cmd_decode_scval, "decode ScVal XDR (event topic/value) to JSON"},
    {"check", cmd_check, "check the [stellar] section against Horizon and the RPC"},
};

static void help(FILE *f)
{
    fputs("Usage: nova-worker stellar COMMAND [OPTIONS]\n\nCommands:\n", f);
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(f, "  %-15s %s\n", subcommands[i].name, subcommands[i].summary);
    fputs("\nRun `nova-worker stellar COMMAND --help` for a command's options.\n", f);
}

int nova__cmd_stellar(const struct nova__config *cfg, int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        help(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(cfg, argc - 1, argv + 1);
    fprintf(stderr, "nova-worker stellar: unknown command \"%s\"\n", argv[1]);
    help(stderr);
    return EXIT_USAGE;
}
