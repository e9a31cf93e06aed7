/* SPDX-License-Identifier: MIT */
/* Unit tests of the cgroup layer's pure parts (mountinfo and
 * /proc/<pid>/cgroup parsing, value parsing and formatting) and of the
 * backends' file-writing logic against fake trees in a temp directory.
 *
 * The fake trees (opts->fs_root) are the one place a fake stands in for the
 * kernel: this host's memory, cpu and pids controllers are on cgroup v1, so
 * the v2 backend cannot run here for real; the VM lane runs it on a real
 * cgroup2 host. The v1 backend runs for real in test-cgroup-v1-real.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup-internal.h"

/* This machine's layout, plus a co-mounted cpu,cpuacct, a mount point with
 * an escaped space, optional fields and lines of other filesystems. */
static const char mountinfo_hybrid[] =
        "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
        "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime shared:9 master:3 - cgroup cgroup rw,memory\n"
        "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
        "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
        "41 30 0:38 /sub /mnt/my\\040cg rw - cgroup cgroup rw,cpu,cpuacct\n"
        "42 22 0:5 / /proc rw - proc proc rw\n";

static void test_parse_mountinfo(void **state) {
        sp_cgroup_mount *m = NULL;
        size_t n = 0;
        assert_int_equal(sp_cgroup_parse_mountinfo(mountinfo_hybrid, &m, &n), 0);
        assert_int_equal(n, 7);
        assert_string_equal(m[0].path, "/sys/fs/cgroup/cpu");
        assert_false(m[0].v2);
        assert_int_equal(m[0].controllers, SP_CTRL_CPU);
        assert_int_equal(m[0].dev_major, 0);
        assert_int_equal(m[0].dev_minor, 28);
        assert_int_equal(m[1].controllers, SP_CTRL_CPUACCT);
        assert_string_equal(m[2].path, "/sys/fs/cgroup/memory"); /* after optional fields */
        assert_int_equal(m[2].controllers, SP_CTRL_MEMORY);
        assert_int_equal(m[3].controllers, SP_CTRL_PIDS);
        assert_int_equal(m[4].controllers, 0); /* name=systemd: no controller of ours */
        assert_true(m[5].v2);
        assert_string_equal(m[5].path, "/sys/fs/cgroup/unified");
        assert_string_equal(m[6].path, "/mnt/my cg");
        assert_string_equal(m[6].root, "/sub");
        assert_int_equal(m[6].controllers, SP_CTRL_CPU | SP_CTRL_CPUACCT);
        sp_cgroup_mounts_free(m, n);

        /* Garbage and truncated lines are skipped, not misread. */
        assert_int_equal(sp_cgroup_parse_mountinfo("1 2 3\n\n40 30 0:37 / /x rw - cgroup2\n", &m, &n), 0);
        assert_int_equal(n, 0);
        sp_cgroup_mounts_free(m, n);
}

static const char proc_cgroup_hybrid[] =
        "9:name=systemd:/\n"
        "8:pids:/\n"
        "4:memory:/process_api/66e3f8324475b4e9ea96eb0858f4807b\n"
        "2:cpuacct:/\n"
        "1:cpu:/a:b\n"
        "0::/\n";

static void test_parse_proc_cgroup(void **state) {
        char *p = NULL;
        assert_int_equal(sp_cgroup_parse_proc_cgroup(proc_cgroup_hybrid, "memory", &p), 0);
        assert_string_equal(p, "/process_api/66e3f8324475b4e9ea96eb0858f4807b");
        free(p);
        assert_int_equal(sp_cgroup_parse_proc_cgroup(proc_cgroup_hybrid, "cpu", &p), 0);
        assert_string_equal(p, "/a:b"); /* a path may hold colons */
        free(p);
        assert_int_equal(sp_cgroup_parse_proc_cgroup(proc_cgroup_hybrid, "pids", &p), 0);
        assert_string_equal(p, "/");
        free(p);
        assert_int_equal(sp_cgroup_parse_proc_cgroup(proc_cgroup_hybrid, NULL, &p), 0);
        assert_string_equal(p, "/");
        free(p);
        /* "name=systemd" is not the controller "systemd"; blkio is absent. */
        assert_int_equal(sp_cgroup_parse_proc_cgroup(proc_cgroup_hybrid, "systemd", &p), -ENOENT);
        assert_int_equal(sp_cgroup_parse_proc_cgroup(proc_cgroup_hybrid, "blkio", &p), -ENOENT);

        /* Pure v2 with a delegated service cgroup. */
        assert_int_equal(sp_cgroup_parse_proc_cgroup("0::/system.slice/sandpool.service\n", NULL, &p), 0);
        assert_string_equal(p, "/system.slice/sandpool.service");
        free(p);
        assert_int_equal(sp_cgroup_parse_proc_cgroup("0::/system.slice/sandpool.service", "memory", &p), -ENOENT);

        /* Co-mounted v1 controllers, and a v1-only host has no 0:: line. */
        const char *comount = "3:cpu,cpuacct:/user.slice\n5:memory:/m\n";
        assert_int_equal(sp_cgroup_parse_proc_cgroup(comount, "cpuacct", &p), 0);
        assert_string_equal(p, "/user.slice");
        free(p);
        assert_int_equal(sp_cgroup_parse_proc_cgroup(comount, "cpu", &p), 0);
        free(p);
        assert_int_equal(sp_cgroup_parse_proc_cgroup(comount, NULL, &p), -ENOENT);
        /* "cpu" must not match a "cpuset" line. */
        assert_int_equal(sp_cgroup_parse_proc_cgroup("3:cpuset:/x\n", "cpu", &p), -ENOENT);
}

