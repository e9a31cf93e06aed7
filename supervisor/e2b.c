/* SPDX-License-Identifier: MIT */
/* The E2B-compatible listener (e2b.h): the HTTP glue, API keys, and the
 * control API mapped onto sessions. The in-sandbox API is e2b-envd.c.
 *
 * The SDK is pointed here with E2B_API_URL (its control API) and
 * E2B_SANDBOX_URL (its in-sandbox API) both set to http://127.0.0.1:PORT:
 * with a sandbox URL set, the SDK sends every in-sandbox call there,
 * naming the sandbox in the E2b-Sandbox-Id header, so no per-sandbox host
 * name (DNS, /etc/hosts) is needed. Each sandbox gets an access token at
 * create (the SDK sends it back as X-Access-Token on every in-sandbox
 * call): the session id alone does not let anyone in. Keys and tokens
 * are compared in constant time and never logged. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "e2b-envd.h"
#include "e2b.h"
#include "log.h"
#include "template.h"
#include "util.h"

#ifndef UID_MAX
#define UID_MAX ((uid_t) -1)
#endif

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

typedef struct e2b_key {
        char *key;
        uid_t uid;
} e2b_key;

/* A sandbox made through this API: its session's id, access token, owner. */
typedef struct e2b_box {
        struct e2b_box *next;
        char id[33];
        char token[33];
        uid_t uid;
} e2b_box;

struct e2b {
        server *srv;
        char *tls_cert, *tls_key; /* PEM, for MHD (which wants them in memory) */
        struct MHD_Daemon *mhd;
        sd_event_source *io, *timer, *kick;
        e2b_key *keys;
        size_t n_keys;
        e2b_box *boxes;
};

static e2b *the_e2b; /* one listener per daemon */

/* A client has this long to send its request's headers, and a JSON body
 * after them: MHD's idle timeout alone lets a client that sends a byte
 * every few seconds hold a connection forever. Uploads are bounded by
 * max_upload and MHD's idle timeout. */
#define HEADER_DEADLINE_USEC (10 * USEC_PER_SEC)
#define BODY_DEADLINE_USEC (30 * USEC_PER_SEC)
/* ... and a kept-alive connection this long for its next request (longer
 * than clients keep idle connections: undici's 4 s, so they close first) */
#define KEEPALIVE_DEADLINE_USEC (60 * USEC_PER_SEC)

typedef struct e2b_conn {
        e2b *e;
        int fd;
        sd_event_source *deadline;
} e2b_conn;

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_size,
                                      void **con_cls);
static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe);
static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe);
static void conn_deadline(struct MHD_Connection *conn, usec_t in);

/* ---- keys ------------------------------------------------------------------------ */

static bool secret_equal(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        unsigned char d = la != lb;

        for (size_t i = 0; i < la; i++)
                d |= (unsigned char) a[i] ^ (unsigned char) b[i % (lb ? lb : 1)];
        return d == 0;
}

static void keys_free(e2b *e) {
        for (size_t i = 0; i < e->n_keys; i++) {
                explicit_bzero(e->keys[i].key, strlen(e->keys[i].key));
                free(e->keys[i].key);
        }
        free(e->keys);
        e->keys = NULL;
        e->n_keys = 0;
}

/* "KEY:UID" a line; '#' starts a comment. The file holds secrets: it must
 * belong to root and not be readable by others. */
