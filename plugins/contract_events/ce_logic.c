/*
 * ce_logic - pure decisions of the contract_events plugin (ce_logic.h).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nova/buf.h>

#include "ce_logic.h"

const char *const ce_contract_env[] = {
    "NOVA_TOKEN_CONTRACT_ID",   "REWARD_POOL_CONTRACT_ID",  "VESTING_CONTRACT_ID",
    "REFERRAL_CONTRACT_ID",     "DISTRIBUTION_CONTRACT_ID", "ADMIN_ROLES_CONTRACT_ID",
    "NOVA_REWARDS_CONTRACT_ID", "GOVERNANCE_CONTRACT_ID",   NULL,
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- the contract set ----------------------------------------------------- */

int ce_contracts_add(struct ce_contracts *set, const char *list, const char *what,
                     ce_validate_fn validate, void *ctx, char *err, size_t errlen)
{
    const char *s = list;
    while (s != NULL && *s != '\0') {
        s += strspn(s, ", \t\r\n");
        size_t n = strcspn(s, ", \t\r\n");
        if (n == 0)
            break;
        char id[CE_ID_LEN + 1], why[200] = "";
        if (n > CE_ID_LEN)
            return fail(err, errlen, -EINVAL, "%s: \"%.*s...\" is not a C... contract id", what, 12,
                        s);
        memcpy(id, s, n);
        id[n] = '\0';
        s += n;
        if (validate(ctx, id, why, sizeof why) != 0)
            return fail(err, errlen, -EINVAL, "%s: %s is not a C... contract id (%s)", what, id,
                        why);
        size_t at = 0;
        while (at < set->n && strcmp(set->ids[at], id) < 0)
            at++;
        if (at < set->n && strcmp(set->ids[at], id) == 0)
            continue; /* listed twice */
        if (set->n == CE_MAX_CONTRACTS)
            return fail(err, errlen, -E2BIG,
                        "%s: more than %d contracts (one getEvents request covers %d)", what,
                        CE_MAX_CONTRACTS, CE_MAX_CONTRACTS);
        memmove(set->ids[at + 1], set->ids[at], (set->n - at) * sizeof set->ids[0]);
        memcpy(set->ids[at], id, n + 1);
        set->n++;
    }
    return 0;
}

void ce_contracts_array(const struct ce_contracts *set, char *out, size_t len)
{
    size_t off = (size_t)snprintf(out, len, "{");
    for (size_t i = 0; i < set->n && off < len; i++)
        off += (size_t)snprintf(out + off, len - off, "%s%s", i ? "," : "", set->ids[i]);
    if (off < len)
        snprintf(out + off, len - off, "}");
}

void ce_lock_name(const struct ce_contracts *set, char *out, size_t len)
{
    size_t off = (size_t)snprintf(out, len, "nova-worker contract_events");
    for (size_t i = 0; i < set->n && off < len; i++)
        off += (size_t)snprintf(out + off, len - off, " %s", set->ids[i]);
}

size_t ce_filters(const struct ce_contracts *set,
                  struct nova_stellar_event_filter out[NOVA_STELLAR_MAX_EVENT_FILTERS])
{
    size_t nf = 0;
    memset(out, 0, NOVA_STELLAR_MAX_EVENT_FILTERS * sizeof out[0]);
    for (size_t i = 0; i < set->n; i++) {
        size_t f = i / NOVA_STELLAR_MAX_FILTER_CONTRACTS;
        out[f].type = "contract";
        out[f].contract_ids[i % NOVA_STELLAR_MAX_FILTER_CONTRACTS] = set->ids[i];
        nf = f + 1;
    }
    return nf;
}

/* ---- cursors ---------------------------------------------------------------- */

