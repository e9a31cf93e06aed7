/* SPDX-License-Identifier: MIT */
/* The pre-warmed pool: see pool.h. Everything here runs on the event loop
 * and never waits for a sandbox: starting one costs its parent-side setup
 * (~0.5 ms), the rest arrives as events. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "pool.h"

#define MAX_WARMING 4          /* sandboxes setting up at once */
#define STARTS_PER_DISPATCH 2  /* then let requests in */
#define BACKOFF_MIN_USEC 50000ULL
#define BACKOFF_MAX_USEC 30000000ULL

typedef enum entry_state { E_WARMING, E_WARM, E_DESTROYING } entry_state;

typedef struct entry entry;
struct entry {
        pool *p;
        entry *prev, *next;
        entry_state state;
        pool_sandbox ps;
        unsigned generation;     /* of the pool_env it was made with */
        bool was_allocated;      /* DESTROYING: came back from a session */
        sd_event_source *ctrl_src, *pidfd_src;
        uint64_t started_usec, destroy_usec;
};

typedef struct entry_list {
        entry *head, *tail;
        uint32_t n;
} entry_list;

struct pool {
        sd_event *event;
        pool_env env;
        pool_options o;
        unsigned generation;
        entry_list warming, warm, destroying;
        uint32_t n_allocated;
        bool shrunk;
        uint64_t last_take_usec;
        unsigned failures;       /* consecutive */
        uint64_t counter;
        uint32_t slot_hint;
        sd_event_source *refill_src, *backoff_timer, *idle_timer;
        pool_capacity_fn capacity_cb;
        void *userdata;
        pool_stats st;
        char last_error[256];
};

static const uint64_t hist_bounds[POOL_HIST_BUCKETS] = {
        250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, UINT64_MAX,
};

static uint64_t now_usec(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * 1000000u + (uint64_t) t.tv_nsec / 1000u;
}

static void hist_add(pool_histogram *h, uint64_t usec) {
        for (size_t i = 0; i < POOL_HIST_BUCKETS; i++)
                if (usec <= hist_bounds[i]) {
                        h->counts[i]++;
                        break;
                }
        h->sum_usec += usec;
        h->count++;
}

static void list_append(entry_list *l, entry *e) {
        e->prev = l->tail;
        e->next = NULL;
        if (l->tail)
                l->tail->next = e;
        else
                l->head = e;
        l->tail = e;
        l->n++;
}

static void list_remove(entry_list *l, entry *e) {
        if (e->prev)
                e->prev->next = e->next;
        else
                l->head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                l->tail = e->prev;
        e->prev = e->next = NULL;
        l->n--;
}

static entry_list *list_of(pool *p, entry_state s) {
        return s == E_WARMING ? &p->warming : s == E_WARM ? &p->warm : &p->destroying;
}

static uint32_t pool_total(const pool *p) {
        return p->warm.n + p->warming.n + p->n_allocated + p->destroying.n;
}

static uint32_t pool_target(const pool *p) {
        uint32_t t = p->shrunk ? p->o.min_pool_size : p->o.pool_size;
        return MIN(t, p->o.max_pool_size);
}

static void capacity_changed(pool *p) {
        if (p->capacity_cb)
                p->capacity_cb(p->userdata);
}

static void schedule_refill(pool *p);
static void entry_destroy_async(entry *e);

/* ---- destroying ------------------------------------------------------------ */

static void entry_finish(entry *e) {
        pool *p = e->p;
        uint64_t t0 = now_usec();
        int r = sp_sandbox_destroy(e->ps.sb);
        if (r < 0)
                log_warning("pool: cleaning up sandbox %s: %s", e->ps.name, strerror(-r));
        sp_idslot_release(&e->ps.slot);
        sd_event_source_disable_unref(e->ctrl_src);
        sd_event_source_disable_unref(e->pidfd_src);
        if (e->state == E_DESTROYING) {
                uint64_t us = t0 - e->destroy_usec + (now_usec() - t0);
                hist_add(&p->st.destroy_latency, us);
                p->st.last_destroy_usec = us;
                p->st.destroyed++;
        }
        list_remove(list_of(p, e->state), e);
        free(e);
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        entry *e = userdata;
        pool *p = e->p;

        if (e->state != E_DESTROYING) {
                /* PID 1 died while warm or warming: killed from outside, or
                 * the OOM killer. Count it and replace it. */
                if (e->state == E_WARM)
                        p->st.died_warm++;
                else
                        p->st.failed++;
                log_warning("pool: sandbox %s died while %s", e->ps.name, e->state == E_WARM ? "warm" : "warming");
                entry_destroy_async(e);
                return 0; /* the pidfd stays readable: we come back here */
        }
        entry_finish(e);
        capacity_changed(p);
        schedule_refill(p);
        return 0;
}

