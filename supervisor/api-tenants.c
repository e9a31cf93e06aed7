/* SPDX-License-Identifier: MIT */
/* GET /v1/executions and GET /v1/usage: see api-tenants.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "api-tenants.h"
#include "records.h"
#include "tenant.h"
#include "util.h"

#define EXECUTIONS_DEFAULT_LIMIT 100

/* A query on the records' thread is the request's op: a client that goes
 * away cancels it. */
static void query_free(request *r, void *op) {
        records_query_cancel(op);
}

static void query_abort(request *r, void *op) {
        request_set_op(r, NULL, NULL); /* cancels it */
}

static const request_op_ops query_ops = {
        .abort = query_abort,
        .free = query_free,
};

static void executions_answered(json_t *rows, const char *error, void *userdata) {
        request *r = userdata;

        (void) request_take_op(r); /* answered: nothing to cancel */
        if (!rows)
                reply_error(r, 503, "unavailable", "the execution records cannot be read: %s", error ? error : "?");
        else
                reply_json(r, 200, rows);
        request_complete(r);
}

static const char *arg(request *r, const char *name) {
        return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *ret) {
        char *end;

        if (!s || !*s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* since: ms since the epoch, or an ISO 8601 UTC time ("2026-12-03T12:00:00Z"). */
static int parse_since(const char *s, int64_t *ret) {
        struct tm tm = {};
        uint64_t v;

        if (parse_u64(s, INT64_MAX, &v) >= 0) {
                *ret = (int64_t) v;
                return 0;
        }
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end)
                return -EINVAL;
        unsigned ms = 0;
        if (*end == '.') {
                char *e2;
                ms = (unsigned) strtoul(end + 1, &e2, 10) % 1000;
                end = e2;
        }
        if (!streq(end, "Z") && *end)
                return -EINVAL;
        *ret = (int64_t) timegm(&tm) * 1000 + ms;
        return 0;
}

void api_executions(request *r) {
        records_filter f = {.limit = EXECUTIONS_DEFAULT_LIMIT, .by_uid = true, .uid = r->cl->uid};
        const char *v;
        uint64_t n;
        records_query *q;

        if (!r->srv->records)
                return reply_error(r, 404, "not_found", "execution records are off ([records] records_enabled = false)");
        if ((v = arg(r, "limit"))) {
                if (parse_u64(v, 10000, &n) < 0 || n == 0)
                        return reply_error(r, 400, "bad_request", "limit: a whole number from 1 to 10000");
                f.limit = (uint32_t) n;
        }
        if ((v = arg(r, "since")) && parse_since(v, &f.since_ms) < 0)
                return reply_error(r, 400, "bad_request", "since: ms since the epoch or YYYY-MM-DDTHH:MM:SSZ");
        if ((v = arg(r, "session"))) {
                if (strlen(v) != 32 || strspn(v, "0123456789abcdef") != 32)
                        return reply_error(r, 400, "bad_request", "session: a session id (32 hex digits)");
                f.session = v;
        }
        /* Everyone sees their own rows; an administrator all of them, or
         * one uid's. */
        if (r->cl->admin)
                f.by_uid = false;
        if ((v = arg(r, "uid"))) {
                if (parse_u64(v, UINT32_MAX, &n) < 0)
                        return reply_error(r, 400, "bad_request", "uid: a number");
                if (!r->cl->admin && n != r->cl->uid)
                        return reply_error(r, 403, "forbidden", "only an administrator sees another uid's records");
                f.by_uid = true;
                f.uid = (uint32_t) n;
        }
        int k = records_find(r->srv->records, &f, executions_answered, r, &q);
        if (k < 0)
                return reply_error(r, 503, "unavailable", "the execution records cannot be read: %s", strerror(-k));
        request_set_op(r, &query_ops, q);
        request_suspend(r);
}

void reply_quota_exceeded(request *r, const tenant_refusal *q) {
        char msg[256], retry[32];
        int64_t now = wall_clock_ms();

        if (q->resets_at_ms)
                snprintf(msg, sizeof(msg), "quota %s of tier %s reached: %" PRIu64 " of %" PRIu64 " used today",
                         q->quota, q->tier, q->used, q->limit);
        else
                snprintf(msg, sizeof(msg), "quota %s of tier %s reached: %" PRIu64 " of %" PRIu64 " in use",
                         q->quota, q->tier, q->used, q->limit);
        json_t *e = json_pack("{s:{s:s,s:s,s:s,s:s,s:I,s:I,s:o}}", "error", "code", "quota_exceeded", "message", msg,
                              "tier", q->tier, "quota", q->quota, "limit", (json_int_t) q->limit,
                              "used", (json_int_t) q->used,
                              "resets_at", q->resets_at_ms ? json_time((usec_t) q->resets_at_ms * USEC_PER_MSEC)
                                                           : json_null());
        r->srv->metrics.quota_refusals++;
        reply_json(r, 429, e);
        snprintf(retry, sizeof(retry), "%" PRId64,
                 q->resets_at_ms > now ? (q->resets_at_ms - now + 999) / 1000 : (int64_t) 1);
        if (r->reply)
                MHD_add_response_header(r->reply, "Retry-After", retry);
}

void api_usage(request *r) {
        const char *v = arg(r, "uid");
        uint64_t n;

        if (r->cl->admin && v && streq(v, "all"))
                return reply_json(r, 200, tenant_usage_all_json(r->srv));
        if (v) {
                if (parse_u64(v, UINT32_MAX, &n) < 0)
                        return reply_error(r, 400, "bad_request", "uid: a number, or 'all' (administrators)");
                if (!r->cl->admin && n != r->cl->uid)
                        return reply_error(r, 403, "forbidden", "only an administrator sees another uid's usage");
                /* another uid's gid is not known here: its uid mapping, or what was seen of it */
                json_t *j = tenant_usage_json(r->srv, (uid_t) n, n == r->cl->uid ? r->cl->gid : (gid_t) -1);
                return j ? reply_json(r, 200, j) : reply_error(r, 500, "internal", "out of memory");
        }
        json_t *j = tenant_usage_json(r->srv, r->cl->uid, r->cl->gid);
        if (!j)
                return reply_error(r, 500, "internal", "out of memory");
        reply_json(r, 200, j);
}
