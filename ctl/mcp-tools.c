/* SPDX-License-Identifier: MIT */
/* The tools of 'sandpoolctl mcp', each a few calls of the daemon's public
 * API in one session. A failure of the daemon (unreachable, no capacity,
 * a refused request, a session that expired) is never a crash of the
 * server: it becomes a tool result with isError and the daemon's message,
 * captured from the same reporting code the other subcommands print. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "mcp-tools.h"
#include "table.h"

#define SANDBOX_HOME "/home/sandbox"
#define EXEC_READ_TIMEOUT_MS 200u     /* a read of the stream may wait this long for framing bytes */
#define PROGRESS_INTERVAL_MS 1000
#define LINE_MAX_BYTES (16u * 1024u * 1024u)

struct mcp_tools {
        ctl *c;
        mcp_tools_options o;
        char session[65];   /* "" until the first call that needs one */
        bool attached;      /* --session: not ours to end */
        unsigned idle_timeout_s;
        FILE *err_saved;    /* while an error is captured */
        char *err_buf;
        size_t err_len;
};

/* ---- results ---- */

static json_t *text_content(const char *text) {
        return json_pack("{s:s,s:s}", "type", "text", "text", text);
}

static json_t *tool_result(const char *text, bool is_error) {
        return json_pack("{s:[o],s:b}", "content", text_content(text), "isError", is_error);
}

_printf_(2, 0) static json_t *tool_vtext(bool is_error, const char *fmt, va_list ap) {
        _cleanup_free_ char *text = NULL;

        if (vasprintf(&text, fmt, ap) < 0)
                return NULL;
        return tool_result(text, is_error);
}

/* A result that says what went wrong (isError: the model sees it and
 * may try again differently). */
_printf_(1, 2) static json_t *tool_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        json_t *j = tool_vtext(true, fmt, ap);
        va_end(ap);
        return j;
}

_printf_(1, 2) static json_t *tool_ok(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        json_t *j = tool_vtext(false, fmt, ap);
        va_end(ap);
        return j;
}

/* The daemon's errors are reported by api.c to c->err: while a tool runs,
 * that is a memory stream whose text becomes the tool's error message. */
static void capture_begin(mcp_tools *t) {
        FILE *f = open_memstream(&t->err_buf, &t->err_len);

        t->err_saved = t->c->err;
        if (f)
                t->c->err = f;
}

/* The captured text (trimmed), or fallback when nothing was said. */
static json_t *capture_end(mcp_tools *t, const char *fallback) {
        json_t *res;

        if (t->c->err != t->err_saved) {
                fclose(t->c->err);
                t->c->err = t->err_saved;
        }
        while (t->err_buf && t->err_len > 0 && t->err_buf[t->err_len - 1] == '\n')
                t->err_buf[--t->err_len] = 0;
        res = tool_error("%s", t->err_buf && t->err_buf[0] ? t->err_buf : fallback);
        free(t->err_buf);
        t->err_buf = NULL;
        t->err_len = 0;
        return res;
}

static void capture_drop(mcp_tools *t) {
        if (t->c->err != t->err_saved) {
                fclose(t->c->err);
                t->c->err = t->err_saved;
        }
        free(t->err_buf);
        t->err_buf = NULL;
        t->err_len = 0;
}

/* ---- the session ---- */

static void session_forget(mcp_tools *t) {
        t->session[0] = 0;
        t->attached = false;
}

static int session_adopt(mcp_tools *t, json_t *s) {
        const char *id = json_str_or(s, "id", NULL);

        if (!id || !session_id_valid(id) || strlen(id) >= sizeof(t->session)) {
                fprintf(t->c->err, "sandpoolctl: the daemon's session answer has no valid id\n");
                return -EPROTO;
        }
        snprintf(t->session, sizeof(t->session), "%s", id);
        /* idle_timeout_ms; idle_timeout_s from a daemon older than that name */
        t->idle_timeout_s = (unsigned) (json_int_or(s, "idle_timeout_ms", json_int_or(s, "idle_timeout_s", 300) * 1000) /
                                        1000);
        return 0;
}

/* A session to work in: the one we have, the --session one, or a new one.
 * 0, or -errno after the reason went to c->err. */
static int session_ensure(mcp_tools *t, const mcp_call *call) {
        json_auto_t *body = NULL, *got = NULL;
        api_reply rep = {};
        char target[128];
        int r;

        if (t->session[0])
                return 0;
        if (t->o.session && !t->attached) {
                snprintf(target, sizeof(target), "/v1/sessions/%s", t->o.session);
                if (api_get_json(t->c, target, "attach to the session given with --session", true, &got) != 0)
                        return -ENOENT;
                r = session_adopt(t, got);
                t->attached = r >= 0;
                return r;
        }
        if (t->o.session)
                return fprintf(t->c->err, "sandpoolctl: the session given with --session (%s) has ended\n",
                               t->o.session),
                       -ENOENT;
        body = json_object();
        if (!body)
                return -ENOMEM;
        if (t->o.template)
                json_object_set_new(body, "template", json_string(t->o.template));
        r = api_request_json(t->c, "POST", "/v1/sessions", body, &rep);
        if (r < 0)
                return report_transport_error(t->c, r, "create a session"), r;
        if (rep.status != 201) {
                report_http_error(t->c, &rep, "create a session", false);
                api_reply_done(&rep);
                return -EIO;
        }
        r = session_adopt(t, rep.json);
        api_reply_done(&rep);
        if (r >= 0 && call && call->log) {
                char msg[128];
                snprintf(msg, sizeof(msg), "sandpool session %s created", t->session);
                call->log(call->userdata, "info", msg);
        }
        return r;
}

