/* SPDX-License-Identifier: MIT */
#pragma once

/* The one clock helper of the supervisor: microseconds, monotonic for
 * timers and durations, realtime only for what is shown to people. */

#include <stdint.h>

typedef uint64_t usec_t;
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

usec_t now_mono(void);
usec_t now_real(void);

/* The wall clock of quotas and execution records, in ms since the epoch:
 * now_real(), unless the configuration injects another for tests
 * ([tenants] clock_file: a file holding the current time in seconds since
 * the epoch, read at each call, so that a test moves time forward by
 * rewriting it). Set once at start-up, before any thread runs; readable
 * from any thread. */
void wall_clock_use_file(const char *path); /* NULL or "": the real clock */
int64_t wall_clock_ms(void);
