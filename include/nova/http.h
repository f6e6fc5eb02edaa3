/*
 * nova/http.h - the shared outbound HTTP client offered to plugins.
 *
 * Reach it through host->http (NULL when the daemon has no HTTP client;
 * probe with NOVA_HOST_HAS(host, http)). Requests run on the runtime's
 * loop over one pooled set of keep-alive connections; TLS peers are
 * always verified.
 *
 * Ownership
 *   - Everything in struct nova_http_request (URL, headers, body) is
 *     copied before request() returns; the caller may free it at once.
 *   - The response handed to the callback, its body, headers, messages and
 *     the parsed JSON are borrowed: valid only until the callback returns.
 *
 * Callbacks follow libuv's rule: when request()/request_json() return a
 * negative errno the callback is never called; otherwise it is called
 * exactly once, from the loop thread and never from inside request()
 * itself, including when the runtime shuts down (error -ECANCELED).
 *
 * Outbound guard: set NOVA_HTTP_GUARD for every URL a user (merchant,
 * config of a third party, job data) supplied. It refuses schemes other
 * than http/https, URLs with user:password@, and any connection to a
 * loopback, private, CGNAT, link-local (cloud metadata), multicast,
 * reserved or unspecified address, IPv4 or IPv6, mapped or embedded. The
 * check runs on the address actually connected to (and again on every
 * reused connection and redirect hop), so a hostname that resolves to a
 * private address, or starts to after a DNS rebinding, is refused before
 * any byte is sent.
 *
 * guard_allow lets one request through to networks the operator named
 * (a plugin's `allow_networks`, e.g. "10.20.0.0/16, fd00:1::/64"): IPv4 and
 * IPv6 blocks, comma or blank separated, an address alone being one host.
 * It applies to that request only (its connections, reused or redirected),
 * never to the others. A malformed list makes request() return -EINVAL.
 */
#ifndef NOVA_HTTP_H
#define NOVA_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "nova/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* request flags */
#define NOVA_HTTP_GUARD            (1u << 0) /* user-supplied URL: apply the outbound guard */
#define NOVA_HTTP_FOLLOW_REDIRECTS (1u << 1) /* follow up to 5 redirects; off by default */
#define NOVA_HTTP_HTTPS_ONLY       (1u << 2) /* refuse http:// (and redirects to it) */
/* Send the request at most once: on a new connection, closed after. A
 * kept-alive connection that dies before any answer makes curl send the
 * request again on a new one, which a receiver may then get twice (a
 * webhook); with this flag that cannot happen, the error is -ECONNRESET. */
#define NOVA_HTTP_SEND_ONCE (1u << 3)

struct nova_http_request {
    uint32_t struct_size; /* sizeof(struct nova_http_request) */
    const char *method;   /* "GET", "POST", ...; NULL = GET, or POST when body != NULL */
    const char *url;      /* absolute http:// or https:// URL */
    /* NULL-terminated list of "Name: value" lines, or NULL. CR and LF are
     * refused. "Name:" with an empty value removes a default header. */
    const char *const *headers;
    const void *body; /* request body, or NULL */
    size_t body_len;
    int64_t timeout_ms;         /* whole request; 0 = [http] timeout */
    int64_t max_response_bytes; /* body limit; 0 = [http] max_response_size */
    uint32_t flags;             /* NOVA_HTTP_* */
    /* Appended in ABI 1.3; the host reads it only when struct_size covers
     * it (an older host ignores it, so its guard refuses as before). */
    const char *guard_allow; /* CIDR list the guard lets through, NULL = none */
    const char *aws_sigv4;   /* sign with AWS Signature V4 (libcurl's CURLOPT_AWS_SIGV4):
                                "aws:amz:REGION:SERVICE", e.g. "aws:amz:us-east-1:s3";
                                NULL = no signing */
    const char *username;    /* HTTP Basic user, or the SigV4 access key id; NULL = none */
    const char *password;    /* its password, or the SigV4 secret key; never logged */
};

/* mail flags */
#define NOVA_MAIL_ALLOW_PLAINTEXT (1u << 0) /* smtp:// may go on without STARTTLS */

/* One message for mail(). Everything is copied before mail() returns. */
struct nova_mail_request {
    uint32_t struct_size; /* sizeof(struct nova_mail_request) */
    /* smtps://host[:port] (TLS from the first byte) or smtp://host[:port]
     * (upgraded with STARTTLS, required unless NOVA_MAIL_ALLOW_PLAINTEXT). */
    const char *url;
    const char *from;      /* envelope sender address, e.g. "reports@nova.example" */
    const char *const *to; /* envelope recipient addresses, NULL-terminated, at least one */
    /* The message exactly as sent: RFC 5322 header lines, a blank line and
     * the (MIME) body, CRLF line ends. */
    const void *message;
    size_t message_len;
    const char *username; /* SMTP AUTH; NULL = no authentication */
    const char *password; /* never logged */
    int64_t timeout_ms;   /* whole exchange; 0 = [http] timeout */
    uint32_t flags;       /* NOVA_MAIL_* */
};

