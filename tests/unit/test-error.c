/* SPDX-License-Identifier: MIT */
/* The runtime's error object: set, then context put in front. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "macro.h"

static void test_set_and_prefix(void **state) {
        sp_error e = {};

        assert_int_equal(sp_error_set(&e, -ENOENT, "open %s", "/x"), -ENOENT);
        assert_int_equal(e.code, -ENOENT);
        assert_string_equal(e.message, "open /x");
        assert_int_equal(sp_error_prefix(&e, "template %s", "t1"), -ENOENT);
        assert_string_equal(e.message, "template t1: open /x");
        assert_int_equal(e.code, -ENOENT);
}

static void test_prefix_of_an_empty_message_is_the_context(void **state) {
        sp_error e = {.code = -EIO};

        assert_int_equal(sp_error_prefix(&e, "mounts"), -EIO);
        assert_string_equal(e.message, "mounts");
        assert_int_equal(sp_error_prefix(NULL, "ignored"), 0);
        assert_int_equal(sp_error_set(NULL, -EINVAL, "x"), -EINVAL);
}

static void test_long_messages_keep_the_context_and_stay_terminated(void **state) {
        sp_error e = {};
        char cause[400];

        memset(cause, 'c', sizeof(cause) - 1);
        cause[sizeof(cause) - 1] = 0;
        sp_error_set(&e, -E2BIG, "%s", cause);
        assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
        sp_error_prefix(&e, "context");
        assert_int_equal(strncmp(e.message, "context: ccc", 12), 0);
        assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_set_and_prefix),
                cmocka_unit_test(test_prefix_of_an_empty_message_is_the_context),
                cmocka_unit_test(test_long_messages_keep_the_context_and_stay_terminated),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
