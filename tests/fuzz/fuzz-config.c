/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the configuration parser: the input is a whole
 * configuration file. It is written to a memfd and loaded through its
 * /proc path, the same code path as --config FILE. Any crash, leak or
 * undefined behaviour is a bug; a parse error is the expected answer to
 * most inputs. When the input loads, its printed form must load again to
 * the same text (the --print-config round trip). */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print_config(const sp_config_set *s) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                abort();
        sp_config_print(s, f);
        fclose(f);
        return buf;
}

static int load_bytes(sp_config_set *s, const void *data, size_t size, sp_error *err) {
        _cleanup_close_ int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
        char path[64];

        if (fd < 0)
                abort();
        if (size > 0 && write(fd, data, size) != (ssize_t) size)
                abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        return sp_config_load(s, path, (char *[]) { NULL }, err);
}

/* Printed text names where each value came from; strip those comments
 * before comparing two printouts. */
static void strip_origins(char *t) {
        char *o = t;
        for (char *p = t; *p;) {
                char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) + 1 : strlen(p);
                char *c = memmem(p, len, "  # ", 4);
                size_t keep = c ? (size_t) (c - p) : len;
                memmove(o, p, keep);
                o += keep;
                if (c && nl)
                        *o++ = '\n';
                p += len;
        }
        *o = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(sp_config_set_done) sp_config_set a = {}, b = {};
        sp_error err = {};

        if (size > 64 * 1024)
                return 0;
        if (load_bytes(&a, data, size, &err) < 0) {
                if (err.code >= 0 || err.message[0] == '\0')
                        abort(); /* every failure must say why */
                return 0;
        }
        _cleanup_free_ char *one = print_config(&a);
        if (load_bytes(&b, one, strlen(one), &err) < 0)
                abort(); /* what --print-config writes must load */
        _cleanup_free_ char *two = print_config(&b);
        strip_origins(one);
        strip_origins(two);
        if (strcmp(one, two) != 0)
                abort();
        return 0;
}
