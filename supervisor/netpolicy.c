/* SPDX-License-Identifier: MIT */
/* Session network policies and the operator's ceiling: parsing and checks. */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "netpolicy.h"

#define MAX_RATE_MBIT 100000u

static bool name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int netpolicy_normalize_name(char *name) {
        size_t n = strlen(name), label = 0;
        bool dot = false;

        if (n > 0 && name[n - 1] == '.')
                name[--n] = '\0';
        if (n == 0 || n > 253)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (c >= 'A' && c <= 'Z')
                        name[i] = c = (char) (c - 'A' + 'a');
                if (c == '.') {
                        if (label == 0 || name[i - 1] == '-')
                                return -EINVAL;
                        label = 0;
                        dot = true;
                        continue;
                }
                if (!name_char(c) || (label == 0 && c == '-') || ++label > 63)
                        return -EINVAL;
        }
        /* one label alone ("localhost", "intranet") is a local name, never
         * an internet host */
        return label > 0 && name[n - 1] != '-' && dot ? 0 : -EINVAL;
}

bool netpolicy_pattern_matches(const char *pattern, const char *name) {
        size_t pl, nl;

        if (strncmp(pattern, "*.", 2) != 0)
                return strcmp(pattern, name) == 0;
        /* "*.x.org" matches a.x.org and a.b.x.org, not x.org itself */
        pattern += 1;
        pl = strlen(pattern);
        nl = strlen(name);
        return nl > pl && strcmp(name + nl - pl, pattern) == 0;
}

bool netpolicy_allows_name(const netpolicy *p, const char *name) {
        if (p->mode == NETPOLICY_OPEN)
                return true;
        for (unsigned i = 0; i < p->n_names; i++)
                if (netpolicy_pattern_matches(p->names[i], name))
                        return true;
        return false;
}

int netpolicy_parse_cidr(const char *s, netpolicy_cidr *ret) {
        char buf[32], *slash, *end;
        struct in_addr a;
        unsigned long plen = 32;
        uint32_t mask;

        if (strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s);
        slash = strchr(buf, '/');
        if (slash) {
                *slash++ = '\0';
                if (!*slash || *slash < '0' || *slash > '9')
                        return -EINVAL;
                plen = strtoul(slash, &end, 10);
                if (*end || plen > 32)
                        return -EINVAL;
        }
        if (inet_pton(AF_INET, buf, &a) != 1)
                return -EINVAL;
        mask = plen == 0 ? 0 : UINT32_MAX << (32 - plen);
        /* "10.1.2.3/8" is a typo of some kind: say so rather than guess */
        if ((ntohl(a.s_addr) & ~mask) != 0)
                return -EINVAL;
        ret->addr = ntohl(a.s_addr);
        ret->prefixlen = (unsigned) plen;
        return 0;
}

bool netpolicy_cidr_contains(const netpolicy_cidr *c, uint32_t addr) {
        uint32_t mask = c->prefixlen == 0 ? 0 : UINT32_MAX << (32 - c->prefixlen);
        return (addr & mask) == c->addr;
}

static bool cidr_within(const netpolicy_cidr *inner, const netpolicy_cidr *outer) {
        return inner->prefixlen >= outer->prefixlen && netpolicy_cidr_contains(outer, inner->addr);
}

static bool cidr_overlaps(const netpolicy_cidr *a, const netpolicy_cidr *b) {
        return cidr_within(a, b) || cidr_within(b, a);
}

void netpolicy_done(netpolicy *p) {
        for (unsigned i = 0; i < p->n_names; i++)
                free(p->names[i]);
        *p = (netpolicy) {};
}

int netpolicy_copy(const netpolicy *from, netpolicy *to) {
        *to = *from;
        for (unsigned i = 0; i < from->n_names; i++) {
                to->names[i] = strdup(from->names[i]);
                if (!to->names[i]) {
                        to->n_names = i;
                        netpolicy_done(to);
                        return -ENOMEM;
                }
        }
        return 0;
}

/* Names and patterns: a valid host name, or "*." and one. */
static int parse_name(json_t *v, char **ret) {
        const char *s = json_string_value(v);
        _cleanup_free_ char *n = NULL;

        if (!s || strlen(s) != json_string_length(v) || strlen(s) > 255)
                return -EINVAL;
        n = strdup(s);
        if (!n)
                return -ENOMEM;
        if (strncmp(n, "*.", 2) == 0 ? netpolicy_normalize_name(n + 2) < 0 : netpolicy_normalize_name(n) < 0)
                return -EINVAL;
        *ret = TAKE_PTR(n);
        return 0;
}

