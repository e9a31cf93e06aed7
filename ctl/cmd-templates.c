/* SPDX-License-Identifier: MIT */
/* sandpoolctl templates | template create|build|show|rm | fork:
 * /v1/templates and POST /v1/sessions/{id}/fork. */
#include <fcntl.h>
#include <sys/stat.h>

#include "ctl.h"
#include "table.h"

static void help_template(void) {
        printf("Usage: sandpoolctl templates\n"
               "       sandpoolctl template create NAME --from SESSION\n"
               "       sandpoolctl template build NAME [--file LOCAL:DEST]... --run 'CMD'...\n"
               "       sandpoolctl template show NAME\n"
               "       sandpoolctl template rm NAME\n"
               "\n"
               "A template is a session's files captured as a read-only layer; sessions\n"
               "started from it (POST /v1/sessions {\"template\": NAME}) have them at once.\n"
               "build makes a session, uploads the files, runs each command in order (a\n"
               "failing one stops it, with its output), captures the session and ends it.\n");
}

static void help_fork(void) {
        printf("Usage: sandpoolctl fork SESSION\n"
               "\n"
               "A new session (same owner, limits and template) whose files are a copy of\n"
               "SESSION's at this instant. Processes are not copied. Prints the new id.\n");
}

static bool name_ok(const char *n) {
        size_t len = strlen(n);
        if (len == 0 || len > 32)
                return false;
        for (const char *p = n; *p; p++)
                if (!(('a' <= *p && *p <= 'z') || ('0' <= *p && *p <= '9') || (p > n && strchr("._-", *p))))
                        return false;
        return true;
}

static int print_template(ctl *c, json_t *t) {
        if (c->json) {
                print_json(t);
                return EXIT_OK;
        }
        json_t *parent = json_object_get(t, "parent");
        printf("name:       %s\nstate:      %s\nowner uid:  %lld\nparent:     %s\nsize:       %lld bytes, %lld files\n"
               "created at: %s\ncapture:    %.1f ms\n",
               json_str_or(t, "name", "?"), json_str_or(t, "state", "?"), (long long) json_int_or(t, "owner_uid", -1),
               json_is_string(parent) ? json_string_value(parent) : "(the image)",
               (long long) json_int_or(t, "size_bytes", 0), (long long) json_int_or(t, "files", 0),
               json_str_or(t, "created_at", "?"), json_real_value(json_object_get(t, "capture_ms")));
        return EXIT_OK;
}

int cmd_templates(ctl *c, int argc, char **argv) {
        static const char *const cols[] = {"NAME", "STATE", "OWNER", "PARENT", "SIZE", "FILES", "WARM", "CREATED"};
        json_auto_t *list = NULL;
        json_t *t;
        size_t i;
        int r = parse_help_only(argc, argv, help_template);
        if (r >= 0)
                return r;
        r = api_get_json(c, "/v1/templates", "list templates", false, &list);
        if (r != 0)
                return r;
        if (c->json) {
                print_json(json_object_get(list, "templates"));
                return EXIT_OK;
        }
        _cleanup_table_ table *tb = table_new(cols, ELEMENTSOF(cols));
        json_array_foreach(json_object_get(list, "templates"), i, t) {
                json_t *parent = json_object_get(t, "parent"), *pool = json_object_get(t, "pool");
                table_add(tb, json_str_or(t, "name", "?"));
                table_add(tb, json_str_or(t, "state", "?"));
                table_addf(tb, "%lld", (long long) json_int_or(t, "owner_uid", -1));
                table_add(tb, json_is_string(parent) ? json_string_value(parent) : "-");
                table_addf(tb, "%.1fM", json_int_or(t, "size_bytes", 0) / 1048576.0);
                table_addf(tb, "%lld", (long long) json_int_or(t, "files", 0));
                table_addf(tb, "%lld/%lld", (long long) json_int_or(pool, "available", 0),
                           (long long) json_int_or(pool, "size", 0));
                table_add(tb, json_str_or(t, "created_at", "?"));
        }
        table_print(tb, stdout, 0, NULL, NULL);
        return EXIT_OK;
}

static int capture(ctl *c, const char *name, const char *sid) {
        json_auto_t *body = json_pack("{s:s,s:s}", "name", name, "from_session", sid);
        api_reply rep = {};
        char what[128];
        int r;

        snprintf(what, sizeof(what), "capture %s as template %s", sid, name);
        r = api_request_json(c, "POST", "/v1/templates", body, &rep);
        if (r < 0)
                return report_transport_error(c, r, what);
        r = rep.status == 201 && rep.json ? print_template(c, rep.json) : report_http_error(c, &rep, what, false);
        api_reply_done(&rep);
        return r;
}

