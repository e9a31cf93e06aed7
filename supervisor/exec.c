/* SPDX-License-Identifier: MIT */
/* One command in a session: its pipes, its stdin feeder, its timeout, its
 * output (kept up to the cap, or streamed as NDJSON events), its result.
 * Nothing here blocks: the pipes are non-blocking and read from the loop,
 * and a slow stream reader pauses the reading (the command then blocks on
 * its full pipe, not us). */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>

#include "log.h"
#include "session.h"

#define READ_CHUNK 65536
/* Stream back-pressure: stop reading the pipes above HIGH bytes queued for
 * the client, read again below LOW. */
#define STREAM_HIGH (256u * 1024u)
#define STREAM_LOW (64u * 1024u)
#define TIMEOUT_MAX_MS (24ULL * 3600 * 1000)
#define ARGV_MAX 4096

typedef struct out_stream {
        int fd;
        sd_event_source *src;
        char *data; /* buffered mode: what was kept */
        size_t len, cap;
        uint64_t total;
        char carry[4]; /* stream mode: an incomplete UTF-8 sequence */
        size_t carry_len;
} out_stream;

struct exec_job {
        session *s;
        exec_job *prev, *next;
        uint64_t id;
        request *req; /* NULL once the client is gone */
        bool stream;
        out_stream out[2]; /* stdout, stderr */
        int in_fd;
        sd_event_source *in_src, *timer;
        char *stdin_data;
        size_t stdin_len, stdin_off;
        uint64_t max_output, timeout_ms;
        bool truncated, timed_out, exited, paused, session_ended, started;
        pid_t pid;
        usec_t start;
        sp_exit_info exit;
        uint64_t oom_before;
        bool oom_known;
};

static const char *const stream_names[2] = { "stdout", "stderr" };

void exec_params_done(exec_params *p) {
        strv_free(p->argv);
        strv_free(p->envp);
        free(p->cwd);
        free(p->stdin_data);
        *p = (exec_params) {};
}

static bool str_has_nul(json_t *v) {
        return strlen(json_string_value(v)) != json_string_length(v);
}

static char **strv_from_json(json_t *a) {
        size_t n = json_array_size(a);
        char **v = calloc(n + 1, sizeof(char *));

        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                v[i] = strdup(json_string_value(json_array_get(a, i)));
                if (!v[i]) {
                        strv_free(v);
                        return NULL;
                }
        }
        return v;
}

static const char *const default_env[][2] = {
        { "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
        { "HOME", "/home/sandbox" },
        { "USER", "sandbox" },
        { "LOGNAME", "sandbox" },
        { "SHELL", "/bin/sh" },
        { "LANG", "C.UTF-8" },
};

/* The environment of a command: defaults, then the session's, then the
 * request's; later ones win. */
static char **envp_build(json_t *session_env, json_t *req_env) {
        json_auto_t *all = json_object();
        const char *k;
        json_t *v;
        char **envp;
        size_t i = 0;

        if (!all)
                return NULL;
        for (size_t d = 0; d < ELEMENTSOF(default_env); d++)
                json_object_set_new(all, default_env[d][0], json_string(default_env[d][1]));
        if (session_env)
                json_object_update(all, session_env);
        if (req_env)
                json_object_update(all, req_env);
        envp = calloc(json_object_size(all) + 1, sizeof(char *));
        if (!envp)
                return NULL;
        json_object_foreach(all, k, v) {
                if (asprintf(&envp[i], "%s=%s", k, json_string_value(v)) < 0) {
                        envp[i] = NULL;
                        strv_free(envp);
                        return NULL;
                }
                i++;
        }
        return envp;
}

static int fail(char **ret_err, const char *fmt, ...) _printf_(2, 3);
static int fail(char **ret_err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret_err, fmt, ap) < 0)
                *ret_err = NULL;
        va_end(ap);
        return -EINVAL;
}

