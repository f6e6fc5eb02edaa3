#include "config.h"
#include "http/http_guard.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct v4_range {
    uint32_t net;
    unsigned bits;
    const char *what;
};

/* Everything that is not ordinary public unicast. Documentation and
 * benchmarking ranges are not routable either; refusing them costs nothing. */
static const struct v4_range v4_refused[] = {
    {0x00000000u, 8, "unspecified (0.0.0.0/8)"},
    {0x0a000000u, 8, "private (10.0.0.0/8)"},
    {0x64400000u, 10, "shared address space (100.64.0.0/10)"},
    {0x7f000000u, 8, "loopback (127.0.0.0/8)"},
    {0xa9fe0000u, 16, "link-local, cloud metadata (169.254.0.0/16)"},
    {0xac100000u, 12, "private (172.16.0.0/12)"},
    {0xc0000000u, 24, "IETF protocol assignments (192.0.0.0/24)"},
    {0xc0000200u, 24, "documentation (192.0.2.0/24)"},
    {0xc0a80000u, 16, "private (192.168.0.0/16)"},
    {0xc6120000u, 15, "benchmarking (198.18.0.0/15)"},
    {0xc6336400u, 24, "documentation (198.51.100.0/24)"},
    {0xcb007100u, 24, "documentation (203.0.113.0/24)"},
    {0xe0000000u, 4, "multicast (224.0.0.0/4)"},
    {0xf0000000u, 4, "reserved or broadcast (240.0.0.0/4)"},
};

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static bool allowed(const struct nova__http_guard_allow *allow, const char *addr, unsigned port)
{
    for (; allow != NULL && allow->addr != NULL; allow++) {
        if (allow->port == port && strcmp(allow->addr, addr) == 0)
            return true;
    }
    return false;
}

/* Returns the reason a v4 address (network byte order bytes) is refused,
 * or NULL. */
static const char *v4_reason(const uint8_t b[4])
{
    uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    for (size_t i = 0; i < sizeof v4_refused / sizeof v4_refused[0]; i++) {
        uint32_t mask = 0xffffffffu << (32 - v4_refused[i].bits);
        if ((a & mask) == v4_refused[i].net)
            return v4_refused[i].what;
    }
    return NULL;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return false;
    }
    return true;
}

/* Returns the reason a v6 address is refused, or NULL. Addresses that
 * carry an IPv4 address are judged by it, so ::ffff:10.0.0.1 cannot sneak
 * a private v4 target through an AAAA record. */
static const char *v6_reason(const uint8_t b[16])
{
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    const char *r;

    if (all_zero(b, 16))
        return "unspecified (::)";
    if (all_zero(b, 15) && b[15] == 1)
        return "loopback (::1)";
    if (all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff) {
        r = v4_reason(b + 12);
        return r != NULL ? "IPv4-mapped (::ffff:0:0/96) and the IPv4 address is not public" : NULL;
    }
    if (all_zero(b, 12))
        return "IPv4-compatible (::/96, deprecated)";
    if (memcmp(b, nat64, 12) == 0) {
        r = v4_reason(b + 12);
        return r != NULL ? "NAT64 (64:ff9b::/96) and the IPv4 address is not public" : NULL;
    }
    if ((b[0] & 0xfe) == 0xfc)
        return "unique local (fc00::/7)";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return "link-local (fe80::/10)";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return "site-local (fec0::/10)";
    if (b[0] == 0xff)
        return "multicast (ff00::/8)";
    if ((b[0] & 0xe0) != 0x20)
        return "reserved (outside global unicast 2000::/3)";
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return "documentation (2001:db8::/32)";
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0)
        return "Teredo (2001::/32)";
    if (b[0] == 0x20 && b[1] == 0x02) {
        r = v4_reason(b + 2);
        return r != NULL ? "6to4 (2002::/16) and the IPv4 address is not public" : NULL;
    }
    return NULL;
}

/* ---- a request's own allowance ------------------------------------------ */

/* One list entry, NUL-terminated in tok. Returns 0 or -EINVAL. */
static int parse_net(char *tok, struct nova__http_guard_net *net)
{
    char *slash = strchr(tok, '/');
    unsigned long bits = 0;
    size_t len;

    if (slash != NULL) {
        const char *d = slash + 1;
        if (*d == '\0' || strlen(d) > 3)
            return -EINVAL;
        for (; *d != '\0'; d++) {
            if (*d < '0' || *d > '9')
                return -EINVAL;
            bits = bits * 10 + (unsigned long)(*d - '0');
        }
        *slash = '\0';
    }
    memset(net, 0, sizeof *net);
    if (inet_pton(AF_INET, tok, net->addr) == 1) {
        net->family = AF_INET;
        len = 4;
    } else if (inet_pton(AF_INET6, tok, net->addr) == 1) {
        net->family = AF_INET6;
        len = 16;
    } else {
        return -EINVAL;
    }
    if (slash == NULL)
        bits = len * 8;
    if (bits > len * 8)
        return -EINVAL;
    net->bits = (unsigned)bits;
    /* clear the host part: "127.0.0.1/8" means 127.0.0.0/8 */
    for (size_t i = 0; i < len; i++) {
        size_t from = i * 8;
        if (from >= bits)
            net->addr[i] = 0;
        else if (bits - from < 8)
            net->addr[i] &= (uint8_t)(0xffu << (8 - (bits - from)));
    }
    return 0;
}