static int keys_load(e2b *e, const char *path) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[512];
        struct stat st;
        unsigned lineno = 0;

        f = fopen(path, "re");
        if (!f)
                return log_error_errno(-errno, "Failed to open the E2B keys file %s", path);
        if (fstat(fileno(f), &st) < 0)
                return -errno;
        if (st.st_uid != 0 || (st.st_mode & 0007)) {
                log_error("E2B keys file %s must be owned by root and not readable by others", path);
                return -EPERM;
        }
        while (fgets(line, sizeof(line), f)) {
                char *colon, *end, *k = line;
                lineno++;
                line[strcspn(line, "\r\n")] = 0;
                k += strspn(k, " \t");
                if (!*k || *k == '#')
                        continue;
                colon = strrchr(k, ':');
                if (!colon || colon == k) {
                        log_error("%s:%u: not KEY:UID", path, lineno);
                        return -EINVAL;
                }
                *colon = 0;
                errno = 0;
                unsigned long uid = strtoul(colon + 1, &end, 10);
                if (errno || end == colon + 1 || *end || uid >= UINT32_MAX) {
                        log_error("%s:%u: not a uid after the key", path, lineno);
                        return -EINVAL;
                }
                e2b_key *n = realloc(e->keys, (e->n_keys + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                e->keys = n;
                if (!(n[e->n_keys].key = strdup(k)))
                        return -ENOMEM;
                n[e->n_keys++].uid = (uid_t) uid;
        }
        explicit_bzero(line, sizeof(line));
        if (e->n_keys == 0)
                log_warning("E2B keys file %s holds no key: every call will be refused", path);
        return 0;
}

/* The uid of the request's X-API-Key: 0 found, -EACCES none or unknown. */
static int key_uid(e2b *e, struct MHD_Connection *conn, uid_t *ret) {
        const char *k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key");
        int found = -EACCES;

        if (!k || !*k)
                return -EACCES;
        for (size_t i = 0; i < e->n_keys; i++) /* no early exit: constant time in the keys */
                if (secret_equal(k, e->keys[i].key) && found < 0) {
                        *ret = e->keys[i].uid;
                        found = 0;
                }
        return found;
}

/* A whole PEM file. A key must be root's and unreadable by others. */
static int read_pem(const char *path, bool secret, char **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n;

        if (!f)
                return log_error_errno(-errno, "Failed to open %s", path);
        if (fstat(fileno(f), &st) < 0)
                return -errno;
        if (secret && (st.st_uid != 0 || (st.st_mode & 0007))) {
                log_error("TLS key %s must be owned by root and not readable by others", path);
                return -EPERM;
        }
        if (st.st_size <= 0 || st.st_size > 1024 * 1024) {
                log_error("%s: not a PEM file of a sensible size", path);
                return -EINVAL;
        }
        buf = calloc(1, (size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, (size_t) st.st_size, f);
        if (n != (size_t) st.st_size)
                return -EIO;
        *ret = TAKE_PTR(buf);
        return 0;
}

static struct MHD_Daemon *start_mhd(e2b *e, int fd) {
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

        if (e->tls_cert)
                return MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, access_handler, e,
                                        MHD_OPTION_HTTPS_MEM_CERT, e->tls_cert, MHD_OPTION_HTTPS_MEM_KEY,
                                        e->tls_key, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                                        256u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (64 * 1024),
                                        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_NOTIFY_COMPLETED,
                                        request_completed, e, MHD_OPTION_NOTIFY_CONNECTION, connection_notify,
                                        e, MHD_OPTION_END);
        return MHD_start_daemon(flags, 0, NULL, NULL, access_handler, e, MHD_OPTION_LISTEN_SOCKET, fd,
                                MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                (size_t) (64 * 1024), MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                                MHD_OPTION_NOTIFY_COMPLETED, request_completed, e, MHD_OPTION_NOTIFY_CONNECTION,
                                connection_notify, e, MHD_OPTION_END);
}

/* ---- boxes ----------------------------------------------------------------------- */

static e2b_box *box_find(e2b *e, const char *id) {
        for (e2b_box *b = e->boxes; b; b = b->next)
                if (streq(b->id, id))
                        return b;
        return NULL;
}

static void box_drop(e2b *e, e2b_box *b) {
        for (e2b_box **p = &e->boxes; *p; p = &(*p)->next)
                if (*p == b) {
                        *p = b->next;
                        explicit_bzero(b->token, sizeof(b->token));
                        free(b);
                        return;
                }
}

/* The session of a box, if it still runs; a box whose session ended is
 * forgotten here. */
static session *box_session(e2b *e, e2b_box *b) {
        session *s = session_lookup(e->srv, b->id, b->uid, false);

        if (!s || s->state == SESSION_ENDING) {
                box_drop(e, b);
                return NULL;
        }
        return s;
}

session *e2b_envd_session(e2b_req *q) {
        const char *id = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "E2b-Sandbox-Id");
        const char *tok = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Access-Token");
        e2b_box *b = id ? box_find(q->e, id) : NULL;
        session *s;

        if (!id) {
                e2b_reply_connect_error(q, "invalid_argument", "no E2b-Sandbox-Id header: set E2B_SANDBOX_URL to this listener");
                return NULL;
        }
        if (!b || !(s = box_session(q->e, b))) {
                /* a sandbox that ended, or never was: the SDK maps 502 to "not running" */
                e2b_reply_connect_error(q, "not_found", "sandbox %s is not running", id);
                return NULL;
        }
        if (!tok || !secret_equal(tok, b->token)) {
                e2b_reply_connect_error(q, "unauthenticated", "a wrong or missing X-Access-Token for sandbox %s", id);
                return NULL;
        }
        if (s->state != SESSION_READY) {
                e2b_reply_connect_error(q, "unavailable", "sandbox %s is not ready", id);
                return NULL;
        }
        session_touch(s);
        return s;
}