bool ce_cursor_valid(const char *c)
{
    if (c == NULL)
        return false;
    size_t d = strspn(c, "0123456789");
    if ((d != 19 && d != 20) || c[d] != '-')
        return false;
    const char *idx = c + d + 1;
    if (strspn(idx, "0123456789") != 10 || idx[10] != '\0')
        return false;
    /* the TOID must fit 64 bits */
    return d == 19 || strncmp(c, "18446744073709551615", 20) <= 0;
}

uint32_t ce_cursor_ledger(const char *c)
{
    return (uint32_t)(strtoull(c, NULL, 10) >> 32);
}

void ce_pos_cursor(struct ce_pos *p, const char *cursor)
{
    snprintf(p->cursor, sizeof p->cursor, "%s", cursor);
    p->ledger = ce_cursor_ledger(cursor);
}

void ce_pos_ledger(struct ce_pos *p, uint32_t ledger)
{
    p->cursor[0] = '\0';
    p->ledger = ledger;
}

int ce_pos_cmp(const struct ce_pos *a, const struct ce_pos *b)
{
    if (a->ledger != b->ledger)
        return a->ledger < b->ledger ? -1 : 1;
    bool ca = a->cursor[0] != '\0', cb = b->cursor[0] != '\0';
    if (!ca || !cb)
        return ca == cb ? 0 : (ca ? 1 : -1);
    unsigned long long ta = strtoull(a->cursor, NULL, 10), tb = strtoull(b->cursor, NULL, 10);
    if (ta != tb)
        return ta < tb ? -1 : 1;
    unsigned long ia = strtoul(strchr(a->cursor, '-') + 1, NULL, 10);
    unsigned long ib = strtoul(strchr(b->cursor, '-') + 1, NULL, 10);
    return ia == ib ? 0 : (ia < ib ? -1 : 1);
}

uint32_t ce_lag(uint32_t latest, const struct ce_pos *pos)
{
    return latest > pos->ledger ? latest - pos->ledger : 0;
}

/* ---- event types --------------------------------------------------------- */

/* The symbol of a decoded topic, NULL when it is not a non-empty Symbol. */
static const char *symbol_of(const cJSON *topic)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(topic, "symbol");
    return cJSON_IsString(s) && s->valuestring[0] != '\0' ? s->valuestring : NULL;
}

static void lower_into(char *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
}

int ce_event_type(const cJSON *topics, const char *rpc_type, char *out)
{
    const char *tag = cJSON_IsArray(topics) ? symbol_of(cJSON_GetArrayItem(topics, 0)) : NULL;
    const char *name = tag != NULL ? symbol_of(cJSON_GetArrayItem(topics, 1)) : NULL;
    if (tag == NULL) {
        snprintf(out, CE_TYPE_MAX + 1, "%s",
                 rpc_type != NULL && rpc_type[0] != '\0' ? rpc_type : "contract");
        return 0;
    }
    size_t nt = strlen(tag), nn = name != NULL ? strlen(name) : 0;
    if (nt > CE_TYPE_MAX)
        nt = CE_TYPE_MAX; /* symbols are at most 32 characters: never */
    lower_into(out, tag, nt);
    if (name == NULL)
        return 0;
    if (nt + 1 + nn > CE_TYPE_MAX)
        return -E2BIG;
    out[nt] = ':';
    lower_into(out + nt + 1, name, nn);
    return 0;
}

/* ---- ScVal JSON to scValToNative's values -------------------------------- */

static void sb_cp(struct nova_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    nova_buf_add(b, u, n);
}

/* Bytes as TextDecoder("utf-8") reads them (the Encoding standard's
 * decoder: each maximal bad subsequence becomes one U+FFFD), except NUL,
 * which becomes U+FFFD too: jsonb has no room for it. */
