/* SPDX-License-Identifier: MIT */
/* POST /v1/sessions/{id}/exec and POST /v1/run: a job with one HTTP sink,
 * which turns its events into the buffered JSON answer or the NDJSON
 * stream. The job knows nothing of this (job.h). */
#include <inttypes.h>

#include "api-exec.h"
#include "api-sessions.h"
#include "api-tenants.h"
#include "api-templates.h"
#include "exec-request.h"
#include "log.h"
#include "util.h"

/* Stream back-pressure: hold the job above HIGH bytes queued for the
 * client, release it below LOW. */
#define STREAM_HIGH (256u * 1024u)
#define STREAM_LOW (64u * 1024u)

static const char *const stream_names[2] = {"stdout", "stderr"};

/* The route's state for one request, from the body to the last byte. */
typedef struct exec_op {
        request *r;
        exec_params p;
        bool oneshot;       /* POST /v1/run: the session is the op's own */
        session *pending;   /* run: waiting for its sandbox */
        session_params run; /* run: where its sandbox comes from (a template) */
        session *s;         /* the session the command runs in */
        job_sink *sink;     /* attached while the command runs */
        bool stream;
        /* buffered: what was kept of each stream */
        char *data[2];
        size_t len[2], cap[2];
        /* stream: NDJSON lines for the client */
        char *q;
        size_t q_len, q_off, q_cap;
        bool q_done, q_error;
        char carry[2][4];   /* an incomplete UTF-8 sequence, per stream */
        size_t carry_len[2];
} exec_op;

/* ---- the stream --------------------------------------------------------------- */

static size_t queued(const exec_op *op) {
        return op->q_len - op->q_off;
}

/* Queue one NDJSON event for the client. */
static void stream_push(exec_op *op, json_t *ev) {
        _cleanup_free_ char *line = ev ? json_dumps(ev, JSON_COMPACT) : NULL;

        json_decref(ev);
        if (!line)
                return;
        size_t n = strlen(line);
        if (op->q_len + n + 1 > op->q_cap) {
                size_t cap = MAX(op->q_cap * 2, op->q_len + n + 1);
                char *b = realloc(op->q, cap);
                if (!b)
                        return;
                op->q = b;
                op->q_cap = cap;
        }
        memcpy(op->q + op->q_len, line, n);
        op->q[op->q_len + n] = '\n';
        op->q_len += n + 1;
        if (op->r->suspended)
                request_resume(op->r);
}

/* MHD asks for more of the chunked body. With nothing queued we suspend
 * the connection (returning 0 without suspending would spin the loop) and
 * the job's next event resumes it. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
        exec_op *op = cls;

        if (op->q_error || op->r->aborted)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        size_t avail = queued(op);
        if (avail > 0) {
                size_t n = MIN(avail, max);
                memcpy(buf, op->q + op->q_off, n);
                op->q_off += n;
                if (op->q_off == op->q_len)
                        op->q_off = op->q_len = 0;
                else if (op->q_off > 65536) {
                        memmove(op->q, op->q + op->q_off, op->q_len - op->q_off);
                        op->q_len -= op->q_off;
                        op->q_off = 0;
                }
                if (op->sink && queued(op) < STREAM_LOW)
                        job_hold(op->sink, false);
                return (ssize_t) n;
        }
        if (op->q_done)
                return MHD_CONTENT_READER_END_OF_STREAM;
        request_suspend(op->r);
        return 0;
}

static int stream_begin(exec_op *op) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, op, NULL);
        if (!resp)
                return -ENOMEM;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
        /* Proxies and clients must not buffer the stream. */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        reply_take_response(op->r, 200, resp);
        return 0;
}

/* ---- the sink ------------------------------------------------------------------ */

static void sink_output(job *j, int which, const char *data, size_t n, void *userdata) {
        exec_op *op = userdata;

        if (op->stream) {
                json_t *str = json_bytes(data, n, op->carry[which], &op->carry_len[which]);
                if (!str || json_string_length(str) == 0) {
                        json_decref(str);
                        return;
                }
                stream_push(op, json_pack("{s:s,s:o}", "type", stream_names[which], "data", str));
                if (queued(op) > STREAM_HIGH)
                        job_hold(op->sink, true);
                return;
        }
        /* the job keeps to the cap: what comes here is to be kept */
        if (op->len[which] + n > op->cap[which]) {
                size_t cap = MAX(op->cap[which] * 2, op->len[which] + n);
                char *b = realloc(op->data[which], cap);
                if (!b)
                        return;
                op->data[which] = b;
                op->cap[which] = cap;
        }
        memcpy(op->data[which] + op->len[which], data, n);
        op->len[which] += n;
}

