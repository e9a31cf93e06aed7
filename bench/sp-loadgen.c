/* SPDX-License-Identifier: MIT */
/*
 * sp-loadgen: the load generator of the sandpool benchmarks.
 *
 * It talks HTTP/1.1 with keep-alive over the daemon's AF_UNIX socket, one
 * blocking connection per client thread, and times each request from the
 * first byte written to the last byte read, with CLOCK_MONOTONIC. Nothing
 * interpreted sits in the measured path: JSON answers are parsed only after
 * the clock has stopped.
 *
 * It also times whole commands (fork + exec + wait), so that the daemon's
 * figures and their comparators (crun, runc, bwrap, nsenter, bare
 * /bin/true) are taken by the same process, in the same run, interleaved
 * round by round: on a loaded machine two figures taken minutes apart are not
 * comparable, two figures taken in alternation are.
 *
 * Every result is one JSON object per line on stdout; the report script
 * (bench/run-bench) reads them. Diagnostics go to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/sched.h>
#include <sched.h>

extern char **environ;

#define MAX_PROBES 16
#define MAX_ARGS 64
#define MAX_REPORTED_ERRORS 5
#define SESSION_ID_MAX 128

static const char *socket_path = "/run/sandpool/sandpool.sock";
/* Set when the socket refuses connections: the daemon is gone, and a
 * comparison stops rather than timing failures. */
static atomic_bool daemon_gone;
static atomic_int reported_errors;

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

/* Only the first few failures are printed: under overload a flood of
 * identical messages would hide the summary. They are all counted. */
__attribute__((format(printf, 1, 2)))
static void report_error(const char *fmt, ...) {
        va_list ap;

        if (atomic_fetch_add(&reported_errors, 1) >= MAX_REPORTED_ERRORS)
                return;
        va_start(ap, fmt);
        fputs("sp-loadgen: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* ---- latency samples ---------------------------------------------------- */

struct samples {
        double *us;
        size_t n, cap;
        unsigned errors;
};

static int samples_add(struct samples *s, double us) {
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 1024;
                double *v = realloc(s->us, cap * sizeof(double));

                if (!v)
                        return -ENOMEM;
                s->us = v;
                s->cap = cap;
        }
        s->us[s->n++] = us;
        return 0;
}

static int samples_merge(struct samples *into, const struct samples *from) {
        for (size_t i = 0; i < from->n; i++) {
                int r = samples_add(into, from->us[i]);

                if (r < 0)
                        return r;
        }
        into->errors += from->errors;
        return 0;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *v, size_t n, double p) {
        size_t rank;

        if (n == 0)
                return NAN;
        rank = (size_t) ceil(p / 100.0 * (double) n);
        if (rank < 1)
                rank = 1;
        return v[rank - 1];
}

/* One result line. wall_s <= 0 means "no rate". */
static void print_result(const char *name, struct samples *s, double wall_s, const char *extra) {
        double sum = 0;

        qsort(s->us, s->n, sizeof(double), cmp_double);
        for (size_t i = 0; i < s->n; i++)
                sum += s->us[i];
        printf("{\"name\":\"%s\",\"n\":%zu,\"errors\":%u", name, s->n, s->errors);
        if (s->n > 0)
                printf(",\"p10_us\":%.1f,\"p25_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
                       "\"mean_us\":%.1f,\"min_us\":%.1f,\"max_us\":%.1f",
                       percentile(s->us, s->n, 10), percentile(s->us, s->n, 25),
                       percentile(s->us, s->n, 50), percentile(s->us, s->n, 90),
                       percentile(s->us, s->n, 99), sum / (double) s->n, s->us[0], s->us[s->n - 1]);
        if (wall_s > 0)
                printf(",\"wall_s\":%.3f,\"rate_per_s\":%.1f", wall_s, (double) s->n / wall_s);
        if (extra)
                printf(",%s", extra);
        printf("}\n");
        fflush(stdout);
}

/* ---- HTTP/1.1 over AF_UNIX ---------------------------------------------- */

struct conn {
        int fd;
        char buf[16384];
        size_t len;             /* bytes in buf not yet consumed */
};

struct response {
        int status;
        char *body;             /* NUL-terminated, malloc'd */
        size_t body_len;
};

static void response_clear(struct response *r) {
        free(r->body);
        *r = (struct response) {};
}

static int conn_open(struct conn *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        c->len = 0;
        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;

                if (r == -ECONNREFUSED || r == -ENOENT)
                        atomic_store(&daemon_gone, true);
                close(fd);
                return r;
        }
        c->fd = fd;
        return 0;
}

