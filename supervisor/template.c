/* SPDX-License-Identifier: MIT */
/* Templates: see template.h. */
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "http.h"
#include "layer.h"
#include "log.h"
#include "paths.h"
#include "pool.h"
#include "session.h"
#include "template.h"
#include "util.h"

/* Entries of one layer: empty files cost no bytes, but each is an inode
 * on the host's disk (a large node_modules has some 50 000). */
#define TEMPLATE_MAX_FILES 500000

#ifndef P_PIDFD
#define P_PIDFD 3
#endif


struct template {
        template_registry *reg;
        template *next;
        char name[33];
        uid_t owner;
        char parent[33];          /* "": on the image itself */
        char base_hash[100];      /* the image's content hash when the chain's first layer was made */
        uint64_t bytes, files, whiteouts;
        usec_t created_real;
        uint64_t capture_usec;
        int layer_fd;             /* O_PATH of <dir>/layer */
        int chain[TEMPLATE_MAX_DEPTH]; /* borrowed layer fds, this one first, then its parents' */
        size_t n_chain;
        bool ready;               /* false while its capture runs */
        bool broken;              /* its parent is missing */
        pool *pool;
        /* the capture in flight */
        pid_t helper_pid;
        int helper_pidfd, result_fd;
        sd_event_source *helper_src;
        char sandbox_name[32];
        template_captured_fn cb;
        void *userdata;
};

struct template_registry {
        server *srv;
        char *dir;                /* <state_dir>/templates */
        int dir_fd;
        template *list;
        unsigned counter;
};

/* What the helper process says when it is done. */
typedef struct capture_result {
        int error;
        char message[256];
        sp_layer_stats st;
        uint64_t usec;
} capture_result;

static template_registry *reg_of(server *srv) {
        return srv->templates;
}

const char *template_name(const template *t) {
        return t->name;
}

uid_t template_owner(const template *t) {
        return t->owner;
}

static const char *image_hash(server *srv) {
        json_t *h = srv->image ? json_object_get(srv->image, "content_hash") : NULL;
        return json_is_string(h) ? json_string_value(h) : "unknown";
}

static const sp_template_config *template_config(server *srv, const char *name) {
        const sp_config *cfg = &srv->config.cfg;
        for (size_t i = 0; i < cfg->n_templates; i++)
                if (streq(cfg->templates[i].name, name))
                        return &cfg->templates[i];
        return NULL;
}

static template *find(template_registry *reg, const char *name) {
        for (template *t = reg->list; t; t = t->next)
                if (streq(t->name, name))
                        return t;
        return NULL;
}

static bool stale(server *srv, const template *t) {
        return t->broken || !streq(t->base_hash, image_hash(srv));
}

/* ---- pools -------------------------------------------------------------- */

static void pool_settings(server *srv, template *t, pool_env *env, pool_options *o) {
        const sp_config *cfg = &srv->config.cfg;
        const sp_template_config *tc = template_config(srv, t->name);
        uint32_t size = tc ? tc->pool_size : 0;

        *env = (pool_env) {
                .box = {.factory = srv->factory, .idslot_dir = IDSLOT_DIR, .id_base = cfg->id_base,
                        .n_slots = srv->n_slots, .layers = {.fds = t->chain, .n = t->n_chain}},
                .limits = {.memory_bytes = cfg->memory_limit, .cpu_pct = cfg->cpu_limit, .pids = cfg->pids_limit,
                           .disk_bytes = cfg->disk_limit},
        };
        /* a template's pool is kept at its size: no idle shrinking */
        *o = (pool_options) {.pool_size = size, .min_pool_size = size, .max_pool_size = cfg->max_pool_size,
                             .aggressive_cleanup = false, .idle_timeout_ms = cfg->container_idle_timeout_ms,
                             .share_cap_with = srv->pool};
}

static void start_pool(server *srv, template *t) {
        pool_env env;
        pool_options o;
        if (t->pool || !t->ready || stale(srv, t) || !srv->pool)
                return;
        pool_settings(srv, t, &env, &o);
        int r = pool_new(srv->event, &env, &o, http_capacity_changed, srv, &t->pool);
        if (r < 0)
                log_error("template %s: cannot create its pool: %s", t->name, strerror(-r));
}

