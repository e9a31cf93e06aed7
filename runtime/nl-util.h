/* SPDX-License-Identifier: MIT */
#pragma once

/* libnl for the runtime's two users (net.c: lo; veth.c: a sandbox's
 * uplink): cleanup helpers for its objects, and its error codes, which
 * are not errnos, as -errno. Internal to runtime/. */

#include <errno.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/route.h>

static inline void nl_socket_freep(struct nl_sock **s) {
        if (*s)
                nl_socket_free(*s);
}
static inline void rtnl_link_putp(struct rtnl_link **l) {
        if (*l)
                rtnl_link_put(*l);
}
static inline void rtnl_addr_putp(struct rtnl_addr **a) {
        if (*a)
                rtnl_addr_put(*a);
}
static inline void rtnl_route_putp(struct rtnl_route **r) {
        if (*r)
                rtnl_route_put(*r);
}
static inline void rtnl_qdisc_putp(struct rtnl_qdisc **q) {
        if (*q)
                rtnl_qdisc_put(*q);
}
static inline void nl_addr_putp(struct nl_addr **a) {
        if (*a)
                nl_addr_put(*a);
}
static inline void nl_cache_freep(struct nl_cache **c) {
        if (*c)
                nl_cache_free(*c);
}

/* libnl's own error codes are not errnos. */
static inline int nl_to_errno(int nlerr) {
        switch (-nlerr) {
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_PERM:
                return -EPERM;
        case NLE_EXIST:
                return -EEXIST;
        case NLE_OBJ_NOTFOUND:
        case NLE_NODEV:
                return -ENODEV;
        case NLE_INVAL:
        case NLE_MSGTYPE_NOSUPPORT:
                return -EINVAL;
        case NLE_BUSY:
                return -EBUSY;
        case NLE_RANGE:
                return -ERANGE;
        case NLE_NOADDR:
                return -EADDRNOTAVAIL;
        case NLE_OPNOTSUPP:
                return -EOPNOTSUPP;
        default:
                return -EIO;
        }
}
