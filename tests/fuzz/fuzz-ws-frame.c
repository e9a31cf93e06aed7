/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the WebSocket frame parser of the terminal attach
 * (supervisor/ws.c, ws_frame_parse()): the bytes a local client sends
 * after the upgrade. Whatever comes, the parser consumes frames that lie
 * inside what it was given, never reads or writes past it, and either
 * asks for more, takes a frame, or refuses (unmasked, too large). */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* a copy of exactly size bytes: ASan sees any read past the end */
        unsigned char *buf = malloc(size ? size : 1);
        size_t off = 0;

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        for (;;) {
                ws_frame f;
                ssize_t k = ws_frame_parse(buf + off, size - off, 4096, &f);
                if (k <= 0) {
                        assert(k == 0 || k == -EPROTO || k == -EMSGSIZE);
                        break;
                }
                assert((size_t) k <= size - off);
                assert(f.len <= 4096 && f.opcode <= 15);
                assert(f.payload >= buf + off && f.payload + f.len == buf + off + k);
                off += (size_t) k;
        }
        free(buf);
        return 0;
}
