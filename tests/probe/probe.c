/* SPDX-License-Identifier: MIT */
/*
 * probe: the one program the integration and escape tests run inside a
 * sandbox. It makes the syscalls a security or limit test needs and prints
 * one machine-readable line per check: "SUBCMD NAME RET ERR [key=value...]"
 * (ERR is OK or an errno name), "SUBCMD NAME killed SIGNAME", or an info
 * line "SUBCMD key=value..." / "SUBCMD KEY VALUE". Exit 0 when the probe ran,
 * 2 on a usage error. tests/probe/README.md is the full reference.
 *
 * Static (glibc's libc.a only, no NSS), so it runs in any root filesystem.
 * Every check that could change the calling process (unshare, chroot, iopl,
 * a seccomp SIGSYS kill) runs in a forked child, so one check never
 * influences the next and a kill is reported, not fatal. Arguments are
 * chosen so that an allowed call either succeeds without lasting effect
 * (and is undone) or fails with an argument error AFTER the kernel's
 * permission check: EPERM (or the seccomp errno) means denied,
 * EINVAL/ENOENT/EFAULT mean the call got past the permission check. Nothing
 * here writes to a host binary, unloads a kexec image, switches accounting
 * off or reboots.
 */
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

#include "probe.h"

/* ---- output ---------------------------------------------------------- */

void write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t) k;
        }
}

/* Unbuffered, one write(2) per line: nothing sits in a stdio buffer when we
 * fork, and an OOM or seccomp kill loses nothing already printed. */
static _printf_(2, 0) void vout(int fd, const char *fmt, va_list ap) {
        _cleanup_free_ char *s = NULL;
        int n = vasprintf(&s, fmt, ap);
        if (n > 0)
                write_all(fd, s, (size_t) n);
}
_printf_(2, 3) void fout(int fd, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vout(fd, fmt, ap);
        va_end(ap);
}


const char *errname(int e) {
        static char buf[16];
        if (e == 0)
                return "OK";
        const char *n = strerrorname_np(e);
        if (n)
                return n;
        snprintf(buf, sizeof buf, "E%d", e);
        return buf;
}

static const char *signame(int sig) {
        static char buf[16];
        const char *n = sigabbrev_np(sig);
        if (n)
                snprintf(buf, sizeof buf, "SIG%s", n);
        else
                snprintf(buf, sizeof buf, "SIG%d", sig);
        return buf;
}

/* Escape like mountinfo does so that a field never contains a space. Returns
 * a static buffer per slot: up to four escaped values per line. */
const char *esc(const char *s) {
        static char bufs[4][4096];
        static unsigned slot;
        char *b = bufs[slot++ % ELEMENTSOF(bufs)];
        size_t o = 0;
        for (; s && *s && o + 5 < sizeof bufs[0]; s++) {
                unsigned char c = (unsigned char) *s;
                if (c <= ' ' || c >= 0x7f || c == '\\')
                        o += (size_t) snprintf(b + o, 5, "\\%03o", c);
                else
                        b[o++] = (char) c;
        }
        b[o] = 0;
        return o ? b : "-";
}

_noreturn_ _printf_(1, 2) void usage_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fout(STDERR_FILENO, "probe: ");
        vout(STDERR_FILENO, fmt, ap);
        fout(STDERR_FILENO, " (probe help lists the subcommands)\n");
        va_end(ap);
        exit(2);
}

long parse_long(const char *s, const char *what) {
        char *end = NULL;
        errno = 0;
        long v = strtol(s, &end, 0);
        if (errno || !end || end == s || *end)
                usage_error("%s: not a number: '%s'", what, s);
        return v;
}

static double parse_seconds(const char *s) {
        char *end = NULL;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || !end || end == s || *end || v < 0)
                usage_error("not a duration in seconds: '%s'", s);
        return v;
}

