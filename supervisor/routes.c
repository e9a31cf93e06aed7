/* SPDX-License-Identifier: MIT */
/* The routing table of the API (docs/api.md). */
#include "api-commands.h"
#include "api-config.h"
#include "api-exec.h"
#include "api-files.h"
#include "api-health.h"
#include "api-sessions.h"
#include "api-tenants.h"
#include "api-templates.h"
#include "routes.h"

const route api_routes[] = {
        { "GET", "/v1/health", api_health, BODY_NONE, false },
        { "GET", "/metrics", api_metrics, BODY_NONE, false },
        { "POST", "/v1/sessions", api_sessions_create, BODY_JSON, false },
        { "GET", "/v1/sessions", api_sessions_list, BODY_NONE, false },
        { "GET", "/v1/sessions/*", api_session_get, BODY_NONE, true },
        { "DELETE", "/v1/sessions/*", api_session_delete, BODY_NONE, true },
        { "POST", "/v1/sessions/*/fork", api_session_fork, BODY_JSON, true },
        { "POST", "/v1/sessions/*/exec", api_exec, BODY_JSON, true },
        { "POST", "/v1/sessions/*/commands", api_commands_create, BODY_JSON, true },
        { "GET", "/v1/sessions/*/commands", api_commands_list, BODY_NONE, true },
        { "GET", "/v1/sessions/*/commands/*", api_command_get, BODY_NONE, true },
        { "GET", "/v1/sessions/*/commands/*/output", api_command_output, BODY_NONE, true },
        { "POST", "/v1/sessions/*/commands/*/stdin", api_command_stdin, BODY_JSON, true },
        { "POST", "/v1/sessions/*/commands/*/signal", api_command_signal, BODY_JSON, true },
        { "POST", "/v1/sessions/*/commands/*/resize", api_command_resize, BODY_JSON, true },
        { "GET", "/v1/sessions/*/commands/*/attach", api_command_attach, BODY_NONE, true },
        { "GET", "/v1/sessions/*/files", api_files_get, BODY_NONE, true },
        { "PUT", "/v1/sessions/*/files", NULL, BODY_FILE, true,
          .body_begin = api_files_put_begin, .body_data = api_files_put_data, .body_end = api_files_put_end },
        { "DELETE", "/v1/sessions/*/files", api_files_delete, BODY_NONE, true },
        { "POST", "/v1/run", api_run, BODY_JSON, false },
        { "GET", "/v1/config", api_config, BODY_NONE, false },
        { "GET", "/v1/executions", api_executions, BODY_NONE, false },
        { "GET", "/v1/usage", api_usage, BODY_NONE, false },
        { "POST", "/v1/templates", api_templates_create, BODY_JSON, false },
        { "GET", "/v1/templates", api_templates_list, BODY_NONE, false },
        { "GET", "/v1/templates/*", api_template_get, BODY_NONE, false },
        { "DELETE", "/v1/templates/*", api_template_delete, BODY_NONE, false },
};

const size_t api_n_routes = ELEMENTSOF(api_routes);
