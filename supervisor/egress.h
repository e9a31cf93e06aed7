/* SPDX-License-Identifier: MIT */
#pragma once

/* Egress for the sessions that asked for network: the daemon's nftables
 * table (made at start, replacing one a crashed daemon left; removed at
 * stop), the private address pool, one veth pair per networked sandbox
 * made at take time, and the resolver whose answers open addresses.
 *
 * What passes, from a sandbox's veth (everything else is dropped, and
 * counted per sandbox with address and port):
 *  - DNS to its gateway, redirected to the daemon's resolver; DNS (53, 853)
 *    to any other address never;
 *  - TCP to 80 and 443 of an allowlist, redirected to the daemon's proxy,
 *    which checks the address as below and the TLS SNI or HTTP Host name;
 *  - to an address its resolver answered, on one of its ports, until the
 *    record's TTL runs out (per-element timeouts in one nft set keyed by
 *    sandbox address . destination . port);
 *  - to one of its listed cidrs, on its ports;
 *  - "open": any public address.
 * Never, whatever a list says: loopback, link-local (the metadata service),
 * multicast, the pool (other sandboxes), the host's own addresses (the
 * input hook takes only the redirected DNS), IPv6; private ranges only when
 * listed in cidrs. Replies come back through conntrack; the uplink
 * masquerades. */

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "netpolicy.h"
#include "sandbox.h"

typedef struct egress egress;
typedef struct egress_link egress_link;
typedef void (*egress_attached_fn)(egress_link *l, const sp_error *err, void *userdata);

typedef struct egress_options {
        const char *uplink;        /* interface toward the internet */
        const char *table;         /* nft table (inet family) the daemon owns */
        const char *interface_prefix; /* of its veths' names: "spn" makes spn0, spn1, ... */
        const char *address_pool;  /* "10.231.0.0/16": a /30 per sandbox */
        const char *upstream_dns;  /* "a.b.c.d" or "a.b.c.d:port" */
        uint16_t resolver_port;    /* where DNS from sandboxes is redirected to */
        uint16_t proxy_port;       /* where their HTTP/HTTPS is redirected to (netproxy.c) */
        uint32_t max_connections;  /* per sandbox, tracked connections; 0: no cap */
} egress_options;

int egress_new(sd_event *e, const egress_options *o, egress **ret, sp_error *err);
/* Removes the table; every link must be detached first. */
void egress_free(egress *g);

/* Give the sandbox (PID 1's pidfd, its root fd for /etc/resolv.conf;
 * both borrowed until cb) its veth, address and rules for policy p
 * (copied). The veth is made by the helper process (netd.c), off the loop:
 * *ret is the link at once, and cb says later whether it has its network
 * (link, NULL) or could not (NULL, err: the link is gone). -errno when
 * the request cannot even be made. */
int egress_attach(egress *g, const char *session_id, int pidfd, int root_fd, const netpolicy *p,
                  egress_attached_fn cb, void *userdata, egress_link **ret, sp_error *err);
/* Remove its rules and set elements; the veth goes with the sandbox's
 * namespace. While it is still attaching: cancel, cb is not called. */
void egress_detach(egress_link *l);

/* {"address", "gateway", "interface", "bytes_in", "bytes_out", "denied": {...}} */
json_t *egress_link_to_json(egress_link *l, bool with_denied);
/* Prometheus lines of the networked sessions. */
void egress_write_metrics(egress *g, FILE *f);
