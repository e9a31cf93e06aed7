/* SPDX-License-Identifier: MIT */
/* The create / exec / destroy sequence of one sandbox, nothing else: each
 * step lives in the file of its kernel subsystem. */
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "caps.h"
#include "init.h"
#include "mount.h"
#include "net.h"
#include "proto.h"
#include "sandbox-internal.h"
#include "userns.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define RECV_BUF_SIZE (sizeof(sp_msg_hdr) + 4096)

static bool name_is_valid(const char *n) {
        size_t len = n ? strlen(n) : 0;
        if (len == 0 || len > 64)
                return false;
        for (const char *p = n; *p; p++)
                if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
                      *p == '-' || *p == '_'))
                        return false;
        return true;
}

int sp_runtime_init(const char *stage_dir, sp_error *err) {
        /* Staging mounts are built in our own mount namespace, so the host's
         * mount table never shows them and a crash cannot leak them. */
        if (unshare(CLONE_NEWNS) < 0)
                return sp_error_set(err, -errno, "Failed to create a private mount namespace: %m");
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return sp_error_set(err, -errno, "Failed to make the mount namespace private: %m");
        if (mkdir(stage_dir, 0711) < 0 && errno != EEXIST)
                return sp_error_set(err, -errno, "Failed to create %s: %m", stage_dir);
        return 0;
}

/* ---- PID 1, before it starts serving ------------------------------------ */

typedef struct child_args {
        int ctl;
        const sp_sandbox_spec *spec;
        const char *stage_root;
} child_args;

static void reset_signals(void) {
        struct sigaction sa = {.sa_handler = SIG_DFL};
        sigset_t none;
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &sa, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
}

/* PID 1 is a copy of the caller, command line included, and
 * /proc/1/cmdline is readable by everyone inside: overwrite it in place
 * (our copy of the memory only) so the host's arguments do not show. */
static void hide_cmdline(void) {
        char buf[1024];
        _cleanup_close_ int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (n <= 0)
                return;
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        unsigned long long arg_start = 0, arg_end = 0;
        /* Fields after the command name start at 3 (state); arg_start is 48. */
        for (int field = 3; p && field <= 49; field++) {
                p = strchr(p + 1, ' ');
                if (p && field == 48)
                        arg_start = strtoull(p + 1, NULL, 10);
                if (p && field == 49)
                        arg_end = strtoull(p + 1, NULL, 10);
        }
        if (arg_start == 0 || arg_end <= arg_start)
                return;
        static const char title[] = "sandpool-init";
        size_t len = (size_t) (arg_end - arg_start);
        memset((void *) (uintptr_t) arg_start, 0, len);
        memcpy((void *) (uintptr_t) arg_start, title, MIN(len - 1, sizeof(title) - 1));
        (void) prctl(PR_SET_NAME, title);
}

static _noreturn_ void child_fail(int ctl, int r, const char *msg) {
        (void) sp_msg_send(ctl, SP_MSG_FAILED, 0, r, 0, msg, strlen(msg), NULL, 0);
        _exit(1);
}

