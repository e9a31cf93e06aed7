/* SPDX-License-Identifier: MIT */
#pragma once

/* The parsed form of a seccomp policy, shared by the parser (policy.c) and
 * the compiler (seccomp.c). Nothing else should look inside: the public
 * interface is runtime/seccomp-policy.h. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seccomp-policy.h"

#define SP_POLICY_ARGS_MAX 6    /* a syscall has at most six arguments */
#define SP_POLICY_VALUES_MAX 32 /* values in one `in (...)` list */
#define SP_POLICY_RULES_MAX 4096
#define SP_POLICY_GROUPS_MAX 512

typedef enum sp_cond_op {
        SP_OP_EQ,
        SP_OP_NE,
        SP_OP_LT,
        SP_OP_LE,
        SP_OP_GT,
        SP_OP_GE,
        SP_OP_IN,
        SP_OP_NOT_IN,
} sp_cond_op;

/* One argument test: `argN [& mask] op value(s)`. Without an explicit
 * mask, `masked` is false and mask is all ones. */
typedef struct sp_cond {
        unsigned arg;
        bool masked;
        uint64_t mask;
        sp_cond_op op;
        size_t n_values;
        uint64_t values[SP_POLICY_VALUES_MAX];
} sp_cond;

/* One rule: a syscall, and optionally conditions that must all hold. */
typedef struct sp_rule {
        char *syscall;
        int nr;
        size_t group;
        unsigned line;
        size_t n_conds;
        sp_cond conds[SP_POLICY_ARGS_MAX];
} sp_rule;

typedef struct sp_group {
        char *name;
        uint32_t action; /* a libseccomp SCMP_ACT_* value */
        unsigned line;
} sp_group;

struct sp_policy {
        char *name;
        uint32_t default_action;
        sp_group *groups;
        size_t n_groups;
        sp_rule *rules;
        size_t n_rules;
};
