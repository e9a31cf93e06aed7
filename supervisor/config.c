/* SPDX-License-Identifier: MIT */
/* The daemon's configuration: one key table, three sources (built-in
 * defaults, the INI file, SANDPOOL_* environment variables), every value
 * checked in one place. The parser sees operator-written files and is
 * fuzzed (tests/fuzz/fuzz-config.c): it must reject, never crash on,
 * arbitrary bytes. */

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "build-config.h"
#include "config.h"

#define SZ_K UINT64_C(1024)
#define SZ_M (SZ_K * 1024)
#define SZ_G (SZ_M * 1024)
#define MS_S UINT64_C(1000)
#define MS_MIN (MS_S * 60)
#define MS_H (MS_MIN * 60)

/* Sizes and durations travel to clients as JSON numbers, and JavaScript
 * reads those as doubles: above 2^53 they silently lose precision. So
 * that is the largest value accepted; more is -ERANGE, never a wrap. */
#define SP_CONFIG_NUM_MAX ((UINT64_C(1) << 53) - 1)

/* Each sandbox takes a 65536-id range for its user namespace; the pool may
 * hold up to twice max_pool_size ranges while old sandboxes are torn down
 * and their replacements start. (uid_t)-1 is "no id" for the kernel. */
#define SP_IDS_PER_SANDBOX UINT64_C(65536)
#define SP_ID_RANGES_PER_SLOT 2

#define DEFAULT_CONFIG_PATH SANDPOOL_SYSCONFDIR "/sandpool/sandpool.conf"

typedef enum key_type {
        KEY_STRING,   /* char *; empty only where check allows it (stored as NULL) */
        KEY_MODE,     /* mode_t, octal text */
        KEY_U32,      /* uint32_t, decimal */
        KEY_SIZE,     /* uint64_t bytes, K/M/G */
        KEY_DURATION, /* uint64_t milliseconds, ms/s/min/h */
        KEY_BOOL,     /* bool */
} key_type;

/* Extra check of one value: text for strings, num for numbers. Fills why
 * and returns -EINVAL when the value is refused. */
typedef int (*check_fn)(const char *text, uint64_t num, char *why, size_t whylen);

typedef struct config_key {
        const char *section;
        const char *key;
        key_type type;
        size_t offset;
        const char *def;   /* default, written in the file syntax */
        uint64_t min, max; /* numeric keys: accepted range */
        check_fn check;
        const char *help;  /* one line, for the example file */
} config_key;

static int check_path(const char *v, uint64_t n, char *why, size_t len);
static int check_socket(const char *v, uint64_t n, char *why, size_t len);
static int check_group(const char *v, uint64_t n, char *why, size_t len);
static int check_cgroup_parent(const char *v, uint64_t n, char *why, size_t len);
static int check_cgroup_mode(const char *v, uint64_t n, char *why, size_t len);
static int check_cpu(const char *v, uint64_t n, char *why, size_t len);
static int check_listen(const char *v, uint64_t n, char *why, size_t len);
static int check_optional(const char *v, uint64_t n, char *why, size_t len);
static int check_optional_path(const char *v, uint64_t n, char *why, size_t len);

#define OFF(f) offsetof(sp_config, f)

/* The one table of keys. Its order is the order of sp_config_set.origins,
 * of --print-config and of the example file. */
