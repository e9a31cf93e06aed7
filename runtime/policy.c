/* SPDX-License-Identifier: MIT */
/* The seccomp policy language: a line-oriented text format.
 *
 *     # comment (anywhere; runs to the end of the line)
 *     default allow                     # action for unlisted syscalls, once, first
 *
 *     # Why this group is denied.
 *     [keyring] deny EPERM              # a named group and its action
 *     add_key                           # one syscall per line
 *     keyctl
 *     lookup_dcookie?                   # '?': skip if unknown on this arch
 *     ioctl if arg1 & 0xffffffff in (TIOCSTI, TIOCLINUX)
 *     clone if arg0 & (CLONE_NEWNS|CLONE_NEWUSER) != 0
 *     socket if arg0 & 0xffffffff not in (AF_UNIX, AF_INET, AF_INET6)
 *
 * Actions: allow, deny ERRNO (a name such as EPERM, or 1..4095), kill
 * (the whole process), kill-thread, trap, log.
 * Conditions: `argN [& MASK] OP VALUE` joined with `and`; OP is one of
 * == != < <= > >= (no mask for the ordered ones), `in (V, ...)`,
 * `not in (V, ...)`. Values are numbers (decimal, 0x hex) or the named
 * constants below, combined with '|'.
 *
 * The parser has no global mutable state and never trusts its input: it
 * is meant to be fed arbitrary bytes by a fuzzer. */

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "policy.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define POLICY_FILE_MAX (1024 * 1024)

typedef struct named_value {
        const char *name;
        uint64_t value;
} named_value;

static const named_value constants[] = {
        /* namespaces: clone(2), unshare(2), setns(2) */
        { "CLONE_NEWNS", CLONE_NEWNS },
        { "CLONE_NEWCGROUP", CLONE_NEWCGROUP },
        { "CLONE_NEWUTS", CLONE_NEWUTS },
        { "CLONE_NEWIPC", CLONE_NEWIPC },
        { "CLONE_NEWUSER", CLONE_NEWUSER },
        { "CLONE_NEWPID", CLONE_NEWPID },
        { "CLONE_NEWNET", CLONE_NEWNET },
        { "CLONE_NEWTIME", CLONE_NEWTIME },
        /* terminal ioctls */
        { "TIOCSTI", TIOCSTI },
        { "TIOCLINUX", TIOCLINUX },
        { "TIOCSETD", TIOCSETD },
        { "TIOCCONS", TIOCCONS },
        /* socket families */
        { "AF_UNIX", AF_UNIX },
        { "AF_INET", AF_INET },
        { "AF_INET6", AF_INET6 },
        { "AF_NETLINK", AF_NETLINK },
        { "AF_PACKET", AF_PACKET },
        { "AF_KEY", AF_KEY },
        { "AF_ALG", AF_ALG },
        { "AF_VSOCK", AF_VSOCK },
        { "AF_XDP", AF_XDP },
        { "AF_TIPC", AF_TIPC },
        { "AF_RDS", AF_RDS },
        { "AF_CAN", AF_CAN },
        { "AF_BLUETOOTH", AF_BLUETOOTH },
        /* netlink protocols */
        { "NETLINK_ROUTE", NETLINK_ROUTE },
        { "NETLINK_SOCK_DIAG", NETLINK_SOCK_DIAG },
        { "NETLINK_AUDIT", NETLINK_AUDIT },
        { "NETLINK_NETFILTER", NETLINK_NETFILTER },
        { "NETLINK_XFRM", NETLINK_XFRM },
        { "NETLINK_GENERIC", NETLINK_GENERIC },
        { "NETLINK_KOBJECT_UEVENT", NETLINK_KOBJECT_UEVENT },
        /* personality(2) */
        { "PER_LINUX", PER_LINUX },
        { "PER_LINUX32", PER_LINUX32 },
        { "PER_QUERY", 0xffffffffULL }, /* reads the persona, changes nothing */
        { "UNAME26", UNAME26 },
        { "ADDR_NO_RANDOMIZE", ADDR_NO_RANDOMIZE },
        { "READ_IMPLIES_EXEC", READ_IMPLIES_EXEC },
        { "MMAP_PAGE_ZERO", MMAP_PAGE_ZERO },
        { "ADDR_COMPAT_LAYOUT", ADDR_COMPAT_LAYOUT },
        { "ADDR_LIMIT_32BIT", ADDR_LIMIT_32BIT },
        { "ADDR_LIMIT_3GB", ADDR_LIMIT_3GB },
};

