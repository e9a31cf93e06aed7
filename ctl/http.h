/* SPDX-License-Identifier: MIT */
#pragma once

/* A small HTTP/1.1 client over one AF_UNIX stream socket: exactly what
 * sandpoolctl needs to speak to sandpoold and nothing more. Requests carry
 * an optional body (in memory, or streamed by the caller after the head);
 * responses are read head first, then the body piece by piece as it
 * arrives, decoding Content-Length, chunked, or read-to-close framing. A
 * connection is reused for the next request when the server keeps it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct http_conn http_conn;

typedef struct http_response {
        unsigned status;
        char content_type[128];
        long retry_after;        /* seconds, -1 without a Retry-After header */
        int64_t content_length;  /* -1: chunked or until the connection closes */
        bool chunked;
        bool close;              /* the server closes after this response */

        /* body decoder state */
        uint64_t left;           /* bytes left in the body or the current chunk */
        bool in_chunk;
        bool crlf_due;           /* the CRLF after a chunk's data is still to read */
        bool done;
} http_response;

/* Connect to the socket at path. -errno from socket/connect (ENOENT: no
 * socket there, ECONNREFUSED: nobody listens, EACCES: no permission). */
int http_connect(const char *path, http_conn **ret);
/* Wrap a connected stream socket (takes it; tests use a socketpair). */
int http_conn_from_fd(int fd, http_conn **ret);
void http_conn_free(http_conn *c);
static inline void http_conn_freep(http_conn **c) {
        if (*c)
                http_conn_free(*c);
}
/* Receive timeout for every later read; 0: wait as long as it takes. */
int http_set_timeout_ms(http_conn *c, unsigned ms);
/* The socket, to poll() it beside other fds, and whether bytes are
 * buffered already (poll would not see those). With a receive timeout set,
 * http_read_body() returns -ETIMEDOUT when nothing came in time and may be
 * called again: the decoder resumes where it stopped. */
int http_conn_fd(const http_conn *c);
bool http_conn_buffered(const http_conn *c);
/* Was a response already read on this connection (a stale keep-alive
 * connection may have been closed by the server in between)? */
bool http_conn_reused(const http_conn *c);

/* Send the request line and headers. With body_len >= 0 a Content-Length
 * is sent; the body follows with http_send_body(), in one or many pieces. */
int http_send_head(http_conn *c, const char *method, const char *target, const char *content_type,
                   int64_t body_len);
int http_send_body(http_conn *c, const void *data, size_t len);

/* Read the status line and the headers. -EPROTO on a malformed answer,
 * -ECONNRESET when the server closed before answering. */
int http_read_head(http_conn *c, http_response *ret);
/* Read at most max bytes of the body: > 0 bytes, 0 at its end, -errno.
 * Returns as soon as any byte is available: streams arrive live. */
ssize_t http_read_body(http_conn *c, http_response *r, void *buf, size_t max);
/* The whole body, NUL-terminated, at most max bytes (-EFBIG beyond). */
int http_read_body_all(http_conn *c, http_response *r, size_t max, char **ret, size_t *ret_len);

/* Percent-encode s for a query value. */
char *http_query_escape(const char *s);
