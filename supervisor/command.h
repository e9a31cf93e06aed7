/* SPDX-License-Identifier: MIT */
#pragma once

/* Background commands of one session: a registry of commands that outlive
 * the connection that started them. Each is a sink of its job (job.h):
 * it keeps the job's output in a bounded ring per stream (outring.h), the
 * pid inside, and, once it exits, its result; any number of readers follow
 * it and are told when there is more. It knows nothing of HTTP.
 *
 * The set owns its commands from their start to the session's end; the
 * session owns their jobs while they run. An exited command is kept (its
 * ring and result) until the session ends or, when the set is full, a new
 * command needs its place: the oldest exited goes first. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "outring.h"

typedef struct command command;
typedef struct command_set command_set;
typedef struct command_reader command_reader;

typedef struct command_reader_ops {
        /* New output, or the exit: read again. */
        void (*wake)(command_reader *rd, void *userdata);
        /* The command is freed (evicted, or its session ended): the reader
         * is already removed and freed; forget it. */
        void (*gone)(void *userdata);
} command_reader_ops;

/* At most max_commands kept; their rings share buffer_total bytes (a ring
 * that would grow past it wraps where it is: outring_budget). */
command_set *command_set_new(unsigned max_commands, size_t buffer_total);
/* Frees every command; their readers are told (gone) first. The jobs must
 * be over (the session aborts them before). */
void command_set_free(command_set *set);

/* Make room for one more: evict the oldest exited command when full, and
 * exited ones while more than half the buffer budget is in use. -EBUSY
 * when every place holds a running command. */
int command_set_reserve(command_set *set);
/* j has just started: follow it as a background command, keeping the
 * last ring_bytes of each stream. argv is copied; pty says the command
 * runs on a terminal (for the listing). */
int command_set_add(command_set *set, job *j, char *const *argv, size_t ring_bytes, bool pty, command **ret);
command *command_set_find(command_set *set, uint64_t id);
/* {"commands": [...]}, oldest first. */
json_t *command_set_to_json(command_set *set);
unsigned command_set_running(const command_set *set);
unsigned command_set_size(const command_set *set);

uint64_t command_id(const command *c);
/* The job while the command runs; NULL once it has exited. */
job *command_job(command *c);
bool command_exited(const command *c);
const job_result *command_result(const command *c); /* NULL while running */
const outring *command_ring(const command *c, int which);
json_t *command_to_json(const command *c);

/* With hold_off (the reader's next offset per stream, read by the command
 * when it decides), the reader holds the command back: while it is behind
 * by more than half the ring, the job's pipes are not read (the command
 * blocks on its full pipe), so a connected reader loses nothing. Without
 * it, a reader that falls behind gets "dropped". */
int command_reader_add(command *c, const command_reader_ops *ops, void *userdata, const uint64_t *hold_off,
                       command_reader **ret);
/* A holding reader moved on: maybe let the command go on. */
void command_reader_progress(command_reader *rd);
void command_reader_remove(command_reader *rd);
