/* SPDX-License-Identifier: MIT */
#pragma once

/* The HTTP layer: libmicrohttpd driven from the sd-event loop (its epoll
 * fd in our loop, a one-shot timer for its timeouts), peer identity,
 * routing through the table main.c hands over (routes.c), bodies with
 * limits, deadlines against slow clients, error replies, waiting for
 * capacity, and the suspend/resume that lets a request wait for a sandbox
 * or a command without blocking the loop. A route's handler keeps what
 * it waits on as the request's op (request_set_op()): the route owns it. */

#include "server.h"

struct client {
        server *srv;
        struct MHD_Connection *conn;
        int fd;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        bool admin;
        bool creds_ok;
        sd_event_source *deadline; /* header (and body) deadline: slowloris */
        bool dead;
};

typedef enum body_kind {
        BODY_NONE,
        BODY_JSON, /* accumulated in memory up to MAX_JSON_BODY */
        BODY_FILE, /* streamed by the route's body_* handlers, up to max_upload */
} body_kind;

/* One entry of the API's routing table (routes.c). */
struct route {
        const char *method;
        const char *pattern; /* '*' matches one segment: the session id */
        void (*handler)(request *r);
        body_kind body;
        bool session;        /* the '*' is a session id that must be looked up */
        /* BODY_FILE: the body as it comes (begin once the headers are in,
         * each chunk, the end instead of handler) */
        void (*body_begin)(request *r);
        int (*body_data)(request *r, const char *data, size_t len);
        void (*body_end)(request *r);
};

/* What a route's handler keeps while its request waits (a command, a
 * session being made, an upload): the route's own data, with the two
 * things the HTTP layer may need to do to it. */
typedef struct request_op_ops {
        void (*abort)(request *r, void *op); /* the client went away: stop what was started for it */
        void (*free)(request *r, void *op);  /* the request is over */
} request_op_ops;

struct request {
        server *srv;
        request *prev, *next;
        client *cl;
        struct MHD_Connection *conn;
        const char *method;
        const char *url;
        const route *route;
        char session_id[33];
        session *session; /* looked up once the headers are in */

        char *body;
        size_t body_len, body_cap, body_limit;
        bool body_too_large;
        uint64_t body_seen;

        bool handled;    /* the handler ran */
        bool suspended;
        bool aborted;    /* the client went away */
        bool queued;     /* a response has been queued */
        struct MHD_Response *reply;
        unsigned reply_status;
        sd_event_source *hup_src;

        /* what the request is waiting for */
        void *op;                 /* the route's (request_set_op) */
        const request_op_ops *op_ops;
        request *wait_next;       /* in srv->capacity_waiters */
        bool waiting_capacity;
        usec_t capacity_deadline;
        sd_event_source *capacity_timer;
        usec_t started;
};

#define MAX_JSON_BODY (1024u * 1024u)

/* The route's op for this request, replacing (and freeing) any earlier
 * one, e.g. of an attempt that waited for capacity. */
void request_set_op(request *r, const request_op_ops *ops, void *op);
void *request_op(request *r);
/* Take the op back from the request without freeing it. */
void *request_take_op(request *r);

void request_suspend(request *r);
void request_resume(request *r);
/* The reply for a suspended request is ready: resume so that it gets queued. */
void request_complete(request *r);
/* No free slot: wait (suspended) until capacity appears, then the route's
 * handler runs again; after CAPACITY_WAIT_USEC the answer is 429. Returns
 * false when the wait is over: the caller answers 429 itself. */
bool request_wait_capacity(request *r);
void http_capacity_changed(void *userdata); /* the pool's callback */
void http_cancel_capacity_waiters(server *srv);
#define CAPACITY_WAIT_USEC (2 * USEC_PER_SEC)

void reply_json(request *r, unsigned status, json_t *body); /* steals body */
_printf_(4, 5) void reply_error(request *r, unsigned status, const char *code, const char *fmt, ...);
void reply_empty(request *r, unsigned status);
void reply_bytes(request *r, unsigned status, const char *content_type, const void *data, size_t len);
void reply_take_response(request *r, unsigned status, struct MHD_Response *resp);
/* Parse the JSON body: an object, or NULL after replying 400. An empty body
 * is an empty object when allow_empty. */
json_t *request_json_body(request *r, bool allow_empty);

/* The server on srv->listen_fd, in srv->event, with srv->routes. */
int http_start(server *srv);
/* Ask libmicrohttpd to run on the next loop iteration: after a resume,
 * after a connection closed (it may have dropped the listen fd), after a
 * socket shutdown of ours. */
void http_kick(server *srv);
/* Resume every suspended request as abandoned, stop, close the socket. */
void http_stop(server *srv);
