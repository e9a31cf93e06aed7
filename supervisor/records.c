/* SPDX-License-Identifier: MIT */
/* Execution records in SQLite, written off the loop: see records.h.
 *
 * Threads: the loop owns the queue's producer side and the answers of
 * queries; the writer thread owns the sqlite3 handle once it runs (before
 * that, records_open() and records_load_usage() use it on the loop, at
 * start-up). They share only what `lock` guards: the queue, the list of
 * answered queries and the status. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "priority.h"
#include "records.h"
#include "time-util.h"
#include "util.h"

#define QUEUE_MAX 200000        /* records waiting: beyond, a stuck disk costs records, not memory */
#define BATCH_SOON 2048         /* this many queued: write now, not at the interval */
#define PRUNE_EVERY_USEC (1 * USEC_PER_SEC)
#define PRUNE_IDLE_USEC (60 * USEC_PER_SEC)
#define PRUNE_CHUNK 5000        /* rows per DELETE: short transactions */
#define QUICK_CHECK_MAX_BYTES (256ULL << 20)
#define QUERY_LIMIT_MAX 10000

typedef enum item_kind { ITEM_RECORD, ITEM_QUERY } item_kind;

typedef struct item {
        struct item *next;
        item_kind kind;
} item;

typedef struct rec {
        item it;
        record_in r; /* its strings point into data */
        char data[];
} rec;

struct records_query {
        item it;
        records *rs;
        records_filter f;
        char session[65];
        records_query_fn cb;
        void *userdata;
        bool cancelled;
        json_t *result;
        char error[300];
};

struct records {
        sd_event *event;
        sd_event_source *done_src;
        int efd;
        records_options o;
        char *path;

        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* under lock */
        item *head, *tail;
        size_t n_queued;
        usec_t oldest;           /* when the head was queued */
        bool stopping;
        item *done_head, *done_tail;
        records_status st;

        /* the writer's (the loop's before records_start) */
        sqlite3 *db;
        sqlite3_stmt *insert;
        usec_t last_prune;
};

