/* process - child processes on the loop; see process.h. */
#include "config.h"
#include "sys/process.h"
#include "common/sigpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK 65536

struct stdin_write {
    uv_write_t req;
    struct nova_process *p;
    struct stdin_write *prev, *next;
    void (*cb)(void *arg, int status);
    void *arg;
    bool cancelled; /* its callback already ran */
    char data[];
};

struct nova_process {
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_pipe_t in; /* with spec.stdin_pipe */
    uv_shutdown_t shut;
    bool has_in, in_closed;
    struct stdin_write *writes;       /* pending, for release_owner */
    struct nova_process *prev, *next; /* every child, for release_owner */
    const void *owner;
    nova_process_data_cb on_stdout;
    nova_process_exit_cb on_exit;
    void *arg;
    char *tail; /* the last `keep` bytes of stderr, a ring */
    size_t keep, tail_len, tail_at;
    int stdin_fd;
    int open; /* handles not closed yet */
    bool exited, out_done, paused, cancelled, called;
    int64_t exit_status;
    int term_signal;
    char buf[READ_CHUNK];
};

static struct nova_process *children;

static void unlink_child(struct nova_process *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else if (children == p)
        children = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

static void on_closed(uv_handle_t *h)
{
    struct nova_process *p = h->data;
    if (--p->open > 0)
        return;
    free(p->tail);
    free(p);
}

static void close_in(struct nova_process *p)
{
    if (p->has_in && !uv_is_closing((uv_handle_t *)&p->in))
        uv_close((uv_handle_t *)&p->in, on_closed);
}

static void close_all(struct nova_process *p)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&p->proc, (uv_handle_t *)&p->out, (uv_handle_t *)&p->err};
    for (size_t i = 0; i < 3; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], on_closed);
    close_in(p);
}

/* Calls on_exit once everything is known: the exit status and the end of
 * stdout (so the consumer has every byte first). */
static void maybe_finish(struct nova_process *p)
{
    if (p->called || !p->exited || !p->out_done)
        return;
    p->called = true;
    unlink_child(p);
    char *text = malloc(p->tail_len + 1);
    size_t n = 0;
    if (text != NULL) {
        /* the ring, oldest byte first */
        size_t start = p->tail_len < p->keep ? 0 : p->tail_at;
        for (size_t i = 0; i < p->tail_len; i++)
            text[n++] = p->tail[(start + i) % p->keep];
        text[n] = '\0';
    }
    int code = p->term_signal > 0 ? -1 : (int)p->exit_status;
    p->on_exit(p->arg, 0, code, p->term_signal, text != NULL ? text : "");
    free(text);
    close_all(p);
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
    struct nova_process *p = proc->data;
    p->exited = true;
    p->exit_status = status;
    p->term_signal = term_signal;
    if (p->cancelled) {
        /* released earlier: the handle was kept open to reap the child */
        close_all(p);
        return;
    }
    maybe_finish(p);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct nova_process *p = h->data;
    *buf = uv_buf_init(p->buf, sizeof p->buf);
}

static void on_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct nova_process *p = s->data;
    if (n > 0 && !p->cancelled)
        p->on_stdout(p->arg, buf->base, (size_t)n);
    else if (n < 0) {
        uv_read_stop(s);
        p->out_done = true;
        if (!p->cancelled)
            maybe_finish(p);
    }
}

static void on_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct nova_process *p = s->data;
    if (n < 0) {
        uv_read_stop(s);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        p->tail[p->tail_at] = buf->base[i];
        p->tail_at = (p->tail_at + 1) % p->keep;
        if (p->tail_len < p->keep)
            p->tail_len++;
    }
}

/* PATH, HOME and LANG from the daemon, then the spec's entries. */
static char **child_env(const char *const *extra)
{
    static const char *const inherit[] = {"PATH", "HOME", "LANG", NULL};
    size_t n = 0;
    for (const char *const *e = extra; e && *e; e++)
        n++;
    char **env = calloc(n + 4, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; inherit[i]; i++) {
        const char *v = getenv(inherit[i]);
        if (v == NULL)
            continue;
        size_t len = strlen(inherit[i]) + strlen(v) + 2;
        if ((env[k] = malloc(len)) == NULL)
            goto fail;
        snprintf(env[k++], len, "%s=%s", inherit[i], v);
    }
    for (const char *const *e = extra; e && *e; e++)
        if ((env[k++] = strdup(*e)) == NULL)
            goto fail;
    return env;
fail:
    for (size_t i = 0; i < k; i++)
        free(env[i]);
    free(env);
    return NULL;
}

static void free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

