/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* One command, started by the sandbox's PID 1 (which already carries the
 * sandbox-wide hardening: seccomp filter, no_new_privs, empty bounding
 * set). The child joins a new session (its own process group, so a timeout
 * can kill the whole group), gets its stdio, drops to the requested user
 * with no capabilities left, changes directory and execs. It is started
 * with CLONE_VM|CLONE_VFORK: no page tables are copied, and PID 1 resumes
 * once the exec has happened or failed. */
typedef struct sp_spawn_req {
        char **argv;
        char **envp;
        const char *cwd; /* NULL or "": the user's home */
        uid_t uid;
        gid_t gid;
        int fds[3];
        bool ctty; /* fds[0] is a terminal: make it the session's controlling one */
} sp_spawn_req;

/* Returns 0 and the child's pid; *ret_errno is set when exec (or chdir)
 * failed: the child has then already written a message to its stderr and
 * exited with 127 (not found) or 126. -errno when no child was made. */
int sp_spawn_command(const sp_spawn_req *req, pid_t *ret_pid, int *ret_errno);
