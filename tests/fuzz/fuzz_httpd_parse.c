/* libFuzzer target: the operations endpoint's request head parser. Any
 * input parses to 0, -EAGAIN, -EBADMSG or -EPROTONOSUPPORT; a parsed head
 * lies inside the input with its path in it; and the input fed a byte at a
 * time, resuming the scan as the server does, ends at the same byte with
 * the same result as the input parsed whole.
 *
 * fuzz-sources: runtime/httpd/httpd_parse.c
 */
#include "config.h"
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "httpd/httpd_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const char *buf, size_t len, const struct nova__httpd_request *r)
{
    if (r->head_len == 0 || r->head_len > len || r->minor > 9 || r->method > NOVA__HTTPD_OTHER)
        abort();
    bool inside = r->path >= buf && r->path + r->path_len <= buf + r->head_len;
    bool root = r->path_len == 1 && r->path[0] == '/';
    if (!inside && !root)
        abort();
    if (r->keep_alive && r->minor == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact copy, so that ASan sees any read past the input. */
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    struct nova__httpd_request whole, step;
    size_t scanned = 0;
    int rc = nova__httpd_parse(buf, size, &scanned, &whole);
    if (rc != 0 && rc != -EAGAIN && rc != -EBADMSG && rc != -EPROTONOSUPPORT)
        abort();
    if (rc == 0)
        check_request(buf, size, &whole);

    scanned = 0;
    int rc_step = -EAGAIN;
    size_t n = 0;
    while (rc_step == -EAGAIN && n < size)
        rc_step = nova__httpd_parse(buf, ++n, &scanned, &step);
    if (rc_step != rc)
        abort();
    if (rc == 0 && (step.head_len != n || whole.head_len != n || step.path != whole.path ||
                    step.path_len != whole.path_len || step.minor != whole.minor ||
                    step.method != whole.method || step.keep_alive != whole.keep_alive ||
                    step.has_body != whole.has_body))
        abort();
    free(buf);
    return 0;
}
