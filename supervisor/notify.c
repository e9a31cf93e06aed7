/* SPDX-License-Identifier: MIT */
/* sd_notify: READY once the socket answers, STATUS as the figures change,
 * STOPPING when draining. Without NOTIFY_SOCKET these are no-ops. */
#include <systemd/sd-daemon.h>

#include "notify.h"
#include "pool.h"

void notify_ready(server *srv) {
        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving on %s, %u sessions", srv->config.cfg.socket,
                          srv->n_sessions);
}

void notify_status(server *srv) {
        char pool_text[160] = "";

        if (srv->pool)
                pool_describe(srv->pool, pool_text, sizeof(pool_text));
        (void) sd_notifyf(false, "STATUS=%s: %u sessions, %s", srv->shutting_down ? "Draining" : "Serving",
                          srv->n_sessions, pool_text);
}

void notify_stopping(void) {
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Draining: killing commands, destroying sandboxes");
}

void notify_reloading(void) {
        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading the configuration");
}
