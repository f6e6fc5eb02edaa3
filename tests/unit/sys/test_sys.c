/* Child processes and files off the loop (runtime/sys): output in order,
 * exit codes and signals, stderr tails, secrets in env only, flow control,
 * release on plugin stop; file writes queued in order, durable renames,
 * mkdir -p, directory listings, errors as -errno. Real processes (sh, cat,
 * head) in a temp dir. */
#include "config.h"
#include "sys/file.h"
#include "sys/process.h"
#include "unit/testutil.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

static uv_loop_t loop;
static const int owner_a = 1, owner_b = 2;

/* ---- processes ------------------------------------------------------------ */

struct run {
    char out[2 << 20];
    size_t out_len;
    int exits;
    int status, code, sig;
    char tail[8192];
    nova_process *p;
    size_t pause_after; /* pause stdout once this much arrived (0 = never) */
    bool paused;
};

static void on_data(void *arg, const void *data, size_t len)
{
    struct run *r = arg;
    ck_assert_uint_le(r->out_len + len, sizeof r->out);
    memcpy(r->out + r->out_len, data, len);
    r->out_len += len;
    if (r->pause_after > 0 && !r->paused && r->out_len >= r->pause_after) {
        nova__process_pause(r->p);
        r->paused = true;
    }
}

static void on_exit_cb(void *arg, int status, int code, int sig, const char *tail)
{
    struct run *r = arg;
    r->exits++;
    r->status = status;
    r->code = code;
    r->sig = sig;
    snprintf(r->tail, sizeof r->tail, "%s", tail);
}

static int sh(struct run *r, const char *script, const char *const *env, size_t keep)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    struct nova_process_spec spec = {
        .struct_size = sizeof spec, .file = "sh", .argv = argv, .env = env, .stderr_keep = keep};
    memset(r, 0, sizeof *r);
    return nova__process_spawn(&loop, &owner_a, &spec, on_data, on_exit_cb, r, &r->p);
}

START_TEST(process_output_and_exit)
{
    static struct run r;
    ck_assert_int_eq(sh(&r, "printf hello; printf ' world'; echo oops >&2; exit 3", NULL, 0), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(r.exits, 1);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.code, 3);
    ck_assert_int_eq(r.sig, 0);
    ck_assert_uint_eq(r.out_len, 11);
    ck_assert(memcmp(r.out, "hello world", 11) == 0);
    ck_assert_str_eq(r.tail, "oops\n");
}
END_TEST

