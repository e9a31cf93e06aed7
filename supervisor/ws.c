/* SPDX-License-Identifier: MIT */
/* WebSocket server connections (RFC 6455): see ws.h. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>

#include "log.h"
#include "ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_FRAME_MAX (1024u * 1024u) /* a client frame larger than this: close 1009 */

struct ws_conn {
        server *srv;
        const ws_ops *ops;
        void *userdata;
        request *r;             /* until upgraded (then MHD owns the request) */
        struct MHD_UpgradeResponseHandle *urh;
        int fd;
        sd_event_source *src;
        char *in;               /* bytes of an incomplete frame */
        size_t in_len, in_cap;
        char *out;
        size_t out_len, out_off, out_cap;
        bool upgraded, closing, gone;
        unsigned dispatching;   /* inside on_ws_io: the free waits for its end */
};

/* ---- the handshake's SHA-1 (RFC 3174) and base64 ----------------------------- */

static uint32_t rol(uint32_t v, int n) {
        return v << n | v >> (32 - n);
}

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
        uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
        size_t total = ((len + 8) / 64 + 1) * 64;
        unsigned char block[64];

        for (size_t off = 0; off < total; off += 64) {
                for (size_t i = 0; i < 64; i++) {
                        size_t k = off + i;
                        uint64_t bits = (uint64_t) len * 8;
                        block[i] = k < len ? msg[k] : k == len ? 0x80 : k >= total - 8 ? (unsigned char) (bits >> (8 * (total - 1 - k))) : 0;
                }
                uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
                for (int i = 0; i < 16; i++)
                        w[i] = (uint32_t) block[4 * i] << 24 | (uint32_t) block[4 * i + 1] << 16 |
                               (uint32_t) block[4 * i + 2] << 8 | block[4 * i + 3];
                for (int i = 16; i < 80; i++)
                        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
                for (int i = 0; i < 80; i++) {
                        uint32_t f, k;
                        if (i < 20)
                                f = (b & c) | (~b & d), k = 0x5A827999;
                        else if (i < 40)
                                f = b ^ c ^ d, k = 0x6ED9EBA1;
                        else if (i < 60)
                                f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
                        else
                                f = b ^ c ^ d, k = 0xCA62C1D6;
                        uint32_t t = rol(a, 5) + f + e + k + w[i];
                        e = d, d = c, c = rol(b, 30), b = a, a = t;
                }
                h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
        }
        for (int i = 0; i < 20; i++)
                out[i] = (unsigned char) (h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const unsigned char *p, size_t n, char *out) {
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t o = 0;

        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
                out[o++] = tab[v >> 18 & 63];
                out[o++] = tab[v >> 12 & 63];
                out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
                out[o++] = i + 2 < n ? tab[v & 63] : '=';
        }
        out[o] = 0;
}

/* ---- frames out ------------------------------------------------------------------ */

static int queue(ws_conn *w, unsigned opcode, const void *p, size_t n) {
        unsigned char hdr[10];
        size_t h = 0;

        hdr[h++] = (unsigned char) (0x80 | opcode);
        if (n < 126)
                hdr[h++] = (unsigned char) n;
        else if (n <= 0xffff) {
                hdr[h++] = 126;
                hdr[h++] = (unsigned char) (n >> 8);
                hdr[h++] = (unsigned char) n;
        } else {
                hdr[h++] = 127;
                for (int i = 7; i >= 0; i--)
                        hdr[h++] = (unsigned char) ((uint64_t) n >> (8 * i));
        }
        if (w->out_off == w->out_len)
                w->out_off = w->out_len = 0;
        if (w->out_len + h + n > w->out_cap) {
                size_t cap = MAX(w->out_cap * 2, w->out_len + h + n);
                char *b = realloc(w->out, cap);
                if (!b)
                        return -ENOMEM;
                w->out = b;
                w->out_cap = cap;
        }
        memcpy(w->out + w->out_len, hdr, h);
        memcpy(w->out + w->out_len + h, p, n);
        w->out_len += h + n;
        return 0;
}

/* Write what is queued; watch for EPOLLOUT while some is left. */
static int flush(ws_conn *w) {
        while (w->out_off < w->out_len) {
                ssize_t n = send(w->fd, w->out + w->out_off, w->out_len - w->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        return -errno;
                }
                w->out_off += (size_t) n;
        }
        if (w->src)
                (void) sd_event_source_set_io_events(w->src, EPOLLIN | EPOLLRDHUP |
                                                                     (w->out_off < w->out_len ? EPOLLOUT : 0));
        return 0;
}

