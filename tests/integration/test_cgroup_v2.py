"""The cgroup v2 path of the runtime, through `sandpoold run`, on a kernel
whose only cgroup hierarchy is cgroup2.

Meant to run INSIDE the cgroup2 guest (tests/vm/run-in-guest, meson suite
'vm'): the development machines and CI are hybrid (memory, cpu and pids on
v1), where these tests skip and say why. The lane sets
SANDPOOL_REQUIRE_CGROUP2=1, which turns that skip into a failure: in the
guest, a missing cgroup2 is a broken lane, not a reason to pass.

Every assertion reads what the kernel says: the sandbox's cgroup files while
it runs, /proc/<pid>/cgroup, memory.events, and the cgroup tree afterwards.
Everything is ~40x slower under TCG than on the host, hence the long
timeouts; the limits are checked against CPU time, never against wall time.
"""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sandpool_testlib import (children, SANDPOOLD, TEST_ROOTFS, is_root, probe,
                              sandbox_env)

CGROUP_ROOT = Path("/sys/fs/cgroup")
# `sandpoold run` puts its sandbox below <its own cgroup>/sandpool-run/;
# in the guest the job runs in the root cgroup.
RUN_SUBDIR = "sandpool-run"
NEEDED_CONTROLLERS = {"memory", "cpu", "pids"}
SLOW = 300  # seconds for one `sandpoold run` under TCG


def cgroup2_only_reason():
    """None when /sys/fs/cgroup is cgroup2, the only cgroup mount, and has
    memory, cpu and pids; else why not."""
    fstypes = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] in ("cgroup", "cgroup2"):
                fstypes[fields[1]] = fields[2]
    if fstypes.get(str(CGROUP_ROOT)) != "cgroup2":
        return f"{CGROUP_ROOT} is not a cgroup2 mount (a hybrid or v1 host; run in tests/vm/run-in-guest)"
    v1 = sorted(m for m, t in fstypes.items() if t == "cgroup")
    if v1:
        return f"cgroup v1 hierarchies are mounted too: {', '.join(v1)}"
    have = set((CGROUP_ROOT / "cgroup.controllers").read_text().split())
    missing = NEEDED_CONTROLLERS - have
    if missing:
        return f"cgroup2 lacks controllers {sorted(missing)} (they are still bound to v1)"
    return None


_why_not = cgroup2_only_reason()
if _why_not and os.environ.get("SANDPOOL_REQUIRE_CGROUP2") == "1":
    # Collected as an error, so the lane goes red with the reason.
    raise RuntimeError(f"SANDPOOL_REQUIRE_CGROUP2=1 but {_why_not}")

pytestmark = [
    pytest.mark.skipif(_why_not is not None, reason=_why_not or ""),
    pytest.mark.skipif(not is_root(), reason="needs root: namespaces, cgroups, mounts"),
    pytest.mark.skipif(not SANDPOOLD.exists(), reason=f"{SANDPOOLD} not built"),
    pytest.mark.skipif(not (TEST_ROOTFS / "usr/bin/probe").exists(),
                       reason=f"test rootfs with the probe not built ({TEST_ROOTFS})"),
]


@pytest.fixture(scope="module")
def env():
    """The environment for `sandpoold run`, with an image it can mount.

    sandpoold mounts the image idmapped. In the guest the build tree is
    9p under overlayfs, which refuses that (EINVAL), so the image is copied
    to the guest's ext4 scratch disk first."""
    rootfs = TEST_ROOTFS
    scratch = os.environ.get("SANDPOOL_VM_SCRATCH")
    if scratch:
        rootfs = Path(scratch) / "test-rootfs"
        if rootfs.exists():
            shutil.rmtree(rootfs)
        subprocess.run(["cp", "-a", str(TEST_ROOTFS), str(rootfs)], check=True)
    return sandbox_env(SANDPOOL_ROOTFS=rootfs)


def cgroup_dirs():
    return sorted(d for d, _, _ in os.walk(CGROUP_ROOT))


@pytest.fixture(autouse=True)
def no_cgroup_left_behind():
    """After every test the cgroup tree is exactly what it was before: no
    sandbox cgroup, and no sandpool-run subtree left below the parent."""
    before = cgroup_dirs()
    yield
    deadline = time.monotonic() + 10
    while cgroup_dirs() != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cgroup_dirs() == before, "cgroups left behind: " + \
        ", ".join(sorted(set(cgroup_dirs()) - set(before)))


