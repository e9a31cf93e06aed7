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

/* The writable layer is a tmpfs, and tmpfs pages are charged to the
 * memory cgroup of the task that writes them and cannot be reclaimed
 * without swap (sandboxes have none). A tmpfs as large as the memory limit
 * would make a full disk an OOM kill instead of ENOSPC. So its size is the
 * disk quota, but never more than the memory limit less a reserve for the
 * processes themselves (a quarter of it, 16 to 64 MiB): the disk quota
 * counts against memory, and a full disk is ENOSPC for the writer. */
#define SP_DISK_RESERVE_MIN (16ULL << 20)
#define SP_DISK_RESERVE_MAX (64ULL << 20)
static inline uint64_t sp_limits_disk_size(const sp_limits *l) {
        uint64_t reserve = l->memory_bytes / 4;
        if (reserve < SP_DISK_RESERVE_MIN)
                reserve = SP_DISK_RESERVE_MIN;
        if (reserve > SP_DISK_RESERVE_MAX)
                reserve = SP_DISK_RESERVE_MAX;
        uint64_t room = l->memory_bytes > reserve + (1ULL << 20) ? l->memory_bytes - reserve : (1ULL << 20);
        return l->disk_bytes < room ? l->disk_bytes : room;
}
