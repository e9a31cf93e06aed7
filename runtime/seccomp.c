/* SPDX-License-Identifier: MIT */
/* Compile a parsed policy into classic BPF with libseccomp, and load it.
 *
 * Architectures: the filter covers the native ABI only. Every other audit
 * architecture (on x86_64: the i386 ABI reached through `int $0x80`) and,
 * on x86_64, every x32 syscall number (nr | 0x40000000, which shares
 * AUDIT_ARCH_X86_64 with native calls) kills the whole process. We chose
 * KILL_PROCESS over an errno: the sandbox image holds no 32-bit or x32
 * binaries, so such a call is either an exploit probing a second syscall
 * table (the one our denylist does not describe: CVE-2009-0835 and the
 * x32 filter bypasses) or a bug; answering it with an errno would let the
 * caller keep probing, while a SIGSYS death is loud and ends the attempt.
 *
 * libseccomp 2.5.4 (Debian 12) has no seccomp_export_bpf_mem(): the
 * program is exported into a memfd and read back. */

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "policy.h"

/* A rule with `not in` or masked `!=` expands into several libseccomp
 * rules; cap the product so that a hostile policy cannot blow up the
 * program (the kernel's own cap is BPF_MAXINSNS instructions). */
#define RULE_EXPANSION_MAX 512
/* The same for the whole policy: libseccomp's time and memory grow with
 * the number of rules long before the kernel's limit is reached. */
#define POLICY_EXPANSION_MAX 4096

static void seccomp_releasep(scmp_filter_ctx *ctx) {
        if (*ctx)
                seccomp_release(*ctx);
}
#define _cleanup_seccomp_ _cleanup_(seccomp_releasep)

typedef struct cmp_set {
        size_t n;
        struct scmp_arg_cmp cmp[RULE_EXPANSION_MAX];
} cmp_set;

typedef struct cube_walk {
        unsigned arg;
        unsigned bits[64]; /* the mask's bit positions, highest first */
        unsigned n_bits;
        cmp_set *out;
} cube_walk;

/* Emit masked-equality tests ("cubes") whose union is exactly the set of
 * argument values, restricted to the mask, that are NOT in vals.
 * libseccomp has no "not in" and allows one test per argument and rule,
 * so we walk the mask bits from the highest, splitting the allowed set by
 * each bit: a branch that holds no allowed value becomes one cube; a bit
 * on which both branches look the same is skipped (it does not matter).
 * `arg & M != 0` becomes one cube per bit of M. */
static int cube_expand(cube_walk *w, unsigned i, uint64_t cmask, uint64_t cval, const uint64_t *vals, size_t n) {
        uint64_t s0[SP_POLICY_VALUES_MAX], s1[SP_POLICY_VALUES_MAX];
        size_t n0 = 0, n1 = 0;
        int r;

        if (n == 0) {
                if (w->out->n >= RULE_EXPANSION_MAX)
                        return -E2BIG;
                w->out->cmp[w->out->n++] = SCMP_CMP64(w->arg, SCMP_CMP_MASKED_EQ, cmask, cval);
                return 0;
        }
        if (i == w->n_bits)
                return 0; /* every bit fixed and the value is allowed */

        uint64_t bit = UINT64_C(1) << w->bits[i];
        for (size_t k = 0; k < n; k++) {
                if (vals[k] & bit)
                        s1[n1++] = vals[k] & ~bit;
                else
                        s0[n0++] = vals[k];
        }

        bool same = n0 == n1;
        for (size_t a = 0; same && a < n0; a++) {
                bool found = false;
                for (size_t b = 0; b < n1 && !found; b++)
                        found = s0[a] == s1[b];
                same = found;
        }
        if (same)
                return cube_expand(w, i + 1, cmask, cval, s0, n0);

        r = cube_expand(w, i + 1, cmask | bit, cval, s0, n0);
        if (r < 0)
                return r;
        /* s1 holds the values with this bit cleared; restore it. */
        for (size_t k = 0; k < n1; k++)
                s1[k] |= bit;
        return cube_expand(w, i + 1, cmask | bit, cval | bit, s1, n1);
}

