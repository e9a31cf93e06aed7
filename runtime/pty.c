/* SPDX-License-Identifier: MIT */
/* A terminal inside one sandbox: a pty of the devpts instance that the
 * sandbox mounted on its own /dev/pts (mount.c, "newinstance"), so its
 * number, its /dev/pts/N and the list of ptys are the sandbox's alone and
 * nothing of the host's devpts is reachable. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>

#include "sandbox-internal.h"

#define PTMX_MAJOR 5
#define PTMX_MINOR 2

int sp_sandbox_open_pty(sp_sandbox *sb, unsigned rows, unsigned cols, uid_t uid, int *ret_master, int *ret_slave,
                        sp_error *err) {
        _cleanup_close_ int root = -EBADF, master = -EBADF, slave = -EBADF;
        char path[64];
        struct stat st;
        int unlock = 0;

        if (!sp_sandbox_is_ready(sb))
                return sp_error_set(err, -ESRCH, "sandbox %s is not running", sb->name);
        /* PID 1's root, in its own mount namespace. Its pid cannot be reused
         * under us: we hold its pidfd and only we reap it. */
        snprintf(path, sizeof(path), "/proc/%d/root", (int) sb->pid);
        root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return sp_error_set(err, -errno, "open the root of sandbox %s: %m", sb->name);
        /* The sandbox's tree is the sandbox's: no symlink (dev/ptmx is one,
         * to pts/ptmx) and no escape above its root is followed. */
        struct open_how how = {
                .flags = O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        master = (int) syscall(SYS_openat2, root, "dev/pts/ptmx", &how, sizeof(how));
        if (master < 0)
                return sp_error_set(err, -errno, "open /dev/pts/ptmx of sandbox %s: %m", sb->name);
        if (fstat(master, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != PTMX_MAJOR ||
            minor(st.st_rdev) != PTMX_MINOR)
                return sp_error_set(err, -ENOTTY, "/dev/pts/ptmx of sandbox %s is not a devpts ptmx", sb->name);
        if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
                return sp_error_set(err, -errno, "unlock the pty: %m");
        struct winsize ws = {.ws_row = (unsigned short) rows, .ws_col = (unsigned short) cols};
        if (ioctl(master, TIOCSWINSZ, &ws) < 0)
                return sp_error_set(err, -errno, "set the pty's size: %m");
        /* The slave from the master itself, not by a path the sandbox
         * could have replaced. */
        slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0)
                return sp_error_set(err, -errno, "open the pty's slave: %m");
        /* Ours (host root, unmapped inside) until now: the command's user
         * owns its terminal, as login does. */
        if (fchown(slave, sb->id_base + uid, sb->id_base + uid) < 0 || fchmod(slave, 0620) < 0)
                return sp_error_set(err, -errno, "give the pty to uid %u: %m", (unsigned) uid);
        *ret_master = TAKE_FD(master);
        *ret_slave = TAKE_FD(slave);
        return 0;
}
