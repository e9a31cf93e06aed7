/* SPDX-License-Identifier: MIT */
/* The in-sandbox API of the E2B listener (e2b-envd.h): Connect RPC over
 * HTTP/1.1 in its JSON encoding, the process service on background
 * commands.
 *
 * Connect, as the SDK speaks it (useBinaryFormat: false): a unary call is
 * POST /package.Service/Method with a JSON body, answered 200 with JSON,
 * or with an error status and {"code": "not_found", "message": ...}. A
 * server-streaming call (process Start and Connect) has the content type
 * application/connect+json; its request and each answer message are
 * enveloped (one flags byte, a 32-bit big-endian length, the JSON), and
 * the stream ends with an envelope of flags 0x02 holding {} or
 * {"error": {...}}; its HTTP status is 200 whatever happens.
 *
 * Every process started here is a background command of its session, so
 * it outlives the stream that started it (an E2B process does), and
 * Connect is one more reader of it from the bytes it has not yet written.
 * Output goes as base64 bytes (protobuf's JSON of `bytes`). */
#include <inttypes.h>
#include <signal.h>

#include "e2b-envd.h"
#include "e2b-fs.h"
#include "exec-request.h"
#include "log.h"
#include "util.h"

#define STREAM_CHUNK (32 * 1024)
#define ENVELOPE_END 0x02

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- Connect ------------------------------------------------------------------- */

int e2b_base64_decode(const char *in, void **ret, size_t *ret_len) {
        size_t n = strlen(in), o = 0;
        uint32_t acc = 0;
        int bits = 0;
        unsigned char *out = malloc(n / 4 * 3 + 3);

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];
                int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
                        : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' || c == '-' ? 62
                        : c == '/' || c == '_' ? 63 : c == '=' ? -2 : -1;
                if (v == -2)
                        break;
                if (v < 0) {
                        free(out);
                        return -EINVAL;
                }
                acc = acc << 6 | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (unsigned char) (acc >> bits);
                }
        }
        *ret = out;
        *ret_len = o;
        return 0;
}

static size_t base64_encode(const unsigned char *p, size_t n, char *out) {
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t o = 0;

        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0) |
                             (i + 2 < n ? p[i + 2] : 0);
                out[o++] = tab[v >> 18 & 63];
                out[o++] = tab[v >> 12 & 63];
                out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
                out[o++] = i + 2 < n ? tab[v & 63] : '=';
        }
        return o;
}

json_t *e2b_connect_message(e2b_req *q) {
        const char *data = q->body ? q->body : "";
        size_t len = q->body_len;
        json_error_t jerr;
        json_t *m;

        if (q->too_large) {
                e2b_reply_connect_error(q, "resource_exhausted", "the message is larger than %u bytes", E2B_MAX_BODY);
                return NULL;
        }
        if (q->streaming) {
                const unsigned char *u = (const unsigned char *) data;
                if (len < 5 || (u[0] & 0x01) || 5 + ((size_t) u[1] << 24 | (size_t) u[2] << 16 | (size_t) u[3] << 8 | u[4]) != len) {
                        e2b_reply_connect_error(q, "invalid_argument", "not one uncompressed Connect envelope");
                        return NULL;
                }
                data += 5;
                len -= 5;
        }
        if (len == 0)
                return json_object();
        m = json_loadb(data, len, 0, &jerr);
        if (!json_is_object(m)) {
                json_decref(m);
                e2b_reply_connect_error(q, "invalid_argument", "the message is not a JSON object: %s", jerr.text);
                return NULL;
        }
        return m;
}

void e2b_connect_reply(e2b_req *q, json_t *msg) {
        e2b_reply_json(q, 200, msg);
}

/* One envelope, appended to a growing buffer. */
int e2b_envelope_append(char **buf, size_t *len, size_t *cap, unsigned flags, const char *json, size_t n) {
        if (*len + n + 5 > *cap) {
                size_t c = MAX(*cap * 2, *len + n + 5);
                char *b = realloc(*buf, c);
                if (!b)
                        return -ENOMEM;
                *buf = b;
                *cap = c;
        }
        char *w = *buf + *len;
        w[0] = (char) flags;
        w[1] = (char) (n >> 24);
        w[2] = (char) (n >> 16);
        w[3] = (char) (n >> 8);
        w[4] = (char) n;
        memcpy(w + 5, json, n);
        *len += n + 5;
        return 0;
}

