/* SPDX-License-Identifier: MIT */
/* One-shot mode: what benchmarks put next to `crun run` and `bwrap`, and
 * what debugging uses. A fresh sandbox, one command with the caller's
 * stdio, the command's status as ours, and nothing left behind. */
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>

#include "build-config.h"
#include "cgroup-scope.h"
#include "config.h"
#include "idslot.h"
#include "paths.h"
#include "run.h"
#include "sandbox.h"
#include "seccomp-cache.h"

#define SETUP_TIMEOUT_MS 10000
#define EXIT_SETUP_FAILED 125

typedef struct run_opts {
        const char *config;
        const char *rootfs;
        const char *policy;
        const char *hostname;
        const char *cwd;
        char **env;
        size_t n_env;
        uint64_t memory, disk, timeout_ms;
        uint32_t cpu, pids;
        uid_t uid;
        bool json;
        char **argv;
} run_opts;

typedef struct run_result {
        sp_exit_info exit;
        bool exited, timed_out, oom_killed;
        int killed_by; /* a signal we received and passed on */
        uint64_t duration_ms, cpu_ms, peak_memory;
} run_result;

static void usage(FILE *f) {
        fputs("Usage: sandpoold run [OPTIONS] -- CMD [ARGS...]\n"
              "\n"
              "Run one command in a fresh sandbox with this terminal's stdin, stdout and\n"
              "stderr, then destroy the sandbox. Exits with the command's status (128+N\n"
              "when killed by signal N, 125 when the sandbox could not be made, 127 when\n"
              "the command was not found).\n"
              "\n"
              "Options (defaults come from the configuration file and SANDPOOL_* variables):\n"
              "  --config FILE      configuration file (default " SANDPOOL_SYSCONFDIR "/sandpool/sandpool.conf)\n"
              "  --rootfs DIR       image to run on (read-only lower layer)\n"
              "  --memory SIZE      memory limit, no swap (e.g. 256M)\n"
              "  --cpu PCT          CPU limit in percent of one CPU (e.g. 25)\n"
              "  --pids N           maximum number of processes\n"
              "  --disk SIZE        size of the writable layer (e.g. 512M)\n"
              "  --timeout DUR      kill the command after DUR (e.g. 30s, 5min; 0: none)\n"
              "  --user UID         user inside the sandbox: a number, 'sandbox' (1000) or 'root'\n"
              "  --cwd DIR          working directory inside (default: the user's home)\n"
              "  --env K=V          set a variable (repeatable; replaces the default environment)\n"
              "  --hostname NAME    hostname inside (default: sandbox)\n"
              "  --policy FILE      seccomp policy (default: the installed default.policy)\n"
              "  --json             print a JSON summary line to stderr at the end\n"
              "  -h, --help         show this help\n",
              f);
}

static int parse_uid(const char *s, uid_t *ret) {
        if (streq(s, "root")) {
                *ret = 0;
                return 0;
        }
        if (streq(s, "sandbox")) {
                *ret = SP_SANDBOX_UID;
                return 0;
        }
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v >= SP_ID_RANGE || s[0] == '-')
                return -EINVAL;
        *ret = (uid_t) v;
        return 0;
}

static int bad_value(const char *opt, const char *value, const char *what) {
        fprintf(stderr, "sandpoold run: %s: invalid value '%s': %s\n", opt, value, what);
        return -EINVAL;
}

static int parse_number_u32(const char *s, uint32_t max, uint32_t *ret) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v == 0 || v > max)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

