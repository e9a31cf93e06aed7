/* SPDX-License-Identifier: MIT */
#pragma once

#include "macro.h"

/* The sandbox's PID 1: forked from the caller, never exec'd. It reaps every
 * orphan (the kernel hands them to it), starts commands on request from
 * the control socket, signals their process groups, and reports each exit.
 * When the control socket closes (the caller is gone) it exits, and the
 * kernel kills everything else in the pid namespace with it. */
_noreturn_ void sp_init_run(int ctl);
