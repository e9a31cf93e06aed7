/* SPDX-License-Identifier: MIT */
/* Unit test of the pool's bookkeeping (supervisor/pool.c), linked with a
 * fake box instead of box.c: the test decides when each sandbox becomes
 * ready, fails, dies or is reaped, and checks what the pool counts, hands
 * out and asks for. A real sd-event loop runs the pool's own sources
 * (refills, backoff). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "box.h"
#include "pool.h"
#include "time-util.h"

/* ---- the fake box --------------------------------------------------------- */

struct box {
        box *next;
        char name[32];
        sp_limits limits;
        box_state state;
        const box_holder_ops *ops;
        void *userdata;
        box_destroyed_fn done;
        void *done_userdata;
        uint64_t started, ready;
        bool freed;
};

static box *boxes;      /* every box ever made, newest first */
static int fail_starts; /* box_start() fails this many more times */
static unsigned n_started, n_destroyed_now;

int box_start(sd_event *e, const box_env *env, const sp_limits *limits, const char *name, uint32_t slot_hint,
              const box_holder_ops *ops, void *userdata, box **ret, sp_error *err) {
        if (fail_starts > 0) {
                fail_starts--;
                return sp_error_set(err, -EIO, "fake start failure");
        }
        box *b = calloc(1, sizeof(*b));
        assert_non_null(b);
        snprintf(b->name, sizeof(b->name), "%s", name);
        b->limits = *limits;
        b->state = BOX_STARTING;
        b->ops = ops;
        b->userdata = userdata;
        b->started = now_mono();
        b->next = boxes;
        boxes = b;
        n_started++;
        *ret = b;
        return 0;
}

void box_set_holder(box *b, const box_holder_ops *ops, void *userdata) {
        b->ops = ops;
        b->userdata = userdata;
}

void box_destroy(box *b, box_destroyed_fn done, void *userdata) {
        assert_false(b->freed);
        if (b->state == BOX_DESTROYING)
                return;
        b->state = BOX_DESTROYING;
        b->done = done;
        b->done_userdata = userdata;
}

void box_destroy_now(box *b) {
        assert_false(b->freed);
        b->freed = true;
        n_destroyed_now++;
}

void box_kill(box *b) {
}

int box_set_limits(box *b, const sp_limits *limits, sp_error *err) {
        assert_int_equal(b->state, BOX_READY);
        b->limits = *limits;
        return 0;
}

const sp_limits *box_limits(const box *b) {
        return &b->limits;
}
const char *box_name(const box *b) {
        return b->name;
}
uint64_t box_started_usec(const box *b) {
        return b->started;
}
uint64_t box_ready_usec(const box *b) {
        return b->ready;
}

/* What the kernel would do, when the test says so. */
static void fake_ready(box *b, int error) {
        assert_int_equal(b->state, BOX_STARTING);
        b->state = error ? BOX_DEAD : BOX_READY;
        b->ready = now_mono();
        b->ops->ready(b, error, error ? "fake setup failure" : NULL, b->userdata);
}

static void fake_die(box *b) {
        assert_int_equal(b->state, BOX_READY);
        b->state = BOX_DEAD;
        b->ops->died(b, "its PID 1 was killed by signal 9 (Killed)", b->userdata);
}

/* Every box being destroyed is reaped now. Returns how many. */
static unsigned fake_reap_all(void) {
        unsigned n = 0;
        for (box *b = boxes; b; b = b->next)
                if (b->state == BOX_DESTROYING && !b->freed) {
                        b->freed = true;
                        n++;
                        if (b->done)
                                b->done(b, 100, b->done_userdata);
                }
        return n;
}

static unsigned count(box_state s) {
        unsigned n = 0;
        for (box *b = boxes; b; b = b->next)
                n += !b->freed && b->state == s;
        return n;
}

/* Make every starting box ready, until the pool stops asking for more. */
static void fake_ready_all(void) {
        for (box *b = boxes; b; b = b->next)
                if (!b->freed && b->state == BOX_STARTING)
                        fake_ready(b, 0);
}

/* ---- the harness ------------------------------------------------------------ */

static sd_event *ev;
static unsigned capacity_calls;

