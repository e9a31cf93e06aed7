/* SPDX-License-Identifier: MIT */
#pragma once

/* The transparent proxy of networked sandboxes' HTTP and HTTPS: nft
 * redirects their TCP to ports 80 and 443 here; the proxy reads the
 * connection's original destination (SO_ORIGINAL_DST) and its first bytes
 * (TLS SNI or HTTP Host, sniff.c), asks the egress whether that sandbox
 * may reach that address and port under that name, and only then connects
 * upstream and copies bytes both ways. So an unlisted name behind an
 * allowed address (one CDN, many names) does not pass, nor does an IP
 * literal without a name. */

#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct netproxy netproxy;

typedef struct netproxy_ops {
        /* The sandbox at this source address (network order), or NULL. */
        void *(*lookup)(void *userdata, uint32_t saddr);
        /* May it reach daddr:dport (network order / host order) as name
         * (NULL when the client named none)? 0, or < 0 with reason. */
        int (*check)(void *userdata, void *link, uint32_t daddr, uint16_t dport, const char *name,
                     const char **reason);
} netproxy_ops;

typedef struct netproxy_stats {
        uint64_t accepted, spliced, refused, over_cap, failed;
} netproxy_stats;

int netproxy_new(sd_event *e, uint16_t port, uint32_t max_per_link, const netproxy_ops *ops, void *userdata,
                 netproxy **ret);
void netproxy_free(netproxy *p);
/* The link is gone: close its connections. */
void netproxy_forget(netproxy *p, void *link);
void netproxy_get_stats(const netproxy *p, netproxy_stats *ret);
