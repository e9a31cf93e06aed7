/* SPDX-License-Identifier: MIT */
#pragma once

/* The pre-warmed pool: the one owner of every sandbox of the daemon, from
 * its start to its reaping, and the only code that makes sandboxes ready,
 * warm or cold. Sandboxes are started ahead of demand (the runtime's setup
 * arrives as events on each box; the loop never waits for one), handed out
 * whole to a session, which borrows the box and gives it back with
 * pool_release(); the pool then destroys it off the request's path: a
 * sandbox is never handed out twice.
 *
 * A caller that finds no warm sandbox waits on the same warming path: its
 * waiter gets the next one that becomes ready (or one made for its own
 * limits). Every live sandbox counts against max_pool_size, whether warm,
 * warming, in use or being destroyed. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "box.h"
#include "sandbox.h"

typedef struct pool pool;

typedef struct pool_options {
        uint32_t pool_size, min_pool_size, max_pool_size;
        bool aggressive_cleanup;
        uint64_t idle_timeout_ms; /* container_idle_timeout */
        /* Share the cap with this pool (and its group): every live sandbox
         * of every pool of the group counts against max_pool_size. NULL:
         * a pool alone. Read by pool_new() only. */
        pool *share_cap_with;
} pool_options;

/* What a new sandbox is made of. Pointers are borrowed and must outlive
 * the pool (or the next pool_reconfigure). */
typedef struct pool_env {
        box_env box;
        sp_limits limits; /* the configured defaults */
} pool_env;

/* One sandbox of the pool's, for its whole life. A session borrows it
 * between pool_acquire() and pool_release(). */
typedef struct pool_sandbox pool_sandbox;
/* A caller waiting for a sandbox (see pool_acquire). */
typedef struct pool_waiter pool_waiter;

box *pool_sandbox_box(const pool_sandbox *ps);

#define POOL_HIST_BUCKETS 12
typedef struct pool_histogram {
        uint64_t le_usec[POOL_HIST_BUCKETS]; /* upper bounds, last is +Inf */
        uint64_t counts[POOL_HIST_BUCKETS];  /* non-cumulative */
        uint64_t sum_usec, count;
} pool_histogram;

typedef struct pool_stats {
        uint32_t available, warming, allocated, destroying, total, max_capacity, target;
        uint64_t hits, misses, created, failed, died_warm, destroyed, shrunk;
        uint64_t last_create_usec, last_destroy_usec;
        pool_histogram create_latency, destroy_latency;
        const char *last_error;
} pool_stats;

/* Called when capacity may have appeared (a sandbox became warm, or a slot
 * was freed): queued requests retry. */
typedef void (*pool_capacity_fn)(void *userdata);

int pool_new(sd_event *e, const pool_env *env, const pool_options *o, pool_capacity_fn cb, void *userdata,
             pool **ret);
/* Destroy every warm and warming sandbox, wait for those being destroyed. */
void pool_free(pool *p);
/* SIGHUP: new sizes and limits. Warm sandboxes made with other limits are
 * replaced; sessions are not touched. */
void pool_reconfigure(pool *p, const pool_env *env, const pool_options *o);

/* The sandbox is ready for the caller (error 0), or could not be made
 * (error < 0, message says why). */
typedef void (*pool_acquired_fn)(pool_sandbox *ps, int error, const char *message, void *userdata);

/* A sandbox with these limits (memory, cpu and pids may be lower than the
 * defaults: they are written into its cgroup): a warm one now (returns 1,
 * *ret_ps set, cb not called), or the next one that becomes ready, which
 * cb receives (returns 0, *ret_waiter set until then), or -EBUSY when
 * every slot is taken. A refill is triggered either way. */
int pool_acquire(pool *p, const sp_limits *limits, pool_acquired_fn cb, void *userdata, pool_sandbox **ret_ps,
                 pool_waiter **ret_waiter, sp_error *err);
/* A fork's sandbox: made now, for this caller only, with the source
 * sandbox's files copied into its upper (the factory freezes the source
 * meanwhile). Never warm, never retried with other files: cb gets it or
 * the failure. Returns 0 and *ret_waiter, or -EBUSY when the cap is
 * reached. */
typedef struct pool_fork_source {
        int upper_fd;      /* borrowed: sent to the factory during the call */
        uid_t id_base;
        const char *name;  /* its sandbox's (cgroup) name */
} pool_fork_source;
int pool_acquire_fork(pool *p, const sp_limits *limits, const pool_fork_source *src, pool_acquired_fn cb,
                      void *userdata, pool_waiter **ret_waiter, sp_error *err);
/* The caller no longer waits: cb will not be called. */
void pool_cancel(pool_waiter *w);
/* A session is over: kill its sandbox now, reap it off the request path,
 * then free the slot and refill. The box's events stop reaching the
 * session at once. */
void pool_release(pool *p, pool_sandbox *ps);

/* Fair shares among waiters: a waiter may name its owner (a client uid);
 * with over_share set, a sandbox that becomes ready goes to the oldest
 * waiter whose owner is not over its share, else to the oldest. */
typedef bool (*pool_over_share_fn)(uint32_t owner, void *userdata);
void pool_set_fair_share(pool *p, pool_over_share_fn over_share, void *userdata);
void pool_waiter_set_owner(pool_waiter *w, uint32_t owner);

void pool_get_stats(pool *p, pool_stats *ret);
/* Figures in the systemd STATUS line and logs: "pool 8/10 warm, 2 in use, ..." */
void pool_describe(pool *p, char *buf, size_t size);
