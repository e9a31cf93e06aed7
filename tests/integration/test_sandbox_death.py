# SPDX-License-Identifier: MIT
"""A sandbox that dies under its session, and neighbours that flood or
fill: the daemon must keep every timer, every end and SIGTERM running.

Each test here failed on the daemon that kept a hung-up control socket
enabled at the top priority (issue 23): from then on nothing of normal
priority ran again (timeouts, session ends, refills, SIGTERM). The checks
are what a client sees (each request answered by its own timeout, DELETE,
SIGTERM within 5 s) and what the kernel says (no process, cgroup or mount
left)."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import Daemon

# Default limits of the product: 256 MiB memory, 512 MiB disk.
CONF = {"pool": {"pool_size": "2", "min_pool_size": "1", "max_pool_size": "12"},
        "limits": {"cpu_limit": "50", "command_timeout": "60s"}}


@pytest.fixture
def daemon():
    d = Daemon(conf=CONF).start()
    try:
        yield d
    finally:
        d.cleanup()


class Call(threading.Thread):
    """One request in a thread, with the time it took to be answered."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.error, self.seconds = fn, None, None, None
        self.start()

    def run(self):
        t0 = time.monotonic()
        try:
            self.result = self.fn()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        self.seconds = time.monotonic() - t0

    def answered(self, within):
        self.join(within)
        assert not self.is_alive(), "no answer within %.1f s" % within
        assert self.error is None, self.error
        return self.result


def sandbox_cgroup_dirs(d, name):
    return [os.path.join(p, name) for p in d.cgroup_paths if os.path.isdir(os.path.join(p, name))]


def pid1_of(d, sid):
    """The host pid of a session's PID 1: the task of its cgroup whose pid
    in the sandbox's own namespace is 1."""
    name = d.get("/v1/sessions/" + sid).json["sandbox"]
    for cg in sandbox_cgroup_dirs(d, name):
        for pid in Path(cg, "cgroup.procs").read_text().split():
            try:
                status = Path("/proc/%s/status" % pid).read_text()
            except FileNotFoundError:
                continue
            nspid = [l for l in status.splitlines() if l.startswith("NSpid:")][0].split()
            if nspid[-1] == "1":
                return int(pid)
    raise AssertionError("no PID 1 found for session %s (%s)" % (sid, name))


def timeout_answers_on_time(d):
    """In a fresh session, a command that would run for ever, with a 2 s
    timeout, is answered `timed_out` within 3 s."""
    sid = d.session()
    t0 = time.monotonic()
    r = d.exec(sid, {"argv": ["cat", "/dev/zero"], "timeout_ms": 2000, "max_output_bytes": 1024}, timeout=30)
    took = time.monotonic() - t0
    assert r.status == 200 and r.json["timed_out"] is True, r
    assert took < 3.0, "the 2 s timeout answered after %.2f s" % took
    assert d.delete("/v1/sessions/" + sid).status == 204


def ends_cleanly(d):
    """SIGTERM stops the daemon within 5 s, leaving nothing (Daemon.stop
    asserts the cgroups, mounts and socket are gone)."""
    d.stop(timeout=5.0)


def test_disk_fill_at_the_default_limits_is_enospc(daemon):
    d = daemon
    sid = d.session()
    limits = d.get("/v1/sessions/" + sid).json["limits"]
    assert limits["memory_mb"] == 256
    # The writable layer is a tmpfs charged to the sandbox's memory: it is
    # never larger than the memory limit less a reserve, so filling it is
    # ENOSPC for the writer, not an OOM kill.
    assert limits["disk_mb"] < limits["memory_mb"], limits
    dd = Call(lambda: d.exec(sid, {"shell": "dd if=/dev/zero of=/tmp/f bs=1M count=4096; echo status=$?",
                                   "timeout_ms": 60000}, timeout=90))
    timeout_answers_on_time(d)
    r = dd.answered(60)
    assert r.status == 200, r
    assert r.json["oom_killed"] is False, r.json
    assert "No space left on device" in r.json["stderr"], r.json
    assert "status=1" in r.json["stdout"], r.json
    # the session lives on and its files are still there
    r = d.exec(sid, {"shell": "ls -l /tmp/f | wc -l"})
    assert r.status == 200 and r.json["stdout"].strip() == "1", r.json
    assert d.delete("/v1/sessions/" + sid).status == 204
    ends_cleanly(d)


