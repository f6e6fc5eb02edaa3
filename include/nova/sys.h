/*
 * nova/sys.h - child processes and files, off the event loop (ABI 1.3).
 *
 * A plugin never blocks the loop: a program (pg_dump, a compressor) runs as
 * a child process whose output arrives in callbacks, and file writes,
 * fsyncs, renames and deletes run on the runtime's thread pool with a
 * callback when done. Probe with NOVA_HOST_HAS(host, process) and
 * NOVA_HOST_HAS(host, file).
 *
 * Rules (as for every host service, include/nova/plugin.h):
 *   - A call that returns an error never calls back; otherwise its callback
 *     runs exactly once, on the loop thread, including when the plugin is
 *     stopped (then with -ECANCELED; a child process still running is
 *     killed with SIGKILL first).
 *   - Buffers and strings passed in are copied (a write's data too) or
 *     borrowed only until the call returns.
 */
#ifndef NOVA_SYS_H
#define NOVA_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nova/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- child processes ------------------------------------------------------ */

typedef struct nova_process nova_process;

struct nova_process_spec {
    uint32_t struct_size;    /* sizeof(struct nova_process_spec) */
    const char *file;        /* program: a path, or a name looked up in PATH */
    const char *const *argv; /* argv[0] first, NULL-terminated */
    const char *const *env;  /* "NAME=value" entries, NULL-terminated; the child gets
                                only these plus PATH, HOME and LANG from the daemon
                                (so a secret goes in env, never in argv) */
    const char *cwd;         /* NULL = the daemon's */
    const char *stdin_file;  /* a file to read stdin from; NULL = /dev/null */
    size_t stderr_keep;      /* bytes of stderr kept for the exit callback; 0 = 4096 */
    bool stdin_pipe;         /* stdin is a pipe fed with write_stdin() (stdin_file unused) */
};

/* A chunk of the child's stdout, in order; data is valid during the call.
 * Call host->process->pause() from here to stop reading until resume(). */
typedef void (*nova_process_data_cb)(void *arg, const void *data, size_t len);

/* The child exited (after all of stdout was delivered: a grandchild that
 * keeps stdout open delays this until it exits). status: 0, or
 * -ECANCELED (the plugin is stopping), or -errno when the program could not
 * be started (then exit_code is -1). exit_code is the exit status, or -1
 * when term_signal (> 0) ended it. stderr_tail: the last stderr_keep bytes
 * the child wrote ("" when none), valid during the call. */
typedef void (*nova_process_exit_cb)(void *arg, int status, int exit_code, int term_signal,
                                     const char *stderr_tail);

struct nova_process_api {
    uint32_t struct_size;
    /* Starts the program. *out (may be NULL) is valid until on_exit has
     * run. Returns 0, -EINVAL (bad spec), -ENOENT (program not found),
     * -ENOMEM. */
    int (*spawn)(const struct nova_host *host, const struct nova_process_spec *spec,
                 nova_process_data_cb on_stdout, nova_process_exit_cb on_exit, void *arg,
                 nova_process **out);
    /* Flow control of stdout (for a consumer slower than the child). */
    void (*pause)(nova_process *p);
    void (*resume)(nova_process *p);
    /* Sends a signal (SIGTERM, SIGKILL). Returns 0 or -errno. */
    int (*kill)(nova_process *p, int signum);
    /* With spec.stdin_pipe: writes data (copied) to the child's stdin, in
     * order; cb(arg, 0) once the child's pipe took it, or -EPIPE when the
     * child closed its stdin. Wait for cb before writing more (flow
     * control). close_stdin() sends end-of-file after the pending writes.
     * Both return 0, or -EINVAL (no stdin pipe, or already closed). */
    int (*write_stdin)(nova_process *p, const void *data, size_t len,
                       void (*cb)(void *arg, int status), void *arg);
    int (*close_stdin)(nova_process *p);
};

/* ---- files ------------------------------------------------------------------- */

typedef struct nova_file nova_file;

typedef void (*nova_file_cb)(void *arg, int status);
typedef void (*nova_file_open_cb)(void *arg, int status, nova_file *file);
typedef void (*nova_file_read_cb)(void *arg, int status, const void *data, size_t len);
/* names: the directory's entries, n of them; borrowed during the call. */
typedef void (*nova_file_list_cb)(void *arg, int status, const char *const *names, size_t n);

#define NOVA_FILE_READ   0x01u /* open for reading */
#define NOVA_FILE_WRITE  0x02u /* open for writing: created (mode), truncated */
#define NOVA_FILE_APPEND 0x04u /* with WRITE: append instead of truncating */
#define NOVA_FILE_EXCL   0x08u /* with WRITE: fail with -EEXIST when it exists */

struct nova_file_api {
    uint32_t struct_size;
    /* Opens path; on success the callback gets the file, valid until the
     * callback of close(). mode: permissions of a created file (0600). */
    int (*open)(const struct nova_host *host, const char *path, uint32_t flags, int mode,
                nova_file_open_cb cb, void *arg);
    /* Writes all of data (copied) after what was written before. Requests on
     * one file run in the order they are made, so writes may be queued
     * without waiting for each callback. */
    int (*write)(nova_file *f, const void *data, size_t len, nova_file_cb cb, void *arg);
    /* Reads up to len bytes at the current position; len 0 in the callback
     * is the end of the file. */
    int (*read)(nova_file *f, size_t len, nova_file_read_cb cb, void *arg);
    int (*sync)(nova_file *f, nova_file_cb cb, void *arg); /* fsync */
    int (*close)(nova_file *f, nova_file_cb cb, void *arg);
    /* Path operations. rename() replaces `to` atomically; fsync_dir also
     * fsyncs to's directory so the rename survives a crash. */
    int (*rename)(const struct nova_host *host, const char *from, const char *to, bool fsync_dir,
                  nova_file_cb cb, void *arg);
    int (*unlink)(const struct nova_host *host, const char *path, nova_file_cb cb, void *arg);
    int (*mkdir)(const struct nova_host *host, const char *path, int mode, nova_file_cb cb,
                 void *arg); /* creates parents; an existing directory is fine */
    /* Appended in ABI 1.3 (probe struct_size): the names in directory dir,
     * "." and ".." left out, sorted bytewise (strcmp), read on the thread
     * pool. status 0, or -ENOENT, -ENOTDIR, -EACCES... with n 0. For
     * directories a plugin owns (a few thousand entries, not millions). */
    int (*list)(const struct nova_host *host, const char *dir, nova_file_list_cb cb, void *arg);
};

#ifdef __cplusplus
}
#endif
#endif /* NOVA_SYS_H */