static const config_key config_keys[] = {
        { "server", "socket", KEY_STRING, OFF(socket), "/run/sandpool/sandpool.sock", 0, 0, check_socket,
          "Unix socket of the HTTP API (an absolute path of at most 107 bytes)." },
        { "server", "socket_mode", KEY_MODE, OFF(socket_mode), "0660", 0, 0777, NULL,
          "Permissions of the socket, octal: who may connect." },
        { "server", "socket_group", KEY_STRING, OFF(socket_group), "sandpool", 0, 0, check_group,
          "Group owning the socket; its members may create sessions." },
        { "server", "admin_group", KEY_STRING, OFF(admin_group), "sandpool-admin", 0, 0, check_group,
          "Members see and end every session (root always may)." },
        { "server", "state_dir", KEY_STRING, OFF(state_dir), "/var/lib/sandpool", 0, 0, check_path,
          "Directory for the daemon's state." },
        { "server", "cgroup_parent", KEY_STRING, OFF(cgroup_parent), "", 0, 0, check_cgroup_parent,
          "cgroup under which sandboxes are created; empty: the daemon's own (delegated) cgroup." },
        { "server", "cgroup_mode", KEY_STRING, OFF(cgroup_mode), "auto", 0, 0, check_cgroup_mode,
          "auto, v2 or v1: which cgroup hierarchy enforces the limits." },
        { "server", "id_base", KEY_U32, OFF(id_base), "1000000000", 65536, UINT32_MAX, NULL,
          "First host uid/gid of sandboxes: 131072 ids per max_pool_size slot, below 2^32." },
        { "images", "rootfs", KEY_STRING, OFF(rootfs), "/var/lib/sandpool/images/default", 0, 0, check_path,
          "Read-only root filesystem image, the lower layer of every sandbox." },
        /* The default depends on which sandpoold runs: sp_config_default_policy(). */
        { "images", "seccomp_policy", KEY_STRING, OFF(seccomp_policy), SANDPOOL_POLICYDIR "/default.policy", 0,
          0, check_path, "Seccomp policy file applied to every command." },
        { "pool", "pool_size", KEY_U32, OFF(pool_size), "10", 0, 65535, NULL,
          "Warm sandboxes kept ready ahead of demand." },
        { "pool", "min_pool_size", KEY_U32, OFF(min_pool_size), "3", 0, 65535, NULL,
          "Warm sandboxes never destroyed by idle cleanup." },
        { "pool", "max_pool_size", KEY_U32, OFF(max_pool_size), "80", 1, 65535, NULL,
          "Most sandboxes in total, warm plus in use." },
        { "pool", "aggressive_cleanup", KEY_BOOL, OFF(aggressive_cleanup), "true", 0, 0, NULL,
          "Destroy warm sandboxes idle for container_idle_timeout, down to min_pool_size." },
        { "pool", "container_idle_timeout", KEY_DURATION, OFF(container_idle_timeout_ms), "5min", 1,
          SP_CONFIG_NUM_MAX, NULL, "How long a warm sandbox may stay unused." },
        { "limits", "memory_limit", KEY_SIZE, OFF(memory_limit), "256M", 8 * SZ_M, SP_CONFIG_NUM_MAX, NULL,
          "Memory of one sandbox (no swap); at least 8M." },
        { "limits", "cpu_limit", KEY_U32, OFF(cpu_limit), "25", 1, UINT32_MAX, check_cpu,
          "CPU of one sandbox, in percent of one CPU (200 = two); at most 100 x the CPUs here." },
        { "limits", "pids_limit", KEY_U32, OFF(pids_limit), "256", 2, 4194304, NULL,
          "Most processes and threads in one sandbox." },
        { "limits", "disk_limit", KEY_SIZE, OFF(disk_limit), "512M", SZ_M, SP_CONFIG_NUM_MAX, NULL,
          "Size of the tmpfs holding a sandbox's writable layer; at least 1M." },
        { "limits", "command_timeout", KEY_DURATION, OFF(command_timeout_ms), "30s", 1, SP_CONFIG_NUM_MAX, NULL,
          "Default and largest time one command may run." },
        { "limits", "max_output", KEY_SIZE, OFF(max_output), "1M", 1, SP_CONFIG_NUM_MAX, NULL,
          "Output kept per stream per command; the rest is dropped and flagged truncated." },
        { "limits", "command_buffer", KEY_SIZE, OFF(command_buffer), "1M", 4096, 1024 * SZ_M, NULL,
          "Output kept per stream of a background command, for readers that reattach." },
        { "limits", "command_buffer_total", KEY_SIZE, OFF(command_buffer_total), "16M", 64 * 1024, SP_CONFIG_NUM_MAX,
          NULL, "Output kept by all background commands of one session, in the daemon's memory." },
        { "limits", "max_commands", KEY_U32, OFF(max_commands), "128", 1, 65535, NULL,
          "Background commands kept per session, running or exited (the oldest exited go first)." },
        { "limits", "max_upload", KEY_SIZE, OFF(max_upload), "64M", 1, SP_CONFIG_NUM_MAX, NULL,
          "Largest body of one file upload." },
        { "limits", "template_max_size", KEY_SIZE, OFF(template_max_size), "1G", SZ_M, SP_CONFIG_NUM_MAX, NULL,
          "Largest template a session's files may become (POST /v1/templates); beyond it the capture fails." },
        { "sessions", "session_timeout", KEY_DURATION, OFF(session_timeout_ms), "15min", 1, SP_CONFIG_NUM_MAX,
          NULL, "Longest life of a session." },
        { "sessions", "session_idle_timeout", KEY_DURATION, OFF(session_idle_timeout_ms), "5min", 1,
          SP_CONFIG_NUM_MAX, NULL, "A session unused this long is ended." },
        { "sessions", "max_sessions_per_uid", KEY_U32, OFF(max_sessions_per_uid), "0", 0, UINT32_MAX, NULL,
          "Most concurrent sessions of one client uid; 0: no cap beyond max_pool_size." },
        { "sessions", "max_keyed_sessions_per_uid", KEY_U32, OFF(max_keyed_sessions_per_uid), "16", 0, UINT32_MAX,
          NULL, "Most keyed sessions of one uid; the least recently used idle one makes room; 0: no cap." },
        { "sessions", "max_keyed_sessions", KEY_U32, OFF(max_keyed_sessions), "0", 0, UINT32_MAX, NULL,
          "Most keyed sessions in all; the least recently used idle one makes room; 0: no cap." },
        { "records", "records_enabled", KEY_BOOL, OFF(records_enabled), "true", 0, 0, NULL,
          "Record every command in <state_dir>/records.db (SQLite)." },
        { "records", "records_retention_days", KEY_U32, OFF(records_retention_days), "30", 0, 36500, NULL,
          "Records older than this many days are deleted; 0: kept forever." },
        { "records", "records_max_rows", KEY_U32, OFF(records_max_rows), "1000000", 0, UINT32_MAX, NULL,
          "Most records kept, the oldest deleted first; 0: no cap." },
        { "records", "records_flush_interval", KEY_DURATION, OFF(records_flush_interval_ms), "100ms", 1, 10000, NULL,
          "Records are written at least this often: the most a crash (SIGKILL) can lose." },
        /* Egress (supervisor/egress.c); checked whole when the daemon starts it. */
        { "network", "uplink", KEY_STRING, OFF(net_uplink), "", 0, 0, check_optional,
          "Interface toward the internet; empty: no session may have network." },
        { "network", "upstream_dns", KEY_STRING, OFF(net_upstream_dns), "", 0, 0, check_optional,
          "Resolver the daemon forwards allowed names to: a.b.c.d or a.b.c.d:port." },
        { "network", "address_pool", KEY_STRING, OFF(net_address_pool), "10.231.0.0/16", 0, 0, NULL,
          "Private IPv4 range for sandbox veths, a /30 each (never reachable from sandboxes)." },
        { "network", "nft_table", KEY_STRING, OFF(net_nft_table), "sandpool", 0, 0, NULL,
          "nftables table (inet) the daemon owns: replaced at start, removed at stop." },
        { "network", "interface_prefix", KEY_STRING, OFF(net_interface_prefix), "spn", 0, 0, NULL,
          "Start of the daemon's veth names (its nft rules match them); one per daemon on a host." },
        { "network", "resolver_port", KEY_U32, OFF(net_resolver_port), "53053", 1, 65535, NULL,
          "Port of the daemon's resolver on the host (sandbox DNS is redirected to it)." },
        { "network", "proxy_port", KEY_U32, OFF(net_proxy_port), "53080", 1, 65535, NULL,
          "Port of the daemon's HTTP/TLS proxy (sandbox TCP to 80 and 443 is redirected to it)." },
        { "network", "connections_per_sandbox", KEY_U32, OFF(net_max_connections), "256", 0, 1000000, NULL,
          "Most tracked connections of one networked sandbox; 0: no cap." },
        { "network", "network_policy", KEY_STRING, OFF(net_policy), "", 0, 0, check_optional_path,
          "JSON file of grants: which names, cidrs, ports and rates whose sessions may ask for." },
        { "e2b", "listen", KEY_STRING, OFF(e2b_listen), "", 0, 0, check_listen,
          "E2B-compatible API on this IPv4 loopback address:port (empty: off); see docs/api.md." },
        { "e2b", "keys_file", KEY_STRING, OFF(e2b_keys_file), "", 0, 0, check_optional_path,
          "File of E2B API keys, one 'KEY:UID' a line: the uid whose sessions that key creates and sees." },
        { "e2b", "tls_certificate", KEY_STRING, OFF(e2b_tls_certificate), "", 0, 0, check_optional_path,
          "PEM certificate (chain) of the E2B listener: with tls_key, it speaks HTTPS." },
        { "e2b", "tls_key", KEY_STRING, OFF(e2b_tls_key), "", 0, 0, check_optional_path,
          "PEM private key of tls_certificate (owned by root, not readable by others)." },
};
#define N_KEYS ELEMENTSOF(config_keys)

static const char *const config_sections[] = { "server", "images", "pool", "limits", "sessions", "records", "network",
                                               "e2b" };

/* ---- small text helpers ---- */

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

/* Render an untrusted value for an error message: printable ASCII kept,
 * the rest escaped, long values cut, so a hostile file cannot put
 * terminal escapes or megabytes into the log. */
