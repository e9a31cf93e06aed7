/* SPDX-License-Identifier: MIT */
/* Background commands of a session over HTTP (docs/api.md, "Background
 * commands"): start one, list them, read a command's output from a byte
 * offset (and follow it), write its stdin, signal it. The commands and
 * their rings are command.c's; this file only turns them into JSON and
 * NDJSON, and a reader of the ring into a chunked response. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>

#include "api-commands.h"
#include "api-exec.h"
#include "api-tenants.h"
#include "command.h"
#include "exec-request.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "ws.h"

static const char *const stream_names[2] = {"stdout", "stderr"};

/* Bytes of output in one NDJSON event: large enough for throughput, small
 * enough that a reader's line stays small. */
#define OUTPUT_CHUNK (32u * 1024u)

/* ---- helpers ------------------------------------------------------------------- */

/* The command named by the segment after /commands/ in the URL, or NULL
 * after replying 404. */
static command *command_from_url(request *r) {
        const char *p = strstr(r->url, "/commands/");
        char *end;

        if (p) {
                p += strlen("/commands/");
                errno = 0;
                uint64_t id = strtoull(p, &end, 10);
                if (!errno && end != p && (*end == 0 || *end == '/') && *p != '-') {
                        command *c = command_set_find(r->session->commands, id);
                        if (c)
                                return c;
                }
        }
        reply_error(r, 404, "not_found", "no such command in session %s", r->session->id);
        return NULL;
}

static const char *query_arg(request *r, const char *key) {
        return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* ?key=N: 0 and *ret (untouched when absent), or -EINVAL after replying 400. */
static int query_u64(request *r, const char *key, uint64_t *ret) {
        const char *v = query_arg(r, key);
        char *end;

        if (!v)
                return 0;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || end == v || *end || *v == '-') {
                reply_error(r, 400, "bad_request", "'%s' must be a non-negative integer", key);
                return -EINVAL;
        }
        *ret = n;
        return 0;
}

static int query_bool(request *r, const char *key, bool *ret) {
        const char *v = query_arg(r, key);

        if (!v)
                return 0;
        if (streq(v, "true") || streq(v, "1") || streq(v, ""))
                *ret = true;
        else if (streq(v, "false") || streq(v, "0"))
                *ret = false;
        else {
                reply_error(r, 400, "bad_request", "'%s' must be true or false", key);
                return -EINVAL;
        }
        return 0;
}

/* ---- POST /v1/sessions/{id}/commands ------------------------------------------- */

/* The body of exec, with background true (the default here). */
static int commands_params(request *r, exec_params *p) {
        json_auto_t *body = request_json_body(r, false);
        sp_error err = {};
        json_t *bg;

        if (!body)
                return -EINVAL;
        bg = json_object_get(body, "background");
        if (json_is_false(bg)) {
                reply_error(r, 400, "bad_request", "a foreground command is run with POST /v1/sessions/{id}/exec");
                return -EINVAL;
        }
        if (!bg && json_object_set_new(body, "background", json_true()) < 0)
                return reply_error(r, 500, "internal", "out of memory"), -ENOMEM;
        int k = exec_params_from_json(r->srv, r->session, body, p, &err);
        if (k == 0 && p->stream)
                k = sp_error_set(&err, -EINVAL, "'stream' is for exec: a background command's output is read with "
                                                "GET .../commands/{cid}/output");
        if (k == -EINVAL)
                reply_error(r, 400, "bad_request", "%s", err.message);
        else if (k < 0)
                reply_error(r, 500, "internal", "out of memory");
        return k < 0 ? k : 0;
}

/* A terminal wants a TERM: xterm's, unless the request named one. */
static int envp_add_term(exec_params *p) {
        size_t n = 0;

        for (; p->envp[n]; n++)
                if (strncmp(p->envp[n], "TERM=", 5) == 0)
                        return 0;
        char **v = realloc(p->envp, (n + 2) * sizeof(char *));
        if (!v)
                return -ENOMEM;
        p->envp = v;
        v[n + 1] = NULL;
        v[n] = strdup("TERM=xterm-256color");
        return v[n] ? 0 : -ENOMEM;
}

