/* SPDX-License-Identifier: MIT */
/* JSON-RPC 2.0 over stdio for MCP, written from the specification
 * (modelcontextprotocol.io, revision 2025-11-25): each message is one line
 * of UTF-8 JSON without embedded newlines; stdout carries nothing else
 * (diagnostics go to stderr). One tool call runs at a time: while it runs,
 * the client's messages are still read, so that a ping is answered, a
 * notifications/cancelled stops the command (dropping the daemon
 * connection kills it), and a closed stdin ends everything; any other
 * request waits its turn. */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "build-config.h"
#include "mcp.h"

#define MESSAGE_MAX (96u * 1024u * 1024u) /* a write_file of max_upload (64M) in base64 */

enum {
        JSONRPC_PARSE_ERROR = -32700,
        JSONRPC_INVALID_REQUEST = -32600,
        JSONRPC_METHOD_NOT_FOUND = -32601,
        JSONRPC_INVALID_PARAMS = -32602,
        JSONRPC_INTERNAL_ERROR = -32603,
};

const char *const mcp_protocol_versions[] = { "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", NULL };

static const char *const log_levels[] = { "debug", "info", "notice", "warning", "error", "critical", "alert",
                                          "emergency", NULL };

typedef struct mcp_server {
        ctl *c;
        mcp_tools *tools;
        int in_fd;
        FILE *out;
        char *in;             /* bytes read, not yet a whole line */
        size_t in_len, in_cap;
        bool in_discarding;   /* inside a line longer than MESSAGE_MAX */
        bool in_eof, out_broken;
        json_t *queue;        /* requests and notifications waiting their turn */
        bool initialized;
        int log_level;        /* index in log_levels; messages below are not sent */
        json_t *call_id;      /* the tools/call running, NULL when none */
        json_t *call_token;   /* its progressToken */
        bool call_cancelled;
} mcp_server;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
        stop_signal = sig;
}

/* ---- output ---- */

static void send_message(mcp_server *m, json_t *msg) {
        _cleanup_free_ char *text = NULL;

        if (!msg)
                return;
        text = json_dumps(msg, JSON_COMPACT);
        json_decref(msg);
        if (!text || m->out_broken)
                return;
        /* JSON_COMPACT escapes control characters: one line per message */
        if (fputs(text, m->out) < 0 || fputc('\n', m->out) < 0 || fflush(m->out) != 0)
                m->out_broken = true;
}

static void send_result(mcp_server *m, json_t *id, json_t *result) {
        send_message(m, json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result", result ? result : json_object()));
}

_printf_(4, 5) static void send_error(mcp_server *m, json_t *id, int code, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        send_message(m, json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error",
                                  "code", code, "message", msg));
}

static void send_notification(mcp_server *m, const char *method, json_t *params) {
        send_message(m, json_pack("{s:s,s:s,s:o}", "jsonrpc", "2.0", "method", method, "params", params));
}

/* ---- callbacks for the tools ---- */

static void handle_input(mcp_server *m, bool in_call);

static int call_wait(void *userdata, int fd, bool buffered, int timeout_ms) {
        mcp_server *m = userdata;
        struct pollfd p[2] = { { .fd = m->in_eof ? -1 : m->in_fd, .events = POLLIN }, { .fd = fd, .events = POLLIN } };

        /* A closed stdin alone lets the running call finish (the client
         * shuts down; its answer may still be read, and 'printf ... |
         * sandpoolctl mcp' works): a broken stdout or a signal stops it. */
        if (m->call_cancelled)
                return -ECANCELED;
        if (m->out_broken || stop_signal)
                return -ENOTCONN;
        if (poll(p, 2, buffered ? 0 : timeout_ms) < 0 && errno != EINTR)
                return negative_errno();
        if (p[0].revents)
                handle_input(m, true);
        if (m->call_cancelled)
                return -ECANCELED;
        if (m->out_broken || stop_signal)
                return -ENOTCONN;
        return buffered || p[1].revents ? 1 : 0;
}

static void call_progress(void *userdata, double progress, double total, const char *message) {
        mcp_server *m = userdata;
        json_t *params;

        if (!m->call_token)
                return;
        params = json_pack("{s:O,s:f,s:s}", "progressToken", m->call_token, "progress", progress, "message", message);
        if (params && total > 0)
                json_object_set_new(params, "total", json_real(total));
        send_notification(m, "notifications/progress", params);
}

