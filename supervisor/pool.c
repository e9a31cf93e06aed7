/* SPDX-License-Identifier: MIT */
/* The pre-warmed pool: see pool.h. Everything here runs on the event loop
 * and never waits for a sandbox: starting one costs its parent-side setup
 * (~0.5 ms), the rest arrives as events on its box. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "pool.h"
#include "priority.h"
#include "time-util.h"

#define MAX_WARMING 8          /* sandboxes being made at once (by the factory's workers) */
#define STARTS_PER_DISPATCH 2  /* then let requests in */
#define BACKOFF_MIN_USEC 50000ULL
#define FAILURES_BEFORE_ANSWER 3 /* in a row: then a waiting caller is told */
#define BACKOFF_MAX_USEC 30000000ULL

typedef enum entry_state { E_WARMING, E_WARM, E_IN_USE, E_DESTROYING, _E_MAX } entry_state;

/* One entry per sandbox, from box_start() to its reaping: the pool is its
 * one owner, and its state says which list it is on. */
struct pool_sandbox {
        pool *p;
        pool_sandbox *prev, *next;
        entry_state state;
        box *b;
        unsigned generation;     /* of the pool_env it was made with */
        pool_waiter *waiter;     /* E_WARMING: made for this waiter's limits */
};

typedef struct entry_list {
        pool_sandbox *head, *tail;
        uint32_t n;
} entry_list;

struct pool_waiter {
        pool *p;
        pool_waiter *prev, *next; /* in p->waiters unless it has its own entry */
        sp_limits limits;
        pool_sandbox *own;        /* a sandbox being made for its limits */
        bool fork;                /* own is a fork's: never made again without its files */
        pool_acquired_fn cb;
        void *userdata;
        uint32_t owner;
        bool has_owner;
};

/* Pools that share one cap (the default pool and the templates' pools):
 * the count of every live sandbox of every member. */
typedef struct pool_group {
        uint32_t total;
        uint64_t counter;        /* for sandbox names, unique across the group */
        unsigned refs;
        pool *members;
} pool_group;

struct pool {
        sd_event *event;
        pool_group *group;
        pool *group_next;
        pool_env env;
        pool_options o;
        unsigned generation;
        entry_list lists[_E_MAX];
        pool_waiter *waiters_head, *waiters_tail; /* FIFO, any sandbox of the defaults will do */
        uint32_t n_waiters;
        bool shrunk;
        uint64_t last_take_usec;
        unsigned failures;       /* consecutive */
        uint32_t slot_hint;
        sd_event_source *refill_src, *backoff_timer, *idle_timer;
        pool_capacity_fn capacity_cb;
        void *userdata;
        pool_over_share_fn over_share;
        void *over_share_userdata;
        pool_stats st;
        char last_error[256];
};

static const uint64_t hist_bounds[POOL_HIST_BUCKETS] = {
        250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, UINT64_MAX,
};

static void hist_add(pool_histogram *h, uint64_t usec) {
        for (size_t i = 0; i < POOL_HIST_BUCKETS; i++)
                if (usec <= hist_bounds[i]) {
                        h->counts[i]++;
                        break;
                }
        h->sum_usec += usec;
        h->count++;
}

static void list_append(entry_list *l, pool_sandbox *e) {
        e->prev = l->tail;
        e->next = NULL;
        if (l->tail)
                l->tail->next = e;
        else
                l->head = e;
        l->tail = e;
        l->n++;
}

