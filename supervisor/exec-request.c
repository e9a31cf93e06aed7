/* SPDX-License-Identifier: MIT */
/* The body of POST /v1/sessions/{id}/exec and POST /v1/run, validated
 * against the configuration and turned into what a job needs. */
#include <stdarg.h>
#include <stdio.h>

#include "exec-request.h"
#include "util.h"

#define TIMEOUT_MAX_MS (24ULL * 3600 * 1000)
#define ARGV_MAX 4096

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


int exec_params_from_json(server *srv, session *s, json_t *body, exec_params *p, sp_error *err) {
        static const char *const known[] = { "argv", "shell", "cwd", "env", "stdin", "timeout_ms",
                                             "max_output_bytes", "stream", "background", "pty" };
        const sp_config *cfg = &srv->config.cfg;
        json_t *argv = json_object_get(body, "argv"), *shell = json_object_get(body, "shell");
        json_t *cwd = json_object_get(body, "cwd"), *env = json_object_get(body, "env");
        json_t *in = json_object_get(body, "stdin"), *stream = json_object_get(body, "stream");
        json_t *to = json_object_get(body, "timeout_ms"), *mo = json_object_get(body, "max_output_bytes");
        json_t *bg = json_object_get(body, "background"), *pty = json_object_get(body, "pty");
        const char *k;
        json_t *v;

        if (bg && !json_is_null(bg) && !json_is_boolean(bg))
                return sp_error_set(err, -EINVAL, "'background' must be true or false");
        bool background = json_is_true(bg);
        /* A background command has no timeout unless it asks for one (its
         * session's lifetime bounds it), and keeps its output in a ring. */
        uint64_t timeout_cap = background ? TIMEOUT_MAX_MS : cfg->command_timeout_ms;
        uint64_t output_cap = background ? cfg->command_buffer : cfg->max_output;
        *p = (exec_params) { .timeout_ms = background ? 0 : cfg->command_timeout_ms, .max_output = output_cap,
                             .background = background };
        json_object_foreach(body, k, v) {
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        ok = ok || streq(known[i], k);
                if (!ok)
                        return sp_error_set(err, -EINVAL, "unknown field '%s'", k);
        }
        if (!!argv == !!shell)
                return sp_error_set(err, -EINVAL, "exactly one of 'argv' and 'shell' is required");
        if (argv) {
                if (!json_is_array(argv) || json_array_size(argv) == 0)
                        return sp_error_set(err, -EINVAL, "'argv' must be a non-empty array of strings");
                if (json_array_size(argv) > ARGV_MAX)
                        return sp_error_set(err, -EINVAL, "'argv' has more than %d elements", ARGV_MAX);
                for (size_t i = 0; i < json_array_size(argv); i++) {
                        json_t *a = json_array_get(argv, i);
                        if (!json_is_string(a))
                                return sp_error_set(err, -EINVAL, "argv[%zu] is not a string", i);
                        if (str_has_nul(a))
                                return sp_error_set(err, -EINVAL, "argv[%zu] contains a NUL byte", i);
                }
                if (json_string_length(json_array_get(argv, 0)) == 0)
                        return sp_error_set(err, -EINVAL, "argv[0] is empty");
                p->argv = strv_from_json(argv);
        } else {
                if (!json_is_string(shell) || json_string_length(shell) == 0)
                        return sp_error_set(err, -EINVAL, "'shell' must be a non-empty string");
                if (str_has_nul(shell))
                        return sp_error_set(err, -EINVAL, "'shell' contains a NUL byte");
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
                        return sp_error_set(err, -EINVAL, "'cwd' must be an absolute path");
                p->cwd = strdup(json_string_value(cwd));
        }
        if (env && !json_is_null(env)) {
                if (!json_is_object(env))
                        return sp_error_set(err, -EINVAL, "'env' must be an object of strings");
                json_object_foreach(env, k, v) {
                        if (!*k || strchr(k, '='))
                                return sp_error_set(err, -EINVAL, "env name '%s' is empty or contains '='", k);
                        if (!json_is_string(v) || str_has_nul(v))
                                return sp_error_set(err, -EINVAL, "env value of '%s' must be a string without NUL", k);
                }
        }
        p->envp = envp_build(s ? s->env : NULL, env && json_is_object(env) ? env : NULL);
        if (!p->envp)
                return -ENOMEM;
        if (in && !json_is_null(in)) {
                if (!json_is_string(in))
                        return sp_error_set(err, -EINVAL, "'stdin' must be a string");
                p->stdin_len = json_string_length(in);
                p->stdin_data = malloc(p->stdin_len + 1);
                if (!p->stdin_data)
                        return -ENOMEM;
                memcpy(p->stdin_data, json_string_value(in), p->stdin_len + 1);
        }
        if (to && !json_is_null(to)) {
                if (!json_is_integer(to) || json_integer_value(to) <= 0 ||
                    (uint64_t) json_integer_value(to) > TIMEOUT_MAX_MS)
                        return sp_error_set(err, -EINVAL, "'timeout_ms' must be an integer from 1 to %llu",
                                    (unsigned long long) TIMEOUT_MAX_MS);
                /* command_timeout is the largest a foreground command may ask for */
                p->timeout_ms = MIN((uint64_t) json_integer_value(to), timeout_cap);
        }
        if (mo && !json_is_null(mo)) {
                if (!json_is_integer(mo) || json_integer_value(mo) < 0)
                        return sp_error_set(err, -EINVAL, "'max_output_bytes' must be a non-negative integer");
                p->max_output = MIN((uint64_t) json_integer_value(mo), output_cap);
        }
        if (pty && !json_is_null(pty)) {
                json_t *rows = json_object_get(pty, "rows"), *cols = json_object_get(pty, "cols");
                if (!p->background)
                        return sp_error_set(err, -EINVAL, "'pty' is for background commands (POST .../commands)");
                if (!json_is_object(pty) || json_object_size(pty) != (size_t) (!!rows + !!cols))
                        return sp_error_set(err, -EINVAL, "'pty' must be an object with 'rows' and 'cols'");
                p->pty = true;
                p->rows = 24;
                p->cols = 80;
                if (rows && (!json_is_integer(rows) || json_integer_value(rows) < 1 || json_integer_value(rows) > 1000))
                        return sp_error_set(err, -EINVAL, "'pty.rows' must be an integer from 1 to 1000");
                if (cols && (!json_is_integer(cols) || json_integer_value(cols) < 1 || json_integer_value(cols) > 1000))
                        return sp_error_set(err, -EINVAL, "'pty.cols' must be an integer from 1 to 1000");
                if (rows)
                        p->rows = (unsigned) json_integer_value(rows);
                if (cols)
                        p->cols = (unsigned) json_integer_value(cols);
        }
        if (stream && !json_is_null(stream)) {
                if (!json_is_boolean(stream))
                        return sp_error_set(err, -EINVAL, "'stream' must be true or false");
                p->stream = json_is_true(stream);
        }
        return 0;
}
