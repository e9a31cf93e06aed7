/* SPDX-License-Identifier: MIT */
#pragma once

/* Small shared helpers of the daemon: ids, times and bytes as JSON, and
 * the one unsigned-integer field reader of request bodies. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "time-util.h"

int random_id_hex(char *ret, size_t n_bytes); /* ret has 2*n_bytes+1 chars */
json_t *json_time(usec_t realtime_usec);       /* "2026-01-02T03:04:05.678Z" */
/* A JSON string from arbitrary bytes: invalid UTF-8 becomes U+FFFD. With
 * carry (3+1 bytes) an incomplete sequence at the end is kept for the next
 * chunk instead of being replaced. */
json_t *json_bytes(const char *data, size_t len, char *carry, size_t *carry_len);
/* The same bytes as the body of a JSON string (no quotes), as json_bytes()
 * makes it, written to out (room for 6 * len); the length written. For
 * output streams, where a JSON value per chunk would cost more than the
 * command. */
size_t json_escape_bytes(const char *data, size_t len, char *out);
/* An optional non-negative integer field up to max: 1 read, 0 absent (or
 * null), -EINVAL with err saying "invalid value for KEY". */
int json_get_uint(json_t *o, const char *key, uint64_t max, uint64_t *ret, sp_error *err);
