/* SPDX-License-Identifier: MIT */
/* The cgroup interface: mode detection, the parsers for mountinfo and
 * /proc/<pid>/cgroup, the cgroupfs file helpers both backends use, and the
 * per-sandbox create/destroy sequence around the backend vtable.
 *
 * Why cgroupfs directly and not libcgroup: creating a sandbox's cgroup is on
 * the hot path (a budget of ~200 us). libcgroup keeps its mount table in
 * process-global state, builds a struct cgroup of strings per call and
 * resolves every file by full path through stdio; with dirfds of the
 * parents kept open here a cgroup costs one mkdirat per hierarchy and a few
 * openat+write, with no global. On v2, libcgroup 2.0.2 (Debian 12) has no
 * mode API, fails on "0::/path" lines of /proc/self/cgroup, hits EBUSY
 * under a delegated subtree unless the caller moved to a leaf first, never
 * enables controllers at the root and reports errors as "Success". One code
 * base for both modes is simpler than a library for one and cgroupfs for
 * the other. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cgroup-internal.h"

#define DEFAULT_FS_ROOT "/sys/fs/cgroup"
#define DEFAULT_SUBDIR "sandboxes"

const char *sp_cgroup_mode_to_string(sp_cgroup_mode m) {
        switch (m) {
        case SP_CGROUP_V2:
                return "v2";
        case SP_CGROUP_V1:
                return "v1";
        case SP_CGROUP_AUTO:
                return "auto";
        }
        return "unknown";
}

/* --- controller masks ---------------------------------------------------- */

static const struct {
        const char *name;
        unsigned bit;
} ctrl_names[] = {
        { "memory", SP_CTRL_MEMORY },
        { "cpu", SP_CTRL_CPU },
        { "cpuacct", SP_CTRL_CPUACCT },
        { "pids", SP_CTRL_PIDS },
        { "freezer", SP_CTRL_FREEZER },
};

unsigned sp_cgroup_ctrl_from_name(const char *name, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(ctrl_names); i++)
                if (strlen(ctrl_names[i].name) == len && memcmp(ctrl_names[i].name, name, len) == 0)
                        return ctrl_names[i].bit;
        return 0;
}

void sp_cgroup_ctrl_mask_format(unsigned mask, char *buf, size_t size) {
        size_t n = 0;
        if (size == 0)
                return;
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(ctrl_names); i++) {
                if (!(mask & ctrl_names[i].bit))
                        continue;
                int k = snprintf(buf + n, size - n, "%s%s", n ? ", " : "", ctrl_names[i].name);
                if (k < 0 || (size_t) k >= size - n)
                        return;
                n += (size_t) k;
        }
}

unsigned sp_cgroup_parse_controllers(const char *text) {
        unsigned mask = 0;
        const char *p = text;
        while (*p) {
                while (*p && isspace((unsigned char) *p))
                        p++;
                const char *s = p;
                while (*p && !isspace((unsigned char) *p))
                        p++;
                if (p > s)
                        mask |= sp_cgroup_ctrl_from_name(s, (size_t) (p - s));
        }
        return mask;
}

/* --- paths ---------------------------------------------------------------- */

char *sp_cgroup_path_join(const char *a, const char *b) {
        size_t la = strlen(a);
        while (la > 1 && a[la - 1] == '/')
                la--;
        while (*b == '/')
                b++;
        size_t lb = strlen(b);
        while (lb > 0 && b[lb - 1] == '/')
                lb--;
        if (lb == 0)
                return strndup(a, la);
        bool slash = !(la == 1 && a[0] == '/') && la > 0;
        char *r = malloc(la + slash + lb + 1 + (la == 0));
        if (!r)
                return NULL;
        size_t n = 0;
        if (la == 0)
                r[n++] = '/';
        memcpy(r + n, a, la);
        n += la;
        if (slash)
                r[n++] = '/';
        memcpy(r + n, b, lb);
        r[n + lb] = 0;
        return r;
}

char *sp_cgroup_mount_resolve(const sp_cgroup_mount *mnt, const char *rel) {
        /* A hierarchy mounted from a sub-cgroup (a container without a
         * cgroup namespace) shows its root in mountinfo; the same prefix
         * leads /proc/self/cgroup paths. Strip it. */
        size_t lr = strlen(mnt->root);
        if (!streq(mnt->root, "/") && strncmp(rel, mnt->root, lr) == 0 && (rel[lr] == '/' || rel[lr] == 0))
                rel += lr;
        return sp_cgroup_path_join(mnt->path, rel);
}

/* --- mountinfo ------------------------------------------------------------ */

