/* SPDX-License-Identifier: MIT */
/* E2B's file calls (e2b-fs.h). As in api-files.c: every path is resolved
 * by the kernel inside the sandbox's root (openat2 RESOLVE_IN_ROOT, no
 * magic links, no crossing mounts), every operation runs with the fs ids
 * of the sandbox user, and a last component is opened relative to its
 * resolved parent with O_NOFOLLOW. Nothing reads a FIFO or a device: a
 * read opens O_PATH first and checks for a regular file. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/fsuid.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "e2b-envd.h"
#include "e2b-fs.h"
#include "log.h"
#include "sandbox-fs.h"
#include "util.h"

#define HOME "/home/sandbox"
#define LIST_MAX 10000
#define DEPTH_MAX 32

/* An absolute path inside the sandbox: relative ones are in the home. */
static char *abs_path(const char *p) {
        char *r = NULL;

        if (!p || !*p)
                return strdup(HOME);
        if (p[0] == '/')
                return strdup(p);
        if (asprintf(&r, HOME "/%s", p) < 0)
                return NULL;
        return r;
}

/* The parent of path, resolved (O_PATH), and its last component. With
 * make, the missing directories on the way are made. */
static int open_parent(session *s, const char *path, bool make, int *ret_dir, char **ret_name) {
        _cleanup_free_ char *copy = strdup(path);
        char *slash, *name;
        int k;

        if (!copy)
                return -ENOMEM;
        while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
                copy[strlen(copy) - 1] = 0;
        slash = strrchr(copy, '/');
        if (!slash)
                return -EINVAL;
        name = slash + 1;
        if (!*name || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        *slash = 0;
        AS_SANDBOX_USER(s);
        if (make) {
                /* each prefix in turn: made if missing, then resolved again */
                for (char *p = copy + 1;; p++) {
                        if (*p && *p != '/')
                                continue;
                        char c = *p;
                        *p = 0;
                        _cleanup_close_ int d = -EBADF;
                        if (*copy && sandbox_fs_open(s, copy, O_PATH | O_DIRECTORY, &d) == -ENOENT) {
                                char *ls = strrchr(copy, '/');
                                _cleanup_close_ int pd = -EBADF;
                                *ls = 0;
                                k = sandbox_fs_open(s, *copy ? copy : "/", O_PATH | O_DIRECTORY, &pd);
                                *ls = '/';
                                if (k < 0)
                                        return k;
                                if (mkdirat(pd, ls + 1, 0755) < 0 && errno != EEXIST)
                                        return -errno;
                        }
                        *p = c;
                        if (!c)
                                break;
                }
        }
        k = sandbox_fs_open(s, *copy ? copy : "/", O_PATH | O_DIRECTORY, ret_dir);
        if (k < 0)
                return k;
        *ret_name = strdup(name);
        if (!*ret_name) {
                *ret_dir = safe_close(*ret_dir);
                return -ENOMEM;
        }
        return 0;
}

static const char *errno_code(int e) {
        switch (e) {
        case -ENOENT: return "not_found";
        case -EACCES: case -EPERM: return "permission_denied";
        case -EEXIST: return "already_exists";
        case -ENOTDIR: case -EISDIR: case -EINVAL: case -ELOOP: case -EXDEV: case -ENAMETOOLONG: case -ENOTEMPTY:
                return "invalid_argument";
        case -ENOSPC: case -EDQUOT: return "resource_exhausted";
        default: return "internal";
        }
}

static void reply_fs_errno(e2b_req *q, int e, const char *what, const char *path) {
        const char *code = errno_code(e);

        if (q->streaming || !streq(q->url, "/files"))
                return e2b_reply_connect_error(q, code, "cannot %s %s: %s", what, path, strerror(-e));
        e2b_reply_error(q, e2b_connect_status(code), "cannot %s %s: %s", what, path, strerror(-e));
}

/* ---- EntryInfo --------------------------------------------------------------------- */

static void perm_string(mode_t m, char out[11]) {
        static const char rwx[] = "rwxrwxrwx";
        out[0] = S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : '-';
        for (int i = 0; i < 9; i++)
                out[i + 1] = m & (1u << (8 - i)) ? rwx[i] : '-';
        out[10] = 0;
}

static json_t *entry_info(session *s, int dir_fd, const char *name, const char *path) {
        struct stat st;
        char perm[11], ids[2][16], target[4096];
        uid_t base = sp_sandbox_id_base(s->sb);

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0)
                return NULL;
        perm_string(st.st_mode, perm);
        snprintf(ids[0], sizeof(ids[0]), "%u", st.st_uid >= base ? st.st_uid - base : st.st_uid);
        snprintf(ids[1], sizeof(ids[1]), "%u", st.st_gid >= base ? st.st_gid - base : st.st_gid);
        const char *base_name = strrchr(path, '/');
        json_t *o = json_pack("{s:s,s:i,s:s,s:I,s:i,s:s,s:s,s:s,s:o}", "name",
                              base_name && base_name[1] ? base_name + 1 : path, "type",
                              S_ISDIR(st.st_mode) ? 2 : S_ISLNK(st.st_mode) ? 3 : 1, "path", path, "size",
                              (json_int_t) st.st_size, "mode", (int) (st.st_mode & 07777), "permissions", perm,
                              "owner", ids[0], "group", ids[1], "modifiedTime",
                              json_time((usec_t) st.st_mtim.tv_sec * USEC_PER_SEC + (usec_t) st.st_mtim.tv_nsec / 1000));
        if (o && S_ISLNK(st.st_mode)) {
                ssize_t n = readlinkat(dir_fd, name, target, sizeof(target) - 1);
                if (n >= 0) {
                        target[n] = 0;
                        json_object_set_new(o, "symlinkTarget", json_string(target));
                }
        }
        return o;
}

