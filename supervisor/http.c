/* SPDX-License-Identifier: MIT */
/* The HTTP layer: routing table, peer identity, body accumulation with
 * limits, deadlines against slow clients, error replies, and the
 * suspend/resume dance that lets a request wait for a sandbox or a
 * command without blocking the loop. */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "http.h"
#include "log.h"
#include "priority.h"
#include "session.h"
#include "tenant.h"
#include "util.h"

/* A client must send its headers this soon after connecting (or after
 * its previous response) and its body within BODY_DEADLINE: MHD's
 * connection timeout measures idleness only, so a slowloris sending one
 * byte every few seconds would otherwise hold a connection forever. */
#define HEADER_DEADLINE_USEC (10 * USEC_PER_SEC)
#define BODY_DEADLINE_USEC (120 * USEC_PER_SEC)
#define KEEPALIVE_DEADLINE_USEC (70 * USEC_PER_SEC)

/* Does url match pattern? The segment under the first '*' goes to id
 * (a later '*', such as a command's id, is the route's to parse). */
static bool route_path_match(const char *pattern, const char *url, char *id, size_t id_size) {
        const char *p = pattern, *u = url;
        bool captured = false;

        while (*p && *u) {
                if (*p == '*') {
                        size_t n = strcspn(u, "/");
                        if (n == 0)
                                return false;
                        if (captured)
                                ;
                        else if (n < id_size) {
                                memcpy(id, u, n);
                                id[n] = 0;
                        } else
                                id[0] = 0; /* too long to be an id: not found later */
                        captured = true;
                        u += n;
                        p++;
                        continue;
                }
                if (*p != *u)
                        return false;
                p++, u++;
        }
        /* one trailing slash is tolerated */
        if (*u == '/' && u[1] == 0)
                u++;
        return *p == 0 && *u == 0;
}

static const route *route_find(const server *srv, const char *method, const char *url, char *id, size_t id_size,
                               char *allow, size_t allow_size) {
        const route *routes = srv->routes;
        bool path_known = false;

        allow[0] = 0;
        for (size_t i = 0; i < srv->n_routes; i++) {
                if (!route_path_match(routes[i].pattern, url, id, id_size))
                        continue;
                if (streq(routes[i].method, method))
                        return &routes[i];
                if (!path_known || !strstr(allow, routes[i].method)) {
                        size_t n = strlen(allow);
                        snprintf(allow + n, allow_size - n, "%s%s", n ? ", " : "", routes[i].method);
                }
                path_known = true;
        }
        return NULL;
}

static void reply_set(request *r, unsigned status, struct MHD_Response *resp) {
        if (r->reply)
                MHD_destroy_response(r->reply);
        r->reply = resp;
        r->reply_status = status;
}

void reply_take_response(request *r, unsigned status, struct MHD_Response *resp) {
        reply_set(r, status, resp);
}

