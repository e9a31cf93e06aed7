/* SPDX-License-Identifier: MIT */
/* Unit tests of supervisor/config.c: defaults, the file, the environment,
 * every error class with its exact text, the value parsers, and the
 * printed configuration loading back to the same values.
 *
 * Run with --print-example to write the example configuration
 * (systemd/sandpool.conf is generated that way, from a --prefix=/usr build). */

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "build-config.h"
#include "config.h"

static char *no_env[] = { NULL };

/* A configuration file's bytes in a memfd, loaded through its /proc path
 * (no temporary files to clean up). */
typedef struct memfile {
        int fd;
        char path[64];
} memfile;

static void memfile_done(memfile *m) {
        safe_close(m->fd);
}

static memfile memfile_new(const void *data, size_t len) {
        memfile m = { .fd = memfd_create("test-config", MFD_CLOEXEC) };
        assert_true(m.fd >= 0);
        assert_int_equal(write(m.fd, data, len), (ssize_t) len);
        snprintf(m.path, sizeof(m.path), "/proc/self/fd/%d", m.fd);
        return m;
}

static int load_text(sp_config_set *s, const char *text, char **envp, sp_error *err, char *path, size_t pathlen) {
        _cleanup_(memfile_done) memfile m = memfile_new(text, strlen(text));
        if (path)
                snprintf(path, pathlen, "%s", m.path);
        return sp_config_load(s, m.path, envp, err);
}

typedef struct visit_row {
        char section[16], key[32], value[256], where[128];
        sp_config_source source;
} visit_row;

typedef struct visit_list {
        visit_row rows[64];
        size_t n;
} visit_list;

static void collect(const char *section, const char *key, const char *value, sp_config_source source,
                    const char *where, void *userdata) {
        visit_list *l = userdata;
        assert_true(l->n < ELEMENTSOF(l->rows));
        visit_row *r = &l->rows[l->n++];
        snprintf(r->section, sizeof(r->section), "%s", section);
        snprintf(r->key, sizeof(r->key), "%s", key);
        snprintf(r->value, sizeof(r->value), "%s", value);
        snprintf(r->where, sizeof(r->where), "%s", where ? where : "");
        r->source = source;
}

static const visit_row *find_row(const visit_list *l, const char *key) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->rows[i].key, key))
                        return &l->rows[i];
        fail_msg("key %s not visited", key);
        return NULL;
}

/* ---- defaults ---- */

static void test_defaults(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};
        visit_list l = {};

        assert_int_equal(load_text(&s, "", no_env, &err, NULL, 0), 0);
        const sp_config *c = &s.cfg;
        assert_string_equal(c->socket, "/run/sandpool/sandpool.sock");
        assert_int_equal(c->socket_mode, 0660);
        assert_string_equal(c->socket_group, "sandpool");
        assert_string_equal(c->admin_group, "sandpool-admin");
        assert_string_equal(c->state_dir, "/var/lib/sandpool");
        assert_null(c->cgroup_parent);
        assert_string_equal(c->cgroup_mode, "auto");
        assert_int_equal(c->id_base, 1000000000u);
        assert_string_equal(c->rootfs, "/var/lib/sandpool/images/default");
        assert_string_equal(c->seccomp_policy, SANDPOOL_POLICYDIR "/default.policy");
        assert_int_equal(c->pool_size, 10);
        assert_int_equal(c->min_pool_size, 3);
        assert_int_equal(c->max_pool_size, 80);
        assert_true(c->aggressive_cleanup);
        assert_int_equal(c->container_idle_timeout_ms, 5 * 60 * 1000);
        assert_int_equal(c->memory_limit, 256 << 20);
        assert_int_equal(c->cpu_limit, 25);
        assert_int_equal(c->pids_limit, 256);
        assert_int_equal(c->disk_limit, 512 << 20);
        assert_int_equal(c->command_timeout_ms, 30000);
        assert_int_equal(c->max_output, 1 << 20);
        assert_int_equal(c->max_upload, 64 << 20);
        assert_int_equal(c->command_buffer, 1 << 20);
        assert_int_equal(c->max_commands, 128);
        assert_int_equal(c->command_buffer_total, 16 << 20);
        assert_int_equal(c->session_timeout_ms, 15 * 60 * 1000);
        assert_int_equal(c->session_idle_timeout_ms, 5 * 60 * 1000);
        assert_int_equal(c->max_sessions_per_uid, 0);
        assert_int_equal(c->max_keyed_sessions_per_uid, 16);
        assert_int_equal(c->max_keyed_sessions, 0);
        assert_true(c->records_enabled);
        assert_int_equal(c->records_retention_days, 30);
        assert_int_equal(c->records_max_rows, 1000000);
        assert_int_equal(c->records_flush_interval_ms, 100);

        assert_int_equal(c->template_max_size, 1 << 30);
        assert_int_equal(c->n_templates, 0);

        sp_config_visit(&s, collect, &l);
        assert_int_equal(l.n, 48);
        for (size_t i = 0; i < l.n; i++) {
                assert_int_equal(l.rows[i].source, SP_SOURCE_DEFAULT);
                assert_string_equal(l.rows[i].where, "");
                assert_null(s.origins[i].where);
        }
        /* Every key has its own variable: no two keys share a name. */
        for (size_t i = 0; i < l.n; i++)
                for (size_t j = i + 1; j < l.n; j++)
                        assert_string_not_equal(l.rows[i].key, l.rows[j].key);
}

static void test_default_path(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};
        const char *p = SANDPOOL_SYSCONFDIR "/sandpool/sandpool.conf";

        if (access(p, F_OK) == 0)
                skip(); /* an installed file would change the answer */
        assert_int_equal(sp_config_load(&s, NULL, no_env, &err), 0);
        assert_int_equal(s.cfg.pool_size, 10);
}

static void test_missing_explicit_file(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};

        assert_int_equal(sp_config_load(&s, "/nonexistent/sandpool.conf", no_env, &err), -ENOENT);
        assert_string_equal(err.message, "/nonexistent/sandpool.conf: cannot open configuration: No such file or directory");
        assert_null(s.origins);
        /* A directory is not a configuration either. */
        assert_int_equal(sp_config_load(&s, "/", no_env, &err), -EISDIR);
        assert_string_equal(err.message, "/: cannot read configuration: Is a directory");
}

/* ---- the file ---- */