static void on_capacity(void *userdata) {
        capacity_calls++;
}

/* Run the loop's ready sources (refills) until nothing is pending. */
static void settle(void) {
        for (int i = 0; i < 100; i++)
                if (sd_event_run(ev, 0) <= 0)
                        return;
}

static const sp_limits defaults = {
        .memory_bytes = 256ull << 20, .cpu_pct = 25, .pids = 256, .disk_bytes = 512ull << 20,
};

static pool *make_pool(uint32_t size, uint32_t min, uint32_t max) {
        pool *p;
        pool_env env = {.box = {.idslot_dir = "/nonexistent", .id_base = 100000, .n_slots = 16},
                        .limits = defaults};
        pool_options o = {.pool_size = size, .min_pool_size = min, .max_pool_size = max,
                          .aggressive_cleanup = false, .idle_timeout_ms = 300000};
        assert_int_equal(pool_new(ev, &env, &o, on_capacity, NULL, &p), 0);
        return p;
}

static pool_stats stats(pool *p) {
        pool_stats st;
        pool_get_stats(p, &st);
        return st;
}

typedef struct answer {
        int calls;
        int error;
        pool_sandbox *ps;
} answer;

static void on_acquired(pool_sandbox *ps, int error, const char *message, void *userdata) {
        answer *a = userdata;
        a->calls++;
        a->error = error;
        a->ps = ps;
}

static int setup(void **state) {
        assert_int_equal(sd_event_new(&ev), 0);
        boxes = NULL;
        fail_starts = 0;
        n_started = n_destroyed_now = capacity_calls = 0;
        return 0;
}

static int teardown(void **state) {
        while (boxes) {
                box *b = boxes;
                boxes = b->next;
                free(b);
        }
        ev = sd_event_unref(ev);
        return 0;
}

/* ---- the tests -------------------------------------------------------------- */

static void test_fills_to_its_size_and_hands_out_warm(void **state) {
        pool *p = make_pool(4, 1, 6);
        answer a = {};
        pool_sandbox *ps;
        pool_waiter *w;
        sp_error err = {};

        settle();
        assert_int_equal(count(BOX_STARTING), 4);
        assert_int_equal(stats(p).warming, 4);
        fake_ready_all();
        settle();
        pool_stats st = stats(p);
        assert_int_equal(st.available, 4);
        assert_int_equal(st.warming, 0);
        assert_int_equal(st.created, 4);
        assert_int_equal(n_started, 4);

        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a, &ps, &w, &err), 1);
        assert_non_null(ps);
        assert_null(w);
        assert_int_equal(a.calls, 0);
        st = stats(p);
        assert_int_equal(st.available, 3);
        assert_int_equal(st.allocated, 1);
        assert_int_equal(st.hits, 1);
        /* and it refills at once */
        settle();
        assert_int_equal(count(BOX_STARTING), 1);
        pool_release(p, ps);
        assert_int_equal(stats(p).destroying, 1);
        assert_int_equal(fake_reap_all(), 1);
        st = stats(p);
        assert_int_equal(st.destroying, 0);
        assert_int_equal(st.allocated, 0);
        assert_int_equal(st.destroyed, 1);
        pool_free(p);
}

static void test_waiters_get_the_next_ready_one_in_order(void **state) {
        pool *p = make_pool(0, 0, 3);
        answer a1 = {}, a2 = {};
        pool_sandbox *ps;
        pool_waiter *w1, *w2;
        sp_error err = {};

        settle();
        assert_int_equal(n_started, 0); /* size 0: nothing warm */
        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a1, &ps, &w1, &err), 0);
        assert_non_null(w1);
        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a2, &ps, &w2, &err), 0);
        settle();
        assert_int_equal(count(BOX_STARTING), 2); /* one for each waiter */
        /* the one that is ready first goes to the one that waited longest */
        fake_ready(boxes, 0);
        assert_int_equal(a1.calls, 1);
        assert_int_equal(a1.error, 0);
        assert_int_equal(a2.calls, 0);
        fake_ready_all();
        assert_int_equal(a2.calls, 1);
        assert_ptr_not_equal(a1.ps, a2.ps);
        assert_int_equal(stats(p).allocated, 2);
        pool_free(p);
}

