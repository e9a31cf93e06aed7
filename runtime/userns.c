/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>

#include "macro.h"
#include "userns.h"

static int write_file_at(const char *path, const char *text, size_t len) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, text, len);
        if (n < 0)
                return -errno;
        return (size_t) n == len ? 0 : -EIO;
}

int sp_userns_write_maps(pid_t pid, uid_t base, unsigned count) {
        char path[64], line[64];
        int r, len;

        /* One line: root inside is `base` outside; no id of the host (and no
         * id of another sandbox, whose range is disjoint) is mapped in. */
        len = snprintf(line, sizeof(line), "0 %u %u\n", (unsigned) base, count);
        snprintf(path, sizeof(path), "/proc/%d/uid_map", (int) pid);
        r = write_file_at(path, line, (size_t) len);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "/proc/%d/gid_map", (int) pid);
        return write_file_at(path, line, (size_t) len);
}

int sp_userns_open(pid_t pid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/user", (int) pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int sp_userns_become_root(void) {
        /* Before the maps were written our ids showed as the overflow id;
         * now host root is unmapped and these calls make us the sandbox's
         * own root (host uid `base`). */
        if (setgroups(0, NULL) < 0)
                return -errno;
        if (setresgid(0, 0, 0) < 0)
                return -errno;
        if (setresuid(0, 0, 0) < 0)
                return -errno;
        return 0;
}