static void call_log(void *userdata, const char *level, const char *message) {
        mcp_server *m = userdata;
        int l = 0;

        while (log_levels[l] && !streq(log_levels[l], level))
                l++;
        if (!log_levels[l] || l < m->log_level)
                return;
        send_notification(m, "notifications/message",
                          json_pack("{s:s,s:s,s:s}", "level", level, "logger", "sandpoolctl", "data", message));
}

/* ---- methods ---- */

static const char *negotiate(const char *asked) {
        for (size_t i = 0; asked && mcp_protocol_versions[i]; i++)
                if (streq(asked, mcp_protocol_versions[i]))
                        return mcp_protocol_versions[i];
        return mcp_protocol_versions[0];
}

static void method_initialize(mcp_server *m, json_t *id, json_t *params) {
        const char *asked = json_str_or(params, "protocolVersion", NULL);

        if (!asked)
                return send_error(m, id, JSONRPC_INVALID_PARAMS, "initialize needs params.protocolVersion");
        m->initialized = true;
        send_result(m, id,
                    json_pack("{s:s,s:{s:{s:b},s:{}},s:{s:s,s:s,s:s},s:s}", "protocolVersion", negotiate(asked),
                              "capabilities", "tools", "listChanged", false, "logging", "serverInfo", "name",
                              "sandpool", "title", "sandpool sandboxes", "version", SANDPOOL_VERSION,
                              "instructions",
                              "Each tool runs in one Linux sandbox of sandpool kept for this connection: files and "
                              "background processes stay between calls until 'reset'. No network; memory, CPU, "
                              "processes, disk and time are limited. The sandbox user's home is /home/sandbox."));
}

static void method_tools_call(mcp_server *m, json_t *id, json_t *params) {
        const char *name = json_str_or(params, "name", NULL);
        json_t *meta = json_object_get(params, "_meta"), *token = json_object_get(meta, "progressToken");
        json_t *result = NULL;
        mcp_call call = { call_wait, call_progress, call_log, m };
        int r;

        if (!name)
                return send_error(m, id, JSONRPC_INVALID_PARAMS, "tools/call needs params.name");
        if (!mcp_tools_known(name))
                return send_error(m, id, JSONRPC_INVALID_PARAMS, "Unknown tool: %s", name);
        m->call_id = id;
        m->call_token = json_is_string(token) || json_is_integer(token) ? token : NULL;
        m->call_cancelled = false;
        r = mcp_tools_call(m->tools, &call, name, json_object_get(params, "arguments"), &result);
        m->call_id = m->call_token = NULL;
        if (r == -ECANCELED || r == -ENOTCONN)
                return; /* a cancelled request gets no answer; a gone client none either */
        if (r < 0)
                return send_error(m, id, JSONRPC_INTERNAL_ERROR, "%s: %s", name, strerror(-r));
        send_result(m, id, result);
}

static void method_set_level(mcp_server *m, json_t *id, json_t *params) {
        const char *level = json_str_or(params, "level", NULL);

        for (int l = 0; level && log_levels[l]; l++)
                if (streq(log_levels[l], level)) {
                        m->log_level = l;
                        return send_result(m, id, json_object());
                }
        send_error(m, id, JSONRPC_INVALID_PARAMS, "unknown log level '%s'", level ? level : "(none)");
}

static void handle_request(mcp_server *m, const char *method, json_t *id, json_t *params) {
        if (streq(method, "ping"))
                return send_result(m, id, json_object());
        if (streq(method, "initialize"))
                return method_initialize(m, id, params);
        if (!m->initialized)
                return send_error(m, id, JSONRPC_INVALID_REQUEST, "not initialized: send initialize first");
        if (streq(method, "tools/list"))
                return send_result(m, id, json_pack("{s:o}", "tools", mcp_tools_list()));
        if (streq(method, "tools/call"))
                return method_tools_call(m, id, params);
        if (streq(method, "logging/setLevel"))
                return method_set_level(m, id, params);
        send_error(m, id, JSONRPC_METHOD_NOT_FOUND, "Method not found: %s", method);
}

