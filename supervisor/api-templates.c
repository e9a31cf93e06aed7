/* SPDX-License-Identifier: MIT */
/* POST/GET /v1/templates, GET/DELETE /v1/templates/{name}. */
#include "api-sessions.h"
#include "api-templates.h"
#include "log.h"
#include "template.h"

/* While the capture runs, the request waits; a client that goes away
 * does not stop it (the template is made all the same). */
static void capture_op_free(request *r, void *op) {
        template_capture_forget(r->srv, r);
}

static void capture_op_abort(request *r, void *op) {
        request_set_op(r, NULL, NULL); /* frees it */
}

static const request_op_ops capture_ops = {
        .abort = capture_op_abort,
        .free = capture_op_free,
};

static void captured(template *t, int error, const char *message, void *userdata) {
        request *r = userdata;

        (void) request_take_op(r);
        if (error == -EFBIG)
                reply_error(r, 413, "too_large", "the session's files are too large for a template: %s", message);
        else if (error == -EPERM)
                reply_error(r, 400, "refused_content", "%s", message);
        else if (error < 0)
                reply_error(r, 500, "internal", "the capture failed: %s", message ? message : strerror(-error));
        else
                reply_json(r, 201, template_to_json(r->srv, t));
        request_complete(r);
}

void api_templates_create(request *r) {
        json_auto_t *body = request_json_body(r, false);
        const char *name = NULL, *from = NULL, *k;
        json_t *v;
        sp_error err = {};

        if (!body)
                return;
        json_object_foreach(body, k, v)
                if (!streq(k, "name") && !streq(k, "from_session"))
                        return reply_error(r, 400, "bad_request", "unknown field '%s'", k);
        if (json_unpack(body, "{s:s,s:s}", "name", &name, "from_session", &from) < 0)
                return reply_error(r, 400, "bad_request", "name and from_session (strings) are required");
        if (!sp_template_name_is_valid(name))
                return reply_error(r, 400, "bad_request",
                                   "invalid template name: a-z and 0-9 first, then also '.', '_', '-'; at most 32");
        session *s = session_lookup(r->srv, from, r->cl->uid, r->cl->admin);
        if (!s)
                return reply_error(r, 404, "not_found", "no such session: %s", from);
        int e = template_capture(r->srv, name, s, r->cl->uid, captured, r, &err);
        if (e == -EEXIST || e == -E2BIG || e == -EPIPE)
                return reply_error(r, 409, "conflict", "%s", err.message);
        if (e == -EINVAL)
                return reply_error(r, 400, "bad_request", "%s", err.message);
        if (e < 0)
                return reply_error(r, 500, "internal", "cannot capture: %s", err.message);
        session_touch(s);
        request_set_op(r, &capture_ops, r);
        request_suspend(r);
}

void api_templates_list(request *r) {
        json_t *a = templates_to_json(r->srv, r->cl->uid, r->cl->fd, r->cl->admin);
        reply_json(r, 200, json_pack("{s:o}", "templates", a ? a : json_array()));
}

static template *lookup(request *r) {
        /* the route's '*' segment */
        template *t = template_lookup(r->srv, r->session_id, r->cl->uid, r->cl->fd, r->cl->admin);
        if (!t)
                reply_error(r, 404, "not_found", "no such template: %s", r->session_id);
        /* cppcheck takes the type named 'template' for C++'s keyword */
        // cppcheck-suppress CastIntegerToAddressAtReturn
        return t;
}

void api_template_get(request *r) {
        template *t = lookup(r);
        if (t)
                reply_json(r, 200, template_to_json(r->srv, t));
}

void api_template_delete(request *r) {
        template *t = lookup(r);
        sp_error err = {};
        if (!t)
                return;
        /* shared with others, it is still its owner's (or an admin's) to delete */
        if (!r->cl->admin && r->cl->uid != template_owner(t))
                return reply_error(r, 404, "not_found", "no such template: %s", r->session_id);
        int e = template_delete(r->srv, t, &err);
        if (e == -EBUSY || e == -EAGAIN)
                return reply_error(r, 409, "in_use", "%s", err.message);
        if (e < 0)
                return reply_error(r, 500, "internal", "%s", err.message);
        reply_empty(r, 204);
}

int api_template_params(request *r, json_t *body, session_params *p) {
        json_t *v = json_object_get(body, "template");
        const char *why = NULL;

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v)) {
                reply_error(r, 400, "bad_request", "invalid value for template (a template's name)");
                return -EINVAL;
        }
        template *t = template_lookup(r->srv, json_string_value(v), r->cl->uid, r->cl->fd, r->cl->admin);
        if (!t) {
                reply_error(r, 404, "not_found", "no such template: %s", json_string_value(v));
                return -ENOENT;
        }
        p->from = template_pool(t, &why);
        if (!p->from) {
                reply_error(r, 409, "conflict", "template %s cannot be used: %s", template_name(t), why);
                return -EBUSY;
        }
        p->tmpl = t;
        return 0;
}

/* ---- forks ---------------------------------------------------------------------- */

static void fork_pending_free(request *r, void *op) {
        session *s = op;
        s->ready_cb = NULL;
        session_end_later(s, "client went away");
}

static const request_op_ops fork_ops = {
        .abort = capture_op_abort,
        .free = fork_pending_free,
};

static void fork_ready(session *s, int error, const char *message, void *userdata) {
        request *r = userdata;
        session *src = session_lookup(r->srv, r->session_id, r->cl->uid, r->cl->admin);

        (void) request_take_op(r);
        /* the factory thaws it after the copy; if that worker died in the
         * middle, it would stay frozen */
        if (src)
                template_thaw_sandbox(r->srv, src->sandbox_name);
        if (error < 0)
                reply_error(r, 500, "internal", "the fork failed: %s", message ? message : strerror(-error));
        else {
                r->srv->metrics.sessions_created++;
                json_t *j = session_to_json(s, false);
                if (j)
                        json_object_set_new(j, "forked_from", json_string(r->session_id));
                reply_json(r, 201, j);
        }
        request_complete(r);
}

void api_session_fork(request *r) {
        json_auto_t *body = request_json_body(r, true);
        session *src = r->session, *s = NULL;
        session_params p;
        sp_error err = {};
        const char *why = NULL;

        if (!body)
                return;
        if (json_object_size(body) > 0)
                return reply_error(r, 400, "bad_request", "a fork takes no parameters");
        if (!src->sb || sp_sandbox_upper_fd(src->sb) < 0)
                return reply_error(r, 409, "conflict", "the session's sandbox is not running");
        session_params_default(r->srv, &p);
        p.limits = src->limits;
        p.timeout_ms = src->timeout_ms;
        p.idle_timeout_ms = src->idle_timeout_ms;
        p.env = src->env;
        p.labels = src->labels;
        if (src->tmpl) {
                p.tmpl = src->tmpl;
                p.from = template_pool(src->tmpl, &why);
                if (!p.from)
                        return reply_error(r, 409, "conflict", "cannot fork: its template %s %s",
                                           template_name(src->tmpl), why);
        }
        pool_fork_source fs = {.upper_fd = sp_sandbox_upper_fd(src->sb), .id_base = sp_sandbox_id_base(src->sb),
                               .name = src->sandbox_name};
        p.fork = &fs;
        int e = session_new(r->srv, src->owner, &p, false, fork_ready, r, &s, &err);
        if (e < 0)
                return reply_session_new_failed(r, e, &err);
        session_touch(src);
        request_set_op(r, &fork_ops, s);
        request_suspend(r);
}