/* ---- replies --------------------------------------------------------------------- */

void e2b_reply(e2b_req *q, unsigned status, struct MHD_Response *resp) {
        if (!resp) {
                q->reply_status = 0;
                return;
        }
        if (q->reply)
                MHD_destroy_response(q->reply);
        q->reply = resp;
        q->reply_status = status;
}

void e2b_reply_json(e2b_req *q, unsigned status, json_t *body) {
        _cleanup_free_ char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!s) {
                static const char oom[] = "{\"code\":500,\"message\":\"out of memory\"}";
                struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *) oom,
                                                                         MHD_RESPMEM_PERSISTENT);
                if (r)
                        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
                return e2b_reply(q, 500, r);
        }
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_COPY);
        if (r)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        e2b_reply(q, status, r);
}

void e2b_reply_error(e2b_req *q, unsigned status, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        e2b_reply_json(q, status, json_pack("{s:i,s:s}", "code", (int) status, "message", msg));
}

unsigned e2b_connect_status(const char *code) {
        static const struct { const char *code; unsigned status; } map[] = {
                { "invalid_argument", 400 }, { "failed_precondition", 400 }, { "out_of_range", 400 },
                { "unauthenticated", 401 }, { "permission_denied", 403 }, { "not_found", 404 },
                { "already_exists", 409 }, { "aborted", 409 }, { "resource_exhausted", 429 },
                { "canceled", 499 }, { "unimplemented", 501 }, { "unavailable", 503 },
                { "deadline_exceeded", 504 },
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (streq(map[i].code, code))
                        return map[i].status;
        return 500;
}

void e2b_reply_connect_error(e2b_req *q, const char *code, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (q->streaming)
                return e2b_envd_stream_error(q, code, msg);
        e2b_reply_json(q, e2b_connect_status(code), json_pack("{s:s,s:s}", "code", code, "message", msg));
}

static void e2b_kick(e2b *e) {
        if (e->kick)
                (void) sd_event_source_set_enabled(e->kick, SD_EVENT_ONESHOT);
}

static int on_hangup(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        e2b_req *q = userdata;

        /* MHD does not watch a suspended connection: without this a client
         * gone from a quiet stream would hold its connection (and its
         * reader) for as long as the process runs. A create waiting for
         * its sandbox stays suspended: its callback still comes, and ends
         * the sandbox nobody will use. */
        q->hup_src = sd_event_source_disable_unref(q->hup_src);
        q->aborted = true;
        if (!q->pending)
                e2b_resume(q);
        return 0;
}

void e2b_suspend(e2b_req *q) {
        const union MHD_ConnectionInfo *ci;

        if (q->suspended)
                return;
        MHD_suspend_connection(q->conn);
        q->suspended = true;
        ci = MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci && !q->hup_src &&
            sd_event_add_io(q->srv->event, &q->hup_src, ci->connect_fd, EPOLLRDHUP, on_hangup, q) >= 0)
                (void) sd_event_source_set_priority(q->hup_src, PRIO_ENDS);
}

void e2b_resume(e2b_req *q) {
        q->hup_src = sd_event_source_disable_unref(q->hup_src);
        if (q->suspended) {
                q->suspended = false;
                MHD_resume_connection(q->conn);
                /* no internal thread: nothing wakes the loop for MHD */
                e2b_kick(q->e);
        }
}