static const char *quote(const char *v, char *buf, size_t len) {
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;

        for (const unsigned char *p = (const unsigned char *) v; *p; p++) {
                if (o + 8 >= len || o >= 48) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                        break;
                }
                if (*p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '\'') {
                        buf[o++] = (char) *p;
                        continue;
                }
                buf[o++] = '\\';
                buf[o++] = 'x';
                buf[o++] = hex[*p >> 4];
                buf[o++] = hex[*p & 15];
        }
        buf[o] = '\0';
        return buf;
}

static void key_env_name(const config_key *k, char *buf, size_t len) {
        size_t o = (size_t) snprintf(buf, len, "SANDPOOL_");
        for (const char *p = k->key; *p && o + 1 < len; p++)
                buf[o++] = (*p >= 'a' && *p <= 'z') ? (char) (*p - 'a' + 'A') : *p;
        buf[o] = '\0';
}

static int find_key(const char *section, const char *key) {
        for (size_t i = 0; i < N_KEYS; i++)
                if ((!section || streq(config_keys[i].section, section)) && streq(config_keys[i].key, key))
                        return (int) i;
        return -ENOENT;
}

bool sp_template_name_is_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;
        if (n == 0 || n > 32)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                bool alnum = ('a' <= c && c <= 'z') || ('0' <= c && c <= '9');
                if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
                        return false;
        }
        return true;
}

#define TEMPLATE_SECTION "template."

static bool section_known(const char *s, size_t len) {
        char name[64];
        if (len > STRLEN(TEMPLATE_SECTION) && len < sizeof(name) + STRLEN(TEMPLATE_SECTION) &&
            strncmp(s, TEMPLATE_SECTION, STRLEN(TEMPLATE_SECTION)) == 0) {
                snprintf(name, sizeof(name), "%.*s", (int) (len - STRLEN(TEMPLATE_SECTION)), s + STRLEN(TEMPLATE_SECTION));
                return sp_template_name_is_valid(name);
        }
        for (size_t i = 0; i < ELEMENTSOF(config_sections); i++)
                if (strlen(config_sections[i]) == len && strncmp(config_sections[i], s, len) == 0)
                        return true;
        if (tenant_config_section(s, len))
                return true;
        return false;
}

/* ---- value parsers, shared with the API ---- */

/* One or more decimal digits, nothing else: no sign (strtoull would
 * quietly turn "-1" into 2^64-1), no whitespace, no "0x". */
static int parse_digits(const char **p, uint64_t *ret) {
        const char *s = *p;
        uint64_t v = 0;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
                unsigned d = (unsigned) (*s - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *p = s;
        *ret = v;
        return 0;
}

/* n * unit, or -ERANGE beyond SP_CONFIG_NUM_MAX. A malformed suffix is
 * reported before an overflowing number: "99999999999999999999x" is
 * -EINVAL, so the message says what is wrong with it first. */
static int scale(int r, uint64_t n, uint64_t unit, uint64_t *ret) {
        if (r < 0)
                return r;
        if (n > SP_CONFIG_NUM_MAX / unit)
                return -ERANGE;
        *ret = n * unit;
        return 0;
}

int sp_parse_size(const char *s, uint64_t *ret) {
        uint64_t n = 0, unit;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = parse_digits(&s, &n);
        if (r == -EINVAL)
                return r;
        if (r == -ERANGE) /* skip the rest of the digits to check the suffix */
                while (*s >= '0' && *s <= '9')
                        s++;
        /* Binary units only; "1.5G" and "256MB" are refused rather than
         * guessed at: a limit should mean exactly what it says. */
        switch (*s) {
        case '\0': unit = 1; break;
        case 'K': case 'k': unit = SZ_K; s++; break;
        case 'M': case 'm': unit = SZ_M; s++; break;
        case 'G': case 'g': unit = SZ_G; s++; break;
        default: return -EINVAL;
        }
        if (*s != '\0')
                return -EINVAL;
        return scale(r, n, unit, ret);
}

int sp_parse_duration_ms(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t ms;
        } units[] = { { "", MS_S }, { "ms", 1 }, { "s", MS_S }, { "min", MS_MIN }, { "h", MS_H } };
        uint64_t n = 0;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = parse_digits(&s, &n);
        if (r == -EINVAL)
                return r;
        if (r == -ERANGE)
                while (*s >= '0' && *s <= '9')
                        s++;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(s, units[i].suffix))
                        return scale(r, n, units[i].ms, ret);
        return -EINVAL; /* "5m" is refused: minutes or milliseconds? */
}

int sp_parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "1", "yes", "true", "on" };
        static const char *const no[] = { "0", "no", "false", "off" };

        if (!s || !ret)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static int parse_u32(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        int r = parse_digits(&s, &v);
        if (r == -EINVAL)
                return r;
        while (*s >= '0' && *s <= '9')
                s++;
        if (*s != '\0')
                return -EINVAL;
        if (r < 0 || v > UINT32_MAX)
                return -ERANGE;
        *ret = v;
        return 0;
}

static int parse_mode(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (*s == '\0')
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '7')
                        return -EINVAL;
                v = v * 8 + (uint64_t) (*s - '0');
                if (v > 07777)
                        return -ERANGE;
        }
        *ret = v;
        return 0;
}

const char *sp_config_source_to_string(sp_config_source s) {
        switch (s) {
        case SP_SOURCE_DEFAULT: return "default";
        case SP_SOURCE_FILE: return "file";
        case SP_SOURCE_ENV: return "env";
        case SP_SOURCE_CMDLINE: return "cmdline";
        }
        return "unknown";
}

/* ---- per-key checks ---- */

static int check_path(const char *v, uint64_t n, char *why, size_t len) {
        if (v[0] != '/') {
                snprintf(why, len, "not an absolute path");
                return -EINVAL;
        }
        if (strlen(v) >= PATH_MAX) {
                snprintf(why, len, "path too long");
                return -EINVAL;
        }
        return 0;
}

static int check_socket(const char *v, uint64_t n, char *why, size_t len) {
        int r = check_path(v, n, why, len);
        if (r < 0)
                return r;
        /* bind() takes at most sizeof(sun_path) bytes including the NUL;
         * a longer path would be cut silently or fail at startup. */
        if (strlen(v) >= sizeof(((struct sockaddr_un *) NULL)->sun_path)) {
                snprintf(why, len, "socket path longer than %zu bytes",
                         sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1);
                return -EINVAL;
        }
        return 0;
}

static int check_group(const char *v, uint64_t n, char *why, size_t len) {
        /* The portable name set of useradd/groupadd (NAME_REGEX), at most
         * 32 bytes: anything else is a typo, never a real group. */
        size_t l = strlen(v);
        bool ok = l <= 32 && v[0] != '-';
        char q[64];

        for (const char *p = v; ok && *p; p++)
                ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                     *p == '_' || *p == '-' || *p == '.';
        if (ok)
                return 0;
        snprintf(why, len, "not a valid group name: '%s'", quote(v, q, sizeof(q)));
        return -EINVAL;
}

static int check_optional(const char *v, uint64_t n, char *why, size_t len) {
        return 0; /* empty means unset */
}

