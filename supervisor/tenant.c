/* SPDX-License-Identifier: MIT */
/* Tenants: see tenant.h. */
#include <inttypes.h>
#include <stdio.h>

#include "http.h"
#include "job.h"
#include "log.h"
#include "pool.h"
#include "records.h"
#include "session.h"
#include "tenant.h"
#include "util.h"

#define MS_PER_DAY 86400000LL

/* One uid's usage of the current day. */
typedef struct uid_usage {
        uid_t uid;
        gid_t gid;        /* its primary group, as last seen: for its tier */
        bool gid_known;
        int64_t day;      /* days since the epoch, of the wall clock */
        uint64_t commands, cpu_usec;
} uid_usage;

struct tenants {
        server *srv;
        uid_usage *u;
        size_t n, cap;
};

static int64_t today(void) {
        return wall_clock_ms() / MS_PER_DAY;
}

/* The uid's entry, on today's count (a new day starts from zero). NULL
 * only without memory. */
static uid_usage *usage_of(tenants *t, uid_t uid) {
        int64_t day = today();
        uid_usage *e = NULL;

        for (size_t i = 0; i < t->n && !e; i++)
                if (t->u[i].uid == uid)
                        e = &t->u[i];
        if (!e) {
                if (t->n == t->cap) {
                        size_t cap = t->cap ? t->cap * 2 : 16;
                        uid_usage *n = realloc(t->u, cap * sizeof(*n));
                        if (!n)
                                return NULL;
                        t->u = n;
                        t->cap = cap;
                }
                e = &t->u[t->n++];
                *e = (uid_usage){.uid = uid, .day = day};
        }
        if (e->day != day)
                *e = (uid_usage){.uid = uid, .gid = e->gid, .gid_known = e->gid_known, .day = day};
        return e;
}

static const tenant_tier *tier_of(server *srv, uid_t uid, gid_t gid) {
        return tenant_config_tier_of(&srv->config.tenants, uid, gid);
}

/* The tier of a uid seen before (its gid remembered), for fair shares. */
static const tenant_tier *tier_of_known(server *srv, uid_t uid) {
        tenants *t = srv->tenants;
        for (size_t i = 0; t && i < t->n; i++)
                if (t->u[i].uid == uid && t->u[i].gid_known)
                        return tier_of(srv, uid, t->u[i].gid);
        return tier_of(srv, uid, (gid_t) -1);
}

static void note_gid(uid_usage *e, gid_t gid) {
        e->gid = gid;
        e->gid_known = true;
}

static unsigned sessions_of(server *srv, uid_t uid) {
        unsigned n = 0;
        for (session *s = srv->sessions; s; s = s->next)
                n += s->owner == uid && s->state != SESSION_ENDING;
        return n;
}

int tenant_admit_session(server *srv, uid_t uid, gid_t gid, tenant_refusal *ret) {
        const tenant_tier *tier = tier_of(srv, uid, gid);
        uid_usage *e = srv->tenants ? usage_of(srv->tenants, uid) : NULL;
        unsigned n;

        if (e)
                note_gid(e, gid);
        if (tier->concurrent_sessions == 0 || (n = sessions_of(srv, uid)) < tier->concurrent_sessions)
                return 0;
        *ret = (tenant_refusal){.tier = tier->name, .quota = "concurrent_sessions",
                                .limit = tier->concurrent_sessions, .used = n};
        return -EDQUOT;
}

