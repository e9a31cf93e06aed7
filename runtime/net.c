/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "macro.h"
#include "net.h"
#include "nl-util.h"

int sp_net_loopback_up(void) {
        struct nl_sock *sk _cleanup_(nl_socket_freep) = nl_socket_alloc();
        struct rtnl_link *lo _cleanup_(rtnl_link_putp) = NULL;
        struct rtnl_link *change _cleanup_(rtnl_link_putp) = NULL;
        int r;

        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return nl_to_errno(r);
        r = rtnl_link_get_kernel(sk, 0, "lo", &lo);
        if (r < 0)
                return nl_to_errno(r);
        change = rtnl_link_alloc();
        if (!change)
                return -ENOMEM;
        rtnl_link_set_flags(change, IFF_UP);
        r = rtnl_link_change(sk, lo, change, 0);
        return r < 0 ? nl_to_errno(r) : 0;
}
