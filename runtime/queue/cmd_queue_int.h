/*
 * cmd_queue_int - what the `queue` subcommands share (cmd_queue.c: the
 * dispatcher, stats/add/failed/retry/list/show; cmd_queue_admin.c:
 * remove/clean/promote/pause/resume/replay).
 *
 * Every subcommand is `int fn(struct qcmd *q, int argc, char **argv)`
 * with argv[0] its own name; it returns the exit code (0 ok, 1 failure,
 * 2 usage). It parses its arguments before touching Redis, so a usage
 * error never waits for a connection.
 */
#ifndef NOVA_RUNTIME_CMD_QUEUE_INT_H
#define NOVA_RUNTIME_CMD_QUEUE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "common/conf.h"

struct nova__redis_sync;

struct qcmd {
    const struct nova__config *cfg;
    struct nova__redis_sync *c; /* connected by qc_redis() on first use */
    const char *prefix;         /* [redis] prefix, "bull" by default */
    const char *name;           /* the subcommand, for messages */
    const char *synopsis;       /* its usage line, for usage errors */
    bool json;                  /* --json */
    const char *queue;          /* --queue QUEUE, where a command takes it */
    char **queues;              /* queues under the prefix, once listed */
    size_t nqueues;
    bool listed;
};

/* "nova-worker queue NAME: message" on stderr. */
void qc_err(const struct qcmd *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, then the usage line; returns 2. */
int qc_usage(const struct qcmd *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Options of a subcommand: `value` for options with an argument
 * (--name VALUE or --name=VALUE), `flag` for the others. --json is
 * always accepted. Operands (anything else; all after "--") are collected
 * in pos, at most maxpos of them. Returns 0, or 2 after a usage message. */
struct qc_opt {
    const char *name;
    const char **value;
    bool *flag;
};
int qc_parse(struct qcmd *q, int argc, char **argv, const struct qc_opt *opts, const char **pos,
             int maxpos, int *npos);

/* The connection (NULL after printing why: the address and the reason). */
struct nova__redis_sync *qc_redis(struct qcmd *q);

/* EVAL of one of the embedded scripts on a queue: KEYS = the queue's meta
 * (and queue2's, when given), ARGV = the queue's key base, then args.
 * Returns the reply, or NULL after printing the error. */
redisReply *qc_eval(struct qcmd *q, const char *script, const char *queue, const char *queue2,
                    int argc, const char *const *args);

/* The queues under the prefix (every master of a cluster): names with an
 * `id` or `meta` key. 0, or -1 after printing the error. */
int qc_list_queues(struct qcmd *q);
/* True when the queue has an id counter or metadata (it has been used). */
bool qc_queue_known(struct qcmd *q, const char *queue);
/* The queue holding job id: --queue when given, else the one queue under
 * the prefix that has it. 0, or 1 after printing why not (not found, in
 * several queues, Redis error). */
int qc_job_queue(struct qcmd *q, const char *id, const char **queue);

/* The state a job is in ("waiting", "delayed", ...), into buf; "" when
 * the job does not exist. 0, or -1 after printing a Redis error. */
int qc_job_state(struct qcmd *q, const char *queue, const char *id, char *buf, size_t len);

/* The list or set of a state name as the commands take it (waiting/wait,
 * paused, active, prioritized, delayed, completed, failed,
 * waiting-children): the canonical name, NULL when unknown. */
const char *qc_state_name(const char *s);

long long qc_now_ms(void);
/* ms since the epoch as 2026-11-26T10:00:00.000Z. */
void qc_iso(long long ms, char *buf, size_t len);
/* Prints the document on stdout (one line) and deletes it. */
void qc_json_print(cJSON *doc);
/* A string as JSON when it parses, else as a JSON string. */
cJSON *qc_json_value(const char *s);

/* Progress of a long operation on stderr, only when it is a terminal:
 * "VERB done/total", redrawn at most 10 times a second. */
struct qc_progress {
    bool on;
    bool drawn;
    long long last_ms;
    const char *verb;
};
void qc_progress_start(struct qc_progress *p, const char *verb);
void qc_progress(struct qc_progress *p, size_t done, size_t total);
void qc_progress_end(struct qc_progress *p);
/* Before writing a line to stdout while a progress line may show (both
 * can be the same terminal): erases it; the next qc_progress() redraws. */
void qc_progress_clear(void);

/* Subcommands of cmd_queue_admin.c. */
int qc_cmd_remove(struct qcmd *q, int argc, char **argv);
int qc_cmd_clean(struct qcmd *q, int argc, char **argv);
int qc_cmd_promote(struct qcmd *q, int argc, char **argv);
int qc_cmd_pause(struct qcmd *q, int argc, char **argv);
int qc_cmd_resume(struct qcmd *q, int argc, char **argv);
int qc_cmd_replay(struct qcmd *q, int argc, char **argv);

/* Exposed for the unit tests. */
/* ms in a duration such as 7d, 12h, 30m, 45s, 500ms, 1h30m or 0; -1 when
 * it is not one. */
long long nova__queue_parse_duration(const char *s);
/* A dead letter's data as the job it stood for: the top-level member
 * failedReason taken out of the JSON object, the rest byte for byte (the
 * non-object data the plugin wrapped as {"raw": TEXT} becomes TEXT again).
 * NULL when data is not a JSON object or memory ran out. */
char *nova__queue_dead_letter_data(const char *data);

#endif