size_t ws_queued(const ws_conn *w) {
        return w->out_len - w->out_off;
}

int ws_send(ws_conn *w, const void *p, size_t n) {
        if (w->closing || !w->upgraded)
                return -EPIPE;
        if (ws_queued(w) + n > WS_QUEUE_MAX)
                return -ENOBUFS;
        int r = queue(w, 0x2, p, n);
        return r < 0 ? r : flush(w);
}

/* ---- the end ------------------------------------------------------------------- */

static void ws_free(ws_conn *w) {
        free(w->in);
        free(w->out);
        free(w);
}

/* Hand the socket back to MHD, closed; tell the owner. */
static void ws_drop(ws_conn *w) {
        if (w->gone)
                return;
        w->gone = true;
        w->src = sd_event_source_disable_unref(w->src);
        if (w->urh) {
                (void) MHD_upgrade_action(w->urh, MHD_UPGRADE_ACTION_CLOSE);
                http_kick(w->srv);
        }
        w->ops->closed(w, w->userdata);
        if (!w->dispatching)
                ws_free(w);
}

void ws_close(ws_conn *w, unsigned code, const char *reason) {
        unsigned char b[125];
        size_t n = reason ? MIN(strlen(reason), sizeof(b) - 2) : 0;

        if (w->closing || w->gone)
                return;
        w->closing = true;
        b[0] = (unsigned char) (code >> 8);
        b[1] = (unsigned char) code;
        if (n)
                memcpy(b + 2, reason, n);
        /* A best effort: what fits in the socket now goes, the rest with it. */
        if (queue(w, 0x8, b, n + 2) >= 0)
                (void) flush(w);
        ws_drop(w);
}

/* ---- frames in ------------------------------------------------------------------ */

ssize_t ws_frame_parse(unsigned char *p, size_t have, size_t max_payload, ws_frame *ret) {
        size_t h = 2;
        uint64_t n;

        if (have < 2)
                return 0;
        if (!(p[1] & 0x80))
                return -EPROTO; /* RFC 6455 5.1: a server closes on an unmasked client frame */
        n = p[1] & 0x7f;
        if (n == 126) {
                if (have < 4)
                        return 0;
                n = (uint64_t) p[2] << 8 | p[3];
                h = 4;
        } else if (n == 127) {
                if (have < 10)
                        return 0;
                n = 0;
                for (int i = 0; i < 8; i++)
                        n = n << 8 | p[2 + i];
                h = 10;
        }
        if (n > max_payload)
                return -EMSGSIZE;
        if (have - h < 4 || have - h - 4 < n)
                return 0;
        unsigned char *mask = p + h, *data = p + h + 4;
        for (uint64_t i = 0; i < n; i++)
                data[i] ^= mask[i % 4];
        *ret = (ws_frame){.opcode = p[0] & 0x0f, .fin = p[0] & 0x80, .payload = data, .len = (size_t) n};
        return (ssize_t) (h + 4 + n);
}

/* One complete frame at the front of w->in, acted on: its size, or 0 for
 * more bytes needed, or -1 for a protocol error (closed already). */
static ssize_t frame(ws_conn *w) {
        ws_frame f;
        ssize_t k = ws_frame_parse((unsigned char *) w->in, w->in_len, WS_FRAME_MAX, &f);

        if (k == -EPROTO) {
                ws_close(w, 1002, "client frames must be masked");
                return -1;
        }
        if (k == -EMSGSIZE) {
                ws_close(w, 1009, "frame too large");
                return -1;
        }
        if (k <= 0)
                return k;
        unsigned char *data = f.payload;
        size_t n = f.len;
        switch (f.opcode) {
        case 0x0: case 0x1: case 0x2: /* continuation, text, binary: all input */
                if (n)
                        w->ops->data(w, (const char *) data, n, w->userdata);
                break;
        case 0x8:
                ws_close(w, 1000, NULL);
                return -1;
        case 0x9:
                if (queue(w, 0xA, data, n) >= 0)
                        (void) flush(w);
                break;
        case 0xA:
                break;
        default:
                ws_close(w, 1002, "unknown opcode");
                return -1;
        }
        return k;
}