void reply_bytes(request *r, unsigned status, const char *content_type, const void *data, size_t len) {
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(len, (void *) data, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return;
        if (content_type)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        reply_set(r, status, resp);
}

void reply_json(request *r, unsigned status, json_t *body) {
        _cleanup_free_ char *text = NULL;

        text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!text) {
                /* out of memory: say so without allocating much */
                static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n";
                reply_bytes(r, 500, "application/json", oom, STRLEN(oom));
                return;
        }
        size_t n = strlen(text);
        struct MHD_Response *resp;
        /* MHD frees the buffer with free() when it is done with it. */
        char *t = realloc(text, n + 2);
        if (!t)
                return;
        text = NULL;
        t[n] = '\n';
        t[n + 1] = 0;
        resp = MHD_create_response_from_buffer(n + 1, t, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(t);
                return;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        reply_set(r, status, resp);
}

void reply_error(request *r, unsigned status, const char *code, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        reply_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
        if (status == 429 && r->reply)
                MHD_add_response_header(r->reply, "Retry-After", "1");
        if (status >= 500)
                log_full(LOG_WARNING, r->session ? r->session->id : NULL, "%s %s: %u %s: %s", r->method,
                         r->url, status, code, msg);
}

void reply_empty(request *r, unsigned status) {
        reply_set(r, status, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

json_t *request_json_body(request *r, bool allow_empty) {
        json_error_t e;
        json_t *j;

        if (r->body_len == 0) {
                if (allow_empty)
                        return json_object();
                reply_error(r, 400, "bad_request", "a JSON object body is required");
                return NULL;
        }
        j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
        if (!j) {
                reply_error(r, 400, "bad_request", "invalid JSON at line %d column %d: %s", e.line, e.column,
                            e.text);
                return NULL;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                reply_error(r, 400, "bad_request", "the body must be a JSON object");
                return NULL;
        }
        return j;
}

/* --- client connections ------------------------------------------------ */

static int on_client_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        client *c = userdata;

        /* Shut the socket down rather than close it: MHD owns the fd, sees
         * EOF on its next read and closes the connection the normal way. */
        c->srv->metrics.header_deadline_closes++;
        log_debug("Closing a connection that is too slow to send its request");
        (void) shutdown(c->fd, SHUT_RDWR);
        http_kick(c->srv);
        return 0;
}

static void client_deadline(client *c, usec_t in) {
        if (!c->deadline)
                return;
        if (in == 0) {
                (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(c->deadline, now_mono() + in);
        (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_ONESHOT);
}

static void client_read_creds(client *c) {
        struct ucred uc;
        socklen_t len = sizeof(uc);
        gid_t groups[256];
        socklen_t glen = sizeof(groups);
        const server *srv = c->srv;

        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
                log_warning("SO_PEERCRED failed: %m");
                return;
        }
        c->uid = uc.uid;
        c->gid = uc.gid;
        c->pid = uc.pid;
        c->creds_ok = true;
        c->admin = uc.uid == 0;
        if (c->admin || !srv->have_admin_gid)
                return;
        if (uc.gid == srv->admin_gid) {
                c->admin = true;
                return;
        }
        /* The peer's supplementary groups as they were at connect(). */
        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) < 0)
                return;
        for (size_t i = 0; i < glen / sizeof(gid_t); i++)
                if (groups[i] == srv->admin_gid)
                        c->admin = true;
}

static void http_connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                            enum MHD_ConnectionNotificationCode toe) {
        server *srv = cls;
        client *c;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                c = calloc(1, sizeof(*c));
                if (!c)
                        return;
                c->srv = srv;
                c->conn = conn;
                c->fd = ci ? ci->connect_fd : -1;
                client_read_creds(c);
                if (sd_event_add_time(srv->event, &c->deadline, CLOCK_MONOTONIC, UINT64_MAX, 0,
                                      on_client_deadline, c) >= 0) {
                        (void) sd_event_source_set_priority(c->deadline, PRIO_ENDS);
                        client_deadline(c, HEADER_DEADLINE_USEC);
                }
                srv->n_clients++;
                srv->metrics.connections_accepted++;
                *socket_context = c;
                return;
        }

        c = *socket_context;
        *socket_context = NULL;
        if (c) {
                c->deadline = sd_event_source_disable_unref(c->deadline);
                free(c);
                srv->n_clients--;
        }
        /* At the connection limit (or EMFILE) MHD removed the listen fd
         * from its epoll set; only a later MHD_run() puts it back. */
        http_kick(srv);
}

/* --- suspend / resume -------------------------------------------------- */

void request_set_op(request *r, const request_op_ops *ops, void *op) {
        void *old = r->op;
        const request_op_ops *old_ops = r->op_ops;

        /* first: the old op's free may touch the request */
        r->op = op;
        r->op_ops = ops;
        if (old && old_ops && old_ops->free)
                old_ops->free(r, old);
}

void *request_op(request *r) {
        return r->op;
}

