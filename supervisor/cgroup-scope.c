/* SPDX-License-Identifier: MIT */
/* Placement of the sandboxes' cgroups on a cgroup v2 host (see
 * cgroup-scope.h for the decision), and the D-Bus exchange with systemd
 * that gets us a delegated transient scope:
 *
 *   StartTransientUnit("sandpool-run-<pid>.scope", "fail",
 *                      [Description, PIDs=[us], Delegate=yes, TasksMax=inf,
 *                       CollectMode=inactive-or-failed], [])  -> job path
 *
 * then wait for JobRemoved(job, result) with that job path. The match is
 * added before the call: sd_bus_call() queues whatever arrives before its
 * reply, so the signal cannot be missed. As root we talk to systemd's
 * private socket (/run/systemd/private), like systemctl: no dbus-daemon is
 * needed, and signals come to direct connections unconditionally; the
 * system bus is the fallback. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/vfs.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "cgroup-scope.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_ROOT "/sys/fs/cgroup"
#define SYSTEMD_DEST "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
/* TCG guests and loaded hosts are slow; systemd answers in milliseconds
 * on a normal one. */
#define JOB_TIMEOUT_USEC (60ULL * 1000000ULL)

static inline void bus_flush_close_unrefp(sd_bus **b) {
        if (*b)
                sd_bus_flush_close_unref(*b);
}
static inline void bus_message_unrefp(sd_bus_message **m) {
        sd_bus_message_unref(*m);
}
static inline void bus_slot_unrefp(sd_bus_slot **s) {
        sd_bus_slot_unref(*s);
}

/* --- cgroupfs ------------------------------------------------------------ */

static int read_file(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t n = 0;
        for (;;) {
                if (n + 1 >= size)
                        return -E2BIG;
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        return (int) n;
}

static int write_file(const char *path, const char *value) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        ssize_t k = write(fd, value, strlen(value));
        if (k < 0)
                return negative_errno();
        return (size_t) k == strlen(value) ? 0 : -EIO;
}

/* Our cgroup2 path ("/user.slice/.../session-2.scope") from the "0::" line. */
static int own_cgroup(char **ret) {
        char buf[4096];
        int r = read_file("/proc/self/cgroup", buf, sizeof(buf));
        if (r < 0)
                return r;
        for (char *line = buf, *e; *line; line = e) {
                e = strchrnul(line, '\n');
                bool last = !*e;
                *e = 0;
                if (strncmp(line, "0::/", 4) == 0) {
                        *ret = strdup(line + 3);
                        return *ret ? 0 : -ENOMEM;
                }
                e = last ? e : e + 1;
        }
        return -ENOENT;
}

static char *cg_path(const char *root, const char *rel, const char *file) {
        char *p;
        if (asprintf(&p, "%s%s%s%s", root, streq(rel, "/") ? "" : rel, file ? "/" : "", file ?: "") < 0)
                return NULL;
        return p;
}

/* 1 when every process in the cgroup is us, 0 when others share it. */
static int alone_in(const char *root, const char *rel) {
        _cleanup_free_ char *procs = cg_path(root, rel, "cgroup.procs");
        char buf[65536];
        if (!procs)
                return -ENOMEM;
        int r = read_file(procs, buf, sizeof(buf));
        if (r == -E2BIG)
                return 0;
        if (r < 0)
                return r;
        for (char *p = buf, *e; *p; p = e) {
                long pid = strtol(p, &e, 10);
                if (e == p)
                        break;
                if (pid > 0 && pid != (long) getpid())
                        return 0;
        }
        return 1;
}

/* The v2 backend will be the one in use: cgroup2 at the root with memory,
 * cpu and pids, and the mode not forced to v1. */
static bool v2_applies(const cgroup_placement_options *o, const char *root) {
        struct statfs sf;
        char buf[512];
        _cleanup_free_ char *ctrl = cg_path(root, "/", "cgroup.controllers");
        if (o->mode == SP_CGROUP_V1 || !ctrl)
                return false;
        if (statfs(root, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC)
                return false;
        if (read_file(ctrl, buf, sizeof(buf)) < 0)
                return false;
        return strstr(buf, "memory") && strstr(buf, "cpu") && strstr(buf, "pids");
}

/* --- systemd over D-Bus ---------------------------------------------------- */

static int bus_open(sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;
        if (geteuid() == 0) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, "unix:path=/run/systemd/private");
                if (r >= 0)
                        r = sd_bus_start(bus);
                if (r >= 0) {
                        *ret = bus;
                        return 0;
                }
                sd_bus_unref(bus);
                bus = NULL;
        }
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        *ret = bus;
        return 0;
}

