/*
 * bk_manifest - the <name>.json beside each backup: what it is (database,
 * pg_dump version, sizes), how to check it (sha256 of the encrypted file,
 * key id, encryption scheme) and whether it passed verification, which
 * retention reads. Pure code (cJSON), unit-tested.
 */
#include "bk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nova/buf.h>

#define BK_MANIFEST_FORMAT "nova-worker-backup-manifest/1"

static bool add_time(cJSON *o, const char *key, int64_t ms)
{
    char iso[40];
    if (ms <= 0)
        return cJSON_AddNullToObject(o, key) != NULL;
    bk_iso_time(iso, sizeof iso, ms);
    return cJSON_AddStringToObject(o, key, iso) != NULL;
}

char *bk_manifest_render(const struct bk_manifest *m)
{
    cJSON *o = cJSON_CreateObject();
    char file[BK_NAME_MAX + 16];
    snprintf(file, sizeof file, "%s.dump.enc", m->name);
    bool ok =
        o != NULL && cJSON_AddStringToObject(o, "format", BK_MANIFEST_FORMAT) &&
        cJSON_AddStringToObject(o, "name", m->name) && cJSON_AddStringToObject(o, "file", file) &&
        add_time(o, "created_at", m->created_ms) && add_time(o, "finished_at", m->finished_ms) &&
        cJSON_AddStringToObject(o, "database", m->database) &&
        cJSON_AddStringToObject(o, "pg_dump_version", m->pg_dump_version) &&
        cJSON_AddStringToObject(o, "dump_format", "custom") &&
        cJSON_AddNumberToObject(o, "dump_size_bytes", (double)m->dump_bytes) &&
        cJSON_AddNumberToObject(o, "size_bytes", (double)m->size) &&
        cJSON_AddStringToObject(o, "sha256", m->sha256) &&
        cJSON_AddStringToObject(o, "key_id", m->key_id) &&
        cJSON_AddStringToObject(o, "encryption", BK_SCHEME) &&
        cJSON_AddNumberToObject(o, "chunk_size", m->chunk_size) &&
        cJSON_AddNumberToObject(o, "duration_seconds", (double)m->duration_ms / 1000.0) &&
        cJSON_AddBoolToObject(o, "verified", m->state == BK_VERIFIED) &&
        add_time(o, "verified_at", m->state == BK_VERIFIED ? m->verified_ms : 0);
    if (ok && m->state == BK_FAILED)
        ok = cJSON_AddStringToObject(o, "verify_error", m->verify_error) != NULL;
    char *text = ok ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (text == NULL)
        return NULL;
    /* a trailing newline for cat and editors */
    struct nova_buf out = {0};
    nova_buf_str(&out, text);
    nova_buf_str(&out, "\n");
    cJSON_free(text);
    if (out.oom) {
        nova_buf_free(&out);
        return NULL;
    }
    return out.p;
}

static bool get_str(const cJSON *o, const char *key, char *out, size_t outlen, bool required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v) && strlen(v->valuestring) < outlen) {
        strcpy(out, v->valuestring);
        return true;
    }
    out[0] = '\0';
    return !required && (v == NULL || cJSON_IsNull(v));
}

static bool get_u64(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

static int64_t parse_iso(const char *s)
{
    int y, mo, d, h, mi, se;
    char z;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se, &z) != 7 || z != 'Z')
        return 0;
    char name[64];
    snprintf(name, sizeof name, "nova-x-%04d%02d%02dT%02d%02d%02dZ", y, mo, d, h, mi, se);
    int64_t t = bk_name_time(name);
    return t > 0 ? t : 0;
}

int bk_manifest_parse(const char *text, size_t len, struct bk_manifest *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    cJSON *o = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        bk_set_err(err, errlen, "the manifest is not a JSON object");
        return -EINVAL;
    }
    char format[64], when[64];
    uint64_t chunk = 0;
    bool ok = get_str(o, "format", format, sizeof format, true) &&
              strcmp(format, BK_MANIFEST_FORMAT) == 0 &&
              get_str(o, "name", m->name, sizeof m->name, true) &&
              get_str(o, "database", m->database, sizeof m->database, false) &&
              get_str(o, "pg_dump_version", m->pg_dump_version, sizeof m->pg_dump_version, false) &&
              get_u64(o, "dump_size_bytes", &m->dump_bytes) && get_u64(o, "size_bytes", &m->size) &&
              get_str(o, "sha256", m->sha256, sizeof m->sha256, true) && strlen(m->sha256) == 64 &&
              get_str(o, "key_id", m->key_id, sizeof m->key_id, true) &&
              get_u64(o, "chunk_size", &chunk);
    if (!ok) {
        cJSON_Delete(o);
        bk_set_err(err, errlen, "the manifest lacks a field of %s (or has a wrong type)",
                   BK_MANIFEST_FORMAT);
        return -EINVAL;
    }
    m->chunk_size = (uint32_t)chunk;
    m->created_ms = bk_name_time(m->name);
    if (get_str(o, "finished_at", when, sizeof when, false))
        m->finished_ms = parse_iso(when);
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(o, "duration_seconds");
    if (cJSON_IsNumber(dur))
        m->duration_ms = (int64_t)(dur->valuedouble * 1000.0);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "verified");
    get_str(o, "verify_error", m->verify_error, sizeof m->verify_error, false);
    if (cJSON_IsTrue(ver)) {
        m->state = BK_VERIFIED;
        if (get_str(o, "verified_at", when, sizeof when, false))
            m->verified_ms = parse_iso(when);
    } else {
        m->state = m->verify_error[0] != '\0' ? BK_FAILED : BK_UNVERIFIED;
    }
    cJSON_Delete(o);
    return 0;
}
