/* SPDX-License-Identifier: MIT */
#pragma once

/* POST /v1/sessions/{id}/exec and POST /v1/run. */

#include "http.h"

void api_exec(request *r);
void api_run(request *r);
/* The answer to a command that could not be started (job_start() < 0),
 * for every route that starts one: 400 too large, 409 the sandbox is gone,
 * else 500. */
void api_reply_spawn_error(request *r, int err, const sp_error *e);
