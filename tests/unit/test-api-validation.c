/* SPDX-License-Identifier: MIT */
/* Unit tests of the daemon's pure request handling: validation of exec and
 * session bodies against the configuration, and the bytes-to-JSON text
 * conversion of command output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "exec-request.h"
#include "session.h"
#include "util.h"

static server srv;

static int setup(void **state) {
        char *noenv[] = { NULL };
        sp_error err = {};
        /* the built-in defaults only: no file, no environment */
        assert_int_equal(sp_config_load(&srv.config, "/dev/null", noenv, &err), 0);
        return 0;
}

static int teardown(void **state) {
        sp_config_set_done(&srv.config);
        return 0;
}

static json_t *parse(const char *text) {
        json_error_t e;
        json_t *j = json_loads(text, JSON_ALLOW_NUL, &e);
        assert_non_null(j);
        return j;
}

static int params(const char *text, session *s, exec_params *p, sp_error *err) {
        json_auto_t *j = parse(text);
        *err = (sp_error){};
        return exec_params_from_json(&srv, s, j, p, err);
}

static const char *env_get(char **envp, const char *name) {
        size_t n = strlen(name);
        for (char **e = envp; e && *e; e++)
                if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
                        return *e + n + 1;
        return NULL;
}

static void test_exec_argv_and_defaults(void **state) {
        exec_params p;
        sp_error msg;

        assert_int_equal(params("{\"argv\":[\"ls\",\"-l\"]}", NULL, &p, &msg), 0);
        assert_string_equal(p.argv[0], "ls");
        assert_string_equal(p.argv[1], "-l");
        assert_null(p.argv[2]);
        assert_int_equal(p.timeout_ms, 30000);
        assert_int_equal(p.max_output, 1 << 20);
        assert_false(p.stream);
        assert_null(p.stdin_data);
        assert_string_equal(env_get(p.envp, "HOME"), "/home/sandbox");
        assert_non_null(env_get(p.envp, "PATH"));
        exec_params_done(&p);
}

static void test_exec_shell(void **state) {
        exec_params p;
        sp_error msg;

        assert_int_equal(params("{\"shell\":\"echo $A\",\"stream\":true,\"stdin\":\"a\\u0000b\"}", NULL, &p, &msg), 0);
        assert_string_equal(p.argv[0], "/bin/sh");
        assert_string_equal(p.argv[1], "-c");
        assert_string_equal(p.argv[2], "echo $A");
        assert_true(p.stream);
        assert_int_equal(p.stdin_len, 3); /* the NUL is data */
        assert_memory_equal(p.stdin_data, "a\0b", 3);
        exec_params_done(&p);
}

static void test_exec_caps(void **state) {
        exec_params p;
        sp_error msg;

        /* above the configured maximum: capped, not refused */
        assert_int_equal(params("{\"argv\":[\"x\"],\"timeout_ms\":60000,\"max_output_bytes\":1000000000000}", NULL,
                                &p, &msg), 0);
        assert_int_equal(p.timeout_ms, 30000);
        assert_int_equal(p.max_output, 1 << 20);
        exec_params_done(&p);
        assert_int_equal(params("{\"argv\":[\"x\"],\"timeout_ms\":5,\"max_output_bytes\":0}", NULL, &p, &msg), 0);
        assert_int_equal(p.timeout_ms, 5);
        assert_int_equal(p.max_output, 0);
        exec_params_done(&p);
}

static void test_exec_env_layers(void **state) {
        session s = { .env = parse("{\"A\":\"session\",\"B\":\"session\",\"HOME\":\"/srv\"}") };
        exec_params p;
        sp_error msg;

        assert_int_equal(params("{\"argv\":[\"x\"],\"env\":{\"B\":\"request\",\"C\":\"\"}}", &s, &p, &msg), 0);
        assert_string_equal(env_get(p.envp, "A"), "session");
        assert_string_equal(env_get(p.envp, "B"), "request");
        assert_string_equal(env_get(p.envp, "C"), "");
        assert_string_equal(env_get(p.envp, "HOME"), "/srv");
        exec_params_done(&p);
        json_decref(s.env);
}

