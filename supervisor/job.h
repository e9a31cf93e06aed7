/* SPDX-License-Identifier: MIT */
#pragma once

/* A job: one command in a sandbox, from its spawn to its exit: its pipes,
 * its stdin feeder, its timeout, its output cap, its result. It knows
 * nothing of HTTP or JSON: it emits output and exit events to its sinks
 * (a buffered answer, an NDJSON stream; later a reader that reattaches, a
 * terminal, a record), any number of them at once.
 *
 * Nothing here blocks: the pipes are non-blocking and read from the loop;
 * a sink that cannot keep up holds the job, which then stops reading (the
 * command blocks on its full pipe, not us). The timeout runs at PRIO_ENDS;
 * output past the cap is read at PRIO_DRAIN only to be thrown away. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "sandbox.h"

typedef struct job job;
typedef struct job_sink job_sink;

#define JOB_STDOUT 0
#define JOB_STDERR 1

/* Who asked for the command: for those told of every job's exit (the
 * execution records, usage). Copied by job_start(). */
typedef struct job_origin {
        const char *session_id; /* NULL: none */
        const char *key;        /* the session's key, or NULL */
        uint32_t uid;
        bool oneshot;
} job_origin;

typedef struct job_spec {
        job_origin origin;
        char *const *argv;    /* NULL-terminated; argv[0] looked up in PATH */
        char *const *envp;
        const char *cwd;      /* NULL: the user's home */
        const char *stdin_data; /* NULL: /dev/null */
        size_t stdin_len;
        uint64_t timeout_ms;  /* 0: none (a background command's default) */
        uint64_t max_output;  /* bytes kept per stream; the rest is counted and dropped */
        /* A background command lives on without sinks: nobody listening
         * does not kill it (job_detach()). */
        bool background;
        /* Keep stdin open after stdin_data: more comes through
         * job_write_stdin(). */
        bool stdin_pipe;
        /* On a terminal (sp_sandbox_open_pty()): stdin, stdout and stderr
         * are its slave, output comes from its master as JOB_STDOUT, and
         * stdin goes to it. Both fds are borrowed (the job keeps copies). */
        bool pty;
        int pty_master, pty_slave;
} job_spec;

typedef struct job_result {
        int exit_code;        /* 0-255, or -1 when killed by a signal */
        int signal;           /* the signal, or 0 */
        int spawn_errno;      /* > 0: the command could not be executed */
        uint64_t duration_ms;
        uint64_t cpu_usec;
        bool timed_out, oom_killed, truncated;
        uint64_t bytes[2];    /* produced on stdout, stderr (kept or not) */
        /* The session ended under the command: why ("deleted by the
         * client", "sandbox_died", ...) and, for a death, how. */
        const char *ended_by;
        const char *ended_detail;
} job_result;

typedef struct job_sink_ops {
        /* PID 1 says the command runs, as pid inside the sandbox. May be NULL. */
        void (*started)(job *j, pid_t pid, void *userdata);
        /* Output within the cap, in the order it was read (which: JOB_STDOUT
         * or JOB_STDERR). */
        void (*output)(job *j, int which, const char *data, size_t n, void *userdata);
        /* The command is over. The last call: the sink is gone after it. */
        void (*exit)(job *j, const job_result *res, void *userdata);
} job_sink_ops;

/* What is known of a finished job besides its result, for observers. */
#define JOB_ARGV_KEEP 1024 /* bytes of argv kept for them */
typedef struct job_exit_info {
        const job_origin *origin;
        uint64_t command_id;
        const char *argv;     /* NUL-separated, at most JOB_ARGV_KEEP bytes */
        size_t argv_len;
        bool argv_truncated;
        const char *cwd;      /* NULL: the home directory */
        uint64_t memory_peak; /* the sandbox's, from its cgroup (0: unknown) */
} job_exit_info;

/* Told of every job's exit, whoever owns the job (foreground, background,
 * a run): after its sinks, before its owner's finished callback. Must not
 * block (the loop). At most JOB_OBSERVERS at once, process-wide. */
#define JOB_OBSERVERS 4
typedef void (*job_exit_fn)(const job_exit_info *info, const job_result *res, void *userdata);
int job_observe_exits(job_exit_fn fn, void *userdata);
void job_unobserve_exits(job_exit_fn fn, void *userdata);

/* Told once, after every sink has had its exit event: the owner (the
 * session) accounts for it and frees the job. */
typedef void (*job_finished_fn)(job *j, const job_result *res, void *userdata);

/* Start the command in sb. log_id names the session in log lines. */
int job_start(sd_event *e, sp_sandbox *sb, const char *log_id, const job_spec *spec, job_finished_fn finished,
              void *userdata, job **ret, sp_error *err);
void job_free(job *j);

/* Listen to the job: every event from now on. */
int job_attach(job *j, const job_sink_ops *ops, void *userdata, job_sink **ret);
/* Stop listening (no more callbacks). A foreground job lives only as long
 * as someone listens: with its last sink gone, it is killed. A background
 * job lives on. */
void job_detach(job_sink *s);
/* Back-pressure: while any sink holds the job, its pipes are not read. */
void job_hold(job_sink *s, bool hold);

/* PID 1 said the command started or exited (SP_EVENT_STARTED, _EXITED). */
void job_handle_event(job *j, const sp_event *ev);
/* The session is ending under it: finish now, as killed. */
void job_abort(job *j, const char *ended_by, const char *ended_detail);

/* Queue bytes for the command's stdin (a job started with stdin_pipe);
 * eof closes it once they are written. -EPIPE when stdin is closed (or
 * was never a pipe), -ENOBUFS when more than JOB_STDIN_MAX bytes would be
 * queued (the command does not read: try later). */
#define JOB_STDIN_MAX (1024u * 1024u)
int job_write_stdin(job *j, const void *data, size_t n, bool eof);
/* A terminal's new size (the kernel sends SIGWINCH to its foreground
 * group). -ENOTTY when the job has no terminal. */
int job_resize(job *j, unsigned rows, unsigned cols);
/* Signal the command's process group. -ESRCH once it has exited. */
int job_signal(job *j, int sig);

uint64_t job_id(const job *j);
pid_t job_pid(const job *j); /* inside the sandbox; 0 until PID 1 said so */
uint64_t job_timeout_ms(const job *j);
uint64_t job_max_output(const job *j);
bool job_exited(const job *j);
