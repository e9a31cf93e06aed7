# SPDX-License-Identifier: MIT
"""'sandpoolctl mcp' against the protocol's own conformance suite
(@modelcontextprotocol/conformance, pinned in tests/mcp), which tests servers
at a Streamable HTTP URL: tests/mcp/http-relay.mjs puts the official SDK's
HTTP server transport in front of one real 'sandpoolctl mcp' child per HTTP
session, on a real daemon. What fails on purpose is the suite's own baseline
file (tests/mcp/conformance-baseline.yml, explained in CONFORMANCE.md): any
other failure, or a baseline entry that starts to pass, fails this test.
Then the JSON-RPC edge cases the suite does not send, over stdio."""

import json
import os
import select
import shutil
import subprocess
import sys
import time

import pytest

from conftest import BUILD_DIR, SOURCE_ROOT, SKIP

MCP_DIR = os.path.join(SOURCE_ROOT, "tests", "mcp")
SANDPOOLCTL = os.path.join(BUILD_DIR, "ctl", "sandpoolctl")
SUITE = os.path.join(MCP_DIR, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")


def require_suite():
    why = None
    if not shutil.which("node"):
        why = "node is not installed (Debian package nodejs)"
    elif not os.path.isfile(SUITE):
        why = "the pinned conformance suite is not installed: run 'tools/install-deps mcp'"
    if why:
        print("SKIP: " + why, file=sys.stderr)
        pytest.exit("SKIP: " + why, returncode=SKIP)


def clean_env(sock):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDPOOL_")}
    env["SANDPOOL_SOCKET"] = sock
    return env


def test_conformance_suite(daemon, tmp_path):
    require_suite()
    relay = subprocess.Popen(["node", os.path.join(MCP_DIR, "http-relay.mjs"), "0", "--", SANDPOOLCTL, "mcp"],
                             cwd=MCP_DIR, env=clean_env(daemon.socket), stdout=subprocess.PIPE, text=True)
    try:
        r, _, _ = select.select([relay.stdout], [], [], 30)
        assert r, "the relay did not start"
        url = relay.stdout.readline().split()[1]
        t0 = time.monotonic()
        p = subprocess.run(["node", SUITE, "server", "--url", url, "-o", str(tmp_path),
                            "--expected-failures", os.path.join(MCP_DIR, "conformance-baseline.yml")],
                           cwd=MCP_DIR, env=clean_env(daemon.socket), capture_output=True, text=True, timeout=600)
        print(p.stdout[-6000:], p.stderr[-3000:], "suite: %.1f s" % (time.monotonic() - t0))
        assert p.returncode == 0, "failures outside the baseline, or a stale baseline entry (see above)"
    finally:
        relay.terminate()
        relay.wait(10)
    # what passed, checked by name too: these are the ones sandpool claims
    passed = set()
    for d in os.listdir(tmp_path):
        with open(os.path.join(tmp_path, d, "checks.json")) as f:
            checks = json.load(f)
        if checks and all(c["status"] in ("SUCCESS", "INFO", "WARNING") for c in checks):
            passed.add(d)
    for s in ("server-initialize", "ping", "logging-set-level", "tools-list", "server-sse-multiple-streams",
              "dns-rebinding-protection"):
        assert any(d.startswith("server-%s-" % s) for d in passed), (s, sorted(passed))


def rpc_exchange(lines, timeout=30):
    p = subprocess.run([SANDPOOLCTL, "--socket", "/nonexistent/s.sock", "mcp"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return [json.loads(l) for l in p.stdout.splitlines()]


INIT = ('{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}')


def by_id(out, i):
    got = [m for m in out if m.get("id") == i]
    assert len(got) == 1, (i, out)
    return got[0]


def test_jsonrpc_edge_cases():
    out = rpc_exchange([
        '{"jsonrpc":"2.0","id":"p","method":"ping"}',              # ping before initialize: allowed
        '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',          # anything else: not yet
        INIT,
        '{"jsonrpc":"2.0","method":"notifications/initialized"}',
        '{"jsonrpc":"2.0","id":2}',                                 # neither request nor response
        '{"jsonrpc":"2.0","id":3,"result":{}}',                     # a response nobody waits for: ignored
        '{"jsonrpc":"1.0","id":4,"method":"ping"}',
        '{"jsonrpc":"2.0","id":5,"method":"nope/nope"}',
        '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nope"}}',
        '{"jsonrpc":"2.0","id":7,"method":"logging/setLevel","params":{"level":"loud"}}',
        '{"jsonrpc":"2.0","id":8,"method":"ping","params":[1]}',
        '{"jsonrpc":"2.0","id":9.5,"method":"ping"}',
        '{"jsonrpc":"2.0","id":null,"method":"ping"}',
        '[{"jsonrpc":"2.0","id":10,"method":"ping"}]',
        '{broken',
    ])
    assert by_id(out, "p")["result"] == {}
    assert by_id(out, 1)["error"]["code"] == -32600
    assert by_id(out, 0)["result"]["protocolVersion"] == "2025-06-18"
    assert by_id(out, 2)["error"]["code"] == -32600
    assert not [m for m in out if m.get("id") == 3]
    assert by_id(out, 4)["error"]["code"] == -32600
    assert by_id(out, 5)["error"]["code"] == -32601
    assert by_id(out, 6)["error"]["code"] == -32602
    assert by_id(out, 7)["error"]["code"] == -32602
    assert by_id(out, 8)["error"]["code"] == -32602
    nulls = sorted(m["error"]["code"] for m in out if m.get("id") is None)
    assert nulls == [-32700, -32600, -32600, -32600], out   # broken; 9.5, null, batch
    # an unknown version gets the server's newest, which it names
    out = rpc_exchange([INIT.replace("2025-06-18", "1999-01-01")])
    assert out[0]["result"]["protocolVersion"] == "2025-11-25"