static _noreturn_ void child_main(const child_args *a) {
        sp_error e = {};
        char buf[sizeof(sp_msg_hdr) + 64];
        int fds[SP_MSG_MAX_FDS];
        size_t nfds = 0;
        int ctl = 3, r;

        /* If the caller dies, so does the sandbox. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Named from birth (hide_cmdline() does the command line last). */
        (void) prctl(PR_SET_NAME, "sandpool-init");
        /* We are a copy of the caller: every fd it holds (other sandboxes'
         * control sockets, client connections, the API socket) is ours too.
         * Keep only the control socket, as fd 3. */
        if (a->ctl != ctl && dup3(a->ctl, ctl, O_CLOEXEC) < 0)
                _exit(1);
        (void) close_range(0, 2, 0);
        /* CLOSE_RANGE_UNSHARE: a new fd table sized for what is left, not
         * the caller's (thousands of slots in a busy daemon) copied. */
        (void) close_range(4, ~0U, CLOSE_RANGE_UNSHARE);
        reset_signals();

        /* Stage GO: ids mapped, cgroup joined, overlay staged. */
        ssize_t n = sp_msg_recv(ctl, buf, sizeof(buf), 0, fds, &nfds);
        if (n <= 0 || ((sp_msg_hdr *) buf)->type != SP_MSG_STAGE_GO)
                _exit(1);

        r = sp_userns_become_root();
        if (r < 0)
                child_fail(ctl, r, "become root in the user namespace");
        /* The mount namespace is made only now, so that it is a copy of the
         * caller's with the staged overlay in it (and owned by our user
         * namespace, which locks the inherited mounts' flags). The cgroup
         * namespace likewise starts at the cgroup we were just put in. */
        if (unshare(CLONE_NEWNS | CLONE_NEWCGROUP) < 0)
                child_fail(ctl, -errno, "unshare mount and cgroup namespaces");
        sp_mount_opts mo = {.root = a->stage_root, .shm_bytes = a->spec->limits.memory_bytes};
        r = sp_mount_setup_child(&mo, &e);
        if (r < 0) {
                (void) sp_error_prefix(&e, "mounts");
                child_fail(ctl, r, e.message);
        }
        for (int i = 0; i < 3; i++)
                if (open("/dev/null", O_RDWR) != i)
                        child_fail(ctl, -errno, "open /dev/null");

        const char *host = a->spec->hostname ? a->spec->hostname : "sandbox";
        if (sethostname(host, strlen(host)) < 0)
                child_fail(ctl, -errno, "sethostname");
        r = sp_net_loopback_up();
        if (r < 0)
                child_fail(ctl, r, "bring up lo");
        r = sp_caps_drop_bounding();
        if (r < 0)
                child_fail(ctl, r, "drop the capability bounding set");
        /* Not dumpable: no command may ptrace us or open /proc/1/{exe,root,fd,mem},
         * which would hand it this (host) binary: CVE-2019-5736. */
        if (prctl(PR_SET_DUMPABLE, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                child_fail(ctl, -errno, "prctl");
        if (a->spec->seccomp) {
                r = sp_seccomp_program_load(a->spec->seccomp);
                if (r < 0)
                        child_fail(ctl, r, "load the seccomp filter");
        }
        /* Last: the spec's strings may live in the caller's argv. */
        hide_cmdline();
        if (sp_msg_send(ctl, SP_MSG_READY, 0, 0, 0, NULL, 0, NULL, 0) < 0)
                _exit(1);
        sp_init_run(ctl);
}

/* ---- the caller's side ---------------------------------------------------- */

static pid_t clone3_sandbox(int cgroup_fd, bool clone_parent, int *ret_pidfd) {
        struct clone_args args = {
                .flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                /* with CLONE_PARENT the kernel uses our own exit signal */
                .exit_signal = clone_parent ? 0 : SIGCHLD,
        };
        if (clone_parent)
                args.flags |= CLONE_PARENT;
        if (cgroup_fd >= 0) {
                /* v2: born in its cgroup, never charged to ours. */
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t) cgroup_fd;
        }
        return (pid_t) syscall(SYS_clone3, &args, sizeof(args));
}

static void sandbox_free(sp_sandbox *sb) {
        if (!sb)
                return;
        sp_stage_done(&sb->stage);
        safe_close(sb->ctl);
        safe_close(sb->pidfd);
        free(sb->buf);
        free(sb->name);
        free(sb);
}

static int sandbox_reap(sp_sandbox *sb, bool block) {
        siginfo_t si = {};
        if (sb->reaped || sb->pidfd < 0)
                return 0;
        if (syscall(SYS_waitid, P_PIDFD, sb->pidfd, &si, WEXITED | (block ? 0 : WNOHANG), NULL) < 0)
                return -errno;
        if (si.si_pid == 0)
                return -EAGAIN;
        sb->reaped = true;
        sb->state = SANDBOX_DEAD;
        sb->exit_code = si.si_code;
        sb->exit_status = si.si_status;
        return 0;
}

int sp_sandbox_try_reap(sp_sandbox *sb, int *ret_code, int *ret_status) {
        int r = sandbox_reap(sb, false);
        if (r < 0)
                return r;
        if (!sb->reaped)
                return -ECHILD;
        if (ret_code)
                *ret_code = sb->exit_code;
        if (ret_status)
                *ret_status = sb->exit_status;
        return 0;
}

int sp_sandbox_start(const sp_sandbox_spec *spec, sp_sandbox **ret, sp_error *err) {
        _cleanup_close_pair_ int pair[2] = {-EBADF, -EBADF};
        _cleanup_close_ int userns_fd = -EBADF;
        sp_sandbox *sb;
        int r;

        if (!name_is_valid(spec->name))
                return sp_error_set(err, -EINVAL, "invalid sandbox name");
        if (!spec->rootfs || !spec->stage_dir)
                return sp_error_set(err, -EINVAL, "no rootfs or stage directory given");
        if (spec->limits.memory_bytes == 0 || spec->limits.cpu_pct == 0 || spec->limits.pids == 0 ||
            spec->limits.disk_bytes == 0)
                return sp_error_set(err, -EINVAL, "every limit (memory, cpu, pids, disk) must be set");
        if (spec->id_base == 0 || (uint64_t) spec->id_base + SP_ID_RANGE > UINT32_MAX)
                return sp_error_set(err, -EINVAL, "id range %u+%u is not usable", (unsigned) spec->id_base, SP_ID_RANGE);

        sb = calloc(1, sizeof(*sb));
        if (!sb || !(sb->name = strdup(spec->name)) || !(sb->buf = malloc(RECV_BUF_SIZE))) {
                sandbox_free(sb);
                return sp_error_set(err, -ENOMEM, "out of memory");
        }
        sb->pidfd = sb->ctl = sb->stage.root_fd = sb->stage.upper_fd = -EBADF;
        sb->id_base = spec->id_base;
        sb->next_id = 1;

        if (spec->cgroups) {
                r = sp_cgroup_new(spec->cgroups, spec->name, &spec->limits, &sb->cgroup, err);
                if (r < 0)
                        goto fail;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
                r = sp_error_set(err, -errno, "socketpair: %m");
                goto fail;
        }

        int cgfd = sb->cgroup ? sp_cgroup_clone_fd(sb->cgroup) : -1;
        sb->pid = clone3_sandbox(cgfd, spec->clone_parent, &sb->pidfd);
        if (sb->pid < 0) {
                r = sp_error_set(err, -errno, "clone3 with new user, pid, net, uts and ipc namespaces: %m");
                goto fail;
        }
        if (sb->pid == 0) {
                char root[PATH_MAX];
                snprintf(root, sizeof(root), "%s/%s/root", spec->stage_dir, spec->name);
                child_args a = {.ctl = pair[1], .spec = spec, .stage_root = root};
                child_main(&a);
        }
        sb->ctl = TAKE_FD(pair[0]);
        if (spec->on_cloned)
                spec->on_cloned(sb->pidfd, spec->on_cloned_userdata);

        if (sb->cgroup && cgfd < 0) {
                r = sp_cgroup_attach(sb->cgroup, sb->pid);
                if (r < 0) {
                        sp_error_set(err, r, "attach sandbox to its cgroup: %s", strerror(-r));
                        goto fail;
                }
        }
        r = sp_userns_write_maps(sb->pid, spec->id_base, SP_ID_RANGE);
        if (r < 0) {
                sp_error_set(err, r, "write uid/gid maps: %s", strerror(-r));
                goto fail;
        }
        userns_fd = sp_userns_open(sb->pid);
        if (userns_fd < 0) {
                r = sp_error_set(err, userns_fd, "open user namespace: %s", strerror(-userns_fd));
                goto fail;
        }
        r = sp_stage_build(&sb->stage, spec->stage_dir, spec->name, spec->rootfs, spec->layers, userns_fd, spec->id_base,
                           sp_limits_disk_size(&spec->limits), err);
        if (r < 0)
                goto fail;
        r = sp_msg_send(sb->ctl, SP_MSG_STAGE_GO, 0, 0, 0, NULL, 0, NULL, 0);
        if (r < 0) {
                sp_error_set(err, r, "sandbox PID 1 died during setup");
                goto fail;
        }
        sb->state = SANDBOX_STARTING;
        *ret = sb;
        return 0;

fail:
        sp_sandbox_destroy(sb);
        return r;
}

int sp_sandbox_create(const sp_sandbox_spec *spec, int timeout_ms, sp_sandbox **ret, sp_error *err) {
        sp_sandbox *sb = NULL;
        sp_event ev;
        int r;

        r = sp_sandbox_start(spec, &sb, err);
        if (r < 0)
                return r;
        r = sp_sandbox_wait_event(sb, timeout_ms, &ev);
        if (r >= 0 && ev.type == SP_EVENT_READY) {
                *ret = sb;
                return 0;
        }
        if (r >= 0 && ev.type == SP_EVENT_FAILED) {
                r = ev.error.code < 0 ? ev.error.code : -EIO;
                if (err) {
                        *err = ev.error;
                        err->code = r;
                        (void) sp_error_prefix(err, "sandbox setup failed");
                }
        } else if (r == -ETIME)
                sp_error_set(err, r, "sandbox setup timed out after %d ms", timeout_ms);
        else
                sp_error_set(err, r < 0 ? r : -EIO, "sandbox PID 1 died during setup");
        sp_sandbox_destroy(sb);
        return r < 0 ? r : -EIO;
}

int sp_sandbox_export(sp_sandbox *sb, sp_sandbox_handoff *ret) {
        if (sb->state != SANDBOX_READY)
                return -EINVAL;
        ret->pid = sb->pid;
        ret->pidfd = sb->pidfd;
        ret->ctl = sb->ctl;
        ret->root_fd = sb->stage.root_fd;
        ret->upper_fd = sb->stage.upper_fd;
        /* the fds are the caller's now */
        sb->pidfd = sb->ctl = sb->stage.root_fd = sb->stage.upper_fd = -EBADF;
        sp_stage_done(&sb->stage);
        sp_cgroup_close(sb->cgroup);
        sb->cgroup = NULL;
        sandbox_free(sb);
        return 0;
}

int sp_sandbox_adopt(const char *name, uid_t id_base, sp_cgroup_manager *cgroups, const sp_sandbox_handoff *h,
                     sp_sandbox **ret, sp_error *err) {
        sp_sandbox *sb = calloc(1, sizeof(*sb));
        int r;

        if (sb)
                sb->pidfd = sb->ctl = sb->stage.root_fd = sb->stage.upper_fd = -EBADF;
        if (!sb || !(sb->name = strdup(name)) || !(sb->buf = malloc(RECV_BUF_SIZE))) {
                r = sp_error_set(err, -ENOMEM, "out of memory");
                goto fail;
        }
        sb->pid = h->pid;
        sb->pidfd = h->pidfd;
        sb->ctl = h->ctl;
        sb->stage.root_fd = h->root_fd;
        sb->stage.upper_fd = h->upper_fd;
        sb->id_base = id_base;
        sb->next_id = 1;
        sb->state = SANDBOX_READY;
        if (cgroups) {
                r = sp_cgroup_open(cgroups, name, &sb->cgroup, err);
                if (r < 0) {
                        sb->pidfd = sb->ctl = sb->stage.root_fd = sb->stage.upper_fd = -EBADF; /* closed below */
                        goto fail;
                }
        }
        *ret = sb;
        return 0;
fail:
        safe_close(h->pidfd);
        safe_close(h->ctl);
        safe_close(h->root_fd);
        safe_close(h->upper_fd);
        sandbox_free(sb);
        return r;
}

int sp_sandbox_release(sp_sandbox *sb) {
        int r;
        if (!sb)
                return 0;
        r = sp_sandbox_kill(sb);
        int q = sandbox_reap(sb, false);
        if (q < 0 && q != -ECHILD && r == 0)
                r = q;
        sp_stage_done(&sb->stage);
        sp_cgroup_close(sb->cgroup);
        sb->cgroup = NULL;
        sandbox_free(sb);
        return r;
}

int sp_sandbox_control_fd(const sp_sandbox *sb) {
        return sb->ctl;
}
int sp_sandbox_pidfd(const sp_sandbox *sb) {
        return sb->pidfd;
}
const char *sp_sandbox_name(const sp_sandbox *sb) {
        return sb->name;
}
bool sp_sandbox_is_ready(const sp_sandbox *sb) {
        return sb->state == SANDBOX_READY;
}
uid_t sp_sandbox_id_base(const sp_sandbox *sb) {
        return sb->id_base;
}
int sp_sandbox_root_fd(const sp_sandbox *sb) {
        return sb->state == SANDBOX_READY ? sb->stage.root_fd : -EBADF;
}
int sp_sandbox_upper_fd(const sp_sandbox *sb) {
        return sb->state == SANDBOX_READY ? sb->stage.upper_fd : -EBADF;
}
int sp_sandbox_take_root_fd(sp_sandbox *sb) {
        return TAKE_FD(sb->stage.root_fd);
}
int sp_sandbox_take_upper_fd(sp_sandbox *sb) {
        return TAKE_FD(sb->stage.upper_fd);
}
const sp_cgroup *sp_sandbox_cgroup(const sp_sandbox *sb) {
        return sb->cgroup;
}

int sp_sandbox_next_event(sp_sandbox *sb, sp_event *ret) {
        for (;;) {
                int fds[SP_MSG_MAX_FDS];
                size_t nfds = 0;
                ssize_t n = sp_msg_recv(sb->ctl, sb->buf, RECV_BUF_SIZE, MSG_DONTWAIT, fds, &nfds);
                for (size_t i = 0; i < nfds; i++)
                        safe_close(fds[i]); /* PID 1 never sends fds */
                if (n == -EAGAIN)
                        return -EAGAIN;
                if (n == 0 || n == -ECONNRESET) {
                        if (sb->state != SANDBOX_FAILED)
                                sb->state = SANDBOX_DEAD;
                        return -EPIPE;
                }
                if (n < 0)
                        return (int) n;

                const sp_msg_hdr *h = (const sp_msg_hdr *) sb->buf;
                const void *payload = h + 1;
                memset(ret, 0, sizeof(*ret));
                ret->id = h->id;
                switch (h->type) {
                case SP_MSG_READY:
                        /* PID 1 has pivoted into its own copy of the overlay:
                         * take ours out of the caller's mount table. Not
                         * earlier: removing the staging directory detaches
                         * every mount on it in every namespace, PID 1's
                         * copies included, until it has pivoted away. */
                        sp_stage_release(&sb->stage);
                        sb->state = SANDBOX_READY;
                        ret->type = SP_EVENT_READY;
                        return 0;
                case SP_MSG_FAILED:
                        sb->state = SANDBOX_FAILED;
                        ret->type = SP_EVENT_FAILED;
                        ret->error.code = h->err < 0 ? h->err : -EIO;
                        snprintf(ret->error.message, sizeof(ret->error.message), "%.*s: %s", (int) h->len,
                                 (const char *) payload, strerror(-ret->error.code));
                        return 0;
                case SP_MSG_STARTED:
                        if (h->len != sizeof(int32_t))
                                return -EBADMSG;
                        ret->type = SP_EVENT_STARTED;
                        ret->pid = *(const int32_t *) payload;
                        return 0;
                case SP_MSG_EXITED: {
                        sp_msg_exit e;
                        if (h->len != sizeof(e))
                                return -EBADMSG;
                        memcpy(&e, payload, sizeof(e));
                        ret->type = SP_EVENT_EXITED;
                        ret->exit = (sp_exit_info){
                                .exit_code = e.exit_code, .signal = e.signal, .spawn_errno = e.spawn_errno,
                                .cpu_usec = e.cpu_usec, .maxrss_kib = e.maxrss_kib,
                        };
                        return 0;
                }
                default:
                        return -EBADMSG;
                }
        }
}

int sp_sandbox_wait_event(sp_sandbox *sb, int timeout_ms, sp_event *ret) {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                int r = sp_sandbox_next_event(sb, ret);
                if (r != -EAGAIN)
                        return r;
                int left = timeout_ms;
                if (timeout_ms >= 0) {
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
                        if (spent >= timeout_ms)
                                return -ETIME;
                        left = timeout_ms - (int) spent;
                }
                struct pollfd p = {.fd = sb->ctl, .events = POLLIN};
                if (poll(&p, 1, left) < 0 && errno != EINTR)
                        return -errno;
        }
}

