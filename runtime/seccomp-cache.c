/* SPDX-License-Identifier: MIT */
/* Compiled seccomp filters, cached by the policy's content: see
 * seccomp-cache.h. */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "build-config.h"
#include "seccomp-cache.h"

#define CACHE_MAGIC "SPBPF01\n"
#define CACHE_FILE_MAX (4u * 1024u * 1024u)

/* What the compiled program depends on besides the policy's text. */
static void cache_context(char *buf, size_t size) {
        const struct scmp_version *v = seccomp_version();
        struct utsname u = {};

        (void) uname(&u);
        snprintf(buf, size, "sandpool %s libseccomp %u.%u.%u %s", SANDPOOL_VERSION, v ? v->major : 0,
                 v ? v->minor : 0, v ? v->micro : 0, u.machine);
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
        const unsigned char *p = data;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 1099511628211ULL;
        }
        return h;
}

/* Root's, and nobody else may write it: else its content is not ours. */
static bool trusted(const struct stat *st) {
        return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

typedef struct cache_header {
        char magic[8];
        uint32_t context_len;
        uint32_t n_insns;
        uint64_t policy_len;
} cache_header;

/* The cached program, if the file holds a compilation of this very text
 * in this very context; -ENOENT otherwise (any mismatch is a miss). */
static int cache_read(int dir_fd, const char *name, const char *context, const char *text, size_t len,
                      sp_seccomp_program **ret) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        cache_header h;

        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !trusted(&st) || st.st_size < (off_t) sizeof(h) ||
            st.st_size > CACHE_FILE_MAX)
                return -ENOENT;
        size_t size = (size_t) st.st_size;
        buf = malloc(size);
        if (!buf || pread(fd, buf, size, 0) != (ssize_t) size)
                return -ENOENT;
        memcpy(&h, buf, sizeof(h));
        size_t clen = strlen(context);
        if (memcmp(h.magic, CACHE_MAGIC, 8) != 0 || h.context_len != clen || h.policy_len != len || h.n_insns == 0 ||
            h.n_insns > BPF_MAXINSNS ||
            size != sizeof(h) + clen + len + (size_t) h.n_insns * sizeof(struct sock_filter))
                return -ENOENT;
        const char *p = buf + sizeof(h);
        /* the whole text, not only its hash: a collision is only a miss */
        if (memcmp(p, context, clen) != 0 || memcmp(p + clen, text, len) != 0)
                return -ENOENT;
        p += clen + len;
        sp_seccomp_program *prog = calloc(1, sizeof(*prog));
        struct sock_filter *f = malloc((size_t) h.n_insns * sizeof(*f));
        if (!prog || !f) {
                free(prog);
                free(f);
                return -ENOMEM;
        }
        memcpy(f, p, (size_t) h.n_insns * sizeof(*f));
        prog->prog.len = (unsigned short) h.n_insns;
        prog->prog.filter = f;
        *ret = prog;
        return 0;
}

/* Best effort: a cache that cannot be written only costs the next
 * caller a compilation. */
static void cache_write(int dir_fd, const char *name, const char *context, const char *text, size_t len,
                        const sp_seccomp_program *prog) {
        char tmp[64];
        cache_header h = {.context_len = (uint32_t) strlen(context), .n_insns = prog->prog.len, .policy_len = len};

        memcpy(h.magic, CACHE_MAGIC, 8);
        snprintf(tmp, sizeof(tmp), ".%s.%d", name, (int) getpid());
        _cleanup_close_ int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        bool ok = write(fd, &h, sizeof(h)) == (ssize_t) sizeof(h) &&
                  write(fd, context, h.context_len) == (ssize_t) h.context_len &&
                  write(fd, text, len) == (ssize_t) len &&
                  write(fd, prog->prog.filter, (size_t) h.n_insns * sizeof(struct sock_filter)) ==
                          (ssize_t) ((size_t) h.n_insns * sizeof(struct sock_filter));
        if (!ok || renameat(dir_fd, tmp, dir_fd, name) < 0)
                (void) unlinkat(dir_fd, tmp, 0);
}

static int open_cache_dir(const char *dir) {
        struct stat st;

        if (!dir)
                return -EBADF;
        (void) mkdir(dir, 0700);
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !trusted(&st)) {
                safe_close(fd);
                return -EPERM;
        }
        return fd;
}

int sp_seccomp_load_cached(const char *policy_path, const char *cache_dir, sp_seccomp_program **ret,
                           bool *ret_hit, sp_error *err) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        sp_policy *policy = NULL;
        char context[160], name[32];
        size_t len = 0;
        int r;

        if (ret_hit)
                *ret_hit = false;
        r = sp_policy_read_text(policy_path, &text, &len, err);
        if (r < 0)
                return r;
        cache_context(context, sizeof(context));
        uint64_t key = fnv1a(fnv1a(14695981039346656037ULL, context, strlen(context)), text, len);
        snprintf(name, sizeof(name), "%016" PRIx64 ".bpf", key);
        dir_fd = open_cache_dir(cache_dir);
        if (dir_fd >= 0 && cache_read(dir_fd, name, context, text, len, ret) == 0) {
                if (ret_hit)
                        *ret_hit = true;
                return 0;
        }
        r = sp_policy_parse(policy_path, text, len, &policy, err);
        if (r < 0)
                return r;
        r = sp_seccomp_compile(policy, ret, err);
        sp_policy_free(policy);
        if (r < 0)
                return r;
        if (dir_fd >= 0)
                cache_write(dir_fd, name, context, text, len, *ret);
        return 0;
}
