/* SPDX-License-Identifier: MIT */
#pragma once

/* The DNS wire format, as much of it as the daemon's resolver needs: a
 * query's one question, a clean answer built from scratch (never the
 * upstream's bytes passed through), a query to the upstream and the A
 * records of its answer. Pure functions over untrusted bytes (fuzzed). */

#include <stddef.h>
#include <stdint.h>

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1

#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_FORMERR 1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_REFUSED 5

#define DNS_MAX_ANSWERS 8

typedef struct dns_query {
        uint16_t id;
        uint16_t flags;  /* of the query: RD is echoed */
        uint16_t qtype, qclass;
        char name[256];  /* dotted, lower case, no trailing dot; "" for the root */
        size_t longest_label;
} dns_query;

/* One question, QR clear, opcode QUERY; additional records (EDNS) are
 * ignored. 0, or -EBADMSG (answer FORMERR, or nothing when even the id
 * cannot be read: ret->id is 0 then and the return is -EPROTO). */
int dns_parse_query(const uint8_t *buf, size_t len, dns_query *ret);
/* An answer to q: rcode, and n A records (addresses in network order)
 * with the given TTLs. Returns the length, or -ENOBUFS. */
int dns_build_reply(const dns_query *q, int rcode, const uint32_t *addrs, const uint32_t *ttls, size_t n,
                    uint8_t *out, size_t cap);
/* A recursive query for name/qtype with this id. */
int dns_build_query(const char *name, uint16_t qtype, uint16_t id, uint8_t *out, size_t cap);
/* The upstream's answer to (id, name, qtype): its rcode and up to max A
 * records of the answer section (CNAME chains followed by position: every
 * A record in the answer section counts). -EBADMSG for a malformed or
 * mismatched answer. */
int dns_parse_answer(const uint8_t *buf, size_t len, uint16_t id, const char *name, uint16_t qtype, int *ret_rcode,
                     uint32_t *addrs, uint32_t *ttls, size_t max, size_t *ret_n);
