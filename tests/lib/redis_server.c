#include "config.h"
#include "redis_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

/* Servers of this process, stopped at exit: a failing Check test exits
 * its forked child without running the fixture's teardown. */
#define MAX_SERVERS 16
static struct nova_test_redis *live[MAX_SERVERS];
static pid_t live_owner;

static void stop_all_at_exit(void)
{
    if (live_owner != getpid())
        return; /* a fork of the owner: not ours to stop */
    for (int i = 0; i < MAX_SERVERS; i++)
        if (live[i])
            nova_test_redis_stop(live[i]);
}

static void track(struct nova_test_redis *r, bool on)
{
    static bool registered;
    if (live_owner != getpid()) {
        /* first use in this process (or in a forked test child) */
        memset(live, 0, sizeof(live));
        live_owner = getpid();
    }
    if (!registered) {
        atexit(stop_all_at_exit);
        registered = true;
    }
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (on && !live[i]) {
            live[i] = r;
            return;
        }
        if (!on && live[i] == r) {
            live[i] = NULL;
            return;
        }
    }
}

static bool port_free(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    bool ok;
    if (fd < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    a.sin_port = htons((uint16_t)port);
    ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

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

/* A free port whose +10000 (a cluster node's bus) is free too. */
static int free_cluster_port(void)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    for (int i = 0; i < 200; i++) {
        int port = 20000 + (int)(rand_r(&seed) % 30000);
        if (port_free(port) && port_free(port + 10000))
            return port;
    }
    return -EADDRNOTAVAIL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* "@DIR" in s replaced by dir, into out. */
static void expand(const char *s, const char *dir, char *out, size_t outlen)
{
    const char *at = strstr(s, "@DIR");
    if (at)
        snprintf(out, outlen, "%.*s%s%s", (int)(at - s), s, dir, at + 4);
    else
        snprintf(out, outlen, "%s", s);
}

static int spawn(struct nova_test_redis *r)
{
    const char *bin = getenv(r->sentinel ? "NOVA_REDIS_SENTINEL" : "NOVA_REDIS_SERVER");
    char port[16], log[300], conf[300];
    const char *argv[64];
    int argc = 0;
    pid_t pid;
    if (!bin || !*bin)
        bin = r->sentinel ? "redis-sentinel" : "redis-server";
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    snprintf(conf, sizeof(conf), "%s/sentinel.conf", r->dir);
    argv[argc++] = bin;
    if (r->sentinel) {
        argv[argc++] = conf;
    } else {
        static const char *const fixed[] = {"--bind",
                                            "127.0.0.1",
                                            "--save",
                                            "",
                                            "--appendonly",
                                            "yes",
                                            "--appendfsync",
                                            "always",
                                            "--daemonize",
                                            "no",
                                            "--maxmemory-policy",
                                            "noeviction",
                                            "--enable-debug-command",
                                            "yes",
                                            NULL};
        argv[argc++] = "--port";
        argv[argc++] = port;
        argv[argc++] = "--dir";
        argv[argc++] = r->dir;
        argv[argc++] = "--logfile";
        argv[argc++] = log;
        for (int i = 0; fixed[i]; i++)
            argv[argc++] = fixed[i];
        for (int i = 0; i < r->nargs && argc < 62; i++)
            argv[argc++] = r->args[i];
    }
    argv[argc] = NULL;
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* Dies with the test process even when that one is killed. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execvp(bin, (char *const *)argv);
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
            return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOENT : -ECHILD;
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

static int make_dir(struct nova_test_redis *r)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(r->dir, sizeof(r->dir), "%s/nova-redis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(r->dir)) {
        int rc = -errno;
        fprintf(stderr, "redis_server: mkdtemp: %s\n", strerror(errno));
        r->dir[0] = '\0';
        return rc;
    }
    track(r, true);
    return 0;
}

static int write_sentinel_conf(struct nova_test_redis *r, const char *name, int master_port)
{
    char path[300];
    FILE *f;
    snprintf(path, sizeof(path), "%s/sentinel.conf", r->dir);
    f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndaemonize no\nlogfile %s/redis.log\ndir %s\n"
            "sentinel monitor %s 127.0.0.1 %d 2\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 3000\n"
            "sentinel parallel-syncs %s 1\n",
            r->port, r->dir, r->dir, name, master_port, name, name, name);
    fclose(f);
    return 0;
}

static int start_common(struct nova_test_redis *r, const char *const *extra, bool cluster,
                        const char *sentinel_name, int master_port)
{
    int rc;
    int tls_port = r->tls_port;
    int sentinel = r->sentinel;
    memset(r, 0, sizeof(*r));
    r->tls_port = tls_port;
    r->sentinel = sentinel;
    rc = make_dir(r);
    if (rc < 0)
        return rc;
    for (int i = 0; extra && extra[i] && r->nargs < NOVA_TEST_REDIS_ARGS; i++)
        expand(extra[i], r->dir, r->args[r->nargs++], sizeof(r->args[0]));
    rc = -EADDRNOTAVAIL;
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = cluster ? free_cluster_port() : free_port();
        if (r->port < 0)
            return r->port;
        snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", r->port);
        if (r->sentinel) {
            rc = write_sentinel_conf(r, sentinel_name, master_port);
            if (rc < 0)
                return rc;
        }
        rc = spawn(r);
        if (rc != -ECHILD)
            return rc; /* retry only when the port was taken meanwhile */
    }
    return rc;
}

