/* SPDX-License-Identifier: MIT */
/* sandpoolctl pool: the pool's figures and its recent latencies.
 *
 * GET /v1/pool is the endpoint for this: the figures of /v1/health's
 * "pool", the pool's counters, and "latencies": {name: summary}, where a
 * summary is either {count, mean, p50, p90, p99, max} in milliseconds or
 * {count, sum_ms, buckets: [{le_ms, count}, ...]} (non-cumulative counts,
 * le_ms null for +Inf) from which the quantiles are estimated.
 *
 * A daemon without it still gets an answer: the figures from /v1/health,
 * the counters from /metrics, and the latencies from any Prometheus
 * histogram there (*_bucket{le=...}); if there is none, a line says the
 * latencies are not reported. Either way --json prints one object:
 * {"pool": {...}, "counters": {...}, "latencies": {name: {count, mean_ms,
 * p50_ms, p90_ms, p99_ms, max_ms, bucketed}}}. */
#include <getopt.h>

#include "ctl.h"
#include "render.h"
#include "table.h"

#define MAX_BUCKETS 64

static void help(void) {
        printf("Usage: sandpoolctl pool [--json]\n"
               "\n"
               "Pool figures (available, allocated, warming, total, capacity), the pool's\n"
               "counters, and the latencies of creating and destroying sandboxes (count, mean,\n"
               "p50/p90/p99, max, in milliseconds; '<=' marks an estimate from histogram\n"
               "buckets).\n");
}

/* Histogram buckets: upper bounds in ms (INFINITY-like: < 0), cumulative
 * counts. */
typedef struct hist {
        double le[MAX_BUCKETS], cum[MAX_BUCKETS];
        size_t n;
        double count, sum_ms;
} hist;

/* The upper bound of the bucket holding the q-th observation; -1 when it
 * is the +Inf bucket or there is none. */
static double hist_quantile(const hist *h, double q) {
        double want = q * h->count;

        for (size_t i = 0; i < h->n; i++)
                if (h->cum[i] >= want && h->cum[i] > 0)
                        return h->le[i];
        return -1;
}

static json_t *hist_summary(const hist *h) {
        json_t *o = json_pack("{s:I,s:b}", "count", (json_int_t) h->count, "bucketed", 1);
        static const struct {
                const char *key;
                double q;
        } qs[] = { { "p50_ms", 0.5 }, { "p90_ms", 0.9 }, { "p99_ms", 0.99 }, { "max_ms", 1.0 } };

        if (!o)
                return NULL;
        if (h->count > 0)
                json_object_set_new(o, "mean_ms", json_real(h->sum_ms / h->count));
        for (size_t i = 0; i < ELEMENTSOF(qs); i++) {
                double v = h->count > 0 ? hist_quantile(h, qs[i].q) : -1;
                json_object_set_new(o, qs[i].key, v >= 0 ? json_real(v) : json_null());
        }
        return o;
}

/* A summary from GET /v1/pool in one of its two forms, normalized. */
static json_t *native_summary(json_t *v) {
        json_t *buckets = json_object_get(v, "buckets"), *b;
        hist h = {};
        size_t i;
        double cum = 0;

        if (!json_is_array(buckets))
                return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:b}", "count", (json_int_t) json_int_or(v, "count", 0),
                                 "mean_ms", json_deep_copy(json_object_get(v, "mean") ?: json_null()),
                                 "p50_ms", json_deep_copy(json_object_get(v, "p50") ?: json_null()),
                                 "p90_ms", json_deep_copy(json_object_get(v, "p90") ?: json_null()),
                                 "p99_ms", json_deep_copy(json_object_get(v, "p99") ?: json_null()),
                                 "max_ms", json_deep_copy(json_object_get(v, "max") ?: json_null()), "bucketed", 0);
        json_array_foreach(buckets, i, b) {
                json_t *le = json_object_get(b, "le_ms");
                if (h.n == MAX_BUCKETS)
                        break;
                cum += (double) json_int_or(b, "count", 0);
                h.le[h.n] = json_is_number(le) ? json_number_value(le) : -1;
                h.cum[h.n++] = cum;
        }
        h.count = (double) json_int_or(v, "count", (int64_t) cum);
        h.sum_ms = json_is_number(json_object_get(v, "sum_ms")) ? json_number_value(json_object_get(v, "sum_ms")) : 0;
        return hist_summary(&h);
}

static json_t *native_latencies(json_t *pool) {
        json_t *lat = json_object_get(pool, "latencies"), *out = json_object(), *v;
        const char *k;

        json_object_foreach(lat, k, v)
                if (json_is_object(v))
                        json_object_set_new(out, k, native_summary(v));
        return out;
}