static void list_remove(entry_list *l, pool_sandbox *e) {
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

static void entry_move(pool_sandbox *e, entry_state to) {
        list_remove(&e->p->lists[e->state], e);
        e->state = to;
        list_append(&e->p->lists[to], e);
}

#define N(p, s) ((p)->lists[s].n)

static uint32_t pool_total(const pool *p) {
        return N(p, E_WARMING) + N(p, E_WARM) + N(p, E_IN_USE) + N(p, E_DESTROYING);
}

/* What counts against the cap: every live sandbox of the group. */
static uint32_t cap_used(const pool *p) {
        return p->group->total;
}

static uint32_t pool_target(const pool *p) {
        uint32_t t = p->shrunk ? p->o.min_pool_size : p->o.pool_size;
        return MIN(t, p->o.max_pool_size);
}

/* How many sandboxes of the defaults should be warm or warming: the
 * target, plus one for each caller waiting for one. */
static uint32_t pool_demand(const pool *p) {
        return pool_target(p) + p->n_waiters;
}

static uint32_t n_warming_shared(const pool *p) {
        uint32_t n = 0;
        for (pool_sandbox *e = p->lists[E_WARMING].head; e; e = e->next)
                n += !e->waiter;
        return n;
}

static void capacity_changed(pool *p) {
        if (p->capacity_cb)
                p->capacity_cb(p->userdata);
}

static bool limits_equal(const sp_limits *a, const sp_limits *b) {
        return a->memory_bytes == b->memory_bytes && a->cpu_pct == b->cpu_pct && a->pids == b->pids &&
               a->disk_bytes == b->disk_bytes;
}

/* Can a sandbox made with the defaults serve these limits? Memory, cpu
 * and pids can be lowered in its cgroup; the size of its writable layer
 * (which follows the disk quota and the memory limit) is fixed. */
static bool limits_fit_default(const pool *p, const sp_limits *l) {
        return sp_limits_disk_size(l) == sp_limits_disk_size(&p->env.limits) &&
               l->memory_bytes <= p->env.limits.memory_bytes && l->cpu_pct <= p->env.limits.cpu_pct &&
               l->pids <= p->env.limits.pids;
}

static void schedule_refill(pool *p);
static void entry_destroy(pool_sandbox *e);

/* ---- the waiters ----------------------------------------------------------- */

static void waiter_unlink(pool_waiter *w) {
        pool *p = w->p;
        if (w->own) {
                w->own->waiter = NULL;
                w->own = NULL;
                return;
        }
        if (w->prev)
                w->prev->next = w->next;
        else
                p->waiters_head = w->next;
        if (w->next)
                w->next->prev = w->prev;
        else
                p->waiters_tail = w->prev;
        w->prev = w->next = NULL;
        p->n_waiters--;
}

void pool_set_fair_share(pool *p, pool_over_share_fn over_share, void *userdata) {
        p->over_share = over_share;
        p->over_share_userdata = userdata;
}

void pool_waiter_set_owner(pool_waiter *w, uint32_t owner) {
        w->owner = owner;
        w->has_owner = true;
}

/* The waiter a shared sandbox goes to: the oldest under its share. */
static pool_waiter *waiter_next(pool *p) {
        if (p->over_share)
                for (pool_waiter *w = p->waiters_head; w; w = w->next)
                        if (!w->has_owner || !p->over_share(w->owner, p->over_share_userdata))
                                return w;
        return p->waiters_head;
}

void pool_cancel(pool_waiter *w) {
        if (!w)
                return;
        waiter_unlink(w);
        free(w);
}

/* Give a ready sandbox to the waiter (and its limits to the sandbox): the
 * callback goes last, and may release the sandbox at once. */
static void waiter_serve(pool_waiter *w, pool_sandbox *e) {
        pool_acquired_fn cb = w->cb;
        void *ud = w->userdata;
        sp_error err = {};
        int r = 0;

        if (!limits_equal(&w->limits, box_limits(e->b)))
                /* a sandbox of the defaults, for limits that lower them */
                r = box_set_limits(e->b, &w->limits, &err);
        waiter_unlink(w);
        free(w);
        if (r < 0) {
                entry_destroy(e);
                cb(NULL, r, err.message, ud);
                return;
        }
        entry_move(e, E_IN_USE);
        cb(e, 0, NULL, ud);
}

/* ---- destroying ------------------------------------------------------------ */

static void box_pool_ready(box *b, int error, const char *message, void *userdata);
static void box_pool_died(box *b, const char *cause, void *userdata);
static const box_holder_ops pool_holder = {
        .ready = box_pool_ready,
        .died = box_pool_died,
};

static void on_destroyed(box *b, uint64_t usec, void *userdata) {
        pool_sandbox *e = userdata;
        pool *p = e->p;

        hist_add(&p->st.destroy_latency, usec);
        p->st.last_destroy_usec = usec;
        p->st.destroyed++;
        list_remove(&p->lists[E_DESTROYING], e);
        p->group->total--;
        free(e);
        capacity_changed(p);
        /* a slot is free for every pool of the group */
        for (pool *q = p->group->members; q; q = q->group_next)
                schedule_refill(q);
}

/* Kill now; the box tells when the kernel is done. */
static void entry_destroy(pool_sandbox *e) {
        if (e->state == E_DESTROYING)
                return;
        box_set_holder(e->b, &pool_holder, e);
        entry_move(e, E_DESTROYING);
        box_destroy(e->b, on_destroyed, e);
}

void pool_release(pool *p, pool_sandbox *ps) {
        entry_destroy(ps);
}

box *pool_sandbox_box(const pool_sandbox *ps) {
        return ps->b;
}

/* ---- warming ---------------------------------------------------------------- */

static void record_failure(pool *p, const char *msg) {
        p->st.failed++;
        p->failures++;
        snprintf(p->last_error, sizeof(p->last_error), "%s", msg);
        log_error("pool: sandbox creation failed (%u in a row): %s", p->failures, msg);
}

static int start_entry(pool *p, const sp_limits *limits, pool_sandbox **ret, sp_error *err);

static void box_pool_ready(box *b, int error, const char *message, void *userdata) {
        pool_sandbox *e = userdata;
        pool *p = e->p;
        pool_waiter *w = e->waiter;

        if (e->state != E_WARMING)
                return;
        if (error < 0) {
                record_failure(p, message ? message : strerror(-error));
                /* One sandbox that dies while it is made (killed from
                 * outside) is not the caller's failure: it waits for the
                 * next one. Several in a row are (a broken image): the
                 * caller it was made for, or the one waiting longest,
                 * hears of it; it does not hang. */
                if (!w)
                        w = p->waiters_head;
                entry_destroy(e);
                if (w && p->failures < FAILURES_BEFORE_ANSWER && !w->fork) {
                        if (w->own) {
                                /* made for its limits: make another */
                                pool_sandbox *again;
                                sp_error err = {};
                                /* the failed one is no longer its */
                                e->waiter = NULL;
                                w->own = NULL;
                                if (start_entry(p, &w->limits, &again, &err) >= 0) {
                                        again->waiter = w;
                                        w->own = again;
                                        return;
                                }
                                /* no other: it hears of this failure (it
                                 * is on no queue: not waiter_unlink()) */
                                pool_acquired_fn cb = w->cb;
                                void *ud = w->userdata;
                                free(w);
                                schedule_refill(p);
                                cb(NULL, error, message, ud);
                                return;
                        } else {
                                schedule_refill(p);
                                return;
                        }
                }
                schedule_refill(p);
                if (w) {
                        pool_acquired_fn cb = w->cb;
                        void *ud = w->userdata;
                        waiter_unlink(w);
                        free(w);
                        cb(NULL, error, message, ud);
                }
                return;
        }
        uint64_t took = box_ready_usec(b) - box_started_usec(b);
        hist_add(&p->st.create_latency, took);
        p->st.last_create_usec = took;
        p->st.created++;
        p->failures = 0;
        if (!w && e->generation == p->generation && limits_equal(box_limits(b), &p->env.limits))
                w = waiter_next(p);
        if (w) {
                schedule_refill(p);
                waiter_serve(w, e); /* last: the callback may release it */
                return;
        }
        if (e->generation != p->generation || !limits_equal(box_limits(b), &p->env.limits)) {
                /* made for a caller who left, or for an older configuration */
                entry_destroy(e);
                return;
        }
        entry_move(e, E_WARM);
        schedule_refill(p);
        capacity_changed(p);
}

static void box_pool_died(box *b, const char *cause, void *userdata) {
        pool_sandbox *e = userdata;
        pool *p = e->p;

        /* A warm sandbox died unused: killed from outside, or the OOM
         * killer. Count it and replace it. */
        if (e->state == E_WARM)
                p->st.died_warm++;
        log_warning("pool: sandbox %s died while warm: %s", box_name(b), cause);
        entry_destroy(e);
        schedule_refill(p);
}

static int start_entry_on(pool *p, const box_env *env, const sp_limits *limits, pool_sandbox **ret, sp_error *err) {
        char name[32];
        pool_sandbox *e = calloc(1, sizeof(*e));
        if (!e)
                return sp_error_set(err, -ENOMEM, "out of memory");
        e->p = p;
        e->generation = p->generation;
        /* The pid keeps names unique across restarts: what a crashed daemon
         * left (a cgroup, a stage directory) never blocks a new one. */
        snprintf(name, sizeof(name), "sb-%d-%" PRIu64, (int) getpid(), ++p->group->counter);
        int r = box_start(p->event, env, limits, name, p->slot_hint++, &pool_holder, e, &e->b, err);
        if (r < 0) {
                record_failure(p, err->message);
                free(e);
                return r;
        }
        e->state = E_WARMING;
        list_append(&p->lists[E_WARMING], e);
        p->group->total++;
        *ret = e;
        return 0;
}

static int start_entry(pool *p, const sp_limits *limits, pool_sandbox **ret, sp_error *err) {
        return start_entry_on(p, &p->env.box, limits, ret, err);
}

static bool refill_needed(const pool *p) {
        return N(p, E_WARM) + n_warming_shared(p) < pool_demand(p) && cap_used(p) < p->o.max_pool_size;
}

static int on_refill(sd_event_source *s, void *userdata);

static int on_backoff(sd_event_source *s, uint64_t usec, void *userdata) {
        pool *p = userdata;
        p->backoff_timer = sd_event_source_disable_unref(p->backoff_timer);
        /* The wait is over: try again now. (Through schedule_refill() this
         * would only arm the next backoff while failures > 0, and the pool
         * would never be refilled after one failure.) */
        if (!p->refill_src && refill_needed(p) &&
            sd_event_add_defer(p->event, &p->refill_src, on_refill, p) >= 0)
                (void) sd_event_source_set_priority(p->refill_src, PRIO_WORK);
        return 0;
}

static void arm_backoff(pool *p, unsigned shift) {
        /* A broken image must not spin the CPU: back off, doubling up to 30 s. */
        uint64_t delay = MIN(BACKOFF_MIN_USEC << MIN(shift, 20u), BACKOFF_MAX_USEC);
        (void) sd_event_add_time_relative(p->event, &p->backoff_timer, CLOCK_MONOTONIC, delay, 0, on_backoff, p);
}

static int on_refill(sd_event_source *s, void *userdata) {
        pool *p = userdata;
        p->refill_src = sd_event_source_disable_unref(p->refill_src);
        if (p->backoff_timer)
                return 0;
        for (unsigned i = 0; i < STARTS_PER_DISPATCH; i++) {
                if (!refill_needed(p) || N(p, E_WARMING) >= MAX_WARMING)
                        return 0;
                pool_sandbox *e;
                sp_error err = {};
                if (start_entry(p, &p->env.limits, &e, &err) < 0) {
                        /* the caller waiting longest hears of it */
                        pool_waiter *w = p->waiters_head;
                        arm_backoff(p, p->failures);
                        if (w) {
                                pool_acquired_fn cb = w->cb;
                                void *ud = w->userdata;
                                waiter_unlink(w);
                                free(w);
                                cb(NULL, err.code ? err.code : -EIO, err.message, ud);
                        }
                        return 0;
                }
        }
        schedule_refill(p); /* more to do: after the requests already waiting */
        return 0;
}

static void schedule_refill(pool *p) {
        if (p->refill_src || p->backoff_timer || !p->event)
                return;
        if (!refill_needed(p))
                return;
        if (p->failures > 0) {
                arm_backoff(p, p->failures - 1);
                return;
        }
        if (sd_event_add_defer(p->event, &p->refill_src, on_refill, p) >= 0)
                (void) sd_event_source_set_priority(p->refill_src, PRIO_WORK);
}

/* ---- idle shrinking ------------------------------------------------------- */

static void arm_idle_timer(pool *p);

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        pool *p = userdata;
        p->idle_timer = sd_event_source_disable_unref(p->idle_timer);
        if (!p->o.aggressive_cleanup)
                return 0;
        if (now_mono() - p->last_take_usec < p->o.idle_timeout_ms * 1000u) {
                arm_idle_timer(p);
                return 0;
        }
        /* Nobody took a sandbox for container_idle_timeout: keep only the
         * minimum warm, oldest first, until demand comes back. */
        p->shrunk = true;
        while (N(p, E_WARM) > 0 && N(p, E_WARM) + N(p, E_WARMING) > p->o.min_pool_size) {
                p->st.shrunk++;
                entry_destroy(p->lists[E_WARM].head);
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
        p->group = o->share_cap_with ? o->share_cap_with->group : calloc(1, sizeof(pool_group));
        if (!p->group) {
                free(p);
                return -ENOMEM;
        }
        p->group->refs++;
        p->group_next = p->group->members;
        p->group->members = p;
        p->event = sd_event_ref(e);
        p->env = *env;
        p->o = *o;
        p->capacity_cb = cb;
        p->userdata = userdata;
        p->last_take_usec = now_mono();
        schedule_refill(p);
        arm_idle_timer(p);
        *ret = p;
        return 0;
}

void pool_reconfigure(pool *p, const pool_env *env, const pool_options *o) {
        bool same = limits_equal(&p->env.limits, &env->limits);
        p->env = *env;
        p->o = *o;
        p->o.share_cap_with = NULL; /* the group stays */
        if (!same) {
                /* Warm sandboxes were made for the old configuration. */
                p->generation++;
                while (p->lists[E_WARM].head)
                        entry_destroy(p->lists[E_WARM].head);
        }
        /* Shrink to the new size if it is smaller; sessions are left alone. */
        while (N(p, E_WARM) > 0 && N(p, E_WARM) + N(p, E_WARMING) > pool_target(p))
                entry_destroy(p->lists[E_WARM].head);
        arm_idle_timer(p);
        schedule_refill(p);
}

static void note_take(pool *p) {
        p->last_take_usec = now_mono();
        if (p->shrunk) {
                p->shrunk = false;
                arm_idle_timer(p);
        } else if (!p->idle_timer)
                arm_idle_timer(p);
}

/* The most recently warmed of the current configuration: its pages are
 * the likeliest still hot. */
static pool_sandbox *warm_newest(pool *p) {
        pool_sandbox *e = p->lists[E_WARM].tail;
        while (e && e->generation != p->generation)
                e = e->prev;
        return e;
}

int pool_acquire(pool *p, const sp_limits *limits, pool_acquired_fn cb, void *userdata, pool_sandbox **ret_ps,
                 pool_waiter **ret_waiter, sp_error *err) {
        bool fits = limits_fit_default(p, limits);
        pool_sandbox *e;
        int r;

        note_take(p);
        *ret_ps = NULL;
        *ret_waiter = NULL;
        if (fits && (e = warm_newest(p))) {
                if (!limits_equal(limits, &p->env.limits)) {
                        r = box_set_limits(e->b, limits, err);
                        if (r < 0)
                                return r;
                }
                entry_move(e, E_IN_USE);
                p->st.hits++;
                schedule_refill(p);
                *ret_ps = e;
                return 1;
        }
        p->st.misses++;
        pool_waiter *w = calloc(1, sizeof(*w));
        if (!w)
                return sp_error_set(err, -ENOMEM, "out of memory");
        *w = (pool_waiter){.p = p, .limits = *limits, .cb = cb, .userdata = userdata};
        if (fits) {
                /* The next sandbox of the defaults that becomes ready is
                 * this caller's: one already warming, or one started now. */
                uint32_t room = p->o.max_pool_size - MIN(cap_used(p), p->o.max_pool_size);
                /* Only when a sandbox is coming for it: one warming that no
                 * earlier waiter is promised, or room to start one. */
                if (p->n_waiters < n_warming_shared(p) + room) {
                        w->prev = p->waiters_tail;
                        if (p->waiters_tail)
                                p->waiters_tail->next = w;
                        else
                                p->waiters_head = w;
                        p->waiters_tail = w;
                        p->n_waiters++;
                        schedule_refill(p);
                        *ret_waiter = w;
                        return 0;
                }
        } else if (cap_used(p) < p->o.max_pool_size) {
                /* Limits no warm sandbox can serve: one of its own. */
                r = start_entry(p, limits, &e, err);
                if (r < 0) {
                        free(w);
                        return r;
                }
                e->waiter = w;
                w->own = e;
                *ret_waiter = w;
                return 0;
        } else if (p->lists[E_WARM].head) {
                /* Full, partly of warm sandboxes this caller cannot use:
                 * make room for the next try. */
                entry_destroy(p->lists[E_WARM].head);
        }
        free(w);
        return sp_error_set(err, -EBUSY, "all %u sandboxes are in use", p->o.max_pool_size);
}

int pool_acquire_fork(pool *p, const sp_limits *limits, const pool_fork_source *src, pool_acquired_fn cb,
                      void *userdata, pool_waiter **ret_waiter, sp_error *err) {
        pool_sandbox *e;
        *ret_waiter = NULL;
        if (cap_used(p) >= p->o.max_pool_size)
                return sp_error_set(err, -EBUSY, "all %u sandboxes are in use", p->o.max_pool_size);
        pool_waiter *w = calloc(1, sizeof(*w));
        if (!w)
                return sp_error_set(err, -ENOMEM, "out of memory");
        *w = (pool_waiter){.p = p, .limits = *limits, .cb = cb, .userdata = userdata, .fork = true};
        box_env env = p->env.box;
        env.layers.seed_fd = src->upper_fd;
        env.layers.seed_id_base = src->id_base;
        env.layers.seed_name = src->name;
        int r = start_entry_on(p, &env, limits, &e, err);
        if (r < 0) {
                free(w);
                return r;
        }
        e->waiter = w;
        w->own = e;
        *ret_waiter = w;
        return 0;
}

void pool_get_stats(pool *p, pool_stats *ret) {
        *ret = p->st;
        ret->available = N(p, E_WARM);
        ret->warming = N(p, E_WARMING);
        ret->allocated = N(p, E_IN_USE);
        ret->destroying = N(p, E_DESTROYING);
        ret->total = pool_total(p);
        ret->max_capacity = p->o.max_pool_size;
        ret->target = pool_target(p);
        ret->last_error = p->last_error[0] ? p->last_error : NULL;
        for (size_t i = 0; i < POOL_HIST_BUCKETS; i++)
                ret->create_latency.le_usec[i] = ret->destroy_latency.le_usec[i] = hist_bounds[i];
}

void pool_describe(pool *p, char *buf, size_t size) {
        snprintf(buf, size, "pool %u/%u warm, %u warming, %u in use, %u/%u total%s", N(p, E_WARM), pool_target(p),
                 N(p, E_WARMING), N(p, E_IN_USE), pool_total(p), p->o.max_pool_size,
                 p->failures ? ", creation failing" : "");
}

void pool_free(pool *p) {
        if (!p)
                return;
        p->refill_src = sd_event_source_disable_unref(p->refill_src);
        p->backoff_timer = sd_event_source_disable_unref(p->backoff_timer);
        p->idle_timer = sd_event_source_disable_unref(p->idle_timer);
        while (p->waiters_head)
                pool_cancel(p->waiters_head);
        /* Kill everything first, then reap: the kernel tears the sandboxes
         * down in parallel. */
        for (size_t i = 0; i < _E_MAX; i++)
                for (pool_sandbox *e = p->lists[i].head; e; e = e->next)
                        box_kill(e->b);
        for (size_t i = 0; i < _E_MAX; i++)
                while (p->lists[i].head) {
                        pool_sandbox *e = p->lists[i].head;
                        if (e->waiter)
                                pool_cancel(e->waiter);
                        list_remove(&p->lists[i], e);
                        p->group->total--;
                        box_destroy_now(e->b);
                        free(e);
                }
        for (pool **pp = &p->group->members; *pp; pp = &(*pp)->group_next)
                if (*pp == p) {
                        *pp = p->group_next;
                        break;
                }
        /* the others of the group may use what this one held */
        for (pool *q = p->group->members; q; q = q->group_next)
                schedule_refill(q);
        if (--p->group->refs == 0)
                free(p->group);
        sd_event_unref(p->event);
        free(p);
}
