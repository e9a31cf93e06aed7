# SPDX-License-Identifier: MIT
"""sandpoold as a process: start, configuration, capacity, bad clients,
reload, and the drain on SIGTERM that must leave nothing behind."""

import json
import os
import resource
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import SANDPOOLD, Daemon, require_daemon_prerequisites


def raw_connect(d):
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.socket)
    return s


def settle(d, baseline_fds, timeout=3.0):
    """Wait until the daemon's fd count is back to baseline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = d.fd_count()
        if n <= baseline_fds:
            return n
        time.sleep(0.05)
    return d.fd_count()


def health_ms(d, n=20):
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert d.get("/v1/health").status == 200
        t.append((time.perf_counter() - t0) * 1000)
    t.sort()
    return t[len(t) // 2]


# --- configuration ------------------------------------------------------------

def test_print_config_precedence(tmp_path):
    require_daemon_prerequisites()
    conf = tmp_path / "c.conf"
    conf.write_text("[pool]\npool_size = 7\nmax_pool_size = 50\n[limits]\ncpu_limit = 30\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDPOOL_")}
    env["SANDPOOL_POOL_SIZE"] = "12"
    out = subprocess.run([SANDPOOLD, "--config", str(conf), "--print-config"], env=env,
                         capture_output=True, text=True, check=True).stdout
    lines = {l.split("=")[0].strip(): l for l in out.splitlines() if "=" in l}
    assert lines["pool_size"].startswith("pool_size = 12") and "SANDPOOL_POOL_SIZE" in lines["pool_size"]
    assert lines["max_pool_size"].startswith("max_pool_size = 50") and "c.conf:3" in lines["max_pool_size"]
    assert lines["cpu_limit"].startswith("cpu_limit = 30") and "c.conf:5" in lines["cpu_limit"]
    assert "default" in lines["min_pool_size"]


def test_config_error_names_file_line_key(tmp_path):
    require_daemon_prerequisites()
    conf = tmp_path / "bad.conf"
    conf.write_text("[pool]\n\npool_size = ten\n")
    p = subprocess.run([SANDPOOLD, "--config", str(conf)], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0
    assert "%s:3" % conf in p.stderr and "pool_size" in p.stderr
    p = subprocess.run([SANDPOOLD, "--config", str(tmp_path / "missing.conf")], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode != 0 and "missing.conf" in p.stderr
    env = dict(os.environ, SANDPOOL_MEMORY_LIMIT="lots")
    p = subprocess.run([SANDPOOLD, "--config", str(tmp_path / "bad.conf"), "--print-config"],
                       capture_output=True, text=True, timeout=10, env=env)
    assert p.returncode != 0


def test_environment_overrides_file(make_daemon):
    d = make_daemon(conf={"limits": {"command_timeout": "20s"}}, env={"SANDPOOL_COMMAND_TIMEOUT": "7s"})
    assert d.get("/v1/health").json["limits"]["command_timeout_ms"] == 7000


def test_sighup_reloads_limits(make_daemon):
    d = make_daemon()
    with open(d.conf_path, "a") as f:
        f.write("[sessions]\nsession_timeout = 2min\n")
    with open(d.conf_path) as f:
        text = f.read()
    with open(d.conf_path, "w") as f:
        f.write(text.replace("max_upload = 1M", "max_upload = 1M\nmemory_limit = 128M"))
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 3
    while d.get("/v1/health").json["limits"]["memory_limit"] != 128 << 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.get("/v1/health").json["limits"]["memory_limit"] == 128 << 20
    s = d.post("/v1/sessions").json
    assert s["limits"]["memory_mb"] == 128 and s["timeout_s"] == 120
    # a broken file is refused and the running configuration kept
    with open(d.conf_path, "a") as f:
        f.write("[pool]\npool_size = many\n")
    d.proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert d.get("/v1/health").json["limits"]["memory_limit"] == 128 << 20
    assert "Reload failed" in d.read_log()


# --- the socket ------------------------------------------------------------------

def test_stale_socket_is_replaced_live_one_is_not(make_daemon):
    d = make_daemon(start=False)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(d.socket)
    stale.close()  # the file stays: a crashed daemon's socket
    assert os.path.exists(d.socket)
    d.start()
    assert d.get("/v1/health").status == 200
    assert oct(os.stat(d.socket).st_mode & 0o777) == "0o666"
    # a second daemon on the same socket refuses to start
    p = subprocess.run([SANDPOOLD, "--config", d.conf_path, "--cgroup-subdir", d.subdir + "-b"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode != 0 and "refusing" in p.stderr
    assert d.get("/v1/health").status == 200


def test_sd_notify(make_daemon):
    d = make_daemon(start=False)
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = os.path.join(d.dir, "notify.sock")
    ns.bind(path)
    ns.settimeout(10)
    d.extra_env["NOTIFY_SOCKET"] = path
    d.extra_env["WATCHDOG_USEC"] = "400000"
    d.start()
    msgs = ""
    deadline = time.monotonic() + 5
    while not ("READY=1" in msgs and msgs.count("WATCHDOG=1") >= 2) and time.monotonic() < deadline:
        msgs += ns.recv(4096).decode()
    assert "READY=1" in msgs
    assert msgs.count("WATCHDOG=1") >= 2, msgs  # the loop pings the watchdog
    d.proc.send_signal(signal.SIGTERM)
    got = ""
    while "STOPPING=1" not in got:
        got += ns.recv(4096).decode()
    assert d.proc.wait(5) == 0


# --- capacity ------------------------------------------------------------------

def test_no_capacity_429(make_daemon):
    d = make_daemon(conf={"pool": {"max_pool_size": "2", "pool_size": "0", "min_pool_size": "0"}})
    a, b = d.session(), d.session()
    t0 = time.monotonic()
    r = d.post("/v1/sessions")
    waited = time.monotonic() - t0
    assert r.status == 429 and r.json["error"]["code"] == "no_capacity"
    assert r.headers["retry-after"] == "1"
    assert 1.5 < waited < 4, waited  # it waited for a slot, boundedly
    assert d.post("/v1/run", {"argv": ["true"]}).status == 429
    assert d.delete("/v1/sessions/" + a).status == 204
    c = d.session()
    assert d.get("/v1/health").json["pool"]["total"] == 2
    for s in (b, c):
        d.delete("/v1/sessions/" + s)


def test_waiting_request_gets_the_freed_slot(make_daemon):
    d = make_daemon(conf={"pool": {"max_pool_size": "1", "pool_size": "0", "min_pool_size": "0"}})
    a = d.session()
    got = {}

    def second():
        t0 = time.monotonic()
        got["r"] = d.post("/v1/sessions")
        got["t"] = time.monotonic() - t0

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.5)
    assert d.delete("/v1/sessions/" + a).status == 204
    t.join(5)
    assert got["r"].status == 201, got["r"]
    assert 0.4 < got["t"] < 1.9


def test_pool_hands_out_warm_sandboxes(make_daemon):
    d = make_daemon(conf={"pool": {"pool_size": "3", "min_pool_size": "1"}})
    deadline = time.monotonic() + 10
    while d.get("/v1/health").json["pool"]["available"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    h = d.get("/v1/health").json["pool"]
    assert h["available"] == 3 and h["total"] == 3
    t0 = time.monotonic()
    sid = d.session()
    took = time.monotonic() - t0
    assert took < 0.05, took  # a warm one: no sandbox setup on the request's path
    assert "from the pool" in d.read_log()
    r = d.exec(sid, {"argv": ["echo", "warm"]})
    assert r.json["stdout"] == "warm\n"
    # replaced at once
    deadline = time.monotonic() + 10
    while d.get("/v1/health").json["pool"]["available"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.get("/v1/health").json["pool"]["available"] == 3
    # a session asking for less memory gets a warm one with its limits rewritten
    s2 = d.post("/v1/sessions", {"memory_mb": 64}).json
    assert s2["limits"]["memory_mb"] == 64
    r = d.exec(s2["id"], {"shell": "cat /sys/fs/cgroup/memory.max 2>/dev/null || echo n/a"})
    assert r.status == 200
    text = d.get("/metrics").data.decode()
    assert "sandpool_pool_hits_total" in text


def test_max_sessions_per_uid(make_daemon):
    d = make_daemon(conf={"sessions": {"max_sessions_per_uid": "1"}})
    d.session()
    r = d.post("/v1/sessions")
    assert r.status == 429 and "uid 0" in r.json["error"]["message"]
    # another uid has its own quota
    assert d.as_nobody("POST", "/v1/sessions", {})["status"] == 201


def test_bad_input_costs_nothing(make_daemon):
    d = make_daemon()
    sid = d.session()
    bad = [
        ("POST", "/v1/sessions/%s/exec" % sid, b"{"),
        ("POST", "/v1/sessions/%s/exec" % sid, b'{"argv": []}'),
        ("POST", "/v1/sessions/%s/exec" % sid, b'{"argv": ["x"], "timeout_ms": -1}'),
        ("POST", "/v1/sessions/%s/exec" % sid, b'{"argv": [null]}'),
        ("POST", "/v1/sessions/%s/exec" % ("f" * 32), b'{"argv": ["true"]}'),
        ("GET", "/v1/sessions/%s/files?path=/a%%00b" % sid, None),
        ("GET", "/v1/sessions/%s/files?path=/../../etc/shadow" % sid, None),
        ("PUT", "/v1/sessions/%s/files?path=/etc/passwd" % sid, b"x"),
        ("POST", "/v1/sessions", b'{"timeout_s": "x"}'),
        ("DELETE", "/v1/health", None),
        ("GET", "/v1/" + "x" * 3000, None),
    ]
    for m, p, b in bad:  # warm up: first-use allocations are not leaks
        d.request(m, p, b)
    health_ms(d, 20)
    d.pool_at_rest()
    fds, rss, ms = d.fd_count(), d.rss_kib(), health_ms(d)
    for _ in range(100):
        for m, p, b in bad:
            r = d.request(m, p, b)
            assert 400 <= r.status < 500, (m, p, r)
    assert settle(d, fds) <= fds
    if not d.sanitized():
        assert d.rss_kib() < rss + 2048, (rss, d.rss_kib())
    assert health_ms(d) < max(5 * ms, 10)
    assert d.get("/v1/health").json["active_sessions"] == 1


# --- bad clients cost nothing --------------------------------------------------

def test_1000_idle_connections(make_daemon):
    d = make_daemon()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    health_ms(d, 5)
    base_ms = health_ms(d)
    d.pool_at_rest()
    time.sleep(0.2)  # let the daemon close the last health check's connection
    base_fds, base_rss = d.fd_count(), d.rss_kib()
    socks = [raw_connect(d) for _ in range(1000)]
    half = [s for i, s in enumerate(socks) if i % 2]
    for s in half:
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost")  # incomplete headers
    deadline = time.monotonic() + 3
    while d.fd_count() < base_fds + 1000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.fd_count() >= base_fds + 1000  # every one accepted and held
    loaded_ms = health_ms(d)
    assert loaded_ms < max(20 * base_ms, 50), (base_ms, loaded_ms)
    for s in socks:
        s.close()
    assert settle(d, base_fds) <= base_fds
    if not d.sanitized():
        assert d.rss_kib() < base_rss + 8192
    assert health_ms(d) < max(5 * base_ms, 20)
    assert d.get("/v1/health").status == 200


def test_clients_vanishing_mid_request(make_daemon):
    d = make_daemon()
    sid = d.session()
    health_ms(d, 5)
    d.pool_at_rest()
    base_fds = d.fd_count()
    partials = [
        b"",
        b"GET /v1/hea",
        b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"lab",
        ("PUT /v1/sessions/%s/files?path=/tmp/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc"
         % sid).encode(),
        ("POST /v1/sessions/%s/exec HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"arg"
         % sid).encode(),
    ]
    for _ in range(20):
        for p in partials:
            s = raw_connect(d)
            if p:
                s.sendall(p)
            s.close()
    assert settle(d, base_fds) <= base_fds
    assert d.get("/v1/health").json["active_sessions"] == 1
    names = [e["name"] for e in d.get("/v1/sessions/%s/files?path=/tmp" % sid).json["entries"]]
    assert not [n for n in names if n.startswith(".sandpool-upload")], names
    assert d.delete("/v1/sessions/" + sid).status == 204


def test_slow_client_is_cut_off(make_daemon):
    d = make_daemon()
    s = raw_connect(d)
    s.settimeout(20)
    t0 = time.monotonic()
    closed = False
    for ch in b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 30:
        try:
            s.send(bytes([ch]))
        except OSError:
            closed = True
            break
        time.sleep(0.5)
        if time.monotonic() - t0 > 13:
            break
    if not closed:
        try:
            closed = s.recv(100) == b""
        except OSError:
            closed = True
    assert closed, "a client trickling its headers was not cut off"
    assert 9 < time.monotonic() - t0 < 14
    assert d.get("/v1/health").status == 200


# --- drain ---------------------------------------------------------------------

def test_sigterm_drains_80_sandboxes(make_daemon):
    d = make_daemon()
    ids, errors = [], []

    def create(n):
        for _ in range(n):
            try:
                r = d.post("/v1/sessions")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                continue
            (ids if r.status == 201 else errors).append(r)

    threads = [threading.Thread(target=create, args=(10,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(ids) == 80
    assert d.get("/v1/health").json["pool"]["total"] == 80
    sids = [r.json["id"] for r in ids]

    # a command running in a session, a client waiting for it
    result = {}

    def waiting_exec():
        try:
            result["r"] = d.exec(sids[0], {"shell": "sleep 60"}, timeout=10)
        except Exception as e:  # the connection may close: that is an answer too
            result["e"] = e

    t = threading.Thread(target=waiting_exec)
    t.start()
    time.sleep(0.3)
    # a client half way through a request when SIGTERM arrives
    late = raw_connect(d)
    late.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
    time.sleep(0.1)

    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    late.sendall(b"{}")
    late.settimeout(5)
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            chunk = late.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    rc = d.proc.wait(timeout=5)
    elapsed = time.monotonic() - t0
    t.join(10)
    assert rc == 0, d.read_log()[-2000:]
    assert elapsed < 5
    assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
    if "r" in result:
        assert result["r"].status in (200, 503)
        if result["r"].status == 200:
            assert result["r"].json["signal"] == 9
    d.assert_nothing_left()
    log = d.read_log()
    assert log.count("ended (shutdown)") == 80


# --- administrators ------------------------------------------------------------

def test_admin_group_by_supplementary_group(make_daemon):
    import grp
    g = grp.getgrnam("users")
    d = make_daemon(conf={"server": {"admin_group": "users"}})
    root_sid = d.session()
    # nobody without the group: sees nothing of root's
    r = d.as_nobody("GET", "/v1/sessions/" + root_sid)
    assert r["status"] == 404
    # nobody with the admin group as a supplementary group: admin
    r = d.as_nobody("GET", "/v1/sessions/" + root_sid, groups=[g.gr_gid])
    assert r["status"] == 200 and r["body"]["owner_uid"] == 0
    r = d.as_nobody("GET", "/v1/sessions", groups=[g.gr_gid])
    assert root_sid in [s["id"] for s in r["body"]["sessions"]]
    r = d.as_nobody("DELETE", "/v1/sessions/" + root_sid, groups=[g.gr_gid])
    assert r["status"] == 204
    assert d.get("/v1/sessions/" + root_sid).status == 404


def test_admin_group_by_primary_group(make_daemon):
    d = make_daemon(conf={"server": {"admin_group": "nogroup"}})
    root_sid = d.session()
    r = d.as_nobody("GET", "/v1/sessions/" + root_sid)  # gid 65534 = nogroup
    assert r["status"] == 200


def test_missing_image_is_a_clear_startup_error(make_daemon, tmp_path):
    d = make_daemon(conf={"images": {"rootfs": str(tmp_path / "no-image")}}, start=False)
    with pytest.raises(RuntimeError) as e:
        d.start()
    assert "no-image" in str(e.value) and "rootfs/build-image --install" in str(e.value)
    empty = tmp_path / "empty-image"
    empty.mkdir()
    d = make_daemon(conf={"images": {"rootfs": str(empty)}}, start=False)
    with pytest.raises(RuntimeError) as e:
        d.start()
    assert "incomplete" in str(e.value)