void e2b_envd_stream_error(e2b_req *q, const char *code, const char *message) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        json_auto_t *end = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
        _cleanup_free_ char *s = end ? json_dumps(end, JSON_COMPACT) : NULL;

        if (!s || e2b_envelope_append(&buf, &len, &cap, ENVELOPE_END, s, strlen(s)) < 0)
                return e2b_reply(q, 500, NULL);
        struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_COPY);
        if (r)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/connect+json");
        e2b_reply(q, 200, r);
}

/* ---- a process's output stream (Start, Connect) ----------------------------------- */

typedef struct proc_stream proc_stream;
struct proc_stream {
        proc_stream *prev, *next; /* every live stream, for e2b_envd_stop_all() */
        e2b_req *q;
        command *c;            /* NULL once it is gone */
        command_reader *rd;
        uint64_t off[2];
        bool start_sent, ended, stopping;
        bool pty;              /* on a terminal: its output is "pty" data */
        bool keepalive_due;
        sd_event_source *keepalive; /* the client's Keepalive-Ping-Interval */
        uint64_t keepalive_usec;
        char *buf;             /* envelopes not yet taken by MHD */
        size_t len, pos, cap;
};

static proc_stream *streams;

static int push_json(proc_stream *ps, unsigned flags, json_t *o) {
        _cleanup_free_ char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

        json_decref(o);
        if (!s)
                return -ENOMEM;
        if (ps->pos == ps->len)
                ps->pos = ps->len = 0;
        return e2b_envelope_append(&ps->buf, &ps->len, &ps->cap, flags, s, strlen(s)) < 0 ? -ENOMEM : 1;
}

static int push_data(proc_stream *ps, int which, const unsigned char *p, size_t n) {
        _cleanup_free_ char *s = malloc(64 + (n + 2) / 3 * 4);
        size_t k;

        if (!s)
                return -ENOMEM;
        k = (size_t) sprintf(s, "{\"event\":{\"data\":{\"%s\":\"",
                             ps->pty ? "pty" : which == JOB_STDOUT ? "stdout" : "stderr");
        k += base64_encode(p, n, s + k);
        memcpy(s + k, "\"}}}", 4);
        k += 4;
        if (ps->pos == ps->len)
                ps->pos = ps->len = 0;
        return e2b_envelope_append(&ps->buf, &ps->len, &ps->cap, 0, s, k) < 0 ? -ENOMEM : 1;
}

static json_t *end_event(const job_result *res) {
        char status[64];
        json_t *end;

        if (res->signal)
                snprintf(status, sizeof(status), "signal: %s", sigabbrev_np(res->signal) ?: "?");
        else
                snprintf(status, sizeof(status), "exit status %d", res->exit_code);
        end = json_pack("{s:i,s:b,s:s}", "exitCode", res->signal ? -1 : res->exit_code, "exited", !res->signal,
                        "status", status);
        if (end && res->spawn_errno > 0)
                json_object_set_new(end, "error", json_string(strerror(res->spawn_errno)));
        else if (end && res->ended_by)
                json_object_set_new(end, "error", json_string(res->ended_by));
        return json_pack("{s:{s:o}}", "event", "end", end);
}

