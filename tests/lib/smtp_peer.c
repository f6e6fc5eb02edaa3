#include "config.h"
#include "smtp_peer.h"

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "read_line.h"

extern char **environ;

const char *smtp_peer_python(void)
{
    const char *env = getenv("NOVA_SMTP_PYTHON");
    if (env != NULL && *env != '\0')
        return env;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

int smtp_peer_start(struct smtp_peer *p, const struct smtp_peer_opts *o)
{
    const char *srcdir = getenv("NOVA_SRCDIR");
    char script[1024], line[700], port[16];
    int in[2], out[2];
    posix_spawn_file_actions_t fa;

    memset(p, 0, sizeof *p);
    p->pid = -1;
    snprintf(script, sizeof script, "%s/tests/lib/smtp_peer.py",
             srcdir != NULL ? srcdir : NOVA_TEST_SRCDIR);
    snprintf(port, sizeof port, "%d", o->port);
    const char *python = smtp_peer_python();
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)python;
    argv[n++] = script;
    argv[n++] = "--mode";
    argv[n++] = (char *)(o->mode != NULL ? o->mode : "plain");
    argv[n++] = "--port";
    argv[n++] = port;
    if (o->auth != NULL) {
        argv[n++] = "--auth";
        argv[n++] = (char *)o->auth;
    }
    if (o->reject != NULL) {
        argv[n++] = "--reject";
        argv[n++] = (char *)o->reject;
    }
    if (o->out != NULL) {
        argv[n++] = "--out";
        argv[n++] = (char *)o->out;
    }
    argv[n] = NULL;
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    int rc = posix_spawnp(&p->pid, python, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        fprintf(stderr, "smtp_peer: cannot start %s: %s\n", python, strerror(rc));
        close(in[1]);
        close(out[0]);
        p->pid = -1;
        return -1;
    }
    p->stdin_fd = in[1];
    for (;;) {
        if (nova_test_read_line(out[0], line, sizeof line, 30000) != 0) {
            fprintf(stderr, "smtp_peer: %s did not start (is python3-aiosmtpd installed?)\n",
                    script);
            close(out[0]);
            smtp_peer_stop(p);
            return -1;
        }
        if (strncmp(line, "PORT ", 5) == 0)
            p->port = atoi(line + 5);
        else if (strncmp(line, "CA ", 3) == 0)
            snprintf(p->ca_file, sizeof p->ca_file, "%s", line + 3);
        else if (strcmp(line, "READY") == 0)
            break;
    }
    close(out[0]);
    return p->port > 0 ? 0 : -1;
}

void smtp_peer_stop(struct smtp_peer *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        close(p->stdin_fd);
        waitpid(p->pid, NULL, 0);
        p->pid = -1;
    }
}