/* ---- GET /files -------------------------------------------------------------------- */

static const char *query(e2b_req *q, const char *key) {
        return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, key);
}

void e2b_fs_read(e2b_req *q, session *s) {
        _cleanup_free_ char *path = abs_path(query(q, "path"));
        _cleanup_close_ int pfd = -EBADF;
        struct stat st;
        int k, fd;

        if (!path)
                return e2b_reply_error(q, 500, "out of memory");
        {
                AS_SANDBOX_USER(s);
                k = sandbox_fs_open(s, path, O_PATH, &pfd);
        }
        if (k < 0)
                return reply_fs_errno(q, k, "read", path);
        if (fstat(pfd, &st) < 0)
                return reply_fs_errno(q, -errno, "read", path);
        if (!S_ISREG(st.st_mode))
                return e2b_reply_error(q, 400, "%s is not a regular file", path);
        {
                char p[64];
                AS_SANDBOX_USER(s);
                snprintf(p, sizeof(p), "/proc/self/fd/%d", pfd);
                fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        }
        if (fd < 0)
                return reply_fs_errno(q, -errno, "read", path);
        struct MHD_Response *r = MHD_create_response_from_fd((uint64_t) st.st_size, fd);
        if (!r) {
                safe_close(fd);
                return e2b_reply_error(q, 500, "out of memory");
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
        e2b_reply(q, 200, r);
}

/* ---- POST /files (multipart/form-data) ------------------------------------------------ */

typedef struct fs_write {
        e2b_req *q;
        session *s;              /* checked again at the end: it may have ended */
        char sid[33];
        struct MHD_PostProcessor *pp;
        char *cur_name;          /* the form file being written */
        int fd;
        uint64_t size, max;
        int error;
        char *error_path;
        json_t *written;         /* the answer: [{name, type, path}] */
} fs_write;

static void fs_write_free(void *op) {
        fs_write *w = op;

        if (w->pp)
                MHD_destroy_post_processor(w->pp);
        safe_close(w->fd);
        free(w->cur_name);
        free(w->error_path);
        json_decref(w->written);
        free(w);
}

static const e2b_op_ops fs_write_ops = { .free = fs_write_free };

static int write_open(fs_write *w, const char *filename) {
        const char *qp = query(w->q, "path");
        _cleanup_free_ char *path = abs_path(qp && *qp ? qp : filename);
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -EBADF;
        int k;

        w->fd = safe_close(w->fd);
        free(w->cur_name);
        w->cur_name = filename ? strdup(filename) : strdup("");
        if (!path || !w->cur_name)
                return -ENOMEM;
        k = open_parent(w->s, path, true, &dfd, &name);
        if (k >= 0) {
                AS_SANDBOX_USER(w->s);
                w->fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
                k = w->fd < 0 ? -errno : 0;
        }
        if (k >= 0) {
                struct stat st;
                if (fstat(w->fd, &st) < 0 || !S_ISREG(st.st_mode))
                        k = -EINVAL;
        }
        if (k < 0) {
                w->error_path = TAKE_PTR(path);
                return k;
        }
        const char *bn = strrchr(path, '/');
        json_array_append_new(w->written, json_pack("{s:s,s:s,s:s}", "name", bn ? bn + 1 : path, "type", "file",
                                                    "path", path));
        return 0;
}

static enum MHD_Result post_iterator(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                     const char *content_type, const char *transfer_encoding, const char *data,
                                     uint64_t off, size_t size) {
        fs_write *w = cls;

        if (w->error || !filename)
                return MHD_YES; /* a plain form field: not a file */
        if (off == 0 && (!w->cur_name || !streq(w->cur_name, filename) || w->fd < 0)) {
                int k = write_open(w, filename);
                if (k < 0) {
                        w->error = k;
                        return MHD_YES;
                }
        }
        w->size += size;
        if (w->size > w->max) {
                w->error = -EFBIG;
                return MHD_YES;
        }
        for (size_t done = 0; done < size;) {
                ssize_t n = write(w->fd, data + done, size - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        w->error = -errno;
                        return MHD_YES;
                }
                done += (size_t) n;
        }
        return MHD_YES;
}

static int fs_upload(e2b_req *q, const char *data, size_t n) {
        fs_write *w = q->op;

        if (MHD_post_process(w->pp, data, n) != MHD_YES && !w->error)
                w->error = -EINVAL;
        return 0;
}

void e2b_fs_write_begin(e2b_req *q) {
        session *s = e2b_envd_session(q); /* checked (and replied) by the caller already */
        fs_write *w = calloc(1, sizeof(*w));

        if (!w || !s)
                return free(w);
        *w = (fs_write) { .q = q, .s = s, .fd = -EBADF, .max = q->srv->config.cfg.max_upload,
                          .written = json_array() };
        memcpy(w->sid, s->id, sizeof(w->sid));
        e2b_set_op(q, &fs_write_ops, w);
        w->pp = MHD_create_post_processor(q->conn, 64 * 1024, post_iterator, w);
        if (w->pp)
                q->upload = fs_upload;
}

void e2b_fs_write_end(e2b_req *q, session *s) {
        fs_write *w = q->op;

        if (!w || !w->pp)
                return e2b_reply_error(q, 400, "POST /files takes multipart/form-data with a 'file' part");
        if (w->s != s || !streq(w->sid, s->id))
                return e2b_reply_error(q, 502, "the sandbox ended during the upload");
        w->fd = safe_close(w->fd);
        if (w->error == -EFBIG)
                return e2b_reply_error(q, 413, "the file is larger than max_upload (%" PRIu64 " bytes)", w->max);
        if (w->error)
                return reply_fs_errno(q, w->error, "write", w->error_path ? w->error_path : "the file");
        if (json_array_size(w->written) == 0)
                return e2b_reply_error(q, 400, "no file in the form");
        log_session(LOG_INFO, s->id, "wrote %zu file(s) through the E2B API", json_array_size(w->written));
        e2b_reply_json(q, 200, json_incref(w->written));
}

/* ---- the filesystem service --------------------------------------------------------- */

/* dir_fd (O_PATH) reopened to read, as the user. */
static DIR *open_dir(session *s, int dir_fd, const char *name) {
        AS_SANDBOX_USER(s);
        int fd = openat(dir_fd, *name ? name : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (fd >= 0 && !d)
                safe_close(fd);
        return d;
}

static int list_into(session *s, int dir_fd, const char *path, unsigned depth, json_t *out) {
        _cleanup_closedir_ DIR *d = open_dir(s, dir_fd, "");
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d)) && json_array_size(out) < LIST_MAX) {
                _cleanup_free_ char *child = NULL;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (asprintf(&child, "%s%s%s", path, streq(path, "/") ? "" : "/", de->d_name) < 0)
                        return -ENOMEM;
                json_t *e = entry_info(s, dirfd(d), de->d_name, child);
                if (!e)
                        continue;
                json_array_append_new(out, e);
                if (depth > 1 && de->d_type == DT_DIR) {
                        _cleanup_close_ int sub = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                (void) list_into(s, sub, child, depth - 1, out);
                }
        }
        return 0;
}

