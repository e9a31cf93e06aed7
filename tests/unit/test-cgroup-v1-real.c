/* SPDX-License-Identifier: MIT */
/* The v1 backend against the real kernel, on a hybrid host's v1
 * hierarchies: limits read back from cgroupfs, a forked child attached and
 * seen in /proc/<pid>/cgroup, a memory hog OOM-killed at the limit, a fork
 * loop stopped by pids.max with EAGAIN, CPU throttled at 25%, kill and
 * destroy leaving no directory behind. Needs root; everything lives below
 * a subtree named sandpool-test-<pid> that the test creates and removes.
 * Exits 77 (skip) when not root or when the host has no v1 layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup-internal.h"

static sp_cgroup_manager *manager;
static char subdir[64];
static sp_cgroup *cg;      /* the cgroup of the running test, for teardown */
static pid_t child = -1;   /* its first child, for teardown */

static const sp_limits limits_64m = { .memory_bytes = 64u << 20, .cpu_pct = 25, .pids = 16 };

static void reap_all(void) {
        /* We are a subreaper: grandchildren orphaned by a kill come to us. */
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
}

static int teardown(void **state) {
        if (cg) {
                (void) sp_cgroup_kill(cg);
                (void) sp_cgroup_destroy(cg);
                cg = NULL;
        }
        if (child > 0) {
                (void) kill(child, SIGKILL); /* our own child, still unreaped: the pid is ours */
                (void) waitpid(child, NULL, 0);
                child = -1;
        }
        reap_all();
        return 0;
}

static void new_cgroup(const char *name, const sp_limits *l) {
        sp_error err = {};
        int r = sp_cgroup_new(manager, name, l, &cg, &err);
        if (r < 0)
                fail_msg("sp_cgroup_new(%s): %s", name, err.message);
}

static void dir_of(char *buf, size_t size, size_t hier, const char *name) {
        snprintf(buf, size, "%s/%s", manager->hier[hier].subtree_path, name);
}

static size_t hier_with(unsigned bit) {
        for (size_t i = 0; i < manager->n_hier; i++)
                if (manager->hier[i].controllers & bit)
                        return i;
        fail_msg("no hierarchy with controller bit %u", bit);
        return 0;
}

static uint64_t read_u64(size_t hier, const char *name, const char *file) {
        char p[4096];
        uint64_t v = 0;
        dir_of(p, sizeof(p), hier, name);
        strncat(p, "/", sizeof(p) - strlen(p) - 1);
        strncat(p, file, sizeof(p) - strlen(p) - 1);
        int r = sp_cgroup_read_u64_at(AT_FDCWD, p, &v);
        if (r < 0)
                fail_msg("read %s: %s", p, strerror(-r));
        return v;
}

static void assert_gone(const char *name) {
        for (size_t i = 0; i < manager->n_hier; i++) {
                char p[4096];
                dir_of(p, sizeof(p), i, name);
                if (access(p, F_OK) == 0 || errno != ENOENT)
                        fail_msg("%s still exists after destroy", p);
        }
}

static void destroy_and_check(const char *name) {
        int r = sp_cgroup_destroy(TAKE_PTR(cg));
        if (r < 0)
                fail_msg("sp_cgroup_destroy(%s): %s", name, strerror(-r));
        assert_gone(name);
}

/* A child that waits for one byte on a pipe (sent once it is attached),
 * then runs fn and reports its int result on the other pipe. */
typedef int (*child_fn)(int report_fd);

static pid_t fork_waiting(child_fn fn, int *ret_go_fd, int *ret_report_fd) {
        int go[2], rep[2];
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char c;
                close(go[1]);
                close(rep[0]);
                if (read(go[0], &c, 1) != 1)
                        _exit(90);
                _exit(fn(rep[1]));
        }
        close(go[0]);
        close(rep[1]);
        *ret_go_fd = go[1];
        *ret_report_fd = rep[0];
        return pid;
}

static void go(int fd) {
        assert_int_equal(write(fd, "g", 1), 1);
        close(fd);
}

/* --- tests ------------------------------------------------------------------ */

