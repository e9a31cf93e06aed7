# SPDX-License-Identifier: MIT
"""Resource attacks against the real daemon, each with the daemon's
/v1/health latency measured from another thread while the attack runs: the
supervisor must stay fast and keep serving whatever a sandbox does. The
figures are printed (run with -s to see them) and bounded by assertions.

The attacks: fork bomb, memory bomb, disk fill, a 1 GiB output flood, 100%
CPU in every sandbox of a full pool, thousands of files, a command that
ignores SIGTERM, and one that double-forks out of its process group."""
import threading
import time

import pytest

# A loaded 2-core CI machine: health is a few hundred microseconds when idle.
# The bounds leave room for the scheduler, never for a blocked loop.
P50_MAX_MS = 25.0
MAX_MS = 1000.0


class HealthProbe:
    """GET /v1/health every 10 ms from a thread, recording latencies."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.samples = []
        self.errors = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                r = self.daemon.get("/v1/health", timeout=10)
                if r.status != 200:
                    self.errors.append(r.status)
            except OSError as e:
                self.errors.append(repr(e))
            self.samples.append((time.monotonic() - t0) * 1000.0)
            self._stop.wait(0.01)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(timeout=15)

    def check(self, what):
        s = sorted(self.samples)
        assert s, f"{what}: no health sample at all"
        p50, p99, mx = s[len(s) // 2], s[min(len(s) - 1, int(len(s) * 0.99))], s[-1]
        print(f"\n{what}: health n={len(s)} p50={p50:.2f}ms p99={p99:.2f}ms max={mx:.2f}ms errors={len(self.errors)}")
        assert not self.errors, (what, self.errors[:5])
        # A median of a handful of samples is one sample: bound it only when
        # the attack lasted long enough to say something.
        assert (len(s) < 10 or p50 <= P50_MAX_MS) and mx <= MAX_MS, (what, p50, p99, mx)
        return p50, p99, mx


@pytest.fixture(scope="module")
def daemon(request):
    from conftest import Daemon
    d = Daemon(conf={
        "pool": {"pool_size": "2", "min_pool_size": "1", "max_pool_size": "4"},
        "limits": {"cpu_limit": "25", "memory_limit": "64M", "pids_limit": "64", "disk_limit": "32M",
                   "max_output": "1M", "command_timeout": "20s"},
    }).start()
    try:
        yield d
        d.stop()
    finally:
        d.cleanup()


def exec_(daemon, sid, argv, timeout_ms=10000, **extra):
    body = {"argv": argv, "timeout_ms": timeout_ms}
    body.update(extra)
    r = daemon.exec(sid, body, timeout=120)
    assert r.status == 200, r
    return r.json


def still_serves(daemon, sid=None):
    if sid is None:
        sid = daemon.session()
    out = exec_(daemon, sid, ["/bin/echo", "alive"])
    assert out["stdout"] == "alive\n", out
    assert daemon.delete(f"/v1/sessions/{sid}").status == 204


def test_fork_bomb(daemon):
    sid = daemon.session()
    with HealthProbe(daemon) as hp:
        out = exec_(daemon, sid, ["/usr/bin/probe", "forkbomb"], timeout_ms=3000)
    hp.check("fork bomb")
    assert out["timed_out"] is True, out
    # the bomb is gone with its process group: the session works again
    still_serves(daemon, sid)


def test_memory_bomb(daemon):
    sid = daemon.session()
    with HealthProbe(daemon) as hp:
        out = exec_(daemon, sid, ["/usr/bin/probe", "alloc", "1024"])
    hp.check("memory bomb")
    assert out["oom_killed"] is True and out["signal"] == 9, out
    assert "alloc done" not in out["stdout"]
    still_serves(daemon, sid)


def test_disk_fill(daemon):
    sid = daemon.session()
    with HealthProbe(daemon) as hp:
        out = exec_(daemon, sid, ["/usr/bin/probe", "write", "/tmp/fill", "256"], timeout_ms=15000)
    hp.check("disk fill")
    assert "write /tmp/fill -1 ENOSPC" in out["stdout"], out
    # an upload into the full sandbox is refused cleanly, not a 500
    r = daemon.request("PUT", f"/v1/sessions/{sid}/files?path=/tmp/more", body=b"x" * 65536)
    assert r.status == 413, r
    still_serves(daemon, sid)


def test_output_flood_of_one_gib(daemon):
    sid = daemon.session()
    rss0 = daemon.rss_kib()
    t0 = time.monotonic()
    with HealthProbe(daemon) as hp:
        out = exec_(daemon, sid, ["/usr/bin/probe", "flood", "1024", "stdout"], timeout_ms=60000)
    took = time.monotonic() - t0
    hp.check("output flood 1 GiB")
    print(f"1 GiB flood drained in {took:.1f}s, rss {rss0} -> {daemon.rss_kib()} KiB")
    assert out["truncated"] is True and out["exit_code"] == 0, {k: v for k, v in out.items() if k != "stdout"}
    assert len(out["stdout"]) <= 1 << 20
    # all of it was read (and dropped), none of it kept
    assert "flood stdout 0 OK bytes=1073741824" in out["stderr"], out["stderr"]
    if not daemon.sanitized():
        assert daemon.rss_kib() - rss0 < 32 * 1024
    still_serves(daemon, sid)


def test_full_pool_at_full_cpu(daemon):
    sids = []
    for _ in range(4):  # max_pool_size
        r = daemon.post("/v1/sessions")
        assert r.status == 201, r
        sids.append(r.json["id"])
    results = {}

    def spin(sid):
        results[sid] = exec_(daemon, sid, ["/usr/bin/probe", "spin", "3"])

    with HealthProbe(daemon) as hp:
        threads = [threading.Thread(target=spin, args=(s,)) for s in sids]
        for t in threads:
            t.start()
        # the pool is full: one more is refused at once, with Retry-After
        t0 = time.monotonic()
        r = daemon.post("/v1/sessions", timeout=30)
        assert r.status == 429 and r.headers.get("retry-after"), r
        print(f"429 on a full pool after {(time.monotonic() - t0) * 1000:.0f} ms")
        for t in threads:
            t.join(timeout=60)
    hp.check("100% cpu in a full pool")
    for sid, out in results.items():
        line = [l for l in out["stdout"].splitlines() if l.startswith("spin ")][0]
        pct = float(line.split("cpu_pct=")[1])
        assert pct <= 35, line  # cpu_limit 25, with slack
    assert len(results) == 4
    for sid in sids:
        assert daemon.delete(f"/v1/sessions/{sid}").status == 204


def test_thousands_of_files(daemon):
    sid = daemon.session()
    with HealthProbe(daemon) as hp:
        out = exec_(daemon, sid, ["/usr/bin/probe", "files", "20000", "/tmp"], timeout_ms=20000)
    hp.check("20000 files")
    # Listing them: GET files on the directory reads and sorts up to 10000
    # entries inside the event loop, which stalls everyone else for a
    # while (measured: ~0.6 s, ~1.6 s under ASan). Bounded loosely here;
    # moving the listing off the loop is the daemon's open item.
    with HealthProbe(daemon) as hp2:
        listing = daemon.get(f"/v1/sessions/{sid}/files?path=/tmp", timeout=60)
    s2 = sorted(hp2.samples)
    print(f"listing 20000 files: health max {s2[-1] if s2 else 0:.0f} ms")
    assert not hp2.errors and (not s2 or s2[-1] < 5000), (hp2.errors, s2[-3:])
    assert " 0 OK created=20000" in out["stdout"] or "ENOSPC" in out["stdout"], out
    assert listing.status == 200, listing
    entries = listing.json["entries"]
    assert 0 < len(entries) <= 10000, len(entries)
    still_serves(daemon, sid)


def test_command_that_ignores_sigterm(daemon):
    sid = daemon.session()
    with HealthProbe(daemon) as hp:
        out = exec_(daemon, sid, ["/usr/bin/probe", "ignore-term", "60"], timeout_ms=1000)
    hp.check("ignores SIGTERM")
    assert out["timed_out"] is True and out["signal"] == 9, out
    assert out["duration_ms"] < 5000, out
    still_serves(daemon, sid)


def test_double_fork_out_of_the_process_group(daemon):
    # The grandchild leaves the command's session and process group and
    # keeps stdout open: the answer must not wait for it, and the sandbox
    # must not outlive its session with it.
    sid = daemon.session()
    with HealthProbe(daemon) as hp:
        t0 = time.monotonic()
        out = exec_(daemon, sid, ["/usr/bin/probe", "double-fork", "60"], timeout_ms=2000)
        took = time.monotonic() - t0
    hp.check("double fork")
    assert took < 10, (took, out)
    assert "ok=yes" in out["stdout"], out
    paths = daemon.cgroup_paths
    assert daemon.delete(f"/v1/sessions/{sid}").status == 204
    # one-shot: the same escape through /v1/run ends with the sandbox
    t0 = time.monotonic()
    r = daemon.post("/v1/run", {"argv": ["/usr/bin/probe", "double-fork", "60"], "timeout_ms": 2000}, timeout=60)
    assert r.status == 200 and time.monotonic() - t0 < 10, r
    assert paths is not None