static double now_s(clockid_t clk) {
        struct timespec ts;
        clock_gettime(clk, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
        struct timespec ts = { .tv_sec = (time_t) s, .tv_nsec = (long) ((s - (double) (time_t) s) * 1e9) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* ---- the check harness --------------------------------------------- */

/* A check function returns the call's result with errno set on failure.
 * It may name the setup step that failed (g_step) or add key=value text
 * (g_extra); both end up on the check's line. */
const char *g_step;
char g_extra[1024];

static void report(const char *cmd, const char *name, long r, int e) {
        out("%s %s %ld %s%s%s%s%s\n", cmd, esc(name), r, errname(r < 0 ? e : 0),
            g_step ? " step=" : "", g_step ? g_step : "", g_extra[0] ? " " : "", g_extra);
}

int wait_child(pid_t pid) {
        int st = 0;
        while (waitpid(pid, &st, __WALL) < 0)
                if (errno != EINTR)
                        return -1;
        return st;
}

void run_check(const char *cmd, const char *name, check_fn fn, const void *arg) {
        pid_t pid = fork();
        if (pid < 0) {
                out("%s %s nofork %s\n", cmd, esc(name), errname(errno));
                return;
        }
        if (pid == 0) {
                g_step = NULL;
                g_extra[0] = 0;
                errno = 0;
                long r = fn(arg);
                report(cmd, name, r, errno);
                _exit(0);
        }
        int st = wait_child(pid);
        if (st < 0)
                out("%s %s nowait %s\n", cmd, esc(name), errname(errno));
        else if (WIFSIGNALED(st))
                out("%s %s killed %s\n", cmd, esc(name), signame(WTERMSIG(st)));
        else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
                out("%s %s exited %d\n", cmd, esc(name), WEXITSTATUS(st));
}

_printf_(1, 2) void extra(const char *fmt, ...) {
        size_t o = strlen(g_extra);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_extra + o, sizeof g_extra - o, fmt, ap);
        va_end(ap);
}

/* Fail a check at a setup step: keeps errno, records the step. */
long step_fail(const char *step) {
        g_step = step;
        return -1;
}

/* A fresh empty directory to mount on or create files in: /tmp first, then
 * /dev/shm, then the working directory. */
int scratch_dir(char *buf, size_t n) {
        static const char *const bases[] = { "/tmp", "/dev/shm", "." };
        int e = ENOENT;
        for (size_t i = 0; i < ELEMENTSOF(bases); i++) {
                snprintf(buf, n, "%s/probe.XXXXXX", bases[i]);
                if (mkdtemp(buf))
                        return 0;
                e = errno;
        }
        errno = e;
        return -1;
}

void rmdir_keep_errno(const char *p) {
        int e = errno;
        rmdir(p);
        errno = e;
}

/* ---- 32-bit ABIs and TIOCSTI ---------------------------------------- */

/* int $0x80 from a 64-bit process enters the kernel through the ia32
 * compat table, where 20 is getpid. A filter that only allows
 * AUDIT_ARCH_X86_64 must kill or deny it; a kernel without IA32_EMULATION
 * (or booted with ia32_emulation=0) answers with SIGSEGV. */
static long ck_int80(const void *a) {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"((long) I386_NR_GETPID) : "memory", "cc", "r8", "r9", "r10", "r11");
        extra("raw=%ld pid=%d", ret, (int) getpid());
        if (ret < 0 && ret > -4096) {
                errno = (int) -ret;
                return -1;
        }
        return ret;
}

static long ck_x32(const void *a) { return syscall(SYS_getpid | X32_SYSCALL_BIT); }

/* TIOCSTI pushes bytes into a terminal's input queue: a sandboxed process
 * holding the caller's tty could type commands into the caller's shell
 * (CVE-2016-7545, CVE-2017-5226). The ioctl cmd is 32 bits in the kernel,
 * but seccomp compares all 64: a filter matching only TIOCSTI misses
 * TIOCSTI | 1 << 32, which the kernel truncates to TIOCSTI. */
static long tiocsti_on(int fd, bool masked) {
        unsigned long cmd = masked ? (unsigned long) TIOCSTI | (1UL << 32) : (unsigned long) TIOCSTI;
        return syscall(SYS_ioctl, fd, cmd, "x");
}
static long ck_tiocsti_stdin(const void *a) { return tiocsti_on(0, false); }
static long ck_tiocsti_stdin_masked(const void *a) { return tiocsti_on(0, true); }

/* Our own pty as controlling terminal: TIOCSTI on it is allowed by the tty
 * layer, so only a filter (or dev.tty.legacy_tiocsti=0) stops it. */
static long tiocsti_pty(bool masked) {
        /* Closing the master at the end hangs up our controlling tty: a
         * SIGHUP would kill this child before it reports. */
        signal(SIGHUP, SIG_IGN);
        _cleanup_close_ int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0)
                return step_fail("ptmx");
        if (grantpt(m) < 0 || unlockpt(m) < 0)
                return step_fail("unlockpt");
        const char *name = ptsname(m);
        if (!name)
                return step_fail("ptsname");
        if (setsid() < 0)
                return step_fail("setsid");
        _cleanup_close_ int s = open(name, O_RDWR | O_CLOEXEC);
        if (s < 0)
                return step_fail("open-pts");
        return tiocsti_on(s, masked);
}
static long ck_tiocsti_pty(const void *a) { return tiocsti_pty(false); }
static long ck_tiocsti_pty_masked(const void *a) { return tiocsti_pty(true); }

/* ---- limits: memory, pids, disk, cpu, output ------------------------ */

static int cmd_alloc(int argc, char **argv) {
        long mib = parse_long(argv[0], "alloc MIB");
        double hold = argc > 1 ? parse_seconds(argv[1]) : 0;
        long long page = sysconf(_SC_PAGESIZE);
        for (long i = 1; i <= mib; i++) {
                char *p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED) {
                        out("alloc failed mib=%ld errno=%s\n", i - 1, errname(errno));
                        return 0;
                }
                /* Touch every page: only resident pages are charged. */
                for (unsigned long o = 0; o < MIB; o += (unsigned long) page)
                        p[o] = (char) (i | 1);
                out("alloc mib=%ld\n", i);
        }
        out("alloc done mib=%ld\n", mib);
        if (hold > 0)
                sleep_s(hold);
        return 0;
}

static int cmd_fork(int argc, char **argv) {
        long n = parse_long(argv[0], "fork N");
        double hold = argc > 1 ? parse_seconds(argv[1]) : 0;
        if (n < 0 || n > 1000000)
                usage_error("fork: N out of range");
        _cleanup_free_ pid_t *pids = calloc((size_t) n + 1, sizeof(pid_t));
        long ok = 0;
        int first = 0;
        pid_t parent = getpid();
        for (long i = 0; i < n; i++) {
                pid_t p = fork();
                if (p == 0) {
                        /* Die with the parent, never linger as orphans. */
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        if (getppid() != parent)
                                _exit(0);
                        for (;;)
                                pause();
                }
                if (p < 0) {
                        if (!first)
                                first = errno;
                        continue;
                }
                pids[ok++] = p;
        }
        out("fork requested=%ld forked=%ld errno=%s\n", n, ok, errname(first));
        if (hold > 0)
                sleep_s(hold);
        for (long i = 0; i < ok; i++)
                kill(pids[i], SIGKILL);
        for (long i = 0; i < ok; i++)
                wait_child(pids[i]);
        out("fork reaped=%ld\n", ok);
        return 0;
}

/* Every process forks in a loop until the deadline (forever without one).
 * Only the first process reports, and only when there is a deadline. */
static int cmd_forkbomb(int argc, char **argv) {
        double limit = argc > 0 ? parse_seconds(argv[0]) : -1;
        double deadline = limit >= 0 ? now_s(CLOCK_MONOTONIC) + limit : -1;
        pid_t top = getpid();
        long forks = 0, failed = 0;
        int first = 0;
        out("forkbomb started pid=%d\n", (int) top);
        while (deadline < 0 || now_s(CLOCK_MONOTONIC) < deadline) {
                pid_t p = fork();
                if (p == 0) {
                        forks = failed = 0;
                        continue;
                }
                if (p < 0) {
                        failed++;
                        if (!first)
                                first = errno;
                } else
                        forks++;
                while (waitpid(-1, NULL, WNOHANG) > 0)
                        ;
        }
        if (getpid() != top)
                _exit(0);
        while (wait(NULL) > 0 || errno == EINTR)
                ;
        out("forkbomb forks=%ld failed=%ld errno=%s\n", forks, failed, errname(first));
        return 0;
}