/* The next message: 1 queued, 0 nothing now, < 0 error. */
static int stream_next(proc_stream *ps) {
        unsigned char chunk[STREAM_CHUNK];
        command *c = ps->c;

        if (ps->keepalive_due) {
                /* a quiet process: something on the wire, so that no idle
                 * timeout on the way (undici's body timeout is 300 s) ends it */
                ps->keepalive_due = false;
                return push_json(ps, 0, json_pack("{s:{s:{}}}", "event", "keepalive"));
        }
        if (!ps->start_sent) {
                ps->start_sent = true;
                return push_json(ps, 0, json_pack("{s:{s:{s:I}}}", "event", "start", "pid",
                                                  (json_int_t) (c ? command_id(c) : 0)));
        }
        if (!c) {
                ps->ended = true;
                return push_json(ps, ENVELOPE_END, json_pack("{s:{s:s,s:s}}", "error", "code", "unavailable",
                                                             "message", "the sandbox ended under the process"));
        }
        for (int i = 0; i < 2; i++) {
                const outring *ring = command_ring(c, i);
                if (ps->off[i] < outring_start(ring))
                        ps->off[i] = outring_start(ring); /* lost to the ring's bound: E2B has no way to say so */
                if (ps->off[i] >= ring->total)
                        continue;
                size_t n = outring_read(ring, ps->off[i], chunk, sizeof(chunk));
                ps->off[i] += n;
                return push_data(ps, i, chunk, n);
        }
        if (command_exited(c)) {
                int k = push_json(ps, 0, end_event(command_result(c)));
                if (k < 0)
                        return k;
                ps->ended = true;
                return push_json(ps, ENVELOPE_END, json_object());
        }
        return 0;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *out, size_t max) {
        proc_stream *ps = cls;

        if (ps->q->aborted)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        for (;;) {
                if (ps->pos < ps->len) {
                        size_t n = MIN(max, ps->len - ps->pos);
                        memcpy(out, ps->buf + ps->pos, n);
                        ps->pos += n;
                        return (ssize_t) n;
                }
                if (ps->ended)
                        return MHD_CONTENT_READER_END_OF_STREAM;
                if (ps->stopping)
                        return MHD_CONTENT_READER_END_WITH_ERROR;
                int k = stream_next(ps);
                if (k < 0)
                        return MHD_CONTENT_READER_END_WITH_ERROR;
                if (k == 0) {
                        e2b_suspend(ps->q);
                        return 0;
                }
        }
}

static void stream_wake(command_reader *rd, void *userdata) {
        proc_stream *ps = userdata;

        e2b_resume(ps->q);
}

static void stream_gone(void *userdata) {
        proc_stream *ps = userdata;

        /* what is left of an exited command is queued while it is still here */
        while (!ps->ended && ps->c && command_exited(ps->c) && stream_next(ps) > 0)
                ;
        ps->rd = NULL;
        ps->c = NULL;
        e2b_resume(ps->q);
}

static const command_reader_ops stream_reader_ops = {
        .wake = stream_wake,
        .gone = stream_gone,
};

static int on_keepalive(sd_event_source *src, uint64_t usec, void *userdata) {
        proc_stream *ps = userdata;

        ps->keepalive_due = true;
        (void) sd_event_source_set_time_relative(src, ps->keepalive_usec);
        e2b_resume(ps->q);
        return 0;
}

static void stream_free(void *op) {
        proc_stream *ps = op;

        ps->keepalive = sd_event_source_disable_unref(ps->keepalive);
        command_reader_remove(ps->rd);
        if (ps->prev)
                ps->prev->next = ps->next;
        else
                streams = ps->next;
        if (ps->next)
                ps->next->prev = ps->prev;
        free(ps->buf);
        free(ps);
}

static const e2b_op_ops stream_op_ops = { .free = stream_free };

void e2b_envd_stop_all(void) {
        for (proc_stream *ps = streams; ps; ps = ps->next) {
                ps->stopping = true;
                e2b_resume(ps->q);
        }
}

static bool command_has_pty(const command *c) {
        json_auto_t *o = command_to_json(c);
        return json_is_true(json_object_get(o, "pty"));
}

/* Answer q with the stream of c, from off on. */
static void stream_start(e2b_req *q, command *c, const uint64_t off[2]) {
        proc_stream *ps = calloc(1, sizeof(*ps));

        if (!ps)
                return e2b_reply_connect_error(q, "internal", "out of memory");
        *ps = (proc_stream) { .q = q, .c = c, .off = { off[0], off[1] }, .pty = command_has_pty(c) };
        ps->next = streams;
        if (streams)
                streams->prev = ps;
        streams = ps;
        e2b_set_op(q, &stream_op_ops, ps);
        if (command_reader_add(c, &stream_reader_ops, ps, NULL, &ps->rd) < 0)
                return e2b_reply_connect_error(q, "internal", "out of memory");
        const char *ka = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Keepalive-Ping-Interval");
        unsigned long secs = ka ? strtoul(ka, NULL, 10) : 0;
        if (secs > 0) {
                ps->keepalive_usec = MIN(secs, 3600ul) * USEC_PER_SEC;
                if (sd_event_add_time_relative(q->srv->event, &ps->keepalive, CLOCK_MONOTONIC, ps->keepalive_usec,
                                               USEC_PER_SEC, on_keepalive, ps) >= 0)
                        (void) sd_event_source_set_enabled(ps->keepalive, SD_EVENT_ON); /* re-armed as it fires */
        }
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_reader, ps, NULL);
        if (r) {
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/connect+json");
                MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        }
        e2b_reply(q, 200, r);
}

