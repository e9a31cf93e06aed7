/* SPDX-License-Identifier: MIT */
/* GET /v1/health and GET /metrics. */
#include <inttypes.h>
#include <stdio.h>

#include "build-config.h"
#include "session.h"

void api_health(request *r) {
        const server *srv = r->srv;
        const sp_config *cfg = &srv->config.cfg;

        reply_json(r, 200,
                   json_pack("{s:s,s:s,s:{s:s},s:{s:i,s:i,s:i,s:i,s:i},s:i,s:{s:I,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I}}",
                             "status", srv->shutting_down ? "draining" : "ok",
                             "version", SANDPOOL_VERSION,
                             "cgroup", "mode", sp_cgroup_mode_to_string(sp_cgroup_manager_mode(srv->cgroups)),
                             "pool",
                             /* no warm pool yet: every sandbox is started on demand */
                             "available", 0,
                             "allocated", (int) (srv->n_sandboxes - srv->n_starting),
                             "warming", (int) srv->n_starting,
                             "total", (int) srv->n_sandboxes,
                             "max_capacity", (int) cfg->max_pool_size,
                             "active_sessions", (int) srv->n_sessions,
                             "limits",
                             "memory_limit", (json_int_t) cfg->memory_limit,
                             "cpu_limit", (int) cfg->cpu_limit,
                             "pids_limit", (int) cfg->pids_limit,
                             "disk_limit", (json_int_t) cfg->disk_limit,
                             "command_timeout_ms", (json_int_t) cfg->command_timeout_ms,
                             "max_output", (json_int_t) cfg->max_output,
                             "max_upload", (json_int_t) cfg->max_upload,
                             "session_timeout_ms", (json_int_t) cfg->session_timeout_ms,
                             "session_idle_timeout_ms", (json_int_t) cfg->session_idle_timeout_ms));
}

void api_metrics(request *r) {
        const server *srv = r->srv;
        const server_metrics *m = &srv->metrics;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return reply_error(r, 500, "internal", "out of memory");
#define COUNTER(name, help, v) \
        fprintf(f, "# HELP sandpool_" name " " help "\n# TYPE sandpool_" name " counter\nsandpool_" name " %" PRIu64 "\n", (uint64_t) (v))
#define GAUGE(name, help, v) \
        fprintf(f, "# HELP sandpool_" name " " help "\n# TYPE sandpool_" name " gauge\nsandpool_" name " %" PRIu64 "\n", (uint64_t) (v))
        COUNTER("http_requests_total", "HTTP requests received.", m->requests_total);
        fprintf(f, "# HELP sandpool_http_responses_total HTTP responses by status class.\n"
                   "# TYPE sandpool_http_responses_total counter\n");
        for (int c = 1; c < 6; c++)
                fprintf(f, "sandpool_http_responses_total{class=\"%dxx\"} %" PRIu64 "\n", c, m->responses_by_class[c]);
        COUNTER("connections_accepted_total", "Client connections accepted.", m->connections_accepted);
        COUNTER("slow_client_closes_total", "Connections closed for sending their request too slowly.",
                m->header_deadline_closes);
        COUNTER("sessions_created_total", "Sessions created.", m->sessions_created);
        COUNTER("sessions_ended_total", "Sessions and runs ended, for any reason.", m->sessions_ended);
        COUNTER("sessions_expired_total", "Sessions ended by their idle timeout or lifetime.", m->sessions_expired);
        COUNTER("sandboxes_started_total", "Sandboxes started.", m->sandboxes_started);
        COUNTER("sandbox_failures_total", "Sandboxes that failed to start.", m->sandbox_failures);
        COUNTER("execs_total", "Commands started.", m->execs_started);
        COUNTER("exec_timeouts_total", "Commands killed by their timeout.", m->execs_timed_out);
        COUNTER("exec_truncated_total", "Commands whose output was truncated.", m->execs_truncated);
        COUNTER("exec_client_gone_total", "Commands killed because their client went away.", m->execs_aborted);
        COUNTER("no_capacity_total", "Requests refused with 429.", m->no_capacity);
        GAUGE("connections", "Open client connections.", srv->n_clients);
        GAUGE("sessions", "Active sessions.", srv->n_sessions);
        GAUGE("sandboxes", "Live sandboxes (starting, in use, ending).", srv->n_sandboxes);
        GAUGE("sandboxes_starting", "Sandboxes still setting up.", srv->n_starting);
        GAUGE("sandboxes_max", "max_pool_size.", srv->config.cfg.max_pool_size);
#undef COUNTER
#undef GAUGE
        if (fclose(f) != 0)
                return reply_error(r, 500, "internal", "out of memory");
        reply_bytes(r, 200, "text/plain; version=0.0.4", text, len);
}
