/* SPDX-License-Identifier: MIT */
/* Sessions: a sandbox per client uid, its timers, its teardown. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>

#include "keyed.h"
#include "log.h"
#include "notify.h"
#include "session.h"
#include "template.h"
#include "util.h"

void session_params_default(server *srv, session_params *p) {
        const sp_config *cfg = &srv->config.cfg;

        *p = (session_params) {
                .timeout_ms = cfg->session_timeout_ms,
                .idle_timeout_ms = cfg->session_idle_timeout_ms,
                .limits = {
                        .memory_bytes = cfg->memory_limit,
                        .cpu_pct = cfg->cpu_limit,
                        .pids = cfg->pids_limit,
                        .disk_bytes = cfg->disk_limit,
                },
        };
}

static bool json_object_of_strings(json_t *o, bool env) {
        const char *k;
        json_t *v;

        if (!json_is_object(o))
                return false;
        json_object_foreach(o, k, v) {
                if (!json_is_string(v) || !*k)
                        return false;
                /* jansson allows NUL in values: an env entry cannot hold one */
                if (strlen(json_string_value(v)) != json_string_length(v))
                        return false;
                if (env && strchr(k, '='))
                        return false;
        }
        return true;
}

/* A duration field: `<name>_ms` is its name, `<name>_s` the older alias
 * (docs/api.md, "Field names"). Both at once is a 400, not a guess. */
static int json_get_duration_ms(json_t *body, const char *ms_key, const char *s_key, const char *both,
                                uint64_t *ret_ms, sp_error *err) {
        uint64_t ms = 0, s = 0;
        int a, b;

        if ((a = json_get_uint(body, ms_key, INT64_MAX, &ms, err)) < 0 ||
            (b = json_get_uint(body, s_key, UINT32_MAX, &s, err)) < 0)
                return -EINVAL;
        if (a > 0 && b > 0)
                return sp_error_set(err, -EEXIST, "%s", both);
        if (a == 0 && b == 0)
                return 0;
        if ((a > 0 ? ms : s) == 0)
                return sp_error_set(err, -EINVAL, "invalid value for %s", a > 0 ? ms_key : s_key);
        *ret_ms = a > 0 ? ms : s * 1000;
        return 1;
}

/* Every per-request value may lower the configured one, never raise it:
 * larger values are capped, nonsense (negative, zero, wrong type) is 400,
 * a field given under both its name and its alias is 400 (-EEXIST). */
int session_params_from_json(server *srv, json_t *body, session_params *p, sp_error *err) {
        const sp_config *cfg = &srv->config.cfg;
        uint64_t v;
        int r;

        session_params_default(srv, p);
        if ((r = json_get_duration_ms(body, "timeout_ms", "timeout_s",
                                      "'timeout_ms' and its alias 'timeout_s' both given: send one", &v,
                                      err)) < 0)
                return r;
        if (r > 0)
                p->timeout_ms = MIN(v, cfg->session_timeout_ms);
        if ((r = json_get_duration_ms(body, "idle_timeout_ms", "idle_timeout_s",
                                      "'idle_timeout_ms' and its alias 'idle_timeout_s' both given: send one", &v,
                                      err)) < 0)
                return r;
        if (r > 0)
                p->idle_timeout_ms = MIN(v, cfg->session_idle_timeout_ms);
        if ((r = json_get_uint(body, "memory_mb", UINT32_MAX, &v, err)) < 0)
                return r;
        if (r > 0) {
                if (v < 8)
                        return sp_error_set(err, -EINVAL, "invalid value for memory_mb (at least 8)");
                p->limits.memory_bytes = MIN(v << 20, cfg->memory_limit);
        }
        if ((r = json_get_uint(body, "cpu_pct", UINT32_MAX, &v, err)) < 0)
                return r;
        if (r > 0) {
                if (v == 0)
                        return sp_error_set(err, -EINVAL, "invalid value for cpu_pct");
                p->limits.cpu_pct = MIN(v, cfg->cpu_limit);
        }
        p->env = json_object_get(body, "env");
        if (p->env && !json_is_null(p->env) && !json_object_of_strings(p->env, true))
                return sp_error_set(err, -EINVAL, "invalid value for env (an object of strings, names without '=')");
        if (json_object_get(body, "network")) {
                sp_error nerr = {};
                if (netpolicy_from_json(json_object_get(body, "network"), &p->network, &nerr) < 0)
                        return sp_error_set(err, -EINVAL, "invalid value for %s", nerr.message);
                if (p->network.mode != NETPOLICY_NONE && !srv->egress)
                        return sp_error_set(err, -EINVAL, "invalid value for network (this daemon has no [network] "
                                                          "uplink configured: only \"none\")");
        }
        p->labels = json_object_get(body, "labels");
        if (p->labels && !json_is_null(p->labels) && !json_object_of_strings(p->labels, false))
                return sp_error_set(err, -EINVAL, "invalid value for labels (an object of strings)");
        if (json_object_size(p->labels) > 64)
                return sp_error_set(err, -EINVAL, "invalid value for labels (at most 64)");
        return 0;
}