static void conn_close(struct conn *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        c->len = 0;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* More bytes into c->buf; 0 on EOF. */
static ssize_t conn_fill(struct conn *c) {
        ssize_t k;

        if (c->len == sizeof(c->buf))
                return -E2BIG;
        do
                k = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        c->len += (size_t) k;
        return k;
}

static void conn_consume(struct conn *c, size_t n) {
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
}

static int body_append(struct response *r, const char *p, size_t n) {
        char *b = realloc(r->body, r->body_len + n + 1);

        if (!b)
                return -ENOMEM;
        memcpy(b + r->body_len, p, n);
        r->body = b;
        r->body_len += n;
        r->body[r->body_len] = 0;
        return 0;
}

/* Read exactly n body bytes (some may already be buffered). */
static int read_body_bytes(struct conn *c, struct response *r, size_t n) {
        while (n > 0) {
                size_t take;
                int q;

                if (c->len == 0) {
                        ssize_t k = conn_fill(c);

                        if (k <= 0)
                                return k == 0 ? -ECONNRESET : (int) k;
                }
                take = c->len < n ? c->len : n;
                q = body_append(r, c->buf, take);
                if (q < 0)
                        return q;
                conn_consume(c, take);
                n -= take;
        }
        return 0;
}

/* One CRLF-terminated line from the buffer, without the CRLF, into line. */
static int read_line(struct conn *c, char *line, size_t size) {
        for (;;) {
                char *e = memmem(c->buf, c->len, "\r\n", 2);

                if (e) {
                        size_t n = (size_t) (e - c->buf);

                        if (n >= size)
                                return -E2BIG;
                        memcpy(line, c->buf, n);
                        line[n] = 0;
                        conn_consume(c, n + 2);
                        return 0;
                }
                ssize_t k = conn_fill(c);
                if (k <= 0)
                        return k == 0 ? -ECONNRESET : (int) k;
        }
}

static int read_chunked(struct conn *c, struct response *r) {
        char line[128];

        for (;;) {
                unsigned long size;
                int q = read_line(c, line, sizeof(line));

                if (q < 0)
                        return q;
                size = strtoul(line, NULL, 16);
                if (size == 0)
                        break;
                q = read_body_bytes(c, r, size);
                if (q < 0)
                        return q;
                q = read_line(c, line, sizeof(line));
                if (q < 0)
                        return q;
        }
        /* Trailers, up to the empty line. */
        do {
                int q = read_line(c, line, sizeof(line));

                if (q < 0)
                        return q;
        } while (line[0]);
        return 0;
}

static int read_response(struct conn *c, struct response *r, bool *ret_close) {
        char line[1024];
        long content_length = -1;
        bool chunked = false, close_after = false;
        int q;

        q = read_line(c, line, sizeof(line));
        if (q < 0)
                return q;
        if (sscanf(line, "HTTP/1.%*d %d", &r->status) != 1)
                return -EPROTO;
        for (;;) {
                q = read_line(c, line, sizeof(line));
                if (q < 0)
                        return q;
                if (!line[0])
                        break;
                if (!strncasecmp(line, "Content-Length:", 15))
                        content_length = strtol(line + 15, NULL, 10);
                else if (!strncasecmp(line, "Transfer-Encoding:", 18) && strcasestr(line, "chunked"))
                        chunked = true;
                else if (!strncasecmp(line, "Connection:", 11) && strcasestr(line, "close"))
                        close_after = true;
        }
        q = body_append(r, "", 0);
        if (q < 0)
                return q;
        if (chunked)
                q = read_chunked(c, r);
        else if (content_length > 0)
                q = read_body_bytes(c, r, (size_t) content_length);
        *ret_close = close_after;
        return q;
}

/*
 * One request, one response. A keep-alive connection the server closed
 * while idle shows up as a failed write or an EOF before any byte of the
 * answer: then the request is sent again once on a new connection.
 */
static int http_request(struct conn *c, const char *method, const char *target, const char *body,
                        struct response *ret) {
        char head[512];
        size_t body_len = body ? strlen(body) : 0;
        int n, q = 0;

        n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: sandpool\r\n%sContent-Length: %zu\r\n\r\n",
                     method, target, body ? "Content-Type: application/json\r\n" : "", body_len);
        if (n < 0 || (size_t) n >= sizeof(head))
                return -E2BIG;
        for (int attempt = 0; attempt < 2; attempt++) {
                bool close_after = false;

                response_clear(ret);
                if (c->fd < 0) {
                        q = conn_open(c);
                        if (q < 0)
                                return q;
                }
                q = write_all(c->fd, head, (size_t) n);
                if (q >= 0 && body_len > 0)
                        q = write_all(c->fd, body, body_len);
                if (q >= 0)
                        q = read_response(c, ret, &close_after);
                if (q >= 0) {
                        if (close_after)
                                conn_close(c);
                        return 0;
                }
                conn_close(c);
                if (ret->status != 0 || (q != -EPIPE && q != -ECONNRESET))
                        break;
        }
        return q;
}

/* ---- the API calls ------------------------------------------------------- */

static int check_status(const char *what, int q, const struct response *r, int want) {
        if (q < 0) {
                report_error("%s: %s", what, strerror(-q));
                return q;
        }
        if (r->status != want) {
                report_error("%s: HTTP %d: %.200s", what, r->status, r->body ? r->body : "");
                return -EPROTO;
        }
        return 0;
}

/* Timed: the POST only. The id (and, when asked, the sandbox's name) is
 * parsed after the clock has stopped. */
static int api_session_create_named(struct conn *c, char ret_id[static SESSION_ID_MAX], char *ret_sandbox,
                                    double *ret_us) {
        struct response r = {};
        json_t *root, *id, *sb;
        uint64_t t0 = now_ns();
        int q = http_request(c, "POST", "/v1/sessions", NULL, &r);

        *ret_us = (double) (now_ns() - t0) / 1e3;
        q = check_status("POST /v1/sessions", q, &r, 201);
        if (q < 0) {
                response_clear(&r);
                return q;
        }
        root = json_loads(r.body, 0, NULL);
        id = json_object_get(root, "id");
        if (!json_is_string(id) || strlen(json_string_value(id)) >= SESSION_ID_MAX)
                q = -EPROTO;
        else
                strcpy(ret_id, json_string_value(id));
        if (q >= 0 && ret_sandbox) {
                sb = json_object_get(root, "sandbox");
                if (!json_is_string(sb) || strlen(json_string_value(sb)) >= SESSION_ID_MAX)
                        q = -EPROTO;
                else
                        strcpy(ret_sandbox, json_string_value(sb));
        }
        json_decref(root);
        response_clear(&r);
        return q;
}

