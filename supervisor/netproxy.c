/* SPDX-License-Identifier: MIT */
/* Transparent HTTP/HTTPS proxy: check SNI/Host, then splice. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "macro.h"
#include "netproxy.h"
#include "sniff.h"
#include "time-util.h"

#define BUF 16384                /* the first bytes, read before deciding */
#define PIPE_CAP 65536           /* a pipe's default capacity: 16 pages */
#define MAX_CONNS 2048           /* 5 fds each */
#define SNIFF_TIMEOUT_USEC (5 * USEC_PER_SEC)   /* the first bytes must come quickly */
#define IDLE_TIMEOUT_USEC (300 * USEC_PER_SEC)

typedef struct conn conn;
struct conn {
        netproxy *p;
        conn *prev, *next;
        void *link;
        int fd[2];                /* 0: the sandbox's side, 1: upstream */
        sd_event_source *io[2], *timer;
        /* Bytes read from fd[i] wait for fd[1-i] in buf (the first bytes
         * of the sandbox's side, read to decide) or in pipe[i] (everything
         * after: splice(2) moves pages, the bytes are never copied here). */
        unsigned char buf[BUF];
        size_t len;
        int pipe[2][2];
        size_t in_pipe[2];
        /* A pipe holds 16 buffers, of less than a page each when a socket
         * hands over small segments: it can be full below PIPE_CAP. Then
         * its source is not watched until something has left it, or a
         * readable socket would spin the loop. */
        bool pipe_full[2];
        bool eof[2], shut[2];
        bool connecting, spliced;
        struct sockaddr_in dst;
};

struct netproxy {
        sd_event *event;
        const netproxy_ops *ops;
        void *userdata;
        uint32_t max_per_link;
        int fd;
        sd_event_source *io;
        conn *conns;
        unsigned n_conns;
        netproxy_stats stats;
};

static void conn_free(conn *c) {
        netproxy *p = c->p;

        if (c->prev)
                c->prev->next = c->next;
        else
                p->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        p->n_conns--;
        for (int i = 0; i < 2; i++) {
                sd_event_source_disable_unref(c->io[i]);
                safe_close(c->fd[i]);
                safe_close(c->pipe[i][0]);
                safe_close(c->pipe[i][1]);
        }
        sd_event_source_disable_unref(c->timer);
        free(c);
}

static size_t pending(const conn *c, int from) {
        return c->in_pipe[from] + (from == 0 ? c->len : 0);
}

/* Which events each side waits for, from what waits in both directions. */
static void conn_update(conn *c) {
        for (int i = 0; i < 2; i++) {
                uint32_t ev = 0;
                if (!c->io[i])
                        continue;
                if (!c->eof[i] &&
                    (c->spliced ? c->in_pipe[i] < PIPE_CAP && !c->pipe_full[i] : (i == 0 && c->len < BUF)))
                        ev |= EPOLLIN;
                if ((i == 1 && c->connecting) || (c->spliced && pending(c, 1 - i) > 0))
                        ev |= EPOLLOUT;
                (void) sd_event_source_set_io_events(c->io[i], ev);
                (void) sd_event_source_set_enabled(c->io[i], ev ? SD_EVENT_ON : SD_EVENT_OFF);
        }
}

static void conn_touch(conn *c, usec_t timeout) {
        (void) sd_event_source_set_time_relative(c->timer, timeout);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int on_conn_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        conn_free(userdata);
        return 0;
}

static void conn_refuse(conn *c, const char *name, const char *reason) {
        char d[INET_ADDRSTRLEN];

        c->p->stats.refused++;
        log_debug("proxy: refused %s:%u (%s): %s", inet_ntop(AF_INET, &c->dst.sin_addr, d, sizeof(d)),
                  ntohs(c->dst.sin_port), name ? name : "no name", reason);
        conn_free(c);
}

/* Enough of the first bytes: decide, then connect upstream. */
static int conn_decide(conn *c) {
        char name[256];
        const char *reason = "refused";
        int r, fd;

        r = sniff_name(c->buf, c->len, name, sizeof(name));
        if (r == 0 && c->len < BUF && !c->eof[0])
                return 0; /* more to come */
        if (c->p->ops->check(c->p->userdata, c->link, c->dst.sin_addr.s_addr, ntohs(c->dst.sin_port),
                             r > 0 ? name : NULL, &reason) < 0) {
                conn_refuse(c, r > 0 ? name : NULL, reason);
                return -EPERM;
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || (connect(fd, (struct sockaddr *) &c->dst, sizeof(c->dst)) < 0 && errno != EINPROGRESS)) {
                safe_close(fd);
                c->p->stats.failed++;
                conn_free(c);
                return -EIO;
        }
        c->fd[1] = fd;
        c->connecting = true;
        if (sd_event_add_io(c->p->event, &c->io[1], fd, EPOLLOUT, on_conn_io, c) < 0) {
                conn_free(c);
                return -ENOMEM;
        }
        conn_touch(c, IDLE_TIMEOUT_USEC);
        return 0;
}

/* Before the decision: the first bytes of the sandbox's side, into buf. */
static bool sniff_read(conn *c) {
        ssize_t k = recv(c->fd[0], c->buf + c->len, BUF - c->len, MSG_DONTWAIT);

        if (k < 0)
                return errno == EAGAIN || errno == EINTR;
        if (k == 0)
                c->eof[0] = true;
        c->len += (size_t) k;
        return true;
}

/* Move what can move from fd[from] to fd[1-from]. false: the connection
 * is broken. */
