/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "layer.h"
#include "macro.h"
#include "mount.h"

/* glibc 2.36's <sys/mount.h> clashes with <linux/mount.h>; call the new
 * mount API through syscall(2). */
static int sys_open_tree(int dfd, const char *path, unsigned flags) {
        return (int) syscall(SYS_open_tree, dfd, path, flags);
}
static int sys_mount_setattr(int dfd, const char *path, unsigned flags, struct mount_attr *a) {
        return (int) syscall(SYS_mount_setattr, dfd, path, flags, a, sizeof(*a));
}
static int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags) {
        return (int) syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}
/* <sys/mount.h> and <linux/mount.h> cannot be included together; these
 * are the classic flags we need. */
#ifndef MS_RDONLY
#define MS_RDONLY 1
#define MS_NOSUID 2
#define MS_NODEV 4
#define MS_NOEXEC 8
#define MS_REMOUNT 32
#define MS_BIND 4096
#define MS_REC 16384
#define MS_PRIVATE (1 << 18)
#endif
#ifndef MNT_DETACH
#define MNT_DETACH 2
#endif
int mount(const char *src, const char *dst, const char *type, unsigned long flags, const void *data);
int umount2(const char *target, int flags);
static int pivot_root(const char *new_root, const char *put_old) {
        return (int) syscall(SYS_pivot_root, new_root, put_old);
}

/* Fill err and return r (whose value may set errno for %m first). */
#define FAIL(r, ...) sp_error_set(err, (r), __VA_ARGS__)

static char *path_join(const char *a, const char *b) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", a, b) < 0)
                return NULL;
        return p;
}

