/* SPDX-License-Identifier: MIT */
#pragma once

/* Seccomp policies are data: policies/default.policy is a readable text
 * file (named groups, one comment per rule). It is parsed once, compiled
 * once with libseccomp into classic BPF for the native architecture (every
 * other architecture, the x32 and i386 ABIs included, is killed), and the
 * resulting program is loaded once per sandbox by its PID 1, from which
 * every command inherits it. */

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct sp_policy sp_policy;

/* Parse policy text. On a syntax error returns -EINVAL and fills err with
 * "<name>:<line>: <what is wrong>". */
int sp_policy_parse(const char *name, const char *text, size_t len, sp_policy **ret, sp_error *err);
int sp_policy_load_file(const char *path, sp_policy **ret, sp_error *err);
/* The file's text, as sp_policy_load_file() reads it (NUL-terminated). */
int sp_policy_read_text(const char *path, char **ret, size_t *ret_len, sp_error *err);
void sp_policy_free(sp_policy *p);
static inline void sp_policy_freep(sp_policy **p) {
        sp_policy_free(*p);
}
#define _cleanup_policy_ _cleanup_(sp_policy_freep)

/* Read-only view of one parsed rule, in file order: for tests and for
 * diagnostics (which rules a loaded policy holds). */
typedef struct sp_policy_rule_info {
        const char *syscall; /* name as written in the policy */
        int nr;              /* native syscall number */
        const char *group;   /* group name, without brackets */
        uint32_t action;     /* libseccomp SCMP_ACT_* value of the group */
        unsigned line;
        bool conditional;    /* the rule has argument conditions */
} sp_policy_rule_info;

size_t sp_policy_n_rules(const sp_policy *p);
int sp_policy_get_rule(const sp_policy *p, size_t i, sp_policy_rule_info *ret);
uint32_t sp_policy_default_action(const sp_policy *p);

/* A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER). */
typedef struct sp_seccomp_program {
        struct sock_fprog prog; /* prog.filter is owned by this struct */
} sp_seccomp_program;

int sp_seccomp_compile(const sp_policy *p, sp_seccomp_program **ret, sp_error *err);
void sp_seccomp_program_free(sp_seccomp_program *prog);
static inline void sp_seccomp_program_freep(sp_seccomp_program **prog) {
        sp_seccomp_program_free(*prog);
}
#define _cleanup_seccomp_program_ _cleanup_(sp_seccomp_program_freep)
/* Install it in the calling thread. Requires no_new_privs or CAP_SYS_ADMIN
 * in the current user namespace. Async-signal-safe: makes one syscall. */
int sp_seccomp_program_load(const sp_seccomp_program *prog);
