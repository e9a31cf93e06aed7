/* SPDX-License-Identifier: MIT */
/* The sandboxes' resolver: UDP and TCP on one port, allowlist, upstream. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "dns.h"
#include "log.h"
#include "macro.h"
#include "resolver.h"
#include "time-util.h"

#define MAX_PENDING 512          /* queries to the upstream in flight, in all */
#define MAX_PENDING_PER_LINK 16
#define MAX_TCP 64
#define UPSTREAM_TIMEOUT_USEC (2 * USEC_PER_SEC)
#define TCP_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define MSG_MAX 1232             /* what we accept and send over UDP (the EDNS default) */

typedef struct pending pending;
typedef struct tcp_conn tcp_conn;

struct pending {
        resolver *r;
        pending *prev, *next;
        void *link;
        dns_query q;
        struct sockaddr_in client; /* UDP: where to answer */
        tcp_conn *tcp;             /* TCP: which connection to answer on */
        uint16_t upstream_id;
        int fd;
        sd_event_source *io, *timer;
};

struct tcp_conn {
        resolver *r;
        tcp_conn *prev, *next;
        int fd;
        uint8_t buf[2 + MSG_MAX];
        size_t len;
        struct sockaddr_in peer;
        pending *query;
        sd_event_source *io, *timer;
};

struct resolver {
        sd_event *event;
        const resolver_ops *ops;
        void *userdata;
        struct sockaddr_in upstream;
        int udp_fd, tcp_fd;
        sd_event_source *udp_io, *tcp_io;
        pending *pending;
        unsigned n_pending;
        tcp_conn *tcp;
        unsigned n_tcp;
        resolver_stats stats;
};

static void list_unlink_pending(resolver *r, pending *p) {
        if (p->prev)
                p->prev->next = p->next;
        else
                r->pending = p->next;
        if (p->next)
                p->next->prev = p->prev;
        r->n_pending--;
}

static void pending_free(pending *p) {
        if (!p)
                return;
        list_unlink_pending(p->r, p);
        if (p->tcp)
                p->tcp->query = NULL;
        sd_event_source_disable_unref(p->io);
        sd_event_source_disable_unref(p->timer);
        safe_close(p->fd);
        free(p);
}

static void tcp_free(tcp_conn *c) {
        resolver *r = c->r;

        if (c->query) {
                c->query->tcp = NULL;
                pending_free(c->query);
        }
        if (c->prev)
                c->prev->next = c->next;
        else
                r->tcp = c->next;
        if (c->next)
                c->next->prev = c->prev;
        r->n_tcp--;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        safe_close(c->fd);
        free(c);
}

/* Send the answer the way the question came. */
static void send_reply(resolver *r, const struct sockaddr_in *client, tcp_conn *tcp, const dns_query *q, int rcode,
                       const uint32_t *addrs, const uint32_t *ttls, size_t n) {
        uint8_t out[2 + 512];
        int len = dns_build_reply(q, rcode, addrs, ttls, n, out + 2, sizeof(out) - 2);

        switch (rcode) {
        case DNS_RCODE_NOERROR: r->stats.answered++; break;
        case DNS_RCODE_NXDOMAIN: r->stats.nxdomain++; break;
        case DNS_RCODE_REFUSED: r->stats.refused++; break;
        default: r->stats.servfail++; break;
        }
        if (len < 0)
                return;
        if (tcp) {
                out[0] = (uint8_t) (len >> 8);
                out[1] = (uint8_t) len;
                /* a small answer on a fresh socket: it fits the send buffer */
                (void) send(tcp->fd, out, (size_t) len + 2, MSG_NOSIGNAL | MSG_DONTWAIT);
                tcp_free(tcp);
                return;
        }
        (void) sendto(r->udp_fd, out + 2, (size_t) len, MSG_DONTWAIT, (const struct sockaddr *) client,
                      sizeof(*client));
}

static void pending_answer(pending *p, int rcode, const uint32_t *addrs, const uint32_t *ttls, size_t n) {
        tcp_conn *c = TAKE_PTR(p->tcp);

        if (c)
                c->query = NULL; /* so that closing it does not free p */
        send_reply(p->r, &p->client, c, &p->q, rcode, addrs, ttls, n);
        pending_free(p);
}

static int on_upstream_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        pending *p = userdata;

        p->r->stats.upstream_timeouts++;
        pending_answer(p, DNS_RCODE_SERVFAIL, NULL, NULL, 0);
        return 0;
}

