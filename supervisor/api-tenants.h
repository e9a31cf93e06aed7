/* SPDX-License-Identifier: MIT */
#pragma once

/* GET /v1/executions (the execution records) and GET /v1/usage (the
 * caller's usage against its tier). */

#include "http.h"
#include "tenant.h"

void api_executions(request *r);
void api_usage(request *r);

/* 429 {"error": {"code": "quota_exceeded", "message", "tier", "quota",
 * "limit", "used", "resets_at"}} with Retry-After. */
void reply_quota_exceeded(request *r, const tenant_refusal *q);
