/* SPDX-License-Identifier: MIT */
#pragma once

/* The event loop's priorities, in one place. sd-event dispatches the
 * highest-priority pending source first, so a source that is always ready
 * starves everything below it. The rule: whatever ends work can never be
 * starved by whatever produces it.
 *
 *   PRIO_ENDS   signals (SIGTERM, SIGHUP), command and session timeouts,
 *               session ends, a sandbox's PID 1 dying, request deadlines.
 *               None of these can stay ready: each is one-shot, or
 *               disabled once it has said all it has to say.
 *   PRIO_SERVE  the HTTP server: health and new requests stay fast while
 *               sandboxes flood their pipes.
 *   PRIO_WORK   commands' output pipes, stdin, their starts and exits
 *               (the control socket: an exit is handled after the output
 *               that became ready before it), pool refills. Sources of one
 *               priority take turns, so none of these starves another.
 *   PRIO_DRAIN  output past its cap, read only to throw it away. */

#include <systemd/sd-event.h>

#define PRIO_ENDS SD_EVENT_PRIORITY_IMPORTANT
#define PRIO_SERVE (SD_EVENT_PRIORITY_IMPORTANT / 2)
#define PRIO_WORK SD_EVENT_PRIORITY_NORMAL
#define PRIO_DRAIN SD_EVENT_PRIORITY_IDLE