static void test_parse_values(void **state) {
        uint64_t v = 0;
        assert_int_equal(sp_cgroup_parse_controllers("cpuset cpu io memory hugetlb pids rdma misc\n"),
                         SP_CTRL_MEMORY | SP_CTRL_CPU | SP_CTRL_PIDS);
        assert_int_equal(sp_cgroup_parse_controllers("hugetlb\n"), 0);
        assert_int_equal(sp_cgroup_parse_controllers(""), 0);

        assert_int_equal(sp_cgroup_parse_u64("268435456\n", &v), 0);
        assert_int_equal(v, 268435456);
        assert_int_equal(sp_cgroup_parse_u64("max\n", &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(sp_cgroup_parse_u64("-1\n", &v), -EINVAL);
        assert_int_equal(sp_cgroup_parse_u64("12x", &v), -EINVAL);
        assert_int_equal(sp_cgroup_parse_u64("", &v), -EINVAL);
        assert_int_equal(sp_cgroup_parse_u64("99999999999999999999999", &v), -ERANGE);

        const char *cpu_stat = "usage_usec 123456\nuser_usec 100000\nnr_periods 7\nnr_throttled 3\n";
        assert_int_equal(sp_cgroup_parse_keyed(cpu_stat, "usage_usec", &v), 0);
        assert_int_equal(v, 123456);
        assert_int_equal(sp_cgroup_parse_keyed(cpu_stat, "nr_throttled", &v), 0);
        assert_int_equal(v, 3);
        assert_int_equal(sp_cgroup_parse_keyed(cpu_stat, "nr_throttled_usec", &v), -ENOENT);
        assert_int_equal(sp_cgroup_parse_keyed(cpu_stat, "usage", &v), -ENOENT);
        const char *oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_int_equal(sp_cgroup_parse_keyed(oom, "oom_kill", &v), 0);
        assert_int_equal(v, 2);
}

static void test_format_and_validate(void **state) {
        char buf[64];
        sp_error err = {};
        assert_true(sp_cgroup_format_cpu_max(25, buf, sizeof(buf)) > 0);
        assert_string_equal(buf, "25000 100000");
        assert_true(sp_cgroup_format_cpu_max(250, buf, sizeof(buf)) > 0);
        assert_string_equal(buf, "250000 100000");
        assert_int_equal(sp_cgroup_format_cpu_max(0, buf, sizeof(buf)), -EINVAL);
        assert_int_equal(sp_cgroup_format_cpu_max(25, buf, 5), -ENOBUFS);
        assert_true(sp_cgroup_format_u64(UINT64_C(268435456), buf, sizeof(buf)) > 0);
        assert_string_equal(buf, "268435456");

        sp_limits ok = { .memory_bytes = 256u << 20, .cpu_pct = 25, .pids = 256 };
        assert_int_equal(sp_cgroup_limits_validate(&ok, &err), 0);
        sp_limits l = ok;
        l.memory_bytes = 0;
        assert_int_equal(sp_cgroup_limits_validate(&l, &err), -EINVAL);
        assert_non_null(strstr(err.message, "Memory limit"));
        l = ok;
        l.cpu_pct = 0;
        assert_int_equal(sp_cgroup_limits_validate(&l, &err), -EINVAL);
        l = ok;
        l.pids = 0;
        assert_int_equal(sp_cgroup_limits_validate(&l, &err), -EINVAL);
        assert_int_equal(sp_cgroup_limits_validate(NULL, &err), -EINVAL);

        assert_true(sp_cgroup_name_is_valid("sb-0001_x"));
        assert_false(sp_cgroup_name_is_valid(""));
        assert_false(sp_cgroup_name_is_valid(".."));
        assert_false(sp_cgroup_name_is_valid("a/b"));
        assert_false(sp_cgroup_name_is_valid("cgroup.procs"));
        assert_false(sp_cgroup_name_is_valid("a\nb"));
}

static void test_paths(void **state) {
        char *p;
        assert_string_equal(p = sp_cgroup_path_join("/sys/fs/cgroup/memory", "/process_api/x"), "/sys/fs/cgroup/memory/process_api/x");
        free(p);
        assert_string_equal(p = sp_cgroup_path_join("/sys/fs/cgroup/cpu", "/"), "/sys/fs/cgroup/cpu");
        free(p);
        assert_string_equal(p = sp_cgroup_path_join("/", "sandboxes"), "/sandboxes");
        free(p);
        assert_string_equal(p = sp_cgroup_path_join("/a/", "b/"), "/a/b");
        free(p);
        sp_cgroup_mount sub = { .path = (char *) "/sys/fs/cgroup/memory", .root = (char *) "/docker/abc" };
        assert_string_equal(p = sp_cgroup_mount_resolve(&sub, "/docker/abc/x"), "/sys/fs/cgroup/memory/x");
        free(p);
        assert_string_equal(p = sp_cgroup_mount_resolve(&sub, "/docker/abcd"), "/sys/fs/cgroup/memory/docker/abcd");
        free(p);
}

/* --- fake trees ------------------------------------------------------------ */

static void put(const char *dir, const char *file, const char *text) {
        char p[4096];
        assert_true((size_t) snprintf(p, sizeof(p), "%s/%s", dir, file) < sizeof(p));
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
}

static void expect_file(const char *dir, const char *file, const char *want) {
        char p[4096], buf[256];
        assert_true((size_t) snprintf(p, sizeof(p), "%s/%s", dir, file) < sizeof(p));
        int n = sp_cgroup_read_at(AT_FDCWD, p, buf, sizeof(buf));
        if (n < 0)
                fail_msg("cannot read %s: %s", p, strerror(-n));
        assert_string_equal(buf, want);
}

static void sub(char *buf, size_t size, const char *a, const char *b) {
        assert_true((size_t) snprintf(buf, size, "%s/%s", a, b) < size);
        assert_true(mkdir(buf, 0755) == 0 || errno == EEXIST);
}

static void rm_rf(const char *path) {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", path);
        assert_int_equal(system(cmd), 0);
}

static void test_v2_fake_tree(void **state) {
        char root[] = "/tmp/sp-cgroup-v2-XXXXXX", svc[4096];
        assert_non_null(mkdtemp(root));
        put(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
        sub(svc, sizeof(svc), root, "svc");
        put(svc, "cgroup.controllers", "cpu io memory pids\n");
        put(svc, "cgroup.subtree_control", "\n");

        sp_cgroup_manager_options o = { .fs_root = root, .parent = "/svc", .move_self_to_leaf = true };
        sp_cgroup_manager *m = NULL;
        sp_error err = {};
        int r = sp_cgroup_manager_new(&o, &m, &err);
        if (r < 0)
                fail_msg("%s", err.message);
        assert_int_equal(sp_cgroup_manager_mode(m), SP_CGROUP_V2);
        assert_non_null(strstr(sp_cgroup_manager_describe(m), "/svc/sandboxes"));

        char leaf[4200], pid[32], sandboxes[4200], cgdir[4300];
        snprintf(leaf, sizeof(leaf), "%s/supervisor", svc);
        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        expect_file(leaf, "cgroup.procs", pid);
        expect_file(svc, "cgroup.subtree_control", "memory cpu pids");
        snprintf(sandboxes, sizeof(sandboxes), "%s/sandboxes", svc);
        expect_file(sandboxes, "cgroup.subtree_control", "memory cpu pids");

        sp_limits l = { .memory_bytes = 256u << 20, .cpu_pct = 25, .pids = 64 };
        sp_cgroup *cg = NULL;
        r = sp_cgroup_new(m, "sb1", &l, &cg, &err);
        if (r < 0)
                fail_msg("%s", err.message);
        snprintf(cgdir, sizeof(cgdir), "%s/sb1", sandboxes);
        assert_string_equal(sp_cgroup_path(cg), cgdir);
        expect_file(cgdir, "memory.max", "268435456");
        expect_file(cgdir, "memory.swap.max", "0");
        expect_file(cgdir, "memory.oom.group", "1");
        expect_file(cgdir, "cpu.max", "25000 100000");
        expect_file(cgdir, "pids.max", "64");
        assert_true(sp_cgroup_clone_fd(cg) >= 0);

        /* A second cgroup of the same name is refused, never adopted. */
        sp_cgroup *dup = NULL;
        assert_int_equal(sp_cgroup_new(m, "sb1", &l, &dup, &err), -EEXIST);
        assert_non_null(strstr(err.message, "sb1"));
        assert_int_equal(sp_cgroup_new(m, "../x", &l, &dup, &err), -EINVAL);

        assert_int_equal(sp_cgroup_attach(cg, 4242), 0);
        expect_file(cgdir, "cgroup.procs", "4242");

        put(cgdir, "memory.current", "1048576\n");
        put(cgdir, "memory.peak", "2097152\n");
        put(cgdir, "cpu.stat", "usage_usec 5000\nuser_usec 4000\nsystem_usec 1000\nnr_periods 10\nnr_throttled 4\n"
                               "throttled_usec 77\n");
        put(cgdir, "pids.current", "3\n");
        put(cgdir, "memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 1\n");
        sp_cgroup_stats st;
        assert_int_equal(sp_cgroup_stats_read(cg, &st), 0);
        assert_int_equal(st.memory_current, 1048576);
        assert_int_equal(st.memory_peak, 2097152);
        assert_int_equal(st.cpu_usage_usec, 5000);
        assert_int_equal(st.nr_throttled, 4);
        assert_int_equal(st.pids_current, 3);
        assert_int_equal(st.oom_kills, 1);

        assert_int_equal(sp_cgroup_kill(cg), 0);
        expect_file(cgdir, "cgroup.kill", "1");
        assert_int_equal(sp_cgroup_destroy(cg), 0);
        assert_int_equal(access(cgdir, F_OK), -1);

        sp_cgroup_manager_free(m);
        /* The subtree we made is gone; the leaf we live in stays. */
        assert_int_equal(access(sandboxes, F_OK), -1);
        assert_int_equal(access(leaf, F_OK), 0);
        rm_rf(root);
}

/* A hybrid tree like this host's: v2 exists but offers only hugetlb. */
static void make_hybrid(char *root, bool with_pids) {
        char d[4096];
        assert_non_null(mkdtemp(root));
        sub(d, sizeof(d), root, "unified");
        put(d, "cgroup.controllers", "hugetlb\n");
        const char *v1[] = { "memory", "cpu,cpuacct", "pids", "blkio" };
        for (size_t i = 0; i < ELEMENTSOF(v1); i++) {
                if (!with_pids && streq(v1[i], "pids"))
                        continue;
                sub(d, sizeof(d), root, v1[i]);
                put(d, "cgroup.procs", "");
        }
}

static void test_hybrid_fake_tree(void **state) {
        char root[] = "/tmp/sp-cgroup-hy-XXXXXX";
        make_hybrid(root, true);
        sp_cgroup_manager *m = NULL;
        sp_error err = {};

        /* Forced v2 fails and says which controllers are missing where. */
        sp_cgroup_manager_options o = { .fs_root = root, .parent = "/", .mode = SP_CGROUP_V2 };
        assert_int_equal(sp_cgroup_manager_new(&o, &m, &err), -EOPNOTSUPP);
        assert_non_null(strstr(err.message, "/unified has no memory, cpu, pids controllers"));
        assert_null(m);

        o.mode = SP_CGROUP_AUTO;
        o.subdir = "t";
        int r = sp_cgroup_manager_new(&o, &m, &err);
        if (r < 0)
                fail_msg("%s", err.message);
        assert_int_equal(sp_cgroup_manager_mode(m), SP_CGROUP_V1);
        assert_non_null(strstr(sp_cgroup_manager_describe(m), "cpu, cpuacct at "));

        sp_limits l = { .memory_bytes = 64u << 20, .cpu_pct = 50, .pids = 16 };
        sp_cgroup *cg = NULL;
        r = sp_cgroup_new(m, "a", &l, &cg, &err);
        if (r < 0)
                fail_msg("%s", err.message);
        char d[4200];
        snprintf(d, sizeof(d), "%s/memory/t/a", root);
        assert_string_equal(sp_cgroup_path(cg), d);
        expect_file(d, "memory.limit_in_bytes", "67108864");
        expect_file(d, "memory.memsw.limit_in_bytes", "67108864");
        assert_int_equal(sp_cgroup_clone_fd(cg), -EOPNOTSUPP);
        snprintf(d, sizeof(d), "%s/cpu,cpuacct/t/a", root);
        expect_file(d, "cpu.cfs_quota_us", "50000");
        snprintf(d, sizeof(d), "%s/pids/t/a", root);
        expect_file(d, "pids.max", "16");
        assert_int_equal(sp_cgroup_attach(cg, 777), 0);
        expect_file(d, "cgroup.procs", "777");
        snprintf(d, sizeof(d), "%s/blkio/t", root);
        assert_int_equal(access(d, F_OK), -1); /* only the hierarchies we need */

        assert_int_equal(sp_cgroup_destroy(cg), 0);
        sp_cgroup_manager_free(m);
        snprintf(d, sizeof(d), "%s/memory/t", root);
        assert_int_equal(access(d, F_OK), -1);
        rm_rf(root);

        sp_cgroup_manager_options bad = { .fs_root = root, .parent = "/a/../../etc" };
        assert_int_equal(sp_cgroup_manager_new(&bad, &m, &err), -EINVAL);

        /* No pids anywhere: auto names what each mode lacks. */
        char root2[] = "/tmp/sp-cgroup-np-XXXXXX";
        make_hybrid(root2, false);
        o.fs_root = root2;
        assert_true(sp_cgroup_manager_new(&o, &m, &err) < 0);
        assert_non_null(strstr(err.message, "no memory, cpu, pids controllers"));
        assert_non_null(strstr(err.message, "cgroup v1 has no hierarchy mounted for pids"));
        rm_rf(root2);
}

/* A subtree that was already there is not ours to remove. */
static void test_existing_subtree_kept(void **state) {
        char root[] = "/tmp/sp-cgroup-ex-XXXXXX", d[4200];
        assert_non_null(mkdtemp(root));
        put(root, "cgroup.controllers", "cpu memory pids\n");
        put(root, "cgroup.subtree_control", "cpu memory pids\n");
        sub(d, sizeof(d), root, "sandboxes");
        sp_cgroup_manager_options o = { .fs_root = root, .parent = "/" };
        sp_cgroup_manager *m = NULL;
        sp_error err = {};
        int r = sp_cgroup_manager_new(&o, &m, &err);
        if (r < 0)
                fail_msg("%s", err.message);
        sp_cgroup_manager_free(m);
        assert_int_equal(access(d, F_OK), 0);
        rm_rf(root);
}

/* The kill loop signals only processes that /proc says are in the cgroup:
 * a pid in cgroup.procs that was reused by an outsider must survive. */
static void test_kill_procs_checks_membership(void **state) {
        char dir[] = "/tmp/sp-cgroup-kill-XXXXXX", pid[32];
        assert_non_null(mkdtemp(dir));
        pid_t outsider = fork();
        assert_true(outsider >= 0);
        if (outsider == 0) {
                for (;;)
                        pause();
        }
        snprintf(pid, sizeof(pid), "%d\n", (int) outsider);
        put(dir, "cgroup.procs", pid);
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        /* v2 check ("0::" line) and v1 check (the memory line). */
        assert_int_equal(sp_cgroup_kill_procs(fd, NULL, "/not/its/cgroup", 2), -EBUSY);
        assert_int_equal(sp_cgroup_kill_procs(fd, "memory", "/not/its/cgroup", 2), -EBUSY);
        int status;
        assert_int_equal(waitpid(outsider, &status, WNOHANG), 0); /* still alive */
        close(fd);
        kill(outsider, SIGKILL); /* our own child */
        assert_int_equal(waitpid(outsider, &status, 0), outsider);
        rm_rf(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_mountinfo),
                cmocka_unit_test(test_parse_proc_cgroup),
                cmocka_unit_test(test_parse_values),
                cmocka_unit_test(test_format_and_validate),
                cmocka_unit_test(test_paths),
                cmocka_unit_test(test_v2_fake_tree),
                cmocka_unit_test(test_hybrid_fake_tree),
                cmocka_unit_test(test_existing_subtree_kept),
                cmocka_unit_test(test_kill_procs_checks_membership),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