static void test_file(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};
        char path[64], where[80];
        const char *text =
                "\xEF\xBB\xBF# sandpool test configuration\n"   /* 1: BOM, comment */
                "; another comment\n"                          /* 2 */
                "\n"                                           /* 3 */
                "[server]\n"                                   /* 4 */
                "socket = /tmp/sp test.sock\n"                 /* 5: blank inside a value */
                "  socket_mode=0600   \n"                      /* 6: indented, no blanks */
                "\tcgroup_parent: /sandpool.test\n"            /* 7: ':' delimiter, tab */
                "cgroup_mode = v1  # hybrid host\n"            /* 8: '#' comment */
                "[pool]\n"                                     /* 9 */
                "pool_size = 20 ; inline\n"                    /* 10: ';' comment */
                "max_pool_size = 100\n"                        /* 11 */
                "aggressive_cleanup = off\r\n"                 /* 12: CRLF */
                "container_idle_timeout = 90s\n"               /* 13 */
                "[limits]\n"                                   /* 14 */
                "memory_limit = 1G\n"                          /* 15 */
                "disk_limit = 4096K\n"                         /* 16 */
                "command_timeout = 1500ms\n"                   /* 17 */
                "max_output = 12345\n"                         /* 18 */
                "[sessions]\n"                                 /* 19 */
                "session_timeout = 2h\n"                       /* 20 */
                "session_idle_timeout = 120\n"                 /* 21: bare seconds */
                "[pool]\n"                                     /* 22: a section may reopen */
                "min_pool_size = 5\n";                         /* 23 */

        assert_int_equal(load_text(&s, text, no_env, &err, path, sizeof(path)), 0);
        assert_string_equal(s.cfg.socket, "/tmp/sp test.sock");
        assert_int_equal(s.cfg.socket_mode, 0600);
        assert_string_equal(s.cfg.cgroup_parent, "/sandpool.test");
        assert_string_equal(s.cfg.cgroup_mode, "v1");
        assert_int_equal(s.cfg.pool_size, 20);
        assert_int_equal(s.cfg.min_pool_size, 5);
        assert_int_equal(s.cfg.max_pool_size, 100);
        assert_false(s.cfg.aggressive_cleanup);
        assert_int_equal(s.cfg.container_idle_timeout_ms, 90000);
        assert_int_equal(s.cfg.memory_limit, UINT64_C(1) << 30);
        assert_int_equal(s.cfg.disk_limit, 4096 * 1024);
        assert_int_equal(s.cfg.command_timeout_ms, 1500);
        assert_int_equal(s.cfg.max_output, 12345);
        assert_int_equal(s.cfg.session_timeout_ms, 2 * 3600 * 1000);
        assert_int_equal(s.cfg.session_idle_timeout_ms, 120000);

        visit_list l = {};
        sp_config_visit(&s, collect, &l);
        snprintf(where, sizeof(where), "%s:6", path);
        assert_string_equal(find_row(&l, "socket_mode")->where, where);
        assert_int_equal(find_row(&l, "socket_mode")->source, SP_SOURCE_FILE);
        snprintf(where, sizeof(where), "%s:23", path);
        assert_string_equal(find_row(&l, "min_pool_size")->where, where);
        assert_string_equal(find_row(&l, "min_pool_size")->value, "5");
        assert_string_equal(find_row(&l, "container_idle_timeout")->value, "90s");
        assert_string_equal(find_row(&l, "command_timeout")->value, "1500ms");
        assert_string_equal(find_row(&l, "disk_limit")->value, "4M");
        assert_string_equal(find_row(&l, "session_idle_timeout")->value, "2min");
        assert_string_equal(find_row(&l, "aggressive_cleanup")->value, "false");
        assert_int_equal(find_row(&l, "pids_limit")->source, SP_SOURCE_DEFAULT);
}

/* Each error class, with the exact text an operator reads. "@" in the
 * expected text stands for the file's path. */
