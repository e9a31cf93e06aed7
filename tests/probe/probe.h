/* SPDX-License-Identifier: MIT */
#pragma once

/* What the probe's files share: the output helpers and the check harness
 * (see probe.c for the output grammar). */

#include <stddef.h>
#include <sys/types.h>

#include <sys/syscall.h>

#include "macro.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#define X32_SYSCALL_BIT 0x40000000UL
#define I386_NR_GETPID 20
#define PROBE_NOENT "/sandpool-probe-absent"

#define MIB (1024UL * 1024UL)

typedef long (*check_fn)(const void *arg);

extern const char *g_step;
extern char g_extra[1024];

void write_all(int fd, const char *p, size_t n);
_printf_(2, 3) void fout(int fd, const char *fmt, ...);
#define out(...) fout(1, __VA_ARGS__)
const char *errname(int e);
const char *esc(const char *s);
int wait_child(pid_t pid);
void run_check(const char *cmd, const char *name, check_fn fn, const void *arg);
_printf_(1, 2) void extra(const char *fmt, ...);
long step_fail(const char *step);
int scratch_dir(char *buf, size_t n);
void rmdir_keep_errno(const char *p);

_noreturn_ _printf_(1, 2) void usage_error(const char *fmt, ...);
long parse_long(const char *s, const char *what);

/* probe-syscalls.c */
int cmd_syscall(int argc, char **argv);
long sc_ptrace(const void *a);
/* Print the names the `syscall` subcommand knows, for `probe help`. */
void syscall_names(void);