int sp_sandbox_stats_read(const sp_sandbox *sb, sp_sandbox_stats *ret) {
        memset(ret, 0, sizeof(*ret));
        if (!sb->cgroup)
                return -ENODATA;
        return sp_cgroup_stats_read(sb->cgroup, &ret->cgroup);
}

int sp_sandbox_kill(sp_sandbox *sb) {
        int r = 0;
        /* SIGKILL to a pid namespace's init takes every process of the
         * namespace with it; nothing inside can escape the pid namespace. */
        if (sb->pidfd >= 0 && !sb->reaped && syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0) < 0 &&
            errno != ESRCH)
                r = -errno;
        /* On v2 cgroup.kill is one write and catches a task forked in the
         * meantime; on v1 killing by pid would mean waiting in a loop, and
         * the pid namespace already guarantees every task goes. */
        if (sb->cgroup && sp_cgroup_clone_fd(sb->cgroup) >= 0)
                (void) sp_cgroup_kill(sb->cgroup);
        else if (sb->cgroup)
                /* v1: a frozen PID 1 (a template being captured) would
                 * sleep through the SIGKILL */
                (void) sp_cgroup_freeze(sb->cgroup, false, 0);
        return r;
}

int sp_sandbox_destroy(sp_sandbox *sb) {
        int r = 0, q;
        if (!sb)
                return 0;
        r = sp_sandbox_kill(sb);
        q = sandbox_reap(sb, true);
        if (q < 0 && q != -ECHILD && r == 0)
                r = q;
        /* Closing the control socket and the staging mounts drops the last
         * references to the overlay and its tmpfs. */
        sp_stage_done(&sb->stage);
        if (sb->cgroup) {
                q = sp_cgroup_destroy(sb->cgroup);
                sb->cgroup = NULL;
                if (q < 0 && r == 0)
                        r = q;
        }
        sandbox_free(sb);
        return r;
}

int sp_sandbox_set_limits(sp_sandbox *sb, const sp_limits *limits, sp_error *err) {
        if (!sb->cgroup)
                return sp_error_set(err, -ENODATA, "sandbox %s has no cgroup", sb->name);
        return sp_cgroup_set_limits(sb->cgroup, limits, err);
}
