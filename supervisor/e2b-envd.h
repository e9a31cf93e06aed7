/* SPDX-License-Identifier: MIT */
#pragma once

/* E2B's in-sandbox API ("envd") on the E2B listener: the process service
 * (Connect RPC, JSON) mapped onto background commands (command.h), and
 * the routing of the filesystem calls (e2b-fs.h). A process's "pid" in
 * this API is the sandpool command id (GET /v1/sessions/{id}/commands). */

#include "e2b.h"

/* The headers are in: a POST /files takes its body as it comes. */
void e2b_envd_begin(e2b_req *q);
/* The whole request is in: answer it. */
void e2b_envd_dispatch(e2b_req *q);
/* A streaming call fails: HTTP 200 and Connect's end message with the error. */
void e2b_envd_stream_error(e2b_req *q, const char *code, const char *message);
/* The daemon stops: let every waiting stream go. */
void e2b_envd_stop_all(void);

/* The Connect request message: a unary call's JSON body, or the one
 * enveloped message of a server-streaming call. NULL after replying. */
json_t *e2b_connect_message(e2b_req *q);
/* Reply to a unary call with a message (steals it). */
void e2b_connect_reply(e2b_req *q, json_t *msg);
/* One Connect envelope (flags: 0, or 0x02 for the end of a stream) of n
 * bytes of JSON, appended to *buf (grown as needed). */
int e2b_envelope_append(char **buf, size_t *len, size_t *cap, unsigned flags, const char *json, size_t n);
/* Bytes from base64 (standard or URL alphabet, padding optional); -EINVAL. */
int e2b_base64_decode(const char *in, void **ret, size_t *ret_len);