static void sb_utf8(struct nova_buf *b, const uint8_t *s, size_t len)
{
    uint32_t cp = 0;
    unsigned need = 0, seen = 0;
    uint8_t lower = 0x80, upper = 0xBF;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (need == 0) {
            if (c == 0)
                sb_cp(b, 0xFFFD);
            else if (c <= 0x7F)
                sb_cp(b, c);
            else if (c >= 0xC2 && c <= 0xDF) {
                need = 1;
                cp = c & 0x1F;
            } else if (c >= 0xE0 && c <= 0xEF) {
                if (c == 0xE0)
                    lower = 0xA0;
                if (c == 0xED)
                    upper = 0x9F;
                need = 2;
                cp = c & 0x0F;
            } else if (c >= 0xF0 && c <= 0xF4) {
                if (c == 0xF0)
                    lower = 0x90;
                if (c == 0xF4)
                    upper = 0x8F;
                need = 3;
                cp = c & 0x07;
            } else
                sb_cp(b, 0xFFFD);
            continue;
        }
        if (c < lower || c > upper) {
            cp = need = seen = 0;
            lower = 0x80;
            upper = 0xBF;
            sb_cp(b, 0xFFFD);
            i--; /* read this byte again as a first byte */
            continue;
        }
        lower = 0x80;
        upper = 0xBF;
        cp = (cp << 6) | (c & 0x3F);
        if (++seen == need) {
            sb_cp(b, cp);
            cp = need = seen = 0;
        }
    }
    if (need != 0)
        sb_cp(b, 0xFFFD);
}

/* Hex text as UTF-8 text (TextDecoder's way); -EINVAL when not hex. */
static int sb_hex_utf8(struct nova_buf *b, const char *hex)
{
    size_t n = strlen(hex);
    if (n % 2 != 0)
        return -EINVAL;
    uint8_t *bytes = malloc(n / 2 + 1);
    if (bytes == NULL) {
        b->oom = true;
        return -ENOMEM;
    }
    if (strspn(hex, "0123456789abcdefABCDEF") != n) {
        free(bytes);
        return -EINVAL;
    }
    for (size_t i = 0; i < n / 2; i++) {
        char pair[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        bytes[i] = (uint8_t)strtoul(pair, NULL, 16);
    }
    sb_utf8(b, bytes, n / 2);
    free(bytes);
    return 0;
}

/* The one member of a decoded ScVal: its type name and value. */
static const cJSON *typed_member(const cJSON *typed)
{
    if (!cJSON_IsObject(typed) || typed->child == NULL || typed->child->next != NULL ||
        typed->child->string == NULL)
        return NULL;
    return typed->child;
}

static bool is_int_type(const char *t)
{
    static const char *const names[] = {"u64",  "i64",       "u128",     "i128", "u256",
                                        "i256", "timepoint", "duration", NULL};
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcmp(t, names[i]) == 0)
            return true;
    return false;
}

static const char *const scec_names[] = {
    "arith_domain",    "scecArithDomain",    "index_bounds",    "scecIndexBounds",
    "invalid_input",   "scecInvalidInput",   "missing_value",   "scecMissingValue",
    "existing_value",  "scecExistingValue",  "exceeded_limit",  "scecExceededLimit",
    "invalid_action",  "scecInvalidAction",  "internal_error",  "scecInternalError",
    "unexpected_type", "scecUnexpectedType", "unexpected_size", "scecUnexpectedSize",
};

/* A map key as JavaScript makes it a property name (String(value)): in
 * an array (join) null becomes "", objects "[object Object]", Buffers their
 * UTF-8 text. */