/* The fair share's answer for each owner: 1 is over its share. */
static bool owner_over_share(uint32_t owner, void *userdata) {
        return owner == 1;
}

static void test_a_waiter_under_its_share_is_served_before_older_ones_over_it(void **state) {
        pool *p = make_pool(0, 0, 3);
        answer a1 = {}, a2 = {}, b = {}, anon = {};
        pool_sandbox *ps;
        pool_waiter *w;
        sp_error err = {};

        pool_set_fair_share(p, owner_over_share, NULL);
        /* owner 1 (over its share) waits twice, then owner 2 (under it) */
        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a1, &ps, &w, &err), 0);
        pool_waiter_set_owner(w, 1);
        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a2, &ps, &w, &err), 0);
        pool_waiter_set_owner(w, 1);
        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &b, &ps, &w, &err), 0);
        pool_waiter_set_owner(w, 2);
        settle();
        assert_int_equal(count(BOX_STARTING), 3);
        /* the first ready sandbox is owner 2's, though it waited last */
        fake_ready(boxes, 0);
        assert_int_equal(b.calls, 1);
        assert_int_equal(b.error, 0);
        assert_int_equal(a1.calls + a2.calls, 0);
        /* then, everyone over its share, the oldest */
        fake_ready(boxes->next, 0);
        assert_int_equal(a1.calls, 1);
        assert_int_equal(a2.calls, 0);
        fake_ready(boxes->next->next, 0);
        assert_int_equal(a2.calls, 1);
        /* a waiter that names no owner is never held back */
        pool_release(p, b.ps);
        fake_reap_all();
        settle();
        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &anon, &ps, &w, &err), 0);
        settle();
        fake_ready_all();
        assert_int_equal(anon.calls, 1);
        assert_int_equal(anon.error, 0);
        pool_free(p);
}

static void test_the_cap_counts_every_state(void **state) {
        pool *p = make_pool(2, 0, 3);
        answer a = {};
        pool_sandbox *ps[4];
        pool_waiter *w;
        sp_error err = {};

        settle();
        fake_ready_all();
        settle();
        for (int i = 0; i < 3; i++) {
                int r = pool_acquire(p, &defaults, on_acquired, &a, &ps[i], &w, &err);
                if (r == 0) { /* the third: a waiter for a sandbox that is coming */
                        settle();
                        fake_ready_all();
                        assert_int_equal(a.calls, 1);
                        ps[i] = a.ps;
                } else
                        assert_int_equal(r, 1);
                settle();
                fake_ready_all();
                settle();
        }
        pool_stats st = stats(p);
        assert_int_equal(st.allocated, 3);
        assert_int_equal(st.total, 3);
        /* full: no waiter without a sandbox to come for it */
        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a, &ps[3], &w, &err), -EBUSY);
        assert_null(w);
        /* one released but not yet reaped still counts */
        pool_release(p, ps[0]);
        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a, &ps[3], &w, &err), -EBUSY);
        capacity_calls = 0;
        fake_reap_all();
        assert_true(capacity_calls > 0); /* capacity waiters are told */
        assert_int_equal(stats(p).total, 2);
        pool_free(p);
}

static void test_lowered_limits_use_a_warm_one_others_get_their_own(void **state) {
        pool *p = make_pool(1, 0, 4);
        answer a = {};
        pool_sandbox *ps;
        pool_waiter *w;
        sp_error err = {};
        sp_limits lower = defaults, other_disk = defaults;

        settle();
        fake_ready_all();
        lower.cpu_pct = 10;
        assert_int_equal(pool_acquire(p, &lower, on_acquired, &a, &ps, &w, &err), 1);
        assert_int_equal(box_limits(pool_sandbox_box(ps))->cpu_pct, 10);
        /* a disk quota of its own needs a sandbox made for it */
        other_disk.disk_bytes = 64ull << 20;
        unsigned before = n_started;
        assert_int_equal(pool_acquire(p, &other_disk, on_acquired, &a, &ps, &w, &err), 0);
        assert_int_equal(n_started, before + 1);
        assert_int_equal(boxes->limits.disk_bytes, 64ull << 20);
        fake_ready(boxes, 0);
        assert_int_equal(a.calls, 1);
        assert_int_equal(box_limits(pool_sandbox_box(a.ps))->disk_bytes, 64ull << 20);
        pool_free(p);
}

