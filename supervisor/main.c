/* SPDX-License-Identifier: MIT */
/* sandpoold: parse the command line, load the configuration, set up the
 * runtime (mount namespace, cgroups, seccomp), serve, drain on SIGTERM. */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "egress.h"
#include "netpolicy.h"
#include "build-config.h"
#include "cgroup-scope.h"
#include "e2b.h"
#include "http.h"
#include "lifecycle.h"
#include "log.h"
#include "notify.h"
#include "pool.h"
#include "routes.h"
#include "template.h"
#include "paths.h"
#include "run.h"
#include "seccomp-cache.h"
#include "server.h"
#include "session.h"
#include "tenant.h"

/* Where the daemon's cgroups live on a v2 host (cgroup-scope.h): decided
 * once at start, undone at exit. */
static cgroup_placement placement;

/* Every connection costs one fd, every sandbox a few: 1000 idle clients
 * and 80 sandboxes must fit with room to spare. */
#define NOFILE_WANTED 65536

static void help(void) {
        printf("Usage: sandpoold [OPTIONS]\n"
               "       sandpoold run [OPTIONS] -- CMD [ARGS...]   (one command, see run --help)\n"
               "\n"
               "The sandpool supervisor: serves the sandbox API on a Unix socket.\n"
               "\n"
               "  --config FILE         configuration file (default %s/sandpool/sandpool.conf)\n"
               "  --print-config        print the effective configuration and where each value\n"
               "                        came from, then exit\n"
               "  --cgroup-subdir NAME  directory below cgroup_parent that holds the sandboxes\n"
               "                        (default \"sandboxes\"; tests give each daemon its own)\n"
               "  --debug               log debug messages\n"
               "  --version             print the version\n"
               "  -h, --help            this text\n",
               SANDPOOL_SYSCONFDIR);
}

typedef struct args {
        const char *config;
        const char *cgroup_subdir;
        bool print_config;
} args;

static int parse_args(int argc, char **argv, args *a) {
        enum { ARG_CONFIG = 0x100, ARG_PRINT, ARG_SUBDIR, ARG_DEBUG, ARG_VERSION };
        static const struct option opts[] = {
                { "config", required_argument, NULL, ARG_CONFIG },
                { "print-config", no_argument, NULL, ARG_PRINT },
                { "cgroup-subdir", required_argument, NULL, ARG_SUBDIR },
                { "debug", no_argument, NULL, ARG_DEBUG },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case ARG_CONFIG:
                        a->config = optarg;
                        break;
                case ARG_PRINT:
                        a->print_config = true;
                        break;
                case ARG_SUBDIR:
                        if (!*optarg || strchr(optarg, '/') || streq(optarg, ".") || streq(optarg, "..")) {
                                fprintf(stderr, "sandpoold: --cgroup-subdir must be one path component\n");
                                return -EINVAL;
                        }
                        a->cgroup_subdir = optarg;
                        break;
                case ARG_DEBUG:
                        log_max_level = LOG_DEBUG;
                        break;
                case ARG_VERSION:
                        printf("sandpoold %s\n", SANDPOOL_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "sandpoold: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static void resolve_admin_group(server *srv) {
        const char *name = srv->config.cfg.admin_group;
        struct group *g;

        srv->have_admin_gid = false;
        if (!name || !*name)
                return;
        /* NSS may block; this runs at start and on SIGHUP only. */
        g = getgrnam(name);
        if (!g) {
                log_warning("Admin group '%s' does not exist: only root is admin", name);
                return;
        }
        srv->admin_gid = g->gr_gid;
        srv->have_admin_gid = true;
}

static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < NOFILE_WANTED) {
                /* root may raise the hard limit, unless a container forbids it */
                struct rlimit want = { NOFILE_WANTED, NOFILE_WANTED };
                if (setrlimit(RLIMIT_NOFILE, &want) == 0)
                        return;
        }
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? NOFILE_WANTED : MIN(rl.rlim_max, (rlim_t) NOFILE_WANTED);
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning("Failed to raise RLIMIT_NOFILE: %m");
        if (rl.rlim_cur < NOFILE_WANTED)
                log_info("RLIMIT_NOFILE is %llu (hard limit)", (unsigned long long) rl.rlim_cur);
}

static void pool_config(server *srv, pool_env *env, pool_options *o);