static int key_text(const cJSON *typed, bool in_array, struct nova_buf *b, int depth, char *err,
                    size_t errlen)
{
    const cJSON *m = typed_member(typed);
    if (m == NULL || depth > 64)
        return fail(err, errlen, -EINVAL, "not a decoded ScVal");
    const char *t = m->string;
    char num[32];
    if (strcmp(t, "bool") == 0)
        nova_buf_str(b, cJSON_IsTrue(m) ? "true" : "false");
    else if (strcmp(t, "void") == 0)
        nova_buf_str(b, in_array ? "" : "null");
    else if (strcmp(t, "u32") == 0 || strcmp(t, "i32") == 0) {
        snprintf(num, sizeof num, "%.0f", m->valuedouble);
        nova_buf_str(b, num);
    } else if (strcmp(t, "bytes") == 0 || strcmp(t, "string_hex") == 0) {
        if (!cJSON_IsString(m) || sb_hex_utf8(b, m->valuestring) == -EINVAL)
            return fail(err, errlen, -EINVAL, "%s is not hex", t);
    } else if (is_int_type(t) || strcmp(t, "symbol") == 0 || strcmp(t, "string") == 0 ||
               strcmp(t, "address") == 0) {
        if (!cJSON_IsString(m))
            return fail(err, errlen, -EINVAL, "%s is not a string", t);
        nova_buf_str(b, m->valuestring);
    } else if (strcmp(t, "vec") == 0) {
        const cJSON *e;
        bool first = true;
        cJSON_ArrayForEach(e, m)
        {
            if (!first)
                nova_buf_str(b, ",");
            first = false;
            int rc = key_text(e, true, b, depth + 1, err, errlen);
            if (rc < 0)
                return rc;
        }
    } else if (strcmp(t, "map") == 0 || strcmp(t, "error") == 0)
        nova_buf_str(b, "[object Object]");
    else
        return fail(err, errlen, -EINVAL, "unknown ScVal type \"%s\"", t);
    return b->oom ? -ENOMEM : 0;
}

static cJSON *native(const cJSON *typed, int depth, char *err, size_t errlen);

static cJSON *native_map(const cJSON *m, int depth, char *err, size_t errlen)
{
    cJSON *obj = cJSON_CreateObject();
    const cJSON *entry;
    if (obj == NULL)
        return NULL;
    cJSON_ArrayForEach(entry, m)
    {
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(entry, "key");
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(entry, "val");
        struct nova_buf kb = {0};
        if (key == NULL || val == NULL) {
            fail(err, errlen, -EINVAL, "a map entry without key or val");
            goto bad;
        }
        if (key_text(key, false, &kb, depth, err, errlen) < 0) {
            free(kb.p);
            goto bad;
        }
        cJSON *v = native(val, depth + 1, err, errlen);
        if (v == NULL) {
            free(kb.p);
            goto bad;
        }
        /* Object.fromEntries: a later equal key replaces the value */
        const char *k = kb.p != NULL ? kb.p : "";
        if (cJSON_GetObjectItemCaseSensitive(obj, k) != NULL)
            cJSON_ReplaceItemInObjectCaseSensitive(obj, k, v);
        else
            cJSON_AddItemToObject(obj, k, v);
        free(kb.p);
    }
    return obj;
bad:
    cJSON_Delete(obj);
    return NULL;
}