void session_params_done(session_params *p) {
        netpolicy_done(&p->network);
}

/* --- the sandbox's events -------------------------------------------- */

static void session_mark_ready(session *s, bool from_pool) {
        s->state = SESSION_READY;
        s->srv->n_starting--;
        if (!s->oneshot)
                s->srv->n_sessions++;
        s->last_activity_mono = now_mono();
        session_rearm_timer(s);
        log_session(LOG_INFO, s->id, "ready (sandbox %s%s, uid %u, %.1f ms)", s->sandbox_name,
                    from_pool ? " from the pool" : "", (unsigned) s->owner,
                    (now_mono() - s->created_mono) / 1000.0);
        notify_status(s->srv);
}

static void box_session_command(box *b, const sp_event *ev, void *userdata) {
        session *s = userdata;

        for (unsigned i = 0; i < s->n_jobs; i++)
                if (job_id(s->jobs[i]) == ev->id) {
                        job_handle_event(s->jobs[i], ev);
                        return;
                }
}

/* A command of the session is over: count it, forget it. */
static void session_job_finished(job *j, const job_result *res, void *userdata) {
        session *s = userdata;

        if (res->timed_out)
                s->srv->metrics.execs_timed_out++;
        if (res->truncated)
                s->srv->metrics.execs_truncated++;
        for (unsigned i = 0; i < s->n_jobs; i++)
                if (s->jobs[i] == j) {
                        s->jobs[i] = s->jobs[--s->n_jobs];
                        break;
                }
        job_free(j);
        if (s->state == SESSION_ENDING)
                return;
        session_touch(s);
        session_rearm_timer(s);
        if (s->oneshot && s->n_jobs == 0)
                session_end_later(s, "run finished");
}

command_set *session_command_set(session *s) {
        if (!s->commands)
                s->commands = command_set_new(s->srv->config.cfg.max_commands, s->srv->config.cfg.command_buffer_total);
        return s->commands;
}

int session_exec(session *s, const job_spec *spec_in, job **ret, sp_error *err) {
        job_spec spec = *spec_in;
        job *j;
        int r;

        if (s->state != SESSION_READY || !s->sb)
                return sp_error_set(err, -EPIPE, "the session's sandbox is not running");
        if (s->n_jobs == s->cap_jobs) {
                unsigned cap = s->cap_jobs ? s->cap_jobs * 2 : 4;
                job **n = realloc(s->jobs, cap * sizeof(*n));
                if (!n)
                        return sp_error_set(err, -ENOMEM, "out of memory");
                s->jobs = n;
                s->cap_jobs = cap;
        }
        spec.origin = (job_origin){.session_id = s->id, .key = s->key, .uid = s->owner, .oneshot = s->oneshot};
        r = job_start(s->srv->event, s->sb, s->oneshot ? NULL : s->id, &spec, session_job_finished, s, &j, err);
        if (r < 0)
                return r;
        s->jobs[s->n_jobs++] = j;
        s->n_commands++;
        s->srv->metrics.execs_started++;
        session_rearm_timer(s);
        *ret = j;
        return 0;
}