static int remove_tree(session *s, int dir_fd, const char *name, unsigned depth) {
        AS_SANDBOX_USER(s);
        if (unlinkat(dir_fd, name, 0) == 0)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -errno;
        if (depth == 0)
                return -ELOOP;
        {
                _cleanup_closedir_ DIR *d = open_dir(s, dir_fd, name);
                struct dirent *de;
                if (!d)
                        return -errno;
                while ((de = readdir(d)))
                        if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                                int k = remove_tree(s, dirfd(d), de->d_name, depth - 1);
                                if (k < 0)
                                        return k;
                        }
        }
        return unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

static void fs_stat(e2b_req *q, session *s, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        int k;

        {
                AS_SANDBOX_USER(s);
                k = sandbox_fs_open(s, path, O_PATH | O_NOFOLLOW, &fd);
        }
        if (k < 0)
                return reply_fs_errno(q, k, "stat", path);
        json_t *e = entry_info(s, fd, "", path);
        if (!e)
                return reply_fs_errno(q, -errno, "stat", path);
        e2b_connect_reply(q, json_pack("{s:o}", "entry", e));
}

static void fs_list(e2b_req *q, session *s, const char *path, json_t *msg) {
        json_t *dj = json_object_get(msg, "depth"), *out = json_array();
        unsigned depth = json_is_integer(dj) && json_integer_value(dj) > 0 ? (unsigned) MIN(json_integer_value(dj), DEPTH_MAX) : 1;
        _cleanup_close_ int fd = -EBADF;
        int k;

        {
                AS_SANDBOX_USER(s);
                k = sandbox_fs_open(s, path, O_PATH | O_DIRECTORY, &fd);
        }
        if (k >= 0)
                k = list_into(s, fd, path, depth, out);
        if (k < 0) {
                json_decref(out);
                return reply_fs_errno(q, k, "list", path);
        }
        e2b_connect_reply(q, json_pack("{s:o}", "entries", out));
}

