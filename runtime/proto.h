/* SPDX-License-Identifier: MIT */
#pragma once

/* The control protocol between the caller (the supervisor) and a sandbox's
 * PID 1, over one SOCK_SEQPACKET socketpair: one message per packet, a
 * fixed header and a payload, file descriptors in SCM_RIGHTS. Setup stages
 * are numbered and checked in order (LXC's START_SYNC_*, nspawn's barrier). */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

enum {
        /* setup, in this order */
        SP_MSG_STAGE_GO = 1,      /* parent -> child: ids mapped, cgroup joined, overlay staged */
        SP_MSG_READY,             /* child -> parent: PID 1 pivoted and is serving; staging may go */
        SP_MSG_FAILED,            /* child -> parent: payload is the error text, hdr.err -errno */
        /* commands */
        SP_MSG_SPAWN,             /* parent -> child: sp_msg_spawn + strings; 3 fds (+ memfd) */
        SP_MSG_SIGNAL,            /* parent -> child: hdr.id, hdr.err = signal */
        SP_MSG_STARTED,           /* child -> parent: hdr.id, payload pid (int32) */
        SP_MSG_EXITED,            /* child -> parent: hdr.id, payload sp_msg_exit */
};

typedef struct sp_msg_hdr {
        uint32_t type;
        uint32_t len; /* payload bytes after the header */
        uint64_t id;
        int32_t err;
        uint32_t flags;
} sp_msg_hdr;

#define SP_SPAWN_PAYLOAD_IN_MEMFD 0x1u /* payload too large for a packet: read it from fd[3] */

/* Strings follow the struct: argc NUL-terminated argv strings, envc env
 * strings, then the cwd (possibly empty). */
typedef struct sp_msg_spawn {
        uint32_t uid, gid;
        uint32_t argc, envc;
        uint32_t strings_len;
        uint32_t flags;       /* SP_SPAWN_* */
} sp_msg_spawn;

#define SP_SPAWN_CTTY 0x1u /* stdin is a terminal: make it the controlling one */

typedef struct sp_msg_exit {
        int32_t exit_code;
        int32_t signal;
        int32_t spawn_errno;
        int32_t reserved;
        uint64_t cpu_usec;
        uint64_t maxrss_kib;
} sp_msg_exit;

#define SP_MSG_INLINE_MAX (64u * 1024u) /* larger spawn payloads go through a memfd */
#define SP_MSG_MAX_FDS 4

/* Send one message, with up to SP_MSG_MAX_FDS fds. Returns 0 or -errno. */
int sp_msg_send(int sock, uint32_t type, uint64_t id, int32_t err, uint32_t flags,
                const void *payload, size_t len, const int *fds, size_t nfds);
/* Receive one message into buf (header first). Received fds (CLOEXEC) are
 * stored in ret_fds, their count in *ret_nfds (unused slots -1). Returns the
 * number of bytes received (>= sizeof(sp_msg_hdr)), 0 on EOF, or -errno;
 * -EBADMSG for a truncated or malformed packet. */
ssize_t sp_msg_recv(int sock, void *buf, size_t size, int flags, int ret_fds[SP_MSG_MAX_FDS],
                    size_t *ret_nfds);
