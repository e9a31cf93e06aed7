/* SPDX-License-Identifier: MIT */
/* The sandbox factory: see factory.h. The first half of this file runs in
 * the worker processes (blocking calls are fine there), the second half in
 * the daemon (nothing there blocks). */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "factory.h"
#include "log.h"
#include "priority.h"
#include "proto.h"
#include "time-util.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define MAX_WORKERS 4
#define NAME_MAX_LEN 64

enum {
        FM_START = 100, /* daemon -> worker: fm_start; hdr.id is the request's tag; fds: layers, then seed */
        FM_REMOVE,      /* daemon -> worker: the name; hdr.id is the removal's tag */
        FM_CLONED,      /* worker -> daemon: PID 1 exists; fd: its pidfd (the daemon reaps it) */
        FM_READY,       /* worker -> daemon: fm_ready; fds pidfd, ctl, root_fd, upper_fd */
        FM_FAILED,      /* worker -> daemon: the message; hdr.err (PID 1, if any, came with FM_CLONED) */
        FM_REMOVED,     /* worker -> daemon: hdr.id, the removal is done */
};

typedef struct fm_start {
        char name[NAME_MAX_LEN + 1];
        uint32_t id_base;
        sp_limits limits;
        uint32_t n_layers;                  /* template layers (fds), topmost first */
        uint32_t seed_id_base;              /* a fork: the last fd is the source's upper */
        char seed_name[NAME_MAX_LEN + 1];   /* "": no seed; else the source's cgroup, frozen meanwhile */
} fm_start;

typedef struct fm_ready {
        int32_t pid;
} fm_ready;

#define FM_BUF_SIZE (sizeof(sp_msg_hdr) + 512)

/* ---- the worker ------------------------------------------------------------ */

typedef struct pending {
        uint64_t tag;
        sp_sandbox *sb;
} pending;

typedef struct worker_state {
        int sock;
        const factory_env *env;
        pending *p;
        size_t n, cap;
} worker_state;

static void worker_fail(worker_state *w, uint64_t tag, int error, const char *msg) {
        (void) sp_msg_send(w->sock, FM_FAILED, tag, error < 0 ? error : -EIO, 0, msg, strlen(msg), NULL, 0);
}

typedef struct cloned_ctx {
        int sock;
        uint64_t tag;
} cloned_ctx;

/* From now on the daemon can reap PID 1 whatever happens here, even if
 * this worker is killed in the middle of the setup. */
static void send_cloned(int pidfd, void *userdata) {
        cloned_ctx *c = userdata;
        (void) sp_msg_send(c->sock, FM_CLONED, c->tag, 0, 0, NULL, 0, &pidfd, 1);
}

/* A fork: the source sandbox stands still while its upper is copied into
 * the new one's (in sp_sandbox_start(), before its overlay is mounted). */
static int worker_start_seeded(worker_state *w, const fm_start *m, const sp_sandbox_spec *spec, sp_sandbox **ret,
                               sp_error *err) {
        sp_cgroup *src = NULL;
        int r = sp_cgroup_open(w->env->cgroups, m->seed_name, &src, err);
        if (r < 0)
                return r;
        r = sp_cgroup_freeze(src, true, 2000);
        if (r < 0) {
                sp_cgroup_close(src);
                return sp_error_set(err, r, "cannot freeze sandbox %s to fork it: %s", m->seed_name, strerror(-r));
        }
        r = sp_sandbox_start(spec, ret, err);
        (void) sp_cgroup_freeze(src, false, 0);
        sp_cgroup_close(src);
        return r;
}

