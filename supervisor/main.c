/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "build-config.h"
#include "run.h"

int main(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "run") == 0)
                return sandpoold_run_main(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
                printf("sandpoold %s\n", SANDPOOL_VERSION);
                return 0;
        }
        fprintf(stderr, "Usage: sandpoold run [OPTIONS] -- CMD [ARGS...]\n");
        return 2;
}
