/* SPDX-License-Identifier: MIT */
/* The bounded output ring of background commands (supervisor/outring.c):
 * offsets stay byte-exact across growth, wrap-around and writes larger
 * than the ring; what is no longer held reads as nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "outring.h"

/* The byte at stream offset o, for any o: a pattern no period of the ring divides. */
static char byte_at(uint64_t o) {
        return (char) ((o * 7 + o / 251) & 0xff);
}

static void write_pattern(outring *r, uint64_t *pos, size_t n) {
        char *b = malloc(n);
        assert_non_null(b);
        for (size_t i = 0; i < n; i++)
                b[i] = byte_at(*pos + i);
        assert_int_equal(outring_write(r, b, n), 0);
        *pos += n;
        free(b);
}

static void check_range(const outring *r, uint64_t from, uint64_t to) {
        char buf[4096];
        uint64_t o = from;
        while (o < to) {
                size_t n = outring_read(r, o, buf, sizeof(buf));
                assert_true(n > 0);
                for (size_t i = 0; i < n; i++)
                        assert_int_equal((unsigned char) buf[i], (unsigned char) byte_at(o + i));
                o += n;
        }
        assert_int_equal(o, to);
}

static void test_small_writes_before_and_after_wrap(void **state) {
        outring r;
        uint64_t pos = 0;

        outring_init(&r, 100000, NULL);
        for (int i = 0; i < 50; i++)
                write_pattern(&r, &pos, 997);
        assert_int_equal(outring_start(&r), 0);
        check_range(&r, 0, pos);
        for (int i = 0; i < 500; i++)
                write_pattern(&r, &pos, 1 + (size_t) (i * 37) % 3000);
        assert_int_equal(r.total, pos);
        assert_int_equal(outring_start(&r), pos - 100000);
        check_range(&r, outring_start(&r), pos);
        /* below the start: nothing */
        char b[8];
        assert_int_equal(outring_read(&r, outring_start(&r) - 1, b, sizeof(b)), 0);
        assert_int_equal(outring_read(&r, pos, b, sizeof(b)), 0);
        assert_true(r.cap <= 100000);
        outring_done(&r);
}

static void test_write_larger_than_the_ring(void **state) {
        outring r;
        uint64_t pos = 0;

        outring_init(&r, 4096, NULL);
        write_pattern(&r, &pos, 10);
        write_pattern(&r, &pos, 10000);
        assert_int_equal(r.total, 10010);
        assert_int_equal(outring_start(&r), 10010 - 4096);
        check_range(&r, outring_start(&r), pos);
        write_pattern(&r, &pos, 4095);
        check_range(&r, outring_start(&r), pos);
        outring_done(&r);
}

static void test_memory_follows_what_was_written(void **state) {
        outring r;
        uint64_t pos = 0;

        outring_init(&r, 1 << 20, NULL);
        write_pattern(&r, &pos, 100);
        assert_true(r.cap < 65536);
        outring_done(&r);
}

/* Two rings of 1 MiB on a budget of 64 KiB: the first takes what is left,
 * the second its first 16 KiB; both stay byte-exact at their offsets, and
 * the memory comes back when they go. */
static void test_shared_budget(void **state) {
        outring_budget b = {.max = 65536};
        outring r1, r2;
        uint64_t p1 = 0, p2 = 0;

        outring_init(&r1, 1 << 20, &b);
        outring_init(&r2, 1 << 20, &b);
        write_pattern(&r1, &p1, 5000);
        for (int i = 0; i < 60; i++)
                write_pattern(&r1, &p1, 3333);
        assert_int_equal(r1.cap, 65536);
        assert_int_equal(outring_start(&r1), p1 - 65536);
        check_range(&r1, outring_start(&r1), p1);
        for (int i = 0; i < 30; i++)
                write_pattern(&r2, &p2, 1777);
        assert_int_equal(r2.cap, 16384);
        assert_int_equal(outring_start(&r2), p2 - 16384);
        check_range(&r2, outring_start(&r2), p2);
        assert_int_equal(b.used, 65536 + 16384);
        outring_done(&r1);
        outring_done(&r2);
        assert_int_equal(b.used, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_small_writes_before_and_after_wrap),
                cmocka_unit_test(test_write_larger_than_the_ring),
                cmocka_unit_test(test_memory_follows_what_was_written),
                cmocka_unit_test(test_shared_budget),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
