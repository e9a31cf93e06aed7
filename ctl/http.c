/* SPDX-License-Identifier: MIT */
/* The HTTP/1.1 client of sandpoolctl, over AF_UNIX. Hand-written rather
 * than libcurl: it talks to one known server on a local socket, it must
 * hand each chunk of an exec stream to the terminal the moment it arrives
 * (a blocking read() that returns what is there does exactly that), and it
 * keeps the CLI free of a TLS-capable network library it would never use. */
#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "http.h"
#include "macro.h"

#define HEAD_MAX (64u * 1024u)
#define RBUF_SIZE (64u * 1024u)

struct http_conn {
        int fd;
        unsigned n_responses;
        char buf[RBUF_SIZE];
        size_t len, off; /* unread bytes are buf[off..len) */
};

int http_conn_from_fd(int fd, http_conn **ret) {
        http_conn *c = calloc(1, sizeof(*c));

        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->fd = fd;
        *ret = c;
        return 0;
}

int http_connect(const char *path, http_conn **ret) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();
        return http_conn_from_fd(TAKE_FD(fd), ret);
}

void http_conn_free(http_conn *c) {
        if (!c)
                return;
        safe_close(c->fd);
        free(c);
}

int http_set_timeout_ms(http_conn *c, unsigned ms) {
        struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

        if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
                return negative_errno();
        return 0;
}

int http_conn_fd(const http_conn *c) {
        return c->fd;
}

bool http_conn_buffered(const http_conn *c) {
        return c->off < c->len;
}

bool http_conn_reused(const http_conn *c) {
        return c->n_responses > 0;
}