static void fs_make_dir(e2b_req *q, session *s, const char *path) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *name = NULL;
        int k = open_parent(s, path, true, &dfd, &name);

        if (k >= 0) {
                AS_SANDBOX_USER(s);
                k = mkdirat(dfd, name, 0755) < 0 ? -errno : 0;
        }
        if (k == -EEXIST)
                return e2b_reply_connect_error(q, "already_exists", "%s already exists", path);
        if (k < 0)
                return reply_fs_errno(q, k, "make", path);
        e2b_connect_reply(q, json_pack("{s:o?}", "entry", entry_info(s, dfd, name, path)));
}

static void fs_remove(e2b_req *q, session *s, const char *path) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *name = NULL;
        int k = open_parent(s, path, false, &dfd, &name);

        if (k >= 0)
                k = remove_tree(s, dfd, name, DEPTH_MAX * 4);
        if (k < 0)
                return reply_fs_errno(q, k, "remove", path);
        e2b_connect_reply(q, json_object());
}

static void fs_move(e2b_req *q, session *s, json_t *msg) {
        _cleanup_free_ char *src = abs_path(json_string_value(json_object_get(msg, "source")));
        _cleanup_free_ char *dst = abs_path(json_string_value(json_object_get(msg, "destination")));
        _cleanup_close_ int sd = -EBADF, dd = -EBADF;
        _cleanup_free_ char *sn = NULL, *dn = NULL;
        int k;

        if (!src || !dst)
                return e2b_reply_connect_error(q, "internal", "out of memory");
        k = open_parent(s, src, false, &sd, &sn);
        if (k >= 0)
                k = open_parent(s, dst, true, &dd, &dn);
        if (k >= 0) {
                AS_SANDBOX_USER(s);
                k = renameat(sd, sn, dd, dn) < 0 ? -errno : 0;
        }
        if (k < 0)
                return reply_fs_errno(q, k, "move", src);
        e2b_connect_reply(q, json_pack("{s:o?}", "entry", entry_info(s, dd, dn, dst)));
}

