/* SPDX-License-Identifier: MIT */
#pragma once

/* What every sandpoolctl subcommand shares: the global options, the one
 * connection to the daemon, the calls of the public API with their error
 * reporting, and the exit codes. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "http.h"
#include "macro.h"

#define DEFAULT_SOCKET "/run/sandpool/sandpool.sock"

/* Exit codes: scripts may rely on them (docs/sandpoolctl.1 lists them). */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,        /* the daemon refused the request, or answered nonsense */
        EXIT_USAGE = 2,       /* bad command line */
        EXIT_NOT_FOUND = 3,   /* no such session (or not yours), no such file */
        EXIT_NO_CAPACITY = 4, /* 429 no capacity, 503 shutting down: try again later */
        EXIT_UNREACHABLE = 5, /* no socket, nobody listening, connection lost */
        EXIT_PERMISSION = 6,  /* the socket refused us: group membership missing */
        EXIT_UNSUPPORTED = 7, /* the daemon lacks the endpoint this command needs */
        /* exec only: the command's own status, or these */
        EXIT_EXEC_TIMEOUT = 124, /* the command hit its timeout (as timeout(1)) */
        EXIT_EXEC_CTL = 125,     /* sandpoolctl itself failed; the message says why */
        EXIT_EXEC_SIGNAL_BASE = 128,
};

typedef struct ctl {
        const char *socket;        /* the path in use */
        const char *socket_origin; /* "--socket", "SANDPOOL_SOCKET" or "default" */
        bool json;
        http_conn *conn;           /* kept open across calls (keep-alive) */
        FILE *err;                 /* where errors go: stderr, or top's status line */
        unsigned timeout_ms;       /* for each answer, 0: no limit (exec streams) */
} ctl;

/* An answer from the daemon. */
typedef struct api_reply {
        unsigned status;
        long retry_after;
        char content_type[128];
        char *body;      /* NUL-terminated */
        size_t body_len;
        json_t *json;    /* parsed body when it is JSON, else NULL */
} api_reply;

void api_reply_done(api_reply *r);

/* One request with an in-memory body, the whole answer read. Returns 0
 * whatever the HTTP status (look at reply->status), or -errno when the
 * daemon could not be reached or the exchange broke. */
int api_request(ctl *c, const char *method, const char *target, const char *content_type, const void *body,
                size_t body_len, api_reply *ret);
int api_request_json(ctl *c, const char *method, const char *target, json_t *body, api_reply *ret);
/* Open (or reuse) the connection; -errno. */
int api_connection(ctl *c, http_conn **ret);
/* Forget the connection: the next call opens a fresh one. */
void api_disconnect(ctl *c);

/* Print why the daemon could not be reached (r is -errno) with what to do
 * about it, and return the exit code for it. */
int report_transport_error(ctl *c, int r, const char *what);
/* Print the daemon's error answer with context and return its exit code.
 * For a call on a fixed route (no session in the path) a 404 means the
 * route is unknown: the daemon is too old for this command. */
int report_http_error(ctl *c, const api_reply *r, const char *what, bool route_has_id);
/* GET target expecting a JSON object: 0 with *ret, or the exit code
 * after reporting. */
int api_get_json(ctl *c, const char *target, const char *what, bool route_has_id, json_t **ret);

/* Helpers over jansson for fields that may be absent. */
int64_t json_int_or(json_t *o, const char *key, int64_t dflt);
const char *json_str_or(json_t *o, const char *key, const char *dflt);
/* Print JSON for scripts: indented, one document, a newline. */
void print_json(json_t *j);

/* Every visible session as the full object of GET /v1/sessions/{id}
 * (with "usage"), in the daemon's order: a JSON array. 0, or the exit
 * code after reporting. */
int sessions_fetch(ctl *c, json_t **ret);

/* From a Prometheus text page: the pool's and sessions' unlabeled samples
 * into counters (name without "sandpool_" -> integer), and each histogram
 * (*_bucket{le}, *_count, *_sum; seconds turned into ms) into latencies as
 * {count, mean_ms, p50_ms, p90_ms, p99_ms, max_ms, bucketed: true}. */
void metrics_parse(const char *text, json_t *counters, json_t *latencies);

/* Subcommand entry points: argv[0] is the subcommand's name; they return
 * the process exit code. */
typedef int (*command_fn)(ctl *c, int argc, char **argv);
int cmd_status(ctl *c, int argc, char **argv);
int cmd_pool(ctl *c, int argc, char **argv);
int cmd_history(ctl *c, int argc, char **argv);
int cmd_usage(ctl *c, int argc, char **argv);
int cmd_sessions(ctl *c, int argc, char **argv);
int cmd_session(ctl *c, int argc, char **argv);
int cmd_exec(ctl *c, int argc, char **argv);
int cmd_cp(ctl *c, int argc, char **argv);
int cmd_kill(ctl *c, int argc, char **argv);
int cmd_top(ctl *c, int argc, char **argv);
int cmd_config(ctl *c, int argc, char **argv);
int cmd_mcp(ctl *c, int argc, char **argv);
int cmd_templates(ctl *c, int argc, char **argv);
int cmd_template(ctl *c, int argc, char **argv);
int cmd_fork(ctl *c, int argc, char **argv);
int cmd_commands(ctl *c, int argc, char **argv); /* cmd-commands.c */
int cmd_logs(ctl *c, int argc, char **argv);
int cmd_shell(ctl *c, int argc, char **argv);
/* The table of a session's background commands (or its JSON): 0 or the
 * exit code after reporting. */
int commands_print(ctl *c, const char *sid);

/* A session id as the daemon makes them: 32 lowercase hex digits. Checked
 * before it goes into a URL. */
bool session_id_valid(const char *id);

/* Parse "30s", "250ms", "5min", "1h", "15" (seconds) into milliseconds. */
int parse_duration_ms(const char *s, uint64_t *ret);

/* Decode standard base64 in place (stops at '='): the decoded length,
 * or -EINVAL on a character outside the alphabet. */
ssize_t base64_decode(char *s, size_t len);

/* Shared by the options parsers: did argv ask for --help? */
void usage_error(const char *cmd, const char *fmt, ...) _printf_(2, 3);
/* For a subcommand whose only option is --help: -1 to go on (optind is at
 * the first operand), else the exit code to return. */
int parse_help_only(int argc, char **argv, void (*help)(void));
