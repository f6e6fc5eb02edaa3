/*
 * The HTTP client's mail() (nova_http_api.mail, SMTP through libcurl)
 * against a real local SMTP server: tests/lib/smtp_peer.py on aiosmtpd,
 * 127.0.0.1 only. Plain SMTP (allowed only with NOVA_MAIL_ALLOW_PLAINTEXT),
 * STARTTLS and implicit TLS (smtps) with a throwaway CA given as [http]
 * ca_file, AUTH required (right and wrong password, none), a refused
 * recipient, a server that is down, one that never answers (cancelled by
 * tag and by closing the client), and the arguments refused up front (no
 * value can add an SMTP command). The server writes what it accepted; the
 * tests compare it byte for byte with the message sent.
 */
#include "config.h"

#include <check.h>

#include "unit/testutil.h"
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "http/http_client.h"
#include "lib/smtp_peer.h"
#include "common/metrics.h"

struct result {
    int calls;
    int error;
    long status;
    char msg[512];
};

static uv_loop_t loop;
static struct nova__http_client *client;
static struct smtp_peer peer;
static char outdir[PATH_MAX];

static const char message[] = "From: Nova Reports <reports@nova.test>\r\n"
                              "To: ops@nova.test\r\n"
                              "Subject: daily report\r\n"
                              "MIME-Version: 1.0\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "\r\n"
                              "line one\r\n"
                              ".a line that starts with a dot\r\n"
                              "\r\n"
                              "last line, caf\xc3\xa9\r\n";

static void on_res(void *arg, const struct nova_http_response *res)
{
    struct result *r = arg;
    r->calls++;
    r->error = res->error;
    r->status = res->status;
    snprintf(r->msg, sizeof r->msg, "%s", res->error_message);
}

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

static struct nova__http_client *make_client(const char *ca_file)
{
    struct nova__http_config cfg = {
        .timeout_ms = 10000,
        .connect_timeout_ms = 3000,
        .max_response_bytes = 65536,
        .max_connections = 8,
        .ca_file = (char *)(uintptr_t)ca_file,
        .user_agent = "nova-worker-test/1",
    };
    struct nova__http_client *c = NULL;
    ck_assert_int_eq(nova__http_client_new(&loop, &cfg, &c), 0);
    return c;
}

static void close_client(struct nova__http_client *c)
{
    bool done = false;
    nova__http_client_close(c, on_closed, &done);
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
}

static void start_peer(const char *mode, const char *auth, const char *reject)
{
    snprintf(outdir, sizeof outdir, "%s", tu_tempdir());
    struct smtp_peer_opts o = {.mode = mode, .auth = auth, .reject = reject, .out = outdir};
    ck_assert_msg(smtp_peer_start(&peer, &o) == 0, "the SMTP peer did not start");
}

static void setup(void)
{
    nova__metrics_reset();
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    client = NULL;
    peer.pid = -1;
    outdir[0] = '\0';
}

static void teardown(void)
{
    if (client != NULL)
        close_client(client);
    client = NULL;
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    smtp_peer_stop(&peer);
    if (outdir[0] != '\0')
        tu_rmtree(outdir);
}

static void wait_for(struct result *r)
{
    uint64_t deadline = uv_hrtime() + 20000000000ull;
    while (r->calls < 1 && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_int_eq(r->calls, 1);
}

static char *url(const char *scheme, int port)
{
    static char u[128];
    snprintf(u, sizeof u, "%s://127.0.0.1:%d", scheme, port);
    return u;
}

/* Sends message to `to` and waits for the outcome. */
static void send_mail(const char *u, const char *const *to, const char *user, const char *pass,
                      uint32_t flags, struct result *r)
{
    struct nova_mail_request mq = {
        .struct_size = sizeof mq,
        .url = u,
        .from = "reports@nova.test",
        .to = to,
        .message = message,
        .message_len = sizeof message - 1,
        .username = user,
        .password = pass,
        .flags = flags,
    };
    memset(r, 0, sizeof *r);
    ck_assert_int_eq(nova__http_mail_tagged(client, &mq, on_res, r, NULL), 0);
    ck_assert_int_eq(r->calls, 0); /* never from inside mail() */
    wait_for(r);
}

static int delivered(void)
{
    int n = 0;
    char path[PATH_MAX + 32];
    for (;;) {
        snprintf(path, sizeof path, "%s/%d.eml", outdir, n + 1);
        if (access(path, F_OK) != 0)
            return n;
        n++;
    }
}

/* Message n as the server stored it equals what was sent; its envelope. */
static cJSON *check_delivered(int n)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%d.eml", outdir, n);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_uint_eq(len, sizeof message - 1);
    ck_assert(memcmp(buf, message, len) == 0);
    snprintf(path, sizeof path, "%s/%d.json", outdir, n);
    f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    cJSON *j = cJSON_Parse(buf);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "from")->valuestring, "reports@nova.test");
    return j;
}

