#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The cgroup2 guest lane, run INSIDE the guest by the meson test
# 'cgroup-v2-guest' (suite 'vm'):
#   tests/vm/run-in-guest -- tests/vm/lane.sh
# First the smoke test (the kernel alone: is this guest what the v2 tests
# need?), then the runtime's real-kernel cgroup v2 C tests, then the cgroup
# v2 integration tests through sandpoold. All always run, so one report
# shows everything; the lane fails if any fails. A "skip" (77) fails too: in
# the guest it means cgroup2 is missing.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

rc=0
t0=$SECONDS
echo "=== lane: smoke test"
"$here/smoke.sh" || { echo "=== lane: smoke test FAILED"; rc=1; }
t1=$SECONDS

echo "=== lane: the runtime's real-kernel cgroup v2 tests (C)"
# The cmocka tests that exercise the v2 backend against the kernel; on the
# hybrid host they only get a controller-less cgroup2 mount. 77 (skip)
# counts as a failure here, like the smoke test's.
build=${SANDPOOL_BUILD_DIR:-$here/../../build}
found=0
for t in "$build"/tests/test-cgroup-v2-*-real; do
        [ -x "$t" ] || continue
        found=1
        echo "--- $(basename "$t")"
        "$t" || { echo "=== lane: $(basename "$t") FAILED (status $?)"; rc=1; }
done
[ "$found" = 1 ] || echo "=== lane: no test-cgroup-v2-*-real in $build/tests (not built)"
t15=$SECONDS

echo "=== lane: cgroup v2 integration tests"
# The module refuses to skip for want of cgroup2 here: a lane that skips
# its whole point must not pass.
# The JUnit report goes back to the host with the artefacts.
SANDPOOL_REQUIRE_CGROUP2=1 PYTHONDONTWRITEBYTECODE=1 \
        /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider \
        ${SANDPOOL_VM_OUT:+--junitxml="$SANDPOOL_VM_OUT/test_cgroup_v2.xml"} \
        "$here/../integration/test_cgroup_v2.py" || { echo "=== lane: integration tests FAILED"; rc=1; }
t2=$SECONDS

echo "=== lane: smoke $((t1 - t0)) s, C tests $((t15 - t1)) s, integration $((t2 - t15)) s (guest time)"
exit "$rc"
