/* SPDX-License-Identifier: MIT */
/* POST/GET /v1/sessions, GET/DELETE /v1/sessions/{id}. */
#include <sys/socket.h>

#include "api-sessions.h"
#include "api-tenants.h"
#include "keyed.h"
#include "api-templates.h"
#include "log.h"
#include "netpolicy.h"
#include "pool.h"
#include "session.h"

/* While the session's sandbox is coming, it is the request's op: a client
 * that goes away takes it with it. */
static void pending_free(request *r, void *op) {
        session *s = op;

        s->ready_cb = NULL;
        session_end_later(s, "client went away");
}

static void pending_abort(request *r, void *op) {
        request_set_op(r, NULL, NULL); /* frees it */
}

static const request_op_ops pending_ops = {
        .abort = pending_abort,
        .free = pending_free,
};

/* A new session's answer: its JSON, and for a keyed one that it is new
 * and what became of the key's previous session. */
static json_t *created_json(session *s) {
        json_t *j = session_to_json(s, false);
        char prev_id[33];
        const char *prev;

        if (!j || !s->key)
                return j;
        json_object_set_new(j, "reused", json_false());
        prev = keyed_previous_end(s->srv, s->owner, s->key, prev_id);
        if (prev) {
                json_object_set_new(j, "previous", json_pack("{s:s,s:s,s:b}", "id", prev_id, "end_reason", prev,
                                                             "evicted", strncmp(prev, "evicted", 7) == 0));
        }
        return j;
}

static void create_ready(session *s, int error, const char *message, void *userdata) {
        request *r = userdata;

        (void) request_take_op(r); /* the session is the client's now, or gone */
        if (error < 0) {
                if (r->srv->shutting_down)
                        reply_error(r, 503, "shutting_down", "the daemon is shutting down");
                else
                        reply_error(r, 500, "internal", "the sandbox failed to start: %s",
                                    message ? message : strerror(-error));
        } else {
                r->srv->metrics.sessions_created++;
                reply_json(r, 201, created_json(s));
        }
        request_complete(r);
}

/* The operator's grants for this caller: uid, gid and the supplementary
 * groups it had at connect(). */
static int check_network_ceiling(request *r, session_params *p) {
        gid_t groups[256];
        socklen_t glen = sizeof(groups);
        netcaller who = {.uid = r->cl->uid, .gid = r->cl->gid, .admin = r->cl->admin, .groups = groups};
        sp_error err = {};

        if (getsockopt(r->cl->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) >= 0)
                who.n_groups = glen / sizeof(gid_t);
        if (netceiling_check(r->srv->netceiling, &who, &p->network, &err) < 0) {
                reply_error(r, 400, "bad_request", "network not allowed: %s", err.message);
                return -EPERM;
        }
        return 0;
}

/* POST /v1/sessions {"key"}: the caller's live session of that key, if
 * there is one (200, reused). True when that (or a refusal) is the
 * answer; false when the create goes on, room made under the keyed caps. */
static bool keyed_reuse(request *r, const char *key) {
        server *srv = r->srv;
        sp_error err = {};
        bool starting;
        session *s = keyed_find(srv, r->cl->uid, key, &starting);

        if (s) {
                srv->metrics.keyed_hits++;
                session_touch(s); /* reuse is activity */
                session_rearm_timer(s);
                json_t *j = session_to_json(s, false);
                if (j)
                        json_object_set_new(j, "reused", json_true());
                reply_json(r, 200, j);
                return true;
        }
        if (starting) {
                reply_error(r, 409, "conflict", "a session for key '%s' is being made: ask again", key);
                return true;
        }
        if (!r->capacity_deadline) /* a retry after a wait is the same miss */
                srv->metrics.keyed_misses++;
        if (keyed_make_room(srv, r->cl->uid, &err) < 0) {
                reply_error(r, 429, "quota_exceeded", "%s", err.message);
                return true;
        }
        return false;
}

