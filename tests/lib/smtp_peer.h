/*
 * smtp_peer - starts tests/lib/smtp_peer.py (an aiosmtpd server on
 * 127.0.0.1: plain, STARTTLS or implicit TLS, AUTH, rejected recipients)
 * as a child process for the mail tests.
 *
 * The child exits when smtp_peer_stop() closes its stdin or when the test
 * process dies, so a failed test leaves no server behind.
 */
#ifndef NOVA_TEST_SMTP_PEER_H
#define NOVA_TEST_SMTP_PEER_H

#include <stdbool.h>
#include <sys/types.h>

struct smtp_peer_opts {
    const char *mode;   /* "plain", "starttls" or "smtps" */
    const char *auth;   /* "user:password" required, or NULL */
    const char *reject; /* an address answered 550, or NULL */
    const char *out;    /* directory for <n>.eml and <n>.json, or NULL */
    int port;           /* 0 = a free one */
};

struct smtp_peer {
    pid_t pid;
    int stdin_fd;
    int port;
    char ca_file[640]; /* TLS modes: the CA that signed the server's certificate */
};

/* The python3 that has aiosmtpd: $NOVA_SMTP_PYTHON, else /usr/bin/python3
 * (Debian's python3-aiosmtpd), else python3 on PATH. */
const char *smtp_peer_python(void);

/* Returns 0, or -1 with a message on stderr. */
int smtp_peer_start(struct smtp_peer *p, const struct smtp_peer_opts *o);
void smtp_peer_stop(struct smtp_peer *p);

#endif