/* ---- the process service ------------------------------------------------------------ */

/* The exec body sandpool's own API takes, from E2B's ProcessConfig. */
static json_t *exec_body(json_t *proc) {
        json_t *cmd = json_object_get(proc, "cmd"), *args = json_object_get(proc, "args");
        json_t *envs = json_object_get(proc, "envs"), *cwd = json_object_get(proc, "cwd");
        json_t *argv = json_array(), *v;
        size_t i;

        if (!argv || !json_is_string(cmd) || json_array_append(argv, cmd) < 0) {
                json_decref(argv);
                return NULL;
        }
        json_array_foreach(args, i, v) {
                json_array_append(argv, v);
        }
        json_t *b = json_pack("{s:o,s:b}", "argv", argv, "background", true);
        if (b && json_is_object(envs) && json_object_size(envs) > 0)
                json_object_set(b, "env", envs);
        if (b && json_is_string(cwd) && json_string_length(cwd) > 0)
                json_object_set(b, "cwd", cwd);
        return b;
}

static void process_start(e2b_req *q, session *s, json_t *msg) {
        json_t *proc = json_object_get(msg, "process"), *pty = json_object_get(msg, "pty");
        json_t *size = json_object_get(pty, "size");
        _cleanup_close_ int master = -EBADF, slave = -EBADF;
        json_auto_t *body = NULL;
        exec_params p = {};
        sp_error err = {};
        command_set *set;
        command *c;
        job *j;

        if (pty && !json_is_null(pty)) {
                /* a terminal of its own devpts (runtime/pty.c), as sandpool's PTY commands */
                json_int_t rows = json_integer_value(json_object_get(size, "rows"));
                json_int_t cols = json_integer_value(json_object_get(size, "cols"));
                if (rows < 1 || rows > 1000 || cols < 1 || cols > 1000)
                        return e2b_reply_connect_error(q, "invalid_argument", "'pty.size' needs rows and cols from 1 to 1000");
                if (sp_sandbox_open_pty(s->sb, (unsigned) rows, (unsigned) cols, SP_SANDBOX_UID, &master, &slave, &err) < 0)
                        return e2b_reply_connect_error(q, "internal", "cannot open a terminal: %s", err.message);
        }
        if (!json_is_object(proc) || !(body = exec_body(proc)))
                return e2b_reply_connect_error(q, "invalid_argument", "'process.cmd' must be a string");
        int k = exec_params_from_json(q->srv, s, body, &p, &err);
        if (k < 0) {
                exec_params_done(&p);
                return e2b_reply_connect_error(q, "invalid_argument", "%s", err.message);
        }
        set = session_command_set(s);
        if (!set || command_set_reserve(set) < 0) {
                exec_params_done(&p);
                return e2b_reply_connect_error(q, "resource_exhausted", "the sandbox has %u processes running",
                                               q->srv->config.cfg.max_commands);
        }
        job_spec spec = {
                .argv = p.argv, .envp = p.envp, .cwd = p.cwd, .timeout_ms = 0, .max_output = UINT64_MAX,
                .background = true, .stdin_pipe = master >= 0 || json_is_true(json_object_get(msg, "stdin")),
                .pty = master >= 0, .pty_master = master, .pty_slave = slave,
        };
        k = session_exec(s, &spec, &j, &err);
        if (k < 0) {
                exec_params_done(&p);
                return e2b_reply_connect_error(q, k == -E2BIG ? "invalid_argument" : "unavailable",
                                               "cannot start the process: %s", err.message);
        }
        k = command_set_add(set, j, p.argv, p.max_output, master >= 0, &c);
        exec_params_done(&p);
        if (k < 0) {
                (void) job_signal(j, SIGKILL);
                return e2b_reply_connect_error(q, "internal", "out of memory");
        }
        q->srv->metrics.background_started++;
        stream_start(q, c, (const uint64_t[2]) { 0, 0 });
}