void sp_cgroup_mounts_free(sp_cgroup_mount *m, size_t n) {
        if (!m)
                return;
        for (size_t i = 0; i < n; i++) {
                free(m[i].path);
                free(m[i].root);
        }
        free(m);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *mountinfo_unescape(const char *s) {
        char *r = malloc(strlen(s) + 1), *o = r;
        if (!r)
                return NULL;
        while (*s) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
                    s[3] <= '7') {
                        *o++ = (char) (((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
                        s += 4;
                } else
                        *o++ = *s++;
        }
        *o = 0;
        return r;
}

static unsigned super_options_controllers(const char *opts) {
        unsigned mask = 0;
        const char *p = opts;
        while (*p) {
                const char *e = strchrnul(p, ',');
                mask |= sp_cgroup_ctrl_from_name(p, (size_t) (e - p));
                p = *e ? e + 1 : e;
        }
        return mask;
}

/* One mountinfo line: "36 25 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup
 * cgroup rw,memory". Optional fields (shared:N ...) sit before the "-".
 * Returns 1 and fills *ret for a cgroup mount, 0 for any other line. */
static int parse_mountinfo_line(char *line, sp_cgroup_mount *ret) {
        char *f[6], *save = NULL, *tok;
        size_t n = 0;
        for (tok = strtok_r(line, " ", &save); tok && n < ELEMENTSOF(f); tok = strtok_r(NULL, " ", &save))
                f[n++] = tok;
        if (n < ELEMENTSOF(f))
                return 0;
        while (tok && !streq(tok, "-"))
                tok = strtok_r(NULL, " ", &save);
        if (!tok)
                return 0;
        const char *fstype = strtok_r(NULL, " ", &save);
        const char *source = fstype ? strtok_r(NULL, " ", &save) : NULL;
        const char *super = source ? strtok_r(NULL, " ", &save) : NULL;
        if (!super)
                return 0;
        bool v2 = streq(fstype, "cgroup2");
        if (!v2 && !streq(fstype, "cgroup"))
                return 0;
        unsigned maj, min;
        if (sscanf(f[2], "%u:%u", &maj, &min) != 2)
                return 0;
        *ret = (sp_cgroup_mount) {
                .dev_major = maj,
                .dev_minor = min,
                .v2 = v2,
                .controllers = v2 ? 0 : super_options_controllers(super),
        };
        ret->root = mountinfo_unescape(f[3]);
        ret->path = mountinfo_unescape(f[4]);
        if (!ret->root || !ret->path) {
                free(ret->root);
                free(ret->path);
                return -ENOMEM;
        }
        return 1;
}

int sp_cgroup_parse_mountinfo(const char *text, sp_cgroup_mount **ret_mounts, size_t *ret_n) {
        sp_cgroup_mount *v = NULL;
        size_t n = 0;
        const char *p = text;
        while (*p) {
                const char *e = strchrnul(p, '\n');
                _cleanup_free_ char *line = strndup(p, (size_t) (e - p));
                p = *e ? e + 1 : e;
                if (!line)
                        goto oom;
                sp_cgroup_mount mnt;
                int r = parse_mountinfo_line(line, &mnt);
                if (r < 0)
                        goto oom;
                if (r == 0)
                        continue;
                sp_cgroup_mount *nv = realloc(v, (n + 1) * sizeof(*v));
                if (!nv) {
                        free(mnt.path);
                        free(mnt.root);
                        goto oom;
                }
                v = nv;
                v[n++] = mnt;
        }
        *ret_mounts = v;
        *ret_n = n;
        return 0;
oom:
        sp_cgroup_mounts_free(v, n);
        return -ENOMEM;
}

/* --- /proc/<pid>/cgroup ---------------------------------------------------- */

static bool list_contains(const char *list, size_t len, const char *item) {
        size_t li = strlen(item);
        const char *p = list, *end = list + len;
        while (p < end) {
                const char *c = memchr(p, ',', (size_t) (end - p));
                const char *e = c ? c : end;
                if ((size_t) (e - p) == li && memcmp(p, item, li) == 0)
                        return true;
                p = e + 1;
        }
        return false;
}

int sp_cgroup_parse_proc_cgroup(const char *text, const char *controller, char **ret_path) {
        const char *p = text;
        while (*p) {
                const char *e = strchrnul(p, '\n');
                const char *c1 = memchr(p, ':', (size_t) (e - p));
                const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t) (e - c1 - 1)) : NULL;
                if (c2) {
                        const char *ctrls = c1 + 1;
                        size_t lc = (size_t) (c2 - ctrls);
                        bool match = controller ? list_contains(ctrls, lc, controller)
                                                : (lc == 0 && c1 - p == 1 && p[0] == '0');
                        if (match && c2 + 1 < e && c2[1] == '/') {
                                char *r = strndup(c2 + 1, (size_t) (e - c2 - 1));
                                if (!r)
                                        return -ENOMEM;
                                *ret_path = r;
                                return 0;
                        }
                }
                p = *e ? e + 1 : e;
        }
        return -ENOENT;
}

