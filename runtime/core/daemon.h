/*
 * daemon - the `run` and `check` commands: one libuv loop that owns the
 * shared services, the loaded plugins, signals, the systemd notifications
 * and the operations endpoint.
 *
 * Lifecycle of `run`:
 *   load config -> open services -> load, configure and init each enabled
 *   plugin -> start queues -> READY=1 once Redis/PostgreSQL are reachable.
 *   SIGTERM/SIGINT: STOPPING=1, plugins' stop(), queues drain for at most
 *   [worker] shutdown_timeout, plugins shut down, services close, exit 0.
 *   A second SIGTERM/SIGINT ends the drain at once (exit 1).
 *   SIGHUP: RELOADING=1, re-read the config; an invalid file is reported
 *   and the running config kept; otherwise the log level, plugin sections
 *   (via reload() or a drained restart) and the set of enabled plugins are
 *   applied without losing a job; then READY=1. Changes to the core service
 *   sections ([redis], [postgres], [http], [stellar]) need a restart and
 *   are reported as such.
 */
#ifndef NOVA_RUNTIME_DAEMON_H
#define NOVA_RUNTIME_DAEMON_H

#include <stdbool.h>
#include <stdio.h>

/* Runs until stopped; returns the process exit code. */
int nova__daemon_run(const char *config_path);

/* Validates the config and loads (without initialising) every enabled
 * plugin. Prints a summary to out, every problem as "FILE:LINE: message"
 * to err. With print, out gets the effective value and origin of every
 * key instead of the summary (`check --print`, common/conf.h).
 * Returns the process exit code. */
int nova__daemon_check(const char *config_path, bool print, FILE *out, FILE *err);

#endif