static int send_all(http_conn *c, const void *data, size_t len) {
        const char *p = data;

        while (len > 0) {
                /* MSG_NOSIGNAL: a daemon that went away is an error to
                 * report, not a SIGPIPE that kills the CLI silently. */
                ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int http_send_head(http_conn *c, const char *method, const char *target, const char *content_type,
                   int64_t body_len) {
        _cleanup_free_ char *head = NULL;
        char clen[64] = "";
        int n;

        if (body_len >= 0)
                snprintf(clen, sizeof(clen), "Content-Length: %lld\r\n", (long long) body_len);
        n = asprintf(&head, "%s %s HTTP/1.1\r\nHost: sandpool\r\nUser-Agent: sandpoolctl\r\n%s%s%s%s\r\n", method,
                     target, content_type ? "Content-Type: " : "", content_type ? content_type : "",
                     content_type ? "\r\n" : "", clen);
        if (n < 0)
                return -ENOMEM;
        return send_all(c, head, (size_t) n);
}

int http_send_body(http_conn *c, const void *data, size_t len) {
        return send_all(c, data, len);
}

/* Read more bytes into the buffer: > 0 read, 0 at EOF, -errno. */
static ssize_t fill(http_conn *c) {
        ssize_t n;

        if (c->off == c->len)
                c->off = c->len = 0;
        else if (c->len == sizeof(c->buf)) {
                memmove(c->buf, c->buf + c->off, c->len - c->off);
                c->len -= c->off;
                c->off = 0;
        }
        if (c->len == sizeof(c->buf))
                return -ENOBUFS;
        do
                n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : negative_errno();
        c->len += (size_t) n;
        return n;
}

/* One CRLF-terminated line from the buffer into line (without the CRLF). */
static int read_line(http_conn *c, char *line, size_t size) {
        for (;;) {
                char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
                if (nl) {
                        size_t n = (size_t) (nl - (c->buf + c->off));
                        if (n > 0 && nl[-1] == '\r')
                                n--;
                        if (n >= size)
                                return -EPROTO;
                        memcpy(line, c->buf + c->off, n);
                        line[n] = 0;
                        c->off = (size_t) (nl - c->buf) + 1;
                        return 0;
                }
                if (c->len - c->off >= size)
                        return -EPROTO;
                ssize_t k = fill(c);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return -ECONNRESET;
        }
}

static void parse_header(http_response *r, char *line) {
        char *v = strchr(line, ':');

        if (!v)
                return;
        *v++ = 0;
        v += strspn(v, " \t");
        if (strcasecmp(line, "Content-Length") == 0)
                r->content_length = strtoll(v, NULL, 10);
        else if (strcasecmp(line, "Transfer-Encoding") == 0)
                r->chunked = strcasestr(v, "chunked") != NULL;
        else if (strcasecmp(line, "Content-Type") == 0)
                snprintf(r->content_type, sizeof(r->content_type), "%s", v);
        else if (strcasecmp(line, "Retry-After") == 0)
                r->retry_after = strtol(v, NULL, 10);
        else if (strcasecmp(line, "Connection") == 0)
                r->close = strcasestr(v, "close") != NULL;
}

int http_read_head(http_conn *c, http_response *ret) {
        char line[8192];
        size_t total = 0;
        int k, major, minor;
        unsigned status;

        *ret = (http_response) { .content_length = -1, .retry_after = -1 };
        k = read_line(c, line, sizeof(line));
        if (k < 0)
                return k;
        if (sscanf(line, "HTTP/%d.%d %u", &major, &minor, &status) != 3 || status < 100 || status > 999)
                return -EPROTO;
        ret->status = status;
        if (major == 1 && minor == 0)
                ret->close = true;
        for (;;) {
                k = read_line(c, line, sizeof(line));
                if (k < 0)
                        return k == -ECONNRESET ? -EPROTO : k;
                total += strlen(line) + 2;
                if (total > HEAD_MAX)
                        return -EPROTO;
                if (!line[0])
                        break;
                parse_header(ret, line);
        }
        c->n_responses++;
        if (status == 204 || status == 304 || status < 200) {
                ret->done = true;
        } else if (ret->chunked) {
                ret->content_length = -1;
        } else if (ret->content_length >= 0) {
                ret->left = (uint64_t) ret->content_length;
                ret->done = ret->left == 0;
        } else
                ret->close = true; /* the body ends when the connection does */
        return 0;
}

/* Start the next chunk: its size line (extensions ignored), or the last
 * chunk and the trailers. */
static int next_chunk(http_conn *c, http_response *r) {
        char line[1024];
        char *end;
        int k;

        k = read_line(c, line, sizeof(line));
        if (k < 0)
                return k == -ECONNRESET ? -EPROTO : k;
        if (!isxdigit((unsigned char) line[0]))
                return -EPROTO;
        errno = 0;
        r->left = strtoull(line, &end, 16);
        if (errno != 0 || (*end && *end != ';' && *end != ' '))
                return -EPROTO;
        if (r->left > 0) {
                r->in_chunk = true;
                return 0;
        }
        do { /* trailers, up to the empty line */
                k = read_line(c, line, sizeof(line));
                if (k < 0)
                        return k == -ECONNRESET ? -EPROTO : k;
        } while (line[0]);
        r->done = true;
        return 0;
}

ssize_t http_read_body(http_conn *c, http_response *r, void *buf, size_t max) {
        size_t avail, n;
        int k;

        while (!r->done) {
                if (r->crlf_due) {
                        /* kept apart so that a timeout here can resume */
                        char crlf[4];
                        k = read_line(c, crlf, sizeof(crlf));
                        if (k < 0 || crlf[0])
                                return k < 0 ? k : -EPROTO;
                        r->crlf_due = false;
                        continue;
                }
                if (r->chunked && !r->in_chunk) {
                        k = next_chunk(c, r);
                        if (k < 0)
                                return k;
                        continue;
                }
                if (c->off == c->len) {
                        ssize_t f = fill(c);
                        if (f < 0)
                                return f;
                        if (f == 0) {
                                if (r->chunked || r->content_length >= 0)
                                        return -EPROTO; /* cut short */
                                r->done = true;
                                return 0;
                        }
                }
                avail = c->len - c->off;
                n = MIN(avail, max);
                if (r->chunked || r->content_length >= 0)
                        n = (size_t) MIN((uint64_t) n, r->left);
                memcpy(buf, c->buf + c->off, n);
                c->off += n;
                if (r->chunked || r->content_length >= 0) {
                        r->left -= n;
                        if (r->left == 0) {
                                if (r->chunked) {
                                        r->in_chunk = false;
                                        r->crlf_due = true;
                                } else
                                        r->done = true;
                        }
                }
                if (n > 0)
                        return (ssize_t) n;
        }
        return 0;
}

int http_read_body_all(http_conn *c, http_response *r, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0, cap = 0;

        for (;;) {
                if (cap - len < 4096 + 1) {
                        size_t ncap = cap ? cap * 2 : 8192;
                        char *p = realloc(data, ncap);
                        if (!p)
                                return -ENOMEM;
                        data = p;
                        cap = ncap;
                }
                ssize_t n = http_read_body(c, r, data + len, cap - len - 1);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
        }
        data[len] = 0;
        *ret = TAKE_PTR(data);
        if (ret_len)
                *ret_len = len;
        return 0;
}

char *http_query_escape(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(strlen(s) * 3 + 1), *o = out;

        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (isalnum(*p) || strchr("/-._~", *p))
                        *o++ = (char) *p;
                else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                }
        }
        *o = 0;
        return out;
}