static int parse_args(int argc, char **argv, const sp_config *cfg, run_opts *o) {
        enum { O_CONFIG = 256, O_ROOTFS, O_MEMORY, O_CPU, O_PIDS, O_DISK, O_TIMEOUT, O_USER, O_CWD, O_ENV,
               O_HOSTNAME, O_POLICY, O_JSON };
        static const struct option longopts[] = {
                {"config", required_argument, NULL, O_CONFIG},   {"rootfs", required_argument, NULL, O_ROOTFS},
                {"memory", required_argument, NULL, O_MEMORY},   {"cpu", required_argument, NULL, O_CPU},
                {"pids", required_argument, NULL, O_PIDS},       {"disk", required_argument, NULL, O_DISK},
                {"timeout", required_argument, NULL, O_TIMEOUT}, {"user", required_argument, NULL, O_USER},
                {"cwd", required_argument, NULL, O_CWD},         {"env", required_argument, NULL, O_ENV},
                {"hostname", required_argument, NULL, O_HOSTNAME}, {"policy", required_argument, NULL, O_POLICY},
                {"json", no_argument, NULL, O_JSON},             {"help", no_argument, NULL, 'h'},
                {},
        };
        int c;

        o->rootfs = cfg->rootfs;
        o->policy = cfg->seccomp_policy;
        o->memory = cfg->memory_limit;
        o->disk = cfg->disk_limit;
        o->cpu = cfg->cpu_limit;
        o->pids = cfg->pids_limit;
        o->timeout_ms = cfg->command_timeout_ms;
        o->uid = SP_SANDBOX_UID;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
                switch (c) {
                case O_CONFIG: break; /* read before the rest */
                case O_ROOTFS: o->rootfs = optarg; break;
                case O_MEMORY:
                        if (sp_parse_size(optarg, &o->memory) < 0 || o->memory < (8u << 20))
                                return bad_value("--memory", optarg, "a size of at least 8M, like 256M");
                        break;
                case O_DISK:
                        if (sp_parse_size(optarg, &o->disk) < 0 || o->disk < (1u << 20))
                                return bad_value("--disk", optarg, "a size of at least 1M, like 512M");
                        break;
                case O_CPU:
                        if (parse_number_u32(optarg, 100u * 1024u, &o->cpu) < 0)
                                return bad_value("--cpu", optarg, "a percentage of one CPU, like 25 or 150");
                        break;
                case O_PIDS:
                        if (parse_number_u32(optarg, 4194304u, &o->pids) < 0)
                                return bad_value("--pids", optarg, "a positive number");
                        break;
                case O_TIMEOUT:
                        if (sp_parse_duration_ms(optarg, &o->timeout_ms) < 0 && !streq(optarg, "0"))
                                return bad_value("--timeout", optarg, "a duration like 30s, 500ms or 5min");
                        if (streq(optarg, "0"))
                                o->timeout_ms = 0;
                        break;
                case O_USER:
                        if (parse_uid(optarg, &o->uid) < 0)
                                return bad_value("--user", optarg, "root, sandbox or a number below 65536");
                        break;
                case O_CWD: o->cwd = optarg; break;
                case O_ENV: {
                        if (!strchr(optarg, '=') || optarg[0] == '=')
                                return bad_value("--env", optarg, "KEY=VALUE");
                        char **n = realloc(o->env, (o->n_env + 2) * sizeof(char *));
                        if (!n)
                                return -ENOMEM;
                        o->env = n;
                        o->env[o->n_env++] = optarg;
                        o->env[o->n_env] = NULL;
                        break;
                }
                case O_HOSTNAME: o->hostname = optarg; break;
                case O_POLICY: o->policy = optarg; break;
                case O_JSON: o->json = true; break;
                case 'h': usage(stdout); exit(0);
                default:
                        fputs("Try 'sandpoold run --help'.\n", stderr);
                        return -EINVAL;
                }
        }
        if (optind >= argc) {
                fputs("sandpoold run: no command given. Usage: sandpoold run [OPTIONS] -- CMD [ARGS...]\n", stderr);
                return -EINVAL;
        }
        o->argv = argv + optind;
        return 0;
}

static const char *config_path_from_args(int argc, char **argv) {
        for (int i = 1; i < argc && !streq(argv[i], "--"); i++) {
                if (streq(argv[i], "--config") && i + 1 < argc)
                        return argv[i + 1];
                if (strncmp(argv[i], "--config=", 9) == 0)
                        return argv[i] + 9;
        }
        return NULL;
}

static uint64_t now_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * 1000u + (uint64_t) t.tv_nsec / 1000000u;
}

/* Wait for the command's exit; pass on SIGINT/SIGTERM/SIGHUP as a kill of
 * its process group; kill it at the timeout. */
static int wait_command(sp_sandbox *sb, uint64_t id, uint64_t timeout_ms, int sigfd, run_result *res) {
        uint64_t start = now_ms(), deadline = timeout_ms ? start + timeout_ms : 0;
        bool killed = false;

        for (;;) {
                sp_event ev;
                int r = sp_sandbox_next_event(sb, &ev);
                if (r == 0 && ev.type == SP_EVENT_EXITED && ev.id == id) {
                        res->exit = ev.exit;
                        res->exited = true;
                        break;
                }
                if (r == -EPIPE) /* PID 1 died: the whole sandbox went (OOM group kill) */
                        break;
                if (r < 0 && r != -EAGAIN)
                        return r;
                if (r == 0)
                        continue;

                int wait = -1;
                if (deadline && !killed) {
                        uint64_t now = now_ms();
                        if (now >= deadline) {
                                res->timed_out = true;
                                killed = true;
                                (void) sp_sandbox_signal(sb, id, SIGKILL);
                                continue;
                        }
                        wait = (int) MIN(deadline - now, (uint64_t) INT32_MAX);
                }
                struct pollfd p[2] = {{.fd = sp_sandbox_control_fd(sb), .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
                if (poll(p, 2, wait) < 0 && errno != EINTR)
                        return -errno;
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
                                res->killed_by = (int) si.ssi_signo;
                                killed = true;
                                (void) sp_sandbox_signal(sb, id, SIGKILL);
                        }
                }
        }
        res->duration_ms = now_ms() - start;
        return 0;
}