/*
 * Transport errors in nova_http_response.error (status is then 0, or the
 * status received before the failure):
 *   -ETIMEDOUT        the request took longer than timeout_ms, or connecting
 *                     longer than [http] connect_timeout
 *   -EFBIG            response body (or headers) larger than the limit
 *   -EACCES           refused by the outbound guard (error_message says why)
 *   -EINVAL           malformed URL
 *   -EHOSTUNREACH     the host name did not resolve
 *   -ECONNREFUSED     connection failed (refused, unreachable)
 *   -EPROTO           TLS failure (handshake, certificate verification)
 *   -ECONNRESET       the connection broke while sending or receiving
 *   -ELOOP            too many redirects
 *   -EBADMSG          request_json(): response body is not valid JSON
 *   -ECANCELED        the runtime is shutting down
 *   -EIO              anything else
 * An HTTP error status (4xx/5xx) is not a transport error: error is 0.
 * A redirect that is not followed is returned as the 3xx response it is.
 */
struct nova_http_response {
    uint32_t struct_size;      /* sizeof(struct nova_http_response) */
    int error;                 /* 0 or a negative errno, see above */
    const char *error_message; /* "" when error == 0; never NULL */
    long status;               /* HTTP status code; 0 when none was received */
    const char *body;          /* never NULL; NUL-terminated for convenience */
    size_t body_len;           /* excluding that NUL */
    int64_t total_time_ms;     /* from request() to completion */
    const char *url;           /* the last URL fetched (after redirects) */
    const void *internal;      /* host-private; do not touch */
};

/* res and everything reachable from it are borrowed for the call. */
typedef void (*nova_http_cb)(void *arg, const struct nova_http_response *res);
/* json is the parsed response body, NULL when the body was empty or
 * res->error is set. Borrowed for the call. */
typedef void (*nova_http_json_cb)(void *arg, const struct nova_http_response *res,
                                  const struct cJSON *json);

struct nova_http_api {
    uint32_t struct_size; /* sizeof(struct nova_http_api) of the host */

    /* Starts a request. Returns 0 (cb will run exactly once) or -EINVAL
     * (NULL req/url/cb, bad method or header line), -ENOMEM, -ENOTSUP (no
     * HTTP client configured) or -ECANCELED (shutting down). A URL problem
     * or guard refusal is reported through cb with a message. */
    int (*request)(const struct nova_host *host, const struct nova_http_request *req,
                   nova_http_cb cb, void *arg);

    /* Like request(), sending body (may be NULL: no body) serialised with
     * Content-Type: application/json and Accept: application/json, in place
     * of req->body (ignored here); headers you pass win over these. The
     * method defaults to POST with a body, GET without. The response body
     * of any status is parsed; a non-empty body that is not JSON gives
     * error -EBADMSG with a message naming the byte offset (status and
     * body stay available). */
    int (*request_json)(const struct nova_host *host, const struct nova_http_request *req,
                        const struct cJSON *body, nova_http_json_cb cb, void *arg);

    /* Value of a response header (case-insensitive name, first occurrence,
     * surrounding blanks trimmed), or NULL. Borrowed like the response. */
    const char *(*header)(const struct nova_http_response *res, const char *name);

    /* For 429 and 503: milliseconds to wait before retrying, from
     * Retry-After (delta seconds or HTTP-date; a date in the past gives 0)
     * or, for 429 without it, X-RateLimit-Reset; 0 when the server gave no
     * hint (use your own backoff). Capped at one day. -1 for any other
     * response or a transport error. Whether to retry is the caller's call. */
    int64_t (*retry_after_ms)(const struct nova_http_response *res);

    /* Since ABI 1.3 (probe with NOVA_HOST_HAS(host, http) and
     * http->struct_size): sends one e-mail over SMTP on the same loop and
     * client. The callback's response has error 0 and status 250 (the
     * server's last reply code) once the server accepted the message for
     * every recipient; otherwise error is -ECONNREFUSED, -EHOSTUNREACH,
     * -ETIMEDOUT, -EPROTO (TLS failed, or STARTTLS not offered on smtp://
     * without NOVA_MAIL_ALLOW_PLAINTEXT), -EACCES (authentication refused)
     * or -EIO (the server refused the sender, a recipient or the message;
     * error_message has its reply), with status the last reply code seen.
     * Returns like request(). */
    int (*mail)(const struct nova_host *host, const struct nova_mail_request *req, nova_http_cb cb,
                void *arg);
};

#ifdef __cplusplus
}
#endif
#endif /* NOVA_HTTP_H */
