/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/route.h>
#include <netlink/route/tc.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "nl-util.h"
#include "veth.h"

static int rtnl_connect(struct nl_sock **ret) {
        struct nl_sock *sk = nl_socket_alloc();
        int r;

        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(sk);
                return nl_to_errno(r);
        }
        *ret = sk;
        return 0;
}

/* A netlink socket belongs to the namespace it was created in, whatever
 * the thread does afterwards: enter the sandbox's namespace, open one and
 * a handle of the namespace itself, and come back. */
static int rtnl_connect_in(int pidfd, struct nl_sock **ret_sk, int *ret_nsfd) {
        int self _cleanup_(closep) = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        int nsfd = -EBADF, r, back;

        if (self < 0)
                return -errno;
        if (setns(pidfd, CLONE_NEWNET) < 0)
                return -errno;
        r = rtnl_connect(ret_sk);
        if (r >= 0) {
                nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
                if (nsfd < 0)
                        r = -errno;
        }
        back = setns(self, CLONE_NEWNET) < 0 ? -errno : 0;
        if (back < 0 || r < 0) {
                /* Not being able to come back would leave this thread in a
                 * sandbox's namespace: nothing can be safer than failing. */
                if (r >= 0) {
                        nl_socket_free(*ret_sk);
                        r = back;
                }
                safe_close(nsfd);
                return r;
        }
        *ret_nsfd = nsfd;
        return 0;
}

static int link_up(struct nl_sock *sk, int ifindex) {
        struct rtnl_link *l _cleanup_(rtnl_link_putp) = rtnl_link_alloc();
        struct rtnl_link *change _cleanup_(rtnl_link_putp) = rtnl_link_alloc();
        int r;

        if (!l || !change)
                return -ENOMEM;
        rtnl_link_set_ifindex(l, ifindex);
        rtnl_link_set_flags(change, IFF_UP);
        r = rtnl_link_change(sk, l, change, 0);
        return r < 0 ? nl_to_errno(r) : 0;
}

static int link_index(struct nl_sock *sk, const char *name, int *ret) {
        struct rtnl_link *l _cleanup_(rtnl_link_putp) = NULL;
        int r = rtnl_link_get_kernel(sk, 0, name, &l);

        if (r < 0)
                return nl_to_errno(r);
        *ret = rtnl_link_get_ifindex(l);
        return 0;
}

static int addr_add(struct nl_sock *sk, int ifindex, struct in_addr a, unsigned prefixlen) {
        struct rtnl_addr *ra _cleanup_(rtnl_addr_putp) = rtnl_addr_alloc();
        struct nl_addr *local _cleanup_(nl_addr_putp) = nl_addr_build(AF_INET, &a, sizeof(a));
        int r;

        if (!ra || !local)
                return -ENOMEM;
        nl_addr_set_prefixlen(local, (int) prefixlen);
        rtnl_addr_set_ifindex(ra, ifindex);
        rtnl_addr_set_family(ra, AF_INET);
        r = rtnl_addr_set_local(ra, local);
        if (r < 0)
                return nl_to_errno(r);
        r = rtnl_addr_add(sk, ra, 0);
        return r < 0 ? nl_to_errno(r) : 0;
}

static int default_route_add(struct nl_sock *sk, int ifindex, struct in_addr gw) {
        struct rtnl_route *rt _cleanup_(rtnl_route_putp) = rtnl_route_alloc();
        struct nl_addr *dst _cleanup_(nl_addr_putp) = NULL;
        struct nl_addr *via _cleanup_(nl_addr_putp) = nl_addr_build(AF_INET, &gw, sizeof(gw));
        struct in_addr any = {};
        struct rtnl_nexthop *nh;
        int r;

        dst = nl_addr_build(AF_INET, &any, sizeof(any));
        if (!rt || !dst || !via)
                return -ENOMEM;
        nl_addr_set_prefixlen(dst, 0);
        rtnl_route_set_family(rt, AF_INET);
        rtnl_route_set_table(rt, RT_TABLE_MAIN);
        rtnl_route_set_scope(rt, RT_SCOPE_UNIVERSE);
        rtnl_route_set_protocol(rt, RTPROT_STATIC);
        r = rtnl_route_set_dst(rt, dst);
        if (r < 0)
                return nl_to_errno(r);
        nh = rtnl_route_nh_alloc();
        if (!nh)
                return -ENOMEM;
        rtnl_route_nh_set_ifindex(nh, ifindex);
        rtnl_route_nh_set_gateway(nh, via);
        rtnl_route_add_nexthop(rt, nh); /* the route owns it now */
        r = rtnl_route_add(sk, rt, NLM_F_CREATE | NLM_F_EXCL);
        return r < 0 ? nl_to_errno(r) : 0;
}

