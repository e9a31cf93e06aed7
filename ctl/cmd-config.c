/* SPDX-License-Identifier: MIT */
/* sandpoolctl config: GET /v1/config, the daemon's effective configuration
 * and where each value came from (default, file:line, environment).
 *
 * The answer expected: {"file": "/etc/sandpool/sandpool.conf",
 * "keys": [{"section", "key", "value", "source", "where"}, ...]}, the same
 * data as 'sandpoold --print-config' (sp_config_visit). There is no local
 * fallback on purpose: the CLI reports what the running daemon uses, which
 * only the daemon knows (its environment, the file it read at start). */
#include <getopt.h>

#include "ctl.h"
#include "table.h"

static void help(void) {
        printf("Usage: sandpoolctl config [--json]\n"
               "\n"
               "The running daemon's effective configuration: every key, its value and where\n"
               "the value came from (built-in default, the file and line, or the environment\n"
               "variable). Needs a daemon that serves GET /v1/config (root or the admin group).\n");
}

static int print_config(json_t *cfg) {
        static const char *const headers[] = { "SECTION", "KEY", "VALUE", "SOURCE" };
        _cleanup_table_ table *t = table_new(headers, ELEMENTSOF(headers));
        json_t *keys = json_object_get(cfg, "keys"), *k;
        size_t i;

        if (!t)
                return EXIT_FAIL;
        if (json_str_or(cfg, "file", NULL))
                printf("file: %s\n\n", json_str_or(cfg, "file", NULL));
        json_array_foreach(keys, i, k) {
                const char *src = json_str_or(k, "source", "?"), *where = json_str_or(k, "where", NULL);
                table_add(t, json_str_or(k, "section", "?"));
                table_add(t, json_str_or(k, "key", "?"));
                table_add(t, json_str_or(k, "value", ""));
                if (where && *where)
                        table_addf(t, "%s (%s)", src, where);
                else
                        table_add(t, src);
        }
        table_print(t, stdout, 0, NULL, NULL);
        return EXIT_OK;
}

int cmd_config(ctl *c, int argc, char **argv) {
        json_auto_t *cfg = NULL;
        int r;

        int e = parse_help_only(argc, argv, help);
        if (e >= 0)
                return e;
        if (optind < argc) {
                usage_error("config", "unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        r = api_get_json(c, "/v1/config", "configuration", false, &cfg);
        if (r == EXIT_UNSUPPORTED)
                fprintf(stderr, "sandpoolctl: on the daemon's host, 'sandpoold --print-config' shows the configuration "
                                "it would load now (not necessarily the one running).\n");
        if (r != 0)
                return r;
        if (c->json) {
                print_json(cfg);
                return EXIT_OK;
        }
        if (!json_is_array(json_object_get(cfg, "keys"))) {
                fprintf(stderr, "sandpoolctl: the daemon's configuration answer has no \"keys\" list\n");
                return EXIT_FAIL;
        }
        return print_config(cfg);
}