static void test_forced_v2_fails(void **state) {
        sp_cgroup_manager_options o = { .mode = SP_CGROUP_V2, .subdir = subdir };
        sp_cgroup_manager *m = NULL;
        sp_error err = {};
        int r = sp_cgroup_manager_new(&o, &m, &err);
        if (r >= 0) {
                sp_cgroup_manager_free(m);
                print_message("cgroup v2 works on this host; the hybrid failure cannot be shown\n");
                skip();
        }
        assert_null(m);
        assert_int_equal(r, -EOPNOTSUPP);
        print_message("forced v2: %s\n", err.message);
        assert_non_null(strstr(err.message, "has no memory"));
        assert_non_null(strstr(err.message, "use mode v1 or auto"));
}

static void test_limits_read_back(void **state) {
        new_cgroup("limits", &limits_64m);
        size_t mem = hier_with(SP_CTRL_MEMORY), cpu = hier_with(SP_CTRL_CPU), pids = hier_with(SP_CTRL_PIDS);
        assert_int_equal(read_u64(mem, "limits", "memory.limit_in_bytes"), 64u << 20);
        if (manager->no_memsw)
                assert_int_equal(read_u64(mem, "limits", "memory.swappiness"), 0);
        else
                assert_int_equal(read_u64(mem, "limits", "memory.memsw.limit_in_bytes"), 64u << 20);
        assert_int_equal(read_u64(cpu, "limits", "cpu.cfs_period_us"), 100000);
        assert_int_equal(read_u64(cpu, "limits", "cpu.cfs_quota_us"), 25000);
        assert_int_equal(read_u64(pids, "limits", "pids.max"), 16);
        assert_int_equal(sp_cgroup_clone_fd(cg), -EOPNOTSUPP);

        char p[4096];
        dir_of(p, sizeof(p), mem, "limits");
        assert_string_equal(sp_cgroup_path(cg), p);
        sp_cgroup_stats st;
        assert_int_equal(sp_cgroup_stats_read(cg, &st), 0);
        assert_int_equal(st.pids_current, 0);
        assert_int_equal(st.oom_kills, 0);
        destroy_and_check("limits");
}

/* A failure half way (here: the name already taken in the pids
 * hierarchy only) removes what was made and leaves the rest alone. */
static void test_failed_create_cleans_up(void **state) {
        size_t pids = hier_with(SP_CTRL_PIDS);
        char p[4096];
        dir_of(p, sizeof(p), pids, "half");
        assert_int_equal(mkdir(p, 0755), 0);
        sp_cgroup *half = NULL;
        sp_error err = {};
        assert_int_equal(sp_cgroup_new(manager, "half", &limits_64m, &half, &err), -EEXIST);
        print_message("half: %s\n", err.message);
        assert_null(half);
        assert_non_null(strstr(err.message, p));
        for (size_t i = 0; i < manager->n_hier; i++) {
                char q[4096];
                dir_of(q, sizeof(q), i, "half");
                assert_int_equal(access(q, F_OK) == 0, i == pids);
        }
        assert_int_equal(rmdir(p), 0);
}

static int hog(int report_fd) {
        /* Touch 256 MiB page by page: the memcg OOM killer must stop us at
         * 64 MiB, since memsw forbids swapping the rest out. */
        size_t size = 256u << 20;
        char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return 91;
        for (size_t i = 0; i < size; i += 4096)
                p[i] = 1;
        return 0; /* not reached when the limit works */
}

