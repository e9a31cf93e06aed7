/* SPDX-License-Identifier: MIT */
#pragma once

/* Seccomp policies are data: policies/default.policy is a readable text
 * file (named groups, one comment per rule). It is parsed once, compiled
 * once with libseccomp into classic BPF for the native architecture (every
 * other architecture, the x32 and i386 ABIs included, is killed), and the
 * resulting program is loaded once per sandbox by its PID 1, from which
 * every command inherits it. */

#include <linux/filter.h>
#include <stddef.h>

#include "macro.h"

typedef struct sp_policy sp_policy;

/* Parse policy text. On a syntax error returns -EINVAL and fills err with
 * "<name>:<line>: <what is wrong>". */
int sp_policy_parse(const char *name, const char *text, size_t len, sp_policy **ret, sp_error *err);
int sp_policy_load_file(const char *path, sp_policy **ret, sp_error *err);
void sp_policy_free(sp_policy *p);

/* A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER). */
typedef struct sp_seccomp_program {
        struct sock_fprog prog; /* prog.filter is owned by this struct */
} sp_seccomp_program;

int sp_seccomp_compile(const sp_policy *p, sp_seccomp_program **ret, sp_error *err);
void sp_seccomp_program_free(sp_seccomp_program *prog);
/* Install it in the calling thread. Requires no_new_privs or CAP_SYS_ADMIN
 * in the current user namespace. Async-signal-safe: makes one syscall. */
int sp_seccomp_program_load(const sp_seccomp_program *prog);
