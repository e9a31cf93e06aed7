/* SPDX-License-Identifier: MIT */
#pragma once

/* The sandbox handle, shared by sandbox.c (lifecycle) and exec.c (commands). */

#include "mount.h"
#include "sandbox.h"

typedef enum sandbox_state {
        SANDBOX_STARTING,
        SANDBOX_READY,
        SANDBOX_FAILED,
        SANDBOX_DEAD,
} sandbox_state;

struct sp_sandbox {
        char *name;
        pid_t pid;
        int pidfd;
        int ctl;
        uid_t id_base;
        sandbox_state state;
        bool reaped;
        int exit_code, exit_status; /* once reaped: waitid's si_code (CLD_*) and si_status */
        uint64_t next_id;
        sp_stage stage;
        sp_cgroup *cgroup;
        char *buf; /* receive buffer */
};

