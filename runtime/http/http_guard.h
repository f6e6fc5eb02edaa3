/*
 * http_guard - the outbound (SSRF) guard for user-supplied URLs.
 *
 * Two layers, both used by http_client for NOVA_HTTP_GUARD requests:
 *   1. nova__http_guard_check_url() before the request starts: scheme
 *      http/https only, no user:password@, and a host written as an IP
 *      literal is checked at once (no connection is ever attempted).
 *   2. nova__http_guard_check_sockaddr()/_check_ip() on the address curl
 *      is about to connect to (open-socket callback) and on the address of
 *      the connection a request is about to be sent on (pre-request
 *      callback: covers reused connections and redirect hops). This is the
 *      real protection: names resolving to private addresses and DNS
 *      rebinding are caught here.
 *
 * Refused: 0.0.0.0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
 * 192.0.0/24, 192.168/16, 198.18/15, 224/4 (multicast), 240/4 (reserved,
 * broadcast); ::, ::1, fc00::/7, fe80::/10, fec0::/10, ff00::/8, 100::/64,
 * 2001:db8::/32, the Teredo prefix 2001::/32, and the IPv4 addresses inside
 * ::ffff:0:0/96 (mapped), ::/96 (compatible), 64:ff9b::/96 (NAT64) and
 * 2002::/16 (6to4) by the IPv4 rules.
 *
 * Two ways through, both narrow:
 *   - the allow list, a test hook only (never read from configuration): an
 *     exact numeric address and port;
 *   - a request's own network list (nova_http_request.guard_allow, e.g. a
 *     plugin's `allow_networks`): IPv4 and IPv6 CIDR blocks parsed by
 *     nova__http_guard_nets_parse() and passed to the *_nets checks. It
 *     covers that one request only; an IPv4-mapped IPv6 address
 *     (::ffff:a.b.c.d) is matched by the IPv4 blocks.
 */
#ifndef NOVA_RUNTIME_HTTP_GUARD_H
#define NOVA_RUNTIME_HTTP_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* One exception; arrays end with an entry whose addr is NULL. Borrowed. */
struct nova__http_guard_allow {
    const char *addr; /* numeric, as inet_ntop writes it */
    unsigned port;
};

/* One CIDR block of a request's allowance. */
struct nova__http_guard_net {
    int family;       /* AF_INET or AF_INET6 */
    unsigned bits;    /* prefix length: 0..32 or 0..128 */
    uint8_t addr[16]; /* the network, bits past the prefix cleared */
};

/* A parsed allowance; one allocation, freed with nova__http_guard_nets_free(). */
struct nova__http_guard_nets {
    size_t n;
    struct nova__http_guard_net net[];
};

/* Parses a list of networks separated by commas and/or blanks:
 * "10.0.0.0/8, 192.0.2.7 2001:db8::/32". An address without /bits is one
 * host (/32 or /128); bits past the prefix are ignored ("127.0.0.1/8" is
 * 127.0.0.0/8). Addresses are numeric (inet_pton), never names. Returns 0
 * with *out NULL for an empty or blank list, 0 with *out set, -EINVAL with
 * the reason in why (naming the bad entry), or -ENOMEM. */
int nova__http_guard_nets_parse(const char *list, struct nova__http_guard_nets **out, char *why,
                                size_t whylen);
void nova__http_guard_nets_free(struct nova__http_guard_nets *nets);

/* True when addr (family AF_INET: 4 bytes, AF_INET6: 16 bytes, network
 * order) lies in one of nets (which may be NULL: nothing matches). */
bool nova__http_guard_nets_match(const struct nova__http_guard_nets *nets, int family,
                                 const void *addr);

/* Checks a URL before any connection. Returns 0, -EINVAL (malformed) or
 * -EACCES (refused); why (may be NULL) receives the reason. */
int nova__http_guard_check_url(const char *url, const struct nova__http_guard_allow *allow,
                               char *why, size_t whylen);

/* For NOVA_HTTP_HTTPS_ONLY: 0 when url parses and its scheme is https,
 * -EACCES for another scheme, -EINVAL when malformed. */
int nova__http_guard_check_https(const char *url, char *why, size_t whylen);

/* Checks the address a socket is about to connect to. Returns 0 or
 * -EACCES with the reason in why. Families other than IPv4/IPv6 are
 * refused. */
int nova__http_guard_check_sockaddr(const struct sockaddr *sa, socklen_t len,
                                    const struct nova__http_guard_allow *allow, char *why,
                                    size_t whylen);

/* Same for a numeric address string (IPv4 or IPv6) and port. A string
 * that is not a numeric address is refused. */
int nova__http_guard_check_ip(const char *ip, unsigned port,
                              const struct nova__http_guard_allow *allow, char *why, size_t whylen);

/* The same three checks, also letting through the addresses in nets
 * (NULL = none). The plain versions above are these with nets NULL. */
int nova__http_guard_check_url_nets(const char *url, const struct nova__http_guard_allow *allow,
                                    const struct nova__http_guard_nets *nets, char *why,
                                    size_t whylen);
int nova__http_guard_check_sockaddr_nets(const struct sockaddr *sa, socklen_t len,
                                         const struct nova__http_guard_allow *allow,
                                         const struct nova__http_guard_nets *nets, char *why,
                                         size_t whylen);
int nova__http_guard_check_ip_nets(const char *ip, unsigned port,
                                   const struct nova__http_guard_allow *allow,
                                   const struct nova__http_guard_nets *nets, char *why,
                                   size_t whylen);

#endif