static int check_optional_path(const char *v, uint64_t n, char *why, size_t len) {
        return v[0] == '\0' ? 0 : check_path(v, n, why, len);
}

/* An IPv4 loopback address and a port: the E2B listener serves this host
 * (a front end on the host may publish it further). */
static int check_listen(const char *v, uint64_t n, char *why, size_t len) {
        unsigned a, b, c, d, port;
        char end;

        if (v[0] == '\0')
                return 0;
        if (sscanf(v, "%u.%u.%u.%u:%u%c", &a, &b, &c, &d, &port, &end) != 5 || a > 255 || b > 255 || c > 255 ||
            d > 255 || port < 1 || port > 65535) {
                snprintf(why, len, "not ADDRESS:PORT with an IPv4 address: '%s'", v);
                return -EINVAL;
        }
        if (a != 127) {
                snprintf(why, len, "the E2B listener is served on a loopback address (127.x.x.x) only: '%s'", v);
                return -EINVAL;
        }
        return 0;
}

static int check_cgroup_parent(const char *v, uint64_t n, char *why, size_t len) {
        if (v[0] == '\0')
                return 0; /* unset: the daemon's own cgroup */
        int r = check_path(v, n, why, len);
        if (r < 0)
                return r;
        /* The daemon creates and removes cgroups below this path as root:
         * a ".." must not walk it out of the subtree it was given. */
        for (const char *p = v; (p = strstr(p, "..")); p += 2)
                if (p[-1] == '/' && (p[2] == '/' || p[2] == '\0')) {
                        snprintf(why, len, "'..' is not allowed in a cgroup path");
                        return -EINVAL;
                }
        return 0;
}

static int check_cgroup_mode(const char *v, uint64_t n, char *why, size_t len) {
        if (streq(v, "auto") || streq(v, "v2") || streq(v, "v1"))
                return 0;
        snprintf(why, len, "must be auto, v2 or v1");
        return -EINVAL;
}

static int check_cpu(const char *v, uint64_t n, char *why, size_t len) {
        /* More than every CPU of the machine cannot be granted: 2500
         * instead of 25 is a typo, not a wish. */
        long ncpu = sysconf(_SC_NPROCESSORS_CONF);
        uint64_t max = 100 * (uint64_t) (ncpu > 0 ? ncpu : 1);
        if (n > max) {
                snprintf(why, len, "%" PRIu64 " is more than the %ld CPUs of this machine (at most %" PRIu64 ")",
                         n, ncpu, max);
                return -EINVAL;
        }
        return 0;
}

/* ---- the set: storing values and origins ---- */

static void *key_ptr(sp_config *c, const config_key *k) {
        return (char *) c + k->offset;
}

static const void *key_cptr(const sp_config *c, const config_key *k) {
        return (const char *) c + k->offset;
}

static int fail_key(sp_error *err, int r, const char *where, const config_key *k, const char *fmt, ...)
        _printf_(5, 6);
static int fail_key(sp_error *err, int r, const char *where, const config_key *k, const char *fmt, ...) {
        char msg[200];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return sp_error_set(err, r, "%s: [%s] %s: %s", where, k->section, k->key, msg);
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing past
 * U+10FFFF): values end up in JSON, which jansson refuses otherwise. */
