/* SPDX-License-Identifier: MIT */
/* The tenants' configuration: see tenant-config.h. */
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tenant-config.h"

static const tenant_tier unlimited = { .name = (char *) "default", .share = 1 };

bool tenant_config_section(const char *name, size_t len) {
        if (len == 7 && strncmp(name, "tenants", 7) == 0)
                return true;
        if (len <= 5 || strncmp(name, "tier.", 5) != 0)
                return false;
        for (size_t i = 5; i < len; i++)
                if (!(name[i] == '-' || name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') ||
                      (name[i] >= '0' && name[i] <= '9')))
                        return false;
        return len - 5 <= 32;
}

static tenant_tier *tier_get(tenant_config *c, const char *name, const char *where) {
        for (size_t i = 0; i < c->n_tiers; i++)
                if (streq(c->tiers[i].name, name))
                        return &c->tiers[i];
        tenant_tier *n = realloc(c->tiers, (c->n_tiers + 1) * sizeof(*n));
        if (!n)
                return NULL;
        c->tiers = n;
        tenant_tier *t = &c->tiers[c->n_tiers];
        *t = (tenant_tier){.share = 1, .name = strdup(name), .where = strdup(where)};
        if (!t->name || !t->where) {
                free(t->name);
                free(t->where);
                return NULL;
        }
        c->n_tiers++;
        return t;
}

static int tier_key(tenant_tier *t, const char *key, const char *value, const char *where, sp_error *err) {
        static const char *const keys[] = {"concurrent_sessions", "commands_per_day", "cpu_seconds_per_day",
                                           "memory_limit", "command_timeout", "share"};
        size_t i;
        uint64_t v = 0;
        int r = 0;

        for (i = 0; i < ELEMENTSOF(keys); i++)
                if (streq(keys[i], key))
                        break;
        if (i == ELEMENTSOF(keys))
                return sp_error_set(err, -EINVAL, "%s: [tier.%s] %s: unknown key", where, t->name, key);
        if (t->seen & (1u << i))
                return sp_error_set(err, -EINVAL, "%s: [tier.%s] %s: duplicate key", where, t->name, key);
        t->seen |= 1u << i;
        if (i == 3)
                r = sp_parse_size(value, &v);
        else if (i == 4)
                r = sp_parse_duration_ms(value, &v);
        else {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(value, &end, 10);
                if (errno || *end || !*value || *value < '0' || *value > '9' || n > UINT32_MAX)
                        r = -EINVAL;
                v = n;
        }
        if (r < 0)
                return sp_error_set(err, -EINVAL, "%s: [tier.%s] %s: not a valid %s: '%s'", where, t->name, key,
                                    i == 3 ? "size" : i == 4 ? "duration" : "number", value);
        if (i == 3 && v > 0 && v < (8u << 20))
                return sp_error_set(err, -EINVAL, "%s: [tier.%s] %s: at least 8M (or 0)", where, t->name, key);
        if (i == 5 && (v == 0 || v > 1000))
                return sp_error_set(err, -EINVAL, "%s: [tier.%s] %s: from 1 to 1000", where, t->name, key);
        switch (i) {
        case 0: t->concurrent_sessions = (uint32_t) v; break;
        case 1: t->commands_per_day = v; break;
        case 2: t->cpu_seconds_per_day = v; break;
        case 3: t->memory_limit = v; break;
        case 4: t->command_timeout_ms = v; break;
        default: t->share = (uint32_t) v; break;
        }
        return 0;
}

static int set_string(char **p, const char *v) {
        char *n = strdup(v);
        if (!n)
                return -ENOMEM;
        free(*p);
        *p = n;
        return 0;
}

