/* SPDX-License-Identifier: MIT */
#pragma once

/* Templates: a session's files, captured once as a read-only layer under
 * <state_dir>/templates/<name>/layer, and started from many times: a
 * sandbox of a template has the template's layers (and its parents')
 * between its upper and the image, each idmapped and read-only like the
 * image, and each template has a warm pool of its own ([template.NAME]
 * pool_size, 0: made on demand) that shares the global cap.
 *
 * On disk each template is a directory with its layer and meta.json
 * (name, owner, parent, the image's content hash, size, files, time); the
 * directory appears under its name only once complete (made as .tmp-*,
 * renamed), so a capture that fails or a daemon that dies mid-way leaves
 * nothing that is loaded. The copy runs in a helper process forked for it,
 * never on the event loop; the session is frozen meanwhile.
 *
 * Ownership: a template is its creator's uid's; [template.NAME]
 * shared_with = everyone | GROUP lets others start from it. Anyone else
 * is told "not found", as for sessions. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "server.h"

typedef struct template template;
typedef struct template_registry template_registry;

#define TEMPLATE_MAX_DEPTH 3 /* layers of a chain: a fork adds one more fd */

/* At start, once the pool exists: read the templates directory (removing
 * what failed captures and deletions left), start their pools. */
int templates_load(server *srv);
/* SIGHUP: new pool sizes and sharing from the new configuration. */
void templates_reconfigure(server *srv);
/* Shutdown: their pools go (before the default pool and the factory). */
void templates_end_pools(server *srv);
void templates_free(server *srv);

/* The template visible to this caller (owner, admin, or shared with it);
 * NULL otherwise. fd is the caller's connection (for its groups). */
template *template_lookup(server *srv, const char *name, uid_t uid, int fd, bool admin);
/* Where its sandboxes come from; NULL (with *ret_why) when it cannot be
 * used: still being captured, or stale (made on another image). */
pool *template_pool(template *t, const char **ret_why);
const char *template_name(const template *t);
uid_t template_owner(const template *t);

/* The answer to template_capture(): error 0 and the template, or why not. */
typedef void (*template_captured_fn)(template *t, int error, const char *message, void *userdata);
/* Capture session s (ready, its sandbox alive) as template name, owned by
 * owner. Returns 0 and calls cb later (never before returning), or fails
 * at once: -EEXIST (name taken), -EINVAL (bad name), -E2BIG (chain too
 * deep), -EOPNOTSUPP (cannot freeze here). The capture goes on if the
 * caller leaves: template_capture_forget(). */
int template_capture(server *srv, const char *name, session *s, uid_t owner, template_captured_fn cb,
                     void *userdata, sp_error *err);
void template_capture_forget(server *srv, void *userdata);
/* Thaw a sandbox by name (after a capture or a fork, whatever became of
 * the process that froze it). A few writes; nothing if it is gone. */
void template_thaw_sandbox(server *srv, const char *sandbox_name);

/* Remove it: -EBUSY while a session or another template uses it (err says
 * which), -EAGAIN while it is being captured. Its pool goes now, its files
 * in the background. */
int template_delete(server *srv, template *t, sp_error *err);

json_t *template_to_json(server *srv, const template *t);
/* Every template visible to the caller, as a JSON array. */
json_t *templates_to_json(server *srv, uid_t uid, int fd, bool admin);
