/* file - file operations on libuv's thread pool; see file.h.
 *
 * Each operation is a request run by uv_queue_work() with plain system
 * calls: a write loops until every byte is down, a rename with fsync_dir
 * fsyncs the directory in the same request. Requests on one file run one
 * at a time, in the order they were made, so a plugin may queue several
 * writes without waiting. */
#include "config.h"
#include "sys/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum op { OP_OPEN, OP_WRITE, OP_READ, OP_SYNC, OP_CLOSE, OP_RENAME, OP_UNLINK, OP_MKDIR, OP_LIST };

struct nova_file {
    uv_loop_t *loop;
    const void *owner;
    int fd;
    bool closing;                /* close() was asked for: nothing more may be queued */
    bool released;               /* the owner stopped: no callbacks, fd closed when idle */
    struct request *head, *tail; /* FIFO; head is in flight when running */
    bool running;
    struct nova_file *prev, *next;
};

struct request {
    uv_work_t work;
    enum op op;
    const void *owner;
    struct nova_file *file; /* for file operations */
    struct request *next_in_file;
    struct request *prev, *next; /* every request, for release_owner */
    bool cancelled;              /* its callback already ran (-ECANCELED) */
    /* in */
    char *path, *path2;
    uint32_t flags;
    int mode;
    bool fsync_dir;
    size_t len;
    /* out */
    int status;
    int fd;
    char *buf;
    size_t got;
    char **names; /* OP_LIST: got of them, each malloc'd */
    /* callbacks: one of them, by op */
    nova_file_cb cb;
    nova_file_open_cb open_cb;
    nova_file_read_cb read_cb;
    nova_file_list_cb list_cb;
    void *arg;
};

static struct request *requests;
static struct nova_file *files;

static void list_add_request(struct request *r)
{
    r->next = requests;
    if (requests)
        requests->prev = r;
    requests = r;
}

static void list_del_request(struct request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (requests == r)
        requests = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void list_add_file(struct nova_file *f)
{
    f->next = files;
    if (files)
        files->prev = f;
    files = f;
}

static void list_del_file(struct nova_file *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else if (files == f)
        files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->prev = f->next = NULL;
}

static void free_request(struct request *r)
{
    if (r->names != NULL)
        for (size_t i = 0; i < r->got; i++)
            free(r->names[i]);
    free(r->names);
    free(r->path);
    free(r->path2);
    free(r->buf);
    free(r);
}

/* ---- the thread pool side: plain system calls ------------------------------- */

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir)
            return -ENAMETOOLONG;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int mkdir_parents(char *path, int mode)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        path[--len] = '\0';
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, (mode_t)mode) == 0 || errno == EEXIST ? 0 : -errno;
        *p = '/';
        if (rc != 0)
            return rc;
    }
    if (mkdir(path, (mode_t)mode) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of r->path into r->names (r->got), sorted. */
static int list_dir(struct request *r)
{
    DIR *d = opendir(r->path);
    if (d == NULL)
        return -errno;
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (r->got == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **n = realloc(r->names, ncap * sizeof *n);
            if (n == NULL) {
                rc = -ENOMEM;
                break;
            }
            r->names = n;
            cap = ncap;
        }
        if ((r->names[r->got] = strdup(e->d_name)) == NULL) {
            rc = -ENOMEM;
            break;
        }
        r->got++;
    }
    if (rc == 0 && errno != 0)
        rc = -errno;
    closedir(d);
    if (rc == 0 && r->got > 1)
        qsort(r->names, r->got, sizeof *r->names, cmp_name);
    return rc;
}

