/* SPDX-License-Identifier: MIT */
/* GET /v1/executions and GET /v1/usage: see api-tenants.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "api-tenants.h"
#include "records.h"
#include "tenant.h"

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