/* The alternatives (ORed) that one condition stands for. */
static int cond_alternatives(const sp_cond *c, cmp_set *out) {
        static const enum scmp_compare native[] = {
                [SP_OP_EQ] = SCMP_CMP_EQ, [SP_OP_NE] = SCMP_CMP_NE, [SP_OP_LT] = SCMP_CMP_LT,
                [SP_OP_LE] = SCMP_CMP_LE, [SP_OP_GT] = SCMP_CMP_GT, [SP_OP_GE] = SCMP_CMP_GE,
        };

        out->n = 0;
        switch (c->op) {
        case SP_OP_EQ:
        case SP_OP_IN:
                for (size_t i = 0; i < c->n_values; i++)
                        out->cmp[out->n++] = c->masked ? SCMP_CMP64(c->arg, SCMP_CMP_MASKED_EQ, c->mask, c->values[i])
                                                       : SCMP_CMP64(c->arg, SCMP_CMP_EQ, c->values[i]);
                return 0;
        case SP_OP_NE:
                if (!c->masked) {
                        out->cmp[out->n++] = SCMP_CMP64(c->arg, SCMP_CMP_NE, c->values[0]);
                        return 0;
                }
                __attribute__((fallthrough));
        case SP_OP_NOT_IN: {
                cube_walk w = { .arg = c->arg, .out = out };
                for (int b = 63; b >= 0; b--)
                        if (c->mask & (UINT64_C(1) << b))
                                w.bits[w.n_bits++] = (unsigned) b;
                return cube_expand(&w, 0, 0, 0, c->values, c->n_values);
        }
        case SP_OP_LT:
        case SP_OP_LE:
        case SP_OP_GT:
        case SP_OP_GE:
                out->cmp[out->n++] = SCMP_CMP64(c->arg, native[c->op], c->values[0]);
                return 0;
        }
        return -EINVAL;
}

static int add_rule(scmp_filter_ctx ctx, const sp_policy *p, const sp_rule *rule, size_t *budget, sp_error *err) {
        uint32_t action = p->groups[rule->group].action;
        _cleanup_free_ cmp_set *alts = NULL;
        size_t idx[SP_POLICY_ARGS_MAX] = {}, total = 1;
        int r;

        if (*budget == 0)
                return sp_error_set(err, -E2BIG, "%s:%u: the policy expands to more than %d filter rules", p->name,
                                    rule->line, POLICY_EXPANSION_MAX);
        if (rule->n_conds == 0) {
                (*budget)--;
                r = seccomp_rule_add_exact(ctx, action, rule->nr, 0);
                if (r < 0)
                        return sp_error_set(err, r, "%s:%u: libseccomp refused the rule for %s: %s", p->name, rule->line,
                                            rule->syscall, strerror(-r));
                return 0;
        }

        alts = calloc(rule->n_conds, sizeof(cmp_set));
        if (!alts)
                return sp_error_set(err, -ENOMEM, "%s:%u: out of memory", p->name, rule->line);
        for (size_t i = 0; i < rule->n_conds; i++) {
                r = cond_alternatives(&rule->conds[i], &alts[i]);
                if (r == 0 && alts[i].n == 0)
                        return 0; /* `not in` every possible value: can never match */
                if (r < 0 || (total *= alts[i].n) > RULE_EXPANSION_MAX)
                        return sp_error_set(err, -E2BIG, "%s:%u: the rule for %s expands to more than %d filter rules",
                                            p->name, rule->line, rule->syscall, RULE_EXPANSION_MAX);
        }
        if (total > *budget)
                return sp_error_set(err, -E2BIG, "%s:%u: the policy expands to more than %d filter rules", p->name,
                                    rule->line, POLICY_EXPANSION_MAX);
        *budget -= total;

        /* Conditions are ANDed, each one's alternatives ORed: add the
         * cartesian product, one libseccomp rule per combination. */
        for (size_t done = 0; done < total; done++) {
                struct scmp_arg_cmp cmp[SP_POLICY_ARGS_MAX];
                for (size_t i = 0; i < rule->n_conds; i++)
                        cmp[i] = alts[i].cmp[idx[i]];
                r = seccomp_rule_add_exact_array(ctx, action, rule->nr, (unsigned) rule->n_conds, cmp);
                if (r < 0)
                        return sp_error_set(err, r, "%s:%u: libseccomp refused the rule for %s: %s", p->name, rule->line,
                                            rule->syscall, strerror(-r));
                for (size_t i = 0; i < rule->n_conds; i++) {
                        if (++idx[i] < alts[i].n)
                                break;
                        idx[i] = 0;
                }
        }
        return 0;
}