static int parse_names(json_t *a, char **names, unsigned *n, unsigned max, const char *field, sp_error *err) {
        size_t i;
        json_t *v;
        int r;

        if (!json_is_array(a))
                return sp_error_set(err, -EINVAL, "%s: an array of host names", field);
        if (json_array_size(a) > max)
                return sp_error_set(err, -EINVAL, "%s: at most %u", field, max);
        json_array_foreach(a, i, v) {
                r = parse_name(v, &names[*n]);
                if (r == -ENOMEM)
                        return sp_error_set(err, r, "out of memory");
                if (r < 0)
                        return sp_error_set(err, -EINVAL, "%s[%zu]: not a host name or *.suffix pattern", field, i);
                (*n)++;
        }
        return 0;
}

/* Never reachable, whatever a list says: what would be the host itself or
 * the cloud's metadata service. */
static const netpolicy_cidr never_cidrs[] = {
        { 0x00000000, 8 },  /* "this network" */
        { 0x7f000000, 8 },  /* loopback */
        { 0xa9fe0000, 16 }, /* link-local: 169.254.169.254 is the metadata service */
        { 0xe0000000, 3 },  /* multicast and reserved */
};

static int parse_cidrs(json_t *a, netpolicy_cidr *cidrs, unsigned *n, unsigned max, const char *field, sp_error *err) {
        size_t i;
        json_t *v;

        if (!json_is_array(a))
                return sp_error_set(err, -EINVAL, "%s: an array of IPv4 ranges (\"198.51.100.0/24\")", field);
        if (json_array_size(a) > max)
                return sp_error_set(err, -EINVAL, "%s: at most %u", field, max);
        json_array_foreach(a, i, v) {
                const char *s = json_string_value(v);
                netpolicy_cidr *c = &cidrs[*n];
                if (!s || netpolicy_parse_cidr(s, c) < 0)
                        return sp_error_set(err, -EINVAL, "%s[%zu]: not an IPv4 range (a.b.c.d/n, no host bits)",
                                            field, i);
                for (size_t k = 0; k < ELEMENTSOF(never_cidrs); k++)
                        if (cidr_overlaps(c, &never_cidrs[k]))
                                return sp_error_set(err, -EINVAL,
                                                    "%s[%zu]: %s overlaps loopback, link-local or multicast, "
                                                    "which are never reachable", field, i, s);
                (*n)++;
        }
        return 0;
}

static int parse_ports(json_t *a, uint16_t *ports, unsigned *n, const char *field, sp_error *err) {
        size_t i;
        json_t *v;

        if (!json_is_array(a) || json_array_size(a) == 0)
                return sp_error_set(err, -EINVAL, "%s: a non-empty array of port numbers", field);
        if (json_array_size(a) > NETPOLICY_MAX_PORTS)
                return sp_error_set(err, -EINVAL, "%s: at most %d", field, NETPOLICY_MAX_PORTS);
        json_array_foreach(a, i, v) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
                        return sp_error_set(err, -EINVAL, "%s[%zu]: a port number 1-65535", field, i);
                ports[(*n)++] = (uint16_t) json_integer_value(v);
        }
        return 0;
}

static int parse_rate(json_t *v, uint32_t *ret, const char *field, sp_error *err) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_RATE_MBIT)
                return sp_error_set(err, -EINVAL, "%s: whole megabits per second, 1-%u", field, MAX_RATE_MBIT);
        *ret = (uint32_t) json_integer_value(v);
        return 0;
}