void api_commands_create(request *r) {
        session *s = r->session;
        exec_params p = {};
        sp_error err = {};
        _cleanup_close_ int master = -EBADF, slave = -EBADF;
        command_set *set;
        command *c;
        job *j;
        int k;

        if (commands_params(r, &p) < 0)
                return exec_params_done(&p);
        /* a background command is a command: the tier's quotas and ceiling */
        tenant_refusal q;
        if (tenant_admit_command(r->srv, r->cl->uid, r->cl->gid, true, &q) < 0) {
                exec_params_done(&p);
                return reply_quota_exceeded(r, &q);
        }
        p.timeout_ms = tenant_cap_timeout(r->srv, r->cl->uid, r->cl->gid, p.timeout_ms);
        set = session_command_set(s);
        if (!set) {
                exec_params_done(&p);
                return reply_error(r, 500, "internal", "out of memory");
        }
        if (command_set_reserve(set) < 0) {
                exec_params_done(&p);
                return reply_error(r, 409, "conflict", "the session has %u background commands running (max_commands)",
                                   r->srv->config.cfg.max_commands);
        }
        if (p.pty) {
                if (!s->sb || envp_add_term(&p) < 0 ||
                    (k = sp_sandbox_open_pty(s->sb, p.rows, p.cols, SP_SANDBOX_UID, &master, &slave, &err)) < 0) {
                        exec_params_done(&p);
                        return reply_error(r, 500, "internal", "cannot open a terminal: %s",
                                           err.message[0] ? err.message : "out of memory");
                }
        }
        job_spec spec = {
                .argv = p.argv, .envp = p.envp, .cwd = p.cwd, .stdin_data = p.stdin_data, .stdin_len = p.stdin_len,
                .timeout_ms = p.timeout_ms, .max_output = UINT64_MAX, /* the ring bounds what is kept */
                .background = true, .stdin_pipe = true,
                .pty = p.pty, .pty_master = master, .pty_slave = slave,
        };
        k = session_exec(s, &spec, &j, &err);
        if (k < 0) {
                exec_params_done(&p);
                tenant_refund_command(r->srv, r->cl->uid);
                return api_reply_spawn_error(r, k, &err);
        }
        k = command_set_add(set, j, p.argv, p.max_output, p.pty, &c);
        exec_params_done(&p);
        if (k < 0) {
                /* Nobody could ever read it: it must not run. */
                (void) job_signal(j, SIGKILL);
                return reply_error(r, 500, "internal", "out of memory");
        }
        r->srv->metrics.background_started++;
        json_t *o = command_to_json(c);
        if (o)
                json_object_set_new(o, "session_id", json_string(s->id));
        reply_json(r, 201, o);
}

void api_commands_list(request *r) {
        reply_json(r, 200, command_set_to_json(r->session->commands));
}

void api_command_get(request *r) {
        command *c = command_from_url(r);

        if (c)
                reply_json(r, 200, command_to_json(c));
}

/* ---- GET .../commands/{cid}/output ------------------------------------------- */

typedef struct output_op {
        request *r;
        command *c;            /* NULL once it is gone */
        command_reader *rd;
        uint64_t off[2];       /* the next byte to send, per stream */
        bool follow, base64, ended;
        char *line;            /* NDJSON not yet taken by MHD */
        size_t line_len, line_off, line_cap;
} output_op;

/* Room for n more bytes of NDJSON after what is pending. */
static int line_reserve(output_op *op, size_t n) {
        if (op->line_off == op->line_len)
                op->line_off = op->line_len = 0;
        if (op->line_len + n > op->line_cap) {
                size_t cap = MAX(op->line_cap * 2, op->line_len + n);
                char *b = realloc(op->line, cap);
                if (!b)
                        return -ENOMEM;
                op->line = b;
                op->line_cap = cap;
        }
        return 0;
}