void *request_take_op(request *r) {
        r->op_ops = NULL;
        return TAKE_PTR(r->op);
}

/* The client is gone: what the route started for it stops, and the
 * connection is resumed so that MHD closes it. */
static void request_abandon(request *r) {
        r->aborted = true;
        if (r->op && r->op_ops && r->op_ops->abort)
                r->op_ops->abort(r, r->op);
        request_resume(r);
}

static int on_client_hangup(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        request *r = userdata;

        /* A suspended connection is not watched by MHD: without this the
         * disconnect would only show on the next write, and the command
         * the client no longer waits for would run on. */
        r->hup_src = sd_event_source_disable_unref(r->hup_src);
        log_debug("%s %s: the client hung up (events 0x%x)", r->method, r->url, revents);
        request_abandon(r);
        return 0;
}

void request_suspend(request *r) {
        if (r->suspended)
                return;
        MHD_suspend_connection(r->conn);
        r->suspended = true;
        if (r->cl && r->cl->fd >= 0 && !r->hup_src)
                if (sd_event_add_io(r->srv->event, &r->hup_src, r->cl->fd, EPOLLRDHUP, on_client_hangup, r) >= 0)
                        (void) sd_event_source_set_priority(r->hup_src, PRIO_ENDS);
}

void request_resume(request *r) {
        if (!r->suspended)
                return;
        r->hup_src = sd_event_source_disable_unref(r->hup_src);
        r->suspended = false;
        MHD_resume_connection(r->conn);
        /* No internal thread means no wakeup: run MHD on the next iteration. */
        http_kick(r->srv);
}

void request_complete(request *r) {
        request_resume(r);
}

/* --- waiting for capacity ---------------------------------------------- */

static void capacity_unlink(request *r) {
        for (request **pp = &r->srv->capacity_waiters; *pp; pp = &(*pp)->wait_next)
                if (*pp == r) {
                        *pp = r->wait_next;
                        break;
                }
        r->wait_next = NULL;
        r->waiting_capacity = false;
}

static int on_capacity_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        request *r = userdata;

        capacity_unlink(r);
        r->capacity_timer = sd_event_source_disable_unref(r->capacity_timer);
        r->srv->metrics.no_capacity++;
        reply_error(r, 429, "no_capacity", "all %u sandboxes are in use", r->srv->config.cfg.max_pool_size);
        request_complete(r);
        return 0;
}

bool request_wait_capacity(request *r) {
        server *srv = r->srv;
        usec_t now = now_mono();

        if (srv->shutting_down || r->aborted)
                return false;
        if (!r->capacity_deadline) {
                r->capacity_deadline = now + CAPACITY_WAIT_USEC;
                srv->metrics.capacity_waits++;
        }
        if (now >= r->capacity_deadline)
                return false;
        if (!r->waiting_capacity) {
                request **pp = &srv->capacity_waiters;
                while (*pp)
                        pp = &(*pp)->wait_next;
                *pp = r;
                r->waiting_capacity = true;
        }
        if (!r->capacity_timer &&
            sd_event_add_time(srv->event, &r->capacity_timer, CLOCK_MONOTONIC, r->capacity_deadline, USEC_PER_MSEC,
                              on_capacity_timeout, r) < 0) {
                capacity_unlink(r);
                return false;
        }
        (void) sd_event_source_set_priority(r->capacity_timer, PRIO_ENDS);
        request_suspend(r);
        return true;
}

/* A slot may be free: let the oldest waiters try again, in order, until
 * one finds none. Runs from a defer source, never inside the pool's own
 * callback: a retry takes a sandbox from the pool, and the pool must not
 * see its lists change under the loop that announced the capacity. */
