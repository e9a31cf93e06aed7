/* SPDX-License-Identifier: MIT */
/* sandpoolctl sessions / session ID: list the sessions the caller may see
 * (all of them for an administrator) and inspect one. */
#include <getopt.h>

#include "ctl.h"
#include "render.h"
#include "table.h"

static void help_list(void) {
        printf("Usage: sandpoolctl sessions [--json]\n"
               "\n"
               "List the sessions you own (every session when you are root or in the admin\n"
               "group): owner, state, age, idle time, memory, cpu time, processes and running\n"
               "commands. --json prints the daemon's objects, each with its \"usage\".\n");
}

static void help_one(void) {
        printf("Usage: sandpoolctl session [--json] ID\n"
               "\n"
               "Everything about one session: owner, times, limits, usage, labels.\n"
               "Exit status 3 when there is no such session or it is not yours.\n");
}

int sessions_fetch(ctl *c, json_t **ret) {
        json_auto_t *list = NULL, *out = json_array();
        json_t *s;
        size_t i;
        int r;

        if (!out)
                return EXIT_FAIL;
        r = api_get_json(c, "/v1/sessions", "list sessions", false, &list);
        if (r != 0)
                return r;
        json_array_foreach(json_object_get(list, "sessions"), i, s) {
                const char *id = json_str_or(s, "id", "");
                char target[128];
                api_reply rep = {};

                if (json_object_get(s, "usage") || !session_id_valid(id)) {
                        json_array_append(out, s);
                        continue;
                }
                /* The list carries no usage: ask each session (one
                 * round trip of ~50 us on the kept-alive connection). */
                snprintf(target, sizeof(target), "/v1/sessions/%s", id);
                r = api_request(c, "GET", target, NULL, NULL, 0, &rep);
                if (r < 0)
                        return report_transport_error(c, r, "inspect a session");
                if (rep.status == 200 && json_is_object(rep.json))
                        json_array_append(out, rep.json);
                else if (rep.status != 404) /* 404: it ended meanwhile */
                        json_array_append(out, s);
                api_reply_done(&rep);
        }
        *ret = json_incref(out);
        return 0;
}

/* Seconds between an API time and now, -1 when absent. */
static int64_t ms_since(json_t *o, const char *key, int64_t now) {
        int64_t t;

        if (parse_api_time(json_str_or(o, key, NULL), &t) < 0)
                return -1;
        return now > t ? (now - t) / 1000 : 0;
}

static void add_duration(table *t, int64_t ms) {
        char buf[32];

        table_add(t, ms < 0 ? "-" : format_duration_ms((uint64_t) ms, buf, sizeof(buf)));
}

static void add_memory(table *t, json_t *s) {
        json_t *u = json_object_get(s, "usage");
        int64_t cur = json_int_or(u, "memory_current", -1), lim = json_int_or(json_object_get(s, "limits"), "memory_mb", -1);
        char a[32], b[32];

        if (cur < 0)
                table_add(t, "-");
        else if (lim > 0)
                table_addf(t, "%s/%s", format_bytes((uint64_t) cur, a, sizeof(a)),
                           format_bytes((uint64_t) lim << 20, b, sizeof(b)));
        else
                table_add(t, format_bytes((uint64_t) cur, a, sizeof(a)));
}

static void add_labels(table *t, json_t *labels) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        const char *k;
        json_t *v;

        if (!f) {
                table_add(t, "-");
                return;
        }
        json_object_foreach(labels, k, v)
                fprintf(f, "%s%s=%s", ftell(f) > 0 ? "," : "", k, json_is_string(v) ? json_string_value(v) : "?");
        fclose(f);
        table_add(t, text && *text ? text : "-");
}

static int print_table(json_t *sessions) {
        static const char *const headers[] = { "ID", "OWNER", "STATE", ">AGE", ">IDLE", ">MEMORY", ">CPU", ">PIDS", ">CMDS", "LABELS" };
        _cleanup_table_ table *t = table_new(headers, ELEMENTSOF(headers));
        int64_t now = now_realtime_usec();
        json_t *s;
        size_t i;
        char buf[64];

        if (!t)
                return EXIT_FAIL;
        json_array_foreach(sessions, i, s) {
                json_t *u = json_object_get(s, "usage");
                int64_t cpu = json_int_or(u, "cpu_usec", -1), pids = json_int_or(u, "pids_current", -1);
                table_add(t, json_str_or(s, "id", "?"));
                table_add(t, uid_name(json_int_or(s, "owner_uid", -1), buf, sizeof(buf)));
                table_add(t, json_str_or(s, "state", "?"));
                add_duration(t, ms_since(s, "created_at", now));
                add_duration(t, ms_since(s, "last_activity_at", now));
                add_memory(t, s);
                if (cpu < 0)
                        table_add(t, "-");
                else
                        table_addf(t, "%.2fs", (double) cpu / 1e6);
                if (pids < 0)
                        table_add(t, "-");
                else
                        table_addf(t, "%lld", (long long) pids);
                table_addf(t, "%lld", (long long) json_int_or(s, "running_commands", 0));
                add_labels(t, json_object_get(s, "labels"));
        }
        if (table_rows(t) == 0) {
                printf("no sessions\n");
                return EXIT_OK;
        }
        table_print(t, stdout, 0, NULL, NULL);
        return EXIT_OK;
}

