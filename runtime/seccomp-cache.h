/* SPDX-License-Identifier: MIT */
#pragma once

/* A compiled seccomp filter, built once per policy and reused: by every
 * `sandpoold run` (which would otherwise parse and compile the policy on
 * every run) and by the daemon at start. The cache is keyed by the
 * policy's text and what else the program depends on (sandpool's and
 * libseccomp's versions, the architecture); a hit compares the whole text,
 * so a key collision is only a miss. A cache file, and its directory, are
 * trusted only when they belong to root and nobody else may write them:
 * a filter someone else wrote is never loaded. */

#include <stdbool.h>

#include "seccomp-policy.h"

/* The compiled policy at policy_path, from cache_dir when it holds it,
 * else compiled (and stored there; cache_dir is created 0700 if missing,
 * NULL: no cache). *ret_hit (may be NULL) says which. */
int sp_seccomp_load_cached(const char *policy_path, const char *cache_dir, sp_seccomp_program **ret,
                           bool *ret_hit, sp_error *err);
