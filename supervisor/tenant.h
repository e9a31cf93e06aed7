/* SPDX-License-Identifier: MIT */
#pragma once

/* Tenants: what the daemon knows of each client uid beyond its sessions.
 * Every command's exit is recorded (records.h) and counted against its
 * uid's usage of the day; each uid has a tier (tenant-config.h) whose
 * quotas admit or refuse its sessions and commands, whose ceilings lower
 * its limits, and whose share weighs it in the queues for the pool: a uid
 * holding less than its share of the pool is served before one holding
 * more. Usage of the day survives a restart (read back from the records).
 * Days are UTC days of wall_clock_ms() (time-util.h). */

#include "sandbox.h"
#include "server.h"

typedef struct tenants tenants;

/* At start-up, after the sandbox factory: open the records database
 * (<state_dir>/records.db), start its writer, watch every job's exit
 * (job_observe_exits). srv->tenants and srv->records. Fails only without
 * memory or threads: a broken database is a state (records.h). */
int tenants_start(server *srv);
/* At exit, after the last sandbox: every record written, all freed. */
void tenants_stop(server *srv);

/* Why a quota refused: for the 429 answer. */
typedef struct tenant_refusal {
        const char *tier;
        const char *quota;        /* "concurrent_sessions", "commands_per_day", "cpu_seconds_per_day" */
        uint64_t limit, used;
        int64_t resets_at_ms;     /* the next day, or 0: when one of its sessions ends */
} tenant_refusal;

/* 0, or -EDQUOT with *ret filled. */
int tenant_admit_session(server *srv, uid_t uid, gid_t gid, tenant_refusal *ret);
/* take: count the command now (it is about to start). */
int tenant_admit_command(server *srv, uid_t uid, gid_t gid, bool take, tenant_refusal *ret);
/* It did not start after all. */
void tenant_refund_command(server *srv, uid_t uid);
/* The tier's ceilings on a session's memory and a command's timeout (a
 * timeout of 0, none, becomes the ceiling). */
void tenant_cap_limits(server *srv, uid_t uid, gid_t gid, sp_limits *limits);
uint64_t tenant_cap_timeout(server *srv, uid_t uid, gid_t gid, uint64_t timeout_ms);

/* Fair share: does uid hold its share of the pool (max_pool_size x its
 * tier's share / the shares of every uid holding or waiting)? */
bool tenant_over_share(server *srv, uid_t uid);
/* The capacity waiter to serve next: the oldest of a uid under its
 * share, else the oldest. NULL when none waits. */
request *tenant_pick_waiter(server *srv);

/* GET /v1/usage: one uid's, or every known uid's for an admin. */
json_t *tenant_usage_json(server *srv, uid_t uid, gid_t gid);
json_t *tenant_usage_all_json(server *srv);