int cmd_sessions(ctl *c, int argc, char **argv) {
        json_auto_t *sessions = NULL;
        int r;

        int e = parse_help_only(argc, argv, help_list);
        if (e >= 0)
                return e;
        if (optind < argc) {
                usage_error("sessions", "unexpected argument '%s' (to inspect one: sandpoolctl session ID)",
                            argv[optind]);
                return EXIT_USAGE;
        }
        r = sessions_fetch(c, &sessions);
        if (r != 0)
                return r;
        if (c->json) {
                json_auto_t *o2 = json_pack("{s:O}", "sessions", sessions);
                print_json(o2);
                return EXIT_OK;
        }
        return print_table(sessions);
}

static void print_time(json_t *s, const char *label, const char *key, int64_t now) {
        const char *v = json_str_or(s, key, NULL);
        int64_t t;
        char buf[32];

        if (!v)
                return;
        if (parse_api_time(v, &t) < 0)
                printf("%-15s %s\n", label, v);
        else if (t <= now)
                printf("%-15s %s (%s ago)\n", label, v, format_duration_ms((uint64_t) (now - t) / 1000, buf, sizeof(buf)));
        else
                printf("%-15s %s (in %s)\n", label, v, format_duration_ms((uint64_t) (t - now) / 1000, buf, sizeof(buf)));
}

static void print_object_line(json_t *o, const char *label, const char *sep) {
        const char *k;
        json_t *v;
        char buf[64];
        bool first = true;

        if (!json_is_object(o))
                return;
        printf("%-15s", label);
        json_object_foreach(o, k, v) {
                printf("%s%s%s%s", first ? " " : ", ", k, sep, format_limit(k, v, buf, sizeof(buf)));
                first = false;
        }
        printf("%s\n", first ? " -" : "");
}

static void print_session(json_t *s) {
        int64_t now = now_realtime_usec();
        json_t *u = json_object_get(s, "usage");
        char buf[64];
        long long owner = (long long) json_int_or(s, "owner_uid", -1);

        printf("%-15s %s\n", "id:", json_str_or(s, "id", "?"));
        printf("%-15s %s (uid %lld)\n", "owner:", uid_name(owner, buf, sizeof(buf)), owner);
        printf("%-15s %s\n", "state:", json_str_or(s, "state", "?"));
        if (json_str_or(s, "sandbox", NULL))
                printf("%-15s %s\n", "sandbox:", json_str_or(s, "sandbox", NULL));
        print_time(s, "created:", "created_at", now);
        print_time(s, "expires:", "expires_at", now);
        print_time(s, "last activity:", "last_activity_at", now);
        print_time(s, "idle expires:", "idle_expires_at", now);
        print_object_line(json_object_get(s, "limits"), "limits:", " ");
        if (json_is_object(u)) {
                char a[32], b[32];
                printf("%-15s memory %s (peak %s), cpu %.3fs, pids %lld, oom kills %lld, throttled %lld\n", "usage:",
                       format_bytes((uint64_t) json_int_or(u, "memory_current", 0), a, sizeof(a)),
                       format_bytes((uint64_t) json_int_or(u, "memory_peak", 0), b, sizeof(b)),
                       (double) json_int_or(u, "cpu_usec", 0) / 1e6, (long long) json_int_or(u, "pids_current", 0),
                       (long long) json_int_or(u, "oom_kills", 0), (long long) json_int_or(u, "nr_throttled", 0));
        } else
                printf("%-15s not available\n", "usage:");
        printf("%-15s %lld running\n", "commands:", (long long) json_int_or(s, "running_commands", 0));
        print_object_line(json_object_get(s, "labels"), "labels:", "=");
}

int cmd_session(ctl *c, int argc, char **argv) {
        json_auto_t *s = NULL;
        char target[128];
        int r;

        int e = parse_help_only(argc, argv, help_one);
        if (e >= 0)
                return e;
        if (argc - optind != 1) {
                usage_error("session", "exactly one session ID is needed (list them with 'sandpoolctl sessions')");
                return EXIT_USAGE;
        }
        if (!session_id_valid(argv[optind])) {
                fprintf(stderr, "sandpoolctl: '%s' is not a session id (32 hex digits)\n", argv[optind]);
                return EXIT_NOT_FOUND;
        }
        snprintf(target, sizeof(target), "/v1/sessions/%s", argv[optind]);
        r = api_get_json(c, target, "session", true, &s);
        if (r != 0)
                return r;
        if (c->json)
                print_json(s);
        else {
                print_session(s);
                if (json_int_or(json_object_get(s, "background_commands"), "kept", 0) > 0) {
                        printf("\nBackground commands:\n");
                        (void) commands_print(c, argv[optind]);
                }
        }
        return EXIT_OK;
}