/* ---- the database ------------------------------------------------------------ */

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS executions ("
        " id INTEGER PRIMARY KEY,"
        " session TEXT NOT NULL, uid INTEGER NOT NULL, key TEXT, oneshot INTEGER NOT NULL,"
        " command_id INTEGER NOT NULL, argv TEXT NOT NULL, argv_truncated INTEGER NOT NULL, cwd TEXT,"
        " started_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL,"
        " exit_code INTEGER, signal INTEGER, spawn_errno INTEGER NOT NULL,"
        " cpu_usec INTEGER NOT NULL, memory_peak INTEGER NOT NULL,"
        " oom_killed INTEGER NOT NULL, timed_out INTEGER NOT NULL,"
        " stdout_bytes INTEGER NOT NULL, stderr_bytes INTEGER NOT NULL, truncated INTEGER NOT NULL,"
        " end_reason TEXT);"
        "CREATE INDEX IF NOT EXISTS executions_started ON executions(started_at);"
        "CREATE INDEX IF NOT EXISTS executions_uid ON executions(uid, started_at);"
        "CREATE INDEX IF NOT EXISTS executions_session ON executions(session);";

static const char insert_sql[] =
        "INSERT INTO executions (session, uid, key, oneshot, command_id, argv, argv_truncated, cwd,"
        " started_at, duration_ms, exit_code, signal, spawn_errno, cpu_usec, memory_peak, oom_killed,"
        " timed_out, stdout_bytes, stderr_bytes, truncated, end_reason)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

static void set_error(records *rs, const char *fmt, ...) _printf_(2, 3);
static void set_error(records *rs, const char *fmt, ...) {
        va_list ap;
        pthread_mutex_lock(&rs->lock);
        va_start(ap, fmt);
        vsnprintf(rs->st.error, sizeof(rs->st.error), fmt, ap);
        va_end(ap);
        pthread_mutex_unlock(&rs->lock);
}

static void set_state(records *rs, const char *state) {
        pthread_mutex_lock(&rs->lock);
        rs->st.state = state;
        pthread_mutex_unlock(&rs->lock);
}

/* Faults that a new file cures: not a database, corrupt, not writable. */
static bool rc_broken(int rc) {
        switch (rc & 0xff) {
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_CANTOPEN:
        case SQLITE_READONLY:
        case SQLITE_PERM:
                return true;
        default:
                return false;
        }
}

static void db_close(records *rs) {
        sqlite3_finalize(rs->insert);
        rs->insert = NULL;
        if (rs->db)
                sqlite3_close_v2(rs->db);
        rs->db = NULL;
}

static int db_exec(records *rs, const char *sql) {
        char *msg = NULL;
        int rc = sqlite3_exec(rs->db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                set_error(rs, "%s: %s", rs->path, msg ? msg : sqlite3_errstr(rc));
                /* the extended code says more than the message's rc */
                rc = sqlite3_extended_errcode(rs->db);
        }
        sqlite3_free(msg);
        return rc;
}

/* An integrity check of the whole file, for files small enough to read at
 * start-up; larger ones are found out by their first failing statement. */
static int db_quick_check(records *rs) {
        sqlite3_stmt *st = NULL;
        struct stat sb;
        int rc;

        if (stat(rs->path, &sb) < 0 || (uint64_t) sb.st_size > QUICK_CHECK_MAX_BYTES)
                return SQLITE_OK;
        rc = sqlite3_prepare_v2(rs->db, "PRAGMA quick_check(1)", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *v = (const char *) sqlite3_column_text(st, 0);
                rc = v && streq(v, "ok") ? SQLITE_OK : SQLITE_CORRUPT;
                if (rc != SQLITE_OK)
                        set_error(rs, "%s: integrity check: %s", rs->path, v ? v : "(no answer)");
        } else if (rc != SQLITE_OK)
                set_error(rs, "%s: integrity check: %s", rs->path, sqlite3_errmsg(rs->db));
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int db_open_once(records *rs) {
        int rc = sqlite3_open_v2(rs->path, &rs->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc != SQLITE_OK) {
                set_error(rs, "%s: cannot open: %s", rs->path, rs->db ? sqlite3_errmsg(rs->db) : sqlite3_errstr(rc));
                rc = rs->db ? sqlite3_extended_errcode(rs->db) : rc;
                db_close(rs);
                return rc;
        }
        (void) sqlite3_busy_timeout(rs->db, 1000);
        /* WAL: readers never wait for the writer; NORMAL: a commit survives
         * a crash of the process (not of the machine) without an fsync per
         * transaction. */
        if ((rc = db_exec(rs, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")) == SQLITE_OK &&
            (rc = db_quick_check(rs)) == SQLITE_OK && (rc = db_exec(rs, schema)) == SQLITE_OK) {
                rc = sqlite3_prepare_v3(rs->db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &rs->insert, NULL);
                if (rc != SQLITE_OK)
                        set_error(rs, "%s: %s", rs->path, sqlite3_errmsg(rs->db));
        }
        if (rc != SQLITE_OK)
                db_close(rs);
        return rc;
}

/* Move the broken file (and its WAL) aside, keeping it for a post-mortem. */
static int db_move_aside(records *rs) {
        char aside[560], from[560], to[600];
        struct tm tm;
        time_t now = time(NULL);
        int r = 0;

        gmtime_r(&now, &tm);
        snprintf(aside, sizeof(aside), "%s.broken-%04d%02d%02dT%02d%02d%02d", rs->path, tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        for (unsigned i = 1; access(aside, F_OK) == 0 && i < 100; i++)
                snprintf(aside + strlen(rs->path) + 23, sizeof(aside) - strlen(rs->path) - 23, "-%u", i);
        if (rename(rs->path, aside) < 0 && errno != ENOENT)
                r = -errno;
        static const char *const sidecars[] = {"-wal", "-shm"};
        for (size_t i = 0; i < ELEMENTSOF(sidecars); i++) {
                snprintf(from, sizeof(from), "%s%s", rs->path, sidecars[i]);
                snprintf(to, sizeof(to), "%s%s", aside, sidecars[i]);
                if (i == 0)
                        (void) rename(from, to);
                else
                        (void) unlink(from);
        }
        if (r < 0) {
                log_error("records: cannot move the broken database %s aside: %s", rs->path, strerror(-r));
                return r;
        }
        log_error("records: database %s was unusable (%s): moved aside to %s, starting a new one", rs->path,
                  rs->st.error, aside);
        pthread_mutex_lock(&rs->lock);
        snprintf(rs->st.moved_aside, sizeof(rs->st.moved_aside), "%s", aside);
        pthread_mutex_unlock(&rs->lock);
        return 0;
}

/* Open the database, or a new one in place of a broken one. */
static bool db_open(records *rs) {
        int rc = db_open_once(rs);

        if (rc == SQLITE_OK)
                return true;
        if (rc_broken(rc) && db_move_aside(rs) >= 0 && db_open_once(rs) == SQLITE_OK) {
                set_state(rs, "recovered");
                return true;
        }
        log_error("records: no database (%s): commands run, but are not recorded", rs->st.error);
        set_state(rs, "unavailable");
        return false;
}

/* ---- writing ----------------------------------------------------------------- */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
        if (s)
                sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

static json_t *argv_json(const record_in *r) {
        json_t *a = json_array();
        for (size_t off = 0; a && off < r->argv_len;) {
                size_t n = strnlen(r->argv + off, r->argv_len - off);
                json_array_append_new(a, json_bytes(r->argv + off, n, NULL, NULL));
                off += n + 1;
        }
        return a;
}

static int insert_one(records *rs, const record_in *r) {
        sqlite3_stmt *st = rs->insert;
        json_t *a = argv_json(r);
        char *argv = a ? json_dumps(a, JSON_COMPACT) : NULL;
        int i = 1, rc;

        json_decref(a);
        sqlite3_bind_text(st, i++, r->session, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, i++, r->uid);
        bind_text_or_null(st, i++, r->key);
        sqlite3_bind_int(st, i++, r->oneshot);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->command_id);
        sqlite3_bind_text(st, i++, argv ? argv : "[]", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, i++, r->argv_truncated);
        bind_text_or_null(st, i++, r->cwd);
        sqlite3_bind_int64(st, i++, r->started_ms);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->duration_ms);
        if (r->signal)
                sqlite3_bind_null(st, i++);
        else
                sqlite3_bind_int(st, i++, r->exit_code);
        if (r->signal)
                sqlite3_bind_int(st, i++, r->signal);
        else
                sqlite3_bind_null(st, i++);
        sqlite3_bind_int(st, i++, r->spawn_errno);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->cpu_usec);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->memory_peak);
        sqlite3_bind_int(st, i++, r->oom_killed);
        sqlite3_bind_int(st, i++, r->timed_out);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->stdout_bytes);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->stderr_bytes);
        sqlite3_bind_int(st, i++, r->truncated);
        bind_text_or_null(st, i++, r->end_reason);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        free(argv);
        return rc == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(rs->db);
}

