/* SPDX-License-Identifier: MIT */
#pragma once

/* A box: the supervisor's one handle on one live sandbox, from its start
 * to its reaping. It owns the runtime's sandbox, its host id range and
 * both of its event sources (the control socket and the pidfd) for its
 * whole life, decodes each event once, and forwards it to whoever holds
 * the box now (the pool while it warms, a session while in use) through
 * that holder's callbacks. Nothing else watches a sandbox's fds, so no
 * event source can outlive its fd or be decoded twice.
 *
 * What ends work is never starved by what produces it: both sources run
 * at PRIO_ENDS, and neither stays enabled once it has nothing left to say
 * (a hung-up control socket is disabled at once; the pidfd fires once).
 *
 * Callbacks may do anything, including box_destroy() of this very box:
 * the box does not touch itself after calling one. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "factory.h"
#include "idslot.h"
#include "sandbox.h"

typedef struct box box;

typedef struct box_holder_ops {
        /* Setup is over: error 0, or < 0 with the runtime's message. Once. */
        void (*ready)(box *b, int error, const char *message, void *userdata);
        /* A command started or exited (SP_EVENT_STARTED, SP_EVENT_EXITED). */
        void (*command)(box *b, const sp_event *ev, void *userdata);
        /* PID 1 died after setup; cause says how, in the kernel's terms
         * ("its PID 1 was killed by the OOM killer"). Once. */
        void (*died)(box *b, const char *cause, void *userdata);
} box_holder_ops;

typedef enum box_state {
        BOX_STARTING,   /* PID 1 is setting up */
        BOX_READY,
        BOX_DEAD,       /* PID 1 is gone; waiting for box_destroy() */
        BOX_DESTROYING, /* killed; freed once the kernel has reaped it */
} box_state;

/* What sandboxes are made of. Pointers are borrowed and must outlive
 * every box made from them. */
typedef struct box_env {
        factory *factory;      /* makes the sandboxes and removes their cgroups */
        const char *idslot_dir;
        uid_t id_base;
        uint32_t n_slots;
        factory_layers layers; /* template layers, a fork's files; zero: the image alone */
} box_env;

/* Start a sandbox named name with these limits: claims a host id range
 * (trying slot_hint first) and asks the factory for it (env is only read
 * during the call). The holder's
 * ready() comes when the factory hands it over (or fails). */
int box_start(sd_event *e, const box_env *env, const sp_limits *limits, const char *name, uint32_t slot_hint,
              const box_holder_ops *ops, void *userdata, box **ret, sp_error *err);
/* Hand the box to another holder: its events go there from now on. */
void box_set_holder(box *b, const box_holder_ops *ops, void *userdata);

typedef void (*box_destroyed_fn)(box *b, uint64_t kill_to_reaped_usec, void *userdata);
/* Kill everything inside; once the kernel has reaped PID 1 (the pidfd
 * says so, off the caller's path), remove the cgroup, release the id
 * range, call done (may be NULL) and free the box. No holder callback
 * runs after this. */
void box_destroy(box *b, box_destroyed_fn done, void *userdata);
/* Kill everything inside now, if it has been made (no-op otherwise). */
void box_kill(box *b);
/* The same as box_destroy(), blocking until reaped (shutdown). */
void box_destroy_now(box *b);

/* Lower memory, cpu or pids of a ready box (a warm sandbox handed to a
 * session that asked for less): written into its cgroup. */
int box_set_limits(box *b, const sp_limits *limits, sp_error *err);

box_state box_get_state(const box *b);
sp_sandbox *box_sandbox(const box *b);
const char *box_name(const box *b);
const sp_limits *box_limits(const box *b);
uint64_t box_started_usec(const box *b); /* CLOCK_MONOTONIC of box_start() */
uint64_t box_ready_usec(const box *b);   /* of READY, 0 before */