static json_t *result_json(const exec_op *op, const job_result *res) {
        json_t *o = op->stream ? json_pack("{s:s}", "type", "exit") : json_object();

        if (!o || json_object_update_new(o, json_pack("{s:o,s:o,s:I,s:b,s:b,s:b}",
                                 "exit_code", res->signal ? json_null() : json_integer(res->exit_code),
                                 "signal", res->signal ? json_integer(res->signal) : json_null(),
                                 "duration_ms", (json_int_t) res->duration_ms,
                                 "timed_out", res->timed_out,
                                 "oom_killed", res->oom_killed,
                                 "truncated", res->truncated)) < 0) {
                json_decref(o);
                return NULL;
        }
        if (res->spawn_errno > 0)
                json_object_set_new(o, "error", json_sprintf("cannot execute the command: %s", strerror(res->spawn_errno)));
        if (res->ended_by) {
                json_object_set_new(o, "session_ended", json_true());
                json_object_set_new(o, "end_reason", json_string(res->ended_by));
                if (res->ended_detail)
                        json_object_set_new(o, "error", json_sprintf("the sandbox died: %s", res->ended_detail));
        }
        return o;
}

static void sink_exit(job *j, const job_result *res, void *userdata) {
        exec_op *op = userdata;
        request *r = op->r;
        json_t *o = result_json(op, res);

        op->sink = NULL;
        op->s = NULL; /* it may be ending: the request must not hold on to it */
        r->session = NULL;
        if (op->stream) {
                stream_push(op, o);
                op->q_done = true;
                if (r->suspended)
                        request_resume(r);
                return;
        }
        if (!o) {
                reply_error(r, 500, "internal", "out of memory");
        } else {
                for (int i = 0; i < 2; i++)
                        json_object_set_new(o, stream_names[i],
                                            json_bytes(op->data[i] ? op->data[i] : "", op->len[i], NULL, NULL));
                reply_json(r, 200, o);
        }
        request_complete(r);
}

static const job_sink_ops http_sink = {
        .output = sink_output,
        .exit = sink_exit,
};

/* ---- the op --------------------------------------------------------------------- */

/* The client went away: its command goes (a foreground command lives as
 * long as someone waits for it), and so does a run's sandbox. */
static void op_abort(request *r, void *data) {
        exec_op *op = data;

        op->q_error = true;
        if (op->sink) {
                r->srv->metrics.execs_aborted++;
                job_detach(TAKE_PTR(op->sink));
        }
        if (op->pending) {
                op->pending->ready_cb = NULL;
                session_end_later(TAKE_PTR(op->pending), "client went away");
        }
}

static void op_free(request *r, void *data) {
        exec_op *op = data;

        op_abort(r, op);
        exec_params_done(&op->p);
        for (int i = 0; i < 2; i++)
                free(op->data[i]);
        free(op->q);
        free(op);
}

static const request_op_ops exec_op_ops = {
        .abort = op_abort,
        .free = op_free,
};

static void reply_params_error(request *r, int err, const sp_error *e) {
        if (err == -EINVAL)
                reply_error(r, 400, "bad_request", "%s", e->message);
        else
                reply_error(r, 500, "internal", "out of memory");
}

void api_reply_spawn_error(request *r, int err, const sp_error *e) {
        if (err == -E2BIG)
                reply_error(r, 400, "bad_request", "argv and env are too large: %s", e->message);
        else if (err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN || err == -ESRCH)
                /* -ESRCH: PID 1 died and its control socket said so before
                 * its pidfd ended the session (a soak found this race) */
                reply_error(r, 409, "conflict", "the sandbox is no longer running: %s", e->message);
        else
                reply_error(r, 500, "internal", "cannot start the command: %s", e->message);
}

/* Start the command in s, with the op as its sink: the answer comes from
 * the sink. False when nothing started (the reply says why). */
