# SPDX-License-Identifier: MIT
"""Background commands on a terminal ("pty": {"rows", "cols"}): a pty of
the sandbox's own devpts instance, its size and resize, Ctrl-C to the
foreground process group, TIOCSTI and TIOCLINUX denied on it, and the
terminal over a WebSocket (RFC 6455, a client written here from the RFC)."""
import time

import pytest

from conftest import Daemon
from test_commands import command, read_all, start, stdout_of, wait_exit


@pytest.fixture(scope="module")
def d():
    daemon = Daemon(conf={"limits": {"cpu_limit": "100"}}).start()
    try:
        yield daemon
        daemon.stop()
    finally:
        daemon.cleanup()


@pytest.fixture
def sid(d):
    s = d.session()
    yield s
    d.delete("/v1/sessions/%s" % s)


def screen(d, sid, cid):
    return stdout_of(read_all(d, sid, cid, ""))


def wait_screen(d, sid, cid, text, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        out = screen(d, sid, cid)
        if text in out:
            return out
        assert time.monotonic() < deadline, "no %r on the terminal: %r" % (text, out)
        time.sleep(0.02)


def test_tty_names_a_pts_of_the_sandbox_and_0_1_2_are_terminals(d, sid):
    c = start(d, sid, shell="tty; stty size; for fd in 0 1 2; do test -t $fd && echo tty$fd; done; echo $TERM",
              pty={"rows": 33, "cols": 101})
    end = wait_exit(d, sid, c["id"])
    assert end["exit_code"] == 0 and end["pty"] is True
    # the terminal turns \n into \r\n
    lines = screen(d, sid, c["id"]).split("\r\n")
    assert lines[0] == "/dev/pts/0", lines
    assert lines[1] == "33 101"
    assert lines[2:5] == ["tty0", "tty1", "tty2"]
    assert lines[5] == "xterm-256color"


def test_stty_size_follows_a_resize(d, sid):
    c = start(d, sid, shell="stty size; read x; stty size", pty={"rows": 24, "cols": 80})
    wait_screen(d, sid, c["id"], "24 80")
    base = "/v1/sessions/%s/commands/%d" % (sid, c["id"])
    assert d.post(base + "/resize", {"rows": 50, "cols": 132}).status == 204
    assert d.post(base + "/stdin", "\n").status == 204
    wait_exit(d, sid, c["id"])
    assert screen(d, sid, c["id"]).endswith("50 132\r\n")
    assert d.post(base + "/resize", {"rows": 0, "cols": 132}).status == 400


def test_resize_without_a_terminal_is_409(d, sid):
    c = start(d, sid, argv=["sleep", "100"])
    r = d.post("/v1/sessions/%s/commands/%d/resize" % (sid, c["id"]), {"rows": 5, "cols": 5})
    assert r.status == 409


def test_ctrl_c_on_stdin_stops_the_foreground_group(d, sid):
    c = start(d, sid, shell="echo go; sleep 100; echo after $?", pty={"rows": 24, "cols": 80})
    wait_screen(d, sid, c["id"], "go")
    time.sleep(0.1)
    assert d.post("/v1/sessions/%s/commands/%d/stdin" % (sid, c["id"]), "\x03").status == 204
    # the line discipline sent SIGINT to the foreground group: sleep and sh
    end = wait_exit(d, sid, c["id"], timeout=5)
    assert end["signal"] == 2, end


def test_eof_on_a_terminal_is_ctrl_d(d, sid):
    c = start(d, sid, shell="cat; echo done", pty={"rows": 24, "cols": 80})
    base = "/v1/sessions/%s/commands/%d" % (sid, c["id"])
    assert d.post(base + "/stdin?eof=true", "abc\n").status == 204
    end = wait_exit(d, sid, c["id"], timeout=5)
    assert end["exit_code"] == 0
    assert screen(d, sid, c["id"]) == "abc\r\nabc\r\ndone\r\n"


def test_tiocsti_and_tioclinux_are_denied_on_the_terminal(d, sid):
    # stdin is a real terminal here: without the filter TIOCSTI would get
    # as far as the tty layer (EFAULT for the NULL argument, or success)
    c = start(d, sid, argv=["probe", "syscall", "ioctl-tiocsti", "ioctl-tiocsti-masked", "ioctl-tioclinux",
                            "ioctl-tioclinux-masked", "ioctl-tiocgwinsz"], pty={"rows": 24, "cols": 80})
    wait_exit(d, sid, c["id"])
    lines = {l.split()[1]: l.split()[2:4] for l in screen(d, sid, c["id"]).split("\r\n") if l.startswith("syscall ")}
    for name in ("ioctl-tiocsti", "ioctl-tiocsti-masked", "ioctl-tioclinux", "ioctl-tioclinux-masked"):
        assert lines[name] == ["-1", "EPERM"], (name, lines)
    # the control: an allowed terminal ioctl reaches the tty layer
    assert lines["ioctl-tiocgwinsz"] == ["-1", "EFAULT"], lines


def test_devpts_of_one_sandbox_is_not_visible_in_another(d, sid):
    c = start(d, sid, argv=["sleep", "100"], pty={"rows": 24, "cols": 80})
    r = d.exec(sid, {"shell": "ls /dev/pts"})
    assert sorted(r.json["stdout"].split()) == ["0", "ptmx"]
    other = d.session()
    try:
        r = d.exec(other, {"shell": "ls /dev/pts"})
        assert r.json["stdout"].split() == ["ptmx"]
        # and its own first terminal is its own pts 0
        c2 = start(d, other, argv=["tty"], pty={"rows": 24, "cols": 80})
        wait_exit(d, other, c2["id"])
        assert screen(d, other, c2["id"]) == "/dev/pts/0\r\n"
    finally:
        d.delete("/v1/sessions/%s" % other)
    assert command(d, sid, c["id"])["state"] == "running"


def test_pty_only_for_background_commands(d, sid):
    r = d.exec(sid, {"argv": ["tty"], "pty": {"rows": 3, "cols": 4}})
    assert r.status == 400
    r = d.post("/v1/sessions/%s/commands" % sid, {"argv": ["tty"], "pty": {"rows": 3, "lines": 4}})
    assert r.status == 400