/* The unit our process belongs to, and whether it has Delegate=yes. */
static int unit_of_self(sd_bus *bus, char **ret_unit, bool *ret_delegate, sd_bus_error *e) {
        _cleanup_(bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "GetUnitByPID", e, &reply,
                                   "u", (uint32_t) getpid());
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        _cleanup_free_ char *id = NULL;
        r = sd_bus_get_property_string(bus, SYSTEMD_DEST, path, "org.freedesktop.systemd1.Unit", "Id", e, &id);
        if (r < 0)
                return r;
        /* Delegate= exists on the unit types that own processes. */
        const char *dot = strrchr(id, '.');
        const char *iface = !dot                     ? NULL
                            : streq(dot, ".service") ? "org.freedesktop.systemd1.Service"
                            : streq(dot, ".scope")   ? "org.freedesktop.systemd1.Scope"
                                                     : NULL;
        int delegate = 0;
        if (iface) {
                r = sd_bus_get_property_trivial(bus, SYSTEMD_DEST, path, iface, "Delegate", e, 'b', &delegate);
                if (r < 0)
                        return r;
        }
        *ret_delegate = delegate;
        *ret_unit = TAKE_PTR(id);
        return 0;
}

typedef struct job_wait {
        const char *job;  /* the path to wait for; NULL until the call returns */
        char result[64];  /* "done", "failed", ...; "" while pending */
} job_wait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        job_wait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->job && streq(path, w->job))
                snprintf(w->result, sizeof(w->result), "%s", result);
        return 0;
}

static int append_scope_properties(sd_bus_message *m, const cgroup_placement_options *o) {
        int r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "Description", "s", o->description ?: "sandpool");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "PIDs", "au", 1, (uint32_t) getpid());
        /* The point of the scope: its subtree is ours to write. */
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "Delegate", "b", 1);
        /* 80 sandboxes of 256 pids each are beyond DefaultTasksMax. */
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "TasksMax", "t", UINT64_MAX);
        /* A scope that failed (we were SIGKILLed) is not kept around. */
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)", "CollectMode", "s", "inactive-or-failed");
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        return r;
}

static int wait_for_job(sd_bus *bus, job_wait *w) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        uint64_t now = (uint64_t) t.tv_sec * 1000000ULL + (uint64_t) t.tv_nsec / 1000u, deadline = now + JOB_TIMEOUT_USEC;
        while (!w->result[0]) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                clock_gettime(CLOCK_MONOTONIC, &t);
                now = (uint64_t) t.tv_sec * 1000000ULL + (uint64_t) t.tv_nsec / 1000u;
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int start_scope(sd_bus *bus, const char *unit, const cgroup_placement_options *o, sp_error *err) {
        _cleanup_(bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        job_wait w = {};
        int r;

        /* A direct connection has no sender names: match on path only. */
        r = sd_bus_match_signal(bus, &slot, sd_bus_is_bus_client(bus) > 0 ? SYSTEMD_DEST : NULL, SYSTEMD_PATH,
                                SYSTEMD_MANAGER, "JobRemoved", on_job_removed, &w);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                                   "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", unit, "fail");
        if (r >= 0)
                r = append_scope_properties(m, o);
        if (r < 0)
                return sp_error_set(err, r, "Failed to build the D-Bus request for %s: %s", unit, strerror(-r));
        r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0) {
                sp_error_set(err, r, "systemd refused the transient scope %s: %s", unit,
                             e.message ?: strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &w.job);
        if (r < 0)
                return sp_error_set(err, r, "Bad reply to StartTransientUnit: %s", strerror(-r));
        r = wait_for_job(bus, &w);
        if (r < 0)
                return sp_error_set(err, r, "Waiting for systemd to start %s: %s", unit, strerror(-r));
        if (!streq(w.result, "done"))
                return sp_error_set(err, -EIO, "systemd could not start %s: job %s", unit, w.result);
        return 0;
}

