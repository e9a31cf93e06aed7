/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* The resource limits of one sandbox. Every field is required: the
 * runtime never creates a sandbox with a limit it cannot enforce. */
typedef struct sp_limits {
        uint64_t memory_bytes; /* memory.max / memory.limit_in_bytes; swap is always 0 */
        uint32_t cpu_pct;      /* percent of one CPU: 25 -> cpu.max "25000 100000" */
        uint32_t pids;         /* pids.max */
        uint64_t disk_bytes;   /* size of the tmpfs that holds the overlay upper */
} sp_limits;