static int end_session(ctl *c, const char *sid) {
        char target[128];
        api_reply rep = {};
        snprintf(target, sizeof(target), "/v1/sessions/%s", sid);
        int r = api_request(c, "DELETE", target, NULL, NULL, 0, &rep);
        api_reply_done(&rep);
        return r;
}

static int read_local(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        char *buf = malloc((size_t) st.st_size + 1);
        size_t n = 0;
        if (!buf)
                return -ENOMEM;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k <= 0) {
                        free(buf);
                        return k < 0 ? -errno : -EIO;
                }
                n += (size_t) k;
        }
        *ret = buf;
        *ret_len = n;
        return 0;
}

static int build_upload(ctl *c, const char *sid, const char *spec) {
        const char *colon = strchr(spec, ':');
        _cleanup_free_ char *local = NULL, *data = NULL, *q = NULL, *target = NULL;
        size_t len = 0;
        api_reply rep = {};
        int r;

        if (!colon || colon == spec || colon[1] != '/') {
                usage_error("template build", "--file wants LOCAL:/absolute/dest, not '%s'", spec);
                return EXIT_USAGE;
        }
        local = strndup(spec, (size_t) (colon - spec));
        if (!local || (r = read_local(local, &data, &len)) < 0) {
                fprintf(stderr, "sandpoolctl: cannot read %s: %s\n", local ? local : spec, strerror(ENOMEM));
                return EXIT_FAIL;
        }
        q = http_query_escape(colon + 1);
        if (!q || asprintf(&target, "/v1/sessions/%s/files?path=%s", sid, q) < 0)
                return EXIT_FAIL;
        r = api_request(c, "PUT", target, "application/octet-stream", data, len, &rep);
        if (r < 0)
                return report_transport_error(c, r, "upload");
        r = rep.status == 201 ? EXIT_OK : report_http_error(c, &rep, "upload", true);
        api_reply_done(&rep);
        return r;
}

static int build_run(ctl *c, const char *sid, const char *cmd) {
        char target[128];
        json_auto_t *body = json_pack("{s:s}", "shell", cmd);
        api_reply rep = {};
        int r;

        snprintf(target, sizeof(target), "/v1/sessions/%s/exec", sid);
        r = api_request_json(c, "POST", target, body, &rep);
        if (r < 0)
                return report_transport_error(c, r, "run");
        if (rep.status != 200 || !rep.json)
                r = report_http_error(c, &rep, "run", true);
        else if (json_int_or(rep.json, "exit_code", -1) != 0) {
                fprintf(stderr, "sandpoolctl: template build: '%s' failed (exit %lld%s):\n%s%s", cmd,
                        (long long) json_int_or(rep.json, "exit_code", -1),
                        json_is_true(json_object_get(rep.json, "timed_out")) ? ", timed out" : "",
                        json_str_or(rep.json, "stdout", ""), json_str_or(rep.json, "stderr", ""));
                r = EXIT_FAIL;
        } else
                r = EXIT_OK;
        api_reply_done(&rep);
        return r;
}

static int template_build(ctl *c, const char *name, char **files, size_t n_files, char **runs, size_t n_runs) {
        api_reply rep = {};
        char sid[64];
        int r;

        c->timeout_ms = 0; /* commands may take their time */
        r = api_request(c, "POST", "/v1/sessions", "application/json", "{}", 2, &rep);
        if (r < 0)
                return report_transport_error(c, r, "create a session");
        if (rep.status != 201 || !rep.json) {
                r = report_http_error(c, &rep, "create a session", false);
                api_reply_done(&rep);
                return r;
        }
        snprintf(sid, sizeof(sid), "%s", json_str_or(rep.json, "id", ""));
        api_reply_done(&rep);
        r = EXIT_OK;
        for (size_t i = 0; i < n_files && r == EXIT_OK; i++)
                r = build_upload(c, sid, files[i]);
        for (size_t i = 0; i < n_runs && r == EXIT_OK; i++)
                r = build_run(c, sid, runs[i]);
        if (r == EXIT_OK)
                r = capture(c, name, sid);
        (void) end_session(c, sid);
        return r;
}

