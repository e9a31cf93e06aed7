/* SPDX-License-Identifier: MIT */
/* The glue between sd-event and libmicrohttpd 0.9.75, and the listening
 * socket. MHD runs without a thread of its own (MHD_USE_EPOLL): its epoll
 * fd sits in our loop, and a one-shot timer carries its timeouts. */
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "pool.h"
#include "server.h"
#include "session.h"

/* Enough for 1000 idle clients and then some; RLIMIT_NOFILE is raised to
 * match in main(). MHD's default is FD_SETSIZE-4 even with epoll. */
#define CONNECTION_LIMIT 4096u
/* Per-connection memory: headers beyond it are answered 431. Above 32 KiB
 * libmicrohttpd 0.9.75 mmap()s each connection's pool instead of taking it
 * from malloc: after a burst of 1000 connections the memory goes back to
 * the kernel at close instead of staying in the heap. */
#define CONNECTION_MEMORY (40u * 1024u)
/* Idle keep-alive connections are closed after this. */
#define CONNECTION_IDLE_S 60u

static int mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

/* A socket file left by a crash is replaced; one that something still
 * answers on is not (two daemons on one socket would split the clients). */
static int socket_path_reclaim(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        _cleanup_close_ int fd = -EBADF;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode)) {
                log_error("%s exists and is not a socket: refusing to replace it", path);
                return -EEXIST;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
                log_error("Another process is serving %s: refusing to start", path);
                return -EADDRINUSE;
        }
        if (errno != ECONNREFUSED) {
                log_error("Cannot tell whether %s is in use (%m): refusing to replace it", path);
                return -errno;
        }
        log_info("Removing stale socket %s", path);
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int server_listen(server *srv) {
        const sp_config *cfg = &srv->config.cfg;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        int n, r;
        mode_t old_umask;

        n = sd_listen_fds(true);
        if (n > 1)
                log_warning("%d sockets passed by systemd; using the first", n);
        if (n >= 1) {
                srv->listen_fd = SD_LISTEN_FDS_START;
                (void) fcntl(srv->listen_fd, F_SETFD, FD_CLOEXEC);
                srv->socket_owned = false;
                log_info("Using the socket passed by systemd");
                return 0;
        }

        if (strlen(cfg->socket) >= sizeof(sa.sun_path)) {
                log_error("Socket path too long (max %zu bytes): %s", sizeof(sa.sun_path) - 1, cfg->socket);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, cfg->socket);
        r = mkdir_parents(cfg->socket);
        if (r < 0)
                return log_error_errno(r, "Failed to create the directory of %s", cfg->socket);
        r = socket_path_reclaim(cfg->socket);
        if (r < 0)
                return r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create the listening socket");
        /* No window in which the socket exists with a looser mode. */
        old_umask = umask(0077);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old_umask);
        if (r < 0)
                return log_error_errno(-errno, "Failed to bind %s", cfg->socket);
        srv->socket_owned = true;
        if (cfg->socket_group && *cfg->socket_group) {
                struct group *g = getgrnam(cfg->socket_group);
                if (!g)
                        log_warning("Socket group '%s' does not exist; the socket keeps group root",
                                    cfg->socket_group);
                else if (chown(cfg->socket, 0, g->gr_gid) < 0)
                        log_warning("Failed to give %s to group %s: %m", cfg->socket, cfg->socket_group);
        }
        if (chmod(cfg->socket, cfg->socket_mode) < 0)
                return log_error_errno(-errno, "Failed to chmod %s", cfg->socket);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(-errno, "Failed to listen on %s", cfg->socket);
        srv->listen_fd = TAKE_FD(fd);
        srv->socket_path = strdup(cfg->socket);
        log_info("Listening on %s (mode %04o)", cfg->socket, (unsigned) cfg->socket_mode);
        return 0;
}

void server_rearm_timer(server *srv) {
        MHD_UNSIGNED_LONG_LONG ms;
        uint64_t now;

        if (!srv->mhd_timer)
                return;
        if (MHD_get_timeout(srv->mhd, &ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(srv->mhd_timer, SD_EVENT_OFF);
                return;
        }
        /* MHD gives RELATIVE milliseconds; sd-event wants an ABSOLUTE time in
         * usec (passing ms as the absolute time fires at once, forever). */
        (void) sd_event_now(srv->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(srv->mhd_timer, now + ms * USEC_PER_MSEC);
        (void) sd_event_source_set_enabled(srv->mhd_timer, SD_EVENT_ONESHOT);
}

static void server_run_mhd(server *srv) {
        if (MHD_run(srv->mhd) != MHD_YES)
                log_debug("MHD_run() failed");
        server_rearm_timer(srv);
}

void server_kick(server *srv) {
        /* A defer source runs on the next iteration, before waiting. (A
         * timer "in the past" would do too, but sd-event coalesces timers
         * with a default accuracy of 250 ms: every resumed request would
         * wait for it.) */
        if (srv->mhd_kick)
                (void) sd_event_source_set_enabled(srv->mhd_kick, SD_EVENT_ONESHOT);
}

static int on_mhd_kick(sd_event_source *s, void *userdata) {
        server_run_mhd(userdata);
        return 0;
}

static int on_mhd_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        server_run_mhd(userdata);
        return 0;
}

static int on_mhd_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        server_run_mhd(userdata);
        return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
        char buf[512];
        size_t n;

        vsnprintf(buf, sizeof(buf), fmt, ap);
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '\n')
                buf[--n] = 0;
        log_debug("libmicrohttpd: %s", buf);
}

