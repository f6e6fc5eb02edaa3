/*
 * sdnotify - the systemd notification protocol, without libsystemd.
 *
 * One AF_UNIX datagram to $NOTIFY_SOCKET (a leading '@' means the abstract
 * namespace) holding newline-separated KEY=VALUE lines. Without
 * $NOTIFY_SOCKET every call is a no-op returning 0.
 */
#ifndef NOVA_RUNTIME_SDNOTIFY_H
#define NOVA_RUNTIME_SDNOTIFY_H

#include <stdint.h>

/* Sends state, e.g. "READY=1\nSTATUS=serving". Returns 0 or -errno. */
int nova__sd_notify(const char *state);

/* Half the watchdog interval in ms when $WATCHDOG_USEC applies to this
 * process ($WATCHDOG_PID unset or ours), else 0. */
uint64_t nova__sd_watchdog_interval_ms(void);

#endif
