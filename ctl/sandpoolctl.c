/* SPDX-License-Identifier: MIT */
/* sandpoolctl: the operator's control CLI. It speaks only the public API
 * over the daemon's socket, so it can never do what the API does not
 * allow. This file parses the global options and dispatches. */
#include <locale.h>
#include <stdio.h>

#include "build-config.h"
#include "ctl.h"

static const struct command {
        const char *name;
        command_fn fn;
        const char *summary;
} commands[] = {
        { "status", cmd_status, "health, cgroup mode, pool, sessions, limits, version" },
        { "pool", cmd_pool, "pool figures and sandbox creation/destruction latencies" },
        { "sessions", cmd_sessions, "list sessions with owner, age, idle time and usage" },
        { "session", cmd_session, "inspect one session" },
        { "exec", cmd_exec, "run a command in a session, or in a one-shot sandbox" },
        { "cp", cmd_cp, "copy a file into or out of a session" },
        { "commands", cmd_commands, "list the background commands of a session" },
        { "logs", cmd_logs, "print (and follow) a background command's output" },
        { "shell", cmd_shell, "an interactive shell on a terminal in a session" },
        { "kill", cmd_kill, "end sessions" },
        { "top", cmd_top, "live view of the pool and the sessions" },
        { "config", cmd_config, "the daemon's effective configuration and its sources" },
        { "history", cmd_history, "the execution records: every command, with its figures" },
        { "usage", cmd_usage, "today's usage against the tier's quotas" },
        { "templates", cmd_templates, "list the templates you may use" },
        { "template", cmd_template, "create (from a session), build (from commands), show or remove a template" },
        { "fork", cmd_fork, "a new session with a copy of a session's files" },
        { "mcp", cmd_mcp, "a Model Context Protocol server on stdio for AI agents" },
};

static void help(FILE *f) {
        fprintf(f,
                "Usage: sandpoolctl [--socket PATH] [--json] COMMAND [ARGS...]\n"
                "\n"
                "Inspect and steer sandpoold through its API socket.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
        fprintf(f,
                "\n"
                "Options (before or after the command; for exec, before the command to run):\n"
                "  --socket PATH  the daemon's socket (default $SANDPOOL_SOCKET, else %s)\n"
                "  --json         machine-readable output for the read commands\n"
                "  -h, --help     help; 'sandpoolctl COMMAND --help' for a command\n"
                "  --version      print the version\n"
                "\n"
                "Exit codes: 0 ok, 1 refused by the daemon, 2 usage, 3 not found, 4 no capacity or\n"
                "shutting down, 5 daemon unreachable, 6 permission denied, 7 not supported by the\n"
                "daemon; exec returns the command's status (124 timeout, 125 sandpoolctl failed,\n"
                "128+N killed by signal N). See sandpoolctl(1).\n",
                DEFAULT_SOCKET);
}

/* Take --socket and --json out of argv wherever they are before a "--",
 * so that every subcommand accepts them without repeating them. Not after
 * "exec": there they may be the sandboxed command's own arguments
 * ("exec tool --json"), and exec parses its options itself. */
static int strip_global_options(ctl *c, int *argc, char **argv) {
        bool seen_command = false;
        int out = 1;

        for (int i = 1; i < *argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--")) {
                        while (i < *argc)
                                argv[out++] = argv[i++];
                        break;
                }
                if (streq(a, "--json"))
                        c->json = true;
                else if (streq(a, "--socket")) {
                        if (i + 1 >= *argc) {
                                fprintf(stderr, "sandpoolctl: --socket needs a path\n");
                                return -EINVAL;
                        }
                        c->socket = argv[++i];
                        c->socket_origin = "from --socket";
                } else if (strncmp(a, "--socket=", 9) == 0) {
                        c->socket = a + 9;
                        c->socket_origin = "from --socket";
                } else {
                        argv[out++] = argv[i];
                        if (a[0] != '-' && !seen_command && streq(a, "exec")) {
                                while (++i < *argc)
                                        argv[out++] = argv[i];
                                break;
                        }
                        seen_command = seen_command || a[0] != '-';
                }
        }
        argv[out] = NULL;
        *argc = out;
        return 0;
}

int main(int argc, char **argv) {
        ctl c = { .socket = DEFAULT_SOCKET, .socket_origin = "the default", .err = stderr };
        const char *env = getenv("SANDPOOL_SOCKET");
        int r;

        setlocale(LC_ALL, "");
        if (env && *env) {
                c.socket = env;
                c.socket_origin = "from SANDPOOL_SOCKET";
        }
        if (strip_global_options(&c, &argc, argv) < 0)
                return EXIT_USAGE;
        if (argc < 2) {
                help(stderr);
                return EXIT_USAGE;
        }
        if (streq(argv[1], "-h") || streq(argv[1], "--help") || streq(argv[1], "help")) {
                help(stdout);
                return EXIT_OK;
        }
        if (streq(argv[1], "--version")) {
                printf("sandpoolctl %s\n", SANDPOOL_VERSION);
                return EXIT_OK;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(argv[1], commands[i].name)) {
                        r = commands[i].fn(&c, argc - 1, argv + 1);
                        api_disconnect(&c);
                        fflush(stdout);
                        return r;
                }
        fprintf(stderr, "sandpoolctl: unknown command '%s'. Try 'sandpoolctl --help'.\n", argv[1]);
        return EXIT_USAGE;
}