static void test_exec_refused(void **state) {
        static const char *const bad[] = {
                "{}",
                "{\"argv\":[]}",
                "{\"argv\":\"ls\"}",
                "{\"argv\":[1]}",
                "{\"argv\":[\"\"]}",
                "{\"argv\":[\"a\\u0000b\"]}",
                "{\"shell\":\"\"}",
                "{\"shell\":\"a\\u0000\"}",
                "{\"argv\":[\"ls\"],\"shell\":\"ls\"}",
                "{\"argv\":[\"x\"],\"timeout_ms\":0}",
                "{\"argv\":[\"x\"],\"timeout_ms\":-1}",
                "{\"argv\":[\"x\"],\"timeout_ms\":1.5}",
                "{\"argv\":[\"x\"],\"timeout_ms\":100000000000}",
                "{\"argv\":[\"x\"],\"timeout_ms\":\"5\"}",
                "{\"argv\":[\"x\"],\"max_output_bytes\":-1}",
                "{\"argv\":[\"x\"],\"cwd\":\"tmp\"}",
                "{\"argv\":[\"x\"],\"cwd\":5}",
                "{\"argv\":[\"x\"],\"env\":[]}",
                "{\"argv\":[\"x\"],\"env\":{\"A=B\":\"c\"}}",
                "{\"argv\":[\"x\"],\"env\":{\"A\":1}}",
                "{\"argv\":[\"x\"],\"env\":{\"A\":\"a\\u0000\"}}",
                "{\"argv\":[\"x\"],\"stdin\":5}",
                "{\"argv\":[\"x\"],\"stream\":1}",
                "{\"argv\":[\"x\"],\"unknown\":1}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                exec_params p;
                sp_error msg;
                int r = params(bad[i], NULL, &p, &msg);
                if (r != -EINVAL)
                        fail_msg("accepted: %s", bad[i]);
                assert_true(msg.message[0] != 0); /* a message for the client */
                exec_params_done(&p);
        }
}

static void test_session_params(void **state) {
        session_params p;
        sp_error bad = {};
        json_auto_t *ok = parse("{\"timeout_s\":60,\"idle_timeout_s\":100000,\"memory_mb\":64,\"cpu_pct\":1000,"
                                "\"labels\":{\"a\":\"b\"}}");
        json_auto_t *neg = parse("{\"timeout_s\":-1}");
        json_auto_t *small = parse("{\"memory_mb\":4}");
        json_auto_t *lab = parse("{\"labels\":{\"a\":1}}");

        assert_int_equal(session_params_from_json(&srv, ok, &p, &bad), 0);
        assert_int_equal(p.timeout_ms, 60000);
        assert_int_equal(p.idle_timeout_ms, 300000); /* capped */
        assert_int_equal(p.limits.memory_bytes, 64u << 20);
        assert_int_equal(p.limits.cpu_pct, 25); /* capped */
        assert_int_equal(session_params_from_json(&srv, neg, &p, &bad), -EINVAL);
        assert_string_equal(bad.message, "invalid value for timeout_s");
        assert_int_equal(session_params_from_json(&srv, small, &p, &bad), -EINVAL);
        assert_int_equal(session_params_from_json(&srv, lab, &p, &bad), -EINVAL);
}