/* Defaults that followed a value the user set: worth a notice each. */
static void log_config_notices(const sp_config_set *s) {
        for (const char *p = s->notices; p && *p;) {
                const char *nl = strchrnul(p, '\n');
                log_full(LOG_NOTICE, NULL, "Configuration: %.*s", (int) (nl - p), p);
                p = *nl ? nl + 1 : nl;
        }
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        server *srv = userdata;

        server_begin_shutdown(srv, si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        return 0;
}

/* The grants file is policy: SIGHUP reads it again (the egress itself,
 * uplink, table and pool, needs a restart). A file that does not load
 * leaves the running grants in place. */
static void reload_network_grants(server *srv) {
        netceiling *c = NULL;
        sp_error err = {};

        if (netceiling_load(srv->config.cfg.net_policy, &c, &err) < 0) {
                log_error("Reload of [network] network_policy failed, keeping the running grants: %s", err.message);
                return;
        }
        netceiling_free(srv->netceiling);
        srv->netceiling = c;
}

/* SIGHUP: limits, timeouts and pool sizes apply to sandboxes and sessions
 * created from now on. The socket, the cgroup layout and the seccomp
 * policy stay as they were (they need a restart). */
static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        server *srv = userdata;
        sp_config_set fresh = {};
        sp_error err = {};
        int r;

        notify_reloading();
        r = sp_config_load(&fresh, srv->config_path, NULL, &err);
        if (r >= 0)
                log_config_notices(&fresh);
        if (r < 0) {
                log_error("Reload failed, keeping the running configuration: %s", err.message);
                notify_status(srv);
                (void) sd_notify(false, "READY=1");
                return 0;
        }
        if (!streq_ptr(fresh.cfg.socket, srv->config.cfg.socket) ||
            !streq_ptr(fresh.cfg.rootfs, srv->config.cfg.rootfs) ||
            !streq_ptr(fresh.cfg.cgroup_parent, srv->config.cfg.cgroup_parent) ||
            fresh.cfg.id_base != srv->config.cfg.id_base)
                log_warning("socket, rootfs, cgroup_parent and id_base changes take effect on restart only");
        /* Keep what the running daemon depends on; take everything else. */
        {
                sp_config *n = &fresh.cfg, *o = &srv->config.cfg;
                char *tmp;
#define KEEP_STR(f) (tmp = n->f, n->f = o->f, o->f = tmp)
                KEEP_STR(socket);
                KEEP_STR(rootfs);
                KEEP_STR(cgroup_parent);
                KEEP_STR(cgroup_mode);
                KEEP_STR(state_dir);
                KEEP_STR(seccomp_policy);
#undef KEEP_STR
                n->id_base = o->id_base;
        }
        sp_config_set_done(&srv->config);
        srv->config = fresh;
        resolve_admin_group(srv);
        reload_network_grants(srv);
        if (srv->pool) {
                pool_env env;
                pool_options o;
                pool_config(srv, &env, &o);
                pool_reconfigure(srv->pool, &env, &o);
                templates_reconfigure(srv);
        }
        log_info("Reloaded configuration: pool_size=%u max_pool_size=%u memory_limit=%" PRIu64
                 " cpu_limit=%u pids_limit=%u command_timeout=%" PRIu64 "ms",
                 srv->config.cfg.pool_size, srv->config.cfg.max_pool_size, srv->config.cfg.memory_limit,
                 srv->config.cfg.cpu_limit, srv->config.cfg.pids_limit, srv->config.cfg.command_timeout_ms);
        (void) sd_notify(false, "READY=1");
        notify_status(srv);
        return 0;
}

static void pool_config(server *srv, pool_env *env, pool_options *o) {
        const sp_config *cfg = &srv->config.cfg;

        *env = (pool_env) {
                .box = {
                        .factory = srv->factory,
                        .idslot_dir = IDSLOT_DIR,
                        .id_base = cfg->id_base,
                        .n_slots = srv->n_slots,
                },
                .limits = {
                        .memory_bytes = cfg->memory_limit,
                        .cpu_pct = cfg->cpu_limit,
                        .pids = cfg->pids_limit,
                        .disk_bytes = cfg->disk_limit,
                },
        };
        *o = (pool_options) {
                .pool_size = cfg->pool_size,
                .min_pool_size = cfg->min_pool_size,
                .max_pool_size = cfg->max_pool_size,
                .aggressive_cleanup = cfg->aggressive_cleanup,
                .idle_timeout_ms = cfg->container_idle_timeout_ms,
        };
}

/* Staging directories of daemons that died without cleaning up (their
 * mounts went with their mount namespace; the empty directories stay). */