/* --- values ---------------------------------------------------------------- */

int sp_cgroup_parse_u64(const char *text, uint64_t *ret) {
        while (*text == ' ' || *text == '\t')
                text++;
        if (strncmp(text, "max", 3) == 0 && (text[3] == 0 || isspace((unsigned char) text[3]))) {
                *ret = UINT64_MAX;
                return 0;
        }
        if (!isdigit((unsigned char) *text))
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end && !isspace((unsigned char) *end))
                return -EINVAL;
        *ret = v;
        return 0;
}

int sp_cgroup_parse_keyed(const char *text, const char *key, uint64_t *ret) {
        size_t lk = strlen(key);
        const char *p = text;
        while (*p) {
                const char *e = strchrnul(p, '\n');
                if ((size_t) (e - p) > lk && strncmp(p, key, lk) == 0 && p[lk] == ' ')
                        return sp_cgroup_parse_u64(p + lk + 1, ret);
                p = *e ? e + 1 : e;
        }
        return -ENOENT;
}

int sp_cgroup_format_u64(uint64_t v, char *buf, size_t size) {
        int k = snprintf(buf, size, "%" PRIu64, v);
        return k < 0 || (size_t) k >= size ? -ENOBUFS : k;
}

int sp_cgroup_format_cpu_max(uint32_t cpu_pct, char *buf, size_t size) {
        /* pct of one CPU over a 100 ms period: 25 -> 25 ms of CPU time each
         * 100 ms. The kernel wants a quota of at least 1 ms, which pct >= 1
         * gives. */
        if (cpu_pct == 0)
                return -EINVAL;
        uint64_t quota = (uint64_t) cpu_pct * (SP_CGROUP_CPU_PERIOD_US / 100u);
        int k = snprintf(buf, size, "%" PRIu64 " %u", quota, SP_CGROUP_CPU_PERIOD_US);
        return k < 0 || (size_t) k >= size ? -ENOBUFS : k;
}

int sp_cgroup_limits_validate(const sp_limits *l, sp_error *err) {
        if (!l)
                return sp_error_set(err, -EINVAL, "No limits given for the cgroup");
        if (l->memory_bytes < 1024 * 1024)
                return sp_error_set(err, -EINVAL, "Memory limit of %" PRIu64 " bytes is below 1 MiB",
                                    l->memory_bytes);
        if (l->memory_bytes > (UINT64_MAX >> 2))
                return sp_error_set(err, -EINVAL, "Memory limit of %" PRIu64 " bytes is not a limit",
                                    l->memory_bytes);
        if (l->cpu_pct == 0 || l->cpu_pct > 100000)
                return sp_error_set(err, -EINVAL, "CPU limit of %" PRIu32 "%% is out of range (1..100000)",
                                    l->cpu_pct);
        if (l->pids == 0)
                return sp_error_set(err, -EINVAL, "A pids limit of 0 would not let the sandbox start");
        return 0;
}

bool sp_cgroup_name_is_valid(const char *name) {
        size_t n = 0;
        if (!name)
                return false;
        for (; name[n]; n++)
                if (!isalnum((unsigned char) name[n]) && name[n] != '-' && name[n] != '_')
                        return false;
        return n >= 1 && n <= 64;
}

/* --- cgroupfs I/O ---------------------------------------------------------- */

int sp_cgroup_write_at(int dirfd, const char *file, const char *value, bool create) {
        int flags = O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0);
        _cleanup_close_ int fd = openat(dirfd, file, flags, 0644);
        if (fd < 0)
                return negative_errno();
        /* cgroupfs takes one value per write(); a short write is an error. */
        size_t len = strlen(value);
        ssize_t k = write(fd, value, len);
        if (k < 0)
                return negative_errno();
        if ((size_t) k != len)
                return -EIO;
        return 0;
}

static int read_fd_into(int fd, char *buf, size_t size, bool one_record) {
        size_t n = 0;
        for (;;) {
                if (n + 1 >= size)
                        return -E2BIG;
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                /* A cgroup value file (one seq_file record shorter than a
                 * page) comes whole in one read: skip the read that would
                 * only see EOF. Not for multi-record files (cgroup.procs,
                 * mountinfo): seq_file stops a read at its page buffer. */
                if (one_record && n + 1 < size)
                        break;
        }
        buf[n] = 0;
        return (int) n;
}