static void ws_io(ws_conn *w, uint32_t revents) {
        char buf[16384];

        if (revents & EPOLLOUT) {
                if (flush(w) < 0)
                        return ws_drop(w);
                if (ws_queued(w) == 0 && w->ops->drained)
                        w->ops->drained(w, w->userdata);
                if (w->gone)
                        return;
        }
        if (!(revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                return;
        ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0)
                return ws_drop(w);
        if (w->in_len + (size_t) n > w->in_cap) {
                size_t cap = MAX(w->in_cap * 2, w->in_len + (size_t) n);
                char *b = realloc(w->in, cap);
                if (!b)
                        return ws_drop(w);
                w->in = b;
                w->in_cap = cap;
        }
        memcpy(w->in + w->in_len, buf, (size_t) n);
        w->in_len += (size_t) n;
        while (!w->gone) {
                ssize_t k = frame(w);
                if (k <= 0)
                        return; /* more needed, or closed */
                memmove(w->in, w->in + k, w->in_len - (size_t) k);
                w->in_len -= (size_t) k;
        }
}

static int on_ws_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ws_conn *w = userdata;

        /* The owner's callbacks may close w: it is freed here, after. */
        w->dispatching++;
        ws_io(w, revents);
        if (--w->dispatching == 0 && w->gone)
                ws_free(w);
        return 0;
}

/* ---- the upgrade ---------------------------------------------------------------- */

static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
        ws_conn *w = cls;

        w->urh = urh;
        w->fd = sock;
        w->upgraded = true;
        if (w->r) {
                /* from now on the connection is ours, the request MHD's */
                (void) request_take_op(w->r);
                w->r = NULL;
        }
        if (fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK) < 0 ||
            sd_event_add_io(w->srv->event, &w->src, sock, EPOLLIN | EPOLLRDHUP, on_ws_io, w) < 0) {
                ws_drop(w);
                return;
        }
        (void) sd_event_source_set_priority(w->src, PRIO_WORK);
        if (extra_in_size > 0 && (w->in = malloc(extra_in_size))) {
                memcpy(w->in, extra_in, extra_in_size);
                w->in_len = w->in_cap = extra_in_size;
        }
        w->ops->opened(w, w->userdata);
}

/* The request ended before the upgrade (the client went away). */
static void ws_op_free(request *r, void *data) {
        ws_conn *w = data;

        w->r = NULL;
        w->ops->closed(w, w->userdata);
        ws_free(w);
}

static const request_op_ops ws_op_ops = {
        .free = ws_op_free,
};

static bool header_has_token(request *r, const char *name, const char *token) {
        const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
        size_t n = strlen(token);

        for (const char *p = v; p && *p;) {
                p += strspn(p, " \t,");
                size_t k = strcspn(p, " \t,");
                if (k == n && strncasecmp(p, token, n) == 0)
                        return true;
                p += k;
        }
        return false;
}

int ws_accept(request *r, const ws_ops *ops, void *userdata) {
        const char *key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
        const char *ver = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
        unsigned char digest[20];
        char accept[32], buf[128];

        if (!header_has_token(r, "Upgrade", "websocket") || !header_has_token(r, "Connection", "upgrade")) {
                reply_error(r, 426, "upgrade_required", "this is a WebSocket endpoint (Upgrade: websocket)");
                if (r->reply)
                        MHD_add_response_header(r->reply, "Upgrade", "websocket");
                return -EINVAL;
        }
        if (!ver || !streq(ver, "13") || !key || strlen(key) != 24) {
                reply_error(r, 400, "bad_request", "Sec-WebSocket-Version 13 and a Sec-WebSocket-Key are required");
                return -EINVAL;
        }
        ws_conn *w = calloc(1, sizeof(*w));
        if (!w) {
                reply_error(r, 500, "internal", "out of memory");
                return -ENOMEM;
        }
        *w = (ws_conn){.srv = r->srv, .ops = ops, .userdata = userdata, .r = r, .fd = -EBADF};
        struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgraded, w);
        if (!resp) {
                free(w);
                reply_error(r, 500, "internal", "cannot upgrade the connection");
                return -ENOMEM;
        }
        snprintf(buf, sizeof(buf), "%s" WS_GUID, key);
        sha1((const unsigned char *) buf, strlen(buf), digest);
        base64(digest, sizeof(digest), accept);
        MHD_add_response_header(resp, "Upgrade", "websocket");
        MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
        request_set_op(r, &ws_op_ops, w);
        reply_take_response(r, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
        return 0;
}
