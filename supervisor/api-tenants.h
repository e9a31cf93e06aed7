/* SPDX-License-Identifier: MIT */
#pragma once

/* GET /v1/executions (the execution records) and GET /v1/usage (the
 * caller's usage against its tier). */

#include "http.h"

void api_executions(request *r);
void api_usage(request *r);
