/* SPDX-License-Identifier: MIT */
#pragma once

/* Tenants: what the daemon knows of each client uid beyond its sessions.
 * Every command's exit is recorded (records.h) and counted against its
 * uid's usage of the day. */

#include "server.h"

typedef struct tenants tenants;

/* At start-up, after the sandbox factory: open the records database
 * (<state_dir>/records.db), start its writer, watch every job's exit
 * (job_observe_exits). srv->tenants and srv->records. Fails only without
 * memory or threads: a broken database is a state (records.h). */
int tenants_start(server *srv);
/* At exit, after the last sandbox: every record written, all freed. */
void tenants_stop(server *srv);