int netpolicy_from_json(json_t *v, netpolicy *ret, sp_error *err) {
        static const char *const known[] = { "allow", "cidrs", "ports", "rate_mbit" };
        netpolicy p = {};
        const char *k;
        json_t *f;
        int r = 0;

        *ret = (netpolicy) {};
        if (!v || json_is_null(v) || (json_is_string(v) && strcmp(json_string_value(v), "none") == 0))
                return 0;
        if (json_is_string(v) && strcmp(json_string_value(v), "open") == 0) {
                ret->mode = NETPOLICY_OPEN;
                ret->ports[0] = 80, ret->ports[1] = 443, ret->n_ports = 2;
                return 0;
        }
        if (!json_is_object(v))
                return sp_error_set(err, -EINVAL, "network: \"none\", \"open\" or {\"allow\": [...], \"cidrs\": [...], "
                                          "\"ports\": [...], \"rate_mbit\": n}");
        json_object_foreach(v, k, f) {
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        ok = ok || strcmp(known[i], k) == 0;
                if (!ok)
                        return sp_error_set(err, -EINVAL, "network: unknown field '%.40s'", k);
        }
        p.mode = NETPOLICY_ALLOW;
        if ((f = json_object_get(v, "allow")))
                r = parse_names(f, p.names, &p.n_names, NETPOLICY_MAX_NAMES, "network.allow", err);
        if (r >= 0 && (f = json_object_get(v, "cidrs")))
                r = parse_cidrs(f, p.cidrs, &p.n_cidrs, NETPOLICY_MAX_CIDRS, "network.cidrs", err);
        if (r >= 0 && (f = json_object_get(v, "ports")))
                r = parse_ports(f, p.ports, &p.n_ports, "network.ports", err);
        if (r >= 0 && (f = json_object_get(v, "rate_mbit")))
                r = parse_rate(f, &p.rate_mbit, "network.rate_mbit", err);
        if (r >= 0 && p.n_names == 0 && p.n_cidrs == 0)
                r = sp_error_set(err, -EINVAL, "network: allow or cidrs must list something (or say \"none\")");
        if (r < 0) {
                netpolicy_done(&p);
                return r;
        }
        if (p.n_ports == 0)
                p.ports[0] = 80, p.ports[1] = 443, p.n_ports = 2;
        *ret = p;
        return 0;
}

static json_t *cidr_to_json(const netpolicy_cidr *c) {
        char buf[INET_ADDRSTRLEN + 4];
        struct in_addr a = { htonl(c->addr) };

        inet_ntop(AF_INET, &a, buf, sizeof(buf));
        snprintf(buf + strlen(buf), 4, "/%u", c->prefixlen);
        return json_string(buf);
}

json_t *netpolicy_to_json(const netpolicy *p) {
        json_t *j, *names, *cidrs, *ports;

        if (p->mode == NETPOLICY_NONE)
                return json_string("none");
        if (p->mode == NETPOLICY_OPEN)
                return json_string("open");
        names = json_array();
        cidrs = json_array();
        ports = json_array();
        for (unsigned i = 0; i < p->n_names; i++)
                json_array_append_new(names, json_string(p->names[i]));
        for (unsigned i = 0; i < p->n_cidrs; i++)
                json_array_append_new(cidrs, cidr_to_json(&p->cidrs[i]));
        for (unsigned i = 0; i < p->n_ports; i++)
                json_array_append_new(ports, json_integer(p->ports[i]));
        j = json_pack("{s:o,s:o,s:o}", "allow", names, "cidrs", cidrs, "ports", ports);
        if (j && p->rate_mbit)
                json_object_set_new(j, "rate_mbit", json_integer(p->rate_mbit));
        return j;
}

/* ---- the operator's ceiling ------------------------------------------ */

typedef struct grant {
        bool everyone;
        uid_t uids[32];
        unsigned n_uids;
        gid_t gids[32];
        unsigned n_gids;
        netpolicy p; /* names, cidrs, ports; rate_mbit is the max (0: no cap) */
} grant;

struct netceiling {
        grant *grants;
        unsigned n_grants;
        bool open_for_admins;
};

void netceiling_free(netceiling *c) {
        if (!c)
                return;
        for (unsigned i = 0; i < c->n_grants; i++)
                netpolicy_done(&c->grants[i].p);
        free(c->grants);
        free(c);
}

static int grant_who(json_t *g, grant *gr, unsigned idx, sp_error *err) {
        json_t *uids = json_object_get(g, "uids"), *groups = json_object_get(g, "groups"), *v;
        size_t i;

        if (uids && (!json_is_array(uids) || json_array_size(uids) > ELEMENTSOF(gr->uids)))
                return sp_error_set(err, -EINVAL, "grants[%u].uids: an array of at most 32 uids or \"*\"", idx);
        json_array_foreach(uids, i, v) {
                if (json_is_string(v) && strcmp(json_string_value(v), "*") == 0)
                        gr->everyone = true;
                else if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < UINT32_MAX)
                        gr->uids[gr->n_uids++] = (uid_t) json_integer_value(v);
                else
                        return sp_error_set(err, -EINVAL, "grants[%u].uids[%zu]: a uid or \"*\"", idx, i);
        }
        if (groups && (!json_is_array(groups) || json_array_size(groups) > ELEMENTSOF(gr->gids)))
                return sp_error_set(err, -EINVAL, "grants[%u].groups: an array of at most 32 group names", idx);
        json_array_foreach(groups, i, v) {
                struct group *grp = json_is_string(v) ? getgrnam(json_string_value(v)) : NULL;
                if (!grp)
                        return sp_error_set(err, -EINVAL, "grants[%u].groups[%zu]: no such group", idx, i);
                gr->gids[gr->n_gids++] = grp->gr_gid;
        }
        if (!gr->everyone && gr->n_uids == 0 && gr->n_gids == 0)
                return sp_error_set(err, -EINVAL, "grants[%u]: names no uid or group", idx);
        return 0;
}