static const char *const one[] = {"ops@nova.test", NULL};
static const char *const two[] = {"ops@nova.test", "cfo@nova.test", NULL};

START_TEST(test_plain)
{
    struct result r;
    start_peer("plain", NULL, "nobody@nova.test");
    client = make_client(NULL);

    /* plain text only when the caller allows it */
    send_mail(url("smtp", peer.port), two, NULL, NULL, NOVA_MAIL_ALLOW_PLAINTEXT, &r);
    ck_assert_msg(r.error == 0, "%d %s", r.error, r.msg);
    ck_assert_int_eq(r.status, 250);
    ck_assert_str_eq(r.msg, "");
    cJSON *j = check_delivered(1);
    const cJSON *to = cJSON_GetObjectItem(j, "to");
    ck_assert_int_eq(cJSON_GetArraySize(to), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(to, 0)->valuestring, "ops@nova.test");
    ck_assert_str_eq(cJSON_GetArrayItem(to, 1)->valuestring, "cfo@nova.test");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "tls")));
    cJSON_Delete(j);

    /* smtp:// without STARTTLS on offer: refused before any MAIL FROM */
    send_mail(url("smtp", peer.port), one, NULL, NULL, 0, &r);
    ck_assert_int_eq(r.error, -EPROTO);
    ck_assert_msg(strstr(r.msg, "STARTTLS") != NULL, "%s", r.msg);
    ck_assert_int_eq(delivered(), 1);

    /* a refused recipient fails the whole message */
    static const char *const bad[] = {"ops@nova.test", "nobody@nova.test", NULL};
    send_mail(url("smtp", peer.port), bad, NULL, NULL, NOVA_MAIL_ALLOW_PLAINTEXT, &r);
    ck_assert_int_eq(r.error, -EIO);
    ck_assert_int_eq(r.status, 550);
    ck_assert_msg(strstr(r.msg, "550") != NULL, "%s", r.msg);
    ck_assert_int_eq(delivered(), 1);

    /* and it goes on working */
    send_mail(url("smtp", peer.port), one, NULL, NULL, NOVA_MAIL_ALLOW_PLAINTEXT, &r);
    ck_assert_msg(r.error == 0, "%d %s", r.error, r.msg);
    cJSON_Delete(check_delivered(2));
}
END_TEST

START_TEST(test_starttls_and_auth)
{
    struct result r;
    start_peer("starttls", "reports:s3cret pass", NULL);
    client = make_client(peer.ca_file);

    send_mail(url("smtp", peer.port), one, "reports", "s3cret pass", 0, &r);
    ck_assert_msg(r.error == 0, "%d %s", r.error, r.msg);
    ck_assert_int_eq(r.status, 250);
    cJSON *j = check_delivered(1);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "tls")));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "auth")));
    cJSON_Delete(j);

    /* a wrong password */
    send_mail(url("smtp", peer.port), one, "reports", "wrong", 0, &r);
    ck_assert_int_eq(r.error, -EACCES);
    ck_assert_msg(strstr(r.msg, "authentication") != NULL, "%s", r.msg);
    /* no AUTH where the server requires it: it refuses MAIL FROM */
    send_mail(url("smtp", peer.port), one, NULL, NULL, 0, &r);
    ck_assert_int_eq(r.error, -EIO);
    ck_assert_int_eq(r.status, 530);
    ck_assert_int_eq(delivered(), 1);

    /* a client that does not trust the CA refuses the upgrade */
    close_client(client);
    client = make_client(NULL);
    send_mail(url("smtp", peer.port), one, "reports", "s3cret pass", 0, &r);
    ck_assert_int_eq(r.error, -EPROTO);
    ck_assert_int_eq(delivered(), 1);
}
END_TEST

START_TEST(test_smtps)
{
    struct result r;
    start_peer("smtps", NULL, NULL);
    client = make_client(peer.ca_file);
    send_mail(url("smtps", peer.port), two, NULL, NULL, 0, &r);
    ck_assert_msg(r.error == 0, "%d %s", r.error, r.msg);
    ck_assert_int_eq(r.status, 250);
    cJSON *j = check_delivered(1);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "tls")));
    cJSON_Delete(j);

    /* implicit TLS to a server speaking plain SMTP fails as TLS */
    struct smtp_peer plain;
    struct smtp_peer_opts o = {.mode = "plain"};
    ck_assert_int_eq(smtp_peer_start(&plain, &o), 0);
    send_mail(url("smtps", plain.port), one, NULL, NULL, 0, &r);
    smtp_peer_stop(&plain);
    ck_assert_msg(r.error == -EPROTO || r.error == -ECONNRESET, "%d %s", r.error, r.msg);
}
END_TEST

