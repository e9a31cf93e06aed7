/* SPDX-License-Identifier: MIT */
/* One command in a sandbox: see job.h. */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>

#include "job.h"
#include "log.h"
#include "priority.h"
#include "time-util.h"

#define READ_CHUNK 65536

typedef struct out_stream {
        int fd;
        sd_event_source *src;
        uint64_t total;
} out_stream;

struct job_sink {
        job *j;
        job_sink *prev, *next;
        const job_sink_ops *ops;
        void *userdata;
        bool holding;
};

struct job {
        sd_event *event;
        sp_sandbox *sb;
        char log_id[33];
        uint64_t id;
        job_sink *sinks;
        unsigned n_holding;
        out_stream out[2];
        int in_fd;
        sd_event_source *in_src, *timer;
        char *stdin_data;
        size_t stdin_len, stdin_off;
        uint64_t max_output, timeout_ms;
        bool truncated, timed_out, exited, finishing, paused;
        bool background, stdin_eof; /* stdin_eof: close stdin once written */
        int pty_fd;                 /* the terminal's master, for its size */
        pid_t pid;
        usec_t start;
        sp_exit_info exit;
        uint64_t oom_before;
        bool oom_known;
        const char *ended_by, *ended_detail;
        /* for the exit observers */
        job_origin origin;
        char *origin_strings; /* session id and key, NUL-separated */
        char *argv;
        size_t argv_len;
        bool argv_truncated;
        char *cwd;
        job_finished_fn finished;
        void *userdata;
};

/* ---- reading ---------------------------------------------------------------- */

static void job_set_paused(job *j, bool paused) {
        if (j->paused == paused)
                return;
        j->paused = paused;
        for (int i = 0; i < 2; i++)
                if (j->out[i].src)
                        (void) sd_event_source_set_enabled(j->out[i].src, paused ? SD_EVENT_OFF : SD_EVENT_ON);
}

/* Keep what fits under the cap, pass it to every sink, flag the rest. */
static void job_output(job *j, int which, const char *data, size_t n) {
        out_stream *o = &j->out[which];
        size_t keep = 0;

        if (o->total < j->max_output)
                keep = MIN((uint64_t) n, j->max_output - o->total);
        o->total += n;
        if (keep < n && !j->truncated) {
                j->truncated = true;
                /* Whatever comes now is read only to be thrown away: below
                 * everything else, so a flood starves nobody. */
                for (int i = 0; i < 2; i++)
                        if (j->out[i].src)
                                (void) sd_event_source_set_priority(j->out[i].src, PRIO_DRAIN);
        }
        if (keep == 0)
                return;
        for (job_sink *s = j->sinks, *next; s; s = next) {
                next = s->next;
                if (s->ops->output)
                        s->ops->output(j, which, data, keep, s->userdata);
        }
}

static void out_close(job *j, int which) {
        out_stream *o = &j->out[which];

        o->src = sd_event_source_disable_unref(o->src);
        o->fd = safe_close(o->fd);
}

/* Read what is in the pipe now. A bounded number of reads: a background
 * process that keeps writing to an inherited pipe must not keep us here. */
static void out_drain(job *j, int which, int max_reads) {
        char buf[READ_CHUNK];

        /* A sink that holds the job (job_hold()) stops it between two reads,
         * not after the batch: what it holds back must not be overrun. */
        for (int i = 0; i < max_reads && j->out[which].fd >= 0 && (!j->paused || j->finishing); i++) {
                ssize_t n = read(j->out[which].fd, buf, sizeof(buf));
                if (n > 0) {
                        job_output(j, which, buf, (size_t) n);
                        continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                out_close(j, which);
                return;
        }
}

static int on_output(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        job *j = userdata;

        out_drain(j, fd == j->out[JOB_STDOUT].fd ? JOB_STDOUT : JOB_STDERR, 4);
        return 0;
}

static void stdin_close(job *j) {
        j->in_src = sd_event_source_disable_unref(j->in_src);
        j->in_fd = safe_close(j->in_fd);
        j->stdin_off = j->stdin_len = 0;
}

static int on_stdin_writable(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        job *j = userdata;

        while (j->stdin_off < j->stdin_len) {
                ssize_t n = write(j->in_fd, j->stdin_data + j->stdin_off, j->stdin_len - j->stdin_off);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        /* EPIPE: the command closed its stdin; fine */
                        stdin_close(j);
                        return 0;
                }
                j->stdin_off += (size_t) n;
        }
        j->stdin_off = j->stdin_len = 0;
        if (j->stdin_eof)
                stdin_close(j);
        else
                /* more may come (job_write_stdin()): wait for it, not for POLLOUT */
                (void) sd_event_source_set_enabled(j->in_src, SD_EVENT_OFF);
        return 0;
}