/* 2 MiB through the pipe arrive whole and in order before the exit. */
START_TEST(process_large_output_in_order)
{
    static struct run r;
    ck_assert_int_eq(sh(&r, "seq 1 100000", NULL, 0), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(r.exits, 1);
    ck_assert_int_eq(r.code, 0);
    char expect[16];
    size_t at = 0;
    for (int i = 1; i <= 100000; i++) {
        int n = snprintf(expect, sizeof expect, "%d\n", i);
        ck_assert_msg(at + (size_t)n <= r.out_len && memcmp(r.out + at, expect, (size_t)n) == 0,
                      "line %d wrong", i);
        at += (size_t)n;
    }
    ck_assert_uint_eq(at, r.out_len);
}
END_TEST

/* Only the last stderr_keep bytes of stderr are kept, oldest first. */
START_TEST(process_stderr_tail_is_the_end)
{
    static struct run r;
    ck_assert_int_eq(sh(&r, "seq 1 1000 >&2; echo last line >&2; exit 1", NULL, 15), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(r.code, 1);
    ck_assert_str_eq(r.tail, "1000\nlast line\n");
}
END_TEST

/* The child sees the spec's env and PATH, not the daemon's other
 * variables (a secret in the daemon's env does not leak to children). */
START_TEST(process_env_is_explicit)
{
    static struct run r;
    setenv("NOVA_TEST_LEAK", "daemon-secret", 1);
    const char *env[] = {"PGPASSWORD=s3cret", NULL};
    ck_assert_int_eq(
        sh(&r, "printf '%s|%s|%s' \"$PGPASSWORD\" \"${NOVA_TEST_LEAK:-none}\" \"${PATH:+path}\"",
           env, 0),
        0);
    uv_run(&loop, UV_RUN_DEFAULT);
    r.out[r.out_len] = '\0';
    ck_assert_str_eq(r.out, "s3cret|none|path");
    unsetenv("NOVA_TEST_LEAK");
}
END_TEST

START_TEST(process_signal_and_missing_program)
{
    static struct run r;
    ck_assert_int_eq(sh(&r, "exec sleep 30", NULL, 0), 0);
    ck_assert_int_eq(nova__process_kill(r.p, SIGTERM), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(r.exits, 1);
    ck_assert_int_eq(r.code, -1);
    ck_assert_int_eq(r.sig, SIGTERM);

    const char *argv[] = {"no-such-program-nova", NULL};
    struct nova_process_spec spec = {.struct_size = sizeof spec, .file = argv[0], .argv = argv};
    memset(&r, 0, sizeof r);
    int rc = nova__process_spawn(&loop, &owner_a, &spec, on_data, on_exit_cb, &r, NULL);
    ck_assert_int_eq(rc, -ENOENT);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(r.exits, 0); /* an error return never calls back */

    struct nova_process_spec bad = {.struct_size = 4, .file = "sh", .argv = argv};
    ck_assert_int_eq(nova__process_spawn(&loop, &owner_a, &bad, on_data, on_exit_cb, &r, NULL),
                     -EINVAL);
    const char *empty[] = {NULL};
    struct nova_process_spec noargs = {.struct_size = sizeof spec, .file = "sh", .argv = empty};
    ck_assert_int_eq(nova__process_spawn(&loop, &owner_a, &noargs, on_data, on_exit_cb, &r, NULL),
                     -EINVAL);
}
END_TEST

static struct run *resume_run;
static void resume_later(uv_timer_t *t)
{
    ck_assert(resume_run->paused);
    nova__process_resume(resume_run->p);
    uv_close((uv_handle_t *)t, NULL);
}

/* Paused, the child blocks on a full pipe and nothing more arrives; once
 * resumed, the rest of the output and then the exit follow. */
START_TEST(process_pause_resume)
{
    static struct run r;
    ck_assert_int_eq(sh(&r, "seq 1 200000", NULL, 0), 0);
    r.pause_after = 1;
    resume_run = &r;
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, resume_later, 300, 0);
    /* run until the timer fires: while paused the exit must not arrive */
    while (uv_is_active((uv_handle_t *)&t)) {
        uv_run(&loop, UV_RUN_ONCE);
        if (r.paused && uv_is_active((uv_handle_t *)&t))
            ck_assert_int_eq(r.exits, 0);
    }
    ck_assert(r.out_len < 1288895); /* not everything yet */
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(r.exits, 1);
    ck_assert_uint_eq(r.out_len, 1288895); /* bytes of `seq 1 200000` */
}
END_TEST

/* A stopped plugin's children: the exit callback at once with -ECANCELED,
 * the child killed and reaped (no zombie), other owners untouched. */
START_TEST(process_release_owner)
{
    static struct run a, b;
    ck_assert_int_eq(sh(&a, "echo $$; exec sleep 30", NULL, 0), 0);
    const char *argv[] = {"sh", "-c", "sleep 0.2; echo done", NULL};
    struct nova_process_spec spec = {.struct_size = sizeof spec, .file = "sh", .argv = argv};
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(nova__process_spawn(&loop, &owner_b, &spec, on_data, on_exit_cb, &b, NULL), 0);
    while (a.out_len == 0)
        uv_run(&loop, UV_RUN_ONCE);
    pid_t pid = (pid_t)atoi(a.out);
    ck_assert_uint_eq(nova__process_release_owner(&owner_a), 1);
    ck_assert_int_eq(a.exits, 1);
    ck_assert_int_eq(a.status, -ECANCELED);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(a.exits, 1); /* once */
    ck_assert_int_eq(b.exits, 1);
    ck_assert_int_eq(b.status, 0);
    ck_assert_int_eq(b.code, 0);
    /* reaped: the pid is gone, not a zombie */
    ck_assert_int_eq(kill(pid, 0), -1);
    ck_assert_int_eq(errno, ESRCH);
    ck_assert_uint_eq(nova__process_release_owner(&owner_a), 0);
}
END_TEST

static int stdin_writes, stdin_errors, stdin_last;
static void stdin_written(void *arg, int status)
{
    (void)arg;
    if (status == 0)
        stdin_writes++;
    else {
        stdin_errors++;
        stdin_last = status;
    }
}

static int spawn_in(struct run *r, const char *script)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    struct nova_process_spec spec = {
        .struct_size = sizeof spec, .file = "sh", .argv = argv, .stdin_pipe = true};
    memset(r, 0, sizeof *r);
    stdin_writes = stdin_errors = stdin_last = 0;
    return nova__process_spawn(&loop, &owner_a, &spec, on_data, on_exit_cb, r, &r->p);
}

/* A stdin pipe: writes arrive in order, close_stdin() is the end of file;
 * the data is copied (the caller's buffer changes at once). */
START_TEST(process_stdin_pipe)
{
    static struct run r;
    ck_assert_int_eq(spawn_in(&r, "exec cat"), 0);
    char chunk[64];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(chunk, sizeof chunk, "line %d\n", i);
        ck_assert_int_eq(nova__process_write_stdin(r.p, chunk, (size_t)n, stdin_written, NULL), 0);
        memset(chunk, '#', sizeof chunk);
    }
    ck_assert_int_eq(nova__process_close_stdin(r.p), 0);
    ck_assert_int_eq(nova__process_close_stdin(r.p), -EINVAL);
    ck_assert_int_eq(nova__process_write_stdin(r.p, "x", 1, stdin_written, NULL), -EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(stdin_writes, 100);
    ck_assert_int_eq(r.exits, 1);
    ck_assert_int_eq(r.code, 0);
    size_t at = 0;
    for (int i = 0; i < 100; i++) {
        int n = snprintf(chunk, sizeof chunk, "line %d\n", i);
        ck_assert(memcmp(r.out + at, chunk, (size_t)n) == 0);
        at += (size_t)n;
    }
    ck_assert_uint_eq(at, r.out_len);

    /* without stdin_pipe there is nothing to write to */
    ck_assert_int_eq(sh(&r, "exit 0", NULL, 0), 0);
    ck_assert_int_eq(nova__process_write_stdin(r.p, "x", 1, stdin_written, NULL), -EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
}
END_TEST

static struct run *big_run;
static void big_next(void *arg, int status);
static char big_chunk[1 << 16];
static void big_next(void *arg, int status)
{
    (void)arg;
    if (status != 0) {
        stdin_errors++;
        stdin_last = status;
        return;
    }
    stdin_writes++;
    if (stdin_writes < 200) /* 12.5 MiB to a child that reads one byte */
        nova__process_write_stdin(big_run->p, big_chunk, sizeof big_chunk, big_next, NULL);
}

/* A child that stops reading and exits: the pending write fails with
 * -EPIPE instead of killing the daemon with SIGPIPE. */
START_TEST(process_stdin_child_gone)
{
    static struct run r;
    ck_assert_int_eq(spawn_in(&r, "head -c 1 >/dev/null; exit 4"), 0);
    big_run = &r;
    ck_assert_int_eq(nova__process_write_stdin(r.p, big_chunk, sizeof big_chunk, big_next, NULL),
                     0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(r.exits, 1);
    ck_assert_int_eq(r.code, 4);
    ck_assert_int_eq(stdin_errors, 1);
    ck_assert(stdin_last == -EPIPE || stdin_last == -ECANCELED);
    ck_assert_int_lt(stdin_writes, 200);
}
END_TEST

/* ---- files ---------------------------------------------------------------- */

struct fstate {
    nova_file *f;
    int opens, open_status;
    int writes_ok, write_errors;
    int order[64];
    int order_n;
    int closes, close_status;
    int status; /* last path operation */
    int path_calls;
    char read[64];
    size_t read_len;
    int reads;
};

static void opened(void *arg, int status, nova_file *f)
{
    struct fstate *s = arg;
    s->opens++;
    s->open_status = status;
    s->f = f;
}

struct wtag {
    struct fstate *s;
    int n;
};

static void wrote(void *arg, int status)
{
    struct wtag *t = arg;
    if (status == 0)
        t->s->writes_ok++;
    else
        t->s->write_errors++;
    t->s->order[t->s->order_n++] = t->n;
}

static void closed(void *arg, int status)
{
    struct fstate *s = arg;
    s->closes++;
    s->close_status = status;
}

static void path_done(void *arg, int status)
{
    struct fstate *s = arg;
    s->path_calls++;
    s->status = status;
}

static void got(void *arg, int status, const void *data, size_t len)
{
    struct fstate *s = arg;
    s->reads++;
    if (status == 0 && len > 0) {
        memcpy(s->read + s->read_len, data, len);
        s->read_len += len;
    }
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Writes queued without waiting land in order; the data is copied, so the
 * caller's buffer may change at once. A rename with fsync_dir replaces the
 * target; reading back gives the bytes. */
START_TEST(file_write_queue_rename_read)
{
    const char *dir = tu_tempdir();
    char tmp[PATH_MAX], final[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/out.tmp", dir);
    snprintf(final, sizeof final, "%s/out.csv", dir);
    tu_write(dir, "out.csv", "old contents\n", NULL, 0);

    static struct fstate s;
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(
        nova__file_open(&loop, &owner_a, tmp, NOVA_FILE_WRITE | NOVA_FILE_EXCL, 0600, opened, &s),
        0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.open_status, 0);
    ck_assert_ptr_nonnull(s.f);
    static struct wtag tags[10];
    char line[32];
    for (int i = 0; i < 10; i++) {
        tags[i] = (struct wtag){&s, i};
        int n = snprintf(line, sizeof line, "row %d\n", i);
        ck_assert_int_eq(nova__file_write(s.f, line, (size_t)n, wrote, &tags[i]), 0);
        memset(line, 'X', sizeof line); /* copied: scribbling is harmless */
    }
    ck_assert_int_eq(nova__file_sync(s.f, path_done, &s), 0);
    ck_assert_int_eq(nova__file_close(s.f, closed, &s), 0);
    ck_assert_int_eq(nova__file_write(s.f, "late", 4, wrote, &tags[0]), -EINVAL); /* closing */
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.writes_ok, 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(s.order[i], i);
    ck_assert_int_eq(s.path_calls, 1);
    ck_assert_int_eq(s.status, 0);
    ck_assert_int_eq(s.closes, 1);
    ck_assert_int_eq(s.close_status, 0);

    ck_assert_int_eq(nova__file_rename(&loop, &owner_a, tmp, final, true, path_done, &s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.status, 0);
    ck_assert_int_eq(access(tmp, F_OK), -1);
    char buf[256];
    slurp(final, buf, sizeof buf);
    ck_assert_str_eq(buf, "row 0\nrow 1\nrow 2\nrow 3\nrow 4\nrow 5\nrow 6\nrow 7\nrow 8\nrow 9\n");

    memset(&s, 0, sizeof s);
    ck_assert_int_eq(nova__file_open(&loop, &owner_a, final, NOVA_FILE_READ, 0, opened, &s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(nova__file_read(s.f, 12, got, &s), 0);
    ck_assert_int_eq(nova__file_read(s.f, 12, got, &s), 0);
    ck_assert_int_eq(nova__file_close(s.f, closed, &s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.reads, 2);
    ck_assert_uint_eq(s.read_len, 24);
    ck_assert(memcmp(s.read, "row 0\nrow 1\nrow 2\nrow 3\n", 24) == 0);
    tu_rmtree(dir);
}
END_TEST

/* Errors come back as -errno in the callback: EXCL on an existing file,
 * a missing directory, unlink of nothing; mkdir creates parents and
 * accepts an existing directory but not a file in the way. */
START_TEST(file_errors_and_mkdir)
{
    const char *dir = tu_tempdir();
    char path[PATH_MAX];
    static struct fstate s;
    memset(&s, 0, sizeof s);
    tu_write(dir, "exists", "x", path, sizeof path);
    ck_assert_int_eq(
        nova__file_open(&loop, &owner_a, path, NOVA_FILE_WRITE | NOVA_FILE_EXCL, 0, opened, &s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.open_status, -EEXIST);
    ck_assert_ptr_null(s.f);

    snprintf(path, sizeof path, "%s/missing/file", dir);
    ck_assert_int_eq(nova__file_open(&loop, &owner_a, path, NOVA_FILE_WRITE, 0, opened, &s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.open_status, -ENOENT);
    ck_assert_int_eq(nova__file_open(&loop, &owner_a, path, 0, 0, opened, &s), -EINVAL);
    ck_assert_int_eq(
        nova__file_open(&loop, &owner_a, path, NOVA_FILE_READ | NOVA_FILE_APPEND, 0, opened, &s),
        -EINVAL);

    ck_assert_int_eq(nova__file_unlink(&loop, &owner_a, path, path_done, &s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.status, -ENOENT);

    snprintf(path, sizeof path, "%s/a/b/c/", dir);
    ck_assert_int_eq(nova__file_mkdir(&loop, &owner_a, path, 0700, path_done, &s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.status, 0);
    struct stat st;
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(nova__file_mkdir(&loop, &owner_a, path, 0700, path_done, &s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.status, 0);
    snprintf(path, sizeof path, "%s/exists/sub", dir);
    ck_assert_int_eq(nova__file_mkdir(&loop, &owner_a, path, 0700, path_done, &s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(s.status, -ENOTDIR);
    tu_rmtree(dir);
}
END_TEST

/* A stopped plugin: queued requests call back at once with -ECANCELED and
 * never run; its files are closed (no fd leaks); another owner's file is
 * untouched. */
START_TEST(file_release_owner)
{
    const char *dir = tu_tempdir();
    char pa[PATH_MAX], pb[PATH_MAX];
    snprintf(pa, sizeof pa, "%s/a", dir);
    snprintf(pb, sizeof pb, "%s/b", dir);
    static struct fstate a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(nova__file_open(&loop, &owner_a, pa, NOVA_FILE_WRITE, 0, opened, &a), 0);
    ck_assert_int_eq(nova__file_open(&loop, &owner_b, pb, NOVA_FILE_WRITE, 0, opened, &b), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_ptr_nonnull(a.f);
    ck_assert_ptr_nonnull(b.f);
    int fds_before = 0;
    char fdpath[64];
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
        fds_before += access(fdpath, F_OK) == 0;
    }
    static struct wtag ta[50], tb;
    static char big[1 << 16];
    for (int i = 0; i < 50; i++) {
        ta[i] = (struct wtag){&a, i % 16};
        ck_assert_int_eq(nova__file_write(a.f, big, sizeof big, wrote, &ta[i]), 0);
    }
    tb = (struct wtag){&b, 0};
    ck_assert_int_eq(nova__file_write(b.f, "kept", 4, wrote, &tb), 0);
    unsigned n = nova__file_release_owner(&owner_a);
    ck_assert_uint_eq(n, 50);
    ck_assert_int_eq(a.write_errors + a.writes_ok, 50); /* every callback, now */
    ck_assert_int_eq(a.writes_ok, 0);
    ck_assert_int_eq(nova__file_write(a.f, "x", 1, wrote, &ta[0]), -EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(a.write_errors, 50); /* no second callback */
    ck_assert_int_eq(b.writes_ok, 1);
    ck_assert_int_eq(nova__file_close(b.f, closed, &b), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    int fds_after = 0;
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
        fds_after += access(fdpath, F_OK) == 0;
    }
    ck_assert_int_eq(fds_after, fds_before - 2); /* a's (released) and b's (closed) */
    /* at most the one write in flight at the release reached the disk */
    struct stat st;
    ck_assert_int_eq(stat(pa, &st), 0);
    ck_assert_int_le(st.st_size, (off_t)sizeof big);
    char buf[16];
    slurp(pb, buf, sizeof buf);
    ck_assert_str_eq(buf, "kept");
    tu_rmtree(dir);
}
END_TEST

struct listing {
    int calls, status;
    size_t n;
    char names[16][64];
};

static void listed(void *arg, int status, const char *const *names, size_t n)
{
    struct listing *l = arg;
    l->calls++;
    l->status = status;
    l->n = n;
    for (size_t i = 0; i < n && i < 16; i++)
        snprintf(l->names[i], sizeof l->names[i], "%s", names[i]);
}

/* list: a directory's names, sorted, without . and ..; errors as -errno;
 * a release answers -ECANCELED at once and never calls back again. */
START_TEST(file_list)
{
    const char *dir = tu_tempdir();
    char path[PATH_MAX];
    static struct listing l;
    memset(&l, 0, sizeof l);
    tu_write(dir, "nova-b.csv", "b", NULL, 0);
    tu_write(dir, "nova-a.csv", "a", NULL, 0);
    tu_write(dir, ".hidden.tmp", "h", NULL, 0);
    snprintf(path, sizeof path, "%s/sub", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(nova__file_list(&loop, &owner_a, dir, listed, &l), 0);
    ck_assert_int_eq(l.calls, 0); /* never from inside the call */
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(l.calls, 1);
    ck_assert_int_eq(l.status, 0);
    ck_assert_uint_eq(l.n, 4);
    ck_assert_str_eq(l.names[0], ".hidden.tmp");
    ck_assert_str_eq(l.names[1], "nova-a.csv");
    ck_assert_str_eq(l.names[2], "nova-b.csv");
    ck_assert_str_eq(l.names[3], "sub");

    memset(&l, 0, sizeof l);
    ck_assert_int_eq(nova__file_list(&loop, &owner_a, path, listed, &l), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(l.status, 0);
    ck_assert_uint_eq(l.n, 0);

    snprintf(path, sizeof path, "%s/missing", dir);
    ck_assert_int_eq(nova__file_list(&loop, &owner_a, path, listed, &l), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(l.status, -ENOENT);
    ck_assert_uint_eq(l.n, 0);
    snprintf(path, sizeof path, "%s/nova-a.csv", dir);
    ck_assert_int_eq(nova__file_list(&loop, &owner_a, path, listed, &l), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(l.status, -ENOTDIR);
    ck_assert_int_eq(nova__file_list(&loop, &owner_a, "", listed, &l), -EINVAL);
    ck_assert_int_eq(nova__file_list(&loop, &owner_a, dir, NULL, &l), -EINVAL);

    memset(&l, 0, sizeof l);
    ck_assert_int_eq(nova__file_list(&loop, &owner_a, dir, listed, &l), 0);
    ck_assert_uint_eq(nova__file_release_owner(&owner_a), 1);
    ck_assert_int_eq(l.calls, 1);
    ck_assert_int_eq(l.status, -ECANCELED);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(l.calls, 1);
    tu_rmtree(dir);
}
END_TEST

static int release_closes;
static void close_then_release(void *arg, int status)
{
    (void)arg;
    ck_assert_int_eq(status, 0);
    release_closes++;
    /* what a command's done() does from here: the plugin ends */
    ck_assert_uint_eq(nova__file_release_owner(&owner_a), 0);
}

/* A plugin that ends from inside a close callback: the file is already
 * gone from its list (no second close, no use after free). */
START_TEST(file_release_inside_close_callback)
{
    const char *dir = tu_tempdir();
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/f", dir);
    static struct fstate s;
    memset(&s, 0, sizeof s);
    release_closes = 0;
    ck_assert_int_eq(nova__file_open(&loop, &owner_a, path, NOVA_FILE_WRITE, 0, opened, &s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_ptr_nonnull(s.f);
    static struct wtag t;
    t = (struct wtag){&s, 0};
    ck_assert_int_eq(nova__file_write(s.f, "abc", 3, wrote, &t), 0);
    ck_assert_int_eq(nova__file_close(s.f, close_then_release, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(release_closes, 1);
    ck_assert_int_eq(s.writes_ok, 1);
    char buf[8];
    slurp(path, buf, sizeof buf);
    ck_assert_str_eq(buf, "abc");
    tu_rmtree(dir);
}
END_TEST

static void setup(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0); /* nothing left open */
}

int main(void)
{
    Suite *s = suite_create("sys");
    TCase *tp = tcase_create("process");
    tcase_add_checked_fixture(tp, setup, teardown);
    tcase_set_timeout(tp, 30);
    tcase_add_test(tp, process_output_and_exit);
    tcase_add_test(tp, process_large_output_in_order);
    tcase_add_test(tp, process_stderr_tail_is_the_end);
    tcase_add_test(tp, process_env_is_explicit);
    tcase_add_test(tp, process_signal_and_missing_program);
    tcase_add_test(tp, process_pause_resume);
    tcase_add_test(tp, process_release_owner);
    tcase_add_test(tp, process_stdin_pipe);
    tcase_add_test(tp, process_stdin_child_gone);
    suite_add_tcase(s, tp);
    TCase *tf = tcase_create("file");
    tcase_add_checked_fixture(tf, setup, teardown);
    tcase_set_timeout(tf, 30);
    tcase_add_test(tf, file_write_queue_rename_read);
    tcase_add_test(tf, file_errors_and_mkdir);
    tcase_add_test(tf, file_release_owner);
    tcase_add_test(tf, file_release_inside_close_callback);
    tcase_add_test(tf, file_list);
    suite_add_tcase(s, tf);
    return tu_run(s);
}
