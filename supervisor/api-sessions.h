/* SPDX-License-Identifier: MIT */
#pragma once

/* POST/GET /v1/sessions, GET/DELETE /v1/sessions/{id}. */

#include "http.h"

void api_sessions_create(request *r);
void api_sessions_list(request *r);
void api_session_get(request *r);
void api_session_delete(request *r);
/* The answer to a failed session_new() (e < 0): wait for capacity, or
 * 429 / 503 / 500. Shared by POST /v1/sessions and POST /v1/run. */
void reply_session_new_failed(request *r, int e, const sp_error *err);