static void session_end(mcp_tools *t) {
        api_reply rep = {};
        char target[128];

        if (!t->session[0] || t->attached)
                return;
        snprintf(target, sizeof(target), "/v1/sessions/%s", t->session);
        (void) api_request(t->c, "DELETE", target, NULL, NULL, 0, &rep);
        api_reply_done(&rep);
        session_forget(t);
}

int mcp_tools_keepalive_ms(const mcp_tools *t) {
        if (!t->session[0])
                return -1;
        /* a third of the idle timeout, between 1 s and 60 s */
        unsigned ms = t->idle_timeout_s * 1000u / 3u;
        return (int) MAX(1000u, MIN(ms, 60000u));
}

void mcp_tools_keepalive(mcp_tools *t) {
        api_reply rep = {};
        char target[128];

        if (!t->session[0])
                return;
        /* any call on the session counts as activity for its idle timer */
        snprintf(target, sizeof(target), "/v1/sessions/%s", t->session);
        if (api_request(t->c, "GET", target, NULL, NULL, 0, &rep) >= 0 && rep.status == 404)
                session_forget(t); /* ended meanwhile: the next call makes a new one */
        api_reply_done(&rep);
}

/* ---- arguments ---- */

/* A string argument: 0 with *ret (NULL when absent and optional), or a
 * tool error in *ret_err. */
static int arg_string(json_t *args, const char *key, bool required, const char **ret, json_t **ret_err) {
        json_t *v = json_object_get(args, key);

        *ret = NULL;
        if (!v || json_is_null(v)) {
                if (required)
                        return *ret_err = tool_error("missing argument '%s'", key), -EINVAL;
                return 0;
        }
        if (!json_is_string(v))
                return *ret_err = tool_error("argument '%s' must be a string", key), -EINVAL;
        *ret = json_string_value(v);
        return 0;
}

/* A path inside the sandbox: absolute, or relative to the sandbox user's
 * home (where commands start). */
