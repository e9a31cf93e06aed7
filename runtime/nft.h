/* SPDX-License-Identifier: MIT */
#pragma once

/* nftables through libnftables, the library the nft tool is made of: one
 * context, commands in nft's own syntax, run as one transaction each (a
 * batch either applies whole or not at all). Prints nothing: the kernel's
 * or the parser's complaint is handed back as text. */

#include <stddef.h>

#include "macro.h"

typedef struct sp_nft sp_nft;

int sp_nft_new(sp_nft **ret);
void sp_nft_free(sp_nft *n);
/* Run cmds (one or more lines). 0, or -errno (-ENOENT for a missing
 * object, -EEXIST, else -EINVAL) with the kernel's or the parser's first
 * line in err. If
 * ret_output is given, it points at what the commands printed (valid until
 * the next call), in JSON when json is set. */
int sp_nft_run(sp_nft *n, const char *cmds, int json, const char **ret_output, sp_error *err);
