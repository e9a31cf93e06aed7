/* SPDX-License-Identifier: MIT */
#pragma once

/* POST /v1/sessions/{id}/exec and POST /v1/run. */

#include "http.h"

void api_exec(request *r);
void api_run(request *r);