def summary_of(stderr):
    return json.loads(stderr.splitlines()[-1])


def start_background(env, *argv, opts=()):
    """A `sandpoold run` left running; returns (Popen, host pid of the
    sandbox's PID 1, host pid of the command)."""
    p = subprocess.Popen([str(SANDPOOLD), "run", "--json", *opts, "--", *argv],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + SLOW
    while time.monotonic() < deadline and p.poll() is None:
        kids = children(p.pid)
        if kids and children(kids[0]):
            return p, kids[0], children(kids[0])[0]
        time.sleep(0.1)
    p.kill()
    out, err = p.communicate()
    raise AssertionError(f"sandbox did not start (rc {p.returncode}): {err}")


def host_cgroup_of(pid):
    """The cgroup2 directory of a process, from the guest's root cgroup
    namespace: the only line of /proc/PID/cgroup is 0::/PATH."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("0::/"), lines
    return CGROUP_ROOT / lines[0][4:].lstrip("/")


def flat_keyed(path):
    return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines())}


def stop(p):
    """End a background run: sandpoold passes SIGTERM on and cleans up."""
    p.terminate()
    out, err = p.communicate(timeout=SLOW)
    assert p.returncode == 128 + signal.SIGTERM, (p.returncode, err)
    return out, err


# ---- limits ------------------------------------------------------------------

def test_memory_limit_oom_kill_is_reported(env):
    r = probe("alloc", "256", opts=["--memory", "64M"], timeout=SLOW, env=env)
    assert r.returncode == 128 + signal.SIGKILL, r
    assert r.summary["oom_killed"] is True, r
    assert r.summary["signal"] == signal.SIGKILL, r
    assert r.summary["exit_code"] is None, r
    assert "alloc mib=" in r.stdout and "alloc done" not in r.stdout, r
    assert 0 < r.summary["peak_memory_bytes"] <= 64 * 2**20, r


def test_cpu_limit_throttles_a_spin(env):
    p, pid1, cmd = start_background(env, "/usr/bin/probe", "spin", "5", opts=["--cpu", "25"])
    try:
        cg = host_cgroup_of(cmd)
        # The kernel's view while it runs: quota 25 ms per 100 ms period.
        assert (cg / "cpu.max").read_text().split() == ["25000", "100000"]
    finally:
        out, err = p.communicate(timeout=SLOW)
    assert p.returncode == 0, err
    s = summary_of(err)
    # 25% of one CPU, with slack for the accounting period around the edges.
    assert s["cpu_ms"] <= 0.35 * s["duration_ms"], s
    spin = dict(kv.split("=") for kv in out.split("spin ", 1)[1].split())
    assert float(spin["cpu_pct"]) <= 35.0, out


def test_pids_limit_stops_forks(env):
    r = probe("fork", "100", opts=["--pids", "16"], timeout=SLOW, env=env)
    assert r.returncode == 0, r
    info = r.info("fork")
    assert int(info["forked"]) < 16, info
    assert info["errno"] == "EAGAIN", info


# ---- the cgroup itself ---------------------------------------------------------

def test_clone_into_cgroup_pid1_is_at_its_cgroup_namespace_root(env):
    # clone3(CLONE_INTO_CGROUP | CLONE_NEWCGROUP): PID 1 is born in the
    # sandbox cgroup, so the new cgroup namespace is rooted there and the
    # probe sees "/" as its cgroup. A runtime that cloned first and moved
    # the child afterwards would show a path outside its namespace root
    # ("0::/../..."), or its parent's cgroup.
    r = probe("cgroup", timeout=SLOW, env=env)
    assert r.returncode == 0, r
    lines = [l for l in r.stdout.splitlines() if l.startswith("cgroup ")]
    assert lines == ["cgroup 0::/"], r.stdout


def test_sandbox_cgroup_holds_pid1_and_the_command_with_the_limits(env):
    p, pid1, cmd = start_background(
        env, "/usr/bin/probe", "sleep", "600",
        opts=["--memory", "96M", "--cpu", "30", "--pids", "40", "--timeout", "600s"])
    try:
        cg = host_cgroup_of(pid1)
        assert host_cgroup_of(cmd) == cg
        assert cg.parent.name == RUN_SUBDIR, cg
        procs = {int(x) for x in (cg / "cgroup.procs").read_text().split()}
        assert {pid1, cmd} <= procs, procs
        assert (cg / "cgroup.type").read_text().strip() == "domain"
        assert int((cg / "memory.max").read_text()) == 96 * 2**20
        assert (cg / "memory.swap.max").read_text().strip() == "0"
        assert (cg / "memory.oom.group").read_text().strip() == "1"
        assert (cg / "cpu.max").read_text().split() == ["30000", "100000"]
        assert (cg / "pids.max").read_text().strip() == "40"
        # The parent delegates exactly what the sandbox needs, and nothing
        # runs in it: v2's "no internal processes" rule.
        assert NEEDED_CONTROLLERS <= set((cg.parent / "cgroup.subtree_control").read_text().split())
        assert (cg.parent / "cgroup.procs").read_text().strip() == ""
    finally:
        stop(p)
    assert not cg.exists(), f"{cg} left after the run"


# ---- delegation ----------------------------------------------------------------

def _api(sock, method, path, body=None, timeout=SLOW):
    import http.client
    import socket as _socket

    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(sock)

    c = Conn("localhost", timeout=timeout)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"} if body is not None else {})
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data and r.getheader("Content-Type", "").startswith("application/json") else data)
    finally:
        c.close()


def test_delegated_layout_daemon_in_leaf(env, tmp_path):
    """sandpoold as under systemd's Delegate=yes: started in a cgroup of its
    own (<parent>, with processes in it), it moves itself into
    <parent>/supervisor, enables memory, cpu and pids for <parent>'s
    children, and puts each sandbox in <parent>/sandboxes/<name>, beside
    itself; a stop removes every sandbox cgroup."""
    parent = CGROUP_ROOT / f"sp-delegated-{os.getpid()}"
    root_ctl = (CGROUP_ROOT / "cgroup.subtree_control").read_text().split()
    missing = [c for c in sorted(NEEDED_CONTROLLERS) if c not in root_ctl]
    if missing:
        (CGROUP_ROOT / "cgroup.subtree_control").write_text(" ".join("+" + c for c in missing))
    parent.mkdir()
    sock = str(tmp_path / "api.sock")
    conf = tmp_path / "sandpool.conf"
    # The state directory must be traversable by the sandboxes' root ids
    # (pytest's tmp_path sits below 0700 directories).
    state = Path("/run/sp-delegated-%d" % os.getpid())
    state.mkdir(mode=0o755)
    conf.write_text("[server]\nsocket = %s\nsocket_mode = 0600\nstate_dir = %s\ncgroup_parent = /%s\n"
                    "[images]\nrootfs = %s\nseccomp_policy = %s\n"
                    "[pool]\npool_size = 1\nmin_pool_size = 0\nmax_pool_size = 4\n"
                    % (sock, state, parent.name, env["SANDPOOL_ROOTFS"], env["SANDPOOL_SECCOMP_POLICY"]))
    daemon_env = {k: v for k, v in os.environ.items() if not k.startswith("SANDPOOL_")}
    # Born in <parent>, as systemd starts a service in its own cgroup.
    d = subprocess.Popen(["/bin/sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh",
                          str(parent), str(SANDPOOLD), "--config", str(conf)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=daemon_env)
    try:
        deadline = time.monotonic() + SLOW
        while True:
            assert d.poll() is None, d.stdout.read()
            try:
                if _api(sock, "GET", "/v1/health", timeout=30)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the daemon did not come up"
            time.sleep(0.5)
        status, sess = _api(sock, "POST", "/v1/sessions", {})
        assert status == 201, sess
        assert str(d.pid) in (parent / "supervisor" / "cgroup.procs").read_text().split()
        assert (parent / "cgroup.procs").read_text().strip() == ""
        assert NEEDED_CONTROLLERS <= set((parent / "cgroup.subtree_control").read_text().split())
        boxes = [b for b in (parent / "sandboxes").iterdir() if b.is_dir()]
        assert boxes, "no sandbox cgroup below %s/sandboxes" % parent
        busy = [b for b in boxes if (b / "cgroup.procs").read_text().strip()]
        assert busy, "no sandbox cgroup holds a process"
        for b in busy:
            assert (b / "memory.max").read_text().strip() == str(256 * 2**20)
            assert (b / "pids.max").read_text().strip() == "256"
        assert _api(sock, "DELETE", "/v1/sessions/%s" % sess["id"])[0] == 204
    finally:
        d.send_signal(signal.SIGTERM)
        try:
            rc = d.wait(SLOW)
        except subprocess.TimeoutExpired:
            d.kill()
            rc = d.wait()
        log = d.stdout.read()
    assert rc == 0, log
    try:
        assert not (parent / "sandboxes").exists(), "sandbox cgroups left: " + log
    finally:
        # The leaf the daemon lived in is left for a restarted daemon; the
        # test removes what it made.
        for leftover in (parent / "supervisor", parent):
            if leftover.exists():
                leftover.rmdir()
        shutil.rmtree(state, ignore_errors=True)


# ---- placement without systemd (supervisor/cgroup-scope.c) ----------------------

def _sleeper_in(cg):
    """A process parked in cgroup cg, like a login shell in its session."""
    p = subprocess.Popen(["/bin/sh", "-c", 'echo $$ > "$1/cgroup.procs" && exec sleep 600', "sh", str(cg)])
    deadline = time.monotonic() + 30
    while str(p.pid) not in (cg / "cgroup.procs").read_text().split():
        assert time.monotonic() < deadline, f"the sleeper did not reach {cg}"
        time.sleep(0.05)
    return p


def _run_from(cg, env, *argv):
    """`sandpoold run` started from cgroup cg (the shell moves itself there
    and execs it, so the pid is sandpoold's)."""
    return subprocess.Popen(["/bin/sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh", str(cg),
                             str(SANDPOOLD), "run", "--", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_run_from_a_shared_cgroup_makes_one_of_its_own(env):
    """No systemd, and the caller's cgroup holds another process (a shell's
    session): v2 forbids controllers below it, so the run makes a cgroup of
    its own beside it, runs the sandbox below that with the limits, and
    removes it after (the fixture checks the tree)."""
    login = CGROUP_ROOT / f"sp-login-{os.getpid()}"
    login.mkdir()
    sleeper = _sleeper_in(login)
    try:
        p = _run_from(login, env, "/bin/sh", "-c", "sleep 2; echo ran")
        own = CGROUP_ROOT / f"sandpool-run-{p.pid}"
        box = own / RUN_SUBDIR / f"run-{p.pid}"
        deadline = time.monotonic() + SLOW
        while not (box / "memory.max").exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        limits = ((box / "memory.max").read_text().strip(), (box / "cpu.max").read_text().split())
        out, err = p.communicate(timeout=SLOW)
        assert p.returncode == 0, err
        assert out == "ran\n"
        assert limits == (str(256 * 2**20), ["25000", "100000"]), limits
        assert not own.exists(), f"{own} left after the run"
        # Back where it came from at the end; the sleeper never moved.
        assert (login / "cgroup.procs").read_text().split() == [str(sleeper.pid)]
    finally:
        sleeper.kill()
        sleeper.wait()
        login.rmdir()


def test_run_says_what_it_needs_when_it_has_neither(env):
    """No systemd, a shared cgroup, and its parent holds processes too, so no
    cgroup of our own can get controllers: exit 125, naming what would do."""
    busy = CGROUP_ROOT / f"sp-busy-{os.getpid()}"
    busy.mkdir()
    session = busy / "session"
    session.mkdir()
    sleepers = [_sleeper_in(busy), _sleeper_in(session)]
    try:
        p = _run_from(session, env, "/bin/true")
        out, err = p.communicate(timeout=SLOW)
        assert p.returncode == 125, err
        assert f"/{busy.name}/session is shared and no systemd can delegate a scope" in err, err
        assert f"+memory +cpu +pids in /{busy.name}: Device or resource busy" in err, err
        assert "Needed: systemd as PID 1" in err, err
        assert "cgroup_parent" in err, err
        assert not (busy / f"sandpool-run-{p.pid}").exists()
    finally:
        for s in sleepers:
            s.kill()
            s.wait()
        session.rmdir()
        busy.rmdir()