static int template_simple(ctl *c, const char *method, const char *name) {
        char target[96], what[96];
        api_reply rep = {};
        int r;

        snprintf(target, sizeof(target), "/v1/templates/%s", name);
        snprintf(what, sizeof(what), "%s template %s", streq(method, "GET") ? "show" : "remove", name);
        r = api_request(c, method, target, NULL, NULL, 0, &rep);
        if (r < 0)
                return report_transport_error(c, r, what);
        if (streq(method, "DELETE") && rep.status == 204)
                r = EXIT_OK;
        else if (streq(method, "GET") && rep.status == 200 && rep.json)
                r = print_template(c, rep.json);
        else
                r = report_http_error(c, &rep, what, true);
        api_reply_done(&rep);
        return r;
}

/* --opt VALUE or --opt=VALUE at i: the value (i advanced), else NULL */
static const char *opt_value(int argc, char **argv, int *i, const char *opt) {
        size_t n = strlen(opt);
        if (strncmp(argv[*i], opt, n) != 0)
                return NULL;
        if (argv[*i][n] == '=')
                return argv[*i] + n + 1;
        if (argv[*i][n] == 0 && *i + 1 < argc)
                return argv[++*i];
        return NULL;
}

int cmd_template(ctl *c, int argc, char **argv) {
        _cleanup_free_ char **runs = calloc((size_t) argc + 1, sizeof(char *));
        _cleanup_free_ char **files = calloc((size_t) argc + 1, sizeof(char *));
        const char *from = NULL, *verb = NULL, *name = NULL, *v;
        size_t n_runs = 0, n_files = 0, n_extra = 0;

        if (!runs || !files)
                return EXIT_FAIL;
        /* options may come before or after the operands, in any order:
         * the --run and --file lists keep theirs */
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
                        help_template();
                        return EXIT_OK;
                } else if ((v = opt_value(argc, argv, &i, "--from")))
                        from = v;
                else if ((v = opt_value(argc, argv, &i, "--run")))
                        runs[n_runs++] = (char *) v;
                else if ((v = opt_value(argc, argv, &i, "--file")))
                        files[n_files++] = (char *) v;
                else if (argv[i][0] == '-') {
                        usage_error("template", "unknown option or missing value: %s", argv[i]);
                        return EXIT_USAGE;
                } else if (!verb)
                        verb = argv[i];
                else if (!name)
                        name = argv[i];
                else
                        n_extra++;
        }
        if (!verb || !name || n_extra) {
                usage_error("template", "give create|build|show|rm and a NAME");
                return EXIT_USAGE;
        }
        if (!name_ok(name)) {
                usage_error("template", "'%s' is not a template name (a-z, 0-9, then also . _ -; at most 32)", name);
                return EXIT_USAGE;
        }
        if (streq(verb, "create")) {
                if (!from || !session_id_valid(from) || n_runs || n_files) {
                        usage_error("template", "create wants --from SESSION (32 hex digits) and nothing else");
                        return EXIT_USAGE;
                }
                return capture(c, name, from);
        }
        if (streq(verb, "build")) {
                if (from || n_runs == 0) {
                        usage_error("template", "build wants at least one --run 'CMD' (and no --from)");
                        return EXIT_USAGE;
                }
                return template_build(c, name, files, n_files, runs, n_runs);
        }
        if ((streq(verb, "show") || streq(verb, "rm")) && !from && !n_runs && !n_files)
                return template_simple(c, streq(verb, "rm") ? "DELETE" : "GET", name);
        usage_error("template", "unknown or misused verb '%s'", verb);
        return EXIT_USAGE;
}

int cmd_fork(ctl *c, int argc, char **argv) {
        char target[96], what[96];
        api_reply rep = {};
        int r = parse_help_only(argc, argv, help_fork);

        if (r >= 0)
                return r;
        if (optind + 1 != argc || !session_id_valid(argv[optind])) {
                usage_error("fork", "give one session id (32 hex digits)");
                return EXIT_USAGE;
        }
        snprintf(target, sizeof(target), "/v1/sessions/%s/fork", argv[optind]);
        snprintf(what, sizeof(what), "fork %s", argv[optind]);
        r = api_request(c, "POST", target, "application/json", "{}", 2, &rep);
        if (r < 0)
                return report_transport_error(c, r, what);
        if (rep.status == 201 && rep.json) {
                if (c->json)
                        print_json(rep.json);
                else
                        printf("%s\n", json_str_or(rep.json, "id", "?"));
                r = EXIT_OK;
        } else
                r = report_http_error(c, &rep, what, true);
        api_reply_done(&rep);
        return r;
}