static void worker_start(worker_state *w, uint64_t tag, const fm_start *m, int *fds, size_t nfds) {
        sp_error err = {};
        sp_sandbox *sb = NULL;
        cloned_ctx cc = {.sock = w->sock, .tag = tag};
        bool seeded = m->seed_name[0] != 0;
        int r;

        if (memchr(m->name, 0, sizeof(m->name)) == NULL || memchr(m->seed_name, 0, sizeof(m->seed_name)) == NULL)
                return worker_fail(w, tag, -EINVAL, "bad sandbox name");
        if (m->n_layers + (seeded ? 1 : 0) != nfds)
                return worker_fail(w, tag, -EINVAL, "layers and fds do not match");
        sp_stage_layers layers = {.fds = fds, .n = m->n_layers, .seed_fd = seeded ? fds[nfds - 1] : -1,
                                  .seed_id_base = m->seed_id_base};
        sp_sandbox_spec spec = {
                .name = m->name, .rootfs = w->env->rootfs, .layers = &layers, .stage_dir = w->env->stage_dir,
                .id_base = m->id_base, .limits = m->limits, .cgroups = w->env->cgroups, .seccomp = w->env->seccomp,
                .clone_parent = true, .on_cloned = send_cloned, .on_cloned_userdata = &cc,
        };
        if (seeded)
                r = worker_start_seeded(w, m, &spec, &sb, &err);
        else
                r = sp_sandbox_start(&spec, &sb, &err);
        if (r < 0)
                /* PID 1, if cloned, is killed; the daemon has its pidfd */
                return worker_fail(w, tag, r, err.message);
        if (w->n == w->cap) {
                size_t cap = w->cap ? w->cap * 2 : 16;
                pending *np = realloc(w->p, cap * sizeof(*np));
                if (!np) {
                        (void) sp_sandbox_kill(sb);
                        sp_sandbox_destroy(sb);
                        return worker_fail(w, tag, -ENOMEM, "out of memory");
                }
                w->p = np;
                w->cap = cap;
        }
        w->p[w->n++] = (pending){.tag = tag, .sb = sb};
}

/* A pending sandbox said something: READY hands it over, anything else
 * fails it. Returns true when it is done with (and removed). */
static bool worker_pending_event(worker_state *w, size_t i) {
        pending *pd = &w->p[i];
        sp_event ev;
        char msg[300];
        int r = sp_sandbox_next_event(pd->sb, &ev);

        if (r == -EAGAIN)
                return false;
        if (r == 0 && ev.type == SP_EVENT_READY) {
                sp_sandbox_handoff h;
                r = sp_sandbox_export(pd->sb, &h);
                if (r >= 0) {
                        fm_ready m = {.pid = h.pid};
                        int fds[4] = {h.pidfd, h.ctl, h.root_fd, h.upper_fd};
                        (void) sp_msg_send(w->sock, FM_READY, pd->tag, 0, 0, &m, sizeof(m), fds, 4);
                        for (int k = 0; k < 4; k++)
                                safe_close(fds[k]);
                        goto done;
                }
                snprintf(msg, sizeof(msg), "cannot hand the sandbox over: %s", strerror(-r));
        } else if (r == 0 && ev.type == SP_EVENT_FAILED)
                snprintf(msg, sizeof(msg), "sandbox setup failed: %s", ev.error.message);
        else if (r == 0)
                return false; /* nothing else comes before READY */
        else
                snprintf(msg, sizeof(msg), "sandbox PID 1 died during setup");
        {
                int code = r < 0 ? r : ev.type == SP_EVENT_FAILED ? ev.error.code : -EIO;
                (void) sp_sandbox_kill(pd->sb);
                /* Not our child: the daemon reaps it; its cgroup goes now
                 * (a dead task, reaped or not, no longer holds it). */
                sp_sandbox_destroy(pd->sb);
                worker_fail(w, pd->tag, code, msg);
        }
done:
        w->p[i] = w->p[--w->n];
        return true;
}

static _noreturn_ void worker_exit(worker_state *w) {
        /* The daemon is gone or stopping: what was being made goes too. */
        for (size_t i = 0; i < w->n; i++) {
                (void) sp_sandbox_kill(w->p[i].sb);
                sp_sandbox_destroy(w->p[i].sb);
        }
        _exit(0);
}

