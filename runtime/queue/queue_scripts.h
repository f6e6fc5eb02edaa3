/*
 * queue_scripts - the queue engine's Lua scripts, embedded at build time.
 *
 * runtime/lua/embed.sh generates queue_scripts.c from runtime/lua/NAME.lua
 * (lib.lua prepended to each). The strings are static and NUL-terminated.
 */
#ifndef NOVA_RUNTIME_QUEUE_SCRIPTS_H
#define NOVA_RUNTIME_QUEUE_SCRIPTS_H

extern const char nova__lua_fetch[];
extern const char nova__lua_settle[];
extern const char nova__lua_extend_locks[];
extern const char nova__lua_stalled[];
extern const char nova__lua_add[];
extern const char nova__lua_progress[];
extern const char nova__lua_release[];
extern const char nova__lua_retry_failed[];
extern const char nova__lua_sched_upsert[];
extern const char nova__lua_sched_advance[];
extern const char nova__lua_sched_remove[];
/* the `queue` command's (cmd_queue.c, cmd_queue_admin.c) */
extern const char nova__lua_job_info[];
extern const char nova__lua_job_list[];
extern const char nova__lua_job_remove[];
extern const char nova__lua_job_promote[];
extern const char nova__lua_queue_pause[];
extern const char nova__lua_dlq_replay[];

#endif