/* Write n bytes, counting into *total: 0 or the errno that stopped it. */
static int write_counted(int fd, const char *p, size_t n, unsigned long long *total) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? errno : ENOSPC;
                p += k;
                n -= (size_t) k;
                *total += (unsigned long long) k;
        }
        return 0;
}

static int cmd_write(int argc, char **argv) {
        const char *path = argv[0];
        long mib = parse_long(argv[1], "write MIB");
        /* RLIMIT_FSIZE sends SIGXFSZ: ignore it to see EFBIG instead. */
        signal(SIGXFSZ, SIG_IGN);
        _cleanup_free_ char *buf = malloc(MIB);
        if (!buf)
                return out("write %s -1 ENOMEM bytes=0\n", esc(path)), 0;
        memset(buf, 'w', MIB);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return out("write %s -1 %s bytes=0 step=open\n", esc(path), errname(errno)), 0;
        unsigned long long total = 0;
        int e = 0;
        for (long i = 1; i <= mib && !e; i++)
                if (!(e = write_counted(fd, buf, MIB, &total)))
                        out("write mib=%ld\n", i);
        if (!e && fsync(fd) < 0)
                e = errno;
        out("write %s %d %s bytes=%llu\n", esc(path), e ? -1 : 0, errname(e), total);
        return 0;
}

static int cmd_spin(int argc, char **argv) {
        double secs = parse_seconds(argv[0]);
        double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        volatile unsigned long x = 0;
        while (now_s(CLOCK_MONOTONIC) - w0 < secs)
                for (int i = 0; i < 100000; i++)
                        x += (unsigned long) i;
        double wall = now_s(CLOCK_MONOTONIC) - w0, cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        out("spin wall_ms=%.0f cpu_ms=%.0f cpu_pct=%.1f\n", wall * 1e3, cpu * 1e3, wall > 0 ? 100.0 * cpu / wall : 0.0);
        return 0;
}

/* sleep prints its pid first so a test can look for the process later. */
static int do_sleep(const char *cmd, const char *arg) {
        double secs = parse_seconds(arg);
        out("%s pid=%d seconds=%s\n", cmd, (int) getpid(), esc(arg));
        sleep_s(secs);
        out("%s done\n", cmd);
        return 0;
}
static int cmd_sleep(int argc, char **argv) { return do_sleep("sleep", argv[0]); }
static int cmd_ignore_term(int argc, char **argv) {
        signal(SIGTERM, SIG_IGN);
        return do_sleep("ignore-term", argv[0]);
}

/* A grandchild that leaves the process group and the session (setsid) and
 * keeps stdout open: a supervisor that kills only the process group, or
 * waits for EOF on the output pipe, is caught here. */
static int cmd_double_fork(int argc, char **argv) {
        double secs = parse_seconds(argv[0]);
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return out("double-fork pipe -1 %s\n", errname(errno)), 0;
        pid_t c = fork();
        if (c < 0)
                return out("double-fork fork -1 %s\n", errname(errno)), 0;
        if (c == 0) {
                pid_t g = fork();
                if (g == 0) {
                        signal(SIGHUP, SIG_IGN);
                        pid_t sid = setsid();
                        int v[2] = { (int) getpid(), (int) sid };
                        write_all(p[1], (const char *) v, sizeof v);
                        close(p[1]);
                        sleep_s(secs);
                        out("double-fork grandchild-done pid=%d\n", (int) getpid());
                        _exit(0);
                }
                _exit(g < 0 ? 1 : 0);
        }
        close(p[1]);
        int st = wait_child(c);
        int v[2] = { -1, -1 };
        ssize_t k = read(p[0], v, sizeof v);
        close(p[0]);
        out("double-fork grandchild pid=%d sid=%d child_status=%d ok=%s\n", v[0], v[1], st, k == (ssize_t) sizeof v ? "yes" : "no");
        return 0;
}

static int cmd_flood(int argc, char **argv) {
        long mib = parse_long(argv[0], "flood MIB");
        bool to_err = argc > 1 && strcmp(argv[1], "stderr") == 0;
        if (argc > 1 && !to_err && strcmp(argv[1], "stdout") != 0)
                usage_error("flood: stream is stdout or stderr");
        int fd = to_err ? STDERR_FILENO : STDOUT_FILENO;
        signal(SIGPIPE, SIG_IGN);
        static char chunk[64 * 1024];
        /* 1023 'x' and a newline per KiB: line-oriented readers cope. */
        for (size_t i = 0; i < sizeof chunk; i++)
                chunk[i] = (i % 1024 == 1023) ? '\n' : 'x';
        unsigned long long total = 0, want = (unsigned long long) mib * MIB;
        int e = 0;
        while (total < want && !e)
                e = write_counted(fd, chunk, want - total < sizeof chunk ? (size_t) (want - total) : sizeof chunk, &total);
        /* The summary goes to the other stream, after the data. */
        fout(to_err ? STDOUT_FILENO : STDERR_FILENO, "flood %s %d %s bytes=%llu\n", to_err ? "stderr" : "stdout",
             e ? -1 : 0, errname(e), total);
        return 0;
}

static int cmd_files(int argc, char **argv) {
        long n = parse_long(argv[0], "files N");
        const char *dir = argv[1];
        long i = 0;
        int e = 0;
        for (; i < n; i++) {
                char p[4096];
                snprintf(p, sizeof p, "%s/probe-file-%07ld", dir, i);
                int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0) {
                        e = errno;
                        break;
                }
                close(fd);
        }
        out("files %s %d %s created=%ld\n", esc(dir), e ? -1 : 0, errname(e), i);
        return 0;
}

