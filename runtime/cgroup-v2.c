/* SPDX-License-Identifier: MIT */
/* cgroup v2 backend: one unified hierarchy, cgroupfs written directly.
 *
 *   <parent>/supervisor/     the daemon itself (move_self_to_leaf)
 *   <parent>/<subdir>/<name> one cgroup per sandbox
 *
 * v2's "no internal processes" rule: a non-root cgroup that holds processes
 * cannot enable controllers for its children (EBUSY on subtree_control).
 * Under systemd's Delegate=yes the daemon starts in the delegated cgroup
 * itself, so it must first move into a leaf of its own. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-internal.h"

#define LEAF_NAME "supervisor"

static const sp_cgroup_mount *find_v2_mount(const sp_cgroup_mount *mounts, size_t n, const char *fs_root) {
        const sp_cgroup_mount *first = NULL;
        for (size_t i = 0; i < n; i++) {
                if (!mounts[i].v2)
                        continue;
                /* A pure v2 host mounts it at /sys/fs/cgroup itself; prefer
                 * that over a hybrid "unified" mount or a bind mount. */
                if (streq(mounts[i].path, fs_root))
                        return &mounts[i];
                if (!first)
                        first = &mounts[i];
        }
        return first;
}

static int v2_probe(sp_cgroup_manager *m, const sp_cgroup_mount *mounts, size_t n_mounts, const char *proc_cgroup,
                    const sp_cgroup_manager_options *opts, sp_error *err) {
        const char *fs_root = opts->fs_root ?: "/sys/fs/cgroup";
        const sp_cgroup_mount *mnt = find_v2_mount(mounts, n_mounts, fs_root);
        if (!mnt)
                return sp_error_set(err, -ENOMEDIUM, "cgroup v2 is not mounted (no cgroup2 in /proc/self/mountinfo)");

        _cleanup_free_ char *rel = NULL;
        if (opts->parent)
                rel = strdup(opts->parent);
        else if (sp_cgroup_parse_proc_cgroup(proc_cgroup, NULL, &rel) < 0)
                return sp_error_set(err, -ENOENT, "cgroup v2 at %s: no \"0::\" line in /proc/self/cgroup", mnt->path);
        if (!rel)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        _cleanup_free_ char *path = sp_cgroup_mount_resolve(mnt, rel);
        if (!path)
                return sp_error_set(err, -ENOMEM, "Out of memory");

        /* The controllers the parent may hand to its children. */
        char buf[512];
        _cleanup_free_ char *file = sp_cgroup_path_join(path, "cgroup.controllers");
        if (!file)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        int r = sp_cgroup_read_at(AT_FDCWD, file, buf, sizeof(buf));
        if (r < 0)
                return sp_error_set(err, r, "cgroup v2 at %s: cannot read %s: %s", mnt->path, file, strerror(-r));
        buf[strcspn(buf, "\n")] = 0;
        unsigned missing = SP_CTRL_V2_NEEDED & ~sp_cgroup_parse_controllers(buf);
        if (missing) {
                char names[64];
                sp_cgroup_ctrl_mask_format(missing, names, sizeof(names));
                return sp_error_set(err, -EOPNOTSUPP,
                                    "cgroup v2 at %s has no %s controller%s for %s (cgroup.controllers: \"%s\")",
                                    mnt->path, names, strchr(names, ',') ? "s" : "", rel, buf);
        }

        sp_cgroup_hier *h = &m->hier[0];
        h->controllers = SP_CTRL_V2_NEEDED;
        h->mount_path = strdup(mnt->path);
        h->parent_rel = TAKE_PTR(rel);
        h->parent_path = TAKE_PTR(path);
        m->n_hier = 1;
        return h->mount_path ? 0 : sp_error_set(err, -ENOMEM, "Out of memory");
}

