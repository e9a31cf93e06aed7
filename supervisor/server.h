/* SPDX-License-Identifier: MIT */
#pragma once

/* The state of one sandpoold process, shared by the loop, the HTTP layer,
 * the sessions and the execs. Everything runs on one thread, on one
 * sd-event loop: no locks, and no call on the loop may block. */

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>
#include <sys/types.h>

#include "config.h"
#include "factory.h"
#include "priority.h"
#include "time-util.h"
#include "sandbox.h"


typedef struct pool pool;
typedef struct server server;
typedef struct session session;
typedef struct exec_job exec_job;
typedef struct request request;
typedef struct client client;

/* Counters for GET /metrics. Monotonic unless said otherwise. */
typedef struct server_metrics {
        uint64_t requests_total;
        uint64_t responses_by_class[6]; /* index status/100 */
        uint64_t sessions_created;
        uint64_t sessions_ended;
        uint64_t sessions_expired;
        uint64_t sandboxes_started;
        uint64_t sandbox_failures;
        uint64_t execs_started;
        uint64_t execs_timed_out;
        uint64_t execs_truncated;
        uint64_t execs_aborted; /* client went away */
        uint64_t connections_accepted;
        uint64_t header_deadline_closes;
        uint64_t no_capacity;
        uint64_t capacity_waits;
} server_metrics;

struct server {
        sd_event *event;

        /* configuration: the current one, and where it came from */
        sp_config_set config;
        const char *config_path;   /* --config, NULL: the default path */
        const char *cgroup_subdir; /* --cgroup-subdir, NULL: "sandboxes" */
        gid_t admin_gid;
        bool have_admin_gid;

        /* runtime */
        char *stage_dir;
        sp_cgroup_manager *cgroups;
        sp_seccomp_program *seccomp;
        uint32_t n_slots;          /* id ranges we may claim (sp_idslot, cross-process) */
        factory *factory;          /* makes sandboxes off the loop (worker processes) */
        pool *pool;                /* every sandbox comes from and goes back to it */
        uint64_t sandbox_counter;  /* for unique sandbox names */

        /* HTTP */
        int listen_fd;
        char *socket_path;         /* the one bound at start (reload keeps it) */
        bool socket_owned;         /* we bound it: unlink on exit */
        struct MHD_Daemon *mhd;
        sd_event_source *mhd_io;
        sd_event_source *mhd_timer;
        sd_event_source *mhd_kick; /* defer: run MHD on the next iteration */
        unsigned n_clients;
        unsigned n_requests_live;
        request *requests;         /* every live request, linked */

        /* sessions */
        session *sessions;         /* every session, linked */
        unsigned n_sessions;       /* visible (ready, not one-shot) */
        unsigned n_starting;       /* sessions waiting for a sandbox of their own */
        request *capacity_waiters; /* requests waiting for a free slot, oldest first */
        sd_event_source *capacity_retry;

        /* lifecycle */
        bool shutting_down;
        usec_t shutdown_started;
        sd_event_source *drain_timer;
        int exit_code;

        server_metrics metrics;
        json_t *image;             /* what /v1/health says of the image (its manifest) */
};

/* loop.c */
int server_listen(server *srv);
int server_start_http(server *srv);
/* Ask libmicrohttpd to run on the next loop iteration: after a resume,
 * after a connection closed (it may have dropped the listen fd), after a
 * socket shutdown of ours. */
void server_kick(server *srv);
void server_rearm_timer(server *srv);
void server_stop_http(server *srv);
void server_begin_shutdown(server *srv, const char *why);

/* http.c: the per-connection and per-request state */
struct client {
        server *srv;
        struct MHD_Connection *conn;
        int fd;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        bool admin;
        bool creds_ok;
        sd_event_source *deadline; /* header (and body) deadline: slowloris */
        bool dead;
};

typedef struct route route;

typedef enum body_kind {
        BODY_NONE,
        BODY_JSON, /* accumulated in memory up to MAX_JSON_BODY */
        BODY_FILE, /* streamed to a file inside the sandbox, up to max_upload */
} body_kind;

typedef struct stream_queue {
        char *buf;
        size_t len, off, cap;
        bool done;  /* nothing more will be queued */
        bool error; /* end the response with an error (client gone) */
} stream_queue;