static const named_value errnos[] = {
        { "EPERM", EPERM },       { "ENOENT", ENOENT },         { "EIO", EIO },
        { "EBADF", EBADF },       { "ENOMEM", ENOMEM },         { "EACCES", EACCES },
        { "EFAULT", EFAULT },     { "EBUSY", EBUSY },           { "EEXIST", EEXIST },
        { "EINVAL", EINVAL },     { "ENOTTY", ENOTTY },         { "ENOSPC", ENOSPC },
        { "ENOSYS", ENOSYS },     { "EOPNOTSUPP", EOPNOTSUPP }, { "EAFNOSUPPORT", EAFNOSUPPORT },
        { "EPROTONOSUPPORT", EPROTONOSUPPORT },
};

typedef enum tok_type {
        TOK_END,
        TOK_WORD,
        TOK_NUMBER,
        TOK_PUNCT,
} tok_type;

typedef struct token {
        tok_type type;
        const char *start;
        size_t len;
        uint64_t number;
} token;

/* One line being parsed. */
typedef struct lexer {
        const char *p, *end;
        token tok;
        const char *name;
        unsigned line;
        sp_error *err;
} lexer;

_printf_(2, 3) static int parse_error(lexer *lx, const char *fmt, ...) {
        char what[200];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return sp_error_set(lx->err, -EINVAL, "%s:%u: %s", lx->name, lx->line, what);
}

static bool is_word_start(char c) {
        return isalpha((unsigned char) c) || c == '_';
}

static bool is_word_char(char c) {
        return isalnum((unsigned char) c) || c == '_' || c == '-';
}

static int lex_number(lexer *lx) {
        const char *s = lx->p;
        uint64_t v = 0;
        unsigned base = 10;

        if (lx->end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                s += 2;
        }
        const char *digits = s;
        for (; s < lx->end && isxdigit((unsigned char) *s); s++) {
                unsigned d = isdigit((unsigned char) *s) ? (unsigned) (*s - '0')
                                                        : (unsigned) (tolower((unsigned char) *s) - 'a' + 10);
                if (d >= base)
                        return parse_error(lx, "malformed number '%.*s'", (int) MIN(lx->end - lx->p, 40), lx->p);
                if (v > (UINT64_MAX - d) / base)
                        return parse_error(lx, "number '%.*s' does not fit in 64 bits", (int) (s - lx->p + 1), lx->p);
                v = v * base + d;
        }
        if (s == digits || (s < lx->end && is_word_char(*s)))
                return parse_error(lx, "malformed number '%.*s'", (int) MIN(lx->end - lx->p, 40), lx->p);
        lx->tok = (token) { .type = TOK_NUMBER, .start = lx->p, .len = (size_t) (s - lx->p), .number = v };
        lx->p = s;
        return 0;
}

/* Advance to the next token of the line. */
static int lex_next(lexer *lx) {
        while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r'))
                lx->p++;
        if (lx->p >= lx->end) {
                lx->tok = (token) { .type = TOK_END, .start = lx->p };
                return 0;
        }

        char c = *lx->p;
        if (is_word_start(c)) {
                const char *s = lx->p;
                while (s < lx->end && is_word_char(*s))
                        s++;
                lx->tok = (token) { .type = TOK_WORD, .start = lx->p, .len = (size_t) (s - lx->p) };
                lx->p = s;
                return 0;
        }
        if (isdigit((unsigned char) c))
                return lex_number(lx);

        static const char *const two[] = { "==", "!=", "<=", ">=" };
        for (size_t i = 0; i < ELEMENTSOF(two); i++)
                if (lx->end - lx->p >= 2 && memcmp(lx->p, two[i], 2) == 0) {
                        lx->tok = (token) { .type = TOK_PUNCT, .start = lx->p, .len = 2 };
                        lx->p += 2;
                        return 0;
                }
        if (strchr("[]()|&,?<>", c) && c != '\0') {
                lx->tok = (token) { .type = TOK_PUNCT, .start = lx->p, .len = 1 };
                lx->p++;
                return 0;
        }
        if (isprint((unsigned char) c))
                return parse_error(lx, "unexpected character '%c'", c);
        return parse_error(lx, "unexpected byte 0x%02x", (unsigned char) c);
}

