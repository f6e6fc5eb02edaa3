#include "config.h"
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stellar_vectors.h"
#include "stellar/stellar_xdr.h"

static cJSON *loaded;

const cJSON *vectors(void)
{
    if (loaded != NULL)
        return loaded;
    const char *srcdir = getenv("NOVA_SRCDIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/fixtures/stellar-vectors.json",
             srcdir ? srcdir : NOVA_TEST_SRCDIR);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    ck_assert_uint_lt(n, sizeof(buf) - 1);
    buf[n] = '\0';
    loaded = cJSON_Parse(buf);
    ck_assert_msg(loaded != NULL, "%s is not valid JSON", path);
    return loaded;
}

const cJSON *vget(const cJSON *root, const char *path)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", path);
    const cJSON *cur = root;
    for (char *save = NULL, *tok = strtok_r(tmp, "/", &save); tok && cur;
         tok = strtok_r(NULL, "/", &save)) {
        if (cJSON_IsArray(cur))
            cur = cJSON_GetArrayItem(cur, atoi(tok));
        else
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    }
    ck_assert_msg(cur != NULL, "vector %s missing", path);
    return cur;
}

const char *vstr(const cJSON *root, const char *path)
{
    const cJSON *v = vget(root, path);
    ck_assert_msg(cJSON_IsString(v), "vector %s is not a string", path);
    return v->valuestring;
}

size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    ck_assert_uint_le(n, cap);
    ck_assert_int_eq(nova__hex_decode(hex, out, n), 0);
    return n;
}