static void test_attach_and_oom(void **state) {
        new_cgroup("oom", &limits_64m);
        int go_fd, rep_fd;
        child = fork_waiting(hog, &go_fd, &rep_fd);
        close(rep_fd);
        assert_int_equal(sp_cgroup_attach(cg, child), 0);

        /* The kernel's view: every hierarchy lists the child in our cgroup. */
        char path[64], buf[4096];
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) child);
        assert_true(sp_cgroup_read_at(AT_FDCWD, path, buf, sizeof(buf)) > 0);
        for (size_t i = 0; i < manager->n_hier; i++) {
                char want[4096], *got = NULL;
                snprintf(want, sizeof(want), "%s/oom", manager->hier[i].subtree_rel);
                assert_int_equal(sp_cgroup_parse_proc_cgroup(buf, manager->hier[i].ctrl_name, &got), 0);
                assert_string_equal(got, want);
                free(got);
        }
        sp_cgroup_stats st;
        assert_int_equal(sp_cgroup_stats_read(cg, &st), 0);
        assert_int_equal(st.pids_current, 1);
        assert_int_equal(st.oom_kills, 0);

        go(go_fd);
        int status;
        assert_int_equal(waitpid(child, &status, 0), child);
        child = -1;
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
                fail_msg("the hog was not OOM-killed: status 0x%x", status);
        assert_int_equal(sp_cgroup_stats_read(cg, &st), 0);
        print_message("oom: kills %" PRIu64 ", peak %" PRIu64 " bytes, limit %u\n", st.oom_kills, st.memory_peak,
                      64u << 20);
        assert_true(st.oom_kills >= 1);
        assert_true(st.memory_peak <= (64u << 20));
        assert_true(st.memory_peak >= (48u << 20));
        destroy_and_check("oom");
}

static int fork_until_refused(int report_fd) {
        /* We are 1 of 16; children wait to be killed. */
        int n = 0, e = 0;
        for (int i = 0; i < 64; i++) {
                pid_t p = fork();
                if (p < 0) {
                        e = errno;
                        break;
                }
                if (p == 0) {
                        for (;;)
                                pause();
                }
                n++;
        }
        int msg[2] = { n, e };
        if (write(report_fd, msg, sizeof(msg)) != sizeof(msg))
                return 92;
        for (;;)
                pause();
}

static void test_pids_limit_and_kill(void **state) {
        new_cgroup("pids", &limits_64m);
        int go_fd, rep_fd;
        child = fork_waiting(fork_until_refused, &go_fd, &rep_fd);
        assert_int_equal(sp_cgroup_attach(cg, child), 0);
        go(go_fd);
        int msg[2];
        assert_int_equal(read(rep_fd, msg, sizeof(msg)), (ssize_t) sizeof(msg));
        close(rep_fd);
        print_message("pids: %d forks allowed, then %s\n", msg[0], strerror(msg[1]));
        assert_int_equal(msg[0], 15);
        assert_int_equal(msg[1], EAGAIN);
        sp_cgroup_stats st;
        assert_int_equal(sp_cgroup_stats_read(cg, &st), 0);
        assert_int_equal(st.pids_current, 16);

        assert_int_equal(sp_cgroup_kill(cg), 0);
        int status;
        assert_int_equal(waitpid(child, &status, 0), child);
        child = -1;
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        /* The 15 grandchildren are zombies now, orphaned to us (subreaper)
         * and not reaped yet: pids.current still counts them, but they have
         * left the cgroup, so it can be removed already. */
        destroy_and_check("pids");
        reap_all();
}

static int spin(int report_fd) {
        /* Burn 100 ms of CPU time. At 25% of a CPU (25 ms per 100 ms
         * period) that cannot take less than ~3 periods however idle the
         * machine is, and each exhausted quota counts as a throttle. A busy
         * machine only makes it slower, so the bounds below hold anyway. */
        struct timespec t;
        do
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        while (t.tv_sec == 0 && t.tv_nsec < 100000000L);
        return 0;
}