void e2b_set_op(e2b_req *q, const e2b_op_ops *ops, void *op) {
        if (q->op && q->op_ops && q->op_ops->free)
                q->op_ops->free(q->op);
        q->op = op;
        q->op_ops = ops;
}

/* ---- the control API ------------------------------------------------------------- */

static json_t *box_json(session *s, e2b_box *b, bool with_token) {
        usec_t end = s->created_real + s->timeout_ms * USEC_PER_MSEC;
        const char *tmpl = s->tmpl ? template_name(s->tmpl) : "base";
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:i,s:i,s:i,s:s,s:O,s:s,s:n}", "templateID", tmpl,
                              "sandboxID", s->id, "clientID", "sandpool", "alias", tmpl, "startedAt",
                              json_time(s->created_real), "endAt", json_time(end), "cpuCount", 1, "memoryMB",
                              (int) (s->limits.memory_bytes / (1024 * 1024)), "diskSizeMB",
                              (int) (s->srv->config.cfg.disk_limit / (1024 * 1024)), "state", "running", "metadata",
                              s->labels ? s->labels : json_object(), "envdVersion", E2B_ENVD_VERSION, "domain");
        if (o && with_token)
                json_object_set_new(o, "envdAccessToken", json_string(b->token));
        return o;
}

static void create_answer(e2b_req *q, session *s) {
        e2b_box *b = calloc(1, sizeof(*b));

        if (!b || random_id_hex(b->token, 16) < 0) {
                free(b);
                session_destroy(s, "out of memory");
                return e2b_reply_error(q, 500, "out of memory");
        }
        memcpy(b->id, s->id, sizeof(b->id));
        b->uid = s->owner;
        b->next = q->e->boxes;
        q->e->boxes = b;
        log_session(LOG_INFO, s->id, "created through the E2B API");
        e2b_reply_json(q, 201, box_json(s, b, true));
}

static void create_ready(session *s, int error, const char *message, void *userdata) {
        e2b_req *q = userdata;

        if (!q || q->aborted) {
                if (error >= 0)
                        session_end_later(s, "its E2B client went away before it was ready");
                if (q) {
                        q->pending = NULL;
                        e2b_resume(q);
                }
                return;
        }
        q->pending = NULL;
        if (error < 0)
                e2b_reply_error(q, 500, "the sandbox failed to start: %s", message ? message : strerror(-error));
        else
                create_answer(q, s);
        e2b_resume(q);
}

/* "base" is the image; any other name a sandpool template (POST
 * /v1/templates) the key's uid may use: its own, or one the configuration
 * shares with everyone (group sharing needs a Unix socket peer). */
static int create_template(e2b_req *q, uid_t uid, const char *name, session_params *p) {
        const char *why = NULL;
        template *t;

        if (!name || streq(name, "base"))
                return 0;
        t = template_lookup(q->srv, name, uid, -EBADF, false);
        if (!t) {
                e2b_reply_error(q, 404, "no template '%s': 'base' (the image), or a sandpool template of yours", name);
                return -ENOENT;
        }
        p->from = template_pool(t, &why);
        if (!p->from) {
                e2b_reply_error(q, 409, "template %s cannot be used: %s", name, why);
                return -EBUSY;
        }
        p->tmpl = t;
        return 0;
}

/* E2B's create body mapped onto POST /v1/sessions': timeout (s) is the
 * lifetime (an E2B sandbox has no idle timeout: the idle timeout is the
 * same), metadata the labels, envVars the environment. */