static int api_session_create(struct conn *c, char ret_id[static SESSION_ID_MAX], double *ret_us) {
        return api_session_create_named(c, ret_id, NULL, ret_us);
}

/* GET /v1/health on the same keep-alive connection: an HTTP round trip of
 * the daemon that does no work, the comparator of every other request. */
static int api_health_once(struct conn *c, double *ret_us) {
        struct response r = {};
        uint64_t t0 = now_ns();
        int q = http_request(c, "GET", "/v1/health", NULL, &r);

        *ret_us = (double) (now_ns() - t0) / 1e3;
        q = check_status("GET /v1/health", q, &r, 200);
        response_clear(&r);
        return q;
}

static int api_session_delete(struct conn *c, const char *id, double *ret_us) {
        struct response r = {};
        char target[64 + SESSION_ID_MAX];
        uint64_t t0;
        int q;

        snprintf(target, sizeof(target), "/v1/sessions/%s", id);
        t0 = now_ns();
        q = http_request(c, "DELETE", target, NULL, &r);
        *ret_us = (double) (now_ns() - t0) / 1e3;
        q = check_status("DELETE /v1/sessions", q, &r, 204);
        response_clear(&r);
        return q;
}

/* POST an exec (id != NULL) or a one-shot run; the command must exit 0. */
static int api_command(struct conn *c, const char *id, const char *body, double *ret_us) {
        struct response r = {};
        char target[64 + SESSION_ID_MAX];
        json_t *root, *code;
        uint64_t t0;
        int q;

        if (id)
                snprintf(target, sizeof(target), "/v1/sessions/%s/exec", id);
        else
                snprintf(target, sizeof(target), "/v1/run");
        t0 = now_ns();
        q = http_request(c, "POST", target, body, &r);
        *ret_us = (double) (now_ns() - t0) / 1e3;
        q = check_status(id ? "POST exec" : "POST /v1/run", q, &r, 200);
        if (q < 0) {
                response_clear(&r);
                return q;
        }
        root = json_loads(r.body, 0, NULL);
        code = json_object_get(root, "exit_code");
        if (!json_is_integer(code) || json_integer_value(code) != 0) {
                report_error("%s: command failed: %.200s", target, r.body);
                q = -EPROTO;
        }
        json_decref(root);
        response_clear(&r);
        return q;
}

/*
 * With --wait-warm: wait, untimed, until the daemon is at rest with a warm
 * sandbox ready (pool.available >= 1, nothing warming or being destroyed),
 * so that a timed session or run measures the hand-out from a warm pool,
 * not the refill of the previous round. 0 when ready, -ETIMEDOUT after 30 s.
 */
static bool wait_warm;

static int json_pool_count(json_t *pool, const char *key) {
        json_t *v = json_object_get(pool, key);

        return json_is_integer(v) ? (int) json_integer_value(v) : 0;
}

static int api_wait_warm(struct conn *c) {
        uint64_t deadline = now_ns() + UINT64_C(30000000000);

        while (now_ns() < deadline) {
                struct response r = {};
                json_t *root, *pool;
                bool ready = false;
                int q = http_request(c, "GET", "/v1/health", NULL, &r);

                if (q >= 0 && r.status == 200) {
                        root = json_loads(r.body, 0, NULL);
                        pool = json_object_get(root, "pool");
                        ready = json_pool_count(pool, "available") >= 1 && json_pool_count(pool, "warming") == 0 &&
                                json_pool_count(pool, "destroying") == 0;
                        json_decref(root);
                }
                response_clear(&r);
                if (ready)
                        return 0;
                if (atomic_load(&daemon_gone))
                        return -ECONNREFUSED;
                usleep(2000);
        }
        report_error("--wait-warm: no warm sandbox at rest within 30 s");
        return -ETIMEDOUT;
}

/* ---- whole commands -------------------------------------------------------- */

static int devnull_fd = -1;

/*
 * fork + exec + wait of argv, its stdio on /dev/null. Every "{i}" in an
 * argument becomes a number unique in this run (container names).
 */
static int run_command(char *const *argv, unsigned long iter, double *ret_us) {
        char *args[MAX_ARGS + 1] = {};
        char subst[MAX_ARGS][256];
        posix_spawn_file_actions_t fa;
        uint64_t t0;
        pid_t pid;
        int q, status;

        for (size_t i = 0; argv[i] && i < MAX_ARGS; i++) {
                const char *m = strstr(argv[i], "{i}");

                if (!m) {
                        args[i] = argv[i];
                        continue;
                }
                snprintf(subst[i], sizeof(subst[i]), "%.*s%d-%lu%s", (int) (m - argv[i]), argv[i],
                         (int) getpid(), iter, m + 3);
                args[i] = subst[i];
        }
        posix_spawn_file_actions_init(&fa);
        for (int fd = 0; fd <= 2; fd++)
                posix_spawn_file_actions_adddup2(&fa, devnull_fd, fd);
        t0 = now_ns();
        q = posix_spawnp(&pid, args[0], &fa, NULL, args, environ);
        if (q == 0)
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
        *ret_us = (double) (now_ns() - t0) / 1e3;
        posix_spawn_file_actions_destroy(&fa);
        if (q != 0) {
                report_error("%s: %s", args[0], strerror(q));
                return -q;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                report_error("%s %s: exit status 0x%x", args[0], args[1] ? args[1] : "", status);
                return -EPROTO;
        }
        return 0;
}