static void print_json(const run_result *res, int exit_code) {
        char code[16] = "null"; /* killed by a signal: no exit code, as in the API */
        if (!res->exit.signal && !res->killed_by)
                snprintf(code, sizeof(code), "%d", exit_code);
        fprintf(stderr,
                "{\"exit_code\":%s,\"signal\":%d,\"oom_killed\":%s,\"timed_out\":%s,\"duration_ms\":%" PRIu64
                ",\"cpu_ms\":%" PRIu64 ",\"peak_memory_bytes\":%" PRIu64 "}\n",
                code, res->exit.signal, res->oom_killed ? "true" : "false",
                res->timed_out ? "true" : "false", res->duration_ms, res->cpu_ms, res->peak_memory);
}

/* A one-shot run killed with SIGKILL cannot clean up after itself; the
 * next one removes what such a run left: sandbox cgroups named after a
 * process that no longer exists. */
static bool run_is_stale(const char *name, void *userdata) {
        char *end;
        if (strncmp(name, "run-", 4) != 0)
                return false;
        long pid = strtol(name + 4, &end, 10);
        return *end == 0 && pid > 0 && kill((pid_t) pid, 0) < 0 && errno == ESRCH;
}

static int setup_fail(const char *what, const sp_error *err) {
        fprintf(stderr, "sandpoold run: %s: %s\n", what, err->message);
        return EXIT_SETUP_FAILED;
}

static int run_in_sandbox(const sp_config *cfg, const run_opts *o, sp_cgroup_manager *cgm,
                          const sp_seccomp_program *prog, run_result *res) {
        sp_error err = {};
        sp_idslot slot = {.lock_fd = -1};
        sp_sandbox *sb = NULL;
        char name[32];
        uint64_t id;
        sigset_t sigs;
        int r, sigfd;

        unsigned slots = (unsigned) MIN(16384u, (UINT32_MAX - (uint64_t) cfg->id_base) / SP_ID_RANGE - 1);
        r = sp_idslot_acquire(IDSLOT_DIR, cfg->id_base, slots, (unsigned) getpid() % slots, &slot);
        if (r < 0) {
                sp_error_set(&err, r, "no free host id range below %s: %s", IDSLOT_DIR, strerror(-r));
                return setup_fail("claim an id range", &err);
        }
        snprintf(name, sizeof(name), "run-%d", (int) getpid());
        /* Left by an earlier run with our pid that was SIGKILLed: its mounts
         * went with its mount namespace, the empty directory stayed. No live
         * process but us can own this name. */
        {
                char stale[PATH_MAX];
                snprintf(stale, sizeof(stale), "%s/%s", STAGE_DIR, name);
                (void) rmdir(stale);
        }
        sp_sandbox_spec spec = {
                .name = name, .rootfs = o->rootfs, .hostname = o->hostname, .stage_dir = STAGE_DIR,
                .id_base = slot.base, .cgroups = cgm, .seccomp = prog,
                .limits = {.memory_bytes = o->memory, .cpu_pct = o->cpu, .pids = o->pids, .disk_bytes = o->disk},
        };
        r = sp_sandbox_create(&spec, SETUP_TIMEOUT_MS, &sb, &err);
        if (r < 0) {
                sp_idslot_release(&slot);
                return setup_fail("create the sandbox", &err);
        }

        sigemptyset(&sigs);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGHUP);
        sigprocmask(SIG_BLOCK, &sigs, NULL);
        sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);

        sp_exec_spec e;
        sp_exec_spec_init(&e);
        e.argv = o->argv;
        e.envp = o->env;
        e.cwd = o->cwd;
        e.uid = e.gid = o->uid;
        e.stdin_fd = STDIN_FILENO;
        e.stdout_fd = STDOUT_FILENO;
        e.stderr_fd = STDERR_FILENO;
        r = sp_sandbox_spawn(sb, &e, &id, &err);
        if (r >= 0)
                r = wait_command(sb, id, o->timeout_ms, sigfd, res);
        else
                fprintf(stderr, "sandpoold run: %s\n", err.message);

        sp_sandbox_stats st;
        if (sp_sandbox_stats_read(sb, &st) >= 0) {
                res->oom_killed = st.cgroup.oom_kills > 0;
                res->cpu_ms = st.cgroup.cpu_usage_usec / 1000u;
                res->peak_memory = st.cgroup.memory_peak;
        } else
                res->cpu_ms = res->exit.cpu_usec / 1000u;
        if (!res->exited) {
                /* PID 1 went first: only the kernel's OOM group kill does that. */
                res->exit.exit_code = -1;
                res->exit.signal = SIGKILL;
        }
        int q = sp_sandbox_destroy(sb);
        if (q < 0)
                fprintf(stderr, "sandpoold run: warning: cleaning up the sandbox: %s\n", strerror(-q));
        sp_idslot_release(&slot);
        safe_close(sigfd);
        return r < 0 ? EXIT_SETUP_FAILED : 0;
}

