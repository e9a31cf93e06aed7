/* SPDX-License-Identifier: MIT */
#pragma once

/* Background commands of a session (command.h) over HTTP:
 *   POST /v1/sessions/{id}/commands                  start one (201 at once)
 *   GET  /v1/sessions/{id}/commands                  list them
 *   GET  /v1/sessions/{id}/commands/{cid}            one of them
 *   GET  /v1/sessions/{id}/commands/{cid}/output     NDJSON from byte offsets (?follow=true)
 *   POST /v1/sessions/{id}/commands/{cid}/stdin      raw bytes (?eof=true)
 *   POST /v1/sessions/{id}/commands/{cid}/signal     {"signal": "INT"} to its process group
 *   POST /v1/sessions/{id}/commands/{cid}/resize     {"rows": R, "cols": C} of its terminal
 *   GET  /v1/sessions/{id}/commands/{cid}/attach     WebSocket: output out, input in */

#include "http.h"

void api_commands_create(request *r);
void api_commands_list(request *r);
void api_command_get(request *r);
void api_command_output(request *r);
void api_command_stdin(request *r);
void api_command_signal(request *r);
void api_command_resize(request *r);
void api_command_attach(request *r);