int job_write_stdin(job *j, const void *data, size_t n, bool eof) {
        if (j->in_fd < 0 || j->stdin_eof || j->finishing)
                return -EPIPE;
        if (eof && j->pty_fd >= 0) {
                /* A terminal has no end of input but the EOF character
                 * (VEOF, ^D), which its line discipline turns into one. */
                int r = job_write_stdin(j, data, n, false);
                return r < 0 ? r : job_write_stdin(j, "\x04", 1, false);
        }
        if (j->stdin_len - j->stdin_off + n > JOB_STDIN_MAX)
                return -ENOBUFS;
        if (n > 0) {
                /* keep what is still queued, at the front */
                if (j->stdin_off > 0) {
                        memmove(j->stdin_data, j->stdin_data + j->stdin_off, j->stdin_len - j->stdin_off);
                        j->stdin_len -= j->stdin_off;
                        j->stdin_off = 0;
                }
                char *b = realloc(j->stdin_data, j->stdin_len + n);
                if (!b)
                        return -ENOMEM;
                memcpy(b + j->stdin_len, data, n);
                j->stdin_data = b;
                j->stdin_len += n;
        }
        j->stdin_eof = eof;
        if (j->in_src)
                return sd_event_source_set_enabled(j->in_src, SD_EVENT_ON);
        return 0;
}

int job_resize(job *j, unsigned rows, unsigned cols) {
        struct winsize ws = {.ws_row = (unsigned short) rows, .ws_col = (unsigned short) cols};

        if (j->pty_fd < 0)
                return -ENOTTY;
        if (ioctl(j->pty_fd, TIOCSWINSZ, &ws) < 0)
                return -errno;
        return 0;
}

int job_signal(job *j, int sig) {
        if (j->exited || j->finishing)
                return -ESRCH;
        return sp_sandbox_signal(j->sb, j->id, sig);
}

/* ---- the end ------------------------------------------------------------------ */

static struct {
        job_exit_fn fn;
        void *userdata;
} observers[JOB_OBSERVERS];

int job_observe_exits(job_exit_fn fn, void *userdata) {
        for (size_t i = 0; i < JOB_OBSERVERS; i++)
                if (!observers[i].fn) {
                        observers[i].fn = fn;
                        observers[i].userdata = userdata;
                        return 0;
                }
        return -ENOSPC;
}

void job_unobserve_exits(job_exit_fn fn, void *userdata) {
        for (size_t i = 0; i < JOB_OBSERVERS; i++)
                if (observers[i].fn == fn && observers[i].userdata == userdata)
                        observers[i].fn = NULL;
}

static void job_tell_observers(job *j, const job_result *res, uint64_t memory_peak) {
        job_exit_info info = {
                .origin = &j->origin, .command_id = j->id, .argv = j->argv, .argv_len = j->argv_len,
                .argv_truncated = j->argv_truncated, .cwd = j->cwd, .memory_peak = memory_peak,
        };
        for (size_t i = 0; i < JOB_OBSERVERS; i++)
                if (observers[i].fn)
                        observers[i].fn(&info, res, observers[i].userdata);
}

/* What its cgroup says at the end: an OOM kill since the start, the peak. */
static bool job_oom_killed(job *j, uint64_t *ret_peak) {
        sp_sandbox_stats st = {};

        *ret_peak = 0;
        if (!j->oom_known || j->ended_by || sp_sandbox_stats_read(j->sb, &st) < 0)
                return false;
        *ret_peak = st.cgroup.memory_peak;
        return st.cgroup.oom_kills > j->oom_before;
}

