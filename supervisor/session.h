/* SPDX-License-Identifier: MIT */
#pragma once

/* A session: one sandbox handed to one client uid, with a lifetime and an
 * idle timeout enforced by one timer, and the commands running in it. */

#include "command.h"
#include "egress.h"
#include "idslot.h"
#include "job.h"
#include "netpolicy.h"
#include "pool.h"
#include "server.h"


typedef enum session_state {
        SESSION_STARTING, /* the sandbox's PID 1 is still setting up */
        SESSION_READY,
        SESSION_ENDING,   /* removed from the list, being torn down */
} session_state;

/* Called once when the sandbox is ready (error 0) or failed to start
 * (error < 0, message says why). */
typedef void (*session_ready_fn)(session *s, int error, const char *message, void *userdata);

struct session {
        server *srv;
        session *prev, *next;
        char id[33];          /* 128 random bits, hex */
        uid_t owner;
        bool oneshot;         /* POST /v1/run: not listed, ends with its command */
        char *key;            /* a keyed session's key (keyed.h), or NULL */
        uint64_t n_commands;  /* started in it */
        session_state state;

        struct template *tmpl; /* what its sandbox was made from; NULL: the image */
        pool_sandbox *ps;     /* the sandbox, borrowed from the pool while ready */
        pool_waiter *waiter;  /* STARTING: waiting for the pool's next one */
        sp_sandbox *sb;       /* the runtime's sandbox of ps, NULL until ready */
        char sandbox_name[32];
        sd_event_source *timer, *end_src;

        usec_t created_real, created_mono, last_activity_mono;
        uint64_t timeout_ms, idle_timeout_ms;
        sp_limits limits;
        json_t *env;          /* object: default environment for its commands */
        json_t *labels;       /* object of strings */
        netpolicy network;    /* what it asked for (none: only lo) */
        egress_link *net;     /* its veth and rules, if networked (being made while STARTING) */
        bool net_from_pool;
        const char *end_reason;
        bool died;            /* its PID 1 died under it: end_reason says how */
        char died_cause[160];

        job **jobs;           /* its commands, running; owned */
        unsigned n_jobs, cap_jobs;
        command_set *commands; /* its background commands (api-commands.c); owned, NULL until one */

        session_ready_fn ready_cb;
        void *ready_userdata;
};

typedef struct session_params {
        uint64_t timeout_ms, idle_timeout_ms;
        sp_limits limits;
        json_t *env;    /* borrowed, may be NULL */
        json_t *labels; /* borrowed, may be NULL */
        netpolicy network; /* owned: session_params_done() */
        struct template *tmpl; /* borrowed, may be NULL: the image alone */
        pool *from;     /* NULL: the default pool; else tmpl's */
        const pool_fork_source *fork; /* a fork: its sandbox gets a copy of these files */
} session_params;
void session_params_done(session_params *p);

void session_params_default(server *srv, session_params *p);
/* Validate the optional body of POST /v1/sessions against the config. 0, or
 * -EINVAL with err naming the field, or -EEXIST with err saying which field
 * came under both its name and its alias. */
int session_params_from_json(server *srv, json_t *body, session_params *p, sp_error *err);

/* Take a sandbox: a warm one from the pool (returns 1: ready now, cb is
 * not called), or the pool's next one (returns 0: cb is called when it is
 * ready or failed). -EBUSY when every slot is in use (the caller may wait
 * for capacity), -EDQUOT when the uid has its maximum of sessions. */
int session_new(server *srv, uid_t owner, const session_params *p, bool oneshot,
                session_ready_fn cb, void *userdata, session **ret, sp_error *err);
/* The session with that id, if uid may see it (owner or admin); else NULL,
 * the same for "not yours" as for "does not exist". */
session *session_lookup(server *srv, const char *id, uid_t uid, bool admin);
void session_touch(session *s);
/* Tear it down now: kill everything, answer every waiting request, give
 * the sandbox back to the pool (which reaps it off the loop), free. */
void session_destroy(session *s, const char *reason);
/* The same, from the next loop iteration: safe inside the session's own
 * event callbacks. */
void session_end_later(session *s, const char *reason);
void session_destroy_all(server *srv, const char *reason);
/* Why the session with that id, visible to uid, ended, if it did lately
 * (a short memory of recent ends); NULL when unknown. */
const char *session_end_note(server *srv, const char *id, uid_t uid, bool admin);
/* Start a command in the ready session: the job is the session's until it
 * ends (its sinks are the caller's to attach). -EPIPE when the sandbox is
 * gone. */
int session_exec(session *s, const job_spec *spec, job **ret, sp_error *err);

/* The session's JSON (GET /v1/sessions/{id}, list, create); with_usage
 * reads the cgroup. */
json_t *session_to_json(session *s, bool with_usage);
/* The session's background commands (made at the first one, with the
 * configured bounds; NULL when out of memory): sandpool's own API and the
 * E2B listener's processes are the same set. */
command_set *session_command_set(session *s);
void session_rearm_timer(session *s);
