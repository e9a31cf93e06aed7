/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "macro.h"

/* Fill an sp_error and return code, so callers can write
 *     return sp_error_set(err, r, "Failed to ...: %s", strerror(-r)); */
int sp_error_set(sp_error *e, int code, const char *fmt, ...) {
        if (e) {
                va_list ap;
                va_start(ap, fmt);
                e->code = code;
                vsnprintf(e->message, SP_ERROR_MESSAGE_SIZE, fmt, ap);
                va_end(ap);
        }
        return code;
}

int sp_error_prefix(sp_error *e, const char *fmt, ...) {
        char msg[SP_ERROR_MESSAGE_SIZE];
        va_list ap;

        if (!e)
                return 0;
        memcpy(msg, e->message, sizeof(msg));
        va_start(ap, fmt);
        int n = vsnprintf(e->message, SP_ERROR_MESSAGE_SIZE, fmt, ap);
        va_end(ap);
        /* the message keeps what fits: the context first, then the cause */
        size_t at = n < 0 ? 0 : MIN((size_t) n, SP_ERROR_MESSAGE_SIZE - 1);
        if (msg[0] && at + 2 < SP_ERROR_MESSAGE_SIZE) {
                memcpy(e->message + at, ": ", 2);
                at += 2;
                size_t len = MIN(strlen(msg), SP_ERROR_MESSAGE_SIZE - 1 - at);
                memcpy(e->message + at, msg, len);
                e->message[at + len] = 0;
        }
        return e->code;
}