static int stage_mount_lower(int dfd, const char *rootfs, const char *lower, int userns_fd) {
        /* Clone the image's mount, idmap it into the sandbox's user
         * namespace (image uid 0 shows as the sandbox's root) and make it
         * read-only, then attach it: 6.1 wants the lower layer attached. The
         * idmapped mount never reaches the sandbox itself: its root could
         * clear MOUNT_ATTR_RDONLY on a mount it is handed. */
        _cleanup_close_ int fd = sys_open_tree(dfd, rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (*rootfs ? 0 : AT_EMPTY_PATH));
        if (fd < 0)
                return -errno;
        struct mount_attr attr = {
                .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                .userns_fd = (uint64_t) userns_fd,
        };
        if (sys_mount_setattr(fd, "", AT_EMPTY_PATH, &attr) < 0)
                return -errno;
        if (sys_move_mount(fd, "", AT_FDCWD, lower, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

/* Template layers: each one idmapped and read-only like the image, at
 * <dir>/l<i>, listed topmost first in front of the image's lower. */
static int stage_mount_layers(sp_stage *st, const sp_stage_layers *layers, int userns_fd, char **lowerdirs,
                              sp_error *err) {
        for (size_t i = layers ? layers->n : 0; i > 0; i--) {
                _cleanup_free_ char *dir = NULL, *joined = NULL;
                if (asprintf(&dir, "%s/l%zu", st->dir, i - 1) < 0)
                        return FAIL(-ENOMEM, "out of memory");
                if (mkdir(dir, 0700) < 0)
                        return FAIL(-errno, "mkdir %s: %m", dir);
                int r = stage_mount_lower(layers->fds[i - 1], "", dir, userns_fd);
                if (r < 0) {
                        errno = -r;
                        return FAIL(r, "idmapped read-only mount of template layer %zu: %m", i - 1);
                }
                if (asprintf(&joined, "%s:%s", dir, *lowerdirs) < 0)
                        return FAIL(-ENOMEM, "out of memory");
                free(*lowerdirs);
                *lowerdirs = TAKE_PTR(joined);
        }
        return 0;
}

static void stage_detach_layers(sp_stage *st, const sp_stage_layers *layers) {
        char dir[PATH_MAX];
        for (size_t i = 0; layers && i < layers->n; i++) {
                snprintf(dir, sizeof(dir), "%s/l%zu", st->dir, i);
                (void) umount2(dir, MNT_DETACH);
        }
}

/* A fork: the other sandbox's files become our upper's, before the
 * overlay exists (an upper must not change under a mounted overlay). */
static int stage_seed_upper(sp_stage *st, const sp_stage_layers *layers, uid_t id_base, sp_error *err) {
        sp_layer_copy_opts o = {.src_id_base = layers->seed_id_base, .dst_id_base = id_base};
        int r = sp_layer_copy(layers->seed_fd, st->upper_fd, &o, NULL, err);
        if (r < 0)
                return sp_error_prefix(err, "copy the files of the forked sandbox");
        return 0;
}

int sp_stage_build(sp_stage *st, const char *stage_dir, const char *name, const char *rootfs,
                   const sp_stage_layers *layers, int userns_fd, uid_t id_base, uint64_t disk_bytes, sp_error *err) {
        _cleanup_free_ char *upper = NULL, *work = NULL, *lower = NULL, *opts = NULL;
        char tmpfs_opts[64];
        struct stat image;
        int r;

        if (stat(rootfs, &image) < 0)
                return FAIL(-errno, "image %s: %m", rootfs);
        if (!S_ISDIR(image.st_mode))
                return FAIL(-ENOTDIR, "image %s is not a directory", rootfs);

        st->dir = path_join(stage_dir, name);
        st->root = st->dir ? path_join(st->dir, "root") : NULL;
        upper = st->dir ? path_join(st->dir, "upper") : NULL;
        work = st->dir ? path_join(st->dir, "work") : NULL;
        lower = st->dir ? path_join(st->dir, "lower") : NULL;
        if (!st->root || !upper || !work || !lower)
                return FAIL(-ENOMEM, "out of memory");

        if (mkdir(st->dir, 0711) < 0)
                return FAIL(-errno, "mkdir %s: %m", st->dir);
        /* The disk quota is the size of this tmpfs: upper and work live on
         * it, so a sandbox that fills its disk gets ENOSPC, and the host's
         * disk never sees a byte. */
        snprintf(tmpfs_opts, sizeof(tmpfs_opts), "size=%llu,mode=0711", (unsigned long long) disk_bytes);
        /* 0711: PID 1, root only inside its user namespace, must be able to
         * walk to <dir>/root before it pivots; nothing here is listable. */
        if (mount("sandpool", st->dir, "tmpfs", MS_NODEV | MS_NOSUID, tmpfs_opts) < 0)
                return FAIL(-errno, "mount tmpfs (size %llu) on %s: %m", (unsigned long long) disk_bytes, st->dir);
        st->mounted |= 1;

        if (mkdir(upper, image.st_mode & 07777) < 0 || mkdir(work, 0700) < 0 || mkdir(lower, 0700) < 0 ||
            mkdir(st->root, 0700) < 0)
                return FAIL(-errno, "mkdir in %s: %m", st->dir);
        /* Without this the sandbox's "/" would show as the overflow id. */
        if (chown(upper, id_base + image.st_uid, id_base + image.st_gid) < 0 || chmod(upper, image.st_mode & 07777) < 0)
                return FAIL(-errno, "chown %s: %m", upper);

        st->upper_fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (st->upper_fd < 0)
                return FAIL(-errno, "open %s: %m", upper);
        if (layers && layers->seed_fd >= 0 && (r = stage_seed_upper(st, layers, id_base, err)) < 0)
                return r;
        r = stage_mount_lower(AT_FDCWD, rootfs, lower, userns_fd);
        if (r < 0) {
                errno = -r;
                return FAIL(r, "idmapped read-only mount of %s: %m", rootfs);
        }
        _cleanup_free_ char *lowerdirs = strdup(lower);
        if (!lowerdirs)
                return FAIL(-ENOMEM, "out of memory");
        r = stage_mount_layers(st, layers, userns_fd, &lowerdirs, err);
        if (r >= 0 && asprintf(&opts, "lowerdir=%s,upperdir=%s,workdir=%s", lowerdirs, upper, work) < 0)
                r = FAIL(-ENOMEM, "out of memory");
        if (r >= 0) {
                r = mount("overlay", st->root, "overlay", MS_NODEV | MS_NOSUID, opts);
                r = r < 0 ? -errno : 0;
        } else
                opts = NULL;
        /* The overlay holds its own reference to the lower layers. */
        (void) umount2(lower, MNT_DETACH);
        stage_detach_layers(st, layers);
        if (r < 0 && !opts)
                return r;
        if (r < 0) {
                errno = -r;
                return FAIL(r, "mount overlay on %s: %m", st->root);
        }
        st->mounted |= 2;

        st->root_fd = open(st->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (st->root_fd < 0)
                return FAIL(-errno, "open %s: %m", st->root);
        return 0;
}

void sp_stage_release(sp_stage *st) {
        if (st->mounted & 2)
                (void) umount2(st->root, MNT_DETACH);
        if (st->mounted & 1)
                (void) umount2(st->dir, MNT_DETACH);
        if (st->mounted && st->dir)
                (void) rmdir(st->dir);
        st->mounted = 0;
}

void sp_stage_done(sp_stage *st) {
        sp_stage_release(st);
        if (st->dir && !st->mounted)
                (void) rmdir(st->dir);
        st->root_fd = safe_close(st->root_fd);
        st->upper_fd = safe_close(st->upper_fd);
        free(st->dir);
        free(st->root);
        st->dir = st->root = NULL;
}

/* ---- the child's half ---------------------------------------------------- */

static int bind_host_device(const char *root, const char *name, sp_error *err) {
        char src[64], dst[PATH_MAX];
        snprintf(src, sizeof(src), "/dev/%s", name);
        snprintf(dst, sizeof(dst), "%s/dev/%s", root, name);
        _cleanup_close_ int fd = open(dst, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
        if (fd < 0)
                return FAIL(-errno, "create %s: %m", dst);
        /* Device nodes cannot be created in a user namespace, and a tmpfs
         * mounted there cannot serve them (SB_I_NODEV); a bind mount of the
         * host's node keeps the host mount's flags, so these few work. */
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                return FAIL(-errno, "bind %s: %m", src);
        return 0;
}

static int setup_dev(const char *root, uint64_t shm_bytes, sp_error *err) {
        static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
        static const char *const links[][2] = {
                {"/proc/self/fd", "fd"},   {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
        };
        char p[PATH_MAX], opts[96];
        int r;

        snprintf(p, sizeof(p), "%s/dev", root);
        if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64") < 0)
                return FAIL(-errno, "mount tmpfs on /dev: %m");
        for (size_t i = 0; i < ELEMENTSOF(devices); i++) {
                r = bind_host_device(root, devices[i], err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                snprintf(p, sizeof(p), "%s/dev/%s", root, links[i][1]);
                if (symlink(links[i][0], p) < 0)
                        return FAIL(-errno, "symlink %s: %m", p);
        }
        snprintf(p, sizeof(p), "%s/dev/pts", root);
        if (mkdir(p, 0755) < 0)
                return FAIL(-errno, "mkdir %s: %m", p);
        /* A private devpts instance: the sandbox's ptys are its own. */
        if (mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
                return FAIL(-errno, "mount devpts: %m");
        snprintf(p, sizeof(p), "%s/dev/shm", root);
        if (mkdir(p, 01777) < 0)
                return FAIL(-errno, "mkdir %s: %m", p);
        snprintf(opts, sizeof(opts), "mode=1777,size=%llu", (unsigned long long) shm_bytes);
        if (mount("shm", p, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
                return FAIL(-errno, "mount /dev/shm: %m");
        snprintf(p, sizeof(p), "%s/dev", root);
        if (mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
                return FAIL(-errno, "remount /dev read-only: %m");
        return 0;
}

/* Paths that leak host information or let root poke at the kernel even
 * from a user namespace (the list Docker and nspawn converge on). Files get
 * /dev/null on top, directories an empty read-only tmpfs. */
static const char *const masked_paths[] = {
        "/proc/kcore", "/proc/keys", "/proc/key-users", "/proc/timer_list", "/proc/timer_stats",
        "/proc/sched_debug", "/proc/latency_stats", "/proc/sysrq-trigger", "/proc/kallsyms",
        "/proc/kmsg", "/proc/kpagecount", "/proc/kpageflags", "/proc/kpagecgroup",
        "/proc/acpi", "/proc/asound", "/proc/scsi", "/proc/driver",
        "/sys/firmware", "/sys/kernel/debug", "/sys/kernel/tracing", "/sys/devices/virtual/powercap",
        "/sys/kernel/security", "/sys/fs/bpf",
};
static const char *const readonly_paths[] = {
        "/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq",
};

static int mask_dir(const char *p, const char *first_dir) {
        /* Every masked directory shows one empty read-only tmpfs: the first
         * is mounted, the others are bind mounts of it. A superblock is not
         * free: each registers a memcg-aware shrinker, and the kernel keeps
         * a slot for every shrinker in every memory cgroup (shrinker_info,
         * 1 KiB per 64), so a superblock per mask made each sandbox's memory
         * cgroup grow with the number of sandboxes on the host. */
        if (!first_dir)
                return mount("none", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,nr_inodes=1");
        if (mount(first_dir, p, NULL, MS_BIND, NULL) < 0)
                return -1;
        return mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

static int mask_paths(const char *root, sp_error *err) {
        char p[PATH_MAX], null[PATH_MAX], first_dir[PATH_MAX] = "";
        struct stat s;

        snprintf(null, sizeof(null), "%s/dev/null", root);
        for (size_t i = 0; i < ELEMENTSOF(masked_paths); i++) {
                snprintf(p, sizeof(p), "%s%s", root, masked_paths[i]);
                if (lstat(p, &s) < 0)
                        continue; /* not on this kernel */
                int r = S_ISDIR(s.st_mode) ? mask_dir(p, first_dir[0] ? first_dir : NULL)
                                           : mount(null, p, NULL, MS_BIND, NULL);
                if (r < 0)
                        return FAIL(-errno, "mask %s: %m", masked_paths[i]);
                if (S_ISDIR(s.st_mode) && !first_dir[0])
                        snprintf(first_dir, sizeof(first_dir), "%s", p);
        }
        for (size_t i = 0; i < ELEMENTSOF(readonly_paths); i++) {
                snprintf(p, sizeof(p), "%s%s", root, readonly_paths[i]);
                if (lstat(p, &s) < 0)
                        continue;
                if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0 ||
                    mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                        return FAIL(-errno, "read-only %s: %m", readonly_paths[i]);
        }
        return 0;
}

int sp_mount_setup_child(const sp_mount_opts *o, sp_error *err) {
        char p[PATH_MAX];
        int r;

        /* Nothing we mount from here on may propagate back to the caller. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return FAIL(-errno, "make / private: %m");

        /* The overlay came with the copied namespace, so it is locked to
         * its parent mount and pivot_root refuses to move it (EINVAL). A
         * bind mount of it on itself is ours and can be moved; the flags
         * (nodev, nosuid) stay locked on it. */
        if (mount(o->root, o->root, NULL, MS_BIND | MS_REC, NULL) < 0)
                return FAIL(-errno, "bind %s on itself: %m", o->root);

        /* procfs of the new pid namespace. It must be mounted while the
         * host's /proc is still visible: the kernel only lets a user
         * namespace mount proc where a fully visible one exists. */
        snprintf(p, sizeof(p), "%s/proc", o->root);
        if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return FAIL(-errno, "mount /proc: %m");
        r = setup_dev(o->root, o->shm_bytes, err);
        if (r < 0)
                return r;
        /* sysfs of the sandbox's own network namespace, read-only. */
        snprintf(p, sizeof(p), "%s/sys", o->root);
        if (mount("sysfs", p, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 &&
            mount("none", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0") < 0)
                return FAIL(-errno, "mount /sys: %m");
        r = mask_paths(o->root, err);
        if (r < 0)
                return r;

        /* pivot_root(".", ".") stacks the old root on top of the new one;
         * detaching it leaves nothing of the host's tree reachable. */
        if (chdir(o->root) < 0)
                return FAIL(-errno, "chdir %s: %m", o->root);
        if (pivot_root(".", ".") < 0)
                return FAIL(-errno, "pivot_root: %m");
        if (umount2(".", MNT_DETACH) < 0)
                return FAIL(-errno, "detach old root: %m");
        if (chdir("/") < 0)
                return FAIL(-errno, "chdir /: %m");
        return 0;
}
