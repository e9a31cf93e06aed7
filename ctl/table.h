/* SPDX-License-Identifier: MIT */
#pragma once

/* Human output: aligned tables and the units operators read at a glance
 * (12.5M, 3m07s, 42%). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "macro.h"

typedef struct table table;

/* Columns by header; a header starting with '>' is right-aligned (numbers),
 * the '>' is not printed. */
table *table_new(const char *const *headers, size_t n_columns);
void table_free(table *t);
static inline void table_freep(table **t) {
        if (*t)
                table_free(*t);
}
#define _cleanup_table_ _cleanup_(table_freep)
/* Add the next cell, row after row. -ENOMEM. */
int table_add(table *t, const char *text);
int table_addf(table *t, const char *fmt, ...) _printf_(2, 3);
size_t table_rows(const table *t);
/* Sort the rows by a caller's key (larger first when descending). */
void table_sort(table *t, const double *keys, bool descending);
/* Print with two spaces between columns. Each line is cut at max_width
 * characters when max_width > 0. With header_prefix/suffix (escape
 * sequences) the header line is wrapped in them. */
void table_print(const table *t, FILE *f, size_t max_width, const char *header_prefix, const char *header_suffix);

/* "512", "1.5K", "256M", "1.2G": binary units as the config writes them. */
char *format_bytes(uint64_t bytes, char *buf, size_t size);
/* "850ms", "12s", "3m07s", "2h05m", "3d04h". */
char *format_duration_ms(uint64_t ms, char *buf, size_t size);
/* "2026-01-02T03:04:05.678Z" (the API's time format) to microseconds
 * since the epoch; -EINVAL. */
int parse_api_time(const char *s, int64_t *ret_usec);
int64_t now_realtime_usec(void);