static const struct {
        const char *text;
        int code;
        const char *message;
} file_errors[] = {
        { "[pool]\npool_size = ten\n", -EINVAL, "@:2: [pool] pool_size: not a number: 'ten'" },
        { "[pools]\npool_size = 1\n", -EINVAL, "@:1: unknown section [pools]" },
        { "\n\n[bogus]\n", -EINVAL, "@:3: unknown section [bogus]" },
        { "[pool]\npool_szie = 1\n", -EINVAL, "@:2: [pool] pool_szie: unknown key" },
        { "[server]\npool_size = 1\n", -EINVAL, "@:2: [server] pool_size: unknown key (it belongs in [pool])" },
        { "pool_size = 1\n", -EINVAL, "@:1: pool_size: key outside of any section" },
        { "[pool\n", -EINVAL, "@:1: syntax error: missing ']' in section header" },
        { "[pool] x\n", -EINVAL, "@:1: syntax error: text after section header" },
        { "[pool]\npool_size\n", -EINVAL, "@:2: syntax error: expected 'key = value' or '[section]': 'pool_size'" },
        { "[pool]\npool_size = 4\n# c\npool_size = 5\n", -EINVAL,
          "@:4: [pool] pool_size: duplicate key (already set on line 2)" },
        { "[limits]\nmemory_limit = 1000000000G\n", -ERANGE, "@:2: [limits] memory_limit: out of range: '1000000000G'" },
        { "[limits]\nmemory_limit = 99999999999999999999999\n", -ERANGE,
          "@:2: [limits] memory_limit: out of range: '99999999999999999999999'" },
        { "[limits]\npids_limit = 4294967296\n", -ERANGE, "@:2: [limits] pids_limit: out of range: '4294967296'" },
        { "[limits]\nmemory_limit = 0\n", -EINVAL, "@:2: [limits] memory_limit: must be at least 8M" },
        { "[limits]\nmemory_limit = 7M\n", -EINVAL, "@:2: [limits] memory_limit: must be at least 8M" },
        { "[limits]\nmemory_limit = 1.5G\n", -EINVAL,
          "@:2: [limits] memory_limit: not a size: '1.5G' (a whole number with an optional K, M or G)" },
        { "[limits]\nmemory_limit = -1\n", -EINVAL,
          "@:2: [limits] memory_limit: not a size: '-1' (a whole number with an optional K, M or G)" },
        { "[limits]\nmemory_limit =\n", -EINVAL,
          "@:2: [limits] memory_limit: not a size: '' (a whole number with an optional K, M or G)" },
        { "[limits]\ncpu_limit = 0\n", -EINVAL, "@:2: [limits] cpu_limit: must be at least 1" },
        { "[limits]\ncommand_timeout = 0\n", -EINVAL, "@:2: [limits] command_timeout: must be at least 1ms" },
        { "[limits]\ncommand_timeout = 5m\n", -EINVAL,
          "@:2: [limits] command_timeout: not a duration: '5m' (a whole number with ms, s, min or h)" },
        { "[sessions]\nsession_timeout = 0min\n", -EINVAL, "@:2: [sessions] session_timeout: must be at least 1ms" },
        { "[pool]\naggressive_cleanup = maybe\n", -EINVAL,
          "@:2: [pool] aggressive_cleanup: not a boolean: 'maybe' (true/false, yes/no, on/off, 1/0)" },
        { "[server]\nsocket_mode = 0889\n", -EINVAL, "@:2: [server] socket_mode: not an octal mode: '0889'" },
        { "[server]\nsocket_mode = 4755\n", -EINVAL, "@:2: [server] socket_mode: must be at most 0777" },
        { "[server]\nsocket = run/s.sock\n", -EINVAL, "@:2: [server] socket: not an absolute path" },
        { "[server]\nsocket = /tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
          -EINVAL, "@:2: [server] socket: socket path longer than 107 bytes" },
        { "[server]\nsocket_group = bad group\n", -EINVAL, "@:2: [server] socket_group: not a valid group name: 'bad group'" },
        { "[server]\ncgroup_mode = v3\n", -EINVAL, "@:2: [server] cgroup_mode: must be auto, v2 or v1" },
        { "[server]\ncgroup_parent = /a/../../b\n", -EINVAL,
          "@:2: [server] cgroup_parent: '..' is not allowed in a cgroup path" },
        { "[server]\nstate_dir =\n", -EINVAL, "@:2: [server] state_dir: empty value" },
        { "[server]\nid_base = 0\n", -EINVAL, "@:2: [server] id_base: must be at least 65536" },
        { "[server]\nid_base = 4290000000\n", -ERANGE,
          "@:2: [server] id_base: id_base 4290000000 + 131072 ids for each of max_pool_size 80 sandboxes passes 4294967295" },
        { "[images]\nrootfs = /a\x1b[31m\n", -EINVAL, "@:2: [images] rootfs: control character in value: '/a\\x1b[31m'" },
        /* two explicit values that contradict each other (one alone is
         * followed by the default: test_defaults_follow) */
        { "[pool]\npool_size = 10\nmin_pool_size = 12\n", -EINVAL,
          "@:3: [pool] min_pool_size: 12 is more than pool_size 10 (@:2)" },
        { "[pool]\nmin_pool_size = 3\npool_size = 2\n", -EINVAL,
          "@:3: [pool] pool_size: 2 is less than min_pool_size 3 (@:2)" },
        { "[pool]\nmax_pool_size = 80\npool_size = 81\n", -EINVAL,
          "@:3: [pool] pool_size: 81 is more than max_pool_size 80 (@:2)" },
        { "[pool]\nmin_pool_size = 50\npool_size = 60\nmax_pool_size = 40\n", -EINVAL,
          "@:4: [pool] max_pool_size: 40 is less than min_pool_size 50 (@:2)" },
        { "[pool]\nmax_pool_size = 0\n", -EINVAL, "@:2: [pool] max_pool_size: must be at least 1" },
        { "[limits]\npids_limit = 1\n", -EINVAL, "@:2: [limits] pids_limit: must be at least 2" },
        { "[limits]\ndisk_limit = 0\n", -EINVAL, "@:2: [limits] disk_limit: must be at least 1M" },
        { "[pool]\npool_size = 1\0 = 2\n", -EINVAL, "@:2: NUL byte in line" },
        { "[images]\nrootfs = /caf\xc3\xa9/\xe2\x82\xac\n[server]\nstate_dir = /\xc3\n", -EINVAL,
          "@:4: [server] state_dir: not valid UTF-8: '/\\xc3'" },
        { "[server]\nstate_dir = /\xc0\xaf\n", -EINVAL, "@:2: [server] state_dir: not valid UTF-8: '/\\xc0\\xaf'" },
        { "[server]\nstate_dir = /\xed\xa0\x80\n", -EINVAL,
          "@:2: [server] state_dir: not valid UTF-8: '/\\xed\\xa0\\x80'" },
};

static void replace_at(const char *tmpl, const char *path, char *out, size_t len) {
        size_t o = 0;
        for (const char *p = tmpl; *p && o + 1 < len; p++) {
                if (*p == '@') {
                        o += (size_t) snprintf(out + o, len - o, "%s", path);
                        continue;
                }
                out[o++] = *p;
        }
        out[o] = '\0';
}

static void test_file_errors(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(file_errors); i++) {
                _cleanup_(sp_config_set_done) sp_config_set s = {};
                sp_error err = {};
                char path[64], expect[512];
                /* The NUL case needs the length of the whole literal. */
                size_t len = strlen(file_errors[i].text);
                if (strstr(file_errors[i].message, "NUL"))
                        len += 1 + strlen(file_errors[i].text + len + 1);
                _cleanup_(memfile_done) memfile m = memfile_new(file_errors[i].text, len);

                snprintf(path, sizeof(path), "%s", m.path);
                int r = sp_config_load(&s, m.path, no_env, &err);
                replace_at(file_errors[i].message, path, expect, sizeof(expect));
                if (r != file_errors[i].code || !streq(err.message, expect))
                        fail_msg("case %zu: got %d '%s', expected %d '%s'", i, r, err.message, file_errors[i].code,
                                 expect);
                assert_int_equal(err.code, r);
                assert_null(s.origins); /* nothing half-filled on failure */
        }
}

/* [tier.NAME] and [tenants]: values, the order of the mappings, the
 * default tier, errors with file and line, and --print-config's text
 * loading back to the same tiers. */
static char *print_to_string(const sp_config_set *s);