/* Kill now; the pidfd tells when the kernel is done, and entry_finish()
 * then frees what is left. */
static void entry_destroy_async(entry *e) {
        pool *p = e->p;
        (void) sp_sandbox_kill(e->ps.sb);
        e->ctrl_src = sd_event_source_disable_unref(e->ctrl_src);
        list_remove(list_of(p, e->state), e);
        e->state = E_DESTROYING;
        e->destroy_usec = now_usec();
        list_append(&p->destroying, e);
        if (!e->pidfd_src &&
            sd_event_add_io(p->event, &e->pidfd_src, sp_sandbox_pidfd(e->ps.sb), EPOLLIN, on_pidfd, e) < 0) {
                /* Cannot watch it: do it the blocking way (~1 ms). */
                entry_finish(e);
                capacity_changed(p);
        }
}

void pool_release(pool *p, pool_sandbox *ps) {
        entry *e = calloc(1, sizeof(*e));
        if (!e) {
                /* No memory for the bookkeeping: destroy synchronously. */
                (void) sp_sandbox_destroy(ps->sb);
                sp_idslot_release(&ps->slot);
                p->n_allocated--;
                capacity_changed(p);
                return;
        }
        e->p = p;
        e->ps = *ps;
        e->state = E_WARM; /* entry_destroy_async moves it from a list: use a transient one */
        e->was_allocated = true;
        list_append(&p->warm, e);
        p->n_allocated--;
        entry_destroy_async(e);
        *ps = (pool_sandbox){.slot = {.lock_fd = -1}};
}

/* ---- warming ---------------------------------------------------------------- */

static void record_failure(pool *p, const char *msg) {
        p->st.failed++;
        p->failures++;
        snprintf(p->last_error, sizeof(p->last_error), "%s", msg);
        log_error("pool: sandbox creation failed (%u in a row): %s", p->failures, msg);
}

static int on_control(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        entry *e = userdata;
        pool *p = e->p;

        for (;;) {
                sp_event ev;
                int r = sp_sandbox_next_event(e->ps.sb, &ev);
                if (r == -EAGAIN)
                        return 0;
                if (r < 0 || ev.type == SP_EVENT_FAILED) {
                        if (e->state == E_WARMING)
                                record_failure(p, r < 0 ? "PID 1 exited during setup" : ev.error.message);
                        else
                                p->st.died_warm++;
                        entry_destroy_async(e);
                        schedule_refill(p);
                        return 0;
                }
                if (ev.type == SP_EVENT_READY && e->state == E_WARMING) {
                        uint64_t now = now_usec();
                        list_remove(&p->warming, e);
                        e->state = E_WARM;
                        e->ps.created_usec = now;
                        list_append(&p->warm, e);
                        hist_add(&p->st.create_latency, now - e->started_usec);
                        p->st.last_create_usec = now - e->started_usec;
                        p->st.created++;
                        p->failures = 0;
                        capacity_changed(p);
                        schedule_refill(p);
                }
        }
}

static int start_sandbox(pool *p, const sp_limits *limits, pool_sandbox *ps, sp_error *err) {
        int r = sp_idslot_acquire(p->env.idslot_dir, p->env.id_base, p->env.n_slots, p->slot_hint++ % p->env.n_slots,
                                  &ps->slot);
        if (r < 0)
                return sp_error_set(err, r, "no free host id range in %s: %s", p->env.idslot_dir, strerror(-r));
        snprintf(ps->name, sizeof(ps->name), "sb-%" PRIu64, ++p->counter);
        sp_sandbox_spec spec = {
                .name = ps->name, .rootfs = p->env.rootfs, .stage_dir = p->env.stage_dir,
                .id_base = ps->slot.base, .limits = *limits, .cgroups = p->env.cgroups, .seccomp = p->env.seccomp,
        };
        r = sp_sandbox_start(&spec, &ps->sb, err);
        if (r < 0)
                sp_idslot_release(&ps->slot);
        return r;
}

int pool_start_sandbox(pool *p, const sp_limits *limits, pool_sandbox *ret, sp_error *err) {
        *ret = (pool_sandbox){.slot = {.lock_fd = -1}};
        int r = start_sandbox(p, limits, ret, err);
        if (r < 0)
                record_failure(p, err->message);
        return r;
}