/* Write "+memory +cpu +pids" (only those not yet on) to subtree_control. */
static int enable_controllers(sp_cgroup_manager *m, int dirfd, const char *dir_path, sp_error *err) {
        char buf[512] = "";
        int r = sp_cgroup_read_at(dirfd, "cgroup.subtree_control", buf, sizeof(buf));
        if (r < 0 && !(m->fake && r == -ENOENT))
                return sp_error_set(err, r, "Failed to read %s/cgroup.subtree_control: %s", dir_path, strerror(-r));
        unsigned todo = SP_CTRL_V2_NEEDED & ~sp_cgroup_parse_controllers(buf);
        if (!todo)
                return 0;
        char line[64];
        snprintf(line, sizeof(line), "%s%s%s", todo & SP_CTRL_MEMORY ? "+memory " : "",
                 todo & SP_CTRL_CPU ? "+cpu " : "", todo & SP_CTRL_PIDS ? "+pids" : "");
        if (m->fake) /* no kernel to turn "+x" into the list in a test tree */
                snprintf(line, sizeof(line), "memory cpu pids");
        r = sp_cgroup_write_at(dirfd, "cgroup.subtree_control", line, m->fake);
        if (r == -EBUSY)
                return sp_error_set(err, r,
                                    "Failed to enable %s in %s/cgroup.subtree_control: the cgroup holds processes "
                                    "and v2 forbids controllers below a cgroup with processes; move the daemon to "
                                    "a leaf (move_self_to_leaf)",
                                    line, dir_path);
        if (r < 0)
                return sp_error_set(err, r, "Failed to enable %s in %s/cgroup.subtree_control: %s", line, dir_path,
                                    strerror(-r));
        return 0;
}

static int move_self_to_leaf(sp_cgroup_manager *m, sp_cgroup_hier *h, sp_error *err) {
        bool created;
        int r = sp_cgroup_mkdir_at(h->parent_fd, LEAF_NAME, &created);
        if (r < 0)
                return sp_error_set(err, r, "Failed to create %s/" LEAF_NAME ": %s", h->parent_path, strerror(-r));
        m->created_leaf = created;
        char pid[32];
        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        /* cgroup.procs moves the whole thread group. */
        r = sp_cgroup_write_at(h->parent_fd, LEAF_NAME "/cgroup.procs", pid, m->fake);
        if (r < 0)
                return sp_error_set(err, r, "Failed to move the daemon into %s/" LEAF_NAME "/cgroup.procs: %s",
                                    h->parent_path, strerror(-r));
        return 0;
}

