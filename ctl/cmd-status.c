/* SPDX-License-Identifier: MIT */
/* sandpoolctl status: GET /v1/health, for people and for scripts. */
#include <getopt.h>
#include <unistd.h>

#include "build-config.h"
#include "ctl.h"
#include "render.h"

static void help(void) {
        printf("Usage: sandpoolctl status [--json]\n"
               "\n"
               "The daemon's health: status, version, cgroup mode, pool figures, active\n"
               "sessions and the limits in force.\n"
               "\n"
               "Exit status: 0 when the daemon answers 'ok', 4 while it shuts down, 1 for any\n"
               "other status, 5 when it cannot be reached.\n");
}

/* The likeliest reason on a fresh install that nothing answers: sandpoold
 * refuses to start without its image, which no package carries. The image
 * is the daemon's SANDPOOL_ROOTFS when set here too, else the default. */
static void print_image_hint(int r) {
        const char *img = getenv("SANDPOOL_ROOTFS") ?: SANDPOOL_DEFAULT_ROOTFS;
        _cleanup_free_ char *sh = NULL;

        if (r != EXIT_UNREACHABLE || asprintf(&sh, "%s/bin/sh", img) < 0 || access(sh, X_OK) == 0)
                return;
        fprintf(stderr,
                "sandpoolctl: the image %s is missing, and sandpoold does not start without it\n"
                "(unless its [images] rootfs names another). Build it, as root, with:\n"
                "  " SANDPOOL_IMAGE_HINT "\n",
                img);
}

int cmd_status(ctl *c, int argc, char **argv) {
        json_auto_t *h = NULL;
        const char *status;
        int r;

        int e = parse_help_only(argc, argv, help);
        if (e >= 0)
                return e;
        if (optind < argc) {
                usage_error("status", "unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        r = api_get_json(c, "/v1/health", "health", false, &h);
        if (r != 0) {
                print_image_hint(r);
                return r;
        }
        status = json_str_or(h, "status", "unknown");
        if (c->json)
                print_json(h);
        else {
                json_t *cg = json_object_get(h, "cgroup");
                printf("sandpoold %s on %s: %s\n", json_str_or(h, "version", "?"), c->socket, status);
                printf("%-10s %s\n", "cgroup:", json_str_or(cg, "mode", "?"));
                json_t *img = json_object_get(h, "image");
                if (img)
                        printf("%-10s %s: python %s, node %s, npm %s, built %s\n", "image:",
                               json_str_or(img, "path", "?"), json_str_or(img, "python", "-"),
                               json_str_or(img, "node", "-"), json_str_or(img, "npm", "-"),
                               json_str_or(img, "built_at", "-"));
                print_pool_line(json_object_get(h, "pool"));
                printf("%-10s %lld active\n", "sessions:", (long long) json_int_or(h, "active_sessions", 0));
                print_limits(json_object_get(h, "limits"), "limits:");
        }
        if (streq(status, "ok"))
                return EXIT_OK;
        return streq(status, "draining") ? EXIT_NO_CAPACITY : EXIT_FAIL;
}