int nova__process_spawn(uv_loop_t *loop, const void *owner, const struct nova_process_spec *spec,
                        nova_process_data_cb on_stdout, nova_process_exit_cb on_exit, void *arg,
                        nova_process **out)
{
    if (out != NULL)
        *out = NULL;
    if (loop == NULL || spec == NULL || spec->struct_size < sizeof *spec || spec->file == NULL ||
        spec->argv == NULL || spec->argv[0] == NULL || on_stdout == NULL || on_exit == NULL)
        return -EINVAL;
    struct nova_process *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->keep = spec->stderr_keep > 0 ? spec->stderr_keep : 4096;
    p->tail = malloc(p->keep);
    char **env = child_env(spec->env);
    if (p->tail == NULL || env == NULL) {
        free(p->tail);
        free_env(env);
        free(p);
        return -ENOMEM;
    }
    p->has_in = spec->stdin_pipe;
    p->stdin_fd = -1;
    if (p->has_in)
        nova__ignore_sigpipe(); /* a child that exits early: writes fail, we live */
    else
        p->stdin_fd =
            open(spec->stdin_file != NULL ? spec->stdin_file : "/dev/null", O_RDONLY | O_CLOEXEC);
    if (!p->has_in && p->stdin_fd < 0) {
        int rc = -errno;
        free(p->tail);
        free_env(env);
        free(p);
        return rc;
    }
    p->owner = owner;
    p->on_stdout = on_stdout;
    p->on_exit = on_exit;
    p->arg = arg;
    uv_pipe_init(loop, &p->out, 0);
    uv_pipe_init(loop, &p->err, 0);
    if (p->has_in)
        uv_pipe_init(loop, &p->in, 0);
    p->proc.data = p->out.data = p->err.data = p->in.data = p;
    uv_stdio_container_t stdio[3] = {
        p->has_in ? (uv_stdio_container_t){.flags = UV_CREATE_PIPE | UV_READABLE_PIPE,
                                           .data.stream = (uv_stream_t *)&p->in}
                  : (uv_stdio_container_t){.flags = UV_INHERIT_FD, .data.fd = p->stdin_fd},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->err},
    };
    uv_process_options_t opts = {
        .exit_cb = on_exit_cb,
        .file = spec->file,
        .args = (char **)(uintptr_t)spec->argv,
        .env = env,
        .cwd = spec->cwd,
        .stdio_count = 3,
        .stdio = stdio,
    };
    int rc = uv_spawn(loop, &p->proc, &opts);
    free_env(env);
    if (p->stdin_fd >= 0)
        close(p->stdin_fd);
    p->open = p->has_in ? 4 : 3;
    if (rc != 0) {
        /* The process handle needs closing too once initialised. */
        p->called = true;
        close_all(p);
        return rc;
    }
    uv_read_start((uv_stream_t *)&p->out, on_alloc, on_out);
    uv_read_start((uv_stream_t *)&p->err, on_alloc, on_err);
    p->next = children;
    if (children)
        children->prev = p;
    children = p;
    if (out != NULL)
        *out = p;
    return 0;
}

void nova__process_pause(nova_process *p)
{
    if (p != NULL && !p->paused && !p->out_done && !p->cancelled) {
        uv_read_stop((uv_stream_t *)&p->out);
        p->paused = true;
    }
}

void nova__process_resume(nova_process *p)
{
    if (p != NULL && p->paused && !p->out_done && !p->cancelled) {
        uv_read_start((uv_stream_t *)&p->out, on_alloc, on_out);
        p->paused = false;
    }
}

int nova__process_kill(nova_process *p, int signum)
{
    if (p == NULL || p->exited)
        return -ESRCH;
    return uv_process_kill(&p->proc, signum);
}

static void on_written(uv_write_t *req, int status)
{
    struct stdin_write *w = req->data;
    struct nova_process *p = w->p;
    if (w->prev)
        w->prev->next = w->next;
    else if (p->writes == w)
        p->writes = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (!w->cancelled)
        w->cb(w->arg, status == 0 ? 0 : status == UV_ECANCELED ? -ECANCELED : status);
    free(w);
}

int nova__process_write_stdin(nova_process *p, const void *data, size_t len,
                              void (*cb)(void *arg, int status), void *arg)
{
    if (p == NULL || !p->has_in || p->in_closed || p->cancelled || p->called || cb == NULL ||
        (data == NULL && len > 0))
        return -EINVAL;
    struct stdin_write *w = malloc(sizeof *w + (len > 0 ? len : 1));
    if (w == NULL)
        return -ENOMEM;
    memset(w, 0, sizeof *w);
    if (len > 0)
        memcpy(w->data, data, len);
    w->p = p;
    w->cb = cb;
    w->arg = arg;
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&p->in, &buf, 1, on_written);
    if (rc != 0) {
        free(w);
        return rc;
    }
    w->next = p->writes;
    if (p->writes)
        p->writes->prev = w;
    p->writes = w;
    return 0;
}

static void on_stdin_shut(uv_shutdown_t *req, int status)
{
    (void)status;
    close_in(req->data);
}

int nova__process_close_stdin(nova_process *p)
{
    if (p == NULL || !p->has_in || p->in_closed)
        return -EINVAL;
    p->in_closed = true;
    p->shut.data = p;
    if (uv_is_closing((uv_handle_t *)&p->in) ||
        uv_shutdown(&p->shut, (uv_stream_t *)&p->in, on_stdin_shut) != 0)
        close_in(p);
    return 0;
}

unsigned nova__process_release_owner(const void *owner)
{
    unsigned n = 0;
    for (struct nova_process *p = children, *next; p != NULL; p = next) {
        next = p->next;
        if (p->owner != owner || p->called)
            continue;
        p->cancelled = true;
        p->called = true;
        unlink_child(p);
        for (struct stdin_write *w = p->writes; w != NULL; w = w->next) {
            w->cancelled = true;
            w->cb(w->arg, -ECANCELED);
        }
        p->on_exit(p->arg, -ECANCELED, -1, 0, "");
        n++;
        close_in(p);
        if (p->exited) {
            close_all(p);
            continue;
        }
        /* The process handle stays open until the child is reaped (else it
         * would linger as a zombie); its pipes close now. */
        uv_process_kill(&p->proc, SIGKILL);
        uv_close((uv_handle_t *)&p->out, on_closed);
        uv_close((uv_handle_t *)&p->err, on_closed);
    }
    return n;
}
