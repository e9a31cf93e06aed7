/* SPDX-License-Identifier: MIT */
/* PUT/GET/DELETE /v1/sessions/{id}/files?path=/abs/path
 *
 * Every path is resolved by the kernel inside the sandbox's root:
 * openat2(RESOLVE_IN_ROOT) makes "/" and ".." stop at the sandbox's root
 * and symlinks resolve as they would inside it, RESOLVE_NO_MAGICLINKS
 * refuses /proc/<pid>/root-style jumps, RESOLVE_NO_XDEV refuses crossing
 * into any other mount. Every operation runs with fsuid/fsgid set to the
 * sandbox user's host ids, so the kernel checks permissions exactly as
 * for a command (the daemon is single-threaded, so switching the fs ids
 * around one call affects nothing else). Nothing blocks: files are first
 * opened O_PATH (no side effects, even on a FIFO or a device), checked to
 * be regular files or directories, and only then reopened for I/O. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "api-files.h"
#include "log.h"
#include "sandbox-fs.h"
#include "session.h"
#include "util.h"

#define LIST_MAX 10000

typedef struct file_put file_put;
struct file_put {
        server *srv;
        char session_id[33]; /* looked up again at the end: it may have ended */
        int dir_fd;    /* O_PATH of the parent directory */
        int fd;        /* the temporary file being written */
        char tmp[64];  /* its name in dir_fd */
        char *name;    /* the final name in dir_fd */
        uint64_t size;
        int error;     /* first write error */
        bool committed;
};

/* Reopen an O_PATH fd for I/O: the same inode, whatever was renamed in
 * between. The magic link is the daemon's own /proc, not the sandbox's. */
static int reopen(int path_fd, int flags) {
        char p[64];
        int fd;

        snprintf(p, sizeof(p), "/proc/self/fd/%d", path_fd);
        fd = open(p, flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd;
}

static void reply_errno(request *r, int e, const char *what, const char *path) {
        switch (-e) {
        case ENOENT:
        case ENOTDIR:
                return reply_error(r, 404, "not_found", "%s %s: no such file or directory", what, path);
        case EACCES:
        case EPERM:
                return reply_error(r, 403, "forbidden", "%s %s: permission denied for the sandbox user", what, path);
        case EXDEV:
        case ELOOP:
                return reply_error(r, 400, "bad_request", "%s %s: the path leaves the sandbox's root filesystem", what,
                                   path);
        case ENOSPC:
        case EDQUOT:
        case EFBIG:
                return reply_error(r, 413, "too_large", "%s %s: no space left in the sandbox", what, path);
        case EISDIR:
                return reply_error(r, 409, "conflict", "%s %s: is a directory", what, path);
        case ENOTEMPTY:
        case EEXIST:
                return reply_error(r, 409, "conflict", "%s %s: directory not empty", what, path);
        case ENAMETOOLONG:
                return reply_error(r, 400, "bad_request", "%s %s: name too long", what, path);
        case EBADF:
                return reply_error(r, 409, "conflict", "the sandbox is not running");
        default:
                return reply_error(r, 500, "internal", "%s %s: %s", what, path, strerror(-e));
        }
}

/* The ?path= argument: absolute, no NUL (MHD decodes %00 into the value,
 * so the length is compared with strlen). */
static const char *request_path(request *r) {
        const char *v = NULL;
        size_t n = 0;

        if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, "path", 4, &v, &n) != MHD_YES || !v) {
                reply_error(r, 400, "bad_request", "the query parameter 'path' is required");
                return NULL;
        }
        if (strlen(v) != n) {
                reply_error(r, 400, "bad_request", "the path contains a NUL byte");
                return NULL;
        }
        if (v[0] != '/') {
                reply_error(r, 400, "bad_request", "the path must be absolute");
                return NULL;
        }
        if (n >= PATH_MAX) {
                reply_error(r, 400, "bad_request", "the path is too long");
                return NULL;
        }
        return v;
}