static void run_request(uv_work_t *w)
{
    struct request *r = w->data;
    int fd = r->file != NULL ? r->file->fd : -1;
    switch (r->op) {
    case OP_OPEN: {
        int oflags = O_CLOEXEC;
        if (r->flags & NOVA_FILE_WRITE) {
            oflags |= (r->flags & NOVA_FILE_READ) ? O_RDWR : O_WRONLY;
            oflags |= O_CREAT;
            oflags |= (r->flags & NOVA_FILE_APPEND) ? O_APPEND : O_TRUNC;
            if (r->flags & NOVA_FILE_EXCL)
                oflags |= O_EXCL;
        } else
            oflags |= O_RDONLY;
        r->fd = open(r->path, oflags, (mode_t)r->mode);
        r->status = r->fd >= 0 ? 0 : -errno;
        break;
    }
    case OP_WRITE:
        r->status = write_all(fd, r->buf, r->len);
        break;
    case OP_READ: {
        ssize_t n;
        do
            n = read(fd, r->buf, r->len);
        while (n < 0 && errno == EINTR);
        r->status = n >= 0 ? 0 : -errno;
        r->got = n > 0 ? (size_t)n : 0;
        break;
    }
    case OP_SYNC:
        r->status = fsync(fd) == 0 ? 0 : -errno;
        break;
    case OP_CLOSE:
        r->status = close(fd) == 0 ? 0 : -errno;
        break;
    case OP_RENAME:
        r->status = rename(r->path, r->path2) == 0 ? 0 : -errno;
        if (r->status == 0 && r->fsync_dir)
            r->status = fsync_parent(r->path2);
        break;
    case OP_UNLINK:
        r->status = unlink(r->path) == 0 ? 0 : -errno;
        break;
    case OP_MKDIR:
        r->status = mkdir_parents(r->path, r->mode);
        break;
    case OP_LIST:
        r->status = list_dir(r);
        break;
    }
}

/* ---- the loop side ------------------------------------------------------------ */

static void file_next(struct nova_file *f);

static void finish_file(struct nova_file *f)
{
    list_del_file(f);
    free(f);
}

static void request_done(uv_work_t *w, int status)
{
    struct request *r = w->data;
    struct nova_file *f = r->file;
    list_del_request(r);
    if (status == UV_ECANCELED && r->status == 0)
        r->status = -ECANCELED; /* never ran */
    if (r->op == OP_OPEN) {
        if (r->cancelled) {
            if (r->fd >= 0)
                close(r->fd); /* nobody wants it */
        } else if (r->status != 0)
            r->open_cb(r->arg, r->status, NULL);
        else {
            struct nova_file *nf = calloc(1, sizeof *nf);
            if (nf == NULL) {
                close(r->fd);
                r->open_cb(r->arg, -ENOMEM, NULL);
            } else {
                nf->loop = w->loop;
                nf->owner = r->owner;
                nf->fd = r->fd;
                list_add_file(nf);
                r->open_cb(r->arg, 0, nf);
            }
        }
        free_request(r);
        return;
    }
    if (f != NULL) {
        f->head = r->next_in_file;
        if (f->head == NULL)
            f->tail = NULL;
        f->running = false;
    }
    bool closed = r->op == OP_CLOSE;
    /* A closed file leaves the owner's list before its callback runs: the
     * callback may end the plugin (a command's done()), whose release must
     * not find the file and queue a second close of it. */
    if (closed && f != NULL)
        list_del_file(f);
    if (!r->cancelled) {
        if (r->op == OP_LIST)
            r->list_cb(r->arg, r->status, r->status == 0 ? (const char *const *)r->names : NULL,
                       r->status == 0 ? r->got : 0);
        else if (r->op == OP_READ)
            r->read_cb(r->arg, r->status, r->buf, r->got);
        else
            r->cb(r->arg, r->status);
    }
    free_request(r);
    if (f == NULL)
        return;
    if (closed)
        free(f);
    else
        file_next(f);
}

static void submit(uv_loop_t *loop, struct request *r)
{
    r->work.data = r;
    list_add_request(r);
    /* uv_queue_work fails only on bad arguments, which these are not */
    uv_queue_work(loop, &r->work, run_request, request_done);
}

