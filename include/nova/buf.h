/*
 * nova/buf.h - a growable text buffer for plugins (header only).
 *
 * Plugins build JSON documents, SQL, CSV rows and mail messages piece by
 * piece; this is the one buffer they share instead of each writing its own.
 * Zero-initialise it ({0}); p is NUL-terminated after any append (NULL
 * while nothing was appended). An allocation failure sets oom and makes
 * every later append a no-op, so a caller checks once, at the end.
 *
 * Ownership: the buffer owns p until nova_buf_free(); a caller may take p
 * instead (then reset the struct to {0}).
 */
#ifndef NOVA_BUF_H
#define NOVA_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nova_buf {
    char *p;
    size_t len, cap;
    bool oom; /* an allocation failed: the content is incomplete */
};

static inline void nova_buf_add(struct nova_buf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = (char *)realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void nova_buf_str(struct nova_buf *b, const char *s)
{
    nova_buf_add(b, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline void
nova_buf_printf(struct nova_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        nova_buf_add(b, small, (size_t)n);
        return;
    }
    char *big = (char *)malloc((size_t)n + 1);
    if (big == NULL) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    nova_buf_add(b, big, (size_t)n);
    free(big);
}

/* Empties the buffer, keeping its memory (and clearing oom). */
static inline void nova_buf_reset(struct nova_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->p != NULL)
        b->p[0] = '\0';
}

static inline void nova_buf_free(struct nova_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

#endif /* NOVA_BUF_H */
