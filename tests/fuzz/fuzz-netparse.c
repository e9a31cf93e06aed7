/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the bytes a networked sandbox sends the daemon: a
 * DNS question (supervisor/dns.c dns_parse_query, and the reply built for
 * it), an upstream's answer (dns_parse_answer), and a connection's first
 * bytes (supervisor/sniff.c: TLS SNI, HTTP Host), each name then checked as
 * the allowlist checks it. The first byte picks the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "netpolicy.h"
#include "sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint32_t addrs[DNS_MAX_ANSWERS], ttls[DNS_MAX_ANSWERS];
        uint8_t out[512];
        char name[256];
        dns_query q;
        size_t n;
        int rcode;

        if (size < 1)
                return 0;
        switch (data[0] % 3) {
        case 0:
                if (dns_parse_query(data + 1, size - 1, &q) == 0) {
                        if (strlen(q.name) >= sizeof(q.name))
                                abort();
                        strcpy(name, q.name);
                        if (netpolicy_normalize_name(name) == 0)
                                (void) netpolicy_pattern_matches("*.pythonhosted.org", name);
                        uint32_t a = 0x01020304, t = 30;
                        int len = dns_build_reply(&q, 0, &a, &t, 1, out, sizeof(out));
                        if (len > (int) sizeof(out))
                                abort();
                }
                break;
        case 1:
                if (dns_parse_answer(data + 1, size - 1, 0x4242, "pypi.org", DNS_TYPE_A, &rcode, addrs, ttls,
                                     DNS_MAX_ANSWERS, &n) == 0 && n > DNS_MAX_ANSWERS)
                        abort();
                break;
        default:
                if (sniff_name(data + 1, size - 1, name, sizeof(name)) > 0 && strlen(name) >= sizeof(name))
                        abort();
                break;
        }
        return 0;
}
