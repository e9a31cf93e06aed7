/* SPDX-License-Identifier: MIT */
/* GET /v1/health and GET /metrics. */
#include <inttypes.h>
#include <stdio.h>

#include "egress.h"
#include "api-health.h"
#include "build-config.h"
#include "keyed.h"
#include "pool.h"
#include "records.h"
#include "session.h"

static unsigned background_running(const server *srv) {
        unsigned n = 0;

        for (const session *s = srv->sessions; s; s = s->next)
                n += command_set_running(s->commands);
        return n;
}

void api_health(request *r) {
        const server *srv = r->srv;
        const sp_config *cfg = &srv->config.cfg;
        pool_stats ps = {};

        if (srv->pool)
                pool_get_stats(srv->pool, &ps);
        json_t *j = json_pack("{s:s,s:s,s:{s:s},s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i},s:i,s:{s:I,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I}}",
                             "status", srv->shutting_down ? "draining" : "ok",
                             "version", SANDPOOL_VERSION,
                             "cgroup", "mode", sp_cgroup_mode_to_string(sp_cgroup_manager_mode(srv->cgroups)),
                             "pool",
                             "available", (int) ps.available,
                             "allocated", (int) ps.allocated,
                             "warming", (int) ps.warming,
                             "total", (int) ps.total,
                             "max_capacity", (int) cfg->max_pool_size,
                             "destroying", (int) ps.destroying,
                             "target", (int) ps.target,
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
                             "session_idle_timeout_ms", (json_int_t) cfg->session_idle_timeout_ms);
        if (j)
                json_object_set_new(j, "commands", json_pack("{s:i}", "background_running", (int) background_running(srv)));
        if (j && srv->image)
                json_object_set(j, "image", srv->image);
        if (j) {
                json_object_set_new(j, "records", records_health_json(srv->records));
                json_object_set_new(j, "sessions", keyed_stats_json(r->srv));
        }
        reply_json(r, 200, j);
}

static void histogram(FILE *f, const char *name, const char *help, const pool_histogram *h) {
        uint64_t cum = 0;

        fprintf(f, "# HELP sandpool_%s %s\n# TYPE sandpool_%s histogram\n", name, help, name);
        for (int i = 0; i < POOL_HIST_BUCKETS; i++) {
                cum += h->counts[i];
                if (h->le_usec[i] == UINT64_MAX)
                        fprintf(f, "sandpool_%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
                else
                        fprintf(f, "sandpool_%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, h->le_usec[i] / 1e6, cum);
        }
        fprintf(f, "sandpool_%s_sum %g\nsandpool_%s_count %" PRIu64 "\n", name, h->sum_usec / 1e6, name, h->count);
}

void api_metrics(request *r) {
        const server *srv = r->srv;
        const server_metrics *m = &srv->metrics;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        unsigned n_waiters = 0;
        FILE *f = open_memstream(&text, &len);

        for (request *w = srv->capacity_waiters; w; w = w->wait_next)
                n_waiters++;

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
        GAUGE("background_commands_running", "Background commands running, in every session.",
              background_running(srv));
        COUNTER("background_commands_total", "Background commands started.", m->background_started);
        GAUGE("sessions_starting", "Sessions waiting for a sandbox of their own.", srv->n_starting);
        GAUGE("capacity_waiters", "Requests waiting for a free sandbox slot.", n_waiters);
        COUNTER("capacity_waits_total", "Requests that had to wait for a free slot.", m->capacity_waits);
        COUNTER("keyed_session_hits_total", "Keyed creates answered with the key's live session.", m->keyed_hits);
        COUNTER("keyed_session_misses_total", "Keyed creates that made a new session.", m->keyed_misses);
        fprintf(f, "# HELP sandpool_keyed_session_reuse_ratio Hits / (hits + misses) of keyed creates.\n"
                   "# TYPE sandpool_keyed_session_reuse_ratio gauge\nsandpool_keyed_session_reuse_ratio %g\n",
                m->keyed_hits + m->keyed_misses ? (double) m->keyed_hits / (double) (m->keyed_hits + m->keyed_misses)
                                                : 0.0);
        COUNTER("keyed_session_evictions_total", "Idle keyed sessions ended to make room.", m->keyed_evictions);
        COUNTER("quota_refusals_total", "Requests refused with 429 quota_exceeded (a tier's quota).",
                m->quota_refusals);
        fprintf(f, "# HELP sandpool_session_lifetime_seconds Lifetime of ended sessions (not runs).\n"
                   "# TYPE sandpool_session_lifetime_seconds summary\n"
                   "sandpool_session_lifetime_seconds_sum %g\nsandpool_session_lifetime_seconds_count %" PRIu64 "\n",
                m->sessions_lifetime_usec / 1e6, m->sessions_accounted);
        COUNTER("session_commands_total", "Commands run in ended sessions (not runs): / lifetime count = per session.",
                m->sessions_commands);
        if (srv->pool) {
                pool_stats ps;
                pool_get_stats(srv->pool, &ps);
                GAUGE("pool_available", "Warm sandboxes ready to hand out.", ps.available);
                GAUGE("pool_warming", "Sandboxes setting up.", ps.warming);
                GAUGE("pool_allocated", "Sandboxes in sessions and runs.", ps.allocated);
                GAUGE("pool_destroying", "Sandboxes being reaped.", ps.destroying);
                GAUGE("pool_total", "Live sandboxes, all states.", ps.total);
                GAUGE("pool_max", "max_pool_size.", ps.max_capacity);
                COUNTER("pool_hits_total", "Sessions served a warm sandbox.", ps.hits);
                COUNTER("pool_misses_total", "Sessions that needed a sandbox of their own.", ps.misses);
                COUNTER("pool_created_total", "Sandboxes warmed.", ps.created);
                COUNTER("pool_failed_total", "Sandbox creations that failed.", ps.failed);
                COUNTER("pool_died_warm_total", "Warm sandboxes that died unused.", ps.died_warm);
                COUNTER("pool_destroyed_total", "Sandboxes destroyed.", ps.destroyed);
                histogram(f, "pool_create_seconds", "Time from start to ready of warmed sandboxes.",
                          &ps.create_latency);
                histogram(f, "pool_destroy_seconds", "Time from kill to reaped.", &ps.destroy_latency);
        }
        if (srv->egress)
                egress_write_metrics(srv->egress, f);
        if (srv->records) {
                records_status rs;
                records_get_status(srv->records, &rs);
                COUNTER("records_written_total", "Execution records written to the database.", rs.written);
                COUNTER("records_dropped_total", "Execution records lost (database unusable or queue full).",
                        rs.dropped);
                COUNTER("records_pruned_total", "Execution records deleted by retention.", rs.pruned);
                GAUGE("records_queued", "Execution records waiting for the writer.", rs.queued);
                GAUGE("records_ok", "1 when the records database is usable.", !streq(rs.state, "unavailable"));
        }
#undef COUNTER
#undef GAUGE
        if (fclose(f) != 0)
                return reply_error(r, 500, "internal", "out of memory");
        reply_bytes(r, 200, "text/plain; version=0.0.4", text, len);
}
