/* SPDX-License-Identifier: MIT */
/* Copying an overlay upper: see layer.h. */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "layer.h"
#include "sandbox.h"

#define OPAQUE_XATTR "trusted.overlay.opaque"
#define MAX_DEPTH 128 /* each level holds two fds */

typedef struct copy_ctx {
        const sp_layer_copy_opts *o;
        sp_layer_stats st;
        sp_error *err;
        char path[PATH_MAX]; /* of the entry at hand, relative to the source root */
} copy_ctx;

static int fail(copy_ctx *c, int r, const char *what) {
        return sp_error_set(c->err, r, "%s /%s: %s", what, c->path, strerror(-r));
}

static int map_id(copy_ctx *c, uint32_t id, uint32_t *ret) {
        if (id < c->o->src_id_base || id - c->o->src_id_base >= SP_ID_RANGE)
                return sp_error_set(c->err, -EPERM, "/%s is owned by host id %u, outside the sandbox's range",
                                    c->path, id);
        *ret = id - c->o->src_id_base + c->o->dst_id_base;
        return 0;
}

static int count(copy_ctx *c, uint64_t bytes) {
        c->st.files++;
        c->st.bytes += bytes;
        if (c->o->max_files && c->st.files > c->o->max_files)
                return sp_error_set(c->err, -EFBIG, "more than %llu files", (unsigned long long) c->o->max_files);
        if (c->o->max_bytes && c->st.bytes > c->o->max_bytes)
                return sp_error_set(c->err, -EFBIG, "more than %llu bytes (the size cap)",
                                    (unsigned long long) c->o->max_bytes);
        return 0;
}

/* Owner, mode and times of what fd (or name below dirfd, for a symlink)
 * is, from st. */
static int set_attrs(copy_ctx *c, int fd, int dirfd, const char *name, const struct stat *st) {
        uint32_t uid = 0, gid = 0;
        int r;
        if ((r = map_id(c, st->st_uid, &uid)) < 0 || (r = map_id(c, st->st_gid, &gid)) < 0)
                return r;
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
        if (fd < 0) { /* a symlink: no mode of its own */
                if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                    utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return fail(c, negative_errno(), "set owner of");
                return 0;
        }
        /* chown first: it clears setuid/setgid, which are refused anyway */
        if (fchown(fd, uid, gid) < 0 || fchmod(fd, st->st_mode & 01777) < 0 || futimens(fd, ts) < 0)
                return fail(c, negative_errno(), "set owner and mode of");
        return 0;
}

static int copy_content(copy_ctx *c, int in, int out, uint64_t size) {
        uint64_t done = 0;
        char buf[65536];
        /* copy_file_range: in the kernel, no round trip through us (and a
         * reflink where the filesystems can share extents). */
        while (done < size) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, MIN(size - done, (uint64_t) 1 << 30), 0);
                if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS))
                        break;
                if (n < 0)
                        return fail(c, negative_errno(), "copy");
                if (n == 0)
                        return 0; /* shrank meanwhile: cannot happen while frozen */
                done += (uint64_t) n;
        }
        while (done < size) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0)
                        return fail(c, negative_errno(), "read");
                if (n == 0)
                        return 0;
                for (ssize_t w = 0; w < n;) {
                        ssize_t k = write(out, buf + w, (size_t) (n - w));
                        if (k < 0)
                                return fail(c, negative_errno(), "write");
                        w += k;
                }
                done += (uint64_t) n;
        }
        return 0;
}

static int copy_file(copy_ctx *c, int sdir, int ddir, const char *name, const struct stat *st) {
        int r;
        if (st->st_mode & (S_ISUID | S_ISGID))
                return sp_error_set(c->err, -EPERM, "/%s is setuid or setgid: refused in a layer", c->path);
        if ((r = count(c, (uint64_t) st->st_size)) < 0)
                return r;
        _cleanup_close_ int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (in < 0)
                return fail(c, negative_errno(), "open");
        _cleanup_close_ int out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                return fail(c, negative_errno(), "create");
        if ((r = copy_content(c, in, out, (uint64_t) st->st_size)) < 0)
                return r;
        return set_attrs(c, out, ddir, name, st);
}

static int copy_symlink(copy_ctx *c, int sdir, int ddir, const char *name, const struct stat *st) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);
        int r;
        if (n < 0)
                return fail(c, negative_errno(), "readlink");
        target[n] = 0;
        if ((r = count(c, (uint64_t) n)) < 0)
                return r;
        if (symlinkat(target, ddir, name) < 0)
                return fail(c, negative_errno(), "symlink");
        return set_attrs(c, -1, ddir, name, st);
}

