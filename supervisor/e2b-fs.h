/* SPDX-License-Identifier: MIT */
#pragma once

/* E2B's file calls on the E2B listener, inside the sandbox's root as its
 * user (openat2(RESOLVE_IN_ROOT), fsuid switched, as api-files.c does):
 * GET /files (read), POST /files (write, multipart/form-data, parent
 * directories made), and the Connect filesystem service: Stat, ListDir,
 * MakeDir, Move, Remove. A relative path is relative to the user's home. */

#include "e2b.h"

void e2b_fs_read(e2b_req *q, session *s);
/* POST /files: begin takes the body as it comes; end answers. */
void e2b_fs_write_begin(e2b_req *q);
void e2b_fs_write_end(e2b_req *q, session *s);
/* A filesystem.Filesystem/NAME call with its message. */
void e2b_fs_rpc(e2b_req *q, session *s, const char *name, json_t *msg);