def test_pid1_killed_from_the_host_ends_only_its_session(daemon):
    d = daemon
    sid = d.session()
    name = d.get("/v1/sessions/" + sid).json["sandbox"]
    # a command waiting in the session: its request must be answered
    waiting = Call(lambda: d.exec(sid, {"argv": ["sleep", "30"], "timeout_ms": 40000}, timeout=60))
    time.sleep(0.3)
    os.kill(pid1_of(d, sid), signal.SIGKILL)
    r = waiting.answered(5)
    assert r.status == 200, r
    assert r.json.get("session_ended") is True and r.json.get("end_reason") == "sandbox_died", r.json
    assert "killed by signal 9" in r.json.get("error", ""), r.json
    # the session is gone, and says why
    r = d.get("/v1/sessions/" + sid)
    assert r.status == 404 and "sandbox_died" in r.json["error"]["message"], r
    assert d.delete("/v1/sessions/" + sid).status == 404
    # its cgroups are removed, and its slot is back
    deadline = time.monotonic() + 5
    while sandbox_cgroup_dirs(d, name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sandbox_cgroup_dirs(d, name), "the dead sandbox's cgroup is left"
    h = d.get("/v1/health").json
    assert h["pool"]["allocated"] == 0 and h["active_sessions"] == 0, h
    timeout_answers_on_time(d)
    ends_cleanly(d)


def test_flood_and_dead_pid1_do_not_starve_timers(daemon):
    """A source that is always ready (an output flood past its cap) and a
    dead PID 1 at the same time: a normal 1 s timeout elsewhere still fires
    on time, again and again."""
    d = daemon
    flood_sid, dead_sid = d.session(), d.session()
    flood = Call(lambda: d.exec(flood_sid, {"argv": ["cat", "/dev/zero"], "timeout_ms": 15000,
                                            "max_output_bytes": 4096}, timeout=60))
    os.kill(pid1_of(d, dead_sid), signal.SIGKILL)
    sid = d.session()
    late = []
    for _ in range(5):
        t0 = time.monotonic()
        r = d.exec(sid, {"argv": ["sleep", "10"], "timeout_ms": 1000}, timeout=30)
        assert r.status == 200 and r.json["timed_out"] is True, r
        late.append(time.monotonic() - t0 - 1.0)
    assert max(late) < 0.5, "a 1 s timeout fired up to %.2f s late" % max(late)
    r = flood.answered(20)
    assert r.json["timed_out"] is True and r.json["truncated"] is True, r.json
    ends_cleanly(d)


BOMBS = {
    "fork": {"argv": ["/usr/bin/probe", "forkbomb"], "timeout_ms": 5000},
    "memory": {"argv": ["/usr/bin/probe", "alloc", "2048"], "timeout_ms": 10000},
    "disk": {"shell": "dd if=/dev/zero of=/tmp/f bs=1M count=4096", "timeout_ms": 20000},
    "output": {"argv": ["cat", "/dev/zero"], "timeout_ms": 5000},
    "cpu": {"shell": "while :; do :; done", "timeout_ms": 5000},
    "sigterm": {"shell": "trap '' TERM; sleep 60", "timeout_ms": 3000},
    "double-fork": {"shell": "(setsid sh -c 'sleep 120' &) ; sleep 60", "timeout_ms": 3000},
}


def test_seven_bombs_at_once(daemon):
    from test_resource_attacks import HealthProbe
    d = daemon
    with HealthProbe(d) as rest:
        time.sleep(2.0)
    rest_p50, rest_p99, _ = rest.check("at rest")
    sids = {k: d.session() for k in BOMBS}
    with HealthProbe(d) as hp:
        calls = {k: Call(lambda k=k: d.exec(sids[k], BOMBS[k], timeout=120)) for k in BOMBS}
        for k, c in calls.items():
            # every request is answered by its own timeout (plus the
            # scheduler's share of a 2-core machine under seven bombs)
            r = c.answered(BOMBS[k]["timeout_ms"] / 1000.0 + 10)
            assert r.status == 200, (k, r)
    _, p99, _ = hp.check("seven bombs")
    print("health p99 at rest %.2f ms, under seven bombs %.2f ms" % (rest_p99, p99))
    # 2x of at rest, with a floor: on a shared 2-core machine seven bombs
    # take the CPUs from the daemon for a few scheduler ticks at a time (a
    # blocked or starved loop shows as seconds, not milliseconds)
    assert p99 <= max(2 * rest_p99, 50.0), (rest_p99, p99)
    for k, sid in sids.items():
        assert d.delete("/v1/sessions/" + sid).status in (204, 404), k
    ends_cleanly(d)