/* A port with nothing listening. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

START_TEST(test_server_down)
{
    struct result r;
    client = make_client(NULL);
    send_mail(url("smtp", dead_port()), one, NULL, NULL, NOVA_MAIL_ALLOW_PLAINTEXT, &r);
    ck_assert_int_eq(r.error, -ECONNREFUSED);
    send_mail(url("smtps", dead_port()), one, NULL, NULL, 0, &r);
    ck_assert_int_eq(r.error, -ECONNREFUSED);
}
END_TEST

/* A server that accepts the connection and never says a word. */
START_TEST(test_silent_server_cancelled)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    client = make_client(NULL);
    struct nova_mail_request mq = {
        .struct_size = sizeof mq,
        .url = url("smtp", ntohs(sa.sin_port)),
        .from = "reports@nova.test",
        .to = one,
        .message = message,
        .message_len = sizeof message - 1,
        .flags = NOVA_MAIL_ALLOW_PLAINTEXT,
    };
    struct result a = {0}, b = {0};
    static int tag_a, tag_b;
    ck_assert_int_eq(nova__http_mail_tagged(client, &mq, on_res, &a, &tag_a), 0);
    ck_assert_int_eq(nova__http_mail_tagged(client, &mq, on_res, &b, &tag_b), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(a.calls + b.calls, 0);
    /* a plugin stopping: its mail ends with -ECANCELED, the other goes on */
    nova__http_cancel_tag(client, &tag_a);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.error, -ECANCELED);
    ck_assert_int_eq(b.calls, 0);
    /* the client closing: the rest too */
    close_client(client);
    client = NULL;
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(b.error, -ECANCELED);
    close(fd);
}
END_TEST

/* A short timeout against the silent server: -ETIMEDOUT. */
START_TEST(test_timeout)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    client = make_client(NULL);
    struct nova_mail_request mq = {
        .struct_size = sizeof mq,
        .url = url("smtp", ntohs(sa.sin_port)),
        .from = "reports@nova.test",
        .to = one,
        .message = message,
        .message_len = sizeof message - 1,
        .timeout_ms = 300,
        .flags = NOVA_MAIL_ALLOW_PLAINTEXT,
    };
    struct result r = {0};
    ck_assert_int_eq(nova__http_mail_tagged(client, &mq, on_res, &r, NULL), 0);
    wait_for(&r);
    ck_assert_int_eq(r.error, -ETIMEDOUT);
    close(fd);
}
END_TEST

START_TEST(test_refused_arguments)
{
    client = make_client(NULL);
    struct result r = {0};
    struct nova_mail_request ok = {
        .struct_size = sizeof ok,
        .url = "smtp://127.0.0.1:25",
        .from = "reports@nova.test",
        .to = one,
        .message = message,
        .message_len = sizeof message - 1,
    };
    struct nova_mail_request m;
    static const char *const injected[] = {"ops@nova.test>\r\nRCPT TO:<evil@x.test", NULL};
    static const char *const blank[] = {"ops @nova.test", NULL};
    static const char *const no_at[] = {"ops", NULL};
    static const char *const none[] = {NULL};

    m = ok;
    m.url = "http://127.0.0.1:25";
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m = ok;
    m.url = NULL;
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m = ok;
    m.from = "reports@nova.test>\r\nRSET";
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m = ok;
    m.from = "<reports@nova.test>";
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m = ok;
    m.to = injected;
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m.to = blank;
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m.to = no_at;
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m.to = none;
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m.to = NULL;
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m = ok;
    m.message = NULL;
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m = ok;
    m.flags = 0x80;
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    m = ok;
    m.struct_size = 8;
    ck_assert_int_eq(nova__http_mail_tagged(client, &m, on_res, &r, NULL), -EINVAL);
    ck_assert_int_eq(nova__http_mail_tagged(client, &ok, NULL, &r, NULL), -EINVAL);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(r.calls, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http_mail");
    TCase *t = tcase_create("mail");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_plain);
    tcase_add_test(t, test_starttls_and_auth);
    tcase_add_test(t, test_smtps);
    tcase_add_test(t, test_server_down);
    tcase_add_test(t, test_silent_server_cancelled);
    tcase_add_test(t, test_timeout);
    tcase_add_test(t, test_refused_arguments);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
