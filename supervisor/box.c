/* SPDX-License-Identifier: MIT */
/* The supervisor's handle on one sandbox: see box.h. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>

#include "box.h"
#include "log.h"
#include "priority.h"
#include "time-util.h"

struct box {
        sd_event *event;
        factory *factory;
        factory_request *req;    /* STARTING: the factory is making it */
        box_state state;
        sp_sandbox *sb;          /* NULL until the factory hands it over */
        sp_idslot slot;
        char name[32];
        sp_limits limits;
        sd_event_source *ctrl_src, *pidfd_src;
        const box_holder_ops *ops;
        void *userdata;
        box_destroyed_fn done;
        void *done_userdata;
        uint64_t started_usec, ready_usec, kill_usec;
};

static void box_free(box *b) {
        b->ctrl_src = sd_event_source_disable_unref(b->ctrl_src);
        b->pidfd_src = sd_event_source_disable_unref(b->pidfd_src);
        factory_cancel(TAKE_PTR(b->req));
        /* The sources went first, while their fds were still open: the fd
         * numbers are reused as soon as the sandbox closes them. */
        if (b->sb) {
                /* PID 1 is reaped here (it is dead: this does not wait);
                 * the cgroup's directories go in the factory. */
                int root_fd = sp_sandbox_take_root_fd(b->sb);
                int upper_fd = sp_sandbox_take_upper_fd(b->sb);
                int r = sp_sandbox_release(b->sb);
                if (r < 0)
                        log_warning("sandbox %s: cleaning up: %s", b->name, strerror(-r));
                factory_remove_cgroup(b->factory, b->name, root_fd, upper_fd);
        }
        sp_idslot_release(&b->slot);
        sd_event_unref(b->event);
        free(b);
}

/* PID 1 is gone: how, in the kernel's words. */
static void describe_death(box *b, char *buf, size_t size) {
        sp_sandbox_stats st = {};
        int code = 0, status = 0;

        bool reaped = sp_sandbox_try_reap(b->sb, &code, &status) >= 0;
        bool oom = sp_sandbox_stats_read(b->sb, &st) >= 0 && st.cgroup.oom_kills > 0;
        if (reaped && code == CLD_KILLED && status == SIGKILL && oom)
                snprintf(buf, size, "its PID 1 was killed by the OOM killer");
        else if (reaped && (code == CLD_KILLED || code == CLD_DUMPED))
                snprintf(buf, size, "its PID 1 was killed by signal %d (%s)%s", status, strsignal(status),
                         oom ? " after an OOM kill" : "");
        else if (reaped)
                snprintf(buf, size, "its PID 1 exited with status %d", status);
        else
                snprintf(buf, size, "its PID 1 closed its control socket");
}

static void box_finish(box *b) {
        box_destroyed_fn done = b->done;
        void *ud = b->done_userdata;
        uint64_t us = now_mono() - b->kill_usec;

        box_free(b);
        if (done)
                done(b, us, ud); /* b is only an identity now */
}

/* Forward the next event PID 1 sent: 1 when one was forwarded (the holder
 * may have changed, or destroyed the box), 0 when none is queued, -EPIPE
 * when the socket is done, its source then off for good. */
static int forward_next(box *b) {
        for (;;) {
                sp_event ev;
                int r = sp_sandbox_next_event(b->sb, &ev);
                if (r == -EAGAIN)
                        return 0;
                if (r < 0) {
                        (void) sd_event_source_set_enabled(b->ctrl_src, SD_EVENT_OFF);
                        return -EPIPE;
                }
                switch (ev.type) {
                case SP_EVENT_READY:
                        if (b->state != BOX_STARTING)
                                break;
                        b->state = BOX_READY;
                        b->ready_usec = now_mono();
                        b->ops->ready(b, 0, NULL, b->userdata);
                        return 1;
                case SP_EVENT_FAILED:
                        if (b->state != BOX_STARTING)
                                break;
                        b->state = BOX_DEAD;
                        (void) sd_event_source_set_enabled(b->ctrl_src, SD_EVENT_OFF);
                        (void) sp_sandbox_kill(b->sb);
                        b->ops->ready(b, ev.error.code < 0 ? ev.error.code : -EIO, ev.error.message, b->userdata);
                        return -EPIPE;
                case SP_EVENT_STARTED:
                case SP_EVENT_EXITED:
                        if (b->state != BOX_READY || !b->ops->command)
                                break;
                        b->ops->command(b, &ev, b->userdata);
                        return 1;
                default:
                        break;
                }
        }
}