static int arg_path(json_t *args, const char *key, const char *dflt, char **ret, json_t **ret_err) {
        const char *p;

        if (arg_string(args, key, !dflt, &p, ret_err) < 0)
                return -EINVAL;
        if (!p || !*p)
                p = dflt;
        if (!p)
                return *ret_err = tool_error("argument '%s' must not be empty", key), -EINVAL;
        if (p[0] == '/')
                *ret = strdup(p);
        else if (asprintf(ret, SANDBOX_HOME "/%s", p) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

/* timeout_ms, as every duration of the API (docs/api.md, "Field names");
 * timeout_s, in seconds, is its older alias. Not both. */
static int arg_timeout_ms(json_t *args, uint64_t *ret, json_t **ret_err) {
        json_t *ms = json_object_get(args, "timeout_ms"), *s = json_object_get(args, "timeout_s");

        *ret = 0;
        if (ms && json_is_null(ms))
                ms = NULL;
        if (s && json_is_null(s))
                s = NULL;
        if (ms && s)
                return *ret_err = tool_error("give 'timeout_ms' or its alias 'timeout_s', not both"), -EINVAL;
        if (ms) {
                if (!json_is_integer(ms) || json_integer_value(ms) <= 0 || json_integer_value(ms) > 86400000)
                        return *ret_err = tool_error("argument 'timeout_ms' must be an integer from 1 to 86400000"),
                               -EINVAL;
                *ret = (uint64_t) json_integer_value(ms);
                return 0;
        }
        if (!s)
                return 0;
        if (!json_is_number(s) || json_number_value(s) <= 0 || json_number_value(s) > 86400)
                return *ret_err = tool_error("argument 'timeout_s' must be a number of seconds, 0 to 86400"), -EINVAL;
        *ret = (uint64_t) (json_number_value(s) * 1000.0 + 0.5);
        if (*ret == 0)
                *ret = 1;
        return 0;
}

/* ---- output kept from a command ---- */

typedef struct out_buf {
        char *data;
        size_t len, cap, dropped;
} out_buf;

static void out_buf_done(out_buf *b) {
        free(b->data);
}

static int out_buf_add(out_buf *b, size_t max, const char *p, size_t n) {
        size_t keep = b->len < max ? MIN(n, max - b->len) : 0;

        b->dropped += n - keep;
        if (keep == 0)
                return 0;
        if (b->len + keep + 1 > b->cap) {
                size_t ncap = MAX(b->cap * 2, b->len + keep + 1);
                char *q = realloc(b->data, MAX(ncap, (size_t) 256));
                if (!q)
                        return -ENOMEM;
                b->data = q;
                b->cap = MAX(ncap, (size_t) 256);
        }
        memcpy(b->data + b->len, p, keep);
        b->len += keep;
        b->data[b->len] = 0;
        return 0;
}

/* The kept bytes as a JSON string: invalid UTF-8 (a cut in the middle of a
 * character at the cap) is trimmed back to the last whole character. */
static json_t *out_buf_json(const out_buf *b) {
        for (size_t cut = 0; cut < 4 && cut <= b->len; cut++) {
                json_t *s = json_stringn(b->data ? b->data : "", b->len - cut);
                if (s)
                        return s;
        }
        return json_string("(output is not valid UTF-8)");
}

/* ---- commands ---- */

typedef struct exec_state {
        mcp_tools *t;
        out_buf out, err;
        json_t *exit;   /* the "exit" event */
        char *error;    /* an "error" event's message */
        char last_line[160];
        uint64_t bytes;
} exec_state;

static void exec_state_done(exec_state *s) {
        out_buf_done(&s->out);
        out_buf_done(&s->err);
        json_decref(s->exit);
        free(s->error);
}

static void remember_last_line(exec_state *s, const char *p, size_t n) {
        while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
                n--;
        const char *start = p + n;
        while (start > p && start[-1] != '\n')
                start--;
        if (start < p + n)
                snprintf(s->last_line, sizeof(s->last_line), "%.*s", (int) MIN((size_t) (p + n - start), 150u), start);
}

static int handle_event(exec_state *s, const char *line, size_t len) {
        json_auto_t *ev = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
        const char *type = json_str_or(ev, "type", NULL);

        if (!type)
                return -EPROTO;
        if (streq(type, "stdout") || streq(type, "stderr")) {
                out_buf *b = streq(type, "stdout") ? &s->out : &s->err;
                json_t *data = json_object_get(ev, "data"), *b64 = json_object_get(ev, "data_b64");
                if (json_is_string(b64)) {
                        _cleanup_free_ char *raw = strndup(json_string_value(b64), json_string_length(b64));
                        ssize_t n = raw ? base64_decode(raw, strlen(raw)) : -ENOMEM;
                        if (n < 0)
                                return (int) n;
                        s->bytes += (uint64_t) n;
                        return out_buf_add(b, s->t->o.max_output, raw, (size_t) n);
                }
                if (!json_is_string(data))
                        return 0;
                s->bytes += json_string_length(data);
                remember_last_line(s, json_string_value(data), json_string_length(data));
                return out_buf_add(b, s->t->o.max_output, json_string_value(data), json_string_length(data));
        }
        if (streq(type, "exit")) {
                json_decref(s->exit);
                s->exit = json_incref(ev);
        } else if (streq(type, "error")) {
                free(s->error);
                s->error = strdup(json_str_or(ev, "message", "the command failed"));
        }
        return 0;
}

static void send_progress(const mcp_call *call, exec_state *s, uint64_t elapsed_ms, uint64_t timeout_ms) {
        char msg[256], dur[32];

        if (!call->progress)
                return;
        snprintf(msg, sizeof(msg), "running for %s, %" PRIu64 " bytes of output%s%s",
                 format_duration_ms(elapsed_ms, dur, sizeof(dur)), s->bytes, s->last_line[0] ? "; last line: " : "",
                 s->last_line);
        call->progress(call->userdata, (double) elapsed_ms / 1000.0, timeout_ms ? (double) timeout_ms / 1000.0 : 0,
                       msg);
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* Read the NDJSON stream as it comes, answering the client's messages and
 * sending progress meanwhile. 0 at the stream's end, -ECANCELED /
 * -ENOTCONN from the client's side (the connection to the daemon is then
 * dropped, which kills the command), other -errno from the daemon's. */
static int follow_stream(exec_state *s, const mcp_call *call, http_conn *conn, http_response *resp,
                         uint64_t timeout_ms) {
        _cleanup_free_ char *line = NULL;
        size_t len = 0, cap = 0;
        uint64_t start = now_ms(), next_progress = start + PROGRESS_INTERVAL_MS;
        char buf[16384];
        int r;

        for (;;) {
                uint64_t now = now_ms();
                if (now >= next_progress) {
                        send_progress(call, s, now - start, timeout_ms);
                        next_progress = now + PROGRESS_INTERVAL_MS;
                }
                r = call->wait(call->userdata, http_conn_fd(conn), http_conn_buffered(conn),
                               (int) (next_progress - MIN(now, next_progress)));
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                ssize_t n = http_read_body(conn, resp, buf, sizeof(buf));
                if (n == -ETIMEDOUT)
                        continue;
                if (n <= 0)
                        return (int) n;
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] != '\n') {
                                if (len + 1 >= cap) {
                                        size_t ncap = cap ? cap * 2 : 4096;
                                        char *p = ncap <= LINE_MAX_BYTES ? realloc(line, ncap) : NULL;
                                        if (!p)
                                                return -E2BIG;
                                        line = p;
                                        cap = ncap;
                                }
                                line[len++] = buf[i];
                                continue;
                        }
                        if (len > 0 && (r = handle_event(s, line, len)) < 0)
                                return r;
                        len = 0;
                }
        }
}