static void job_finish(job *j) {
        job_result res;
        uint64_t peak;

        if (j->finishing)
                return;
        j->finishing = true;
        /* What the command wrote before it exited is part of its output. */
        for (int i = 0; i < 2; i++)
                out_drain(j, i, 64);
        j->timer = sd_event_source_disable_unref(j->timer);
        bool signaled = j->exit.signal > 0;
        res = (job_result){
                .exit_code = signaled ? -1 : j->exit.exit_code,
                .signal = signaled ? j->exit.signal : 0,
                .spawn_errno = j->exit.spawn_errno,
                .duration_ms = (now_mono() - j->start) / USEC_PER_MSEC,
                .cpu_usec = j->exit.cpu_usec,
                .timed_out = j->timed_out,
                .oom_killed = job_oom_killed(j, &peak),
                .truncated = j->truncated,
                .bytes = {j->out[0].total, j->out[1].total},
                .ended_by = j->ended_by,
                .ended_detail = j->ended_detail,
        };
        log_session(LOG_INFO, j->log_id, "command %" PRIu64 " ended: exit %d signal %d%s%s%s, %.1f ms", j->id,
                    res.exit_code, res.signal, res.timed_out ? ", timed out" : "", res.oom_killed ? ", oom" : "",
                    res.truncated ? ", truncated" : "", (now_mono() - j->start) / 1000.0);
        while (j->sinks) {
                job_sink *s = j->sinks;
                j->sinks = s->next;
                if (j->sinks)
                        j->sinks->prev = NULL;
                const job_sink_ops *ops = s->ops;
                void *ud = s->userdata;
                free(s);
                if (ops->exit)
                        ops->exit(j, &res, ud);
        }
        job_tell_observers(j, &res, peak);
        j->finished(j, &res, j->userdata);
}

static int on_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        job *j = userdata;

        j->timed_out = true;
        log_session(LOG_INFO, j->log_id, "command %" PRIu64 " timed out after %" PRIu64 " ms: killing its process group",
                    j->id, j->timeout_ms);
        (void) sp_sandbox_signal(j->sb, j->id, SIGKILL);
        return 0;
}

void job_handle_event(job *j, const sp_event *ev) {
        if (ev->type == SP_EVENT_STARTED) {
                j->pid = ev->pid;
                for (job_sink *s = j->sinks, *next; s; s = next) {
                        next = s->next;
                        if (s->ops->started)
                                s->ops->started(j, ev->pid, s->userdata);
                }
                return;
        }
        if (ev->type != SP_EVENT_EXITED || j->exited)
                return;
        j->exit = ev->exit;
        j->exited = true;
        job_finish(j);
}

void job_abort(job *j, const char *ended_by, const char *ended_detail) {
        if (j->finishing)
                return;
        if (!j->exited) {
                j->exit.exit_code = -1;
                j->exit.signal = SIGKILL;
        }
        j->ended_by = ended_by;
        j->ended_detail = ended_detail;
        job_finish(j);
}

/* ---- sinks -------------------------------------------------------------------- */

int job_attach(job *j, const job_sink_ops *ops, void *userdata, job_sink **ret) {
        job_sink *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (job_sink){.j = j, .ops = ops, .userdata = userdata, .next = j->sinks};
        if (j->sinks)
                j->sinks->prev = s;
        j->sinks = s;
        *ret = s;
        return 0;
}

void job_hold(job_sink *s, bool hold) {
        job *j = s->j;

        if (s->holding == hold)
                return;
        s->holding = hold;
        j->n_holding += hold ? 1 : -1;
        job_set_paused(j, j->n_holding > 0);
}

void job_detach(job_sink *s) {
        job *j = s->j;

        job_hold(s, false);
        if (s->prev)
                s->prev->next = s->next;
        else
                j->sinks = s->next;
        if (s->next)
                s->next->prev = s->prev;
        free(s);
        if (!j->sinks && !j->exited && !j->finishing && !j->background) {
                /* Nobody waits for it any more. */
                log_session(LOG_INFO, j->log_id, "client of command %" PRIu64 " went away: killing it", j->id);
                (void) sp_sandbox_signal(j->sb, j->id, SIGKILL);
        }
}

/* ---- start -------------------------------------------------------------------- */

