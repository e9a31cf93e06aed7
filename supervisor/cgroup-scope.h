/* SPDX-License-Identifier: MIT */
#pragma once

/* Where on a cgroup v2 host the sandboxes' cgroups may go, decided before
 * the cgroup manager is created (sp_cgroup_manager_options.parent and
 * .move_self_to_leaf).
 *
 * v2 lets only a cgroup without processes hand controllers to its
 * children, and under systemd only a delegated cgroup is ours to write.
 * A login shell's session scope or a service's cgroup is neither, so:
 *
 *   - our cgroup is the root, or cgroup_parent is configured: as it is;
 *   - systemd is PID 1 and our unit has Delegate=yes (sandpool.service):
 *     that cgroup, with the daemon moved into its leaf;
 *   - systemd is PID 1 otherwise: a transient scope with Delegate=yes,
 *     asked for over D-Bus (StartTransientUnit, waiting for its job), and
 *     our leaf inside it. systemd removes the scope when we exit. A daemon
 *     that finds itself in a .service unit without Delegate=yes refuses,
 *     naming the unit: escaping its own service would hide it from
 *     systemd's accounting and stop logic;
 *   - no systemd: our cgroup when we are alone in it, else a cgroup of our
 *     own beside it (under its parent), removed again at exit; and when
 *     neither can be had, an error that says what is needed.
 *
 * On a hybrid or v1 host, or with cgroup_mode = v1, nothing changes. */

#include <stdbool.h>

#include "cgroup.h"
#include "macro.h"

typedef struct cgroup_placement {
        /* For sp_cgroup_manager_options: NULL keeps the caller's choice. */
        char *parent;
        bool move_self_to_leaf;
        /* What was done, for the daemon's log: "" when nothing. */
        char describe[512];
        /* The transient scope systemd made for us, or NULL. */
        char *scope_unit;
        /* Without systemd: the cgroup we created (relative to the cgroup2
         * root) and the one we came from, to go back to at the end. */
        char *own_cgroup;
        char *origin_cgroup;
} cgroup_placement;

typedef struct cgroup_placement_options {
        sp_cgroup_mode mode;       /* the configured mode: v1 means "leave it" */
        const char *parent;        /* configured cgroup_parent, or NULL */
        /* Name prefix of the scope or own cgroup: "sandpool-run" gives
         * sandpool-run-<pid>.scope. */
        const char *name_prefix;
        const char *description;   /* of the transient scope */
        /* The daemon refuses a service unit without Delegate=yes (see
         * above); a one-shot run takes a scope from anywhere. */
        bool refuse_undelegated_service;
} cgroup_placement_options;

/* Decide, and do what it takes (ask systemd, create our own cgroup). On
 * error *ret is cleared and err says what the host lacks. */
int cgroup_placement_prepare(const cgroup_placement_options *o, cgroup_placement *ret, sp_error *err);
/* After sp_cgroup_manager_free(): leave and remove a cgroup made without
 * systemd, free the rest. A transient scope goes away by itself. */
void cgroup_placement_done(cgroup_placement *p);