static int on_upstream(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        pending *p = userdata;
        resolver *r = p->r;
        uint8_t buf[4096];
        uint32_t addrs[DNS_MAX_ANSWERS], ttls[DNS_MAX_ANSWERS];
        size_t n = 0;
        int rcode;
        ssize_t k;

        /* connected to the upstream: the kernel drops datagrams from anyone else */
        k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (k < 0 || dns_parse_answer(buf, (size_t) k, p->upstream_id, p->q.name, p->q.qtype, &rcode, addrs, ttls,
                                      DNS_MAX_ANSWERS, &n) < 0)
                return 0; /* not the answer: keep waiting until the timeout */
        if (rcode != DNS_RCODE_NOERROR) {
                pending_answer(p, rcode == DNS_RCODE_NXDOMAIN ? DNS_RCODE_NXDOMAIN : DNS_RCODE_SERVFAIL, NULL, NULL,
                               0);
                return 0;
        }
        n = r->ops->answered(r->userdata, p->link, p->q.name, addrs, ttls, n);
        pending_answer(p, DNS_RCODE_NOERROR, addrs, ttls, n);
        return 0;
}

static int forward(resolver *r, void *link, const dns_query *q, const struct sockaddr_in *client, tcp_conn *tcp) {
        uint8_t buf[512];
        unsigned per_link = 0;
        pending *p;
        int len, fd;

        for (pending *i = r->pending; i; i = i->next)
                per_link += i->link == link;
        if (r->n_pending >= MAX_PENDING || per_link >= MAX_PENDING_PER_LINK)
                return -EBUSY;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->r = r;
        p->link = link;
        p->q = *q;
        p->fd = -EBADF;
        if (client)
                p->client = *client;
        p->next = r->pending;
        if (r->pending)
                r->pending->prev = p;
        r->pending = p;
        r->n_pending++;
        /* a fresh socket (a random source port) and a fresh id per query:
         * the sandbox's own id and port never reach the upstream */
        if (getrandom(&p->upstream_id, sizeof(p->upstream_id), 0) != sizeof(p->upstream_id) ||
            (len = dns_build_query(q->name, q->qtype, p->upstream_id, buf, sizeof(buf))) < 0) {
                pending_free(p);
                return -EIO;
        }
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        p->fd = fd;
        if (fd < 0 || connect(fd, (const struct sockaddr *) &r->upstream, sizeof(r->upstream)) < 0 ||
            send(fd, buf, (size_t) len, 0) != len ||
            sd_event_add_io(r->event, &p->io, fd, EPOLLIN, on_upstream, p) < 0 ||
            sd_event_add_time_relative(r->event, &p->timer, CLOCK_MONOTONIC, UPSTREAM_TIMEOUT_USEC, 0,
                                       on_upstream_timeout, p) < 0) {
                pending_free(p);
                return -EIO;
        }
        p->tcp = tcp;
        if (tcp)
                tcp->query = p;
        return 0;
}

static const char *qtype_name(uint16_t t) {
        switch (t) {
        case 16: return "TXT";
        case 10: return "NULL";
        case 255: return "ANY";
        case 15: return "MX";
        case 33: return "SRV";
        case 12: return "PTR";
        default: return "type not A/AAAA";
        }
}

/* One question from a sandbox. */
static void handle_query(resolver *r, const uint8_t *msg, size_t len, const struct sockaddr_in *from, tcp_conn *tcp) {
        const netpolicy *policy;
        void *link = NULL;
        dns_query q;
        char name[256];
        int e;

        r->stats.queries++;
        policy = r->ops->lookup(r->userdata, from->sin_addr.s_addr, &link);
        if (!policy)
                goto drop; /* not one of ours (nft lets only our veths here) */
        e = dns_parse_query(msg, len, &q);
        if (e == -EPROTO)
                goto drop;
        if (e < 0)
                return send_reply(r, from, tcp, &q, DNS_RCODE_FORMERR, NULL, NULL, 0);
        snprintf(name, sizeof(name), "%s", q.name);
        if (q.qclass != DNS_CLASS_IN || (q.qtype != DNS_TYPE_A && q.qtype != DNS_TYPE_AAAA)) {
                r->ops->denied(r->userdata, link, q.name, qtype_name(q.qtype));
                return send_reply(r, from, tcp, &q, DNS_RCODE_REFUSED, NULL, NULL, 0);
        }
        /* Data smuggled out in the name itself, below an allowed suffix,
         * to its authoritative server: long labels are its signature. */
        if (q.longest_label > RESOLVER_MAX_LABEL || strlen(q.name) > RESOLVER_MAX_NAME) {
                r->ops->denied(r->userdata, link, q.name, "long label or name");
                return send_reply(r, from, tcp, &q, DNS_RCODE_REFUSED, NULL, NULL, 0);
        }
        if (netpolicy_normalize_name(name) < 0 || !netpolicy_allows_name(policy, name)) {
                r->ops->denied(r->userdata, link, q.name, "not allowed");
                return send_reply(r, from, tcp, &q, DNS_RCODE_NXDOMAIN, NULL, NULL, 0);
        }
        if (q.qtype == DNS_TYPE_AAAA)
                return send_reply(r, from, tcp, &q, DNS_RCODE_NOERROR, NULL, NULL, 0);
        if (forward(r, link, &q, tcp ? NULL : from, tcp) < 0)
                return send_reply(r, from, tcp, &q, DNS_RCODE_SERVFAIL, NULL, NULL, 0);
        return;
drop:
        if (tcp)
                tcp_free(tcp);
}