int tenant_admit_command(server *srv, uid_t uid, gid_t gid, bool take, tenant_refusal *ret) {
        const tenant_tier *tier = tier_of(srv, uid, gid);
        uid_usage *e = srv->tenants ? usage_of(srv->tenants, uid) : NULL;

        if (!e)
                return 0; /* no memory for the count: nothing to refuse on */
        note_gid(e, gid);
        int64_t reset = (e->day + 1) * MS_PER_DAY;
        if (tier->commands_per_day > 0 && e->commands >= tier->commands_per_day) {
                *ret = (tenant_refusal){.tier = tier->name, .quota = "commands_per_day",
                                        .limit = tier->commands_per_day, .used = e->commands, .resets_at_ms = reset};
                return -EDQUOT;
        }
        if (tier->cpu_seconds_per_day > 0 && e->cpu_usec >= tier->cpu_seconds_per_day * USEC_PER_SEC) {
                *ret = (tenant_refusal){.tier = tier->name, .quota = "cpu_seconds_per_day",
                                        .limit = tier->cpu_seconds_per_day, .used = e->cpu_usec / USEC_PER_SEC,
                                        .resets_at_ms = reset};
                return -EDQUOT;
        }
        if (take)
                e->commands++;
        return 0;
}

void tenant_refund_command(server *srv, uid_t uid) {
        uid_usage *e = srv->tenants ? usage_of(srv->tenants, uid) : NULL;
        if (e && e->commands > 0)
                e->commands--;
}

void tenant_cap_limits(server *srv, uid_t uid, gid_t gid, sp_limits *limits) {
        const tenant_tier *tier = tier_of(srv, uid, gid);
        if (tier->memory_limit > 0 && limits->memory_bytes > tier->memory_limit)
                limits->memory_bytes = tier->memory_limit;
}

uint64_t tenant_cap_timeout(server *srv, uid_t uid, gid_t gid, uint64_t timeout_ms) {
        const tenant_tier *tier = tier_of(srv, uid, gid);
        /* 0: none (a background command's default): the ceiling then */
        if (tier->command_timeout_ms > 0 && (timeout_ms == 0 || timeout_ms > tier->command_timeout_ms))
                return tier->command_timeout_ms;
        return timeout_ms;
}

/* ---- fair shares ------------------------------------------------------------ */

/* The uids holding a session or waiting for a slot, each once. */
static size_t active_uids(server *srv, uid_t *out, size_t max) {
        size_t n = 0;
        bool dup;

#define ADD(u)                                                  do {                                                            dup = false;                                            for (size_t k = 0; k < n && !dup; k++)                          dup = out[k] == (u);                            if (!dup && n < max)                                            out[n++] = (u);                         } while (0)
        for (session *s = srv->sessions; s; s = s->next)
                if (s->state != SESSION_ENDING)
                        ADD(s->owner);
        for (request *w = srv->capacity_waiters; w; w = w->wait_next)
                ADD(w->cl->uid);
#undef ADD
        return n;
}

bool tenant_over_share(server *srv, uid_t uid) {
        uid_t uids[512];
        size_t n = active_uids(srv, uids, ELEMENTSOF(uids));
        uint64_t total = 0, mine = tier_of_known(srv, uid)->share;
        bool listed = false;

        for (size_t i = 0; i < n; i++) {
                total += tier_of_known(srv, uids[i])->share;
                listed = listed || uids[i] == uid;
        }
        if (!listed)
                total += mine;
        /* held / max_pool_size >= mine / total, in integers */
        return (uint64_t) sessions_of(srv, uid) * total >= (uint64_t) srv->config.cfg.max_pool_size * mine;
}

request *tenant_pick_waiter(server *srv) {
        for (request *w = srv->capacity_waiters; w; w = w->wait_next)
                if (!w->aborted && !tenant_over_share(srv, w->cl->uid))
                        return w;
        return srv->capacity_waiters;
}

static bool pool_owner_over_share(uint32_t owner, void *userdata) {
        return tenant_over_share(userdata, (uid_t) owner);
}

/* ---- usage ----------------------------------------------------------------- */

static json_t *limit_json(uint64_t limit, uint64_t used) {
        return json_pack("{s:o,s:I}", "limit", limit ? json_integer((json_int_t) limit) : json_null(), "used",
                         (json_int_t) used);
}