static bool box_alive(const box *b) {
        return b->state == BOX_STARTING || b->state == BOX_READY;
}

static int on_control(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        box *b = userdata;

        if (!box_alive(b)) {
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                return 0;
        }
        /* One event per dispatch, level-triggered: a sandbox with many
         * exits to report takes turns with every other source. */
        if (forward_next(b) == -EPIPE && box_alive(b))
                /* Hung up: PID 1 is exiting. Make sure it does; the pidfd
                 * then tells how it ended. */
                (void) sp_sandbox_kill(b->sb);
        return 0;
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        box *b = userdata;
        char cause[160];

        /* A pidfd stays readable once its process has exited (and after it
         * is reaped): this source fires once, and again only when
         * box_destroy() asks, to finish the job from the loop. */
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (b->state == BOX_DESTROYING) {
                box_finish(b);
                return 0;
        }
        /* Exits PID 1 reported before it died go first, so that commands
         * end with their real status. */
        while (box_alive(b) && forward_next(b) == 1)
                ;
        if (!box_alive(b))
                return 0; /* failed setup, or the holder destroyed it meanwhile */
        box_state was = b->state;
        (void) sd_event_source_set_enabled(b->ctrl_src, SD_EVENT_OFF);
        describe_death(b, cause, sizeof(cause));
        b->state = BOX_DEAD;
        if (was == BOX_STARTING)
                b->ops->ready(b, -ECHILD, cause, b->userdata);
        else if (b->ops->died)
                b->ops->died(b, cause, b->userdata);
        return 0;
}

static int box_watch(box *b) {
        int r = sd_event_add_io(b->event, &b->ctrl_src, sp_sandbox_control_fd(b->sb), EPOLLIN, on_control, b);
        if (r >= 0)
                /* Commands' exits go with their output (same priority, in
                 * the order they became ready): a command's last lines are
                 * read before its exit finishes it. A death is the pidfd's
                 * to tell, at PRIO_ENDS. */
                r = sd_event_source_set_priority(b->ctrl_src, PRIO_WORK);
        if (r >= 0)
                r = sd_event_add_io(b->event, &b->pidfd_src, sp_sandbox_pidfd(b->sb), EPOLLIN, on_pidfd, b);
        if (r >= 0)
                r = sd_event_source_set_priority(b->pidfd_src, PRIO_ENDS);
        return r;
}

/* The factory's answer. */
static void box_made(int error, const char *message, sp_sandbox *sb, void *userdata) {
        box *b = userdata;
        char msg[256];

        b->req = NULL;
        b->sb = sb;
        if (sb && box_watch(b) < 0) {
                (void) sp_sandbox_kill(sb);
                if (error == 0)
                        error = -ENOMEM;
                message = "cannot watch the sandbox";
        }
        if (b->state == BOX_DESTROYING) {
                /* destroyed while it was being made */
                if (b->pidfd_src && sd_event_source_set_enabled(b->pidfd_src, SD_EVENT_ONESHOT) >= 0) {
                        (void) sp_sandbox_kill(sb);
                        return; /* on_pidfd finishes it */
                }
                box_finish(b);
                return;
        }
        if (error < 0) {
                snprintf(msg, sizeof(msg), "%s", message ? message : strerror(-error));
                b->state = BOX_DEAD;
                if (b->ctrl_src)
                        (void) sd_event_source_set_enabled(b->ctrl_src, SD_EVENT_OFF);
                if (b->pidfd_src)
                        (void) sd_event_source_set_enabled(b->pidfd_src, SD_EVENT_OFF);
                b->ops->ready(b, error, msg, b->userdata);
                return;
        }
        b->state = BOX_READY;
        b->ready_usec = now_mono();
        b->ops->ready(b, 0, NULL, b->userdata);
}