static bool is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int nova__http_guard_nets_parse(const char *list, struct nova__http_guard_nets **out, char *why,
                                size_t whylen)
{
    struct nova__http_guard_nets *nets;
    size_t count = 0;
    const char *p;

    *out = NULL;
    if (list == NULL)
        return 0;
    for (p = list; *p != '\0';) {
        while (is_sep(*p))
            p++;
        if (*p == '\0')
            break;
        count++;
        while (*p != '\0' && !is_sep(*p))
            p++;
    }
    if (count == 0)
        return 0;
    nets = calloc(1, sizeof *nets + count * sizeof nets->net[0]);
    if (nets == NULL)
        return -ENOMEM;
    for (p = list; *p != '\0';) {
        char tok[80];
        size_t n = 0;
        while (is_sep(*p))
            p++;
        if (*p == '\0')
            break;
        while (p[n] != '\0' && !is_sep(p[n]))
            n++;
        if (n >= sizeof tok) {
            say(why, whylen, "allowed networks: entry '%.40s...' is too long", p);
            free(nets);
            return -EINVAL;
        }
        memcpy(tok, p, n);
        tok[n] = '\0';
        if (parse_net(tok, &nets->net[nets->n]) != 0) {
            say(why, whylen,
                "allowed networks: '%.*s' is not an IPv4 or IPv6 network (address or "
                "address/prefix)",
                (int)n, p);
            free(nets);
            return -EINVAL;
        }
        nets->n++;
        p += n;
    }
    *out = nets;
    return 0;
}

void nova__http_guard_nets_free(struct nova__http_guard_nets *nets)
{
    free(nets);
}

static bool prefix_equal(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    size_t whole = bits / 8;
    unsigned rest = bits % 8;

    if (memcmp(a, net, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == net[whole];
}

bool nova__http_guard_nets_match(const struct nova__http_guard_nets *nets, int family,
                                 const void *addr)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *b = addr;
    const uint8_t *v4 = NULL;

    if (nets == NULL || addr == NULL)
        return false;
    if (family == AF_INET)
        v4 = b;
    else if (family == AF_INET6 && memcmp(b, mapped, sizeof mapped) == 0)
        v4 = b + 12;
    for (size_t i = 0; i < nets->n; i++) {
        const struct nova__http_guard_net *n = &nets->net[i];
        if (n->family == AF_INET && v4 != NULL && prefix_equal(v4, n->addr, n->bits))
            return true;
        if (n->family == AF_INET6 && family == AF_INET6 && prefix_equal(b, n->addr, n->bits))
            return true;
    }
    return false;
}

/* ---- the checks ------------------------------------------------------------ */

static int judge(int family, const void *addr, unsigned port,
                 const struct nova__http_guard_allow *allow,
                 const struct nova__http_guard_nets *nets, char *why, size_t whylen)
{
    char text[INET6_ADDRSTRLEN];
    const char *reason;

    if (inet_ntop(family, addr, text, sizeof text) == NULL) {
        say(why, whylen, "unprintable address");
        return -EACCES;
    }
    reason = family == AF_INET ? v4_reason(addr) : v6_reason(addr);
    if (reason == NULL || allowed(allow, text, port) ||
        nova__http_guard_nets_match(nets, family, addr))
        return 0;
    say(why, whylen, "outbound guard: address %s is %s", text, reason);
    return -EACCES;
}

int nova__http_guard_check_sockaddr_nets(const struct sockaddr *sa, socklen_t len,
                                         const struct nova__http_guard_allow *allow,
                                         const struct nova__http_guard_nets *nets, char *why,
                                         size_t whylen)
{
    if (sa != NULL && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return judge(AF_INET, &in->sin_addr, ntohs(in->sin_port), allow, nets, why, whylen);
    }
    if (sa != NULL && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return judge(AF_INET6, &in6->sin6_addr, ntohs(in6->sin6_port), allow, nets, why, whylen);
    }
    say(why, whylen, "outbound guard: only IPv4 and IPv6 connections are allowed");
    return -EACCES;
}

int nova__http_guard_check_sockaddr(const struct sockaddr *sa, socklen_t len,
                                    const struct nova__http_guard_allow *allow, char *why,
                                    size_t whylen)
{
    return nova__http_guard_check_sockaddr_nets(sa, len, allow, NULL, why, whylen);
}

int nova__http_guard_check_ip_nets(const char *ip, unsigned port,
                                   const struct nova__http_guard_allow *allow,
                                   const struct nova__http_guard_nets *nets, char *why,
                                   size_t whylen)
{
    struct in6_addr a6;
    struct in_addr a4;

    if (ip != NULL && inet_pton(AF_INET, ip, &a4) == 1)
        return judge(AF_INET, &a4, port, allow, nets, why, whylen);
    if (ip != NULL && inet_pton(AF_INET6, ip, &a6) == 1)
        return judge(AF_INET6, &a6, port, allow, nets, why, whylen);
    say(why, whylen, "outbound guard: '%s' is not a numeric address", ip != NULL ? ip : "");
    return -EACCES;
}

int nova__http_guard_check_ip(const char *ip, unsigned port,
                              const struct nova__http_guard_allow *allow, char *why, size_t whylen)
{
    return nova__http_guard_check_ip_nets(ip, port, allow, NULL, why, whylen);
}

/* Judges a URL host written as an address. Returns 1 when host is not an
 * address (a name, to be judged when it resolves), else 0 or -EACCES.
 * inet_aton accepts the legacy forms (2130706433, 0x7f.1, 017700000001)
 * that resolvers also accept, so they are caught here too. */
static int judge_literal(const char *host, unsigned port,
                         const struct nova__http_guard_allow *allow,
                         const struct nova__http_guard_nets *nets, char *why, size_t whylen)
{
    char buf[256];
    struct in6_addr a6;
    struct in_addr a4;
    size_t n = strlen(host);

    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        if (n - 2 >= sizeof buf)
            return -EACCES;
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        char *zone = strchr(buf, '%');
        if (zone != NULL)
            *zone = '\0';
        if (inet_pton(AF_INET6, buf, &a6) != 1) {
            say(why, whylen, "malformed IPv6 address in URL: %s", host);
            return -EINVAL;
        }
        return judge(AF_INET6, &a6, port, allow, nets, why, whylen);
    }
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return judge(AF_INET6, &a6, port, allow, nets, why, whylen);
    if (inet_aton(host, &a4) != 0)
        return judge(AF_INET, &a4, port, allow, nets, why, whylen);
    return 1;
}