static int create_params(e2b_req *q, uid_t uid, json_t *body, session_params *p) {
        json_t *tmpl = json_object_get(body, "templateID"), *to = json_object_get(body, "timeout");
        json_t *md = json_object_get(body, "metadata"), *env = json_object_get(body, "envVars");
        json_auto_t *sp = json_object();
        sp_error err = {};

        if (tmpl && !json_is_null(tmpl) && !json_is_string(tmpl)) {
                e2b_reply_error(q, 400, "'templateID' must be a template's name");
                return -EINVAL;
        }
        if (json_is_true(json_object_get(body, "autoPause")) || json_object_get(body, "volumeMounts") ||
            (json_object_get(body, "mcp") && !json_is_null(json_object_get(body, "mcp")))) {
                e2b_reply_error(q, 400, "sandpool does not pause sandboxes, mount volumes or run MCP gateways");
                return -EINVAL;
        }
        uint64_t timeout_s = 300; /* the SDK's default */
        if (to && !json_is_null(to)) {
                if (!json_is_integer(to) || json_integer_value(to) < 1) {
                        e2b_reply_error(q, 400, "'timeout' must be a positive number of seconds");
                        return -EINVAL;
                }
                timeout_s = (uint64_t) json_integer_value(to);
        }
        /* sandpool's own caps hold: at most session_timeout */
        timeout_s = MIN(timeout_s, q->srv->config.cfg.session_timeout_ms / 1000);
        timeout_s = MAX(timeout_s, 1);
        if (!sp || json_object_set_new(sp, "timeout_s", json_integer((json_int_t) timeout_s)) < 0 ||
            json_object_set_new(sp, "idle_timeout_s", json_integer((json_int_t) timeout_s)) < 0 ||
            (md && !json_is_null(md) && json_object_set(sp, "labels", md) < 0) ||
            (env && !json_is_null(env) && json_object_set(sp, "env", env) < 0)) {
                e2b_reply_error(q, 500, "out of memory");
                return -ENOMEM;
        }
        int k = session_params_from_json(q->srv, sp, p, &err);
        if (k < 0) {
                e2b_reply_error(q, 400, "%s", err.message);
                return k;
        }
        return create_template(q, uid, tmpl ? json_string_value(tmpl) : NULL, p);
}

static void api_create(e2b_req *q, uid_t uid, json_t *body) {
        session_params p;
        sp_error err = {};
        session *s = NULL;

        if (create_params(q, uid, body, &p) < 0)
                return;
        int k = session_new(q->srv, uid, &p, false, create_ready, q, &s, &err);
        if (k == -EBUSY)
                return e2b_reply_error(q, 429, "no free sandbox: every slot is in use");
        if (k == -EDQUOT)
                return e2b_reply_error(q, 429, "%s", err.message);
        if (k < 0)
                return e2b_reply_error(q, 500, "cannot create a sandbox: %s", err.message);
        if (k == 1)
                return create_answer(q, s);
        q->pending = s;
        e2b_suspend(q);
}

static void percent_decode(char *p) {
        char *w = p;

        for (; *p; p++) {
                unsigned v;
                if (*p == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1) {
                        *w++ = (char) v;
                        p += 2;
                } else
                        *w++ = *p == '+' ? ' ' : *p;
        }
        *w = 0;
}

/* The list's filters: metadata=k%3Dv%26k2%3Dv2 (pairs the session's labels
 * must have), state=running,paused (sandpool's are all running). */
static bool list_match(session *s, const char *metadata, const char *state) {
        _cleanup_free_ char *copy = metadata ? strdup(metadata) : NULL;
        char *save = NULL;

        if (state && !strstr(state, "running"))
                return false;
        if (!copy)
                return true;
        for (char *kv = strtok_r(copy, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
                char *eq = strchr(kv, '=');
                if (!eq)
                        return false;
                *eq = 0;
                percent_decode(kv);
                percent_decode(eq + 1);
                const char *have = json_string_value(json_object_get(s->labels, kv));
                if (!have || !streq(have, eq + 1))
                        return false;
        }
        return true;
}

static json_t *list_json(e2b_req *q, uid_t uid) {
        const char *md = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "metadata");
        const char *state = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "state");
        json_t *a = json_array();

        for (e2b_box *b = q->e->boxes, *next; a && b; b = next) {
                next = b->next;
                if (b->uid != uid)
                        continue;
                session *s = box_session(q->e, b);
                if (s && s->state == SESSION_READY && list_match(s, md, state))
                        json_array_append_new(a, box_json(s, b, false));
        }
        return a;
}

/* The box of /sandboxes/{id}[/...] that uid may see, or NULL after a 404. */
static e2b_box *box_from_url(e2b_req *q, const char *rest, uid_t uid, session **ret) {
        char id[33];
        size_t n = strcspn(rest, "/");
        e2b_box *b;

        if (n == 0 || n >= sizeof(id)) {
                e2b_reply_error(q, 404, "sandbox not found");
                return NULL;
        }
        memcpy(id, rest, n);
        id[n] = 0;
        b = box_find(q->e, id);
        if (!b || b->uid != uid || !(*ret = box_session(q->e, b))) {
                e2b_reply_error(q, 404, "sandbox %s not found", id);
                return NULL;
        }
        return b;
}