static void test_tenants(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {}, back = {};
        _cleanup_free_ char *out = NULL;
        sp_error err = {};
        char path[64], msg[256];
        static const char text[] =
                "[tier.free]\nconcurrent_sessions = 2\ncommands_per_day = 10\nmemory_limit = 64M\n"
                "command_timeout = 5s\n"
                "[tier.pro]\nshare = 4\ncpu_seconds_per_day = 3600\n"
                "[tenants]\ndefault_tier = free\nuid.1000 = pro\ngid.2000 = pro\nuid.1001 = default\n";

        assert_int_equal(load_text(&s, text, no_env, &err, NULL, 0), 0);
        const tenant_config *tc = &s.tenants;
        assert_int_equal(tc->n_tiers, 2);
        const tenant_tier *free_t = tenant_config_tier_of(tc, 5, 5), *pro = tenant_config_tier_of(tc, 1000, 5);
        assert_string_equal(free_t->name, "free");
        assert_int_equal(free_t->concurrent_sessions, 2);
        assert_int_equal(free_t->commands_per_day, 10);
        assert_int_equal(free_t->memory_limit, 64 << 20);
        assert_int_equal(free_t->command_timeout_ms, 5000);
        assert_int_equal(free_t->share, 1);
        assert_string_equal(pro->name, "pro");
        assert_int_equal(pro->share, 4);
        assert_int_equal(pro->cpu_seconds_per_day, 3600);
        /* by primary gid; the uid mapping wins over it; the built-in unlimited tier */
        assert_string_equal(tenant_config_tier_of(tc, 7, 2000)->name, "pro");
        assert_string_equal(tenant_config_tier_of(tc, 1001, 2000)->name, "default");
        assert_int_equal(tenant_config_tier_of(tc, 1001, 2000)->concurrent_sessions, 0);
        out = print_to_string(&s);
        if (load_text(&back, out, no_env, &err, NULL, 0) != 0)
                fail_msg("printed tenants do not load: %s\n%s", err.message, out);
        assert_int_equal(back.tenants.n_tiers, 2);
        assert_int_equal(tenant_config_tier_of(&back.tenants, 1000, 0)->share, 4);
        assert_int_equal(tenant_config_tier_of(&back.tenants, 5, 5)->command_timeout_ms, 5000);

        static const struct {
                const char *text, *message;
        } bad[] = {
                {"[tenants]\ndefault_tier = gold\n", "@:2: [tenants] default_tier: unknown tier 'gold'"},
                {"[tier.a]\nshare = 1\n[tenants]\nuid.5 = b\n", "@:4: [tenants] mapping to an unknown tier 'b'"},
                {"[tenants]\nuid.x5 = default\n", "@:2: [tenants] uid.x5: malformed mapping (uid.NUMBER)"},
                {"[tenants]\nuid.5 = default\nuid.5 = default\n",
                 "@:3: [tenants] uid.5: duplicate mapping (also @:2)"},
                {"[tier.a]\nshare = 0\n", "@:2: [tier.a] share: from 1 to 1000"},
                {"[tier.a]\nmemory_limit = 1M\n", "@:2: [tier.a] memory_limit: at least 8M (or 0)"},
                {"[tier.A]\nshare = 1\n", "@:1: unknown section [tier.A]"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(sp_config_set_done) sp_config_set b = {};
                assert_true(load_text(&b, bad[i].text, no_env, &err, path, sizeof(path)) < 0);
                replace_at(bad[i].message, path, msg, sizeof(msg));
                if (!streq(err.message, msg))
                        fail_msg("case %zu: got '%s', expected '%s'", i, err.message, msg);
        }
}

static void test_cpu_limit_machine(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};
        long ncpu = sysconf(_SC_NPROCESSORS_CONF);
        char text[128];

        snprintf(text, sizeof(text), "[limits]\ncpu_limit = %ld\n", 100 * ncpu);
        assert_int_equal(load_text(&s, text, no_env, &err, NULL, 0), 0);
        assert_int_equal(s.cfg.cpu_limit, 100 * ncpu);
        sp_config_set_done(&s);

        snprintf(text, sizeof(text), "[limits]\ncpu_limit = %ld\n", 100 * ncpu + 1);
        assert_int_equal(load_text(&s, text, no_env, &err, NULL, 0), -EINVAL);
        assert_non_null(strstr(err.message, "[limits] cpu_limit: "));
        assert_non_null(strstr(err.message, "CPUs of this machine"));
}

static void test_long_line(void **state) {
        /* inih reads lines into a 200-byte buffer: 198 bytes of text fit,
         * one more is refused rather than split into two lines. */
        for (size_t k = 187; k <= 190; k++) {
                _cleanup_(sp_config_set_done) sp_config_set s = {};
                sp_error err = {};
                char text[1024] = "[images]\nrootfs = /";
                size_t o = strlen(text);

                memset(text + o, 'a', k);
                memcpy(text + o + k, "\n", 2);
                int r = load_text(&s, text, no_env, &err, NULL, 0);
                if (10 + k <= 198) {
                        assert_int_equal(r, 0);
                        assert_int_equal(strlen(s.cfg.rootfs), 1 + k);
                } else {
                        assert_int_equal(r, -EINVAL);
                        assert_non_null(strstr(err.message, ":2: line too long (at most 198 bytes)"));
                }
        }

        /* A comment may be as long as it likes, even past the read buffer;
         * a key line past it is refused, and reading stays bounded. */
        size_t big = 3 << 20;
        _cleanup_free_ char *text = malloc(big + 64);
        assert_non_null(text);
        for (int comment = 1; comment >= 0; comment--) {
                _cleanup_(sp_config_set_done) sp_config_set s = {};
                sp_error err = {};
                const char *head = comment ? "[pool]\n  # " : "[pool]\npool_size = 1";
                size_t o = strlen(head);
                memcpy(text, head, o);
                memset(text + o, comment ? 'c' : '0', big);
                strcpy(text + o + big, "\npool_size = 4\n");
                int r = load_text(&s, text, no_env, &err, NULL, 0);
                if (comment) {
                        assert_int_equal(r, 0);
                        assert_int_equal(s.cfg.pool_size, 4);
                } else {
                        assert_int_equal(r, -EINVAL);
                        assert_non_null(strstr(err.message, ":2: line too long (at most 198 bytes)"));
                }
        }
}

/* ---- the environment ---- */