static int line_push(output_op *op, json_t *ev) {
        _cleanup_free_ char *s = ev ? json_dumps(ev, JSON_COMPACT) : NULL;

        json_decref(ev);
        if (!s)
                return -ENOMEM;
        size_t n = strlen(s);
        if (line_reserve(op, n + 1) < 0)
                return -ENOMEM;
        memcpy(op->line + op->line_len, s, n);
        op->line[op->line_len + n] = '\n';
        op->line_len += n + 1;
        return 1;
}

/* Bytes to send as text end on a whole UTF-8 sequence, unless they are the
 * last there will ever be: the rest of a sequence cut by the chunk (or not
 * written yet) goes in the next event, so the offsets stay byte-exact and
 * no character is split into two replacement marks. */
static size_t utf8_whole(const unsigned char *p, size_t n) {
        for (size_t back = 1; back <= 3 && back <= n; back++) {
                unsigned char b = p[n - back];
                if ((b & 0xC0) == 0x80)
                        continue; /* a continuation byte: look further back */
                size_t want = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
                return want > back && n - back > 0 ? n - back : n;
        }
        return n;
}

static size_t base64_write(const unsigned char *p, size_t n, char *out) {
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

/* An output event, written by hand: the bytes are escaped straight into
 * the line (a JSON value per chunk would cost more than the command). */
static int line_push_output(output_op *op, int which, const unsigned char *p, size_t n) {
        if (line_reserve(op, 128 + (op->base64 ? (n + 2) / 3 * 4 : n * 6)) < 0)
                return -ENOMEM;
        char *w = op->line + op->line_len;
        w += sprintf(w, "{\"type\":\"%s\",\"offset\":%" PRIu64 ",\"length\":%zu,\"data\":\"", stream_names[which],
                     op->off[which], n);
        w += op->base64 ? base64_write(p, n, w) : json_escape_bytes((const char *) p, n, w);
        memcpy(w, "\"}\n", 3);
        op->line_len = (size_t) (w + 3 - op->line);
        op->off[which] += n;
        command_reader_progress(op->rd);
        return 1;
}

static json_t *exit_event(const command *c, const uint64_t off[2]) {
        json_t *o = command_to_json(c);

        if (o) {
                json_object_set_new(o, "type", json_string("exit"));
                json_object_set_new(o, "stdout_offset", json_integer((json_int_t) off[0]));
                json_object_set_new(o, "stderr_offset", json_integer((json_int_t) off[1]));
        }
        return o;
}

/* The next event for the client: 1 queued, 0 nothing now, < 0 error. */
static int output_next(output_op *op) {
        unsigned char buf[OUTPUT_CHUNK];
        command *c = op->c;

        if (!c) {
                op->ended = true;
                return line_push(op, json_pack("{s:s,s:s}", "type", "gone", "message",
                                               "the command is gone (its session ended, or it was evicted)"));
        }
        for (int i = 0; i < 2; i++) {
                const outring *ring = command_ring(c, i);
                uint64_t start = outring_start(ring);
                if (op->off[i] < start) {
                        json_t *ev = json_pack("{s:s,s:s,s:I,s:I}", "type", "dropped", "stream", stream_names[i],
                                               "offset", (json_int_t) op->off[i], "bytes",
                                               (json_int_t) (start - op->off[i]));
                        op->off[i] = start;
                        command_reader_progress(op->rd);
                        return line_push(op, ev);
                }
                if (op->off[i] >= ring->total)
                        continue;
                size_t n = outring_read(ring, op->off[i], buf, sizeof(buf));
                bool last = command_exited(c) && op->off[i] + n == ring->total;
                if (!op->base64 && !last)
                        n = utf8_whole(buf, n);
                return line_push_output(op, i, buf, n);
        }
        if (command_exited(c)) {
                op->ended = true;
                return line_push(op, exit_event(c, op->off));
        }
        if (!op->follow) {
                op->ended = true;
                return line_push(op, json_pack("{s:s,s:s,s:I,s:I}", "type", "caught_up", "state", "running",
                                               "stdout_offset", (json_int_t) op->off[0], "stderr_offset",
                                               (json_int_t) op->off[1]));
        }
        return 0;
}

/* MHD asks for more: what is pending, else the next event, else (caught up
 * and following) suspend until the command has more to say. */
static ssize_t output_reader(void *cls, uint64_t pos, char *out, size_t max) {
        output_op *op = cls;

        if (op->r->aborted)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        for (;;) {
                if (op->line_off < op->line_len) {
                        size_t n = MIN(max, op->line_len - op->line_off);
                        memcpy(out, op->line + op->line_off, n);
                        op->line_off += n;
                        return (ssize_t) n;
                }
                if (op->ended)
                        return MHD_CONTENT_READER_END_OF_STREAM;
                int k = output_next(op);
                if (k < 0)
                        return MHD_CONTENT_READER_END_WITH_ERROR;
                if (k == 0) {
                        request_suspend(op->r);
                        return 0;
                }
        }
}

static void reader_wake(command_reader *rd, void *userdata) {
        output_op *op = userdata;

        if (op->r->suspended)
                request_resume(op->r);
}

static void reader_gone(void *userdata) {
        output_op *op = userdata;

        /* The reader is freed already; the command is still here for this
         * call: what the reader has not had yet, up to the exit, is queued
         * now (bounded by the rings). */
        op->rd = NULL;
        while (!op->ended && op->c && command_exited(op->c) && output_next(op) > 0)
                ;
        op->c = NULL;
        op->r->session = NULL; /* it is ending: not ours to hold */
        if (op->r->suspended)
                request_resume(op->r);
}

static const command_reader_ops output_reader_ops = {
        .wake = reader_wake,
        .gone = reader_gone,
};

static void output_op_abort(request *r, void *data) {
        output_op *op = data;

        command_reader_remove(TAKE_PTR(op->rd));
}

static void output_op_free(request *r, void *data) {
        output_op *op = data;

        command_reader_remove(op->rd);
        free(op->line);
        free(op);
}

static const request_op_ops output_op_ops = {
        .abort = output_op_abort,
        .free = output_op_free,
};

void api_command_output(request *r) {
        command *c = command_from_url(r);
        uint64_t off[2] = {0, 0};
        bool follow = false, hold = false;
        const char *enc;

        if (!c)
                return;
        if (query_u64(r, "offset", &off[0]) < 0 || query_u64(r, "stdout_offset", &off[0]) < 0 ||
            query_u64(r, "stderr_offset", &off[1]) < 0 || query_bool(r, "follow", &follow) < 0 ||
            query_bool(r, "backpressure", &hold) < 0)
                return;
        enc = query_arg(r, "encoding");
        if (enc && !streq(enc, "utf-8") && !streq(enc, "base64"))
                return reply_error(r, 400, "bad_request", "'encoding' must be utf-8 or base64");
        for (int i = 0; i < 2; i++)
                if (off[i] > command_ring(c, i)->total)
                        return reply_error(r, 400, "bad_request",
                                           "%s offset %" PRIu64 " is past the end of the output (%" PRIu64 ")",
                                           stream_names[i], off[i], command_ring(c, i)->total);
        output_op *op = calloc(1, sizeof(*op));
        if (!op)
                return reply_error(r, 500, "internal", "out of memory");
        *op = (output_op){.r = r, .c = c, .off = {off[0], off[1]}, .follow = follow,
                          .base64 = enc && streq(enc, "base64")};
        request_set_op(r, &output_op_ops, op);
        if (command_reader_add(c, &output_reader_ops, op, hold ? op->off : NULL, &op->rd) < 0)
                return reply_error(r, 500, "internal", "out of memory");
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, output_reader,
                                                                      op, NULL);
        if (!resp)
                return reply_error(r, 500, "internal", "out of memory");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        reply_take_response(r, 200, resp);
}