/* ---- WatchDir: inotify on one directory (not recursive) ----------------------------- *
 * WatchDirResponse's oneof is at its top: {"start": {}}, {"filesystem":
 * {name, type}}, {"keepalive": {}} (a process event is one level deeper). */

typedef struct fs_watch {
        e2b_req *q;
        int ifd;
        sd_event_source *io, *keepalive;
        uint64_t keepalive_usec;
        bool start_sent, ended, keepalive_due;
        char *buf;
        size_t len, pos, cap;
} fs_watch;

static void fs_watch_free(void *op) {
        fs_watch *w = op;

        w->io = sd_event_source_disable_unref(w->io);
        w->keepalive = sd_event_source_disable_unref(w->keepalive);
        safe_close(w->ifd);
        free(w->buf);
        free(w);
}

static const e2b_op_ops fs_watch_ops = { .free = fs_watch_free };

static int watch_push(fs_watch *w, unsigned flags, json_t *o) {
        _cleanup_free_ char *j = o ? json_dumps(o, JSON_COMPACT) : NULL;

        json_decref(o);
        if (!j)
                return -ENOMEM;
        if (w->pos == w->len)
                w->pos = w->len = 0;
        return e2b_envelope_append(&w->buf, &w->len, &w->cap, flags, j, strlen(j));
}

/* inotify's events as envd (fsnotify) names them: 1 create, 2 write,
 * 3 remove, 4 rename, 5 chmod. */
static int event_type(uint32_t mask) {
        return mask & (IN_CREATE | IN_MOVED_TO) ? 1 : mask & IN_MODIFY ? 2 : mask & IN_DELETE ? 3
               : mask & IN_MOVED_FROM ? 4 : mask & IN_ATTRIB ? 5 : 0;
}

static void watch_read(fs_watch *w) {
        char ev[16 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n;

        while ((n = read(w->ifd, ev, sizeof(ev))) > 0)
                for (char *p = ev; p < ev + n;) {
                        const struct inotify_event *ie = (const struct inotify_event *) p;
                        p += sizeof(*ie) + ie->len;
                        if (ie->mask & (IN_IGNORED | IN_DELETE_SELF | IN_UNMOUNT | IN_MOVE_SELF)) {
                                /* the directory is gone: so is the watch */
                                if (!w->ended)
                                        (void) watch_push(w, 0x02, json_pack("{s:{s:s,s:s}}", "error", "code",
                                                                              "not_found", "message",
                                                                              "the watched directory is gone"));
                                w->ended = true;
                                return;
                        }
                        int t = event_type(ie->mask);
                        if (t && ie->len && !w->ended)
                                (void) watch_push(w, 0, json_pack("{s:{s:s,s:i}}", "filesystem", "name", ie->name,
                                                                  "type", t));
                }
}

static int on_watch_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        fs_watch *w = userdata;

        watch_read(w);
        if (w->ended)
                w->io = sd_event_source_disable_unref(w->io);
        e2b_resume(w->q);
        return 0;
}

static int on_watch_keepalive(sd_event_source *src, uint64_t usec, void *userdata) {
        fs_watch *w = userdata;

        w->keepalive_due = true;
        (void) sd_event_source_set_time_relative(src, w->keepalive_usec);
        e2b_resume(w->q);
        return 0;
}