static void box_session_died(box *b, const char *cause, void *userdata) {
        session *s = userdata;

        log_session(LOG_WARNING, s->id, "sandbox %s died: %s", s->sandbox_name, cause);
        s->died = true;
        snprintf(s->died_cause, sizeof(s->died_cause), "%s", cause);
        /* Directly, not later: nothing of this session can make progress,
         * and every request waiting on it gets its answer now. */
        session_destroy(s, "sandbox_died");
}

static void box_session_ready(box *b, int error, const char *message, void *userdata) {
        /* a session only ever holds a ready box */
}

static const box_holder_ops session_holder = {
        .ready = box_session_ready,
        .command = box_session_command,
        .died = box_session_died,
};

/* The network helper made the sandbox's veth (or could not): the session
 * is ready now, or ends. */
static void session_net_attached(egress_link *l, const sp_error *err, void *userdata) {
        session *s = userdata;
        session_ready_fn cb = s->ready_cb;
        void *ud = s->ready_userdata;

        s->ready_cb = NULL;
        if (err) {
                s->net = NULL; /* gone with the failure */
                log_session(LOG_ERR, s->id, "%s", err->message);
                if (cb)
                        cb(s, err->code < 0 ? err->code : -EIO, err->message, ud);
                session_end_later(s, "network setup failed");
                return;
        }
        session_mark_ready(s, s->net_from_pool);
        if (cb)
                cb(s, 0, NULL, ud);
        else
                session_end_later(s, "start abandoned");
}

/* 0: ready; 1: its network is being made (session_net_attached follows). */
static int session_take(session *s, pool_sandbox *ps, bool from_pool, sp_error *err) {
        box *b = pool_sandbox_box(ps);
        int r;

        s->ps = ps;
        s->sb = box_sandbox(b);
        snprintf(s->sandbox_name, sizeof(s->sandbox_name), "%s", box_name(b));
        box_set_holder(b, &session_holder, s);
        /* warm sandboxes have only lo: a networked session's veth and
         * rules are made now, at take time, by the helper off the loop */
        if (s->network.mode == NETPOLICY_NONE || !s->srv->egress)
                return 0;
        s->net_from_pool = from_pool;
        r = egress_attach(s->srv->egress, s->id, sp_sandbox_pidfd(s->sb), sp_sandbox_root_fd(s->sb), &s->network,
                          session_net_attached, s, &s->net, err);
        return r < 0 ? r : 1;
}

/* The pool's answer to a session that waited for a sandbox. */
static void session_acquired(pool_sandbox *ps, int error, const char *message, void *userdata) {
        session *s = userdata;
        session_ready_fn cb = s->ready_cb;
        void *ud = s->ready_userdata;
        sp_error nerr = {};

        s->waiter = NULL;
        s->ready_cb = NULL;
        if (error < 0) {
                s->srv->metrics.sandbox_failures++;
                log_session(LOG_ERR, s->id, "no sandbox: %s", message ? message : strerror(-error));
        } else {
                int k;
                s->srv->metrics.sandboxes_started++;
                k = session_take(s, ps, false, &nerr);
                if (k < 0) {
                        error = nerr.code < 0 ? nerr.code : -EIO;
                        message = nerr.message;
                        log_session(LOG_ERR, s->id, "%s", nerr.message);
                        s->ps = NULL, s->sb = NULL;
                        pool_release(s->srv->pool, ps);
                } else if (k > 0) {
                        /* its network comes next: whoever waits, waits on */
                        s->ready_cb = cb;
                        s->ready_userdata = ud;
                        return;
                } else
                        session_mark_ready(s, false);
        }
        if (cb)
                cb(s, error, message, ud);
        else if (error >= 0)
                /* nobody waits for it (the client went away): nobody can use it */
                session_end_later(s, "start abandoned");
        if (error < 0)
                session_end_later(s, "sandbox setup failed");
}

