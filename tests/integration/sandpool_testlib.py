"""Shared helpers for the integration tests: where the build is, how to run
`sandpoold run`, and how to read the probe's output. The tests assert on
what the kernel says (cgroup files, /proc, the mount table)."""
import json
import os
import re
import subprocess
import time
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("SANDPOOL_BUILD_DIR", SOURCE_DIR / "build"))
SANDPOOLD = BUILD_DIR / "supervisor" / "sandpoold"
TEST_ROOTFS = Path(os.environ.get("SANDPOOL_TEST_ROOTFS", BUILD_DIR / "test-rootfs"))
POLICY = Path(os.environ.get("SANDPOOL_TEST_POLICY", SOURCE_DIR / "policies" / "default.policy"))
STAGE_DIR = Path("/run/sandpool/stage")


def sandbox_env(**extra):
    env = dict(os.environ)
    env.update({
        "SANDPOOL_ROOTFS": str(TEST_ROOTFS),
        "SANDPOOL_SECCOMP_POLICY": str(POLICY),
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Run:
    """The result of one `sandpoold run`: status, output, JSON summary."""

    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr_all = proc.stderr
        self.summary = None
        lines = proc.stderr.splitlines()
        if lines and lines[-1].startswith("{"):
            try:
                self.summary = json.loads(lines[-1])
                lines = lines[:-1]
            except json.JSONDecodeError:
                pass
        self.stderr = "\n".join(lines)

    def checks(self, subcmd=None):
        """Probe check lines as {(subcmd, name): (ret, err)}."""
        out = {}
        for line in self.stdout.splitlines():
            f = line.split(" ")
            if len(f) >= 4 and (subcmd is None or f[0] == subcmd):
                out[(f[0], f[1])] = (f[2], f[3])
        return out

    def info(self, subcmd):
        """Probe info lines `SUBCMD key=value ...` merged into one dict."""
        d = {}
        for line in self.stdout.splitlines():
            f = line.split(" ")
            if f[0] != subcmd:
                continue
            for kv in f[1:]:
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    d[k] = v
        return d

    def __repr__(self):
        return f"<Run rc={self.returncode} stdout={self.stdout[-2000:]!r} stderr={self.stderr_all[-2000:]!r}>"


def run(*argv, opts=(), timeout=60, input=None, env=None):
    """`sandpoold run --json OPTS -- ARGV`, with the test rootfs and policy."""
    cmd = [str(SANDPOOLD), "run", "--json", *opts, "--", *argv]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env or sandbox_env(), errors="replace") as p:
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
    r = Run(subprocess.CompletedProcess(cmd, p.returncode, out, err))
    r.pid = p.pid  # its sandbox is named run-<pid>
    return r


def probe(*args, opts=(), timeout=60, **kw):
    return run("/usr/bin/probe", *args, opts=opts, timeout=timeout, **kw)


def host_mounts():
    return Path("/proc/self/mountinfo").read_text()


def cgroup_v1_dirs(prefix):
    """The one-shot runs' sandbox cgroups (<hierarchy>/.../sandpool-run/<name>)
    in every v1 hierarchy whose name starts with prefix."""
    found = []
    root = Path("/sys/fs/cgroup")
    for ctrl in ("memory", "cpu", "cpuacct", "pids"):
        base = root / ctrl
        if not base.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(base):
            if os.path.basename(dirpath) != "sandpool-run":
                continue
            found += [os.path.join(dirpath, d) for d in dirnames if d.startswith(prefix)]
    return found


def children(pid):
    """The pids of a process's children (its threads' children included in
    the leader's list for a single-threaded process); [] once it is gone."""
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return None


def sandbox_pid1s(daemon_pid):
    """The daemon's children that are sandboxes' PID 1 (the others are its
    sandbox factory's workers)."""
    return [p for p in children(daemon_pid) if comm(p) == "sandpool-init"]


def factory_workers(daemon_pid):
    return [p for p in children(daemon_pid) if comm(p) == "sandpool-fact"]


def is_root():
    return os.geteuid() == 0


ERRNO_RE = re.compile(r"^E[A-Z0-9]+$")


def wait_for(pred, timeout=30, what="condition"):
    """pred()'s first true value, polled every 50 ms; AssertionError after timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def metric(d, name):
    """The value of the metric `name` on d's /metrics (int when whole), or None."""
    m = re.search(r"^%s (\d+(?:\.\d+)?)" % re.escape(name), d.get("/metrics").data.decode(), re.M)
    if not m:
        return None
    return int(m.group(1)) if m.group(1).isdigit() else float(m.group(1))