/* ---- identity and environment -------------------------------------- */

static int cmd_ids(int argc, char **argv) {
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        getresuid(&ru, &eu, &su);
        getresgid(&rg, &eg, &sg);
        gid_t groups[256];
        int n = getgroups((int) ELEMENTSOF(groups), groups);
        char gl[2048] = "";
        size_t o = 0;
        for (int i = 0; i < n && o + 16 < sizeof gl; i++)
                o += (size_t) snprintf(gl + o, sizeof gl - o, "%s%u", i ? "," : "", (unsigned) groups[i]);
        out("ids uid=%u euid=%u suid=%u gid=%u egid=%u sgid=%u groups=%s\n", (unsigned) ru, (unsigned) eu, (unsigned) su,
            (unsigned) rg, (unsigned) eg, (unsigned) sg, gl);
        return 0;
}

/* Print selected "Key:\tvalue" lines of a /proc file as "CMD Key value". */
static int dump_proc_keys(const char *cmd, const char *path, const char *const *keys, size_t nkeys) {
        FILE *f = fopen(path, "re");
        if (!f)
                return out("%s %s -1 %s\n", cmd, path, errname(errno)), 0;
        char line[4096];
        while (fgets(line, sizeof line, f)) {
                char *colon = strchr(line, ':');
                if (!colon)
                        continue;
                *colon = 0;
                for (size_t i = 0; i < nkeys; i++) {
                        if (strcmp(line, keys[i]) != 0)
                                continue;
                        char *v = colon + 1 + strspn(colon + 1, " \t");
                        v[strcspn(v, "\n")] = 0;
                        for (size_t n = strlen(v); n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t');)
                                v[--n] = 0;
                        for (char *t = v; *t; t++)
                                if (*t == '\t' || *t == ' ')
                                        *t = ',';
                        out("%s %s %s\n", cmd, line, *v ? esc(v) : "-");
                }
        }
        fclose(f);
        return 0;
}

static int cmd_status(int argc, char **argv) {
        static const char *const keys[] = { "Uid", "Gid", "Groups", "NSpid", "NSpgid", "NSsid", "CapInh", "CapPrm",
                                            "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters" };
        return dump_proc_keys("status", "/proc/self/status", keys, ELEMENTSOF(keys));
}

/* One line per symlink in a /proc directory: "CMD ENTRY TARGET". */
static int dump_links(const char *cmd, const char *path) {
        _cleanup_closedir_ DIR *d = opendir(path);
        if (!d)
                return out("%s %s -1 %s\n", cmd, path, errname(errno)), 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                /* Skip . and .., and the fd that reads this directory. */
                if (de->d_name[0] == '.' || (streq(cmd, "fds") && atoi(de->d_name) == dirfd(d)))
                        continue;
                char target[4096];
                ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
                target[n < 0 ? 0 : n] = 0;
                out("%s %s %s\n", cmd, esc(de->d_name), n < 0 ? errname(errno) : esc(target));
        }
        return 0;
}
static int cmd_fds(int argc, char **argv) { return dump_links("fds", "/proc/self/fd"); }
static int cmd_ns(int argc, char **argv) { return dump_links("ns", "/proc/self/ns"); }

static void flag_names(unsigned flags, char *buf, size_t n) {
        static const struct { unsigned bit; const char *name; } names[] = {
                { IFF_UP, "UP" },           { IFF_BROADCAST, "BROADCAST" }, { IFF_LOOPBACK, "LOOPBACK" },
                { IFF_POINTOPOINT, "POINTOPOINT" }, { IFF_RUNNING, "RUNNING" }, { IFF_NOARP, "NOARP" },
                { IFF_PROMISC, "PROMISC" }, { IFF_MULTICAST, "MULTICAST" },
        };
        size_t o = 0;
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(names) && o < n; i++)
                if (flags & names[i].bit)
                        o += (size_t) snprintf(buf + o, n - o, "%s%s", o ? "," : "", names[i].name);
        if (!o)
                snprintf(buf, n, "-");
}

/* One line per interface: index, flags, addresses (getifaddrs = netlink). */
static int cmd_ifaces(int argc, char **argv) {
        struct if_nameindex *ni = if_nameindex();
        if (!ni)
                return out("ifaces if_nameindex -1 %s\n", errname(errno)), 0;
        struct ifaddrs *ifa = NULL;
        if (getifaddrs(&ifa) < 0)
                ifa = NULL;
        for (struct if_nameindex *i = ni; i->if_index; i++) {
                char flags[128] = "?", addrs[1024] = "";
                size_t o = 0;
                for (struct ifaddrs *a = ifa; a; a = a->ifa_next) {
                        char t[INET6_ADDRSTRLEN] = "";
                        if (!a->ifa_addr || !streq(a->ifa_name, i->if_name))
                                continue;
                        flag_names(a->ifa_flags, flags, sizeof flags);
                        if (a->ifa_addr->sa_family == AF_INET)
                                inet_ntop(AF_INET, &((struct sockaddr_in *) (void *) a->ifa_addr)->sin_addr, t, sizeof t);
                        else if (a->ifa_addr->sa_family == AF_INET6)
                                inet_ntop(AF_INET6, &((struct sockaddr_in6 *) (void *) a->ifa_addr)->sin6_addr, t, sizeof t);
                        if (t[0] && o + strlen(t) + 2 < sizeof addrs)
                                o += (size_t) snprintf(addrs + o, sizeof addrs - o, "%s%s", o ? "," : "", t);
                }
                out("ifaces %s index=%u flags=%s addrs=%s\n", esc(i->if_name), i->if_index, flags, o ? addrs : "-");
        }
        if (ifa)
                freeifaddrs(ifa);
        if_freenameindex(ni);
        return 0;
}

static int cmd_hostname(int argc, char **argv) {
        struct utsname u;
        if (uname(&u) < 0)
                return out("hostname uname -1 %s\n", errname(errno)), 0;
        out("hostname nodename=%s domainname=%s\n", esc(u.nodename), esc(u.domainname));
        return 0;
}