/* One transaction for the batch. */
static int write_batch(records *rs, item *batch, uint64_t *ret_n) {
        uint64_t n = 0;
        int rc;

        *ret_n = 0;
        if (!rs->db)
                return SQLITE_CANTOPEN;
        rc = db_exec(rs, "BEGIN IMMEDIATE");
        for (item *it = batch; rc == SQLITE_OK && it; it = it->next)
                if (it->kind == ITEM_RECORD) {
                        rc = insert_one(rs, &((rec *) it)->r);
                        n++;
                }
        if (rc == SQLITE_OK)
                rc = db_exec(rs, "COMMIT");
        else {
                set_error(rs, "%s: insert: %s", rs->path, sqlite3_errmsg(rs->db));
                (void) sqlite3_exec(rs->db, "ROLLBACK", NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK)
                *ret_n = n;
        return rc;
}

static void write_records(records *rs, item *batch) {
        uint64_t n_rec = 0, n = 0;
        usec_t t0 = now_mono();
        int rc;

        for (item *it = batch; it; it = it->next)
                n_rec += it->kind == ITEM_RECORD;
        if (n_rec == 0)
                return;
        rc = write_batch(rs, batch, &n);
        if (rc != SQLITE_OK && rc_broken(rc) && rs->db) {
                /* Broken under us (a corrupt page, the file replaced by a
                 * read-only one): a new file, and the batch once more. */
                db_close(rs);
                if (db_move_aside(rs) >= 0 && db_open(rs)) {
                        set_state(rs, "recovered");
                        rc = write_batch(rs, batch, &n);
                } else
                        set_state(rs, "unavailable");
        }
        pthread_mutex_lock(&rs->lock);
        rs->st.batches++;
        rs->st.last_batch_usec = now_mono() - t0;
        if (rc == SQLITE_OK)
                rs->st.written += n;
        else
                rs->st.dropped += n_rec;
        pthread_mutex_unlock(&rs->lock);
        if (rc != SQLITE_OK)
                log_error("records: %" PRIu64 " records lost: %s", n_rec, rs->st.error);
}

/* Retention: rows older than retention_days, then the oldest beyond
 * max_rows; a chunk per statement, so no transaction is long. */
static void prune(records *rs) {
        uint64_t deleted = 0;
        char sql[256];

        rs->last_prune = now_mono();
        if (!rs->db)
                return;
        if (rs->o.retention_days > 0) {
                int64_t cutoff = rs->o.clock(rs->o.clock_userdata) - (int64_t) rs->o.retention_days * 86400000LL;
                snprintf(sql, sizeof(sql),
                         "DELETE FROM executions WHERE id IN (SELECT id FROM executions WHERE started_at < %" PRId64
                         " LIMIT %d)", cutoff, PRUNE_CHUNK);
                for (int i = 0; i < 1000 && db_exec(rs, sql) == SQLITE_OK; i++) {
                        int k = sqlite3_changes(rs->db);
                        deleted += (uint64_t) k;
                        if (k < PRUNE_CHUNK)
                                break;
                }
        }
        if (rs->o.max_rows > 0) {
                /* ids grow by one per row: all but the newest max_rows */
                snprintf(sql, sizeof(sql),
                         "DELETE FROM executions WHERE id IN (SELECT id FROM executions WHERE id <= "
                         "(SELECT MAX(id) FROM executions) - %" PRIu64 " ORDER BY id LIMIT %d)",
                         rs->o.max_rows, PRUNE_CHUNK);
                for (int i = 0; i < 1000 && db_exec(rs, sql) == SQLITE_OK; i++) {
                        int k = sqlite3_changes(rs->db);
                        deleted += (uint64_t) k;
                        if (k < PRUNE_CHUNK)
                                break;
                }
        }
        if (deleted) {
                pthread_mutex_lock(&rs->lock);
                rs->st.pruned += deleted;
                pthread_mutex_unlock(&rs->lock);
        }
}

/* ---- queries ----------------------------------------------------------------- */

static json_t *row_json(sqlite3_stmt *st) {
        int c = 0;
        json_t *o = json_object();
        if (!o)
                return NULL;
        json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, c++)));
        json_object_set_new(o, "session_id", json_string((const char *) sqlite3_column_text(st, c++)));
        json_object_set_new(o, "uid", json_integer(sqlite3_column_int64(st, c++)));
        const char *key = (const char *) sqlite3_column_text(st, c++);
        json_object_set_new(o, "key", key ? json_string(key) : json_null());
        json_object_set_new(o, "oneshot", json_boolean(sqlite3_column_int(st, c++)));
        json_object_set_new(o, "command_id", json_integer(sqlite3_column_int64(st, c++)));
        json_t *argv = json_loads((const char *) sqlite3_column_text(st, c++), 0, NULL);
        json_object_set_new(o, "argv", argv ? argv : json_array());
        json_object_set_new(o, "argv_truncated", json_boolean(sqlite3_column_int(st, c++)));
        const char *cwd = (const char *) sqlite3_column_text(st, c++);
        json_object_set_new(o, "cwd", cwd ? json_string(cwd) : json_null());
        int64_t started = sqlite3_column_int64(st, c++);
        json_object_set_new(o, "started_at", json_time((usec_t) started * USEC_PER_MSEC));
        json_object_set_new(o, "started_at_ms", json_integer(started));
        json_object_set_new(o, "duration_ms", json_integer(sqlite3_column_int64(st, c++)));
        for (int i = 0; i < 2; i++, c++)
                json_object_set_new(o, i ? "signal" : "exit_code",
                                    sqlite3_column_type(st, c) == SQLITE_NULL ? json_null()
                                                                              : json_integer(sqlite3_column_int(st, c)));
        json_object_set_new(o, "spawn_errno", json_integer(sqlite3_column_int(st, c++)));
        json_object_set_new(o, "cpu_usec", json_integer(sqlite3_column_int64(st, c++)));
        json_object_set_new(o, "memory_peak", json_integer(sqlite3_column_int64(st, c++)));
        json_object_set_new(o, "oom_killed", json_boolean(sqlite3_column_int(st, c++)));
        json_object_set_new(o, "timed_out", json_boolean(sqlite3_column_int(st, c++)));
        json_object_set_new(o, "stdout_bytes", json_integer(sqlite3_column_int64(st, c++)));
        json_object_set_new(o, "stderr_bytes", json_integer(sqlite3_column_int64(st, c++)));
        json_object_set_new(o, "truncated", json_boolean(sqlite3_column_int(st, c++)));
        const char *end = (const char *) sqlite3_column_text(st, c++);
        json_object_set_new(o, "end_reason", end ? json_string(end) : json_null());
        return o;
}

