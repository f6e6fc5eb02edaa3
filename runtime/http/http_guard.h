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
 * The allow list is a test hook only (never read from configuration): an
 * exact numeric address and port that the guard lets through.
 */
#ifndef NOVA_RUNTIME_HTTP_GUARD_H
#define NOVA_RUNTIME_HTTP_GUARD_H

#include <stddef.h>
#include <sys/socket.h>

/* One exception; arrays end with an entry whose addr is NULL. Borrowed. */
struct nova__http_guard_allow {
    const char *addr; /* numeric, as inet_ntop writes it */
    unsigned port;
};

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

#endif
