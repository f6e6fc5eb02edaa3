/*
 * httpd_parse - the request head parser (see httpd_parse.h).
 *
 * Strict where a lenient reading could make two parsers disagree about
 * where a request ends (bare CR, folded lines, space before a colon, two
 * differing Content-Lengths, Content-Length with Transfer-Encoding, no or
 * several Host fields in HTTP/1.1), lenient where it cannot: a bare LF ends
 * a line, empty lines before a request are skipped.
 */
#include "config.h"
#include "httpd/httpd_parse.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

/* Comparisons below are ASCII-only on purpose: the locale must not change
 * what a field name matches. */
static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 9110's tchar: what methods and field names are made of. */
static bool is_tchar(unsigned char c)
{
    if (is_digit(c) || is_alpha(c))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* s[0, n) equals the lower-case literal lit, ignoring ASCII case. */
static bool equals_nocase(const char *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n && lit[i] != '\0'; i++) {
        if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
            return false;
    }
    return i == n && lit[i] == '\0';
}

/* Where the head ends: the index just past the first empty line found at
 * or after from, or 0. An LF can only be judged once the two bytes after
 * it are in, so the caller resumes two bytes before the end. */
static size_t find_end(const char *buf, size_t len, size_t from)
{
    while (from < len) {
        const char *nl = memchr(buf + from, '\n', len - from);
        if (nl == NULL)
            return 0;
        size_t i = (size_t)(nl - buf);
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
        from = i + 1;
    }
    return 0;
}

/* The line at *p without its CRLF or LF, *p moved past it. Every line of
 * a found head ends with an LF. A CR inside the line, or a NUL, makes it
 * malformed (-EBADMSG). */
static int take_line(const char **p, const char *stop, const char **line, size_t *n)
{
    const char *nl = memchr(*p, '\n', (size_t)(stop - *p));
    size_t l = (size_t)(nl - *p);
    *line = *p;
    *p = nl + 1;
    if (l > 0 && (*line)[l - 1] == '\r')
        l--;
    *n = l;
    if (memchr(*line, '\r', l) != NULL || memchr(*line, '\0', l) != NULL)
        return -EBADMSG;
    return 0;
}

/* The path of a request target: the origin form up to its query; the
 * absolute form ("http://host/p?q") after its authority, "/" when it has
 * no path. Other forms ("*", "host:port") stay as they are and match no
 * route. */
static void target_path(const char *t, size_t n, const char **path, size_t *plen)
{
    static const char root[] = "/";
    size_t i = 0;
    if (t[0] != '/') {
        size_t k = 0;
        /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
        while (k < n && (is_alpha((unsigned char)t[k]) ||
                         (k > 0 && (is_digit((unsigned char)t[k]) || t[k] == '+' || t[k] == '-' ||
                                    t[k] == '.'))))
            k++;
        if (k > 0 && k + 3 <= n && t[k] == ':' && t[k + 1] == '/' && t[k + 2] == '/') {
            i = k + 3;
            while (i < n && t[i] != '/' && t[i] != '?')
                i++;
            if (i == n || t[i] == '?') {
                *path = root;
                *plen = 1;
                return;
            }
        }
    }
    size_t j = i;
    while (j < n && t[j] != '?')
        j++;
    *path = t + i;
    *plen = j - i;
}

static int parse_request_line(const char *line, size_t n, struct nova__httpd_request *req)
{
    const char *end = line + n;
    const char *sp1 = memchr(line, ' ', n);
    if (sp1 == NULL || sp1 == line)
        return -EBADMSG;
    for (const char *c = line; c < sp1; c++) {
        if (!is_tchar((unsigned char)*c))
            return -EBADMSG;
    }
    size_t mlen = (size_t)(sp1 - line);
    /* Methods are case-sensitive (RFC 9110, 9.1): "get" is another one. */
    if (mlen == 3 && memcmp(line, "GET", 3) == 0)
        req->method = NOVA__HTTPD_GET;
    else if (mlen == 4 && memcmp(line, "HEAD", 4) == 0)
        req->method = NOVA__HTTPD_HEAD;
    else
        req->method = NOVA__HTTPD_OTHER;

    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(end - target));
    if (sp2 == NULL || sp2 == target)
        return -EBADMSG;
    for (const char *c = target; c < sp2; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return -EBADMSG;
    }
    const char *v = sp2 + 1;
    if (end - v != 8 || memcmp(v, "HTTP/", 5) != 0 || !is_digit((unsigned char)v[5]) ||
        v[6] != '.' || !is_digit((unsigned char)v[7]))
        return -EBADMSG;
    if (v[5] != '1')
        return -EPROTONOSUPPORT;
    req->minor = (unsigned)(v[7] - '0');
    target_path(target, (size_t)(sp2 - target), &req->path, &req->path_len);
    return 0;
}