static void sweep_stale_stages(const char *stage) {
        _cleanup_closedir_ DIR *d = opendir(stage);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (de->d_type != DT_DIR || *end || pid <= 0 || (kill((pid_t) pid, 0) == 0 || errno != ESRCH))
                        continue;
                int fd = openat(dirfd(d), de->d_name, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                _cleanup_closedir_ DIR *sub = fd >= 0 ? fdopendir(fd) : NULL;
                if (!sub) {
                        safe_close(fd);
                        continue;
                }
                for (struct dirent *e; (e = readdir(sub));)
                        if (e->d_type == DT_DIR && !streq(e->d_name, ".") && !streq(e->d_name, ".."))
                                (void) unlinkat(dirfd(sub), e->d_name, AT_REMOVEDIR);
                if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0)
                        log_info("Removed the staging directory of daemon %ld, which is gone", pid);
        }
}

/* Sandbox names are sb-<daemon pid>-<n>: the cgroup of a sandbox whose
 * daemon is gone is stale (rmdir still refuses one with a live process). */
static bool sandbox_is_stale(const char *name, void *userdata) {
        char *end;
        if (strncmp(name, "sb-", 3) != 0)
                return false;
        long pid = strtol(name + 3, &end, 10);
        if (*end != '-' || pid <= 0)
                return false;
        return pid != (long) getpid() && kill((pid_t) pid, 0) < 0 && errno == ESRCH;
}

/* A sandbox's PID 1 walks to its staging directory as the sandbox's own
 * root, an unprivileged host uid: every directory on the way must let
 * others through (o+x), or each sandbox fails to start with EACCES. */
static int check_traversable(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *slash = p + strlen(p);;) {
                struct stat st;
                if (stat(p, &st) == 0 && !(st.st_mode & S_IXOTH)) {
                        log_error("%s is mode %04o: the sandboxes cannot reach their staging directory %s "
                                  "through it; make it o+x or choose another state_dir",
                                  p, (unsigned) (st.st_mode & 07777), path);
                        return -EACCES;
                }
                slash = strrchr(p, '/');
                if (!slash || slash == p)
                        return 0;
                *slash = 0;
        }
}

/* The image must be there before anything is created from it; its
 * manifest (written by rootfs/build-image) is what /v1/health reports. */
static int load_image(server *srv) {
        const char *rootfs = srv->config.cfg.rootfs;
        _cleanup_free_ char *sh = NULL, *manifest = NULL;
        struct stat st;

        if (asprintf(&sh, "%s/bin/sh", rootfs) < 0 || asprintf(&manifest, "%s/etc/sandpool-image.json", rootfs) < 0)
                return -ENOMEM;
        if (stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode) || access(sh, X_OK) < 0) {
                log_error("The image %s is %s. Build the default image with: " SANDPOOL_IMAGE_HINT
                          ", or point [images] rootfs at another one.",
                          rootfs, stat(rootfs, &st) < 0 ? "missing" : "incomplete (no /bin/sh)");
                return -ENOENT;
        }
        json_t *m = json_load_file(manifest, 0, NULL);
        srv->image = json_pack("{s:s}", "path", rootfs);
        if (m && srv->image) {
                json_t *v;
                if ((v = json_object_get(m, "name")))
                        json_object_set(srv->image, "name", v);
                if ((v = json_object_get(m, "build_date")))
                        json_object_set(srv->image, "built_at", v);
                if ((v = json_object_get(json_object_get(m, "python"), "version")))
                        json_object_set(srv->image, "python", v);
                if ((v = json_object_get(json_object_get(m, "node"), "version")))
                        json_object_set(srv->image, "node", v);
                if ((v = json_object_get(json_object_get(m, "npm"), "version")))
                        json_object_set(srv->image, "npm", v);
                if ((v = json_object_get(json_object_get(m, "content"), "hash")))
                        json_object_set(srv->image, "content_hash", v);
        }
        json_decref(m);
        return srv->image ? 0 : -ENOMEM;
}

/* Egress, when an uplink is configured: the nft table, the resolver, the
 * operator's grants. Without one a session may only have "none". */
static int setup_network(server *srv) {
        const sp_config *cfg = &srv->config.cfg;
        sp_error err = {};
        int r;

        r = netceiling_load(cfg->net_policy, &srv->netceiling, &err);
        if (r < 0) {
                log_error("[network] network_policy: %s", err.message);
                return r;
        }
        if (!cfg->net_uplink || !*cfg->net_uplink)
                return 0;
        egress_options o = {.uplink = cfg->net_uplink, .table = cfg->net_nft_table,
                            .interface_prefix = cfg->net_interface_prefix,
                            .address_pool = cfg->net_address_pool, .upstream_dns = cfg->net_upstream_dns,
                            .resolver_port = (uint16_t) cfg->net_resolver_port,
                            .proxy_port = (uint16_t) cfg->net_proxy_port,
                            .max_connections = cfg->net_max_connections};
        r = egress_new(srv->event, &o, &srv->egress, &err);
        if (r < 0)
                log_error("%s", err.message);
        return r;
}