int exec_params_from_json(server *srv, session *s, json_t *body, exec_params *p, char **ret_err) {
        static const char *const known[] = { "argv", "shell", "cwd", "env", "stdin", "timeout_ms",
                                             "max_output_bytes", "stream" };
        const sp_config *cfg = &srv->config.cfg;
        json_t *argv = json_object_get(body, "argv"), *shell = json_object_get(body, "shell");
        json_t *cwd = json_object_get(body, "cwd"), *env = json_object_get(body, "env");
        json_t *in = json_object_get(body, "stdin"), *stream = json_object_get(body, "stream");
        json_t *to = json_object_get(body, "timeout_ms"), *mo = json_object_get(body, "max_output_bytes");
        const char *k;
        json_t *v;

        *p = (exec_params) { .timeout_ms = cfg->command_timeout_ms, .max_output = cfg->max_output };
        json_object_foreach(body, k, v) {
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        ok = ok || streq(known[i], k);
                if (!ok)
                        return fail(ret_err, "unknown field '%s'", k);
        }
        if (!!argv == !!shell)
                return fail(ret_err, "exactly one of 'argv' and 'shell' is required");
        if (argv) {
                if (!json_is_array(argv) || json_array_size(argv) == 0)
                        return fail(ret_err, "'argv' must be a non-empty array of strings");
                if (json_array_size(argv) > ARGV_MAX)
                        return fail(ret_err, "'argv' has more than %d elements", ARGV_MAX);
                for (size_t i = 0; i < json_array_size(argv); i++) {
                        json_t *a = json_array_get(argv, i);
                        if (!json_is_string(a))
                                return fail(ret_err, "argv[%zu] is not a string", i);
                        if (str_has_nul(a))
                                return fail(ret_err, "argv[%zu] contains a NUL byte", i);
                }
                if (json_string_length(json_array_get(argv, 0)) == 0)
                        return fail(ret_err, "argv[0] is empty");
                p->argv = strv_from_json(argv);
        } else {
                if (!json_is_string(shell) || json_string_length(shell) == 0)
                        return fail(ret_err, "'shell' must be a non-empty string");
                if (str_has_nul(shell))
                        return fail(ret_err, "'shell' contains a NUL byte");
                p->argv = calloc(4, sizeof(char *));
                if (p->argv) {
                        p->argv[0] = strdup("/bin/sh");
                        p->argv[1] = strdup("-c");
                        p->argv[2] = strdup(json_string_value(shell));
                }
        }
        if (!p->argv || !p->argv[0] || (shell && (!p->argv[1] || !p->argv[2])))
                return -ENOMEM;
        if (cwd && !json_is_null(cwd)) {
                if (!json_is_string(cwd) || json_string_value(cwd)[0] != '/' || str_has_nul(cwd))
                        return fail(ret_err, "'cwd' must be an absolute path");
                p->cwd = strdup(json_string_value(cwd));
        }
        if (env && !json_is_null(env)) {
                if (!json_is_object(env))
                        return fail(ret_err, "'env' must be an object of strings");
                json_object_foreach(env, k, v) {
                        if (!*k || strchr(k, '='))
                                return fail(ret_err, "env name '%s' is empty or contains '='", k);
                        if (!json_is_string(v) || str_has_nul(v))
                                return fail(ret_err, "env value of '%s' must be a string without NUL", k);
                }
        }
        p->envp = envp_build(s ? s->env : NULL, env && json_is_object(env) ? env : NULL);
        if (!p->envp)
                return -ENOMEM;
        if (in && !json_is_null(in)) {
                if (!json_is_string(in))
                        return fail(ret_err, "'stdin' must be a string");
                p->stdin_len = json_string_length(in);
                p->stdin_data = malloc(p->stdin_len + 1);
                if (!p->stdin_data)
                        return -ENOMEM;
                memcpy(p->stdin_data, json_string_value(in), p->stdin_len + 1);
        }
        if (to && !json_is_null(to)) {
                if (!json_is_integer(to) || json_integer_value(to) <= 0 ||
                    (uint64_t) json_integer_value(to) > TIMEOUT_MAX_MS)
                        return fail(ret_err, "'timeout_ms' must be an integer from 1 to %llu",
                                    (unsigned long long) TIMEOUT_MAX_MS);
                /* command_timeout is the largest a request may ask for */
                p->timeout_ms = MIN((uint64_t) json_integer_value(to), cfg->command_timeout_ms);
        }
        if (mo && !json_is_null(mo)) {
                if (!json_is_integer(mo) || json_integer_value(mo) < 0)
                        return fail(ret_err, "'max_output_bytes' must be a non-negative integer");
                p->max_output = MIN((uint64_t) json_integer_value(mo), cfg->max_output);
        }
        if (stream && !json_is_null(stream)) {
                if (!json_is_boolean(stream))
                        return fail(ret_err, "'stream' must be true or false");
                p->stream = json_is_true(stream);
        }
        return 0;
}

/* --- stream queue ------------------------------------------------------ */

static void stream_wake(request *r) {
        if (r && r->suspended)
                request_resume(r);
}