static int grant_parse(json_t *g, grant *gr, unsigned idx, sp_error *err) {
        static const char *const known[] = { "uids", "groups", "allow", "cidrs", "ports", "max_rate_mbit" };
        char field[48];
        const char *k;
        json_t *f;
        int r;

        if (!json_is_object(g))
                return sp_error_set(err, -EINVAL, "grants[%u]: an object", idx);
        json_object_foreach(g, k, f) {
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        ok = ok || strcmp(known[i], k) == 0;
                if (!ok)
                        return sp_error_set(err, -EINVAL, "grants[%u]: unknown field '%.40s'", idx, k);
        }
        r = grant_who(g, gr, idx, err);
        if (r < 0)
                return r;
        gr->p.mode = NETPOLICY_ALLOW;
        snprintf(field, sizeof(field), "grants[%u].allow", idx);
        if ((f = json_object_get(g, "allow")) &&
            (r = parse_names(f, gr->p.names, &gr->p.n_names, NETPOLICY_MAX_NAMES, field, err)) < 0)
                return r;
        snprintf(field, sizeof(field), "grants[%u].cidrs", idx);
        if ((f = json_object_get(g, "cidrs")) &&
            (r = parse_cidrs(f, gr->p.cidrs, &gr->p.n_cidrs, NETPOLICY_MAX_CIDRS, field, err)) < 0)
                return r;
        snprintf(field, sizeof(field), "grants[%u].ports", idx);
        if ((f = json_object_get(g, "ports")) && (r = parse_ports(f, gr->p.ports, &gr->p.n_ports, field, err)) < 0)
                return r;
        if (gr->p.n_ports == 0)
                gr->p.ports[0] = 80, gr->p.ports[1] = 443, gr->p.n_ports = 2;
        snprintf(field, sizeof(field), "grants[%u].max_rate_mbit", idx);
        if ((f = json_object_get(g, "max_rate_mbit")) && (r = parse_rate(f, &gr->p.rate_mbit, field, err)) < 0)
                return r;
        return 0;
}

static int netceiling_parse(json_t *root, netceiling *c, sp_error *err) {
        json_t *grants = json_object_get(root, "grants"), *open = json_object_get(root, "open_for_admins"), *g;
        const char *k;
        json_t *f;
        size_t i;
        int r;

        if (!json_is_object(root))
                return sp_error_set(err, -EINVAL, "not a JSON object");
        json_object_foreach(root, k, f)
                if (strcmp(k, "grants") != 0 && strcmp(k, "open_for_admins") != 0)
                        return sp_error_set(err, -EINVAL, "unknown field '%.40s'", k);
        if (open && !json_is_boolean(open))
                return sp_error_set(err, -EINVAL, "open_for_admins: true or false");
        c->open_for_admins = !open || json_is_true(open);
        if (grants && !json_is_array(grants))
                return sp_error_set(err, -EINVAL, "grants: an array");
        if (json_array_size(grants) > 256)
                return sp_error_set(err, -EINVAL, "grants: at most 256");
        c->grants = calloc(json_array_size(grants) + 1, sizeof(*c->grants));
        if (!c->grants)
                return sp_error_set(err, -ENOMEM, "out of memory");
        json_array_foreach(grants, i, g) {
                r = grant_parse(g, &c->grants[i], (unsigned) i, err);
                c->n_grants = (unsigned) i + 1;
                if (r < 0)
                        return r;
        }
        return 0;
}

int netceiling_load(const char *path, netceiling **ret, sp_error *err) {
        netceiling *c = calloc(1, sizeof(*c));
        json_error_t jerr;
        json_t *root;
        int r;

        if (!c)
                return sp_error_set(err, -ENOMEM, "out of memory");
        c->open_for_admins = true;
        if (!path || !*path) {
                *ret = c;
                return 0;
        }
        root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                netceiling_free(c);
                return sp_error_set(err, -EINVAL, "%s:%d: %s", path, jerr.line, jerr.text);
        }
        r = netceiling_parse(root, c, err);
        json_decref(root);
        if (r < 0) {
                netceiling_free(c);
                return sp_error_prefix(err, "%s", path);
        }
        *ret = c;
        return 0;
}