static bool utf8_valid(const char *str) {
        for (const unsigned char *p = (const unsigned char *) str; *p;) {
                unsigned n, min;
                uint32_t cp;

                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if ((*p & 0xe0) == 0xc0)
                        n = 1, min = 0x80, cp = *p & 0x1f;
                else if ((*p & 0xf0) == 0xe0)
                        n = 2, min = 0x800, cp = *p & 0x0f;
                else if ((*p & 0xf8) == 0xf0)
                        n = 3, min = 0x10000, cp = *p & 0x07;
                else
                        return false;
                p++;
                for (unsigned i = 0; i < n; i++, p++) {
                        if ((*p & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (*p & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
        }
        return true;
}

static int check_string(const config_key *k, const char *v, char *why, size_t len) {
        /* --print-config writes "key = value": that line must fit in what
         * inih reads (INI_MAX_LINE less the newline and NUL), or the output
         * would not load back. Same limit from every source. */
        size_t max = INI_MAX_LINE - 2 - strlen(k->key) - STRLEN(" = ");
        char q[64];

        if (v[0] == '\0' && k->check != check_cgroup_parent && k->check != check_listen && k->check != check_optional &&
            k->check != check_optional_path) {
                snprintf(why, len, "empty value");
                return -EINVAL;
        }
        for (const char *p = v; *p; p++) {
                /* Control characters have no place in a path or name; and a
                 * blank before '#' or ';' starts a comment in the file, so
                 * such a value could not be printed back and reloaded. */
                if ((unsigned char) *p < 0x20 || *p == 0x7f) {
                        snprintf(why, len, "control character in value: '%s'", quote(v, q, sizeof(q)));
                        return -EINVAL;
                }
                if ((*p == '#' || *p == ';') && p > v && is_blank(p[-1])) {
                        snprintf(why, len, "'%c' after a blank starts a comment: '%s'", *p, quote(v, q, sizeof(q)));
                        return -EINVAL;
                }
        }
        if (strlen(v) > max) {
                snprintf(why, len, "value too long (at most %zu bytes for this key)", max);
                return -EINVAL;
        }
        if (!utf8_valid(v)) {
                snprintf(why, len, "not valid UTF-8: '%s'", quote(v, q, sizeof(q)));
                return -EINVAL;
        }
        return k->check ? k->check(v, 0, why, len) : 0;
}

static int parse_number(const config_key *k, const char *v, uint64_t *ret, char *why, size_t len) {
        char q[64];
        bool b = false;
        int r;

        switch (k->type) {
        case KEY_MODE:
                r = parse_mode(v, ret);
                if (r == -EINVAL)
                        snprintf(why, len, "not an octal mode: '%s'", quote(v, q, sizeof(q)));
                break;
        case KEY_U32:
                r = parse_u32(v, ret);
                if (r == -EINVAL)
                        snprintf(why, len, "not a number: '%s'", quote(v, q, sizeof(q)));
                break;
        case KEY_SIZE:
                r = sp_parse_size(v, ret);
                if (r == -EINVAL)
                        snprintf(why, len, "not a size: '%s' (a whole number with an optional K, M or G)",
                                 quote(v, q, sizeof(q)));
                break;
        case KEY_DURATION:
                r = sp_parse_duration_ms(v, ret);
                if (r == -EINVAL)
                        snprintf(why, len, "not a duration: '%s' (a whole number with ms, s, min or h)",
                                 quote(v, q, sizeof(q)));
                break;
        case KEY_BOOL:
                r = sp_parse_bool(v, &b);
                if (r == -EINVAL)
                        snprintf(why, len, "not a boolean: '%s' (true/false, yes/no, on/off, 1/0)",
                                 quote(v, q, sizeof(q)));
                *ret = b;
                break;
        default:
                return -EINVAL;
        }
        if (r == -ERANGE)
                snprintf(why, len, "out of range: '%s'", quote(v, q, sizeof(q)));
        return r;
}

static void format_value(const sp_config *c, const config_key *k, char *buf, size_t len);

static int check_range(const config_key *k, uint64_t v, char *why, size_t len) {
        if (k->type == KEY_BOOL || (v >= k->min && v <= k->max))
                return 0;
        /* Say the bound in the key's own syntax ("at least 8M", "1ms"). */
        sp_config bound = {};
        uint64_t b = v < k->min ? k->min : k->max;
        char text[32];
        switch (k->type) {
        case KEY_MODE: *(mode_t *) key_ptr(&bound, k) = (mode_t) b; break;
        case KEY_U32: *(uint32_t *) key_ptr(&bound, k) = (uint32_t) b; break;
        default: *(uint64_t *) key_ptr(&bound, k) = b; break;
        }
        format_value(&bound, k, text, sizeof(text));
        snprintf(why, len, "must be at %s %s", v < k->min ? "least" : "most", text);
        return -EINVAL;
}

/* Parse, check and store one value with its origin. The single place a
 * value enters the configuration, whatever its source. */
static int key_assign(sp_config_set *s, size_t idx, const char *value, sp_config_source src, const char *where,
                      sp_error *err) {
        const config_key *k = &config_keys[idx];
        void *p = key_ptr(&s->cfg, k);
        char why[160];
        uint64_t v = 0;
        int r;

        if (k->type == KEY_STRING) {
                r = check_string(k, value, why, sizeof(why));
                if (r < 0)
                        return fail_key(err, r, where, k, "%s", why);
        } else {
                r = parse_number(k, value, &v, why, sizeof(why));
                if (r >= 0)
                        r = check_range(k, v, why, sizeof(why));
                if (r >= 0 && k->check)
                        r = k->check(value, v, why, sizeof(why));
                if (r < 0)
                        return fail_key(err, r, where, k, "%s", why);
        }

        _cleanup_free_ char *w = NULL;
        if (where && src != SP_SOURCE_DEFAULT) {
                w = strdup(where);
                if (!w)
                        return sp_error_set(err, -ENOMEM, "Out of memory");
        }
        switch (k->type) {
        case KEY_STRING: {
                char *n = NULL;
                if (value[0] != '\0' && !(n = strdup(value)))
                        return sp_error_set(err, -ENOMEM, "Out of memory");
                free(*(char **) p);
                *(char **) p = n;
                break;
        }
        case KEY_MODE: *(mode_t *) p = (mode_t) v; break;
        case KEY_U32: *(uint32_t *) p = (uint32_t) v; break;
        case KEY_BOOL: *(bool *) p = v != 0; break;
        default: *(uint64_t *) p = v; break;
        }
        free(s->origins[idx].where);
        s->origins[idx].where = TAKE_PTR(w);
        s->origins[idx].source = src;
        return 0;
}

void sp_config_set_done(sp_config_set *s) {
        if (!s)
                return;
        for (size_t i = 0; i < N_KEYS; i++) {
                if (config_keys[i].type == KEY_STRING)
                        free(*(char **) key_ptr(&s->cfg, &config_keys[i]));
                if (s->origins)
                        free(s->origins[i].where);
        }
        for (size_t i = 0; i < s->cfg.n_templates; i++)
                free(s->cfg.templates[i].shared_with);
        free(s->cfg.templates);
        free(s->origins);
        free(s->notices);
        tenant_config_done(&s->tenants);
        *s = (sp_config_set) {};
}

const char *sp_config_default_policy(const char *exe) {
        /* The sandpoold of the build tree (meson compile, not installed)
         * takes the policy of the source tree: the installed path may not
         * exist yet, or hold another version's policy. Any other binary,
         * the installed daemon included, takes the installed one. */
        if (exe && streq(exe, SANDPOOL_BUILD_DAEMON))
                return SANDPOOL_SOURCE_POLICYDIR "/default.policy";
        return SANDPOOL_POLICYDIR "/default.policy";
}

static const char *key_default(const config_key *k) {
        static char exe[PATH_MAX];

        if (k->offset != OFF(seccomp_policy))
                return k->def;
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = 0;
        return sp_config_default_policy(exe);
}

static int set_defaults(sp_config_set *s, sp_error *err) {
        s->origins = calloc(N_KEYS, sizeof(*s->origins));
        if (!s->origins)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        for (size_t i = 0; i < N_KEYS; i++) {
                int r = key_assign(s, i, key_default(&config_keys[i]), SP_SOURCE_DEFAULT, "built-in default", err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- the INI file ---- */

/* Bytes of one line kept while reading: more than inih takes, so that a
 * long line is refused with its own message; a longer comment is skipped. */
#define RAW_LINE_MAX 1024

typedef struct file_parser {
        sp_config_set *set;
        const char *path;
        FILE *f;
        char raw[RAW_LINE_MAX + 1];
        unsigned line;
        unsigned seen[N_KEYS]; /* line where each key was set in this file, 0: not yet */
        int r;                 /* first error; parsing stops at it */
        sp_error *err;
} file_parser;

static int fail_line(file_parser *p, int r, const char *fmt, ...) _printf_(3, 4);
static int fail_line(file_parser *p, int r, const char *fmt, ...) {
        char msg[200];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        p->r = sp_error_set(p->err, r, "%s:%u: %s", p->path, p->line, msg);
        return p->r;
}

/* Check a stripped line the way inih will read it, so each mistake gets a
 * message of its own instead of inih's bare line number. */
static int classify_line(file_parser *p, const char *s) {
        char q[64];

        if (s[0] == '\0' || s[0] == ';' || s[0] == '#')
                return 0;
        if (s[0] == '[') {
                const char *e = strchr(s, ']');
                if (!e)
                        return fail_line(p, -EINVAL, "syntax error: missing ']' in section header");
                for (const char *t = e + 1; *t; t++)
                        if (!is_blank(*t)) {
                                if (*t == ';' && is_blank(t[-1]))
                                        break;
                                return fail_line(p, -EINVAL, "syntax error: text after section header");
                        }
                if (!section_known(s + 1, (size_t) (e - s - 1))) {
                        char name[200];
                        snprintf(name, sizeof(name), "%.*s", (int) (e - s - 1), s + 1);
                        return fail_line(p, -EINVAL, "unknown section [%s]", quote(name, q, sizeof(q)));
                }
                return 0;
        }
        if (!strpbrk(s, "=:"))
                return fail_line(p, -EINVAL, "syntax error: expected 'key = value' or '[section]': '%s'",
                                 quote(s, q, sizeof(q)));
        return 0;
}

/* Read one line into p->raw, without its newline. Memory stays bounded
 * whatever the file holds (no getline(): a hostile 1 GiB line must not
 * become a 1 GiB allocation): beyond RAW_LINE_MAX the rest of the line is
 * skipped and *ret_long set. 1: a line, 0: end of file, <0: read error. */
static int read_line(file_parser *p, bool *ret_nul, bool *ret_long) {
        size_t n = 0;
        int c;

        *ret_nul = *ret_long = false;
        errno = 0;
        while ((c = getc_unlocked(p->f)) != EOF && c != '\n') {
                if (c == '\0')
                        *ret_nul = true;
                if (n < RAW_LINE_MAX)
                        p->raw[n++] = (char) c;
                else
                        *ret_long = true;
        }
        p->raw[n] = '\0';
        if (c == EOF && ferror(p->f))
                return errno > 0 ? -errno : -EIO;
        if (c == EOF && n == 0 && !*ret_long)
                return 0;
        p->line++;
        return 1;
}

/* inih's line reader, wrapped: it counts lines (this inih is built
 * without line numbers in the handler), refuses NUL bytes and overlong
 * lines instead of letting inih split them into two lines, strips leading
 * blanks (so indented keys never become inih "continuation lines") and
 * cuts "  # comment" tails, which --print-config writes. */
static char *file_reader(char *str, int num, void *stream) {
        file_parser *p = stream;
        bool nul, too_long;
        size_t n;
        char *s;
        int r;

        if (p->r < 0)
                return NULL;
        r = read_line(p, &nul, &too_long);
        if (r < 0)
                fail_line(p, r, "read error: %s", strerror(-r));
        if (r <= 0)
                return NULL;
        if (nul) {
                fail_line(p, -EINVAL, "NUL byte in line");
                return NULL;
        }
        s = p->raw;
        if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
                s += 3;
        while (is_blank(*s))
                s++;
        if (*s == '#' || *s == ';') {
                s[0] = '\0'; /* a comment, of any length: inih sees an empty line */
        } else if (too_long) {
                fail_line(p, -EINVAL, "line too long (at most %d bytes)", num - 2);
                return NULL;
        } else
                for (char *c = s + 1; *s && *c; c++)
                        if (*c == '#' && is_blank(c[-1])) {
                                *c = '\0';
                                break;
                        }
        n = strlen(s);
        while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\r'))
                s[--n] = '\0';
        if (classify_line(p, s) < 0)
                return NULL;
        if (num < 2 || n > (size_t) num - 2) {
                fail_line(p, -EINVAL, "line too long (at most %d bytes)", num - 2);
                return NULL;
        }
        memcpy(str, s, n);
        str[n] = '\n';
        str[n + 1] = '\0';
        return str;
}

/* [template.NAME] pool_size = N / shared_with = everyone|GROUP */
static int template_assign(file_parser *p, const char *tname, const char *key, const char *value) {
        sp_config *cfg = &p->set->cfg;
        sp_template_config *t = NULL;
        uint64_t v;

        for (size_t i = 0; i < cfg->n_templates; i++)
                if (streq(cfg->templates[i].name, tname))
                        t = &cfg->templates[i];
        if (!t) {
                sp_template_config *n = realloc(cfg->templates, (cfg->n_templates + 1) * sizeof(*n));
                if (!n)
                        return fail_line(p, -ENOMEM, "out of memory");
                cfg->templates = n;
                t = &n[cfg->n_templates++];
                *t = (sp_template_config) {.line = p->line};
                snprintf(t->name, sizeof(t->name), "%s", tname);
        }
        if (streq(key, "pool_size")) {
                if (parse_u32(value, &v) < 0 || v > 10000)
                        return fail_line(p, -EINVAL, "[template.%s] pool_size: not a number up to 10000: '%s'", tname,
                                         value);
                t->pool_size = (uint32_t) v;
                return 0;
        }
        if (streq(key, "shared_with")) {
                if (!*value)
                        return fail_line(p, -EINVAL, "[template.%s] shared_with: empty", tname);
                free(t->shared_with);
                t->shared_with = strdup(value);
                return t->shared_with ? 0 : fail_line(p, -ENOMEM, "out of memory");
        }
        return fail_line(p, -EINVAL, "[template.%s] %s: unknown key (pool_size, shared_with)", tname, key);
}

static int file_handler(void *user, const char *section, const char *name, const char *value) {
        file_parser *p = user;
        char where[PATH_MAX + 16], q[64];
        int idx;

        if (p->r < 0)
                return 0;
        if (section[0] == '\0') {
                fail_line(p, -EINVAL, "%s: key outside of any section", quote(name, q, sizeof(q)));
                return 0;
        }
        if (tenant_config_section(section, strlen(section))) {
                snprintf(where, sizeof(where), "%s:%u", p->path, p->line);
                p->r = tenant_config_add(&p->set->tenants, section, name, value, where, p->err);
                return p->r < 0 ? 0 : 1;
        }
        if (strncmp(section, TEMPLATE_SECTION, STRLEN(TEMPLATE_SECTION)) == 0) {
                p->r = template_assign(p, section + STRLEN(TEMPLATE_SECTION), name, value);
                return p->r < 0 ? 0 : 1;
        }
        idx = find_key(section, name);
        if (idx < 0) {
                int other = find_key(NULL, name);
                if (other >= 0)
                        fail_line(p, -EINVAL, "[%s] %s: unknown key (it belongs in [%s])", section, name,
                                  config_keys[other].section);
                else
                        fail_line(p, -EINVAL, "[%s] %s: unknown key", section, quote(name, q, sizeof(q)));
                return 0;
        }
        /* Duplicates are refused: with two values in one file, one of them
         * is a mistake, and silently taking the later hides which. */
        if (p->seen[idx]) {
                fail_line(p, -EINVAL, "[%s] %s: duplicate key (already set on line %u)", section, name,
                          p->seen[idx]);
                return 0;
        }
        p->seen[idx] = p->line;
        snprintf(where, sizeof(where), "%s:%u", p->path, p->line);
        p->r = key_assign(p->set, (size_t) idx, value, SP_SOURCE_FILE, where, p->err);
        return p->r < 0 ? 0 : 1;
}

static int load_file(sp_config_set *s, const char *path, sp_error *err) {
        _cleanup_free_ file_parser *p = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        bool explicit = path != NULL;
        struct stat st;
        int r;

        if (!path)
                path = DEFAULT_CONFIG_PATH;
        f = fopen(path, "re");
        if (!f) {
                r = negative_errno();
                if (r == -ENOENT && !explicit)
                        return 0; /* no file at the default place: defaults and environment */
                return sp_error_set(err, r, "%s: cannot open configuration: %s", path, strerror(-r));
        }
        if (fstat(fileno(f), &st) < 0)
                return sp_error_set(err, negative_errno(), "%s: cannot stat configuration: %m", path);
        if (S_ISDIR(st.st_mode))
                return sp_error_set(err, -EISDIR, "%s: cannot read configuration: %s", path, strerror(EISDIR));
        p = calloc(1, sizeof(*p));
        if (!p)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        *p = (file_parser) { .set = s, .path = path, .f = f, .err = err };

        r = ini_parse_stream(file_reader, p, file_handler, p);
        if (p->r < 0)
                return p->r;
        if (r < 0)
                return sp_error_set(err, -ENOMEM, "%s: out of memory while parsing", path);
        if (r > 0) /* a syntax error classify_line did not foresee */
                return sp_error_set(err, -EINVAL, "%s:%d: syntax error", path, r);
        return 0;
}

/* ---- the environment ---- */

static int load_env(sp_config_set *s, char **envp, sp_error *err) {
        extern char **environ;

        if (!envp)
                envp = environ;
        /* Unknown SANDPOOL_* variables are ignored, unlike unknown keys in
         * the file: the environment is shared with the tools and tests
         * around the daemon (SANDPOOL_BUILD_DIR, ...). */
        for (size_t i = 0; i < N_KEYS; i++) {
                char name[64];
                size_t l;

                key_env_name(&config_keys[i], name, sizeof(name));
                l = strlen(name);
                for (char **e = envp; e && *e; e++)
                        if (strncmp(*e, name, l) == 0 && (*e)[l] == '=') {
                                int r = key_assign(s, i, *e + l + 1, SP_SOURCE_ENV, name, err);
                                if (r < 0)
                                        return r;
                                break; /* the first one, as getenv() */
                        }
        }
        return 0;
}

/* ---- combinations ---- */

static const char *origin_text(const sp_config_set *s, int idx) {
        return s->origins[idx].where ? s->origins[idx].where : "default";
}

/* Blame the key of a broken pair that was set last: env over file over
 * default, the later line within a file. */
static int blame(const sp_config_set *s, int a, int b) {
        const sp_config_origin *oa = &s->origins[a], *ob = &s->origins[b];
        if (oa->source != ob->source)
                return oa->source > ob->source ? a : b;
        if (oa->source == SP_SOURCE_FILE) {
                const char *ca = strrchr(oa->where, ':'), *cb = strrchr(ob->where, ':');
                if (ca && cb && atol(ca + 1) < atol(cb + 1))
                        return b;
        }
        return a;
}

/* Numeric keys a and b must have a <= b: say so on the key to blame. */
static int fail_pair(const sp_config_set *s, sp_error *err, int a, int b) {
        char va[32], vb[32];
        int x = blame(s, a, b), y = x == a ? b : a;

        format_value(&s->cfg, &config_keys[a], va, sizeof(va));
        format_value(&s->cfg, &config_keys[b], vb, sizeof(vb));
        return fail_key(err, -EINVAL, s->origins[x].where ? s->origins[x].where : "built-in default",
                        &config_keys[x], "%s is %s than %s %s (%s)", x == a ? va : vb, x == a ? "more" : "less",
                        config_keys[y].key, x == a ? vb : va, origin_text(s, y));
}

/* Pairs of numeric keys that must satisfy lo <= hi. */
static const struct { const char *lo, *hi; } ordered_pairs[] = {
        { "min_pool_size", "pool_size" },
        { "pool_size", "max_pool_size" },
        { "min_pool_size", "max_pool_size" },
};

static uint32_t *pool_key_u32(sp_config_set *s, int idx) {
        return (uint32_t *) key_ptr(&s->cfg, &config_keys[idx]);
}

static int add_notice(sp_config_set *s, const char *fmt, ...) _printf_(2, 3);
static int add_notice(sp_config_set *s, const char *fmt, ...) {
        _cleanup_free_ char *line = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        size_t old = s->notices ? strlen(s->notices) : 0;
        char *p = realloc(s->notices, old + (size_t) n + 2);
        if (!p)
                return -ENOMEM;
        memcpy(p + old, line, (size_t) n);
        p[old + n] = '\n';
        p[old + n + 1] = 0;
        s->notices = p;
        return 0;
}

/* A value the user did not set follows one they did: SANDPOOL_POOL_SIZE=2
 * alone lowers min_pool_size from its default 3 to 2, with a notice,
 * instead of refusing to start. Only two explicit values that contradict
 * each other stay an error (validate_combinations). A few passes: lowering
 * max_pool_size may move pool_size, which may move min_pool_size. */
static int follow_explicit_values(sp_config_set *s) {
        for (unsigned pass = 0; pass < ELEMENTSOF(ordered_pairs); pass++)
                for (size_t i = 0; i < ELEMENTSOF(ordered_pairs); i++) {
                        int lo = find_key("pool", ordered_pairs[i].lo), hi = find_key("pool", ordered_pairs[i].hi);
                        uint32_t *vlo = pool_key_u32(s, lo), *vhi = pool_key_u32(s, hi);
                        bool dlo = s->origins[lo].source == SP_SOURCE_DEFAULT,
                             dhi = s->origins[hi].source == SP_SOURCE_DEFAULT;
                        int from, to;

                        if (*vlo <= *vhi || dlo == dhi)
                                continue; /* fine, or both the user's (an error), or both defaults */
                        to = dlo ? lo : hi;
                        from = dlo ? hi : lo;
                        uint32_t old = *pool_key_u32(s, to), val = *pool_key_u32(s, from);
                        _cleanup_free_ char *w = NULL;
                        if (asprintf(&w, "default %" PRIu32 ", set to follow %s (%s)", old, config_keys[from].key,
                                     origin_text(s, from)) < 0)
                                return -ENOMEM;
                        if (add_notice(s, "%s: default %" PRIu32 " %s to %" PRIu32 " to follow %s %" PRIu32 " (%s)",
                                       config_keys[to].key, old, dlo ? "lowered" : "raised", val,
                                       config_keys[from].key, val, origin_text(s, from)) < 0)
                                return -ENOMEM;
                        *pool_key_u32(s, to) = val;
                        free(s->origins[to].where);
                        s->origins[to].where = TAKE_PTR(w);
                }
        return 0;
}

static int validate_combinations(const sp_config_set *s, sp_error *err) {
        const sp_config *c = &s->cfg;
        int min = find_key("pool", "min_pool_size"), pool = find_key("pool", "pool_size"),
            max = find_key("pool", "max_pool_size"), id = find_key("server", "id_base");

        if (c->min_pool_size > c->max_pool_size)
                return fail_pair(s, err, min, max);
        if (c->min_pool_size > c->pool_size)
                return fail_pair(s, err, min, pool);
        if (c->pool_size > c->max_pool_size)
                return fail_pair(s, err, pool, max);
        if ((uint64_t) c->id_base + SP_IDS_PER_SANDBOX * SP_ID_RANGES_PER_SLOT * c->max_pool_size > UINT32_MAX) {
                int x = blame(s, id, max);
                return fail_key(err, -ERANGE, s->origins[x].where ? s->origins[x].where : "built-in default",
                                &config_keys[x],
                                "id_base %" PRIu32 " + 131072 ids for each of max_pool_size %" PRIu32
                                " sandboxes passes 4294967295",
                                c->id_base, c->max_pool_size);
        }
        return 0;
}

int sp_config_load(sp_config_set *ret, const char *path, char **envp, sp_error *err) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        int r;

        if (!ret)
                return sp_error_set(err, -EINVAL, "no configuration to fill");
        r = set_defaults(&s, err);
        if (r >= 0)
                r = load_file(&s, path, err);
        if (r >= 0)
                r = tenant_config_check(&s.tenants, err);
        if (r >= 0)
                r = load_env(&s, envp, err);
        if (r >= 0 && follow_explicit_values(&s) < 0)
                r = sp_error_set(err, -ENOMEM, "Out of memory");
        if (r >= 0)
                r = validate_combinations(&s, err);
        if (r < 0)
                return r;
        *ret = s;
        s = (sp_config_set) {};
        return 0;
}

int sp_config_set_value(sp_config_set *s, const char *key, const char *value, sp_config_source source,
                        const char *where, sp_error *err) {
        const char *dot;
        int idx, r;

        if (!s || !s->origins || !key || !value)
                return sp_error_set(err, -EINVAL, "no configuration, key or value");
        dot = strchr(key, '.');
        if (dot) {
                char section[16];
                if ((size_t) (dot - key) >= sizeof(section))
                        idx = -ENOENT;
                else {
                        snprintf(section, sizeof(section), "%.*s", (int) (dot - key), key);
                        idx = find_key(section, dot + 1);
                }
        } else
                idx = find_key(NULL, key);
        if (idx < 0) {
                char q[64];
                return sp_error_set(err, -EINVAL, "%s: unknown key '%s'", where ? where : "", quote(key, q, sizeof(q)));
        }
        r = key_assign(s, (size_t) idx, value, source, where ? where : sp_config_source_to_string(source), err);
        if (r < 0)
                return r;
        if (follow_explicit_values(s) < 0)
                return sp_error_set(err, -ENOMEM, "Out of memory");
        return validate_combinations(s, err);
}

/* ---- output ---- */

static void format_size(uint64_t v, char *buf, size_t len) {
        if (v != 0 && v % SZ_G == 0)
                snprintf(buf, len, "%" PRIu64 "G", v / SZ_G);
        else if (v != 0 && v % SZ_M == 0)
                snprintf(buf, len, "%" PRIu64 "M", v / SZ_M);
        else if (v != 0 && v % SZ_K == 0)
                snprintf(buf, len, "%" PRIu64 "K", v / SZ_K);
        else
                snprintf(buf, len, "%" PRIu64, v);
}

static void format_duration(uint64_t ms, char *buf, size_t len) {
        if (ms != 0 && ms % MS_H == 0)
                snprintf(buf, len, "%" PRIu64 "h", ms / MS_H);
        else if (ms != 0 && ms % MS_MIN == 0)
                snprintf(buf, len, "%" PRIu64 "min", ms / MS_MIN);
        else if (ms % MS_S == 0)
                snprintf(buf, len, "%" PRIu64 "s", ms / MS_S);
        else
                snprintf(buf, len, "%" PRIu64 "ms", ms);
}

/* Numbers in the syntax the parser reads back; strings are not copied
 * (key_text returns them directly). */
static void format_value(const sp_config *c, const config_key *k, char *buf, size_t len) {
        const void *p = key_cptr(c, k);

        switch (k->type) {
        case KEY_STRING: snprintf(buf, len, "%s", *(char *const *) p ? *(char *const *) p : ""); break;
        case KEY_MODE: snprintf(buf, len, "%04o", (unsigned) *(const mode_t *) p); break;
        case KEY_U32: snprintf(buf, len, "%" PRIu32, *(const uint32_t *) p); break;
        case KEY_SIZE: format_size(*(const uint64_t *) p, buf, len); break;
        case KEY_DURATION: format_duration(*(const uint64_t *) p, buf, len); break;
        case KEY_BOOL: snprintf(buf, len, "%s", *(const bool *) p ? "true" : "false"); break;
        }
}

static const char *key_text(const sp_config *c, const config_key *k, char *buf, size_t len) {
        if (k->type == KEY_STRING) {
                const char *v = *(char *const *) key_cptr(c, k);
                return v ? v : "";
        }
        format_value(c, k, buf, len);
        return buf;
}

void sp_config_visit(const sp_config_set *s, sp_config_visit_fn fn, void *userdata) {
        for (size_t i = 0; i < N_KEYS; i++) {
                char buf[32];
                fn(config_keys[i].section, config_keys[i].key, key_text(&s->cfg, &config_keys[i], buf, sizeof(buf)),
                   s->origins[i].source, s->origins[i].where, userdata);
        }
}

void sp_config_print(const sp_config_set *s, FILE *f) {
        const char *section = NULL;

        for (size_t i = 0; i < N_KEYS; i++) {
                const config_key *k = &config_keys[i];
                char buf[32];
                const char *v = key_text(&s->cfg, k, buf, sizeof(buf));

                if (!section || !streq(section, k->section))
                        fprintf(f, "%s[%s]\n", section ? "\n" : "", k->section);
                section = k->section;
                fprintf(f, "%s =%s%s  # %s\n", k->key, v[0] ? " " : "", v, origin_text(s, (int) i));
        }
        tenant_config_print(&s->tenants, f);
        for (size_t i = 0; i < s->cfg.n_templates; i++) {
                const sp_template_config *t = &s->cfg.templates[i];
                fprintf(f, "\n[template.%s]\npool_size = %u\n", t->name, t->pool_size);
                if (t->shared_with)
                        fprintf(f, "shared_with = %s\n", t->shared_with);
        }
}

void sp_config_print_example(FILE *f) {
        const char *section = NULL;

        fputs("# sandpool daemon configuration: " DEFAULT_CONFIG_PATH " (or sandpoold --config FILE).\n"
              "#\n"
              "# Every key is shown commented out with its default. Each key can also be set\n"
              "# by one environment variable, SANDPOOL_ and the key in capitals\n"
              "# (SANDPOOL_POOL_SIZE=20), which overrides this file.\n"
              "# Sizes take K, M or G (1K = 1024 bytes); durations take ms, s, min or h (a bare\n"
              "# number is seconds); booleans are true/false, yes/no, on/off, 1/0. Comments start\n"
              "# with '#' or ';' (after a blank when they follow a value). A key given twice is an\n"
              "# error, as are unknown sections and keys.\n",
              f);
        for (size_t i = 0; i < N_KEYS; i++) {
                const config_key *k = &config_keys[i];
                char env[64];

                if (!section || !streq(section, k->section))
                        fprintf(f, "\n[%s]\n", k->section);
                section = k->section;
                key_env_name(k, env, sizeof(env));
                fprintf(f, "# %s\n#%s =%s%s  # %s\n", k->help, k->key, k->def[0] ? " " : "", k->def, env);
        }
        fputs("\n# Templates (file only, one section each): the warm pool of a template and\n"
              "# who besides its owner may start from it (everyone, or a group's members).\n"
              "#   [template.agent-sdk]\n#   pool_size = 0\n#   shared_with = everyone\n", f);
}