static int copy_special(copy_ctx *c, int ddir, const char *name, const struct stat *st) {
        int r;
        if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0))
                c->st.whiteouts++; /* overlayfs: "deleted in this layer" */
        else if (!S_ISFIFO(st->st_mode))
                return sp_error_set(c->err, -EPERM, "/%s is a device node: refused in a layer", c->path);
        if ((r = count(c, 0)) < 0)
                return r;
        if (mknodat(ddir, name, st->st_mode & (S_IFMT | 0777), st->st_rdev) < 0)
                return fail(c, negative_errno(), "mknod");
        /* overlayfs makes whiteouts with its mounter's ids (host root): their
         * owner means nothing, root's is as good as any */
        if (S_ISCHR(st->st_mode))
                return 0;
        uint32_t uid = 0, gid = 0;
        if ((r = map_id(c, st->st_uid, &uid)) < 0 || (r = map_id(c, st->st_gid, &gid)) < 0)
                return r;
        if (fchownat(ddir, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                return fail(c, negative_errno(), "set owner of");
        return 0;
}

static int copy_dir(copy_ctx *c, int sdir, int ddir, const struct stat *st, unsigned depth);

static int copy_entry(copy_ctx *c, int sdir, int ddir, const char *name, unsigned depth) {
        struct stat st;
        if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return fail(c, negative_errno(), "stat");
        switch (st.st_mode & S_IFMT) {
        case S_IFREG:
                return copy_file(c, sdir, ddir, name, &st);
        case S_IFLNK:
                return copy_symlink(c, sdir, ddir, name, &st);
        case S_IFSOCK:
                return 0;
        case S_IFDIR: {
                if (depth >= MAX_DEPTH)
                        return sp_error_set(c->err, -ELOOP, "/%s: more than %u directories deep", c->path, MAX_DEPTH);
                if (mkdirat(ddir, name, 0700) < 0)
                        return fail(c, negative_errno(), "mkdir");
                _cleanup_close_ int s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                _cleanup_close_ int d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (s < 0 || d < 0)
                        return fail(c, negative_errno(), "open directory");
                return copy_dir(c, s, d, &st, depth + 1);
        }
        default:
                return copy_special(c, ddir, name, &st);
        }
}

static int copy_dir(copy_ctx *c, int sdir, int ddir, const struct stat *st, unsigned depth) {
        char v[8];
        int r;
        size_t len = strlen(c->path);

        if ((r = count(c, 0)) < 0)
                return r;
        /* Opaque: overlayfs hides whatever the layers below have here. */
        ssize_t n = fgetxattr(sdir, OPAQUE_XATTR, v, sizeof(v));
        if (n > 0 && fsetxattr(ddir, OPAQUE_XATTR, v, (size_t) n, 0) < 0)
                return fail(c, negative_errno(), "set the opaque mark of");

        int dupfd = fcntl(sdir, F_DUPFD_CLOEXEC, 3);
        if (dupfd < 0)
                return fail(c, negative_errno(), "dup");
        _cleanup_(closedirp) DIR *d = fdopendir(dupfd);
        if (!d) {
                safe_close(dupfd);
                return fail(c, negative_errno(), "read directory");
        }
        /* the dup shares its offset with sdir, which may have been read
         * before (the same upper captured twice) */
        rewinddir(d);
        for (struct dirent *de; (errno = 0, de = readdir(d));) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (len + 1 + strlen(de->d_name) >= sizeof(c->path))
                        return sp_error_set(c->err, -ENAMETOOLONG, "a path below /%s is too long", c->path);
                snprintf(c->path + len, sizeof(c->path) - len, "%s%s", len ? "/" : "", de->d_name);
                r = copy_entry(c, sdir, ddir, de->d_name, depth);
                c->path[len] = 0;
                if (r < 0)
                        return r;
        }
        if (errno != 0)
                return fail(c, negative_errno(), "read directory");
        /* Last, so that a read-only mode does not stop the copy into it. */
        struct stat masked = *st;
        masked.st_mode &= ~(mode_t) (S_ISUID | S_ISGID);
        return set_attrs(c, ddir, -1, NULL, &masked);
}

int sp_layer_copy(int src_dirfd, int dst_dirfd, const sp_layer_copy_opts *o, sp_layer_stats *ret,
                  sp_error *err) {
        copy_ctx *c = calloc(1, sizeof(*c));
        struct stat st;
        int r;

        if (!c)
                return sp_error_set(err, -ENOMEM, "out of memory");
        c->o = o;
        c->err = err;
        if (fstat(src_dirfd, &st) < 0)
                r = sp_error_set(err, negative_errno(), "stat the source: %m");
        else
                r = copy_dir(c, src_dirfd, dst_dirfd, &st, 0);
        if (ret)
                *ret = c->st;
        free(c);
        return r;
}

static int remove_below(int dirfd, unsigned depth) {
        int dupfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (dupfd < 0)
                return negative_errno();
        _cleanup_(closedirp) DIR *d = fdopendir(dupfd);
        if (!d) {
                safe_close(dupfd);
                return negative_errno();
        }
        rewinddir(d);
        int ret = 0;
        for (struct dirent *de; (de = readdir(d));) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (unlinkat(dirfd, de->d_name, 0) >= 0 || errno == ENOENT)
                        continue;
                if (errno != EISDIR && errno != EPERM) {
                        ret = ret ?: negative_errno();
                        continue;
                }
                int r = depth < MAX_DEPTH * 2 ? sp_layer_remove(dirfd, de->d_name) : -ELOOP;
                if (r < 0 && !ret)
                        ret = r;
        }
        return ret;
}

int sp_layer_remove(int dirfd, const char *name) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                if (errno != ENOTDIR && errno != ELOOP)
                        return negative_errno();
                return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? negative_errno() : 0;
        }
        /* a directory that was read-only keeps nobody out of ours */
        (void) fchmod(fd, 0700);
        int r = remove_below(fd, 0);
        if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = negative_errno();
        return r;
}
