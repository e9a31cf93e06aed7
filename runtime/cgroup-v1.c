/* SPDX-License-Identifier: MIT */
/* cgroup v1 backend, for hybrid hosts: memory, cpu, cpuacct and pids each
 * live in a hierarchy of their own (cpu and cpuacct often co-mounted as
 * "cpu,cpuacct"), and the caller may sit at a different path in each (here:
 * memory at /process_api/<hash>, cpu and pids at /). A sandbox is one
 * directory of the same name in every hierarchy.
 *
 * v1 has no CLONE_INTO_CGROUP target for several hierarchies at once and no
 * cgroup.kill: processes are attached by pid and killed pid by pid. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-internal.h"

static const struct {
        unsigned bit;
        const char *name;
} v1_ctrls[] = {
        /* memory first: it is hier[0], the one sp_cgroup_path() shows. */
        { SP_CTRL_MEMORY, "memory" },
        { SP_CTRL_CPU, "cpu" },
        { SP_CTRL_CPUACCT, "cpuacct" },
        { SP_CTRL_PIDS, "pids" },
};

static const sp_cgroup_mount *find_v1_mount(const sp_cgroup_mount *mounts, size_t n, unsigned bit) {
        const sp_cgroup_mount *first = NULL;
        for (size_t i = 0; i < n; i++) {
                if (mounts[i].v2 || !(mounts[i].controllers & bit))
                        continue;
                /* The same hierarchy can be mounted more than once (bind
                 * mounts of a sub-cgroup); the one of its root sees all. */
                if (streq(mounts[i].root, "/"))
                        return &mounts[i];
                if (!first)
                        first = &mounts[i];
        }
        return first;
}

static int v1_probe(sp_cgroup_manager *m, const sp_cgroup_mount *mounts, size_t n_mounts, const char *proc_cgroup,
                    const sp_cgroup_manager_options *opts, sp_error *err) {
        const sp_cgroup_mount *chosen[SP_CGROUP_MAX_HIER] = {};
        unsigned missing = 0;
        m->n_hier = 0;
        for (size_t c = 0; c < ELEMENTSOF(v1_ctrls); c++) {
                const sp_cgroup_mount *mnt = find_v1_mount(mounts, n_mounts, v1_ctrls[c].bit);
                if (!mnt) {
                        missing |= v1_ctrls[c].bit;
                        continue;
                }
                bool seen = false;
                for (size_t i = 0; i < m->n_hier; i++)
                        if (chosen[i]->dev_major == mnt->dev_major && chosen[i]->dev_minor == mnt->dev_minor)
                                seen = true;
                if (seen)
                        continue;
                sp_cgroup_hier *h = &m->hier[m->n_hier];
                chosen[m->n_hier++] = mnt;
                h->controllers = mnt->controllers & SP_CTRL_V1_NEEDED;
                h->ctrl_name = strdup(v1_ctrls[c].name);
                h->mount_path = strdup(mnt->path);
                if (!h->ctrl_name || !h->mount_path)
                        return sp_error_set(err, -ENOMEM, "Out of memory");
        }
        /* The freezer is optional (only templates and forks need it) and
         * last, so that it can be dropped if it cannot be set up. */
        const sp_cgroup_mount *fz = find_v1_mount(mounts, n_mounts, SP_CTRL_FREEZER);
        if (fz && !missing && m->n_hier < SP_CGROUP_MAX_HIER && !(fz->controllers & SP_CTRL_V1_NEEDED)) {
                sp_cgroup_hier *h = &m->hier[m->n_hier];
                chosen[m->n_hier++] = fz;
                h->controllers = SP_CTRL_FREEZER;
                h->ctrl_name = strdup("freezer");
                h->mount_path = strdup(fz->path);
                if (!h->ctrl_name || !h->mount_path)
                        return sp_error_set(err, -ENOMEM, "Out of memory");
        }
        if (missing) {
                char names[64];
                sp_cgroup_ctrl_mask_format(missing, names, sizeof(names));
                return sp_error_set(err, -EOPNOTSUPP, "cgroup v1 has no hierarchy mounted for %s (in /proc/self/mountinfo)",
                                    names);
        }
        for (size_t i = 0; i < m->n_hier; i++) {
                sp_cgroup_hier *h = &m->hier[i];
                if (opts->parent && !(h->controllers & SP_CTRL_FREEZER))
                        h->parent_rel = strdup(opts->parent);
                else if (sp_cgroup_parse_proc_cgroup(proc_cgroup, h->ctrl_name, &h->parent_rel) < 0)
                        return sp_error_set(err, -ENOENT, "cgroup v1: no %s line in /proc/self/cgroup", h->ctrl_name);
                if (!h->parent_rel)
                        return sp_error_set(err, -ENOMEM, "Out of memory");
                h->parent_path = sp_cgroup_mount_resolve(chosen[i], h->parent_rel);
                h->subtree_rel = sp_cgroup_path_join(h->parent_rel, m->subdir);
                h->subtree_path = h->parent_path ? sp_cgroup_path_join(h->parent_path, m->subdir) : NULL;
                if (!h->parent_path || !h->subtree_rel || !h->subtree_path)
                        return sp_error_set(err, -ENOMEM, "Out of memory");
        }
        return 0;
}

