# SPDX-License-Identifier: MIT
"""'sandpoolctl mcp' against the real daemon, driven by MCP clients nobody
here wrote: the official TypeScript SDK's Client over StdioClientTransport
(tests/mcp/sdk-client.mjs), pinned in tests/mcp/package-lock.json and
installed by 'tools/install-deps mcp'. This file starts the daemon (the
Node.js/Python image when it is installed, else the busybox test rootfs),
runs the client, and checks on the daemon's side what the client cannot
see: the sessions the server made are gone after it exits, the attached
one is not, and a cancelled command was killed because its client went
away."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD_DIR, SOURCE_ROOT, SKIP

MCP_DIR = os.path.join(SOURCE_ROOT, "tests", "mcp")
SANDPOOLCTL = os.path.join(BUILD_DIR, "ctl", "sandpoolctl")
IMAGE = "/var/lib/sandpool/images/default"


def require_clients():
    why = None
    if not shutil.which("node"):
        why = "node is not installed (Debian package nodejs)"
    elif not os.path.isdir(os.path.join(MCP_DIR, "node_modules", "@modelcontextprotocol", "sdk")):
        why = "the pinned MCP clients are not installed: run 'tools/install-deps mcp'"
    if why:
        print("SKIP: " + why, file=sys.stderr)
        pytest.exit("SKIP: " + why, returncode=SKIP)


def have_image():
    return os.path.isfile(os.path.join(IMAGE, "etc", "sandpool-image.json"))


def metric(d, name):
    m = re.search(r"^sandpool_%s (\d+)" % name, d.get("/metrics").data.decode(), re.M)
    return int(m.group(1)) if m else 0


def test_sdk_client_calls_every_tool(make_daemon):
    require_clients()
    conf = {"images": {"rootfs": IMAGE}} if have_image() else {}
    d = make_daemon(conf)
    attached = d.session()
    r = d.request("PUT", "/v1/sessions/%s/files?path=/tmp/marker" % attached, b"made by the test\n")
    assert r.status == 201, r
    aborted_before = metric(d, "exec_client_gone_total")

    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDPOOL_")}
    env.update(SANDPOOLCTL=SANDPOOLCTL, SANDPOOL_SOCKET=d.socket, ATTACH_SESSION=attached,
               HAVE_IMAGE="1" if have_image() else "0")
    p = subprocess.run(["node", "--test", "--test-reporter=spec", os.path.join(MCP_DIR, "sdk-client.mjs")],
                       cwd=MCP_DIR, env=env, capture_output=True, text=True, timeout=240)
    print(p.stdout[-6000:])
    print(p.stderr[-3000:], file=sys.stderr)
    assert p.returncode == 0, "the SDK client's checks failed (output above)"
    assert re.search(r"^ℹ fail 0$", p.stdout, re.M), p.stdout[-2000:]
    if not have_image():
        print("note: no image at %s: run_python and run_node were listed but not run" % IMAGE)

    # every session an MCP server created ended with it; the attached one stays
    sessions = [s["id"] for s in d.get("/v1/sessions").json["sessions"]]
    assert sessions == [attached], sessions
    # the cancelled 'sleep 41' was killed because its connection went away
    assert metric(d, "exec_client_gone_total") > aborted_before
    assert d.proc.poll() is None
    d.delete("/v1/sessions/%s" % attached)


def test_session_ends_when_the_client_disappears(make_daemon):
    """No goodbye: SIGTERM to the server (what a client does after closing
    stdin) while a command runs still ends its session."""
    require_clients()
    d = make_daemon()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDPOOL_")}
    env["SANDPOOL_SOCKET"] = d.socket
    p = subprocess.Popen([SANDPOOLCTL, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    msgs = [{"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
             "params": {"name": "run_command", "arguments": {"command": "sleep 30"}}}]
    for m in msgs:
        p.stdin.write(json.dumps(m) + "\n")
    p.stdin.flush()
    assert json.loads(p.stdout.readline())["id"] == 1
    for _ in range(100):
        if d.get("/v1/sessions").json["sessions"]:
            break
        import time
        time.sleep(0.05)
    assert len(d.get("/v1/sessions").json["sessions"]) == 1
    p.terminate()
    assert p.wait(timeout=10) == 0
    assert d.get("/v1/sessions").json["sessions"] == []