static bool tok_is(const lexer *lx, const char *s) {
        size_t n = strlen(s);
        return lx->tok.type != TOK_END && lx->tok.len == n && memcmp(lx->tok.start, s, n) == 0;
}

/* The current token, for error messages. */
static int tok_width(const lexer *lx) {
        return lx->tok.type == TOK_END ? 0 : (int) MIN(lx->tok.len, 64);
}
#define TOK_SHOW(lx) (lx)->tok.type == TOK_END ? "end of line" : "", tok_width(lx), (lx)->tok.start

static int expect_punct(lexer *lx, const char *p) {
        if (lx->tok.type != TOK_PUNCT || !tok_is(lx, p))
                return parse_error(lx, "expected '%s', got '%s%.*s'", p, TOK_SHOW(lx));
        return lex_next(lx);
}

static const named_value *lookup(const named_value *table, size_t n, const token *t) {
        for (size_t i = 0; i < n; i++)
                if (strlen(table[i].name) == t->len && memcmp(table[i].name, t->start, t->len) == 0)
                        return &table[i];
        return NULL;
}

static int parse_or(lexer *lx, unsigned depth, uint64_t *ret);

/* atom := NUMBER | CONSTANT | '(' or ')' */
static int parse_atom(lexer *lx, unsigned depth, uint64_t *ret) {
        int r;

        if (lx->tok.type == TOK_NUMBER) {
                *ret = lx->tok.number;
                return lex_next(lx);
        }
        if (lx->tok.type == TOK_WORD) {
                const named_value *c = lookup(constants, ELEMENTSOF(constants), &lx->tok);
                if (!c)
                        return parse_error(lx, "unknown constant '%.*s'", tok_width(lx), lx->tok.start);
                *ret = c->value;
                return lex_next(lx);
        }
        if (tok_is(lx, "(")) {
                /* Bounded recursion: a fuzzer will try "((((((...". */
                if (depth >= 16)
                        return parse_error(lx, "parentheses nested too deeply");
                r = lex_next(lx);
                if (r < 0)
                        return r;
                r = parse_or(lx, depth + 1, ret);
                if (r < 0)
                        return r;
                return expect_punct(lx, ")");
        }
        return parse_error(lx, "expected a number or a constant, got '%s%.*s'", TOK_SHOW(lx));
}

/* or := atom ('|' atom)* */
static int parse_or(lexer *lx, unsigned depth, uint64_t *ret) {
        uint64_t v = 0, a;
        int r;

        for (;;) {
                r = parse_atom(lx, depth, &a);
                if (r < 0)
                        return r;
                v |= a;
                if (!tok_is(lx, "|"))
                        break;
                r = lex_next(lx);
                if (r < 0)
                        return r;
        }
        *ret = v;
        return 0;
}

/* list := '(' or (',' or)* ')' */
static int parse_list(lexer *lx, sp_cond *c) {
        int r = expect_punct(lx, "(");
        if (r < 0)
                return r;
        for (;;) {
                uint64_t v;
                r = parse_or(lx, 0, &v);
                if (r < 0)
                        return r;
                if (c->n_values >= SP_POLICY_VALUES_MAX)
                        return parse_error(lx, "more than %d values in one list", SP_POLICY_VALUES_MAX);
                for (size_t i = 0; i < c->n_values; i++)
                        if (c->values[i] == v)
                                return parse_error(lx, "value 0x%" PRIx64 " is listed twice", v);
                c->values[c->n_values++] = v;
                if (!tok_is(lx, ","))
                        break;
                r = lex_next(lx);
                if (r < 0)
                        return r;
        }
        return expect_punct(lx, ")");
}