static void test_a_cancelled_waiter_is_never_called(void **state) {
        pool *p = make_pool(0, 0, 2);
        answer a = {};
        pool_sandbox *ps;
        pool_waiter *w;
        sp_error err = {};

        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a, &ps, &w, &err), 0);
        settle();
        pool_cancel(w);
        fake_ready_all();
        assert_int_equal(a.calls, 0);
        /* nobody wants it and the pool's size is 0: destroyed, not kept */
        assert_int_equal(stats(p).available + stats(p).destroying, 1);
        pool_free(p);
}

static void test_failures_answer_waiters_back_off_and_recover(void **state) {
        pool *p = make_pool(1, 0, 2);
        answer a = {};
        pool_sandbox *ps;
        pool_waiter *w;
        sp_error err = {};

        settle();
        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a, &ps, &w, &err), 0);
        settle();
        /* every starting one fails, again and again: after a few the
         * waiter hears of it, it does not hang */
        for (int round = 0; round < 10 && a.calls == 0; round++) {
                for (box *b = boxes; b; b = b->next)
                        if (b->state == BOX_STARTING)
                                fake_ready(b, -EIO);
                fake_reap_all();
                usec_t until = now_mono() + 2 * USEC_PER_SEC;
                while (a.calls == 0 && count(BOX_STARTING) == 0 && now_mono() < until)
                        (void) sd_event_run(ev, 10 * 1000);
        }
        assert_int_equal(a.calls, 1);
        assert_int_equal(a.error, -EIO);
        assert_true(stats(p).failed >= 1);
        fake_reap_all();
        settle();
        /* backing off: nothing is started at once... */
        unsigned started = n_started;
        assert_int_equal(count(BOX_STARTING), 0);
        /* ...but after the backoff it tries again (it once never did) */
        usec_t deadline = now_mono() + 2 * USEC_PER_SEC;
        while (n_started == started && now_mono() < deadline)
                (void) sd_event_run(ev, 10 * 1000);
        assert_true(n_started > started);
        fake_ready_all();
        settle();
        assert_int_equal(stats(p).available, 1);
        pool_free(p);
}

static void test_one_death_in_the_making_is_not_the_waiters_failure(void **state) {
        pool *p = make_pool(0, 0, 2);
        answer a = {};
        pool_sandbox *ps;
        pool_waiter *w;
        sp_error err = {};

        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a, &ps, &w, &err), 0);
        settle();
        fake_ready(boxes, -ECHILD); /* killed from outside while it was made */
        assert_int_equal(a.calls, 0);
        fake_reap_all();
        usec_t until = now_mono() + 2 * USEC_PER_SEC;
        while (count(BOX_STARTING) == 0 && now_mono() < until)
                (void) sd_event_run(ev, 10 * 1000);
        fake_ready_all();
        assert_int_equal(a.calls, 1);
        assert_int_equal(a.error, 0);
        pool_free(p);
}

static void test_a_sandbox_of_its_own_that_dies_in_the_making_is_made_again(void **state) {
        pool *p = make_pool(0, 0, 3);
        answer a = {};
        pool_sandbox *ps;
        pool_waiter *w;
        sp_error err = {};
        sp_limits small_disk = defaults;

        small_disk.disk_bytes = 32ull << 20;
        assert_int_equal(pool_acquire(p, &small_disk, on_acquired, &a, &ps, &w, &err), 0);
        box *first = boxes;
        fake_ready(first, -ECHILD);
        assert_int_equal(a.calls, 0);
        assert_ptr_not_equal(boxes, first); /* another one, for the same limits */
        assert_int_equal(boxes->limits.disk_bytes, 32ull << 20);
        fake_ready(boxes, 0);
        assert_int_equal(a.calls, 1);
        assert_int_equal(a.error, 0);
        /* the failed one is still being destroyed: its entry must not
         * cancel the (served, freed) waiter again */
        pool_free(p);
}