static void test_env_overrides_file(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};
        char path[64], where[80];
        char *env[] = {
                "PATH=/usr/bin",
                "SANDPOOL_POOL_SIZE=20",
                "SANDPOOL_ROOTFS=/srv/img",
                "SANDPOOL_SOCKET=/tmp/s.sock",
                "SANDPOOL_MEMORY_LIMIT=512M",
                "SANDPOOL_BUILD_DIR=/whatever", /* unknown SANDPOOL_* variables are not ours: ignored */
                "SANDPOOL_POOL_SIZE=30",         /* a second copy: the first wins, as getenv() */
                "SANDPOOL_CGROUP_PARENT=",       /* empty: unset */
                NULL,
        };

        assert_int_equal(load_text(&s,
                                   "[pool]\npool_size = 15\nmax_pool_size = 90\n"
                                   "[server]\ncgroup_parent = /x\n",
                                   env, &err, path, sizeof(path)),
                         0);
        assert_int_equal(s.cfg.pool_size, 20);
        assert_int_equal(s.cfg.max_pool_size, 90);
        assert_string_equal(s.cfg.rootfs, "/srv/img");
        assert_string_equal(s.cfg.socket, "/tmp/s.sock");
        assert_int_equal(s.cfg.memory_limit, 512 << 20);
        assert_null(s.cfg.cgroup_parent);

        /* precedence: each value says where it came from */
        visit_list l = {};
        sp_config_visit(&s, collect, &l);
        assert_int_equal(find_row(&l, "pool_size")->source, SP_SOURCE_ENV);
        assert_string_equal(find_row(&l, "pool_size")->where, "SANDPOOL_POOL_SIZE");
        assert_int_equal(find_row(&l, "max_pool_size")->source, SP_SOURCE_FILE);
        snprintf(where, sizeof(where), "%s:3", path);
        assert_string_equal(find_row(&l, "max_pool_size")->where, where);
        assert_int_equal(find_row(&l, "min_pool_size")->source, SP_SOURCE_DEFAULT);
        assert_int_equal(find_row(&l, "cgroup_parent")->source, SP_SOURCE_ENV);
        assert_string_equal(find_row(&l, "cgroup_parent")->value, "");
        assert_string_equal(sp_config_source_to_string(SP_SOURCE_ENV), "env");
        assert_string_equal(sp_config_source_to_string(SP_SOURCE_FILE), "file");
        assert_string_equal(sp_config_source_to_string(SP_SOURCE_DEFAULT), "default");
}

static void test_env_errors(void **state) {
        static const struct {
                char *var;
                int code;
                const char *message;
        } cases[] = {
                { "SANDPOOL_POOL_SIZE=ten", -EINVAL, "SANDPOOL_POOL_SIZE: [pool] pool_size: not a number: 'ten'" },
                { "SANDPOOL_POOL_SIZE= 20", -EINVAL, "SANDPOOL_POOL_SIZE: [pool] pool_size: not a number: ' 20'" },
                { "SANDPOOL_POOL_SIZE=", -EINVAL, "SANDPOOL_POOL_SIZE: [pool] pool_size: not a number: ''" },
                { "SANDPOOL_MAX_UPLOAD=1000000000G", -ERANGE,
                  "SANDPOOL_MAX_UPLOAD: [limits] max_upload: out of range: '1000000000G'" },
                { "SANDPOOL_MAX_POOL_SIZE=0", -EINVAL, "SANDPOOL_MAX_POOL_SIZE: [pool] max_pool_size: must be at least 1" },
                { "SANDPOOL_SOCKET=/tmp/a # b", -EINVAL,
                  "SANDPOOL_SOCKET: [server] socket: '#' after a blank starts a comment: '/tmp/a # b'" },
                { "SANDPOOL_ROOTFS=/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", -EINVAL,
                  "SANDPOOL_ROOTFS: [images] rootfs: value too long (at most 189 bytes for this key)" },
                { "SANDPOOL_ADMIN_GROUP=wheel\n", -EINVAL,
                  "SANDPOOL_ADMIN_GROUP: [server] admin_group: control character in value: 'wheel\\x0a'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(sp_config_set_done) sp_config_set s = {};
                sp_error err = {};
                char *env[] = { cases[i].var, NULL };

                int r = load_text(&s, "", env, &err, NULL, 0);
                if (r != cases[i].code || !streq(err.message, cases[i].message))
                        fail_msg("case %zu: got %d '%s', expected %d '%s'", i, r, err.message, cases[i].code,
                                 cases[i].message);
        }
}

/* The later source is blamed for a broken combination. */
static void test_combination_blame(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};
        char path[64], expect[256];
        char *env[] = { "SANDPOOL_MAX_POOL_SIZE=4", NULL };

        assert_int_equal(load_text(&s, "[pool]\npool_size = 5\n", env, &err, path, sizeof(path)), -EINVAL);
        replace_at("SANDPOOL_MAX_POOL_SIZE: [pool] max_pool_size: 4 is less than pool_size 5 (@:2)", path, expect,
                   sizeof(expect));
        assert_string_equal(err.message, expect);
}

/* A default the user did not set follows the value they did set, with a
 * notice; the origin stays "default" and says what it followed. */
static void test_defaults_follow(void **state) {
        static const struct {
                const char *file;
                char *var;
                uint32_t min, pool, max;
                const char *notices;
        } cases[] = {
                { "", "SANDPOOL_POOL_SIZE=2", 2, 2, 80,
                  "min_pool_size: default 3 lowered to 2 to follow pool_size 2 (SANDPOOL_POOL_SIZE)\n" },
                { "[pool]\npool_size = 0\n", NULL, 0, 0, 80,
                  "min_pool_size: default 3 lowered to 0 to follow pool_size 0 (@:2)\n" },
                { "", "SANDPOOL_MIN_POOL_SIZE=12", 12, 12, 80,
                  "pool_size: default 10 raised to 12 to follow min_pool_size 12 (SANDPOOL_MIN_POOL_SIZE)\n" },
                { "", "SANDPOOL_MAX_POOL_SIZE=2", 2, 2, 2,
                  "pool_size: default 10 lowered to 2 to follow max_pool_size 2 (SANDPOOL_MAX_POOL_SIZE)\n"
                  "min_pool_size: default 3 lowered to 2 to follow max_pool_size 2 (SANDPOOL_MAX_POOL_SIZE)\n" },
                { "", "SANDPOOL_POOL_SIZE=5", 3, 5, 80, NULL }, /* nothing to follow */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(sp_config_set_done) sp_config_set s = {};
                sp_error err = {};
                char *env[] = { cases[i].var, NULL };
                char path[64], expect[512];

                if (load_text(&s, cases[i].file, env, &err, path, sizeof(path)) != 0)
                        fail_msg("case %zu: %s", i, err.message);
                assert_int_equal(s.cfg.min_pool_size, cases[i].min);
                assert_int_equal(s.cfg.pool_size, cases[i].pool);
                assert_int_equal(s.cfg.max_pool_size, cases[i].max);
                if (!cases[i].notices) {
                        assert_null(s.notices);
                        continue;
                }
                replace_at(cases[i].notices, path, expect, sizeof(expect));
                assert_non_null(s.notices);
                assert_string_equal(s.notices, expect);
        }

        /* the followed default says so where --print-config and /v1/config look */
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};
        visit_list l = {};
        char *env[] = { "SANDPOOL_POOL_SIZE=2", NULL };
        assert_int_equal(load_text(&s, "", env, &err, NULL, 0), 0);
        sp_config_visit(&s, collect, &l);
        assert_int_equal(find_row(&l, "min_pool_size")->source, SP_SOURCE_DEFAULT);
        assert_string_equal(find_row(&l, "min_pool_size")->value, "2");
        assert_string_equal(find_row(&l, "min_pool_size")->where,
                            "default 3, set to follow pool_size (SANDPOOL_POOL_SIZE)");

        /* on top of a loaded set (--set): the same rule */
        assert_int_equal(sp_config_set_value(&s, "pool_size", "1", SP_SOURCE_CMDLINE, "--set", &err), 0);
        assert_int_equal(s.cfg.min_pool_size, 1);
        /* two explicit values stay an error */
        assert_int_equal(sp_config_set_value(&s, "min_pool_size", "2", SP_SOURCE_CMDLINE, "--set", &err), -EINVAL);
        assert_string_equal(err.message, "--set: [pool] min_pool_size: 2 is more than pool_size 1 (--set)");
}

