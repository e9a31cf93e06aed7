/* SPDX-License-Identifier: MIT */
/* Calls of the public API and the messages that say what went wrong and
 * what to do about it. */
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

/* Bodies the CLI reads whole: JSON answers and files up to this size. */
#define REPLY_MAX (256u * 1024u * 1024u)

void api_reply_done(api_reply *r) {
        free(r->body);
        json_decref(r->json);
        *r = (api_reply) {};
}

int api_connection(ctl *c, http_conn **ret) {
        int r;

        if (!c->conn) {
                r = http_connect(c->socket, &c->conn);
                if (r < 0)
                        return r;
                if (c->timeout_ms > 0)
                        (void) http_set_timeout_ms(c->conn, c->timeout_ms);
        }
        *ret = c->conn;
        return 0;
}

void api_disconnect(ctl *c) {
        http_conn_free(c->conn);
        c->conn = NULL;
}

static int request_once(ctl *c, const char *method, const char *target, const char *content_type,
                        const void *body, size_t body_len, api_reply *ret, bool *ret_stale) {
        http_response resp;
        http_conn *conn;
        bool reused;
        int r;

        *ret_stale = false;
        r = api_connection(c, &conn);
        if (r < 0)
                return r;
        reused = http_conn_reused(conn);
        r = http_send_head(conn, method, target, content_type, body || body_len ? (int64_t) body_len : -1);
        if (r >= 0 && body_len > 0)
                r = http_send_body(conn, body, body_len);
        /* A daemon that refuses a request from its headers alone (unknown
         * session, too large) may answer and close before reading the
         * body: the answer is in our receive queue and beats EPIPE. */
        if (r >= 0 || ((r == -EPIPE || r == -ECONNRESET) && body_len > 0))
                r = http_read_head(conn, &resp);
        if (r < 0) {
                /* The daemon closes idle keep-alive connections: a request
                 * that fails at once on a reused connection never reached
                 * it, and is worth one more try on a fresh one. */
                *ret_stale = reused && (r == -EPIPE || r == -ECONNRESET);
                api_disconnect(c);
                return r;
        }
        *ret = (api_reply) { .status = resp.status, .retry_after = resp.retry_after };
        memcpy(ret->content_type, resp.content_type, sizeof(ret->content_type));
        r = http_read_body_all(conn, &resp, REPLY_MAX, &ret->body, &ret->body_len);
        if (r < 0 || resp.close)
                api_disconnect(c);
        if (r < 0)
                return r;
        if (strncmp(ret->content_type, "application/json", 16) == 0)
                ret->json = json_loadb(ret->body, ret->body_len, 0, NULL);
        return 0;
}

int api_request(ctl *c, const char *method, const char *target, const char *content_type, const void *body,
                size_t body_len, api_reply *ret) {
        bool stale;
        int r;

        *ret = (api_reply) {};
        r = request_once(c, method, target, content_type, body, body_len, ret, &stale);
        if (r < 0 && stale)
                r = request_once(c, method, target, content_type, body, body_len, ret, &stale);
        if (r < 0)
                api_reply_done(ret);
        return r;
}

int api_request_json(ctl *c, const char *method, const char *target, json_t *body, api_reply *ret) {
        _cleanup_free_ char *text = NULL;

        if (body) {
                text = json_dumps(body, JSON_COMPACT);
                if (!text)
                        return -ENOMEM;
        }
        return api_request(c, method, target, body ? "application/json" : NULL, text, text ? strlen(text) : 0, ret);
}

/* The group that may use the socket, to tell the caller which one to join. */
static void socket_group(const char *path, char *buf, size_t size) {
        struct stat st;
        struct group *g;
        _cleanup_free_ char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;

        snprintf(buf, size, "sandpool");
        if (stat(path, &st) < 0) {
                /* maybe the directory is what refuses us: its group then */
                if (!slash || slash == dir)
                        return;
                *slash = 0;
                if (stat(dir, &st) < 0)
                        return;
        }
        g = getgrgid(st.st_gid);
        if (g && st.st_gid != 0)
                snprintf(buf, size, "%s", g->gr_name);
}

static const char *user_name(void) {
        struct passwd *pw = getpwuid(getuid());

        return pw ? pw->pw_name : "YOUR_USER";
}

int report_transport_error(ctl *c, int r, const char *what) {
        char group[64];

        switch (r) {
        case -ENOENT:
        case -ENOTDIR:
                fprintf(c->err,
                        "sandpoolctl: %s: there is no socket at %s (%s).\n"
                        "Is the service running? Check 'systemctl status sandpool'; if the daemon listens\n"
                        "elsewhere, give its socket with --socket PATH or SANDPOOL_SOCKET.\n",
                        what, c->socket, c->socket_origin);
                return EXIT_UNREACHABLE;
        case -ECONNREFUSED:
                fprintf(c->err,
                        "sandpoolctl: %s: nothing listens on %s (%s): the service is not running and the\n"
                        "socket was left behind. Start it with 'systemctl start sandpool'.\n",
                        what, c->socket, c->socket_origin);
                return EXIT_UNREACHABLE;
        case -EACCES:
        case -EPERM:
                socket_group(c->socket, group, sizeof(group));
                fprintf(c->err,
                        "sandpoolctl: %s: permission denied on %s.\n"
                        "Only root and members of the group '%s' may use the service: ask an administrator\n"
                        "to run 'usermod -aG %s %s', then log in again.\n",
                        what, c->socket, group, group, user_name());
                return EXIT_PERMISSION;
        case -ENOTSOCK:
                fprintf(c->err, "sandpoolctl: %s: %s is not a socket: check --socket / SANDPOOL_SOCKET.\n", what,
                        c->socket);
                return EXIT_UNREACHABLE;
        case -ENAMETOOLONG:
                fprintf(c->err, "sandpoolctl: %s: the socket path %s is too long for a Unix socket.\n", what,
                        c->socket);
                return EXIT_USAGE;
        case -ECONNRESET:
        case -EPIPE:
                fprintf(c->err,
                        "sandpoolctl: %s: the daemon closed the connection before answering: did it stop or\n"
                        "crash? See 'journalctl -u sandpool'.\n",
                        what);
                return EXIT_UNREACHABLE;
        case -ETIMEDOUT:
                fprintf(c->err, "sandpoolctl: %s: the daemon did not answer in time.\n", what);
                return EXIT_UNREACHABLE;
        case -EPROTO:
                fprintf(c->err, "sandpoolctl: %s: the answer on %s is not valid HTTP: is it sandpoold's socket?\n",
                        what, c->socket);
                return EXIT_FAIL;
        default:
                fprintf(c->err, "sandpoolctl: %s: %s\n", what, strerror(-r));
                return EXIT_FAIL;
        }
}

