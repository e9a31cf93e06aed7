/* SPDX-License-Identifier: MIT */
#pragma once

#include <sys/types.h>

/* Host id ranges must never be shared by two live sandboxes, even across
 * processes (several daemons, one-shot runs): each range is claimed by an
 * flock() on <dir>/<first-id>, held for the sandbox's life. The kernel
 * drops the lock when its holder dies, so a crash leaks nothing. */
typedef struct sp_idslot {
        uid_t base;
        int lock_fd;
} sp_idslot;

/* Claim a free range of SP_ID_RANGE ids in [first, first + count * SP_ID_RANGE),
 * starting the search at slot `hint`. -EBUSY when all are taken. */
int sp_idslot_acquire(const char *dir, uid_t first, unsigned count, unsigned hint, sp_idslot *ret);
void sp_idslot_release(sp_idslot *s);