/* ---- POST .../stdin, .../signal ----------------------------------------------- */

void api_command_stdin(request *r) {
        command *c = command_from_url(r);
        bool eof = false;
        job *j;

        if (!c || query_bool(r, "eof", &eof) < 0)
                return;
        j = command_job(c);
        if (!j)
                return reply_error(r, 409, "conflict", "command %" PRIu64 " has exited", command_id(c));
        int k = job_write_stdin(j, r->body, r->body_len, eof);
        if (k == -ENOBUFS) {
                reply_error(r, 429, "stdin_full",
                            "command %" PRIu64 " does not read its stdin: more than %u bytes are waiting",
                            command_id(c), JOB_STDIN_MAX);
                if (r->reply)
                        MHD_add_response_header(r->reply, "Retry-After", "1");
                return;
        }
        if (k == -EPIPE)
                return reply_error(r, 409, "conflict", "the stdin of command %" PRIu64 " is closed", command_id(c));
        if (k < 0)
                return reply_error(r, 500, "internal", "cannot queue stdin: %s", strerror(-k));
        reply_empty(r, 204);
}

void api_command_resize(request *r) {
        command *c = command_from_url(r);
        json_auto_t *body = NULL;
        uint64_t rows = 0, cols = 0;
        sp_error err = {};
        job *j;

        if (!c || !(body = request_json_body(r, false)))
                return;
        if (json_get_uint(body, "rows", 1000, &rows, &err) < 0 || json_get_uint(body, "cols", 1000, &cols, &err) < 0 ||
            rows == 0 || cols == 0)
                return reply_error(r, 400, "bad_request", "'rows' and 'cols' must be integers from 1 to 1000");
        j = command_job(c);
        if (!j)
                return reply_error(r, 409, "conflict", "command %" PRIu64 " has exited", command_id(c));
        int k = job_resize(j, (unsigned) rows, (unsigned) cols);
        if (k == -ENOTTY)
                return reply_error(r, 409, "conflict", "command %" PRIu64 " has no terminal", command_id(c));
        if (k < 0)
                return reply_error(r, 500, "internal", "cannot resize the terminal: %s", strerror(-k));
        reply_empty(r, 204);
}