int nova_test_redis_start(struct nova_test_redis *r)
{
    r->tls_port = 0;
    r->sentinel = 0;
    return start_common(r, NULL, false, NULL, 0);
}

int nova_test_redis_start_with(struct nova_test_redis *r, const char *const *extra)
{
    r->tls_port = 0;
    r->sentinel = 0;
    return start_common(r, extra, false, NULL, 0);
}

int nova_test_redis_start_tls(struct nova_test_redis *r, const char *cert, const char *key,
                              const char *ca, int auth_clients)
{
    char tport[16];
    int p = free_port();
    const char *extra[] = {"--tls-port",
                           tport,
                           "--tls-cert-file",
                           cert,
                           "--tls-key-file",
                           key,
                           "--tls-ca-cert-file",
                           ca,
                           "--tls-auth-clients",
                           auth_clients ? "yes" : "no",
                           NULL};
    if (p < 0)
        return p;
    snprintf(tport, sizeof(tport), "%d", p);
    r->tls_port = p;
    r->sentinel = 0;
    return start_common(r, extra, false, NULL, 0);
}

int nova_test_sentinel_start(struct nova_test_redis *r, const char *name, int master_port)
{
    r->tls_port = 0;
    r->sentinel = 1;
    return start_common(r, NULL, false, name, master_port);
}

int nova_test_cluster_node_start(struct nova_test_redis *r)
{
    static const char *const extra[] = {"--cluster-enabled",
                                        "yes",
                                        "--cluster-config-file",
                                        "@DIR/nodes.conf",
                                        "--cluster-node-timeout",
                                        "2000",
                                        NULL};
    r->tls_port = 0;
    r->sentinel = 0;
    return start_common(r, extra, true, NULL, 0);
}

static redisReply *node_cmd(struct nova_test_redis *r, const char *fmt, ...)
{
    va_list ap;
    redisReply *rep;
    redisContext *c = redisConnect("127.0.0.1", r->port);
    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    va_start(ap, fmt);
    rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return rep;
}

int nova_test_cluster_create(struct nova_test_redis *nodes, int n)
{
    char cmd[2048];
    size_t len;
    const char *cli = getenv("NOVA_REDIS_CLI");
    if (!cli || !*cli)
        cli = "redis-cli";
    len = (size_t)snprintf(cmd, sizeof(cmd), "%s --cluster create", cli);
    for (int i = 0; i < n && len < sizeof(cmd); i++)
        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, " 127.0.0.1:%d", nodes[i].port);
    snprintf(cmd + len, sizeof(cmd) - len, " --cluster-yes > '%s/create.log' 2>&1", nodes[0].dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "redis_server: '%s' failed (see %s/create.log)\n", cmd, nodes[0].dir);
        return -EIO;
    }
    for (int i = 0; i < 400; i++) {
        int ok = 0;
        for (int k = 0; k < n; k++) {
            redisReply *rep = node_cmd(&nodes[k], "CLUSTER INFO");
            if (rep && rep->type == REDIS_REPLY_STRING && strstr(rep->str, "cluster_state:ok") &&
                strstr(rep->str, "cluster_slots_ok:16384"))
                ok++;
            freeReplyObject(rep);
        }
        if (ok == n)
            return 0;
        sleep_ms(50);
    }
    fprintf(stderr, "redis_server: the cluster did not become ok\n");
    return -ETIMEDOUT;
}

int nova_test_cluster_owner(struct nova_test_redis *nodes, int n, unsigned slot)
{
    redisReply *rep = node_cmd(&nodes[0], "CLUSTER SLOTS");
    int owner = -1;
    for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->elements >= 3 && (unsigned)e->element[0]->integer <= slot &&
            slot <= (unsigned)e->element[1]->integer) {
            for (int k = 0; k < n; k++)
                if (nodes[k].port == (int)e->element[2]->element[1]->integer)
                    owner = k;
        }
    }
    freeReplyObject(rep);
    return owner;
}

