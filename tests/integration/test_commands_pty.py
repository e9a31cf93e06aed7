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


# ---- WebSocket: a client written from RFC 6455, standard library only -------

class WebSocket:
    def __init__(self, sock_path, path):
        import base64
        import hashlib
        import os
        import socket
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(sock_path)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake: %r" % head
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            assert self.headers["sec-websocket-accept"] == want.decode()

    def send(self, data, opcode=0x2):
        import os
        import struct
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x80 | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def recv(self):
        """(opcode, payload) of the next frame; server frames are unmasked."""
        import struct
        self._need(2)
        op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        assert not self.buf[1] & 0x80, "a server frame must not be masked"
        h = 2
        if n == 126:
            self._need(4)
            n, h = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, h = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(h + n)
        payload, self.buf = self.buf[h:h + n], self.buf[h + n:]
        return op, payload

    def read_until(self, text, timeout=10):
        got = b""
        deadline = time.monotonic() + timeout
        while text not in got:
            assert time.monotonic() < deadline, "no %r in %r" % (text, got)
            op, p = self.recv()
            assert op == 0x2, (op, p)
            got += p
        return got

    def close(self):
        self.sock.close()


def test_websocket_terminal_echo_and_ctrl_c(d, sid):
    c = start(d, sid, shell="echo ready; read line; echo \"you said $line\"; sleep 100", pty={"rows": 24, "cols": 80})
    ws = WebSocket(d.socket, "/v1/sessions/%s/commands/%d/attach" % (sid, c["id"]))
    assert ws.status == 101, ws.headers
    assert ws.headers["upgrade"].lower() == "websocket"
    ws.read_until(b"ready\r\n")
    ws.send(b"hi there\r")
    # the terminal echoes the keys, then the command answers
    ws.read_until(b"you said hi there\r\n")
    # ping is answered with pong, same payload
    ws.send(b"abc", opcode=0x9)
    assert ws.recv() == (0xA, b"abc")
    time.sleep(0.1)
    t0 = time.monotonic()
    ws.send(b"\x03")
    op, p = ws.recv()
    while op == 0x2:  # the ^C echo
        op, p = ws.recv()
    assert op == 0x8, (op, p)
    assert p[:2] == (1000).to_bytes(2, "big") and p[2:] == b"signal 2"
    assert time.monotonic() - t0 < 3
    ws.close()
    end = wait_exit(d, sid, c["id"])
    assert end["signal"] == 2


def test_websocket_keystroke_echo_latency(d, sid):
    c = start(d, sid, argv=["cat"], pty={"rows": 24, "cols": 80})
    ws = WebSocket(d.socket, "/v1/sessions/%s/commands/%d/attach" % (sid, c["id"]))
    assert ws.status == 101
    times = []
    for i in range(200):
        t0 = time.perf_counter()
        ws.send(b"x")
        op, p = ws.recv()
        assert (op, p) == (0x2, b"x")
        times.append(time.perf_counter() - t0)
    times.sort()
    print("websocket keystroke echo p50 %.0f us p99 %.0f us" % (times[100] * 1e6, times[198] * 1e6))
    ws.close()


def test_websocket_needs_the_upgrade_and_the_owner(d, sid):
    c = start(d, sid, argv=["sleep", "100"], pty={"rows": 24, "cols": 80})
    path = "/v1/sessions/%s/commands/%d/attach" % (sid, c["id"])
    assert d.get(path).status == 426
    ws = WebSocket(d.socket, "/v1/sessions/%s/commands/999999/attach" % sid)
    assert ws.status == 404
    ws.close()
    assert d.as_nobody("GET", path)["status"] == 404


def test_websocket_is_closed_when_the_session_ends(d):
    s = d.session()
    c = start(d, s, argv=["sh"], pty={"rows": 24, "cols": 80})
    ws = WebSocket(d.socket, "/v1/sessions/%s/commands/%d/attach" % (s, c["id"]))
    assert ws.status == 101
    ws.send(b"echo $((6*7))\r")
    ws.read_until(b"42")
    assert d.delete("/v1/sessions/%s" % s).status == 204
    op, p = ws.recv()
    while op == 0x2:
        op, p = ws.recv()
    assert op == 0x8 and p[2:] == b"signal 9"
    ws.close()


def test_daemon_stops_cleanly_with_a_websocket_and_a_follower_open():
    own = Daemon().start()
    try:
        s = own.session()
        c = start(own, s, argv=["sh"], pty={"rows": 24, "cols": 80})
        ws = WebSocket(own.socket, "/v1/sessions/%s/commands/%d/attach" % (s, c["id"]))
        assert ws.status == 101
        ws.send(b"echo hi\r")
        ws.read_until(b"hi")
        from test_commands import Reader
        rd = Reader(own, s, c["id"], "follow=true")
        t0 = time.monotonic()
        own.stop()  # SIGTERM: exits 0 and leaves nothing behind
        assert time.monotonic() - t0 < 5
        op, p = ws.recv()
        while op == 0x2:
            op, p = ws.recv()
        assert op == 0x8
        evs = list(rd.events())
        assert evs[-1]["type"] in ("exit", "gone")
        ws.close()
        rd.cut()
    finally:
        own.cleanup()
