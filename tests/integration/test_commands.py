# SPDX-License-Identifier: MIT
"""Background commands (POST /v1/sessions/{id}/commands) against the real
daemon: they outlive the connection that started them, their output is
read again from a byte offset after a cut, stdin and signals reach them,
their own timeout and the ring's bound hold, another uid sees nothing, and
nothing of theirs is left on the host when the session ends."""
import base64
import json
import os
import threading
import time

import pytest

import apiclient
from conftest import Daemon

IMAGE = os.environ.get("SANDPOOL_IMAGE", "/var/lib/sandpool/images/default")


@pytest.fixture(scope="module")
def d():
    daemon = Daemon(conf={"limits": {"cpu_limit": "100", "command_buffer": "1M"}}).start()
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


def start(d, sid, **body):
    r = d.post("/v1/sessions/%s/commands" % sid, body)
    assert r.status == 201, r
    return r.json


def command(d, sid, cid):
    r = d.get("/v1/sessions/%s/commands/%d" % (sid, cid))
    assert r.status == 200, r
    return r.json


def wait_exit(d, sid, cid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = command(d, sid, cid)
        if c["state"] == "exited":
            return c
        time.sleep(0.02)
    raise AssertionError("command %d still running after %ss: %s" % (cid, timeout, c))


class Reader:
    """GET .../output as a raw NDJSON stream that the test can cut."""

    def __init__(self, d, sid, cid, query):
        self.conn = apiclient.UnixHTTPConnection(d.socket, timeout=60)
        self.conn.request("GET", "/v1/sessions/%s/commands/%d/output?%s" % (sid, cid, query))
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        assert self.resp.getheader("Content-Type") == "application/x-ndjson"

    def events(self):
        while True:
            line = self.resp.readline()
            if not line:
                return
            yield json.loads(line)

    def cut(self):
        # no goodbye: the socket just goes, as a dropped connection does
        self.conn.sock.close()
        self.conn.close()


def read_all(d, sid, cid, query="follow=true"):
    rd = Reader(d, sid, cid, query)
    try:
        return list(rd.events())
    finally:
        rd.cut()


def stdout_of(events):
    return "".join(e["data"] for e in events if e["type"] == "stdout")


def test_seq_read_with_three_cuts_resumed_by_offset_is_exact(d, sid):
    c = start(d, sid, shell="for i in $(seq 1 5000); do echo $i; usleep 1000; done")
    cid = c["id"]
    assert c["state"] == "running"
    got, offset, cuts = [], 0, 0
    while True:
        rd = Reader(d, sid, cid, "follow=true&offset=%d" % offset)
        n, last = 0, None
        for ev in rd.events():
            last = ev
            if ev["type"] == "stdout":
                assert ev["offset"] == offset, (ev["offset"], offset)
                got.append(ev["data"])
                offset += ev["length"]
                n += 1
                # cut mid-stream, after a few events, three times
                if cuts < 3 and n == 5 + cuts * 7:
                    break
            elif ev["type"] == "exit":
                break
            else:
                assert ev["type"] != "dropped", ev
        rd.cut()
        if last and last["type"] == "exit":
            assert last["exit_code"] == 0 and last["stdout_offset"] == offset
            break
        cuts += 1
        # the command runs on while nobody listens
        time.sleep(0.2)
        assert command(d, sid, cid)["state"] in ("running", "exited")
    assert cuts == 3, "the command ended before the third cut: make it slower"
    assert "".join(got) == "".join("%d\n" % i for i in range(1, 5001))


def test_several_readers_at_once_get_the_same_bytes(d, sid):
    c = start(d, sid, shell="for i in $(seq 1 300); do echo line-$i; echo err-$i >&2; usleep 2000; done")
    results = [None] * 3

    def follow(i):
        results[i] = read_all(d, sid, c["id"])

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    want = "".join("line-%d\n" % i for i in range(1, 301))
    for evs in results:
        assert evs and evs[-1]["type"] == "exit" and evs[-1]["exit_code"] == 0
        assert stdout_of(evs) == want
        assert "".join(e["data"] for e in evs if e["type"] == "stderr") == want.replace("line", "err")
    # and once more after the end, without follow, from the middle
    evs = read_all(d, sid, c["id"], "offset=%d" % len(want[:100]))
    assert stdout_of(evs) == want[100:]


def test_listing_shows_pid_state_and_exit(d, sid):
    a = start(d, sid, argv=["sleep", "100"])
    b = start(d, sid, shell="exit 7")
    wait_exit(d, sid, b["id"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        cmds = {c["id"]: c for c in d.get("/v1/sessions/%s/commands" % sid).json["commands"]}
        if cmds[a["id"]]["pid"] > 0:
            break
        time.sleep(0.02)
    ra, rb = cmds[a["id"]], cmds[b["id"]]
    assert ra["argv"] == ["sleep", "100"] and ra["state"] == "running" and ra["pid"] > 1
    assert ra["started_at"].endswith("Z")
    assert rb["state"] == "exited" and rb["exit_code"] == 7 and rb["signal"] is None
    # the pid is the one inside the sandbox: ps there agrees
    r = d.exec(sid, {"shell": "cat /proc/%d/cmdline | tr '\\0' ' '" % ra["pid"]})
    assert r.json["stdout"] == "sleep 100 "


def test_stdin_reaches_a_reader_and_eof_ends_it(d, sid):
    c = start(d, sid, shell='while read l; do echo "got $l"; done; echo bye')
    path = "/v1/sessions/%s/commands/%d/stdin" % (sid, c["id"])
    assert d.post(path, "hello\n").status == 204
    assert d.post(path, "wor").status == 204
    assert d.post(path, "ld\n").status == 204
    deadline = time.monotonic() + 10
    while "got world" not in stdout_of(read_all(d, sid, c["id"], "")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert command(d, sid, c["id"])["state"] == "running"
    assert d.post(path + "?eof=true", "last\n").status == 204
    end = wait_exit(d, sid, c["id"])
    assert end["exit_code"] == 0
    assert stdout_of(read_all(d, sid, c["id"])) == "got hello\ngot world\ngot last\nbye\n"
    # stdin is closed now, and the command is gone
    assert d.post(path, "more").status == 409


@pytest.mark.parametrize("sig,num", [("INT", 2), ("TERM", 15), ("KILL", 9)])
def test_signal_is_reported_in_the_exit(d, sid, sig, num):
    c = start(d, sid, shell="sleep 100; echo not reached")
    # sh runs sleep in the foreground: the whole group must get it
    time.sleep(0.1)
    r = d.post("/v1/sessions/%s/commands/%d/signal" % (sid, c["id"]), {"signal": sig})
    assert r.status == 204, r
    end = wait_exit(d, sid, c["id"], timeout=5)
    assert end["signal"] == num and end["exit_code"] is None, end
    assert stdout_of(read_all(d, sid, c["id"])) == ""
    r = d.post("/v1/sessions/%s/commands/%d/signal" % (sid, c["id"]), {"signal": sig})
    assert r.status == 409


def test_a_trapped_signal_reports_the_commands_own_exit(d, sid):
    c = start(d, sid, shell='trap "echo caught; exit 3" INT; echo ready; while true; do usleep 20000; done')
    deadline = time.monotonic() + 5
    while stdout_of(read_all(d, sid, c["id"], "")) != "ready\n":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert d.post("/v1/sessions/%s/commands/%d/signal" % (sid, c["id"]), {"signal": "SIGINT"}).status == 204
    end = wait_exit(d, sid, c["id"], timeout=5)
    assert end["exit_code"] == 3 and end["signal"] is None
    assert stdout_of(read_all(d, sid, c["id"])) == "ready\ncaught\n"


def test_bad_signal_and_unknown_command(d, sid):
    c = start(d, sid, argv=["sleep", "100"])
    base = "/v1/sessions/%s/commands" % sid
    assert d.post("%s/%d/signal" % (base, c["id"]), {"signal": "NOPE"}).status == 400
    assert d.post("%s/%d/signal" % (base, c["id"]), {"signal": 31}).status == 400
    assert d.get("%s/999999/output" % base).status == 404
    assert d.get("%s/abc/output" % base).status == 404
    assert d.get("%s/%d/output?offset=99999999" % (base, c["id"])).status == 400
    assert d.post(base, {"argv": ["true"], "background": False}).status == 400
    assert d.post(base, {"argv": ["true"], "stream": True}).status == 400
    assert d.post("/v1/sessions/%s/exec" % sid, {"argv": ["true"], "background": True}).status == 400


def test_ring_bound_and_dropped_event(d, sid):
    ring = 65536
    c = start(d, sid, shell="seq 1 100000", max_output_bytes=ring)
    end = wait_exit(d, sid, c["id"])
    want = "".join("%d\n" % i for i in range(1, 100001))
    assert end["stdout"]["bytes"] == len(want)
    assert end["stdout"]["first_offset"] == len(want) - ring
    evs = read_all(d, sid, c["id"])
    assert evs[0] == {"type": "dropped", "stream": "stdout", "offset": 0, "bytes": len(want) - ring}
    assert stdout_of(evs) == want[-ring:]
    assert evs[1]["offset"] == len(want) - ring
    # a reader that asks from inside the ring gets no dropped event
    evs = read_all(d, sid, c["id"], "offset=%d" % (len(want) - 100))
    assert evs[0]["type"] == "stdout" and stdout_of(evs) == want[-100:]
    # and one that asks from before it is told how much it missed
    evs = read_all(d, sid, c["id"], "offset=1000")
    assert evs[0]["bytes"] == len(want) - ring - 1000


def test_base64_output_is_byte_exact(d, sid):
    c = start(d, sid, shell="printf 'a\\377b\\303'; printf '\\251z'")
    wait_exit(d, sid, c["id"])
    evs = read_all(d, sid, c["id"], "encoding=base64")
    raw = b"".join(base64.b64decode(e["data"]) for e in evs if e["type"] == "stdout")
    assert raw == b"a\xffb\xc3\xa9z"
    # as text: the invalid byte is replaced, the split character is whole
    assert stdout_of(read_all(d, sid, c["id"])) == "a\ufffdb\u00e9z"
    # a character across the reader's 32 KiB chunk stays whole, offsets exact
    c = start(d, sid, shell="head -c 32767 /dev/zero | tr '\\0' a; printf '\\303\\251'")
    wait_exit(d, sid, c["id"])
    evs = read_all(d, sid, c["id"])
    assert stdout_of(evs) == "a" * 32767 + "\u00e9"
    assert [e["length"] for e in evs if e["type"] == "stdout"] == [32767, 2]


def test_own_timeout_kills_the_group(d, sid):
    t0 = time.monotonic()
    c = start(d, sid, shell="sleep 100 & sleep 100", timeout_ms=300)
    end = wait_exit(d, sid, c["id"], timeout=10)
    assert end["timed_out"] is True and end["signal"] == 9
    assert time.monotonic() - t0 < 5
    # the whole group went: nothing sleeps in the sandbox any more
    r = d.exec(sid, {"shell": "ps -o comm | grep -c sleep"})
    assert r.json["stdout"].strip() == "0", r.json


def test_background_has_no_timeout_by_default(d):
    # command_timeout bounds foreground commands only
    with_short = Daemon(conf={"limits": {"command_timeout": "300ms"}}).start()
    try:
        s = with_short.session()
        c = start(with_short, s, argv=["sleep", "1"])
        time.sleep(0.6)
        assert command(with_short, s, c["id"])["state"] == "running"
        end = wait_exit(with_short, s, c["id"])
        assert end["exit_code"] == 0 and not end["timed_out"]
        r = with_short.exec(s, {"argv": ["sleep", "1"]})
        assert r.json["timed_out"] is True
        with_short.stop()
    finally:
        with_short.cleanup()


def test_another_uid_gets_404_for_everything(d, sid):
    os.chmod(d.dir, 0o755)
    c = start(d, sid, shell="echo secret; sleep 100")
    base = "/v1/sessions/%s/commands" % sid
    for method, path, body in [("GET", base, None), ("GET", "%s/%d" % (base, c["id"]), None),
                               ("GET", "%s/%d/output" % (base, c["id"]), None),
                               ("POST", "%s/%d/stdin" % (base, c["id"]), "x"),
                               ("POST", "%s/%d/signal" % (base, c["id"]), '{"signal":"KILL"}'),
                               ("POST", base, '{"argv":["true"]}')]:
        r = d.as_nobody(method, path, body)
        assert r["status"] == 404, (method, path, r)
        assert "secret" not in json.dumps(r)
    assert command(d, sid, c["id"])["state"] == "running"


def test_eviction_keeps_the_newest_exited(d):
    small = Daemon(conf={"limits": {"max_commands": "3"}}).start()
    try:
        s = small.session()
        ids = []
        for i in range(3):
            ids.append(start(small, s, shell="echo %d" % i)["id"])
            wait_exit(small, s, ids[-1])
        running = start(small, s, argv=["sleep", "100"])["id"]
        listed = [c["id"] for c in small.get("/v1/sessions/%s/commands" % s).json["commands"]]
        assert listed == ids[1:] + [running]
        assert small.get("/v1/sessions/%s/commands/%d/output" % (s, ids[0])).status == 404
        assert stdout_of(read_all(small, s, ids[1])) == "1\n"
        # three running: no place for a fourth
        start(small, s, argv=["sleep", "100"])
        start(small, s, argv=["sleep", "100"])
        r = small.post("/v1/sessions/%s/commands" % s, {"argv": ["true"]})
        assert r.status == 409, r
        small.stop()
    finally:
        small.cleanup()


def test_a_follower_is_told_when_the_session_ends(d):
    s = d.session()
    c = start(d, s, shell="echo up; sleep 100")
    rd = Reader(d, s, c["id"], "follow=true")
    evs = rd.events()
    assert next(evs)["data"] == "up\n"
    assert d.delete("/v1/sessions/%s" % s).status == 204
    rest = list(evs)
    rd.cut()
    assert rest[0]["type"] == "exit" and rest[0]["signal"] == 9 and rest[0]["end_reason"]
    assert rest[-1]["type"] in ("exit", "gone")


def test_hundred_background_commands_within_the_pids_limit(d, sid):
    for i in range(100):
        start(d, sid, argv=["sleep", "100"])
    deadline = time.monotonic() + 20
    while True:
        cmds = d.get("/v1/sessions/%s/commands" % sid).json["commands"]
        if all(c["pid"] > 0 for c in cmds) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sum(1 for c in cmds if c["state"] == "running" and c["pid"] > 0) == 100
    info = d.get("/v1/sessions/%s" % sid).json
    limit = info["limits"]["pids"]
    assert 100 <= info["usage"]["pids_current"] <= limit
    # past the pids limit the kernel says no; the daemon answers and lives
    bomb = start(d, sid, shell="i=0; while [ $i -lt %d ]; do sleep 100 & i=$((i+1)); done; wait" % limit)
    time.sleep(1)
    info = d.get("/v1/sessions/%s" % sid).json
    assert info["usage"]["pids_current"] <= limit
    assert d.get("/v1/health").status == 200
    assert command(d, sid, bomb["id"])["state"] in ("running", "exited")


# ---- with the real image: a server that outlives its request -----------------

@pytest.fixture(scope="module")
def img():
    if not os.path.isfile(os.path.join(IMAGE, "etc", "sandpool-image.json")):
        pytest.skip("no image at %s (rootfs/build-image --install)" % IMAGE)
    daemon = Daemon(conf={"images": {"rootfs": IMAGE}, "limits": {"cpu_limit": "100"}}).start()
    try:
        yield daemon
        daemon.stop()
    finally:
        daemon.cleanup()


def host_pids_with(marker):
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(p))
        except OSError:
            pass
    return found


def test_http_server_outlives_its_request_and_the_session_takes_it(img):
    s = img.session()
    marker = "/tmp/srv-%d-%d" % (os.getpid(), time.monotonic_ns())
    img.exec(s, {"argv": ["mkdir", "-p", marker]})
    img.exec(s, {"shell": "echo hello-from-the-server > %s/index.html" % marker})
    # the start request's connection closes as soon as it is answered
    c = start(img, s, argv=["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1", "--directory", marker])
    fetch = "curl -sS --retry 50 --retry-delay 0 --retry-connrefused http://127.0.0.1:8000/index.html"
    r = img.exec(s, {"shell": fetch, "timeout_ms": 20000})
    assert r.json["stdout"] == "hello-from-the-server\n", r.json
    py = ("import urllib.request;"
          "print(urllib.request.urlopen('http://127.0.0.1:8000/index.html').read().decode(), end='')")
    r = img.exec(s, {"argv": ["python3", "-c", py]})
    assert r.json["stdout"] == "hello-from-the-server\n", r.json
    assert command(img, s, c["id"])["state"] == "running"
    pids = host_pids_with(marker)
    assert len(pids) == 1, pids
    # its access log is in its stderr
    assert "GET /index.html" in "".join(e["data"] for e in read_all(img, s, c["id"], "") if e["type"] == "stderr")
    assert img.delete("/v1/sessions/%s" % s).status == 204
    deadline = time.monotonic() + 5
    while host_pids_with(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host_pids_with(marker) == []
    # and not even as a zombie: PID 1's exit reaps its namespace
    while os.path.exists("/proc/%d" % pids[0]) and time.monotonic() < deadline + 5:
        time.sleep(0.02)
    assert not os.path.exists("/proc/%d" % pids[0])


def metric(d, name):
    for line in d.get("/metrics").data.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("no metric %s" % name)


def test_health_metrics_and_session_count_running_background_commands(d, sid):
    before = d.get("/v1/health").json["commands"]["background_running"]
    total = metric(d, "sandpool_background_commands_total")
    a = start(d, sid, argv=["sleep", "100"])
    b = start(d, sid, argv=["true"])
    wait_exit(d, sid, b["id"])
    assert d.get("/v1/health").json["commands"]["background_running"] == before + 1
    assert metric(d, "sandpool_background_commands_running") == before + 1
    assert metric(d, "sandpool_background_commands_total") == total + 2
    assert d.get("/v1/sessions/%s" % sid).json["background_commands"] == {"running": 1, "kept": 2}
    d.post("/v1/sessions/%s/commands/%d/signal" % (sid, a["id"]), {"signal": "KILL"})
    wait_exit(d, sid, a["id"])
    assert metric(d, "sandpool_background_commands_running") == before


def test_a_reader_with_backpressure_loses_nothing(d, sid):
    # held at half a ring behind: one more read (64 KiB) and a full pipe
    # (64 KiB) at the exit stay within a ring of 256 KiB
    ring = 262144
    n = 600000
    want = "".join("%d\n" % i for i in range(1, n + 1))
    c = start(d, sid, shell="sleep 0.3; seq 1 %d" % n, max_output_bytes=ring)
    rd = Reader(d, sid, c["id"], "follow=true&backpressure=true")
    got, types = [], set()
    for ev in rd.events():
        types.add(ev["type"])
        if ev["type"] == "stdout":
            got.append(ev["data"])
            if len(got) == 1:
                time.sleep(0.5)  # a slow reader: seq is done long before
        if ev["type"] == "exit":
            break
    rd.cut()
    assert "dropped" not in types
    assert "".join(got) == want
    # without it the same slow reader loses bytes, and is told how many
    c = start(d, sid, shell="sleep 0.3; seq 1 %d" % n, max_output_bytes=ring)
    rd = Reader(d, sid, c["id"], "follow=true")
    dropped, got = 0, 0
    for ev in rd.events():
        if ev["type"] == "stdout":
            if got == 0:
                time.sleep(0.5)
            got += ev["length"]
        elif ev["type"] == "dropped":
            dropped += ev["bytes"]
        elif ev["type"] == "exit":
            break
    rd.cut()
    assert dropped > 0 and got + dropped == len(want)


def test_the_sessions_rings_share_a_memory_budget(d):
    small = Daemon(conf={"limits": {"command_buffer": "1M", "command_buffer_total": "256K"}}).start()
    try:
        s = small.session()
        want = "".join("%d\n" % i for i in range(1, 150001))
        # three at once: they share the budget (an exited one would give
        # its memory to the next, see below)
        ids = [start(small, s, shell="sleep 0.3; seq 1 150000")["id"] for _ in range(3)]
        for cid in ids:
            wait_exit(small, s, cid)
        held = 0
        for cid in ids:
            info = command(small, s, cid)["stdout"]
            assert info["bytes"] == len(want)
            held += info["bytes"] - info["first_offset"]
            # what each one holds is exactly the end of its output
            evs = read_all(small, s, cid)
            assert evs[0]["type"] == "dropped"
            assert stdout_of(evs) == want[info["first_offset"]:]
        # the budget, and each ring's first 16 KiB (and stderr's), at most
        assert 256 * 1024 <= held <= 256 * 1024 + 3 * 2 * 16384, held
        buffers = sorted(command(small, s, cid)["stdout"]["buffer"] for cid in ids)
        # as they grew side by side (which took how much depends on timing)
        assert sum(buffers) <= 256 * 1024 + 3 * 16384 and buffers[-1] < 1024 * 1024, buffers
        # a new command takes the memory of the oldest exited ones
        start(small, s, argv=["true"])
        listed = [c["id"] for c in small.get("/v1/sessions/%s/commands" % s).json["commands"]]
        assert ids[0] not in listed
        small.stop()
    finally:
        small.cleanup()