static int parse_op(lexer *lx, sp_cond *c) {
        static const struct {
                const char *s;
                sp_cond_op op;
        } ops[] = {
                { "==", SP_OP_EQ }, { "!=", SP_OP_NE }, { "<", SP_OP_LT },
                { "<=", SP_OP_LE }, { ">", SP_OP_GT },  { ">=", SP_OP_GE },
        };
        int r;

        if (lx->tok.type == TOK_PUNCT)
                for (size_t i = 0; i < ELEMENTSOF(ops); i++)
                        if (tok_is(lx, ops[i].s)) {
                                c->op = ops[i].op;
                                r = lex_next(lx);
                                if (r < 0)
                                        return r;
                                c->n_values = 1;
                                return parse_or(lx, 0, &c->values[0]);
                        }
        if (tok_is(lx, "not")) {
                r = lex_next(lx);
                if (r < 0)
                        return r;
                if (!tok_is(lx, "in"))
                        return parse_error(lx, "expected 'in' after 'not'");
                c->op = SP_OP_NOT_IN;
        } else if (tok_is(lx, "in"))
                c->op = SP_OP_IN;
        else
                return parse_error(lx, "expected a comparison (== != < <= > >= in, not in), got '%s%.*s'", TOK_SHOW(lx));
        r = lex_next(lx);
        if (r < 0)
                return r;
        return parse_list(lx, c);
}

/* cond := 'argN' ['&' or] op */
static int parse_cond(lexer *lx, sp_cond *c) {
        int r;

        *c = (sp_cond) { .mask = UINT64_MAX };
        if (lx->tok.type != TOK_WORD || lx->tok.len != 4 || memcmp(lx->tok.start, "arg", 3) != 0 ||
            lx->tok.start[3] < '0' || lx->tok.start[3] > '5')
                return parse_error(lx, "expected an argument (arg0 ... arg5), got '%s%.*s'", TOK_SHOW(lx));
        c->arg = (unsigned) (lx->tok.start[3] - '0');
        r = lex_next(lx);
        if (r < 0)
                return r;

        if (tok_is(lx, "&")) {
                r = lex_next(lx);
                if (r < 0)
                        return r;
                r = parse_or(lx, 0, &c->mask);
                if (r < 0)
                        return r;
                if (c->mask == 0)
                        return parse_error(lx, "the mask of arg%u is zero", c->arg);
                c->masked = true;
        }
        r = parse_op(lx, c);
        if (r < 0)
                return r;

        if (c->masked && c->op != SP_OP_EQ && c->op != SP_OP_NE && c->op != SP_OP_IN && c->op != SP_OP_NOT_IN)
                return parse_error(lx, "a masked argument supports only ==, !=, in and not in");
        for (size_t i = 0; i < c->n_values; i++)
                if (c->values[i] & ~c->mask)
                        return parse_error(lx, "value 0x%" PRIx64 " has bits outside the mask 0x%" PRIx64 ": the test could never match",
                                           c->values[i], c->mask);
        return 0;
}

static int parse_action(lexer *lx, uint32_t *ret) {
        int r;

        if (lx->tok.type != TOK_WORD)
                return parse_error(lx, "expected an action (allow, deny ERRNO, kill, kill-thread, trap, log), got '%s%.*s'",
                                   TOK_SHOW(lx));
        if (tok_is(lx, "deny")) {
                r = lex_next(lx);
                if (r < 0)
                        return r;
                uint64_t e;
                if (lx->tok.type == TOK_NUMBER)
                        e = lx->tok.number;
                else if (lx->tok.type == TOK_WORD && lookup(errnos, ELEMENTSOF(errnos), &lx->tok))
                        e = lookup(errnos, ELEMENTSOF(errnos), &lx->tok)->value;
                else
                        return parse_error(lx, "'deny' needs an errno (EPERM, ENOSYS, ... or a number), got '%s%.*s'",
                                           TOK_SHOW(lx));
                if (e < 1 || e > 4095)
                        return parse_error(lx, "errno %" PRIu64 " is out of range 1..4095", e);
                *ret = SCMP_ACT_ERRNO((uint32_t) e);
        } else if (tok_is(lx, "allow"))
                *ret = SCMP_ACT_ALLOW;
        else if (tok_is(lx, "kill"))
                *ret = SCMP_ACT_KILL_PROCESS;
        else if (tok_is(lx, "kill-thread"))
                *ret = SCMP_ACT_KILL_THREAD;
        else if (tok_is(lx, "trap"))
                *ret = SCMP_ACT_TRAP;
        else if (tok_is(lx, "log"))
                *ret = SCMP_ACT_LOG;
        else
                return parse_error(lx, "unknown action '%.*s'", tok_width(lx), lx->tok.start);
        return lex_next(lx);
}

static int expect_end(lexer *lx) {
        if (lx->tok.type != TOK_END)
                return parse_error(lx, "unexpected '%.*s' at the end of the line", tok_width(lx), lx->tok.start);
        return 0;
}

