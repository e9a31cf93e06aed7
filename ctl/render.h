/* SPDX-License-Identifier: MIT */
#pragma once

/* Human renderings of API objects shared by several commands. */

#include <jansson.h>
#include <stdbool.h>

/* "pool:  2 available, 1 allocated, 0 warming (3 of 80 sandboxes)" */
void print_pool_line(json_t *pool);
/* Each limit on its own line, in its unit (sizes, durations, percent). */
void print_limits(json_t *limits, const char *title);
/* One value of a limit or setting in its unit, judged by its key. */
char *format_limit(const char *key, json_t *v, char *buf, size_t size);
/* The owner's user name, or the uid as a number. */
const char *uid_name(long long uid, char *buf, size_t size);