static void drop_hier(sp_cgroup_manager *m, size_t i) {
        sp_cgroup_hier_done(&m->hier[i]);
        m->n_hier = i;
}

static int v1_setup(sp_cgroup_manager *m, const sp_cgroup_manager_options *opts, sp_error *err) {
        for (size_t i = 0; i < m->n_hier; i++) {
                sp_cgroup_hier *h = &m->hier[i];
                int r;
                if (h->controllers == SP_CTRL_FREEZER) {
                        /* optional: where we may not make a subtree in it,
                         * sandboxes simply cannot be frozen */
                        h->parent_fd = open(h->parent_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (h->parent_fd < 0 || sp_cgroup_mkdir_at(h->parent_fd, m->subdir, &h->created_subtree) < 0 ||
                            (h->subtree_fd = openat(h->parent_fd, m->subdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                                drop_hier(m, i);
                        break;
                }
                h->parent_fd = open(h->parent_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (h->parent_fd < 0) {
                        r = negative_errno();
                        return sp_error_set(err, r, "Failed to open cgroup %s: %s", h->parent_path, strerror(-r));
                }
                r = sp_cgroup_mkdir_at(h->parent_fd, m->subdir, &h->created_subtree);
                if (r < 0)
                        return sp_error_set(err, r, "Failed to create cgroup %s: %s", h->subtree_path, strerror(-r));
                h->subtree_fd = openat(h->parent_fd, m->subdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (h->subtree_fd < 0) {
                        r = negative_errno();
                        return sp_error_set(err, r, "Failed to open cgroup %s: %s", h->subtree_path, strerror(-r));
                }
                if (m->fake)
                        continue;
                /* Check once here what every sandbox will rely on. */
                if ((h->controllers & SP_CTRL_MEMORY) && faccessat(h->subtree_fd, "memory.memsw.limit_in_bytes", F_OK, 0) < 0)
                        m->no_memsw = true; /* swapaccount=0 or no CONFIG_MEMCG_SWAP */
                if ((h->controllers & SP_CTRL_CPU) && faccessat(h->subtree_fd, "cpu.cfs_quota_us", F_OK, 0) < 0)
                        return sp_error_set(err, -EOPNOTSUPP,
                                            "%s/cpu.cfs_quota_us is missing (kernel without CFS bandwidth "
                                            "control): a cpu limit cannot be enforced",
                                            h->subtree_path);
                if ((h->controllers & SP_CTRL_PIDS) && faccessat(h->subtree_fd, "pids.max", F_OK, 0) < 0)
                        return sp_error_set(err, -EOPNOTSUPP, "%s/pids.max is missing: a pids limit cannot be enforced",
                                            h->subtree_path);
        }
        return 0;
}

static int v1_fd(const sp_cgroup *cg, unsigned bit) {
        for (size_t i = 0; i < cg->n_fd; i++)
                if (cg->manager->hier[i].controllers & bit)
                        return cg->fd[i];
        return -EBADF;
}

static int write_limit(const sp_cgroup *cg, unsigned bit, const char *file, const char *value, sp_error *err) {
        const sp_cgroup_manager *m = cg->manager;
        int r = sp_cgroup_write_at(v1_fd(cg, bit), file, value, m->fake);
        if (r < 0) {
                const char *dir = "?";
                for (size_t i = 0; i < m->n_hier; i++)
                        if (m->hier[i].controllers & bit)
                                dir = m->hier[i].subtree_path;
                return sp_error_set(err, r, "Failed to write \"%s\" to %s/%s/%s: %s", value, dir, cg->name, file,
                                    strerror(-r));
        }
        return 0;
}

/* The kernel stores memory limits in pages and rounds down; anything else
 * read back means the write did not take (or a parent's limit applies to
 * what we asked for in a way we did not expect). */
static int check_memory_limit(const sp_cgroup *cg, const char *file, uint64_t want, sp_error *err) {
        uint64_t got = 0, page = (uint64_t) getpagesize();
        int r = sp_cgroup_read_u64_at(v1_fd(cg, SP_CTRL_MEMORY), file, &got);
        if (r < 0)
                return sp_error_set(err, r, "Failed to read back %s/%s: %s", cg->path, file, strerror(-r));
        if (got != want / page * page)
                return sp_error_set(err, -EIO, "%s/%s reads %" PRIu64 " after writing %" PRIu64, cg->path, file, got,
                                    want);
        return 0;
}

static int v1_apply_memory(sp_cgroup *cg, const sp_limits *l, sp_error *err) {
        char v[32];
        int r;
        sp_cgroup_format_u64(l->memory_bytes, v, sizeof(v));
        /* limit_in_bytes before memsw: the kernel insists memsw >= limit. */
        if ((r = write_limit(cg, SP_CTRL_MEMORY, "memory.limit_in_bytes", v, err)) < 0)
                return r;
        if ((r = check_memory_limit(cg, "memory.limit_in_bytes", l->memory_bytes, err)) < 0)
                return r;
        if (cg->manager->no_memsw)
                /* Without swap accounting, memory+swap cannot be capped; at
                 * least keep this cgroup's reclaim from swapping anon pages. */
                return write_limit(cg, SP_CTRL_MEMORY, "memory.swappiness", "0", err);
        /* memsw == limit: not one byte of swap on top of the memory limit.
         * The kernel refuses (EINVAL) a memsw below the memory limit, so a
         * successful write is the same value rounded the same way. */
        return write_limit(cg, SP_CTRL_MEMORY, "memory.memsw.limit_in_bytes", v, err);
}

static int v1_apply_limits(sp_cgroup *cg, const sp_limits *l, sp_error *err) {
        char v[32];
        int r;
        if ((r = v1_apply_memory(cg, l, err)) < 0)
                return r;
        /* cpu.cfs_period_us is not written: the kernel gives every new cpu
         * cgroup the default period of 100 ms (init_cfs_bandwidth()), which
         * is SP_CGROUP_CPU_PERIOD_US, and not the parent's; one write less
         * on the hot path. The real v1 test reads it back. */
        sp_cgroup_format_u64((uint64_t) l->cpu_pct * (SP_CGROUP_CPU_PERIOD_US / 100u), v, sizeof(v));
        if ((r = write_limit(cg, SP_CTRL_CPU, "cpu.cfs_quota_us", v, err)) < 0)
                return r;
        sp_cgroup_format_u64(l->pids, v, sizeof(v));
        return write_limit(cg, SP_CTRL_PIDS, "pids.max", v, err);
}

static int v1_attach(sp_cgroup *cg, pid_t pid) {
        char v[32];
        snprintf(v, sizeof(v), "%d", (int) pid);
        /* Memory first, pids last: if a later write fails the process is
         * already limited in memory, and the caller kills it. */
        for (size_t i = 0; i < cg->n_fd; i++) {
                int r = sp_cgroup_write_at(cg->fd[i], "cgroup.procs", v, cg->manager->fake);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int v1_stats(const sp_cgroup *cg, sp_cgroup_stats *ret) {
        int mem = v1_fd(cg, SP_CTRL_MEMORY);
        int r;
        if ((r = sp_cgroup_read_u64_at(mem, "memory.usage_in_bytes", &ret->memory_current)) < 0)
                return r;
        if ((r = sp_cgroup_read_u64_at(mem, "memory.max_usage_in_bytes", &ret->memory_peak)) < 0)
                return r;
        if ((r = sp_cgroup_read_keyed_at(mem, "memory.oom_control", "oom_kill", &ret->oom_kills)) < 0 && r != -ENOENT)
                return r;
        uint64_t ns = 0;
        if ((r = sp_cgroup_read_u64_at(v1_fd(cg, SP_CTRL_CPUACCT), "cpuacct.usage", &ns)) < 0)
                return r;
        ret->cpu_usage_usec = ns / 1000;
        if ((r = sp_cgroup_read_keyed_at(v1_fd(cg, SP_CTRL_CPU), "cpu.stat", "nr_throttled", &ret->nr_throttled)) < 0 &&
            r != -ENOENT)
                return r;
        return sp_cgroup_read_u64_at(v1_fd(cg, SP_CTRL_PIDS), "pids.current", &ret->pids_current);
}

static int v1_freeze(sp_cgroup *cg, bool frozen) {
        int fd = v1_fd(cg, SP_CTRL_FREEZER);
        if (fd < 0)
                return -EOPNOTSUPP;
        return sp_cgroup_write_at(fd, "freezer.state", frozen ? "FROZEN" : "THAWED", cg->manager->fake);
}

static int v1_is_frozen(const sp_cgroup *cg) {
        char buf[32];
        /* Reading freezer.state is what moves FREEZING on to FROZEN once
         * the last task has stopped. */
        int r = sp_cgroup_read_at(v1_fd(cg, SP_CTRL_FREEZER), "freezer.state", buf, sizeof(buf));
        if (r < 0)
                return r;
        return strncmp(buf, "FROZEN", 6) == 0;
}

static int v1_kill(sp_cgroup *cg) {
        int ret = 0;
        /* A frozen task sleeps through SIGKILL on v1: thaw first. */
        if (v1_fd(cg, SP_CTRL_FREEZER) >= 0)
                (void) v1_freeze(cg, false);
        /* pids first: that is where a fork bomb is capped, and every task
         * there is in the other hierarchies too (attach writes them all). */
        for (size_t k = cg->n_fd; k > 0; k--) {
                size_t i = k - 1;
                const sp_cgroup_hier *h = &cg->manager->hier[i];
                _cleanup_free_ char *rel = sp_cgroup_path_join(h->subtree_rel, cg->name);
                if (!rel)
                        return -ENOMEM;
                int r = sp_cgroup_kill_procs(cg->fd[i], h->ctrl_name, rel, 200);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

const sp_cgroup_backend sp_cgroup_backend_v1 = {
        .mode = SP_CGROUP_V1,
        .probe = v1_probe,
        .setup = v1_setup,
        .apply_limits = v1_apply_limits,
        .attach = v1_attach,
        .stats = v1_stats,
        .kill = v1_kill,
        .freeze = v1_freeze,
        .is_frozen = v1_is_frozen,
};