/* ---- destroy: the daemon's, and the same kill and reap by hand ------------ */

#define MAX_CGROUP_DIRS 8

/* The directories that hold the daemon's sandbox cgroups, one per hierarchy
 * (--cgroup-dirs): a destroy is over when the sandbox's cgroup is gone from
 * every one of them, i.e. its PID 1 was killed and reaped and its cgroup
 * removed. */
static char *cgroup_dirs[MAX_CGROUP_DIRS];
static int n_cgroup_dirs;

static int split_dirs(char *list, char **dirs, int max) {
        char *save = NULL;
        int n = 0;

        for (char *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
                if (n == max)
                        return -E2BIG;
                dirs[n++] = d;
        }
        return n;
}

static int sleep_us(long us) {
        struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

        return nanosleep(&ts, NULL);
}

/* Watches, set before the clock starts: IN_DELETE of `name` below each dir. */
static int watch_dirs(char *const *dirs, int n) {
        int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

        if (fd < 0)
                return -errno;
        for (int i = 0; i < n; i++)
                if (inotify_add_watch(fd, dirs[i], IN_DELETE | IN_ONLYDIR) < 0) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
        return fd;
}

/* Until dir/name is gone in every dir: the inotify fd wakes us at each
 * removal, so the clock stops when the last one goes, not at a poll tick. */
static int wait_gone(int ifd, char *const *dirs, int n, const char *name, int timeout_ms) {
        uint64_t deadline = now_ns() + (uint64_t) timeout_ms * UINT64_C(1000000);
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

        for (;;) {
                bool all_gone = true;
                struct pollfd pfd = { .fd = ifd, .events = POLLIN };
                uint64_t now;

                for (int i = 0; i < n && all_gone; i++) {
                        char path[PATH_MAX];

                        snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
                        all_gone = access(path, F_OK) < 0 && errno == ENOENT;
                }
                if (all_gone)
                        return 0;
                now = now_ns();
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(&pfd, 1, (int) ((deadline - now) / 1000000) + 1) < 0 && errno != EINTR)
                        return -errno;
                while (read(ifd, buf, sizeof(buf)) > 0)
                        ;       /* drained; the access() above decides */
        }
}

/*
 * The daemon's destroy: a session is made and the pool left at rest
 * (untimed), then the clock runs from the DELETE until the sandbox's cgroup
 * has left every hierarchy. *ret_answer_us is the DELETE's answer alone.
 */
static int api_destroy(struct conn *c, double *ret_us, double *ret_answer_us) {
        char id[SESSION_ID_MAX], name[SESSION_ID_MAX];
        double untimed;
        uint64_t t0;
        int ifd, q;

        if (n_cgroup_dirs == 0) {
                report_error("api:destroy needs --cgroup-dirs");
                return -EINVAL;
        }
        q = api_session_create_named(c, id, name, &untimed);
        if (q < 0)
                return q;
        if (wait_warm)
                (void) api_wait_warm(c);
        ifd = watch_dirs(cgroup_dirs, n_cgroup_dirs);
        if (ifd < 0) {
                report_error("inotify on the cgroup dirs: %s", strerror(-ifd));
                (void) api_session_delete(c, id, &untimed);
                return ifd;
        }
        t0 = now_ns();
        q = api_session_delete(c, id, ret_answer_us);
        if (q >= 0) {
                q = wait_gone(ifd, cgroup_dirs, n_cgroup_dirs, name, 10000);
                if (q < 0)
                        report_error("sandbox %s: cgroup still there 10 s after its DELETE", name);
        }
        *ret_us = (double) (now_ns() - t0) / 1e3;
        close(ifd);
        return q;
}

/* PID 1 of a new pid namespace, as a sandbox's is: it waits to be killed. */
static pid_t clone_pid1(int *ret_pidfd) {
        struct clone_args args = {
                .flags = CLONE_PIDFD | CLONE_NEWPID,
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                .exit_signal = SIGCHLD,
        };
        long pid = syscall(SYS_clone3, &args, sizeof(args));

        if (pid == 0) {
                for (;;)
                        pause();
        }
        return (pid_t) pid;
}