static int start_one(pool *p) {
        sp_error err = {};
        entry *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->p = p;
        e->generation = p->generation;
        e->started_usec = now_usec();
        e->ps.slot.lock_fd = -1;
        int r = start_sandbox(p, &p->env.limits, &e->ps, &err);
        if (r < 0) {
                record_failure(p, err.message);
                free(e);
                return r;
        }
        e->state = E_WARMING;
        list_append(&p->warming, e);
        r = sd_event_add_io(p->event, &e->ctrl_src, sp_sandbox_control_fd(e->ps.sb), EPOLLIN, on_control, e);
        if (r >= 0)
                r = sd_event_add_io(p->event, &e->pidfd_src, sp_sandbox_pidfd(e->ps.sb), EPOLLIN, on_pidfd, e);
        if (r < 0) {
                e->state = E_DESTROYING;
                list_remove(&p->warming, e);
                list_append(&p->destroying, e);
                entry_finish(e);
                return r;
        }
        return 0;
}

static int on_backoff(sd_event_source *s, uint64_t usec, void *userdata) {
        pool *p = userdata;
        p->backoff_timer = sd_event_source_disable_unref(p->backoff_timer);
        schedule_refill(p);
        return 0;
}

static int on_refill(sd_event_source *s, void *userdata) {
        pool *p = userdata;
        p->refill_src = sd_event_source_disable_unref(p->refill_src);
        if (p->backoff_timer)
                return 0;
        for (unsigned i = 0; i < STARTS_PER_DISPATCH; i++) {
                if (p->warm.n + p->warming.n >= pool_target(p) || pool_total(p) >= p->o.max_pool_size ||
                    p->warming.n >= MAX_WARMING)
                        return 0;
                if (start_one(p) < 0) {
                        /* A broken image must not spin the CPU: back off,
                         * doubling up to 30 s. */
                        uint64_t delay = MIN(BACKOFF_MIN_USEC << MIN(p->failures, 20u), BACKOFF_MAX_USEC);
                        (void) sd_event_add_time_relative(p->event, &p->backoff_timer, CLOCK_MONOTONIC, delay, 0,
                                                          on_backoff, p);
                        return 0;
                }
        }
        schedule_refill(p); /* more to do: after the requests already waiting */
        return 0;
}

static void schedule_refill(pool *p) {
        if (p->refill_src || p->backoff_timer || !p->event)
                return;
        if (p->warm.n + p->warming.n >= pool_target(p) || pool_total(p) >= p->o.max_pool_size)
                return;
        if (p->failures > 0) {
                uint64_t delay = MIN(BACKOFF_MIN_USEC << MIN(p->failures - 1, 20u), BACKOFF_MAX_USEC);
                (void) sd_event_add_time_relative(p->event, &p->backoff_timer, CLOCK_MONOTONIC, delay, 0, on_backoff, p);
                return;
        }
        (void) sd_event_add_defer(p->event, &p->refill_src, on_refill, p);
}

/* ---- idle shrinking ------------------------------------------------------- */

static void arm_idle_timer(pool *p);

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        pool *p = userdata;
        p->idle_timer = sd_event_source_disable_unref(p->idle_timer);
        if (!p->o.aggressive_cleanup)
                return 0;
        if (now_usec() - p->last_take_usec < p->o.idle_timeout_ms * 1000u) {
                arm_idle_timer(p);
                return 0;
        }
        /* Nobody took a sandbox for container_idle_timeout: keep only the
         * minimum warm, oldest first, until demand comes back. */
        p->shrunk = true;
        while (p->warm.n > 0 && p->warm.n + p->warming.n > p->o.min_pool_size) {
                p->st.shrunk++;
                entry_destroy_async(p->warm.head);
        }
        return 0;
}

static void arm_idle_timer(pool *p) {
        p->idle_timer = sd_event_source_disable_unref(p->idle_timer);
        if (!p->o.aggressive_cleanup || p->shrunk || !p->event)
                return;
        uint64_t at = p->last_take_usec + p->o.idle_timeout_ms * 1000u;
        (void) sd_event_add_time(p->event, &p->idle_timer, CLOCK_MONOTONIC, at, 10000, on_idle, p);
}

/* ---- the interface -------------------------------------------------------- */

int pool_new(sd_event *e, const pool_env *env, const pool_options *o, pool_capacity_fn cb, void *userdata,
             pool **ret) {
        pool *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->env = *env;
        p->o = *o;
        p->capacity_cb = cb;
        p->userdata = userdata;
        p->last_take_usec = now_usec();
        if (p->env.n_slots == 0)
                p->env.n_slots = 1;
        schedule_refill(p);
        arm_idle_timer(p);
        *ret = p;
        return 0;
}

