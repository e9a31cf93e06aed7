/* SPDX-License-Identifier: MIT */
#pragma once

/* Small helpers shared by every part of sandpool: cleanup attributes for
 * each resource type, ownership transfer (TAKE_FD/TAKE_PTR), and a few
 * arithmetic macros. Modelled on systemd's src/basic/macro.h. */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _noreturn_ __attribute__((noreturn))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define STRLEN(s) (sizeof(s) - 1)

/* Take ownership of a pointer/fd: the variable is reset so its cleanup
 * handler becomes a no-op. */
#define TAKE_PTR(p)                          \
        ({                                   \
                __typeof__(p) _tp_ = (p);    \
                (p) = NULL;                  \
                _tp_;                        \
        })
#define TAKE_FD(fd)                          \
        ({                                   \
                int _tf_ = (fd);             \
                (fd) = -EBADF;               \
                _tf_;                        \
        })

/* Return -errno from the last failed libc call, never 0. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}
static inline void freep(void *p) {
        free(*(void **) p);
}
static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}
static inline void strv_free(char **v) {
        if (!v)
                return;
        for (char **i = v; *i; i++)
                free(*i);
        free(v);
}
static inline void strv_freep(char ***v) {
        strv_free(*v);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Close a pair of fds (pipes, socketpairs). */
static inline void close_pairp(int (*p)[2]) {
        safe_close((*p)[0]);
        safe_close((*p)[1]);
        (*p)[0] = (*p)[1] = -EBADF;
}
#define _cleanup_close_pair_ _cleanup_(close_pairp)

static inline size_t strv_length(char *const *v) {
        size_t n = 0;
        if (v)
                while (v[n])
                        n++;
        return n;
}

static inline int streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)

/* Bounded error text that crosses API boundaries: the library never
 * prints; it fills one of these and the caller logs it once. */
#define SP_ERROR_MESSAGE_SIZE 256
typedef struct sp_error {
        int code;                             /* negative errno */
        char message[SP_ERROR_MESSAGE_SIZE]; /* human text, already includes context */
} sp_error;

_printf_(3, 4) int sp_error_set(sp_error *e, int code, const char *fmt, ...);
/* Put context in front of a message already set ("CONTEXT: message"),
 * for a caller that knows what was being done; returns e->code, so that
 *     return sp_error_prefix(err, "template %s", name); */
_printf_(2, 3) int sp_error_prefix(sp_error *e, const char *fmt, ...);