static ssize_t watch_reader(void *cls, uint64_t pos, char *out, size_t max) {
        fs_watch *w = cls;

        if (w->q->aborted)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        if (!w->start_sent) {
                w->start_sent = true;
                if (watch_push(w, 0, json_pack("{s:{}}", "start")) < 0)
                        return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (w->keepalive_due) {
                w->keepalive_due = false;
                if (watch_push(w, 0, json_pack("{s:{}}", "keepalive")) < 0)
                        return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (w->pos < w->len) {
                size_t n = MIN(max, w->len - w->pos);
                memcpy(out, w->buf + w->pos, n);
                w->pos += n;
                return (ssize_t) n;
        }
        if (w->ended)
                return MHD_CONTENT_READER_END_OF_STREAM;
        e2b_suspend(w->q);
        return 0;
}

static void fs_watch_dir(e2b_req *q, session *s, const char *path, json_t *msg) {
        _cleanup_close_ int dfd = -EBADF, ifd = -EBADF;
        char p[64];
        int k;

        if (!q->streaming)
                return e2b_reply_connect_error(q, "invalid_argument", "WatchDir is a server-streaming call");
        if (json_is_true(json_object_get(msg, "recursive")))
                return e2b_reply_connect_error(q, "unimplemented", "sandpool does not watch directories recursively yet");
        k = sandbox_fs_open(s, path, O_PATH | O_DIRECTORY, &dfd);
        if (k < 0)
                return reply_fs_errno(q, k, "watch", path);
        ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (ifd < 0)
                return reply_fs_errno(q, -errno, "watch", path);
        /* the resolved directory itself, through our own /proc; read access
         * is checked against the sandbox user's fs ids (the caller's scope) */
        snprintf(p, sizeof(p), "/proc/self/fd/%d", dfd);
        if (inotify_add_watch(ifd, p, IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB |
                                      IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0)
                return reply_fs_errno(q, -errno, "watch", path);
        fs_watch *w = calloc(1, sizeof(*w));
        if (!w)
                return e2b_reply_connect_error(q, "internal", "out of memory");
        *w = (fs_watch) { .q = q, .ifd = TAKE_FD(ifd) };
        e2b_set_op(q, &fs_watch_ops, w);
        if (sd_event_add_io(q->srv->event, &w->io, w->ifd, EPOLLIN, on_watch_io, w) < 0)
                return e2b_reply_connect_error(q, "internal", "cannot watch %s", path);
        const char *ka = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Keepalive-Ping-Interval");
        unsigned long secs = ka ? strtoul(ka, NULL, 10) : 0;
        if (secs > 0) {
                w->keepalive_usec = MIN(secs, 3600ul) * USEC_PER_SEC;
                if (sd_event_add_time_relative(q->srv->event, &w->keepalive, CLOCK_MONOTONIC, w->keepalive_usec,
                                               USEC_PER_SEC, on_watch_keepalive, w) >= 0)
                        (void) sd_event_source_set_enabled(w->keepalive, SD_EVENT_ON);
        }
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, watch_reader, w, NULL);
        if (r)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/connect+json");
        e2b_reply(q, 200, r);
}

void e2b_fs_rpc(e2b_req *q, session *s, const char *name, json_t *msg) {
        _cleanup_free_ char *path = NULL;
        AS_SANDBOX_USER(s); /* every step, stat and listing included */

        if (streq(name, "Move"))
                return fs_move(q, s, msg);
        if (!streq(name, "Stat") && !streq(name, "ListDir") && !streq(name, "MakeDir") && !streq(name, "Remove") &&
            !streq(name, "WatchDir"))
                return e2b_reply_connect_error(q, "unimplemented", "sandpool does not implement "
                                               "filesystem.Filesystem/%s (polled watchers)", name);
        path = abs_path(json_string_value(json_object_get(msg, "path")));
        if (!path)
                return e2b_reply_connect_error(q, "internal", "out of memory");
        if (streq(name, "Stat"))
                return fs_stat(q, s, path);
        if (streq(name, "ListDir"))
                return fs_list(q, s, path, msg);
        if (streq(name, "MakeDir"))
                return fs_make_dir(q, s, path);
        if (streq(name, "WatchDir"))
                return fs_watch_dir(q, s, path, msg);
        fs_remove(q, s, path);
}