/* State across lines. */
typedef struct parser {
        sp_policy *p;
        bool has_default;
        unsigned default_line;
        size_t group_lines; /* rule lines in the current group, resolved or not */
        size_t groups_alloc, rules_alloc;
} parser;

static int parse_default(parser *ps, lexer *lx) {
        int r;

        if (ps->has_default)
                return parse_error(lx, "the default action is declared twice (first at line %u)", ps->default_line);
        if (ps->p->n_groups > 0)
                return parse_error(lx, "the default action must come before the first group");
        r = lex_next(lx);
        if (r < 0)
                return r;
        r = parse_action(lx, &ps->p->default_action);
        if (r < 0)
                return r;
        ps->has_default = true;
        ps->default_line = lx->line;
        return expect_end(lx);
}

static int check_group_not_empty(parser *ps, lexer *lx) {
        if (ps->p->n_groups > 0 && ps->group_lines == 0) {
                const sp_group *g = &ps->p->groups[ps->p->n_groups - 1];
                return sp_error_set(lx->err, -EINVAL, "%s:%u: group [%s] has no syscalls", lx->name, g->line, g->name);
        }
        return 0;
}

static int parse_group(parser *ps, lexer *lx) {
        sp_group g = { .line = lx->line };
        int r;

        r = check_group_not_empty(ps, lx);
        if (r < 0)
                return r;
        if (!ps->has_default)
                return parse_error(lx, "a group before the default action: start the policy with 'default ACTION'");
        r = lex_next(lx);
        if (r < 0)
                return r;
        if (lx->tok.type != TOK_WORD)
                return parse_error(lx, "expected a group name after '['");
        token name = lx->tok;
        r = lex_next(lx);
        if (r < 0)
                return r;
        r = expect_punct(lx, "]");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ps->p->n_groups; i++)
                if (strlen(ps->p->groups[i].name) == name.len && memcmp(ps->p->groups[i].name, name.start, name.len) == 0)
                        return parse_error(lx, "group [%.*s] is declared twice (first at line %u)", (int) name.len,
                                           name.start, ps->p->groups[i].line);
        if (lx->tok.type == TOK_END)
                return parse_error(lx, "group [%.*s] needs an action", (int) name.len, name.start);
        r = parse_action(lx, &g.action);
        if (r < 0)
                return r;
        r = expect_end(lx);
        if (r < 0)
                return r;
        /* libseccomp refuses such rules too, but say why in policy terms. */
        if (g.action == ps->p->default_action)
                return parse_error(lx, "group [%.*s] has the default action: its rules would change nothing",
                                   (int) name.len, name.start);
        if (ps->p->n_groups >= SP_POLICY_GROUPS_MAX)
                return parse_error(lx, "more than %d groups", SP_POLICY_GROUPS_MAX);

        if (ps->p->n_groups == ps->groups_alloc) {
                size_t n = MAX(ps->groups_alloc * 2, (size_t) 16);
                sp_group *a = reallocarray(ps->p->groups, n, sizeof(sp_group));
                if (!a)
                        return sp_error_set(lx->err, -ENOMEM, "%s:%u: out of memory", lx->name, lx->line);
                ps->p->groups = a;
                ps->groups_alloc = n;
        }
        g.name = strndup(name.start, name.len);
        if (!g.name)
                return sp_error_set(lx->err, -ENOMEM, "%s:%u: out of memory", lx->name, lx->line);
        ps->p->groups[ps->p->n_groups++] = g;
        ps->group_lines = 0;
        return 0;
}

static bool conds_equal(const sp_rule *a, const sp_rule *b) {
        if (a->n_conds != b->n_conds)
                return false;
        for (size_t i = 0; i < a->n_conds; i++) {
                const sp_cond *x = &a->conds[i], *y = &b->conds[i];
                if (x->arg != y->arg || x->masked != y->masked || x->mask != y->mask || x->op != y->op ||
                    x->n_values != y->n_values || memcmp(x->values, y->values, x->n_values * sizeof(uint64_t)) != 0)
                        return false;
        }
        return true;
}

/* One syscall may be named in one group only (two groups would give it
 * two actions whose precedence depends on libseccomp internals), and a
 * syscall denied outright cannot also carry conditional rules. */
