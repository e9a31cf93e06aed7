/* SPDX-License-Identifier: MIT */
/* The probe's `syscall` subcommand: one check per syscall the policy
 * denies, each with arguments that fail differently when it is allowed. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/quota.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#include <linux/bpf.h>
#include <linux/kexec.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>

#include "macro.h" /* also stdio, stdlib, string, unistd, errno, dirent */

#include "probe.h"

/* ---- syscall checks -------------------------------------------------- */

/* Checks that need setup, state or cleanup around the call. The plain ones,
 * a syscall with constant arguments, are rows of the table below. */

static long sc_bpf(const void *a) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.map_type = BPF_MAP_TYPE_ARRAY;
        attr.key_size = attr.value_size = attr.max_entries = 4;
        return syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
}

static long sc_perf_event_open(const void *a) {
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.size = sizeof attr;
        attr.type = PERF_TYPE_SOFTWARE;
        attr.config = PERF_COUNT_SW_TASK_CLOCK;
        attr.exclude_kernel = attr.exclude_hv = 1;
        return syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static long sc_io_uring_setup(const void *a) {
        /* struct io_uring_params is 120 bytes that must be zero on input;
         * <linux/io_uring.h> drags in <linux/fs.h>, which clashes with
         * glibc's <sys/mount.h>, so pass zeroed storage of that size. */
        uint64_t params[15] = { 0 };
        return syscall(SYS_io_uring_setup, 1, params);
}

struct probe_handle {
        struct file_handle fh;
        unsigned char bytes[MAX_HANDLE_SZ];
};

static long sc_name_to_handle_at(const void *a) {
        struct probe_handle h = { .fh.handle_bytes = MAX_HANDLE_SZ };
        int mount_id;
        return syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h.fh, &mount_id, 0);
}

/* The "shocker" escape (2014): open_by_handle_at() with CAP_DAC_READ_SEARCH
 * opens any inode of the filesystem by handle, bypassing the mount tree. */
static long sc_open_by_handle_at(const void *a) {
        struct probe_handle h = { .fh.handle_bytes = MAX_HANDLE_SZ };
        int mount_id;
        if (syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h.fh, &mount_id, 0) < 0) {
                /* A made-up handle: ESTALE or EINVAL when allowed. */
                h.fh.handle_bytes = 8;
                h.fh.handle_type = 1;
                extra("handle=fake");
        }
        /* The mount fd must be a real open file: O_PATH gives EBADF. */
        _cleanup_close_ int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return step_fail("open-root");
        return syscall(SYS_open_by_handle_at, root, &h.fh, O_RDONLY | O_CLOEXEC);
}

static long sc_mount(const void *a) {
        char d[64];
        if (scratch_dir(d, sizeof d) < 0)
                return step_fail("mkdtemp");
        long r = syscall(SYS_mount, "sandpool-probe", d, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16k");
        if (r == 0)
                umount2(d, MNT_DETACH);
        rmdir_keep_errno(d);
        return r;
}

static long sc_umount2(const void *a) {
        /* A directory that is not a mount point: EINVAL once past the
         * CAP_SYS_ADMIN check. Never "/" (that remounts the root ro). */
        char d[64];
        if (scratch_dir(d, sizeof d) < 0)
                return step_fail("mkdtemp");
        long r = syscall(SYS_umount2, d, 0);
        rmdir_keep_errno(d);
        return r;
}

static long sc_mount_setattr(const void *a) {
        /* Path lookup comes first here: ENOENT only says "not filtered". */
        struct mount_attr attr = { .attr_clr = MOUNT_ATTR_RDONLY };
        return syscall(SYS_mount_setattr, AT_FDCWD, PROBE_NOENT, 0, &attr, sizeof attr);
}

static long sc_setns(const void *a) {
        /* Re-joining our own UTS namespace still needs CAP_SYS_ADMIN. */
        _cleanup_close_ int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return step_fail("open-ns");
        return syscall(SYS_setns, fd, CLONE_NEWUTS);
}

static long reap_clone(long r) {
        if (r == 0)
                _exit(0);
        if (r > 0)
                wait_child((pid_t) r);
        return r;
}

static long sc_clone_newuser(const void *a) {
        /* Raw clone, no new stack: the child runs on a copy, like fork. */
        return reap_clone(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL));
}

