/*
 * sigpipe - writes to a peer that went away must fail with EPIPE, not
 * end the process: Redis over OpenSSL, the operations endpoint and a
 * child's stdin pipe all write with write(2), which raises SIGPIPE.
 */
#ifndef NOVA_RUNTIME_SIGPIPE_H
#define NOVA_RUNTIME_SIGPIPE_H

/* Ignores SIGPIPE unless the process already chose a disposition (a
 * handler someone installed is left alone). Idempotent. */
void nova__ignore_sigpipe(void);

#endif
