/* SPDX-License-Identifier: MIT */
#pragma once

/* One line per event on stderr (the journal adds the time under systemd).
 * Each line carries the session id when there is one, so that
 * `journalctl -u sandpool | grep <id>` tells one session's story. */

#include <errno.h>
#include <string.h>
#include <syslog.h>

#include "macro.h"

_printf_(3, 4) void log_full(int level, const char *session_id, const char *fmt, ...);

#define log_error(...) log_full(LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, NULL, __VA_ARGS__)

/* Log with a session id: log_session(LOG_INFO, s->id, "created"). */
#define log_session(level, sid, ...) log_full(level, sid, __VA_ARGS__)

/* Log a -errno code with context and return it, systemd style. */
#define log_error_errno(r, fmt, ...)                                              \
        ({                                                                        \
                int _r_ = (r);                                                    \
                log_full(LOG_ERR, NULL, fmt ": %s", ##__VA_ARGS__, strerror(-_r_)); \
                _r_;                                                              \
        })

extern int log_max_level;
