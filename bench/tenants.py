#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Figures of issue 17, against the real daemon (the test rootfs):

  1. exec round trip (POST /v1/sessions/{id}/exec of /bin/true on a
     keep-alive connection), execution records on against off;
  2. a keyed-session hit (POST /v1/sessions {"key"} answered 200 reused)
     against a plain GET /v1/sessions/{id}.

Each pair runs interleaved in rounds (A, B, A, B, ...) so that the noise
of a shared machine falls on both alike; p50 and p90 of every sample.

  SANDPOOL_BUILD_DIR=$PWD/build /usr/bin/python3 bench/tenants.py [--rounds 5] [--n 400]
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import apiclient  # noqa: E402
import conftest  # noqa: E402


class KeepAlive:
    def __init__(self, sock):
        self.conn = apiclient.UnixHTTPConnection(sock, timeout=60)

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = self.conn.getresponse()
        r.read()
        return r.status


def timed(c, n, method, path, body=None, want=200):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        st = c.request(method, path, body)
        out.append(time.perf_counter() - t0)
        assert st == want, (method, path, st)
    return out


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--off-first", action="store_true", help="start the daemon without records first")
    a = ap.parse_args()
    pool = {"pool_size": "2", "min_pool_size": "2", "max_pool_size": "4"}
    on = conftest.Daemon(conf={"pool": pool})
    off = conftest.Daemon(conf={"pool": pool, "records": {"records_enabled": "false"}})
    for d in ((off, on) if a.off_first else (on, off)):
        d.start()
    try:
        ex = {}
        for name, d in (("on", on), ("off", off)):
            sid = d.session()
            ex[name] = (KeepAlive(d.socket), "/v1/sessions/%s/exec" % sid)
            timed(ex[name][0], 50, "POST", ex[name][1], {"argv": ["/bin/true"]})  # warm up
        kc = KeepAlive(on.socket)
        key_sid = on.post("/v1/sessions", {"key": "bench"}).json["id"]
        timed(kc, 50, "POST", "/v1/sessions", {"key": "bench"})
        samples = {"exec records on": [], "exec records off": [], "keyed hit": [], "GET session": []}
        for i in range(a.rounds):
            for name in (("on", "off") if i % 2 == 0 else ("off", "on")):
                c, path = ex[name]
                samples["exec records " + name] += timed(c, a.n, "POST", path, {"argv": ["/bin/true"]})
            pair = [("keyed hit", "POST", "/v1/sessions", {"key": "bench"}),
                    ("GET session", "GET", "/v1/sessions/" + key_sid, None)]
            for name, method, path, body in (pair if i % 2 == 0 else pair[::-1]):
                samples[name] += timed(kc, a.n, method, path, body)
        for k, v in samples.items():
            print("%-18s n=%5d  p50 %.3f ms  p90 %.3f ms  mean %.3f ms" % (k, len(v), pct(v, 0.5), pct(v, 0.9),
                                                                           statistics.mean(v) * 1e3))
        r = pct(samples["exec records on"], 0.5) / pct(samples["exec records off"], 0.5)
        k = pct(samples["keyed hit"], 0.5) / pct(samples["GET session"], 0.5)
        print("exec round trip p50, records on / off: %.3fx (target <= 1.05x)" % r)
        print("keyed hit p50 / GET /v1/sessions/{id} p50: %.2fx" % k)
        h = on.get("/v1/health").json["records"]
        print("records written %d, dropped %d, flush interval %s ms" % (h["written"], h["dropped"], h.get("flush_interval_ms")))
        on.stop()
        off.stop()
    finally:
        on.cleanup()
        off.cleanup()


if __name__ == "__main__":
    main()