int box_start(sd_event *e, const box_env *env, const sp_limits *limits, const char *name, uint32_t slot_hint,
              const box_holder_ops *ops, void *userdata, box **ret, sp_error *err) {
        box *b = calloc(1, sizeof(*b));
        int r;

        if (!b)
                return sp_error_set(err, -ENOMEM, "out of memory");
        b->slot.lock_fd = -EBADF;
        b->limits = *limits;
        b->ops = ops;
        b->userdata = userdata;
        b->factory = env->factory;
        b->started_usec = now_mono();
        snprintf(b->name, sizeof(b->name), "%s", name);
        r = sp_idslot_acquire(env->idslot_dir, env->id_base, MAX(env->n_slots, 1u), slot_hint % MAX(env->n_slots, 1u),
                              &b->slot);
        if (r < 0) {
                free(b);
                return sp_error_set(err, r, "no free host id range in %s: %s", env->idslot_dir, strerror(-r));
        }
        b->event = sd_event_ref(e);
        b->state = BOX_STARTING;
        r = factory_start(env->factory, b->name, b->slot.base, limits, &env->layers, box_made, b, &b->req, err);
        if (r < 0) {
                box_free(b);
                return r;
        }
        *ret = b;
        return 0;
}

void box_set_holder(box *b, const box_holder_ops *ops, void *userdata) {
        b->ops = ops;
        b->userdata = userdata;
}

void box_destroy(box *b, box_destroyed_fn done, void *userdata) {
        if (b->state == BOX_DESTROYING)
                return;
        b->state = BOX_DESTROYING;
        b->done = done;
        b->done_userdata = userdata;
        b->kill_usec = now_mono();
        if (b->req)
                return; /* still being made: box_made() finishes it */
        if (!b->sb) {
                /* never made: nothing to wait for (the caller may be our
                 * own callback: box_made() does not touch b after it) */
                box_finish(b);
                return;
        }
        (void) sd_event_source_set_enabled(b->ctrl_src, SD_EVENT_OFF);
        (void) sp_sandbox_kill(b->sb);
        /* The pidfd is readable once PID 1 is gone, reaped or not: it
         * finishes the destruction from the loop, never inside the caller,
         * which may be one of our own callbacks. */
        if (sd_event_source_set_enabled(b->pidfd_src, SD_EVENT_ONESHOT) < 0)
                log_warning("sandbox %s: cannot watch its pidfd; freed at exit", b->name);
}

void box_kill(box *b) {
        if (b->sb)
                (void) sp_sandbox_kill(b->sb);
}

void box_destroy_now(box *b) {
        b->state = BOX_DESTROYING;
        b->done = NULL;
        if (b->sb) {
                /* Killed (by the caller, all at once, or here); wait until
                 * the kernel is done with it so that the reap succeeds. */
                struct pollfd p = {.fd = sp_sandbox_pidfd(b->sb), .events = POLLIN};
                (void) sp_sandbox_kill(b->sb);
                (void) poll(&p, 1, 5000);
        }
        box_free(b);
}

int box_set_limits(box *b, const sp_limits *limits, sp_error *err) {
        if (b->state != BOX_READY || !b->sb)
                return sp_error_set(err, -EBUSY, "sandbox %s is not ready", b->name);
        int r = sp_sandbox_set_limits(b->sb, limits, err);
        if (r >= 0)
                b->limits = *limits;
        return r;
}

box_state box_get_state(const box *b) {
        return b->state;
}
sp_sandbox *box_sandbox(const box *b) {
        return b->sb;
}
const char *box_name(const box *b) {
        return b->name;
}
const sp_limits *box_limits(const box *b) {
        return &b->limits;
}
uint64_t box_started_usec(const box *b) {
        return b->started_usec;
}
uint64_t box_ready_usec(const box *b) {
        return b->ready_usec;
}