/* Split into the parent (resolved, O_PATH) and a plain last component. */
static int open_parent(request *r, session *s, const char *path, int *ret_dir, char **ret_name) {
        _cleanup_free_ char *copy = strdup(path);
        char *slash, *name;
        int k;

        if (!copy)
                return -ENOMEM;
        while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
                copy[strlen(copy) - 1] = 0;
        slash = strrchr(copy, '/');
        name = slash + 1;
        if (!*name || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        *slash = 0;
        {
                AS_SANDBOX_USER(s);
                k = sandbox_fs_open(s, *copy ? copy : "/", O_PATH | O_DIRECTORY, ret_dir);
        }
        if (k < 0)
                return k;
        *ret_name = strdup(name);
        if (!*ret_name) {
                *ret_dir = safe_close(*ret_dir);
                return -ENOMEM;
        }
        return 0;
}

static const char *mode_type(mode_t m) {
        return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "symlink" : "other";
}

static void list_dir(request *r, int path_fd, const char *path) {
        _cleanup_closedir_ DIR *d = NULL;
        json_t *entries = json_array();
        struct dirent *de;
        bool truncated = false;
        int fd;

        if (!entries)
                return reply_error(r, 500, "internal", "out of memory");
        {
                AS_SANDBOX_USER(r->session);
                fd = reopen(path_fd, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
        }
        if (fd < 0) {
                json_decref(entries);
                return reply_errno(r, fd, "list", path);
        }
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                json_decref(entries);
                return reply_error(r, 500, "internal", "fdopendir: %m");
        }
        while ((de = readdir(d))) {
                struct stat st;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (json_array_size(entries) >= LIST_MAX) {
                        truncated = true;
                        break;
                }
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                json_array_append_new(entries, json_pack("{s:s,s:s,s:I,s:i,s:I}", "name", de->d_name, "type",
                                                         mode_type(st.st_mode), "size", (json_int_t) st.st_size,
                                                         "mode", (int) (st.st_mode & 07777), "mtime",
                                                         (json_int_t) st.st_mtime));
        }
        reply_json(r, 200, json_pack("{s:s,s:o,s:b}", "path", path, "entries", entries, "truncated", truncated));
}

void api_files_get(request *r) {
        const char *path = request_path(r);
        _cleanup_close_ int pfd = -EBADF;
        struct stat st;
        struct MHD_Response *resp;
        int k, fd;

        if (!path)
                return;
        {
                AS_SANDBOX_USER(r->session);
                k = sandbox_fs_open(r->session, path, O_PATH, &pfd);
        }
        if (k < 0)
                return reply_errno(r, k, "read", path);
        if (fstat(pfd, &st) < 0)
                return reply_errno(r, -errno, "read", path);
        if (S_ISDIR(st.st_mode))
                return list_dir(r, pfd, path);
        if (!S_ISREG(st.st_mode))
                return reply_error(r, 400, "bad_request", "%s is not a regular file or a directory (%s)", path,
                                   S_ISLNK(st.st_mode) ? "symlink" : S_ISFIFO(st.st_mode) ? "fifo" : "special file");
        {
                AS_SANDBOX_USER(r->session);
                fd = reopen(pfd, O_RDONLY | O_NONBLOCK);
        }
        if (fd < 0)
                return reply_errno(r, fd, "read", path);
        /* MHD reads the file as it sends: nothing is buffered whole. */
        resp = MHD_create_response_from_fd(st.st_size, fd);
        if (!resp) {
                safe_close(fd);
                return reply_error(r, 500, "internal", "out of memory");
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
        reply_take_response(r, 200, resp);
}

void api_files_delete(request *r) {
        const char *path = request_path(r);
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *name = NULL;
        int k;

        if (!path)
                return;
        k = open_parent(r, r->session, path, &dfd, &name);
        if (k == -EINVAL)
                return reply_error(r, 400, "bad_request", "cannot delete %s", path);
        if (k < 0)
                return reply_errno(r, k, "delete", path);
        {
                AS_SANDBOX_USER(r->session);
                k = unlinkat(dfd, name, 0) < 0 ? -errno : 0;
                if (k == -EISDIR || k == -EPERM) {
                        /* EPERM is what unlink(2) says for a directory on Linux */
                        struct stat st;
                        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
                                k = unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
                }
        }
        if (k < 0)
                return reply_errno(r, k, "delete", path);
        log_session(LOG_INFO, r->session->id, "deleted %s", path);
        reply_empty(r, 204);
}

/* --- PUT: the body goes to a temporary file, renamed over the target when
 * complete, so that a failed or oversized upload leaves nothing behind. */

static void file_put_free(request *r, void *data) {
        file_put *p = data;
        if (!p)
                return;
        session *s = session_lookup(p->srv, p->session_id, 0, true);

        p->fd = safe_close(p->fd);
        /* If the session is gone, so is its whole filesystem. */
        if (!p->committed && p->dir_fd >= 0 && p->tmp[0] && s) {
                AS_SANDBOX_USER(s);
                (void) unlinkat(p->dir_fd, p->tmp, 0);
        }
        p->dir_fd = safe_close(p->dir_fd);
        free(p->name);
        free(p);
}

/* The upload is the request's: the temporary file goes if it ends early. */
static const request_op_ops file_put_ops = {
        .free = file_put_free,
};

void api_files_put_begin(request *r) {
        const char *path = request_path(r);
        file_put *p;
        char rnd[17];
        int k;

        if (!path)
                return;
        if (path[strlen(path) - 1] == '/')
                return reply_error(r, 400, "bad_request", "%s names a directory, not a file", path);
        p = calloc(1, sizeof(*p));
        if (!p)
                return reply_error(r, 500, "internal", "out of memory");
        p->srv = r->srv;
        strcpy(p->session_id, r->session->id);
        p->dir_fd = p->fd = -EBADF;
        request_set_op(r, &file_put_ops, p);
        k = open_parent(r, r->session, path, &p->dir_fd, &p->name);
        if (k == -EINVAL)
                return reply_error(r, 400, "bad_request", "cannot write to %s", path);
        if (k < 0)
                return reply_errno(r, k, "write", path);
        if (random_id_hex(rnd, 8) < 0)
                return reply_error(r, 500, "internal", "getrandom failed");
        snprintf(p->tmp, sizeof(p->tmp), ".sandpool-upload-%s", rnd);
        {
                AS_SANDBOX_USER(r->session);
                /* a plain name in an already resolved directory: nothing to
                 * resolve, O_NOFOLLOW|O_EXCL refuse anything pre-planted */
                p->fd = openat(p->dir_fd, p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                               0644);
                k = p->fd < 0 ? -errno : 0;
        }
        if (k < 0) {
                p->tmp[0] = 0;
                return reply_errno(r, k, "write", path);
        }
}

int api_files_put_data(request *r, const char *data, size_t len) {
        file_put *p = request_op(r);

        if (!p || p->fd < 0 || p->error)
                return 0;
        while (len > 0) {
                ssize_t n = write(p->fd, data, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        p->error = -errno;
                        return p->error;
                }
                data += n;
                len -= n;
                p->size += n;
        }
        return 0;
}

void api_files_put_end(request *r) {
        file_put *p = request_op(r);
        const char *path = request_path(r);
        int k;

        if (!path)
                return;
        if (!p || p->fd < 0)
                return reply_error(r, 500, "internal", "upload was not started");
        if (p->error)
                return reply_errno(r, p->error, "write", path);
        p->fd = safe_close(p->fd);
        {
                AS_SANDBOX_USER(r->session);
                k = renameat(p->dir_fd, p->tmp, p->dir_fd, p->name) < 0 ? -errno : 0;
        }
        if (k < 0)
                return reply_errno(r, k, "write", path);
        p->committed = true;
        log_session(LOG_INFO, r->session->id, "wrote %s (%" PRIu64 " bytes)", path, p->size);
        reply_json(r, 201, json_pack("{s:s,s:I}", "path", path, "size", (json_int_t) p->size));
}
