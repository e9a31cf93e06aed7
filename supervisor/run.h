/* SPDX-License-Identifier: MIT */
#pragma once

/* `sandpoold run [OPTIONS] -- CMD ARGS...`: one fresh sandbox, one command
 * with the caller's stdio, then nothing left. */
int sandpoold_run_main(int argc, char **argv);