static int export_program(scmp_filter_ctx ctx, sp_seccomp_program **ret, sp_error *err) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ struct sock_filter *filter = NULL;
        _cleanup_free_ sp_seccomp_program *prog = NULL;
        int r;

        fd = memfd_create("sandpool-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return sp_error_set(err, negative_errno(), "Failed to create a memfd for the BPF program: %m");
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return sp_error_set(err, r, "Failed to export the BPF program: %s", strerror(-r));
        off_t size = lseek(fd, 0, SEEK_END);
        if (size < 0)
                return sp_error_set(err, negative_errno(), "Failed to size the BPF program: %m");
        if (size == 0 || size % (off_t) sizeof(struct sock_filter) != 0)
                return sp_error_set(err, -EIO, "libseccomp exported a BPF program of %lld bytes", (long long) size);
        size_t n = (size_t) size / sizeof(struct sock_filter);
        if (n > BPF_MAXINSNS)
                return sp_error_set(err, -E2BIG, "the BPF program has %zu instructions, the kernel takes %d", n,
                                    BPF_MAXINSNS);

        filter = malloc((size_t) size);
        if (!filter)
                return sp_error_set(err, -ENOMEM, "out of memory");
        for (size_t got = 0; got < (size_t) size;) {
                ssize_t k = pread(fd, (char *) filter + got, (size_t) size - got, (off_t) got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return sp_error_set(err, k < 0 ? negative_errno() : -EIO, "Failed to read back the BPF program");
                got += (size_t) k;
        }

        prog = calloc(1, sizeof(*prog));
        if (!prog)
                return sp_error_set(err, -ENOMEM, "out of memory");
        prog->prog.len = (unsigned short) n;
        prog->prog.filter = TAKE_PTR(filter);
        *ret = TAKE_PTR(prog);
        return 0;
}

int sp_seccomp_compile(const sp_policy *p, sp_seccomp_program **ret, sp_error *err) {
        _cleanup_seccomp_ scmp_filter_ctx ctx = NULL;
        int r;

        if (!p || !ret)
                return sp_error_set(err, -EINVAL, "no policy to compile");

        ctx = seccomp_init(p->default_action);
        if (!ctx)
                return sp_error_set(err, -ENOMEM, "%s: seccomp_init failed", p->name);

        /* Foreign ABIs die (see the top of this file). libseccomp adds the
         * x32 check for an x86_64 filter on its own: nr >= 0x40000000 takes
         * the bad-arch action. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return sp_error_set(err, r, "%s: cannot set the bad-arch action: %s", p->name, strerror(-r));
        /* The loader (the sandbox's PID 1) sets no_new_privs itself, at the
         * point of its choosing; the exported program must not imply it. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r < 0)
                return sp_error_set(err, r, "%s: cannot clear CTL_NNP: %s", p->name, strerror(-r));
        /* A binary tree of syscall numbers: a syscall costs O(log n)
         * comparisons instead of a walk of every rule. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        if (r < 0)
                return sp_error_set(err, r, "%s: cannot enable the binary tree: %s", p->name, strerror(-r));

        size_t budget = POLICY_EXPANSION_MAX;
        for (size_t i = 0; i < p->n_rules; i++) {
                r = add_rule(ctx, p, &p->rules[i], &budget, err);
                if (r < 0)
                        return r;
        }
        return export_program(ctx, ret, err);
}

void sp_seccomp_program_free(sp_seccomp_program *prog) {
        if (!prog)
                return;
        free(prog->prog.filter);
        free(prog);
}

int sp_seccomp_program_load(const sp_seccomp_program *prog) {
        if (!prog || !prog->prog.filter)
                return -EINVAL;
        /* The raw syscall: no allocation, no lock, safe between fork and
         * exec. The kernel copies the program; it does not write to it. */
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog->prog) < 0)
                return negative_errno();
        return 0;
}