static int cmd_cwd(int argc, char **argv) {
        char buf[4096];
        if (!getcwd(buf, sizeof buf))
                return out("cwd getcwd -1 %s\n", errname(errno)), 0;
        out("cwd path=%s\n", esc(buf));
        return 0;
}

static int cmd_rlimits(int argc, char **argv) {
        static const struct { int res; const char *name; } lims[] = {
                { RLIMIT_AS, "AS" },         { RLIMIT_CORE, "CORE" },       { RLIMIT_CPU, "CPU" },
                { RLIMIT_DATA, "DATA" },     { RLIMIT_FSIZE, "FSIZE" },     { RLIMIT_MEMLOCK, "MEMLOCK" },
                { RLIMIT_NOFILE, "NOFILE" }, { RLIMIT_NPROC, "NPROC" },     { RLIMIT_STACK, "STACK" },
                { RLIMIT_RTPRIO, "RTPRIO" }, { RLIMIT_SIGPENDING, "SIGPENDING" }, { RLIMIT_MSGQUEUE, "MSGQUEUE" },
        };
        for (size_t i = 0; i < ELEMENTSOF(lims); i++) {
                struct rlimit rl;
                if (getrlimit(lims[i].res, &rl) < 0)
                        continue;
                /* RLIM_INFINITY prints as -1, i.e. unlimited. */
                out("rlimits %s soft=%lld hard=%lld\n", lims[i].name, (long long) rl.rlim_cur, (long long) rl.rlim_max);
        }
        return 0;
}

/* Print a file line by line as "CMD <raw line, escaped>". */
static int dump_lines(const char *cmd, const char *path) {
        FILE *f = fopen(path, "re");
        if (!f)
                return out("%s %s -1 %s\n", cmd, path, errname(errno)), 0;
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) > 0) {
                if (line[n - 1] == '\n')
                        line[n - 1] = 0;
                out("%s %s\n", cmd, line);
        }
        free(line);
        fclose(f);
        return 0;
}

/* mountinfo is already escaped by the kernel: printed raw after "mounts ". */
static int cmd_mounts(int argc, char **argv) { return dump_lines("mounts", "/proc/self/mountinfo"); }
static int cmd_cgroup(int argc, char **argv) { return dump_lines("cgroup", "/proc/self/cgroup"); }

static int parse_signal(const char *s) {
        const char *n = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
        for (int sig = 1; sig < NSIG; sig++) {
                const char *abbrev = sigabbrev_np(sig);
                if (abbrev && strcmp(abbrev, n) == 0)
                        return sig;
        }
        long v = parse_long(n, "signal");
        if (v < 0 || v >= NSIG)
                usage_error("bad signal '%s'", s);
        return (int) v;
}

/* ---- files, paths, processes --------------------------------------- */