static int check_duplicate(parser *ps, lexer *lx, const sp_rule *rule) {
        for (size_t i = 0; i < ps->p->n_rules; i++) {
                const sp_rule *o = &ps->p->rules[i];
                if (o->nr != rule->nr)
                        continue;
                if (o->group != rule->group)
                        return parse_error(lx, "%s is already in group [%s] (line %u)", rule->syscall,
                                           ps->p->groups[o->group].name, o->line);
                if (o->n_conds == 0 || rule->n_conds == 0 || conds_equal(o, rule))
                        return parse_error(lx, "duplicate rule for %s (first at line %u)", rule->syscall, o->line);
        }
        return 0;
}

static void rule_done(sp_rule *r) {
        free(r->syscall);
        r->syscall = NULL;
}

static int parse_rule(parser *ps, lexer *lx) {
        _cleanup_(rule_done) sp_rule rule = { .line = lx->line };
        bool optional = false;
        int r;

        if (ps->p->n_groups == 0)
                return parse_error(lx, "a syscall outside of any group: declare one with '[name] ACTION' first");
        ps->group_lines++;
        rule.group = ps->p->n_groups - 1;

        if (lx->tok.type != TOK_WORD)
                return parse_error(lx, "expected a syscall name, got '%.*s'", tok_width(lx), lx->tok.start);
        if (lx->tok.len > 64)
                return parse_error(lx, "syscall name too long");
        rule.syscall = strndup(lx->tok.start, lx->tok.len);
        if (!rule.syscall)
                return sp_error_set(lx->err, -ENOMEM, "%s:%u: out of memory", lx->name, lx->line);
        const char *name_end = lx->tok.start + lx->tok.len;
        r = lex_next(lx);
        if (r < 0)
                return r;
        /* "name?" only: a lone '?' is more likely a typo than a marker. */
        if (tok_is(lx, "?") && lx->tok.start == name_end) {
                optional = true;
                r = lex_next(lx);
                if (r < 0)
                        return r;
        }

        if (tok_is(lx, "if")) {
                for (;;) {
                        r = lex_next(lx);
                        if (r < 0)
                                return r;
                        if (rule.n_conds >= SP_POLICY_ARGS_MAX)
                                return parse_error(lx, "more than %d conditions", SP_POLICY_ARGS_MAX);
                        sp_cond *c = &rule.conds[rule.n_conds];
                        r = parse_cond(lx, c);
                        if (r < 0)
                                return r;
                        /* libseccomp takes one comparison per argument and rule. */
                        for (size_t i = 0; i < rule.n_conds; i++)
                                if (rule.conds[i].arg == c->arg)
                                        return parse_error(lx, "arg%u is tested twice in one rule", c->arg);
                        rule.n_conds++;
                        if (!tok_is(lx, "and"))
                                break;
                }
        }
        r = expect_end(lx);
        if (r < 0)
                return r;

        /* Resolved for the native architecture. A name libseccomp knows
         * only for other architectures comes back as a negative pseudo
         * number, which libseccomp would silently ignore: refuse it too. */
        rule.nr = seccomp_syscall_resolve_name(rule.syscall);
        if (rule.nr == __NR_SCMP_ERROR || rule.nr < 0) {
                if (optional)
                        return 0;
                if (rule.nr == __NR_SCMP_ERROR)
                        return parse_error(lx, "unknown syscall '%s' (mark it '%s?' if it may be missing)", rule.syscall,
                                           rule.syscall);
                return parse_error(lx, "'%s' is not a syscall on this architecture (mark it '%s?')", rule.syscall,
                                   rule.syscall);
        }

        r = check_duplicate(ps, lx, &rule);
        if (r < 0)
                return r;
        if (ps->p->n_rules >= SP_POLICY_RULES_MAX)
                return parse_error(lx, "more than %d rules", SP_POLICY_RULES_MAX);
        if (ps->p->n_rules == ps->rules_alloc) {
                size_t n = MAX(ps->rules_alloc * 2, (size_t) 32);
                sp_rule *a = reallocarray(ps->p->rules, n, sizeof(sp_rule));
                if (!a)
                        return sp_error_set(lx->err, -ENOMEM, "%s:%u: out of memory", lx->name, lx->line);
                ps->p->rules = a;
                ps->rules_alloc = n;
        }
        ps->p->rules[ps->p->n_rules++] = rule;
        rule.syscall = NULL; /* moved */
        return 0;
}