/* A token bucket as the root qdisc of the link: its egress is capped at
 * rate, with a burst of 10 ms of it (at least 16 KiB, so that one
 * full-size segment always fits) and 50 ms of queue. */
static int tbf_add(struct nl_sock *sk, int ifindex, uint64_t rate) {
        struct rtnl_qdisc *q _cleanup_(rtnl_qdisc_putp) = rtnl_qdisc_alloc();
        uint64_t burst = MAX(rate / 100, 16384u), limit = burst + rate / 20;
        int r;

        if (!q)
                return -ENOMEM;
        if (rate > INT32_MAX || limit > INT32_MAX)
                return -ERANGE;
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
        rtnl_tc_set_handle(TC_CAST(q), TC_HANDLE(1, 0));
        r = rtnl_tc_set_kind(TC_CAST(q), "tbf");
        if (r < 0)
                return nl_to_errno(r);
        rtnl_qdisc_tbf_set_limit(q, (int) limit);
        rtnl_qdisc_tbf_set_rate(q, (int) rate, (int) burst, 0);
        r = rtnl_qdisc_add(sk, q, NLM_F_CREATE | NLM_F_REPLACE);
        return r < 0 ? nl_to_errno(r) : 0;
}

/* /proc/sys/net/<family>/conf/<ifname>/<key>: of the opener's namespace. */
static int write_sysctl(const char *family, const char *name, const char *key, const char *value) {
        char path[128];
        int fd _cleanup_(closep) = -EBADF;
        size_t n = strlen(value);

        snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/%s", family, name, key);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return write(fd, value, n) == (ssize_t) n ? 0 : negative_errno();
}

static int veth_create(struct nl_sock *sk, int nsfd, const sp_veth_spec *spec) {
        struct rtnl_link *l _cleanup_(rtnl_link_putp) = rtnl_link_veth_alloc();
        struct rtnl_link *peer _cleanup_(rtnl_link_putp) = NULL;
        int r;

        if (!l)
                return -ENOMEM;
        peer = rtnl_link_veth_get_peer(l);
        if (!peer)
                return -ENOMEM;
        rtnl_link_set_name(l, spec->host_name);
        rtnl_link_set_name(peer, spec->peer_name);
        /* Made inside the sandbox's namespace: it is never visible in ours. */
        rtnl_link_set_ns_fd(peer, nsfd);
        r = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
        return r < 0 ? nl_to_errno(r) : 0;
}

static int veth_configure(struct nl_sock *host, struct nl_sock *inside, const sp_veth_spec *spec, int *ret_ifindex) {
        int hidx, pidx, r;

        r = link_index(host, spec->host_name, &hidx);
        if (r < 0)
                return r;
        *ret_ifindex = hidx;
        /* The host end routes for the sandbox (IPv4 forwarding is decided
         * by the interface a packet comes in on) and has no IPv6 at all. */
        r = write_sysctl("ipv4", spec->host_name, "forwarding", "1");
        if (r < 0)
                return r;
        (void) write_sysctl("ipv6", spec->host_name, "disable_ipv6", "1");
        r = addr_add(host, hidx, spec->host_addr, spec->prefixlen);
        if (r < 0)
                return r;
        r = link_up(host, hidx);
        if (r < 0)
                return r;
        r = link_index(inside, spec->peer_name, &pidx);
        if (r < 0)
                return r;
        r = addr_add(inside, pidx, spec->peer_addr, spec->prefixlen);
        if (r < 0)
                return r;
        r = link_up(inside, pidx);
        if (r < 0)
                return r;
        r = default_route_add(inside, pidx, spec->host_addr);
        if (r < 0)
                return r;
        if (spec->rate_bytes_per_s > 0) {
                /* what the sandbox receives leaves the host end; what it
                 * sends leaves its own end (its commands hold no
                 * CAP_NET_ADMIN to remove the qdisc) */
                r = tbf_add(host, hidx, spec->rate_bytes_per_s);
                if (r < 0)
                        return r;
                r = tbf_add(inside, pidx, spec->rate_bytes_per_s);
                if (r < 0)
                        return r;
        }
        return 0;
}

