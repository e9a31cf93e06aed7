/* SPDX-License-Identifier: MIT */
#pragma once

/* The Model Context Protocol side of 'sandpoolctl mcp': JSON-RPC 2.0 over
 * stdio (one message a line), the lifecycle (initialize, version and
 * capability negotiation), ping, tools/list, tools/call with progress
 * notifications and cancellation, logging/setLevel. The tools themselves
 * are mcp-tools.c's. */

#include <jansson.h>

#include "mcp-tools.h"

/* Protocol revisions this server speaks, newest first: an initialize with
 * another gets the newest (the client then decides). */
extern const char *const mcp_protocol_versions[];

/* Serve one client on in_fd/out until it closes its end (or SIGTERM,
 * SIGINT, SIGHUP). The session (if any) is ended before returning. The
 * process exit code. */
int mcp_serve(ctl *c, const mcp_tools_options *o, int in_fd, FILE *out);
