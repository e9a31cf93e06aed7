/* SPDX-License-Identifier: MIT */
#pragma once

/* POST/GET /v1/templates, GET/DELETE /v1/templates/{name}, and the
 * "template" field of POST /v1/sessions and /v1/run. */

#include "http.h"
#include "session.h"

void api_templates_create(request *r);
void api_templates_list(request *r);
void api_template_get(request *r);
void api_template_delete(request *r);
/* POST /v1/sessions/{id}/fork: a new session (same owner, limits and
 * template) whose files are a copy of this one's at this instant. */
void api_session_fork(request *r);

/* body's "template" (if any) into p: 0, or a reply already sent (< 0):
 * 400 for a bad value, 404 for a template the caller cannot see, 409 for
 * one that cannot be used (stale, being captured). */
int api_template_params(request *r, json_t *body, session_params *p);