/* What the model reads: stdout, then stderr under a marker, then one line
 * for how it ended and one when output was dropped. */
static void write_text(FILE *f, const exec_state *s, json_t *out, json_t *err, bool truncated) {
        json_t *sig = json_object_get(s->exit, "signal");
        size_t lo = json_string_length(out), le = json_string_length(err);
        char dur[32];

        format_duration_ms((uint64_t) json_int_or(s->exit, "duration_ms", 0), dur, sizeof(dur));
        fwrite(json_string_value(out), 1, lo, f);
        if (lo && json_string_value(out)[lo - 1] != '\n')
                fputc('\n', f);
        if (le) {
                fputs("[stderr]\n", f);
                fwrite(json_string_value(err), 1, le, f);
                if (json_string_value(err)[le - 1] != '\n')
                        fputc('\n', f);
        }
        if (s->error)
                fprintf(f, "[%s]\n", s->error);
        if (json_is_true(json_object_get(s->exit, "timed_out")))
                fprintf(f, "[timed out after %s and killed]", dur);
        else if (json_is_integer(sig) && json_integer_value(sig) > 0)
                fprintf(f, "[killed by signal %" PRId64 "%s after %s]", (int64_t) json_integer_value(sig),
                        json_is_true(json_object_get(s->exit, "oom_killed")) ? " (out of memory)" : "", dur);
        else
                fprintf(f, "[exit code %" PRId64 " after %s]", json_int_or(s->exit, "exit_code", -1), dur);
        if (truncated)
                fprintf(f, "\n[output truncated: at most %zu bytes of stdout and of stderr are kept "
                           "(sandpoolctl mcp --max-output, or the daemon's max_output)]",
                        s->t->o.max_output);
}

/* The result of a finished command: text for the model, and the same as
 * structured content. */
static json_t *exec_result(exec_state *s) {
        json_auto_t *out = out_buf_json(&s->out), *err = out_buf_json(&s->err);
        _cleanup_free_ char *text = NULL;
        json_t *sig = json_object_get(s->exit, "signal"), *code = json_object_get(s->exit, "exit_code");
        bool truncated = json_is_true(json_object_get(s->exit, "truncated")) || s->out.dropped || s->err.dropped;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f || !out || !err)
                return f ? (fclose(f), NULL) : NULL;
        write_text(f, s, out, err, truncated);
        if (fclose(f) != 0)
                return NULL;
        return json_pack("{s:[o],s:b,s:{s:O,s:O,s:b,s:b,s:b,s:I,s:O,s:O}}", "content", text_content(text), "isError",
                         false, "structuredContent", "exit_code", json_is_integer(code) ? code : json_null(), "signal",
                         json_is_integer(sig) ? sig : json_null(), "timed_out",
                         json_is_true(json_object_get(s->exit, "timed_out")), "oom_killed",
                         json_is_true(json_object_get(s->exit, "oom_killed")), "truncated", truncated, "duration_ms",
                         (json_int_t) json_int_or(s->exit, "duration_ms", 0), "stdout", out, "stderr", err);
}

/* POST the command to the session's exec, streamed. -ESTALE when the
 * session is gone (404 before anything ran), a result otherwise. */
