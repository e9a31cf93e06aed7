/* SPDX-License-Identifier: MIT */
/* sandpoolctl kill ID... / kill --all: DELETE /v1/sessions/{id}. */
#include <getopt.h>

#include "ctl.h"

static void help(void) {
        printf("Usage: sandpoolctl kill ID...\n"
               "       sandpoolctl kill --all\n"
               "\n"
               "End sessions: every process in them is killed and their sandboxes are\n"
               "destroyed. --all ends every session you may see (all of them for root or\n"
               "the admin group).\n"
               "\n"
               "Exit status: 0 when every session ended, 3 when one of them did not exist\n"
               "(or is not yours), another code from sandpoolctl(1) for other failures.\n");
}

/* 0 when it ended, else the exit code after reporting. */
static int kill_one(ctl *c, const char *id, bool quiet_missing) {
        char target[128], what[128];
        api_reply rep = {};
        int r;

        if (!session_id_valid(id)) {
                fprintf(stderr, "sandpoolctl: '%s' is not a session id (32 hex digits)\n", id);
                return EXIT_NOT_FOUND;
        }
        snprintf(target, sizeof(target), "/v1/sessions/%s", id);
        snprintf(what, sizeof(what), "kill %s", id);
        r = api_request(c, "DELETE", target, NULL, NULL, 0, &rep);
        if (r < 0)
                return report_transport_error(c, r, what);
        if (rep.status == 204 || rep.status == 200 || (rep.status == 404 && quiet_missing))
                r = EXIT_OK; /* --all: one that ended meanwhile is gone all the same */
        else
                r = report_http_error(c, &rep, what, true);
        api_reply_done(&rep);
        if (r == EXIT_OK && !c->json)
                printf("%s\n", id);
        return r;
}

static int kill_all(ctl *c) {
        json_auto_t *list = NULL, *killed = json_array();
        json_t *s;
        size_t i;
        int r, worst = EXIT_OK;

        r = api_get_json(c, "/v1/sessions", "list sessions", false, &list);
        if (r != 0)
                return r;
        json_array_foreach(json_object_get(list, "sessions"), i, s) {
                const char *id = json_str_or(s, "id", "");
                r = kill_one(c, id, true);
                if (r == EXIT_OK)
                        json_array_append_new(killed, json_string(id));
                else if (worst == EXIT_OK)
                        worst = r;
        }
        if (c->json) {
                json_auto_t *o = json_pack("{s:O}", "killed", killed);
                print_json(o);
        }
        return worst;
}

int cmd_kill(ctl *c, int argc, char **argv) {
        static const struct option opts[] = { { "all", no_argument, NULL, 'a' }, { "help", no_argument, NULL, 'h' }, {} };
        bool all = false;
        int r, o, worst = EXIT_OK;

        while ((o = getopt_long(argc, argv, "+ah", opts, NULL)) >= 0)
                switch (o) {
                case 'a':
                        all = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (all == (optind < argc)) {
                usage_error("kill", all ? "--all takes no session ids" : "give session ids, or --all");
                return EXIT_USAGE;
        }
        if (all)
                return kill_all(c);
        for (int i = optind; i < argc; i++) {
                r = kill_one(c, argv[i], false);
                if (r != EXIT_OK && worst == EXIT_OK)
                        worst = r;
        }
        return worst;
}
