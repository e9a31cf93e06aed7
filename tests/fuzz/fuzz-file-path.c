/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the file API's path resolution: the ?path= of
 * PUT/GET/DELETE /v1/sessions/{id}/files is resolved with openat2() and
 * the daemon's flags (supervisor/api-files.c: RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) below the sandbox's root. Here
 * the root is a scratch tree full of traps (symlinks to "/", to "..", to
 * /proc magic links, loops, a sibling directory holding a "secret"), and
 * whatever path the fuzzer builds must either fail or land inside the
 * tree: the property CVE-2021-30465-style symlink games try to break. */
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RESOLVE_SANDBOX (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[PATH_MAX], root[PATH_MAX];
static int root_fd = -1;

static void mk(const char *rel, int dir) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        if (dir ? mkdir(p, 0755) : close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644)))
                abort();
}

static void ln(const char *target, const char *rel) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        if (symlink(target, p) < 0)
                abort();
}

static void cleanup(void) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        if (base[0] == '/' && strncmp(base, "/tmp/sandpool-fuzz-path.", 24) == 0)
                (void) !system(cmd);
}

static void setup(void) {
        strcpy(base, "/tmp/sandpool-fuzz-path.XXXXXX");
        if (!mkdtemp(base))
                abort();
        atexit(cleanup);
        snprintf(root, sizeof(root), "%s/root", base);
        if (mkdir(root, 0755) < 0)
                abort();
        char outside[PATH_MAX];
        snprintf(outside, sizeof(outside), "%s/outside", base);
        if (mkdir(outside, 0755) < 0)
                abort();
        mk("a", 1);
        mk("a/b", 1);
        mk("a/b/file", 0);
        mk("tmp", 1);
        mk("etc", 1);
        mk("etc/passwd", 0);
        ln("/", "abs");
        ln("..", "a/up");
        ln("../../../..", "a/b/up4");
        ln("/../../outside", "tmp/out");
        ln("../outside", "sib");
        ln(outside, "hostpath");
        ln("/proc/self/root", "proc-root");
        ln("/proc/self/fd/3", "proc-fd");
        ln("loop", "loop");
        ln("a/b/../../abs/a", "chain");
        root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[PATH_MAX], where[PATH_MAX + 1], link[64];
        struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_SANDBOX };
        struct stat st, rst;

        if (root_fd < 0)
                setup();
        if (size >= sizeof(path))
                return 0;
        memcpy(path, data, size);
        path[size] = 0;
        int fd = (int) syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
        if (fd < 0)
                return 0; /* refused: fine, whatever the reason */
        /* Landed: it must be inside the tree, on the tree's filesystem. */
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, where, sizeof(where) - 1);
        if (n < 0 || fstat(fd, &st) < 0 || fstat(root_fd, &rst) < 0)
                abort();
        where[n] = 0;
        size_t rl = strlen(root);
        if (strncmp(where, root, rl) != 0 || (where[rl] != 0 && where[rl] != '/') || st.st_dev != rst.st_dev) {
                fprintf(stderr, "escape: '%s' resolved to %s\n", path, where);
                abort();
        }
        close(fd);
        return 0;
}
