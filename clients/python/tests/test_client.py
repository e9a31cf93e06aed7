# SPDX-License-Identifier: MIT
"""The Python client against the real daemon (fixtures in conftest.py).
The test rootfs has busybox only, so commands are busybox sh."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import sandpool
from sandpool import Client, Sandbox


@pytest.fixture
def client(daemon):
    with Client(daemon.socket, timeout=10) as c:
        yield c


@pytest.fixture
def sb(client):
    with client.sandbox() as s:
        yield s


def active_ids(client):
    return {s.id for s in client.sessions()}


def wait_until(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


# -- daemon calls


def test_health_and_metrics(client):
    h = client.health()
    assert h["status"] == "ok" and h["cgroup"]["mode"] in ("v1", "v2")
    assert h["limits"]["command_timeout_ms"] > 0
    assert client.command_timeout() == h["limits"]["command_timeout_ms"] / 1000
    m = client.metrics()
    assert "sandpool_http_requests_total" in m


def test_socket_from_environment(daemon, monkeypatch):
    monkeypatch.setenv("SANDPOOL_SOCKET", daemon.socket)
    assert Client().socket_path == daemon.socket
    assert sandpool.run("echo $((6*7))").stdout == "42\n"


# -- sessions and the context manager


def test_sandbox_lifecycle(client):
    with client.sandbox(labels={"agent": "t1"}, timeout_s=60, idle_timeout_s=30) as sb:
        assert len(sb.id) == 32
        assert sb.info.labels == {"agent": "t1"}
        assert sb.info.raw["timeout_s"] == 60 and sb.info.raw["idle_timeout_s"] == 30
        assert sb.id in active_ids(client)
        info = sb.refresh()
        assert info.state == "ready" and info.usage is not None
        assert info.usage["pids_current"] >= 1
        assert client.session(sb.id).id == sb.id
    assert sb.id not in active_ids(client)
    with pytest.raises(sandpool.NotFoundError):
        client.session(sb.id)
    sb.close()  # idempotent


def test_context_manager_ends_session_after_exception(client, daemon):
    before = client.health()["active_sessions"]
    with pytest.raises(ZeroDivisionError):
        with Sandbox(socket_path=daemon.socket) as sb:
            sb.run("sleep 30 &")  # a background process it leaves
            1 / 0
    assert sb.id not in active_ids(client)
    assert client.health()["active_sessions"] == before
    with pytest.raises(sandpool.NotFoundError):
        client.session(sb.id)


def test_context_manager_ends_session_after_client_timeout(client, daemon):
    with pytest.raises(sandpool.SandpoolTimeoutError):
        with Sandbox(socket_path=daemon.socket) as sb:
            sb.run("sleep 5", socket_timeout=0.3)
    assert sb.id not in active_ids(client)


def test_session_env_and_connect(client):
    with client.sandbox(env={"GREETING": "hello"}) as sb:
        other = Sandbox.connect(sb.id, client=client)
        assert other.id == sb.id
        assert other.run("echo $GREETING").stdout == "hello\n"
        assert other.run("echo $GREETING $X", env={"X": "world"}).stdout == "hello world\n"


def test_session_ended_elsewhere(client):
    sb = client.sandbox()
    client.end_session(sb.id)
    with pytest.raises(sandpool.NotFoundError) as e:
        sb.run("true")
    assert e.value.status == 404 and e.value.code == "not_found"
    sb.close()  # already gone: not an error


def test_connect_unknown_session(client):
    with pytest.raises(sandpool.NotFoundError):
        Sandbox.connect("0" * 32, client=client)


# -- commands


def test_run_shell_and_argv(sb):
    r = sb.run("echo out; echo err >&2; exit 3")
    assert (r.exit_code, r.stdout, r.stderr, r.ok) == (3, "out\n", "err\n", False)
    assert r.signal is None and not r.timed_out and not r.truncated and r.duration_ms >= 0
    r = sb.run(["printf", "%s|", "a b", "$HOME", "'q'"])
    assert r.stdout == "a b|$HOME|'q'|" and r.ok


def test_run_stdin_cwd_and_files_shared(sb):
    assert sb.run("cat", stdin="from stdin\n").stdout == "from stdin\n"
    assert sb.run("pwd").stdout == "/home/sandbox\n"
    sb.run("mkdir -p /tmp/w && echo kept > /tmp/w/f", check=True)
    assert sb.run(["cat", "f"], cwd="/tmp/w").stdout == "kept\n"


def test_run_check_raises(sb):
    with pytest.raises(sandpool.CommandError) as e:
        sb.run("echo bad >&2; exit 2", check=True)
    assert e.value.result.exit_code == 2 and "bad" in str(e.value)
    assert sb.run("true", check=True).ok


def test_command_not_found_is_data(sb):
    r = sb.run(["no-such-command"])
    assert r.exit_code == 127 and r.error


def test_command_timeout_kills(sb):
    t0 = time.monotonic()
    r = sb.run("echo started; sleep 10", timeout=0.3)
    assert time.monotonic() - t0 < 5
    assert r.timed_out and r.signal == 9 and r.exit_code is None
    assert r.stdout == "started\n"


def test_output_cap(sb):
    r = sb.run("yes x | head -c 100000", max_output_bytes=1000)
    assert r.truncated and len(r.stdout) == 1000


def test_unicode_output(sb):
    r = sb.run(["printf", "h\u00e9llo \u2603 \U0001f600"])
    assert r.stdout == "h\u00e9llo \u2603 \U0001f600"


def test_one_shot(client):
    r = client.run(["sh", "-c", "echo $((2+3)); hostname >/dev/null"])
    assert r.stdout == "5\n" and r.ok
    assert sandpool.run("exit 4", socket_path=client.socket_path).exit_code == 4
    r = sandpool.run("sleep 5", socket_path=client.socket_path, timeout=0.2)
    assert r.timed_out


def test_threads_share_one_client(client, sb):
    results = []

    def work(i):
        results.append(sb.run("echo %d" % i).stdout)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(results) == sorted("%d\n" % i for i in range(8))


# -- streaming


def test_stream_iterator(sb):
    t0 = time.monotonic()
    seen = []
    with sb.stream("echo one; sleep 0.6; echo two >&2; echo three") as s:
        for ev in s:
            seen.append((ev.type, ev.data, time.monotonic() - t0))
    types = [t for t, _, _ in seen]
    assert types[0] == "start" and types[-1] == "exit"
    out = [(t, d) for t, d, _ in seen if t in ("stdout", "stderr")]
    assert out == [("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n")]
    # "one" arrived while the command was still sleeping, not at its end.
    first, last = seen[1][2], seen[-1][2]
    assert last - first >= 0.5
    assert s.result.exit_code == 0 and s.result.stdout == "one\nthree\n" and s.result.stderr == "two\n"
    assert s.command_id is not None
    assert seen[-1][0] == "exit" and s.result.duration_ms >= 500


def test_stream_callbacks(sb):
    lines, errs = [], []
    r = sb.run("for i in 1 2 3; do echo $i; sleep 0.1; done; echo e >&2; exit 5",
               on_stdout=lines.append, on_stderr=errs.append)
    assert "".join(lines) == "1\n2\n3\n" and "".join(errs) == "e\n"
    assert r.exit_code == 5 and r.stdout == "1\n2\n3\n"


def test_stream_wait_and_timeout(sb):
    s = sb.stream("echo a; sleep 10", timeout=0.3)
    r = s.wait()
    assert r.timed_out and r.stdout == "a\n"


def test_stream_closed_early_kills_command(sb):
    with sb.stream("echo ready; sleep 30") as s:
        for ev in s:
            if ev.type == "stdout":
                break
    # The daemon sees the connection close and kills the process group.
    assert wait_until(lambda: sb.refresh().raw["running_commands"] == 0)
    assert wait_until(lambda: sb.refresh().usage["pids_current"] == 1)


def test_stream_socket_timeout_kills_command(sb):
    t0 = time.monotonic()
    with pytest.raises(sandpool.SandpoolTimeoutError):
        for _ in sb.stream("echo x; sleep 30", socket_timeout=0.4):
            pass
    assert time.monotonic() - t0 < 3
    assert wait_until(lambda: sb.refresh().raw["running_commands"] == 0)


def test_one_shot_stream(client):
    events = list(client.stream(["sh", "-c", "echo hi"]))
    assert [e.type for e in events] == ["start", "stdout", "exit"]
    assert events[0].raw["session_id"] == ""
    assert events[-1].result.stdout == "hi\n"


def test_keepalive_reused_after_stream(client, sb):
    for _ in range(3):
        assert sb.stream("echo k").wait().stdout == "k\n"
    assert len(client._idle) >= 1
    assert sb.run("echo after").stdout == "after\n"


# -- files


def test_files_roundtrip(sb):
    blob = bytes(range(256)) * 10
    assert sb.write_file("/home/sandbox/blob.bin", blob) == len(blob)
    assert sb.read_file("/home/sandbox/blob.bin") == blob
    sb.write_file("/home/sandbox/t.txt", "h\u00e9 \u2603\n")
    assert sb.read_text("/home/sandbox/t.txt") == "h\u00e9 \u2603\n"
    assert sb.run("wc -c < /home/sandbox/blob.bin").stdout.strip() == "2560"
    # The sandbox user owns what the client writes.
    assert sb.run("stat -c %U /home/sandbox/t.txt").stdout == "sandbox\n"


def test_files_odd_names(sb):
    sb.run("mkdir -p '/tmp/a dir'", check=True)
    path = "/tmp/a dir/x&y=1?#%.txt"
    sb.write_file(path, b"odd")
    assert sb.run(["cat", path]).stdout == "odd"
    names = {e.name for e in sb.list_dir("/tmp/a dir")}
    assert names == {"x&y=1?#%.txt"}


def test_write_run_read(sb):
    sb.write_files({
        "/home/sandbox/job.sh": "read n; echo $((n*n)) > /home/sandbox/out.txt\n",
        "/home/sandbox/in.txt": "12\n",
    })
    sb.run("sh job.sh < in.txt", check=True)
    assert sb.read_text("/home/sandbox/out.txt") == "144\n"


def test_list_dir_and_remove(sb):
    sb.run("mkdir /home/sandbox/d && ln -s /etc /home/sandbox/lnk", check=True)
    sb.write_file("/home/sandbox/f", "abc")
    entries = {e.name: e for e in sb.list_dir("/home/sandbox")}
    assert entries["f"].type == "file" and entries["f"].size == 3 and entries["f"].mode & 0o777
    assert entries["d"].is_dir and entries["lnk"].type == "symlink"
    sb.remove("/home/sandbox/f")
    sb.remove("/home/sandbox/d")
    sb.remove("/home/sandbox/lnk")
    assert not {"f", "d", "lnk"} & {e.name for e in sb.list_dir("/home/sandbox")}
    with pytest.raises(sandpool.NotFoundError):
        sb.remove("/home/sandbox/f")


def test_file_errors(sb, daemon):
    with pytest.raises(sandpool.NotFoundError):
        sb.read_file("/home/sandbox/missing")
    with pytest.raises(sandpool.ForbiddenError):
        sb.write_file("/etc/passwd", "x")
    with pytest.raises(sandpool.BadRequestError):
        sb.read_file("relative/path")
    sb.run("mkdir -p /tmp/full && touch /tmp/full/x", check=True)
    with pytest.raises(sandpool.ConflictError):
        sb.remove("/tmp/full")
    with pytest.raises(sandpool.ConflictError):
        sb.read_file("/tmp/full")
    with pytest.raises(sandpool.ConflictError):
        sb.list_dir("/tmp/full/x")
    # The fixture's daemon has max_upload = 1M.
    with pytest.raises(sandpool.TooLargeError) as e:
        sb.write_file("/tmp/big", b"\0" * (1024 * 1024 + 1))
    assert e.value.status == 413
    with pytest.raises(sandpool.NotFoundError):
        sb.list_dir("/tmp/big")  # nothing was left by the refused upload
    # The session is still fine after every error.
    assert sb.run("echo ok").stdout == "ok\n"


# -- errors


def test_bad_requests(sb, client):
    with pytest.raises(sandpool.BadRequestError) as e:
        sb.run([])
    assert e.value.code == "bad_request" and "argv" in e.value.message
    with pytest.raises(sandpool.BadRequestError):
        sb.run("true", cwd="relative")
    with pytest.raises(sandpool.BadRequestError):
        sb.run("true", env={"A=B": "c"})
    with pytest.raises(sandpool.BadRequestError):
        client.create_session(memory_mb=-1)


def test_method_not_allowed(client):
    with pytest.raises(sandpool.MethodNotAllowedError) as e:
        client.request("PUT", "/v1/health", b"")
    assert e.value.status == 405
    with pytest.raises(sandpool.NotFoundError):
        client.request("GET", "/v1/nope")


def test_no_capacity(make_daemon):
    d = make_daemon(conf={"pool": {"max_pool_size": "1", "pool_size": "1", "min_pool_size": "0"}})
    with Client(d.socket, timeout=10) as c:
        with c.sandbox() as sb:
            with pytest.raises(sandpool.NoCapacityError) as e:
                c.sandbox()
            assert e.value.status == 429 and e.value.retry_after == 1.0
            with pytest.raises(sandpool.NoCapacityError):
                c.run("true")
            assert sb.run("echo still").stdout == "still\n"
            # capacity_wait retries after each Retry-After, up to its limit.
            t0 = time.monotonic()
            with pytest.raises(sandpool.NoCapacityError):
                c.sandbox(capacity_wait=0.3)
            # the daemon itself queues a request up to 2 s before its 429
            assert 0.3 <= time.monotonic() - t0 < 6
            threading.Timer(0.5, sb.close).start()
            t0 = time.monotonic()
            with c.sandbox(capacity_wait=10) as sb2:
                assert sb2.run("echo waited").stdout == "waited\n"
            assert 0.5 <= time.monotonic() - t0 < 5
        assert c.run("echo freed").stdout == "freed\n"


@pytest.mark.parametrize("status,code,cls", [
    (400, "bad_request", sandpool.BadRequestError),
    (403, "forbidden", sandpool.ForbiddenError),
    (404, "not_found", sandpool.NotFoundError),
    (405, "method_not_allowed", sandpool.MethodNotAllowedError),
    (409, "conflict", sandpool.ConflictError),
    (413, "too_large", sandpool.TooLargeError),
    (429, "no_capacity", sandpool.NoCapacityError),
    (500, "internal", sandpool.InternalError),
    (503, "shutting_down", sandpool.ShuttingDownError),
    (431, "", sandpool.BadRequestError),
])
def test_error_mapping(status, code, cls):
    # The table the client uses for answers this suite cannot provoke on
    # demand (500, 503, 431): a pure function, checked against docs/api.md.
    body = ('{"error":{"code":"%s","message":"m"}}' % code).encode() if code else b"<html>big</html>"
    e = sandpool.error_from_response(status, body, {"retry-after": "2"})
    assert type(e) is cls and e.status == status and e.code == code and e.retry_after == 2.0
    assert isinstance(e, sandpool.SandpoolError)


def test_shutting_down(make_daemon):
    """Requests during the drain get 503, or find the socket gone."""
    d = make_daemon()
    c = Client(d.socket, timeout=5)
    sb = c.sandbox()
    stream = sb.stream("sleep 20")
    next(iter(stream))  # the command runs
    d.proc.send_signal(15)
    with pytest.raises((sandpool.ShuttingDownError, sandpool.SandpoolConnectionError)):
        for _ in range(500):
            c.health()
            time.sleep(0.005)
    r = stream.wait()
    assert r.signal == 9
    assert d.proc.wait(timeout=10) == 0


# -- socket timeouts and connection errors


def test_timeout_on_silent_socket():
    """A socket that accepts but never answers: every call gives up after
    the client's timeout."""
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "silent.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    try:
        c = Client(path, timeout=0.3)
        for call in (c.health, lambda: c.sandbox(), lambda: c.run("true", timeout=0.1)):
            t0 = time.monotonic()
            with pytest.raises(sandpool.SandpoolTimeoutError):
                call()
            assert 0.2 < time.monotonic() - t0 < 2.0
    finally:
        srv.close()
        os.unlink(path)
        os.rmdir(tmp)