static int on_session_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        session *s = userdata;
        usec_t now = now_mono();

        if (now >= s->created_mono + s->timeout_ms * USEC_PER_MSEC) {
                s->srv->metrics.sessions_expired++;
                session_destroy(s, "lifetime reached");
                return 0;
        }
        if (s->n_jobs == 0 && now >= s->last_activity_mono + s->idle_timeout_ms * USEC_PER_MSEC) {
                s->srv->metrics.sessions_expired++;
                session_destroy(s, "idle timeout");
                return 0;
        }
        session_rearm_timer(s);
        return 0;
}

void session_rearm_timer(session *s) {
        usec_t end = s->created_mono + s->timeout_ms * USEC_PER_MSEC;
        usec_t idle = s->last_activity_mono + s->idle_timeout_ms * USEC_PER_MSEC;
        usec_t now = now_mono();

        if (s->state != SESSION_READY || !s->timer)
                return;
        /* While a command runs the session is not idle: check again later. */
        if (s->n_jobs > 0 && idle <= now)
                idle = now + s->idle_timeout_ms * USEC_PER_MSEC;
        (void) sd_event_source_set_time(s->timer, MIN(end, idle));
        (void) sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

void session_touch(session *s) {
        s->last_activity_mono = now_mono();
}

/* --- lifecycle --------------------------------------------------------- */

int session_new(server *srv, uid_t owner, const session_params *p, bool oneshot, session_ready_fn cb,
                void *userdata, session **ret, sp_error *err) {
        const sp_config *cfg = &srv->config.cfg;
        pool_sandbox *ps = NULL;
        session *s;
        int r;

        if (!srv->pool)
                return sp_error_set(err, -ESHUTDOWN, "the daemon is shutting down");
        if (cfg->max_sessions_per_uid > 0) {
                unsigned n = 0;
                for (session *i = srv->sessions; i; i = i->next)
                        n += i->owner == owner && !i->oneshot;
                if (n >= cfg->max_sessions_per_uid) {
                        srv->metrics.no_capacity++;
                        return sp_error_set(err, -EDQUOT, "uid %u already has %u sessions (the limit)",
                                            (unsigned) owner, n);
                }
        }

        s = calloc(1, sizeof(*s));
        if (!s)
                return sp_error_set(err, -ENOMEM, "out of memory");
        s->srv = srv;
        s->owner = owner;
        s->oneshot = oneshot;
        s->state = SESSION_STARTING;
        s->created_real = now_real();
        s->created_mono = s->last_activity_mono = now_mono();
        s->timeout_ms = p->timeout_ms;
        s->idle_timeout_ms = p->idle_timeout_ms;
        s->limits = p->limits;
        s->tmpl = p->tmpl;
        s->env = p->env && json_is_object(p->env) ? json_deep_copy(p->env) : json_object();
        s->labels = p->labels && json_is_object(p->labels) ? json_deep_copy(p->labels) : json_object();
        r = random_id_hex(s->id, 16);
        if (r >= 0)
                r = netpolicy_copy(&p->network, &s->network);
        if (r >= 0 && (!s->env || !s->labels))
                r = -ENOMEM;
        if (r >= 0)
                r = sd_event_add_time(srv->event, &s->timer, CLOCK_MONOTONIC, UINT64_MAX, 10 * USEC_PER_MSEC,
                                      on_session_timer, s);
        if (r >= 0)
                r = sd_event_source_set_priority(s->timer, PRIO_ENDS);
        if (r >= 0)
                r = p->fork ? pool_acquire_fork(p->from ? p->from : srv->pool, &s->limits, p->fork, session_acquired, s,
                                                &s->waiter, err)
                            : pool_acquire(p->from ? p->from : srv->pool, &s->limits, session_acquired, s, &ps,
                                           &s->waiter, err);
        else
                sp_error_set(err, r, "cannot create a session: %s", strerror(-r));
        if (r < 0) {
                s->timer = sd_event_source_disable_unref(s->timer);
                json_decref(s->env);
                json_decref(s->labels);
                netpolicy_done(&s->network);
                free(s);
                return r;
        }
        if (s->waiter)
                pool_waiter_set_owner(s->waiter, owner); /* fair shares */
        srv->n_starting++;
        s->next = srv->sessions;
        if (srv->sessions)
                srv->sessions->prev = s;
        srv->sessions = s;
        *ret = s;
        if (ps) {
                r = session_take(s, ps, true, err);
                if (r < 0) {
                        r = err->code;
                        session_destroy(s, "network setup failed");
                        return r < 0 ? r : -EIO;
                }
                if (r == 0) {
                        session_mark_ready(s, true);
                        return 1;
                }
                /* a warm sandbox, its network being made: cb follows */
                s->ready_cb = cb;
                s->ready_userdata = userdata;
                return 0;
        }
        s->ready_cb = cb;
        s->ready_userdata = userdata;
        log_session(LOG_INFO, s->id, "%s for uid %u: waiting for the pool's next sandbox", oneshot ? "run" : "session",
                    (unsigned) owner);
        return 0;
}

session *session_lookup(server *srv, const char *id, uid_t uid, bool admin) {
        for (session *s = srv->sessions; s; s = s->next) {
                if (s->state != SESSION_READY || s->oneshot || s->end_src)
                        continue;
                if (!streq(s->id, id))
                        continue;
                return admin || s->owner == uid ? s : NULL;
        }
        return NULL;
}

/* A short memory of how sessions ended, so that the next call on one says
 * why it is gone instead of only "no such session". */
#define END_NOTES 256
typedef struct end_note {
        char id[33];
        uid_t owner;
        char text[200];
} end_note;
static end_note end_notes[END_NOTES];
static unsigned end_notes_next;

static void remember_end(session *s) {
        end_note *n = &end_notes[end_notes_next++ % END_NOTES];

        memcpy(n->id, s->id, sizeof(n->id));
        n->owner = s->owner;
        if (s->died)
                snprintf(n->text, sizeof(n->text), "sandbox_died: %s", s->died_cause);
        else
                snprintf(n->text, sizeof(n->text), "%s", s->end_reason);
}

const char *session_end_note(server *srv, const char *id, uid_t uid, bool admin) {
        for (unsigned i = 0; i < END_NOTES; i++) {
                end_note *n = &end_notes[i];
                if (n->id[0] && streq(n->id, id) && (admin || n->owner == uid))
                        return n->text;
        }
        return NULL;
}

void session_destroy(session *s, const char *reason) {
        server *srv = s->srv;
        usec_t t0 = now_mono();

        if (s->state == SESSION_ENDING)
                return;
        if (s->state == SESSION_STARTING)
                srv->n_starting--;
        else if (!s->oneshot)
                srv->n_sessions--;
        s->state = SESSION_ENDING;
        s->end_reason = reason;
        if (s->prev)
                s->prev->next = s->next;
        else
                srv->sessions = s->next;
        if (s->next)
                s->next->prev = s->prev;

        s->timer = sd_event_source_disable_unref(s->timer);
        s->end_src = sd_event_source_disable_unref(s->end_src);
        pool_cancel(TAKE_PTR(s->waiter));

        /* Kill first, so that every command's EOF and exit are final. */
        if (s->sb)
                (void) sp_sandbox_kill(s->sb);
        while (s->n_jobs > 0)
                job_abort(s->jobs[0], reason, s->died ? s->died_cause : NULL);
        /* their readers are told, then the exited commands go */
        command_set_free(TAKE_PTR(s->commands));
        if (s->ready_cb) {
                session_ready_fn cb = s->ready_cb;
                s->ready_cb = NULL;
                cb(s, -ECANCELED, reason, s->ready_userdata);
        }
        egress_detach(TAKE_PTR(s->net));
        /* The pool reaps it off the request's path and frees the slot. */
        if (s->ps && srv->pool)
                pool_release(srv->pool, s->ps);
        s->ps = NULL;
        s->sb = NULL;
        srv->metrics.sessions_ended++;
        if (!s->oneshot)
                remember_end(s);
        keyed_session_ended(s);
        log_session(LOG_INFO, s->id, "ended (%s%s%s), sandbox %s killed in %.2f ms", reason, s->died ? ": " : "",
                    s->died ? s->died_cause : "", s->sandbox_name[0] ? s->sandbox_name : "(none)",
                    (now_mono() - t0) / 1000.0);
        json_decref(s->env);
        json_decref(s->labels);
        netpolicy_done(&s->network);
        free(s->key);
        free(s->jobs);
        free(s);
        notify_status(srv);
}

static int on_session_end(sd_event_source *src, void *userdata) {
        session *s = userdata;

        session_destroy(s, s->end_reason ? s->end_reason : "ended");
        return 0;
}

void session_end_later(session *s, const char *reason) {
        if (s->state == SESSION_ENDING || s->end_src)
                return;
        s->end_reason = reason;
        if (sd_event_add_defer(s->srv->event, &s->end_src, on_session_end, s) < 0)
                session_destroy(s, reason); /* no memory for the defer: now, then */
        else
                (void) sd_event_source_set_priority(s->end_src, PRIO_ENDS);
}

void session_destroy_all(server *srv, const char *reason) {
        /* Kill them all first, so that they die in parallel, then reap. */
        for (session *s = srv->sessions; s; s = s->next)
                if (s->sb)
                        (void) sp_sandbox_kill(s->sb);
        while (srv->sessions)
                session_destroy(srv->sessions, reason);
}

json_t *session_to_json(session *s, bool with_usage) {
        json_t *j;

        /* timeout_s / idle_timeout_s: the older names, kept for old clients */
        j = json_pack("{s:s,s:i,s:s,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:{s:I,s:i,s:i,s:I},s:O,s:i,s:s}",
                      "id", s->id,
                      "owner_uid", (int) s->owner,
                      "state", s->state == SESSION_READY ? (s->n_jobs ? "busy" : "ready") : "starting",
                      "created_at", json_time(s->created_real),
                      "expires_at", json_time(s->created_real + s->timeout_ms * USEC_PER_MSEC),
                      "last_activity_at", json_time(s->created_real + (s->last_activity_mono - s->created_mono)),
                      "idle_expires_at", json_time(s->created_real + (s->last_activity_mono - s->created_mono) +
                                                   s->idle_timeout_ms * USEC_PER_MSEC),
                      "timeout_ms", (json_int_t) s->timeout_ms,
                      "idle_timeout_ms", (json_int_t) s->idle_timeout_ms,
                      "timeout_s", (json_int_t) (s->timeout_ms / 1000),
                      "idle_timeout_s", (json_int_t) (s->idle_timeout_ms / 1000),
                      "limits",
                      "memory_mb", (json_int_t) (s->limits.memory_bytes >> 20),
                      "cpu_pct", (int) s->limits.cpu_pct,
                      "pids", (int) s->limits.pids,
                      "disk_mb", (json_int_t) (sp_limits_disk_size(&s->limits) >> 20),
                      "labels", s->labels,
                      "running_commands", (int) s->n_jobs,
                      "sandbox", s->sandbox_name);
        if (j) {
                json_object_set_new(j, "network", netpolicy_to_json(&s->network));
                if (s->net)
                        json_object_set_new(j, "network_usage", egress_link_to_json(s->net, with_usage));
        }
        if (j && s->key)
                json_object_set_new(j, "key", json_string(s->key));
        if (j && s->tmpl)
                json_object_set_new(j, "template", json_string(template_name(s->tmpl)));
        if (j)
                json_object_set_new(j, "background_commands",
                                    json_pack("{s:i,s:i}", "running", (int) command_set_running(s->commands), "kept",
                                              (int) command_set_size(s->commands)));
        if (j && with_usage && s->sb) {
                sp_sandbox_stats st = {};
                if (sp_sandbox_stats_read(s->sb, &st) >= 0)
                        json_object_set_new(j, "usage",
                                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
                                                      "memory_current", (json_int_t) st.cgroup.memory_current,
                                                      "memory_peak", (json_int_t) st.cgroup.memory_peak,
                                                      "cpu_usec", (json_int_t) st.cgroup.cpu_usage_usec,
                                                      "pids_current", (json_int_t) st.cgroup.pids_current,
                                                      "oom_kills", (json_int_t) st.cgroup.oom_kills,
                                                      "nr_throttled", (json_int_t) st.cgroup.nr_throttled));
                else
                        json_object_set_new(j, "usage", json_null());
        }
        return j;
}