int sp_veth_setup(int netns_pidfd, const sp_veth_spec *spec, int *ret_ifindex) {
        struct nl_sock *host _cleanup_(nl_socket_freep) = NULL;
        struct nl_sock *inside _cleanup_(nl_socket_freep) = NULL;
        int nsfd _cleanup_(closep) = -EBADF;
        int ifindex = 0, r;

        if (!spec->host_name || strlen(spec->host_name) >= IFNAMSIZ || !spec->peer_name ||
            strlen(spec->peer_name) >= IFNAMSIZ || spec->prefixlen > 32)
                return -EINVAL;
        r = rtnl_connect(&host);
        if (r < 0)
                return r;
        r = rtnl_connect_in(netns_pidfd, &inside, &nsfd);
        if (r < 0)
                return r;
        r = veth_create(host, nsfd, spec);
        if (r < 0)
                return r;
        r = veth_configure(host, inside, spec, &ifindex);
        if (r < 0) {
                struct rtnl_link *l _cleanup_(rtnl_link_putp) = rtnl_link_alloc();
                if (l) {
                        rtnl_link_set_name(l, spec->host_name);
                        (void) rtnl_link_delete(host, l);
                }
                return r;
        }
        if (ret_ifindex)
                *ret_ifindex = ifindex;
        return 0;
}

int sp_veth_delete(const char *name) {
        struct nl_sock *sk _cleanup_(nl_socket_freep) = NULL;
        struct rtnl_link *l _cleanup_(rtnl_link_putp) = rtnl_link_alloc();
        int r;

        if (!l)
                return -ENOMEM;
        r = rtnl_connect(&sk);
        if (r < 0)
                return r;
        rtnl_link_set_name(l, name);
        r = rtnl_link_delete(sk, l);
        return r < 0 ? nl_to_errno(r) : 0;
}

int sp_veth_sweep(const char *prefix) {
        struct nl_sock *sk _cleanup_(nl_socket_freep) = NULL;
        struct nl_cache *cache _cleanup_(nl_cache_freep) = NULL;
        size_t plen = strlen(prefix);
        int r, n = 0;

        if (plen == 0)
                return -EINVAL;
        r = rtnl_connect(&sk);
        if (r < 0)
                return r;
        r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
        if (r < 0)
                return nl_to_errno(r);
        for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
                struct rtnl_link *l = (struct rtnl_link *) o;
                const char *name = rtnl_link_get_name(l);
                if (!name || strncmp(name, prefix, plen) != 0)
                        continue;
                if (rtnl_link_delete(sk, l) >= 0)
                        n++;
        }
        return n;
}

int sp_veth_stats(int ifindex, uint64_t *ret_rx_bytes, uint64_t *ret_tx_bytes) {
        struct nl_sock *sk _cleanup_(nl_socket_freep) = NULL;
        struct rtnl_link *l _cleanup_(rtnl_link_putp) = NULL;
        int r;

        /* rtnetlink, not sysfs: /sys shows the namespace it was mounted
         * in, which need not be ours */
        r = rtnl_connect(&sk);
        if (r < 0)
                return r;
        r = rtnl_link_get_kernel(sk, ifindex, NULL, &l);
        if (r < 0)
                return nl_to_errno(r);
        *ret_rx_bytes = rtnl_link_get_stat(l, RTNL_LINK_RX_BYTES);
        *ret_tx_bytes = rtnl_link_get_stat(l, RTNL_LINK_TX_BYTES);
        return 0;
}

int sp_link_exists(int ifindex) {
        char name[IF_NAMESIZE];

        return if_indextoname((unsigned) ifindex, name) ? 1 : 0;
}