static const struct {
        const char *name;
        int sig;
} signals[] = {
        { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
        { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CONT", SIGCONT },
        { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "WINCH", SIGWINCH },
};

/* "INT", "SIGINT" or 2; 0 when not one of the signals above. */
static int signal_from_json(json_t *v) {
        if (json_is_integer(v)) {
                for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                        if (json_integer_value(v) == signals[i].sig)
                                return signals[i].sig;
                return 0;
        }
        const char *s = json_string_value(v);
        if (!s)
                return 0;
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                if (strcasecmp(s, signals[i].name) == 0)
                        return signals[i].sig;
        return 0;
}

void api_command_signal(request *r) {
        command *c = command_from_url(r);
        json_auto_t *body = NULL;
        job *j;

        if (!c || !(body = request_json_body(r, false)))
                return;
        int sig = signal_from_json(json_object_get(body, "signal"));
        if (sig == 0)
                return reply_error(r, 400, "bad_request", "'signal' must be one of HUP INT QUIT KILL USR1 USR2 "
                                                          "PIPE ALRM TERM CONT STOP TSTP WINCH (or its number)");
        j = command_job(c);
        if (!j)
                return reply_error(r, 409, "conflict", "command %" PRIu64 " has exited", command_id(c));
        int k = job_signal(j, sig);
        if (k < 0)
                return reply_error(r, 409, "conflict", "cannot signal command %" PRIu64 ": %s", command_id(c),
                                   strerror(-k));
        reply_empty(r, 204);
}

/* ---- GET .../commands/{cid}/attach: the command over a WebSocket ------------- */

/* A WebSocket attached to a command: its output (both streams; a
 * terminal has one) goes out as binary frames, from the oldest byte the
 * ring holds; every frame that comes in is its input (keys, Ctrl-C as
 * 0x03, which the terminal turns into SIGINT for its foreground group).
 * The command's exit closes the socket (1000, "exit N" or "signal N"). */
typedef struct attach {
        command *c;          /* NULL once gone */
        command_reader *rd;
        ws_conn *w;          /* once upgraded */
        uint64_t off[2];
} attach;

static void attach_pump(attach *a) {
        unsigned char buf[OUTPUT_CHUNK];
        bool caught_up = true;

        if (!a->w)
                return;
        if (!a->c)
                return ws_close(a->w, 1001, "the command is gone");
        for (int i = 0; i < 2; i++) {
                const outring *ring = command_ring(a->c, i);
                a->off[i] = MAX(a->off[i], outring_start(ring));
                while (a->off[i] < ring->total) {
                        if (ws_queued(a->w) >= WS_QUEUE_MAX / 2)
                                return; /* more once drained */
                        size_t n = outring_read(ring, a->off[i], buf, sizeof(buf));
                        if (n == 0 || ws_send(a->w, buf, n) < 0)
                                return;
                        a->off[i] += n;
                        command_reader_progress(a->rd);
                }
                caught_up = caught_up && a->off[i] == ring->total;
        }
        const job_result *res = command_result(a->c);
        if (caught_up && res) {
                char reason[32];
                if (res->signal)
                        snprintf(reason, sizeof(reason), "signal %d", res->signal);
                else
                        snprintf(reason, sizeof(reason), "exit %d", res->exit_code);
                ws_close(a->w, 1000, reason); /* frees a (closed) */
        }
}

static void attach_wake(command_reader *rd, void *userdata) {
        attach_pump(userdata);
}

static void attach_gone(void *userdata) {
        attach *a = userdata;

        a->rd = NULL;
        a->c = NULL;
        attach_pump(a);
}

static const command_reader_ops attach_reader_ops = {
        .wake = attach_wake,
        .gone = attach_gone,
};

static void attach_opened(ws_conn *w, void *userdata) {
        attach *a = userdata;

        a->w = w;
        attach_pump(a);
}

static void attach_data(ws_conn *w, const char *p, size_t n, void *userdata) {
        attach *a = userdata;
        job *j = a->c ? command_job(a->c) : NULL;

        /* more than JOB_STDIN_MAX typed ahead of a command that does not
         * read: dropped, as a terminal's full input queue would */
        if (j)
                (void) job_write_stdin(j, p, n, false);
}

static void attach_drained(ws_conn *w, void *userdata) {
        attach_pump(userdata);
}

static void attach_closed(ws_conn *w, void *userdata) {
        attach *a = userdata;

        command_reader_remove(a->rd);
        free(a);
}

static const ws_ops attach_ws_ops = {
        .opened = attach_opened,
        .data = attach_data,
        .drained = attach_drained,
        .closed = attach_closed,
};

void api_command_attach(request *r) {
        command *c = command_from_url(r);
        uint64_t off = 0;

        if (!c || query_u64(r, "offset", &off) < 0)
                return;
        attach *a = calloc(1, sizeof(*a));
        if (!a)
                return reply_error(r, 500, "internal", "out of memory");
        *a = (attach){.c = c, .off = {off, 0}};
        /* a terminal's reader holds it back, as a terminal does */
        if (command_reader_add(c, &attach_reader_ops, a, a->off, &a->rd) < 0) {
                free(a);
                return reply_error(r, 500, "internal", "out of memory");
        }
        if (ws_accept(r, &attach_ws_ops, a) < 0) {
                command_reader_remove(a->rd);
                free(a);
        }
}
