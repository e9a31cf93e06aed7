/* SPDX-License-Identifier: MIT */
#pragma once

/* WebSocket (RFC 6455) over a request that asks for it: the handshake
 * (through libmicrohttpd's upgrade: MHD_create_response_for_upgrade), then
 * frames both ways on the upgraded socket, watched from our loop. What the
 * messages mean is the caller's (a terminal: api-commands.c). Server side
 * only: client frames must be masked; no extensions, no subprotocols. */

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

typedef struct ws_conn ws_conn;

typedef struct ws_ops {
        /* The connection is upgraded: send from now on. */
        void (*opened)(ws_conn *w, void *userdata);
        /* Payload of a text or binary frame from the client, as it comes. */
        void (*data)(ws_conn *w, const char *p, size_t n, void *userdata);
        /* What was queued has gone out: send more. */
        void (*drained)(ws_conn *w, void *userdata);
        /* Gone (closed by either side, or never upgraded): the last call,
         * w is freed after it. */
        void (*closed)(ws_conn *w, void *userdata);
} ws_ops;

/* One client frame at the front of p (have bytes), unmasked in place:
 * its size (> 0) and *ret, 0 when more bytes are needed, -EPROTO for an
 * unmasked frame, -EMSGSIZE for a payload over max_payload. Pure: the
 * fuzzer's target (tests/fuzz/fuzz-ws-frame.c). */
typedef struct ws_frame {
        unsigned opcode;
        bool fin;
        unsigned char *payload;
        size_t len;
} ws_frame;
ssize_t ws_frame_parse(unsigned char *p, size_t have, size_t max_payload, ws_frame *ret);

/* Answer r: 101 and the upgrade (then opened), or an error reply (400,
 * 426) and -EINVAL (closed is not called then). */
int ws_accept(request *r, const ws_ops *ops, void *userdata);
/* Queue one binary frame. -ENOBUFS past WS_QUEUE_MAX queued (wait for
 * drained), -EPIPE once closing. */
#define WS_QUEUE_MAX (256u * 1024u)
int ws_send(ws_conn *w, const void *p, size_t n);
size_t ws_queued(const ws_conn *w);
/* Send a close frame (code, short reason), then drop the connection:
 * closed follows. */
void ws_close(ws_conn *w, unsigned code, const char *reason);