static int cmd_open(int argc, char **argv) {
        static const struct { const char *name; int flags; } modes[] = {
                { "r", O_RDONLY },          { "w", O_WRONLY },        { "rw", O_RDWR },
                { "wc", O_WRONLY | O_CREAT }, { "dir", O_RDONLY | O_DIRECTORY }, { "path", O_PATH },
        };
        const char *mode = argc > 1 ? argv[1] : "r";
        int flags = -1;
        for (size_t i = 0; i < ELEMENTSOF(modes); i++)
                if (strcmp(mode, modes[i].name) == 0)
                        flags = modes[i].flags;
        if (flags < 0)
                usage_error("open: mode is one of r w rw wc dir path");
        /* Opening for write never writes: opening is the check. */
        int fd = open(argv[0], flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
        out("open %s %d %s mode=%s\n", esc(argv[0]), fd < 0 ? -1 : fd, errname(fd < 0 ? errno : 0), mode);
        if (fd >= 0)
                close(fd);
        return 0;
}

static int cmd_readlink(int argc, char **argv) {
        char t[4096];
        ssize_t n = readlink(argv[0], t, sizeof t - 1);
        if (n < 0)
                return out("readlink %s -1 %s\n", esc(argv[0]), errname(errno)), 0;
        t[n] = 0;
        out("readlink %s %zd OK target=%s\n", esc(argv[0]), n, esc(t));
        return 0;
}

static int cmd_kill(int argc, char **argv) {
        pid_t pid = (pid_t) parse_long(argv[0], "kill PID");
        int sig = parse_signal(argv[1]);
        int r = kill(pid, sig);
        out("kill %d %d %s sig=%s\n", (int) pid, r, errname(r < 0 ? errno : 0), signame(sig));
        return 0;
}

static pid_t target_pid(const void *a) { return a ? (pid_t) parse_long(a, "pid") : 1; }
static long pp_attach(const void *a) { return sc_ptrace(a); }

static long read_proc_pid_file(const void *a, const char *what, int flags) {
        char p[64], buf[256];
        snprintf(p, sizeof p, "/proc/%d/%s", (int) target_pid(a), what);
        _cleanup_close_ int fd = open(p, flags | O_CLOEXEC);
        if (fd < 0)
                return step_fail("open");
        return read(fd, buf, sizeof buf);
}
static long pp_environ(const void *a) { return read_proc_pid_file(a, "environ", O_RDONLY); }
static long pp_maps(const void *a) { return read_proc_pid_file(a, "maps", O_RDONLY); }
static long pp_mem(const void *a) {
        char p[64];
        snprintf(p, sizeof p, "/proc/%d/mem", (int) target_pid(a));
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -1 : 0;
}

/* process_vm_readv at the start of the target's first mapping (from its
 * maps file if readable): EPERM/ESRCH = denied; EFAULT = allowed. */
static long pp_vm_readv(const void *a) {
        unsigned long addr = 0x400000;
        char p[64], line[256];
        snprintf(p, sizeof p, "/proc/%d/maps", (int) target_pid(a));
        FILE *f = fopen(p, "re");
        if (f) {
                if (fgets(line, sizeof line, f))
                        addr = strtoul(line, NULL, 16);
                fclose(f);
        }
        char buf[16];
        struct iovec l = { buf, sizeof buf }, r = { (void *) addr, sizeof buf };
        return syscall(SYS_process_vm_readv, target_pid(a), &l, 1UL, &r, 1UL, 0UL);
}

/* pidfd_getfd needs PTRACE_MODE_ATTACH_REALCREDS on the target: stealing
 * fd 0 of the sandbox's init would hand out whatever it holds. */
static long pp_pidfd_getfd(const void *a) {
        _cleanup_close_ int pfd = (int) syscall(SYS_pidfd_open, target_pid(a), 0);
        if (pfd < 0)
                return step_fail("pidfd_open");
        return syscall(SYS_pidfd_getfd, pfd, 0, 0);
}

/* CVE-2019-5736: a process that can open its runtime's binary for writing
 * through /proc/<pid>/exe overwrites the host binary. The sandbox's PID 1
 * is forked from the supervisor, so /proc/1/exe IS the supervisor binary.
 * Only the open is attempted; nothing is ever written. */
static long ex_self(const void *a) { return open("/proc/self/exe", O_WRONLY | O_CLOEXEC); }
static long ex_pid1(const void *a) { return open("/proc/1/exe", O_WRONLY | O_CLOEXEC); }
static long ex_pid1_read(const void *a) { return open("/proc/1/exe", O_RDONLY | O_CLOEXEC); }
static long ex_pid1_path(const void *a) {
        /* runc's variant: an O_PATH fd, reopened through /proc/self/fd. */
        _cleanup_close_ int fd = open("/proc/1/exe", O_PATH | O_CLOEXEC);
        if (fd < 0)
                return step_fail("open-path");
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        return open(p, O_WRONLY | O_CLOEXEC);
}

/* ---- mounts ---------------------------------------------------------- */

/* Try to mount a fresh filesystem on a scratch directory, report, undo. */
static void try_mount(const char *cmd, const char *name, const char *type, const char *opts) {
        char d[64];
        if (scratch_dir(d, sizeof d) < 0) {
                out("%s %s -1 %s step=mkdtemp\n", cmd, name, errname(errno));
                return;
        }
        int r = mount("sandpool-probe", d, type, MS_NOSUID | MS_NODEV | MS_NOEXEC, opts);
        int e = r < 0 ? errno : 0;
        long entries = -1; /* what the new mount shows: a host hierarchy? */
        if (r == 0) {
                _cleanup_closedir_ DIR *dir = opendir(d);
                for (entries = 0; dir && readdir(dir); entries++)
                        ;
                umount2(d, MNT_DETACH);
        }
        rmdir(d);
        out("%s %s %d %s path=%s entries=%ld\n", cmd, name, r, errname(e), d, entries);
}

static int cmd_mount_cgroup(int argc, char **argv) {
        try_mount("mount-cgroup", "cgroup2", "cgroup2", NULL);
        try_mount("mount-cgroup", "cgroup-memory", "cgroup", "memory");
        try_mount("mount-cgroup", "cgroup-pids", "cgroup", "pids");
        return 0;
}

static int cmd_mount_fs(int argc, char **argv) {
        try_mount("mount-fs", argv[0], argv[0], argc > 1 ? argv[1] : NULL);
        return 0;
}

/* statvfs() flags back to the MS_* flags a remount must repeat: like
 * `mount -o remount,rw`, keep every flag the mount has except RDONLY, so
 * the check asks for exactly one change. */
static unsigned long kept_mount_flags(unsigned long st) {
        static const struct { unsigned long st, ms; } map[] = {
                { ST_NOSUID, MS_NOSUID },         { ST_NODEV, MS_NODEV },         { ST_NOEXEC, MS_NOEXEC },
                { ST_NOATIME, MS_NOATIME },       { ST_NODIRATIME, MS_NODIRATIME }, { ST_RELATIME, MS_RELATIME },
                { ST_SYNCHRONOUS, MS_SYNCHRONOUS }, { ST_MANDLOCK, MS_MANDLOCK },
        };
        unsigned long ms = 0;
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (st & map[i].st)
                        ms |= map[i].ms;
        return ms;
}

/* Plain MS_REMOUNT changes the superblock, MS_REMOUNT|MS_BIND only this
 * mount's flags. In a user namespace both must fail on a mount whose
 * read-only flag was locked when the namespace was created. If one
 * succeeds on a read-only mount, it is put back. */
static int cmd_remount_rw(int argc, char **argv) {
        const char *path = argv[0];
        static const struct { const char *name; unsigned long flags; } kinds[] = {
                { "sb", MS_REMOUNT }, { "bind", MS_REMOUNT | MS_BIND },
        };
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                struct statvfs sv = { 0 };
                int r = statvfs(path, &sv);
                unsigned long keep = kept_mount_flags(sv.f_flag);
                if (r == 0)
                        r = mount(NULL, path, NULL, kinds[i].flags | keep, NULL);
                out("remount-rw %s %d %s path=%s was_ro=%s\n", kinds[i].name, r, errname(r < 0 ? errno : 0), esc(path),
                    sv.f_flag & ST_RDONLY ? "yes" : "no");
                if (r == 0 && (sv.f_flag & ST_RDONLY))
                        mount(NULL, path, NULL, kinds[i].flags | keep | MS_RDONLY, NULL);
        }
        return 0;
}

/* Clear one mount attribute at a time; put it back if that worked. */
static int cmd_mount_setattr(int argc, char **argv) {
        const char *path = argv[0];
        static const struct { const char *name; uint64_t attr; unsigned long st; } attrs[] = {
                { "rdonly", MOUNT_ATTR_RDONLY, ST_RDONLY }, { "nosuid", MOUNT_ATTR_NOSUID, ST_NOSUID },
                { "nodev", MOUNT_ATTR_NODEV, ST_NODEV },    { "noexec", MOUNT_ATTR_NOEXEC, ST_NOEXEC },
        };
        for (size_t i = 0; i < ELEMENTSOF(attrs); i++) {
                struct statvfs sv = { 0 };
                bool was_set = statvfs(path, &sv) == 0 && (sv.f_flag & attrs[i].st);
                struct mount_attr clr = { .attr_clr = attrs[i].attr }, set = { .attr_set = attrs[i].attr };
                long r = syscall(SYS_mount_setattr, AT_FDCWD, path, 0, &clr, sizeof clr);
                out("mount-setattr %s %ld %s path=%s was_set=%s\n", attrs[i].name, r, errname(r < 0 ? errno : 0),
                    esc(path), was_set ? "yes" : "no");
                if (r == 0 && was_set)
                        syscall(SYS_mount_setattr, AT_FDCWD, path, 0, &set, sizeof set);
        }
        return 0;
}