static int v2_setup(sp_cgroup_manager *m, const sp_cgroup_manager_options *opts, sp_error *err) {
        sp_cgroup_hier *h = &m->hier[0];
        int r;
        h->parent_fd = open(h->parent_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (h->parent_fd < 0) {
                r = negative_errno();
                return sp_error_set(err, r, "Failed to open cgroup %s: %s", h->parent_path, strerror(-r));
        }
        if (opts->move_self_to_leaf) {
                r = move_self_to_leaf(m, h, err);
                if (r < 0)
                        return r;
        }
        r = enable_controllers(m, h->parent_fd, h->parent_path, err);
        if (r < 0)
                return r;

        h->subtree_rel = sp_cgroup_path_join(h->parent_rel, m->subdir);
        h->subtree_path = sp_cgroup_path_join(h->parent_path, m->subdir);
        if (!h->subtree_rel || !h->subtree_path)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        r = sp_cgroup_mkdir_at(h->parent_fd, m->subdir, &h->created_subtree);
        if (r < 0)
                return sp_error_set(err, r, "Failed to create cgroup %s: %s", h->subtree_path, strerror(-r));
        h->subtree_fd = openat(h->parent_fd, m->subdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (h->subtree_fd < 0) {
                r = negative_errno();
                return sp_error_set(err, r, "Failed to open cgroup %s: %s", h->subtree_path, strerror(-r));
        }
        return enable_controllers(m, h->subtree_fd, h->subtree_path, err);
}

static int write_limit(const sp_cgroup *cg, const char *file, const char *value, sp_error *err) {
        int r = sp_cgroup_write_at(cg->fd[0], file, value, cg->manager->fake);
        if (r < 0)
                return sp_error_set(err, r, "Failed to write \"%s\" to %s/%s: %s", value, cg->path, file,
                                    strerror(-r));
        return 0;
}

static int v2_apply_limits(sp_cgroup *cg, const sp_limits *l, sp_error *err) {
        char v[64];
        int r;
        sp_cgroup_format_u64(l->memory_bytes, v, sizeof(v));
        if ((r = write_limit(cg, "memory.max", v, err)) < 0)
                return r;
        r = sp_cgroup_write_at(cg->fd[0], "memory.swap.max", "0", cg->manager->fake);
        /* Without swap accounting (swapaccount=0) the file does not exist:
         * harmless on a host without swap, a hole in the limit otherwise. */
        if (r == -ENOENT && !cg->manager->host_has_swap)
                r = 0;
        if (r < 0)
                return sp_error_set(err, r, "Failed to write \"0\" to %s/memory.swap.max: %s%s", cg->path,
                                    strerror(-r), r == -ENOENT ? " (swap accounting is off and the host has swap)" : "");
        /* Kill the whole sandbox on OOM, not one random process of it: a
         * half-killed sandbox (PID 1 alive, its command gone) is worse. */
        if ((r = write_limit(cg, "memory.oom.group", "1", err)) < 0)
                return r;
        sp_cgroup_format_cpu_max(l->cpu_pct, v, sizeof(v));
        if ((r = write_limit(cg, "cpu.max", v, err)) < 0)
                return r;
        sp_cgroup_format_u64(l->pids, v, sizeof(v));
        return write_limit(cg, "pids.max", v, err);
}

static int v2_attach(sp_cgroup *cg, pid_t pid) {
        char v[32];
        snprintf(v, sizeof(v), "%d", (int) pid);
        return sp_cgroup_write_at(cg->fd[0], "cgroup.procs", v, cg->manager->fake);
}

static int v2_stats(const sp_cgroup *cg, sp_cgroup_stats *ret) {
        int fd = cg->fd[0];
        char buf[1024];
        int r = sp_cgroup_read_u64_at(fd, "memory.current", &ret->memory_current);
        if (r < 0)
                return r;
        /* memory.peak appeared in Linux 5.19. */
        r = sp_cgroup_read_u64_at(fd, "memory.peak", &ret->memory_peak);
        if (r == -ENOENT)
                ret->memory_peak = ret->memory_current;
        else if (r < 0)
                return r;
        r = sp_cgroup_read_at(fd, "cpu.stat", buf, sizeof(buf));
        if (r < 0)
                return r;
        if ((r = sp_cgroup_parse_keyed(buf, "usage_usec", &ret->cpu_usage_usec)) < 0)
                return r;
        /* nr_throttled is only there with CFS bandwidth control. */
        if ((r = sp_cgroup_parse_keyed(buf, "nr_throttled", &ret->nr_throttled)) < 0 && r != -ENOENT)
                return r;
        if ((r = sp_cgroup_read_u64_at(fd, "pids.current", &ret->pids_current)) < 0)
                return r;
        r = sp_cgroup_read_keyed_at(fd, "memory.events", "oom_kill", &ret->oom_kills);
        return r == -ENOENT ? 0 : r;
}

static int v2_kill(sp_cgroup *cg) {
        /* cgroup.kill (Linux 5.14) kills every task, including ones forked
         * while it runs, in one write. */
        int r = sp_cgroup_write_at(cg->fd[0], "cgroup.kill", "1", cg->manager->fake);
        if (r != -ENOENT)
                return r;
        _cleanup_free_ char *rel = sp_cgroup_path_join(cg->manager->hier[0].subtree_rel, cg->name);
        if (!rel)
                return -ENOMEM;
        return sp_cgroup_kill_procs(cg->fd[0], NULL, rel, 200);
}

static int v2_freeze(sp_cgroup *cg, bool frozen) {
        return sp_cgroup_write_at(cg->fd[0], "cgroup.freeze", frozen ? "1" : "0", cg->manager->fake);
}

static int v2_is_frozen(const sp_cgroup *cg) {
        uint64_t v = 0;
        int r = sp_cgroup_read_keyed_at(cg->fd[0], "cgroup.events", "frozen", &v);
        return r < 0 ? r : v == 1;
}

const sp_cgroup_backend sp_cgroup_backend_v2 = {
        .mode = SP_CGROUP_V2,
        .probe = v2_probe,
        .setup = v2_setup,
        .apply_limits = v2_apply_limits,
        .attach = v2_attach,
        .stats = v2_stats,
        .kill = v2_kill,
        .freeze = v2_freeze,
        .is_frozen = v2_is_frozen,
};
