/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "nft.h"

struct sp_nft {
        struct nft_ctx *ctx;
};

int sp_nft_new(sp_nft **ret) {
        sp_nft *n = calloc(1, sizeof(*n));

        if (!n)
                return -ENOMEM;
        n->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!n->ctx) {
                free(n);
                return -ENOMEM;
        }
        /* Both into buffers: a library prints nothing of its own. */
        if (nft_ctx_buffer_output(n->ctx) < 0 || nft_ctx_buffer_error(n->ctx) < 0) {
                nft_ctx_free(n->ctx);
                free(n);
                return -ENOMEM;
        }
        *ret = n;
        return 0;
}

void sp_nft_free(sp_nft *n) {
        if (!n)
                return;
        nft_ctx_free(n->ctx);
        free(n);
}

/* libnftables returns -1 and leaves errno as it pleases: the message is
 * the only reliable account, so map the kernel's words back. */
static int error_from_text(const char *e) {
        if (strstr(e, "No such file or directory") || strstr(e, "does not exist"))
                return -ENOENT;
        if (strstr(e, "File exists"))
                return -EEXIST;
        if (strstr(e, "Operation not permitted"))
                return -EPERM;
        if (strstr(e, "Cannot allocate memory"))
                return -ENOMEM;
        if (strstr(e, "Device or resource busy"))
                return -EBUSY;
        if (strstr(e, "Protocol not supported") || strstr(e, "Operation not supported"))
                return -EOPNOTSUPP;
        return -EINVAL;
}

int sp_nft_run(sp_nft *n, const char *cmds, int json, const char **ret_output, sp_error *err) {
        unsigned flags = nft_ctx_output_get_flags(n->ctx);
        const char *e;
        int r;

        if (json)
                flags |= NFT_CTX_OUTPUT_JSON;
        else
                flags &= ~(unsigned) NFT_CTX_OUTPUT_JSON;
        nft_ctx_output_set_flags(n->ctx, flags);
        r = nft_run_cmd_from_buffer(n->ctx, cmds);
        e = nft_ctx_get_error_buffer(n->ctx);
        if (r != 0) {
                /* the first line says it; the rest repeats the input */
                if (!e)
                        e = "";
                return sp_error_set(err, error_from_text(e), "%.*s", (int) strcspn(e, "\n"), e);
        }
        if (ret_output)
                *ret_output = nft_ctx_get_output_buffer(n->ctx);
        return 0;
}