/* The new end: timeout seconds from now, within the session's cap. */
static void set_timeout(session *s, json_t *to) {
        uint64_t now = now_mono();
        uint64_t secs = MIN((uint64_t) json_integer_value(to), s->srv->config.cfg.session_timeout_ms / 1000);
        uint64_t lived_ms = (now - s->created_mono) / USEC_PER_MSEC;

        s->timeout_ms = lived_ms + secs * 1000;
        s->idle_timeout_ms = MAX(secs * 1000, 1);
        session_touch(s);
        session_rearm_timer(s);
}

static void api_sandbox(e2b_req *q, uid_t uid, const char *rest, json_t *body) {
        const char *sub = strchr(rest, '/');
        session *s = NULL;
        e2b_box *b = box_from_url(q, rest, uid, &s);

        if (!b)
                return;
        if (!sub && streq(q->method, "GET"))
                return e2b_reply_json(q, 200, box_json(s, b, false));
        if (!sub && streq(q->method, "DELETE")) {
                log_session(LOG_INFO, s->id, "killed through the E2B API");
                session_destroy(s, "killed through the E2B API");
                box_drop(q->e, b);
                return e2b_reply(q, 204, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
        }
        if (sub && (streq(sub, "/timeout") || streq(sub, "/connect")) && streq(q->method, "POST")) {
                json_t *to = json_object_get(body, "timeout");
                if (to && !json_is_null(to) && (!json_is_integer(to) || json_integer_value(to) < 0))
                        return e2b_reply_error(q, 400, "'timeout' must be a number of seconds");
                if (to && json_is_integer(to))
                        set_timeout(s, to);
                if (streq(sub, "/connect"))
                        return e2b_reply_json(q, 200, box_json(s, b, true));
                return e2b_reply(q, 204, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
        }
        e2b_reply_error(q, 501, "sandpool does not support %s /sandboxes/{id}%s (pause, resume, snapshots, "
                        "fork, metrics, network updates)", q->method, sub ? sub : "");
}

static void control_dispatch(e2b_req *q) {
        json_auto_t *body = NULL;
        const char *u = q->url;
        uid_t uid = UID_MAX;

        if (key_uid(q->e, q->conn, &uid) < 0)
                return e2b_reply_error(q, 401, "Invalid API key");
        if (q->too_large)
                return e2b_reply_error(q, 413, "the body is larger than %u bytes", E2B_MAX_BODY);
        if (q->body_len > 0) {
                json_error_t jerr;
                body = json_loadb(q->body, q->body_len, 0, &jerr);
                if (!json_is_object(body))
                        return e2b_reply_error(q, 400, "the body is not a JSON object: %s", jerr.text);
        } else
                body = json_object();
        if (startswith(u, "/v2"))
                u += 3;
        if (streq(u, "/sandboxes") && streq(q->method, "POST"))
                return api_create(q, uid, body);
        if (streq(u, "/sandboxes") && streq(q->method, "GET"))
                return e2b_reply_json(q, 200, list_json(q, uid));
        if (startswith(u, "/sandboxes/"))
                return api_sandbox(q, uid, u + strlen("/sandboxes/"), body);
        e2b_reply_error(q, 501, "sandpool does not support %s %s (template builds, snapshots, volumes, teams)", q->method,
                        q->url);
}

/* ---- MHD ------------------------------------------------------------------------- */

static bool is_envd(const char *url) {
        return startswith(url, "/process.") || startswith(url, "/filesystem.") || streq(url, "/files") ||
               streq(url, "/health") || streq(url, "/envs") || streq(url, "/init") || streq(url, "/metrics");
}

static enum MHD_Result queue(e2b_req *q) {
        struct MHD_Response *r = TAKE_PTR(q->reply);
        enum MHD_Result k;

        if (!r)
                return MHD_NO;
        k = MHD_queue_response(q->conn, q->reply_status, r);
        MHD_destroy_response(r);
        return k;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_size,
                                      void **con_cls) {
        e2b *e = cls;
        e2b_req *q = *con_cls;

        if (!q) {
                q = calloc(1, sizeof(*q));
                if (!q)
                        return MHD_NO;
                *q = (e2b_req) { .e = e, .srv = e->srv, .conn = conn, .method = method, .url = url };
                *con_cls = q;
                if (is_envd(url))
                        e2b_envd_begin(q); /* an upload takes its body as it comes */
                /* the headers are in: now the body, if any, has its own time */
                conn_deadline(conn, q->upload ? 0 : BODY_DEADLINE_USEC);
                return MHD_YES;
        }
        if (*upload_size > 0) {
                if (q->upload) {
                        if (q->upload(q, upload_data, *upload_size) < 0)
                                q->too_large = true; /* the error is the writer's to say */
                } else if (q->body_len + *upload_size > E2B_MAX_BODY)
                        q->too_large = true;
                else if (!q->too_large) {
                        char *n = realloc(q->body, q->body_len + *upload_size + 1);
                        if (!n)
                                return MHD_NO;
                        q->body = n;
                        memcpy(q->body + q->body_len, upload_data, *upload_size);
                        q->body_len += *upload_size;
                        q->body[q->body_len] = 0;
                }
                *upload_size = 0;
                return MHD_YES;
        }
        conn_deadline(conn, 0);
        if (!q->handled) {
                q->handled = true;
                e->srv->metrics.requests_total++;
                if (is_envd(url))
                        e2b_envd_dispatch(q);
                else
                        control_dispatch(q);
        }
        if (q->suspended)
                return MHD_YES;
        return queue(q);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
        e2b_req *q = *con_cls;

        if (!q)
                return;
        if (q->pending)
                q->pending->ready_userdata = NULL; /* cannot happen while suspended; be safe */
        q->hup_src = sd_event_source_disable_unref(q->hup_src);
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
                conn_deadline(conn, KEEPALIVE_DEADLINE_USEC);
        e2b_set_op(q, NULL, NULL);
        if (q->reply)
                MHD_destroy_response(q->reply);
        free(q->body);
        free(q);
        *con_cls = NULL;
}

static void e2b_run(e2b *e) {
        MHD_UNSIGNED_LONG_LONG ms;
        uint64_t now;

        (void) MHD_run(e->mhd);
        if (MHD_get_timeout(e->mhd, &ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(e->timer, SD_EVENT_OFF);
                return;
        }
        /* MHD's timeout is relative ms; sd-event wants absolute usec */
        (void) sd_event_now(e->srv->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(e->timer, now + ms * USEC_PER_MSEC);
        (void) sd_event_source_set_enabled(e->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        e2b_run(userdata);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        e2b_run(userdata);
        return 0;
}

static int on_kick(sd_event_source *s, void *userdata) {
        e2b_run(userdata);
        return 0;
}

static int on_conn_deadline(sd_event_source *src, uint64_t usec, void *userdata) {
        e2b_conn *c = userdata;

        /* MHD owns the fd: shut it down, MHD sees EOF and closes it */
        log_debug("E2B listener: closing a connection too slow to send its request");
        c->e->srv->metrics.header_deadline_closes++;
        (void) shutdown(c->fd, SHUT_RDWR);
        e2b_kick(c->e);
        return 0;
}

static void conn_deadline(struct MHD_Connection *conn, usec_t in) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        e2b_conn *c = ci ? ci->socket_context : NULL;

        if (!c || !c->deadline)
                return;
        if (in == 0)
                (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_OFF);
        else {
                (void) sd_event_source_set_time(c->deadline, now_mono() + in);
                (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_ONESHOT);
        }
}

static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe) {
        e2b *e = cls;
        e2b_conn *c;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                c = calloc(1, sizeof(*c));
                if (!c)
                        return;
                *c = (e2b_conn) { .e = e, .fd = ci ? ci->connect_fd : -1 };
                if (sd_event_add_time(e->srv->event, &c->deadline, CLOCK_MONOTONIC, now_mono() + HEADER_DEADLINE_USEC,
                                      USEC_PER_MSEC * 10, on_conn_deadline, c) >= 0)
                        (void) sd_event_source_set_priority(c->deadline, PRIO_ENDS);
                e->srv->metrics.connections_accepted++;
                *socket_context = c;
                return;
        }
        c = *socket_context;
        *socket_context = NULL;
        if (c) {
                c->deadline = sd_event_source_disable_unref(c->deadline);
                free(c);
        }
        e2b_kick(e); /* after the connection limit, MHD needs a run to listen again */
}

static int listen_tcp(const char *spec) {
        _cleanup_free_ char *host = strdup(spec);
        struct sockaddr_in sa = { .sin_family = AF_INET };
        char *colon = host ? strrchr(host, ':') : NULL;
        int one = 1;

        if (!colon)
                return -EINVAL;
        *colon = 0;
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
                return -EINVAL;
        sa.sin_port = htons((uint16_t) atoi(colon + 1));
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 128) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int e2b_start(server *srv) {
        const sp_config *cfg = &srv->config.cfg;
        const union MHD_DaemonInfo *info;
        e2b *e;
        int r, fd;

        if (!cfg->e2b_listen)
                return 0;
        if (!cfg->e2b_keys_file) {
                log_error("[e2b] listen is set but [e2b] keys_file is not: every call would be refused");
                return -EINVAL;
        }
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->srv = srv;
        the_e2b = e;
        r = keys_load(e, cfg->e2b_keys_file);
        if (r < 0)
                return r;
        if (!cfg->e2b_tls_certificate != !cfg->e2b_tls_key) {
                log_error("[e2b] tls_certificate and tls_key go together");
                return -EINVAL;
        }
        if (cfg->e2b_tls_certificate) {
                if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
                        log_error("[e2b] tls_certificate is set but this libmicrohttpd has no TLS");
                        return -EOPNOTSUPP;
                }
                r = read_pem(cfg->e2b_tls_certificate, false, &e->tls_cert);
                if (r >= 0)
                        r = read_pem(cfg->e2b_tls_key, true, &e->tls_key);
                if (r < 0)
                        return r;
        }
        fd = listen_tcp(cfg->e2b_listen);
        if (fd < 0)
                return log_error_errno(fd, "Failed to listen on %s for the E2B API", cfg->e2b_listen);
        e->mhd = start_mhd(e, fd);
        if (!e->mhd) {
                safe_close(fd);
                return log_error_errno(-EIO, "Failed to start the E2B HTTP server");
        }
        info = MHD_get_daemon_info(e->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return -EIO;
        r = sd_event_add_io(srv->event, &e->io, info->epoll_fd, EPOLLIN, on_io, e);
        if (r >= 0)
                r = sd_event_add_time(srv->event, &e->timer, CLOCK_MONOTONIC, 1, 1, on_timer, e);
        if (r >= 0)
                r = sd_event_add_defer(srv->event, &e->kick, on_kick, e);
        if (r < 0)
                return log_error_errno(r, "Failed to drive the E2B HTTP server");
        (void) sd_event_source_set_enabled(e->kick, SD_EVENT_OFF);
        (void) sd_event_source_set_priority(e->io, PRIO_SERVE);
        (void) sd_event_source_set_priority(e->timer, PRIO_SERVE);
        (void) sd_event_source_set_priority(e->kick, PRIO_SERVE);
        e2b_kick(e);
        log_info("E2B-compatible API on %s://%s (%zu keys)", e->tls_cert ? "https" : "http", cfg->e2b_listen,
                 e->n_keys);
        return 0;
}

void e2b_stop(server *srv) {
        e2b *e = the_e2b;

        if (!e)
                return;
        the_e2b = NULL;
        e2b_envd_stop_all();
        e->io = sd_event_source_disable_unref(e->io);
        e->timer = sd_event_source_disable_unref(e->timer);
        e->kick = sd_event_source_disable_unref(e->kick);
        if (e->mhd)
                MHD_stop_daemon(e->mhd); /* closes the listen socket */
        keys_free(e);
        if (e->tls_key)
                explicit_bzero(e->tls_key, strlen(e->tls_key));
        free(e->tls_key);
        free(e->tls_cert);
        while (e->boxes)
                box_drop(e, e->boxes);
        free(e);
}