static cJSON *native_error(const cJSON *m, char *err, size_t errlen)
{
    const cJSON *e = m != NULL ? m->child : NULL;
    if (!cJSON_IsObject(m) || e == NULL || e->string == NULL) {
        fail(err, errlen, -EINVAL, "an error without its type");
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    if (strcmp(e->string, "contract") == 0) {
        cJSON_AddStringToObject(o, "type", "contract");
        cJSON_AddNumberToObject(o, "code", e->valuedouble);
        return o;
    }
    for (size_t i = 0; cJSON_IsString(e) && i < sizeof scec_names / sizeof scec_names[0]; i += 2)
        if (strcmp(e->valuestring, scec_names[i]) == 0) {
            cJSON_AddStringToObject(o, "type", "system");
            cJSON_AddNumberToObject(o, "code", (double)(i / 2));
            cJSON_AddStringToObject(o, "value", scec_names[i + 1]);
            return o;
        }
    cJSON_Delete(o);
    fail(err, errlen, -EINVAL, "unknown error code");
    return NULL;
}

static cJSON *native(const cJSON *typed, int depth, char *err, size_t errlen)
{
    const cJSON *m = typed_member(typed);
    if (m == NULL || depth > 64) {
        fail(err, errlen, -EINVAL, "not a decoded ScVal");
        return NULL;
    }
    const char *t = m->string;
    if (strcmp(t, "bool") == 0)
        return cJSON_CreateBool(cJSON_IsTrue(m));
    if (strcmp(t, "void") == 0)
        return cJSON_CreateNull();
    if (strcmp(t, "u32") == 0 || strcmp(t, "i32") == 0) {
        if (!cJSON_IsNumber(m)) {
            fail(err, errlen, -EINVAL, "%s is not a number", t);
            return NULL;
        }
        return cJSON_CreateNumber(m->valuedouble);
    }
    if (is_int_type(t) || strcmp(t, "bytes") == 0 || strcmp(t, "symbol") == 0 ||
        strcmp(t, "string") == 0 || strcmp(t, "address") == 0) {
        if (!cJSON_IsString(m)) {
            fail(err, errlen, -EINVAL, "%s is not a string", t);
            return NULL;
        }
        return cJSON_CreateString(m->valuestring);
    }
    if (strcmp(t, "string_hex") == 0) {
        struct nova_buf b = {0};
        if (!cJSON_IsString(m) || sb_hex_utf8(&b, m->valuestring) == -EINVAL) {
            free(b.p);
            fail(err, errlen, -EINVAL, "string_hex is not hex");
            return NULL;
        }
        cJSON *s = b.oom ? NULL : cJSON_CreateString(b.p != NULL ? b.p : "");
        free(b.p);
        return s;
    }
    if (strcmp(t, "vec") == 0) {
        cJSON *arr = cJSON_CreateArray();
        const cJSON *e;
        if (arr == NULL)
            return NULL;
        cJSON_ArrayForEach(e, m)
        {
            cJSON *v = native(e, depth + 1, err, errlen);
            if (v == NULL) {
                cJSON_Delete(arr);
                return NULL;
            }
            cJSON_AddItemToArray(arr, v);
        }
        return arr;
    }
    if (strcmp(t, "map") == 0)
        return native_map(m, depth, err, errlen);
    if (strcmp(t, "error") == 0)
        return native_error(m, err, errlen);
    fail(err, errlen, -EINVAL, "unknown ScVal type \"%s\"", t);
    return NULL;
}

cJSON *ce_native(const cJSON *typed, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    cJSON *v = native(typed, 0, err, errlen);
    if (v == NULL && err != NULL && errlen > 0 && err[0] == '\0')
        snprintf(err, errlen, "out of memory");
    return v;
}

/* ---- rows ------------------------------------------------------------------ */

void ce_raw_from_event(const struct nova_stellar_event *ev, struct ce_raw *out)
{
    memset(out, 0, sizeof *out);
    out->id = ev->id;
    out->type = ev->type;
    out->contract_id = ev->contract_id;
    out->tx_hash = ev->tx_hash;
    out->ledger_closed_at = ev->ledger_closed_at;
    out->ledger = ev->ledger;
    out->transaction_index = ev->transaction_index;
    out->operation_index = ev->operation_index;
    out->in_successful_contract_call = ev->in_successful_contract_call;
    out->topic_xdr = ev->topic_xdr;
    out->topic_count = ev->topic_count;
    out->value_xdr = ev->value_xdr;
    out->topics = ev->topics;
    out->value = ev->value;
}

/* The event's metadata and raw XDR: what every row's event_data holds. */
static cJSON *event_meta(const struct ce_raw *ev)
{
    cJSON *d = cJSON_CreateObject();
    if (d == NULL)
        return NULL;
    cJSON_AddStringToObject(d, "id", ev->id);
    cJSON_AddStringToObject(d, "type", ev->type != NULL ? ev->type : "contract");
    cJSON_AddStringToObject(d, "contract_id", ev->contract_id != NULL ? ev->contract_id : "");
    cJSON_AddNumberToObject(d, "ledger", ev->ledger);
    if (ev->ledger_closed_at != NULL && ev->ledger_closed_at[0] != '\0')
        cJSON_AddStringToObject(d, "ledger_closed_at", ev->ledger_closed_at);
    if (ev->tx_hash != NULL && ev->tx_hash[0] != '\0')
        cJSON_AddStringToObject(d, "tx_hash", ev->tx_hash);
    cJSON_AddNumberToObject(d, "transaction_index", ev->transaction_index);
    cJSON_AddNumberToObject(d, "operation_index", ev->operation_index);
    cJSON_AddBoolToObject(d, "in_successful_contract_call", ev->in_successful_contract_call);
    cJSON *x = cJSON_AddObjectToObject(d, "xdr");
    cJSON *t = x != NULL ? cJSON_AddArrayToObject(x, "topics") : NULL;
    if (t == NULL) {
        cJSON_Delete(d);
        return NULL;
    }
    for (size_t i = 0; i < ev->topic_count; i++)
        cJSON_AddItemToArray(t, cJSON_CreateString(ev->topic_xdr[i]));
    cJSON_AddStringToObject(x, "value", ev->value_xdr != NULL ? ev->value_xdr : "");
    return d;
}

/* schema_version and fields of the data: a tuple (vec, u32 first) or a map. */
static void add_fields(cJSON *d, const cJSON *typed_value, const cJSON *native_value)
{
    const cJSON *m = typed_member(typed_value);
    if (m == NULL)
        return;
    if (strcmp(m->string, "vec") == 0 && cJSON_IsArray(native_value)) {
        const cJSON *first = cJSON_GetArrayItem(m, 0);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(first, "u32");
        if (!cJSON_IsNumber(u))
            return;
        cJSON_AddNumberToObject(d, "schema_version", u->valuedouble);
        cJSON *fields = cJSON_Duplicate(native_value, true);
        if (fields == NULL)
            return;
        cJSON_DeleteItemFromArray(fields, 0);
        cJSON_AddItemToObject(d, "fields", fields);
    } else if (strcmp(m->string, "map") == 0 && cJSON_IsObject(native_value)) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(native_value, "schema_version");
        if (cJSON_IsNumber(v))
            cJSON_AddNumberToObject(d, "schema_version", v->valuedouble);
        cJSON_AddItemToObject(d, "fields", cJSON_Duplicate(native_value, true));
    }
}