/* A request's id: a string or an integer (JSON-RPC allows more; MCP does not). */
static bool id_valid(json_t *id) {
        return json_is_string(id) || json_is_integer(id);
}

static void handle_message(mcp_server *m, json_t *msg) {
        json_t *id = json_object_get(msg, "id"), *params = json_object_get(msg, "params");
        const char *method = json_str_or(msg, "method", NULL);

        if (!method) {
                /* a response (this server sends no requests, so nothing waits
                 * for it), or a message that is neither request nor response */
                if (!json_object_get(msg, "result") && !json_object_get(msg, "error"))
                        send_error(m, id_valid(id) ? id : NULL, JSONRPC_INVALID_REQUEST,
                                   "neither a request (method) nor a response (result or error)");
                return;
        }
        if (params && !json_is_object(params))
                return id ? send_error(m, id, JSONRPC_INVALID_PARAMS, "params must be an object") : (void) 0;
        if (!id) {
                /* notifications: initialized, cancelled (of a call no longer running), roots... */
                return;
        }
        handle_request(m, method, id, params);
}

/* A message that arrived: checked, then answered at once (ping, during a
 * call), noted (a cancellation of the running call) or queued. */
static void accept_message(mcp_server *m, const char *line, size_t len, bool in_call) {
        json_error_t e;
        json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e), *id;
        const char *method;

        if (!msg)
                return send_error(m, NULL, JSONRPC_PARSE_ERROR, "Parse error: %s", e.text);
        id = json_object_get(msg, "id");
        method = json_str_or(msg, "method", NULL);
        if (json_is_array(msg))
                send_error(m, NULL, JSONRPC_INVALID_REQUEST, "batches are not part of this protocol revision");
        else if (!json_is_object(msg) || !streq_ptr(json_str_or(msg, "jsonrpc", NULL), "2.0"))
                send_error(m, id_valid(id) ? id : NULL, JSONRPC_INVALID_REQUEST, "not a JSON-RPC 2.0 message");
        else if (json_object_get(msg, "method") && !method)
                send_error(m, id_valid(id) ? id : NULL, JSONRPC_INVALID_REQUEST, "method must be a string");
        else if (method && id && !id_valid(id))
                send_error(m, NULL, JSONRPC_INVALID_REQUEST, "id must be a string or an integer");
        else if (in_call && method && id && streq(method, "ping"))
                send_result(m, id, json_object());
        else if (in_call && method && !id && streq(method, "notifications/cancelled") && m->call_id &&
                 json_equal(json_object_get(json_object_get(msg, "params"), "requestId"), m->call_id))
                m->call_cancelled = true;
        else {
                json_array_append_new(m->queue, msg);
                return;
        }
        json_decref(msg);
}

/* Read what stdin has (poll said so) and take each whole line. */
static void handle_input(mcp_server *m, bool in_call) {
        char buf[65536];
        ssize_t n = read(m->in_fd, buf, sizeof(buf));

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                m->in_eof = true;
                return;
        }
        for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == '\n') {
                        if (!m->in_discarding && m->in_len > 0)
                                accept_message(m, m->in, m->in_len, in_call);
                        m->in_discarding = false;
                        m->in_len = 0;
                        continue;
                }
                if (m->in_discarding)
                        continue;
                if (m->in_len + 1 > MESSAGE_MAX) {
                        send_error(m, NULL, JSONRPC_INVALID_REQUEST, "message longer than %u bytes", MESSAGE_MAX);
                        m->in_discarding = true;
                        continue;
                }
                if (m->in_len + 1 > m->in_cap) {
                        size_t cap = MAX(m->in_cap * 2, (size_t) 65536);
                        char *p = realloc(m->in, cap);
                        if (!p) {
                                send_error(m, NULL, JSONRPC_INTERNAL_ERROR, "out of memory");
                                m->in_discarding = true;
                                continue;
                        }
                        m->in = p;
                        m->in_cap = cap;
                }
                m->in[m->in_len++] = buf[i];
        }
}

static void install_signals(void) {
        struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: poll() returns */

        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        /* a client that closed our stdout is an error to notice, not a kill */
        signal(SIGPIPE, SIG_IGN);
}

