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
