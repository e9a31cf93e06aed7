/* SPDX-License-Identifier: MIT */
/* sandpoolctl pool: the pool's figures and its recent latencies.
 *
 * GET /v1/pool is the endpoint for this: the figures of /v1/health's
 * "pool" plus latency summaries ({count, p50, p90, p99, max} in ms) of
 * taking, creating and destroying sandboxes. A daemon without it still
 * gets an answer: the figures from /v1/health, the counters from /metrics,
 * and a line saying the latencies are not reported. */
#include <getopt.h>

#include "ctl.h"
#include "render.h"
#include "table.h"

static void help(void) {
        printf("Usage: sandpoolctl pool [--json]\n"
               "\n"
               "Pool figures (available, allocated, warming, total, capacity), counters of\n"
               "sandboxes started and failed, and recent latencies of taking, creating and\n"
               "destroying sandboxes (p50/p90/p99/max over the daemon's recent window).\n");
}

/* The unlabeled sandpool_* samples of a Prometheus text page that speak
 * about the pool, as a JSON object name -> value. */
static json_t *metrics_counters(const char *text) {
        json_t *o = json_object();
        const char *line = text;

        while (o && line && *line) {
                const char *end = strchr(line, '\n');
                size_t n = end ? (size_t) (end - line) : strlen(line);
                char name[128];
                double v;

                if (n < sizeof(name) + 32 && line[0] != '#' && strncmp(line, "sandpool_", 9) == 0) {
                        char buf[sizeof(name) + 32];
                        memcpy(buf, line, n);
                        buf[n] = 0;
                        if (sscanf(buf, "%127[a-z_] %lf", name, &v) == 2 &&
                            (strstr(name + 9, "sandbox") || strstr(name + 9, "pool") ||
                             strstr(name + 9, "capacity") || strstr(name + 9, "session")))
                                json_object_set_new(o, name + 9, json_integer((json_int_t) (v + 0.5)));
                }
                line = end ? end + 1 : NULL;
        }
        return o;
}

static bool is_latency(json_t *v) {
        return json_is_object(v) && (json_object_get(v, "p50") || json_object_get(v, "p99"));
}

static void print_latencies(json_t *pool) {
        static const char *const headers[] = { "LATENCY (ms)", ">COUNT", ">P50", ">P90", ">P99", ">MAX" };
        _cleanup_table_ table *t = table_new(headers, ELEMENTSOF(headers));
        json_t *lat = json_object_get(pool, "latencies"), *src = lat ? lat : pool, *v;
        const char *k;

        if (!t)
                return;
        json_object_foreach(src, k, v) {
                if (!is_latency(v))
                        continue;
                table_add(t, k);
                table_addf(t, "%lld", (long long) json_int_or(v, "count", 0));
                for (size_t i = 0; i < 4; i++) {
                        static const char *const q[] = { "p50", "p90", "p99", "max" };
                        json_t *x = json_object_get(v, q[i]);
                        if (json_is_number(x))
                                table_addf(t, "%.2f", json_number_value(x));
                        else
                                table_add(t, "-");
                }
        }
        if (table_rows(t) == 0) {
                printf("latencies: not reported by this daemon\n");
                return;
        }
        printf("\n");
        table_print(t, stdout, 0, NULL, NULL);
}

static int pool_fallback(ctl *c, json_t **ret) {
        json_auto_t *h = NULL;
        api_reply m = {};
        int r;

        r = api_get_json(c, "/v1/health", "pool figures", false, &h);
        if (r != 0)
                return r;
        *ret = json_pack("{s:O,s:n}", "pool", json_object_get(h, "pool"), "counters");
        if (!*ret)
                return EXIT_FAIL;
        /* the counters are a bonus: without /metrics the figures stand */
        r = api_request(c, "GET", "/metrics", NULL, NULL, 0, &m);
        if (r >= 0 && m.status == 200 && m.body)
                json_object_set_new(*ret, "counters", metrics_counters(m.body));
        api_reply_done(&m);
        return 0;
}

int cmd_pool(ctl *c, int argc, char **argv) {
        static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, {} };
        json_auto_t *pool = NULL;
        api_reply rep = {};
        bool native;
        int r, o;

        while ((o = getopt_long(argc, argv, "+h", opts, NULL)) >= 0)
                switch (o) {
                case 'h':
                        help();
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                usage_error("pool", "unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        r = api_request(c, "GET", "/v1/pool", NULL, NULL, 0, &rep);
        if (r < 0)
                return report_transport_error(c, r, "pool figures");
        native = rep.status == 200 && json_is_object(rep.json);
        if (native)
                pool = json_incref(rep.json);
        else if (rep.status != 404) {
                r = report_http_error(c, &rep, "pool figures", false);
                api_reply_done(&rep);
                return r;
        }
        api_reply_done(&rep);
        if (!native) {
                r = pool_fallback(c, &pool);
                if (r != 0)
                        return r;
        }
        if (c->json) {
                print_json(pool);
                return EXIT_OK;
        }
        print_pool_line(native ? pool : json_object_get(pool, "pool"));
        if (!native) {
                json_t *cnt = json_object_get(pool, "counters"), *v;
                const char *k;
                if (json_object_size(cnt) > 0)
                        printf("counters:\n");
                json_object_foreach(cnt, k, v)
                        printf("  %-30s %lld\n", k, (long long) json_integer_value(v));
                printf("latencies: not reported by this daemon (it has no GET /v1/pool)\n");
                return EXIT_OK;
        }
        print_latencies(pool);
        return EXIT_OK;
}