static int write_pid(const char *dir, pid_t pid) {
        char buf[32];
        int dfd, fd, n, q = 0;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        fd = openat(dfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
        q = fd < 0 ? -errno : 0;
        close(dfd);
        if (fd < 0)
                return q;
        n = snprintf(buf, sizeof(buf), "%d\n", (int) pid);
        if (write(fd, buf, (size_t) n) != n)
                q = -errno;
        close(fd);
        return q;
}

/* rmdir with the daemon's retry: EBUSY while the killed task is still
 * leaving the cgroup (100 us sleeps, then 2 ms, for at most 1 s). */
static int rmdir_cgroup(const char *path) {
        uint64_t deadline = now_ns() + UINT64_C(1000000000);

        for (unsigned i = 0;; i++) {
                if (rmdir(path) == 0 || errno == ENOENT)
                        return 0;
                if (errno != EBUSY || now_ns() >= deadline)
                        return -errno;
                sleep_us(i < 10 ? 100 : 2000);
        }
}

/*
 * The same destroy by hand: PID 1 of its own pid namespace, in a cgroup of
 * its own in each hierarchy below the dirs given (made untimed), killed
 * with pidfd_send_signal(SIGKILL), reaped with waitid(P_PIDFD) and its
 * cgroups removed, as the daemon does it; timed from the kill to the last
 * rmdir.
 */
static int hand_kill(char *const *dirs, int n, unsigned long iter, double *ret_us) {
        char paths[MAX_CGROUP_DIRS][PATH_MAX];
        siginfo_t si = {};
        int pidfd = -1, q = 0;
        uint64_t t0;
        pid_t pid;

        for (int i = 0; i < n; i++) {
                snprintf(paths[i], sizeof(paths[i]), "%s/h-%d-%lu", dirs[i], (int) getpid(), iter);
                if (mkdir(paths[i], 0755) < 0 && errno != EEXIST) {
                        q = -errno;
                        report_error("mkdir %s: %s", paths[i], strerror(-q));
                        for (int k = 0; k < i; k++)
                                (void) rmdir(paths[k]);
                        return q;
                }
        }
        pid = clone_pid1(&pidfd);
        if (pid < 0) {
                q = -errno;
                report_error("clone3: %s", strerror(-q));
        }
        for (int i = 0; i < n && q >= 0; i++) {
                q = write_pid(paths[i], pid);
                if (q < 0)
                        report_error("%s/cgroup.procs: %s", paths[i], strerror(-q));
        }
        t0 = now_ns();
        if (pid > 0) {
                if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0 && q >= 0)
                        q = -errno;
                while (syscall(SYS_waitid, P_PIDFD, pidfd, &si, WEXITED, NULL) < 0 && errno == EINTR)
                        ;
                close(pidfd);
        }
        for (int i = 0; i < n; i++) {
                int r = rmdir_cgroup(paths[i]);

                if (r < 0 && q >= 0) {
                        report_error("rmdir %s: %s", paths[i], strerror(-r));
                        q = r;
                }
        }
        *ret_us = (double) (now_ns() - t0) / 1e3;
        return q;
}

/* ---- compare: probes interleaved round by round -------------------------- */

enum probe_kind {
        PROBE_CMD, PROBE_SESSION, PROBE_CREATE, PROBE_DELETE, PROBE_EXEC, PROBE_RUN,
        PROBE_HEALTH, PROBE_DESTROY, PROBE_KILL,
};

struct probe {
        char name[64];
        enum probe_kind kind;
        char *argv[MAX_ARGS + 1];
        char session[SESSION_ID_MAX];
        struct samples s;
        struct samples answer;  /* api:destroy: the DELETE's answer alone */
        double last_answer_us;
        char *dirs[MAX_CGROUP_DIRS];
        int n_dirs;
};

static const char exec_true_body[] = "{\"argv\":[\"/bin/true\"]}";

/* NAME=api:session | api:create | api:delete | api:exec | api:run | api:health |
 *      api:destroy | kill:DIR,DIR... | cmd:ARG ARG ... */
