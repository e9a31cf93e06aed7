/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's life around its loop: where it listens, and how it stops. */

#include "server.h"

/* The socket systemd passed (socket activation), or our own, bound with
 * the configured mode and group (a stale one left by a crash is replaced,
 * a live one is not). */
int server_listen(server *srv);
/* Answer every waiting request, end every session, destroy every sandbox
 * (pool, then factory: the workers remove the last cgroups). Idempotent. */
void server_end_sandboxes(server *srv, const char *why);
/* SIGTERM: answer and end everything, then leave the loop once the
 * answers went out (or after a short deadline). */
void server_begin_shutdown(server *srv, const char *why);