/* Queue one NDJSON event for the client. */
static void stream_push(request *r, json_t *ev) {
        stream_queue *q = r->stream;
        _cleanup_free_ char *line = NULL;
        size_t n;

        if (!q || !ev) {
                json_decref(ev);
                return;
        }
        line = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        if (!line)
                return;
        n = strlen(line);
        if (q->len + n + 1 > q->cap) {
                size_t cap = MAX(q->cap * 2, q->len + n + 1);
                char *b = realloc(q->buf, cap);
                if (!b)
                        return;
                q->buf = b;
                q->cap = cap;
        }
        memcpy(q->buf + q->len, line, n);
        q->buf[q->len + n] = '\n';
        q->len += n + 1;
        stream_wake(r);
}

static void job_set_paused(exec_job *j, bool paused) {
        if (j->paused == paused)
                return;
        j->paused = paused;
        for (int i = 0; i < 2; i++)
                if (j->out[i].src)
                        (void) sd_event_source_set_enabled(j->out[i].src, paused ? SD_EVENT_OFF : SD_EVENT_ON);
}

void exec_stream_drained(exec_job *j) {
        stream_queue *q = j->req ? j->req->stream : NULL;

        if (!q || q->len - q->off < STREAM_LOW)
                job_set_paused(j, false);
}

/* --- output ------------------------------------------------------------ */

/* Keep what fits under the cap, flag the rest. */
static void job_output(exec_job *j, int which, const char *data, size_t n) {
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
        if (keep == 0 || !j->req)
                return;

        if (j->stream) {
                json_t *data_str = json_bytes(data, keep, o->carry, &o->carry_len);
                if (!data_str)
                        return;
                if (json_string_length(data_str) == 0) {
                        json_decref(data_str);
                        return;
                }
                stream_push(j->req, json_pack("{s:s,s:o}", "type", stream_names[which], "data", data_str));
                if (j->req->stream && j->req->stream->len - j->req->stream->off > STREAM_HIGH)
                        job_set_paused(j, true);
                return;
        }
        if (o->len + keep > o->cap) {
                size_t cap = MIN(MAX(o->cap * 2, o->len + keep), (size_t) j->max_output);
                char *b = realloc(o->data, cap);
                if (!b)
                        return;
                o->data = b;
                o->cap = cap;
        }
        memcpy(o->data + o->len, data, keep);
        o->len += keep;
}

static void out_close(exec_job *j, int which) {
        out_stream *o = &j->out[which];

        o->src = sd_event_source_disable_unref(o->src);
        o->fd = safe_close(o->fd);
}

/* Read what is in the pipe now. Returns false at EOF or error. A bounded
 * number of reads: a background process that keeps writing to an
 * inherited pipe must not keep us here. */
static bool out_drain(exec_job *j, int which, int max_reads) {
        char buf[READ_CHUNK];

        for (int i = 0; i < max_reads && j->out[which].fd >= 0; i++) {
                ssize_t n = read(j->out[which].fd, buf, sizeof(buf));
                if (n > 0) {
                        job_output(j, which, buf, n);
                        continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return true;
                out_close(j, which);
                return false;
        }
        return j->out[which].fd >= 0;
}

static int on_output(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        exec_job *j = userdata;
        int which = fd == j->out[0].fd ? 0 : 1;

        (void) out_drain(j, which, 4);
        return 0;
}

static int on_stdin_writable(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        exec_job *j = userdata;

        while (j->stdin_off < j->stdin_len) {
                ssize_t n = write(j->in_fd, j->stdin_data + j->stdin_off, j->stdin_len - j->stdin_off);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        break; /* EPIPE: the command closed its stdin; fine */
                }
                j->stdin_off += n;
        }
        j->in_src = sd_event_source_disable_unref(j->in_src);
        j->in_fd = safe_close(j->in_fd);
        return 0;
}

/* --- completion -------------------------------------------------------- */

static json_t *job_result_json(exec_job *j) {
        bool signaled = j->exit.signal > 0;
        /* the stream's exit event says its type first, like the others */
        json_t *res = j->stream ? json_pack("{s:s}", "type", "exit") : json_object();

        if (!res)
                return NULL;
        if (json_object_update_new(res, json_pack("{s:o,s:o,s:I,s:b,s:b,s:b}",
                         "exit_code", signaled ? json_null() : json_integer(j->exit.exit_code),
                         "signal", signaled ? json_integer(j->exit.signal) : json_null(),
                         "duration_ms", (json_int_t) ((now_mono() - j->start) / USEC_PER_MSEC),
                         "timed_out", j->timed_out,
                         "oom_killed", false,
                         "truncated", j->truncated)) < 0) {
                json_decref(res);
                return NULL;
        }
        return res;
}

