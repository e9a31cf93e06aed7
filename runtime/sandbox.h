/* SPDX-License-Identifier: MIT */
#pragma once

/* One sandbox: created, entered, measured and destroyed.
 *
 * A sandbox is a PID 1 forked (never exec'd) from the caller with clone3()
 * into new user, pid, net, uts, ipc, mount and cgroup namespaces, inside
 * its own cgroup, on an overlay of a read-only image. The caller talks to
 * PID 1 over a SOCK_SEQPACKET control socket: it asks PID 1 to spawn
 * commands (passing their stdio fds), and PID 1 reports when each one has
 * started and when it exits.
 *
 * The API is usable both blocking (sp_sandbox_create + sp_exec_wait, as
 * `sandpoold run` does) and from an event loop: watch
 * sp_sandbox_control_fd() for EPOLLIN and call sp_sandbox_next_event()
 * until it returns -EAGAIN; watch sp_sandbox_pidfd() to notice PID 1 dying.
 *
 * Must be called from a single-threaded process that is in a private mount
 * namespace of its own (see sp_runtime_init()). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "mount.h"
#include "sandbox-limits.h"
#include "macro.h"
#include "seccomp-policy.h"

#define SP_ID_RANGE 65536u    /* host ids given to each sandbox */
#define SP_SANDBOX_UID 1000u  /* the `sandbox` user inside */
#define SP_SANDBOX_GID 1000u

/* Once per process: move into a private mount namespace (so that staging
 * mounts never show on the host) and create the staging directory. */
int sp_runtime_init(const char *stage_dir, sp_error *err);

typedef struct sp_sandbox_spec {
        const char *name;      /* unique among live sandboxes: [A-Za-z0-9_-]{1,64} */
        const char *rootfs;    /* image directory, used read-only as overlay lower */
        /* NULL, or template layers over the image and a fork's files */
        const sp_stage_layers *layers;
        const char *hostname;  /* NULL: "sandbox" */
        const char *stage_dir; /* same as given to sp_runtime_init() */
        uid_t id_base;         /* host uid/gid of root inside; SP_ID_RANGE ids from here */
        sp_limits limits;
        sp_cgroup_manager *cgroups;
        /* Loaded by PID 1 before it reports ready, inherited by every
         * command. NULL only for tests of the runtime itself. */
        const sp_seccomp_program *seccomp;
        /* PID 1 becomes a child of the caller's parent (CLONE_PARENT): a
         * factory process makes sandboxes that its parent, the supervisor,
         * holds and reaps (a failure here kills PID 1 but cannot reap it). */
        bool clone_parent;
        /* Called right after the clone with PID 1's pidfd (still the
         * sandbox's), so that a factory can hand it to the parent before
         * anything else can go wrong. */
        void (*on_cloned)(int pidfd, void *userdata);
        void *on_cloned_userdata;
} sp_sandbox_spec;

typedef struct sp_sandbox sp_sandbox;

/* Clone PID 1 and do the parent's half of the setup (cgroup, id maps,
 * idmapped lower, tmpfs, overlay). Returns at once; PID 1 finishes on its
 * own and announces SP_EVENT_READY (or SP_EVENT_FAILED). */
int sp_sandbox_start(const sp_sandbox_spec *spec, sp_sandbox **ret, sp_error *err);
/* sp_sandbox_start() and wait (up to timeout_ms) for READY. */
int sp_sandbox_create(const sp_sandbox_spec *spec, int timeout_ms, sp_sandbox **ret, sp_error *err);

int sp_sandbox_control_fd(const sp_sandbox *sb); /* EPOLLIN: call sp_sandbox_next_event() */
int sp_sandbox_pidfd(const sp_sandbox *sb);      /* readable when PID 1 has died */
const char *sp_sandbox_name(const sp_sandbox *sb);
bool sp_sandbox_is_ready(const sp_sandbox *sb);
uid_t sp_sandbox_id_base(const sp_sandbox *sb);
/* O_PATH fd of the sandbox's root directory (the overlay, without /proc,
 * /dev and other mounts on it), for openat2(RESOLVE_IN_ROOT). Owned by the
 * sandbox. -EBADF when not ready. */
int sp_sandbox_root_fd(const sp_sandbox *sb);
/* The overlay's upper directory (what the sandbox wrote, whiteouts and
 * all), on its tmpfs: read it only while the sandbox is frozen. Owned by
 * the sandbox. -EBADF when not ready. */
int sp_sandbox_upper_fd(const sp_sandbox *sb);
/* The root fd, taken out (the caller closes it; -EBADF if none): closing
 * the last reference to a sandbox's mounts tears them down, which is slow. */
int sp_sandbox_take_root_fd(sp_sandbox *sb);
/* The same for the upper directory's fd (a hold on the tmpfs). */
int sp_sandbox_take_upper_fd(sp_sandbox *sb);
const sp_cgroup *sp_sandbox_cgroup(const sp_sandbox *sb);

typedef struct sp_exec_spec {
        char *const *argv;  /* argv[0] is looked up in PATH when it has no '/' */
        char *const *envp;  /* NULL: a default environment */
        const char *cwd;    /* NULL: the user's home (/home/sandbox, / for root) */
        int stdin_fd, stdout_fd, stderr_fd; /* the caller's fds; -1: /dev/null */
        uid_t uid;          /* inside the sandbox; SP_SANDBOX_UID by default */
        gid_t gid;
        bool ctty;          /* stdin is a terminal (sp_sandbox_open_pty()): its controlling one */
} sp_exec_spec;
void sp_exec_spec_init(sp_exec_spec *s); /* defaults: uid/gid 1000, fds -1 */