/* Starts the file's next request when none is running. */
static void file_next(struct nova_file *f)
{
    if (f->running)
        return;
    if (f->head == NULL) {
        if (f->released && !f->closing) {
            /* the owner stopped and nothing is left: close on the pool */
            struct request *r = calloc(1, sizeof *r);
            if (r == NULL) {
                close(f->fd);
                finish_file(f);
                return;
            }
            r->op = OP_CLOSE;
            r->owner = f->owner;
            r->file = f;
            r->cancelled = true;
            f->closing = true;
            f->head = f->tail = r;
        } else
            return;
    }
    f->running = true;
    submit(f->loop, f->head);
}

static struct request *new_request(enum op op, const void *owner)
{
    struct request *r = calloc(1, sizeof *r);
    if (r != NULL) {
        r->op = op;
        r->owner = owner;
        r->fd = -1;
    }
    return r;
}

static int file_enqueue(struct nova_file *f, struct request *r)
{
    r->file = f;
    if (f->tail)
        f->tail->next_in_file = r;
    else
        f->head = r;
    f->tail = r;
    file_next(f);
    return 0;
}

static bool file_usable(const struct nova_file *f)
{
    return f != NULL && !f->closing && !f->released;
}

int nova__file_open(uv_loop_t *loop, const void *owner, const char *path, uint32_t flags, int mode,
                    nova_file_open_cb cb, void *arg)
{
    if (loop == NULL || path == NULL || *path == '\0' || cb == NULL ||
        (flags & (NOVA_FILE_READ | NOVA_FILE_WRITE)) == 0 ||
        ((flags & (NOVA_FILE_APPEND | NOVA_FILE_EXCL)) && !(flags & NOVA_FILE_WRITE)) ||
        (flags & ~0x0fu))
        return -EINVAL;
    struct request *r = new_request(OP_OPEN, owner);
    if (r == NULL || (r->path = strdup(path)) == NULL) {
        free(r);
        return -ENOMEM;
    }
    r->flags = flags;
    r->mode = mode > 0 ? mode : 0600;
    r->open_cb = cb;
    r->arg = arg;
    submit(loop, r);
    return 0;
}

static int file_op(nova_file *f, enum op op, nova_file_cb cb, void *arg, struct request **out)
{
    if (!file_usable(f) || cb == NULL)
        return -EINVAL;
    struct request *r = new_request(op, f->owner);
    if (r == NULL)
        return -ENOMEM;
    r->cb = cb;
    r->arg = arg;
    *out = r;
    return 0;
}

int nova__file_write(nova_file *f, const void *data, size_t len, nova_file_cb cb, void *arg)
{
    struct request *r;
    if (data == NULL && len > 0)
        return -EINVAL;
    int rc = file_op(f, OP_WRITE, cb, arg, &r);
    if (rc != 0)
        return rc;
    /* A copy: a plugin stopped mid-write gets its callback at once and may
     * free its buffer while the pool is still writing. */
    if (len > 0 && (r->buf = malloc(len)) == NULL) {
        free(r);
        return -ENOMEM;
    }
    if (len > 0)
        memcpy(r->buf, data, len);
    r->len = len;
    return file_enqueue(f, r);
}

int nova__file_read(nova_file *f, size_t len, nova_file_read_cb cb, void *arg)
{
    if (!file_usable(f) || cb == NULL || len == 0)
        return -EINVAL;
    struct request *r = new_request(OP_READ, f->owner);
    if (r == NULL || (r->buf = malloc(len)) == NULL) {
        free(r);
        return -ENOMEM;
    }
    r->len = len;
    r->read_cb = cb;
    r->arg = arg;
    return file_enqueue(f, r);
}

int nova__file_sync(nova_file *f, nova_file_cb cb, void *arg)
{
    struct request *r;
    int rc = file_op(f, OP_SYNC, cb, arg, &r);
    return rc != 0 ? rc : file_enqueue(f, r);
}

int nova__file_close(nova_file *f, nova_file_cb cb, void *arg)
{
    struct request *r;
    int rc = file_op(f, OP_CLOSE, cb, arg, &r);
    if (rc != 0)
        return rc;
    f->closing = true;
    return file_enqueue(f, r);
}