static int exec_once(mcp_tools *t, const mcp_call *call, json_t *body, uint64_t timeout_ms, json_t **ret) {
        _cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);
        _cleanup_(exec_state_done) exec_state s = { .t = t };
        http_response resp;
        http_conn *conn;
        char target[128];
        int r;

        if (!text)
                return -ENOMEM;
        snprintf(target, sizeof(target), "/v1/sessions/%s/exec", t->session);
        r = api_connection(t->c, &conn);
        if (r >= 0)
                r = http_send_head(conn, "POST", target, "application/json", (int64_t) strlen(text));
        if (r >= 0)
                r = http_send_body(conn, text, strlen(text));
        if (r >= 0 || r == -EPIPE || r == -ECONNRESET) /* an early refusal: read it (see api.c) */
                r = http_read_head(conn, &resp);
        if (r < 0) {
                api_disconnect(t->c);
                report_transport_error(t->c, r, "run the command");
                return *ret = capture_end(t, "the daemon could not be reached"), 0;
        }
        if (resp.status != 200 || strncmp(resp.content_type, "application/x-ndjson", 20) != 0) {
                api_reply rep = { .status = resp.status, .retry_after = resp.retry_after };
                memcpy(rep.content_type, resp.content_type, sizeof(rep.content_type));
                r = http_read_body_all(conn, &resp, 1u << 20, &rep.body, &rep.body_len);
                if (r < 0 || resp.close)
                        api_disconnect(t->c);
                rep.json = rep.body ? json_loadb(rep.body, rep.body_len, 0, NULL) : NULL;
                bool gone = resp.status == 404 || resp.status == 409;
                if (!gone || t->attached)
                        report_http_error(t->c, &rep, "run the command", true);
                api_reply_done(&rep);
                if (gone && !t->attached)
                        return -ESTALE;
                return *ret = capture_end(t, "the daemon refused the command"), 0;
        }
        (void) http_set_timeout_ms(conn, EXEC_READ_TIMEOUT_MS);
        r = follow_stream(&s, call, conn, &resp, timeout_ms);
        (void) http_set_timeout_ms(conn, t->c->timeout_ms);
        if (r < 0 || !resp.done)
                api_disconnect(t->c); /* mid-stream: dropping it kills the command */
        if (r == -ECANCELED || r == -ENOTCONN)
                return r;
        if (r < 0 || !s.exit) {
                if (r < 0 && r != -EPROTO && r != -E2BIG)
                        report_transport_error(t->c, r, "run the command");
                else
                        fprintf(t->c->err, "sandpoolctl: the command's stream ended without its exit status%s%s\n",
                                s.error ? ": " : "", s.error ? s.error : "");
                *ret = capture_end(t, "the command's stream broke");
        } else
                *ret = exec_result(&s);
        return *ret ? 0 : -ENOMEM;
}

/* Run body in the session; a session of ours that expired is replaced
 * once, and the result says so. */
static int run_exec(mcp_tools *t, const mcp_call *call, json_t *body, uint64_t timeout_ms, json_t **ret) {
        bool replaced = false;
        int r;

        if (t->o.max_output)
                json_object_set_new(body, "max_output_bytes", json_integer((json_int_t) t->o.max_output));
        if (timeout_ms)
                json_object_set_new(body, "timeout_ms", json_integer((json_int_t) timeout_ms));
        json_object_set_new(body, "stream", json_true());
        for (int attempt = 0;; attempt++) {
                if (session_ensure(t, call) < 0)
                        return *ret = capture_end(t, "no session"), *ret ? 0 : -ENOMEM;
                r = exec_once(t, call, body, timeout_ms, ret);
                if (r != -ESTALE)
                        break;
                session_forget(t);
                if (attempt > 0) {
                        fprintf(t->c->err, "sandpoolctl: the new session ended at once\n");
                        return *ret = capture_end(t, "the session ended"), 0;
                }
                replaced = true;
        }
        if (r == 0 && replaced && *ret) {
                json_array_insert_new(json_object_get(*ret, "content"), 0,
                                      text_content("[the previous sandbox had ended (idle or session timeout): this "
                                                   "ran in a fresh one; files written before are gone]"));
        }
        return r;
}

static int exec_with(mcp_tools *t, const mcp_call *call, json_t *args, json_t *argv_or_shell, const char *key,
                     json_t **ret) {
        json_auto_t *body = json_object();
        json_t *err = NULL, *env = json_object_get(args, "env");
        const char *stdin_text = NULL;
        _cleanup_free_ char *cwd = NULL;
        uint64_t timeout_ms;

        if (!body)
                return -ENOMEM;
        json_object_set_new(body, key, argv_or_shell);
        if (arg_timeout_ms(args, &timeout_ms, &err) < 0 || arg_string(args, "stdin", false, &stdin_text, &err) < 0 ||
            (json_object_get(args, "cwd") && arg_path(args, "cwd", NULL, &cwd, &err) < 0))
                return *ret = err, err ? 0 : -ENOMEM;
        if (env && !json_is_null(env)) {
                const char *k;
                json_t *v;
                if (!json_is_object(env))
                        return *ret = tool_error("argument 'env' must be an object of strings"), 0;
                json_object_foreach(env, k, v)
                        if (!json_is_string(v))
                                return *ret = tool_error("env '%s' must be a string", k), 0;
                json_object_set(body, "env", env);
        }
        if (cwd)
                json_object_set_new(body, "cwd", json_string(cwd));
        if (stdin_text)
                json_object_set_new(body, "stdin", json_string(stdin_text));
        return run_exec(t, call, body, timeout_ms, ret);
}

static int tool_run_command(mcp_tools *t, const mcp_call *call, json_t *args, json_t **ret) {
        const char *command;
        json_t *err = NULL;

        if (arg_string(args, "command", true, &command, &err) < 0)
                return *ret = err, 0;
        return exec_with(t, call, args, json_string(command), "shell", ret);
}

static int run_code(mcp_tools *t, const mcp_call *call, json_t *args, const char *interp, const char *flag,
                    json_t **ret) {
        const char *code;
        json_t *err = NULL;

        if (arg_string(args, "code", true, &code, &err) < 0)
                return *ret = err, 0;
        return exec_with(t, call, args, json_pack("[s,s,s]", interp, flag, code), "argv", ret);
}

