/* SPDX-License-Identifier: MIT */
#pragma once

/* One small interface over two backends: cgroup v2 (cgroupfs written
 * directly, CLONE_INTO_CGROUP, cgroup.kill) and the v1/hybrid layout
 * (memory, cpu, cpuacct and pids controllers each in their own hierarchy).
 * The mode is detected once, when the manager is created. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox-limits.h"
#include "macro.h"

typedef enum sp_cgroup_mode {
        SP_CGROUP_AUTO = 0, /* detect: v2 when cgroup2 has memory+cpu+pids, else v1 */
        SP_CGROUP_V2,
        SP_CGROUP_V1,
} sp_cgroup_mode;

const char *sp_cgroup_mode_to_string(sp_cgroup_mode m); /* "v2", "v1" */

typedef struct sp_cgroup_manager sp_cgroup_manager;
typedef struct sp_cgroup sp_cgroup;

typedef struct sp_cgroup_manager_options {
        sp_cgroup_mode mode; /* SP_CGROUP_AUTO to detect */
        /* Parent of every sandbox cgroup, as a path relative to the hierarchy
         * root ("/system.slice/sandpool.service"). NULL: the cgroup the
         * calling process is in (per hierarchy on v1). */
        const char *parent;
        /* Subdirectory below the parent that holds the sandboxes, created
         * if missing and removed by sp_cgroup_manager_free() if empty.
         * NULL: "sandboxes". */
        const char *subdir;
        /* v2 only: move the calling process into <parent>/supervisor first,
         * because a v2 cgroup with processes cannot enable controllers for
         * its children ("no internal processes"). systemd Delegate=yes. */
        bool move_self_to_leaf;
        /* Root of the cgroup filesystem; NULL: /sys/fs/cgroup. Tests only:
         * a directory tree that imitates cgroupfs (fs_root or a subdirectory
         * with cgroup.controllers is cgroup2, one with cgroup.procs is a v1
         * hierarchy named after its controllers), where control files are
         * created on write. */
        const char *fs_root;
} sp_cgroup_manager_options;

/* Detect the layout, check that memory, cpu and pids can be enforced below
 * the parent, and create the sandboxes subtree. Fails with a message that
 * names the missing controller or the path it could not write. */
int sp_cgroup_manager_new(const sp_cgroup_manager_options *opts, sp_cgroup_manager **ret, sp_error *err);
sp_cgroup_mode sp_cgroup_manager_mode(const sp_cgroup_manager *m);
/* Human description of where sandboxes go, for logs and /v1/health. */
const char *sp_cgroup_manager_describe(const sp_cgroup_manager *m);
/* Remove the subtree it created (only when empty) and free. Every
 * sp_cgroup of the manager must be destroyed first. */
void sp_cgroup_manager_free(sp_cgroup_manager *m);

/* Create the cgroup of one sandbox and write its limits. */
int sp_cgroup_new(sp_cgroup_manager *m, const char *name, const sp_limits *limits, sp_cgroup **ret, sp_error *err);
/* The cgroup of a sandbox that another process of ours made with
 * sp_cgroup_new() (a factory): its directories are opened by name, nothing
 * is created or written. */
int sp_cgroup_open(sp_cgroup_manager *m, const char *name, sp_cgroup **ret, sp_error *err);
/* Close and free, leaving the directories where they are. */
void sp_cgroup_close(sp_cgroup *cg);
/* Remove the directories of a sandbox's cgroup by name (retrying briefly
 * while its last tasks exit). -ENOENT when there are none. */
int sp_cgroup_remove(sp_cgroup_manager *m, const char *name);
/* The fds the manager holds (so that a forked helper may keep them while
 * it closes the rest). Returns how many, at most max. */
size_t sp_cgroup_manager_fds(const sp_cgroup_manager *m, int *fds, size_t max);

/* v2: an O_DIRECTORY fd for clone3(CLONE_INTO_CGROUP); v1: -EOPNOTSUPP. */
int sp_cgroup_clone_fd(const sp_cgroup *cg);
/* Put a process into the cgroup (every hierarchy on v1). */
int sp_cgroup_attach(sp_cgroup *cg, pid_t pid);

typedef struct sp_cgroup_stats {
        uint64_t memory_current; /* bytes */
        uint64_t memory_peak;    /* bytes (memory.peak / max_usage_in_bytes) */
        uint64_t cpu_usage_usec;
        uint64_t pids_current;
        uint64_t oom_kills;      /* memory.events oom_kill / memory.oom_control oom_kill */
        uint64_t nr_throttled;   /* cpu.stat */
} sp_cgroup_stats;
int sp_cgroup_stats_read(const sp_cgroup *cg, sp_cgroup_stats *ret);

/* Kill every process in the cgroup (v2: cgroup.kill; v1: SIGKILL each pid
 * in cgroup.procs until empty). */
int sp_cgroup_kill(sp_cgroup *cg);
/* Freeze every process of the cgroup and wait (up to timeout_ms, then
 * -ETIME, thawed again) until the kernel says all are frozen; or thaw
 * (frozen false: does not wait). v2: cgroup.freeze; v1: the freezer
 * hierarchy, -EOPNOTSUPP when the host has none mounted. A frozen task
 * does not die of SIGKILL on v1 until thawed: sp_cgroup_kill() thaws. */
int sp_cgroup_freeze(sp_cgroup *cg, bool frozen, unsigned timeout_ms);
/* Remove the directories (retrying briefly while the last tasks exit) and
 * free. Returns the rmdir error, the object is freed regardless. */
int sp_cgroup_destroy(sp_cgroup *cg);
/* Host path of the cgroup (v2) or of its memory cgroup (v1), for tests. */
const char *sp_cgroup_path(const sp_cgroup *cg);

/* Remove leftovers of sandboxes whose owner died without cleaning up (a
 * daemon that crashed, a one-shot run killed with SIGKILL): every cgroup in
 * the subtree for which is_stale(name) says so and that has no process
 * left. Returns how many were removed. */
typedef bool (*sp_cgroup_stale_fn)(const char *name, void *userdata);
int sp_cgroup_manager_sweep(sp_cgroup_manager *m, sp_cgroup_stale_fn is_stale, void *userdata);

/* Write new limits into a live sandbox's cgroup (a pooled sandbox handed
 * to a session that asked for less). Lowering memory below what is in use
 * fails with -EBUSY on v1. */
int sp_cgroup_set_limits(sp_cgroup *cg, const sp_limits *limits, sp_error *err);
