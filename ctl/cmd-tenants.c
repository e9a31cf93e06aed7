/* SPDX-License-Identifier: MIT */
/* sandpoolctl history (GET /v1/executions) and sandpoolctl usage (GET
 * /v1/usage). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"
#include "render.h"
#include "table.h"

static void history_help(void) {
        printf("Usage: sandpoolctl history [--session ID] [--since TIME] [--limit N] [--uid UID] [--json]\n"
               "\n"
               "The execution records: one line per command (when, session, uid, exit, duration,\n"
               "CPU, peak memory, output bytes, the command line), oldest first. Without --since\n"
               "the most recent N (default 20); with it, the first N from then on (TIME: ms\n"
               "since the epoch, or YYYY-MM-DDTHH:MM:SSZ). Your own commands; an administrator\n"
               "sees everyone's, or one uid's with --uid.\n");
}

static void usage_help(void) {
        printf("Usage: sandpoolctl usage [--uid UID|all] [--json]\n"
               "\n"
               "Today's usage against the tier's quotas: commands, CPU seconds, concurrent\n"
               "sessions, and the tier's ceilings. An administrator may ask for another uid, or\n"
               "for all the uids seen today.\n");
}

/* Append "&name=value" (escaped enough for ids, numbers and times). */
static int add_arg(char *q, size_t size, const char *name, const char *value) {
        size_t n = strlen(q);
        for (const char *c = value; *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      strchr("-:.T", *c)))
                        return -EINVAL;
        int k = snprintf(q + n, size - n, "%c%s=%s", n ? '&' : '?', name, value);
        return k < 0 || (size_t) k >= size - n ? -E2BIG : 0;
}

static void print_history(json_t *rows) {
        static const char *const headers[] = { "STARTED", "SESSION", ">UID", ">EXIT", ">TIME", ">CPU", ">PEAK",
                                               ">OUT", "COMMAND" };
        _cleanup_table_ table *t = table_new(headers, ELEMENTSOF(headers));
        json_t *row;
        size_t i;
        char b1[32], b2[32];

        if (!t)
                return;
        json_array_foreach(json_object_get(rows, "executions"), i, row) {
                json_t *sig = json_object_get(row, "signal"), *argv = json_object_get(row, "argv"), *a;
                char cmd[160] = "";
                size_t k, n = 0;
                json_array_foreach(argv, k, a)
                        if (n < sizeof(cmd) - 1)
                                n += (size_t) snprintf(cmd + n, sizeof(cmd) - n, "%s%s", k ? " " : "",
                                                       json_string_value(a) ?: "");
                table_add(t, json_str_or(row, "started_at", "-"));
                table_addf(t, "%.12s", json_str_or(row, "session_id", "-"));
                table_addf(t, "%lld", (long long) json_int_or(row, "uid", -1));
                if (json_is_integer(sig))
                        table_addf(t, "sig %lld%s", (long long) json_integer_value(sig),
                                   json_is_true(json_object_get(row, "timed_out")) ? " (timeout)" : "");
                else
                        table_addf(t, "%lld", (long long) json_int_or(row, "exit_code", -1));
                table_add(t, format_duration_ms((uint64_t) json_int_or(row, "duration_ms", 0), b1, sizeof(b1)));
                table_add(t, format_duration_ms((uint64_t) json_int_or(row, "cpu_usec", 0) / 1000, b2, sizeof(b2)));
                table_add(t, format_bytes((uint64_t) json_int_or(row, "memory_peak", 0), b1, sizeof(b1)));
                table_addf(t, "%s%s", format_bytes((uint64_t) (json_int_or(row, "stdout_bytes", 0) +
                                                               json_int_or(row, "stderr_bytes", 0)), b2, sizeof(b2)),
                           json_is_true(json_object_get(row, "truncated")) ? "+" : "");
                table_add(t, cmd);
        }
        table_print(t, stdout, 0, NULL, NULL);
        printf("%zu of %lld matching records\n", json_array_size(json_object_get(rows, "executions")),
               (long long) json_int_or(rows, "total", 0));
}

