/* SPDX-License-Identifier: MIT */
/* The network helper process: veths and resolv.conf off the event loop. */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "netd.h"
#include "priority.h"
#include "time-util.h"

typedef struct netd_msg {
        uint64_t id;
        char host_name[16], peer_name[16];
        struct in_addr host_addr, peer_addr;
        uint32_t prefixlen;
        uint64_t rate;
} netd_msg;

typedef struct netd_reply {
        uint64_t id;
        int32_t error, ifindex;
        uint64_t work_usec; /* what the helper spent on it */
} netd_reply;

typedef struct netd_pending {
        uint64_t id;
        netd_done_fn cb;
        void *userdata;
} netd_pending;

struct netd {
        sd_event *event;
        pid_t pid;
        int fd;
        sd_event_source *io;
        uint64_t next_id;
        netd_pending *pending;
        unsigned n_pending, cap_pending;
};

/* ---- the helper's side ------------------------------------------------ */

static int write_resolv_conf(int root_fd, struct in_addr gateway) {
        struct open_how how = {.flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, .mode = 0644,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
        char text[96], a[INET_ADDRSTRLEN];
        int fd _cleanup_(closep) = -EBADF;
        int n;

        n = snprintf(text, sizeof(text), "nameserver %s\noptions attempts:2 timeout:2\n",
                     inet_ntop(AF_INET, &gateway, a, sizeof(a)));
        fd = (int) syscall(SYS_openat2, root_fd, "etc/resolv.conf", &how, sizeof(how));
        if (fd < 0)
                return -errno;
        if (fchmod(fd, 0644) < 0)
                return -errno;
        return write(fd, text, (size_t) n) == n ? 0 : negative_errno();
}

static int recv_request(int sock, netd_msg *m, int *ret_pidfd, int *ret_rootfd) {
        char cbuf[CMSG_SPACE(2 * sizeof(int))];
        struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *c;
        ssize_t k = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

        if (k <= 0)
                return k == 0 ? -EPIPE : -errno;
        c = CMSG_FIRSTHDR(&mh);
        if (k != sizeof(*m) || !c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(2 * sizeof(int)))
                return -EBADMSG;
        memcpy(ret_pidfd, CMSG_DATA(c), sizeof(int));
        memcpy(ret_rootfd, CMSG_DATA(c) + sizeof(int), sizeof(int));
        return 0;
}

_noreturn_ static void helper_main(int sock) {
        for (;;) {
                netd_msg m;
                netd_reply rep = {};
                int pidfd = -EBADF, rootfd = -EBADF, r;

                r = recv_request(sock, &m, &pidfd, &rootfd);
                if (r == -EPIPE)
                        _exit(0);
                if (r == -EINTR)
                        continue;
                if (r < 0) {
                        safe_close(pidfd);
                        safe_close(rootfd);
                        continue;
                }
                m.host_name[15] = m.peer_name[15] = '\0';
                sp_veth_spec spec = {.host_name = m.host_name, .peer_name = m.peer_name, .host_addr = m.host_addr,
                                     .peer_addr = m.peer_addr, .prefixlen = m.prefixlen, .rate_bytes_per_s = m.rate};
                int ifindex = 0;
                usec_t t0 = now_mono();
                r = sp_veth_setup(pidfd, &spec, &ifindex);
                if (r >= 0) {
                        r = write_resolv_conf(rootfd, m.host_addr);
                        if (r < 0)
                                (void) sp_veth_delete(m.host_name);
                }
                safe_close(pidfd);
                safe_close(rootfd);
                rep = (netd_reply) {.id = m.id, .error = r < 0 ? r : 0, .ifindex = ifindex,
                                    .work_usec = now_mono() - t0};
                if (send(sock, &rep, sizeof(rep), MSG_NOSIGNAL) < 0 && errno == EPIPE)
                        _exit(0);
        }
}

/* ---- the daemon's side ------------------------------------------------ */

static void netd_lost(netd *n);

static int on_reply(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        netd *n = userdata;
        netd_reply rep;
        ssize_t k = recv(fd, &rep, sizeof(rep), MSG_DONTWAIT);

        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (k != sizeof(rep)) {
                netd_lost(n);
                return 0;
        }
        for (unsigned i = 0; i < n->n_pending; i++)
                if (n->pending[i].id == rep.id) {
                        netd_pending p = n->pending[i];
                        n->pending[i] = n->pending[--n->n_pending];
                        p.cb(rep.error, rep.ifindex, rep.work_usec, p.userdata);
                        break;
                }
        return 0;
}

static int on_reply(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Fork the helper (again): its socket as fd 3, stdio, nothing else of the
 * daemon's. */
static int netd_spawn(netd *n) {
        int sp[2], r;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        pid_t parent = getpid(), pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(sp[0]);
                safe_close(sp[1]);
                return r;
        }
        if (pid == 0) {
                sigset_t none;
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(0);
                (void) prctl(PR_SET_NAME, "sandpool-netd");
                if (dup2(sp[1], 3) < 0)
                        _exit(1);
                (void) syscall(SYS_close_range, 4, ~0U, 0);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                helper_main(3);
        }
        safe_close(sp[1]);
        n->pid = pid;
        n->fd = sp[0];
        r = sd_event_add_io(n->event, &n->io, n->fd, EPOLLIN, on_reply, n);
        if (r >= 0)
                r = sd_event_source_set_priority(n->io, PRIO_WORK);
        return r;
}

/* The helper is gone: every request in flight fails, and a new one takes
 * over for the next. */
static void netd_lost(netd *n) {
        log_error("network helper (pid %d) is gone: its requests in flight fail; starting another", (int) n->pid);
        n->io = sd_event_source_disable_unref(n->io);
        n->fd = safe_close(n->fd);
        if (n->pid > 0)
                (void) waitpid(n->pid, NULL, 0);
        n->pid = 0;
        if (netd_spawn(n) < 0) {
                n->io = sd_event_source_disable_unref(n->io);
                n->fd = safe_close(n->fd);
                log_error("cannot start the network helper again: networked sessions cannot be made");
        }
        while (n->n_pending > 0) {
                netd_pending p = n->pending[--n->n_pending];
                p.cb(-EPIPE, 0, 0, p.userdata);
        }
}

int netd_new(sd_event *e, netd **ret) {
        netd *n = calloc(1, sizeof(*n));
        int r;

        if (!n)
                return -ENOMEM;
        n->event = sd_event_ref(e);
        n->fd = -EBADF;
        r = netd_spawn(n);
        if (r < 0) {
                netd_free(n);
                return r;
        }
        *ret = n;
        return 0;
}

void netd_free(netd *n) {
        if (!n)
                return;
        n->io = sd_event_source_disable_unref(n->io);
        n->fd = safe_close(n->fd); /* EOF: the helper exits */
        if (n->pid > 0)
                (void) waitpid(n->pid, NULL, 0);
        free(n->pending);
        sd_event_unref(n->event);
        free(n);
}

int netd_request(netd *n, const sp_veth_spec *spec, int pidfd, int root_fd, netd_done_fn cb, void *userdata,
                 uint64_t *ret_id) {
        netd_msg m = {.id = ++n->next_id, .host_addr = spec->host_addr, .peer_addr = spec->peer_addr,
                      .prefixlen = spec->prefixlen, .rate = spec->rate_bytes_per_s};
        char cbuf[CMSG_SPACE(2 * sizeof(int))] = {};
        struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        int fds[2] = { pidfd, root_fd };

        if (!n->io)
                return -EPIPE;
        if (strlen(spec->host_name) >= sizeof(m.host_name) || strlen(spec->peer_name) >= sizeof(m.peer_name))
                return -EINVAL;
        strcpy(m.host_name, spec->host_name);
        strcpy(m.peer_name, spec->peer_name);
        if (n->n_pending == n->cap_pending) {
                unsigned cap = n->cap_pending ? 2 * n->cap_pending : 16;
                netd_pending *p = realloc(n->pending, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                n->pending = p;
                n->cap_pending = cap;
        }
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(c), fds, sizeof(fds));
        /* a small datagram on a local socket: it does not block */
        if (sendmsg(n->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != sizeof(m))
                return negative_errno();
        n->pending[n->n_pending++] = (netd_pending) {.id = m.id, .cb = cb, .userdata = userdata};
        *ret_id = m.id;
        return 0;
}

void netd_cancel(netd *n, uint64_t id) {
        for (unsigned i = 0; n && i < n->n_pending; i++)
                if (n->pending[i].id == id) {
                        n->pending[i] = n->pending[--n->n_pending];
                        return;
                }
}
