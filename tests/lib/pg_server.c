/*
 * pg_server - see pg_server.h.
 */
#include "config.h"
#include "pg_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

static const char *bindir(void)
{
    const char *d = getenv("NOVA_PG_BINDIR");
    return d != NULL && d[0] != '\0' ? d : "/usr/lib/postgresql/15/bin";
}

/* Runs argv (as postgres when root); returns the exit status or -1. The
 * child's output goes to logfile (or stays on stderr when NULL). */
static int run(const char *logfile, const char *const *argv)
{
    const char *full[32];
    size_t n = 0;
    if (geteuid() == 0) {
        full[n++] = "runuser";
        full[n++] = "-u";
        full[n++] = "postgres";
        full[n++] = "--";
    }
    for (size_t i = 0; argv[i] != NULL && n < 31; i++)
        full[n++] = argv[i];
    full[n] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        if (logfile != NULL) {
            int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        } else {
            dup2(2, 1);
        }
        /* The server must not inherit the test harness's descriptors. */
        closefrom(3);
        execvp(full[0], (char *const *)full);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int chown_postgres(const char *path)
{
    if (geteuid() != 0)
        return 0;
    struct passwd *pw = getpwnam("postgres");
    if (pw == NULL) {
        fprintf(stderr, "pg_server: no 'postgres' user (install postgresql-15)\n");
        return -1;
    }
    return chown(path, pw->pw_uid, pw->pw_gid);
}

static int write_file(const char *path, const char *mode, const char *fmt, ...)
{
    FILE *f = fopen(path, mode);
    if (f == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    return fclose(f) == 0 ? 0 : -1;
}

static void show_log(const struct pg_server *s)
{
    char path[256], line[512];
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL)
        fprintf(stderr, "pg_server log: %s", line);
    fclose(f);
}

int pg_server_resume(struct pg_server *s)
{
    char pgctl[256], log[256];
    snprintf(pgctl, sizeof pgctl, "%s/pg_ctl", bindir());
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    const char *argv[] = {pgctl, "-D", s->datadir, "-l", log, "-w", "-t", "60", "start", NULL};
    if (run(NULL, argv) != 0) {
        fprintf(stderr, "pg_server: pg_ctl start failed on port %d\n", s->port);
        show_log(s);
        return -1;
    }
    s->running = true;
    return 0;
}

int pg_server_start(struct pg_server *s)
{
    char initdb[256], pwfile[256], conf[256];

    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/nova-pg-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        fprintf(stderr, "pg_server: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    if (chown_postgres(s->dir) != 0)
        return -1;
    snprintf(s->datadir, sizeof s->datadir, "%s/data", s->dir);
    snprintf(initdb, sizeof initdb, "%s/initdb", bindir());
    if (access(initdb, X_OK) != 0) {
        fprintf(stderr, "pg_server: %s missing: install postgresql-15\n", initdb);
        return -1;
    }
    /* A password nobody guesses; tests never print it. */
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    snprintf(s->password, sizeof s->password, "pw-%08x%08x", (unsigned)rand(), (unsigned)rand());
    snprintf(pwfile, sizeof pwfile, "%s/pwfile", s->dir);
    if (write_file(pwfile, "w", "%s\n", s->password) != 0 || chown_postgres(pwfile) != 0)
        return -1;

    char log[256];
    snprintf(log, sizeof log, "%s/initdb.log", s->dir);
    char pwopt[300];
    snprintf(pwopt, sizeof pwopt, "--pwfile=%s", pwfile);
    const char *argv[] = {initdb,
                          "-D",
                          s->datadir,
                          "-U",
                          "postgres",
                          "-E",
                          "UTF8",
                          "--locale=C",
                          "-N",
                          "--auth-local=trust",
                          "--auth-host=scram-sha-256",
                          pwopt,
                          NULL};
    if (run(log, argv) != 0) {
        fprintf(stderr, "pg_server: initdb failed, see %s\n", log);
        return -1;
    }
    unlink(pwfile);

    s->port = free_port();
    if (s->port <= 0)
        return -1;
    snprintf(conf, sizeof conf, "%s/postgresql.conf", s->datadir);
    /* Speed over durability: the data is thrown away. */
    if (write_file(conf, "a",
                   "\nport = %d\nlisten_addresses = '127.0.0.1'\n"
                   "unix_socket_directories = '%s'\n"
                   "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                   "max_connections = 100\nshared_buffers = 32MB\n"
                   "log_min_messages = warning\nlog_min_error_statement = panic\n",
                   s->port, s->dir) != 0)
        return -1;
    return pg_server_resume(s);
}

/*
 * pg_ctl stop signals whatever pid postmaster.pid names. After a crash that
 * pid may have been reused (a parallel `make check` starts processes fast),
 * possibly by another suite's server: signal only a postmaster whose command
 * line names our data directory, and drop a stale pid file.
 */
static bool postmaster_is_ours(const struct pg_server *s)
{
    char path[300], buf[4096];
    snprintf(path, sizeof path, "%s/postmaster.pid", s->datadir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    long pid = fgets(buf, sizeof buf, f) ? strtol(buf, NULL, 10) : 0;
    fclose(f);
    bool ours = false;
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    f = pid > 1 ? fopen(path, "r") : NULL;
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++) /* arguments are NUL-separated */
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[n] = '\0';
        ours = strstr(buf, s->datadir) != NULL;
    }
    if (!ours) {
        fprintf(stderr, "pg_server: stale %s/postmaster.pid (pid %ld is not our server)\n",
                s->datadir, pid);
        snprintf(path, sizeof path, "%s/postmaster.pid", s->datadir);
        unlink(path);
    }
    return ours;
}

int pg_server_stop(struct pg_server *s)
{
    if (!postmaster_is_ours(s)) {
        s->running = false;
        return 0;
    }
    char pgctl[256];
    snprintf(pgctl, sizeof pgctl, "%s/pg_ctl", bindir());
    const char *argv[] = {pgctl, "-D", s->datadir, "-w", "-t", "60", "-m", "fast", "stop", NULL};
    int rc = run(NULL, argv);
    if (rc != 0) {
        fprintf(stderr, "pg_server: pg_ctl stop failed (%d)\n", rc);
        return -1;
    }
    s->running = false;
    return 0;
}

void pg_server_destroy(struct pg_server *s)
{
    if (s->dir[0] == '\0')
        return;
    char pid[256];
    snprintf(pid, sizeof pid, "%s/postmaster.pid", s->datadir);
    if (access(pid, F_OK) == 0 && postmaster_is_ours(s)) {
        char pgctl[256];
        snprintf(pgctl, sizeof pgctl, "%s/pg_ctl", bindir());
        const char *argv[] = {pgctl, "-D", s->datadir, "-w", "-m", "immediate", "stop", NULL};
        run("/dev/null", argv);
    }
    const char *rm[] = {"rm", "-rf", s->dir, NULL};
    pid_t p = fork();
    if (p == 0) {
        execvp(rm[0], (char *const *)rm);
        _exit(127);
    }
    if (p > 0)
        waitpid(p, NULL, 0);
    s->dir[0] = '\0';
    s->running = false;
}

void pg_server_dsn(const struct pg_server *s, const char *db, const char *extra, char *buf,
                   size_t len)
{
    snprintf(buf, len, "postgresql://postgres:%s@127.0.0.1:%d/%s%s%s", s->password, s->port,
             db != NULL ? db : "postgres", extra != NULL ? "?" : "", extra != NULL ? extra : "");
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *connect_db(const struct pg_server *s, const char *db)
{
    char dsn[512];
    pg_server_dsn(s, db, "application_name=pg_server", dsn, sizeof dsn);
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg_server: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

int pg_server_exec(const struct pg_server *s, const char *db, const char *sql)
{
    PGconn *c = connect_db(s, db);
    if (c == NULL)
        return -1;
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "pg_server: exec: %s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

int pg_server_query_value(const struct pg_server *s, const char *db, const char *sql, char *buf,
                          size_t len)
{
    PGconn *c = connect_db(s, db);
    if (c == NULL)
        return -1;
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) >= 1 && PQnfields(r) >= 1;
    if (ok)
        snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "pg_server: query: %s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

int pg_server_create_db(const struct pg_server *s, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
    if (pg_server_exec(s, NULL, sql) != 0)
        return -1;
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
    return pg_server_exec(s, NULL, sql);
}

int pg_bouncer_start(struct pg_bouncer *b, const struct pg_server *s, const char *pool_mode,
                     int server_pool)
{
    char conf[256], log[256];
    memset(b, 0, sizeof *b);
    snprintf(b->dir, sizeof b->dir, "/tmp/nova-bouncer-XXXXXX");
    if (mkdtemp(b->dir) == NULL || chown_postgres(b->dir) != 0)
        return -1;
    if (access("/usr/sbin/pgbouncer", X_OK) != 0) {
        fprintf(stderr, "pg_server: /usr/sbin/pgbouncer missing: install pgbouncer\n");
        return -1;
    }
    b->port = free_port();
    snprintf(conf, sizeof conf, "%s/pgbouncer.ini", b->dir);
    if (write_file(conf, "w",
                   "[databases]\n"
                   "postgres = host=127.0.0.1 port=%d dbname=postgres user=postgres "
                   "password=%s\n"
                   "[pgbouncer]\n"
                   "listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
                   "auth_type = any\npool_mode = %s\ndefault_pool_size = %d\n"
                   "max_client_conn = 500\nignore_startup_parameters = options\n"
                   "logfile = %s/pgbouncer.log\npidfile = %s/pgbouncer.pid\n",
                   s->port, s->password, b->port, pool_mode, server_pool, b->dir, b->dir) != 0 ||
        chown_postgres(conf) != 0)
        return -1;
    snprintf(log, sizeof log, "%s/start.log", b->dir);
    const char *argv[] = {"/usr/sbin/pgbouncer", "-d", "-q", conf, NULL};
    if (run(log, argv) != 0) {
        fprintf(stderr, "pg_server: pgbouncer did not start, see %s\n", log);
        return -1;
    }
    /* -d returns once forked; wait until it accepts connections */
    for (int i = 0; i < 100; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return 0;
        usleep(50000);
    }
    fprintf(stderr, "pg_server: pgbouncer not listening on %d\n", b->port);
    return -1;
}

void pg_bouncer_stop(struct pg_bouncer *b)
{
    char path[256], buf[32];
    if (b->dir[0] == '\0')
        return;
    snprintf(path, sizeof path, "%s/pgbouncer.pid", b->dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fgets(buf, sizeof buf, f) != NULL) {
            pid_t pid = (pid_t)atoi(buf);
            if (pid > 1 && kill(pid, SIGTERM) == 0)
                for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
                    usleep(50000);
        }
        fclose(f);
    }
    const char *rm[] = {"rm", "-rf", b->dir, NULL};
    pid_t p = fork();
    if (p == 0) {
        execvp(rm[0], (char *const *)rm);
        _exit(127);
    }
    if (p > 0)
        waitpid(p, NULL, 0);
    b->dir[0] = '\0';
}
