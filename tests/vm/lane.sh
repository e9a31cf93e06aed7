#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The cgroup2 guest lane, run INSIDE the guest by the meson test
# 'cgroup-v2-guest' (suite 'vm'):
#   tests/vm/run-in-guest -- tests/vm/lane.sh
# First the smoke test (the kernel alone: is this guest what the v2 tests
# need?), then the cgroup v2 integration tests through sandpoold. Both always
# run, so one report shows everything; the lane fails if either fails. A
# smoke "skip" (77) fails too: in the guest it means cgroup2 is missing.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

rc=0
t0=$SECONDS
echo "=== lane: smoke test"
"$here/smoke.sh" || { echo "=== lane: smoke test FAILED"; rc=1; }
t1=$SECONDS

echo "=== lane: cgroup v2 integration tests"
# The module refuses to skip for want of cgroup2 here: a lane that skips
# its whole point must not pass.
SANDPOOL_REQUIRE_CGROUP2=1 PYTHONDONTWRITEBYTECODE=1 \
        /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider \
        "$here/../integration/test_cgroup_v2.py" || { echo "=== lane: integration tests FAILED"; rc=1; }
t2=$SECONDS

echo "=== lane: smoke $((t1 - t0)) s, integration $((t2 - t1)) s (guest time)"
exit "$rc"
