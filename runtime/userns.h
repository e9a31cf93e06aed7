/* SPDX-License-Identifier: MIT */
#pragma once

#include <sys/types.h>

/* Map ids 0..count-1 inside the user namespace of pid to base..base+count-1
 * on the host (uid and gid alike). Written by the privileged parent, so
 * setgroups stays allowed inside. */
int sp_userns_write_maps(pid_t pid, uid_t base, unsigned count);
/* Open /proc/<pid>/ns/user (O_CLOEXEC), for MOUNT_ATTR_IDMAP. */
int sp_userns_open(pid_t pid);
/* Become root inside the (now mapped) user namespace, with no supplementary
 * groups. */
int sp_userns_become_root(void);
