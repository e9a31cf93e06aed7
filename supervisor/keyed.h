/* SPDX-License-Identifier: MIT */
#pragma once

/* Keyed sessions: POST /v1/sessions {"key": "user-42"} answers with the
 * caller's live session of that key (reused) or makes one. Keys belong to
 * a uid: two uids never share one. Keyed sessions are capped per uid and
 * in all ([sessions] max_keyed_sessions_per_uid, max_keyed_sessions); at a
 * cap, and when the pool is full, the least recently used *idle* keyed
 * session (no command running) is ended to make room, never a busy one.
 * Its owner hears of it: a call on its id says it was evicted, and the
 * next create with its key says what became of the previous session.
 *
 * Also the figures of every session's end: lifetime, commands per
 * session, and the reuse rate of keys (GET /metrics, /v1/health). */

#include <stdbool.h>

#include "session.h"

#define KEY_MAX 128

/* 1-128 bytes of printable ASCII. */
bool keyed_key_valid(const char *key);

/* The uid's session of that key, ready (not ending), or NULL. *ret_starting
 * is set when one is still being made for it. */
session *keyed_find(server *srv, uid_t uid, const char *key, bool *ret_starting);

/* Before a new keyed session of uid: at a cap, end the least recently used
 * idle keyed session under it (the uid's own for its cap). 0, or -EDQUOT
 * with err naming the cap when every keyed session under it is busy. */
int keyed_make_room(server *srv, uid_t uid, sp_error *err);

/* The pool is full: end the least recently used idle keyed session of any
 * uid so that its slot serves the waiting request. True when one was. */
bool keyed_evict_for_capacity(server *srv);

/* How the uid's last session of that key ended, if it did lately: its id
 * (33 bytes) and why; NULL when unknown. */
const char *keyed_previous_end(server *srv, uid_t uid, const char *key, char *ret_id);

/* session_destroy(): a session is over (its figures; its key's fate). */
void keyed_session_ended(session *s);

/* {keyed, hits, misses, reuse_rate, evictions, ended, avg_lifetime_s,
 * avg_commands} for /v1/health. */
json_t *keyed_stats_json(server *srv);
