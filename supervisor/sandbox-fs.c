/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox-fs.h"

static unsigned fs_user_depth;

sandbox_fs_ids sandbox_fs_enter(session *s) {
        if (fs_user_depth++ == 0) {
                (void) setfsgid(sp_sandbox_id_base(s->sb) + SP_SANDBOX_GID);
                (void) setfsuid(sp_sandbox_id_base(s->sb) + SP_SANDBOX_UID);
        }
        return (sandbox_fs_ids) { true };
}

void sandbox_fs_leave(sandbox_fs_ids *ids) {
        if (--fs_user_depth == 0) {
                (void) setfsuid(0);
                (void) setfsgid(0);
        }
}

int sandbox_fs_open(session *s, const char *path, uint64_t flags, int *ret) {
        struct open_how how = {
                .flags = flags | O_CLOEXEC,
                .resolve = RESOLVE_SANDBOX,
        };
        int root = sp_sandbox_root_fd(s->sb), fd;

        if (root < 0)
                return root;
        /* With RESOLVE_IN_ROOT the kernel answers EAGAIN when any mount or
         * rename on the host (the pool's own refills, say) raced with a
         * ".." in the path: it cannot prove the walk stayed inside. Try
         * again; a path that keeps racing fails closed. */
        for (unsigned tries = 0;; tries++) {
                fd = (int) syscall(SYS_openat2, root, path, &how, sizeof(how));
                if (fd >= 0 || errno != EAGAIN || tries >= 32)
                        break;
        }
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}