/* One Prometheus sample line: name, optional le label, value. */
static bool parse_sample(const char *line, size_t n, char *name, size_t name_size, double *ret_le, double *ret_v) {
        char buf[512], le[64] = "";
        const char *p;

        if (n >= sizeof(buf) || line[0] == '#' || strncmp(line, "sandpool_", 9) != 0)
                return false;
        memcpy(buf, line, n);
        buf[n] = 0;
        p = strpbrk(buf, "{ ");
        if (!p || (size_t) (p - buf) >= name_size)
                return false;
        memcpy(name, buf, (size_t) (p - buf));
        name[p - buf] = 0;
        if (*p == '{') {
                const char *l = strstr(p, "le=\"");
                if (l && sscanf(l + 4, "%63[^\"]", le) != 1)
                        return false;
                p = strchr(p, '}');
                if (!p)
                        return false;
                p++;
        }
        *ret_le = !le[0] ? 0 : streq(le, "+Inf") ? -1 : strtod(le, NULL);
        return sscanf(p, " %lf", ret_v) == 1;
}

static bool has_suffix(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && streq(s + n - m, suffix);
}

/* Counters (unlabeled pool and session samples) and histograms from a
 * /metrics page. */
void metrics_parse(const char *text, json_t *counters, json_t *latencies) {
        hist hs[8] = {};
        char families[8][128] = {};
        size_t n_fam = 0;

        for (const char *line = text; line && *line;) {
                const char *end = strchr(line, '\n');
                size_t n = end ? (size_t) (end - line) : strlen(line);
                char name[128];
                double le, v;

                if (parse_sample(line, n, name, sizeof(name), &le, &v)) {
                        bool seconds = strstr(name, "_seconds") != NULL;
                        double scale = seconds ? 1000.0 : 1.0;
                        char fam[128];
                        size_t i;

                        snprintf(fam, sizeof(fam), "%s", name);
                        if (has_suffix(fam, "_bucket") || has_suffix(fam, "_count") || has_suffix(fam, "_sum")) {
                                *strrchr(fam, '_') = 0;
                                for (i = 0; i < n_fam && !streq(families[i], fam); i++)
                                        ;
                                if (i == n_fam && n_fam < ELEMENTSOF(hs) && has_suffix(name, "_bucket"))
                                        snprintf(families[n_fam++], sizeof(families[0]), "%s", fam);
                        } else
                                i = ELEMENTSOF(hs);
                        if (i < n_fam) {
                                hist *h = &hs[i];
                                if (has_suffix(name, "_bucket") && h->n < MAX_BUCKETS) {
                                        h->le[h->n] = le < 0 ? -1 : le * scale;
                                        h->cum[h->n++] = v;
                                } else if (has_suffix(name, "_count"))
                                        h->count = v;
                                else if (has_suffix(name, "_sum"))
                                        h->sum_ms = v * scale;
                        } else if (!memchr(line, '{', n) &&
                                   (strstr(name + 9, "sandbox") || strstr(name + 9, "pool") ||
                                    strstr(name + 9, "capacity") || strstr(name + 9, "session")))
                                json_object_set_new(counters, name + 9, json_integer((json_int_t) (v + 0.5)));
                }
                line = end ? end + 1 : NULL;
        }
        for (size_t i = 0; i < n_fam; i++)
                json_object_set_new(latencies, families[i] + 9, hist_summary(&hs[i]));
}

static int pool_fallback(ctl *c, json_t **ret) {
        json_auto_t *h = NULL;
        api_reply m = {};
        int r;

        r = api_get_json(c, "/v1/health", "pool figures", false, &h);
        if (r != 0)
                return r;
        *ret = json_pack("{s:O,s:{},s:{}}", "pool", json_object_get(h, "pool"), "counters", "latencies");
        if (!*ret)
                return EXIT_FAIL;
        /* the counters and histograms are a bonus: without /metrics the
         * figures stand */
        r = api_request(c, "GET", "/metrics", NULL, NULL, 0, &m);
        if (r >= 0 && m.status == 200 && m.body)
                metrics_parse(m.body, json_object_get(*ret, "counters"), json_object_get(*ret, "latencies"));
        api_reply_done(&m);
        return 0;
}

/* GET /v1/pool's answer in the same shape as the fallback's. */
static json_t *pool_native(json_t *p) {
        static const char *const figures[] = { "available", "allocated", "warming", "total", "max_capacity" };
        json_t *out = json_pack("{s:{},s:{},s:o}", "pool", "counters", "latencies", native_latencies(p)), *v;
        const char *k;

        if (!out)
                return NULL;
        json_object_foreach(p, k, v) {
                bool figure = false;
                for (size_t i = 0; i < ELEMENTSOF(figures); i++)
                        figure = figure || streq(k, figures[i]);
                if (figure || streq(k, "target") || streq(k, "destroying"))
                        json_object_set(json_object_get(out, "pool"), k, v);
                else if (json_is_integer(v) || json_is_string(v))
                        json_object_set(json_object_get(out, "counters"), k, v);
        }
        return out;
}