/* clone3's arguments live in memory seccomp cannot read, so policies
 * usually answer it with ENOSYS (libc then falls back to clone). */
static long do_clone3(uint64_t flags) {
        struct { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; } ca = {
                .flags = flags, .exit_signal = SIGCHLD,
        };
        return reap_clone(syscall(SYS_clone3, &ca, sizeof ca));
}
static long sc_clone3(const void *a) { return do_clone3(0); }
static long sc_clone3_newuser(const void *a) { return do_clone3(CLONE_NEWUSER); }

long sc_ptrace(const void *a) {
        pid_t pid = a ? (pid_t) parse_long(a, "ptrace pid") : 1;
        extra("pid=%d", (int) pid);
        long r = syscall(SYS_ptrace, PTRACE_ATTACH, pid, NULL, NULL);
        if (r == 0) {
                wait_child(pid);
                syscall(SYS_ptrace, PTRACE_DETACH, pid, NULL, NULL);
        }
        return r;
}

/* iopl/ioperm grant raw port I/O (CAP_SYS_RAWIO); undone on success. */
static long sc_iopl(const void *a) {
        long r = syscall(SYS_iopl, 3);
        if (r == 0)
                syscall(SYS_iopl, 0);
        return r;
}

static long sc_ioperm(const void *a) {
        long r = syscall(SYS_ioperm, 0x80UL, 1UL, 1);
        if (r == 0)
                syscall(SYS_ioperm, 0x80UL, 1UL, 0);
        return r;
}

static long sc_syslog(const void *a) {
        char buf[64];
        return syscall(SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, buf, (int) sizeof buf);
}

static long sc_process_vm_readv(const void *a) {
        static const char src[] = "sandpool";
        char dst[sizeof src];
        struct iovec l = { dst, sizeof dst }, r = { (void *) src, sizeof src };
        return syscall(SYS_process_vm_readv, getpid(), &l, 1UL, &r, 1UL, 0UL);
}

static long sc_quotactl(const void *a) {
        char buf[256];
        return syscall(SYS_quotactl, QCMD(Q_GETINFO, USRQUOTA), "/dev/null", 0, buf);
}

static long sc_mknod(const void *a) {
        char d[64], p[80];
        if (scratch_dir(d, sizeof d) < 0)
                return step_fail("mkdtemp");
        snprintf(p, sizeof p, "%s/null", d);
        long r = syscall(SYS_mknodat, AT_FDCWD, p, S_IFCHR | 0600, makedev(1, 3));
        if (r == 0)
                unlink(p);
        rmdir_keep_errno(d);
        return r;
}

static long sc_sethostname(const void *a) {
        /* Set the name it already has: shows the permission, changes nothing. */
        struct utsname u;
        uname(&u);
        return syscall(SYS_sethostname, u.nodename, strlen(u.nodename));
}

static long sc_sched_fifo(const void *a) {
        struct sched_param sp = { .sched_priority = 1 };
        return syscall(SYS_sched_setscheduler, 0, SCHED_FIFO, &sp);
}

static long sc_pidfd_open(const void *a) { return syscall(SYS_pidfd_open, getpid(), 0); }
static long sc_kcmp(const void *a) { return syscall(SYS_kcmp, getpid(), getppid(), 0 /* KCMP_FILE */, 0UL, 0UL); }

/* A row: a check function, or (fn == NULL) syscall(nr, a[0..4]). */
struct syscall_check {
        const char *name;
        check_fn fn;
        long nr;
        uintptr_t a[5];
};
#define FN(name, fn) { name, fn, 0, { 0 } }
#define RAW(name, nr, ...) { name, NULL, nr, { __VA_ARGS__ } }
#define S(str) ((uintptr_t) (str))
#define NEG (~(uintptr_t) 0) /* -1 */
#define CLONE_NEWTIME_ 0x80

