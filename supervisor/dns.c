/* SPDX-License-Identifier: MIT */
/* DNS messages (RFC 1035): parse one question, build answers and queries. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "dns.h"

#define HDR 12

static uint16_t rd16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}
static uint32_t rd32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}
static void wr32(uint8_t *p, uint32_t v) {
        wr16(p, (uint16_t) (v >> 16));
        wr16(p + 2, (uint16_t) v);
}

/* Read a name at *off (following compression pointers, at most 32 of
 * them, never forward past len) into out as dotted lower case; *off moves
 * past the name as it appears at the original position. */
static int read_name(const uint8_t *buf, size_t len, size_t *off, char *out, size_t cap, size_t *ret_longest) {
        size_t p = *off, o = 0, longest = 0;
        bool jumped = false;
        unsigned jumps = 0;

        for (;;) {
                if (p >= len)
                        return -EBADMSG;
                uint8_t l = buf[p];
                if ((l & 0xc0) == 0xc0) {
                        if (p + 1 >= len || ++jumps > 32)
                                return -EBADMSG;
                        if (!jumped)
                                *off = p + 2;
                        jumped = true;
                        p = (size_t) (l & 0x3f) << 8 | buf[p + 1];
                        continue;
                }
                if (l & 0xc0)
                        return -EBADMSG;
                if (l == 0) {
                        if (!jumped)
                                *off = p + 1;
                        break;
                }
                if (p + 1 + l > len || o + l + 2 > cap)
                        return -EBADMSG;
                if (o > 0)
                        out[o++] = '.';
                for (size_t i = 0; i < l; i++) {
                        char c = (char) buf[p + 1 + i];
                        if (c >= 'A' && c <= 'Z')
                                c = (char) (c - 'A' + 'a');
                        /* a dot or a NUL inside a label would change the name's meaning */
                        if (c == '.' || c == '\0')
                                return -EBADMSG;
                        out[o++] = c;
                }
                if (l > longest)
                        longest = l;
                p += 1 + l;
        }
        out[o] = '\0';
        if (ret_longest)
                *ret_longest = longest;
        return 0;
}

static int write_name(const char *name, uint8_t *out, size_t cap) {
        size_t o = 0;
        const char *s = name;

        while (*s) {
                const char *dot = strchr(s, '.');
                size_t l = dot ? (size_t) (dot - s) : strlen(s);
                if (l == 0 || l > 63 || o + 1 + l + 1 > cap)
                        return -ENOBUFS;
                out[o++] = (uint8_t) l;
                memcpy(out + o, s, l);
                o += l;
                s += l + (dot ? 1 : 0);
        }
        if (o + 1 > cap)
                return -ENOBUFS;
        out[o++] = 0;
        return (int) o;
}

int dns_parse_query(const uint8_t *buf, size_t len, dns_query *q) {
        size_t off = HDR;

        *q = (dns_query) {};
        if (len < 2)
                return -EPROTO;
        q->id = rd16(buf);
        if (len < HDR)
                return -EBADMSG;
        q->flags = rd16(buf + 2);
        /* a query (QR 0), opcode QUERY, one question and no answers */
        if ((q->flags & 0x8000) || ((q->flags >> 11) & 0xf) != 0 || rd16(buf + 4) != 1 || rd16(buf + 6) != 0 ||
            rd16(buf + 8) != 0)
                return -EBADMSG;
        if (read_name(buf, len, &off, q->name, sizeof(q->name), &q->longest_label) < 0)
                return -EBADMSG;
        if (off + 4 > len)
                return -EBADMSG;
        q->qtype = rd16(buf + off);
        q->qclass = rd16(buf + off + 2);
        return 0;
}

static int header(uint8_t *out, uint16_t id, uint16_t flags, uint16_t an) {
        wr16(out, id);
        wr16(out + 2, flags);
        wr16(out + 4, 1);
        wr16(out + 6, an);
        wr16(out + 8, 0);
        wr16(out + 10, 0);
        return HDR;
}

int dns_build_reply(const dns_query *q, int rcode, const uint32_t *addrs, const uint32_t *ttls, size_t n,
                    uint8_t *out, size_t cap) {
        /* QR, RA, RD as asked; the header's other bits clear */
        uint16_t flags = (uint16_t) (0x8000 | (q->flags & 0x0100) | 0x0080 | (rcode & 0xf));
        size_t o;
        int k;

        if (n > DNS_MAX_ANSWERS || cap < HDR)
                return -ENOBUFS;
        o = (size_t) header(out, q->id, flags, (uint16_t) n);
        k = write_name(q->name, out + o, cap - o);
        if (k < 0)
                return k;
        o += (size_t) k;
        if (o + 4 + n * 16 > cap)
                return -ENOBUFS;
        wr16(out + o, q->qtype);
        wr16(out + o + 2, q->qclass);
        o += 4;
        for (size_t i = 0; i < n; i++) {
                wr16(out + o, 0xc00c); /* the question's name */
                wr16(out + o + 2, DNS_TYPE_A);
                wr16(out + o + 4, DNS_CLASS_IN);
                wr32(out + o + 6, ttls[i]);
                wr16(out + o + 10, 4);
                memcpy(out + o + 12, &addrs[i], 4);
                o += 16;
        }
        return (int) o;
}

int dns_build_query(const char *name, uint16_t qtype, uint16_t id, uint8_t *out, size_t cap) {
        size_t o;
        int k;

        if (cap < HDR)
                return -ENOBUFS;
        o = (size_t) header(out, id, 0x0100 /* RD */, 0);
        k = write_name(name, out + o, cap - o);
        if (k < 0)
                return k;
        o += (size_t) k;
        if (o + 4 > cap)
                return -ENOBUFS;
        wr16(out + o, qtype);
        wr16(out + o + 2, DNS_CLASS_IN);
        return (int) (o + 4);
}

int dns_parse_answer(const uint8_t *buf, size_t len, uint16_t id, const char *name, uint16_t qtype, int *ret_rcode,
                     uint32_t *addrs, uint32_t *ttls, size_t max, size_t *ret_n) {
        char qn[256], rn[256];
        size_t off = HDR, n = 0;
        uint16_t flags, an;

        if (len < HDR || rd16(buf) != id)
                return -EBADMSG;
        flags = rd16(buf + 2);
        if (!(flags & 0x8000) || rd16(buf + 4) != 1)
                return -EBADMSG;
        an = rd16(buf + 6);
        if (read_name(buf, len, &off, qn, sizeof(qn), NULL) < 0 || off + 4 > len)
                return -EBADMSG;
        /* the answer to the question we asked, not some other one */
        if (strcmp(qn, name) != 0 || rd16(buf + off) != qtype || rd16(buf + off + 2) != DNS_CLASS_IN)
                return -EBADMSG;
        off += 4;
        for (unsigned i = 0; i < an; i++) {
                uint16_t type, class, rdlen;
                if (read_name(buf, len, &off, rn, sizeof(rn), NULL) < 0 || off + 10 > len)
                        return -EBADMSG;
                type = rd16(buf + off);
                class = rd16(buf + off + 2);
                rdlen = rd16(buf + off + 8);
                if (off + 10 + rdlen > len)
                        return -EBADMSG;
                if (type == DNS_TYPE_A && class == DNS_CLASS_IN && rdlen == 4 && n < max) {
                        ttls[n] = rd32(buf + off + 4);
                        memcpy(&addrs[n], buf + off + 10, 4);
                        n++;
                }
                off += 10 + rdlen;
        }
        *ret_rcode = flags & 0xf;
        *ret_n = n;
        return 0;
}