static int node_id(struct nova_test_redis *r, char *out, size_t outlen)
{
    redisReply *rep = node_cmd(r, "CLUSTER MYID");
    int rc = rep && rep->type == REDIS_REPLY_STRING ? 0 : -EIO;
    if (rc == 0)
        snprintf(out, outlen, "%s", rep->str);
    freeReplyObject(rep);
    return rc;
}

int nova_test_cluster_move_slot(struct nova_test_redis *nodes, int n, unsigned slot, int to,
                                int batch, int pause_ms)
{
    int from = nova_test_cluster_owner(nodes, n, slot);
    char from_id[64], to_id[64], port[16];
    redisContext *src;
    redisReply *rep;
    if (from < 0 || from == to || node_id(&nodes[from], from_id, sizeof(from_id)) < 0 ||
        node_id(&nodes[to], to_id, sizeof(to_id)) < 0)
        return -EINVAL;
    if (batch < 1)
        batch = 1;
    if (batch > 1024)
        batch = 1024;
    snprintf(port, sizeof(port), "%d", nodes[to].port);
    freeReplyObject(node_cmd(&nodes[to], "CLUSTER SETSLOT %u IMPORTING %s", slot, from_id));
    freeReplyObject(node_cmd(&nodes[from], "CLUSTER SETSLOT %u MIGRATING %s", slot, to_id));
    src = redisConnect("127.0.0.1", nodes[from].port);
    if (!src || src->err) {
        redisFree(src);
        return -EIO;
    }
    for (;;) {
        static const char *argv[8 + 1024];
        size_t nk;
        int argc = 0;
        bool ok;
        redisReply *m;
        rep = redisCommand(src, "CLUSTER GETKEYSINSLOT %u %d", slot, batch);
        if (!rep || rep->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            redisFree(src);
            return -EIO;
        }
        nk = rep->elements;
        if (nk == 0) {
            freeReplyObject(rep);
            break;
        }
        argv[argc++] = "MIGRATE";
        argv[argc++] = "127.0.0.1";
        argv[argc++] = port;
        argv[argc++] = "";
        argv[argc++] = "0";
        argv[argc++] = "5000";
        argv[argc++] = "KEYS";
        for (size_t i = 0; i < nk; i++)
            argv[argc++] = rep->element[i]->str;
        m = redisCommandArgv(src, argc, argv, NULL);
        ok = m && m->type == REDIS_REPLY_STATUS;
        if (!ok)
            fprintf(stderr, "redis_server: MIGRATE: %s\n", m ? m->str : src->errstr);
        freeReplyObject(m);
        freeReplyObject(rep);
        if (!ok) {
            redisFree(src);
            return -EIO;
        }
        if (pause_ms > 0)
            sleep_ms(pause_ms);
    }
    redisFree(src);
    freeReplyObject(node_cmd(&nodes[to], "CLUSTER SETSLOT %u NODE %s", slot, to_id));
    freeReplyObject(node_cmd(&nodes[from], "CLUSTER SETSLOT %u NODE %s", slot, to_id));
    for (int k = 0; k < n; k++)
        if (k != to && k != from)
            freeReplyObject(node_cmd(&nodes[k], "CLUSTER SETSLOT %u NODE %s", slot, to_id));
    return 0;
}

int nova_test_make_certs(const char *dir, const char *prefix)
{
    char cmd[4096];
    const char *key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s'; exec >%sopenssl.log 2>&1; "
             "openssl req -x509 -new %s -keyout %sca.key -out %sca.crt -days 2 "
             "-subj '/CN=nova test CA %s'; "
             "openssl req -new %s -keyout %sserver.key -out %sserver.csr -subj '/CN=localhost'; "
             "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > %sserver.ext; "
             "openssl x509 -req -in %sserver.csr -CA %sca.crt -CAkey %sca.key -CAcreateserial "
             "-out %sserver.crt -days 2 -extfile %sserver.ext; "
             "openssl req -new %s -keyout %sclient.key -out %sclient.csr -subj '/CN=nova-worker'; "
             "openssl x509 -req -in %sclient.csr -CA %sca.crt -CAkey %sca.key -CAcreateserial "
             "-out %sclient.crt -days 2; chmod 644 %s*.key",
             dir, prefix, key, prefix, prefix, prefix, key, prefix, prefix, prefix, prefix, prefix,
             prefix, prefix, prefix, key, prefix, prefix, prefix, prefix, prefix, prefix, prefix);
    if (system(cmd) != 0) {
        fprintf(stderr, "redis_server: openssl failed (see %s/%sopenssl.log)\n", dir, prefix);
        return -1;
    }
    return 0;
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
    track(r, false);
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