static bool exec_begin(exec_op *op, session *s) {
        request *r = op->r;
        sp_error err = {};
        job *j;
        job_spec spec = {
                .argv = op->p.argv, .envp = op->p.envp, .cwd = op->p.cwd, .stdin_data = op->p.stdin_data,
                .stdin_len = op->p.stdin_len, .timeout_ms = op->p.timeout_ms, .max_output = op->p.max_output,
        };

        op->stream = op->p.stream;
        tenant_refusal q;
        if (tenant_admit_command(r->srv, r->cl->uid, r->cl->gid, true, &q) < 0) {
                reply_quota_exceeded(r, &q);
                return false;
        }
        int k = session_exec(s, &spec, &j, &err);
        if (k < 0) {
                tenant_refund_command(r->srv, r->cl->uid);
                api_reply_spawn_error(r, k, &err);
                return false;
        }
        if (job_attach(j, &http_sink, op, &op->sink) < 0) {
                /* no sink: nobody waits, the job is killed */
                reply_error(r, 500, "internal", "out of memory");
                return false;
        }
        op->s = s;
        if (!op->stream) {
                request_suspend(r);
                return true;
        }
        if (stream_begin(op) < 0) {
                job_detach(TAKE_PTR(op->sink));
                reply_error(r, 500, "internal", "out of memory");
                return false;
        }
        stream_push(op, json_pack("{s:s,s:s,s:I,s:I,s:I}", "type", "start", "session_id", op->oneshot ? "" : s->id,
                                  "command_id", (json_int_t) job_id(j), "timeout_ms", (json_int_t) job_timeout_ms(j),
                                  "max_output_bytes", (json_int_t) job_max_output(j)));
        return true;
}

/* The body, parsed into a new op owned by the request. */
static exec_op *op_new(request *r, session *s) {
        json_auto_t *body = request_json_body(r, false);
        sp_error err = {};

        if (!body)
                return NULL;
        session_params run = {};
        /* run: the one field that is not the command's */
        if (!s && api_template_params(r, body, &run) < 0)
                return NULL;
        if (!s)
                (void) json_object_del(body, "template");
        exec_op *op = calloc(1, sizeof(*op));
        if (!op) {
                reply_error(r, 500, "internal", "out of memory");
                return NULL;
        }
        op->r = r;
        op->run = run;
        int k = exec_params_from_json(r->srv, s, body, &op->p, &err);
        if (k == 0 && op->p.background)
                k = sp_error_set(&err, -EINVAL, "a background command is started with POST /v1/sessions/{id}/commands");
        if (k < 0) {
                exec_params_done(&op->p);
                free(op);
                reply_params_error(r, k, &err);
                return NULL;
        }
        /* the tier's ceiling on the command's time */
        op->p.timeout_ms = tenant_cap_timeout(r->srv, r->cl->uid, r->cl->gid, op->p.timeout_ms);
        request_set_op(r, &exec_op_ops, op);
        return op;
}

void api_exec(request *r) {
        exec_op *op = op_new(r, r->session);

        if (op)
                (void) exec_begin(op, r->session);
}

/* ---- one shot -------------------------------------------------------------------- */

static void run_ready(session *s, int error, const char *message, void *userdata) {
        exec_op *op = userdata;
        request *r = op->r;

        op->pending = NULL;
        if (error < 0) {
                if (r->srv->shutting_down)
                        reply_error(r, 503, "shutting_down", "the daemon is shutting down");
                else
                        reply_error(r, 500, "internal", "the sandbox failed to start: %s",
                                    message ? message : strerror(-error));
                request_complete(r);
                return;
        }
        if (!exec_begin(op, s)) {
                session_end_later(s, "run failed to start");
                request_complete(r);
        } else if (op->stream)
                /* the stream's response is ready: the access handler queues it */
                request_complete(r);
}

void api_run(request *r) {
        session_params sp;
        session *s = NULL;
        sp_error err = {};
        /* An earlier attempt that waited for capacity left its op: a new
         * one replaces it. */
        exec_op *op = op_new(r, NULL);
        int k;

        if (!op)
                return;
        op->oneshot = true;
        /* a run is a session and a command: both quotas, before a sandbox is taken */
        tenant_refusal q;
        if (tenant_admit_session(r->srv, r->cl->uid, r->cl->gid, &q) < 0 ||
            tenant_admit_command(r->srv, r->cl->uid, r->cl->gid, false, &q) < 0)
                return reply_quota_exceeded(r, &q);
        session_params_default(r->srv, &sp);
        tenant_cap_limits(r->srv, r->cl->uid, r->cl->gid, &sp.limits);
        sp.tmpl = op->run.tmpl;
        sp.from = op->run.from;
        /* the command's own timeout bounds the sandbox's life */
        sp.timeout_ms = op->p.timeout_ms + 10000;
        k = session_new(r->srv, r->cl->uid, &sp, true, run_ready, op, &s, &err);
        if (k < 0)
                return reply_session_new_failed(r, k, &err);
        if (k > 0) {
                /* a warm sandbox: start at once */
                if (!exec_begin(op, s))
                        session_end_later(s, "run failed to start");
                return;
        }
        op->pending = s;
        request_suspend(r);
}
