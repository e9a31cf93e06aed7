/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "idslot.h"
#include "macro.h"
#include "sandbox.h"

int sp_idslot_acquire(const char *dir, uid_t first, unsigned count, unsigned hint, sp_idslot *ret) {
        _cleanup_close_ int dfd = -EBADF;

        if (count == 0 || (uint64_t) first + (uint64_t) count * SP_ID_RANGE > UINT32_MAX)
                return -ERANGE;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        dfd = open(dir, O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        for (unsigned i = 0; i < count; i++) {
                unsigned slot = (hint + i) % count;
                uid_t base = first + slot * SP_ID_RANGE;
                char name[16];
                snprintf(name, sizeof(name), "%u", (unsigned) base);
                int fd = openat(dfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return -errno;
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                        *ret = (sp_idslot){.base = base, .lock_fd = fd};
                        return 0;
                }
                int err = errno;
                close(fd);
                if (err != EWOULDBLOCK)
                        return -err;
        }
        return -EBUSY;
}

void sp_idslot_release(sp_idslot *s) {
        /* The file stays: unlinking it would race with a process that has
         * just opened it and is about to lock it. */
        s->lock_fd = safe_close(s->lock_fd);
}
