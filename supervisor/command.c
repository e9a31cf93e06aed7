/* SPDX-License-Identifier: MIT */
/* Background commands of a session, as job sinks: see command.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "time-util.h"
#include "util.h"

struct command_reader {
        command *c;
        command_reader *prev, *next;
        const command_reader_ops *ops;
        void *userdata;
        const uint64_t *hold_off;   /* a reader that holds the command back */
};

struct command {
        command_set *set;
        command *prev, *next;       /* in the set, oldest first */
        uint64_t id;
        char **argv;
        bool pty;
        job *j;                     /* while running */
        job_sink *sink;
        pid_t pid;
        usec_t started_real, ended_real;
        outring ring[2];
        bool exited;
        job_result res;             /* once exited; its strings copied below */
        char ended_by[64], ended_detail[160];
        command_reader *readers;
};

struct command_set {
        command *first, *last;
        unsigned n, n_running, max;
        outring_budget budget;      /* the memory of all their rings */
};

command_set *command_set_new(unsigned max_commands, size_t buffer_total) {
        command_set *set = calloc(1, sizeof(*set));

        if (set)
                *set = (command_set){.max = max_commands ? max_commands : 1, .budget = {.max = buffer_total}};
        return set;
}

static void command_wake(command *c) {
        for (command_reader *rd = c->readers, *next; rd; rd = next) {
                next = rd->next;
                rd->ops->wake(rd, rd->userdata);
        }
}

static void command_free(command *c) {
        command_set *set = c->set;

        while (c->readers) {
                command_reader *rd = c->readers;
                c->readers = rd->next;
                const command_reader_ops *ops = rd->ops;
                void *ud = rd->userdata;
                free(rd);
                ops->gone(ud);
        }
        if (c->sink)
                job_detach(c->sink); /* a background job lives on without it */
        if (!c->exited)
                set->n_running--;
        if (c->prev)
                c->prev->next = c->next;
        else
                set->first = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                set->last = c->prev;
        set->n--;
        for (int i = 0; i < 2; i++)
                outring_done(&c->ring[i]);
        strv_free(c->argv);
        free(c);
}

void command_set_free(command_set *set) {
        if (!set)
                return;
        while (set->first)
                command_free(set->first);
        free(set);
}

int command_set_reserve(command_set *set) {
        /* Memory first: exited commands give their rings back to running
         * ones once half the budget is spent, oldest first. */
        for (command *c = set->first, *next; c && set->budget.used > set->budget.max / 2; c = next) {
                next = c->next;
                if (c->exited)
                        command_free(c);
        }
        if (set->n < set->max)
                return 0;
        for (command *c = set->first; c; c = c->next)
                if (c->exited) {
                        command_free(c);
                        return 0;
                }
        return -EBUSY;
}

/* ---- the sink -------------------------------------------------------------- */

static void sink_started(job *j, pid_t pid, void *userdata) {
        command *c = userdata;

        c->pid = pid;
}

/* Hold the job while a holding reader is behind by more than half a ring
 * (the job reads 64 KiB at a time: it stays within the ring). */
static void command_update_hold(command *c) {
        bool hold = false;

        if (!c->sink)
                return;
        for (command_reader *rd = c->readers; rd && !hold; rd = rd->next)
                for (int i = 0; rd->hold_off && i < 2; i++)
                        if (c->ring[i].total > rd->hold_off[i] &&
                            c->ring[i].total - rd->hold_off[i] > c->ring[i].max / 2)
                                hold = true;
        job_hold(c->sink, hold);
}

static void sink_output(job *j, int which, const char *data, size_t n, void *userdata) {
        command *c = userdata;

        /* -ENOMEM: the bytes are lost, and readers are told (dropped) */
        (void) outring_write(&c->ring[which], data, n);
        command_update_hold(c);
        command_wake(c);
}

static void sink_exit(job *j, const job_result *res, void *userdata) {
        command *c = userdata;

        c->sink = NULL; /* the job frees it */
        c->j = NULL;
        c->exited = true;
        c->set->n_running--;
        c->ended_real = now_real();
        c->res = *res;
        if (res->ended_by)
                snprintf(c->ended_by, sizeof(c->ended_by), "%s", res->ended_by);
        if (res->ended_detail)
                snprintf(c->ended_detail, sizeof(c->ended_detail), "%s", res->ended_detail);
        c->res.ended_by = res->ended_by ? c->ended_by : NULL;
        c->res.ended_detail = res->ended_detail ? c->ended_detail : NULL;
        command_wake(c);
}

static const job_sink_ops command_sink = {
        .started = sink_started,
        .output = sink_output,
        .exit = sink_exit,
};

