/* SPDX-License-Identifier: MIT */
/* Unit tests of sandpoolctl's pure parts: the HTTP/1.1 response parser
 * (status, headers, Content-Length, chunked with extensions and trailers,
 * bytes arriving one piece at a time, malformed answers), the request it
 * writes, and the units and tables of the human output.
 *
 * The "server" is the other end of a SOCK_SEQPACKET socketpair: every
 * write arrives as one recv() on the client side, so a test decides
 * exactly where the bytes are split, without timing. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"
#include "http.h"
#include "table.h"

typedef struct pair {
        http_conn *c;
        int server;
} pair;

static pair pair_new(void) {
        int sv[2];
        pair p = {};

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(http_conn_from_fd(sv[0], &p.c), 0);
        p.server = sv[1];
        return p;
}

static void pair_done(pair *p) {
        http_conn_free(p->c);
        safe_close(p->server);
}

/* Send s in pieces of n bytes (n = 0: all at once). */
static void serve(pair *p, const char *s, size_t n) {
        size_t len = strlen(s);

        if (n == 0)
                n = len;
        for (size_t off = 0; off < len; off += n)
                assert_true(send(p->server, s + off, MIN(n, len - off), 0) > 0);
}

static char *body_of(pair *p, http_response *r) {
        char *body = NULL;
        size_t len;

        assert_int_equal(http_read_body_all(p->c, r, 1 << 20, &body, &len), 0);
        assert_int_equal(strlen(body), len);
        return body;
}

