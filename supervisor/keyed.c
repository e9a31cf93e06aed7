/* SPDX-License-Identifier: MIT */
/* Keyed sessions and the figures of sessions' ends: see keyed.h. */
#include <stdio.h>

#include "keyed.h"
#include "log.h"

#define EVICTED_PREFIX "evicted: "

bool keyed_key_valid(const char *key) {
        size_t n = 0;

        for (const char *c = key; *c; c++, n++)
                if ((unsigned char) *c < 0x21 || (unsigned char) *c > 0x7e)
                        return false;
        return n >= 1 && n <= KEY_MAX;
}

session *keyed_find(server *srv, uid_t uid, const char *key, bool *ret_starting) {
        *ret_starting = false;
        for (session *s = srv->sessions; s; s = s->next) {
                if (!s->key || s->owner != uid || s->end_src || !streq(s->key, key))
                        continue;
                if (s->state == SESSION_READY)
                        return s;
                if (s->state == SESSION_STARTING)
                        *ret_starting = true;
        }
        return NULL;
}

static bool idle(const session *s) {
        return s->state == SESSION_READY && s->n_jobs == 0 && !s->end_src;
}

/* The least recently used idle keyed session (of uid, or of anyone with
 * any_uid), and how many keyed sessions there are of that scope. */
static session *lru_idle(server *srv, bool any_uid, uid_t uid, unsigned *ret_n) {
        session *best = NULL;
        unsigned n = 0;

        for (session *s = srv->sessions; s; s = s->next) {
                if (!s->key || s->state == SESSION_ENDING || s->end_src || (!any_uid && s->owner != uid))
                        continue;
                n++;
                if (idle(s) && (!best || s->last_activity_mono < best->last_activity_mono))
                        best = s;
        }
        if (ret_n)
                *ret_n = n;
        return best;
}

static void evict(server *srv, session *s, const char *why) {
        srv->metrics.keyed_evictions++;
        log_session(LOG_INFO, s->id, "evicting the idle keyed session of uid %u (%s)", (unsigned) s->owner, why);
        session_destroy(s, why);
}

int keyed_make_room(server *srv, uid_t uid, sp_error *err) {
        const sp_config *cfg = &srv->config.cfg;
        unsigned n;
        session *s;

        if (cfg->max_keyed_sessions_per_uid > 0) {
                s = lru_idle(srv, false, uid, &n);
                if (n >= cfg->max_keyed_sessions_per_uid) {
                        if (!s)
                                return sp_error_set(err, -EDQUOT,
                                                    "uid %u has %u keyed sessions (max_keyed_sessions_per_uid), "
                                                    "each running a command", (unsigned) uid, n);
                        evict(srv, s, EVICTED_PREFIX "the least recently used idle keyed session of its uid, ended "
                                      "for a new key (max_keyed_sessions_per_uid)");
                }
        }
        if (cfg->max_keyed_sessions > 0) {
                s = lru_idle(srv, true, 0, &n);
                if (n >= cfg->max_keyed_sessions) {
                        if (!s)
                                return sp_error_set(err, -EDQUOT,
                                                    "%u keyed sessions in all (max_keyed_sessions), each running "
                                                    "a command", n);
                        evict(srv, s, EVICTED_PREFIX "the least recently used idle keyed session, ended for a new "
                                      "key (max_keyed_sessions)");
                }
        }
        return 0;
}

bool keyed_evict_for_capacity(server *srv) {
        session *s = lru_idle(srv, true, 0, NULL);

        if (!s)
                return false;
        evict(srv, s, EVICTED_PREFIX "the least recently used idle keyed session, ended to make room (the pool "
                      "was at capacity)");
        return true;
}

/* A short memory of keys whose session ended, per uid. */
#define KEY_NOTES 256
typedef struct key_note {
        uid_t owner;
        char key[KEY_MAX + 1];
        char id[33];
        char reason[200];
} key_note;
static key_note key_notes[KEY_NOTES];
static unsigned key_notes_next;

const char *keyed_previous_end(server *srv, uid_t uid, const char *key, char *ret_id) {
        /* newest first: a key may have ended more than once */
        for (unsigned i = 1; i <= KEY_NOTES; i++) {
                key_note *n = &key_notes[(key_notes_next - i) % KEY_NOTES];
                if (n->id[0] && n->owner == uid && streq(n->key, key)) {
                        memcpy(ret_id, n->id, sizeof(n->id));
                        return n->reason;
                }
        }
        return NULL;
}

void keyed_session_ended(session *s) {
        server_metrics *m = &s->srv->metrics;

        if (s->oneshot)
                return;
        if (s->created_mono) {
                m->sessions_lifetime_usec += now_mono() - s->created_mono;
                m->sessions_commands += s->n_commands;
                m->sessions_accounted++;
        }
        if (!s->key)
                return;
        key_note *n = &key_notes[key_notes_next++ % KEY_NOTES];
        n->owner = s->owner;
        snprintf(n->key, sizeof(n->key), "%s", s->key);
        memcpy(n->id, s->id, sizeof(n->id));
        snprintf(n->reason, sizeof(n->reason), "%s", s->end_reason ? s->end_reason : "ended");
}

json_t *keyed_stats_json(server *srv) {
        const server_metrics *m = &srv->metrics;
        unsigned n = 0;
        uint64_t lookups = m->keyed_hits + m->keyed_misses;

        for (session *s = srv->sessions; s; s = s->next)
                n += s->key && s->state != SESSION_ENDING;
        return json_pack("{s:i,s:I,s:I,s:f,s:I,s:I,s:f,s:f}",
                         "keyed", (int) n,
                         "key_hits", (json_int_t) m->keyed_hits,
                         "key_misses", (json_int_t) m->keyed_misses,
                         "reuse_rate", lookups ? (double) m->keyed_hits / (double) lookups : 0.0,
                         "evictions", (json_int_t) m->keyed_evictions,
                         "ended", (json_int_t) m->sessions_accounted,
                         "avg_lifetime_s", m->sessions_accounted
                                 ? (double) m->sessions_lifetime_usec / 1e6 / (double) m->sessions_accounted : 0.0,
                         "avg_commands", m->sessions_accounted
                                 ? (double) m->sessions_commands / (double) m->sessions_accounted : 0.0);
}