static void add_ms(table *t, json_t *v, bool bucketed) {
        if (!json_is_number(v))
                table_add(t, "-");
        else
                table_addf(t, "%s%.2f", bucketed ? "<=" : "", json_number_value(v));
}

static void print_pool(json_t *pool) {
        static const char *const headers[] = { "LATENCY (ms)", ">COUNT", ">MEAN", ">P50", ">P90", ">P99", ">MAX" };
        _cleanup_table_ table *t = table_new(headers, ELEMENTSOF(headers));
        json_t *cnt = json_object_get(pool, "counters"), *v;
        const char *k;
        char buf[64];

        print_pool_line(json_object_get(pool, "pool"));
        if (json_object_size(cnt) > 0)
                printf("counters:\n");
        json_object_foreach(cnt, k, v)
                printf("  %-30s %s\n", k, format_limit(k, v, buf, sizeof(buf)));
        if (!t)
                return;
        json_object_foreach(json_object_get(pool, "latencies"), k, v) {
                bool b = json_is_true(json_object_get(v, "bucketed"));
                table_add(t, k);
                table_addf(t, "%lld", (long long) json_int_or(v, "count", 0));
                add_ms(t, json_object_get(v, "mean_ms"), false);
                add_ms(t, json_object_get(v, "p50_ms"), b);
                add_ms(t, json_object_get(v, "p90_ms"), b);
                add_ms(t, json_object_get(v, "p99_ms"), b);
                add_ms(t, json_object_get(v, "max_ms"), b);
        }
        if (table_rows(t) == 0) {
                printf("latencies: not reported by this daemon (it has no GET /v1/pool, and no histogram in "
                       "/metrics)\n");
                return;
        }
        printf("\n");
        table_print(t, stdout, 0, NULL, NULL);
}

/* The sessions' figures of /v1/health (keyed reuse, evictions, lifetime,
 * commands per session), when the daemon reports them. */
static void add_session_figures(ctl *c, json_t *pool) {
        api_reply h = {};

        if (api_request(c, "GET", "/v1/health", NULL, NULL, 0, &h) >= 0 && h.status == 200 &&
            json_is_object(json_object_get(h.json, "sessions")))
                json_object_set(pool, "sessions", json_object_get(h.json, "sessions"));
        api_reply_done(&h);
}

static void print_sessions(json_t *s) {
        if (!json_is_object(s))
                return;
        json_t *rate = json_object_get(s, "reuse_rate"), *life = json_object_get(s, "avg_lifetime_s"),
               *cmds = json_object_get(s, "avg_commands");
        printf("sessions: %lld keyed, key reuse %.1f%% (%lld hits, %lld misses), %lld evictions;"
               " %lld ended: %.1f s and %.1f commands on average\n",
               (long long) json_int_or(s, "keyed", 0), json_is_number(rate) ? 100 * json_number_value(rate) : 0.0,
               (long long) json_int_or(s, "key_hits", 0), (long long) json_int_or(s, "key_misses", 0),
               (long long) json_int_or(s, "evictions", 0), (long long) json_int_or(s, "ended", 0),
               json_is_number(life) ? json_number_value(life) : 0.0, json_is_number(cmds) ? json_number_value(cmds) : 0.0);
}

int cmd_pool(ctl *c, int argc, char **argv) {
        json_auto_t *pool = NULL;
        api_reply rep = {};
        int r;

        int e = parse_help_only(argc, argv, help);
        if (e >= 0)
                return e;
        if (optind < argc) {
                usage_error("pool", "unexpected argument '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        r = api_request(c, "GET", "/v1/pool", NULL, NULL, 0, &rep);
        if (r < 0)
                return report_transport_error(c, r, "pool figures");
        if (rep.status == 200 && json_is_object(rep.json))
                pool = pool_native(rep.json);
        else if (rep.status != 404) {
                r = report_http_error(c, &rep, "pool figures", false);
                api_reply_done(&rep);
                return r;
        }
        api_reply_done(&rep);
        if (!pool) {
                r = pool_fallback(c, &pool);
                if (r != 0)
                        return r;
        }
        add_session_figures(c, pool);
        if (c->json)
                print_json(pool);
        else {
                print_pool(pool);
                print_sessions(json_object_get(pool, "sessions"));
        }
        return EXIT_OK;
}