static int parse_line(parser *ps, lexer *lx) {
        int r = lex_next(lx);
        if (r < 0)
                return r;
        if (lx->tok.type == TOK_END)
                return 0;
        if (tok_is(lx, "default"))
                return parse_default(ps, lx);
        if (tok_is(lx, "["))
                return parse_group(ps, lx);
        return parse_rule(ps, lx);
}

int sp_policy_parse(const char *name, const char *text, size_t len, sp_policy **ret, sp_error *err) {
        _cleanup_policy_ sp_policy *p = NULL;
        parser ps = {};
        lexer lx = { .name = name ?: "<policy>", .err = err };
        int r;

        if (!text && len > 0)
                return sp_error_set(err, -EINVAL, "%s: no text", lx.name);
        p = calloc(1, sizeof(*p));
        if (!p)
                return sp_error_set(err, -ENOMEM, "%s: out of memory", lx.name);
        p->name = strdup(lx.name);
        if (!p->name)
                return sp_error_set(err, -ENOMEM, "%s: out of memory", lx.name);
        ps.p = p;

        const char *s = text, *end = text + len;
        while (s < end) {
                const char *eol = memchr(s, '\n', (size_t) (end - s));
                if (!eol)
                        eol = end;
                lx.line++;
                const char *nul = memchr(s, '\0', (size_t) (eol - s));
                if (nul) {
                        lx.p = nul;
                        return parse_error(&lx, "NUL byte in the policy text");
                }
                const char *hash = memchr(s, '#', (size_t) (eol - s));
                lx.p = s;
                lx.end = hash ?: eol;
                r = parse_line(&ps, &lx);
                if (r < 0)
                        return r;
                s = eol + 1;
        }

        lx.line = MAX(lx.line, 1u);
        r = check_group_not_empty(&ps, &lx);
        if (r < 0)
                return r;
        if (!ps.has_default)
                return parse_error(&lx, "no default action: declare one with 'default ACTION'");

        *ret = TAKE_PTR(p);
        return 0;
}

int sp_policy_load_file(const char *path, sp_policy **ret, sp_error *err) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;
        int r = sp_policy_read_text(path, &buf, &n, err);
        if (r < 0)
                return r;
        return sp_policy_parse(path, buf, n, ret, err);
}

int sp_policy_read_text(const char *path, char **ret, size_t *ret_len, sp_error *err) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return sp_error_set(err, negative_errno(), "%s: cannot open: %m", path);
        if (fstat(fd, &st) < 0)
                return sp_error_set(err, negative_errno(), "%s: cannot stat: %m", path);
        if (!S_ISREG(st.st_mode))
                return sp_error_set(err, -EINVAL, "%s: not a regular file", path);
        if (st.st_size > POLICY_FILE_MAX)
                return sp_error_set(err, -EFBIG, "%s: larger than %d bytes", path, POLICY_FILE_MAX);

        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return sp_error_set(err, -ENOMEM, "%s: out of memory", path);
        /* Read to EOF but never past the size we allocated for: the file
         * may grow while we read it. */
        while (n < (size_t) st.st_size + 1) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return sp_error_set(err, negative_errno(), "%s: cannot read: %m", path);
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n > (size_t) st.st_size)
                return sp_error_set(err, -EBUSY, "%s: changed while being read", path);
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}

void sp_policy_free(sp_policy *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_rules; i++)
                free(p->rules[i].syscall);
        for (size_t i = 0; i < p->n_groups; i++)
                free(p->groups[i].name);
        free(p->rules);
        free(p->groups);
        free(p->name);
        free(p);
}

size_t sp_policy_n_rules(const sp_policy *p) {
        return p ? p->n_rules : 0;
}

int sp_policy_get_rule(const sp_policy *p, size_t i, sp_policy_rule_info *ret) {
        if (!p || i >= p->n_rules)
                return -ERANGE;
        const sp_rule *r = &p->rules[i];
        *ret = (sp_policy_rule_info) {
                .syscall = r->syscall,
                .nr = r->nr,
                .group = p->groups[r->group].name,
                .action = p->groups[r->group].action,
                .line = r->line,
                .conditional = r->n_conds > 0,
        };
        return 0;
}

uint32_t sp_policy_default_action(const sp_policy *p) {
        return p->default_action;
}