static const struct syscall_check syscall_checks[] = {
        RAW("getpid", SYS_getpid), /* control: always allowed */
        FN("bpf", sc_bpf),
        RAW("keyctl", SYS_keyctl, KEYCTL_GET_KEYRING_ID, (uintptr_t) KEY_SPEC_SESSION_KEYRING, 0),
        /* The process keyring dies with the forked check process. */
        RAW("add_key", SYS_add_key, S("user"), S("sandpool-probe"), S("x"), 1, (uintptr_t) KEY_SPEC_PROCESS_KEYRING),
        /* No callout info: never an upcall; ENOKEY means allowed. */
        RAW("request_key", SYS_request_key, S("user"), S("sandpool-probe-absent"), 0, 0),
        RAW("userfaultfd", SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY),
        FN("perf_event_open", sc_perf_event_open),
        FN("io_uring_setup", sc_io_uring_setup),
        /* Too many segments and an unknown flag: EINVAL once past the
         * CAP_SYS_BOOT check. Never nr_segments == 0: that UNLOADS the
         * loaded kexec/crash kernel. */
        RAW("kexec_load", SYS_kexec_load, 0, KEXEC_SEGMENT_MAX + 1, 0, 0x100),
        RAW("kexec_file_load", SYS_kexec_file_load, NEG, NEG, 0, S(""), 0x80000000UL),
        FN("open_by_handle_at", sc_open_by_handle_at),
        FN("name_to_handle_at", sc_name_to_handle_at),
        FN("mount", sc_mount),
        FN("umount2", sc_umount2),
        /* may_mount() comes before the path lookup: ENOENT = allowed. A real
         * pivot_root would move every process of this mount namespace. */
        RAW("pivot_root", SYS_pivot_root, S(PROBE_NOENT), S(PROBE_NOENT)),
        RAW("move_mount", SYS_move_mount, (uintptr_t) AT_FDCWD, S(PROBE_NOENT), (uintptr_t) AT_FDCWD, S(PROBE_NOENT), 0),
        RAW("open_tree", SYS_open_tree, (uintptr_t) AT_FDCWD, S("/"), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC),
        RAW("fsopen", SYS_fsopen, S("tmpfs"), FSOPEN_CLOEXEC),
        RAW("fspick", SYS_fspick, (uintptr_t) AT_FDCWD, S("/"), FSPICK_CLOEXEC),
        FN("mount_setattr", sc_mount_setattr),
        RAW("unshare-user", SYS_unshare, CLONE_NEWUSER),
        RAW("unshare-ns", SYS_unshare, CLONE_NEWNS),
        RAW("unshare-net", SYS_unshare, CLONE_NEWNET),
        RAW("unshare-pid", SYS_unshare, CLONE_NEWPID),
        RAW("unshare-uts", SYS_unshare, CLONE_NEWUTS),
        RAW("unshare-ipc", SYS_unshare, CLONE_NEWIPC),
        RAW("unshare-cgroup", SYS_unshare, CLONE_NEWCGROUP),
        RAW("unshare-time", SYS_unshare, CLONE_NEWTIME_),
        FN("setns", sc_setns),
        FN("clone-newuser", sc_clone_newuser),
        FN("clone3", sc_clone3),
        FN("clone3-newuser", sc_clone3_newuser),
        FN("ptrace", sc_ptrace),
        RAW("init_module", SYS_init_module, 0, 0, S("")),
        RAW("finit_module", SYS_finit_module, NEG, S(""), 0),
        RAW("delete_module", SYS_delete_module, S("sandpool_probe_absent"), O_NONBLOCK),
        FN("iopl", sc_iopl),
        FN("ioperm", sc_ioperm),
        RAW("swapon", SYS_swapon, S(PROBE_NOENT), 0),
        RAW("swapoff", SYS_swapoff, S(PROBE_NOENT)),
        /* Wrong magic: EINVAL after the CAP_SYS_BOOT check, never a reboot. */
        RAW("reboot", SYS_reboot, 0, 0, 0, 0),
        /* NULL, NULL still passes security_settime64(): EPERM without
         * CAP_SYS_TIME, 0 with it; the clock is not touched. */
        RAW("settimeofday", SYS_settimeofday, 0, 0),
        FN("syslog", sc_syslog),
        /* Never acct(NULL): that switches host process accounting off. */
        RAW("acct", SYS_acct, S(PROBE_NOENT)),
        RAW("personality", SYS_personality, 0xffffffffUL), /* query only */
        RAW("personality-norandom", SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE),
        RAW("personality-readexec", SYS_personality, PER_LINUX | READ_IMPLIES_EXEC),
        FN("process_vm_readv", sc_process_vm_readv),
        FN("quotactl", sc_quotactl),
        FN("mknod", sc_mknod),
        RAW("chroot", SYS_chroot, S("/")),
        RAW("setuid-0", SYS_setuid, 0),
        RAW("setgid-0", SYS_setgid, 0),
        RAW("setgroups", SYS_setgroups, 0, 0),
        FN("sethostname", sc_sethostname),
        RAW("socket-packet", SYS_socket, AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0x0300 /* htons(ETH_P_ALL) */),
        RAW("socket-raw", SYS_socket, AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP),
        RAW("socket-netlink", SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0 /* NETLINK_ROUTE */),
        RAW("socket-inet", SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
        RAW("socket-inet6", SYS_socket, AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0),
        RAW("socket-unix", SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0),
        RAW("memfd_create", SYS_memfd_create, S("probe"), MFD_CLOEXEC),
        RAW("memfd_secret", SYS_memfd_secret, O_CLOEXEC),
        FN("pidfd_open", sc_pidfd_open),
        FN("kcmp", sc_kcmp),
        RAW("landlock_create_ruleset", SYS_landlock_create_ruleset, 0, 0, 1 /* _VERSION */),
        RAW("fanotify_init", SYS_fanotify_init, 0x80000000U /* FAN_CLOEXEC */, O_RDONLY),
        FN("sched_setscheduler-fifo", sc_sched_fifo),
        RAW("ioprio_set-rt", SYS_ioprio_set, 1 /* WHO_PROCESS */, 0, 1 << 13 /* CLASS_RT */),
        RAW("setpriority-nice", SYS_setpriority, PRIO_PROCESS, 0, (uintptr_t) -20),
        /* The rest of the default policy's denies, with arguments that an
         * allowed call rejects with an argument error of its own (EBADF,
         * EFAULT, ENOTTY) or turns into a no-op, so EPERM can only come
         * from the filter. */
        RAW("io_uring_enter", SYS_io_uring_enter, NEG, 0, 0, 0, 0),
        RAW("io_uring_register", SYS_io_uring_register, NEG, 0, 0, 0),
        RAW("fsconfig", SYS_fsconfig, NEG, 6 /* FSCONFIG_CMD_CREATE */, 0, 0, 0),
        RAW("fsmount", SYS_fsmount, NEG, 0, 0),
        RAW("process_vm_writev", SYS_process_vm_writev, 0, 0, 0, 0, 0), /* pid 0, nothing to copy: EINVAL */
        RAW("process_madvise", SYS_process_madvise, NEG, 0, 0, 0, 0),
        RAW("pidfd_getfd", SYS_pidfd_getfd, NEG, 0, 0),
        RAW("modify_ldt", SYS_modify_ldt, 0, 0, 0), /* read 0 bytes of the LDT */
        RAW("quotactl_fd", SYS_quotactl_fd, NEG, 0, 0, 0),
        RAW("vhangup", SYS_vhangup),
        RAW("clock_settime", SYS_clock_settime, CLOCK_REALTIME, 0), /* EFAULT when allowed */
        RAW("adjtimex", SYS_adjtimex, 0),
        RAW("clock_adjtime", SYS_clock_adjtime, CLOCK_REALTIME, 0),
        RAW("migrate_pages", SYS_migrate_pages, NEG, 0, 0, 0), /* pid -1: ESRCH */
        RAW("move_pages", SYS_move_pages, 0, 0, 0, 0, 0), /* 0 pages: a no-op */
        RAW("uselib", SYS_uselib, S(PROBE_NOENT)),
        RAW("ustat", SYS_ustat, 0, 0),
        RAW("sysfs", SYS_sysfs, 2, 0, 0), /* EINVAL/EFAULT when allowed */
        /* Gone from the kernel (ENOSYS), still numbered: the filter answers EPERM. */
        RAW("create_module", SYS_create_module, 0, 0),
        RAW("get_kernel_syms", SYS_get_kernel_syms, 0),
        RAW("query_module", SYS_query_module, 0, 0, 0, 0, 0),
        RAW("_sysctl", SYS__sysctl, 0),
        RAW("nfsservctl", SYS_nfsservctl, 0, 0, 0),
        RAW("lookup_dcookie", SYS_lookup_dcookie, 0, 0, 0),
        /* On fd 0, a pipe or /dev/null in the tests: ENOTTY when not filtered. */
        RAW("ioctl-tiocsti", SYS_ioctl, 0, TIOCSTI, 0),
        RAW("ioctl-tiocsti-masked", SYS_ioctl, 0, (uintptr_t) TIOCSTI | (1UL << 32), 0),
        RAW("ioctl-tioclinux", SYS_ioctl, 0, TIOCLINUX, 0),
        RAW("ioctl-tioclinux-masked", SYS_ioctl, 0, (uintptr_t) TIOCLINUX | (1UL << 32), 0),
        RAW("ioctl-tiocsetd", SYS_ioctl, 0, TIOCSETD, 0),
        RAW("ioctl-tioccons", SYS_ioctl, 0, TIOCCONS, 0),
        RAW("ioctl-tiocgwinsz", SYS_ioctl, 0, TIOCGWINSZ, 0), /* control: allowed, ENOTTY on a pipe */
        RAW("socket-netlink-audit", SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 9 /* NETLINK_AUDIT */),
        RAW("socket-vsock", SYS_socket, 40 /* AF_VSOCK */, SOCK_STREAM | SOCK_CLOEXEC, 0),
        RAW("socket-alg", SYS_socket, 38 /* AF_ALG */, SOCK_SEQPACKET | SOCK_CLOEXEC, 0),
};

static long raw_call(const void *arg) {
        const struct syscall_check *c = arg;
        return syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4]);
}

