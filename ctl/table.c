/* SPDX-License-Identifier: MIT */
/* Aligned tables and unit formatting for sandpoolctl's human output. */
#include <stdarg.h>
#include <wchar.h>

#include "table.h"

struct table {
        size_t n_columns;
        char **headers;
        bool *right;
        char **cells; /* row-major */
        size_t n_cells, cap;
};

table *table_new(const char *const *headers, size_t n_columns) {
        table *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->headers = calloc(n_columns, sizeof(char *));
        t->right = calloc(n_columns, sizeof(bool));
        if (!t->headers || !t->right) {
                table_free(t);
                return NULL;
        }
        for (size_t i = 0; i < n_columns; i++) {
                t->right[i] = headers[i][0] == '>';
                t->headers[i] = strdup(headers[i] + t->right[i]);
                if (!t->headers[i]) {
                        table_free(t);
                        return NULL;
                }
        }
        return t;
}

void table_free(table *t) {
        if (!t)
                return;
        for (size_t i = 0; t->headers && i < t->n_columns; i++)
                free(t->headers[i]);
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->headers);
        free(t->right);
        free(t->cells);
        free(t);
}

int table_add(table *t, const char *text) {
        char *s;

        if (t->n_cells == t->cap) {
                size_t ncap = t->cap ? t->cap * 2 : 64;
                char **p = realloc(t->cells, ncap * sizeof(char *));
                if (!p)
                        return -ENOMEM;
                t->cells = p;
                t->cap = ncap;
        }
        s = strdup(text ? text : "-");
        if (!s)
                return -ENOMEM;
        /* a cell is one line: control characters from labels or ids
         * must not move the cursor of the operator's terminal */
        for (char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        t->cells[t->n_cells++] = s;
        return 0;
}

int table_addf(table *t, const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        return table_add(t, s);
}

size_t table_rows(const table *t) {
        return t->n_cells / t->n_columns;
}

void table_sort(table *t, const double *keys, bool descending) {
        size_t rows = table_rows(t), nc = t->n_columns;
        _cleanup_free_ char **tmp = calloc(nc, sizeof(char *));
        _cleanup_free_ double *k = malloc(rows * sizeof(double) + 1);

        if (!tmp || !k)
                return;
        memcpy(k, keys, rows * sizeof(double));
        /* insertion sort: stable, and a screenful of rows */
        for (size_t i = 1; i < rows; i++) {
                double key = k[i];
                size_t j = i;
                memcpy(tmp, t->cells + i * nc, nc * sizeof(char *));
                while (j > 0 && (descending ? k[j - 1] < key : k[j - 1] > key)) {
                        k[j] = k[j - 1];
                        memcpy(t->cells + j * nc, t->cells + (j - 1) * nc, nc * sizeof(char *));
                        j--;
                }
                k[j] = key;
                memcpy(t->cells + j * nc, tmp, nc * sizeof(char *));
        }
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t text_width(const char *s) {
        size_t w = 0;

        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        w++;
        return w;
}

static void print_cell(char *line, size_t *pos, size_t cap, const char *s, size_t width, bool right, bool last) {
        size_t w = text_width(s), pad = width > w ? width - w : 0;
        int n;

        n = snprintf(line + *pos, cap - *pos, "%*s%s%*s%s", right ? (int) pad : 0, "", s,
                     right || last ? 0 : (int) pad, "", last ? "" : "  ");
        if (n > 0)
                *pos = MIN(cap - 1, *pos + (size_t) n);
}

/* Cut s at max_width display columns (0: no cut). */
static void cut_line(char *s, size_t max_width) {
        size_t w = 0;

        if (max_width == 0)
                return;
        for (char *p = s; *p; p++) {
                if (((unsigned char) *p & 0xc0) != 0x80 && w++ == max_width) {
                        *p = 0;
                        return;
                }
        }
}

void table_print(const table *t, FILE *f, size_t max_width, const char *header_prefix, const char *header_suffix) {
        size_t nc = t->n_columns, rows = table_rows(t), cap = 64;
        _cleanup_free_ size_t *width = calloc(nc, sizeof(size_t));
        _cleanup_free_ char *line = NULL;

        if (!width)
                return;
        for (size_t c = 0; c < nc; c++) {
                width[c] = text_width(t->headers[c]);
                for (size_t r = 0; r < rows; r++)
                        width[c] = MAX(width[c], text_width(t->cells[r * nc + c]));
                cap += width[c] * 4 + 2;
        }
        line = malloc(cap);
        if (!line)
                return;
        for (size_t r = 0; r <= rows; r++) {
                size_t pos = 0;
                line[0] = 0;
                for (size_t c = 0; c < nc; c++)
                        print_cell(line, &pos, cap, r == 0 ? t->headers[c] : t->cells[(r - 1) * nc + c], width[c],
                                   t->right[c], c == nc - 1);
                cut_line(line, max_width);
                if (r == 0 && header_prefix) {
                        /* the header bar spans the whole width */
                        size_t w = text_width(line);
                        fprintf(f, "%s%s%*s%s\n", header_prefix, line, max_width > w ? (int) (max_width - w) : 0, "",
                                header_suffix ? header_suffix : "");
                } else
                        fprintf(f, "%s\n", line);
        }
}

char *format_bytes(uint64_t bytes, char *buf, size_t size) {
        static const char units[] = "KMGTPE";
        double v = (double) bytes;
        int u = -1;

        if (bytes < 1024) {
                snprintf(buf, size, "%llu", (unsigned long long) bytes);
                return buf;
        }
        while (v >= 1024 && u < 5) {
                v /= 1024;
                u++;
        }
        if (v < 10 && v != (double) (uint64_t) v)
                snprintf(buf, size, "%.1f%c", v, units[u]);
        else
                snprintf(buf, size, "%.0f%c", v, units[u]);
        return buf;
}

char *format_duration_ms(uint64_t ms, char *buf, size_t size) {
        uint64_t s = ms / 1000;

        if (ms < 1000)
                snprintf(buf, size, "%llums", (unsigned long long) ms);
        else if (s < 60)
                snprintf(buf, size, "%llus", (unsigned long long) s);
        else if (s < 3600)
                snprintf(buf, size, "%llum%02llus", (unsigned long long) (s / 60), (unsigned long long) (s % 60));
        else if (s < 86400)
                snprintf(buf, size, "%lluh%02llum", (unsigned long long) (s / 3600),
                         (unsigned long long) (s % 3600 / 60));
        else
                snprintf(buf, size, "%llud%02lluh", (unsigned long long) (s / 86400),
                         (unsigned long long) (s % 86400 / 3600));
        return buf;
}

int parse_api_time(const char *s, int64_t *ret_usec) {
        struct tm tm = {};
        const char *p;
        int64_t frac = 0, scale = 1000000;
        time_t t;

        if (!s)
                return -EINVAL;
        p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++)
                        if (scale > 1) {
                                scale /= 10;
                                frac += (*p - '0') * scale;
                        }
        if (*p != 'Z' && *p != 0)
                return -EINVAL;
        t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret_usec = (int64_t) t * 1000000 + frac;
        return 0;
}

int64_t now_realtime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
