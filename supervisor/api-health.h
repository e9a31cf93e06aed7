/* SPDX-License-Identifier: MIT */
#pragma once

/* GET /v1/health and GET /metrics. */

#include "http.h"

void api_health(request *r);
void api_metrics(request *r);