static void worker_request(worker_state *w) {
        char buf[FM_BUF_SIZE];
        int fds[SP_MSG_MAX_FDS];
        size_t nfds = 0;
        ssize_t n = sp_msg_recv(w->sock, buf, sizeof(buf), 0, fds, &nfds);
        const sp_msg_hdr *h = (const sp_msg_hdr *) buf;

        if (n > 0 && h->type == FM_START && h->len == sizeof(fm_start)) {
                fm_start m;
                memcpy(&m, h + 1, sizeof(m));
                worker_start(w, h->id, &m, fds, nfds);
        }
        /* What the daemon sends: a start's template layers (mounted, or
         * not, by now: the mounts keep what they need), or a removed
         * sandbox's root and upper, the last references to its detached
         * overlay and tmpfs, whose teardown (freeing every page, an RCU
         * grace period) would otherwise be paid by the daemon's event
         * loop, up to 15 ms a close. */
        for (size_t i = 0; i < nfds; i++)
                safe_close(fds[i]);
        if (n == -EAGAIN || n == -EINTR)
                return;
        if (n <= 0 && n != -EBADMSG)
                worker_exit(w);
        if (n < 0)
                return;
        if (h->type == FM_START)
                ;
        else if (h->type == FM_REMOVE && h->len > 0 && h->len <= NAME_MAX_LEN) {
                char name[NAME_MAX_LEN + 1];
                memcpy(name, h + 1, h->len);
                name[h->len] = 0;
                (void) sp_cgroup_remove(w->env->cgroups, name);
                (void) sp_msg_send(w->sock, FM_REMOVED, h->id, 0, 0, NULL, 0, NULL, 0);
        }
}

static _noreturn_ void worker_main(int sock, const factory_env *env) {
        worker_state w = {.sock = sock, .env = env};

        for (;;) {
                size_t n = w.n + 1;
                struct pollfd *pf = calloc(n, sizeof(*pf));
                if (!pf)
                        _exit(1);
                pf[0] = (struct pollfd){.fd = sock, .events = POLLIN};
                for (size_t i = 0; i < w.n; i++)
                        pf[i + 1] = (struct pollfd){.fd = sp_sandbox_control_fd(w.p[i].sb), .events = POLLIN};
                if (poll(pf, n, -1) < 0 && errno != EINTR)
                        _exit(1);
                /* Pending sandboxes first (from the end: a finished one is
                 * replaced by the last), then new requests. */
                for (size_t i = n - 1; i >= 1; i--)
                        if (pf[i].revents)
                                (void) worker_pending_event(&w, i - 1);
                if (pf[0].revents)
                        worker_request(&w);
                free(pf);
        }
}

/* Close every fd but those in keep (any order). */
static void close_all_except(int *keep, size_t n) {
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
                        int t = keep[j];
                        keep[j] = keep[j - 1];
                        keep[j - 1] = t;
                }
        unsigned from = 0;
        for (size_t i = 0; i <= n; i++) {
                unsigned to = i < n ? (unsigned) keep[i] : ~0U;
                if (i < n && keep[i] < 0)
                        continue;
                if (to > from)
                        (void) close_range(from, to == ~0U ? ~0U : to - 1, 0);
                from = to == ~0U ? to : to + 1;
        }
}

/* ---- the daemon's side ------------------------------------------------------ */

typedef struct worker {
        factory *f;
        unsigned index;
        pid_t pid;
        int fd, pidfd;
        sd_event_source *io_src, *pidfd_src;
        unsigned in_flight;
} worker;

struct factory_request {
        factory *f;
        factory_request *prev, *next;
        uint64_t tag;
        worker *w;
        int pidfd;               /* PID 1's, once cloned: reaped if the worker dies */
        char name[NAME_MAX_LEN + 1];
        uid_t id_base;
        factory_done_fn done;
        void *userdata;
        bool cancelled;
};

/* A cgroup removal a worker has not confirmed yet: sent again to another
 * worker if this one dies. */
typedef struct removal {
        struct removal *next;
        uint64_t tag;
        worker *w;
        char name[NAME_MAX_LEN + 1];
} removal;

typedef struct orphan {
        factory *f;
        sd_event_source *src;
        int pidfd;
        char name[NAME_MAX_LEN + 1]; /* "" when its cgroup is gone already */
} orphan;

struct factory {
        sd_event *event;
        factory_env env;
        unsigned n_workers;
        worker workers[MAX_WORKERS];
        factory_request *requests;
        removal *removals;
        uint64_t next_tag;
        unsigned next_worker;
        bool stopping;           /* factory_free(): finish everything synchronously */
};

static int worker_fork(factory *f, worker *w, sp_error *err);
static void reap_later(factory *f, int pidfd, const char *name);
static void removal_send(factory *f, removal *rm, int root_fd, int upper_fd);

