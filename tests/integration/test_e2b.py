# SPDX-License-Identifier: MIT
"""The E2B-compatible listener ([e2b] listen) against the unmodified `e2b`
SDK from npm (tests/e2b, pinned in package-lock.json, installed by
'tools/install-deps e2b'): tests/e2b/sdk-cases.mjs runs the SDK's calls
against the real daemon on a loopback port, with the Node.js/Python image.
This file starts the daemon with two keys mapped to two uids, runs the
cases, and checks on the daemon's side what the SDK cannot see: every
sandbox the cases made is gone, and no key reached the log."""

import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import SOURCE_ROOT, SKIP

E2B_DIR = os.path.join(SOURCE_ROOT, "tests", "e2b")
IMAGE = os.environ.get("SANDPOOL_IMAGE", "/var/lib/sandpool/images/default")
KEY_A = "e2b-test-key-a-5f1c0e"
KEY_B = "e2b-test-key-b-93d2aa"
UID_B = 65534


def require_sdk():
    why = None
    if not shutil.which("node"):
        why = "node is not installed (Debian package nodejs)"
    elif not os.path.isdir(os.path.join(E2B_DIR, "node_modules", "e2b")):
        why = "the pinned e2b SDK is not installed: run 'tools/install-deps e2b'"
    elif not os.path.isfile(os.path.join(IMAGE, "etc", "sandpool-image.json")):
        why = "no Node.js/Python image at %s (rootfs/build-image --install)" % IMAGE
    if why:
        print("SKIP: " + why, file=sys.stderr)
        pytest.exit("SKIP: " + why, returncode=SKIP)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def e2b_daemon(make_daemon, tmp_path):
    require_sdk()
    keys = tmp_path / "e2b-keys"
    keys.write_text("# test keys\n%s:0\n%s:%d\n" % (KEY_A, KEY_B, UID_B))
    keys.chmod(0o600)
    port = free_port()
    d = make_daemon({"images": {"rootfs": IMAGE},
                     "e2b": {"listen": "127.0.0.1:%d" % port, "keys_file": str(keys)}})
    d.e2b_url = "http://127.0.0.1:%d" % port
    return d


def test_sdk_cases(e2b_daemon):
    d = e2b_daemon
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDPOOL_", "E2B_"))}
    env.update(E2B_API_URL=d.e2b_url, E2B_SANDBOX_URL=d.e2b_url, E2B_API_KEY=KEY_A,
               E2B_KEY_B=KEY_B, E2B_UID_B=str(UID_B), SANDPOOL_SOCKET=d.socket)
    p = subprocess.run(["node", "--test", "--test-reporter=spec", os.path.join(E2B_DIR, "sdk-cases.mjs")],
                       cwd=E2B_DIR, env=env, capture_output=True, text=True, timeout=240)
    print(p.stdout[-8000:])
    print(p.stderr[-3000:], file=sys.stderr)
    assert p.returncode == 0, "the SDK's cases failed (output above)"
    assert re.search(r"^ℹ fail 0$", p.stdout, re.M), p.stdout[-2000:]
    assert re.search(r"^ℹ pass (\d+)$", p.stdout, re.M).group(1) == "11"
    # every sandbox the cases made was killed or expired
    assert d.get("/v1/sessions").json["sessions"] == []
    assert d.proc.poll() is None
    log = d.read_log()
    assert "created through the E2B API" in log
    assert KEY_A not in log and KEY_B not in log


def test_keys_file_readable_by_others_is_refused(make_daemon, tmp_path):
    require_sdk()
    keys = tmp_path / "e2b-keys"
    keys.write_text("%s:0\n" % KEY_A)
    keys.chmod(0o644)
    d = make_daemon({"e2b": {"listen": "127.0.0.1:%d" % free_port(), "keys_file": str(keys)}}, start=False)
    with pytest.raises(RuntimeError, match="not readable by others"):
        d.start()


def test_listen_is_loopback_only(make_daemon):
    d = make_daemon({"e2b": {"listen": "0.0.0.0:8080"}}, start=False)
    with pytest.raises(RuntimeError, match="loopback"):
        d.start()