static void test_a_warm_one_that_dies_is_replaced(void **state) {
        pool *p = make_pool(2, 0, 4);

        settle();
        fake_ready_all();
        settle();
        box *victim = NULL;
        for (box *b = boxes; b; b = b->next)
                if (b->state == BOX_READY)
                        victim = b;
        assert_non_null(victim);
        if (!victim)
                return;
        fake_die(victim);
        pool_stats st = stats(p);
        assert_int_equal(st.died_warm, 1);
        assert_int_equal(st.available, 1);
        assert_int_equal(victim->state, BOX_DESTROYING);
        fake_reap_all();
        settle();
        assert_int_equal(count(BOX_STARTING), 1);
        fake_ready_all();
        assert_int_equal(stats(p).available, 2);
        pool_free(p);
}

static void test_free_destroys_everything(void **state) {
        pool *p = make_pool(3, 0, 5);
        answer a = {};
        pool_sandbox *ps;
        pool_waiter *w;
        sp_error err = {};

        settle();
        fake_ready(boxes, 0); /* one warm, two still starting */
        assert_int_equal(pool_acquire(p, &defaults, on_acquired, &a, &ps, &w, &err), 1);
        pool_release(p, ps);  /* one being destroyed */
        pool_free(p);
        for (box *b = boxes; b; b = b->next)
                assert_true(b->freed);
        assert_int_equal(a.calls, 0);
}

/* A template's pool shares the default pool's cap: together they never
 * hold more than max_pool_size, names stay unique, and a slot freed in one
 * lets the other refill. */
static void test_pools_of_a_group_share_one_cap(void **state) {
        pool *p = make_pool(2, 0, 3), *t;
        pool_env env = {.box = {.idslot_dir = "/nonexistent", .id_base = 100000, .n_slots = 16}, .limits = defaults};
        pool_options o = {.pool_size = 2, .min_pool_size = 2, .max_pool_size = 3, .idle_timeout_ms = 300000,
                          .share_cap_with = p};
        answer a = {};
        pool_sandbox *ps;
        pool_waiter *w;
        sp_error err = {};

        assert_int_equal(pool_new(ev, &env, &o, on_capacity, NULL, &t), 0);
        settle();
        fake_ready_all();
        settle();
        /* 2 + 2 wanted, 3 allowed in all */
        assert_int_equal(stats(p).total + stats(t).total, 3);
        for (box *b = boxes; b; b = b->next)
                for (box *c = b->next; c; c = c->next)
                        assert_string_not_equal(b->name, c->name);
        /* taking from the template's pool while everything is full */
        int r = pool_acquire(t, &defaults, on_acquired, &a, &ps, &w, &err);
        if (r == 0) {
                pool_cancel(w);
                assert_int_equal(stats(t).available, 0);
        } else {
                assert_int_equal(r, 1);
                /* a freed slot of the group refills the one below its size */
                uint32_t before = stats(p).total + stats(t).total;
                pool_release(t, ps);
                settle();
                fake_reap_all();
                settle();
                fake_ready_all();
                settle();
                assert_int_equal(stats(p).total + stats(t).total, before);
        }
        pool_free(t);
        /* the default pool takes the freed room */
        settle();
        fake_ready_all();
        settle();
        assert_int_equal(stats(p).available, 2);
        pool_free(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_fills_to_its_size_and_hands_out_warm, setup, teardown),
                cmocka_unit_test_setup_teardown(test_waiters_get_the_next_ready_one_in_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_the_cap_counts_every_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_a_waiter_under_its_share_is_served_before_older_ones_over_it,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_lowered_limits_use_a_warm_one_others_get_their_own, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_a_cancelled_waiter_is_never_called, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failures_answer_waiters_back_off_and_recover, setup, teardown),
                cmocka_unit_test_setup_teardown(test_one_death_in_the_making_is_not_the_waiters_failure, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_a_sandbox_of_its_own_that_dies_in_the_making_is_made_again,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_a_warm_one_that_dies_is_replaced, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_destroys_everything, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pools_of_a_group_share_one_cap, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