static bool job_oom_killed(exec_job *j) {
        sp_sandbox_stats st = {};

        if (!j->oom_known || !j->s->sb || sp_sandbox_stats_read(j->s->sb, &st) < 0)
                return false;
        return st.cgroup.oom_kills > j->oom_before;
}

static void job_free(exec_job *j) {
        session *s = j->s;

        for (int i = 0; i < 2; i++) {
                out_close(j, i);
                free(j->out[i].data);
        }
        j->in_src = sd_event_source_disable_unref(j->in_src);
        j->in_fd = safe_close(j->in_fd);
        j->timer = sd_event_source_disable_unref(j->timer);
        free(j->stdin_data);
        if (j->prev)
                j->prev->next = j->next;
        else
                s->jobs = j->next;
        if (j->next)
                j->next->prev = j->prev;
        s->n_jobs--;
        free(j);
}

static void job_finish(exec_job *j) {
        session *s = j->s;
        request *r = j->req;
        bool oom = s->state != SESSION_ENDING && job_oom_killed(j);
        json_t *res;

        for (int i = 0; i < 2; i++)
                (void) out_drain(j, i, 64);
        if (j->timed_out)
                s->srv->metrics.execs_timed_out++;
        if (j->truncated)
                s->srv->metrics.execs_truncated++;
        log_session(LOG_INFO, s->id, "command %" PRIu64 " ended: exit %d signal %d%s%s%s, %.1f ms", j->id,
                    j->exit.exit_code, j->exit.signal, j->timed_out ? ", timed out" : "",
                    oom ? ", oom" : "", j->truncated ? ", truncated" : "", (now_mono() - j->start) / 1000.0);

        if (r) {
                r->job = NULL;
                res = job_result_json(j);
                if (res) {
                        json_object_set_new(res, "oom_killed", json_boolean(oom));
                        if (j->exit.spawn_errno > 0)
                                json_object_set_new(res, "error",
                                                    json_sprintf("cannot execute the command: %s",
                                                                 strerror(j->exit.spawn_errno)));
                        if (j->session_ended) {
                                json_object_set_new(res, "session_ended", json_true());
                                json_object_set_new(res, "end_reason", json_string(s->end_reason));
                                if (s->died)
                                        json_object_set_new(res, "error",
                                                            json_sprintf("the sandbox died: %s", s->died_cause));
                        }
                }
                if (j->stream) {
                        stream_push(r, res);
                        if (r->stream)
                                r->stream->done = true;
                        stream_wake(r);
                } else {
                        if (res) {
                                for (int i = 0; i < 2; i++)
                                        json_object_set_new(res, stream_names[i],
                                                            json_bytes(j->out[i].data ? j->out[i].data : "",
                                                                       j->out[i].len, NULL, NULL));
                                reply_json(r, 200, res);
                        } else
                                reply_error(r, 500, "internal", "out of memory");
                        request_complete(r);
                }
        }
        job_free(j);
        if (s->state == SESSION_ENDING)
                return;
        session_touch(s);
        session_rearm_timer(s);
        if (s->oneshot)
                session_end_later(s, "run finished");
}

static int on_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        exec_job *j = userdata;

        j->timed_out = true;
        log_session(LOG_INFO, j->s->id, "command %" PRIu64 " timed out after %" PRIu64 " ms: killing its process group",
                    j->id, j->timeout_ms);
        (void) sp_sandbox_signal(j->s->sb, j->id, SIGKILL);
        return 0;
}

void exec_handle_event(session *s, const sp_event *ev) {
        exec_job *j;

        for (j = s->jobs; j; j = j->next)
                if (j->id == ev->id)
                        break;
        if (!j)
                return;
        if (ev->type == SP_EVENT_STARTED) {
                j->started = true;
                j->pid = ev->pid;
                return;
        }
        j->exit = ev->exit;
        j->exited = true;
        job_finish(j);
}

void exec_detach_request(exec_job *j) {
        j->req = NULL;
        log_session(LOG_INFO, j->s->id, "client of command %" PRIu64 " went away: killing it", j->id);
        if (!j->exited && j->s->sb)
                (void) sp_sandbox_signal(j->s->sb, j->id, SIGKILL);
        job_set_paused(j, false); /* keep draining into nowhere */
}

void exec_abort_all(session *s) {
        while (s->jobs) {
                exec_job *j = s->jobs;
                if (!j->exited) {
                        j->exit.exit_code = -1;
                        j->exit.signal = SIGKILL;
                }
                j->session_ended = true;
                job_finish(j);
        }
}

/* --- start ------------------------------------------------------------- */