static int on_capacity_retry(sd_event_source *src, void *userdata) {
        server *srv = userdata;

        srv->capacity_retry = sd_event_source_disable_unref(srv->capacity_retry);
        while (srv->capacity_waiters) {
                /* the oldest of a uid under its fair share first */
                request *r = tenant_pick_waiter(srv);

                capacity_unlink(r);
                if (r->aborted) {
                        r->capacity_timer = sd_event_source_disable_unref(r->capacity_timer);
                        continue;
                }
                r->route->handler(r);
                if (r->waiting_capacity) {
                        /* still none: back to the head of the line */
                        capacity_unlink(r);
                        r->wait_next = srv->capacity_waiters;
                        srv->capacity_waiters = r;
                        r->waiting_capacity = true;
                        break;
                }
                r->capacity_timer = sd_event_source_disable_unref(r->capacity_timer);
                if (r->reply)
                        request_complete(r);
        }
        return 0;
}

void http_capacity_changed(void *userdata) {
        server *srv = userdata;

        if (!srv->capacity_waiters || srv->capacity_retry)
                return;
        (void) sd_event_add_defer(srv->event, &srv->capacity_retry, on_capacity_retry, srv);
}

void http_cancel_capacity_waiters(server *srv) {
        srv->capacity_retry = sd_event_source_disable_unref(srv->capacity_retry);
        while (srv->capacity_waiters) {
                request *r = srv->capacity_waiters;
                capacity_unlink(r);
                r->capacity_timer = sd_event_source_disable_unref(r->capacity_timer);
                reply_error(r, 503, "shutting_down", "the daemon is shutting down");
                request_complete(r);
        }
}

/* 404 either way (not yours is answered as does not exist), but a session
 * of the caller's that ended lately says why. */
static void reply_no_session(request *r) {
        const char *why = session_end_note(r->srv, r->session_id, r->cl->uid, r->cl->admin);

        if (why)
                return reply_error(r, 404, "not_found", "no such session: %s (it has ended: %s)", r->session_id, why);
        reply_error(r, 404, "not_found", "no such session: %s", r->session_id);
}

/* --- the access handler ------------------------------------------------ */

static void request_free(request *r) {
        if (!r)
                return;
        r->hup_src = sd_event_source_disable_unref(r->hup_src);
        if (r->waiting_capacity)
                capacity_unlink(r);
        r->capacity_timer = sd_event_source_disable_unref(r->capacity_timer);
        request_set_op(r, NULL, NULL);
        if (r->reply && !r->queued)
                MHD_destroy_response(r->reply);
        free(r->body);
        if (r->prev)
                r->prev->next = r->next;
        else
                r->srv->requests = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->srv->n_requests_live--;
        free(r);
}

static void http_request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode toe) {
        request *r = *con_cls;
        const union MHD_ConnectionInfo *ci;

        *con_cls = NULL;
        if (!r)
                return;
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
                log_debug("%s %s ended early (%d)", r->method, r->url, (int) toe);
        request_free(r);
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci && ci->socket_context)
                client_deadline(ci->socket_context, KEEPALIVE_DEADLINE_USEC);
}

static enum MHD_Result request_queue(request *r) {
        enum MHD_Result ret;
        unsigned cls = r->reply_status / 100;

        if (!r->reply)
                return MHD_NO;
        ret = MHD_queue_response(r->conn, r->reply_status, r->reply);
        if (ret != MHD_YES)
                log_debug("%s %s: MHD_queue_response(%u) failed", r->method, r->url, r->reply_status);
        MHD_destroy_response(r->reply); /* MHD holds its own reference */
        r->reply = NULL;
        r->queued = true;
        r->srv->metrics.responses_by_class[cls < 6 ? cls : 0]++;
        return ret;
}

/* Headers are in: route, identify, check limits; answer at once what can
 * be answered without the body. */
