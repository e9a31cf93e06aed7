/* SPDX-License-Identifier: MIT */
/* Tenants: see tenant.h. */
#include <inttypes.h>
#include <stdio.h>

#include "job.h"
#include "log.h"
#include "records.h"
#include "tenant.h"

struct tenants {
        server *srv;
};

/* Every command, whoever ran it: its record. */
static void on_job_exit(const job_exit_info *info, const job_result *res, void *userdata) {
        tenants *t = userdata;
        server *srv = t->srv;
        int64_t now = wall_clock_ms();

        if (!srv->records)
                return;
        record_in r = {
                .session = info->origin->session_id ? info->origin->session_id : "",
                .uid = info->origin->uid,
                .key = info->origin->key,
                .oneshot = info->origin->oneshot,
                .command_id = info->command_id,
                .argv = info->argv,
                .argv_len = info->argv_len,
                .argv_truncated = info->argv_truncated,
                .cwd = info->cwd,
                .started_ms = now - (int64_t) res->duration_ms,
                .duration_ms = res->duration_ms,
                .exit_code = res->exit_code,
                .signal = res->signal,
                .spawn_errno = res->spawn_errno,
                .cpu_usec = res->cpu_usec,
                .memory_peak = info->memory_peak,
                .oom_killed = res->oom_killed,
                .timed_out = res->timed_out,
                .truncated = res->truncated,
                .stdout_bytes = res->bytes[0],
                .stderr_bytes = res->bytes[1],
                .end_reason = res->ended_by,
        };
        records_submit(srv->records, &r);
}

static int64_t records_clock(void *userdata) {
        return wall_clock_ms();
}

static int open_records(server *srv) {
        const sp_config *cfg = &srv->config.cfg;
        _cleanup_free_ char *path = NULL;
        records_status st;
        int r;

        if (!cfg->records_enabled) {
                log_info("Execution records are off ([records] records_enabled = false)");
                return 0;
        }
        if (asprintf(&path, "%s/records.db", cfg->state_dir) < 0)
                return -ENOMEM;
        records_options o = {
                .path = path,
                .retention_days = cfg->records_retention_days,
                .max_rows = cfg->records_max_rows,
                .flush_interval_ms = cfg->records_flush_interval_ms,
                .clock = records_clock,
        };
        r = records_open(srv->event, &o, &srv->records);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the execution records");
        records_get_status(srv->records, &st);
        log_info("Execution records: %s (%s), written every %" PRIu64 " ms", path, st.state,
                 cfg->records_flush_interval_ms);
        return 0;
}

int tenants_start(server *srv) {
        tenants *t;
        int r;

        r = open_records(srv);
        if (r < 0)
                return r;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->srv = srv;
        srv->tenants = t;
        r = job_observe_exits(on_job_exit, t);
        if (r >= 0 && srv->records)
                r = records_start(srv->records);
        if (r < 0)
                return log_error_errno(r, "Failed to start the execution records");
        return 0;
}

void tenants_stop(server *srv) {
        tenants *t = srv->tenants;

        if (t)
                job_unobserve_exits(on_job_exit, t);
        /* after the observer: nothing is submitted any more */
        records_close(srv->records);
        srv->records = NULL;
        free(t);
        srv->tenants = NULL;
}
