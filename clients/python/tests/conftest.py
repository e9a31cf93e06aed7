# SPDX-License-Identifier: MIT
"""The client's tests run against the real sandpoold, started by the same
fixture as the daemon's own API tests (tests/integration/conftest.py):
a temporary socket, the busybox test rootfs, its own cgroup subtree, and a
check at the end that nothing is left behind."""

import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.dirname(HERE))  # sandpool.py

# Loaded under another name: a second module called "conftest" would clash
# with this one in sys.modules.
_spec = importlib.util.spec_from_file_location(
    "sandpool_daemon_fixture", os.path.join(ROOT, "tests", "integration", "conftest.py"))
_fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixture)

Daemon = _fixture.Daemon
daemon = _fixture.daemon
make_daemon = _fixture.make_daemon