static void request_begin(request *r) {
        server *srv = r->srv;
        char allow[64];
        const char *cl_hdr;
        uint64_t declared = 0;

        r->route = route_find(srv, r->method, r->url, r->session_id, sizeof(r->session_id), allow, sizeof(allow));
        if (!r->cl || !r->cl->creds_ok)
                return reply_error(r, 500, "internal", "cannot identify the peer of this connection");
        if (srv->shutting_down)
                return reply_error(r, 503, "shutting_down", "the daemon is shutting down");
        if (!r->route) {
                if (allow[0]) {
                        reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                                    r->method, r->url, allow);
                        if (r->reply)
                                MHD_add_response_header(r->reply, MHD_HTTP_HEADER_ALLOW, allow);
                        return;
                }
                return reply_error(r, 404, "not_found", "no such endpoint: %s %s", r->method, r->url);
        }
        if (r->route->session) {
                r->session = session_lookup(srv, r->session_id, r->cl->uid, r->cl->admin);
                if (!r->session)
                        return reply_no_session(r);
                session_touch(r->session);
        }

        r->body_limit = r->route->body == BODY_FILE ? srv->config.cfg.max_upload
                        : r->route->body == BODY_JSON ? MAX_JSON_BODY
                                                      : 0;
        cl_hdr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl_hdr) {
                char *end;
                errno = 0;
                declared = strtoull(cl_hdr, &end, 10);
                if (errno || *end || end == cl_hdr)
                        return reply_error(r, 400, "bad_request", "invalid Content-Length");
                if (declared > r->body_limit) {
                        if (r->body_limit == 0)
                                return reply_error(r, 400, "bad_request", "%s %s takes no body", r->method,
                                                   r->url);
                        return reply_error(r, 413, "too_large", "body of %" PRIu64 " bytes exceeds the limit of %zu",
                                           declared, r->body_limit);
                }
        }
        if (r->route->body == BODY_FILE && r->route->body_begin)
                r->route->body_begin(r);
}

static void request_body_data(request *r, const char *data, size_t len) {
        r->body_seen += len;
        if (r->body_too_large || r->reply)
                return; /* keep consuming, answer at the end */
        if (r->body_seen > r->body_limit) {
                r->body_too_large = true;
                free(r->body);
                r->body = NULL;
                r->body_len = r->body_cap = 0;
                return;
        }
        if (r->route->body == BODY_FILE) {
                if (r->route->body_data)
                        (void) r->route->body_data(r, data, len);
                return;
        }
        if (r->body_len + len > r->body_cap) {
                size_t cap = MAX(r->body_cap * 2, r->body_len + len);
                char *b = realloc(r->body, cap);
                if (!b) {
                        reply_error(r, 500, "internal", "out of memory");
                        return;
                }
                r->body = b;
                r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, data, len);
        r->body_len += len;
}