int server_start_http(server *srv) {
        const union MHD_DaemonInfo *info;
        int r;

        srv->mhd = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                http_access_handler, srv,
                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
                /* Our own AF_UNIX socket: MHD_add_connection() would treat the
                 * peers as TCP (bogus warnings, extra syscalls per response). */
                MHD_OPTION_LISTEN_SOCKET, srv->listen_fd,
                MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY,
                MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_IDLE_S,
                MHD_OPTION_NOTIFY_COMPLETED, http_request_completed, srv,
                MHD_OPTION_NOTIFY_CONNECTION, http_connection_notify, srv,
                MHD_OPTION_END);
        if (!srv->mhd)
                return log_error_errno(-EIO, "Failed to start the HTTP server");

        info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return log_error_errno(-EIO, "libmicrohttpd has no epoll fd");
        r = sd_event_add_io(srv->event, &srv->mhd_io, info->epoll_fd, EPOLLIN, on_mhd_io, srv);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the HTTP server");
        r = sd_event_add_time(srv->event, &srv->mhd_timer, CLOCK_MONOTONIC, 1, 0, on_mhd_timer, srv);
        if (r < 0)
                return log_error_errno(r, "Failed to add the HTTP timer");
        (void) sd_event_source_set_description(srv->mhd_timer, "mhd-timer");
        /* MHD's timeouts are in ms; sd-event's default slack is 250 ms. */
        (void) sd_event_source_set_time_accuracy(srv->mhd_timer, 1);
        r = sd_event_add_defer(srv->event, &srv->mhd_kick, on_mhd_kick, srv);
        if (r < 0)
                return log_error_errno(r, "Failed to add the HTTP kick source");
        (void) sd_event_source_set_enabled(srv->mhd_kick, SD_EVENT_OFF);
        /* Requests first: starting a sandbox for the pool blocks the loop
         * for its parent-side setup (several ms), and a response already
         * queued must not wait behind it. */
        (void) sd_event_source_set_priority(srv->mhd_io, PRIO_SERVE);
        (void) sd_event_source_set_priority(srv->mhd_timer, PRIO_SERVE);
        (void) sd_event_source_set_priority(srv->mhd_kick, PRIO_SERVE);
        server_kick(srv);
        return 0;
}

void server_stop_http(server *srv) {
        if (!srv->mhd)
                return;
        /* MHD_stop_daemon() must not find a suspended connection: resume
         * them all, as abandoned, so that each is closed and completed. */
        for (request *r = srv->requests; r; r = r->next)
                if (r->suspended) {
                        r->aborted = true;
                        if (r->stream)
                                r->stream->error = true;
                        request_resume(r);
                }
        srv->mhd_io = sd_event_source_disable_unref(srv->mhd_io);
        srv->mhd_timer = sd_event_source_disable_unref(srv->mhd_timer);
        srv->mhd_kick = sd_event_source_disable_unref(srv->mhd_kick);
        /* MHD_stop_daemon() closes the listen socket we gave it. */
        MHD_stop_daemon(srv->mhd);
        srv->mhd = NULL;
        srv->listen_fd = -EBADF;
        if (srv->socket_owned && srv->socket_path)
                (void) unlink(srv->socket_path);
        srv->socket_owned = false;
}

/* Exit once the last response went out, or at the deadline. */
static int on_drain_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        server *srv = userdata;
        usec_t now = now_mono();

        if (srv->n_requests_live == 0 || now - srv->shutdown_started > 3 * USEC_PER_SEC) {
                if (srv->n_requests_live)
                        log_warning("Exiting with %u requests still open", srv->n_requests_live);
                (void) sd_event_exit(srv->event, srv->exit_code);
                return 0;
        }
        (void) sd_event_source_set_time(s, now + 5 * USEC_PER_MSEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

void server_begin_shutdown(server *srv, const char *why) {
        usec_t t;

        if (srv->shutting_down)
                return;
        srv->shutting_down = true;
        srv->shutdown_started = t = now_mono();
        notify_stopping();
        log_info("Shutting down (%s): %u sessions", why, srv->n_sessions);
        /* Every command killed, every sandbox destroyed, every waiting
         * request answered; what remains is to let the answers go out. */
        server_cancel_capacity_waiters(srv);
        session_destroy_all(srv, "shutdown");
        /* Kill what is left (warm, warming, being reaped) in parallel and
         * reap it all now: after this no sandbox process exists. */
        pool_free(srv->pool);
        srv->pool = NULL;
        /* after the pool: the workers remove the last sandboxes' cgroups */
        factory_free(srv->factory);
        srv->factory = NULL;
        log_info("All sandboxes destroyed in %.1f ms", (now_mono() - t) / 1000.0);
        server_kick(srv);
        if (sd_event_add_time(srv->event, &srv->drain_timer, CLOCK_MONOTONIC, now_mono(), USEC_PER_MSEC,
                              on_drain_timer, srv) >= 0)
                (void) sd_event_source_set_priority(srv->drain_timer, PRIO_ENDS);
}
