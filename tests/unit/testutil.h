/* Small helpers shared by the Check suites: temp dirs and files. */
#ifndef NOVA_TESTUTIL_H
#define NOVA_TESTUTIL_H

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates a fresh directory under $TMPDIR; the path is static storage. */
static inline const char *tu_tempdir(void)
{
    static char dir[PATH_MAX];
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/nova-test-XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

/* Writes text to dir/name (creating subdirectories is the caller's job)
 * and returns the full path in out. */
static inline void tu_write(const char *dir, const char *name, const char *text, char *out,
                            size_t outlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
    if (out != NULL)
        snprintf(out, outlen, "%s", path);
}

static inline void tu_rmtree(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    int rc = system(cmd);
    (void)rc;
}

static inline const char *tu_builddir(void)
{
    const char *b = getenv("NOVA_BUILDDIR");
    return b ? b : NOVA_TEST_BUILDDIR;
}

/* Runs Check with the given suite; returns the process exit code. */
static inline int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

#endif
