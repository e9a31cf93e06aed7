/* SPDX-License-Identifier: MIT */
#pragma once

/* A session's network policy, as data: "none" (only lo, the default), an
 * egress allowlist ({"allow": names and "*.suffix" patterns, "cidrs",
 * "ports", "rate_mbit"}), or "open" (any public address, admins only).
 * And the operator's ceiling (the [network] policy file): which names,
 * ranges, ports and rates a session of which uid or group may ask for at
 * all. Pure: parsing, matching and checking, no sockets. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

#define NETPOLICY_MAX_NAMES 64
#define NETPOLICY_MAX_CIDRS 32
#define NETPOLICY_MAX_PORTS 16

typedef enum netpolicy_mode {
        NETPOLICY_NONE = 0,
        NETPOLICY_ALLOW,
        NETPOLICY_OPEN,
} netpolicy_mode;

typedef struct netpolicy_cidr {
        uint32_t addr; /* host order, masked */
        unsigned prefixlen;
} netpolicy_cidr;

typedef struct netpolicy {
        netpolicy_mode mode;
        char *names[NETPOLICY_MAX_NAMES]; /* lower case; "*.x.org" matches below x.org */
        unsigned n_names;
        netpolicy_cidr cidrs[NETPOLICY_MAX_CIDRS];
        unsigned n_cidrs;
        uint16_t ports[NETPOLICY_MAX_PORTS];
        unsigned n_ports;
        uint32_t rate_mbit; /* 0: none asked (the ceiling's, if any, applies) */
} netpolicy;

/* The "network" field of POST /v1/sessions (NULL or absent: none). 0, or
 * -EINVAL with err saying what ("allow[2]: 'a..b' is not a host name"). */
int netpolicy_from_json(json_t *v, netpolicy *ret, sp_error *err);
json_t *netpolicy_to_json(const netpolicy *p);
void netpolicy_done(netpolicy *p);
int netpolicy_copy(const netpolicy *from, netpolicy *to);

/* Whether name (lower case, no trailing dot) is on the list. */
bool netpolicy_allows_name(const netpolicy *p, const char *name);
bool netpolicy_pattern_matches(const char *pattern, const char *name);
/* A host name as DNS and the allowlist see it: lower-cased in place,
 * trailing dot removed; -EINVAL when it is not one. */
int netpolicy_normalize_name(char *name);
int netpolicy_parse_cidr(const char *s, netpolicy_cidr *ret);
bool netpolicy_cidr_contains(const netpolicy_cidr *c, uint32_t addr);

/* The operator's ceiling. */
typedef struct netceiling netceiling;
typedef struct netcaller {
        uid_t uid;
        gid_t gid;
        const gid_t *groups; /* supplementary, from SO_PEERGROUPS */
        unsigned n_groups;
        bool admin;
} netcaller;

/* Load the ceiling file (JSON, see docs/api.md "Network"). path NULL or
 * "": nobody but an admin may ask for network. err says what is wrong
 * and where. */
int netceiling_load(const char *path, netceiling **ret, sp_error *err);
void netceiling_free(netceiling *c);
/* May caller have p? 0, or -EPERM with err ("'x.com' is not granted to
 * uid 1000"). Fills in a rate the ceiling caps when none was asked. */
int netceiling_check(const netceiling *c, const netcaller *caller, netpolicy *p, sp_error *err);