/* The build tree's daemon takes the source tree's policy, any other binary
 * the installed one. */
static void test_default_policy(void **state) {
        assert_string_equal(sp_config_default_policy(SANDPOOL_BUILD_DAEMON),
                            SANDPOOL_SOURCE_POLICYDIR "/default.policy");
        assert_string_equal(sp_config_default_policy("/usr/sbin/sandpoold"), SANDPOOL_POLICYDIR "/default.policy");
        assert_string_equal(sp_config_default_policy(SANDPOOL_BUILD_DAEMON "x"), SANDPOOL_POLICYDIR "/default.policy");
        assert_string_equal(sp_config_default_policy(NULL), SANDPOOL_POLICYDIR "/default.policy");
        /* this test binary is not the daemon: the installed default */
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};
        assert_int_equal(load_text(&s, "", no_env, &err, NULL, 0), 0);
        assert_string_equal(s.cfg.seccomp_policy, SANDPOOL_POLICYDIR "/default.policy");
}

/* A value on top of a loaded set, as from the command line. */
static void test_set_value(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};
        visit_list l = {};

        assert_int_equal(load_text(&s, "", no_env, &err, NULL, 0), 0);
        assert_int_equal(sp_config_set_value(&s, "pool.pool_size", "7", SP_SOURCE_CMDLINE, "--set", &err), 0);
        assert_int_equal(sp_config_set_value(&s, "cgroup_parent", "/test-42", SP_SOURCE_CMDLINE, "--set", &err), 0);
        assert_int_equal(s.cfg.pool_size, 7);
        assert_string_equal(s.cfg.cgroup_parent, "/test-42");
        sp_config_visit(&s, collect, &l);
        assert_int_equal(find_row(&l, "pool_size")->source, SP_SOURCE_CMDLINE);
        assert_string_equal(find_row(&l, "pool_size")->where, "--set");

        assert_int_equal(sp_config_set_value(&s, "limits.pool_size", "7", SP_SOURCE_CMDLINE, "--set", &err), -EINVAL);
        assert_string_equal(err.message, "--set: unknown key 'limits.pool_size'");
        assert_int_equal(sp_config_set_value(&s, "nope", "7", SP_SOURCE_CMDLINE, "--set", &err), -EINVAL);
        assert_string_equal(err.message, "--set: unknown key 'nope'");
        assert_int_equal(sp_config_set_value(&s, "memory_limit", "1k", SP_SOURCE_CMDLINE, "--set", &err), -EINVAL);
        assert_string_equal(err.message, "--set: [limits] memory_limit: must be at least 8M");
        assert_int_equal(sp_config_set_value(&s, "min_pool_size", "8", SP_SOURCE_CMDLINE, "--set", &err), -EINVAL);
        assert_string_equal(err.message, "--set: [pool] min_pool_size: 8 is more than pool_size 7 (--set)");
}

/* ---- parsers ---- */