pool *template_pool(template *t, const char **ret_why) {
        server *srv = t->reg->srv;
        if (!t->ready)
                return *ret_why = "it is still being captured", NULL;
        if (t->broken)
                return *ret_why = "its parent template is missing", NULL;
        if (stale(srv, t))
                return *ret_why = "it is stale: it was made on an image that is no longer installed", NULL;
        start_pool(srv, t);
        if (!t->pool)
                return *ret_why = "its pool could not be created", NULL;
        return t->pool;
}

/* ---- loading -------------------------------------------------------------- */

static void template_free(template *t) {
        if (!t)
                return;
        t->helper_src = sd_event_source_disable_unref(t->helper_src);
        safe_close(t->helper_pidfd);
        safe_close(t->result_fd);
        safe_close(t->layer_fd);
        free(t);
}

static template *template_new(template_registry *reg, const char *name) {
        template *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->reg = reg;
        t->layer_fd = t->helper_pidfd = t->result_fd = -EBADF;
        snprintf(t->name, sizeof(t->name), "%.32s", name);
        return t;
}

static int read_meta(template_registry *reg, template *t) {
        char path[PATH_MAX];
        json_error_t je;
        json_int_t owner = -1, bytes = 0, files = 0, whiteouts = 0, created = 0, capture = 0;
        const char *name = NULL, *parent = NULL, *hash = NULL;
        json_t *parent_v = NULL;

        snprintf(path, sizeof(path), "%s/%s/meta.json", reg->dir, t->name);
        json_auto_t *m = json_load_file(path, 0, &je);
        if (!m || json_unpack(m, "{s:s,s:I,s?o,s:{s:s},s:I,s:I,s?I,s:I,s?I}", "name", &name, "owner_uid", &owner,
                              "parent", &parent_v, "base", "content_hash", &hash, "bytes", &bytes, "files", &files,
                              "whiteouts", &whiteouts, "created_usec", &created, "capture_usec", &capture) < 0)
                return -EBADMSG;
        if (!streq(name, t->name) || owner < 0 || (parent_v && !json_is_null(parent_v) && !json_is_string(parent_v)))
                return -EBADMSG;
        parent = json_is_string(parent_v) ? json_string_value(parent_v) : NULL;
        t->owner = (uid_t) owner;
        snprintf(t->parent, sizeof(t->parent), "%s", parent ? parent : "");
        snprintf(t->base_hash, sizeof(t->base_hash), "%s", hash);
        t->bytes = (uint64_t) bytes;
        t->files = (uint64_t) files;
        t->whiteouts = (uint64_t) whiteouts;
        t->created_real = (usec_t) created;
        t->capture_usec = (uint64_t) capture;
        snprintf(path, sizeof(path), "%s/layer", t->name);
        t->layer_fd = openat(reg->dir_fd, path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return t->layer_fd < 0 ? -errno : 0;
}

/* Its layer first, then its parents' (which must be loaded). */
static void build_chain(template_registry *reg, template *t) {
        template *p = t;
        t->n_chain = 0;
        t->broken = false;
        while (p && t->n_chain < TEMPLATE_MAX_DEPTH) {
                t->chain[t->n_chain++] = p->layer_fd;
                if (!p->parent[0])
                        return;
                p = find(reg, p->parent);
        }
        t->broken = true;
}

static void sweep_leftovers(template_registry *reg) {
        _cleanup_(closedirp) DIR *d = fdopendir(fcntl(reg->dir_fd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return;
        rewinddir(d); /* a dup shares the offset of reg->dir_fd */
        for (struct dirent *de; (de = readdir(d));)
                /* a capture or a deletion that did not finish: never loaded */
                if (strncmp(de->d_name, ".tmp-", 5) == 0 || strncmp(de->d_name, ".del-", 5) == 0) {
                        int r = sp_layer_remove(reg->dir_fd, de->d_name);
                        if (r < 0)
                                log_warning("templates: cannot remove %s/%s: %s", reg->dir, de->d_name, strerror(-r));
                }
}

int templates_load(server *srv) {
        template_registry *reg = calloc(1, sizeof(*reg));
        if (!reg)
                return -ENOMEM;
        reg->srv = srv;
        reg->dir_fd = -EBADF;
        srv->templates = reg;
        if (asprintf(&reg->dir, "%s/templates", srv->config.cfg.state_dir) < 0)
                return reg->dir = NULL, -ENOMEM;
        /* 0700: a layer keeps the image's ids (uid 1000 of a sandbox is
         * uid 1000 here): no host user may reach into it */
        if (mkdir(reg->dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create %s", reg->dir);
        reg->dir_fd = open(reg->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (reg->dir_fd < 0)
                return log_error_errno(-errno, "Failed to open %s", reg->dir);
        sweep_leftovers(reg);

        _cleanup_(closedirp) DIR *d = fdopendir(fcntl(reg->dir_fd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return -errno;
        rewinddir(d); /* a dup shares the offset of reg->dir_fd */
        for (struct dirent *de; (de = readdir(d));) {
                if (!sp_template_name_is_valid(de->d_name))
                        continue;
                template *t = template_new(reg, de->d_name);
                if (!t)
                        return -ENOMEM;
                int r = read_meta(reg, t);
                if (r < 0) {
                        log_warning("templates: %s/%s is not a template (%s): ignored", reg->dir, de->d_name,
                                    strerror(-r));
                        template_free(t);
                        continue;
                }
                t->ready = true;
                t->next = reg->list;
                reg->list = t;
        }
        unsigned n = 0, n_stale = 0;
        for (template *t = reg->list; t; t = t->next) {
                build_chain(reg, t);
                n++;
                if (stale(srv, t)) {
                        n_stale++;
                        log_warning("template %s is stale: %s", t->name,
                                    t->broken ? "its parent is missing" : "made on another image");
                }
        }
        for (template *t = reg->list; t; t = t->next)
                start_pool(srv, t);
        if (n)
                log_info("Templates: %u loaded from %s (%u stale)", n, reg->dir, n_stale);
        return 0;
}

void templates_reconfigure(server *srv) {
        template_registry *reg = reg_of(srv);
        for (template *t = reg ? reg->list : NULL; t; t = t->next) {
                if (!t->pool)
                        continue;
                pool_env env;
                pool_options o;
                pool_settings(srv, t, &env, &o);
                pool_reconfigure(t->pool, &env, &o);
        }
}

void templates_end_pools(server *srv) {
        template_registry *reg = reg_of(srv);
        for (template *t = reg ? reg->list : NULL; t; t = t->next) {
                pool_free(t->pool);
                t->pool = NULL;
        }
}

void templates_free(server *srv) {
        template_registry *reg = reg_of(srv);
        if (!reg)
                return;
        while (reg->list) {
                template *t = reg->list;
                reg->list = t->next;
                if (t->helper_pidfd >= 0) {
                        /* a capture in flight: it dies with us; its .tmp-
                         * directory is swept at the next start */
                        (void) syscall(SYS_pidfd_send_signal, t->helper_pidfd, SIGKILL, NULL, 0);
                        siginfo_t si;
                        (void) syscall(SYS_waitid, P_PIDFD, t->helper_pidfd, &si, WEXITED, NULL);
                }
                pool_free(t->pool);
                template_free(t);
        }
        safe_close(reg->dir_fd);
        free(reg->dir);
        free(reg);
        srv->templates = NULL;
}

/* ---- who may see it ---------------------------------------------------------- */

static bool peer_in_group(int fd, gid_t gid) {
        gid_t groups[256];
        socklen_t len = sizeof(groups);
        struct ucred uc;
        socklen_t ulen = sizeof(uc);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ulen) == 0 && uc.gid == gid)
                return true;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                return false;
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

static bool visible(server *srv, const template *t, uid_t uid, int fd, bool admin) {
        if (admin || t->owner == uid)
                return true;
        const sp_template_config *tc = template_config(srv, t->name);
        if (!tc || !tc->shared_with)
                return false;
        if (streq(tc->shared_with, "everyone"))
                return true;
        /* The group is looked up in the local group file (nss could block). */
        _cleanup_fclose_ FILE *f = fopen("/etc/group", "re");
        struct group *g;
        while (f && (g = fgetgrent(f)))
                if (streq(g->gr_name, tc->shared_with))
                        return peer_in_group(fd, g->gr_gid);
        return false;
}

template *template_lookup(server *srv, const char *name, uid_t uid, int fd, bool admin) {
        template_registry *reg = reg_of(srv);
        template *t = reg ? find(reg, name) : NULL;
        return t && visible(srv, t, uid, fd, admin) ? t : NULL;
}

/* ---- JSON ------------------------------------------------------------------ */

json_t *template_to_json(server *srv, const template *t) {
        const sp_template_config *tc = template_config(srv, t->name);
        json_t *j = json_pack("{s:s,s:i,s:o,s:{s:s,s:s},s:I,s:I,s:I,s:o,s:s,s:b,s:o,s:f}",
                              "name", t->name, "owner_uid", (int) t->owner,
                              "parent", t->parent[0] ? json_string(t->parent) : json_null(),
                              "base", "image", "default", "content_hash", t->base_hash,
                              "size_bytes", (json_int_t) t->bytes, "files", (json_int_t) t->files,
                              "whiteouts", (json_int_t) t->whiteouts,
                              "created_at", json_time(t->created_real),
                              "state", !t->ready ? "capturing" : stale(srv, t) ? "stale" : "ready",
                              "stale", t->ready && stale(srv, t),
                              "shared_with", tc && tc->shared_with ? json_string(tc->shared_with) : json_null(),
                              "capture_ms", t->capture_usec / 1000.0);
        if (j) {
                pool_stats st = {};
                if (t->pool)
                        pool_get_stats(t->pool, &st);
                json_object_set_new(j, "pool", json_pack("{s:i,s:i,s:i,s:i}", "size", (int) (tc ? tc->pool_size : 0),
                                                         "available", (int) st.available, "warming",
                                                         (int) st.warming, "allocated", (int) st.allocated));
        }
        return j;
}

json_t *templates_to_json(server *srv, uid_t uid, int fd, bool admin) {
        template_registry *reg = reg_of(srv);
        json_t *a = json_array();
        for (template *t = reg ? reg->list : NULL; t && a; t = t->next)
                if (t->ready && visible(srv, t, uid, fd, admin))
                        json_array_append_new(a, template_to_json(srv, t));
        return a;
}

/* ---- capture: the helper process -------------------------------------------- */

typedef struct capture_job {
        int templates_fd, upper_fd;
        uid_t id_base;
        sp_cgroup_manager *cgroups;
        const char *sandbox_name;
        const char *name, *parent, *hash;
        uid_t owner;
        uint64_t max_bytes;
        usec_t created_real;
} capture_job;

static int write_meta(int dirfd, const capture_job *j, const capture_result *res) {
        json_auto_t *m = json_pack("{s:i,s:s,s:i,s:o,s:{s:s,s:s},s:I,s:I,s:I,s:I,s:I}", "format", 1, "name", j->name,
                                   "owner_uid", (int) j->owner, "parent", j->parent ? json_string(j->parent) : json_null(),
                                   "base", "image", "default", "content_hash", j->hash,
                                   "bytes", (json_int_t) res->st.bytes, "files", (json_int_t) res->st.files,
                                   "whiteouts", (json_int_t) res->st.whiteouts, "created_usec",
                                   (json_int_t) j->created_real, "capture_usec", (json_int_t) res->usec);
        _cleanup_free_ char *text = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
        if (!text)
                return -ENOMEM;
        _cleanup_close_ int fd = openat(dirfd, "meta.json", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t) len || fsync(fd) < 0)
                return -EIO;
        return 0;
}

/* In the helper: freeze, copy, thaw; then the directory gets its name,
 * or goes. Nothing here touches the daemon's loop or its clients. */
static void capture_run(const capture_job *j, capture_result *res) {
        char tmp[64];
        sp_error err = {};
        sp_cgroup *cg = NULL;
        usec_t t0 = now_mono();
        int r;

        snprintf(tmp, sizeof(tmp), ".tmp-%s-%d", j->name, (int) getpid());
        r = sp_cgroup_open(j->cgroups, j->sandbox_name, &cg, &err);
        if (r >= 0 && (r = sp_cgroup_freeze(cg, true, 5000)) < 0)
                sp_error_set(&err, r, "cannot freeze the session's sandbox: %s", strerror(-r));
        if (r >= 0 && mkdirat(j->templates_fd, tmp, 0700) < 0)
                r = sp_error_set(&err, -errno, "mkdir %s: %m", tmp);
        _cleanup_close_ int dir = r >= 0 ? openat(j->templates_fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -EBADF;
        if (r >= 0 && (dir < 0 || mkdirat(dir, "layer", 0755) < 0))
                r = sp_error_set(&err, -errno, "mkdir %s/layer: %m", tmp);
        _cleanup_close_ int layer = r >= 0 ? openat(dir, "layer", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -EBADF;
        if (r >= 0 && layer < 0)
                r = sp_error_set(&err, -errno, "open %s/layer: %m", tmp);
        if (r >= 0) {
                sp_layer_copy_opts o = {.src_id_base = j->id_base, .dst_id_base = 0, .max_bytes = j->max_bytes,
                                        .max_files = TEMPLATE_MAX_FILES};
                r = sp_layer_copy(j->upper_fd, layer, &o, &res->st, &err);
        }
        /* thawed as soon as the copy is over: the meta and the rename do
         * not need the session to stand still */
        if (cg) {
                (void) sp_cgroup_freeze(cg, false, 0);
                sp_cgroup_close(cg);
        }
        res->usec = now_mono() - t0;
        if (r >= 0 && (r = write_meta(dir, j, res)) < 0)
                sp_error_set(&err, r, "write meta.json: %s", strerror(-r));
        if (r >= 0 && renameat2(j->templates_fd, tmp, j->templates_fd, j->name, RENAME_NOREPLACE) < 0)
                r = sp_error_set(&err, -errno, "rename %s to %s: %m", tmp, j->name);
        if (r < 0)
                (void) sp_layer_remove(j->templates_fd, tmp);
        res->error = r < 0 ? r : 0;
        snprintf(res->message, sizeof(res->message), "%s", r < 0 ? err.message : "");
}

static int cmp_int(const void *a, const void *b) {
        return *(const int *) a - *(const int *) b;
}

/* A copy of the daemon holds every client connection: let them go, so
 * that a connection the daemon closes is closed for its peer at once. */
static void close_all_but(int *keep, size_t n) {
        unsigned from = 3;
        qsort(keep, n, sizeof(int), cmp_int);
        for (size_t i = 0; i < n; i++) {
                if (keep[i] < (int) from)
                        continue;
                if ((unsigned) keep[i] > from)
                        (void) close_range(from, (unsigned) keep[i] - 1, 0);
                from = (unsigned) keep[i] + 1;
        }
        (void) close_range(from, ~0U, 0);
}

static _noreturn_ void capture_child(const capture_job *j, int result_fd) {
        capture_result res = {};
        int keep[3 + 2 * 8];
        size_t n = 0;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        (void) prctl(PR_SET_NAME, "sandpool-capture");
        keep[n++] = j->templates_fd;
        keep[n++] = j->upper_fd;
        keep[n++] = result_fd;
        n += sp_cgroup_manager_fds(j->cgroups, keep + n, ELEMENTSOF(keep) - n);
        close_all_but(keep, n);
        capture_run(j, &res);
        (void) !write(result_fd, &res, sizeof(res));
        _exit(0);
}

/* ---- capture: the daemon's side --------------------------------------------- */

static void unlink_template(template_registry *reg, template *t) {
        for (template **pp = &reg->list; *pp; pp = &(*pp)->next)
                if (*pp == t) {
                        *pp = t->next;
                        return;
                }
}

static void capture_finish(template *t, const capture_result *res) {
        template_registry *reg = t->reg;
        server *srv = reg->srv;
        char path[64];
        int error = res ? res->error : -ECHILD;
        const char *msg = res ? res->message : "the capture helper died";

        t->helper_src = sd_event_source_disable_unref(t->helper_src);
        t->helper_pidfd = safe_close(t->helper_pidfd);
        t->result_fd = safe_close(t->result_fd);
        /* Whatever became of the helper, the session must not stay frozen. */
        template_thaw_sandbox(srv, t->sandbox_name);
        if (error >= 0) {
                t->bytes = res->st.bytes;
                t->files = res->st.files;
                t->whiteouts = res->st.whiteouts;
                t->capture_usec = res->usec;
                snprintf(path, sizeof(path), "%s/layer", t->name);
                t->layer_fd = openat(reg->dir_fd, path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (t->layer_fd < 0) {
                        error = -errno;
                        msg = "cannot open the new layer";
                        (void) sp_layer_remove(reg->dir_fd, t->name);
                }
        }
        template_captured_fn cb = t->cb;
        void *ud = t->userdata;
        t->cb = NULL;
        if (error < 0) {
                log_warning("template %s: capture failed: %s", t->name, msg);
                unlink_template(reg, t);
                if (cb)
                        cb(NULL, error, msg, ud);
                template_free(t);
                return;
        }
        t->ready = true;
        build_chain(reg, t);
        log_info("template %s: captured from sandbox %s: %" PRIu64 " files, %" PRIu64 " bytes in %.1f ms", t->name,
                 t->sandbox_name, t->files, t->bytes, t->capture_usec / 1000.0);
        start_pool(srv, t);
        if (cb)
                cb(t, 0, NULL, ud);
}

static int on_helper_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        template *t = userdata;
        siginfo_t si = {};
        capture_result res;

        if (syscall(SYS_waitid, P_PIDFD, t->helper_pidfd, &si, WEXITED | WNOHANG, NULL) == 0 && si.si_pid == 0)
                return 0;
        ssize_t n = read(t->result_fd, &res, sizeof(res));
        capture_finish(t, n == (ssize_t) sizeof(res) ? &res : NULL);
        return 0;
}

static int spawn_capture(template *t, const capture_job *j, sp_error *err) {
        int p[2];
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return sp_error_set(err, -errno, "pipe: %m");
        /* The daemon is single-threaded: a fork is safe. The child only
         * copies files and exits; it never returns into the loop. */
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                safe_close(p[0]);
                safe_close(p[1]);
                return sp_error_set(err, r, "fork the capture helper: %s", strerror(-r));
        }
        if (pid == 0) {
                safe_close(p[0]);
                capture_child(j, p[1]);
        }
        safe_close(p[1]);
        t->helper_pid = pid;
        t->result_fd = p[0];
        t->helper_pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        int r = t->helper_pidfd < 0 ? -errno : 0;
        if (r >= 0)
                r = sd_event_add_io(t->reg->srv->event, &t->helper_src, t->helper_pidfd, EPOLLIN, on_helper_exit, t);
        if (r < 0) {
                /* cannot watch it: wait for it here (it is short) */
                siginfo_t si;
                capture_result res;
                (void) waitid(P_PID, (id_t) pid, &si, WEXITED);
                ssize_t n = read(t->result_fd, &res, sizeof(res));
                t->cb = NULL;
                capture_finish(t, n == (ssize_t) sizeof(res) ? &res : NULL);
                return sp_error_set(err, r, "watch the capture helper: %s", strerror(-r));
        }
        return 0;
}

int template_capture(server *srv, const char *name, session *s, uid_t owner, template_captured_fn cb,
                     void *userdata, sp_error *err) {
        template_registry *reg = reg_of(srv);
        template *parent = s->tmpl;

        if (!sp_template_name_is_valid(name))
                return sp_error_set(err, -EINVAL, "invalid template name (a-z, 0-9, '.', '_', '-'; at most 32)");
        if (find(reg, name))
                return sp_error_set(err, -EEXIST, "template %s exists", name);
        if (parent && parent->n_chain >= TEMPLATE_MAX_DEPTH)
                return sp_error_set(err, -E2BIG, "template %s already has %d layers: at most %d", parent->name,
                                    (int) parent->n_chain, TEMPLATE_MAX_DEPTH);
        if (!s->sb || sp_sandbox_upper_fd(s->sb) < 0)
                return sp_error_set(err, -EPIPE, "the session's sandbox is not running");
        /* one capture of a session at a time: the first thaw would end the
         * second's freeze in the middle of its copy */
        for (template *o = reg->list; o; o = o->next)
                if (!o->ready && streq(o->sandbox_name, s->sandbox_name))
                        return sp_error_set(err, -EPIPE, "the session is being captured as %s", o->name);
        template *t = template_new(reg, name);
        if (!t)
                return sp_error_set(err, -ENOMEM, "out of memory");
        t->owner = owner;
        t->created_real = now_real();
        snprintf(t->parent, sizeof(t->parent), "%s", parent ? parent->name : "");
        snprintf(t->base_hash, sizeof(t->base_hash), "%s", parent ? parent->base_hash : image_hash(srv));
        snprintf(t->sandbox_name, sizeof(t->sandbox_name), "%s", s->sandbox_name);
        t->cb = cb;
        t->userdata = userdata;
        capture_job j = {
                .templates_fd = reg->dir_fd, .upper_fd = sp_sandbox_upper_fd(s->sb), .id_base = sp_sandbox_id_base(s->sb),
                .cgroups = srv->cgroups, .sandbox_name = s->sandbox_name, .name = name,
                .parent = parent ? parent->name : NULL, .hash = t->base_hash, .owner = owner,
                .max_bytes = srv->config.cfg.template_max_size, .created_real = t->created_real,
        };
        t->next = reg->list;
        reg->list = t;
        int r = spawn_capture(t, &j, err);
        if (r < 0 && find(reg, name) == t) {
                unlink_template(reg, t);
                template_free(t);
        }
        return r;
}

void template_thaw_sandbox(server *srv, const char *sandbox_name) {
        sp_cgroup *cg = NULL;
        sp_error err = {};
        if (sp_cgroup_open(srv->cgroups, sandbox_name, &cg, &err) >= 0) {
                (void) sp_cgroup_freeze(cg, false, 0);
                sp_cgroup_close(cg);
        }
}

void template_capture_forget(server *srv, void *userdata) {
        template_registry *reg = reg_of(srv);
        for (template *t = reg ? reg->list : NULL; t; t = t->next)
                if (t->cb && t->userdata == userdata)
                        t->cb = NULL;
}

/* ---- deletion ------------------------------------------------------------------ */

static int on_remover_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        siginfo_t si = {};
        if (syscall(SYS_waitid, P_PIDFD, fd, &si, WEXITED | WNOHANG, NULL) == 0 && si.si_pid == 0)
                return 0;
        /* not floating any more drops the loop's reference: the source
         * goes (closing fd) once this dispatch is over */
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        (void) sd_event_source_set_floating(s, false);
        return 0;
}

static int spawn_remove(template_registry *reg, const char *name) {
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) prctl(PR_SET_NAME, "sandpool-rmtmpl");
                _exit(sp_layer_remove(reg->dir_fd, name) < 0 ? 1 : 0);
        }
        /* reaped when it is done, off the loop's path */
        int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        sd_event_source *src = NULL;
        if (pidfd < 0 || sd_event_add_io(reg->srv->event, &src, pidfd, EPOLLIN, on_remover_exit, NULL) < 0) {
                (void) waitpid(pid, NULL, 0);
                safe_close(pidfd);
                return 0;
        }
        (void) sd_event_source_set_io_fd_own(src, true);
        (void) sd_event_source_set_floating(src, true);
        sd_event_source_unref(src);
        return 0;
}

int template_delete(server *srv, template *t, sp_error *err) {
        template_registry *reg = t->reg;
        char trash[80];

        if (!t->ready)
                return sp_error_set(err, -EAGAIN, "template %s is being captured", t->name);
        for (session *s = srv->sessions; s; s = s->next)
                if (s->tmpl == t)
                        return sp_error_set(err, -EBUSY, "template %s is in use by a session", t->name);
        for (template *o = reg->list; o; o = o->next)
                if (o != t && streq(o->parent, t->name))
                        return sp_error_set(err, -EBUSY, "template %s is the parent of template %s", t->name, o->name);
        /* The name is free at once; the files go in the background. */
        snprintf(trash, sizeof(trash), ".del-%s-%d-%u", t->name, (int) getpid(), ++reg->counter);
        if (renameat(reg->dir_fd, t->name, reg->dir_fd, trash) < 0)
                return sp_error_set(err, -errno, "cannot remove template %s: %m", t->name);
        pool_free(t->pool);
        t->pool = NULL;
        unlink_template(reg, t);
        log_info("template %s deleted", t->name);
        template_free(t);
        if (spawn_remove(reg, trash) < 0)
                log_warning("templates: cannot remove %s/%s now: removed at the next start", reg->dir, trash);
        return 0;
}
