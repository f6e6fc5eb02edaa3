/*
 * rp_mail.c - the e-mail of a report: one RFC 5322 message, MIME
 * multipart/mixed, a short text part and the CSV file as a base64
 * attachment. Built whole in memory because the host's mail() takes the
 * message as one buffer; the plugin bounds it with max_attachment.
 *
 * Everything put in a header is the plugin's own text or the operator's
 * configuration (addresses checked at init); CR and LF are dropped from
 * header values all the same, so no value can add a header line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rp.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 (RFC 2045): lines of 76 characters ending in CRLF when wrap. */
static void base64(struct nova_buf *b, const unsigned char *p, size_t n, bool wrap)
{
    char line[80];
    size_t ll = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        line[ll++] = b64[(v >> 18) & 63];
        line[ll++] = b64[(v >> 12) & 63];
        line[ll++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        line[ll++] = i + 2 < n ? b64[v & 63] : '=';
        if (wrap && ll == 76) {
            nova_buf_add(b, line, ll);
            nova_buf_add(b, "\r\n", 2);
            ll = 0;
        }
    }
    if (ll > 0) {
        nova_buf_add(b, line, ll);
        if (wrap)
            nova_buf_add(b, "\r\n", 2);
    }
}

static bool is_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* A header value on one line: CR and LF dropped. */
static void header_text(struct nova_buf *b, const char *s)
{
    for (; *s != '\0'; s++)
        if (*s != '\r' && *s != '\n')
            nova_buf_add(b, s, 1);
}

/* Text with LF or CRLF line ends, written with CRLF. */
static void crlf_text(struct nova_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\r')
            continue;
        if (*s == '\n')
            nova_buf_add(b, "\r\n", 2);
        else
            nova_buf_add(b, s, 1);
    }
}

static void rfc5322_date(struct nova_buf *b, int64_t ms)
{
    static const char *const wd[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char iso[40];
    rp_iso_date(ms, iso, sizeof iso); /* YYYY-MM-DDTHH:MM:SS.sssZ */
    int64_t days = ms / 86400000 - (ms % 86400000 < 0);
    int w = (int)(((days % 7) + 7) % 7);
    int m = atoi(iso + 5);
    nova_buf_printf(b, "%s, %.2s %s %.4s %.8s +0000", wd[w], iso + 8, mon[(m - 1) % 12], iso,
                    iso + 11);
}

char *rp_mail_build(const struct rp_mail_parts *m, size_t *len)
{
    struct nova_buf b = {0};
    char boundary[64];
    snprintf(boundary, sizeof boundary, "=_nova-reports-%lld", (long long)m->date_ms);

    nova_buf_str(&b, "From: ");
    header_text(&b, m->from);
    nova_buf_str(&b, "\r\nTo: ");
    for (size_t i = 0; m->to[i] != NULL; i++) {
        if (i > 0)
            nova_buf_str(&b, ", ");
        header_text(&b, m->to[i]);
    }
    nova_buf_str(&b, "\r\nSubject: ");
    if (is_ascii(m->subject))
        header_text(&b, m->subject);
    else {
        nova_buf_str(&b, "=?UTF-8?B?");
        base64(&b, (const unsigned char *)m->subject, strlen(m->subject), false);
        nova_buf_str(&b, "?=");
    }
    nova_buf_str(&b, "\r\nDate: ");
    rfc5322_date(&b, m->date_ms);
    if (m->message_id != NULL) {
        nova_buf_str(&b, "\r\nMessage-ID: ");
        header_text(&b, m->message_id);
    }
    nova_buf_printf(&b,
                    "\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: multipart/mixed; boundary=\"%s\"\r\n"
                    "\r\n"
                    "This is a MIME message.\r\n",
                    boundary);

    /* the summary: base64 when it is not ASCII, so no 8BITMIME is needed */
    nova_buf_printf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n", boundary);
    if (is_ascii(m->body)) {
        nova_buf_str(&b, "Content-Transfer-Encoding: 7bit\r\n\r\n");
        crlf_text(&b, m->body);
        if (b.len < 2 || memcmp(b.p + b.len - 2, "\r\n", 2) != 0)
            nova_buf_str(&b, "\r\n");
    } else {
        nova_buf_str(&b, "Content-Transfer-Encoding: base64\r\n\r\n");
        struct nova_buf t = {0};
        crlf_text(&t, m->body);
        base64(&b, (const unsigned char *)(t.p != NULL ? t.p : ""), t.len, true);
        if (t.oom)
            b.oom = true;
        nova_buf_free(&t);
    }

    if (m->filename != NULL) {
        struct nova_buf name = {0};
        header_text(&name, m->filename);
        nova_buf_printf(&b,
                        "--%s\r\n"
                        "Content-Type: text/csv; charset=utf-8; name=\"%s\"\r\n"
                        "Content-Transfer-Encoding: base64\r\n"
                        "Content-Disposition: attachment; filename=\"%s\"\r\n"
                        "\r\n",
                        boundary, name.p != NULL ? name.p : "", name.p != NULL ? name.p : "");
        nova_buf_free(&name);
        base64(&b, m->attachment, m->attachment_len, true);
    }
    nova_buf_printf(&b, "--%s--\r\n", boundary);
    if (!b.oom)
        *len = b.len;
    return rp_buf_take(&b);
}