static int tenants_key(tenant_config *c, const char *key, const char *value, const char *where, sp_error *err) {
        static const struct {
                const char *prefix;
                tenant_map_kind kind;
        } kinds[] = {{"uid.", MAP_UID}, {"user.", MAP_USER}, {"gid.", MAP_GID}, {"group.", MAP_GROUP}};

        if (streq(key, "default_tier") || streq(key, "clock_file")) {
                char **p = streq(key, "clock_file") ? &c->clock_file : &c->default_tier;
                if (*p)
                        return sp_error_set(err, -EINVAL, "%s: [tenants] %s: duplicate key", where, key);
                if (streq(key, "clock_file") && value[0] != '/')
                        return sp_error_set(err, -EINVAL, "%s: [tenants] clock_file: not an absolute path: '%s'",
                                            where, value);
                if (set_string(p, value) < 0 || (p == &c->default_tier && set_string(&c->default_where, where) < 0))
                        return sp_error_set(err, -ENOMEM, "Out of memory");
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                size_t n = strlen(kinds[i].prefix);
                if (strncmp(key, kinds[i].prefix, n) != 0)
                        continue;
                const char *name = key + n;
                bool numeric = kinds[i].kind == MAP_UID || kinds[i].kind == MAP_GID;
                if (!*name || (numeric && strspn(name, "0123456789") != strlen(name)) || strlen(name) > 64)
                        return sp_error_set(err, -EINVAL, "%s: [tenants] %s: malformed mapping (%s%s)", where, key,
                                            kinds[i].prefix, numeric ? "NUMBER" : "NAME");
                for (size_t m = 0; m < c->n_maps; m++)
                        if (c->maps[m].kind == kinds[i].kind && streq(c->maps[m].name, name))
                                return sp_error_set(err, -EINVAL, "%s: [tenants] %s: duplicate mapping (also %s)",
                                                    where, key, c->maps[m].where);
                tenant_map *maps = realloc(c->maps, (c->n_maps + 1) * sizeof(*maps));
                if (!maps)
                        return sp_error_set(err, -ENOMEM, "Out of memory");
                c->maps = maps;
                tenant_map *mp = &c->maps[c->n_maps];
                *mp = (tenant_map){.kind = kinds[i].kind, .name = strdup(name), .tier = strdup(value),
                                   .where = strdup(where)};
                if (!mp->name || !mp->tier || !mp->where) {
                        free(mp->name);
                        free(mp->tier);
                        free(mp->where);
                        return sp_error_set(err, -ENOMEM, "Out of memory");
                }
                if (numeric)
                        mp->id = (uint32_t) strtoul(name, NULL, 10);
                c->n_maps++;
                return 0;
        }
        return sp_error_set(err, -EINVAL, "%s: [tenants] %s: unknown key (default_tier, clock_file, uid.N, "
                                          "user.NAME, gid.N, group.NAME)", where, key);
}

int tenant_config_add(tenant_config *c, const char *section, const char *key, const char *value, const char *where,
                      sp_error *err) {
        if (streq(section, "tenants"))
                return tenants_key(c, key, value, where, err);
        tenant_tier *t = tier_get(c, section + 5, where);
        if (!t)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        return tier_key(t, key, value, where, err);
}

static const tenant_tier *find_tier(const tenant_config *c, const char *name) {
        for (size_t i = 0; i < c->n_tiers; i++)
                if (streq(c->tiers[i].name, name))
                        return &c->tiers[i];
        return streq(name, "default") ? &unlimited : NULL;
}

static int resolve_group(tenant_map *m, sp_error *err) {
        struct group *g = getgrnam(m->name);
        if (!g)
                return sp_error_set(err, -EINVAL, "%s: [tenants] group.%s: no such group", m->where, m->name);
        m->id = g->gr_gid;
        for (char **u = g->gr_mem; u && *u; u++) {
                struct passwd *pw = getpwnam(*u);
                if (!pw)
                        continue;
                uid_t *n = realloc(m->members, (m->n_members + 1) * sizeof(*n));
                if (!n)
                        return sp_error_set(err, -ENOMEM, "Out of memory");
                m->members = n;
                m->members[m->n_members++] = pw->pw_uid;
        }
        return 0;
}

