/* SPDX-License-Identifier: MIT */
/* sandpoolctl exec: run a command in a session (or a one-shot sandbox)
 * with its output streamed live, and exit with the command's status.
 *
 * The API takes stdin as one string in the request (there is no upload
 * channel while the command runs), so stdin is read to its end first when
 * it is not a terminal, and must be text (valid UTF-8, no NUL bytes). */
#include <getopt.h>
#include <unistd.h>

#include "ctl.h"
#include "table.h"

/* The daemon accepts JSON bodies up to 1 MiB; leave room for the rest. */
#define STDIN_MAX (1000u * 1024u)
#define LINE_MAX_BYTES (64u * 1024u * 1024u)

static void help(void) {
        printf("Usage: sandpoolctl exec [OPTIONS] [--] CMD [ARGS...]\n"
               "       sandpoolctl exec [OPTIONS] --shell 'SHELL COMMAND'\n"
               "\n"
               "Run a command in session ID (-s), or in a fresh sandbox destroyed afterwards.\n"
               "Its output is streamed to stdout and stderr as it is produced. When stdin is\n"
               "not a terminal it is read to its end and given to the command.\n"
               "\n"
               "  -s, --session ID      run in this session (default: a one-shot sandbox)\n"
               "  -t, --timeout T       kill the command after T (250ms, 30s, 5min; default:\n"
               "                        the daemon's command_timeout)\n"
               "  -e, --env K=V         set an environment variable (repeatable)\n"
               "  -w, --cwd DIR         working directory inside the sandbox\n"
               "  -c, --shell CMD       run CMD with /bin/sh -c instead of an argv\n"
               "  -n, --no-stdin        do not read stdin\n"
               "\n"
               "Exit status: the command's; 128+N when a signal N killed it; 124 when it timed\n"
               "out; 125 when sandpoolctl could not run it (the message says why).\n");
}

typedef struct exec_opts {
        const char *session;
        const char *shell;
        const char *cwd;
        uint64_t timeout_ms;
        bool no_stdin;
        json_t *env;
} exec_opts;

/* exec's own options, and the global --socket/--json: sandpoolctl.c
 * leaves everything after "exec" alone, since the command's arguments may
 * look like them. */
static int parse_opts(ctl *c, int argc, char **argv, exec_opts *o) {
        enum { ARG_SOCKET = 0x100, ARG_JSON };
        static const struct option opts[] = {
                { "session", required_argument, NULL, 's' }, { "timeout", required_argument, NULL, 't' },
                { "env", required_argument, NULL, 'e' },     { "cwd", required_argument, NULL, 'w' },
                { "shell", required_argument, NULL, 'c' },   { "no-stdin", no_argument, NULL, 'n' },
                { "socket", required_argument, NULL, ARG_SOCKET }, { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },          {},
        };
        int k;

        while ((k = getopt_long(argc, argv, "+s:t:e:w:c:nh", opts, NULL)) >= 0)
                switch (k) {
                case ARG_SOCKET:
                        c->socket = optarg;
                        c->socket_origin = "from --socket";
                        break;
                case ARG_JSON:
                        break; /* exec's output is the command's own */
                case 's':
                        if (!session_id_valid(optarg)) {
                                usage_error("exec", "'%s' is not a session id", optarg);
                                return -EINVAL;
                        }
                        o->session = optarg;
                        break;
                case 't':
                        if (parse_duration_ms(optarg, &o->timeout_ms) < 0 || o->timeout_ms == 0) {
                                usage_error("exec", "bad timeout '%s' (e.g. 500ms, 30s, 2min)", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'e': {
                        char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg) {
                                usage_error("exec", "--env needs NAME=VALUE, not '%s'", optarg);
                                return -EINVAL;
                        }
                        *eq = 0;
                        json_object_set_new(o->env, optarg, json_string(eq + 1));
                        *eq = '=';
                        break;
                }
                case 'w':
                        o->cwd = optarg;
                        break;
                case 'c':
                        o->shell = optarg;
                        break;
                case 'n':
                        o->no_stdin = true;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        if (!o->shell && optind >= argc) {
                usage_error("exec", "no command given");
                return -EINVAL;
        }
        if (o->shell && optind < argc) {
                usage_error("exec", "give either --shell or a command, not both");
                return -EINVAL;
        }
        return 1;
}

/* stdin as a JSON string, NULL when there is none to send. */
static int read_stdin(json_t **ret) {
        _cleanup_free_ char *buf = malloc(STDIN_MAX + 1);
        size_t len = 0;
        ssize_t n;

        *ret = NULL;
        if (!buf)
                return -ENOMEM;
        while ((n = read(STDIN_FILENO, buf + len, STDIN_MAX + 1 - len)) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EBADF)
                                return 0; /* stdin closed: nothing to send */
                        return negative_errno();
                }
                len += (size_t) n;
                if (len > STDIN_MAX) {
                        fprintf(stderr, "sandpoolctl: stdin is larger than the %u KiB the API accepts in one "
                                        "request: upload it with 'sandpoolctl cp' and redirect from the file\n",
                                STDIN_MAX / 1024);
                        return -EFBIG;
                }
        }
        if (len == 0)
                return 0;
        if (memchr(buf, 0, len) || !(*ret = json_stringn(buf, len))) {
                fprintf(stderr, "sandpoolctl: stdin is binary (NUL bytes or invalid UTF-8), which the API cannot "
                                "carry: upload it with 'sandpoolctl cp' instead, or use -n\n");
                return -EINVAL;
        }
        return 0;
}

