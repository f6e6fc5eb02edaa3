#include "config.h"
#include "redis_server.h"

#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port > 0 ? port : -EADDRNOTAVAIL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int spawn(struct nova_test_redis *r)
{
    const char *bin = getenv("NOVA_REDIS_SERVER");
    char port[16], log[300];
    pid_t pid;
    if (!bin || !*bin)
        bin = "redis-server";
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        execlp(bin, bin, "--port", port, "--bind", "127.0.0.1", "--dir", r->dir, "--save", "",
               "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--logfile",
               log, "--maxmemory-policy", "noeviction", "--enable-debug-command", "yes",
               (char *)NULL);
        fprintf(stderr, "redis_server: cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 200; i++) {
        int status;
        redisContext *c;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            r->pid = 0;
            fprintf(stderr, "redis_server: %s exited at start (see %s)\n", bin, log);
            return -ECHILD;
        }
        c = redisConnect("127.0.0.1", r->port);
        if (c && !c->err) {
            redisReply *rep = redisCommand(c, "PING");
            bool ok = rep && rep->type == REDIS_REPLY_STATUS;
            freeReplyObject(rep);
            redisFree(c);
            if (ok)
                return 0;
        } else {
            redisFree(c);
        }
        sleep_ms(50);
    }
    fprintf(stderr, "redis_server: no answer on port %d\n", r->port);
    return -ETIMEDOUT;
}

int nova_test_redis_start(struct nova_test_redis *r)
{
    const char *tmp = getenv("TMPDIR");
    int rc;
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "%s/nova-redis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(r->dir)) {
        rc = -errno;
        fprintf(stderr, "redis_server: mkdtemp: %s\n", strerror(errno));
        r->dir[0] = '\0';
        return rc;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = free_port();
        if (r->port < 0)
            return r->port;
        snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", r->port);
        rc = spawn(r);
        if (rc != -ECHILD)
            return rc; /* retry only when the port was taken meanwhile */
    }
    return rc;
}

int nova_test_redis_halt(struct nova_test_redis *r)
{
    int status;
    if (r->pid <= 0)
        return 0;
    kill(r->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            r->pid = 0;
            return 0;
        }
        sleep_ms(50);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, &status, 0);
    r->pid = 0;
    return 0;
}

int nova_test_redis_resume(struct nova_test_redis *r)
{
    if (r->pid > 0)
        return 0;
    return spawn(r);
}

int nova_test_redis_restart(struct nova_test_redis *r)
{
    nova_test_redis_halt(r);
    return nova_test_redis_resume(r);
}

int nova_test_redis_stop(struct nova_test_redis *r)
{
    nova_test_redis_halt(r);
    if (r->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "redis_server: could not remove %s\n", r->dir);
        r->dir[0] = '\0';
    }
    return 0;
}