int command_set_add(command_set *set, job *j, char *const *argv, size_t ring_bytes, bool pty, command **ret) {
        size_t n = 0;
        int r;

        if (set->n >= set->max)
                return -EBUSY;
        command *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        while (argv[n])
                n++;
        c->argv = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; c->argv && i < n; i++)
                if (!(c->argv[i] = strdup(argv[i]))) {
                        strv_free(c->argv);
                        c->argv = NULL;
                }
        if (!c->argv) {
                free(c);
                return -ENOMEM;
        }
        r = job_attach(j, &command_sink, c, &c->sink);
        if (r < 0) {
                strv_free(c->argv);
                free(c);
                return r;
        }
        c->set = set;
        c->id = job_id(j);
        c->j = j;
        c->pty = pty;
        c->pid = job_pid(j);
        c->started_real = now_real();
        for (int i = 0; i < 2; i++)
                outring_init(&c->ring[i], ring_bytes, &set->budget);
        c->prev = set->last;
        if (set->last)
                set->last->next = c;
        else
                set->first = c;
        set->last = c;
        set->n++;
        set->n_running++;
        *ret = c;
        return 0;
}

command *command_set_find(command_set *set, uint64_t id) {
        for (command *c = set ? set->first : NULL; c; c = c->next)
                if (c->id == id)
                        return c;
        return NULL;
}

unsigned command_set_running(const command_set *set) {
        return set ? set->n_running : 0;
}

unsigned command_set_size(const command_set *set) {
        return set ? set->n : 0;
}

json_t *command_set_to_json(command_set *set) {
        json_t *a = json_array();

        for (command *c = set ? set->first : NULL; a && c; c = c->next)
                if (json_array_append_new(a, command_to_json(c)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a ? json_pack("{s:o}", "commands", a) : NULL;
}

/* ---- reading --------------------------------------------------------------- */

uint64_t command_id(const command *c) {
        return c->id;
}
job *command_job(command *c) {
        return c->j;
}
bool command_exited(const command *c) {
        return c->exited;
}
const job_result *command_result(const command *c) {
        return c->exited ? &c->res : NULL;
}
const outring *command_ring(const command *c, int which) {
        return &c->ring[which];
}

static json_t *argv_json(char *const *argv) {
        json_t *a = json_array();

        for (char *const *p = argv; a && *p; p++)
                json_array_append_new(a, json_bytes(*p, strlen(*p), NULL, NULL));
        return a;
}

json_t *command_to_json(const command *c) {
        json_t *o = json_pack("{s:I,s:o,s:s,s:i,s:b,s:o,s:{s:I,s:I,s:I},s:{s:I,s:I,s:I}}",
                              "id", (json_int_t) c->id,
                              "argv", argv_json(c->argv),
                              "state", c->exited ? "exited" : "running",
                              "pid", (int) c->pid,
                              "pty", c->pty,
                              "started_at", json_time(c->started_real),
                              "stdout", "bytes", (json_int_t) c->ring[0].total,
                              "first_offset", (json_int_t) outring_start(&c->ring[0]),
                              "buffer", (json_int_t) c->ring[0].max,
                              "stderr", "bytes", (json_int_t) c->ring[1].total,
                              "first_offset", (json_int_t) outring_start(&c->ring[1]),
                              "buffer", (json_int_t) c->ring[1].max);
        if (!o || !c->exited)
                return o;
        const job_result *res = &c->res;
        json_object_update_new(o, json_pack("{s:o,s:o,s:o,s:I,s:b,s:b}",
                               "ended_at", json_time(c->ended_real),
                               "exit_code", res->signal ? json_null() : json_integer(res->exit_code),
                               "signal", res->signal ? json_integer(res->signal) : json_null(),
                               "duration_ms", (json_int_t) res->duration_ms,
                               "timed_out", res->timed_out,
                               "oom_killed", res->oom_killed));
        if (res->spawn_errno > 0)
                json_object_set_new(o, "error", json_sprintf("cannot execute the command: %s", strerror(res->spawn_errno)));
        if (res->ended_by)
                json_object_set_new(o, "end_reason", json_string(res->ended_by));
        return o;
}

int command_reader_add(command *c, const command_reader_ops *ops, void *userdata, const uint64_t *hold_off,
                       command_reader **ret) {
        command_reader *rd = calloc(1, sizeof(*rd));

        if (!rd)
                return -ENOMEM;
        *rd = (command_reader){.c = c, .ops = ops, .userdata = userdata, .hold_off = hold_off, .next = c->readers};
        if (c->readers)
                c->readers->prev = rd;
        c->readers = rd;
        *ret = rd;
        return 0;
}

void command_reader_remove(command_reader *rd) {
        command *c;

        if (!rd)
                return;
        c = rd->c;
        if (rd->prev)
                rd->prev->next = rd->next;
        else
                c->readers = rd->next;
        if (rd->next)
                rd->next->prev = rd->prev;
        bool held = rd->hold_off;
        free(rd);
        if (held)
                command_update_hold(c);
}

void command_reader_progress(command_reader *rd) {
        if (rd && rd->hold_off)
                command_update_hold(rd->c);
}
