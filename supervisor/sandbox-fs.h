/* SPDX-License-Identifier: MIT */
#pragma once

/* Files inside a session's sandbox, for every API that touches them
 * (api-files.c, e2b-fs.c): a path is resolved by the kernel inside the
 * sandbox's root (openat2 RESOLVE_IN_ROOT, no magic links, no crossing
 * mounts), and the work is done with the fs ids of the sandbox user. */

#include <linux/openat2.h>
#include <stdint.h>

#include "session.h"

#define RESOLVE_SANDBOX (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

/* The fs ids of the sandbox user for a scope: AS_SANDBOX_USER(s) at the
 * top of a block. Scopes nest (the daemon is single-threaded) and only the
 * outermost switches back. fsuid != 0 also drops CAP_DAC_OVERRIDE & co.
 * from the effective set; switching back to 0 restores them. */
typedef struct sandbox_fs_ids {
        bool on;
} sandbox_fs_ids;
sandbox_fs_ids sandbox_fs_enter(session *s);
void sandbox_fs_leave(sandbox_fs_ids *ids);
#define AS_SANDBOX_USER(s) _cleanup_(sandbox_fs_leave) _unused_ sandbox_fs_ids _fsids_ = sandbox_fs_enter(s)

/* openat2() of path below the sandbox's root, with flags (O_CLOEXEC added):
 * 0 and the fd in *ret, or -errno. */
int sandbox_fs_open(session *s, const char *path, uint64_t flags, int *ret);
