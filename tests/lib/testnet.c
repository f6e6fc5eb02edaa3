#include "config.h"
#include "testnet.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "read_line.h"

extern char **environ;

static const char *srcdir(void)
{
    const char *s = getenv("NOVA_SRCDIR");
    return s != NULL ? s : NOVA_TEST_SRCDIR;
}

int testnet_start(struct testnet *t, const char *const *args)
{
    char script[1024], line[1024];
    const char *argv[32];
    int in[2], out[2], n = 0;
    posix_spawn_file_actions_t fa;

    memset(t, 0, sizeof(*t));
    t->pid = -1;
    snprintf(script, sizeof(script), "%s/tests/testnet/server.js", srcdir());
    argv[n++] = "node";
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--exit-on-stdin-eof";
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 30; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    /* NOVA_NODE_ROOT: the tree whose tests/<peer>/node_modules hold the npm peers
     * (make distcheck's unpacked tarball has none). */
    const char *root = getenv("NOVA_NODE_ROOT");
    if (root != NULL && root[0] != '\0') {
        char modules[1024];
        snprintf(modules, sizeof modules, "%s/tests/testnet/node_modules", root);
        setenv("NODE_PATH", modules, 1);
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    int rc = posix_spawnp(&t->pid, "node", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        fprintf(stderr, "testnet: cannot start node (Debian: nodejs >= 20): %s\n", strerror(rc));
        close(in[1]);
        close(out[0]);
        t->pid = -1;
        return -1;
    }
    t->stdin_fd = in[1];
    t->stdout_fd = out[0];
    if (nova_test_read_line(out[0], line, sizeof(line), 20000) != 0) {
        fprintf(stderr,
                "testnet: %s printed no ready line (is @stellar/stellar-base installed? run "
                "`npm ci --prefix tests/testnet`)\n",
                script);
        testnet_stop(t);
        return -1;
    }
    cJSON *ready = cJSON_Parse(line);
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(ready, "port");
    const cJSON *pass = cJSON_GetObjectItemCaseSensitive(ready, "network_passphrase");
    if (!cJSON_IsNumber(port) || !cJSON_IsString(pass)) {
        fprintf(stderr, "testnet: unexpected ready line: %s\n", line);
        cJSON_Delete(ready);
        testnet_stop(t);
        return -1;
    }
    t->port = port->valueint;
    snprintf(t->passphrase, sizeof(t->passphrase), "%s", pass->valuestring);
    cJSON_Delete(ready);
    snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d", t->port);
    snprintf(t->rpc_url, sizeof(t->rpc_url), "%s/soroban/rpc", t->url);
    return 0;
}

void testnet_stop(struct testnet *t)
{
    if (t->pid > 0) {
        close(t->stdin_fd);
        kill(t->pid, SIGTERM);
        waitpid(t->pid, NULL, 0);
        t->pid = -1;
    }
    if (t->stdout_fd > 0)
        close(t->stdout_fd);
    t->stdout_fd = -1;
    if (t->dir[0] != '\0') {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "testnet: cannot remove %s\n", t->dir);
        t->dir[0] = '\0';
    }
}

static int copy_key(const cJSON *o, const char *name, char out[57])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(v) || strlen(v->valuestring) != 56)
        return -1;
    memcpy(out, v->valuestring, 57);
    return 0;
}

int testnet_setup(struct testnet *t, int recipients, int without_trust)
{
    char cmd[2048], path[300];
    if (t->dir[0] == '\0') {
        snprintf(t->dir, sizeof(t->dir), "%s/nova-testnet-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (mkdtemp(t->dir) == NULL)
            return -1;
    }
    snprintf(path, sizeof(path), "%s/keys.json", t->dir);
    snprintf(cmd, sizeof(cmd),
             "node '%s/tests/testnet/setup.js' --url '%s' --out '%s' --recipients %d "
             "--without-trust %d >/dev/null",
             srcdir(), t->url, path, recipients, without_trust);
    if (system(cmd) != 0) {
        fprintf(stderr, "testnet: setup.js failed\n");
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    static char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *keys = cJSON_Parse(text);
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(keys, "issuer");
    const cJSON *dist = cJSON_GetObjectItemCaseSensitive(keys, "distribution");
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(keys, "recipients");
    int rc = 0;
    if (copy_key(iss, "public", t->issuer) < 0 || copy_key(iss, "secret", t->issuer_secret) < 0 ||
        copy_key(dist, "public", t->dist) < 0 || copy_key(dist, "secret", t->dist_secret) < 0)
        rc = -1;
    for (int i = 0; rc == 0 && i < recipients && i < 4; i++)
        rc = copy_key(cJSON_GetArrayItem(rec, i), "public", t->recipient[i]);
    cJSON_Delete(keys);
    return rc;
}

struct buf {
    char *data;
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, p, size * n);
    b->len += size * n;
    grown[b->len] = '\0';
    b->data = grown;
    return size * n;
}

cJSON *testnet_call(struct testnet *t, const char *method, const char *path, const char *body,
                    long *status)
{
    char url[1024];
    struct buf b = {0};
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (h == NULL)
        return NULL;
    snprintf(url, sizeof(url), "%s%s", t->url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (status != NULL)
        *status = rc == CURLE_OK ? code : 0;
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    cJSON *json = rc == CURLE_OK && b.data != NULL ? cJSON_Parse(b.data) : NULL;
    free(b.data);
    return json;
}

int testnet_payments_for(struct testnet *t, const char *hash)
{
    char path[200];
    snprintf(path, sizeof(path), "/_admin/payments?tx_hash=%s", hash);
    cJSON *j = testnet_call(t, "GET", path, NULL, NULL);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "payments");
    int n = cJSON_IsArray(p) ? cJSON_GetArraySize(p) : -1;
    cJSON_Delete(j);
    return n;
}