int sandpoold_run_main(int argc, char **argv) {
        _cleanup_free_ char **env = NULL;
        sp_config_set cs = {};
        run_opts o = {};
        run_result res = {};
        sp_error err = {};
        sp_seccomp_program *prog = NULL;
        sp_cgroup_manager *cgm = NULL;
        cgroup_placement place = {};
        int r, ret;

        if (sp_config_load(&cs, config_path_from_args(argc, argv), NULL, &err) < 0) {
                fprintf(stderr, "sandpoold run: %s\n", err.message);
                return EXIT_SETUP_FAILED;
        }
        r = parse_args(argc, argv, &cs.cfg, &o);
        env = o.env;
        if (r < 0) {
                sp_config_set_done(&cs);
                return 2;
        }
        if (geteuid() != 0) {
                fputs("sandpoold run: must run as root (it creates namespaces, cgroups and mounts)\n", stderr);
                sp_config_set_done(&cs);
                return EXIT_SETUP_FAILED;
        }
        struct stat st;
        if (stat(o.rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr,
                        "sandpoold run: the image %s is missing or not a directory.\n"
                        "Build the default image with: " SANDPOOL_IMAGE_HINT ", or pass --rootfs DIR\n",
                        o.rootfs);
                sp_config_set_done(&cs);
                return EXIT_SETUP_FAILED;
        }

        ret = EXIT_SETUP_FAILED;
        if (mkdir(RUN_DIR, 0711) < 0 && errno != EEXIST) {
                sp_error_set(&err, -errno, "%s: %m", RUN_DIR);
                ret = setup_fail("create the runtime directory", &err);
                goto out;
        }
        if (sp_runtime_init(STAGE_DIR, &err) < 0) {
                ret = setup_fail("prepare", &err);
                goto out;
        }
        /* Compiled once per policy, not once per run (seccomp-cache.h). */
        if (sp_seccomp_load_cached(o.policy, SECCOMP_CACHE_DIR, &prog, NULL, &err) < 0) {
                ret = setup_fail("seccomp policy", &err);
                goto out;
        }
        sp_cgroup_manager_options co = {
                .mode = streq(cs.cfg.cgroup_mode, "v2") ? SP_CGROUP_V2
                        : streq(cs.cfg.cgroup_mode, "v1") ? SP_CGROUP_V1
                                                          : SP_CGROUP_AUTO,
                .parent = cs.cfg.cgroup_parent && cs.cfg.cgroup_parent[0] ? cs.cfg.cgroup_parent : NULL,
                .subdir = "sandpool-run",
        };
        /* A v2 cgroup we share with our shell is not ours to subdivide. */
        cgroup_placement_options po = {.mode = co.mode, .parent = co.parent, .name_prefix = "sandpool-run",
                                       .description = "sandpoold run: one command in a sandbox"};
        if (cgroup_placement_prepare(&po, &place, &err) < 0) {
                ret = setup_fail("cgroups (limits cannot be enforced)", &err);
                goto out;
        }
        co.parent = place.parent ?: co.parent;
        co.move_self_to_leaf = place.move_self_to_leaf;
        if (sp_cgroup_manager_new(&co, &cgm, &err) < 0) {
                ret = setup_fail("cgroups (limits cannot be enforced)", &err);
                goto out;
        }

        (void) sp_cgroup_manager_sweep(cgm, run_is_stale, NULL);
        ret = run_in_sandbox(&cs.cfg, &o, cgm, prog, &res);
        if (ret == 0) {
                if (res.killed_by)
                        ret = 128 + res.killed_by;
                else if (res.exit.signal)
                        ret = 128 + res.exit.signal;
                else
                        ret = res.exit.exit_code;
                if (o.json)
                        print_json(&res, ret);
        }
out:
        sp_cgroup_manager_free(cgm);
        cgroup_placement_done(&place);
        sp_seccomp_program_free(prog);
        sp_config_set_done(&cs);
        return ret;
}
