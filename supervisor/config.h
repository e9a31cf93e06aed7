/* SPDX-License-Identifier: MIT */
#pragma once

/* The one typed configuration of sandpoold. Filled in this order, each
 * later source overriding the earlier: built-in defaults (those of the
 * Docker pool it replaces), the INI file (/etc/sandpool/sandpool.conf or
 * --config), then SANDPOOL_<KEY> environment variables. Per-request values
 * are validated against it by the API (they may lower a limit, never
 * raise it past the configured cap). Every value is validated here, in one
 * place. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "macro.h"
#include "tenant-config.h"

typedef enum sp_config_source {
        SP_SOURCE_DEFAULT = 0,
        SP_SOURCE_FILE,
        SP_SOURCE_ENV,
        SP_SOURCE_CMDLINE,
} sp_config_source;

/* [template.NAME]: a template's warm pool and who may use it. */
typedef struct sp_template_config {
        char name[33];
        uint32_t pool_size;    /* warm sandboxes of it; 0: made on demand */
        char *shared_with;     /* NULL: its owner only; "everyone"; or a group name */
        unsigned line;         /* where it was set, for errors */
} sp_template_config;

/* [a-z0-9][a-z0-9._-]{0,31}: a template's name, a directory's and a
 * config section's. */
bool sp_template_name_is_valid(const char *name);

typedef struct sp_config {
        /* [server] */
        char *socket;          /* /run/sandpool/sandpool.sock */
        mode_t socket_mode;    /* 0660 */
        char *socket_group;    /* sandpool (missing group: a warning, root group kept) */
        char *admin_group;     /* sandpool-admin; root is always admin */
        char *state_dir;       /* /var/lib/sandpool */
        char *cgroup_parent;   /* NULL: the cgroup the daemon starts in */
        char *cgroup_mode;     /* "auto" | "v2" | "v1" */
        uint32_t id_base;      /* first host uid/gid given to sandboxes: 1000000000 */
        /* [images] */
        char *rootfs;          /* /var/lib/sandpool/images/default */
        char *seccomp_policy;  /* SANDPOOL_POLICYDIR/default.policy */
        /* [pool] */
        uint32_t pool_size;        /* 10 */
        uint32_t min_pool_size;    /* 3 */
        uint32_t max_pool_size;    /* 80 */
        bool aggressive_cleanup;   /* true */
        uint64_t container_idle_timeout_ms; /* 5min */
        /* [limits] */
        uint64_t memory_limit;     /* bytes, 256M */
        uint32_t cpu_limit;        /* % of one CPU, 25 */
        uint32_t pids_limit;       /* 256 */
        uint64_t disk_limit;       /* bytes, 512M */
        uint64_t command_timeout_ms; /* 30s */
        uint64_t max_output;       /* bytes per stream per command, 1M */
        uint64_t max_upload;       /* bytes per file PUT body, 64M */
        uint64_t template_max_size; /* bytes of one captured template layer, 1G */
        uint64_t command_buffer;   /* bytes per stream of a background command, 1M */
        uint32_t max_commands;     /* background commands kept per session, 128 */
        uint64_t command_buffer_total; /* bytes of all their rings per session, 16M */
        /* [sessions] */
        uint64_t session_timeout_ms;      /* 15min */
        uint64_t session_idle_timeout_ms; /* 5min */
        uint32_t max_sessions_per_uid;    /* 0: no cap beyond max_pool_size */
        /* [e2b] (supervisor/e2b.c) */
        char *e2b_listen;      /* NULL: off; "127.0.0.1:PORT" */
        char *e2b_keys_file;   /* lines "KEY:UID"; never logged */
        char *e2b_tls_certificate; /* PEM; with the key: HTTPS */
        char *e2b_tls_key;
        /* [network] */
        char *net_uplink;          /* NULL: networking off */
        char *net_upstream_dns;    /* "a.b.c.d[:port]" */
        char *net_address_pool;    /* 10.231.0.0/16 */
        char *net_nft_table;       /* sandpool */
        char *net_interface_prefix; /* spn */
        uint32_t net_resolver_port; /* 53053 */
        uint32_t net_proxy_port;   /* 53080 */
        uint32_t net_max_connections; /* 256 */
        char *net_policy;          /* NULL: only admins may ask for network */
        uint32_t max_keyed_sessions_per_uid; /* 16; 0: no cap */
        uint32_t max_keyed_sessions;      /* 0: no cap beyond max_pool_size */
        /* [records] */
        bool records_enabled;             /* true: <state_dir>/records.db */
        uint32_t records_retention_days;  /* 30; 0: forever */
        uint32_t records_max_rows;        /* 1000000; 0: no cap */
        uint64_t records_flush_interval_ms; /* 100ms */
        /* [template.NAME] sections (file only) */
        sp_template_config *templates;
        size_t n_templates;
} sp_config;