/* Ask PID 1 to start a command. The fds are passed with SCM_RIGHTS; the
 * caller keeps (and may close) its copies. Returns an id (> 0) that later
 * events carry. Fails with -E2BIG when argv+env exceed the kernel's limit. */
int sp_sandbox_spawn(sp_sandbox *sb, const sp_exec_spec *spec, uint64_t *ret_id, sp_error *err);
/* A new terminal in the sandbox's own devpts instance (the one mounted on
 * its /dev/pts, never the host's): the master for the caller, and the
 * slave, owned by uid inside, to pass to sp_sandbox_spawn() as the
 * command's stdio with ctty. Both O_CLOEXEC; the master O_NONBLOCK. */
int sp_sandbox_open_pty(sp_sandbox *sb, unsigned rows, unsigned cols, uid_t uid, int *ret_master, int *ret_slave,
                        sp_error *err);
/* Signal a command's whole process group (it runs in its own session). */
int sp_sandbox_signal(sp_sandbox *sb, uint64_t id, int sig);

typedef enum sp_event_type {
        SP_EVENT_NONE = 0,
        SP_EVENT_READY,   /* PID 1 finished setup */
        SP_EVENT_FAILED,  /* setup failed: event.error */
        SP_EVENT_STARTED, /* command id is running, event.pid is its pid inside */
        SP_EVENT_EXITED,  /* command id ended: event.exit */
} sp_event_type;

typedef struct sp_exit_info {
        int exit_code;       /* 0-255 when exited, -1 when killed by a signal */
        int signal;          /* the signal, or 0 */
        int spawn_errno;     /* >0 when exec failed: exit_code is 127 or 126 */
        uint64_t cpu_usec;   /* user + system time of the command and its waited children */
        uint64_t maxrss_kib;
} sp_exit_info;

typedef struct sp_event {
        sp_event_type type;
        uint64_t id;         /* STARTED / EXITED */
        pid_t pid;           /* STARTED: pid inside the sandbox */
        sp_exit_info exit;   /* EXITED */
        sp_error error;      /* FAILED */
} sp_event;

/* Read one event without blocking: 0 and *ret filled, -EAGAIN when there
 * is none, -EPIPE when PID 1 has gone away. Internal messages (such as the
 * signal that staging mounts may be removed) are handled here and not
 * returned. */
int sp_sandbox_next_event(sp_sandbox *sb, sp_event *ret);
/* Block up to timeout_ms (-1: forever) for the next event. -ETIME on timeout. */
int sp_sandbox_wait_event(sp_sandbox *sb, int timeout_ms, sp_event *ret);

typedef struct sp_sandbox_stats {
        sp_cgroup_stats cgroup;
} sp_sandbox_stats;
int sp_sandbox_stats_read(const sp_sandbox *sb, sp_sandbox_stats *ret);

/* Reap PID 1 if it has died, without blocking: 0 and how it ended
 * (waitid's si_code, CLD_EXITED or CLD_KILLED, and si_status: the exit
 * status or the signal), -EAGAIN while it lives. Idempotent. */
int sp_sandbox_try_reap(sp_sandbox *sb, int *ret_code, int *ret_status);

/* Moving a ready sandbox between two processes of ours (a factory and the
 * supervisor): what crosses in SCM_RIGHTS, and the pid for the logs. */
typedef struct sp_sandbox_handoff {
        pid_t pid;       /* PID 1, in the supervisor's pid namespace */
        int pidfd, ctl, root_fd, upper_fd;
} sp_sandbox_handoff;
/* The factory's side: the sandbox must be ready (its staging mounts are
 * released). Its fds move to *ret (the caller sends, then closes them);
 * the local object is freed; nothing is killed and the cgroup stays. */
int sp_sandbox_export(sp_sandbox *sb, sp_sandbox_handoff *ret);
/* The supervisor's side: take over a sandbox that sp_sandbox_export()
 * handed over, opening its cgroup by name. Takes the handoff's fds (closed
 * on failure). */
int sp_sandbox_adopt(const char *name, uid_t id_base, sp_cgroup_manager *cgroups, const sp_sandbox_handoff *h,
                     sp_sandbox **ret, sp_error *err);
/* After PID 1 has died: reap it (without blocking), close and free
 * everything but the cgroup directories, which the caller removes
 * elsewhere, off its event loop (sp_cgroup_remove()). */
int sp_sandbox_release(sp_sandbox *sb);

/* Kill everything inside (PID 1 with SIGKILL tears down the whole pid
 * namespace; on v2 cgroup.kill as well). Does not block. */
int sp_sandbox_kill(sp_sandbox *sb);
/* Kill, wait for PID 1 to be reaped, remove the cgroup, free. Blocks until
 * the kernel has let go (~0.3 ms). Returns the first cleanup error. */
int sp_sandbox_destroy(sp_sandbox *sb);

/* Change memory, cpu and pids limits of a live sandbox (the disk quota is
 * fixed at creation: limits->disk_bytes must equal the original). */
int sp_sandbox_set_limits(sp_sandbox *sb, const sp_limits *limits, sp_error *err);