static int setup_runtime(server *srv) {
        const sp_config *cfg = &srv->config.cfg;
        sp_cgroup_manager_options opts = {};
        _cleanup_free_ char *stage = NULL;
        sp_error err = {};
        int r;

        r = load_image(srv);
        if (r < 0)
                return r;

        if (mkdir(cfg->state_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create %s", cfg->state_dir);
        if (asprintf(&stage, "%s/stage", cfg->state_dir) < 0)
                return -ENOMEM;
        if (mkdir(stage, 0711) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create %s", stage);
        r = check_traversable(stage);
        if (r < 0)
                return r;
        sweep_stale_stages(stage);
        /* One directory per daemon: removing a directory detaches every
         * mount on it in every namespace, so no daemon may ever clean up
         * a directory another live one stages in. */
        free(stage);
        if (asprintf(&stage, "%s/stage/%d", cfg->state_dir, (int) getpid()) < 0)
                return -ENOMEM;
        /* sp_runtime_init() creates it 0711: the sandboxes' root ids must
         * be able to traverse it. */
        r = sp_runtime_init(stage, &err);
        if (r < 0) {
                log_error("Failed to initialise the runtime: %s", err.message);
                return r;
        }
        srv->stage_dir = TAKE_PTR(stage);

        opts.mode = streq_ptr(cfg->cgroup_mode, "v2")   ? SP_CGROUP_V2
                    : streq_ptr(cfg->cgroup_mode, "v1") ? SP_CGROUP_V1
                                                        : SP_CGROUP_AUTO;
        opts.parent = cfg->cgroup_parent && *cfg->cgroup_parent ? cfg->cgroup_parent : NULL;
        opts.subdir = srv->cgroup_subdir;
        opts.move_self_to_leaf = true;
        {
                cgroup_placement_options po = {.mode = opts.mode, .parent = opts.parent, .name_prefix = "sandpoold",
                                               .description = "sandpoold started outside a unit",
                                               .refuse_undelegated_service = true};
                r = cgroup_placement_prepare(&po, &placement, &err);
                if (r < 0) {
                        log_error("Failed to set up cgroups: %s", err.message);
                        return r;
                }
                if (placement.describe[0])
                        log_info("cgroup placement: %s", placement.describe);
                opts.parent = placement.parent ?: opts.parent;
        }
        r = sp_cgroup_manager_new(&opts, &srv->cgroups, &err);
        if (r < 0) {
                log_error("Failed to set up cgroups: %s", err.message);
                return r;
        }
        log_info("cgroup %s: %s", sp_cgroup_mode_to_string(sp_cgroup_manager_mode(srv->cgroups)),
                 sp_cgroup_manager_describe(srv->cgroups));
        r = sp_cgroup_manager_sweep(srv->cgroups, sandbox_is_stale, NULL);
        if (r > 0)
                log_info("Removed %d sandbox cgroups left by a daemon that is gone", r);

        if (mkdir(RUN_DIR, 0711) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create %s", RUN_DIR);
        bool hit;
        r = sp_seccomp_load_cached(cfg->seccomp_policy, SECCOMP_CACHE_DIR, &srv->seccomp, &hit, &err);
        if (r < 0) {
                log_error("Failed to load the seccomp policy: %s", err.message);
                return r;
        }
        log_info("Seccomp policy %s: %u BPF instructions (%s)", cfg->seccomp_policy, srv->seccomp->prog.len,
                 hit ? "compiled earlier, from the cache" : "compiled");

        /* Each sandbox takes SP_ID_RANGE host ids from id_base up; never
         * hand out a range that would wrap past the top of uid_t. */
        srv->n_slots = (uint32_t) MIN(16384u, ((uint64_t) UINT32_MAX - cfg->id_base) / SP_ID_RANGE - 1);
        if (srv->n_slots == 0) {
                log_error("id_base %u leaves no room for a sandbox's %u ids", cfg->id_base, SP_ID_RANGE);
                return -ERANGE;
        }
        /* Now, while the daemon is small: the workers, and every PID 1
         * they fork, are copies of this process. */
        {
                factory_env fe = {.rootfs = cfg->rootfs, .stage_dir = srv->stage_dir, .cgroups = srv->cgroups,
                                  .seccomp = srv->seccomp};
                r = factory_new(srv->event, &fe, 0, &srv->factory, &err);
                if (r < 0) {
                        log_error("Failed to start the sandbox factory: %s", err.message);
                        return r;
                }
                log_info("Sandbox factory: %u workers", factory_n_workers(srv->factory));
        }

        r = setup_network(srv);
        if (r < 0)
                return r;
        {
                pool_env env;
                pool_options o;
                pool_config(srv, &env, &o);
                r = pool_new(srv->event, &env, &o, http_capacity_changed, srv, &srv->pool);
                if (r < 0)
                        return log_error_errno(r, "Failed to create the pool");
        }
        r = templates_load(srv);
        if (r < 0)
                return log_error_errno(r, "Failed to load the templates");
        return 0;
}

static int serve(server *srv) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        /* A command that closes its stdin early must not kill us. */
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_new(&srv->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop");
        /* WatchdogSec= in the unit: sd-event sends WATCHDOG=1 from the loop
         * itself, so a stuck loop is exactly what stops the pings. */
        r = sd_event_set_watchdog(srv->event, true);
        if (r > 0)
                log_info("systemd watchdog enabled");
        /* Signals end work: nothing a sandbox or a client does may starve them. */
        static const struct { int sig; sd_event_signal_handler_t fn; } sigs[] = {
                { SIGTERM, on_sigterm }, { SIGINT, on_sigterm }, { SIGHUP, on_sighup },
        };
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                sd_event_source *src = NULL;
                r = sd_event_add_signal(srv->event, &src, sigs[i].sig, sigs[i].fn, srv);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch signal %d", sigs[i].sig);
                (void) sd_event_source_set_priority(src, PRIO_ENDS);
                (void) sd_event_source_set_floating(src, true);
                sd_event_source_unref(src);
        }

        r = setup_runtime(srv);
        if (r < 0)
                return r;
        /* after the factory's workers were forked: it starts a thread */
        r = tenants_start(srv);
        if (r < 0)
                return r;
        srv->routes = api_routes;
        srv->n_routes = api_n_routes;
        r = server_listen(srv);
        if (r < 0)
                return r;
        r = http_start(srv);
        if (r < 0)
                return r;
        r = e2b_start(srv); /* [e2b] listen: off by default */
        if (r < 0)
                return r;

        log_info("sandpoold %s ready: rootfs %s, max %u sandboxes", SANDPOOL_VERSION, srv->config.cfg.rootfs,
                 srv->config.cfg.max_pool_size);
        notify_ready(srv);
        r = sd_event_loop(srv->event);
        if (r < 0)
                log_error_errno(r, "Event loop failed");
        return r < 0 ? r : srv->exit_code;
}

static void server_done(server *srv) {
        server_end_sandboxes(srv, "exit");
        /* after the last command: its record is written */
        tenants_stop(srv);
        e2b_stop(srv);
        /* after every session let go of its link */
        egress_free(srv->egress);
        srv->egress = NULL;
        netceiling_free(srv->netceiling);
        templates_free(srv);
        http_stop(srv);
        srv->drain_timer = sd_event_source_disable_unref(srv->drain_timer);
        if (srv->cgroups)
                sp_cgroup_manager_free(srv->cgroups);
        cgroup_placement_done(&placement);
        if (srv->seccomp)
                sp_seccomp_program_free(srv->seccomp);
        if (srv->stage_dir)
                (void) rmdir(srv->stage_dir);
        free(srv->stage_dir);
        json_decref(srv->image);
        free(srv->socket_path);
        sd_event_unref(srv->event);
        sp_config_set_done(&srv->config);
}

int main(int argc, char **argv) {
        server srv = { .listen_fd = -EBADF };
        args a = {};
        sp_error err = {};
        int r;

        if (argc >= 2 && streq(argv[1], "run"))
                return sandpoold_run_main(argc - 1, argv + 1);

        r = parse_args(argc, argv, &a);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = sp_config_load(&srv.config, a.config, NULL, &err);
        if (r < 0) {
                fprintf(stderr, "sandpoold: %s\n", err.message);
                return 1;
        }
        log_config_notices(&srv.config);
        if (a.print_config) {
                sp_config_print(&srv.config, stdout);
                sp_config_set_done(&srv.config);
                return 0;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "sandpoold: must run as root (it creates namespaces, cgroups and mounts)\n");
                sp_config_set_done(&srv.config);
                return 1;
        }
        srv.config_path = a.config;
        srv.cgroup_subdir = a.cgroup_subdir;
        raise_nofile();
        resolve_admin_group(&srv);

        r = serve(&srv);
        server_done(&srv);
        if (r < 0)
                return 1;
        log_info("Exiting");
        return 0;
}