static void request_unlink(factory_request *q) {
        factory *f = q->f;
        if (q->prev)
                q->prev->next = q->next;
        else
                f->requests = q->next;
        if (q->next)
                q->next->prev = q->prev;
        if (q->w && q->w->in_flight > 0)
                q->w->in_flight--;
}

static int on_orphan(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        orphan *o = userdata;
        siginfo_t si = {};

        long r = syscall(SYS_waitid, P_PIDFD, o->pidfd, &si, WEXITED | WNOHANG, NULL);
        if (r == 0 && si.si_pid == 0)
                return 0; /* spurious: still alive */
        if (o->name[0])
                factory_remove_cgroup(o->f, o->name, -EBADF, -EBADF);
        o->src = sd_event_source_disable_unref(o->src);
        safe_close(o->pidfd);
        free(o);
        return 0;
}

/* Kill a PID 1 nobody wants, reap it when it is gone, then remove its
 * cgroup (when name is given). Takes the pidfd. */
static void reap_later(factory *f, int pidfd, const char *name) {
        orphan *o = calloc(1, sizeof(*o));

        (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        if (f->stopping || !o || sd_event_add_io(f->event, &o->src, pidfd, EPOLLIN, on_orphan, o) < 0) {
                /* no memory: reap it the blocking way, it is dying already */
                siginfo_t si;
                (void) syscall(SYS_waitid, P_PIDFD, pidfd, &si, WEXITED, NULL);
                safe_close(pidfd);
                if (name)
                        factory_remove_cgroup(f, name, -EBADF, -EBADF);
                free(o);
                return;
        }
        (void) sd_event_source_set_priority(o->src, PRIO_ENDS);
        o->f = f;
        o->pidfd = pidfd;
        snprintf(o->name, sizeof(o->name), "%s", name ? name : "");
}

static void worker_answer(worker *w, const sp_msg_hdr *h, int fds[SP_MSG_MAX_FDS], size_t nfds) {
        factory *f = w->f;
        factory_request *q;
        sp_sandbox *sb = NULL;
        sp_error err = {};
        int error = 0;
        char msg[sizeof(err.message)] = "";

        if (h->type == FM_REMOVED) {
                for (removal **pp = &f->removals; *pp; pp = &(*pp)->next)
                        if ((*pp)->tag == h->id) {
                                removal *rm = *pp;
                                *pp = rm->next;
                                free(rm);
                                break;
                        }
                return;
        }
        for (q = f->requests; q && q->tag != h->id; q = q->next)
                ;
        if (h->type == FM_CLONED) {
                if (nfds == 1 && q && q->pidfd < 0)
                        q->pidfd = fds[0];
                else
                        for (size_t i = 0; i < nfds; i++)
                                safe_close(fds[i]);
                return;
        }
        if (h->type == FM_READY && nfds == 4 && h->len == sizeof(fm_ready)) {
                fm_ready m;
                memcpy(&m, h + 1, sizeof(m));
                sp_sandbox_handoff ho = {.pid = m.pid, .pidfd = fds[0], .ctl = fds[1], .root_fd = fds[2],
                                         .upper_fd = fds[3]};
                if (!q) {
                        /* nobody asked (cannot happen): do not keep it */
                        safe_close(ho.ctl);
                        safe_close(ho.root_fd);
                        safe_close(ho.upper_fd);
                        return reap_later(f, ho.pidfd, NULL);
                }
                error = sp_sandbox_adopt(q->name, q->id_base, f->env.cgroups, &ho, &sb, &err);
                if (error < 0)
                        snprintf(msg, sizeof(msg), "%s", err.message);
        } else if (h->type == FM_FAILED) {
                for (size_t i = 0; i < nfds; i++)
                        safe_close(fds[i]);
                error = h->err < 0 ? h->err : -EIO;
                snprintf(msg, sizeof(msg), "%.*s", (int) MIN(h->len, sizeof(msg) - 1), (const char *) (h + 1));
                /* PID 1 (killed by the worker, which removed its cgroup) */
                if (q && q->pidfd >= 0)
                        reap_later(f, TAKE_FD(q->pidfd), NULL);
        } else {
                for (size_t i = 0; i < nfds; i++)
                        safe_close(fds[i]);
                return;
        }
        if (!q)
                return;
        request_unlink(q);
        q->pidfd = safe_close(q->pidfd); /* the answer has its own, or none is needed */
        if (q->cancelled) {
                if (sb) {
                        int pidfd = fcntl(sp_sandbox_pidfd(sb), F_DUPFD_CLOEXEC, 3);
                        (void) sp_sandbox_kill(sb);
                        (void) sp_sandbox_release(sb);
                        if (pidfd >= 0)
                                reap_later(f, pidfd, q->name);
                }
                free(q);
                return;
        }
        factory_done_fn done = q->done;
        void *ud = q->userdata;
        free(q);
        done(error, error < 0 ? msg : NULL, sb, ud);
}

static int on_worker_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        worker *w = userdata;
        char buf[FM_BUF_SIZE];
        int fds[SP_MSG_MAX_FDS];
        size_t nfds = 0;
        ssize_t n = sp_msg_recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT, fds, &nfds);

        if (n == -EAGAIN || n == -EINTR)
                return 0;
        if (n <= 0) {
                for (size_t i = 0; i < nfds; i++)
                        safe_close(fds[i]);
                /* hung up: the worker is dying; its pidfd tells the rest */
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                return 0;
        }
        worker_answer(w, (const sp_msg_hdr *) buf, fds, nfds);
        return 0;
}

