/* SPDX-License-Identifier: MIT */
#pragma once

/* Capabilities. PID 1 keeps its own (valid only inside the sandbox's user
 * namespace) to start commands as other users; it empties the bounding
 * and inheritable sets once, so no command can ever regain a capability
 * through exec. Each command then loses all the rest. */

/* In PID 1: drop every capability from the bounding set, clear the
 * inheritable and ambient sets. Uses libcap. */
int sp_caps_drop_bounding(void);
/* In a command about to exec: permitted, effective and inheritable all
 * empty. One raw capset(2): async-signal-safe, fine after vfork. */
int sp_caps_clear_all(void);