int sp_cgroup_read_at(int dirfd, const char *file, char *buf, size_t size) {
        _cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return read_fd_into(fd, buf, size, false);
}

/* For files that hold one value or one block of keyed lines. */
static int read_record_at(int dirfd, const char *file, char *buf, size_t size) {
        _cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return read_fd_into(fd, buf, size, true);
}

int sp_cgroup_read_alloc_at(int dirfd, const char *file, char **ret) {
        _cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t size = 4096;
        for (;;) {
                _cleanup_free_ char *buf = malloc(size);
                if (!buf)
                        return -ENOMEM;
                /* cgroupfs and procfs files are generated on read: start over
                 * with a bigger buffer rather than stitch two snapshots. */
                if (lseek(fd, 0, SEEK_SET) < 0)
                        return negative_errno();
                int r = read_fd_into(fd, buf, size, false);
                if (r >= 0) {
                        *ret = TAKE_PTR(buf);
                        return r;
                }
                if (r != -E2BIG || size >= (64u << 20))
                        return r;
                size *= 4;
        }
}

int sp_cgroup_read_u64_at(int dirfd, const char *file, uint64_t *ret) {
        char buf[64];
        int r = read_record_at(dirfd, file, buf, sizeof(buf));
        if (r < 0)
                return r;
        return sp_cgroup_parse_u64(buf, ret);
}

int sp_cgroup_read_keyed_at(int dirfd, const char *file, const char *key, uint64_t *ret) {
        char buf[2048];
        int r = read_record_at(dirfd, file, buf, sizeof(buf));
        if (r < 0)
                return r;
        return sp_cgroup_parse_keyed(buf, key, ret);
}

int sp_cgroup_mkdir_at(int dirfd, const char *name, bool *ret_created) {
        if (mkdirat(dirfd, name, 0755) < 0) {
                if (errno != EEXIST)
                        return negative_errno();
                *ret_created = false;
                return 0;
        }
        *ret_created = true;
        return 0;
}

/* Unit-test trees only: a real cgroup directory cannot hold files of its
 * own and is removed with its control files in one rmdir. */
static void fake_unlink_files(int parent_fd, const char *name) {
        int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return;
        }
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_type == DT_REG)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
}

int sp_cgroup_rmdir_at(int dirfd, const char *name, unsigned timeout_ms, bool fake) {
        if (fake)
                fake_unlink_files(dirfd, name);
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (unsigned i = 0;; i++) {
                if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
                        return 0;
                /* EBUSY: tasks killed a moment ago are still exiting and the
                 * cgroup still counts as populated. Nothing else makes the
                 * error go away, so give up after timeout_ms. */
                if (errno != EBUSY)
                        return negative_errno();
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                int64_t ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
                if (ms >= (int64_t) timeout_ms)
                        return -EBUSY;
                /* Short first: usually the last task is gone within ~100 us. */
                struct timespec d = { 0, i < 10 ? 100000 : 2000000 };
                nanosleep(&d, NULL);
        }
}

/* --- killing by pid (v1, and v2 before cgroup.kill) ------------------------ */

static int pid_is_member(pid_t pid, const char *controller, const char *rel_path) {
        char path[64], buf[4096];
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        int r = sp_cgroup_read_at(AT_FDCWD, path, buf, sizeof(buf));
        if (r < 0)
                return r;
        _cleanup_free_ char *p = NULL;
        r = sp_cgroup_parse_proc_cgroup(buf, controller, &p);
        if (r < 0)
                return r;
        return streq(p, rel_path);
}

static int kill_one(pid_t pid, const char *controller, const char *rel_path) {
        /* Hold the process by pidfd first, then check it is in the cgroup:
         * if the pid was freed and reused after cgroup.procs was read, either
         * the check fails (an outsider) or the pidfd's process is dead and
         * the signal returns ESRCH. A bare kill(pid) could hit an unrelated
         * process. */
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return errno == ESRCH ? 0 : negative_errno();
        int r = pid_is_member(pid, controller, rel_path);
        if (r <= 0)
                return r == -ENOENT || r == -ESRCH ? 0 : r;
        if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                return negative_errno();
        return 1;
}