/* The classic chroot escape: keep a directory fd from outside, chroot into
 * a subdirectory, fchdir back out, walk ".." and chroot(".").  After
 * pivot_root into its own mount namespace the walk stops at the sandbox's
 * root; after a bare chroot it reaches the host's. */
static long ce_escape(const void *a) {
        struct stat before, after;
        char d[64];
        if (stat("/", &before) < 0)
                return step_fail("stat");
        if (scratch_dir(d, sizeof d) < 0)
                return step_fail("mkdtemp");
        /* Kept to remove the scratch directory whatever "/" becomes. */
        char *slash = strrchr(d, '/');
        *slash = 0;
        _cleanup_close_ int parent = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
        *slash = '/';
        _cleanup_close_ int outside = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        long r = 0;
        if (chroot(d) < 0)
                r = step_fail("chroot");
        else if (fchdir(outside) < 0)
                r = step_fail("fchdir");
        else {
                for (int i = 0; i < 256; i++)
                        if (chdir("..") < 0)
                                break;
                if (chroot(".") < 0)
                        r = step_fail("chroot-dot");
                else if (stat("/", &after) < 0)
                        r = step_fail("stat-after");
                else {
                        bool escaped = after.st_dev != before.st_dev || after.st_ino != before.st_ino;
                        extra("escaped=%s root=%llu:%llu orig=%llu:%llu", escaped ? "yes" : "no",
                              (unsigned long long) after.st_dev, (unsigned long long) after.st_ino,
                              (unsigned long long) before.st_dev, (unsigned long long) before.st_ino);
                }
        }
        int e = errno;
        if (parent >= 0)
                unlinkat(parent, slash + 1, AT_REMOVEDIR);
        errno = e;
        return r;
}

/* ---- sockets and shared memory -------------------------------------- */

static int cmd_connect(int argc, char **argv) {
        const char *path = argv[0];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(path);
        if (len >= sizeof sa.sun_path)
                usage_error("connect: path too long");
        memcpy(sa.sun_path, path, len);
        socklen_t sl = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1);
        if (path[0] == '@') {
                /* Abstract sockets belong to the network namespace: a host
                 * one must be unreachable from a sandbox with its own. */
                sa.sun_path[0] = 0;
                sl = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len);
        }
        _cleanup_close_ int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return out("connect %s -1 %s step=socket\n", esc(path), errname(errno)), 0;
        int r = connect(s, (struct sockaddr *) &sa, sl);
        out("connect %s %d %s\n", esc(path), r, errname(r < 0 ? errno : 0));
        return 0;
}

static int tcp_connect(int family, const void *sa, socklen_t sl, int *ret_err) {
        _cleanup_close_ int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s < 0)
                return *ret_err = errno, -1;
        if (connect(s, sa, sl) == 0)
                return *ret_err = 0, 0;
        if (errno != EINPROGRESS)
                return *ret_err = errno, -1;
        struct pollfd p = { .fd = s, .events = POLLOUT };
        int n = poll(&p, 1, 3000);
        if (n <= 0)
                return *ret_err = n == 0 ? ETIMEDOUT : errno, -1;
        int e = 0;
        socklen_t el = sizeof e;
        getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
        *ret_err = e;
        return e ? -1 : 0;
}

/* Loopback only: this program must never send packets off the machine. */
static int cmd_tcp(int argc, char **argv) {
        long port = parse_long(argv[1], "tcp PORT");
        if (port <= 0 || port > 65535)
                usage_error("tcp: bad port");
        struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t) port) };
        bool v4 = inet_pton(AF_INET, argv[0], &a4.sin_addr) == 1;
        bool v6 = !v4 && inet_pton(AF_INET6, argv[0], &a6.sin6_addr) == 1;
        if (!(v4 && (ntohl(a4.sin_addr.s_addr) >> 24) == 127) && !(v6 && IN6_IS_ADDR_LOOPBACK(&a6.sin6_addr)))
                usage_error("tcp: HOST must be a numeric loopback address (127.0.0.0/8, ::1)");
        int e = 0;
        int r = v4 ? tcp_connect(AF_INET, &a4, sizeof a4, &e) : tcp_connect(AF_INET6, &a6, sizeof a6, &e);
        out("tcp %s:%ld %d %s\n", esc(argv[0]), port, r, errname(e));
        return 0;
}

static void shm_name(const char *in, char *buf, size_t n) {
        snprintf(buf, n, "%s%s", in[0] == '/' ? "" : "/", in);
}

static int cmd_shm_write(int argc, char **argv) {
        char name[256];
        shm_name(argv[0], name, sizeof name);
        const char *data = argc > 1 ? argv[1] : "sandpool-probe";
        _cleanup_close_ int fd = shm_open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
                return out("shm-write %s -1 %s step=shm_open\n", esc(name), errname(errno)), 0;
        ssize_t k = write(fd, data, strlen(data));
        out("shm-write %s %zd %s\n", esc(name), k < 0 ? (ssize_t) -1 : k, errname(k < 0 ? errno : 0));
        return 0;
}

static int cmd_shm_read(int argc, char **argv) {
        char name[256], buf[4096];
        shm_name(argv[0], name, sizeof name);
        _cleanup_close_ int fd = shm_open(name, O_RDONLY, 0);
        if (fd < 0)
                return out("shm-read %s -1 %s step=shm_open\n", esc(name), errname(errno)), 0;
        ssize_t k = read(fd, buf, sizeof buf - 1);
        if (k < 0)
                return out("shm-read %s -1 %s\n", esc(name), errname(errno)), 0;
        buf[k] = 0;
        out("shm-read %s %zd OK data=%s\n", esc(name), k, esc(buf));
        return 0;
}

