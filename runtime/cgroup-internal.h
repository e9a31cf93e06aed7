/* SPDX-License-Identifier: MIT */
#pragma once

/* Private to the cgroup layer: the backend vtable, the manager and cgroup
 * structs both backends fill, the cgroupfs file helpers, and the pure
 * parsers (exported here so the unit tests can feed them fixtures). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"

/* The controllers a sandbox needs. cpuacct only exists on v1 (on v2,
 * cpu.stat carries usage_usec). */
enum {
        SP_CTRL_MEMORY = 1u << 0,
        SP_CTRL_CPU = 1u << 1,
        SP_CTRL_CPUACCT = 1u << 2,
        SP_CTRL_PIDS = 1u << 3,
        /* v1 only, optional: used to freeze a sandbox while its files are
         * copied (templates, forks); v2 has cgroup.freeze in every cgroup */
        SP_CTRL_FREEZER = 1u << 4,
};
#define SP_CTRL_V2_NEEDED (SP_CTRL_MEMORY | SP_CTRL_CPU | SP_CTRL_PIDS)
#define SP_CTRL_V1_NEEDED (SP_CTRL_MEMORY | SP_CTRL_CPU | SP_CTRL_CPUACCT | SP_CTRL_PIDS)

/* Bits of a controller mask as text: "memory, cpu, pids". */
void sp_cgroup_ctrl_mask_format(unsigned mask, char *buf, size_t size);
/* One controller name -> its bit, 0 for controllers we do not use. */
unsigned sp_cgroup_ctrl_from_name(const char *name, size_t len);

/* One cgroup filesystem mount, from /proc/self/mountinfo. */
typedef struct sp_cgroup_mount {
        char *path;         /* mount point, unescaped */
        char *root;         /* root of the mount inside the hierarchy ("/" normally) */
        unsigned dev_major, dev_minor; /* one hierarchy = one superblock */
        bool v2;
        unsigned controllers; /* v1: SP_CTRL_* bits from the super options */
} sp_cgroup_mount;

void sp_cgroup_mounts_free(sp_cgroup_mount *m, size_t n);
/* Keep only the cgroup and cgroup2 mounts of a mountinfo text. */
int sp_cgroup_parse_mountinfo(const char *text, sp_cgroup_mount **ret_mounts, size_t *ret_n);

/* In a /proc/<pid>/cgroup text, the path of the hierarchy that holds
 * `controller` (v1, e.g. "memory": matches "4:memory:/a" and
 * "3:cpu,cpuacct:/b"), or of the unified hierarchy ("0::/path") when
 * controller is NULL. -ENOENT when there is no such line. */
int sp_cgroup_parse_proc_cgroup(const char *text, const char *controller, char **ret_path);

/* "cpuset cpu io memory pids" (cgroup.controllers, cgroup.subtree_control)
 * -> SP_CTRL_* bits. */
unsigned sp_cgroup_parse_controllers(const char *text);

/* First token of a cgroupfs value: a decimal number, or "max" (UINT64_MAX). */
int sp_cgroup_parse_u64(const char *text, uint64_t *ret);
/* Value of `key` in a flat keyed file ("usage_usec 123\nnr_throttled 0\n").
 * -ENOENT when the key is absent. */
int sp_cgroup_parse_keyed(const char *text, const char *key, uint64_t *ret);

/* The limit values as written to the files. */
int sp_cgroup_format_cpu_max(uint32_t cpu_pct, char *buf, size_t size);   /* "25000 100000" */
int sp_cgroup_format_u64(uint64_t v, char *buf, size_t size);
/* Checks shared by both backends; a limit of 0 is never "unlimited". */
int sp_cgroup_limits_validate(const sp_limits *l, sp_error *err);
bool sp_cgroup_name_is_valid(const char *name);

#define SP_CGROUP_CPU_PERIOD_US 100000u

/* --- cgroupfs I/O ------------------------------------------------------ */

/* open(O_WRONLY|O_CLOEXEC) + one write. `create` is for the fake trees of
 * the unit tests only (real cgroupfs files always exist). */
int sp_cgroup_write_at(int dirfd, const char *file, const char *value, bool create);
/* Read a small file whole into buf (NUL-terminated). Returns its length;
 * -E2BIG when it does not fit. */
int sp_cgroup_read_at(int dirfd, const char *file, char *buf, size_t size);
/* Read a file of any size into a malloc'ed, NUL-terminated buffer. */
int sp_cgroup_read_alloc_at(int dirfd, const char *file, char **ret);
int sp_cgroup_read_u64_at(int dirfd, const char *file, uint64_t *ret);
int sp_cgroup_read_keyed_at(int dirfd, const char *file, const char *key, uint64_t *ret);