static int build_body(const exec_opts *o, char **argv, json_t **ret) {
        json_auto_t *b = json_pack("{s:b}", "stream", 1);
        json_t *in = NULL;
        int r;

        if (!b)
                return -ENOMEM;
        if (o->shell)
                json_object_set_new(b, "shell", json_string(o->shell));
        else {
                json_t *a = json_array();
                for (char **p = argv; *p; p++) {
                        json_t *s = json_string(*p);
                        if (!s) {
                                fprintf(stderr, "sandpoolctl: argument '%s' is not valid UTF-8\n", *p);
                                json_decref(a);
                                return -EINVAL;
                        }
                        json_array_append_new(a, s);
                }
                json_object_set_new(b, "argv", a);
        }
        if (o->cwd)
                json_object_set_new(b, "cwd", json_string(o->cwd));
        if (json_object_size(o->env) > 0)
                json_object_set(b, "env", o->env);
        if (o->timeout_ms)
                json_object_set_new(b, "timeout_ms", json_integer((json_int_t) o->timeout_ms));
        if (!o->no_stdin && !isatty(STDIN_FILENO)) {
                r = read_stdin(&in);
                if (r < 0)
                        return r;
                if (in)
                        json_object_set_new(b, "stdin", in);
        }
        *ret = json_incref(b);
        return 0;
}

static int write_all(int fd, const char *p, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* The exit status for an "exit" event or a buffered answer, with a line
 * on stderr for what the status alone does not say. */
static int exit_status(json_t *ev) {
        json_t *sig = json_object_get(ev, "signal");
        const char *err = json_str_or(ev, "error", NULL);
        char buf[32];

        if (err)
                fprintf(stderr, "sandpoolctl: %s\n", err);
        if (json_is_true(json_object_get(ev, "truncated")))
                fprintf(stderr, "sandpoolctl: the output was truncated at the daemon's max_output\n");
        if (json_is_true(json_object_get(ev, "oom_killed")))
                fprintf(stderr, "sandpoolctl: the command was killed: out of memory in its sandbox\n");
        if (json_is_true(json_object_get(ev, "session_ended")))
                fprintf(stderr, "sandpoolctl: the session ended while the command ran\n");
        if (json_is_true(json_object_get(ev, "timed_out"))) {
                fprintf(stderr, "sandpoolctl: the command timed out after %s and was killed\n",
                        format_duration_ms((uint64_t) json_int_or(ev, "duration_ms", 0), buf, sizeof(buf)));
                return EXIT_EXEC_TIMEOUT;
        }
        if (json_is_integer(sig) && json_integer_value(sig) > 0)
                return EXIT_EXEC_SIGNAL_BASE + (int) json_integer_value(sig);
        if (json_is_integer(json_object_get(ev, "exit_code")))
                return (int) (json_integer_value(json_object_get(ev, "exit_code")) & 0xff);
        fprintf(stderr, "sandpoolctl: the daemon gave no exit status\n");
        return EXIT_EXEC_CTL;
}

/* Output bytes of an event: "data" (text, invalid UTF-8 already replaced
 * by the daemon), or "data_b64" (exact bytes, for a daemon that sends
 * binary output that way). */
static int write_output(int fd, json_t *ev) {
        json_t *data = json_object_get(ev, "data"), *b64 = json_object_get(ev, "data_b64");

        if (json_is_string(b64)) {
                _cleanup_free_ char *raw = strndup(json_string_value(b64), json_string_length(b64));
                ssize_t n = raw ? base64_decode(raw, strlen(raw)) : -ENOMEM;
                if (n < 0) {
                        fprintf(stderr, "sandpoolctl: the daemon sent malformed base64 output\n");
                        return (int) n;
                }
                return write_all(fd, raw, (size_t) n);
        }
        if (json_is_string(data))
                return write_all(fd, json_string_value(data), json_string_length(data));
        return 0;
}

/* One NDJSON event: output goes out at once, exit sets *ret_status. */
static int handle_event(const char *line, size_t len, int *ret_status) {
        json_auto_t *ev = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
        const char *type = json_str_or(ev, "type", NULL);

        if (!type) {
                fprintf(stderr, "sandpoolctl: the daemon sent a malformed stream event\n");
                return -EPROTO;
        }
        if (streq(type, "stdout") || streq(type, "stderr"))
                return write_output(streq(type, "stdout") ? STDOUT_FILENO : STDERR_FILENO, ev);
        else if (streq(type, "exit"))
                *ret_status = exit_status(ev);
        else if (streq(type, "error")) {
                fprintf(stderr, "sandpoolctl: %s\n", json_str_or(ev, "message", "the command failed"));
                *ret_status = EXIT_EXEC_CTL;
        }
        return 0; /* "start" and future event types need nothing */
}

/* Read the NDJSON stream, line by line, as fast as it arrives. */
static int follow_stream(ctl *c, http_conn *conn, http_response *resp) {
        _cleanup_free_ char *line = NULL;
        size_t len = 0, cap = 0;
        int status = -1;
        char buf[16384];
        ssize_t n;

        while ((n = http_read_body(conn, resp, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] != '\n') {
                                if (len + 1 >= cap) {
                                        size_t ncap = cap ? cap * 2 : 4096;
                                        char *p = ncap <= LINE_MAX_BYTES ? realloc(line, ncap) : NULL;
                                        if (!p) {
                                                fprintf(stderr, "sandpoolctl: a stream event is too large\n");
                                                return EXIT_EXEC_CTL;
                                        }
                                        line = p;
                                        cap = ncap;
                                }
                                line[len++] = buf[i];
                                continue;
                        }
                        if (len > 0 && handle_event(line, len, &status) < 0)
                                return EXIT_EXEC_CTL;
                        len = 0;
                }
        }
        if (n < 0) {
                report_transport_error(c, (int) n, "exec");
                return EXIT_EXEC_CTL;
        }
        if (status < 0) {
                fprintf(stderr, "sandpoolctl: the stream ended before the command's exit status: did the daemon "
                                "stop? See 'journalctl -u sandpool'.\n");
                return EXIT_EXEC_CTL;
        }
        return status;
}

