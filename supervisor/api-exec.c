/* SPDX-License-Identifier: MIT */
/* POST /v1/sessions/{id}/exec and POST /v1/run: buffered or streamed. */
#include "log.h"
#include "session.h"

/* MHD asks for more of the chunked body. With nothing queued we suspend
 * the connection (returning 0 without suspending would spin the loop) and
 * the job resumes it when it queues the next event. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
        request *r = cls;
        stream_queue *q = r->stream;
        size_t avail, n;

        if (!q || q->error || r->aborted)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        avail = q->len - q->off;
        if (avail > 0) {
                n = MIN(avail, max);
                memcpy(buf, q->buf + q->off, n);
                q->off += n;
                if (q->off == q->len)
                        q->off = q->len = 0;
                else if (q->off > 65536) {
                        memmove(q->buf, q->buf + q->off, q->len - q->off);
                        q->len -= q->off;
                        q->off = 0;
                }
                if (r->job)
                        exec_stream_drained(r->job);
                return n;
        }
        if (q->done)
                return MHD_CONTENT_READER_END_OF_STREAM;
        request_suspend(r);
        return 0;
}

static int stream_begin(request *r) {
        struct MHD_Response *resp;

        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, r, NULL);
        if (!resp)
                return -ENOMEM;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
        /* Proxies and clients must not buffer the stream. */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        reply_take_response(r, 200, resp);
        return 0;
}

static void reply_exec_params_error(request *r, int err, char *msg) {
        if (err == -ENOMEM || !msg)
                reply_error(r, 500, "internal", "out of memory");
        else
                reply_error(r, 400, "bad_request", "%s", msg);
        free(msg);
}

static void reply_spawn_error(request *r, int err, const sp_error *e) {
        if (err == -E2BIG)
                reply_error(r, 400, "bad_request", "argv and env are too large: %s", e->message);
        else if (err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN)
                reply_error(r, 409, "conflict", "the sandbox is no longer running: %s", e->message);
        else
                reply_error(r, 500, "internal", "cannot start the command: %s", e->message);
}

/* Start p in s for r: the answer comes from the job. */
static void exec_begin(request *r, session *s, exec_params *p) {
        sp_error err = {};
        int k;

        if (p->stream) {
                r->stream = calloc(1, sizeof(stream_queue));
                if (!r->stream)
                        return reply_error(r, 500, "internal", "out of memory");
        }
        k = exec_start(s, p, r, &err);
        if (k < 0) {
                free(r->stream);
                r->stream = NULL;
                return reply_spawn_error(r, k, &err);
        }
        if (p->stream) {
                if (stream_begin(r) < 0) {
                        exec_detach_request(r->job);
                        r->job = NULL;
                        return reply_error(r, 500, "internal", "out of memory");
                }
                return;
        }
        request_suspend(r);
}

void api_exec(request *r) {
        json_auto_t *body = request_json_body(r, false);
        exec_params p = {};
        char *msg = NULL;
        int k;

        if (!body)
                return;
        k = exec_params_from_json(r->srv, r->session, body, &p, &msg);
        if (k < 0) {
                exec_params_done(&p);
                return reply_exec_params_error(r, k, msg);
        }
        exec_begin(r, r->session, &p);
        exec_params_done(&p);
}

static void exec_params_free(void *p) {
        exec_params_done(p);
        free(p);
}

static void run_ready(session *s, int error, const char *message, void *userdata) {
        request *r = userdata;
        exec_params *p = r->op_data;

        r->pending_session = NULL;
        if (error < 0) {
                if (r->srv->shutting_down)
                        reply_error(r, 503, "shutting_down", "the daemon is shutting down");
                else
                        reply_error(r, 500, "internal", "the sandbox failed to start: %s",
                                    message ? message : strerror(-error));
                request_complete(r);
                return;
        }
        exec_begin(r, s, p);
        if (r->reply) {
                /* nothing started (or a stream response is ready): in both
                 * cases the access handler queues it once resumed */
                if (!r->job)
                        session_end_later(s, "run failed to start");
                request_complete(r);
        }
}

void api_run(request *r) {
        json_auto_t *body = request_json_body(r, false);
        _cleanup_free_ exec_params *p = calloc(1, sizeof(exec_params));
        session_params sp;
        session *s = NULL;
        sp_error err = {};
        char *msg = NULL;
        int k;

        if (!body)
                return;
        if (!p)
                return reply_error(r, 500, "internal", "out of memory");
        k = exec_params_from_json(r->srv, NULL, body, p, &msg);
        if (k < 0) {
                exec_params_done(p);
                return reply_exec_params_error(r, k, msg);
        }
        session_params_default(r->srv, &sp);
        /* the command's own timeout bounds the sandbox's life */
        sp.timeout_ms = p->timeout_ms + 10000;
        if (r->op_free) /* from an earlier attempt that waited for capacity */
                r->op_free(r->op_data);
        r->op_data = TAKE_PTR(p);
        r->op_free = exec_params_free;
        k = session_new(r->srv, r->cl->uid, &sp, true, run_ready, r, &s, &err);
        if (k < 0)
                return reply_session_new_failed(r, k, &err);
        if (k > 0) {
                /* a warm sandbox: start at once */
                exec_begin(r, s, r->op_data);
                if (!r->job)
                        session_end_later(s, "run failed to start");
                return;
        }
        r->pending_session = s;
        request_suspend(r);
}
