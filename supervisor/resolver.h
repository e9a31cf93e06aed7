/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's resolver for networked sandboxes: UDP and TCP DNS on one
 * port of the host, to which nft redirects each sandbox's DNS to its
 * gateway. It answers only names on the asking sandbox's list (NXDOMAIN
 * otherwise), only A and AAAA questions (REFUSED for TXT, NULL, ANY, ...:
 * the usual tunnels), refuses labels and names long enough to carry data
 * out, forwards the rest to the configured upstream from a fresh socket
 * with a fresh id, and answers with a reply of its own built from the
 * upstream's A records, capped in number and TTL, after the egress has
 * opened exactly those addresses for the sandbox. AAAA gets an empty
 * answer (sandboxes have no IPv6 route). */

#include <netinet/in.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "netpolicy.h"

/* Queries are refused when a label is longer than this or the name is. */
#define RESOLVER_MAX_LABEL 40
#define RESOLVER_MAX_NAME 120

typedef struct resolver resolver;

typedef struct resolver_ops {
        /* The sandbox at this source address (network order): its policy
         * and an opaque handle, or NULL when none has it. */
        const netpolicy *(*lookup)(void *userdata, uint32_t saddr, void **ret_link);
        /* A question was refused (reason: "not allowed", "TXT", "long label"). */
        void (*denied)(void *userdata, void *link, const char *name, const char *reason);
        /* The upstream answered these A records for name: keep in place the
         * ones the sandbox may reach and open them for their TTL (which may
         * be lowered); returns how many remain. */
        size_t (*answered)(void *userdata, void *link, const char *name, uint32_t *addrs, uint32_t *ttls, size_t n);
} resolver_ops;

typedef struct resolver_stats {
        uint64_t queries, answered, nxdomain, refused, servfail, upstream_timeouts;
} resolver_stats;

int resolver_new(sd_event *e, uint16_t port, const struct sockaddr_in *upstream, const resolver_ops *ops,
                 void *userdata, resolver **ret);
void resolver_free(resolver *r);
/* The link is gone: its queries in flight are dropped unanswered. */
void resolver_forget(resolver *r, void *link);
void resolver_get_stats(const resolver *r, resolver_stats *ret);