int sp_cgroup_kill_procs(int dirfd, const char *controller, const char *rel_path, unsigned rounds) {
        for (unsigned round = 0; round < rounds; round++) {
                _cleanup_free_ char *procs = NULL;
                int r = sp_cgroup_read_alloc_at(dirfd, "cgroup.procs", &procs);
                if (r < 0)
                        return r;
                bool any = false;
                for (char *p = procs, *e; *p; p = e) {
                        long pid = strtol(p, &e, 10);
                        if (e == p)
                                break;
                        if (pid <= 0)
                                continue;
                        any = true;
                        r = kill_one((pid_t) pid, controller, rel_path);
                        if (r < 0)
                                return r;
                }
                if (!any)
                        return 0;
                /* Killed tasks leave cgroup.procs once they have exited; a
                 * forking task may have added children meanwhile: next round. */
                struct timespec d = { 0, round < 10 ? 200000 : 2000000 };
                nanosleep(&d, NULL);
        }
        return -EBUSY;
}

/* --- the manager ----------------------------------------------------------- */

static int read_text(const char *path, char **ret) {
        return sp_cgroup_read_alloc_at(AT_FDCWD, path, ret);
}

static bool file_exists_at(int dirfd, const char *dir, const char *file) {
        _cleanup_free_ char *p = sp_cgroup_path_join(dir, file);
        return p && faccessat(dirfd, p, F_OK, 0) == 0;
}

/* For fs_root (unit tests): the mounts a conventional layout would show.
 * fs_root itself or a subdirectory with cgroup.controllers is cgroup2; a
 * subdirectory with cgroup.procs is a v1 hierarchy named after its
 * controllers ("memory", "cpu,cpuacct"). */