/* Where each key's value came from, for --print-config. */
typedef struct sp_config_origin {
        sp_config_source source;
        char *where; /* "/etc/sandpool/sandpool.conf:12", "SANDPOOL_POOL_SIZE", NULL for defaults */
} sp_config_origin;

typedef struct sp_config_set {
        sp_config cfg;
        sp_config_origin *origins; /* one per key, in the order of the key table */
        char *notices;             /* NULL, or lines ("...\n") worth a log notice: defaults that
                                    * followed a value the user set */
        tenant_config tenants;     /* [tenants], [tier.NAME] (tenant-config.h) */
} sp_config_set;

/* Defaults, then the file (path NULL: the default path, missing is fine;
 * an explicit path that is missing is an error), then the environment
 * (envp NULL: environ). Errors name the file, line and key, or the
 * variable: "/etc/sandpool/sandpool.conf:7: [pool] pool_size: not a number: 'ten'".
 * On failure *ret is untouched and err says why (-EINVAL malformed or
 * impossible, -ERANGE too large, -ENOENT/-EACCES/... the file).
 * Decisions, all tested in tests/unit/test-config.c:
 *  - a key given twice in the file is an error (naming both lines); a
 *    section may be opened more than once;
 *  - unknown sections and keys in the file are errors; unknown SANDPOOL_*
 *    variables are ignored (the environment is shared with tools and tests);
 *  - an empty value is an error, except cgroup_parent, where it means unset
 *    (also SANDPOOL_CGROUP_PARENT=);
 *  - comments: lines starting with '#' or ';', and " # ..." / " ; ..." after
 *    a value; leading blanks are ignored (indented keys are plain keys);
 *  - a default the user did not set follows a value they did set where the
 *    pair would not work otherwise (SANDPOOL_POOL_SIZE=2 alone: min_pool_size
 *    = min(3, 2)), with a line in notices; its origin stays "default" and
 *    its where says what it followed;
 *  - a combination of two explicit values that cannot work (min_pool_size > pool_size, ...) names
 *    the key set last: the environment over the file, a later line over an
 *    earlier one, and says where the other key came from. */
int sp_config_load(sp_config_set *ret, const char *path, char **envp, sp_error *err);
/* One more value on top of a loaded set, e.g. from the command line
 * (source SP_SOURCE_CMDLINE, where "--set"). key is "key" or
 * "section.key". The value and the combinations are checked as for the
 * file; on failure the set may hold the refused value and must not be
 * used any more, only freed. */
int sp_config_set_value(sp_config_set *s, const char *key, const char *value, sp_config_source source,
                        const char *where, sp_error *err);
void sp_config_set_done(sp_config_set *s);
/* The default seccomp_policy for the daemon binary at path exe (its
 * /proc/self/exe): the source tree's policy for the build tree's sandpoold,
 * else the installed one. */
const char *sp_config_default_policy(const char *exe);
/* Print every key as INI, each with a comment saying where it came from.
 * Sizes and durations in the input syntax (256M, 5min): the output loads
 * back to the same configuration. */
void sp_config_print(const sp_config_set *s, FILE *f);
/* Same, as a JSON-ready list of (section, key, value-as-text, source, where). */
typedef void (*sp_config_visit_fn)(const char *section, const char *key, const char *value,
                                   sp_config_source source, const char *where, void *userdata);
void sp_config_visit(const sp_config_set *s, sp_config_visit_fn fn, void *userdata);
/* The documented example file (systemd/sandpool.conf): every key commented
 * out with its default, its variable and one line of explanation. For
 * `sandpoold --print-config --defaults`. */
void sp_config_print_example(FILE *f);

/* Parsers shared with the API and the one-shot CLI. 0 or -EINVAL/-ERANGE;
 * *ret untouched on failure. Whole numbers only ("1.5G" is -EINVAL: use
 * 1536M), no sign, no blanks; sizes and durations above 2^53-1 are -ERANGE
 * (JSON clients read numbers as doubles). Sizes: binary K/M/G, either case.
 * Durations: ms, s, min, h, lower case ("5m" is refused: minutes or ms?). */
int sp_parse_size(const char *s, uint64_t *ret);        /* "256M", "1G", "4096", "512K" */
int sp_parse_duration_ms(const char *s, uint64_t *ret); /* "30s", "5min", "1h", "250ms", "15" (s) */
int sp_parse_bool(const char *s, bool *ret);            /* true/false/yes/no/on/off/1/0, any case */
const char *sp_config_source_to_string(sp_config_source s);
