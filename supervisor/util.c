/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int random_id_hex(char *ret, size_t n_bytes) {
        uint8_t buf[64];
        size_t got = 0;

        if (n_bytes > sizeof(buf))
                return -EINVAL;
        while (got < n_bytes) {
                ssize_t k = getrandom(buf + got, n_bytes - got, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += k;
        }
        for (size_t i = 0; i < n_bytes; i++)
                sprintf(ret + 2 * i, "%02x", buf[i]);
        ret[2 * n_bytes] = 0;
        return 0;
}

json_t *json_time(usec_t t) {
        time_t sec = t / USEC_PER_SEC;
        struct tm tm;
        char buf[64];

        gmtime_r(&sec, &tm);
        snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned) ((t % USEC_PER_SEC) / 1000));
        return json_string(buf);
}

/* Length of the valid UTF-8 sequence at p (1-4), 0 if invalid, or -1 if
 * it is a valid prefix cut short by the end of the buffer. */
static int utf8_seq(const unsigned char *p, size_t avail) {
        unsigned char c = p[0];
        int need;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                need = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                need = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                need = 4, cp = c & 0x07;
        else
                return 0;
        for (int i = 1; i < need; i++) {
                if ((size_t) i >= avail)
                        return -1;
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return need;
}

size_t json_escape_bytes(const char *data, size_t len, char *out) {
        static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
        const unsigned char *in = (const unsigned char *) data;
        size_t n = 0;

        for (size_t i = 0; i < len;) {
                unsigned char c = in[i];
                if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                        /* a run of bytes that need nothing: one copy */
                        size_t j = i + 1;
                        while (j < len && in[j] >= 0x20 && in[j] < 0x80 && in[j] != '"' && in[j] != '\\')
                                j++;
                        memcpy(out + n, in + i, j - i);
                        n += j - i;
                        i = j;
                        continue;
                }
                if (c < 0x80) {
                        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                                          : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
                        if (esc) {
                                out[n++] = esc[0];
                                out[n++] = esc[1];
                        } else {
                                memcpy(out + n, "\\u00", 4);
                                out[n + 4] = hex[c >> 4];
                                out[n + 5] = hex[c & 15];
                                n += 6;
                        }
                        i++;
                        continue;
                }
                int k = utf8_seq(in + i, len - i);
                if (k <= 0) {
                        memcpy(out + n, "\xef\xbf\xbd", 3);
                        n += 3;
                        i++;
                        continue;
                }
                memcpy(out + n, in + i, (size_t) k);
                n += (size_t) k;
                i += (size_t) k;
        }
        return n;
}

json_t *json_bytes(const char *data, size_t len, char *carry, size_t *carry_len) {
        _cleanup_free_ char *buf = NULL;
        size_t pre = carry_len ? *carry_len : 0, n = 0, total = pre + len;
        _cleanup_free_ unsigned char *in = malloc(total + 1);

        /* worst case every byte becomes the 3-byte U+FFFD */
        buf = malloc(total * 3 + 1);
        if (!buf || !in)
                return NULL;
        if (pre)
                memcpy(in, carry, pre);
        memcpy(in + pre, data, len);
        if (carry_len)
                *carry_len = 0;

        for (size_t i = 0; i < total;) {
                int k = utf8_seq(in + i, total - i);
                if (k < 0 && carry_len && total - i <= 3) {
                        memcpy(carry, in + i, total - i);
                        *carry_len = total - i;
                        break;
                }
                if (k <= 0) {
                        memcpy(buf + n, "\xef\xbf\xbd", 3);
                        n += 3;
                        i++;
                        continue;
                }
                memcpy(buf + n, in + i, k);
                n += k;
                i += k;
        }
        return json_stringn_nocheck(buf, n);
}

int json_get_uint(json_t *o, const char *key, uint64_t max, uint64_t *ret, sp_error *err) {
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v))
                return 0; /* absent: caller keeps the default */
        if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t) json_integer_value(v) > max)
                return sp_error_set(err, -EINVAL, "invalid value for %s", key);
        *ret = json_integer_value(v);
        return 1;
}