static int probe_parse(struct probe *p, char *spec) {
        char *eq = strchr(spec, '='), *rest, *save = NULL;
        size_t n = 0;

        if (!eq || eq == spec || (size_t) (eq - spec) >= sizeof(p->name))
                return -EINVAL;
        memcpy(p->name, spec, (size_t) (eq - spec));
        rest = eq + 1;
        if (!strcmp(rest, "api:session"))
                p->kind = PROBE_SESSION;
        else if (!strcmp(rest, "api:create"))
                p->kind = PROBE_CREATE;
        else if (!strcmp(rest, "api:delete"))
                p->kind = PROBE_DELETE;
        else if (!strcmp(rest, "api:exec"))
                p->kind = PROBE_EXEC;
        else if (!strcmp(rest, "api:run"))
                p->kind = PROBE_RUN;
        else if (!strcmp(rest, "api:health"))
                p->kind = PROBE_HEALTH;
        else if (!strcmp(rest, "api:destroy"))
                p->kind = PROBE_DESTROY;
        else if (!strncmp(rest, "kill:", 5)) {
                p->kind = PROBE_KILL;
                p->n_dirs = split_dirs(rest + 5, p->dirs, MAX_CGROUP_DIRS);
                if (p->n_dirs <= 0)
                        return -EINVAL;
        }
        else if (!strncmp(rest, "cmd:", 4)) {
                p->kind = PROBE_CMD;
                for (char *w = strtok_r(rest + 4, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                        if (n == MAX_ARGS)
                                return -E2BIG;
                        p->argv[n++] = w;
                }
                if (n == 0)
                        return -EINVAL;
        } else
                return -EINVAL;
        return 0;
}

static int probe_once(struct probe *p, struct conn *c, unsigned long iter, double *ret_us) {
        char id[SESSION_ID_MAX];
        double untimed;
        int q;

        if (wait_warm && p->kind != PROBE_CMD && p->kind != PROBE_EXEC && p->kind != PROBE_KILL)
                (void) api_wait_warm(c);
        switch (p->kind) {
        case PROBE_CMD:
                return run_command(p->argv, iter, ret_us);
        case PROBE_HEALTH:
                return api_health_once(c, ret_us);
        case PROBE_KILL:
                return hand_kill(p->dirs, p->n_dirs, iter, ret_us);
        case PROBE_DESTROY:
                p->last_answer_us = NAN;
                return api_destroy(c, ret_us, &p->last_answer_us);
        case PROBE_SESSION: {
                double create_us, delete_us;

                q = api_session_create(c, id, &create_us);
                if (q < 0) {
                        *ret_us = create_us;
                        return q;
                }
                q = api_session_delete(c, id, &delete_us);
                *ret_us = create_us + delete_us;
                return q;
        }
        case PROBE_CREATE:
                q = api_session_create(c, id, ret_us);
                if (q < 0)
                        return q;
                if (wait_warm)
                        (void) api_wait_warm(c);
                return api_session_delete(c, id, &untimed);
        case PROBE_DELETE:
                q = api_session_create(c, id, &untimed);
                if (q < 0) {
                        *ret_us = NAN;
                        return q;
                }
                /* The hand-out starts a refill: let it finish, so that the
                 * DELETE is timed alone. */
                if (wait_warm)
                        (void) api_wait_warm(c);
                return api_session_delete(c, id, ret_us);
        case PROBE_EXEC:
                if (!p->session[0]) {
                        q = api_session_create(c, p->session, &untimed);
                        if (q < 0) {
                                p->session[0] = 0;
                                *ret_us = NAN;
                                return q;
                        }
                }
                return api_command(c, p->session, exec_true_body, ret_us);
        case PROBE_RUN:
                return api_command(c, NULL, exec_true_body, ret_us);
        }
        return -EINVAL;
}

static int mode_compare(int rounds, int warmup, int nprobes, struct probe *probes) {
        struct conn c = { .fd = -1 };
        unsigned long iter = 0;

        for (int r = -warmup; r < rounds && !atomic_load(&daemon_gone); r++)
                /* Rotate the starting probe each round so that no probe always
                 * runs right after the same other one (caches, CPU frequency). */
                for (int k = 0; k < nprobes; k++) {
                        struct probe *p = &probes[((r + warmup) + k) % nprobes];
                        double us = NAN;
                        int q = probe_once(p, &c, iter++, &us);

                        if (r < 0)
                                continue;
                        if (q < 0)
                                p->s.errors++;
                        else if (samples_add(&p->s, us) < 0 ||
                                 (p->kind == PROBE_DESTROY && samples_add(&p->answer, p->last_answer_us) < 0))
                                return -ENOMEM;
                }
        for (int k = 0; k < nprobes; k++) {
                double untimed;

                if (probes[k].session[0])
                        (void) api_session_delete(&c, probes[k].session, &untimed);
                print_result(probes[k].name, &probes[k].s, 0,
                             atomic_load(&daemon_gone) ? "\"aborted\":\"the daemon stopped answering\"" : NULL);
                if (probes[k].kind == PROBE_DESTROY) {
                        char name[sizeof(probes[k].name) + 16];

                        snprintf(name, sizeof(name), "%s (answer)", probes[k].name);
                        print_result(name, &probes[k].answer, 0, NULL);
                }
        }
        conn_close(&c);
        return 0;
}

/* ---- concurrent clients ---------------------------------------------------- */

enum load_kind { LOAD_SESSION, LOAD_EXEC, LOAD_RUN, LOAD_SEED };

struct load {
        enum load_kind kind;
        int clients;
        double duration_s;
        int think_lo_ms, think_hi_ms;
        pthread_barrier_t start;
        atomic_bool stop;
        atomic_int setup_failures;
};

struct worker {
        pthread_t thread;
        struct load *load;
        unsigned seed;
        struct samples s;
};

/* The busybox image has sh, ls, cat and grep: the seed mix of an agent that
 * looks around, reads files and filters them. */
static const char *const seed_bodies[] = {
        "{\"argv\":[\"ls\",\"-la\",\"/etc\"]}",
        "{\"argv\":[\"cat\",\"/etc/passwd\"]}",
        "{\"argv\":[\"grep\",\"-c\",\"sandbox\",\"/etc/passwd\",\"/etc/group\"]}",
        "{\"shell\":\"echo hello > /tmp/f && cat /tmp/f | grep -q hello && ls /usr/bin | wc -l\"}",
        "{\"argv\":[\"sh\",\"-c\",\"i=0; while [ $i -lt 100 ]; do i=$((i+1)); done; echo $i\"]}",
};

static void think(struct worker *w) {
        struct load *l = w->load;
        int ms = l->think_lo_ms;
        struct timespec ts;

        if (l->think_hi_ms > l->think_lo_ms)
                ms += rand_r(&w->seed) % (l->think_hi_ms - l->think_lo_ms + 1);
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (long) (ms % 1000) * 1000000L;
        nanosleep(&ts, NULL);
}

static void *worker_main(void *arg) {
        struct worker *w = arg;
        struct load *l = w->load;
        struct conn c = { .fd = -1 };
        char id[SESSION_ID_MAX] = "";
        double us;
        unsigned k = w->seed;

        /* Sessions of exec and seed clients are made before the clock starts. */
        if ((l->kind == LOAD_EXEC || l->kind == LOAD_SEED) && api_session_create(&c, id, &us) < 0) {
                id[0] = 0;
                atomic_fetch_add(&l->setup_failures, 1);
        }
        pthread_barrier_wait(&l->start);
        if (l->kind == LOAD_SEED)
                think(w);       /* spread the clients' first requests */
        while (!atomic_load(&l->stop)) {
                int q = -EINVAL;

                switch (l->kind) {
                case LOAD_SESSION: {
                        char sid[SESSION_ID_MAX];
                        double d;

                        q = api_session_create(&c, sid, &us);
                        if (q >= 0) {
                                q = api_session_delete(&c, sid, &d);
                                us += d;
                        }
                        break;
                }
                case LOAD_EXEC:
                        q = id[0] ? api_command(&c, id, exec_true_body, &us) : -ENOENT;
                        break;
                case LOAD_RUN:
                        q = api_command(&c, NULL, exec_true_body, &us);
                        break;
                case LOAD_SEED:
                        q = id[0] ? api_command(&c, id, seed_bodies[k++ % (sizeof(seed_bodies) / sizeof(seed_bodies[0]))], &us)
                                  : -ENOENT;
                        break;
                }
                if (atomic_load(&l->stop) && q >= 0)
                        break;  /* finished after the window: not counted */
                if (q < 0) {
                        w->s.errors++;
                        if (q == -ENOENT || q == -ECONNREFUSED)
                                usleep(10000);  /* no busy loop against a dead daemon */
                } else
                        (void) samples_add(&w->s, us);
                if (l->kind == LOAD_SEED && !atomic_load(&l->stop))
                        think(w);
        }
        if (id[0])
                (void) api_session_delete(&c, id, &us);
        conn_close(&c);
        return NULL;
}

static int mode_load(struct load *l, const char *name) {
        struct worker *w = calloc((size_t) l->clients, sizeof(*w));
        struct samples all = {};
        struct timespec ts;
        char extra[128];
        uint64_t t0;
        double wall;

        if (!w)
                return -ENOMEM;
        pthread_barrier_init(&l->start, NULL, (unsigned) l->clients + 1);
        for (int i = 0; i < l->clients; i++) {
                w[i] = (struct worker) { .load = l, .seed = (unsigned) (i * 7919 + 17) };
                if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
                        fprintf(stderr, "sp-loadgen: pthread_create failed\n");
                        exit(1);
                }
        }
        pthread_barrier_wait(&l->start);
        t0 = now_ns();
        ts.tv_sec = (time_t) l->duration_s;
        ts.tv_nsec = (long) ((l->duration_s - (double) ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
        atomic_store(&l->stop, true);
        wall = (double) (now_ns() - t0) / 1e9;
        for (int i = 0; i < l->clients; i++) {
                pthread_join(w[i].thread, NULL);
                (void) samples_merge(&all, &w[i].s);
                free(w[i].s.us);
        }
        free(w);
        snprintf(extra, sizeof(extra), "\"clients\":%d,\"setup_failures\":%d", l->clients,
                 atomic_load(&l->setup_failures));
        print_result(name, &all, wall, extra);
        free(all.us);
        return 0;
}

/* ---- density: fill, hold, destroy --------------------------------------- */

struct density {
        int count, clients;
        char (*ids)[SESSION_ID_MAX];
        atomic_int next;
        bool deleting;
};

struct dworker {
        pthread_t thread;
        struct density *d;
        struct samples s;
};

static void *density_main(void *arg) {
        struct dworker *w = arg;
        struct density *d = w->d;
        struct conn c = { .fd = -1 };

        for (;;) {
                int i = atomic_fetch_add(&d->next, 1), q;
                double us;

                if (i >= d->count)
                        break;
                if (d->deleting) {
                        if (!d->ids[i][0])
                                continue;
                        q = api_session_delete(&c, d->ids[i], &us);
                } else {
                        q = api_session_create(&c, d->ids[i], &us);
                        if (q < 0)
                                d->ids[i][0] = 0;
                }
                if (q < 0)
                        w->s.errors++;
                else
                        (void) samples_add(&w->s, us);
        }
        conn_close(&c);
        return NULL;
}

static double density_phase(struct density *d, struct samples *all) {
        struct dworker *w = calloc((size_t) d->clients, sizeof(*w));
        uint64_t t0 = now_ns();

        if (!w)
                exit(1);
        atomic_store(&d->next, 0);
        for (int i = 0; i < d->clients; i++) {
                w[i].d = d;
                if (pthread_create(&w[i].thread, NULL, density_main, &w[i]) != 0)
                        exit(1);
        }
        for (int i = 0; i < d->clients; i++) {
                pthread_join(w[i].thread, NULL);
                (void) samples_merge(all, &w[i].s);
                free(w[i].s.us);
        }
        free(w);
        return (double) (now_ns() - t0) / 1e9;
}

/*
 * Creates count sessions with `clients` connections, prints the fill
 * result and a line "READY", waits for one line on stdin (the report script
 * measures memory meanwhile), then ends every session and prints the
 * destroy result.
 */
static int mode_density(int count, int clients) {
        struct density d = { .count = count, .clients = clients };
        struct samples create = {}, destroy = {};
        char line[64], extra[64];
        double wall;

        d.ids = calloc((size_t) count, sizeof(*d.ids));
        if (!d.ids)
                return -ENOMEM;
        wall = density_phase(&d, &create);
        snprintf(extra, sizeof(extra), "\"count\":%d,\"clients\":%d", count, clients);
        print_result("fill", &create, wall, extra);
        printf("READY\n");
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin))
                line[0] = 0;
        d.deleting = true;
        wall = density_phase(&d, &destroy);
        print_result("destroy", &destroy, wall, extra);
        free(create.us);
        free(destroy.us);
        free(d.ids);
        return 0;
}