static int tool_run_python(mcp_tools *t, const mcp_call *call, json_t *args, json_t **ret) {
        return run_code(t, call, args, "python3", "-c", ret);
}

static int tool_run_node(mcp_tools *t, const mcp_call *call, json_t *args, json_t **ret) {
        return run_code(t, call, args, "node", "-e", ret);
}

/* ---- files ---- */

static char *base64_encode(const unsigned char *p, size_t n) {
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0) |
                             (i + 2 < n ? p[i + 2] : 0);
                *o++ = a[v >> 18 & 63];
                *o++ = a[v >> 12 & 63];
                *o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
                *o++ = i + 2 < n ? a[v & 63] : '=';
        }
        *o = 0;
        return out;
}

/* GET/PUT/DELETE on the session's files: the reply, or a tool error in
 * *ret_err (the session is made when missing, and replaced once when it
 * expired). */
static int files_request(mcp_tools *t, const mcp_call *call, const char *method, const char *path,
                         const void *body, size_t body_len, api_reply *rep, json_t **ret_err) {
        _cleanup_free_ char *q = http_query_escape(path);
        char *target = NULL;
        int r;

        if (!q)
                return -ENOMEM;
        for (int attempt = 0; attempt < 2; attempt++) {
                if (session_ensure(t, call) < 0)
                        return *ret_err = capture_end(t, "no session"), -EIO;
                if (asprintf(&target, "/v1/sessions/%s/files?path=%s", t->session, q) < 0)
                        return -ENOMEM;
                r = api_request(t->c, method, target, body ? "application/octet-stream" : NULL, body, body_len, rep);
                free(target);
                if (r < 0) {
                        report_transport_error(t->c, r, path);
                        return *ret_err = capture_end(t, "the daemon could not be reached"), -EIO;
                }
                /* a 404 for the session itself, not for the file: ours expired */
                if (rep->status == 404 && !t->attached && attempt == 0 &&
                    strstr(json_str_or(json_object_get(rep->json, "error"), "message", ""), "session")) {
                        api_reply_done(rep);
                        session_forget(t);
                        continue;
                }
                return 0;
        }
        return 0;
}

static int tool_write_file(mcp_tools *t, const mcp_call *call, json_t *args, json_t **ret) {
        _cleanup_free_ char *path = NULL, *raw = NULL;
        const char *content, *encoding;
        json_t *err = NULL;
        api_reply rep = {};
        size_t len;

        if (arg_path(args, "path", NULL, &path, &err) < 0 || arg_string(args, "content", true, &content, &err) < 0 ||
            arg_string(args, "encoding", false, &encoding, &err) < 0)
                return *ret = err, err ? 0 : -ENOMEM;
        len = json_string_length(json_object_get(args, "content"));
        if (encoding && streq(encoding, "base64")) {
                raw = strndup(content, len);
                ssize_t n = raw ? base64_decode(raw, len) : -ENOMEM;
                if (n < 0)
                        return *ret = tool_error("'content' is not valid base64"), 0;
                content = raw;
                len = (size_t) n;
        } else if (encoding && !streq(encoding, "utf-8"))
                return *ret = tool_error("'encoding' must be \"utf-8\" or \"base64\""), 0;
        if (files_request(t, call, "PUT", path, content, len, &rep, ret) < 0)
                return *ret ? 0 : -ENOMEM;
        if (rep.status != 201 && rep.status != 200 && rep.status != 204) {
                report_http_error(t->c, &rep, path, true);
                api_reply_done(&rep);
                return *ret = capture_end(t, "the daemon refused the file"), 0;
        }
        api_reply_done(&rep);
        *ret = tool_ok("wrote %zu bytes to %s", len, path);
        return *ret ? 0 : -ENOMEM;
}