static uint64_t now_ns(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

static void test_cpu_throttled(void **state) {
        new_cgroup("cpu", &limits_64m);
        int go_fd, rep_fd;
        child = fork_waiting(spin, &go_fd, &rep_fd);
        close(rep_fd);
        assert_int_equal(sp_cgroup_attach(cg, child), 0);
        uint64_t t0 = now_ns();
        go(go_fd);
        int status;
        assert_int_equal(waitpid(child, &status, 0), child);
        uint64_t wall_ms = (now_ns() - t0) / 1000000;
        child = -1;
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        sp_cgroup_stats st;
        assert_int_equal(sp_cgroup_stats_read(cg, &st), 0);
        print_message("cpu: %" PRIu64 " us of CPU took %" PRIu64 " ms at 25%%, throttled %" PRIu64 " times\n",
                      st.cpu_usage_usec, wall_ms, st.nr_throttled);
        /* cpuacct misses a little of what the task's own clock counts;
         * where the first period boundary falls decides whether the quota
         * runs out 2 or 3 times. Without the limit it takes ~100 ms. */
        assert_true(st.cpu_usage_usec >= 90000);
        assert_true(st.nr_throttled >= 2);
        assert_true(wall_ms >= 200);
        destroy_and_check("cpu");
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}


static void test_timing(void **state) {
        enum { N = 200 };
        static uint64_t create[N], destroy[N], stats[N];
        sp_error err = {};
        for (int i = 0; i < N; i++) {
                char name[32];
                snprintf(name, sizeof(name), "t%d", i);
                uint64_t t0 = now_ns();
                int r = sp_cgroup_new(manager, name, &limits_64m, &cg, &err);
                uint64_t t1 = now_ns();
                if (r < 0)
                        fail_msg("%s", err.message);
                sp_cgroup_stats st;
                assert_int_equal(sp_cgroup_stats_read(cg, &st), 0);
                uint64_t t2 = now_ns();
                r = sp_cgroup_destroy(TAKE_PTR(cg));
                uint64_t t3 = now_ns();
                assert_int_equal(r, 0);
                create[i] = (t1 - t0) / 1000;
                stats[i] = (t2 - t1) / 1000;
                destroy[i] = (t3 - t2) / 1000;
        }
        qsort(create, N, sizeof(uint64_t), cmp_u64);
        qsort(destroy, N, sizeof(uint64_t), cmp_u64);
        qsort(stats, N, sizeof(uint64_t), cmp_u64);
        print_message("timing (%d cgroups, %zu hierarchies): create+limits p50 %" PRIu64 " us p90 %" PRIu64
                      " us; stats p50 %" PRIu64 " us; destroy p50 %" PRIu64 " us p90 %" PRIu64 " us\n",
                      N, manager->n_hier, create[N / 2], create[N * 9 / 10], stats[N / 2], destroy[N / 2],
                      destroy[N * 9 / 10]);
        /* Not a benchmark gate, a sanity bound: far above the ~200 us aim. */
        assert_true(create[N / 2] < 20000);
}

int main(void) {
        if (geteuid() != 0) {
                printf("SKIP: needs root to create cgroups\n");
                return 77;
        }
        snprintf(subdir, sizeof(subdir), "sandpool-test-%d", (int) getpid());
        sp_cgroup_manager_options o = { .mode = SP_CGROUP_AUTO, .subdir = subdir };
        sp_error err = {};
        int r = sp_cgroup_manager_new(&o, &manager, &err);
        if (r < 0) {
                printf("SKIP: no usable cgroup layout here: %s\n", err.message);
                return 77;
        }
        if (sp_cgroup_manager_mode(manager) != SP_CGROUP_V1) {
                printf("SKIP: this host runs cgroup v2 (%s); this test covers the v1 backend\n",
                       sp_cgroup_manager_describe(manager));
                sp_cgroup_manager_free(manager);
                return 77;
        }
        printf("%s\n", sp_cgroup_manager_describe(manager));
        (void) prctl(PR_SET_CHILD_SUBREAPER, 1);

        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_forced_v2_fails, teardown),
                cmocka_unit_test_teardown(test_limits_read_back, teardown),
                cmocka_unit_test_teardown(test_failed_create_cleans_up, teardown),
                cmocka_unit_test_teardown(test_attach_and_oom, teardown),
                cmocka_unit_test_teardown(test_pids_limit_and_kill, teardown),
                cmocka_unit_test_teardown(test_cpu_throttled, teardown),
                cmocka_unit_test_teardown(test_timing, teardown),
        };
        int failed = cmocka_run_group_tests(tests, NULL, NULL);

        /* The subtree we made must go with the manager, in every hierarchy. */
        char paths[SP_CGROUP_MAX_HIER][4096];
        size_t n = manager->n_hier;
        for (size_t i = 0; i < n; i++)
                snprintf(paths[i], sizeof(paths[i]), "%s", manager->hier[i].subtree_path);
        sp_cgroup_manager_free(manager);
        for (size_t i = 0; i < n; i++)
                if (access(paths[i], F_OK) == 0) {
                        printf("FAIL: %s left behind\n", paths[i]);
                        failed++;
                }
        return failed ? 1 : 0;
}