static void worker_close(worker *w) {
        w->io_src = sd_event_source_disable_unref(w->io_src);
        w->pidfd_src = sd_event_source_disable_unref(w->pidfd_src);
        w->fd = safe_close(w->fd);
        w->pidfd = safe_close(w->pidfd);
        w->pid = 0;
        w->in_flight = 0;
}

static int on_worker_died(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        worker *w = userdata;
        factory *f = w->f;
        siginfo_t si = {};
        sp_error err = {};

        (void) syscall(SYS_waitid, P_PIDFD, w->pidfd, &si, WEXITED | WNOHANG, NULL);
        log_error("sandbox factory worker %u (pid %d) died (%s %d): failing its starts, starting a new one",
                  w->index, (int) w->pid, si.si_code == CLD_EXITED ? "status" : "signal", si.si_status);
        worker_close(w);
        /* Its sandboxes in the making are lost (they die with it: their
         * PID 1 is the daemon's child, killed by the worker's loss of the
         * control socket's other end... or killed below). */
        for (factory_request *q = f->requests, *next; q; q = next) {
                next = q->next;
                if (q->w != w)
                        continue;
                q->w = NULL;
                request_unlink(q);
                /* PID 1, if it was cloned, dies with its setup (the other
                 * end of its control socket is gone); reap it, then remove
                 * its cgroup. Else the cgroup may exist alone. */
                if (q->pidfd >= 0)
                        reap_later(f, TAKE_FD(q->pidfd), q->name);
                else
                        factory_remove_cgroup(f, q->name, -EBADF, -EBADF);
                if (!q->cancelled)
                        q->done(-ECHILD, "the sandbox factory died while making it", NULL, q->userdata);
                free(q);
        }
        if (worker_fork(f, w, &err) < 0)
                log_error("cannot restart sandbox factory worker %u: %s", w->index, err.message);
        /* What it was asked to remove and did not confirm: again. */
        for (removal *rm = f->removals; rm; rm = rm->next)
                if (rm->w == w)
                        removal_send(f, rm, -EBADF, -EBADF);
        return 0;
}

static int worker_fork(factory *f, worker *w, sp_error *err) {
        int sp[2];
        int keep[2 + 2 * 8 + 3];
        size_t nkeep;
        pid_t parent = getpid();

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return sp_error_set(err, -errno, "socketpair: %m");
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                safe_close(sp[0]);
                safe_close(sp[1]);
                return sp_error_set(err, r, "fork the sandbox factory: %s", strerror(-r));
        }
        if (pid == 0) {
                sigset_t none;
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(0);
                (void) prctl(PR_SET_NAME, "sandpool-fact");
                /* Only what a worker needs: its socket, the cgroup
                 * manager's directories, stdio. No client connection, no
                 * listening socket, no other sandbox's fd. */
                nkeep = 0;
                keep[nkeep++] = 0;
                keep[nkeep++] = 1;
                keep[nkeep++] = 2;
                keep[nkeep++] = sp[1];
                nkeep += sp_cgroup_manager_fds(f->env.cgroups, keep + nkeep, ELEMENTSOF(keep) - nkeep);
                close_all_except(keep, nkeep);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                worker_main(sp[1], &f->env);
        }
        safe_close(sp[1]);
        w->f = f;
        w->pid = pid;
        w->fd = sp[0];
        w->pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        int r = w->pidfd < 0 ? -errno : 0;
        if (r >= 0)
                r = sd_event_add_io(f->event, &w->io_src, w->fd, EPOLLIN, on_worker_io, w);
        if (r >= 0)
                r = sd_event_source_set_priority(w->io_src, PRIO_WORK);
        if (r >= 0)
                r = sd_event_add_io(f->event, &w->pidfd_src, w->pidfd, EPOLLIN, on_worker_died, w);
        if (r >= 0)
                r = sd_event_source_set_priority(w->pidfd_src, PRIO_ENDS);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                worker_close(w);
                return sp_error_set(err, r, "watch the sandbox factory: %s", strerror(-r));
        }
        return 0;
}

