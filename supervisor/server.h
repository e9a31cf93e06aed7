/* SPDX-License-Identifier: MIT */
#pragma once

/* The state of one sandpoold process: made and freed by main.c, borrowed
 * by every part of the daemon. Types only (the functions are in the files
 * of each part). Everything runs on one thread, on one sd-event loop: no
 * locks, and no call on the loop may block. */

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>
#include <sys/types.h>

#include "config.h"
#include "factory.h"
#include "priority.h"
#include "time-util.h"
#include "sandbox.h"


typedef struct pool pool;
typedef struct server server;
typedef struct session session;
typedef struct request request;
typedef struct client client;
typedef struct route route;
typedef struct egress egress;
typedef struct netceiling netceiling;
typedef struct template_registry template_registry;

/* Counters for GET /metrics. Monotonic unless said otherwise. */
typedef struct server_metrics {
        uint64_t requests_total;
        uint64_t responses_by_class[6]; /* index status/100 */
        uint64_t sessions_created;
        uint64_t sessions_ended;
        uint64_t sessions_expired;
        uint64_t sandboxes_started;
        uint64_t sandbox_failures;
        uint64_t execs_started;
        uint64_t execs_timed_out;
        uint64_t execs_truncated;
        uint64_t execs_aborted; /* client went away */
        uint64_t connections_accepted;
        uint64_t header_deadline_closes;
        uint64_t no_capacity;
        uint64_t capacity_waits;
        /* keyed sessions (keyed.c) and the ends of sessions */
        uint64_t keyed_hits, keyed_misses, keyed_evictions;
        uint64_t sessions_accounted;    /* ended, not one-shot */
        uint64_t sessions_lifetime_usec; /* of those, summed */
        uint64_t sessions_commands;      /* of those, summed */
        uint64_t quota_refusals;         /* 429 quota_exceeded (tenant.h) */
        uint64_t background_started; /* background commands (api-commands.c) */
} server_metrics;

struct server {
        sd_event *event;

        /* configuration: the current one, and where it came from */
        sp_config_set config;
        const char *config_path;   /* --config, NULL: the default path */
        const char *cgroup_subdir; /* --cgroup-subdir, NULL: "sandboxes" */
        gid_t admin_gid;
        bool have_admin_gid;

        /* runtime */
        char *stage_dir;
        sp_cgroup_manager *cgroups;
        sp_seccomp_program *seccomp;
        uint32_t n_slots;          /* id ranges we may claim (sp_idslot, cross-process) */
        factory *factory;          /* makes sandboxes off the loop (worker processes) */
        pool *pool;                /* every sandbox comes from and goes back to it */
        egress *egress;            /* NULL: no [network] uplink, sessions have only lo */
        netceiling *netceiling;    /* the operator's network grants */
        template_registry *templates; /* template.c: captured layers and their pools */
        uint64_t sandbox_counter;  /* for unique sandbox names */

        /* HTTP */
        const route *routes;       /* the API (routes.c), given by main.c */
        size_t n_routes;
        int listen_fd;
        char *socket_path;         /* the one bound at start (reload keeps it) */
        bool socket_owned;         /* we bound it: unlink on exit */
        struct MHD_Daemon *mhd;
        sd_event_source *mhd_io;
        sd_event_source *mhd_timer;
        sd_event_source *mhd_kick; /* defer: run MHD on the next iteration */
        unsigned n_clients;
        unsigned n_requests_live;
        request *requests;         /* every live request, linked */

        /* sessions */
        session *sessions;         /* every session, linked */
        unsigned n_sessions;       /* visible (ready, not one-shot) */
        unsigned n_starting;       /* sessions waiting for a sandbox of their own */
        request *capacity_waiters; /* requests waiting for a free slot, oldest first */
        sd_event_source *capacity_retry;

        /* lifecycle */
        bool shutting_down;
        usec_t shutdown_started;
        sd_event_source *drain_timer;
        int exit_code;

        /* tenants: execution records (records.h), tiers, usage, fair
         * shares (tenant.h) */
        struct records *records;   /* NULL: records off */
        struct tenants *tenants;

        server_metrics metrics;
        json_t *image;             /* what /v1/health says of the image (its manifest) */
};