static void run_syscall(const struct syscall_check *c, const char *arg) {
        run_check("syscall", c->name, c->fn ? c->fn : raw_call, c->fn ? (const void *) arg : c);
}

static const struct syscall_check *find_syscall(const char *name, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(syscall_checks); i++)
                if (strlen(syscall_checks[i].name) == len && strncmp(syscall_checks[i].name, name, len) == 0)
                        return &syscall_checks[i];
        return NULL;
}

/* syscall NAME[=ARG]... | syscall all */
int cmd_syscall(int argc, char **argv) {
        if (argc == 1 && strcmp(argv[0], "all") == 0) {
                for (size_t i = 0; i < ELEMENTSOF(syscall_checks); i++)
                        run_syscall(&syscall_checks[i], NULL);
                return 0;
        }
        /* Validate every name first: a typo in a test is a usage error, not
         * a silently missing line. */
        for (int i = 0; i < argc; i++)
                if (!find_syscall(argv[i], strcspn(argv[i], "=")))
                        usage_error("syscall: unknown name '%s'", argv[i]);
        for (int i = 0; i < argc; i++) {
                size_t len = strcspn(argv[i], "=");
                run_syscall(find_syscall(argv[i], len), argv[i][len] == '=' ? argv[i] + len + 1 : NULL);
        }
        return 0;
}


void syscall_names(void) {
        for (size_t i = 0; i < ELEMENTSOF(syscall_checks); i++)
                out(" %s", syscall_checks[i].name);
}