int factory_new(sd_event *e, const factory_env *env, unsigned n_workers, factory **ret, sp_error *err) {
        factory *f = calloc(1, sizeof(*f));
        if (!f)
                return sp_error_set(err, -ENOMEM, "out of memory");
        if (n_workers == 0) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                n_workers = cpus > 0 ? (unsigned) cpus : 1;
        }
        f->event = sd_event_ref(e);
        f->env = *env;
        f->n_workers = MIN(n_workers, (unsigned) MAX_WORKERS);
        for (unsigned i = 0; i < f->n_workers; i++) {
                f->workers[i] = (worker){.index = i, .fd = -EBADF, .pidfd = -EBADF};
                int r = worker_fork(f, &f->workers[i], err);
                if (r < 0) {
                        f->n_workers = i;
                        factory_free(f);
                        return r;
                }
        }
        *ret = f;
        return 0;
}

void factory_free(factory *f) {
        if (!f)
                return;
        /* Whatever is still coming is nobody's now: killed, reaped and
         * removed here, synchronously (we are stopping). */
        f->stopping = true;
        for (factory_request *q = f->requests; q; q = q->next)
                q->cancelled = true;
        /* Our end's shutdown tells a worker to stop once it has read what
         * is queued (removals included); it kills what it was making,
         * removes those cgroups and exits. Meanwhile read its answers to
         * the end: a sandbox it handed over just now must not be lost. */
        for (unsigned i = 0; i < f->n_workers; i++) {
                worker *w = &f->workers[i];
                w->io_src = sd_event_source_disable_unref(w->io_src);
                w->pidfd_src = sd_event_source_disable_unref(w->pidfd_src);
                if (w->fd >= 0)
                        (void) shutdown(w->fd, SHUT_WR);
        }
        for (unsigned i = 0; i < f->n_workers; i++) {
                worker *w = &f->workers[i];
                while (w->fd >= 0) {
                        char buf[FM_BUF_SIZE];
                        int fds[SP_MSG_MAX_FDS];
                        size_t nfds = 0;
                        struct pollfd p = {.fd = w->fd, .events = POLLIN};
                        if (poll(&p, 1, 5000) <= 0)
                                break;
                        ssize_t n = sp_msg_recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT, fds, &nfds);
                        if (n == -EAGAIN || n == -EINTR || n == -EBADMSG)
                                continue;
                        if (n <= 0)
                                break;
                        worker_answer(w, (const sp_msg_hdr *) buf, fds, nfds);
                }
                w->fd = safe_close(w->fd);
        }
        for (unsigned i = 0; i < f->n_workers; i++) {
                worker *w = &f->workers[i];
                if (w->pidfd >= 0) {
                        siginfo_t si;
                        (void) syscall(SYS_waitid, P_PIDFD, w->pidfd, &si, WEXITED, NULL);
                }
                worker_close(w);
        }
        while (f->requests) {
                factory_request *q = f->requests;
                request_unlink(q);
                safe_close(q->pidfd);
                free(q);
        }
        /* The workers have done every removal queued to them before they
         * saw their socket close. */
        while (f->removals) {
                removal *rm = f->removals;
                f->removals = rm->next;
                free(rm);
        }
        sd_event_unref(f->event);
        free(f);
}

unsigned factory_n_workers(const factory *f) {
        return f->n_workers;
}