int cmd_history(ctl *c, int argc, char **argv) {
        static const struct option opts[] = {
                { "session", required_argument, NULL, 's' }, { "since", required_argument, NULL, 't' },
                { "limit", required_argument, NULL, 'n' },   { "uid", required_argument, NULL, 'u' },
                { "help", no_argument, NULL, 'h' },          {} };
        char q[512] = "", target[600];
        bool have_limit = false;
        json_auto_t *rows = NULL;
        int o, r = 0;

        while ((o = getopt_long(argc, argv, "+s:t:n:u:h", opts, NULL)) >= 0) {
                switch (o) {
                case 's': r = add_arg(q, sizeof(q), "session", optarg); break;
                case 't': r = add_arg(q, sizeof(q), "since", optarg); break;
                case 'n': r = add_arg(q, sizeof(q), "limit", optarg); have_limit = true; break;
                case 'u': r = add_arg(q, sizeof(q), "uid", optarg); break;
                case 'h': history_help(); return EXIT_OK;
                default: return EXIT_USAGE;
                }
                if (r < 0) {
                        usage_error("history", "bad value '%s'", optarg);
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                usage_error("history", "unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        if (!have_limit)
                (void) add_arg(q, sizeof(q), "limit", "20");
        snprintf(target, sizeof(target), "/v1/executions%s", q);
        r = api_get_json(c, target, "execution records", false, &rows);
        if (r != 0)
                return r;
        if (c->json)
                print_json(rows);
        else
                print_history(rows);
        return EXIT_OK;
}

static void print_limit(const char *what, json_t *v, double scale) {
        json_t *lim = json_object_get(v, "limit"), *used = json_object_get(v, "used");
        double u = json_is_number(used) ? json_number_value(used) : 0;

        if (json_is_number(lim))
                printf("  %-14s %g of %g (%.0f%%)\n", what, u / scale, json_number_value(lim) / scale,
                       json_number_value(lim) > 0 ? 100.0 * u / json_number_value(lim) : 0.0);
        else
                printf("  %-14s %g (no limit)\n", what, u / scale);
}

static void print_usage_one(json_t *u) {
        json_t *ceil = json_object_get(u, "ceilings");
        char b[32];

        printf("uid %lld, tier %s, today until %s:\n", (long long) json_int_or(u, "uid", -1),
               json_str_or(u, "tier", "?"), json_str_or(u, "resets_at", "?"));
        print_limit("commands", json_object_get(u, "commands"), 1);
        print_limit("cpu seconds", json_object_get(u, "cpu_seconds"), 1);
        print_limit("sessions now", json_object_get(u, "sessions"), 1);
        json_t *mem = json_object_get(ceil, "memory_limit"), *to = json_object_get(ceil, "command_timeout_ms");
        printf("  %-14s memory %s, command timeout %s, share %lld\n", "ceilings",
               json_is_integer(mem) ? format_bytes((uint64_t) json_integer_value(mem), b, sizeof(b)) : "-",
               json_is_integer(to) ? format_duration_ms((uint64_t) json_integer_value(to), b + 16, 16) : "-",
               (long long) json_int_or(ceil, "share", 1));
}

int cmd_usage(ctl *c, int argc, char **argv) {
        static const struct option opts[] = { { "uid", required_argument, NULL, 'u' },
                                              { "help", no_argument, NULL, 'h' }, {} };
        char q[128] = "", target[200];
        json_auto_t *u = NULL;
        int o, r;

        while ((o = getopt_long(argc, argv, "+u:h", opts, NULL)) >= 0)
                switch (o) {
                case 'u':
                        if (add_arg(q, sizeof(q), "uid", optarg) < 0) {
                                usage_error("usage", "bad uid '%s'", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h': usage_help(); return EXIT_OK;
                default: return EXIT_USAGE;
                }
        if (optind < argc) {
                usage_error("usage", "unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        snprintf(target, sizeof(target), "/v1/usage%s", q);
        r = api_get_json(c, target, "usage", false, &u);
        if (r != 0)
                return r;
        if (c->json)
                print_json(u);
        else if (json_is_array(json_object_get(u, "usage"))) {
                json_t *one;
                size_t i;
                json_array_foreach(json_object_get(u, "usage"), i, one)
                        print_usage_one(one);
        } else
                print_usage_one(u);
        return EXIT_OK;
}