static bool pump(conn *c, int from) {
        int to = 1 - from;
        ssize_t k;

        if (from == 0 && c->len > 0) { /* the bytes read to decide go first */
                k = send(c->fd[1], c->buf, c->len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k < 0)
                        return errno == EAGAIN || errno == EINTR;
                memmove(c->buf, c->buf + k, c->len - (size_t) k);
                c->len -= (size_t) k;
                if (c->len > 0)
                        return true;
        }
        if (!c->eof[from] && c->in_pipe[from] < PIPE_CAP) {
                k = splice(c->fd[from], NULL, c->pipe[from][1], NULL, PIPE_CAP - c->in_pipe[from],
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (k == 0)
                        c->eof[from] = true;
                else if (k > 0)
                        c->in_pipe[from] += (size_t) k;
                else if (errno == EAGAIN && c->in_pipe[from] > 0)
                        c->pipe_full[from] = true; /* or the socket is empty: either way, wait */
                else if (errno != EAGAIN && errno != EINTR)
                        return false;
        }
        if (c->in_pipe[from] > 0) {
                k = splice(c->pipe[from][0], NULL, c->fd[to], NULL, c->in_pipe[from], SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (k > 0) {
                        c->in_pipe[from] -= (size_t) k;
                        c->pipe_full[from] = false;
                } else if (k < 0 && errno != EAGAIN && errno != EINTR)
                        return false;
        }
        return true;
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        conn *c = userdata;
        int i = fd == c->fd[0] ? 0 : 1;

        if (i == 1 && c->connecting) {
                int err = 0;
                socklen_t l = sizeof(err);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err != 0 ||
                    pipe2(c->pipe[0], O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(c->pipe[1], O_CLOEXEC | O_NONBLOCK) < 0) {
                        c->p->stats.failed++;
                        conn_free(c);
                        return 0;
                }
                c->connecting = false;
                c->spliced = true;
                c->p->stats.spliced++;
        }
        if (!c->spliced) {
                if (c->connecting)
                        return 0;
                if (!sniff_read(c)) {
                        conn_free(c);
                        return 0;
                }
                if (conn_decide(c) >= 0)
                        conn_update(c);
                return 0;
        }
        if (!pump(c, 0) || !pump(c, 1)) {
                conn_free(c);
                return 0;
        }
        /* a side that ended, once everything it sent is through: end the
         * other side's writing too */
        for (int k = 0; k < 2; k++)
                if (c->eof[k] && pending(c, k) == 0 && !c->shut[1 - k]) {
                        (void) shutdown(c->fd[1 - k], SHUT_WR);
                        c->shut[1 - k] = true;
                }
        if ((c->eof[0] && c->eof[1] && pending(c, 0) == 0 && pending(c, 1) == 0) || (revents & EPOLLERR)) {
                conn_free(c);
                return 0;
        }
        conn_touch(c, IDLE_TIMEOUT_USEC);
        conn_update(c);
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        netproxy *p = userdata;
        struct sockaddr_in peer, dst;
        socklen_t pl = sizeof(peer), dl = sizeof(dst);
        unsigned per_link = 0;
        void *link;
        conn *c;
        int cfd;

        cfd = accept4(fd, (struct sockaddr *) &peer, &pl, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        p->stats.accepted++;
        /* where the sandbox meant to go, before nft redirected it here */
        if (pl != sizeof(peer) || getsockopt(cfd, SOL_IP, SO_ORIGINAL_DST, &dst, &dl) < 0 ||
            !(link = p->ops->lookup(p->userdata, peer.sin_addr.s_addr))) {
                safe_close(cfd);
                return 0;
        }
        for (conn *i = p->conns; i; i = i->next)
                per_link += i->link == link;
        if (p->n_conns >= MAX_CONNS || (p->max_per_link && per_link >= p->max_per_link) ||
            !(c = calloc(1, sizeof(*c)))) {
                p->stats.over_cap++;
                safe_close(cfd);
                return 0;
        }
        c->p = p;
        c->link = link;
        c->fd[0] = cfd;
        c->fd[1] = -EBADF;
        c->pipe[0][0] = c->pipe[0][1] = c->pipe[1][0] = c->pipe[1][1] = -EBADF;
        c->dst = dst;
        c->next = p->conns;
        if (p->conns)
                p->conns->prev = c;
        p->conns = c;
        p->n_conns++;
        if (sd_event_add_io(p->event, &c->io[0], cfd, EPOLLIN, on_conn_io, c) < 0 ||
            sd_event_add_time_relative(p->event, &c->timer, CLOCK_MONOTONIC, SNIFF_TIMEOUT_USEC, 0, on_conn_timer, c) <
                    0)
                conn_free(c);
        return 0;
}

int netproxy_new(sd_event *e, uint16_t port, uint32_t max_per_link, const netproxy_ops *ops, void *userdata,
                 netproxy **ret) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {htonl(INADDR_ANY)}};
        netproxy *p = calloc(1, sizeof(*p));
        int one = 1, r = 0;

        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->ops = ops;
        p->userdata = userdata;
        p->max_per_link = max_per_link;
        p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (p->fd < 0 || setsockopt(p->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(p->fd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(p->fd, 256) < 0)
                r = -errno;
        if (r >= 0)
                r = sd_event_add_io(e, &p->io, p->fd, EPOLLIN, on_accept, p);
        if (r < 0) {
                netproxy_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

void netproxy_free(netproxy *p) {
        if (!p)
                return;
        while (p->conns)
                conn_free(p->conns);
        sd_event_source_disable_unref(p->io);
        safe_close(p->fd);
        sd_event_unref(p->event);
        free(p);
}

void netproxy_forget(netproxy *p, void *link) {
        conn *c = p ? p->conns : NULL;

        while (c) {
                conn *next = c->next;
                if (c->link == link)
                        conn_free(c);
                c = next;
        }
}

void netproxy_get_stats(const netproxy *p, netproxy_stats *ret) {
        *ret = p ? p->stats : (netproxy_stats) {};
}
