/* SPDX-License-Identifier: MIT */
#pragma once

/* The tenants' part of the configuration file: tiers and who is in which.
 *
 *   [tier.free]
 *   concurrent_sessions = 2     # sessions and runs at once; 0: no cap
 *   commands_per_day = 1000     # 0: no cap
 *   cpu_seconds_per_day = 600   # 0: no cap
 *   memory_limit = 128M         # ceiling of a session's memory; 0: [limits]'s
 *   command_timeout = 10s       # ceiling of a command's timeout; 0: [limits]'s
 *   share = 1                   # weight in the pool's fair share
 *
 *   [tenants]
 *   default_tier = free         # everyone not mapped below ("default": unlimited)
 *   uid.1000 = pro              # by uid, user name, primary gid or group
 *   user.alice = pro
 *   gid.2000 = enterprise
 *   group.developers = pro      # members (the group file) and primary gid
 *   clock_file = /path          # tests: the wall clock of quotas (time-util.h)
 *
 * Days are UTC days of the wall clock. Parsed by config.c's file reader
 * (these sections go to tenant_config_add()); names are resolved (users,
 * groups, tiers) by tenant_config_check(), which names the file and line
 * of a mapping to an unknown tier, user or group. Not settable from the
 * environment. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "macro.h"

typedef struct tenant_tier {
        char *name;
        uint32_t concurrent_sessions;
        uint64_t commands_per_day;
        uint64_t cpu_seconds_per_day;
        uint64_t memory_limit;
        uint64_t command_timeout_ms;
        uint32_t share;
        char *where;
        unsigned seen;                  /* bit per key: given twice is an error */
} tenant_tier;

typedef enum tenant_map_kind { MAP_UID, MAP_USER, MAP_GID, MAP_GROUP } tenant_map_kind;

typedef struct tenant_map {
        tenant_map_kind kind;
        char *name;                     /* user or group name, or the number as text */
        char *tier;
        char *where;
        /* resolved by tenant_config_check() */
        uint32_t id;                    /* uid or gid */
        uid_t *members;                 /* MAP_GROUP: the uids of its members */
        size_t n_members;
        const tenant_tier *t;
} tenant_map;

typedef struct tenant_config {
        tenant_tier *tiers;
        size_t n_tiers;
        tenant_map *maps;
        size_t n_maps;
        char *default_tier;
        char *default_where;
        char *clock_file;
        const tenant_tier *def;         /* resolved: the default tier */
} tenant_config;

/* [tenants] and [tier.NAME] */
bool tenant_config_section(const char *name, size_t len);
int tenant_config_add(tenant_config *c, const char *section, const char *key, const char *value, const char *where,
                      sp_error *err);
/* After the file: every mapping's tier, user and group exists. */
int tenant_config_check(tenant_config *c, sp_error *err);
void tenant_config_done(tenant_config *c);
void tenant_config_print(const tenant_config *c, FILE *f);
/* The tier of a client (uid, primary gid). */
const tenant_tier *tenant_config_tier_of(const tenant_config *c, uid_t uid, gid_t gid);
