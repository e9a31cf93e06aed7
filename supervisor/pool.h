/* SPDX-License-Identifier: MIT */
#pragma once

/* The pre-warmed pool. Sandboxes are started ahead of demand on the event
 * loop (the runtime's setup stages arrive as events on each sandbox's
 * control socket; the loop never waits for one), handed out whole, and
 * destroyed off the request's path when their session ends: a sandbox is
 * never handed out twice.
 *
 * Accounting: every live sandbox of the daemon counts against
 * max_pool_size, whether warm, warming, in a session, or being destroyed;
 * sessions that start a sandbox themselves (the pool was empty) ask
 * pool_reserve() first and report it with pool_adopt(). */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "idslot.h"
#include "sandbox.h"

typedef struct pool pool;

typedef struct pool_options {
        uint32_t pool_size, min_pool_size, max_pool_size;
        bool aggressive_cleanup;
        uint64_t idle_timeout_ms; /* container_idle_timeout */
} pool_options;

/* What a new sandbox is made of. Pointers are borrowed and must outlive
 * the pool (or the next pool_reconfigure). */
typedef struct pool_env {
        const char *rootfs;
        const char *stage_dir;
        const char *idslot_dir;
        sp_cgroup_manager *cgroups;
        const sp_seccomp_program *seccomp;
        sp_limits limits;      /* the configured defaults */
        uid_t id_base;
        uint32_t n_slots;
} pool_env;

/* A sandbox handed out: the caller owns all of it and gives it back with
 * pool_release(). */
typedef struct pool_sandbox {
        sp_sandbox *sb;
        sp_idslot slot;
        char name[32];
        uint64_t created_usec; /* CLOCK_MONOTONIC when it became ready */
} pool_sandbox;

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

/* Hand out a warm sandbox with these limits (memory, cpu, pids may be lower
 * than the defaults and are written into its cgroup; the disk quota must be
 * the default). 0, or -EAGAIN when none is warm, or -EINVAL when the limits
 * need a sandbox of their own. Either way a refill is triggered. */
int pool_take(pool *p, const sp_limits *limits, pool_sandbox *ret, sp_error *err);
/* Room for one more sandbox outside the pool (the pool was empty)? If so
 * it is counted as allocated from now on. */
bool pool_reserve(pool *p);
/* Undo a pool_reserve() whose sandbox could not be made. */
void pool_unreserve(pool *p);
/* Make a sandbox now for a caller that could not get a warm one (after
 * pool_reserve()): same naming, id range and limits as the pool's. The
 * caller watches it for READY itself. */
int pool_start_sandbox(pool *p, const sp_limits *limits, pool_sandbox *ret, sp_error *err);
/* A session is over: kill its sandbox now, reap it off the request path,
 * then free the slot and refill. Takes ownership. */
void pool_release(pool *p, pool_sandbox *s);

void pool_get_stats(pool *p, pool_stats *ret);
/* Figures in the systemd STATUS line and logs: "pool 8/10 warm, 2 in use, ..." */
void pool_describe(pool *p, char *buf, size_t size);
