/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the daemon's request bodies: the bytes a client
 * sends to POST /v1/sessions and POST /v1/sessions/{id}/exec (and
 * /v1/run), decoded exactly as supervisor/http.c decodes them (jansson,
 * duplicates refused, NUL allowed) and validated by the endpoints' own
 * functions (session_params_from_json, exec_params_from_json). The first
 * input byte picks the endpoint. Besides "no crash, no leak, no UB", what
 * the validators accept must respect the configuration's caps. The URL
 * routing (http.c's route_find) is static and needs a live MHD
 * connection: it is covered by the client attack tests, not here. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "server.h"
#include "exec-request.h"
#include "session.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static server *the_server(void) {
        static server srv;
        static bool loaded;
        sp_error err = {};

        if (!loaded) {
                /* An empty file: every key at its documented default. */
                if (sp_config_load(&srv.config, "/dev/null", (char *[]) { NULL }, &err) < 0)
                        abort();
                loaded = true;
        }
        return &srv;
}

static void check_session(server *srv, json_t *body) {
        const sp_config *cfg = &srv->config.cfg;
        sp_error why = {};
        session_params p;

        if (session_params_from_json(srv, body, &p, &why) < 0) {
                if (!why.message[0])
                        abort(); /* a 400 must name the field */
                session_params_done(&p);
                return;
        }
        session_params_done(&p);
        if (p.timeout_ms == 0 || p.timeout_ms > cfg->session_timeout_ms || p.idle_timeout_ms == 0 ||
            p.idle_timeout_ms > cfg->session_idle_timeout_ms || p.limits.memory_bytes > cfg->memory_limit ||
            p.limits.cpu_pct > cfg->cpu_limit || p.limits.pids > cfg->pids_limit ||
            p.limits.disk_bytes > cfg->disk_limit)
                abort(); /* a request may lower a limit, never raise it */
}

static void check_exec(server *srv, json_t *body) {
        const sp_config *cfg = &srv->config.cfg;
        exec_params p = {};
        sp_error why = {};

        int r = exec_params_from_json(srv, NULL, body, &p, &why);
        if (r < 0) {
                if (r == -EINVAL && !why.message[0])
                        abort(); /* a 400 says why */
                exec_params_done(&p);
                return;
        }
        if (!p.argv || !p.argv[0] || !p.argv[0][0] || !p.envp)
                abort();
        /* A foreground command always has a timeout within the cap; a
         * background one none unless it asks, and a ring of command_buffer. */
        if (!p.background && (p.timeout_ms == 0 || p.timeout_ms > cfg->command_timeout_ms ||
                              p.max_output > cfg->max_output))
                abort();
        if (p.background && p.max_output > cfg->command_buffer)
                abort();
        if (p.cwd && p.cwd[0] != '/')
                abort();
        for (char **e = p.envp; *e; e++)
                if (!strchr(*e, '='))
                        abort();
        exec_params_done(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_error_t e;
        json_t *body;

        if (size < 1 || size > 256 * 1024)
                return 0;
        body = json_loadb((const char *) data + 1, size - 1, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
        if (!body)
                return 0;
        if (json_is_object(body)) {
                if (data[0] & 1)
                        check_exec(the_server(), body);
                else
                        check_session(the_server(), body);
        }
        json_decref(body);
        return 0;
}