static int fake_mounts(const char *fs_root, sp_cgroup_mount **ret, size_t *ret_n) {
        _cleanup_closedir_ DIR *d = opendir(fs_root);
        if (!d)
                return negative_errno();
        sp_cgroup_mount *v = calloc(64, sizeof(*v));
        size_t n = 0;
        if (!v)
                return -ENOMEM;
        if (file_exists_at(AT_FDCWD, fs_root, "cgroup.controllers"))
                v[n++] = (sp_cgroup_mount) { .path = strdup(fs_root), .root = strdup("/"), .dev_minor = 1, .v2 = true };
        for (struct dirent *de; n < 64 && (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *p = sp_cgroup_path_join(fs_root, de->d_name);
                if (!p)
                        break;
                bool v2 = file_exists_at(AT_FDCWD, p, "cgroup.controllers");
                if (!v2 && !file_exists_at(AT_FDCWD, p, "cgroup.procs"))
                        continue;
                v[n] = (sp_cgroup_mount) {
                        .path = TAKE_PTR(p),
                        .root = strdup("/"),
                        .dev_minor = (unsigned) n + 1,
                        .v2 = v2,
                        .controllers = v2 ? 0 : super_options_controllers(de->d_name),
                };
                n++;
        }
        for (size_t i = 0; i < n; i++)
                if (!v[i].path || !v[i].root) {
                        sp_cgroup_mounts_free(v, n);
                        return -ENOMEM;
                }
        *ret = v;
        *ret_n = n;
        return 0;
}

static bool host_has_swap(void) {
        _cleanup_free_ char *t = NULL;
        uint64_t kb = 0;
        if (read_text("/proc/meminfo", &t) < 0)
                return true; /* assume the worst: swap must then be limited */
        const char *p = strstr(t, "SwapTotal:");
        if (!p)
                return true;
        p += STRLEN("SwapTotal:");
        return sp_cgroup_parse_u64(p, &kb) < 0 || kb > 0;
}

static int build_describe(sp_cgroup_manager *m) {
        char buf[2048];
        size_t n = 0;
        int k = snprintf(buf, sizeof(buf), "cgroup %s:", sp_cgroup_mode_to_string(m->mode));
        n = (size_t) MAX(k, 0);
        for (size_t i = 0; i < m->n_hier && n < sizeof(buf); i++) {
                char ctrls[64];
                sp_cgroup_ctrl_mask_format(m->hier[i].controllers, ctrls, sizeof(ctrls));
                k = snprintf(buf + n, sizeof(buf) - n, "%s %s at %s", i ? ";" : "", ctrls,
                             m->hier[i].subtree_path);
                n += (size_t) MAX(k, 0);
        }
        if (n < sizeof(buf) && m->mode == SP_CGROUP_V1)
                snprintf(buf + n, sizeof(buf) - n, "%s",
                         m->no_memsw ? "; no swap accounting (memory.memsw absent): memory.swappiness=0 instead"
                                     : "; swap off (memory.memsw.limit_in_bytes = memory.limit_in_bytes)");
        m->describe = strdup(buf);
        return m->describe ? 0 : -ENOMEM;
}

static void manager_freep(sp_cgroup_manager **m) {
        sp_cgroup_manager_free(*m);
}

/* Pick the backend: the forced one, or v2 when it can enforce everything,
 * else v1. The error names what each mode lacks. */
static int manager_probe(sp_cgroup_manager *m, const sp_cgroup_manager_options *opts, const sp_cgroup_mount *mounts,
                         size_t n_mounts, const char *proc_cgroup, sp_error *err) {
        if (opts->mode == SP_CGROUP_V2 || opts->mode == SP_CGROUP_V1) {
                m->backend = opts->mode == SP_CGROUP_V2 ? &sp_cgroup_backend_v2 : &sp_cgroup_backend_v1;
                m->mode = opts->mode;
                sp_error e = {};
                int r = m->backend->probe(m, mounts, n_mounts, proc_cgroup, opts, &e);
                if (r >= 0)
                        return r;
                /* The usual cause: a hybrid host, where they are on v1. */
                return sp_error_set(err, r, "%s%s", e.message,
                                    r == -EOPNOTSUPP && opts->mode == SP_CGROUP_V2 ? "; use mode v1 or auto" : "");
        }
        if (opts->mode != SP_CGROUP_AUTO)
                return sp_error_set(err, -EINVAL, "Unknown cgroup mode %d", (int) opts->mode);

        sp_error e2 = {}, e1 = {};
        m->backend = &sp_cgroup_backend_v2;
        m->mode = SP_CGROUP_V2;
        int r = m->backend->probe(m, mounts, n_mounts, proc_cgroup, opts, &e2);
        if (r >= 0)
                return r;
        m->backend = &sp_cgroup_backend_v1;
        m->mode = SP_CGROUP_V1;
        r = m->backend->probe(m, mounts, n_mounts, proc_cgroup, opts, &e1);
        if (r >= 0)
                return r;
        return sp_error_set(err, r, "No cgroup mode can enforce memory, cpu and pids: %s; %s", e2.message,
                            e1.message);
}

int sp_cgroup_manager_new(const sp_cgroup_manager_options *opts, sp_cgroup_manager **ret, sp_error *err) {
        static const sp_cgroup_manager_options defaults = {};
        if (!opts)
                opts = &defaults;
        const char *subdir = opts->subdir ?: DEFAULT_SUBDIR;
        if (!sp_cgroup_name_is_valid(subdir))
                return sp_error_set(err, -EINVAL, "Invalid cgroup subdirectory name \"%s\"", subdir);
        if (opts->parent && (opts->parent[0] != '/' || strstr(opts->parent, "/..")))
                return sp_error_set(err, -EINVAL, "cgroup parent \"%s\" is not an absolute path without \"..\"",
                                    opts->parent);

        _cleanup_(manager_freep) sp_cgroup_manager *m = calloc(1, sizeof(*m));
        if (!m)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        for (size_t i = 0; i < SP_CGROUP_MAX_HIER; i++)
                m->hier[i].parent_fd = m->hier[i].subtree_fd = -EBADF;
        m->fake = opts->fs_root != NULL;
        m->subdir = strdup(subdir);
        if (!m->subdir)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        m->host_has_swap = host_has_swap();

        sp_cgroup_mount *mounts = NULL;
        size_t n_mounts = 0;
        int r;
        if (opts->fs_root)
                r = fake_mounts(opts->fs_root, &mounts, &n_mounts);
        else {
                _cleanup_free_ char *mi = NULL;
                r = read_text("/proc/self/mountinfo", &mi);
                if (r < 0)
                        return sp_error_set(err, r, "Failed to read /proc/self/mountinfo: %s", strerror(-r));
                r = sp_cgroup_parse_mountinfo(mi, &mounts, &n_mounts);
        }
        if (r < 0)
                return sp_error_set(err, r, "Failed to list cgroup mounts: %s", strerror(-r));

        _cleanup_free_ char *proc_cgroup = NULL;
        r = read_text("/proc/self/cgroup", &proc_cgroup);
        if (r < 0 && !opts->parent) {
                sp_cgroup_mounts_free(mounts, n_mounts);
                return sp_error_set(err, r, "Failed to read /proc/self/cgroup: %s", strerror(-r));
        }

        r = manager_probe(m, opts, mounts, n_mounts, proc_cgroup ?: "", err);
        sp_cgroup_mounts_free(mounts, n_mounts);
        if (r < 0)
                return r;
        r = m->backend->setup(m, opts, err);
        if (r < 0)
                return r;
        r = build_describe(m);
        if (r < 0)
                return sp_error_set(err, r, "Out of memory");
        *ret = TAKE_PTR(m);
        return 0;
}

sp_cgroup_mode sp_cgroup_manager_mode(const sp_cgroup_manager *m) {
        return m->mode;
}

const char *sp_cgroup_manager_describe(const sp_cgroup_manager *m) {
        return m->describe ?: "cgroup: not set up";
}

void sp_cgroup_hier_done(sp_cgroup_hier *h) {
        safe_close(h->subtree_fd);
        safe_close(h->parent_fd);
        free(h->ctrl_name);
        free(h->mount_path);
        free(h->parent_rel);
        free(h->parent_path);
        free(h->subtree_rel);
        free(h->subtree_path);
        *h = (sp_cgroup_hier) {.parent_fd = -EBADF, .subtree_fd = -EBADF};
}

void sp_cgroup_manager_free(sp_cgroup_manager *m) {
        if (!m)
                return;
        for (size_t i = 0; i < m->n_hier; i++) {
                sp_cgroup_hier *h = &m->hier[i];
                h->subtree_fd = safe_close(h->subtree_fd);
                /* Only what we made, and only when empty: a sandbox cgroup
                 * still in it (EBUSY) or someone else's subtree stays. */
                if (h->created_subtree && h->parent_fd >= 0)
                        (void) sp_cgroup_rmdir_at(h->parent_fd, m->subdir, 0, m->fake);
                /* <parent>/supervisor (v2) is left alone: the caller lives
                 * in it and cannot move back, because the parent now has
                 * controllers enabled for its children. */
                sp_cgroup_hier_done(h);
        }
        free(m->subdir);
        free(m->describe);
        free(m);
}

/* --- one sandbox's cgroup -------------------------------------------------- */

/* Close and remove whatever directories were made; for failed creation. */
static int cgroup_remove(sp_cgroup *cg, unsigned timeout_ms) {
        int ret = 0;
        sp_cgroup_manager *m = cg->manager;
        for (size_t i = 0; i < cg->n_fd; i++) {
                cg->fd[i] = safe_close(cg->fd[i]);
                int r = sp_cgroup_rmdir_at(m->hier[i].subtree_fd, cg->name, timeout_ms, m->fake);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        cg->n_fd = 0;
        free(cg->name);
        free(cg->path);
        free(cg);
        return ret;
}

static void cgroup_discardp(sp_cgroup **cg) {
        if (*cg)
                (void) cgroup_remove(*cg, 1000);
}

int sp_cgroup_new(sp_cgroup_manager *m, const char *name, const sp_limits *limits, sp_cgroup **ret, sp_error *err) {
        if (!sp_cgroup_name_is_valid(name))
                return sp_error_set(err, -EINVAL, "Invalid sandbox cgroup name \"%s\"", name ?: "(null)");
        int r = sp_cgroup_limits_validate(limits, err);
        if (r < 0)
                return r;

        _cleanup_(cgroup_discardp) sp_cgroup *cg = calloc(1, sizeof(*cg));
        if (!cg)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        cg->manager = m;
        cg->name = strdup(name);
        cg->path = sp_cgroup_path_join(m->hier[0].subtree_path, name);
        if (!cg->name || !cg->path)
                return sp_error_set(err, -ENOMEM, "Out of memory");

        for (size_t i = 0; i < m->n_hier; i++) {
                sp_cgroup_hier *h = &m->hier[i];
                /* EEXIST is an error here: a leftover cgroup of that name may
                 * hold processes or limits that are not ours. */
                if (mkdirat(h->subtree_fd, name, 0755) < 0) {
                        r = negative_errno();
                        return sp_error_set(err, r, "Failed to create cgroup %s/%s: %s", h->subtree_path, name,
                                            strerror(-r));
                }
                cg->fd[i] = openat(h->subtree_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                cg->n_fd = i + 1;
                if (cg->fd[i] < 0) {
                        r = negative_errno();
                        return sp_error_set(err, r, "Failed to open cgroup %s/%s: %s", h->subtree_path, name,
                                            strerror(-r));
                }
        }
        r = m->backend->apply_limits(cg, limits, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cg);
        return 0;
}

int sp_cgroup_open(sp_cgroup_manager *m, const char *name, sp_cgroup **ret, sp_error *err) {
        if (!sp_cgroup_name_is_valid(name))
                return sp_error_set(err, -EINVAL, "Invalid sandbox cgroup name \"%s\"", name ?: "(null)");
        sp_cgroup *cg = calloc(1, sizeof(*cg));
        if (!cg)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        cg->manager = m;
        cg->name = strdup(name);
        cg->path = sp_cgroup_path_join(m->hier[0].subtree_path, name);
        if (!cg->name || !cg->path) {
                sp_cgroup_close(cg);
                return sp_error_set(err, -ENOMEM, "Out of memory");
        }
        for (size_t i = 0; i < m->n_hier; i++) {
                cg->fd[i] = openat(m->hier[i].subtree_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (cg->fd[i] < 0) {
                        int r = negative_errno();
                        sp_cgroup_close(cg);
                        return sp_error_set(err, r, "Failed to open cgroup %s/%s: %s", m->hier[i].subtree_path, name,
                                            strerror(-r));
                }
                cg->n_fd = i + 1;
        }
        *ret = cg;
        return 0;
}

void sp_cgroup_close(sp_cgroup *cg) {
        if (!cg)
                return;
        for (size_t i = 0; i < cg->n_fd; i++)
                safe_close(cg->fd[i]);
        free(cg->name);
        free(cg->path);
        free(cg);
}

int sp_cgroup_remove(sp_cgroup_manager *m, const char *name) {
        int ret = 0;
        if (!sp_cgroup_name_is_valid(name))
                return -EINVAL;
        for (size_t i = 0; i < m->n_hier; i++) {
                int r = sp_cgroup_rmdir_at(m->hier[i].subtree_fd, name, 1000, m->fake);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

size_t sp_cgroup_manager_fds(const sp_cgroup_manager *m, int *fds, size_t max) {
        size_t n = 0;
        for (size_t i = 0; i < m->n_hier; i++) {
                if (m->hier[i].parent_fd >= 0 && n < max)
                        fds[n++] = m->hier[i].parent_fd;
                if (m->hier[i].subtree_fd >= 0 && n < max)
                        fds[n++] = m->hier[i].subtree_fd;
        }
        return n;
}

int sp_cgroup_clone_fd(const sp_cgroup *cg) {
        if (cg->manager->mode != SP_CGROUP_V2)
                return -EOPNOTSUPP;
        return cg->fd[0];
}

int sp_cgroup_attach(sp_cgroup *cg, pid_t pid) {
        if (pid <= 0)
                return -EINVAL;
        return cg->manager->backend->attach(cg, pid);
}

int sp_cgroup_stats_read(const sp_cgroup *cg, sp_cgroup_stats *ret) {
        *ret = (sp_cgroup_stats) {};
        return cg->manager->backend->stats(cg, ret);
}

int sp_cgroup_kill(sp_cgroup *cg) {
        return cg->manager->backend->kill(cg);
}

int sp_cgroup_freeze(sp_cgroup *cg, bool frozen, unsigned timeout_ms) {
        const sp_cgroup_backend *b = cg->manager->backend;
        if (!b->freeze)
                return -EOPNOTSUPP;
        int r = b->freeze(cg, frozen);
        if (r < 0 || !frozen)
                return r;
        /* Freezing is asynchronous: a task is frozen when it next leaves
         * the kernel (or at once if it sleeps). Poll; most are done within
         * one round. */
        for (unsigned waited_us = 0;; waited_us += 500) {
                r = b->is_frozen(cg);
                if (r != 0)
                        break;
                if (waited_us >= timeout_ms * 1000u) {
                        r = -ETIME;
                        break;
                }
                usleep(waited_us < 2000 ? 100 : 500);
        }
        if (r < 0)
                (void) b->freeze(cg, false);
        return r < 0 ? r : 0;
}

int sp_cgroup_destroy(sp_cgroup *cg) {
        if (!cg)
                return 0;
        return cgroup_remove(cg, 1000);
}

const char *sp_cgroup_path(const sp_cgroup *cg) {
        return cg->path;
}

int sp_cgroup_manager_sweep(sp_cgroup_manager *m, sp_cgroup_stale_fn is_stale, void *userdata) {
        int removed = 0;
        for (size_t h = 0; h < m->n_hier; h++) {
                int fd = fcntl(m->hier[h].subtree_fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return negative_errno();
                _cleanup_closedir_ DIR *d = fdopendir(fd);
                if (!d) {
                        safe_close(fd);
                        return negative_errno();
                }
                for (struct dirent *de; (de = readdir(d));) {
                        if (de->d_type != DT_DIR || !sp_cgroup_name_is_valid(de->d_name) || !is_stale(de->d_name, userdata))
                                continue;
                        /* rmdir fails (EBUSY) while any task is inside: a
                         * live sandbox is never taken by mistake. */
                        if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0 && h == 0)
                                removed++;
                }
        }
        return removed;
}

int sp_cgroup_set_limits(sp_cgroup *cg, const sp_limits *limits, sp_error *err) {
        int r = sp_cgroup_limits_validate(limits, err);
        if (r < 0)
                return r;
        return cg->manager->backend->apply_limits(cg, limits, err);
}