typedef struct file_put file_put;

struct request {
        server *srv;
        request *prev, *next;
        client *cl;
        struct MHD_Connection *conn;
        const char *method;
        const char *url;
        const route *route;
        char session_id[33];
        session *session; /* looked up once the headers are in */

        char *body;
        size_t body_len, body_cap, body_limit;
        bool body_too_large;
        uint64_t body_seen;

        bool handled;    /* the handler ran */
        bool suspended;
        bool aborted;    /* the client went away */
        bool queued;     /* a response has been queued */
        struct MHD_Response *reply;
        unsigned reply_status;
        sd_event_source *hup_src;

        /* what the request is waiting for */
        exec_job *job;
        session *pending_session; /* a session being created for it */
        file_put *put;
        stream_queue *stream;
        request *wait_next;       /* in srv->capacity_waiters */
        bool waiting_capacity;
        usec_t capacity_deadline;
        sd_event_source *capacity_timer;
        void *op_data; /* run: the parsed exec request, until the sandbox is ready */
        void (*op_free)(void *);
        usec_t started;
};

#define MAX_JSON_BODY (1024u * 1024u)

void request_suspend(request *r);
void request_resume(request *r);
/* The reply for a suspended request is ready: resume so that it gets queued. */
void request_complete(request *r);
/* No free slot: wait (suspended) until capacity appears, then the route's
 * handler runs again; after CAPACITY_WAIT_USEC the answer is 429. Returns
 * false when the wait is over: the caller answers 429 itself. */
bool request_wait_capacity(request *r);
/* The answer to a failed session_new() (e < 0): wait for capacity, or
 * 429 / 503 / 500. Shared by POST /v1/sessions and POST /v1/run. */
void reply_session_new_failed(request *r, int e, const sp_error *err);
void server_capacity_changed(void *userdata); /* the pool's callback */
void server_cancel_capacity_waiters(server *srv);
#define CAPACITY_WAIT_USEC (2 * USEC_PER_SEC)

void reply_json(request *r, unsigned status, json_t *body); /* steals body */
_printf_(4, 5) void reply_error(request *r, unsigned status, const char *code, const char *fmt, ...);
void reply_empty(request *r, unsigned status);
void reply_bytes(request *r, unsigned status, const char *content_type, const void *data, size_t len);
void reply_take_response(request *r, unsigned status, struct MHD_Response *resp);
/* Parse the JSON body: an object, or NULL after replying 400. An empty body
 * is an empty object when allow_empty. */
json_t *request_json_body(request *r, bool allow_empty);

enum MHD_Result http_access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version, const char *upload_data,
                                    size_t *upload_data_size, void **con_cls);
void http_request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode toe);
void http_connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                            enum MHD_ConnectionNotificationCode toe);

/* util.c */
int random_id_hex(char *ret, size_t n_bytes); /* ret has 2*n_bytes+1 chars */
json_t *json_time(usec_t realtime_usec);       /* "2026-01-02T03:04:05.678Z" */
/* A JSON string from arbitrary bytes: invalid UTF-8 becomes U+FFFD. With
 * carry (3+1 bytes) an incomplete sequence at the end is kept for the next
 * chunk instead of being replaced. */
json_t *json_bytes(const char *data, size_t len, char *carry, size_t *carry_len);
int json_get_uint(json_t *o, const char *key, uint64_t max, uint64_t *ret, const char **ret_err);

/* api-*.c: route handlers */
void api_health(request *r);
void api_metrics(request *r);
void api_sessions_create(request *r);
void api_sessions_list(request *r);
void api_session_get(request *r);
void api_session_delete(request *r);
void api_exec(request *r);
void api_run(request *r);
void api_files_get(request *r);
void api_files_delete(request *r);
/* PUT streams the body: begin when the headers are in, then each chunk. */
void api_files_put_begin(request *r);
int api_files_put_data(request *r, const char *data, size_t len);
void api_files_put_end(request *r);
void file_put_free(file_put *p);

/* notify.c */
void notify_ready(server *srv);
void notify_status(server *srv);
void notify_stopping(void);
void notify_reloading(void);
