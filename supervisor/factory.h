/* SPDX-License-Identifier: MIT */
#pragma once

/* The sandbox factory: the blocking half of every sandbox start and
 * destroy, off the event loop. A few worker processes (one per CPU, at
 * most four) are forked from sandpoold at start-up, while it is still
 * small, and keep only their socket and the cgroup manager's fds. A worker
 * creates the sandbox's cgroup and writes its limits, clones PID 1 (with
 * CLONE_PARENT: the daemon is PID 1's parent, holds it by pidfd and reaps
 * it), writes the id maps, stages the idmapped overlay, waits for READY
 * while it serves other requests, releases the staging mounts, and hands
 * the pidfd, the control socket and the root fd back over SCM_RIGHTS. It
 * also removes a sandbox's cgroup once the daemon has reaped it.
 *
 * PID 1 is a fork of a small process, not of the grown daemon. If a worker
 * dies, the daemon says so, fails the starts it had in hand, starts a new
 * one and keeps serving every sandbox that exists. */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "sandbox.h"

typedef struct factory factory;
typedef struct factory_request factory_request;

typedef struct factory_env {
        const char *rootfs;
        const char *stage_dir;
        sp_cgroup_manager *cgroups;
        const sp_seccomp_program *seccomp;
} factory_env;

/* Fork n_workers workers (0: one per CPU, at most 4). env's pointers are
 * borrowed and must outlive the factory. */
int factory_new(sd_event *e, const factory_env *env, unsigned n_workers, factory **ret, sp_error *err);
/* Stop the workers (they kill what they were making) and reap them. */
void factory_free(factory *f);
unsigned factory_n_workers(const factory *f);

/* The answer to factory_start(): a ready sandbox (error 0, sb owned by the
 * callee from now on), or an error with its message; sb may then be a
 * dead sandbox to destroy (its PID 1 was cloned and killed). */
typedef void (*factory_done_fn)(int error, const char *message, sp_sandbox *sb, void *userdata);
/* What goes between the image and the new sandbox's upper: template
 * layers (O_PATH directory fds, topmost first, borrowed: sent now), and
 * for a fork the source sandbox's upper fd, id base and (cgroup) name:
 * the worker freezes the source while it copies. */
typedef struct factory_layers {
        const int *fds;
        size_t n;
        int seed_fd;
        uid_t seed_id_base;
        const char *seed_name; /* NULL: not a fork (zeroed: the image alone) */
} factory_layers;

/* Make a sandbox named name with its id range at id_base, on layers (NULL:
 * the image alone). The request is valid until done is called or it is
 * cancelled. */
int factory_start(factory *f, const char *name, uid_t id_base, const sp_limits *limits, const factory_layers *fl,
                  factory_done_fn done, void *userdata, factory_request **ret, sp_error *err);
/* The caller no longer waits: done is not called; what the worker makes is
 * killed, reaped and removed. */
void factory_cancel(factory_request *req);
/* The sandbox was reaped: a worker removes its cgroup directories, and
 * closes root_fd and upper_fd (taken; -EBADF for none), the sandbox's last
 * holds on its mounts, so that their teardown runs there, not on the
 * event loop. */
void factory_remove_cgroup(factory *f, const char *name, int root_fd, int upper_fd);
