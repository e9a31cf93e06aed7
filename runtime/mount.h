/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* The filesystem of a sandbox, in two halves.
 *
 * Parent (host root, in the caller's private mount namespace): a tmpfs of
 * the disk quota at <stage_dir>/<name>, the image mounted read-only and
 * idmapped into the sandbox's user namespace as the overlay's lower layer,
 * upper and work on the tmpfs, the overlay at <stage>/root. Because host
 * root mounts the overlay, the sandbox only ever inherits it: copied into
 * the child's mount namespace, its flags (ro lower, nodev, nosuid) are
 * locked and cannot be cleared from inside.
 *
 * Child (PID 1, in its own user and mount namespace): /proc, /dev, /sys and
 * the masks on the staged root, then pivot_root into it. */

typedef struct sp_stage {
        char *dir;   /* <stage_dir>/<name>: a tmpfs */
        char *root;  /* <dir>/root: the overlay */
        int root_fd; /* O_PATH of the overlay root, for the file API */
        int upper_fd; /* the upper directory (on the tmpfs), for templates and forks */
        int mounted; /* bit 0: tmpfs, bit 1: overlay */
} sp_stage;

/* Extra read-only layers between the upper and the image (templates),
 * and what the upper starts with (a fork). */
typedef struct sp_stage_layers {
        const int *fds;    /* O_PATH directories, topmost first */
        size_t n;
        int seed_fd;       /* -1, or another sandbox's upper, copied into ours (frozen by the caller) */
        uid_t seed_id_base;
} sp_stage_layers;
#define SP_STAGE_MAX_LAYERS 8

int sp_stage_build(sp_stage *st, const char *stage_dir, const char *name, const char *rootfs,
                   const sp_stage_layers *layers, int userns_fd, uid_t id_base, uint64_t disk_bytes, sp_error *err);
/* Detach the staging mounts from the caller's namespace (the sandbox keeps
 * its copies) and remove the directory. Keeps root_fd. Idempotent. */
void sp_stage_release(sp_stage *st);
/* Release, close root_fd, free. */
void sp_stage_done(sp_stage *st);

typedef struct sp_mount_opts {
        const char *root; /* the staged overlay, as the child sees it */
        uint64_t shm_bytes;
} sp_mount_opts;

/* In the child, after unshare(CLONE_NEWNS): build /proc, /dev, /sys and the
 * masks under root, pivot into it and drop the old root. On failure
 * fills err with what failed. */
int sp_mount_setup_child(const sp_mount_opts *o, sp_error *err);