/* ---- dispatch -------------------------------------------------------- */

/* Subcommands that are a fixed list of checks, each in its own process. */
struct check {
        const char *name;
        check_fn fn;
};
static const struct check int80_checks[] = { { "getpid", ck_int80 } };
static const struct check x32_checks[] = { { "getpid", ck_x32 } };
static const struct check tiocsti_checks[] = {
        { "stdin", ck_tiocsti_stdin }, { "stdin-masked", ck_tiocsti_stdin_masked },
        { "pty", ck_tiocsti_pty },     { "pty-masked", ck_tiocsti_pty_masked },
};
static const struct check ptrace_pid1_checks[] = {
        { "attach", pp_attach }, { "environ", pp_environ },   { "maps", pp_maps },
        { "mem", pp_mem },       { "vm-readv", pp_vm_readv }, { "pidfd-getfd", pp_pidfd_getfd },
};
static const struct check exe_write_checks[] = {
        { "/proc/self/exe", ex_self },          { "/proc/1/exe", ex_pid1 },
        { "/proc/1/exe-read", ex_pid1_read }, { "/proc/1/exe-reopen", ex_pid1_path },
};
static const struct check chroot_escape_checks[] = { { "escape", ce_escape } };

struct subcommand {
        const char *name;
        const char *args;
        int min_args, max_args; /* max -1: any number */
        int (*fn)(int argc, char **argv);
        const struct check *checks; /* when fn is NULL: run these, arg = argv[0] */
        size_t n_checks;
};
#define CHECKS(a) NULL, a, ELEMENTSOF(a)

static int cmd_help(int argc, char **argv);

static const struct subcommand subcommands[] = {
        { "syscall", "NAME[=ARG]...|all", 1, -1, cmd_syscall },
        { "int80", "", 0, 0, CHECKS(int80_checks) },
        { "x32", "", 0, 0, CHECKS(x32_checks) },
        { "tiocsti", "", 0, 0, CHECKS(tiocsti_checks) },
        { "alloc", "MIB [HOLD_S]", 1, 2, cmd_alloc },
        { "fork", "N [HOLD_S]", 1, 2, cmd_fork },
        { "forkbomb", "[SECONDS]", 0, 1, cmd_forkbomb },
        { "write", "PATH MIB", 2, 2, cmd_write },
        { "spin", "SECONDS", 1, 1, cmd_spin },
        { "sleep", "SECONDS", 1, 1, cmd_sleep },
        { "ignore-term", "SECONDS", 1, 1, cmd_ignore_term },
        { "double-fork", "SECONDS", 1, 1, cmd_double_fork },
        { "flood", "MIB [stdout|stderr]", 1, 2, cmd_flood },
        { "files", "N DIR", 2, 2, cmd_files },
        { "ids", "", 0, 0, cmd_ids },
        { "status", "", 0, 0, cmd_status },
        { "fds", "", 0, 0, cmd_fds },
        { "ifaces", "", 0, 0, cmd_ifaces },
        { "hostname", "", 0, 0, cmd_hostname },
        { "cwd", "", 0, 0, cmd_cwd },
        { "rlimits", "", 0, 0, cmd_rlimits },
        { "ns", "", 0, 0, cmd_ns },
        { "cgroup", "", 0, 0, cmd_cgroup },
        { "mounts", "", 0, 0, cmd_mounts },
        { "open", "PATH [r|w|rw|wc|dir|path]", 1, 2, cmd_open },
        { "readlink", "PATH", 1, 1, cmd_readlink },
        { "kill", "PID SIGNAL", 2, 2, cmd_kill },
        { "ptrace-pid1", "[PID]", 0, 1, CHECKS(ptrace_pid1_checks) },
        { "exe-write", "", 0, 0, CHECKS(exe_write_checks) },
        { "mount-cgroup", "", 0, 0, cmd_mount_cgroup },
        { "mount-fs", "TYPE [OPTIONS]", 1, 2, cmd_mount_fs },
        { "remount-rw", "PATH", 1, 1, cmd_remount_rw },
        { "mount-setattr", "PATH", 1, 1, cmd_mount_setattr },
        { "chroot-escape", "", 0, 0, CHECKS(chroot_escape_checks) },
        { "connect", "PATH|@ABSTRACT", 1, 1, cmd_connect },
        { "tcp", "HOST PORT", 2, 2, cmd_tcp },
        { "shm-write", "NAME [DATA]", 1, 2, cmd_shm_write },
        { "shm-read", "NAME", 1, 1, cmd_shm_read },
        { "help", "", 0, 0, cmd_help },
};

static int cmd_help(int argc, char **argv) {
        out("usage: probe SUBCOMMAND [ARGS]\n");
        for (size_t i = 0; i < ELEMENTSOF(subcommands); i++)
                out("  %s %s\n", subcommands[i].name, subcommands[i].args);
        out("syscall names:");
        syscall_names();
        out("\n");
        return 0;
}

int main(int argc, char **argv) {
        if (argc < 2)
                usage_error("no subcommand");
        for (size_t i = 0; i < ELEMENTSOF(subcommands); i++) {
                const struct subcommand *c = &subcommands[i];
                if (!streq(argv[1], c->name))
                        continue;
                int n = argc - 2;
                if (n < c->min_args || (c->max_args >= 0 && n > c->max_args))
                        usage_error("usage: probe %s %s", c->name, c->args);
                if (c->fn)
                        return c->fn(n, argv + 2);
                if (n > 0)
                        parse_long(argv[2], c->name); /* the only argument is a pid */
                for (size_t k = 0; k < c->n_checks; k++)
                        run_check(c->name, c->checks[k].name, c->checks[k].fn, n > 0 ? argv[2] : NULL);
                return 0;
        }
        usage_error("unknown subcommand '%s'", argv[1]);
}