cJSON *ce_row(const struct ce_raw *ev, ce_decode_fn decode)
{
    char err[300] = "", type[CE_TYPE_MAX + 1];
    cJSON *own_topics = NULL, *own_value = NULL;
    const cJSON *topics = ev->topics, *value = ev->value;
    cJSON *data = event_meta(ev), *row = cJSON_CreateObject();
    cJSON *ntopics = NULL, *nvalue = NULL;
    if (data == NULL || row == NULL)
        goto oom;
    /* decode what the RPC client could not (or a row's raw XDR) */
    if (topics == NULL) {
        own_topics = cJSON_CreateArray();
        if (own_topics == NULL)
            goto oom;
        for (size_t i = 0; i < ev->topic_count; i++) {
            cJSON *v = NULL;
            char e[200] = "";
            int rc = decode(ev->topic_xdr[i], &v, e, sizeof e);
            if (rc == -ENOMEM)
                goto oom;
            if (rc < 0) {
                snprintf(err, sizeof err, "topic %zu: %s", i + 1, e);
                cJSON_Delete(own_topics);
                own_topics = NULL;
                break;
            }
            cJSON_AddItemToArray(own_topics, v);
        }
        topics = own_topics;
    }
    if (value == NULL && err[0] == '\0') {
        char e[200] = "";
        int rc = decode(ev->value_xdr != NULL ? ev->value_xdr : "", &own_value, e, sizeof e);
        if (rc == -ENOMEM)
            goto oom;
        if (rc < 0)
            snprintf(err, sizeof err, "value: %s", e);
        value = own_value;
    }
    bool too_long = ce_event_type(topics, ev->type, type) == -E2BIG;
    if (err[0] == '\0') {
        char e[200] = "";
        /* topics is an array of decoded values: convert it as a vec */
        const cJSON *t;
        if ((ntopics = cJSON_CreateArray()) == NULL)
            goto oom;
        cJSON_ArrayForEach(t, topics)
        {
            cJSON *v = ce_native(t, e, sizeof e);
            if (v == NULL) {
                cJSON_Delete(ntopics);
                ntopics = NULL;
                break;
            }
            cJSON_AddItemToArray(ntopics, v);
        }
        if (ntopics == NULL)
            snprintf(err, sizeof err, "topics: %s", e);
        else if ((nvalue = ce_native(value, e, sizeof e)) == NULL)
            snprintf(err, sizeof err, "value: %s", e);
    }
    if (err[0] == '\0' && too_long)
        snprintf(err, sizeof err, "event type %s:... is longer than %d characters", type,
                 CE_TYPE_MAX);
    if (err[0] == '\0') {
        cJSON_AddItemToObject(data, "topics", ntopics);
        ntopics = NULL;
        add_fields(data, value, nvalue);
        cJSON_AddItemToObject(data, "value", nvalue);
        nvalue = NULL;
    }
    cJSON_AddStringToObject(row, "event_id", ev->id);
    cJSON_AddStringToObject(row, "contract_id", ev->contract_id != NULL ? ev->contract_id : "");
    cJSON_AddStringToObject(row, "event_type", type);
    cJSON_AddItemToObject(row, "event_data", data);
    data = NULL;
    if (ev->tx_hash != NULL && ev->tx_hash[0] != '\0')
        cJSON_AddStringToObject(row, "transaction_hash", ev->tx_hash);
    else
        cJSON_AddNullToObject(row, "transaction_hash");
    cJSON_AddNumberToObject(row, "ledger_sequence", ev->ledger);
    cJSON_AddStringToObject(row, "status", err[0] == '\0' ? "processed" : "failed");
    if (err[0] != '\0')
        cJSON_AddStringToObject(row, "error_message", err);
    else
        cJSON_AddNullToObject(row, "error_message");
    goto out;
oom:
    cJSON_Delete(row);
    row = NULL;
out:
    cJSON_Delete(data); /* NULL once it is in the row */
    cJSON_Delete(ntopics);
    cJSON_Delete(nvalue);
    cJSON_Delete(own_topics);
    cJSON_Delete(own_value);
    return row;
}

