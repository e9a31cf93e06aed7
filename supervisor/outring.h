/* SPDX-License-Identifier: MIT */
#pragma once

/* The last bytes of one output stream, addressed by their offset in the
 * stream (the count of bytes the command had written before them), so a
 * reader that lost its connection asks again from the last offset it saw
 * and gets exactly the bytes after it, for as long as the ring still holds
 * them. Bounded: the oldest bytes go first. Memory grows with what was
 * written, up to the bound, not with the bound. Pure: no I/O, no loop. */

#include <stddef.h>
#include <stdint.h>

/* Memory shared by several rings (one session's commands): a ring that
 * would grow past it stops growing and wraps where it is instead, so the
 * sum stays near max (each ring gets at least its first 16 KiB). */
typedef struct outring_budget {
        size_t used, max;
} outring_budget;

typedef struct outring {
        char *buf;
        size_t cap;       /* allocated */
        size_t max;       /* the bound (lowered to cap when the budget is spent) */
        outring_budget *budget; /* NULL: none */
        uint64_t total;   /* bytes written since the start */
        uint64_t floor;   /* nothing below this is held (lost to -ENOMEM) */
} outring;

void outring_init(outring *r, size_t max, outring_budget *budget);
void outring_done(outring *r);
/* Append n bytes (the oldest go past the bound). -ENOMEM leaves the ring
 * as it was, but counted: the bytes are lost as if overwritten. */
int outring_write(outring *r, const void *data, size_t n);
/* The first offset still held; total is one past the last. */
uint64_t outring_start(const outring *r);
/* Copy up to max bytes from offset off (start <= off <= total) into buf;
 * returns how many (0 at the end, or when off is no longer held). */
size_t outring_read(const outring *r, uint64_t off, void *buf, size_t max);
