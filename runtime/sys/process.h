/*
 * process - child processes on the loop, for include/nova/sys.h's
 * nova_process_api.
 *
 * A child is a libuv process with stdout and stderr on pipes and stdin on
 * /dev/null or a file. Each child is kept under an owner tag (the plugin's
 * host pointer): nova__process_release_owner() ends what a plugin started
 * before its shutdown(), calling each exit callback at once with
 * -ECANCELED and killing the child with SIGKILL; libuv's handles are then
 * closed and freed without calling back.
 *
 * Everything here runs on the loop thread. The functions have the
 * contracts of their nova_process_api members, with the loop and the
 * owner tag made explicit.
 */
#ifndef NOVA_RUNTIME_PROCESS_H
#define NOVA_RUNTIME_PROCESS_H

#include <uv.h>
#include "nova/sys.h"

int nova__process_spawn(uv_loop_t *loop, const void *owner, const struct nova_process_spec *spec,
                        nova_process_data_cb on_stdout, nova_process_exit_cb on_exit, void *arg,
                        nova_process **out);
void nova__process_pause(nova_process *p);
void nova__process_resume(nova_process *p);
int nova__process_kill(nova_process *p, int signum);
int nova__process_write_stdin(nova_process *p, const void *data, size_t len,
                              void (*cb)(void *arg, int status), void *arg);
int nova__process_close_stdin(nova_process *p);

/* Ends owner's children (see above); returns how many callbacks ran. */
unsigned nova__process_release_owner(const void *owner);

#endif
