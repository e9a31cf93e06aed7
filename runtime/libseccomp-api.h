/* SPDX-License-Identifier: MIT */
#pragma once

/* libseccomp's API. Our own interface, runtime/seccomp.h, has the same
 * file name as libseccomp's <seccomp.h>, and this directory is on the
 * include path, so a plain #include <seccomp.h> finds ours. Include this
 * header with angle brackets, <libseccomp-api.h>: found through the -I of
 * this directory, its #include_next resumes the search after it and reaches
 * the system's seccomp.h. (Included with quotes, the search would restart
 * and find ours again: the check below catches that.) */
#include_next <seccomp.h>

#ifndef SCMP_VER_MAJOR
#error "libseccomp's seccomp.h was not found: include <libseccomp-api.h> with angle brackets"
#endif