static int pipe_nb(int p[2], int our_end) {
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        /* Only our end is non-blocking: the command sees ordinary pipes. */
        if (fcntl(p[our_end], F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

int exec_start(session *s, exec_params *p, request *r, sp_error *err) {
        server *srv = s->srv;
        _cleanup_close_pair_ int po[2] = { -EBADF, -EBADF }, pe[2] = { -EBADF, -EBADF },
                                 pi[2] = { -EBADF, -EBADF };
        sp_exec_spec spec;
        sp_sandbox_stats st = {};
        exec_job *j;
        int r_;

        if ((r_ = pipe_nb(po, 0)) < 0 || (r_ = pipe_nb(pe, 0)) < 0 ||
            (p->stdin_data && (r_ = pipe_nb(pi, 1)) < 0))
                return sp_error_set(err, r_, "cannot create pipes: %s", strerror(-r_));

        sp_exec_spec_init(&spec);
        spec.argv = p->argv;
        spec.envp = p->envp;
        spec.cwd = p->cwd;
        spec.stdin_fd = p->stdin_data ? pi[0] : -1;
        spec.stdout_fd = po[1];
        spec.stderr_fd = pe[1];

        j = calloc(1, sizeof(*j));
        if (!j)
                return sp_error_set(err, -ENOMEM, "out of memory");
        j->s = s;
        j->in_fd = -EBADF;
        j->out[0].fd = j->out[1].fd = -EBADF;
        j->stream = p->stream;
        j->max_output = p->max_output;
        j->timeout_ms = p->timeout_ms;
        if (sp_sandbox_stats_read(s->sb, &st) >= 0) {
                j->oom_before = st.cgroup.oom_kills;
                j->oom_known = true;
        }
        j->start = now_mono();
        r_ = sp_sandbox_spawn(s->sb, &spec, &j->id, err);
        if (r_ < 0) {
                free(j);
                return r_;
        }
        srv->metrics.execs_started++;

        /* The command holds its ends now; ours must go, or EOF never comes. */
        po[1] = safe_close(po[1]);
        pe[1] = safe_close(pe[1]);
        pi[0] = safe_close(pi[0]);
        j->out[0].fd = TAKE_FD(po[0]);
        j->out[1].fd = TAKE_FD(pe[0]);
        j->next = s->jobs;
        if (s->jobs)
                s->jobs->prev = j;
        s->jobs = j;
        s->n_jobs++;
        j->req = r;
        r->job = j;

        if (p->stdin_data) {
                j->in_fd = TAKE_FD(pi[1]);
                j->stdin_data = TAKE_PTR(p->stdin_data);
                j->stdin_len = p->stdin_len;
                if (sd_event_add_io(srv->event, &j->in_src, j->in_fd, EPOLLOUT, on_stdin_writable, j) < 0)
                        j->in_fd = safe_close(j->in_fd);
                else
                        (void) sd_event_source_set_priority(j->in_src, PRIO_WORK);
        }
        for (int i = 0; i < 2; i++)
                if (sd_event_add_io(srv->event, &j->out[i].src, j->out[i].fd, EPOLLIN, on_output, j) >= 0)
                        (void) sd_event_source_set_priority(j->out[i].src, PRIO_WORK);
        if (sd_event_add_time_relative(srv->event, &j->timer, CLOCK_MONOTONIC, j->timeout_ms * USEC_PER_MSEC,
                                       USEC_PER_MSEC, on_timeout, j) >= 0)
                (void) sd_event_source_set_priority(j->timer, PRIO_ENDS);
        if (j->stream)
                stream_push(r, json_pack("{s:s,s:s,s:I,s:I,s:I}", "type", "start", "session_id", s->oneshot ? "" : s->id,
                                         "command_id", (json_int_t) j->id, "timeout_ms", (json_int_t) j->timeout_ms,
                                         "max_output_bytes", (json_int_t) j->max_output));
        {
                /* the command line, shortened: a log line, not an audit record */
                char line[160] = "";
                size_t n = 0;
                for (char **a = p->argv; *a && n < sizeof(line) - 1; a++)
                        n += snprintf(line + n, sizeof(line) - n, "%s%s", a == p->argv ? "" : " ", *a);
                for (char *c = line; *c; c++)
                        if ((unsigned char) *c < ' ')
                                *c = ' ';
                log_session(LOG_INFO, s->id, "command %" PRIu64 " started (%s): %s%s", j->id,
                            j->stream ? "stream" : "buffered", line, n >= sizeof(line) - 1 ? "..." : "");
        }
        return 0;
}