#define WHERE_SQL " FROM executions WHERE (?1 IS NULL OR uid = ?1) AND (?2 IS NULL OR session = ?2) AND started_at >= ?3"

static void bind_filter(sqlite3_stmt *st, const records_filter *f) {
        if (f->by_uid)
                sqlite3_bind_int64(st, 1, f->uid);
        bind_text_or_null(st, 2, f->session);
        sqlite3_bind_int64(st, 3, f->since_ms);
}

static void run_query(records *rs, records_query *q) {
        /* With since: the first rows from then on; without: the latest.
         * Either way in the order they were written. */
        static const char *const sql[2] = {
                "SELECT * FROM (SELECT *" WHERE_SQL " ORDER BY id DESC LIMIT ?4) ORDER BY id",
                "SELECT *" WHERE_SQL " ORDER BY id LIMIT ?4",
        };
        sqlite3_stmt *st = NULL, *cnt = NULL;
        json_t *rows = json_array();
        int rc;

        if (!rs->db) {
                snprintf(q->error, sizeof(q->error), "no records database: %s", rs->st.error);
                json_decref(rows);
                return;
        }
        rc = sqlite3_prepare_v2(rs->db, sql[q->f.since_ms > 0], -1, &st, NULL);
        if (rc == SQLITE_OK) {
                bind_filter(st, &q->f);
                sqlite3_bind_int64(st, 4, q->f.limit);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                        json_array_append_new(rows, row_json(st));
        }
        if (rc == SQLITE_DONE)
                rc = sqlite3_prepare_v2(rs->db, "SELECT count(*)" WHERE_SQL, -1, &cnt, NULL);
        if (rc == SQLITE_OK) {
                bind_filter(cnt, &q->f);
                rc = sqlite3_step(cnt);
        }
        if (rc == SQLITE_ROW && rows) {
                q->result = json_pack("{s:o,s:I}", "executions", rows, "total", (json_int_t) sqlite3_column_int64(cnt, 0));
                rows = NULL;
        } else
                snprintf(q->error, sizeof(q->error), "query: %s", sqlite3_errmsg(rs->db));
        json_decref(rows);
        sqlite3_finalize(st);
        sqlite3_finalize(cnt);
}