static void test_content_length_byte_by_byte(void **state) {
        pair p = pair_new();
        http_response r;
        _cleanup_free_ char *body = NULL;

        serve(&p, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello", 1);
        assert_int_equal(http_read_head(p.c, &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "application/json");
        assert_int_equal(r.content_length, 5);
        assert_false(r.chunked);
        body = body_of(&p, &r);
        assert_string_equal(body, "hello");
        pair_done(&p);
}

static void test_chunked_keepalive(void **state) {
        const char *resp = "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n"
                           "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n";
        pair p = pair_new();
        http_response r;

        /* two answers back to back, cut every 3 bytes: the decoder must
         * stop exactly at the end of the first */
        for (int split = 1; split <= 7; split += 3) {
                serve(&p, resp, (size_t) split);
                serve(&p, "HTTP/1.1 204 No Content\r\n\r\n", 2);
                assert_int_equal(http_read_head(p.c, &r), 0);
                assert_true(r.chunked);
                _cleanup_free_ char *body = body_of(&p, &r);
                assert_string_equal(body, "hello world");
                assert_int_equal(http_read_head(p.c, &r), 0);
                assert_int_equal(r.status, 204);
                assert_true(r.done);
        }
        assert_true(http_conn_reused(p.c));
        pair_done(&p);
}

/* A stream's first event must reach the caller while the rest is still
 * to come: http_read_body returns what is there, it does not wait. */
static void test_stream_returns_what_has_arrived(void **state) {
        pair p = pair_new();
        http_response r;
        char buf[256];
        ssize_t n;

        serve(&p, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n", 0);
        serve(&p, "10\r\n{\"type\":\"start\"}\r\n", 0);
        assert_int_equal(http_read_head(p.c, &r), 0);
        n = http_read_body(p.c, &r, buf, sizeof(buf));
        assert_int_equal(n, 16);
        assert_memory_equal(buf, "{\"type\":\"start\"}", 16);
        /* nothing more has been sent: a read now would block, so check
         * with a timeout that it does wait rather than invent an end */
        assert_int_equal(http_set_timeout_ms(p.c, 50), 0);
        assert_int_equal(http_read_body(p.c, &r, buf, sizeof(buf)), -ETIMEDOUT);
        serve(&p, "3\r\nabc\r\n0\r\n\r\n", 0);
        assert_int_equal(http_read_body(p.c, &r, buf, sizeof(buf)), 3);
        assert_int_equal(http_read_body(p.c, &r, buf, sizeof(buf)), 0);
        pair_done(&p);
}

static void test_close_delimited_and_retry_after(void **state) {
        pair p = pair_new();
        http_response r;
        _cleanup_free_ char *body = NULL;

        serve(&p, "HTTP/1.0 429 Too Many Requests\r\nRetry-After: 3\r\n\r\nbusy, come back", 4);
        shutdown(p.server, SHUT_WR);
        assert_int_equal(http_read_head(p.c, &r), 0);
        assert_int_equal(r.status, 429);
        assert_int_equal(r.retry_after, 3);
        assert_true(r.close);
        body = body_of(&p, &r);
        assert_string_equal(body, "busy, come back");
        pair_done(&p);
}

static void expect_head_error(const char *resp, int err) {
        pair p = pair_new();
        http_response r;

        serve(&p, resp, 0);
        shutdown(p.server, SHUT_WR);
        assert_int_equal(http_read_head(p.c, &r), err);
        pair_done(&p);
}

static void expect_body_error(const char *resp, int err) {
        pair p = pair_new();
        http_response r;
        char *body = NULL;

        serve(&p, resp, 0);
        shutdown(p.server, SHUT_WR);
        assert_int_equal(http_read_head(p.c, &r), 0);
        assert_int_equal(http_read_body_all(p.c, &r, 1 << 20, &body, NULL), err);
        assert_null(body);
        pair_done(&p);
}

static void test_malformed(void **state) {
        _cleanup_free_ char *huge = malloc(20000);

        expect_head_error("", -ECONNRESET); /* closed before answering */
        expect_head_error("SSH-2.0-OpenSSH\r\n\r\n", -EPROTO);
        expect_head_error("HTTP/1.1 99999 Huh\r\n\r\n", -EPROTO);
        expect_head_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", -EPROTO); /* headers cut */
        assert_non_null(huge);
        memset(huge, 'a', 19999);
        huge[19999] = 0;
        memcpy(huge, "HTTP/1.1 200 OK\r\nX: ", 20);
        expect_head_error(huge, -EPROTO); /* one header line beyond the limit */

        expect_body_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", -EPROTO);
        expect_body_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", -EPROTO);
        expect_body_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", -EPROTO);
        expect_body_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", -EPROTO);
        expect_body_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", -EPROTO);
}

static void test_request_head(void **state) {
        pair p = pair_new();
        char buf[512];
        ssize_t n;

        assert_int_equal(http_send_head(p.c, "PUT", "/v1/sessions/ab/files?path=/tmp/x", "application/octet-stream", 3), 0);
        n = recv(p.server, buf, sizeof(buf) - 1, 0);
        assert_true(n > 0);
        buf[n] = 0;
        assert_string_equal(buf, "PUT /v1/sessions/ab/files?path=/tmp/x HTTP/1.1\r\nHost: sandpool\r\n"
                                 "User-Agent: sandpoolctl\r\nContent-Type: application/octet-stream\r\n"
                                 "Content-Length: 3\r\n\r\n");
        assert_int_equal(http_send_head(p.c, "GET", "/v1/health", NULL, -1), 0);
        n = recv(p.server, buf, sizeof(buf) - 1, 0);
        buf[n] = 0;
        assert_string_equal(buf, "GET /v1/health HTTP/1.1\r\nHost: sandpool\r\nUser-Agent: sandpoolctl\r\n\r\n");
        pair_done(&p);
}

static void test_query_escape(void **state) {
        _cleanup_free_ char *a = http_query_escape("/tmp/a b&c=d%e/ü");

        assert_string_equal(a, "/tmp/a%20b%26c%3Dd%25e/%C3%BC");
}

static void test_units(void **state) {
        char b[32];
        uint64_t ms;
        int64_t us;

        assert_string_equal(format_bytes(0, b, sizeof(b)), "0");
        assert_string_equal(format_bytes(1023, b, sizeof(b)), "1023");
        assert_string_equal(format_bytes(1536, b, sizeof(b)), "1.5K");
        assert_string_equal(format_bytes(256ull << 20, b, sizeof(b)), "256M");
        assert_string_equal(format_bytes(3ull << 30, b, sizeof(b)), "3G");
        assert_string_equal(format_duration_ms(850, b, sizeof(b)), "850ms");
        assert_string_equal(format_duration_ms(12000, b, sizeof(b)), "12s");
        assert_string_equal(format_duration_ms(187000, b, sizeof(b)), "3m07s");
        assert_string_equal(format_duration_ms(7500000, b, sizeof(b)), "2h05m");
        assert_string_equal(format_duration_ms(273600000, b, sizeof(b)), "3d04h");

        assert_int_equal(parse_duration_ms("250ms", &ms), 0);
        assert_int_equal(ms, 250);
        assert_int_equal(parse_duration_ms("1.5s", &ms), 0);
        assert_int_equal(ms, 1500);
        assert_int_equal(parse_duration_ms("5min", &ms), 0);
        assert_int_equal(ms, 300000);
        assert_int_equal(parse_duration_ms("15", &ms), 0);
        assert_int_equal(ms, 15000);
        assert_int_equal(parse_duration_ms("2h", &ms), 0);
        assert_int_equal(ms, 7200000);
        assert_int_equal(parse_duration_ms("soon", &ms), -EINVAL);
        assert_int_equal(parse_duration_ms("-1s", &ms), -EINVAL);
        assert_int_equal(parse_duration_ms("5 s", &ms), -EINVAL);
        assert_int_equal(parse_duration_ms("1e20s", &ms), -ERANGE);

        assert_int_equal(parse_api_time("1970-01-01T00:00:01.5Z", &us), 0);
        assert_int_equal(us, 1500000);
        assert_int_equal(parse_api_time("2026-11-29T22:46:29.686Z", &us), 0);
        assert_int_equal(us, 1795992389686000LL);
        assert_int_equal(parse_api_time("yesterday", &us), -EINVAL);
        assert_int_equal(parse_api_time("2026-11-29T22:46:29+02:00", &us), -EINVAL);

        assert_true(session_id_valid("0123456789abcdef0123456789abcdef"));
        assert_false(session_id_valid(""));
        assert_false(session_id_valid("../../v1/health"));
        assert_false(session_id_valid("abc?x=1"));
}

static void test_base64(void **state) {
        char a[] = "aGVsbG8gd29ybGQ=", b[] = "AP8=", c[] = "", d[] = "a$==";

        assert_int_equal(base64_decode(a, strlen(a)), 11);
        assert_memory_equal(a, "hello world", 11);
        assert_int_equal(base64_decode(b, strlen(b)), 2);
        assert_memory_equal(b, "\x00\xff", 2);
        assert_int_equal(base64_decode(c, 0), 0);
        assert_int_equal(base64_decode(d, strlen(d)), -EINVAL);
}

static void test_table(void **state) {
        static const char *const headers[] = { "NAME", ">SIZE" };
        _cleanup_table_ table *t = table_new(headers, 2);
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        FILE *f;
        double keys[] = { 1, 3, 2 };

        assert_non_null(t);
        assert_int_equal(table_add(t, "a"), 0);
        assert_int_equal(table_addf(t, "%d", 1), 0);
        assert_int_equal(table_add(t, "b\x1b[2Jx"), 0); /* an escape sequence from a label */
        assert_int_equal(table_add(t, "300"), 0);
        assert_int_equal(table_add(t, "ü"), 0);
        assert_int_equal(table_add(t, NULL), 0);
        assert_int_equal(table_rows(t), 3);
        table_sort(t, keys, true);
        f = open_memstream(&out, &len);
        assert_non_null(f);
        table_print(t, f, 0, NULL, NULL);
        fclose(f);
        /* right-aligned numbers, UTF-8 counted as one column, no ESC */
        assert_string_equal(out, "NAME    SIZE\n"
                                 "b?[2Jx   300\n"
                                 "ü          -\n"
                                 "a          1\n");
}

static void test_metrics_histograms(void **state) {
        static const char page[] =
                "# HELP sandpool_sessions_created_total Sessions created.\n"
                "# TYPE sandpool_sessions_created_total counter\n"
                "sandpool_sessions_created_total 42\n"
                "sandpool_http_requests_total 7\n"
                "sandpool_http_responses_total{class=\"2xx\"} 7\n"
                "sandpool_pool_create_seconds_bucket{le=\"0.001\"} 10\n"
                "sandpool_pool_create_seconds_bucket{le=\"0.005\"} 95\n"
                "sandpool_pool_create_seconds_bucket{le=\"0.05\"} 100\n"
                "sandpool_pool_create_seconds_bucket{le=\"+Inf\"} 100\n"
                "sandpool_pool_create_seconds_sum 0.25\n"
                "sandpool_pool_create_seconds_count 100\n";
        json_auto_t *counters = json_object(), *lat = json_object();
        json_t *h;

        metrics_parse(page, counters, lat);
        assert_int_equal(json_integer_value(json_object_get(counters, "sessions_created_total")), 42);
        assert_null(json_object_get(counters, "http_requests_total")); /* not about the pool */
        assert_int_equal(json_object_size(lat), 1);
        h = json_object_get(lat, "pool_create_seconds");
        assert_non_null(h);
        assert_int_equal(json_integer_value(json_object_get(h, "count")), 100);
        assert_true(json_real_value(json_object_get(h, "mean_ms")) > 2.49 &&
                    json_real_value(json_object_get(h, "mean_ms")) < 2.51);
        assert_true(json_real_value(json_object_get(h, "p50_ms")) > 4.99 &&
                    json_real_value(json_object_get(h, "p50_ms")) < 5.01);
        assert_true(json_real_value(json_object_get(h, "p99_ms")) > 49.9 &&
                    json_real_value(json_object_get(h, "p99_ms")) < 50.1);
        assert_true(json_is_true(json_object_get(h, "bucketed")));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_content_length_byte_by_byte),
                cmocka_unit_test(test_chunked_keepalive),
                cmocka_unit_test(test_stream_returns_what_has_arrived),
                cmocka_unit_test(test_close_delimited_and_retry_after),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_request_head),
                cmocka_unit_test(test_query_escape),
                cmocka_unit_test(test_units),
                cmocka_unit_test(test_base64),
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_metrics_histograms),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