/* A daemon that answers with one buffered JSON object (no streaming). */
static int buffered_result(json_t *res) {
        json_t *o = json_object_get(res, "stdout"), *e = json_object_get(res, "stderr");

        if (json_is_string(o))
                (void) write_all(STDOUT_FILENO, json_string_value(o), json_string_length(o));
        if (json_is_string(e))
                (void) write_all(STDERR_FILENO, json_string_value(e), json_string_length(e));
        return exit_status(res);
}

static int run(ctl *c, const char *target, json_t *body) {
        _cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);
        http_response resp;
        http_conn *conn;
        int r;

        if (!text)
                return EXIT_EXEC_CTL;
        r = api_connection(c, &conn);
        if (r >= 0)
                r = http_send_head(conn, "POST", target, "application/json", (int64_t) strlen(text));
        if (r >= 0)
                r = http_send_body(conn, text, strlen(text));
        if (r >= 0 || r == -EPIPE || r == -ECONNRESET) /* an early refusal: read it (see api.c) */
                r = http_read_head(conn, &resp);
        if (r < 0) {
                report_transport_error(c, r, "exec");
                return EXIT_EXEC_CTL;
        }
        if (resp.status == 200 && strncmp(resp.content_type, "application/x-ndjson", 20) == 0)
                return follow_stream(c, conn, &resp);
        {
                api_reply rep = { .status = resp.status, .retry_after = resp.retry_after };
                memcpy(rep.content_type, resp.content_type, sizeof(rep.content_type));
                r = http_read_body_all(conn, &resp, 256u << 20, &rep.body, &rep.body_len);
                if (r < 0) {
                        report_transport_error(c, r, "exec");
                        return EXIT_EXEC_CTL;
                }
                rep.json = json_loadb(rep.body, rep.body_len, JSON_ALLOW_NUL, NULL);
                if (resp.status == 200 && json_is_object(rep.json))
                        r = buffered_result(rep.json);
                else {
                        report_http_error(c, &rep, "exec", true);
                        r = EXIT_EXEC_CTL;
                }
                api_reply_done(&rep);
                return r;
        }
}

int cmd_exec(ctl *c, int argc, char **argv) {
        json_auto_t *env = json_object(), *body = NULL;
        exec_opts o = { .env = env };
        char target[128];
        int r;

        r = parse_opts(c, argc, argv, &o);
        if (r <= 0)
                return r < 0 ? EXIT_EXEC_CTL : EXIT_OK; /* the command owns every other status */
        r = build_body(&o, argv + optind, &body);
        if (r < 0)
                return EXIT_EXEC_CTL;
        if (o.session)
                snprintf(target, sizeof(target), "/v1/sessions/%s/exec", o.session);
        else
                snprintf(target, sizeof(target), "/v1/run");
        return run(c, target, body);
}
