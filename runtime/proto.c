/* SPDX-License-Identifier: MIT */
#include <sys/socket.h>

#include "proto.h"

int sp_msg_send(int sock, uint32_t type, uint64_t id, int32_t err, uint32_t flags,
                const void *payload, size_t len, const int *fds, size_t nfds) {
        sp_msg_hdr hdr = {.type = type, .len = (uint32_t) len, .id = id, .err = err, .flags = flags};
        struct iovec iov[2] = {
                {.iov_base = &hdr, .iov_len = sizeof(hdr)},
                {.iov_base = (void *) payload, .iov_len = len},
        };
        union {
                char buf[CMSG_SPACE(sizeof(int) * SP_MSG_MAX_FDS)];
                struct cmsghdr align;
        } control = {};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1};

        if (nfds > SP_MSG_MAX_FDS || len > UINT32_MAX)
                return -EINVAL;
        if (nfds > 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
        }
        for (;;) {
                ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
                if (n >= 0)
                        return n == (ssize_t) (sizeof(hdr) + len) ? 0 : -EMSGSIZE;
                if (errno != EINTR)
                        return -errno;
        }
}

ssize_t sp_msg_recv(int sock, void *buf, size_t size, int flags, int ret_fds[SP_MSG_MAX_FDS],
                    size_t *ret_nfds) {
        union {
                char buf[CMSG_SPACE(sizeof(int) * SP_MSG_MAX_FDS)];
                struct cmsghdr align;
        } control;
        struct iovec iov = {.iov_base = buf, .iov_len = size};
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        size_t nfds = 0;
        ssize_t n;

        for (size_t i = 0; i < SP_MSG_MAX_FDS; i++)
                ret_fds[i] = -1;
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *in = (int *) CMSG_DATA(c);
                for (size_t i = 0; i < k; i++) {
                        if (nfds < SP_MSG_MAX_FDS)
                                ret_fds[nfds++] = in[i];
                        else
                                close(in[i]);
                }
        }
        if (ret_nfds)
                *ret_nfds = nfds;

        if (n == 0)
                return 0;
        const sp_msg_hdr *hdr = buf;
        if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t) n < sizeof(sp_msg_hdr) ||
            hdr->len != (size_t) n - sizeof(sp_msg_hdr)) {
                for (size_t i = 0; i < nfds; i++)
                        ret_fds[i] = safe_close(ret_fds[i]);
                return -EBADMSG;
        }
        return n;
}
