/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

int log_max_level = LOG_INFO;

void log_full(int level, const char *session_id, const char *fmt, ...) {
        static const char *const names[] = {
                [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
                [LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
        };
        char line[2048];
        int n;
        va_list ap;

        if (level > log_max_level)
                return;
        /* "<6>" lets journald keep the priority of each line from stderr. */
        n = snprintf(line, sizeof(line), "<%d>%s: ", level, names[level & 7]);
        if (session_id)
                n += snprintf(line + n, sizeof(line) - n, "session=%s ", session_id);
        va_start(ap, fmt);
        n += vsnprintf(line + MIN((size_t) n, sizeof(line)), sizeof(line) - MIN((size_t) n, sizeof(line)), fmt, ap);
        va_end(ap);
        if ((size_t) n >= sizeof(line) - 1)
                n = sizeof(line) - 2;
        line[n++] = '\n';
        /* One write per line: lines from one process never interleave. */
        (void) !write(STDERR_FILENO, line, n);
}