int tenant_config_check(tenant_config *c, sp_error *err) {
        c->def = find_tier(c, c->default_tier ? c->default_tier : "default");
        if (!c->def)
                return sp_error_set(err, -EINVAL, "%s: [tenants] default_tier: unknown tier '%s'", c->default_where,
                                    c->default_tier);
        for (size_t i = 0; i < c->n_maps; i++) {
                tenant_map *m = &c->maps[i];
                m->t = find_tier(c, m->tier);
                if (!m->t)
                        return sp_error_set(err, -EINVAL, "%s: [tenants] mapping to an unknown tier '%s'", m->where,
                                            m->tier);
                if (m->kind == MAP_USER) {
                        struct passwd *pw = getpwnam(m->name);
                        if (!pw)
                                return sp_error_set(err, -EINVAL, "%s: [tenants] user.%s: no such user", m->where,
                                                    m->name);
                        m->id = pw->pw_uid;
                } else if (m->kind == MAP_GROUP) {
                        int r = resolve_group(m, err);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

void tenant_config_done(tenant_config *c) {
        for (size_t i = 0; i < c->n_tiers; i++) {
                free(c->tiers[i].name);
                free(c->tiers[i].where);
        }
        for (size_t i = 0; i < c->n_maps; i++) {
                free(c->maps[i].name);
                free(c->maps[i].tier);
                free(c->maps[i].where);
                free(c->maps[i].members);
        }
        free(c->tiers);
        free(c->maps);
        free(c->default_tier);
        free(c->default_where);
        free(c->clock_file);
        *c = (tenant_config){};
}

void tenant_config_print(const tenant_config *c, FILE *f) {
        static const char *const prefix[] = {"uid.", "user.", "gid.", "group."};

        for (size_t i = 0; i < c->n_tiers; i++) {
                const tenant_tier *t = &c->tiers[i];
                fprintf(f, "\n[tier.%s]  ; %s\nconcurrent_sessions = %u\ncommands_per_day = %" PRIu64
                           "\ncpu_seconds_per_day = %" PRIu64 "\nmemory_limit = %" PRIu64 "\ncommand_timeout = %"
                           PRIu64 "ms\nshare = %u\n",
                        t->name, t->where, t->concurrent_sessions, t->commands_per_day, t->cpu_seconds_per_day,
                        t->memory_limit, t->command_timeout_ms, t->share);
        }
        if (!c->default_tier && !c->clock_file && c->n_maps == 0)
                return;
        fprintf(f, "\n[tenants]\n");
        if (c->default_tier)
                fprintf(f, "default_tier = %s  # %s\n", c->default_tier, c->default_where);
        if (c->clock_file)
                fprintf(f, "clock_file = %s\n", c->clock_file);
        for (size_t i = 0; i < c->n_maps; i++)
                fprintf(f, "%s%s = %s  # %s\n", prefix[c->maps[i].kind], c->maps[i].name, c->maps[i].tier,
                        c->maps[i].where);
}

const tenant_tier *tenant_config_tier_of(const tenant_config *c, uid_t uid, gid_t gid) {
        /* most specific first: the uid, the primary group, a group's members */
        for (size_t i = 0; i < c->n_maps; i++)
                if ((c->maps[i].kind == MAP_UID || c->maps[i].kind == MAP_USER) && c->maps[i].id == uid)
                        return c->maps[i].t;
        for (size_t i = 0; i < c->n_maps; i++)
                if ((c->maps[i].kind == MAP_GID || c->maps[i].kind == MAP_GROUP) && c->maps[i].id == gid)
                        return c->maps[i].t;
        for (size_t i = 0; i < c->n_maps; i++)
                for (size_t k = 0; c->maps[i].kind == MAP_GROUP && k < c->maps[i].n_members; k++)
                        if (c->maps[i].members[k] == uid)
                                return c->maps[i].t;
        return c->def ? c->def : &unlimited;
}
