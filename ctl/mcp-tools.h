/* SPDX-License-Identifier: MIT */
#pragma once

/* The tools that 'sandpoolctl mcp' offers, over the daemon's public API:
 * run_command, run_python, run_node, write_file, read_file, list_files and
 * reset, all in one session of the daemon, created on the first call that
 * needs it (or attached with --session) and ended when the server exits.
 * This file knows the tools and the daemon; the protocol (JSON-RPC,
 * progress notifications, cancellation) is mcp.c's, reached through the
 * callbacks of mcp_call. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ctl.h"

typedef struct mcp_tools mcp_tools;

typedef struct mcp_tools_options {
        const char *session;  /* --session: attach to this one, never end it */
        const char *template; /* --template: passed as the session body's "template" */
        size_t max_output;    /* bytes kept per stream of a command, per file read */
} mcp_tools_options;

/* What a running tool may ask of the protocol side. */
typedef struct mcp_call {
        /* Wait up to timeout_ms for fd to become readable (or for bytes
         * already buffered, when buffered is true), handling the client's
         * messages that arrive meanwhile. 1: fd is readable, 0: timeout,
         * -ECANCELED: the client cancelled this call, -ENOTCONN: the
         * client went away. */
        int (*wait)(void *userdata, int fd, bool buffered, int timeout_ms);
        /* A progress notification, when the client asked for them (no-op
         * otherwise): progress grows with each call. */
        void (*progress)(void *userdata, double progress, double total, const char *message);
        /* A log message for the client (notifications/message). */
        void (*log)(void *userdata, const char *level, const char *message);
        void *userdata;
} mcp_call;

int mcp_tools_new(ctl *c, const mcp_tools_options *o, mcp_tools **ret);
/* Ends the session if this server created it. */
void mcp_tools_free(mcp_tools *t);

/* The tools/list answer's "tools" array (a new reference). */
json_t *mcp_tools_list(void);
/* Is there a tool of that name? */
bool mcp_tools_known(const char *name);
/* Run one tool: a CallToolResult ({content, isError, structuredContent})
 * in *ret. Every failure of the tool or of the daemon is a result with
 * isError; -ECANCELED when the client cancelled (no result), -ENOMEM. */
int mcp_tools_call(mcp_tools *t, const mcp_call *call, const char *name, json_t *args, json_t **ret);

/* Keep the session from its idle timeout while the client is connected:
 * how long the server may wait before mcp_tools_keepalive() (-1: no
 * session, no need), and the touch itself. */
int mcp_tools_keepalive_ms(const mcp_tools *t);
void mcp_tools_keepalive(mcp_tools *t);
