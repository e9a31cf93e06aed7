/* SPDX-License-Identifier: MIT */
/* Human renderings of API objects: pool figures, limits, owners. */
#include <pwd.h>
#include <stdio.h>

#include "ctl.h"
#include "render.h"
#include "table.h"

static bool has_suffix(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && streq(s + n - m, suffix);
}

char *format_limit(const char *key, json_t *v, char *buf, size_t size) {
        if (json_is_string(v)) {
                /* labels come from clients: no escape sequence of theirs
                 * reaches the operator's terminal */
                snprintf(buf, size, "%s", json_string_value(v));
                for (char *p = buf; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                *p = '?';
        }
        else if (json_is_boolean(v))
                snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
        else if (!json_is_integer(v))
                snprintf(buf, size, "-");
        else if (has_suffix(key, "_ms"))
                format_duration_ms((uint64_t) json_integer_value(v), buf, size);
        else if (has_suffix(key, "_mb"))
                format_bytes((uint64_t) json_integer_value(v) << 20, buf, size);
        else if (has_suffix(key, "_s") || has_suffix(key, "_sec"))
                format_duration_ms((uint64_t) json_integer_value(v) * 1000, buf, size);
        else if (strstr(key, "memory") || strstr(key, "disk") || strstr(key, "output") || strstr(key, "upload") ||
                 has_suffix(key, "_bytes"))
                format_bytes((uint64_t) json_integer_value(v), buf, size);
        else if (strstr(key, "cpu") || has_suffix(key, "_pct"))
                snprintf(buf, size, "%lld%%", (long long) json_integer_value(v));
        else
                snprintf(buf, size, "%lld", (long long) json_integer_value(v));
        return buf;
}

void print_pool_line(json_t *pool) {
        printf("%-10s %lld available, %lld allocated, %lld warming (%lld of %lld sandboxes)\n", "pool:",
               (long long) json_int_or(pool, "available", 0), (long long) json_int_or(pool, "allocated", 0),
               (long long) json_int_or(pool, "warming", 0), (long long) json_int_or(pool, "total", 0),
               (long long) json_int_or(pool, "max_capacity", 0));
}

void print_limits(json_t *limits, const char *title) {
        const char *k;
        json_t *v;
        char buf[64];

        if (!json_is_object(limits))
                return;
        printf("%s\n", title);
        json_object_foreach(limits, k, v) {
                /* the unit shows in the value: "command_timeout 30s" */
                size_t n = strlen(k);
                if (has_suffix(k, "_ms"))
                        n -= 3;
                printf("  %-24.*s %s\n", (int) n, k, format_limit(k, v, buf, sizeof(buf)));
        }
}

const char *uid_name(long long uid, char *buf, size_t size) {
        struct passwd *pw = uid >= 0 ? getpwuid((uid_t) uid) : NULL;

        if (pw)
                snprintf(buf, size, "%s", pw->pw_name);
        else
                snprintf(buf, size, "%lld", uid);
        return buf;
}
