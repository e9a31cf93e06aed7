/* SPDX-License-Identifier: MIT */
#pragma once

/* Where sandpool keeps its runtime state, shared by the daemon and
 * `sandpoold run` (and by any other daemon on the host). */

#define RUN_DIR "/run/sandpool"
/* Host id ranges, claimed with flock(): two live sandboxes never share one. */
#define IDSLOT_DIR RUN_DIR "/ids"
/* `sandpoold run`'s staging directories (a daemon stages below its state_dir). */
#define STAGE_DIR RUN_DIR "/stage"
/* Compiled seccomp filters, by policy (runtime/seccomp-cache.h). */
#define SECCOMP_CACHE_DIR RUN_DIR "/seccomp"
