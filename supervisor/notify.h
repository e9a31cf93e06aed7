/* SPDX-License-Identifier: MIT */
#pragma once

/* What systemd hears from the daemon (sd_notify): READY, STATUS with the
 * pool's figures, RELOADING, STOPPING. No-ops without NOTIFY_SOCKET. */

#include "server.h"

void notify_ready(server *srv);
void notify_status(server *srv);
void notify_stopping(void);
void notify_reloading(void);