static enum MHD_Result http_access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version, const char *upload_data,
                                    size_t *upload_data_size, void **con_cls) {
        server *srv = cls;
        request *r = *con_cls;

        if (!r) {
                const union MHD_ConnectionInfo *ci;

                r = calloc(1, sizeof(*r));
                if (!r)
                        return MHD_NO;
                r->srv = srv;
                r->conn = conn;
                r->method = method;
                r->url = url;
                r->started = now_mono();
                ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
                r->cl = ci ? ci->socket_context : NULL;
                srv->n_requests_live++;
                r->next = srv->requests;
                if (srv->requests)
                        srv->requests->prev = r;
                srv->requests = r;
                srv->metrics.requests_total++;
                *con_cls = r;
                if (r->cl)
                        client_deadline(r->cl, streq(method, "GET") || streq(method, "DELETE") ? 0
                                                                                               : BODY_DEADLINE_USEC);
                request_begin(r);
                /* A body too large goes out now (MHD then closes the
                 * connection instead of reading it). Other early answers
                 * (404, 405, 503...) wait until the (small) body has been
                 * read and dropped: answering first would make the client
                 * fail with EPIPE while still sending. */
                if (r->reply && r->reply_status == 413)
                        return request_queue(r);
                return MHD_YES;
        }

        if (r->aborted) {
                log_debug("%s %s: closing, the client is gone", method, url);
                return MHD_NO; /* close: the client is gone */
        }
        if (*upload_data_size > 0) {
                if (!r->queued)
                        request_body_data(r, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (r->queued)
                return MHD_YES;

        if (!r->handled) {
                r->handled = true;
                if (r->cl)
                        client_deadline(r->cl, 0);
                if (r->reply)
                        ; /* decided when the headers came in */
                else if (srv->shutting_down)
                        reply_error(r, 503, "shutting_down", "the daemon is shutting down");
                else if (r->body_too_large)
                        reply_error(r, 413, "too_large", "body exceeds the limit of %zu bytes", r->body_limit);
                else if (!r->reply && r->route->session &&
                         !(r->session = session_lookup(srv, r->session_id, r->cl->uid, r->cl->admin)))
                        /* it ended while the body was coming in */
                        reply_no_session(r);
                else if (!r->reply) {
                        if (r->route->body == BODY_FILE)
                                r->route->body_end(r);
                        else
                                r->route->handler(r);
                }
        }
        if (r->reply)
                return request_queue(r);
        if (r->suspended)
                return MHD_YES;
        /* A handler that neither answered nor suspended is a bug: say so
         * rather than leave the client waiting forever. */
        reply_error(r, 500, "internal", "no response was produced");
        return request_queue(r);
}

/* --- libmicrohttpd on the sd-event loop --------------------------------------- */

/* Enough for 1000 idle clients and then some; RLIMIT_NOFILE is raised to
 * match in main(). MHD's default is FD_SETSIZE-4 even with epoll. */
#define CONNECTION_LIMIT 4096u
/* Per-connection memory: headers beyond it are answered 431. Above 32 KiB
 * libmicrohttpd 0.9.75 mmap()s each connection's pool instead of taking it
 * from malloc: after a burst of 1000 connections the memory goes back to
 * the kernel at close instead of staying in the heap. */
#define CONNECTION_MEMORY (40u * 1024u)
/* Idle keep-alive connections are closed after this. */
#define CONNECTION_IDLE_S 60u

static void http_rearm_timer(server *srv) {
        MHD_UNSIGNED_LONG_LONG ms;
        uint64_t now;

        if (!srv->mhd_timer)
                return;
        if (MHD_get_timeout(srv->mhd, &ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(srv->mhd_timer, SD_EVENT_OFF);
                return;
        }
        /* "Run again at once" (it has more to send, as in a stream): the
         * defer source, not the timer, whose every re-arm is a syscall. */
        if (ms == 0 && srv->mhd_kick) {
                http_kick(srv);
                return;
        }
        /* MHD gives RELATIVE milliseconds; sd-event wants an ABSOLUTE time in
         * usec (passing ms as the absolute time fires at once, forever). */
        (void) sd_event_now(srv->event, CLOCK_MONOTONIC, &now);
        uint64_t want = now + ms * USEC_PER_MSEC, armed = 0;
        int enabled = SD_EVENT_OFF;
        /* Each re-arm is a timerfd_settime(): during a stream MHD runs per
         * chunk, and its (idle, 60 s) deadline creeps forward each time.
         * Firing a little early is harmless (MHD just runs and says the
         * next one), so an armed deadline at most a second early is kept. */
        (void) sd_event_source_get_enabled(srv->mhd_timer, &enabled);
        (void) sd_event_source_get_time(srv->mhd_timer, &armed);
        if (enabled != SD_EVENT_OFF && armed <= want && want - armed < USEC_PER_SEC)
                return;
        (void) sd_event_source_set_time(srv->mhd_timer, want);
        (void) sd_event_source_set_enabled(srv->mhd_timer, SD_EVENT_ONESHOT);
}

static void http_run(server *srv) {
        if (MHD_run(srv->mhd) != MHD_YES)
                log_debug("MHD_run() failed");
        http_rearm_timer(srv);
}

void http_kick(server *srv) {
        /* A defer source runs on the next iteration, before waiting. (A
         * timer "in the past" would do too, but sd-event coalesces timers
         * with a default accuracy of 250 ms: every resumed request would
         * wait for it.) */
        if (srv->mhd_kick)
                (void) sd_event_source_set_enabled(srv->mhd_kick, SD_EVENT_ONESHOT);
}

static int on_mhd_kick(sd_event_source *s, void *userdata) {
        http_run(userdata);
        return 0;
}

static int on_mhd_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        http_run(userdata);
        return 0;
}

static int on_mhd_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        http_run(userdata);
        return 0;
}

_printf_(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap) {
        char buf[512];
        size_t n;

        vsnprintf(buf, sizeof(buf), fmt, ap);
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
                buf[--n] = 0;
        log_debug("libmicrohttpd: %s", buf);
}

int http_start(server *srv) {
        const union MHD_DaemonInfo *info;
        int r;

        srv->mhd = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                http_access_handler, srv,
                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
                /* Our own AF_UNIX socket: MHD_add_connection() would treat the
                 * peers as TCP (bogus warnings, extra syscalls per response). */
                MHD_OPTION_LISTEN_SOCKET, srv->listen_fd,
                MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY,
                MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_IDLE_S,
                MHD_OPTION_NOTIFY_COMPLETED, http_request_completed, srv,
                MHD_OPTION_NOTIFY_CONNECTION, http_connection_notify, srv,
                MHD_OPTION_END);
        if (!srv->mhd)
                return log_error_errno(-EIO, "Failed to start the HTTP server");

        info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return log_error_errno(-EIO, "libmicrohttpd has no epoll fd");
        r = sd_event_add_io(srv->event, &srv->mhd_io, info->epoll_fd, EPOLLIN, on_mhd_io, srv);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the HTTP server");
        r = sd_event_add_time(srv->event, &srv->mhd_timer, CLOCK_MONOTONIC, 1, 0, on_mhd_timer, srv);
        if (r < 0)
                return log_error_errno(r, "Failed to add the HTTP timer");
        (void) sd_event_source_set_description(srv->mhd_timer, "mhd-timer");
        /* MHD's timeouts are in ms; sd-event's default slack is 250 ms. */
        (void) sd_event_source_set_time_accuracy(srv->mhd_timer, 1);
        r = sd_event_add_defer(srv->event, &srv->mhd_kick, on_mhd_kick, srv);
        if (r < 0)
                return log_error_errno(r, "Failed to add the HTTP kick source");
        (void) sd_event_source_set_enabled(srv->mhd_kick, SD_EVENT_OFF);
        /* Above commands' output and the pool's work, below what ends
         * work (priority.h). */
        (void) sd_event_source_set_priority(srv->mhd_io, PRIO_SERVE);
        (void) sd_event_source_set_priority(srv->mhd_timer, PRIO_SERVE);
        (void) sd_event_source_set_priority(srv->mhd_kick, PRIO_SERVE);
        http_kick(srv);
        return 0;
}

void http_stop(server *srv) {
        if (!srv->mhd)
                return;
        /* MHD_stop_daemon() must not find a suspended connection: resume
         * them all, as abandoned, so that each is closed and completed. */
        for (request *r = srv->requests; r; r = r->next)
                if (r->suspended)
                        request_abandon(r);
        srv->mhd_io = sd_event_source_disable_unref(srv->mhd_io);
        srv->mhd_timer = sd_event_source_disable_unref(srv->mhd_timer);
        srv->mhd_kick = sd_event_source_disable_unref(srv->mhd_kick);
        /* MHD_stop_daemon() closes the listen socket we gave it. */
        MHD_stop_daemon(srv->mhd);
        srv->mhd = NULL;
        srv->listen_fd = -EBADF;
        if (srv->socket_owned && srv->socket_path)
                (void) unlink(srv->socket_path);
        srv->socket_owned = false;
}
