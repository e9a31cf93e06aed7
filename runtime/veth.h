/* SPDX-License-Identifier: MIT */
#pragma once

/* The veth pair of a networked sandbox, through rtnetlink (libnl-route):
 * one end stays in the caller's network namespace (the host end, the
 * sandbox's gateway), the other is created directly inside the sandbox's
 * namespace, addressed, brought up and given a default route via the host
 * end. Optionally a token bucket (tc tbf) on both ends caps the rate each
 * way. Every function returns 0 or -errno and prints nothing.
 *
 * Removing a sandbox's namespace removes its veth pair with it (the kernel
 * deletes both ends when the end inside dies), so sp_veth_delete() is for
 * what a crashed daemon left behind (sp_veth_sweep) and for a setup that
 * failed half way. */

#include <netinet/in.h>
#include <stdint.h>

typedef struct sp_veth_spec {
        const char *host_name;     /* in the caller's namespace, e.g. "spn12" (< IFNAMSIZ) */
        const char *peer_name;     /* inside the sandbox, e.g. "eth0" */
        struct in_addr host_addr;  /* the gateway, on the host end */
        struct in_addr peer_addr;  /* the sandbox's own address */
        unsigned prefixlen;        /* of both, e.g. 30 */
        uint64_t rate_bytes_per_s; /* 0: no tc qdisc */
} sp_veth_spec;

/* Create and configure the pair; netns_pidfd is a pidfd of a process in
 * the sandbox's network namespace (its PID 1). The calling thread enters
 * that namespace for a moment to open a netlink socket there, and is back
 * in its own before this returns. *ret_ifindex: the host end's index. On
 * failure nothing is left in the caller's namespace. */
int sp_veth_setup(int netns_pidfd, const sp_veth_spec *spec, int *ret_ifindex);
/* Delete the link of that name in the caller's namespace (and its peer
 * with it). -ENODEV when there is none. */
int sp_veth_delete(const char *name);
/* Delete every link whose name starts with prefix; returns how many. */
int sp_veth_sweep(const char *prefix);
/* Bytes the link has received and sent (of the host end: what the sandbox
 * sent is rx, what it received is tx), and packets its qdisc dropped. */
int sp_veth_stats(int ifindex, uint64_t *ret_rx_bytes, uint64_t *ret_tx_bytes);
/* Whether a link of that index exists in the caller's namespace. */
int sp_link_exists(int ifindex);