/* Whether a Connection field's comma-separated options include "close". */
static bool has_close(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_ows((unsigned char)v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && is_ows((unsigned char)v[e - 1]))
            e--;
        if (equals_nocase(v + s, e - s, "close"))
            return true;
    }
    return false;
}

/* Content-Length: digits only (a list, even of equal values, is refused). */
static int parse_length(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0)
        return -EBADMSG;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)v[i]))
            return -EBADMSG;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -EBADMSG;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

int nova__httpd_parse(const char *buf, size_t len, size_t *scanned, struct nova__httpd_request *req)
{
    size_t start = 0;
    while (start < len && (buf[start] == '\r' || buf[start] == '\n'))
        start++;
    size_t end = find_end(buf, len, *scanned > start ? *scanned : start);
    if (end == 0) {
        *scanned = len > 2 ? len - 2 : 0;
        return -EAGAIN;
    }
    *scanned = 0;
    memset(req, 0, sizeof *req);

    const char *p = buf + start, *stop = buf + end, *line;
    size_t n;
    if (take_line(&p, stop, &line, &n) != 0)
        return -EBADMSG;
    int rc = parse_request_line(line, n, req);
    if (rc != 0)
        return rc;

    bool close = false, chunked = false, have_length = false;
    uint64_t length = 0;
    unsigned hosts = 0;
    for (;;) {
        if (take_line(&p, stop, &line, &n) != 0)
            return -EBADMSG;
        if (n == 0)
            break; /* the empty line find_end stopped at */
        /* A line starting with white space continues the previous one
         * (obs-fold), which RFC 9112 (5.2) lets a server refuse. */
        if (is_ows((unsigned char)line[0]))
            return -EBADMSG;
        const char *colon = memchr(line, ':', n);
        if (colon == NULL || colon == line)
            return -EBADMSG;
        for (const char *c = line; c < colon; c++) {
            if (!is_tchar((unsigned char)*c)) /* also space before the colon */
                return -EBADMSG;
        }
        const char *v = colon + 1, *vend = line + n;
        while (v < vend && is_ows((unsigned char)*v))
            v++;
        while (vend > v && is_ows((unsigned char)vend[-1]))
            vend--;
        for (const char *c = v; c < vend; c++) {
            unsigned char u = (unsigned char)*c;
            if ((u < 0x20 && u != '\t') || u == 0x7f)
                return -EBADMSG;
        }
        size_t nlen = (size_t)(colon - line), vlen = (size_t)(vend - v);
        if (equals_nocase(line, nlen, "host")) {
            hosts++;
        } else if (equals_nocase(line, nlen, "connection")) {
            close = close || has_close(v, vlen);
        } else if (equals_nocase(line, nlen, "content-length")) {
            uint64_t x;
            if (parse_length(v, vlen, &x) != 0 || (have_length && x != length))
                return -EBADMSG;
            have_length = true;
            length = x;
        } else if (equals_nocase(line, nlen, "transfer-encoding")) {
            chunked = true;
        }
    }
    /* Both lengths at once is how requests are smuggled (RFC 9112, 6.1). */
    if (chunked && have_length)
        return -EBADMSG;
    /* RFC 9112 (3.2): exactly one Host in HTTP/1.1, at most one before. */
    if (hosts > 1 || (req->minor >= 1 && hosts == 0))
        return -EBADMSG;
    req->has_body = chunked || length > 0;
    req->keep_alive = req->minor >= 1 && !close;
    req->head_len = end;
    return 0;
}