def test_no_daemon():
    c = Client("/nonexistent/sandpool.sock", timeout=1)
    with pytest.raises(sandpool.SandpoolConnectionError):
        c.health()
    with pytest.raises(sandpool.SandpoolConnectionError):
        Sandbox(socket_path="/nonexistent/sandpool.sock")


def test_stale_keepalive_connection_is_replaced(client, sb):
    """The daemon closes idle connections; a pooled connection it closed
    must not fail the next call (simulated by shutting it down here)."""
    sb.run("true")
    assert client._idle
    for conn in client._idle:
        conn.sock.shutdown(socket.SHUT_RDWR)
    assert sb.run("echo fresh").stdout == "fresh\n"


# -- the examples, run as a developer would


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def run_example(daemon, name):
    env = dict(os.environ, SANDPOOL_SOCKET=daemon.socket, PYTHONPATH=os.path.dirname(EXAMPLES))
    p = subprocess.run([sys.executable, os.path.join(EXAMPLES, name)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_example_stream_lines(daemon):
    out = run_example(daemon, "stream_lines.py").splitlines()
    lines = [l for l in out if ": line " in l]
    assert [l.split(": ")[1] for l in lines] == ["line %d" % i for i in range(1, 6)]
    # Printed as they came: about 0.2 s apart, not all at the end.
    times = [float(l.split("s ")[0]) for l in lines]
    assert times[-1] - times[0] >= 0.6
    assert "stderr: done" in "\n".join(out) and "exit code 0" in out
    assert "again: 0 5 lines" in out


@pytest.mark.parametrize("name,expect", [
    ("run_python_snippet.py", ["hello from CPython", "285"]),
    ("write_run_read.py", ["processed 8 numbers", "{'sum': 31, 'max': 9}", "output.json"]),
])
def test_python_examples(daemon, client, name, expect):
    if not client.run("command -v python3").ok:
        pytest.skip("the rootfs has no python3 (the busybox test image): "
                    "set SANDPOOL_TEST_ROOTFS to the full image to run %s" % name)
    out = run_example(daemon, name)
    for e in expect:
        assert e in out


# -- ownership and session ends


def test_other_uid_sees_not_found(daemon, sb):
    """Another uid is told 404, exactly as for a session that does not
    exist: the client raises NotFoundError, and lists nothing."""
    import shutil
    # Somewhere uid 65534 can read (pytest's tmp_path is root's alone).
    tmp_path = tempfile.mkdtemp(prefix="sandpool-client-")
    os.chmod(tmp_path, 0o755)
    mod = os.path.join(tmp_path, "sandpool.py")
    shutil.copy(sandpool.__file__, mod)
    os.chmod(mod, 0o644)
    code = (
        "import sandpool, sys\n"
        "c = sandpool.Client(sys.argv[1], timeout=10)\n"
        "print(len(c.sessions()))\n"
        "for call in (lambda: c.session(sys.argv[2]), lambda: sandpool.Sandbox.connect(sys.argv[2], client=c),\n"
        "             lambda: c.end_session(sys.argv[2])):\n"
        "    try:\n"
        "        call()\n"
        "        print('no error')\n"
        "    except sandpool.NotFoundError as e:\n"
        "        print(e.status, e.code)\n"
        "with sandpool.Sandbox(client=c) as own:\n"
        "    print(own.run('id -u').stdout.strip(), own.info.owner_uid)\n")
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        sys.executable, "-c", code, daemon.socket, sb.id],
                       cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                       capture_output=True, text=True, timeout=60)
    shutil.rmtree(tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["0", "404 not_found", "404 not_found", "404 not_found",
                                     "1000 65534"]
    assert sb.run("echo mine").stdout == "mine\n"  # untouched


def test_session_lifetime_ends_a_running_command(client):
    with client.sandbox(timeout_s=1) as sb:
        r = sb.run("sleep 10", timeout=8)
        assert r.session_ended and r.signal == 9 and not r.timed_out
        with pytest.raises(sandpool.NotFoundError):
            sb.run("true")
    # Leaving the with block after the session ended by itself is no error.
    assert sb.id not in active_ids(client)


def test_e2b_style_names(sb):
    assert sb.commands.run("echo $((1+1))").stdout == "2\n"
    assert sb.commands.stream(["echo", "s"]).wait().stdout == "s\n"
    assert sb.files.write("/home/sandbox/n.txt", "caf\u00e9") == 5
    assert sb.files.read("/home/sandbox/n.txt") == "caf\u00e9"
    assert sb.files.read_bytes("/home/sandbox/n.txt") == "caf\u00e9".encode()
    assert "n.txt" in [e.name for e in sb.files.list("/home/sandbox")]
    sb.files.remove("/home/sandbox/n.txt")
    with pytest.raises(sandpool.NotFoundError):
        sb.files.read("/home/sandbox/n.txt")


# -- background commands


def test_background_command_resumes_after_a_dropped_connection(sb):
    h = sb.commands.run("for i in $(seq 1 400); do echo $i; usleep 2000; done", background=True)
    assert h.id > 0 and h.info["state"] == "running"
    got = []
    for ev in h.output():
        if ev.type == "stdout":
            got.append(ev.data)
            if len(got) == 3:
                break  # the generator's connection is dropped here
    time.sleep(0.2)
    # a new handle on the same command, as another process would get it
    h2 = sb.commands.connect(h.id)
    h2.offsets = dict(h.offsets)
    res = h2.wait()
    assert res.exit_code == 0
    assert "".join(got) + res.stdout == "".join("%d\n" % i for i in range(1, 401))
    assert [c["id"] for c in sb.commands.list()] == [h.id]


def test_background_stdin_and_kill(sb):
    h = sb.commands.run('while read l; do echo "<$l>"; done', background=True)
    h.send_stdin("a\nb\n")
    h.send_stdin("c\n", eof=True)
    res = h.wait()
    assert res.exit_code == 0 and res.stdout == "<a>\n<b>\n<c>\n"
    k = sb.commands.run(["sleep", "100"], background=True)
    sb.commands.kill(k.id)
    assert k.wait().signal == 9
    with pytest.raises(sandpool.ConflictError):
        k.signal("TERM")


def test_background_on_a_terminal(sb):
    h = sb.commands.run("tty; stty size", background=True, pty=(40, 120))
    res = h.wait()
    assert res.stdout == "/dev/pts/0\r\n40 120\r\n"
