/* SPDX-License-Identifier: MIT */
#pragma once

/* Execution records: one row per command in an SQLite database (WAL),
 * written by a thread of its own so that the event loop never waits on
 * the disk. The loop only copies a finished command into one allocation
 * and appends it to a queue (a mutex held for a pointer swap); the writer
 * takes the whole queue every flush_interval (or sooner when it is long),
 * inserts it in one transaction, and prunes old rows (retention_days,
 * max_rows) in the background.
 *
 * Loss: a clean stop (records_close(), on SIGTERM) writes everything that
 * was queued. A SIGKILL loses what was queued and not yet committed: at
 * most flush_interval of records (100 ms by default) plus the batch being
 * written. A committed batch survives a crash of the process (WAL with
 * synchronous=NORMAL; a power loss may lose the last batches).
 *
 * Faults never stop the daemon: a database that cannot be opened, is not
 * a database or turns out corrupt is moved aside (<path>.broken-<time>)
 * and a new one is started; if even that fails, records are counted as
 * dropped and the state says so (GET /v1/health, the log).
 *
 * Queries (GET /v1/executions, records_find) run on the writer thread too, after every
 * record queued before them (a client reads its own writes), and answer
 * on the loop through an eventfd. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct records records;
typedef struct records_query records_query;

/* The clock of records and quotas, in ms since the epoch (tenant.h may
 * inject one for tests). Called from the writer thread too. */
typedef int64_t (*records_clock_fn)(void *userdata);

typedef struct records_options {
        const char *path;
        uint32_t retention_days;   /* 0: keep rows forever */
        uint64_t max_rows;         /* 0: no cap */
        uint64_t flush_interval_ms;
        records_clock_fn clock;
        void *clock_userdata;
} records_options;

/* One finished command, as the loop hands it over: everything is copied. */
typedef struct record_in {
        const char *session;       /* the session id, or the run's */
        uint32_t uid;
        const char *key;           /* NULL: not a keyed session */
        bool oneshot;
        uint64_t command_id;
        const char *argv;          /* NUL-separated, argv_len bytes (capped by the caller) */
        size_t argv_len;
        bool argv_truncated;
        const char *cwd;           /* NULL: the home directory */
        int64_t started_ms;        /* the records clock */
        uint64_t duration_ms;
        int exit_code;             /* -1 when signaled */
        int signal;
        int spawn_errno;
        uint64_t cpu_usec, memory_peak;
        bool oom_killed, timed_out, truncated;
        uint64_t stdout_bytes, stderr_bytes;
        const char *end_reason;    /* the session ended under it, or NULL */
} record_in;

typedef struct records_status {
        const char *state;         /* "ok", "recovered", "unavailable" */
        char path[512];
        char moved_aside[560];     /* where a broken database went, or "" */
        char error[256];           /* the last fault, or "" */
        uint64_t written, queued, dropped, pruned, batches;
        uint64_t last_batch_usec;  /* time the last transaction took */
} records_status;

/* Open (or create) the database now, moving a broken one aside. Fails
 * only without memory: a database fault is a state, not an error. */
int records_open(sd_event *e, const records_options *o, records **ret);
/* Start the writer thread (after the sandbox factory's workers were
 * forked: they are forked while the daemon has one thread). */
int records_start(records *rs);
/* Write what is queued, stop the thread, close. NULL is fine. */
void records_close(records *rs);

/* Queue one record; never blocks on the disk. The queue is bounded (a
 * writer that cannot keep up drops records and counts them). */
void records_submit(records *rs, const record_in *in);
void records_get_status(records *rs, records_status *ret);
/* What GET /v1/health says: {state, path, moved_aside, error, written,
 * queued, dropped}; {"state": "off"} for NULL. */
json_t *records_health_json(records *rs);

/* Before records_start(): per uid, the commands and CPU time of rows that
 * started at or after since_ms (quotas that survive a restart). */
typedef void (*records_usage_fn)(uint32_t uid, uint64_t commands, uint64_t cpu_usec, void *userdata);
int records_load_usage(records *rs, int64_t since_ms, records_usage_fn fn, void *userdata);

typedef struct records_filter {
        bool by_uid;
        uint32_t uid;
        const char *session;       /* NULL: any */
        int64_t since_ms;          /* rows started at or after; 0: the most recent */
        uint32_t limit;
} records_filter;

/* rows: {"executions": [...], "total": n} (the callee owns it), or NULL
 * with error set. Called on the loop, never from inside records_find(). */
typedef void (*records_query_fn)(json_t *rows, const char *error, void *userdata);
int records_find(records *rs, const records_filter *f, records_query_fn cb, void *userdata, records_query **ret);
/* The caller no longer waits: cb will not be called. */
void records_query_cancel(records_query *q);