/* Parses url (any scheme parses, so a refused one is reported as refused)
 * and returns its scheme in *scheme. Returns 0, or
 * -EINVAL/-ENOMEM with the reason in why; on 0 the caller frees *u and
 * *scheme (curl_url_cleanup, curl_free). */
static int open_url(const char *url, CURLU **u, char **scheme, char *why, size_t whylen)
{
    *u = NULL;
    *scheme = NULL;
    if (url == NULL || *url == '\0') {
        say(why, whylen, "empty URL");
        return -EINVAL;
    }
    *u = curl_url();
    if (*u == NULL)
        return -ENOMEM;
    CURLUcode uc = curl_url_set(*u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK || curl_url_get(*u, CURLUPART_SCHEME, scheme, 0) != CURLUE_OK) {
        say(why, whylen, "malformed URL: %s",
            uc != CURLUE_OK ? curl_url_strerror(uc) : "no scheme");
        curl_url_cleanup(*u);
        *u = NULL;
        return -EINVAL;
    }
    return 0;
}

int nova__http_guard_check_url_nets(const char *url, const struct nova__http_guard_allow *allow,
                                    const struct nova__http_guard_nets *nets, char *why,
                                    size_t whylen)
{
    CURLU *u;
    char *scheme, *user = NULL, *password = NULL, *host = NULL, *port = NULL;
    int rc = open_url(url, &u, &scheme, why, whylen);
    if (rc != 0)
        return rc;
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        say(why, whylen, "outbound guard: scheme '%s' is not allowed (only http and https)",
            scheme);
        rc = -EACCES;
        goto out;
    }
    /* user:password@ lets "https://trusted.example@10.0.0.1/" read as a
     * trusted name to a human; webhook URLs never need it. */
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        say(why, whylen, "outbound guard: URLs with user information (user@host) are not allowed");
        rc = -EACCES;
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || *host == '\0') {
        say(why, whylen, "malformed URL: no host");
        rc = -EINVAL;
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    rc = judge_literal(host, port != NULL ? (unsigned)strtoul(port, NULL, 10) : 0, allow, nets, why,
                       whylen);
    if (rc == 1)
        rc = 0;
out:
    curl_free(scheme);
    curl_free(user);
    curl_free(password);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

int nova__http_guard_check_url(const char *url, const struct nova__http_guard_allow *allow,
                               char *why, size_t whylen)
{
    return nova__http_guard_check_url_nets(url, allow, NULL, why, whylen);
}

int nova__http_guard_check_https(const char *url, char *why, size_t whylen)
{
    CURLU *u;
    char *scheme;
    int rc = open_url(url, &u, &scheme, why, whylen);
    if (rc != 0)
        return rc;
    if (strcasecmp(scheme, "https") != 0) {
        say(why, whylen, "scheme '%s' is not allowed (https only)", scheme);
        rc = -EACCES;
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}