static bool limits_equal(const sp_limits *a, const sp_limits *b) {
        return a->memory_bytes == b->memory_bytes && a->cpu_pct == b->cpu_pct && a->pids == b->pids &&
               a->disk_bytes == b->disk_bytes;
}

void pool_reconfigure(pool *p, const pool_env *env, const pool_options *o) {
        bool same = limits_equal(&p->env.limits, &env->limits) && streq_ptr(p->env.rootfs, env->rootfs) &&
                    p->env.seccomp == env->seccomp;
        p->env = *env;
        p->o = *o;
        if (!same) {
                /* Warm sandboxes were made for the old configuration. */
                p->generation++;
                while (p->warm.head)
                        entry_destroy_async(p->warm.head);
        }
        /* Shrink to the new size if it is smaller; sessions are left alone. */
        while (p->warm.n > 0 && p->warm.n + p->warming.n > pool_target(p))
                entry_destroy_async(p->warm.head);
        arm_idle_timer(p);
        schedule_refill(p);
}

int pool_take(pool *p, const sp_limits *limits, pool_sandbox *ret, sp_error *err) {
        p->last_take_usec = now_usec();
        if (p->shrunk) {
                p->shrunk = false;
                arm_idle_timer(p);
        } else if (!p->idle_timer)
                arm_idle_timer(p);

        if (limits->disk_bytes != p->env.limits.disk_bytes) {
                p->st.misses++;
                schedule_refill(p);
                return sp_error_set(err, -EINVAL, "a disk quota other than the default needs a sandbox of its own");
        }
        /* The most recently warmed: its pages are the likeliest still hot. */
        entry *e = p->warm.tail;
        while (e && e->generation != p->generation)
                e = e->prev;
        if (!e) {
                p->st.misses++;
                schedule_refill(p);
                return -EAGAIN;
        }
        if (!limits_equal(limits, &p->env.limits)) {
                int r = sp_sandbox_set_limits(e->ps.sb, limits, err);
                if (r < 0) {
                        p->st.misses++;
                        schedule_refill(p);
                        return r;
                }
        }
        e->ctrl_src = sd_event_source_disable_unref(e->ctrl_src);
        e->pidfd_src = sd_event_source_disable_unref(e->pidfd_src);
        list_remove(&p->warm, e);
        *ret = e->ps;
        free(e);
        p->n_allocated++;
        p->st.hits++;
        schedule_refill(p);
        return 0;
}

bool pool_reserve(pool *p) {
        if (pool_total(p) >= p->o.max_pool_size) {
                /* Full of warm sandboxes nobody can use (other limits)? Make room. */
                entry *e = p->warm.head;
                if (!e)
                        return false;
                entry_destroy_async(e);
                return false;
        }
        p->n_allocated++;
        return true;
}

void pool_unreserve(pool *p) {
        if (p->n_allocated > 0)
                p->n_allocated--;
        capacity_changed(p);
        schedule_refill(p);
}

void pool_get_stats(pool *p, pool_stats *ret) {
        *ret = p->st;
        ret->available = p->warm.n;
        ret->warming = p->warming.n;
        ret->allocated = p->n_allocated;
        ret->destroying = p->destroying.n;
        ret->total = pool_total(p);
        ret->max_capacity = p->o.max_pool_size;
        ret->target = pool_target(p);
        ret->last_error = p->last_error[0] ? p->last_error : NULL;
        for (size_t i = 0; i < POOL_HIST_BUCKETS; i++)
                ret->create_latency.le_usec[i] = ret->destroy_latency.le_usec[i] = hist_bounds[i];
}

void pool_describe(pool *p, char *buf, size_t size) {
        snprintf(buf, size, "pool %u/%u warm, %u warming, %u in use, %u/%u total%s", p->warm.n, pool_target(p),
                 p->warming.n, p->n_allocated, pool_total(p), p->o.max_pool_size,
                 p->failures ? ", creation failing" : "");
}

void pool_free(pool *p) {
        if (!p)
                return;
        p->refill_src = sd_event_source_disable_unref(p->refill_src);
        p->backoff_timer = sd_event_source_disable_unref(p->backoff_timer);
        p->idle_timer = sd_event_source_disable_unref(p->idle_timer);
        /* Kill everything first, then reap: the kernel tears the sandboxes
         * down in parallel. */
        entry_list *lists[] = {&p->warming, &p->warm, &p->destroying};
        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                for (entry *e = lists[i]->head; e; e = e->next)
                        (void) sp_sandbox_kill(e->ps.sb);
        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                while (lists[i]->head)
                        entry_finish(lists[i]->head);
        sd_event_unref(p->event);
        free(p);
}
