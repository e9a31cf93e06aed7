# SPDX-License-Identifier: MIT
"""sandpool as a systemd service: the units verify, the daemon serves a
socket handed over by socket activation (LISTEN_FDS/LISTEN_PID), and tells
the service manager it is ready, alive (watchdog) and stopping. The
READY/STATUS/WATCHDOG/STOPPING messages themselves are checked in
test_api_lifecycle.py::test_sd_notify."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD_DIR, SANDPOOLD, SOURCE_ROOT, Daemon
import apiclient

UNIT = os.path.join(BUILD_DIR, "systemd", "sandpool.service")
SOCKET_UNIT = os.path.join(SOURCE_ROOT, "systemd", "sandpool.socket")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_units_verify():
    tmp = tempfile.mkdtemp(prefix="sandpool-units-")
    try:
        # The installed unit runs /usr/(local/)sbin/sandpoold; point it at
        # this build so verify can check the binary is there.
        with open(UNIT) as f:
            text = f.read()
        exec_line = [l for l in text.splitlines() if l.startswith("ExecStart=")][0]
        text = text.replace(exec_line, "ExecStart=" + SANDPOOLD)
        with open(os.path.join(tmp, "sandpool.service"), "w") as f:
            f.write(text)
        shutil.copy(SOCKET_UNIT, os.path.join(tmp, "sandpool.socket"))
        p = subprocess.run(["systemd-analyze", "verify", os.path.join(tmp, "sandpool.service"),
                            os.path.join(tmp, "sandpool.socket")],
                           capture_output=True, text=True, timeout=60)
        # On a machine whose PID 1 is not systemd, verify still parses and
        # checks every directive; it only cannot resolve targets there.
        problems = [l for l in (p.stdout + p.stderr).splitlines()
                    if "sandpool" in l and "target" not in l]
        assert not problems, p.stdout + p.stderr
        for key in ("Type=notify", "Delegate=yes", "WatchdogSec=", "KillMode=mixed", "Restart=on-failure"):
            assert key in text
    finally:
        shutil.rmtree(tmp)


def test_socket_activation(tmp_path):
    d = Daemon()
    path = d.socket
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    listener.listen(64)
    inode = os.stat(path).st_ino
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDPOOL_")}
    env["LISTEN_FDS"] = "1"
    # The listening socket is fd 3; LISTEN_PID must be the daemon's own pid:
    # the shell sets it to $$ and execs, keeping its pid.
    cmd = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@" 3<&0 0</dev/null', "sh",
           SANDPOOLD, "--config", d.conf_path, "--cgroup-subdir", d.subdir]
    log = open(d.log_path, "w")
    proc = subprocess.Popen(cmd, stdin=listener.fileno(), stdout=log, stderr=subprocess.STDOUT, env=env)
    d.proc, d.log = proc, log
    listener.close()  # only the daemon holds it now
    try:
        deadline = time.monotonic() + 15
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = apiclient.request(path, "GET", "/v1/health", timeout=2).status
                if status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        assert status == 200, d.read_log()
        # Served on the very socket it was handed, not one it made itself.
        assert os.stat(path).st_ino == inode
        assert "Using the socket passed by systemd" in d.read_log()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, d.read_log()
        log.close()