static void test_parse_size(void **state) {
        static const struct {
                const char *in;
                int r;
                uint64_t v;
        } cases[] = {
                { "0", 0, 0 },
                { "4096", 0, 4096 },
                { "512K", 0, 512 * 1024 },
                { "512k", 0, 512 * 1024 },
                { "256M", 0, 256 << 20 },
                { "1G", 0, 1 << 30 },
                { "007M", 0, 7 << 20 },
                { "8388607G", 0, UINT64_C(8388607) << 30 },
                { "9007199254740991", 0, (UINT64_C(1) << 53) - 1 },
                { "9007199254740992", -ERANGE, 0 },
                { "8388608G", -ERANGE, 0 },
                { "1000000000G", -ERANGE, 0 },
                { "18446744073709551616", -ERANGE, 0 },
                { "99999999999999999999999999999999999999G", -ERANGE, 0 },
                { "99999999999999999999999999999999999999X", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "G", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "1 M", -EINVAL, 0 },
                { "1.5G", -EINVAL, 0 },
                { "1MB", -EINVAL, 0 },
                { "1T", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
                { "1GG", -EINVAL, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 0xdead;
                int r = sp_parse_size(cases[i].in, &v);
                if (r != cases[i].r || (r == 0 && v != cases[i].v))
                        fail_msg("sp_parse_size('%s') = %d, %" PRIu64, cases[i].in, r, v);
                if (r < 0)
                        assert_int_equal(v, 0xdead); /* untouched on failure */
        }
        assert_int_equal(sp_parse_size(NULL, &(uint64_t) { 0 }), -EINVAL);
}

static void test_parse_duration(void **state) {
        static const struct {
                const char *in;
                int r;
                uint64_t v;
        } cases[] = {
                { "15", 0, 15000 },
                { "0", 0, 0 },
                { "250ms", 0, 250 },
                { "30s", 0, 30000 },
                { "5min", 0, 300000 },
                { "1h", 0, 3600000 },
                { "9007199254740991ms", 0, (UINT64_C(1) << 53) - 1 },
                { "9007199254740992ms", -ERANGE, 0 },
                { "2501999792h", 0, UINT64_C(2501999792) * 3600000 },
                { "2501999793h", -ERANGE, 0 },
                { "99999999999999999999999h", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "s", -EINVAL, 0 },
                { "-5s", -EINVAL, 0 },
                { " 5s", -EINVAL, 0 },
                { "5s ", -EINVAL, 0 },
                { "5 s", -EINVAL, 0 },
                { "5m", -EINVAL, 0 },
                { "5S", -EINVAL, 0 },
                { "1.5s", -EINVAL, 0 },
                { "1h30min", -EINVAL, 0 },
                { "5mins", -EINVAL, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 0xdead;
                int r = sp_parse_duration_ms(cases[i].in, &v);
                if (r != cases[i].r || (r == 0 && v != cases[i].v))
                        fail_msg("sp_parse_duration_ms('%s') = %d, %" PRIu64, cases[i].in, r, v);
        }
}

static void test_parse_bool(void **state) {
        static const char *const yes[] = { "1", "yes", "true", "on", "YES", "True", "oN" };
        static const char *const no[] = { "0", "no", "false", "off", "NO", "False", "OFF" };
        static const char *const bad[] = { "", " yes", "yes ", "y", "n", "2", "-1", "truee", "enabled" };
        bool b;

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                b = false;
                assert_int_equal(sp_parse_bool(yes[i], &b), 0);
                assert_true(b);
        }
        for (size_t i = 0; i < ELEMENTSOF(no); i++) {
                b = true;
                assert_int_equal(sp_parse_bool(no[i], &b), 0);
                assert_false(b);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(sp_parse_bool(bad[i], &b), -EINVAL);
}

/* ---- output ---- */

static char *print_to_string(const sp_config_set *s) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        sp_config_print(s, f);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void assert_same_values(const sp_config_set *a, const sp_config_set *b) {
        visit_list la = {}, lb = {};
        sp_config_visit(a, collect, &la);
        sp_config_visit(b, collect, &lb);
        assert_int_equal(la.n, lb.n);
        for (size_t i = 0; i < la.n; i++) {
                assert_string_equal(la.rows[i].key, lb.rows[i].key);
                assert_string_equal(la.rows[i].value, lb.rows[i].value);
        }
        assert_memory_equal(&a->cfg.socket_mode, &b->cfg.socket_mode, sizeof(mode_t));
        assert_int_equal(a->cfg.memory_limit, b->cfg.memory_limit);
        assert_int_equal(a->cfg.command_timeout_ms, b->cfg.command_timeout_ms);
}

static void test_print(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};
        char path[64], expect[128];
        char *env[] = { "SANDPOOL_POOL_SIZE=20", NULL };

        assert_int_equal(load_text(&s, "[pool]\n\nmax_pool_size = 90\n[limits]\nmax_output = 1536K\n", env, &err, path,
                                   sizeof(path)),
                         0);
        _cleanup_free_ char *out = print_to_string(&s);
        assert_non_null(strstr(out, "[server]\nsocket = /run/sandpool/sandpool.sock  # default\n"));
        assert_non_null(strstr(out, "socket_mode = 0660  # default\n"));
        assert_non_null(strstr(out, "cgroup_parent =  # default\n"));
        assert_non_null(strstr(out, "\n\n[pool]\npool_size = 20  # SANDPOOL_POOL_SIZE\n"));
        snprintf(expect, sizeof(expect), "max_pool_size = 90  # %s:3\n", path);
        assert_non_null(strstr(out, expect));
        snprintf(expect, sizeof(expect), "max_output = 1536K  # %s:5\n", path);
        assert_non_null(strstr(out, expect));
        assert_non_null(strstr(out, "container_idle_timeout = 5min  # default\n"));
        assert_non_null(strstr(out, "command_timeout = 30s  # default\n"));
        assert_non_null(strstr(out, "memory_limit = 256M  # default\n"));
        assert_non_null(strstr(out, "aggressive_cleanup = true  # default\n"));
}

/* What --print-config writes, loaded again, is the same configuration. */
static void test_round_trip(void **state) {
        static const char *const files[] = {
                "",
                "[server]\nsocket = /tmp/with space.sock\nsocket_mode = 0\ncgroup_parent = /a/b.c\ncgroup_mode = v2\n"
                "id_base = 65536\n[pool]\npool_size = 0\nmin_pool_size = 0\nmax_pool_size = 1\n"
                "aggressive_cleanup = no\ncontainer_idle_timeout = 3600001ms\n[limits]\nmemory_limit = 8388609\n"
                "cpu_limit = 1\npids_limit = 4194304\ndisk_limit = 1025K\ncommand_timeout = 61s\nmax_output = 1\n"
                "max_upload = 9007199254740991\n[sessions]\nsession_timeout = 9007199254740991ms\n"
                "session_idle_timeout = 24h\nmax_sessions_per_uid = 4294967295\n",
        };
        /* The longest value a key takes, written with the shorter ':' (found
         * by the fuzzer: printed as "key = value" it no longer fit a line). */
        char longest[256] = "[images]\nrootfs:/";
        size_t o = strlen(longest);
        memset(longest + o, 'x', 188);
        memcpy(longest + o + 188, "\n", 2);
        const char *all[ELEMENTSOF(files) + 1];
        memcpy(all, files, sizeof(files));
        all[ELEMENTSOF(files)] = longest;

        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                _cleanup_(sp_config_set_done) sp_config_set a = {}, b = {};
                sp_error err = {};
                char *env[] = { "SANDPOOL_STATE_DIR=/srv/state", "SANDPOOL_COMMAND_TIMEOUT=2500ms", NULL };

                if (load_text(&a, all[i], env, &err, NULL, 0) != 0)
                        fail_msg("case %zu does not load: %s", i, err.message);
                _cleanup_free_ char *out = print_to_string(&a);
                if (load_text(&b, out, no_env, &err, NULL, 0) != 0)
                        fail_msg("printed configuration does not load: %s\n%s", err.message, out);
                assert_same_values(&a, &b);
        }
}

/* systemd/sandpool.conf documents every key with its default: uncommented,
 * it loads, and gives exactly the defaults. */
/* [template.NAME]: a pool size and a sharing each, names checked. */
static void test_template_sections(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set s = {};
        sp_error err = {};

        assert_int_equal(load_text(&s, "[template.agent-sdk]\npool_size = 4\nshared_with = everyone\n"
                                       "[template.b]\npool_size = 0\n[pool]\npool_size = 2\n",
                                   no_env, &err, NULL, 0), 0);
        assert_int_equal(s.cfg.n_templates, 2);
        assert_string_equal(s.cfg.templates[0].name, "agent-sdk");
        assert_int_equal(s.cfg.templates[0].pool_size, 4);
        assert_string_equal(s.cfg.templates[0].shared_with, "everyone");
        assert_null(s.cfg.templates[1].shared_with);
        sp_config_set_done(&s);
        assert_int_equal(load_text(&s, "[template.Bad]\npool_size = 1\n", no_env, &err, NULL, 0), -EINVAL);
        assert_non_null(strstr(err.message, "unknown section"));
        assert_int_equal(load_text(&s, "[template.x]\nsize = 1\n", no_env, &err, NULL, 0), -EINVAL);
        assert_non_null(strstr(err.message, "unknown key"));
        assert_int_equal(load_text(&s, "[template.x]\npool_size = many\n", no_env, &err, NULL, 0), -EINVAL);
        assert_true(sp_template_name_is_valid("a.b_c-1"));
        assert_false(sp_template_name_is_valid(".hidden"));
        assert_false(sp_template_name_is_valid("a/b"));
        assert_false(sp_template_name_is_valid("012345678901234567890123456789012"));
}

static void test_example_file(void **state) {
        _cleanup_(sp_config_set_done) sp_config_set def = {}, ex = {};
        _cleanup_fclose_ FILE *f = fopen(SOURCE_ROOT "/systemd/sandpool.conf", "re");
        _cleanup_free_ char *line = NULL, *text = NULL;
        size_t cap = 0, len = 0, keys = 0;
        sp_error err = {};
        FILE *out;

        assert_non_null(f);
        out = open_memstream(&text, &len);
        assert_non_null(out);
        while (getline(&line, &cap, f) > 0) {
                /* "#key = value" lines are the keys; "# " lines are prose. */
                if (line[0] == '#' && line[1] != ' ' && line[1] != '\n' && strchr(line, '=')) {
                        /* the policy directory depends on the build's prefix */
                        if (strncmp(line, "#seccomp_policy = ", 18) == 0) {
                                assert_non_null(strstr(line, "/sandpool/policies/default.policy  # SANDPOOL_SECCOMP_POLICY\n"));
                                keys++;
                                continue;
                        }
                        fputs(line + 1, out);
                        keys++;
                } else if (line[0] != '#')
                        fputs(line, out);
        }
        assert_int_equal(fclose(out), 0);

        assert_int_equal(load_text(&def, "", no_env, &err, NULL, 0), 0);
        if (load_text(&ex, text, no_env, &err, NULL, 0) != 0)
                fail_msg("uncommented example does not load: %s", err.message);
        visit_list l = {};
        sp_config_visit(&ex, collect, &l);
        assert_int_equal(keys, l.n);
        for (size_t i = 0; i < l.n; i++)
                if (!streq(l.rows[i].key, "seccomp_policy"))
                        assert_int_equal(l.rows[i].source, SP_SOURCE_FILE);
        assert_same_values(&def, &ex);

        /* the generator writes the same keys */
        _cleanup_free_ char *gen = NULL;
        size_t glen = 0;
        out = open_memstream(&gen, &glen);
        sp_config_print_example(out);
        assert_int_equal(fclose(out), 0);
        for (size_t i = 0; i < l.n; i++) {
                char needle[64];
                snprintf(needle, sizeof(needle), "\n#%s = ", l.rows[i].key);
                assert_non_null(strstr(gen, needle));
        }

        /* ...and exactly the file in the tree, once the build's directories
         * are replaced by a packaged install's (--prefix=/usr): a changed
         * key table with a stale example fails here. */
        _cleanup_free_ char *want = NULL, *have = NULL;
        size_t wlen = 0, hlen = 0;
        static const char *const dirs[][2] = {
                { SANDPOOL_POLICYDIR "/", "/usr/share/sandpool/policies/" },
                { SANDPOOL_SYSCONFDIR "/sandpool/", "/etc/sandpool/" },
        };
        out = open_memstream(&want, &wlen);
        for (const char *p = gen; *p;) {
                bool hit = false;
                for (size_t i = 0; i < ELEMENTSOF(dirs) && !hit; i++)
                        if (strncmp(p, dirs[i][0], strlen(dirs[i][0])) == 0) {
                                fputs(dirs[i][1], out);
                                p += strlen(dirs[i][0]);
                                hit = true;
                        }
                if (!hit)
                        fputc(*p++, out);
        }
        assert_int_equal(fclose(out), 0);
        rewind(f);
        out = open_memstream(&have, &hlen);
        for (int c; (c = fgetc(f)) != EOF;)
                fputc(c, out);
        assert_int_equal(fclose(out), 0);
        if (!streq(want, have))
                fail_msg("systemd/sandpool.conf is stale: regenerate it with "
                         "'meson setup --prefix=/usr B && B/tests/test-config --print-example > systemd/sandpool.conf'");
}

/* Hostile bytes: nothing but a clean success or a clean error. */
static void test_hostile_input(void **state) {
        static const char alphabet[] = "[]=:#; \t\n\r\0\xff\xef\xbb\xbfpoolsize_0123456789KMGmsinh/.-";
        uint64_t x = 0x9e3779b97f4a7c15;

        for (int round = 0; round < 3000; round++) {
                char buf[512];
                size_t len = (size_t) (round % 400);
                for (size_t i = 0; i < len; i++) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        /* half the time a valid-looking prefix, to reach deeper states */
                        buf[i] = alphabet[x % (sizeof(alphabet) - 1)];
                }
                if (round % 2 && len > 8)
                        memcpy(buf, "[pool]\np", 8);
                _cleanup_(sp_config_set_done) sp_config_set s = {};
                sp_error err = {};
                _cleanup_(memfile_done) memfile m = memfile_new(buf, len);
                int r = sp_config_load(&s, m.path, no_env, &err);
                if (r < 0) {
                        assert_int_equal(err.code, r);
                        assert_true(strlen(err.message) > 0);
                        assert_null(s.origins);
                } else
                        assert_non_null(s.origins);
        }
}

int main(int argc, char **argv) {
        if (argc > 1 && streq(argv[1], "--print-example")) {
                sp_config_print_example(stdout);
                return fflush(stdout) == 0 ? 0 : 1;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_default_path),
                cmocka_unit_test(test_missing_explicit_file),
                cmocka_unit_test(test_file),
                cmocka_unit_test(test_file_errors),
                cmocka_unit_test(test_cpu_limit_machine),
                cmocka_unit_test(test_tenants),
                cmocka_unit_test(test_long_line),
                cmocka_unit_test(test_env_overrides_file),
                cmocka_unit_test(test_env_errors),
                cmocka_unit_test(test_combination_blame),
                cmocka_unit_test(test_set_value),
                cmocka_unit_test(test_defaults_follow),
                cmocka_unit_test(test_default_policy),
                cmocka_unit_test(test_parse_size),
                cmocka_unit_test(test_parse_duration),
                cmocka_unit_test(test_parse_bool),
                cmocka_unit_test(test_print),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_example_file),
                cmocka_unit_test(test_template_sections),
                cmocka_unit_test(test_hostile_input),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