static bool grant_applies(const grant *g, const netcaller *who) {
        if (g->everyone)
                return true;
        for (unsigned i = 0; i < g->n_uids; i++)
                if (g->uids[i] == who->uid)
                        return true;
        for (unsigned i = 0; i < g->n_gids; i++) {
                if (g->gids[i] == who->gid)
                        return true;
                for (unsigned k = 0; k < who->n_groups; k++)
                        if (g->gids[i] == who->groups[k])
                                return true;
        }
        return false;
}

/* Is what the session asks covered by one grant that applies to it? */
static bool covered_name(const netceiling *c, const netcaller *who, const char *name) {
        for (unsigned i = 0; i < c->n_grants; i++) {
                const grant *g = &c->grants[i];
                if (!grant_applies(g, who))
                        continue;
                for (unsigned k = 0; k < g->p.n_names; k++) {
                        const char *gp = g->p.names[k];
                        /* a pattern asked is covered by the same or a wider one */
                        if (strncmp(name, "*.", 2) == 0 ? (strcmp(gp, name) == 0 ||
                                                           (strncmp(gp, "*.", 2) == 0 &&
                                                            netpolicy_pattern_matches(gp, name + 2)))
                                                        : netpolicy_pattern_matches(gp, name))
                                return true;
                }
        }
        return false;
}

static bool covered_cidr(const netceiling *c, const netcaller *who, const netpolicy_cidr *cidr) {
        for (unsigned i = 0; i < c->n_grants; i++)
                if (grant_applies(&c->grants[i], who))
                        for (unsigned k = 0; k < c->grants[i].p.n_cidrs; k++)
                                if (cidr_within(cidr, &c->grants[i].p.cidrs[k]))
                                        return true;
        return false;
}

static bool covered_port(const netceiling *c, const netcaller *who, uint16_t port) {
        for (unsigned i = 0; i < c->n_grants; i++)
                if (grant_applies(&c->grants[i], who))
                        for (unsigned k = 0; k < c->grants[i].p.n_ports; k++)
                                if (c->grants[i].p.ports[k] == port)
                                        return true;
        return false;
}

/* The highest rate any applicable grant allows; 0 when one has no cap. */
static uint32_t ceiling_rate(const netceiling *c, const netcaller *who, bool *ret_any) {
        uint32_t best = 1;
        *ret_any = false;
        for (unsigned i = 0; i < c->n_grants; i++) {
                if (!grant_applies(&c->grants[i], who))
                        continue;
                *ret_any = true;
                if (c->grants[i].p.rate_mbit == 0)
                        return 0;
                best = MAX(best, c->grants[i].p.rate_mbit);
        }
        return best;
}

int netceiling_check(const netceiling *c, const netcaller *who, netpolicy *p, sp_error *err) {
        uint32_t cap;
        bool any;

        if (p->mode == NETPOLICY_NONE)
                return 0;
        if (p->mode == NETPOLICY_OPEN) {
                if (who->admin && c->open_for_admins)
                        return 0;
                return sp_error_set(err, -EPERM, "network \"open\" is for administrators only%s",
                                who->admin ? " and the operator turned it off (open_for_admins)" : "");
        }
        if (who->admin)
                return 0; /* an administrator may list anything (never-reachable ranges stay so) */
        for (unsigned i = 0; i < p->n_names; i++)
                if (!covered_name(c, who, p->names[i]))
                        return sp_error_set(err, -EPERM, "network.allow: '%s' is not granted to uid %u by the operator",
                                        p->names[i], (unsigned) who->uid);
        for (unsigned i = 0; i < p->n_cidrs; i++)
                if (!covered_cidr(c, who, &p->cidrs[i])) {
                        json_t *s = cidr_to_json(&p->cidrs[i]);
                        sp_error_set(err, -EPERM, "network.cidrs: %s is not granted to uid %u by the operator",
                                     s ? json_string_value(s) : "?", (unsigned) who->uid);
                        json_decref(s);
                        return -EPERM;
                }
        for (unsigned i = 0; i < p->n_ports; i++)
                if (!covered_port(c, who, p->ports[i]))
                        return sp_error_set(err, -EPERM, "network.ports: %u is not granted to uid %u by the operator",
                                        p->ports[i], (unsigned) who->uid);
        cap = ceiling_rate(c, who, &any);
        if (!any)
                return sp_error_set(err, -EPERM, "uid %u may not have network (no grant names it)",
                                    (unsigned) who->uid);
        if (cap && p->rate_mbit > cap)
                return sp_error_set(err, -EPERM, "network.rate_mbit: at most %u for uid %u", cap, (unsigned) who->uid);
        if (cap && p->rate_mbit == 0)
                p->rate_mbit = cap;
        return 0;
}