int mcp_serve(ctl *c, const mcp_tools_options *o, int in_fd, FILE *out) {
        mcp_server m = { .c = c, .in_fd = in_fd, .out = out, .log_level = 2 /* notice: "session created" (info) after logging/setLevel info */ };
        int r;

        m.queue = json_array();
        if (!m.queue || mcp_tools_new(c, o, &m.tools) < 0) {
                fprintf(stderr, "sandpoolctl mcp: out of memory\n");
                json_decref(m.queue);
                return EXIT_FAIL;
        }
        install_signals();
        while (!stop_signal && !m.out_broken) {
                if (json_array_size(m.queue) > 0) {
                        json_t *msg = json_incref(json_array_get(m.queue, 0));
                        json_array_remove(m.queue, 0);
                        handle_message(&m, msg);
                        json_decref(msg);
                        continue;
                }
                if (m.in_eof)
                        break;
                struct pollfd p = { .fd = in_fd, .events = POLLIN };
                r = poll(&p, 1, mcp_tools_keepalive_ms(m.tools));
                if (r < 0 && errno != EINTR)
                        break;
                if (r == 0)
                        mcp_tools_keepalive(m.tools);
                else if (r > 0)
                        handle_input(&m, false);
        }
        mcp_tools_free(m.tools); /* ends the session this server created */
        json_decref(m.queue);
        free(m.in);
        return EXIT_OK;
}

/* ---- the subcommand ---- */

static void help(void) {
        printf("Usage: sandpoolctl mcp [--session ID] [--template NAME] [--max-output SIZE]\n"
               "\n"
               "A Model Context Protocol server on stdin/stdout (JSON-RPC 2.0, one message a line,\n"
               "protocol revisions %s back to %s). Its tools run in one session of sandpoold,\n"
               "created on the first call that needs it and ended when the client disconnects:\n"
               "run_command, run_python, run_node, write_file, read_file, list_files, reset.\n"
               "\n"
               "  -s, --session ID       use this existing session (not ended on exit, no reset)\n"
               "  -T, --template NAME    create the session from this template (the daemon decides)\n"
               "  -m, --max-output SIZE  keep at most SIZE bytes of each stream of a command and of\n"
               "                         a file read (default 64K; K/M suffixes); the rest is\n"
               "                         dropped and the result says so\n"
               "\n"
               "For an MCP client's configuration:\n"
               "  {\"mcpServers\": {\"sandpool\": {\"command\": \"sandpoolctl\", \"args\": [\"mcp\"]}}}\n",
               mcp_protocol_versions[0], mcp_protocol_versions[3]);
}

static int parse_size(const char *s, size_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || s[0] == '-')
                return -EINVAL;
        if (*end == 'K' || *end == 'k')
                v <<= 10, end++;
        else if (*end == 'M' || *end == 'm')
                v <<= 20, end++;
        if (*end || v == 0 || v > (64ull << 20))
                return -EINVAL;
        *ret = (size_t) v;
        return 0;
}

int cmd_mcp(ctl *c, int argc, char **argv) {
        static const struct option opts[] = {
                { "session", required_argument, NULL, 's' },    { "template", required_argument, NULL, 'T' },
                { "max-output", required_argument, NULL, 'm' }, { "help", no_argument, NULL, 'h' },
                {},
        };
        mcp_tools_options o = { .max_output = 64u * 1024u };
        int k;

        while ((k = getopt_long(argc, argv, "+s:T:m:h", opts, NULL)) >= 0)
                switch (k) {
                case 's':
                        if (!session_id_valid(optarg)) {
                                usage_error("mcp", "'%s' is not a session id", optarg);
                                return EXIT_USAGE;
                        }
                        o.session = optarg;
                        break;
                case 'T':
                        o.template = optarg;
                        break;
                case 'm':
                        if (parse_size(optarg, &o.max_output) < 0) {
                                usage_error("mcp", "bad size '%s' (e.g. 64K, 1M; at most 64M)", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                usage_error("mcp", "unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        if (o.session && o.template) {
                usage_error("mcp", "--template makes a new session: it does not go with --session");
                return EXIT_USAGE;
        }
        c->timeout_ms = 60000; /* for each answer; a command's stream is read apart */
        return mcp_serve(c, &o, STDIN_FILENO, stdout);
}
