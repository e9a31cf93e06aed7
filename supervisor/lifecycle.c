/* SPDX-License-Identifier: MIT */
/* The daemon's life around its loop: the listening socket (ours, or the
 * one systemd passed), and the shutdown: every sandbox destroyed, every
 * waiting request answered, then exit once the answers went out. */
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "http.h"
#include "lifecycle.h"
#include "log.h"
#include "notify.h"
#include "pool.h"
#include "priority.h"
#include "session.h"
#include "template.h"

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

void server_end_sandboxes(server *srv, const char *why) {
        http_cancel_capacity_waiters(srv);
        session_destroy_all(srv, why);
        templates_end_pools(srv);
        /* Kill what is left (warm, warming, being reaped) in parallel and
         * reap it all now: after this no sandbox process exists. */
        pool_free(srv->pool);
        srv->pool = NULL;
        /* after the pool: the workers remove the last sandboxes' cgroups */
        factory_free(srv->factory);
        srv->factory = NULL;
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
        server_end_sandboxes(srv, "shutdown");
        log_info("All sandboxes destroyed in %.1f ms", (now_mono() - t) / 1000.0);
        http_kick(srv);
        if (sd_event_add_time(srv->event, &srv->drain_timer, CLOCK_MONOTONIC, now_mono(), USEC_PER_MSEC,
                              on_drain_timer, srv) >= 0)
                (void) sd_event_source_set_priority(srv->drain_timer, PRIO_ENDS);
}
