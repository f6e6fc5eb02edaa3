#include "config.h"
#include "http_peer.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "read_line.h"

extern char **environ;

int http_peer_start(struct http_peer *p, bool tls)
{
    const char *srcdir = getenv("NOVA_SRCDIR");
    char script[1024], line[600];
    int in[2], out[2];
    posix_spawn_file_actions_t fa;

    memset(p, 0, sizeof *p);
    p->pid = -1;
    snprintf(script, sizeof script, "%s/tests/lib/http_peer.py",
             srcdir != NULL ? srcdir : NOVA_TEST_SRCDIR);
    char *argv[] = {"python3", script, tls ? "--tls" : NULL, NULL};
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    int rc = posix_spawnp(&p->pid, "python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        fprintf(stderr, "http_peer: cannot start python3: %s\n", strerror(rc));
        close(in[1]);
        close(out[0]);
        p->pid = -1;
        return -1;
    }
    p->stdin_fd = in[1];
    for (;;) {
        if (nova_test_read_line(out[0], line, sizeof line, 20000) != 0) {
            fprintf(stderr, "http_peer: %s did not start\n", script);
            close(out[0]);
            http_peer_stop(p);
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

void http_peer_stop(struct http_peer *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        close(p->stdin_fd);
        waitpid(p->pid, NULL, 0);
        p->pid = -1;
    }
}

int http_peer_stats(const struct http_peer *p, int *accepted, int *used, int *requests)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port)};
    static const char q[] = "GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[4096];
    size_t n = 0;
    int fd, rc = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        write(fd, q, sizeof q - 1) != (ssize_t)(sizeof q - 1))
        goto out;
    for (;;) {
        ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    cJSON *j = body != NULL ? cJSON_Parse(body + 4) : NULL;
    if (j != NULL) {
        *accepted = cJSON_GetObjectItem(j, "accepted")->valueint;
        *used = cJSON_GetObjectItem(j, "used")->valueint;
        *requests = cJSON_GetObjectItem(j, "requests")->valueint;
        cJSON_Delete(j);
        rc = 0;
    }
out:
    close(fd);
    return rc;
}