/* systemd is PID 1: our unit if it is delegated to us alone, else a scope. */
static int place_with_systemd(const cgroup_placement_options *o, const char *root, const char *self,
                              cgroup_placement *p, sp_error *err) {
        _cleanup_(bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *unit = NULL, *scope = NULL, *now_in = NULL;
        bool delegate = false;
        int r;

        r = bus_open(&bus);
        if (r < 0)
                return sp_error_set(err, r,
                                    "systemd is PID 1 but /run/systemd/private and the system bus do not answer "
                                    "(%s); a delegated scope is needed, %s is not ours (or set cgroup_parent)",
                                    strerror(-r), self);
        r = unit_of_self(bus, &unit, &delegate, &e);
        if (r < 0) {
                sp_error_set(err, r, "Failed to ask systemd for the unit of pid %d: %s", (int) getpid(),
                             e.message ?: strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        r = alone_in(root, self);
        if (r < 0)
                return sp_error_set(err, r, "Failed to read %s%s/cgroup.procs: %s", root, self, strerror(-r));
        if (delegate && r > 0) {
                p->move_self_to_leaf = true;
                snprintf(p->describe, sizeof(p->describe), "in %s, delegated by systemd (%s has Delegate=yes)",
                         self, unit);
                return 0;
        }
        size_t l = strlen(unit);
        if (!delegate && o->refuse_undelegated_service && l > 8 && streq(unit + l - 8, ".service"))
                return sp_error_set(err, -EPERM,
                                    "%s does not delegate its cgroup %s: add Delegate=yes to its [Service] "
                                    "section, as sandpool.service has (only a delegated cgroup is ours to divide)",
                                    unit, self);

        if (asprintf(&scope, "%s-%d.scope", o->name_prefix, (int) getpid()) < 0)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        r = start_scope(bus, scope, o, err);
        if (r < 0)
                return r;
        r = own_cgroup(&now_in);
        if (r < 0)
                return sp_error_set(err, r, "Failed to read /proc/self/cgroup: %s", strerror(-r));
        /* We are the scope's only process; the leaf below it comes next. */
        p->move_self_to_leaf = true;
        snprintf(p->describe, sizeof(p->describe),
                 "in the transient scope %s (Delegate=yes, from systemd), moved out of %s (%s)", now_in, self, unit);
        p->scope_unit = TAKE_PTR(scope);
        return 0;
}

/* No systemd: we are alone in our cgroup (take it), or make one of our own
 * beside it, under a parent that can give its children controllers. */
static int place_without_systemd(const cgroup_placement_options *o, const char *root, const char *self,
                                 cgroup_placement *p, sp_error *err) {
        int r = alone_in(root, self);
        if (r < 0)
                return sp_error_set(err, r, "Failed to read %s%s/cgroup.procs: %s", root, self, strerror(-r));
        if (r > 0) {
                p->move_self_to_leaf = true;
                snprintf(p->describe, sizeof(p->describe), "in %s, which holds no other process", self);
                return 0;
        }

        _cleanup_free_ char *parent = strdup(self), *own = NULL, *sc = NULL, *dir = NULL;
        if (!parent)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        char *slash = strrchr(parent, '/');
        slash[slash == parent ? 1 : 0] = 0;
        if (asprintf(&own, "%s%s%s-%d", parent, streq(parent, "/") ? "" : "/", o->name_prefix, (int) getpid()) < 0 ||
            !(sc = cg_path(root, parent, "cgroup.subtree_control")) || !(dir = cg_path(root, own, NULL)))
                return sp_error_set(err, -ENOMEM, "Out of memory");
        /* Controllers must reach our cgroup through the parent; a parent with
         * processes of its own (not the root) cannot pass them on. */
        r = write_file(sc, "+memory +cpu +pids");
        if (r >= 0 && mkdir(dir, 0755) < 0)
                r = negative_errno();
        /* sp_error holds 256 bytes: say it short. */
        if (r < 0)
                return sp_error_set(err, r,
                                    "%s is shared and no systemd can delegate a scope; %s %s: %s. Needed: "
                                    "systemd as PID 1, a cgroup to ourselves, or cgroup_parent = an empty "
                                    "delegated cgroup",
                                    self, r == -EEXIST ? "mkdir" : "+memory +cpu +pids in",
                                    r == -EEXIST ? own : parent, strerror(-r));
        p->own_cgroup = TAKE_PTR(own);
        p->origin_cgroup = strdup(self);
        p->parent = strdup(p->own_cgroup);
        if (!p->origin_cgroup || !p->parent)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        p->move_self_to_leaf = true;
        snprintf(p->describe, sizeof(p->describe), "in %s, a cgroup of our own (no systemd; %s holds other processes)",
                 p->own_cgroup, self);
        return 0;
}

int cgroup_placement_prepare(const cgroup_placement_options *o, cgroup_placement *ret, sp_error *err) {
        const char *root = CGROUP_ROOT;
        _cleanup_free_ char *self = NULL;
        int r;

        *ret = (cgroup_placement) {};
        if (o->parent || !v2_applies(o, root))
                return 0;
        r = own_cgroup(&self);
        if (r < 0)
                return sp_error_set(err, r, "Failed to find our cgroup in /proc/self/cgroup: %s", strerror(-r));
        /* The root cgroup may hold processes and delegate controllers (a
         * plain VM, a container's private namespace root is not this). */
        if (streq(self, "/"))
                return 0;
        r = sd_booted() > 0 ? place_with_systemd(o, root, self, ret, err)
                                           : place_without_systemd(o, root, self, ret, err);
        if (r < 0)
                cgroup_placement_done(ret);
        return r;
}

void cgroup_placement_done(cgroup_placement *p) {
        if (p->own_cgroup && p->origin_cgroup) {
                const char *root = CGROUP_ROOT;
                _cleanup_free_ char *back = cg_path(root, p->origin_cgroup, "cgroup.procs");
                _cleanup_free_ char *leaf = cg_path(root, p->own_cgroup, "supervisor");
                _cleanup_free_ char *own = cg_path(root, p->own_cgroup, NULL);
                char pid[32];
                snprintf(pid, sizeof(pid), "%d", (int) getpid());
                /* Back where we came from (it still has its other processes,
                 * hence no controllers of its own), then remove ours. */
                if (back && leaf && own && write_file(back, pid) >= 0) {
                        (void) rmdir(leaf);
                        (void) rmdir(own);
                }
        }
        free(p->parent);
        free(p->scope_unit);
        free(p->own_cgroup);
        free(p->origin_cgroup);
        *p = (cgroup_placement) {};
}