static int path_op(uv_loop_t *loop, const void *owner, enum op op, const char *path,
                   const char *path2, nova_file_cb cb, void *arg, struct request **out)
{
    if (loop == NULL || path == NULL || *path == '\0' || cb == NULL ||
        (op == OP_RENAME && (path2 == NULL || *path2 == '\0')))
        return -EINVAL;
    struct request *r = new_request(op, owner);
    if (r == NULL || (r->path = strdup(path)) == NULL ||
        (path2 != NULL && (r->path2 = strdup(path2)) == NULL)) {
        if (r != NULL)
            free(r->path);
        free(r);
        return -ENOMEM;
    }
    r->cb = cb;
    r->arg = arg;
    *out = r;
    return 0;
}

int nova__file_rename(uv_loop_t *loop, const void *owner, const char *from, const char *to,
                      bool fsync_dir, nova_file_cb cb, void *arg)
{
    struct request *r;
    int rc = path_op(loop, owner, OP_RENAME, from, to, cb, arg, &r);
    if (rc != 0)
        return rc;
    r->fsync_dir = fsync_dir;
    submit(loop, r);
    return 0;
}

int nova__file_unlink(uv_loop_t *loop, const void *owner, const char *path, nova_file_cb cb,
                      void *arg)
{
    struct request *r;
    int rc = path_op(loop, owner, OP_UNLINK, path, NULL, cb, arg, &r);
    if (rc == 0)
        submit(loop, r);
    return rc;
}

int nova__file_mkdir(uv_loop_t *loop, const void *owner, const char *path, int mode,
                     nova_file_cb cb, void *arg)
{
    struct request *r;
    int rc = path_op(loop, owner, OP_MKDIR, path, NULL, cb, arg, &r);
    if (rc != 0)
        return rc;
    r->mode = mode > 0 ? mode : 0700;
    submit(loop, r);
    return 0;
}

int nova__file_list(uv_loop_t *loop, const void *owner, const char *dir, nova_file_list_cb cb,
                    void *arg)
{
    if (loop == NULL || dir == NULL || *dir == '\0' || cb == NULL)
        return -EINVAL;
    struct request *r = new_request(OP_LIST, owner);
    if (r == NULL || (r->path = strdup(dir)) == NULL) {
        free(r);
        return -ENOMEM;
    }
    r->list_cb = cb;
    r->arg = arg;
    submit(loop, r);
    return 0;
}

static void cancel_request(struct request *r, unsigned *n)
{
    if (r->cancelled)
        return;
    r->cancelled = true;
    (*n)++;
    if (r->op == OP_LIST)
        r->list_cb(r->arg, -ECANCELED, NULL, 0);
    else if (r->op == OP_OPEN)
        r->open_cb(r->arg, -ECANCELED, NULL);
    else if (r->op == OP_READ)
        r->read_cb(r->arg, -ECANCELED, NULL, 0);
    else
        r->cb(r->arg, -ECANCELED);
}

unsigned nova__file_release_owner(const void *owner)
{
    unsigned n = 0;
    /* Requests in the pool finish there; their callbacks run now. */
    for (struct request *r = requests; r != NULL; r = r->next)
        if (r->owner == owner)
            cancel_request(r, &n);
    for (struct nova_file *f = files, *next; f != NULL; f = next) {
        next = f->next;
        if (f->owner != owner || f->released)
            continue;
        f->released = true;
        /* queued requests never run: call back and drop them */
        struct request *keep = f->running ? f->head : NULL;
        struct request *r = keep != NULL ? keep->next_in_file : f->head;
        while (r != NULL) {
            struct request *after = r->next_in_file;
            cancel_request(r, &n);
            if (r->op == OP_CLOSE)
                f->closing = false; /* the release closes it instead */
            free_request(r);
            r = after;
        }
        if (keep != NULL) {
            keep->next_in_file = NULL;
            f->head = f->tail = keep;
        } else {
            f->head = f->tail = NULL;
            f->closing = false;
            file_next(f);
        }
    }
    return n;
}