/* ---- command line ------------------------------------------------------------ */

static void usage(FILE *f) {
        fputs("Usage: sp-loadgen [--socket PATH] MODE [OPTIONS]\n"
              "\n"
              "  compare --rounds N [--warmup W] [--wait-warm] NAME=SPEC...\n"
              "        run the probes in alternation, N rounds, W rounds first unrecorded;\n"
              "        --wait-warm: before each session, delete or run probe, wait (untimed)\n"
              "        until the daemon's pool has a warm sandbox and nothing in flight\n"
              "        SPEC: api:session (POST /v1/sessions + DELETE), api:create (the POST\n"
              "        only), api:delete (the DELETE's answer only), api:exec (/bin/true in one\n"
              "        session), api:run (one-shot /bin/true), api:health (GET /v1/health),\n"
              "        api:destroy (DELETE until the sandbox's cgroup is gone from every dir\n"
              "        of --cgroup-dirs DIR,DIR...), kill:DIR,DIR... (PID 1 of a new pid\n"
              "        namespace in a cgroup below each DIR: SIGKILL, reap, rmdir, by hand),\n"
              "        cmd:ARG ARG... (fork+exec+wait; {i} becomes a unique number)\n"
              "  session|exec|run|seed --clients C --duration S [--think LO-HI]\n"
              "        C concurrent clients for S seconds: session create+delete, exec of\n"
              "        /bin/true in one session each, one-shot runs, or the seed mix of sh,\n"
              "        ls, cat, grep with a think time of LO..HI ms (default 200-500)\n"
              "  density --count N [--clients C]\n"
              "        create N sessions, print 'READY', wait for a line on stdin, end them\n"
              "\n"
              "Results: one JSON object per line on stdout, latencies in microseconds.\n", f);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "socket", required_argument, NULL, 's' },
                { "rounds", required_argument, NULL, 'r' },
                { "warmup", required_argument, NULL, 'w' },
                { "clients", required_argument, NULL, 'c' },
                { "duration", required_argument, NULL, 'd' },
                { "count", required_argument, NULL, 'n' },
                { "think", required_argument, NULL, 't' },
                { "wait-warm", no_argument, NULL, 'W' },
                { "cgroup-dirs", required_argument, NULL, 'G' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct load l = { .clients = 1, .duration_s = 5, .think_lo_ms = 200, .think_hi_ms = 500 };
        int rounds = 20, warmup = 2, count = 100, opt;
        const char *mode;

        while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1)
                if (opt == 's')
                        socket_path = optarg;
                else if (opt == 'h') {
                        usage(stdout);
                        return 0;
                } else {
                        usage(stderr);
                        return 2;
                }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        mode = argv[optind];
        optind++;
        while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1)
                switch (opt) {
                case 's': socket_path = optarg; break;
                case 'r': rounds = atoi(optarg); break;
                case 'w': warmup = atoi(optarg); break;
                case 'c': l.clients = atoi(optarg); break;
                case 'd': l.duration_s = atof(optarg); break;
                case 'n': count = atoi(optarg); break;
                case 'W': wait_warm = true; break;
                case 'G':
                        n_cgroup_dirs = split_dirs(optarg, cgroup_dirs, MAX_CGROUP_DIRS);
                        if (n_cgroup_dirs <= 0)
                                return 2;
                        break;
                case 't':
                        if (sscanf(optarg, "%d-%d", &l.think_lo_ms, &l.think_hi_ms) != 2)
                                return 2;
                        break;
                default:
                        usage(stderr);
                        return 2;
                }
        if (l.clients < 1 || l.duration_s <= 0 || rounds < 1 || warmup < 0 || count < 1) {
                fprintf(stderr, "sp-loadgen: counts and durations must be positive\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull_fd < 0)
                return 1;

        if (!strcmp(mode, "compare")) {
                static struct probe probes[MAX_PROBES];
                int n = argc - optind;

                if (n < 1 || n > MAX_PROBES) {
                        fprintf(stderr, "sp-loadgen: compare takes 1 to %d probes\n", MAX_PROBES);
                        return 2;
                }
                for (int i = 0; i < n; i++)
                        if (probe_parse(&probes[i], argv[optind + i]) < 0) {
                                fprintf(stderr, "sp-loadgen: bad probe '%s'\n", argv[optind + i]);
                                return 2;
                        }
                return mode_compare(rounds, warmup, n, probes) < 0;
        }
        if (!strcmp(mode, "density"))
                return mode_density(count, l.clients) < 0;
        if (!strcmp(mode, "session"))
                l.kind = LOAD_SESSION;
        else if (!strcmp(mode, "exec"))
                l.kind = LOAD_EXEC;
        else if (!strcmp(mode, "run"))
                l.kind = LOAD_RUN;
        else if (!strcmp(mode, "seed"))
                l.kind = LOAD_SEED;
        else {
                usage(stderr);
                return 2;
        }
        return mode_load(&l, mode) < 0;
}