/* The process of {"process": {"pid": N}}, or NULL after replying. */
static command *process_selected(e2b_req *q, session *s, json_t *msg) {
        json_t *sel = json_object_get(msg, "process"), *pid = json_object_get(sel, "pid");
        command *c;

        if (json_object_get(sel, "tag"))
                return e2b_reply_connect_error(q, "unimplemented", "sandpool does not select processes by tag"), NULL;
        if (!json_is_integer(pid) || json_integer_value(pid) < 0) {
                e2b_reply_connect_error(q, "invalid_argument", "'process.pid' must be a number");
                return NULL;
        }
        c = s->commands ? command_set_find(s->commands, (uint64_t) json_integer_value(pid)) : NULL;
        if (!c)
                e2b_reply_connect_error(q, "not_found", "process with pid %" JSON_INTEGER_FORMAT " not found",
                                        json_integer_value(pid));
        return c;
}

static void process_connect(e2b_req *q, session *s, json_t *msg) {
        command *c = process_selected(q, s, msg);

        if (!c)
                return;
        /* from what it writes next, as envd does */
        stream_start(q, c, (const uint64_t[2]) { command_ring(c, 0)->total, command_ring(c, 1)->total });
}

static void process_list(e2b_req *q, session *s) {
        json_auto_t *all = command_set_to_json(s->commands);
        json_t *list = json_array(), *c;
        size_t i;

        json_array_foreach(json_object_get(all, "commands"), i, c) {
                json_t *argv = json_object_get(c, "argv");
                if (!streq(json_string_value(json_object_get(c, "state")) ?: "", "running"))
                        continue;
                json_t *args = json_array();
                for (size_t a = 1; a < json_array_size(argv); a++)
                        json_array_append(args, json_array_get(argv, a));
                json_array_append_new(list, json_pack("{s:O,s:{s:O,s:o,s:{}}}", "pid", json_object_get(c, "id"),
                                                      "config", "cmd", json_array_get(argv, 0), "args", args,
                                                      "envs"));
        }
        e2b_connect_reply(q, json_pack("{s:o}", "processes", list));
}

static void process_input(e2b_req *q, session *s, json_t *msg, bool close) {
        command *c = process_selected(q, s, msg);
        _cleanup_free_ void *data = NULL;
        size_t n = 0;
        job *j;

        if (!c)
                return;
        if (!close) {
                json_t *in = json_object_get(msg, "input");
                /* a terminal's input goes to its master, which is the job's stdin */
                const char *b64 = json_string_value(json_object_get(in, "stdin"))
                                      ?: json_string_value(json_object_get(in, "pty"));
                if (!b64 || e2b_base64_decode(b64, &data, &n) < 0)
                        return e2b_reply_connect_error(q, "invalid_argument", "'input.stdin' or 'input.pty' must be base64 bytes");
        }
        j = command_job(c);
        if (!j)
                return e2b_reply_connect_error(q, "not_found", "process %" PRIu64 " has exited", command_id(c));
        int k = job_write_stdin(j, data, n, close);
        if (k == -EPIPE)
                return e2b_reply_connect_error(q, "failed_precondition",
                                               "the stdin of process %" PRIu64 " is closed (start it with stdin: true)",
                                               command_id(c));
        if (k == -ENOBUFS)
                return e2b_reply_connect_error(q, "resource_exhausted", "the process does not read its stdin");
        if (k < 0)
                return e2b_reply_connect_error(q, "internal", "cannot write to stdin: %s", strerror(-k));
        e2b_connect_reply(q, json_object());
}

static void process_signal(e2b_req *q, session *s, json_t *msg) {
        command *c = process_selected(q, s, msg);
        json_t *sig = json_object_get(msg, "signal");
        int signo = 0;
        job *j;

        if (!c)
                return;
        if (json_is_integer(sig))
                signo = (int) json_integer_value(sig);
        else if (json_is_string(sig))
                signo = streq(json_string_value(sig), "SIGNAL_SIGKILL") ? SIGKILL
                        : streq(json_string_value(sig), "SIGNAL_SIGTERM") ? SIGTERM : 0;
        if (signo != SIGKILL && signo != SIGTERM)
                return e2b_reply_connect_error(q, "invalid_argument", "'signal' must be SIGNAL_SIGKILL or SIGNAL_SIGTERM");
        j = command_job(c);
        if (!j || job_signal(j, signo) == -ESRCH)
                return e2b_reply_connect_error(q, "not_found", "process %" PRIu64 " has exited", command_id(c));
        e2b_connect_reply(q, json_object());
}