static int tool_read_file(mcp_tools *t, const mcp_call *call, json_t *args, json_t **ret) {
        _cleanup_free_ char *path = NULL, *b64 = NULL;
        json_t *err = NULL, *text;
        api_reply rep = {};
        size_t keep;

        if (arg_path(args, "path", NULL, &path, &err) < 0)
                return *ret = err, err ? 0 : -ENOMEM;
        if (files_request(t, call, "GET", path, NULL, 0, &rep, ret) < 0)
                return *ret ? 0 : -ENOMEM;
        if (rep.status != 200) {
                report_http_error(t->c, &rep, path, true);
                api_reply_done(&rep);
                return *ret = capture_end(t, "the daemon refused to read the file"), 0;
        }
        if (strncmp(rep.content_type, "application/json", 16) == 0 && json_object_get(rep.json, "entries")) {
                api_reply_done(&rep);
                return *ret = tool_error("%s is a directory: use list_files", path), 0;
        }
        keep = MIN(rep.body_len, t->o.max_output);
        text = keep == rep.body_len || keep == 0 ? json_stringn(rep.body, keep) : NULL;
        for (size_t cut = 0; !text && cut < 4 && cut <= keep; cut++)
                text = json_stringn(rep.body, keep - cut); /* a cut in the middle of a character */
        if (text && !memchr(rep.body, 0, keep)) {
                *ret = json_pack("{s:[{s:s,s:o}],s:b}", "content", "type", "text", "text", text, "isError", false);
        } else {
                json_decref(text);
                b64 = base64_encode((const unsigned char *) rep.body, keep);
                *ret = b64 ? json_pack("{s:[{s:s,s:{s:s,s:s,s:s}}],s:b}", "content", "type", "resource", "resource",
                                       "uri", "file://", "mimeType", "application/octet-stream", "blob", b64,
                                       "isError", false)
                           : NULL;
                if (*ret) {
                        _cleanup_free_ char *uri = NULL;
                        if (asprintf(&uri, "file://%s", path) >= 0)
                                json_object_set_new(json_object_get(json_array_get(json_object_get(*ret, "content"), 0), "resource"),
                                                    "uri", json_string(uri));
                }
        }
        if (*ret && keep < rep.body_len) {
                char msg[200];
                snprintf(msg, sizeof(msg), "[file truncated: the first %zu of its %zu bytes are shown (sandpoolctl mcp --max-output)]",
                         keep, rep.body_len);
                json_array_append_new(json_object_get(*ret, "content"), text_content(msg));
        }
        api_reply_done(&rep);
        return *ret ? 0 : -ENOMEM;
}

static int tool_list_files(mcp_tools *t, const mcp_call *call, json_t *args, json_t **ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        json_t *err = NULL, *entries, *e;
        api_reply rep = {};
        size_t i, len = 0;
        FILE *f;

        if (arg_path(args, "path", SANDBOX_HOME, &path, &err) < 0)
                return *ret = err, err ? 0 : -ENOMEM;
        if (files_request(t, call, "GET", path, NULL, 0, &rep, ret) < 0)
                return *ret ? 0 : -ENOMEM;
        if (rep.status != 200) {
                report_http_error(t->c, &rep, path, true);
                api_reply_done(&rep);
                return *ret = capture_end(t, "the daemon refused to list the directory"), 0;
        }
        entries = json_object_get(rep.json, "entries");
        if (!json_is_array(entries)) {
                api_reply_done(&rep);
                return *ret = tool_error("%s is not a directory: use read_file", path), 0;
        }
        f = open_memstream(&text, &len);
        if (!f) {
                api_reply_done(&rep);
                return -ENOMEM;
        }
        fprintf(f, "%s: %zu entries\n", path, json_array_size(entries));
        json_array_foreach(entries, i, e) {
                const char *type = json_str_or(e, "type", "?");
                fprintf(f, "%-7s %10" PRId64 "  %s%s\n", type, json_int_or(e, "size", 0), json_str_or(e, "name", "?"),
                        streq(type, "dir") ? "/" : "");
        }
        fclose(f);
        *ret = json_pack("{s:[o],s:b,s:{s:s,s:O}}", "content", text_content(text ? text : ""), "isError", false,
                         "structuredContent", "path", path, "entries", entries);
        api_reply_done(&rep);
        return *ret ? 0 : -ENOMEM;
}

static int tool_reset(mcp_tools *t, const mcp_call *call, json_t *args, json_t **ret) {
        char old[65];

        if (t->o.session)
                return *ret = tool_error("this server is attached to session %s (--session): it does not end a "
                                         "session it did not create",
                                         t->o.session),
                       0;
        snprintf(old, sizeof(old), "%s", t->session);
        session_end(t);
        if (session_ensure(t, call) < 0)
                return *ret = capture_end(t, "no new session"), *ret ? 0 : -ENOMEM;
        *ret = tool_ok("%s%s%sa fresh sandbox is ready (session %s): the files and processes of before are gone",
                       old[0] ? "ended session " : "", old, old[0] ? "; " : "", t->session);
        return *ret ? 0 : -ENOMEM;
}

/* ---- the table ---- */

#define RUN_OUTPUT_SCHEMA                                                                                      \
        "{\"type\":\"object\",\"properties\":{"                                                                \
        "\"exit_code\":{\"type\":[\"integer\",\"null\"]},\"signal\":{\"type\":[\"integer\",\"null\"]},"        \
        "\"timed_out\":{\"type\":\"boolean\"},\"oom_killed\":{\"type\":\"boolean\"},"                          \
        "\"truncated\":{\"type\":\"boolean\"},\"duration_ms\":{\"type\":\"integer\"},"                         \
        "\"stdout\":{\"type\":\"string\"},\"stderr\":{\"type\":\"string\"}},"                                  \
        "\"required\":[\"exit_code\",\"signal\",\"timed_out\",\"oom_killed\",\"truncated\",\"duration_ms\","   \
        "\"stdout\",\"stderr\"]}"
