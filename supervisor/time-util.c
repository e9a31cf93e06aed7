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
