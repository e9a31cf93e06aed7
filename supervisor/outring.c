/* SPDX-License-Identifier: MIT */
/* A bounded ring of the last bytes of a stream: see outring.h.
 *
 * Byte at offset o lives at buf[o % max] once the buffer has its full
 * size; before that the stream has never wrapped (total <= cap < max), so
 * buf[o] is also buf[o % max]. One index rule for both phases. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "outring.h"

#define OUTRING_FIRST (16u * 1024u)

void outring_init(outring *r, size_t max, outring_budget *budget) {
        *r = (outring){.max = max ? max : 1, .budget = budget};
}

void outring_done(outring *r) {
        if (r->budget)
                r->budget->used -= r->cap;
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
}

uint64_t outring_start(const outring *r) {
        return MAX(r->total > r->max ? r->total - r->max : 0, r->floor);
}

static int outring_grow(outring *r, uint64_t need) {
        size_t cap = r->cap ? r->cap : OUTRING_FIRST;

        while (cap < need && cap < r->max)
                cap = cap > r->max / 2 ? r->max : cap * 2;
        cap = MIN(cap, r->max);
        if (r->budget) {
                size_t left = r->budget->max > r->budget->used ? r->budget->max - r->budget->used : 0;
                size_t allowed = MAX(r->cap + left, (size_t) MIN(OUTRING_FIRST, r->max));
                if (cap > allowed) {
                        /* The budget is spent: this ring wraps at what it
                         * may have. Bytes below cap sit at their offset
                         * (it never wrapped), which is also offset % cap. */
                        cap = MAX(allowed, r->cap);
                        r->max = cap;
                }
        }
        if (cap == r->cap)
                return 0;
        char *b = realloc(r->buf, cap);
        if (!b)
                return -ENOMEM;
        if (r->budget)
                r->budget->used += cap - r->cap;
        r->buf = b;
        r->cap = cap;
        return 0;
}

int outring_write(outring *r, const void *data, size_t n) {
        const char *p = data;

        if (n == 0)
                return 0;
        if (r->cap < r->max && r->total + n > r->cap && outring_grow(r, r->total + n) < 0) {
                /* What is held would no longer end at total: forget all of
                 * it, and start again empty after these bytes. */
                outring_done(r);
                r->total += n;
                r->floor = r->total;
                return -ENOMEM;
        }
        if (n > r->max) {
                /* only the last max bytes can be held */
                r->total += n - r->max;
                p += n - r->max;
                n = r->max;
        }
        while (n > 0) {
                size_t at = (size_t) (r->total % r->max);
                size_t k = MIN(n, r->max - at);
                if (r->cap < r->max)
                        k = n; /* not wrapped yet: grown to hold it */
                memcpy(r->buf + at, p, k);
                r->total += k;
                p += k;
                n -= k;
        }
        return 0;
}

size_t outring_read(const outring *r, uint64_t off, void *buf, size_t max) {
        char *out = buf;
        size_t done = 0;

        if (off < outring_start(r) || off >= r->total || !r->buf)
                return 0;
        max = (size_t) MIN((uint64_t) max, r->total - off);
        while (done < max) {
                size_t at = (size_t) (off % r->max);
                size_t k = MIN(max - done, r->max - at);
                memcpy(out + done, r->buf + at, k);
                done += k;
                off += k;
        }
        return done;
}
