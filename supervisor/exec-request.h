/* SPDX-License-Identifier: MIT */
#pragma once

/* The exec body (argv or shell, cwd, env, stdin, timeout_ms,
 * max_output_bytes, stream), parsed and checked once: every value within
 * the configuration's caps, every string free of NUL bytes. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"
#include "session.h"

typedef struct exec_params {
        char **argv;          /* owned, NULL-terminated */
        char **envp;          /* owned: defaults, then the session's, then the request's */
        char *cwd;            /* owned, may be NULL */
        char *stdin_data;     /* owned, may be NULL */
        size_t stdin_len;
        uint64_t timeout_ms;
        uint64_t max_output;
        bool stream;
        bool background;      /* POST .../commands: no timeout by default, output in its ring */
        bool pty;             /* on a terminal of rows x cols (background only) */
        unsigned rows, cols;
} exec_params;

void exec_params_done(exec_params *p);
/* Parse and validate an exec body for session s (NULL: a one-shot run);
 * on error -EINVAL with err saying why, or -ENOMEM. */
int exec_params_from_json(server *srv, session *s, json_t *body, exec_params *p, sp_error *err);