#define COMMON_RUN_PROPS                                                                                       \
        "\"timeout_ms\":{\"type\":\"integer\",\"minimum\":1,\"description\":\"kill it after this many "        \
        "milliseconds (default and largest: the daemon's command_timeout; timeout_s, in seconds, is an "       \
        "alias)\"},"                                                                                           \
        "\"stdin\":{\"type\":\"string\",\"description\":\"text given to its standard input\"},"               \
        "\"cwd\":{\"type\":\"string\",\"description\":\"working directory (default /home/sandbox)\"},"         \
        "\"env\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},\"description\":"         \
        "\"extra environment variables\"}"

typedef struct tool {
        const char *name, *title, *description, *input_schema, *output_schema;
        bool read_only, destructive, idempotent;
        int (*fn)(mcp_tools *t, const mcp_call *call, json_t *args, json_t **ret);
} tool;

static const tool tools[] = {
        { "run_command", "Run a shell command",
          "Run a shell command (/bin/sh -c) in this conversation's Linux sandbox (Debian, Python 3, Node.js, no "
          "network, limited memory/CPU/time). Files and background processes persist between calls until reset.",
          "{\"type\":\"object\",\"properties\":{\"command\":{\"type\":\"string\",\"description\":\"the shell "
          "command\"}," COMMON_RUN_PROPS "},\"required\":[\"command\"]}",
          RUN_OUTPUT_SCHEMA, false, false, false, tool_run_command },
        { "run_python", "Run Python code", "Run Python 3 code (python3 -c CODE) in the sandbox; print() what you need.",
          "{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\",\"description\":\"Python source\"}," COMMON_RUN_PROPS
          "},\"required\":[\"code\"]}",
          RUN_OUTPUT_SCHEMA, false, false, false, tool_run_python },
        { "run_node", "Run JavaScript code",
          "Run JavaScript with Node.js (node -e CODE) in the sandbox; console.log() what you need.",
          "{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\",\"description\":\"JavaScript source\"}," COMMON_RUN_PROPS
          "},\"required\":[\"code\"]}",
          RUN_OUTPUT_SCHEMA, false, false, false, tool_run_node },
        { "write_file", "Write a file",
          "Create or replace a file in the sandbox (as the sandbox user). Relative paths are under /home/sandbox.",
          "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"},\"content\":{\"type\":\"string\"},"
          "\"encoding\":{\"type\":\"string\",\"enum\":[\"utf-8\",\"base64\"],\"description\":\"of content "
          "(default utf-8)\"}},\"required\":[\"path\",\"content\"]}",
          NULL, false, true, true, tool_write_file },
        { "read_file", "Read a file",
          "Read a file from the sandbox: text as text, other bytes as a base64 resource. Relative paths are under "
          "/home/sandbox.",
          "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}},\"required\":[\"path\"]}", NULL, true,
          false, true, tool_read_file },
        { "list_files", "List a directory",
          "List a directory of the sandbox (default /home/sandbox): type, size and name of each entry.",
          "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}}}", NULL, true, false, true,
          tool_list_files },
        { "reset", "Reset the sandbox",
          "Destroy this conversation's sandbox and start a fresh one: every file and process in it is gone.",
          "{\"type\":\"object\",\"properties\":{}}", NULL, false, true, false, tool_reset },
};

json_t *mcp_tools_list(void) {
        json_t *list = json_array();

        for (size_t i = 0; list && i < ELEMENTSOF(tools); i++) {
                const tool *d = &tools[i];
                json_t *in = json_loads(d->input_schema, 0, NULL);
                json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:{s:s,s:b,s:b,s:b,s:b}}", "name", d->name, "title", d->title,
                                      "description", d->description, "inputSchema", in ? in : json_object(),
                                      "annotations", "title", d->title, "readOnlyHint", d->read_only,
                                      "destructiveHint", d->destructive, "idempotentHint", d->idempotent,
                                      "openWorldHint", false);
                if (o && d->output_schema)
                        json_object_set_new(o, "outputSchema", json_loads(d->output_schema, 0, NULL));
                json_array_append_new(list, o);
        }
        return list;
}

bool mcp_tools_known(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(tools); i++)
                if (streq(tools[i].name, name))
                        return true;
        return false;
}

int mcp_tools_call(mcp_tools *t, const mcp_call *call, const char *name, json_t *args, json_t **ret) {
        json_auto_t *empty = json_object();

        *ret = NULL;
        if (args && !json_is_object(args))
                return *ret = tool_error("the arguments must be an object"), *ret ? 0 : -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(tools); i++)
                if (streq(tools[i].name, name)) {
                        capture_begin(t);
                        int r = tools[i].fn(t, call, args ? args : empty, ret);
                        capture_drop(t);
                        if (r >= 0 && !*ret)
                                r = -ENOMEM;
                        return r;
                }
        return -ENOENT;
}

int mcp_tools_new(ctl *c, const mcp_tools_options *o, mcp_tools **ret) {
        mcp_tools *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->c = c;
        t->o = *o;
        *ret = t;
        return 0;
}

void mcp_tools_free(mcp_tools *t) {
        if (!t)
                return;
        session_end(t);
        free(t);
}