void api_sessions_create(request *r) {
        static const char *const known[] = { "env", "timeout_ms", "idle_timeout_ms", "memory_mb", "cpu_pct", "labels",
                                             "template", "network", "timeout_s", "idle_timeout_s" /* aliases */, "key" };
        json_auto_t *body = request_json_body(r, true);
        session_params p;
        const char *k;
        json_t *v;
        session *s = NULL;
        sp_error err = {};
        int e;

        if (!body)
                return;
        json_object_foreach(body, k, v) {
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        ok = ok || streq(known[i], k);
                if (!ok)
                        return reply_error(r, 400, "bad_request", "unknown field '%s'", k);
        }
        e = session_params_from_json(r->srv, body, &p, &err);
        if (e < 0) {
                reply_error(r, 400, "bad_request", "%s", err.message);
                return session_params_done(&p);
        }
        if (api_template_params(r, body, &p) < 0)
                return session_params_done(&p);
        if (p.network.mode != NETPOLICY_NONE && check_network_ceiling(r, &p) < 0)
                return session_params_done(&p);
        json_t *jkey = json_object_get(body, "key");
        const char *key = json_is_string(jkey) ? json_string_value(jkey) : NULL;
        if (jkey && !json_is_null(jkey) && (!key || strlen(key) != json_string_length(jkey) || !keyed_key_valid(key))) {
                reply_error(r, 400, "bad_request", "invalid value for key (1-%d printable ASCII characters)", KEY_MAX);
                return session_params_done(&p);
        }
        if (key && keyed_reuse(r, key))
                return session_params_done(&p);
        tenant_refusal q;
        if (tenant_admit_session(r->srv, r->cl->uid, r->cl->gid, &q) < 0) {
                reply_quota_exceeded(r, &q);
                return session_params_done(&p);
        }
        tenant_cap_limits(r->srv, r->cl->uid, r->cl->gid, &p.limits);
        e = session_new(r->srv, r->cl->uid, &p, false, create_ready, r, &s, &err);
        session_params_done(&p);
        if (e < 0)
                return reply_session_new_failed(r, e, &err);
        if (key && !(s->key = strdup(key))) {
                session_destroy(s, "out of memory");
                return reply_error(r, 500, "internal", "out of memory");
        }
        if (e > 0) {
                /* a warm sandbox from the pool: ready now */
                r->srv->metrics.sessions_created++;
                return reply_json(r, 201, created_json(s));
        }
        request_set_op(r, &pending_ops, s);
        request_suspend(r);
}

void api_sessions_list(request *r) {
        json_t *list = json_array();

        for (session *s = r->srv->sessions; s && list; s = s->next) {
                if (s->state != SESSION_READY || s->oneshot || s->end_src)
                        continue;
                if (!r->cl->admin && s->owner != r->cl->uid)
                        continue;
                json_array_append_new(list, session_to_json(s, false));
        }
        reply_json(r, 200, json_pack("{s:o}", "sessions", list ? list : json_array()));
}

void api_session_get(request *r) {
        reply_json(r, 200, session_to_json(r->session, true));
}

void api_session_delete(request *r) {
        session_destroy(r->session, "deleted by the client");
        r->session = NULL;
        reply_empty(r, 204);
}

void reply_session_new_failed(request *r, int e, const sp_error *err) {
        switch (e) {
        case -EBUSY:
                /* Every slot taken: the least recently used idle keyed
                 * session makes room (unless a slot is being freed
                 * already), and the request waits a little for it. */
                if (r->srv->pool) {
                        pool_stats ps;
                        pool_get_stats(r->srv->pool, &ps);
                        if (ps.destroying == 0)
                                (void) keyed_evict_for_capacity(r->srv);
                }
                if (request_wait_capacity(r))
                        return;
                r->srv->metrics.no_capacity++;
                return reply_error(r, 429, "no_capacity", "%s", err->message);
        case -EDQUOT: /* this uid's own cap */
                return reply_error(r, 429, "no_capacity", "%s", err->message);
        case -ESHUTDOWN:
                return reply_error(r, 503, "shutting_down", "the daemon is shutting down");
        default:
                return reply_error(r, 500, "internal", "cannot create a sandbox: %s", err->message);
        }
}