/* ---- the thread ----------------------------------------------------------- */

static void post_done(records *rs, item *queries) {
        bool any = false;

        pthread_mutex_lock(&rs->lock);
        for (item *it = queries, *next; it; it = next) {
                next = it->next;
                it->next = NULL;
                if (rs->done_tail)
                        rs->done_tail->next = it;
                else
                        rs->done_head = it;
                rs->done_tail = it;
                any = true;
        }
        pthread_mutex_unlock(&rs->lock);
        if (any)
                (void) eventfd_write(rs->efd, 1);
}

/* Work through one batch taken from the queue, in order: the records
 * before a query are committed before it runs. */
static void process(records *rs, item *batch) {
        item *queries = NULL, **qtail = &queries;

        write_records(rs, batch);
        for (item *it = batch, *next; it; it = next) {
                next = it->next;
                if (it->kind == ITEM_RECORD) {
                        free(it);
                        continue;
                }
                run_query(rs, (records_query *) it);
                it->next = NULL;
                *qtail = it;
                qtail = &it->next;
        }
        post_done(rs, queries);
        if (now_mono() - rs->last_prune >= PRUNE_EVERY_USEC)
                prune(rs);
}

/* Wait for a batch: the queue's head older than flush_interval, a long
 * queue, a query, or the stop. NULL: stopped and empty. */
