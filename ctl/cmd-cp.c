/* SPDX-License-Identifier: MIT */
/* sandpoolctl cp: one file into or out of a session, through
 * PUT/GET /v1/sessions/{id}/files. The daemon resolves the path inside
 * the sandbox's root; the CLI only moves bytes. */
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

#define MEMORY_UPLOAD_MAX (256u * 1024u * 1024u)

static void help(void) {
        printf("Usage: sandpoolctl cp [--json] FILE ID:/PATH\n"
               "       sandpoolctl cp [--json] ID:/PATH FILE\n"
               "\n"
               "Copy one file into a session or out of it. FILE may be '-' for stdin or\n"
               "stdout. A PATH ending in '/' (or naming a directory) receives the file under\n"
               "its own name; so does a local directory. Directories are not copied.\n");
}

typedef struct remote {
        char id[65];
        const char *path;
} remote;

/* "ID:/path" -> remote; false for a local name. */
static bool parse_remote(const char *s, remote *ret) {
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t) (colon - s) : 0;

        if (!colon || n == 0 || n >= sizeof(ret->id))
                return false;
        memcpy(ret->id, s, n);
        ret->id[n] = 0;
        if (!session_id_valid(ret->id))
                return false;
        ret->path = colon + 1;
        return true;
}

static char *files_target(const remote *rm, const char *path) {
        _cleanup_free_ char *q = http_query_escape(path);
        char *t = NULL;

        if (!q || asprintf(&t, "/v1/sessions/%s/files?path=%s", rm->id, q) < 0)
                return NULL;
        return t;
}

static char *join_path(const char *dir, const char *name) {
        char *s = NULL;
        size_t n = strlen(dir);

        if (asprintf(&s, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name) < 0)
                return NULL;
        return s;
}

/* PUT the body: from fd when size >= 0 (streamed), else from data. */
static int put_file(ctl *c, const char *target, int fd, int64_t size, const char *data, size_t data_len,
                    api_reply *ret) {
        http_response resp;
        http_conn *conn;
        char buf[65536];
        int r;

        if (size < 0)
                return api_request(c, "PUT", target, "application/octet-stream", data, data_len, ret);
        r = api_connection(c, &conn);
        if (r < 0)
                return r;
        r = http_send_head(conn, "PUT", target, "application/octet-stream", size);
        for (int64_t left = size; r >= 0 && left > 0;) {
                ssize_t n = read(fd, buf, (size_t) MIN((int64_t) sizeof(buf), left));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        /* the file shrank or failed under us: the request
                         * cannot be completed, drop the connection */
                        api_disconnect(c);
                        return n < 0 ? negative_errno() : -ENODATA;
                }
                r = http_send_body(conn, buf, (size_t) n);
                left -= n;
        }
        /* The daemon may refuse the upload (no permission, too large) and
         * close before it has read the whole body: its answer is still
         * waiting in our receive queue, and says more than EPIPE would. */
        if (r >= 0 || r == -EPIPE || r == -ECONNRESET)
                r = http_read_head(conn, &resp);
        if (r < 0) {
                api_disconnect(c);
                return r;
        }
        *ret = (api_reply) { .status = resp.status, .retry_after = resp.retry_after };
        memcpy(ret->content_type, resp.content_type, sizeof(ret->content_type));
        r = http_read_body_all(conn, &resp, 1u << 20, &ret->body, &ret->body_len);
        if (r < 0 || resp.close)
                api_disconnect(c);
        if (r >= 0 && strncmp(ret->content_type, "application/json", 16) == 0)
                ret->json = json_loadb(ret->body, ret->body_len, 0, NULL);
        return r;
}

