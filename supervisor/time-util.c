/* SPDX-License-Identifier: MIT */
#include <time.h>

#include "time-util.h"

static usec_t now_clock(clockid_t c) {
        struct timespec ts;
        clock_gettime(c, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

usec_t now_mono(void) {
        return now_clock(CLOCK_MONOTONIC);
}

usec_t now_real(void) {
        return now_clock(CLOCK_REALTIME);
}

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char clock_file[4096];

void wall_clock_use_file(const char *path) {
        snprintf(clock_file, sizeof(clock_file), "%s", path ? path : "");
}

/* The injected time, or -1 when the file cannot be read (the real clock
 * then: a broken test clock must not stop quotas). */
static int64_t clock_file_ms(void) {
        char buf[64];
        int fd = open(clock_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        char *end;
        double s = strtod(buf, &end);
        if (end == buf || s < 0)
                return -1;
        return (int64_t) (s * 1000.0);
}

int64_t wall_clock_ms(void) {
        if (clock_file[0]) {
                int64_t t = clock_file_ms();
                if (t >= 0)
                        return t;
        }
        return (int64_t) (now_real() / USEC_PER_MSEC);
}