static item *take_batch(records *rs) {
        item *batch = NULL;

        pthread_mutex_lock(&rs->lock);
        for (;;) {
                bool has_query = false;
                for (item *it = rs->head; it && !has_query; it = it->next)
                        has_query = it->kind == ITEM_QUERY;
                usec_t now = now_mono();
                usec_t due = rs->head ? rs->oldest + rs->o.flush_interval_ms * USEC_PER_MSEC
                                      : now + PRUNE_IDLE_USEC;
                if (rs->head && (rs->stopping || has_query || rs->n_queued >= BATCH_SOON || now >= due))
                        break;
                if (!rs->head && rs->stopping)
                        break;
                if (!rs->head && now - rs->last_prune >= PRUNE_IDLE_USEC) {
                        pthread_mutex_unlock(&rs->lock);
                        prune(rs);
                        pthread_mutex_lock(&rs->lock);
                        continue;
                }
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t wait = due > now ? due - now : 0;
                ts.tv_sec += (time_t) (wait / USEC_PER_SEC);
                ts.tv_nsec += (long) (wait % USEC_PER_SEC) * 1000;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                (void) pthread_cond_timedwait(&rs->cond, &rs->lock, &ts);
        }
        batch = rs->head;
        rs->head = rs->tail = NULL;
        rs->st.queued = rs->n_queued = 0;
        pthread_mutex_unlock(&rs->lock);
        return batch;
}

static void *writer_main(void *userdata) {
        records *rs = userdata;

        for (;;) {
                item *batch = take_batch(rs);
                if (!batch)
                        break;
                process(rs, batch);
        }
        return NULL;
}

/* ---- the loop's side --------------------------------------------------------- */

static int on_done(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        records *rs = userdata;
        eventfd_t v;
        item *done;

        (void) eventfd_read(rs->efd, &v);
        pthread_mutex_lock(&rs->lock);
        done = rs->done_head;
        rs->done_head = rs->done_tail = NULL;
        pthread_mutex_unlock(&rs->lock);
        for (item *it = done, *next; it; it = next) {
                records_query *q = (records_query *) it;
                next = it->next;
                if (!q->cancelled)
                        q->cb(TAKE_PTR(q->result), q->error[0] ? q->error : NULL, q->userdata);
                json_decref(q->result);
                free(q);
        }
        return 0;
}

static void enqueue(records *rs, item *it) {
        bool wake;

        it->next = NULL;
        pthread_mutex_lock(&rs->lock);
        if (rs->tail)
                rs->tail->next = it;
        else {
                rs->head = it;
                rs->oldest = now_mono();
        }
        rs->tail = it;
        rs->n_queued++;
        rs->st.queued = rs->n_queued;
        /* The writer sleeps until the head is due: wake it for a new head,
         * a long queue or a query. */
        wake = rs->n_queued == 1 || rs->n_queued == BATCH_SOON || it->kind == ITEM_QUERY;
        pthread_mutex_unlock(&rs->lock);
        if (wake)
                pthread_cond_signal(&rs->cond);
}

void records_submit(records *rs, const record_in *in) {
        size_t ls = strlen(in->session) + 1, lk = in->key ? strlen(in->key) + 1 : 0,
               lc = in->cwd ? strlen(in->cwd) + 1 : 0, le = in->end_reason ? strlen(in->end_reason) + 1 : 0;
        bool full;

        if (!rs)
                return;
        pthread_mutex_lock(&rs->lock);
        full = rs->n_queued >= QUEUE_MAX;
        if (full)
                rs->st.dropped++;
        pthread_mutex_unlock(&rs->lock);
        if (full)
                return;
        rec *r = malloc(sizeof(*r) + ls + lk + lc + le + in->argv_len + 1);
        if (!r)
                return;
        char *p = r->data;
        r->it.kind = ITEM_RECORD;
        r->r = *in;
#define COPY(field, len) \
        do { \
                if (len) { \
                        memcpy(p, in->field, len); \
                        r->r.field = p; \
                        p += len; \
                } else \
                        r->r.field = NULL; \
        } while (0)
        COPY(session, ls);
        COPY(key, lk);
        COPY(cwd, lc);
        COPY(end_reason, le);
#undef COPY
        memcpy(p, in->argv ? in->argv : "", in->argv_len);
        p[in->argv_len] = 0;
        r->r.argv = p;
        enqueue(rs, &r->it);
}

int records_find(records *rs, const records_filter *f, records_query_fn cb, void *userdata, records_query **ret) {
        records_query *q = calloc(1, sizeof(*q));

        if (!q)
                return -ENOMEM;
        if (!rs->started) {
                free(q);
                return -ESHUTDOWN;
        }
        *q = (records_query){.it.kind = ITEM_QUERY, .rs = rs, .f = *f, .cb = cb, .userdata = userdata};
        if (f->session) {
                snprintf(q->session, sizeof(q->session), "%s", f->session);
                q->f.session = q->session;
        }
        q->f.limit = MIN(MAX(f->limit, 1u), (uint32_t) QUERY_LIMIT_MAX);
        enqueue(rs, &q->it);
        *ret = q;
        return 0;
}

