# SPDX-License-Identifier: MIT
"""One convention for durations (issue 20): every duration field is in
milliseconds (`_ms`); the sessions' older `timeout_s` / `idle_timeout_s`
stay as aliases, and both at once is a 400. Against the real daemon over its
real socket, and through the real Python and TypeScript clients."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import SOURCE_ROOT

sys.path.insert(0, os.path.join(SOURCE_ROOT, "clients", "python"))
import sandpool  # noqa: E402


def _new(d, body):
    r = d.post("/v1/sessions", body)
    assert r.status == 201, r
    d.delete("/v1/sessions/" + r.json["id"])
    return r.json


def test_ms_names_and_their_echo(daemon):
    s = _new(daemon, {"timeout_ms": 120500, "idle_timeout_ms": 60250})
    assert s["timeout_ms"] == 120500 and s["idle_timeout_ms"] == 60250
    assert s["timeout_s"] == 120 and s["idle_timeout_s"] == 60  # the alias, whole seconds


def test_seconds_aliases_still_work(daemon):
    s = _new(daemon, {"timeout_s": 120, "idle_timeout_s": 60})
    assert s["timeout_ms"] == 120000 and s["idle_timeout_ms"] == 60000


def test_ms_capped_by_config(daemon):
    s = _new(daemon, {"timeout_ms": 10 ** 12, "idle_timeout_ms": 10 ** 12})
    assert s["timeout_ms"] == 900000 and s["idle_timeout_ms"] == 300000


@pytest.mark.parametrize("ms,alias", [("timeout_ms", "timeout_s"), ("idle_timeout_ms", "idle_timeout_s")])
def test_name_and_alias_together_400(daemon, ms, alias):
    # even when both say the same
    r = daemon.post("/v1/sessions", {ms: 60000, alias: 60})
    assert r.status == 400, r
    assert r.json["error"]["code"] == "bad_request"
    msg = r.json["error"]["message"]
    assert "'%s'" % ms in msg and "'%s'" % alias in msg and "both" in msg, msg


@pytest.mark.parametrize("body", [{"timeout_ms": 0}, {"idle_timeout_ms": -5}, {"timeout_ms": "1000"},
                                  {"idle_timeout_ms": 1.5}])
def test_bad_ms_values_400(daemon, body):
    r = daemon.post("/v1/sessions", body)
    assert r.status == 400, r
    assert list(body)[0] in r.json["error"]["message"]


def test_idle_timeout_ms_is_milliseconds(daemon):
    # 1500 read as seconds would keep it for 25 minutes
    sid = daemon.session({"idle_timeout_ms": 1500})
    time.sleep(3)
    assert daemon.get("/v1/sessions/" + sid).status == 404


def test_python_client_sends_ms(daemon):
    c = sandpool.Client(daemon.socket)
    # 1.5 s can only reach the daemon as timeout_ms: timeout_s takes integers
    info = c.create_session(timeout_s=1.5, idle_timeout_ms=2500)
    try:
        assert info.raw["timeout_ms"] == 1500 and info.raw["idle_timeout_ms"] == 2500
    finally:
        c.end_session(info.id)
    with pytest.raises(ValueError):
        c.create_session(timeout_s=1, timeout_ms=1000)


TS_SCRIPT = r"""
const { Client } = await import(process.argv[1]);
const c = new Client({ socketPath: process.argv[2] });
const out = {};
const a = await c.createSession({ timeoutS: 1.5, idleTimeoutMs: 2500 });
out.a = [a.raw.timeout_ms, a.raw.idle_timeout_ms];
await c.endSession(a.id);
try { await c.createSession({ timeoutS: 1, timeoutMs: 1000 }); out.both = 'accepted'; }
catch (e) { out.both = e.constructor.name; }
console.log(JSON.stringify(out));
"""


def test_typescript_client_sends_ms(daemon):
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed (tools/install-deps)")
    js = os.path.join(SOURCE_ROOT, "clients", "typescript", "sandpool.js")
    p = subprocess.run([node, "--input-type=module", "-e", TS_SCRIPT, js, daemon.socket],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out == {"a": [1500, 2500], "both": "TypeError"}, out


def _mcp(sock, calls):
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    lines = [init, {"jsonrpc": "2.0", "method": "notifications/initialized"}]
    lines += [{"jsonrpc": "2.0", "id": i + 1, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    ctl = os.path.join(os.environ.get("SANDPOOL_BUILD_DIR", os.path.join(SOURCE_ROOT, "build")), "ctl", "sandpoolctl")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDPOOL_")}
    p = subprocess.run([ctl, "--socket", sock, "mcp"], input="".join(json.dumps(l) + "\n" for l in lines),
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    return {m["id"]: m for m in map(json.loads, p.stdout.splitlines()) if "id" in m}


def test_mcp_tools_take_timeout_ms(daemon):
    run = lambda args: ("tools/call", {"name": "run_command", "arguments": dict(command="sleep 5", **args)})
    t0 = time.monotonic()
    out = _mcp(daemon.socket, [("tools/list", {}), run({"timeout_ms": 300}), run({"timeout_s": 0.3}),
                               run({"timeout_ms": 300, "timeout_s": 0.3})])
    assert time.monotonic() - t0 < 4.5  # both timeouts fired
    props = [t for t in out[1]["result"]["tools"] if t["name"] == "run_command"][0]["inputSchema"]["properties"]
    assert "timeout_ms" in props and "timeout_s" not in props
    for i in (2, 3):
        r = out[i]["result"]
        assert r["isError"] is False and r["structuredContent"]["timed_out"] is True, r
    assert out[4]["result"]["isError"] is True
    assert "not both" in out[4]["result"]["content"][0]["text"]
