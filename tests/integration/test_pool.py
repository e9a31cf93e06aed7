# SPDX-License-Identifier: MIT
"""The pre-warmed pool, with small sizes, against the real daemon: it fills,
hands out and refills, caps the total, makes a request wait and then answer
429, shrinks idle warm sandboxes to the minimum, notices a warm sandbox
killed from outside and replaces it, serves 80 concurrent sessions, and
leaves nothing behind."""
import os
import signal
import threading
import time

import pytest

from sandpool_testlib import children, factory_workers, metric, sandbox_pid1s, wait_for


def pool(d):
    return d.get("/v1/health").json["pool"]


SMALL = {"pool": {"pool_size": "4", "min_pool_size": "1", "max_pool_size": "6"}}


def test_fills_hands_out_refills_and_caps(make_daemon):
    d = make_daemon(conf=SMALL)
    wait_for(lambda: pool(d)["available"] == 4, what="4 warm")
    sessions = [d.session() for _ in range(4)]
    # refilled at once, but never past max_pool_size in total
    wait_for(lambda: pool(d)["available"] == 2 and pool(d)["total"] == 6, what="refill to the cap")
    sessions += [d.session(), d.session()]
    p = pool(d)
    assert p["allocated"] == 6 and p["total"] == 6 and p["max_capacity"] == 6
    # the 7th waits a bounded time for a slot, then 429 with Retry-After
    t0 = time.monotonic()
    r = d.post("/v1/sessions")
    assert r.status == 429 and r.headers.get("retry-after"), r
    assert time.monotonic() - t0 > 1.0
    # ending one lets the next in (and never hands a sandbox out twice)
    assert d.delete("/v1/sessions/" + sessions.pop()).status == 204
    sessions.append(wait_for(lambda: d.post("/v1/sessions").json.get("id"), what="a freed slot"))
    assert len(set(sessions)) == len(sessions)
    for s in sessions:
        assert d.exec(s, {"argv": ["true"]}).json["exit_code"] == 0
    for s in sessions:
        assert d.delete("/v1/sessions/" + s).status == 204
    wait_for(lambda: pool(d)["allocated"] == 0 and pool(d)["available"] == 4, what="back to 4 warm")


def test_idle_warm_sandboxes_shrink_to_the_minimum(make_daemon):
    d = make_daemon(conf={"pool": {"pool_size": "4", "min_pool_size": "1", "max_pool_size": "6",
                                   "container_idle_timeout": "1s", "aggressive_cleanup": "true"}})
    wait_for(lambda: pool(d)["available"] == 4, what="4 warm")
    wait_for(lambda: pool(d)["available"] == 1 and pool(d)["total"] == 1, timeout=20, what="shrink to 1")
    # demand brings the pool back to its size
    s = d.session()
    wait_for(lambda: pool(d)["available"] == 4, what="refill after demand")
    d.delete("/v1/sessions/" + s)


def test_no_shrink_without_aggressive_cleanup(make_daemon):
    d = make_daemon(conf={"pool": {"pool_size": "3", "min_pool_size": "1",
                                   "container_idle_timeout": "1s", "aggressive_cleanup": "false"}})
    wait_for(lambda: pool(d)["available"] == 3, what="3 warm")
    time.sleep(2.5)
    assert pool(d)["available"] == 3


def test_warm_sandbox_killed_from_outside_is_replaced(make_daemon):
    d = make_daemon(conf=SMALL)
    wait_for(lambda: pool(d)["available"] == 4, what="4 warm")
    died_before = metric(d, "sandpool_pool_died_warm_total") or 0
    victims = sandbox_pid1s(d.pid)
    assert victims, "no sandbox PID 1 below the daemon"
    os.kill(victims[0], signal.SIGKILL)
    wait_for(lambda: (metric(d, "sandpool_pool_died_warm_total") or 0) > died_before, what="the death noticed")
    wait_for(lambda: pool(d)["available"] == 4 and victims[0] not in sandbox_pid1s(d.pid), what="a replacement")
    # the survivors still work
    s = d.session()
    assert d.exec(s, {"argv": ["true"]}).json["exit_code"] == 0
    d.delete("/v1/sessions/" + s)


def test_a_dead_factory_worker_is_replaced_and_sessions_live_on(make_daemon):
    """The blocking half of sandbox starts runs in worker processes: killing
    one fails only what it was making; the daemon says so, starts another,
    and every existing session keeps working."""
    d = make_daemon(conf=SMALL)
    wait_for(lambda: pool(d)["available"] == 4, what="4 warm")
    workers = factory_workers(d.pid)
    assert len(workers) >= 1, children(d.pid)
    # with nothing in the making, the workers hold only their socket, the
    # cgroup directories and stdio: no client connection, no listening
    # socket, nothing of another sandbox's
    for w in workers:
        fds = os.listdir("/proc/%d/fd" % w)
        socks = [f for f in fds if os.readlink("/proc/%d/fd/%s" % (w, f)).startswith("socket:")]
        assert len(socks) == 1, (w, [os.readlink("/proc/%d/fd/%s" % (w, f)) for f in fds])
    s = d.session()
    os.kill(workers[0], signal.SIGKILL)
    try:
        wait_for(lambda: workers[0] not in factory_workers(d.pid) and len(factory_workers(d.pid)) == len(workers),
                 what="a new worker")
    except AssertionError:
        raise AssertionError("children %s\n%s" % ([(p, open("/proc/%d/stat" % p).read().split()[1:3])
                                                    for p in children(d.pid)], d.read_log()))
    assert "factory worker 0" in d.read_log() or "factory worker 1" in d.read_log(), d.read_log()
    assert d.exec(s, {"argv": ["echo", "still here"]}).json["stdout"] == "still here\n"
    # and new sandboxes are made again
    sessions = [d.session() for _ in range(5)]
    for x in sessions:
        assert d.exec(x, {"argv": ["true"]}).json["exit_code"] == 0
        assert d.delete("/v1/sessions/" + x).status == 204
    assert d.delete("/v1/sessions/" + s).status == 204


def test_eighty_concurrent_sessions_all_succeed(make_daemon):
    d = make_daemon(conf={"pool": {"pool_size": "10", "min_pool_size": "3", "max_pool_size": "80"},
                          "limits": {"cpu_limit": "25"}})
    errors, done = [], []

    def agent(i):
        try:
            r = d.post("/v1/sessions", timeout=120)
            assert r.status == 201, r
            sid = r.json["id"]
            for cmd in (["ls", "/"], ["cat", "/etc/hostname"], ["sh", "-c", "echo agent-%d" % i]):
                r = d.exec(sid, {"argv": cmd}, timeout=120)
                assert r.status == 200 and r.json["exit_code"] == 0, r
            assert ("agent-%d" % i) in r.json["stdout"]
            assert d.delete("/v1/sessions/" + sid).status == 204
            done.append(i)
        except Exception as e:  # collected: one failure must not hide the rest
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(80)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors[:5]
    assert len(done) == 80
    # afterwards: nothing but the configured warm sandboxes
    wait_for(lambda: pool(d)["allocated"] == 0 and pool(d)["destroying"] == 0, timeout=60, what="all ended")
    assert pool(d)["total"] <= 10
