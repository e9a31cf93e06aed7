/* SPDX-License-Identifier: MIT */
/* The v2 backend's process mechanics against the real kernel: clone3()
 * with CLONE_INTO_CGROUP into a directory fd like sp_cgroup_clone_fd()
 * returns, cgroup.kill, the pid-by-pid kill loop that replaces it before
 * Linux 5.14, and rmdir while the killed tasks exit. These need no
 * controller, so they run on a hybrid host's cgroup2 mount even though its
 * memory, cpu and pids controllers are on v1 (the limits are covered by the
 * fake-tree unit test here and by the VM lane on a real cgroup2 host).
 * Needs root; works below a subtree sandpool-test-<pid> it creates and
 * removes. Exits 77 (skip) when not root or without a cgroup2 mount. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup-internal.h"

static char top_path[4096], top_rel[2048];
static int top_fd = -EBADF;
static pid_t child = -1;

static int teardown(void **state) {
        if (child > 0) {
                (void) kill(child, SIGKILL); /* our own unreaped child */
                (void) waitpid(child, NULL, 0);
                child = -1;
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        return 0;
}

/* A child in the cgroup from its first instruction, that forks three
 * more and then waits to be killed. */
static pid_t clone_into(int cgroup_fd) {
        struct clone_args args = {
                .flags = CLONE_INTO_CGROUP,
                .exit_signal = SIGCHLD,
                .cgroup = (uint64_t) cgroup_fd,
        };
        long pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0) {
                for (int i = 0; i < 3; i++)
                        if (fork() == 0)
                                break;
                for (;;)
                        pause();
        }
        return (pid_t) pid;
}

static int make_cgroup(const char *name, char *ret_rel, size_t size) {
        assert_int_equal(mkdirat(top_fd, name, 0755), 0);
        snprintf(ret_rel, size, "%s/%s", top_rel, name);
        int fd = openat(top_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void wait_populated(int fd, unsigned n) {
        /* The grandchildren are forked asynchronously: wait for all. */
        for (int i = 0; i < 1000; i++) {
                char *procs = NULL;
                unsigned count = 0;
                assert_true(sp_cgroup_read_alloc_at(fd, "cgroup.procs", &procs) >= 0);
                for (char *p = procs; (p = strchr(p, '\n')); p++)
                        count++;
                free(procs);
                if (count >= n)
                        return;
                usleep(1000);
        }
        fail_msg("cgroup never held %u processes", n);
}

static void expect_killed(void) {
        int status;
        assert_int_equal(waitpid(child, &status, 0), child);
        child = -1;
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void test_clone_into_cgroup_and_kill(void **state) {
        char rel[4096];
        int fd = make_cgroup("k", rel, sizeof(rel));
        child = clone_into(fd);
        if (child < 0 && errno == ENOSYS) {
                close(fd);
                assert_int_equal(sp_cgroup_rmdir_at(top_fd, "k", 1000, false), 0);
                print_message("clone3 not available\n");
                skip();
        }
        assert_true(child > 0);

        char path[64], buf[4096], *got = NULL;
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) child);
        assert_true(sp_cgroup_read_at(AT_FDCWD, path, buf, sizeof(buf)) > 0);
        assert_int_equal(sp_cgroup_parse_proc_cgroup(buf, NULL, &got), 0);
        assert_string_equal(got, rel);
        free(got);
        wait_populated(fd, 4);

        int r = sp_cgroup_write_at(fd, "cgroup.kill", "1", false);
        if (r == -ENOENT) {
                print_message("no cgroup.kill (Linux < 5.14): the fallback test covers it\n");
                r = sp_cgroup_kill_procs(fd, NULL, rel, 200);
        }
        assert_int_equal(r, 0);
        expect_killed();
        close(fd);
        /* Right after the kill: the retries absorb the exiting tasks. */
        assert_int_equal(sp_cgroup_rmdir_at(top_fd, "k", 1000, false), 0);
        assert_int_equal(faccessat(top_fd, "k", F_OK, 0), -1);
}

static void test_kill_procs_fallback(void **state) {
        char rel[4096];
        int fd = make_cgroup("f", rel, sizeof(rel));
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                /* Wait to be moved, then fork so the children are born inside. */
                char b[4096], *p = NULL;
                for (;;) {
                        if (sp_cgroup_read_at(AT_FDCWD, "/proc/self/cgroup", b, sizeof(b)) > 0 &&
                            sp_cgroup_parse_proc_cgroup(b, NULL, &p) == 0 && strcmp(p, rel) == 0)
                                break;
                        free(p);
                        p = NULL;
                        usleep(1000);
                }
                for (int i = 0; i < 3; i++)
                        if (fork() == 0)
                                break;
                for (;;)
                        pause();
        }
        char pid[32];
        snprintf(pid, sizeof(pid), "%d", (int) child);
        assert_int_equal(sp_cgroup_write_at(fd, "cgroup.procs", pid, false), 0);
        wait_populated(fd, 4);
        assert_int_equal(sp_cgroup_kill_procs(fd, NULL, rel, 200), 0);
        expect_killed();
        close(fd);
        assert_int_equal(sp_cgroup_rmdir_at(top_fd, "f", 1000, false), 0);
}

int main(void) {
        if (geteuid() != 0) {
                printf("SKIP: needs root to create cgroups\n");
                return 77;
        }
        char *mi = NULL;
        sp_cgroup_mount *mounts = NULL;
        size_t n = 0;
        if (sp_cgroup_read_alloc_at(AT_FDCWD, "/proc/self/mountinfo", &mi) < 0 ||
            sp_cgroup_parse_mountinfo(mi, &mounts, &n) < 0) {
                printf("SKIP: cannot read /proc/self/mountinfo\n");
                return 77;
        }
        free(mi);
        const sp_cgroup_mount *v2 = NULL;
        for (size_t i = 0; i < n && !v2; i++)
                if (mounts[i].v2 && streq(mounts[i].root, "/"))
                        v2 = &mounts[i];
        if (!v2) {
                printf("SKIP: no cgroup2 mount\n");
                sp_cgroup_mounts_free(mounts, n);
                return 77;
        }
        /* Below our own cgroup2 cgroup, as the daemon would be. */
        char *self_buf = NULL, *self = NULL;
        if (sp_cgroup_read_alloc_at(AT_FDCWD, "/proc/self/cgroup", &self_buf) < 0 ||
            sp_cgroup_parse_proc_cgroup(self_buf, NULL, &self) < 0) {
                printf("SKIP: no 0:: line in /proc/self/cgroup\n");
                return 77;
        }
        snprintf(top_rel, sizeof(top_rel), "%s/sandpool-test-%d", streq(self, "/") ? "" : self, (int) getpid());
        char *p = sp_cgroup_mount_resolve(v2, top_rel);
        snprintf(top_path, sizeof(top_path), "%s", p);
        free(p);
        free(self);
        free(self_buf);
        sp_cgroup_mounts_free(mounts, n);
        if (mkdir(top_path, 0755) < 0) {
                printf("SKIP: cannot create %s: %s\n", top_path, strerror(errno));
                return 77;
        }
        top_fd = open(top_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        (void) prctl(PR_SET_CHILD_SUBREAPER, 1);

        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_clone_into_cgroup_and_kill, teardown),
                cmocka_unit_test_teardown(test_kill_procs_fallback, teardown),
        };
        int failed = cmocka_run_group_tests(tests, NULL, NULL);
        close(top_fd);
        if (rmdir(top_path) < 0) {
                printf("FAIL: cannot remove %s: %s\n", top_path, strerror(errno));
                failed++;
        }
        return failed ? 1 : 0;
}
