/* SPDX-License-Identifier: MIT */
/* TLS SNI and HTTP Host from a connection's first bytes. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "sniff.h"

static unsigned rd16(const unsigned char *p) {
        return (unsigned) p[0] << 8 | p[1];
}

static int copy_name(const char *s, size_t n, char *ret, size_t cap) {
        if (n == 0 || n >= cap)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c >= 'A' && c <= 'Z')
                        c = (char) (c - 'A' + 'a');
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
                        return -EBADMSG;
                ret[i] = c;
        }
        ret[n] = '\0';
        return 1;
}

/* RFC 8446 4.1.2 and RFC 6066 3: record, handshake, hello, extensions. */
int sniff_tls_sni(const unsigned char *b, size_t len, char *ret, size_t cap) {
        size_t rec, p, end;

        if (len < 5)
                return 0;
        if (b[0] != 0x16 || b[1] != 3)
                return -EBADMSG;
        rec = rd16(b + 3);
        if (rec < 4 || rec > 16384)
                return -EBADMSG;
        if (len < 5 + rec)
                return 0; /* the whole first record, then decide */
        end = 5 + rec;
        p = 5;
        if (b[p] != 1) /* client_hello */
                return -EBADMSG;
        /* a hello longer than its record continues in the next one: we
         * decide on the first record alone, which holds SNI in practice */
        p += 4 + 2 + 32; /* handshake header, legacy_version, random */
        if (p + 1 > end)
                return -EBADMSG;
        p += 1 + b[p]; /* session id */
        if (p + 2 > end)
                return -EBADMSG;
        p += 2 + rd16(b + p); /* cipher suites */
        if (p + 1 > end)
                return -EBADMSG;
        p += 1 + b[p]; /* compression methods */
        if (p + 2 > end)
                return -EBADMSG;
        size_t ext_end = p + 2 + rd16(b + p);
        p += 2;
        if (ext_end > end)
                ext_end = end;
        while (p + 4 <= ext_end) {
                unsigned type = rd16(b + p), elen = rd16(b + p + 2);
                p += 4;
                if (p + elen > ext_end)
                        return -EBADMSG;
                if (type == 0) { /* server_name: list, type 0 host_name, name */
                        if (elen < 5 || b[p + 2] != 0)
                                return -EBADMSG;
                        unsigned nlen = rd16(b + p + 3);
                        if (5 + nlen > elen)
                                return -EBADMSG;
                        return copy_name((const char *) b + p + 5, nlen, ret, cap);
                }
                p += elen;
        }
        return -EBADMSG; /* no SNI: an address, not a name */
}

int sniff_http_host(const char *b, size_t len, char *ret, size_t cap) {
        const char *end = memmem(b, len, "\r\n\r\n", 4), *line, *next;
        const char *found = NULL;
        size_t found_len = 0;

        if (!end)
                return len >= 16384 ? -EBADMSG : 0;
        /* the request line: a method of capital letters and a space */
        for (line = b; line < end && *line >= 'A' && *line <= 'Z'; line++)
                ;
        if (line == b || line >= end || *line != ' ')
                return -EBADMSG;
        line = memmem(b, (size_t) (end - b), "\r\n", 2);
        while (line && line < end) {
                line += 2;
                next = memmem(line, (size_t) (end + 2 - line), "\r\n", 2);
                if (!next)
                        break;
                if (next - line > 5 && strncasecmp(line, "host:", 5) == 0) {
                        const char *v = line + 5, *ve = next;
                        if (found)
                                return -EBADMSG; /* two Host headers: which one would the server read? */
                        while (v < ve && (*v == ' ' || *v == '\t'))
                                v++;
                        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                                ve--;
                        const char *colon = memchr(v, ':', (size_t) (ve - v));
                        found = v;
                        found_len = (size_t) ((colon ? colon : ve) - v);
                }
                line = next;
        }
        if (!found)
                return -EBADMSG;
        return copy_name(found, found_len, ret, cap);
}

int sniff_name(const unsigned char *buf, size_t len, char *ret, size_t cap) {
        if (len == 0)
                return 0;
        return buf[0] == 0x16 ? sniff_tls_sni(buf, len, ret, cap) : sniff_http_host((const char *) buf, len, ret, cap);
}