static int pipe_nb(int p[2], int our_end) {
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        /* Only our end is non-blocking: the command sees ordinary pipes. */
        if (fcntl(p[our_end], F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

/* Keep what the observers are told of: the origin, argv (capped), cwd. */
static int job_keep_spec(job *j, const job_spec *spec) {
        const job_origin *o = &spec->origin;
        size_t ls = o->session_id ? strlen(o->session_id) + 1 : 0, lk = o->key ? strlen(o->key) + 1 : 0;
        size_t n = 0;

        j->origin = *o;
        j->origin.session_id = j->origin.key = NULL;
        if (ls + lk > 0) {
                j->origin_strings = malloc(ls + lk);
                if (!j->origin_strings)
                        return -ENOMEM;
                if (ls)
                        j->origin.session_id = memcpy(j->origin_strings, o->session_id, ls);
                if (lk)
                        j->origin.key = memcpy(j->origin_strings + ls, o->key, lk);
        }
        for (char *const *a = spec->argv; *a && n < JOB_ARGV_KEEP; a++)
                n += strlen(*a) + 1;
        j->argv = malloc(MIN(n, (size_t) JOB_ARGV_KEEP) + 1);
        if (!j->argv)
                return -ENOMEM;
        n = 0;
        for (char *const *a = spec->argv; *a; a++) {
                size_t l = strlen(*a) + 1;
                if (n + l > JOB_ARGV_KEEP) {
                        j->argv_truncated = true;
                        l = JOB_ARGV_KEEP - n;
                        memcpy(j->argv + n, *a, l);
                        n += l;
                        break;
                }
                memcpy(j->argv + n, *a, l);
                n += l;
        }
        j->argv_len = n;
        if (spec->cwd && !(j->cwd = strdup(spec->cwd)))
                return -ENOMEM;
        return 0;
}

static void job_free_kept(job *j) {
        free(j->origin_strings);
        free(j->argv);
        free(j->cwd);
}

static int dup_cloexec(int fd) {
        int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        return r < 0 ? -errno : r;
}

/* A terminal in place of the three pipes: the command gets the slave on
 * 0-2, we read and write the master (non-blocking already), and keep one
 * more copy of it for resizing. No stderr of its own: a terminal has one
 * stream. */
static int pty_ends(const job_spec *spec, int po[2], int pe[2], int pi[2], int *ret_pty) {
        if ((po[0] = dup_cloexec(spec->pty_master)) < 0 || (pi[1] = dup_cloexec(spec->pty_master)) < 0 ||
            (*ret_pty = dup_cloexec(spec->pty_master)) < 0)
                return -errno;
        if ((po[1] = dup_cloexec(spec->pty_slave)) < 0 || (pe[1] = dup_cloexec(spec->pty_slave)) < 0 ||
            (pi[0] = dup_cloexec(spec->pty_slave)) < 0)
                return -errno;
        return 0;
}

static void log_started(job *j, char *const *argv) {
        /* the command line, shortened: a log line, not an audit record */
        char line[160] = "";
        size_t n = 0;

        for (char *const *a = argv; *a && n < sizeof(line) - 1; a++)
                n += snprintf(line + n, sizeof(line) - n, "%s%s", a == argv ? "" : " ", *a);
        for (char *c = line; *c; c++)
                if ((unsigned char) *c < ' ')
                        *c = ' ';
        log_session(LOG_INFO, j->log_id, "command %" PRIu64 " started: %s%s", j->id, line,
                    n >= sizeof(line) - 1 ? "..." : "");
}

int job_start(sd_event *e, sp_sandbox *sb, const char *log_id, const job_spec *spec, job_finished_fn finished,
              void *userdata, job **ret, sp_error *err) {
        _cleanup_close_pair_ int po[2] = {-EBADF, -EBADF}, pe[2] = {-EBADF, -EBADF}, pi[2] = {-EBADF, -EBADF};
        sp_sandbox_stats st = {};
        sp_exec_spec es;
        int r;

        bool want_stdin = spec->stdin_data || spec->stdin_pipe || spec->pty;
        _cleanup_close_ int pty_fd = -EBADF;

        if (spec->pty)
                r = pty_ends(spec, po, pe, pi, &pty_fd);
        else if ((r = pipe_nb(po, 0)) >= 0 && (r = pipe_nb(pe, 0)) >= 0 && want_stdin)
                r = pipe_nb(pi, 1);
        if (r < 0)
                return sp_error_set(err, r, "cannot create pipes: %s", strerror(-r));
        job *j = calloc(1, sizeof(*j));
        if (!j)
                return sp_error_set(err, -ENOMEM, "out of memory");
        *j = (job){
                .event = e, .sb = sb, .in_fd = -EBADF, .out = {{.fd = -EBADF}, {.fd = -EBADF}},
                .max_output = spec->max_output, .timeout_ms = spec->timeout_ms, .finished = finished,
                .userdata = userdata, .background = spec->background,
                .stdin_eof = !spec->stdin_pipe && !spec->pty, .pty_fd = -EBADF,
        };
        snprintf(j->log_id, sizeof(j->log_id), "%s", log_id ? log_id : "");
        if (job_keep_spec(j, spec) < 0) {
                job_free_kept(j);
                free(j);
                return sp_error_set(err, -ENOMEM, "out of memory");
        }
        if (spec->stdin_data) {
                j->stdin_data = malloc(spec->stdin_len + 1);
                if (!j->stdin_data) {
                        job_free_kept(j);
                        free(j);
                        return sp_error_set(err, -ENOMEM, "out of memory");
                }
                memcpy(j->stdin_data, spec->stdin_data, spec->stdin_len);
                j->stdin_len = spec->stdin_len;
        }
        if (sp_sandbox_stats_read(sb, &st) >= 0) {
                j->oom_before = st.cgroup.oom_kills;
                j->oom_known = true;
        }
        sp_exec_spec_init(&es);
        es.argv = spec->argv;
        es.envp = spec->envp;
        es.cwd = spec->cwd;
        es.stdin_fd = want_stdin ? pi[0] : -1;
        es.stdout_fd = po[1];
        es.stderr_fd = pe[1];
        es.ctty = spec->pty;
        j->start = now_mono();
        r = sp_sandbox_spawn(sb, &es, &j->id, err);
        if (r < 0) {
                free(j->stdin_data);
                job_free_kept(j);
                free(j);
                return r;
        }
        /* The command holds its ends now; ours must go, or EOF never comes. */
        po[1] = safe_close(po[1]);
        pe[1] = safe_close(pe[1]);
        pi[0] = safe_close(pi[0]);
        j->out[JOB_STDOUT].fd = TAKE_FD(po[0]);
        j->out[JOB_STDERR].fd = TAKE_FD(pe[0]);
        j->pty_fd = TAKE_FD(pty_fd);
        if (want_stdin) {
                j->in_fd = TAKE_FD(pi[1]);
                if (sd_event_add_io(e, &j->in_src, j->in_fd, EPOLLOUT, on_stdin_writable, j) < 0)
                        j->in_fd = safe_close(j->in_fd);
                else
                        (void) sd_event_source_set_priority(j->in_src, PRIO_WORK);
        }
        for (int i = 0; i < 2; i++)
                if (sd_event_add_io(e, &j->out[i].src, j->out[i].fd, EPOLLIN, on_output, j) >= 0)
                        (void) sd_event_source_set_priority(j->out[i].src, PRIO_WORK);
        r = 0;
        if (j->timeout_ms > 0) {
                r = sd_event_add_time_relative(e, &j->timer, CLOCK_MONOTONIC, j->timeout_ms * USEC_PER_MSEC,
                                               USEC_PER_MSEC, on_timeout, j);
                if (r >= 0)
                        r = sd_event_source_set_priority(j->timer, PRIO_ENDS);
        }
        if (r < 0) {
                /* A command without its timeout must not run: kill it, and
                 * let its exit finish the job. */
                log_session(LOG_ERR, j->log_id, "command %" PRIu64 ": cannot arm its timeout: %s", j->id, strerror(-r));
                (void) sp_sandbox_signal(sb, j->id, SIGKILL);
        }
        log_started(j, spec->argv);
        *ret = j;
        return 0;
}

void job_free(job *j) {
        if (!j)
                return;
        while (j->sinks) {
                job_sink *s = j->sinks;
                j->sinks = s->next;
                free(s);
        }
        for (int i = 0; i < 2; i++)
                out_close(j, i);
        j->in_src = sd_event_source_disable_unref(j->in_src);
        j->in_fd = safe_close(j->in_fd);
        j->timer = sd_event_source_disable_unref(j->timer);
        j->pty_fd = safe_close(j->pty_fd);
        free(j->stdin_data);
        job_free_kept(j);
        free(j);
}

uint64_t job_id(const job *j) {
        return j->id;
}
pid_t job_pid(const job *j) {
        return j->pid;
}
uint64_t job_timeout_ms(const job *j) {
        return j->timeout_ms;
}
uint64_t job_max_output(const job *j) {
        return j->max_output;
}
bool job_exited(const job *j) {
        return j->exited;
}