/* mkdirat that reports whether it created the directory (EEXIST is fine). */
int sp_cgroup_mkdir_at(int dirfd, const char *name, bool *ret_created);
/* rmdir, retrying for up to timeout_ms while the kernel still counts
 * exiting tasks (EBUSY). ENOENT counts as done. */
int sp_cgroup_rmdir_at(int dirfd, const char *name, unsigned timeout_ms, bool fake);

/* SIGKILL every process listed in <dirfd>/cgroup.procs until the file is
 * empty, at most `rounds` times. Each pid is held by a pidfd and checked to
 * be a member (its /proc/<pid>/cgroup line for `controller` — NULL for v2 —
 * equals `rel_path`) before it is signalled, so a pid that was reused by an
 * unrelated process between reading the list and the kill is never hit.
 * -EBUSY if processes remain. */
int sp_cgroup_kill_procs(int dirfd, const char *controller, const char *rel_path, unsigned rounds);

/* --- manager and cgroup ------------------------------------------------ */

#define SP_CGROUP_MAX_HIER 5

/* One hierarchy the sandboxes live in: the single unified one on v2, one
 * per distinct v1 mount (memory, cpu[,cpuacct], cpuacct, pids) on v1. */
typedef struct sp_cgroup_hier {
        unsigned controllers;
        char *ctrl_name;     /* name used to find it in /proc/<pid>/cgroup; NULL on v2 */
        char *mount_path;    /* where the hierarchy is mounted */
        char *parent_rel;    /* parent as seen in /proc/self/cgroup */
        char *parent_path;   /* mount_path + parent */
        char *subtree_rel;   /* parent_rel/subdir */
        char *subtree_path;  /* parent_path/subdir */
        int parent_fd;
        int subtree_fd;
        bool created_subtree; /* we made <parent>/<subdir>: remove it at the end */
} sp_cgroup_hier;

/* Close a hierarchy's fds, free its paths and leave it empty (fds -EBADF). */
void sp_cgroup_hier_done(sp_cgroup_hier *h);

typedef struct sp_cgroup_backend sp_cgroup_backend;

struct sp_cgroup_manager {
        sp_cgroup_mode mode;
        const sp_cgroup_backend *backend;
        bool fake;                 /* fs_root given: a test tree, not cgroupfs */
        bool host_has_swap;        /* SwapTotal > 0 */
        bool no_memsw;             /* v1 without swap accounting: swappiness 0 instead */
        bool created_leaf;         /* v2: we made <parent>/supervisor */
        char *subdir;
        char *describe;
        size_t n_hier;
        sp_cgroup_hier hier[SP_CGROUP_MAX_HIER];
};

struct sp_cgroup {
        sp_cgroup_manager *manager;
        char *name;
        char *path;   /* v2: the cgroup; v1: the memory cgroup */
        size_t n_fd;
        int fd[SP_CGROUP_MAX_HIER]; /* one per manager->hier[] */
};

/* What a backend implements; cgroup.c does the common work (validation,
 * allocation, mkdir of the sandbox directories) around these. */
struct sp_cgroup_backend {
        sp_cgroup_mode mode;
        /* Probe whether this mode can enforce memory, cpu and pids below
         * the parent, from the mounts and the caller's /proc/self/cgroup;
         * on success fill m->hier[] (paths only, no fds, nothing created).
         * On failure say what is missing in err. */
        int (*probe)(sp_cgroup_manager *m, const sp_cgroup_mount *mounts, size_t n_mounts,
                     const char *proc_cgroup, const sp_cgroup_manager_options *opts, sp_error *err);
        /* Create the subtree (and on v2 the supervisor leaf, controllers). */
        int (*setup)(sp_cgroup_manager *m, const sp_cgroup_manager_options *opts, sp_error *err);
        /* Write the limits into a freshly made cgroup (cg->fd[] are open). */
        int (*apply_limits)(sp_cgroup *cg, const sp_limits *l, sp_error *err);
        int (*attach)(sp_cgroup *cg, pid_t pid);
        int (*stats)(const sp_cgroup *cg, sp_cgroup_stats *ret);
        int (*kill)(sp_cgroup *cg);
        /* Write the freeze (or thaw) request; do not wait. */
        int (*freeze)(sp_cgroup *cg, bool frozen);
        /* 1 when every task is frozen, 0 while freezing, < 0 on error. */
        int (*is_frozen)(const sp_cgroup *cg);
};

extern const sp_cgroup_backend sp_cgroup_backend_v2;
extern const sp_cgroup_backend sp_cgroup_backend_v1;

/* a + "/" + b without doubled or trailing slashes ("/" + "x" = "/x"). */
char *sp_cgroup_path_join(const char *a, const char *b);
/* Host path of a hierarchy path: mount point + (path minus mount root). */
char *sp_cgroup_mount_resolve(const sp_cgroup_mount *mnt, const char *rel);