static const char *str_of(const cJSON *o, const char *name, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

static uint32_t u32_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 4294967295.0
               ? (uint32_t)v->valuedouble
               : 0;
}

int ce_raw_from_data(const cJSON *d, struct ce_raw *out, const char **slots, size_t max)
{
    memset(out, 0, sizeof *out);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(d, "xdr");
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(x, "topics");
    out->id = str_of(d, "id", NULL);
    out->value_xdr = str_of(x, "value", NULL);
    if (out->id == NULL || out->value_xdr == NULL || !cJSON_IsArray(topics))
        return -EINVAL;
    out->type = str_of(d, "type", "contract");
    out->contract_id = str_of(d, "contract_id", "");
    out->tx_hash = str_of(d, "tx_hash", "");
    out->ledger_closed_at = str_of(d, "ledger_closed_at", "");
    out->ledger = u32_of(d, "ledger");
    out->transaction_index = u32_of(d, "transaction_index");
    out->operation_index = u32_of(d, "operation_index");
    out->in_successful_contract_call =
        !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(d, "in_successful_contract_call"));
    const cJSON *t;
    cJSON_ArrayForEach(t, topics)
    {
        if (!cJSON_IsString(t) || out->topic_count == max)
            return -EINVAL;
        slots[out->topic_count++] = t->valuestring;
    }
    out->topic_xdr = slots;
    return 0;
}