static int on_udp(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        resolver *r = userdata;

        /* a bounded batch per wakeup: the loop serves others too */
        for (int i = 0; i < 64; i++) {
                uint8_t buf[MSG_MAX];
                struct sockaddr_in from;
                socklen_t fl = sizeof(from);
                ssize_t k = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *) &from, &fl);
                if (k < 0)
                        break;
                if (fl == sizeof(from) && from.sin_family == AF_INET)
                        handle_query(r, buf, (size_t) k, &from, NULL);
        }
        return 0;
}

static int on_tcp_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        tcp_free(userdata);
        return 0;
}

static int on_tcp_data(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        tcp_conn *c = userdata;
        size_t want;
        ssize_t k;

        if (c->query)
                return 0; /* answered when the upstream is */
        k = recv(fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (k <= 0) {
                tcp_free(c);
                return 0;
        }
        c->len += (size_t) k;
        if (c->len < 2)
                return 0;
        want = (size_t) c->buf[0] << 8 | c->buf[1];
        if (want == 0 || want > MSG_MAX) {
                tcp_free(c);
                return 0;
        }
        if (c->len < 2 + want)
                return 0;
        /* one question per connection: stop reading, answer, close */
        (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        handle_query(c->r, c->buf + 2, want, &c->peer, c);
        return 0;
}

static int on_tcp_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        resolver *r = userdata;
        struct sockaddr_in peer;
        socklen_t pl = sizeof(peer);
        tcp_conn *c;
        int cfd;

        cfd = accept4(fd, (struct sockaddr *) &peer, &pl, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        if (r->n_tcp >= MAX_TCP || pl != sizeof(peer) || !(c = calloc(1, sizeof(*c)))) {
                safe_close(cfd);
                return 0;
        }
        c->r = r;
        c->fd = cfd;
        c->peer = peer;
        c->next = r->tcp;
        if (r->tcp)
                r->tcp->prev = c;
        r->tcp = c;
        r->n_tcp++;
        if (sd_event_add_io(r->event, &c->io, cfd, EPOLLIN, on_tcp_data, c) < 0 ||
            sd_event_add_time_relative(r->event, &c->timer, CLOCK_MONOTONIC, TCP_TIMEOUT_USEC, 0, on_tcp_timeout, c) <
                    0)
                tcp_free(c);
        return 0;
}

static int bind_socket(int type, uint16_t port) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {htonl(INADDR_ANY)}};
        int fd _cleanup_(closep) = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;

        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        /* Every address, because nft redirects to the address of the veth a
         * query came in on; the input hook lets only redirected DNS from
         * sandbox veths reach this port. */
        if (bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0)
                return -errno;
        if (type == SOCK_STREAM && listen(fd, 64) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int resolver_new(sd_event *e, uint16_t port, const struct sockaddr_in *upstream, const resolver_ops *ops,
                 void *userdata, resolver **ret) {
        resolver *r = calloc(1, sizeof(*r));
        int k;

        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(e);
        r->ops = ops;
        r->userdata = userdata;
        r->upstream = *upstream;
        r->udp_fd = bind_socket(SOCK_DGRAM, port);
        r->tcp_fd = r->udp_fd < 0 ? -EBADF : bind_socket(SOCK_STREAM, port);
        k = r->udp_fd < 0 ? r->udp_fd : r->tcp_fd;
        if (k >= 0)
                k = sd_event_add_io(e, &r->udp_io, r->udp_fd, EPOLLIN, on_udp, r);
        if (k >= 0)
                k = sd_event_add_io(e, &r->tcp_io, r->tcp_fd, EPOLLIN, on_tcp_accept, r);
        if (k < 0) {
                resolver_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

void resolver_free(resolver *r) {
        if (!r)
                return;
        while (r->tcp)
                tcp_free(r->tcp);
        while (r->pending)
                pending_free(r->pending);
        sd_event_source_disable_unref(r->udp_io);
        sd_event_source_disable_unref(r->tcp_io);
        safe_close(r->udp_fd);
        safe_close(r->tcp_fd);
        sd_event_unref(r->event);
        free(r);
}

void resolver_forget(resolver *r, void *link) {
        pending *p = r ? r->pending : NULL;

        while (p) {
                pending *next = p->next;
                if (p->link == link) {
                        if (p->tcp) {
                                tcp_conn *c = p->tcp;
                                p->tcp = NULL;
                                c->query = NULL;
                                tcp_free(c);
                        }
                        pending_free(p);
                }
                p = next;
        }
}

void resolver_get_stats(const resolver *r, resolver_stats *ret) {
        *ret = r ? r->stats : (resolver_stats) {};
}