static void process_update(e2b_req *q, session *s, json_t *msg) {
        command *c = process_selected(q, s, msg);
        json_t *size = json_object_get(json_object_get(msg, "pty"), "size");
        json_int_t rows = json_integer_value(json_object_get(size, "rows"));
        json_int_t cols = json_integer_value(json_object_get(size, "cols"));
        job *j;

        if (!c)
                return;
        if (rows < 1 || rows > 1000 || cols < 1 || cols > 1000)
                return e2b_reply_connect_error(q, "invalid_argument", "'pty.size' needs rows and cols from 1 to 1000");
        j = command_job(c);
        if (!j)
                return e2b_reply_connect_error(q, "not_found", "process %" PRIu64 " has exited", command_id(c));
        int k = job_resize(j, (unsigned) rows, (unsigned) cols);
        if (k == -ENOTTY)
                return e2b_reply_connect_error(q, "failed_precondition", "process %" PRIu64 " has no terminal",
                                               command_id(c));
        if (k < 0)
                return e2b_reply_connect_error(q, "internal", "cannot resize the terminal: %s", strerror(-k));
        e2b_connect_reply(q, json_object());
}

static void process_rpc(e2b_req *q, session *s, const char *name, json_t *msg) {
        if (streq(name, "Start"))
                return process_start(q, s, msg);
        if (streq(name, "Connect"))
                return process_connect(q, s, msg);
        if (streq(name, "List"))
                return process_list(q, s);
        if (streq(name, "SendInput"))
                return process_input(q, s, msg, false);
        if (streq(name, "CloseStdin"))
                return process_input(q, s, msg, true);
        if (streq(name, "SendSignal"))
                return process_signal(q, s, msg);
        if (streq(name, "Update"))
                return process_update(q, s, msg);
        e2b_reply_connect_error(q, "unimplemented", "sandpool does not implement process.Process/%s "
                                "(client-streamed input)", name);
}

/* ---- routing ----------------------------------------------------------------------- */

static int discard_upload(e2b_req *q, const char *data, size_t n) {
        return 0;
}

void e2b_envd_begin(e2b_req *q) {
        const char *ct = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);

        q->streaming = ct && startswith(ct, "application/connect+");
        if (streq(q->url, "/files") && streq(q->method, "POST")) {
                session *s = e2b_envd_session(q);
                if (!s) {
                        q->handled = true; /* the reply is ready; the body goes nowhere */
                        q->upload = discard_upload;
                        return;
                }
                e2b_fs_write_begin(q);
        }
}

void e2b_envd_dispatch(e2b_req *q) {
        json_auto_t *msg = NULL;
        session *s;

        if (streq(q->url, "/health"))
                return e2b_reply(q, 204, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
        s = e2b_envd_session(q);
        if (!s)
                return;
        if (streq(q->url, "/files")) {
                if (streq(q->method, "GET"))
                        return e2b_fs_read(q, s);
                if (streq(q->method, "POST"))
                        return e2b_fs_write_end(q, s);
                return e2b_reply_error(q, 405, "GET or POST /files");
        }
        if (!startswith(q->url, "/process.Process/") && !startswith(q->url, "/filesystem.Filesystem/"))
                return e2b_reply_connect_error(q, "unimplemented", "sandpool does not implement %s", q->url);
        if (!streq(q->method, "POST"))
                return e2b_reply_connect_error(q, "unimplemented", "Connect calls are POST");
        msg = e2b_connect_message(q);
        if (!msg)
                return;
        if (startswith(q->url, "/process.Process/"))
                return process_rpc(q, s, q->url + strlen("/process.Process/"), msg);
        e2b_fs_rpc(q, s, q->url + strlen("/filesystem.Filesystem/"), msg);
}
