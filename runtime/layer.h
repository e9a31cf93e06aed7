/* SPDX-License-Identifier: MIT */
#pragma once

/* Read-only layers made from a sandbox's overlay upper: templates (a copy
 * of the upper on the host disk, with image-relative ids, used later as a
 * lower layer) and forks (a copy into another sandbox's upper).
 *
 * The source is written by untrusted code: it is walked without following
 * a single symlink (every open is O_NOFOLLOW relative to its parent's fd),
 * and the caller must have frozen the sandbox so that nothing changes
 * under the walk. What is kept of each entry is its type, mode, owner,
 * times and content, plus the two things overlayfs itself stores in an
 * upper: whiteouts (character devices 0/0: "deleted in this layer") and
 * opaque directories (xattr trusted.overlay.opaque = "y": "hides what is
 * below"). Everything that could carry privilege into the next sandbox is
 * refused with -EPERM: device nodes other than whiteouts, setuid and
 * setgid files. Other xattrs (security.capability, user.*) are not copied.
 * Sockets are skipped (they are only names). */

#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

typedef struct sp_layer_copy_opts {
        /* Host id of root inside the source sandbox: every owner in the
         * source must be in [src_id_base, src_id_base + SP_ID_RANGE). */
        uid_t src_id_base;
        /* ... and becomes (owner - src_id_base + dst_id_base): 0 for a
         * template layer (ids as the image has them: the idmapped mount
         * shifts them for each sandbox), another sandbox's base for a fork. */
        uid_t dst_id_base;
        uint64_t max_bytes; /* content bytes; -EFBIG beyond; 0: no cap */
        uint64_t max_files; /* entries; -EFBIG beyond; 0: no cap */
} sp_layer_copy_opts;

typedef struct sp_layer_stats {
        uint64_t bytes;     /* content of regular files and symlink targets */
        uint64_t files;     /* entries, directories and whiteouts included */
        uint64_t whiteouts;
} sp_layer_stats;

/* Copy the tree below src_dirfd into the (empty) directory dst_dirfd,
 * whose own mode and owner are set from src_dirfd's. On failure the
 * destination holds part of the copy: the caller removes it. err names
 * the offending path. */
int sp_layer_copy(int src_dirfd, int dst_dirfd, const sp_layer_copy_opts *o, sp_layer_stats *ret,
                  sp_error *err);

/* rm -rf of name below dirfd, never following a symlink. ENOENT is 0. */
int sp_layer_remove(int dirfd, const char *name);
