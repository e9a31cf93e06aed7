# SPDX-License-Identifier: MIT
"""sandpoolctl commands / logs / shell against the real daemon; the shell
driven inside tmux (send-keys, capture-pane) as a person would use it."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD_DIR, Daemon
from test_commands import start, wait_exit

CTL = os.path.join(BUILD_DIR, "ctl", "sandpoolctl")
IMAGE = os.environ.get("SANDPOOL_IMAGE", "/var/lib/sandpool/images/default")


@pytest.fixture(scope="module")
def d():
    daemon = Daemon().start()
    try:
        yield daemon
        daemon.stop()
    finally:
        daemon.cleanup()


def ctl(d, *args, **kw):
    return subprocess.run([CTL, "--socket", d.socket] + list(args), capture_output=True, timeout=60, **kw)


def test_commands_lists_and_logs_prints_byte_exact(d):
    s = d.session()
    try:
        a = start(d, s, shell="printf 'out\\377\\n'; echo err >&2; exit 3")
        b = start(d, s, argv=["sleep", "100"])
        wait_exit(d, s, a["id"])
        r = ctl(d, "commands", s)
        assert r.returncode == 0, r
        lines = r.stdout.decode().splitlines()
        assert lines[0].split() == ["ID", "STATE", "PID", "EXIT", "OUTPUT", "COMMAND"]
        rows = {int(l.split()[0]): l.split() for l in lines[1:]}
        assert rows[a["id"]][1:2] == ["exited"] and rows[a["id"]][3] == "3"
        assert rows[b["id"]][1] == "running" and rows[b["id"]][-2:] == ["sleep", "100"]
        r = ctl(d, "logs", s, str(a["id"]))
        assert r.returncode == 0 and r.stdout == b"out\xff\n" and r.stderr == b"err\n", r
        r = ctl(d, "--json", "commands", s)
        assert r.returncode == 0 and b'"commands"' in r.stdout
        assert ctl(d, "logs", s, "99999").returncode == 3
        assert ctl(d, "commands", "0" * 32).returncode == 3
    finally:
        d.delete("/v1/sessions/%s" % s)


def test_logs_follow_until_exit(d):
    s = d.session()
    try:
        c = start(d, s, shell="for i in $(seq 1 50); do echo $i; usleep 10000; done")
        r = ctl(d, "logs", "-f", s, str(c["id"]))
        assert r.returncode == 0, r
        assert r.stdout.decode() == "".join("%d\n" % i for i in range(1, 51))
    finally:
        d.delete("/v1/sessions/%s" % s)


@pytest.fixture
def tmux():
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    sock = os.path.join(tempfile.mkdtemp(prefix="sp-tmux-"), "tmux.sock")

    def run(*args):
        return subprocess.run(["tmux", "-S", sock] + list(args), capture_output=True, text=True, timeout=10)
    yield run
    run("kill-server")
    shutil.rmtree(os.path.dirname(sock), ignore_errors=True)


def wait_pane(tmux, text, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        out = tmux("capture-pane", "-p", "-t", "t").stdout
        if text in out:
            return out
        assert time.monotonic() < deadline, "no %r in the pane:\n%s" % (text, out)
        time.sleep(0.05)


def test_shell_under_tmux_python_print_exit_restores_the_terminal(tmux):
    if not os.path.isfile(os.path.join(IMAGE, "etc", "sandpool-image.json")):
        pytest.skip("no image at %s" % IMAGE)
    d = Daemon(conf={"images": {"rootfs": IMAGE}}).start()
    work = tempfile.mkdtemp(prefix="sp-shell-")
    try:
        script = os.path.join(work, "run.sh")
        with open(script, "w") as f:
            f.write("stty -g > %s/before\n%s --socket %s shell\necho \"rc=$?\"\nstty -g > %s/after\nsleep 60\n"
                    % (work, CTL, d.socket, work))
        r = tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", "sh " + script)
        assert r.returncode == 0, r.stderr
        wait_pane(tmux, "sandbox:~$")
        tmux("send-keys", "-t", "t", "tty; stty size", "Enter")
        out = wait_pane(tmux, "/dev/pts/0")
        wait_pane(tmux, "30 100")
        tmux("send-keys", "-t", "t", "python3", "Enter")
        wait_pane(tmux, ">>>")
        tmux("send-keys", "-t", "t", "print(6 * 7, 'from', 'python')", "Enter")
        wait_pane(tmux, "42 from python")
        tmux("send-keys", "-t", "t", "exit()", "Enter")
        time.sleep(0.3)
        tmux("send-keys", "-t", "t", "exit", "Enter")
        out = wait_pane(tmux, "rc=0")
        deadline = time.monotonic() + 5
        while not os.path.exists(os.path.join(work, "after")) and time.monotonic() < deadline:
            time.sleep(0.05)
        before = open(os.path.join(work, "before")).read()
        after = open(os.path.join(work, "after")).read()
        assert before == after, "the terminal was not restored"
        # the session it made for itself is gone
        assert d.get("/v1/sessions").json["sessions"] == []
        d.stop()
    finally:
        d.cleanup()
        shutil.rmtree(work, ignore_errors=True)
