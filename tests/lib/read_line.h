/* Test helper: reads one line a child process prints (its ready line). */
#ifndef NOVA_TESTS_READ_LINE_H
#define NOVA_TESTS_READ_LINE_H

#include <poll.h>
#include <stddef.h>
#include <unistd.h>

/* Reads one line from fd into buf (without the newline), waiting at most
 * timeout_ms for each byte. Returns 0, or -1 on timeout, EOF or error. */
static inline int nova_test_read_line(int fd, char *buf, size_t len, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return -1;
        ssize_t k = read(fd, buf + n, 1);
        if (k <= 0)
            return -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return 0;
}

#endif
