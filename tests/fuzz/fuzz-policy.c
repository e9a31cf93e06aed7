/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the seccomp policy parser and compiler: arbitrary
 * bytes must give either a policy that compiles or an error that names
 * the file and line, never a crash, a leak or a hang.
 *
 *     CC=clang meson setup build-fuzz && meson compile -C build-fuzz
 *     mkdir -p corpus
 *     LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp build-fuzz/tests/fuzz-policy \
 *             -dict=tests/fuzz/fuzz-policy.dict -max_total_time=60 corpus policies/
 *
 * (lsan.supp explains the one suppression: a leak inside libseccomp.) */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seccomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        sp_policy *p = NULL;
        sp_seccomp_program *prog = NULL;
        sp_error e = {};

        if (size > 64 * 1024)
                return -1; /* larger inputs teach nothing new, only slow the run */
        if (sp_policy_parse("fuzz", (const char *) data, size, &p, &e) < 0) {
                if (strncmp(e.message, "fuzz:", 5) != 0 || e.code >= 0)
                        abort();
                return 0;
        }
        if (sp_seccomp_compile(p, &prog, &e) >= 0) {
                if (prog->prog.len == 0)
                        abort();
                sp_seccomp_program_free(prog);
        } else if (e.message[0] == '\0' || e.code >= 0)
                abort();
        sp_policy_free(p);
        return 0;
}