static json_t *usage_json(server *srv, uid_usage *e) {
        const tenant_tier *tier = tier_of(srv, e->uid, e->gid_known ? e->gid : (gid_t) -1);

        return json_pack("{s:i,s:s,s:o,s:o,s:o,s:o,s:{s:o,s:o,s:i}}",
                         "uid", (int) e->uid,
                         "tier", tier->name,
                         "day_started_at", json_time((usec_t) (e->day * MS_PER_DAY) * USEC_PER_MSEC),
                         "resets_at", json_time((usec_t) ((e->day + 1) * MS_PER_DAY) * USEC_PER_MSEC),
                         "commands", limit_json(tier->commands_per_day, e->commands),
                         "cpu_seconds", json_pack("{s:o,s:f}", "limit", tier->cpu_seconds_per_day ?
                                                  json_integer((json_int_t) tier->cpu_seconds_per_day) : json_null(),
                                                  "used", (double) e->cpu_usec / 1e6),
                         "ceilings",
                         "memory_limit", tier->memory_limit ? json_integer((json_int_t) tier->memory_limit) : json_null(),
                         "command_timeout_ms", tier->command_timeout_ms ?
                                 json_integer((json_int_t) tier->command_timeout_ms) : json_null(),
                         "share", (int) tier->share);
}

static json_t *usage_with_sessions(server *srv, uid_usage *e) {
        const tenant_tier *tier = tier_of(srv, e->uid, e->gid_known ? e->gid : (gid_t) -1);
        json_t *j = usage_json(srv, e);
        if (j)
                json_object_set_new(j, "sessions", limit_json(tier->concurrent_sessions, sessions_of(srv, e->uid)));
        return j;
}

json_t *tenant_usage_json(server *srv, uid_t uid, gid_t gid) {
        uid_usage *e = srv->tenants ? usage_of(srv->tenants, uid) : NULL;
        if (!e)
                return NULL;
        note_gid(e, gid);
        return usage_with_sessions(srv, e);
}

json_t *tenant_usage_all_json(server *srv) {
        tenants *t = srv->tenants;
        json_t *a = json_array();

        for (size_t i = 0; t && a && i < t->n; i++) {
                uid_usage *e = usage_of(t, t->u[i].uid); /* today's */
                json_array_append_new(a, usage_with_sessions(srv, e));
        }
        return json_pack("{s:o}", "usage", a ? a : json_array());
}

/* Every command, whoever ran it: its record. */
static void on_job_exit(const job_exit_info *info, const job_result *res, void *userdata) {
        tenants *t = userdata;
        server *srv = t->srv;
        int64_t now = wall_clock_ms();
        uid_usage *e = usage_of(t, info->origin->uid);

        if (e)
                e->cpu_usec += res->cpu_usec;
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

/* Today's usage from the records: quotas survive a restart. */
static void usage_loaded(uint32_t uid, uint64_t commands, uint64_t cpu_usec, void *userdata) {
        uid_usage *e = usage_of(userdata, uid);
        if (e) {
                e->commands += commands;
                e->cpu_usec += cpu_usec;
        }
}

int tenants_start(server *srv) {
        const tenant_config *tc = &srv->config.tenants;
        tenants *t;
        int r;

        wall_clock_use_file(tc->clock_file);
        if (tc->clock_file)
                log_warning("Quotas and records run on the clock in %s (clock_file: for tests)", tc->clock_file);
        r = open_records(srv);
        if (r < 0)
                return r;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->srv = srv;
        srv->tenants = t;
        if (srv->records && records_load_usage(srv->records, today() * MS_PER_DAY, usage_loaded, t) >= 0)
                log_info("Tenants: %zu tiers, today's usage of %zu uids read from the records", tc->n_tiers, t->n);
        if (srv->pool)
                pool_set_fair_share(srv->pool, pool_owner_over_share, srv);
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
        if (t)
                free(t->u);
        free(t);
        srv->tenants = NULL;
}
