/* SPDX-License-Identifier: MIT */
#pragma once

/* The name a client asks for in the first bytes of a TCP connection: the
 * server_name of a TLS ClientHello, or the Host header of an HTTP/1.x
 * request. Pure functions over untrusted bytes (fuzzed). */

#include <stddef.h>

/* 1 and the name (lower case, no port) in ret when found; 0 when more
 * bytes are needed; -EBADMSG when these bytes can never name a host (no
 * SNI, no Host, not TLS or HTTP, or larger than len allows). */
int sniff_tls_sni(const unsigned char *buf, size_t len, char *ret, size_t cap);
int sniff_http_host(const char *buf, size_t len, char *ret, size_t cap);
/* Either, by the first byte (0x16: a TLS handshake record). */
int sniff_name(const unsigned char *buf, size_t len, char *ret, size_t cap);
