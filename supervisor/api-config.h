/* SPDX-License-Identifier: MIT */
#pragma once

/* GET /v1/config: the running daemon's effective configuration, for
 * administrators (root and admin_group): every key with its value, where
 * the value came from, and the notices of the load. */

#include <stdbool.h>

#include "http.h"

void api_config(request *r);

/* Is this key's value a secret that the answer must not carry? By name:
 * no key of today's table is one, the rule is there for those to come
 * (a token, a password). */
bool api_config_key_is_secret(const char *key);
