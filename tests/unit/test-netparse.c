/* SPDX-License-Identifier: MIT */
/* The network policy's pure parts: DNS messages, SNI/Host sniffing, names,
 * ranges and the operator's grants (supervisor/dns.c, sniff.c, netpolicy.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <string.h>

#include "dns.h"
#include "netpolicy.h"
#include "sniff.h"

static void test_dns_round_trip(void **state) {
        uint8_t q[512], a[512];
        dns_query dq;
        uint32_t addr = inet_addr("198.51.100.20"), ttl = 30, got[8], ttls[8];
        size_t n;
        int len, rcode;

        len = dns_build_query("Pypi.Org", 1, 0x1234, q, sizeof(q));
        assert_true(len > 12);
        assert_int_equal(dns_parse_query(q, (size_t) len, &dq), 0);
        assert_string_equal(dq.name, "pypi.org");
        assert_int_equal(dq.qtype, 1);
        assert_int_equal(dq.longest_label, 4);
        len = dns_build_reply(&dq, 0, &addr, &ttl, 1, a, sizeof(a));
        assert_true(len > 0);
        assert_int_equal(dns_parse_answer(a, (size_t) len, 0x1234, "pypi.org", 1, &rcode, got, ttls, 8, &n), 0);
        assert_int_equal(rcode, 0);
        assert_int_equal(n, 1);
        assert_int_equal(got[0], addr);
        assert_int_equal(ttls[0], 30);
        /* another id, another name: not our answer */
        assert_int_equal(dns_parse_answer(a, (size_t) len, 0x1235, "pypi.org", 1, &rcode, got, ttls, 8, &n), -EBADMSG);
        assert_int_equal(dns_parse_answer(a, (size_t) len, 0x1234, "evil.org", 1, &rcode, got, ttls, 8, &n), -EBADMSG);
}