void records_query_cancel(records_query *q) {
        /* Only the loop reads the flag, once the answer is back. */
        if (q)
                q->cancelled = true;
}

void records_get_status(records *rs, records_status *ret) {
        pthread_mutex_lock(&rs->lock);
        *ret = rs->st;
        pthread_mutex_unlock(&rs->lock);
}

json_t *records_health_json(records *rs) {
        records_status st;

        if (!rs)
                return json_pack("{s:s}", "state", "off");
        records_get_status(rs, &st);
        return json_pack("{s:s,s:s,s:s?,s:s?,s:I,s:I,s:I,s:I,s:I}", "state", st.state, "path", st.path,
                         "moved_aside", st.moved_aside[0] ? st.moved_aside : NULL,
                         "error", st.error[0] ? st.error : NULL,
                         "written", (json_int_t) st.written, "queued", (json_int_t) st.queued,
                         "dropped", (json_int_t) st.dropped, "pruned", (json_int_t) st.pruned,
                         "flush_interval_ms", (json_int_t) rs->o.flush_interval_ms);
}

int records_load_usage(records *rs, int64_t since_ms, records_usage_fn fn, void *userdata) {
        sqlite3_stmt *st = NULL;
        int rc;

        if (rs->started)
                return -EBUSY;
        if (!rs->db)
                return -ENOENT;
        rc = sqlite3_prepare_v2(rs->db,
                                "SELECT uid, count(*), sum(cpu_usec) FROM executions WHERE started_at >= ? GROUP BY uid",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, since_ms);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                        fn((uint32_t) sqlite3_column_int64(st, 0), (uint64_t) sqlite3_column_int64(st, 1),
                           (uint64_t) sqlite3_column_int64(st, 2), userdata);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                log_error("records: cannot read today's usage from %s: %s", rs->path, sqlite3_errmsg(rs->db));
                return -EIO;
        }
        return 0;
}

int records_open(sd_event *e, const records_options *o, records **ret) {
        records *rs = calloc(1, sizeof(*rs));
        int r;

        if (!rs)
                return -ENOMEM;
        rs->o = *o;
        rs->path = strdup(o->path);
        rs->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        pthread_mutex_init(&rs->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&rs->cond, &ca);
        pthread_condattr_destroy(&ca);
        rs->st.state = "ok";
        snprintf(rs->st.path, sizeof(rs->st.path), "%s", o->path);
        r = !rs->path ? -ENOMEM : rs->efd < 0 ? -errno : 0;
        if (r >= 0)
                r = sd_event_add_io(e, &rs->done_src, rs->efd, EPOLLIN, on_done, rs);
        if (r >= 0)
                r = sd_event_source_set_priority(rs->done_src, PRIO_SERVE);
        if (r < 0) {
                records_close(rs);
                return r;
        }
        rs->event = sd_event_ref(e);
        (void) db_open(rs);
        rs->last_prune = 0;
        *ret = rs;
        return 0;
}

int records_start(records *rs) {
        sigset_t all, old;
        int r;

        /* Signals are the loop's (signalfd): the thread takes none. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&rs->thread, NULL, writer_main, rs);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return r;
        rs->started = true;
        return 0;
}

void records_close(records *rs) {
        if (!rs)
                return;
        if (rs->started) {
                pthread_mutex_lock(&rs->lock);
                rs->stopping = true;
                pthread_mutex_unlock(&rs->lock);
                pthread_cond_signal(&rs->cond);
                pthread_join(rs->thread, NULL);
                rs->started = false;
                log_info("records: %" PRIu64 " written, %" PRIu64 " dropped", rs->st.written, rs->st.dropped);
        }
        /* queries answered after the loop stopped: nobody waits any more */
        for (item *it = rs->done_head, *next; it; it = next) {
                next = it->next;
                json_decref(((records_query *) it)->result);
                free(it);
        }
        db_close(rs);
        rs->done_src = sd_event_source_disable_unref(rs->done_src);
        safe_close(rs->efd);
        sd_event_unref(rs->event);
        pthread_mutex_destroy(&rs->lock);
        pthread_cond_destroy(&rs->cond);
        free(rs->path);
        free(rs);
}