static const char *reply_message(const api_reply *r, const char **ret_code) {
        json_t *e = r->json ? json_object_get(r->json, "error") : NULL;

        *ret_code = e ? json_str_or(e, "code", NULL) : NULL;
        if (e && json_str_or(e, "message", NULL))
                return json_str_or(e, "message", NULL);
        return r->body && r->body[0] && !r->json ? r->body : "(no message)";
}

int report_http_error(ctl *c, const api_reply *r, const char *what, bool route_has_id) {
        const char *code, *msg = reply_message(r, &code);

        if ((r->status == 404 && !route_has_id && (!code || streq(code, "not_found"))) || r->status == 405 ||
            r->status == 501) {
                fprintf(c->err,
                        "sandpoolctl: %s: the daemon at %s does not offer this (HTTP %u: %s).\n"
                        "It is older than this sandpoolctl, or the endpoint is not implemented yet.\n",
                        what, c->socket, r->status, msg);
                return EXIT_UNSUPPORTED;
        }
        fprintf(c->err, "sandpoolctl: %s: %s", what, msg);
        switch (r->status) {
        case 404:
                fprintf(c->err, "\n");
                return EXIT_NOT_FOUND;
        case 403:
                fprintf(c->err, "\n");
                return EXIT_PERMISSION;
        case 429:
                if (r->retry_after >= 0)
                        fprintf(c->err, " (no free sandbox: retry in %ld s)\n", r->retry_after);
                else
                        fprintf(c->err, " (no free sandbox: retry later)\n");
                return EXIT_NO_CAPACITY;
        case 503:
                fprintf(c->err, " (the daemon is shutting down: retry once it is back)\n");
                return EXIT_NO_CAPACITY;
        default:
                fprintf(c->err, " (HTTP %u%s%s)\n", r->status, code ? " " : "", code ? code : "");
                return EXIT_FAIL;
        }
}

int api_get_json(ctl *c, const char *target, const char *what, bool route_has_id, json_t **ret) {
        api_reply rep = {};
        int r;

        r = api_request(c, "GET", target, NULL, NULL, 0, &rep);
        if (r < 0)
                return report_transport_error(c, r, what);
        if (rep.status != 200) {
                r = report_http_error(c, &rep, what, route_has_id);
                api_reply_done(&rep);
                return r;
        }
        if (!json_is_object(rep.json)) {
                fprintf(c->err, "sandpoolctl: %s: the daemon's answer is not a JSON object\n", what);
                api_reply_done(&rep);
                return EXIT_FAIL;
        }
        *ret = json_incref(rep.json);
        api_reply_done(&rep);
        return 0;
}

int64_t json_int_or(json_t *o, const char *key, int64_t dflt) {
        json_t *v = o ? json_object_get(o, key) : NULL;

        if (json_is_integer(v))
                return json_integer_value(v);
        if (json_is_real(v))
                return (int64_t) json_real_value(v);
        return dflt;
}

const char *json_str_or(json_t *o, const char *key, const char *dflt) {
        json_t *v = o ? json_object_get(o, key) : NULL;

        return json_is_string(v) ? json_string_value(v) : dflt;
}

void print_json(json_t *j) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
}

bool session_id_valid(const char *id) {
        size_t n = strlen(id);

        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("0123456789abcdefABCDEF", id[i]))
                        return false;
        return true;
}

int parse_duration_ms(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t ms;
        } units[] = {
                { "ms", 1 }, { "s", 1000 }, { "sec", 1000 }, { "m", 60000 }, { "min", 60000 }, { "h", 3600000 },
                { "", 1000 },
        };
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || v < 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].suffix)) {
                        double ms = v * (double) units[i].ms;
                        if (ms > 1e15)
                                return -ERANGE;
                        *ret = (uint64_t) (ms + 0.5);
                        return 0;
                }
        return -EINVAL;
}

void usage_error(const char *cmd, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "sandpoolctl %s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'sandpoolctl %s --help'.\n", cmd);
}

int parse_help_only(int argc, char **argv, void (*help)(void)) {
        static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, {} };
        int o;

        while ((o = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
                if (o != 'h')
                        return EXIT_USAGE;
                help();
                return EXIT_OK;
        }
        return -1;
}

ssize_t base64_decode(char *s, size_t len) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        uint32_t acc = 0;
        size_t out = 0;
        int bits = 0;

        for (size_t i = 0; i < len && s[i] != '='; i++) {
                const char *p = s[i] ? strchr(alphabet, s[i]) : NULL;
                if (!p)
                        return -EINVAL;
                acc = (acc << 6) | (uint32_t) (p - alphabet);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        s[out++] = (char) ((acc >> bits) & 0xff);
                }
        }
        return (ssize_t) out;
}