static int read_all_fd(int fd, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        ssize_t n;

        for (;;) {
                if (len == cap) {
                        char *p;
                        if (cap >= MEMORY_UPLOAD_MAX)
                                return -EFBIG;
                        cap = cap ? cap * 2 : 65536;
                        p = realloc(buf, cap);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* Is rm->path a directory in the session? (GET answers a JSON listing.) */
static bool remote_is_dir(ctl *c, const remote *rm) {
        _cleanup_free_ char *target = files_target(rm, rm->path);
        api_reply rep = {};
        bool dir;

        if (!target || api_request(c, "GET", target, NULL, NULL, 0, &rep) < 0)
                return false;
        dir = rep.status == 200 && json_is_object(rep.json) && json_object_get(rep.json, "entries");
        api_reply_done(&rep);
        return dir;
}

static int upload(ctl *c, const char *local, const remote *rm) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL, *path = NULL, *target = NULL;
        _cleanup_free_ char *base_copy = strdup(local);
        const char *base = base_copy ? basename(base_copy) : "file";
        size_t data_len = 0;
        int64_t size = -1;
        struct stat st;
        api_reply rep = {};
        int r;

        if (streq(local, "-"))
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else
                fd = open(local, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "sandpoolctl: cannot read %s: %m\n", local);
                return EXIT_NOT_FOUND;
        }
        if (S_ISDIR(st.st_mode)) {
                fprintf(stderr, "sandpoolctl: %s is a directory: cp copies single files (pack it with tar first)\n",
                        local);
                return EXIT_FAIL;
        }
        if (S_ISREG(st.st_mode))
                size = st.st_size; /* streamed straight from the file */
        else if ((r = read_all_fd(fd, &data, &data_len)) < 0) {
                fprintf(stderr, "sandpoolctl: cannot read %s: %s\n", local, strerror(-r));
                return EXIT_FAIL;
        }
        path = rm->path[0] && rm->path[strlen(rm->path) - 1] == '/' ? join_path(rm->path, base) : strdup(rm->path);
        target = path ? files_target(rm, path) : NULL;
        if (!target)
                return EXIT_FAIL;
        r = put_file(c, target, fd, size, data, data_len, &rep);
        if (r >= 0 && (rep.status == 403 || rep.status == 409) && size >= 0 && remote_is_dir(c, rm) &&
            lseek(fd, 0, SEEK_SET) == 0) {
                /* "cp f ID:/home/sandbox": the path is a directory, the
                 * file goes in it under its own name */
                _cleanup_free_ char *p2 = join_path(rm->path, base), *t2 = p2 ? files_target(rm, p2) : NULL;
                if (t2) {
                        api_reply_done(&rep);
                        r = put_file(c, t2, fd, size, NULL, 0, &rep);
                }
        }
        if (r < 0)
                return r == -ENODATA ? (fprintf(stderr, "sandpoolctl: %s changed while it was read\n", local), EXIT_FAIL)
                                     : report_transport_error(c, r, "upload");
        if (rep.status != 200 && rep.status != 201 && rep.status != 204) {
                r = report_http_error(c, &rep, "upload", true);
                api_reply_done(&rep);
                return r;
        }
        if (c->json && rep.json)
                print_json(rep.json);
        api_reply_done(&rep);
        return EXIT_OK;
}

/* Write the body to a temporary file beside dest, renamed over it at the
 * end: an interrupted copy never leaves half a file under the real name. */
static int download_body(http_conn *conn, http_response *resp, const char *dest) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        char buf[65536];
        ssize_t n;
        int r = 0;

        if (streq(dest, "-"))
                fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        else {
                if (asprintf(&tmp, "%s.sandpoolctl-XXXXXX", dest) < 0)
                        return -ENOMEM;
                fd = mkostemp(tmp, O_CLOEXEC);
        }
        if (fd < 0)
                return negative_errno();
        while ((n = http_read_body(conn, resp, buf, sizeof(buf))) > 0)
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(fd, buf + off, (size_t) (n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0) {
                                r = negative_errno();
                                goto fail;
                        }
                        off += w;
                }
        if (n < 0) {
                r = (int) n;
                goto fail;
        }
        if (tmp) {
                /* mkostemp made it 0600: give it the mode a new file gets */
                mode_t mask = umask(0);
                umask(mask);
                if (fchmod(fd, 0666 & ~mask) < 0 || rename(tmp, dest) < 0) {
                        r = negative_errno();
                        goto fail;
                }
        }
        return 0;
fail:
        if (tmp)
                unlink(tmp);
        return r;
}

static int download(ctl *c, const remote *rm, const char *local) {
        _cleanup_free_ char *target = files_target(rm, rm->path), *dest = NULL;
        _cleanup_free_ char *base_copy = strdup(rm->path);
        http_response resp;
        http_conn *conn;
        struct stat st;
        int r;

        if (!target || !base_copy)
                return EXIT_FAIL;
        if (!streq(local, "-") && stat(local, &st) == 0 && S_ISDIR(st.st_mode))
                dest = join_path(local, basename(base_copy));
        else
                dest = strdup(local);
        if (!dest)
                return EXIT_FAIL;
        r = api_connection(c, &conn);
        if (r >= 0)
                r = http_send_head(conn, "GET", target, NULL, -1);
        if (r >= 0)
                r = http_read_head(conn, &resp);
        if (r < 0)
                return report_transport_error(c, r, "download");
        if (resp.status != 200 || strncmp(resp.content_type, "application/json", 16) == 0) {
                api_reply rep = { .status = resp.status };
                r = http_read_body_all(conn, &resp, 16u << 20, &rep.body, &rep.body_len);
                api_disconnect(c);
                if (r < 0)
                        return report_transport_error(c, r, "download");
                rep.json = json_loadb(rep.body, rep.body_len, 0, NULL);
                if (rep.status == 200)
                        fprintf(stderr, "sandpoolctl: %s:%s is a directory: cp copies single files\n", rm->id,
                                rm->path);
                r = rep.status == 200 ? EXIT_FAIL : report_http_error(c, &rep, "download", true);
                api_reply_done(&rep);
                return r;
        }
        r = download_body(conn, &resp, dest);
        if (r < 0 || resp.close)
                api_disconnect(c);
        if (r == -ECONNRESET || r == -EPROTO || r == -ETIMEDOUT)
                return report_transport_error(c, r, "download");
        if (r < 0) {
                fprintf(stderr, "sandpoolctl: cannot write %s: %s\n", dest, strerror(-r));
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

int cmd_cp(ctl *c, int argc, char **argv) {
        remote src, dst;
        bool src_remote, dst_remote;

        int e = parse_help_only(argc, argv, help);
        if (e >= 0)
                return e;
        if (argc - optind != 2) {
                usage_error("cp", "a source and a destination are needed");
                return EXIT_USAGE;
        }
        src_remote = parse_remote(argv[optind], &src);
        dst_remote = parse_remote(argv[optind + 1], &dst);
        if (src_remote == dst_remote) {
                usage_error("cp", "exactly one side must be in a session, written ID:/path");
                return EXIT_USAGE;
        }
        if ((src_remote ? src.path : dst.path)[0] != '/') {
                usage_error("cp", "the path in the session must be absolute (ID:/path)");
                return EXIT_USAGE;
        }
        return dst_remote ? upload(c, argv[optind], &dst) : download(c, &src, argv[optind + 1]);
}
