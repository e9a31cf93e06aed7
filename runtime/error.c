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
                vsnprintf(e->message, sizeof(e->message), fmt, ap);
                va_end(ap);
        }
        return code;
}
