/* SPDX-License-Identifier: MIT */
#pragma once

/* An optional listener that speaks E2B's API (docs/api.md, "E2B
 * compatibility"), so that the unmodified `e2b` SDK runs against sandpool:
 * its control API (/v2/sandboxes, ...: create, list, get, connect, set
 * timeout, kill) and, on the same port, its in-sandbox API ("envd": Connect
 * RPC in JSON, and GET/POST /files), the sandbox named by the SDK's
 * E2b-Sandbox-Id header. Its own libmicrohttpd daemon on a TCP loopback
 * port, driven by the daemon's sd-event loop; sandboxes are sandpool
 * sessions, owned by the uid the API key maps to ([e2b] keys_file).
 *
 * This header is e2b.c's contract: the listener, and the request and the
 * replies that e2b-envd.c borrows. */

#include "server.h"
#include "session.h"

typedef struct e2b e2b;
typedef struct e2b_req e2b_req;

/* What a request waits on (a command's output stream, an upload): its
 * owner's, freed with the request. */
typedef struct e2b_op_ops {
        void (*free)(void *op);
} e2b_op_ops;

struct e2b_req {
        e2b *e;
        server *srv;
        struct MHD_Connection *conn;
        const char *method, *url;
        char *body;             /* a JSON or Connect body, up to E2B_MAX_BODY */
        size_t body_len;
        bool too_large, handled, suspended;
        bool streaming;         /* a Connect server-streaming call: errors go in its end message */
        bool aborted;           /* the client hung up while the request was suspended */
        sd_event_source *hup_src;
        struct MHD_Response *reply; /* ready, for a suspended request */
        unsigned reply_status;
        session *pending;       /* a create waiting for its sandbox */
        void *op;
        const e2b_op_ops *op_ops;
        /* an upload (POST /files): data goes to the op's writer as it comes */
        int (*upload)(e2b_req *q, const char *data, size_t n);
};

#define E2B_MAX_BODY (1024u * 1024u)
/* The envd version sandpool answers as: the SDK turns features on by it
 * (0.5.6: stdin close; not yet octet-stream uploads or file metadata). */
#define E2B_ENVD_VERSION "0.5.6"

/* Start listening on [e2b] listen with the keys of [e2b] keys_file; 0 and
 * nothing done when it is not configured. */
int e2b_start(server *srv);
void e2b_stop(server *srv);

/* Replies. The control API's errors are {"code": STATUS, "message"}. */
void e2b_reply(e2b_req *q, unsigned status, struct MHD_Response *resp);
void e2b_reply_json(e2b_req *q, unsigned status, json_t *body); /* steals body */
_printf_(3, 4) void e2b_reply_error(e2b_req *q, unsigned status, const char *fmt, ...);
/* The in-sandbox API's errors, Connect's shape: {"code": "not_found", "message"}. */
_printf_(3, 4) void e2b_reply_connect_error(e2b_req *q, const char *code, const char *fmt, ...);
unsigned e2b_connect_status(const char *code);
void e2b_suspend(e2b_req *q);
void e2b_resume(e2b_req *q);
void e2b_set_op(e2b_req *q, const e2b_op_ops *ops, void *op);

/* The session an in-sandbox call is for (its E2b-Sandbox-Id header), if
 * its X-Access-Token is that sandbox's; else NULL after replying. */
session *e2b_envd_session(e2b_req *q);
