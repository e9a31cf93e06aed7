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
    assert re.search(r"^ℹ pass (\d+)$", p.stdout, re.M).group(1) == "14"
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


def connections_in(port, state):
    out = subprocess.run(["ss", "-Htn", "state", state, "( sport = :%d )" % port],
                         capture_output=True, text=True, check=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


def raw_box(port):
    import http.client
    import json
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/v2/sandboxes", body="{}", headers={"X-API-Key": KEY_A, "Content-Type": "application/json"})
    r = c.getresponse()
    box = json.loads(r.read())
    assert r.status == 201, box
    return c, box


def raw_start(port, box, argv, extra=b""):
    import json
    import struct
    msg = json.dumps({"process": {"cmd": argv[0], "args": argv[1:]}}).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /process.Process/Start HTTP/1.1\r\nHost: x\r\nContent-Type: application/connect+json\r\n"
              b"E2b-Sandbox-Id: %s\r\nX-Access-Token: %s\r\n%sContent-Length: %d\r\n\r\n"
              % (box["sandboxID"].encode(), box["envdAccessToken"].encode(), extra, 5 + len(msg))
              + struct.pack(">BI", 0, len(msg)) + msg)
    return s


def test_a_quiet_stream_gets_keepalive_events(e2b_daemon):
    """Keepalive-Ping-Interval (the SDK asks for 50 s): a process that says
    nothing still gets something on the wire at that interval, so that no
    idle timeout on the way (undici's body timeout) ends its stream."""
    port = int(e2b_daemon.e2b_url.rsplit(":", 1)[1])
    c, box = raw_box(port)
    s = raw_start(port, box, ["/bin/sleep", "3.5"], b"Keepalive-Ping-Interval: 1\r\n")
    got = b""
    s.settimeout(20)
    while b'"end"' not in got:
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    s.close()
    assert got.count(b'"keepalive"') >= 2, got
    assert got.index(b'"start"') < got.index(b'"keepalive"') < got.index(b'"end"')
    c.request("DELETE", "/sandboxes/" + box["sandboxID"], headers={"X-API-Key": KEY_A})
    assert c.getresponse().status == 204


def test_a_stream_whose_client_hangs_up_is_let_go(e2b_daemon):
    """A quiet background process's stream is suspended on the server; a
    client that goes away must not leave its connection behind (CLOSE-WAIT)
    for as long as the process runs: the listener watches it for EPOLLRDHUP."""
    import json
    import time
    d = e2b_daemon
    port = int(d.e2b_url.rsplit(":", 1)[1])
    c, box = raw_box(port)
    s = raw_start(port, box, ["/bin/sleep", "60"])
    got = b""
    while b'"start"' not in got:
        got += s.recv(4096)
    assert got.startswith(b"HTTP/1.1 200"), got
    s.close()
    deadline = time.monotonic() + 5
    while connections_in(port, "close-wait") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert connections_in(port, "close-wait") == 0
    # the process itself lives on: an E2B process outlives its stream
    c.request("POST", "/process.Process/List", body="{}", headers={
        "Content-Type": "application/json", "E2b-Sandbox-Id": box["sandboxID"],
        "X-Access-Token": box["envdAccessToken"]})
    r = c.getresponse()
    procs = json.loads(r.read())["processes"]
    assert [p["config"]["cmd"] for p in procs] == ["/bin/sleep"], procs
    c.request("DELETE", "/sandboxes/" + box["sandboxID"], headers={"X-API-Key": KEY_A})
    assert c.getresponse().status == 204


def test_sdk_over_https(make_daemon, tmp_path):
    """[e2b] tls_certificate/tls_key: the SDK speaks HTTPS to the listener
    (a self-signed certificate for 127.0.0.1, trusted through
    NODE_EXTRA_CA_CERTS), a few of the cases over it."""
    require_sdk()
    if not shutil.which("openssl"):
        print("SKIP: openssl is missing", file=sys.stderr)
        pytest.exit("SKIP: openssl is missing", returncode=SKIP)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    key.chmod(0o600)
    keys = tmp_path / "e2b-keys"
    keys.write_text("%s:0\n%s:%d\n" % (KEY_A, KEY_B, UID_B))
    keys.chmod(0o600)
    port = free_port()
    d = make_daemon({"images": {"rootfs": IMAGE},
                     "e2b": {"listen": "127.0.0.1:%d" % port, "keys_file": str(keys),
                             "tls_certificate": str(cert), "tls_key": str(key)}})
    url = "https://127.0.0.1:%d" % port
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDPOOL_", "E2B_", "NODE_"))}
    env.update(E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=KEY_A, E2B_KEY_B=KEY_B, E2B_UID_B=str(UID_B),
               SANDPOOL_SOCKET=d.socket, NODE_EXTRA_CA_CERTS=str(cert))
    p = subprocess.run(["node", "--test", "--test-reporter=spec",
                        "--test-name-pattern=prints 42|files:|background command|bad key",
                        os.path.join(E2B_DIR, "sdk-cases.mjs")],
                       cwd=E2B_DIR, env=env, capture_output=True, text=True, timeout=240)
    print(p.stdout[-6000:])
    print(p.stderr[-3000:], file=sys.stderr)
    assert p.returncode == 0, "the SDK's cases over HTTPS failed (output above)"
    assert re.search(r"^ℹ pass 4$", p.stdout, re.M), p.stdout[-2000:]
    assert "E2B-compatible API on https://" in d.read_log()
    # and plain HTTP is not spoken on it
    env.update(E2B_API_URL="http://127.0.0.1:%d" % port)
    p = subprocess.run(["node", "-e", "fetch(process.env.E2B_API_URL + '/v2/sandboxes')"
                        ".then(r => console.log('status', r.status), e => console.log('refused', e.cause?.code ?? e))"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert "status 200" not in p.stdout and "status 401" not in p.stdout, p.stdout


def test_a_slow_client_is_cut_off(e2b_daemon):
    """A client that sends its headers a byte at a time (slowloris) is
    closed after the header deadline (10 s), although it is never idle
    long enough for MHD's own idle timeout."""
    import time
    port = int(e2b_daemon.e2b_url.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(1)
    t0 = time.monotonic()
    s.sendall(b"GET /v2/sandboxes HTTP/1.1\r\nHost: x\r\n")
    closed = False
    while time.monotonic() - t0 < 25 and not closed:
        try:
            s.sendall(b"X")
            closed = s.recv(1) == b""
        except socket.timeout:
            pass
        except OSError:
            closed = True
    s.close()
    assert closed, "the slow client was still connected after 25 s"
    assert 9 <= time.monotonic() - t0 <= 16


def test_the_daemon_stops_with_streams_open(e2b_daemon):
    """SIGTERM while a process stream is suspended on the listener: the
    daemon lets the stream go, exits 0 within its drain time and leaves
    nothing behind (Daemon.stop checks)."""
    d = e2b_daemon
    port = int(d.e2b_url.rsplit(":", 1)[1])
    _, box = raw_box(port)
    s = raw_start(port, box, ["/bin/sleep", "60"])
    s.settimeout(10)
    got = b""
    while b'"start"' not in got:
        got += s.recv(4096)
    assert d.stop() == 0
    rest = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    except OSError:
        pass
    s.close()