static void test_dns_hostile(void **state) {
        /* a compression pointer to itself, a label with a dot, truncation */
        uint8_t loop[] = { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1 };
        uint8_t dot[] = { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', '.', 'b', 0, 0, 1, 0, 1 };
        uint8_t nul[] = { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', 0, 'b', 0, 0, 1, 0, 1 };
        dns_query q;

        assert_int_equal(dns_parse_query(loop, sizeof(loop), &q), -EBADMSG);
        assert_int_equal(dns_parse_query(dot, sizeof(dot), &q), -EBADMSG);
        assert_int_equal(dns_parse_query(nul, sizeof(nul), &q), -EBADMSG);
        for (size_t k = 0; k < sizeof(dot); k++)
                assert_true(dns_parse_query(dot, k, &q) < 0);
        assert_int_equal(dns_parse_query(dot, 1, &q), -EPROTO);
}

/* A ClientHello with only the server_name extension. */
static size_t client_hello(const char *name, unsigned char *b) {
        size_t n = strlen(name), p = 0, hs, ext;
        b[p++] = 0x16, b[p++] = 3, b[p++] = 1, p += 2;
        hs = p;
        b[p++] = 1, p += 3;
        b[p++] = 3, b[p++] = 3;
        memset(b + p, 0x42, 32), p += 32;
        b[p++] = 0;                        /* session id */
        b[p++] = 0, b[p++] = 2, b[p++] = 0x13, b[p++] = 1; /* one suite */
        b[p++] = 1, b[p++] = 0;            /* null compression */
        ext = p, p += 2;
        b[p++] = 0, b[p++] = 0;            /* server_name */
        b[p++] = 0, b[p++] = (unsigned char) (n + 5);
        b[p++] = 0, b[p++] = (unsigned char) (n + 3);
        b[p++] = 0, b[p++] = 0, b[p++] = (unsigned char) n;
        memcpy(b + p, name, n), p += n;
        b[ext] = (unsigned char) ((p - ext - 2) >> 8), b[ext + 1] = (unsigned char) (p - ext - 2);
        b[hs + 1] = 0, b[hs + 2] = (unsigned char) ((p - hs - 4) >> 8), b[hs + 3] = (unsigned char) (p - hs - 4);
        b[3] = (unsigned char) ((p - 5) >> 8), b[4] = (unsigned char) (p - 5);
        return p;
}

static void test_sniff(void **state) {
        unsigned char b[512];
        char name[256];
        size_t n = client_hello("Files.PythonHosted.org", b);
        const char *req = "GET / HTTP/1.1\r\nUser-Agent: x\r\nHost: Allowed.test:8080\r\n\r\n";
        const char *two = "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n";

        assert_int_equal(sniff_name(b, n, name, sizeof(name)), 1);
        assert_string_equal(name, "files.pythonhosted.org");
        for (size_t k = 0; k < n; k++)
                assert_int_equal(sniff_name(b, k, name, sizeof(name)), 0); /* wait for the record */
        assert_int_equal(sniff_name((const unsigned char *) req, strlen(req), name, sizeof(name)), 1);
        assert_string_equal(name, "allowed.test");
        assert_int_equal(sniff_name((const unsigned char *) req, 20, name, sizeof(name)), 0);
        assert_int_equal(sniff_name((const unsigned char *) two, strlen(two), name, sizeof(name)), -EBADMSG);
        assert_int_equal(sniff_name((const unsigned char *) "SSH-2.0-x\r\n\r\n", 13, name, sizeof(name)), -EBADMSG);
}

static void test_names_and_ranges(void **state) {
        char a[] = "PyPI.org.", b[] = "-x.org", c[] = "localhost", d[] = "a..b";
        netpolicy_cidr r;

        assert_int_equal(netpolicy_normalize_name(a), 0);
        assert_string_equal(a, "pypi.org");
        assert_int_equal(netpolicy_normalize_name(b), -EINVAL);
        assert_int_equal(netpolicy_normalize_name(c), -EINVAL);
        assert_int_equal(netpolicy_normalize_name(d), -EINVAL);
        assert_true(netpolicy_pattern_matches("*.x.org", "a.x.org"));
        assert_true(netpolicy_pattern_matches("*.x.org", "a.b.x.org"));
        assert_false(netpolicy_pattern_matches("*.x.org", "x.org"));
        assert_false(netpolicy_pattern_matches("*.x.org", "ax.org"));
        assert_false(netpolicy_pattern_matches("x.org", "a.x.org"));
        assert_int_equal(netpolicy_parse_cidr("198.51.100.0/24", &r), 0);
        assert_true(netpolicy_cidr_contains(&r, 0xc6336414));
        assert_false(netpolicy_cidr_contains(&r, 0xc6336514));
        assert_int_equal(netpolicy_parse_cidr("198.51.100.1/24", &r), -EINVAL);
        assert_int_equal(netpolicy_parse_cidr("198.51.100.0/33", &r), -EINVAL);
        assert_int_equal(netpolicy_parse_cidr("198.51.100.0/", &r), -EINVAL);
}

static void test_ceiling(void **state) {
        const char *path = "/tmp/test-netparse-grants.json";
        FILE *f = fopen(path, "w");
        netceiling *c = NULL;
        netpolicy p;
        sp_error err = {};
        json_t *v;
        netcaller who = {.uid = 1000}, other = {.uid = 1001}, admin = {.uid = 0, .admin = true};

        assert_non_null(f);
        fputs("{\"grants\": [{\"uids\": [1000], \"allow\": [\"*.x.org\", \"pypi.org\"], \"max_rate_mbit\": 10}]}", f);
        fclose(f);
        assert_int_equal(netceiling_load(path, &c, &err), 0);
        v = json_loads("{\"allow\": [\"*.a.x.org\", \"b.x.org\", \"pypi.org\"]}", 0, NULL);
        assert_int_equal(netpolicy_from_json(v, &p, &err), 0);
        assert_int_equal(netceiling_check(c, &who, &p, &err), 0);
        assert_int_equal(p.rate_mbit, 10);
        assert_int_equal(netceiling_check(c, &other, &p, &err), -EPERM);
        netpolicy_done(&p);
        json_decref(v);
        v = json_loads("{\"allow\": [\"*.y.org\"]}", 0, NULL);
        assert_int_equal(netpolicy_from_json(v, &p, &err), 0);
        assert_int_equal(netceiling_check(c, &who, &p, &err), -EPERM);
        assert_int_equal(netceiling_check(c, &admin, &p, &err), 0);
        netpolicy_done(&p);
        json_decref(v);
        v = json_string("open");
        assert_int_equal(netpolicy_from_json(v, &p, &err), 0);
        assert_int_equal(netceiling_check(c, &who, &p, &err), -EPERM);
        assert_int_equal(netceiling_check(c, &admin, &p, &err), 0);
        json_decref(v);
        netceiling_free(c);
        remove(path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dns_round_trip), cmocka_unit_test(test_dns_hostile), cmocka_unit_test(test_sniff),
                cmocka_unit_test(test_names_and_ranges), cmocka_unit_test(test_ceiling),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