/* timeout_ms is the name, timeout_s its alias: either works, both is a 400 */
static void test_session_params_aliases(void **state) {
        session_params p;
        sp_error bad = {};
        json_auto_t *ms = parse("{\"timeout_ms\":1500,\"idle_timeout_ms\":2500}");
        json_auto_t *both = parse("{\"timeout_ms\":1500,\"timeout_s\":2}");
        json_auto_t *idle_both = parse("{\"idle_timeout_ms\":1500,\"idle_timeout_s\":2}");
        json_auto_t *zero = parse("{\"idle_timeout_ms\":0}");

        assert_int_equal(session_params_from_json(&srv, ms, &p, &bad), 0);
        assert_int_equal(p.timeout_ms, 1500);
        assert_int_equal(p.idle_timeout_ms, 2500);
        assert_int_equal(session_params_from_json(&srv, both, &p, &bad), -EEXIST);
        assert_non_null(strstr(bad.message, "timeout_s"));
        assert_int_equal(session_params_from_json(&srv, idle_both, &p, &bad), -EEXIST);
        assert_non_null(strstr(bad.message, "idle_timeout_s"));
        assert_int_equal(session_params_from_json(&srv, zero, &p, &bad), -EINVAL);
        assert_string_equal(bad.message, "invalid value for idle_timeout_ms");
}

static void check_bytes(const char *in, size_t n, const char *want) {
        json_auto_t *j = json_bytes(in, n, NULL, NULL);
        assert_non_null(j);
        assert_int_equal(json_string_length(j), strlen(want));
        assert_memory_equal(json_string_value(j), want, strlen(want));
}

static void test_json_bytes(void **state) {
        check_bytes("plain", 5, "plain");
        check_bytes("a\xff" "b", 3, "a\xef\xbf\xbd" "b");
        check_bytes("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"); /* overlong '/' */
        check_bytes("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* a surrogate */
        check_bytes("\xe2\x82\xac", 3, "\xe2\x82\xac");
        check_bytes("\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd"); /* cut, and no carry asked */
        {
                json_auto_t *j = json_bytes("x\0y", 3, NULL, NULL);
                assert_int_equal(json_string_length(j), 3);
        }
}

/* The hand-written escaping of background output events says exactly
 * what jansson says of json_bytes() for the same bytes. */
static void test_json_escape_bytes_matches_jansson(void **state) {
#define CASE(lit) { lit, sizeof(lit) - 1 }
        static const struct { const char *s; size_t n; } cases[] = {
                CASE("plain ascii 123"), CASE("q\"b\\s/"), CASE("\n\r\t\b\f\x01\x1f\x7f"),
                CASE("x\0y"), CASE("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                CASE("bad \xff \xc3 \xed\xa0\x80 \xc0\xaf end"), CASE("\xe2\x82"), CASE(""),
        };
#undef CASE
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char out[256];
                size_t n = json_escape_bytes(cases[i].s, cases[i].n, out);
                json_auto_t *j = json_bytes(cases[i].s, cases[i].n, NULL, NULL);
                _cleanup_free_ char *want = json_dumps(j, JSON_ENCODE_ANY);
                assert_non_null(want);
                assert_int_equal(n + 2, strlen(want));
                assert_memory_equal(out, want + 1, n);
        }
}

static void test_json_bytes_carry(void **state) {
        char carry[4];
        size_t carry_len = 0;
        json_auto_t *a = json_bytes("ok \xe2\x82", 5, carry, &carry_len);
        assert_string_equal(json_string_value(a), "ok ");
        assert_int_equal(carry_len, 2);
        json_auto_t *b = json_bytes("\xac!", 2, carry, &carry_len);
        assert_string_equal(json_string_value(b), "\xe2\x82\xac!");
        assert_int_equal(carry_len, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exec_argv_and_defaults),
                cmocka_unit_test(test_exec_shell),
                cmocka_unit_test(test_exec_caps),
                cmocka_unit_test(test_exec_env_layers),
                cmocka_unit_test(test_exec_refused),
                cmocka_unit_test(test_session_params),
                cmocka_unit_test(test_session_params_aliases),
                cmocka_unit_test(test_json_bytes),
                cmocka_unit_test(test_json_bytes_carry),
                cmocka_unit_test(test_json_escape_bytes_matches_jansson),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
