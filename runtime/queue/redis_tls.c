#include "config.h"
#include "common/sigpipe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "queue/redis_int.h"

/* The last queued OpenSSL error's reason ("tlsv13 alert certificate
 * required"), or its full text when it has no reason string. */
static void openssl_reason(char *out, size_t outlen)
{
    unsigned long code = ERR_peek_last_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;
    if (reason)
        snprintf(out, outlen, "%s", reason);
    else if (code)
        ERR_error_string_n(code, out, outlen);
    else
        snprintf(out, outlen, "unknown error");
    ERR_clear_error();
}

SSL_CTX *nova__redis_tls_ctx(const struct nova__redis_target *t, char *err, size_t errlen)
{
    char why[200];
    SSL_CTX *ctx;
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        openssl_reason(why, sizeof(why));
        snprintf(err, errlen, "TLS: cannot create a context: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, t->tls_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if (t->tls_ca_file && *t->tls_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, t->tls_ca_file, NULL) != 1) {
            openssl_reason(why, sizeof(why));
            snprintf(err, errlen, "tls_ca_file '%s' holds no usable CA certificate: %s",
                     t->tls_ca_file, why);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        openssl_reason(why, sizeof(why));
        snprintf(err, errlen, "TLS: cannot load the system CA store: %s", why);
        goto fail;
    }
    if (t->tls_cert_file && *t->tls_cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, t->tls_cert_file) != 1) {
            openssl_reason(why, sizeof(why));
            snprintf(err, errlen, "tls_cert_file '%s' is not a PEM certificate: %s",
                     t->tls_cert_file, why);
            goto fail;
        }
        if (!t->tls_key_file ||
            SSL_CTX_use_PrivateKey_file(ctx, t->tls_key_file, SSL_FILETYPE_PEM) != 1) {
            openssl_reason(why, sizeof(why));
            snprintf(err, errlen, "tls_key_file '%s' is not a PEM private key: %s",
                     t->tls_key_file ? t->tls_key_file : "", why);
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            openssl_reason(why, sizeof(why));
            snprintf(err, errlen, "tls_key_file does not match tls_cert_file: %s", why);
            goto fail;
        }
    }
    nova__ignore_sigpipe();
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static bool is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

SSL *nova__redis_tls_new(SSL_CTX *ctx, const struct nova__redis_target *t, const char *host, int fd,
                         char *err, size_t errlen)
{
    const char *name = t->tls_server_name && *t->tls_server_name ? t->tls_server_name : host;
    char why[200];
    SSL *ssl;
    ERR_clear_error();
    ssl = SSL_new(ctx);
    if (!ssl)
        goto fail;
    if (SSL_set_fd(ssl, fd) != 1)
        goto fail;
    if (name && *name) {
        bool ip = is_ip(name);
        if (!ip && SSL_set_tlsext_host_name(ssl, name) != 1)
            goto fail;
        if (!t->tls_skip_verify) {
            /* The certificate must name the server: its IP address in an
             * IP SAN, or its DNS name. */
            if (ip) {
                if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
                    goto fail;
            } else if (SSL_set1_host(ssl, name) != 1) {
                goto fail;
            }
        }
    }
    SSL_set_connect_state(ssl);
    return ssl;
fail:
    openssl_reason(why, sizeof(why));
    snprintf(err, errlen, "TLS: cannot set up the connection: %s", why);
    SSL_free(ssl);
    return NULL;
}

void nova__redis_tls_error(SSL *ssl, int rc, int ssl_error, char *out, size_t outlen)
{
    char why[200];
    long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (ssl_error == SSL_ERROR_SSL && verify != X509_V_OK) {
        snprintf(out, outlen,
                 "TLS: the server's certificate was refused: %s (check tls_ca_file and "
                 "tls_server_name)",
                 X509_verify_cert_error_string(verify));
        ERR_clear_error();
    } else if (ssl_error == SSL_ERROR_SSL) {
        openssl_reason(why, sizeof(why));
        snprintf(out, outlen, "TLS: %s", why);
    } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
        snprintf(out, outlen, "TLS: the server closed the session");
        ERR_clear_error();
    } else if (ssl_error == SSL_ERROR_SYSCALL && (rc == 0 || errno == 0)) {
        snprintf(out, outlen,
                 "TLS: the server closed the connection (does it speak TLS on this port, "
                 "and does it want a client certificate?)");
        ERR_clear_error();
    } else if (ssl_error == SSL_ERROR_SYSCALL) {
        snprintf(out, outlen, "TLS: %s", strerror(errno));
        ERR_clear_error();
    } else {
        openssl_reason(why, sizeof(why));
        snprintf(out, outlen, "TLS: %s", why);
    }
}
