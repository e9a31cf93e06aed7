/* SPDX-License-Identifier: MIT */
#pragma once

/* The API: every route, its handler, and how its body is taken. main.c
 * hands the table to the HTTP layer (srv->routes), which knows none of the
 * handlers itself. */

#include <stddef.h>

#include "http.h"

extern const route api_routes[];
extern const size_t api_n_routes;