static worker *pick_worker(factory *f) {
        worker *best = NULL;
        for (unsigned k = 0; k < f->n_workers; k++) {
                worker *w = &f->workers[(f->next_worker + k) % f->n_workers];
                if (w->fd >= 0 && (!best || w->in_flight < best->in_flight))
                        best = w;
        }
        f->next_worker++;
        return best;
}

int factory_start(factory *f, const char *name, uid_t id_base, const sp_limits *limits, const factory_layers *fl,
                  factory_done_fn done, void *userdata, factory_request **ret, sp_error *err) {
        int fds[SP_MSG_MAX_FDS];
        size_t nfds = 0;
        worker *w = pick_worker(f);
        if (!w)
                return sp_error_set(err, -ECHILD, "no sandbox factory worker is running");
        if (strlen(name) > NAME_MAX_LEN || (fl && fl->seed_name && strlen(fl->seed_name) > NAME_MAX_LEN))
                return sp_error_set(err, -EINVAL, "sandbox name too long");
        if (fl && fl->n + (fl->seed_name ? 1 : 0) > SP_MSG_MAX_FDS)
                return sp_error_set(err, -E2BIG, "too many layers (at most %d with a fork's)", SP_MSG_MAX_FDS);
        factory_request *q = calloc(1, sizeof(*q));
        if (!q)
                return sp_error_set(err, -ENOMEM, "out of memory");
        *q = (factory_request){.f = f, .tag = ++f->next_tag, .w = w, .pidfd = -EBADF, .id_base = id_base,
                               .done = done, .userdata = userdata};
        snprintf(q->name, sizeof(q->name), "%s", name);
        fm_start m = {.id_base = id_base, .limits = *limits};
        snprintf(m.name, sizeof(m.name), "%s", name);
        for (size_t i = 0; fl && i < fl->n; i++)
                fds[nfds++] = fl->fds[i];
        m.n_layers = (uint32_t) nfds;
        if (fl && fl->seed_name) {
                fds[nfds++] = fl->seed_fd;
                m.seed_id_base = fl->seed_id_base;
                snprintf(m.seed_name, sizeof(m.seed_name), "%s", fl->seed_name);
        }
        int r = sp_msg_send(w->fd, FM_START, q->tag, 0, 0, &m, sizeof(m), nfds ? fds : NULL, nfds);
        if (r < 0) {
                free(q);
                return sp_error_set(err, r, "cannot reach the sandbox factory: %s", strerror(-r));
        }
        w->in_flight++;
        q->next = f->requests;
        if (f->requests)
                f->requests->prev = q;
        f->requests = q;
        *ret = q;
        return 0;
}

void factory_cancel(factory_request *q) {
        if (q)
                q->cancelled = true;
}

static void removal_send(factory *f, removal *rm, int root_fd, int upper_fd) {
        int fds[2], n = 0;
        if (root_fd >= 0)
                fds[n++] = root_fd;
        if (upper_fd >= 0)
                fds[n++] = upper_fd;
        rm->w = f->stopping ? NULL : pick_worker(f);
        if (rm->w && sp_msg_send(rm->w->fd, FM_REMOVE, rm->tag, 0, 0, rm->name, strlen(rm->name), fds, n) >= 0) {
                /* The message holds its own references: the worker's close
                 * is the last one, and pays for the unmount. */
                safe_close(root_fd);
                safe_close(upper_fd);
                return;
        }
        /* no worker to ask: do it here, rather than leak it (rare: it may
         * wait for the cgroup's last task to exit) */
        rm->w = NULL;
        safe_close(root_fd);
        safe_close(upper_fd);
        (void) sp_cgroup_remove(f->env.cgroups, rm->name);
}

void factory_remove_cgroup(factory *f, const char *name, int root_fd, int upper_fd) {
        removal *rm = calloc(1, sizeof(*rm));
        if (!rm) {
                safe_close(root_fd);
                safe_close(upper_fd);
                (void) sp_cgroup_remove(f->env.cgroups, name);
                return;
        }
        rm->tag = ++f->next_tag;
        snprintf(rm->name, sizeof(rm->name), "%s", name);
        removal_send(f, rm, root_fd, upper_fd);
        if (!rm->w) {
                free(rm);
                return;
        }
        rm->next = f->removals;
        f->removals = rm;
}
