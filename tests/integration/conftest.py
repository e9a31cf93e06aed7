# SPDX-License-Identifier: MIT
"""Fixtures that run the real sandpoold on a temporary socket, as root,
against the test rootfs, each daemon with its own cgroup subtree, and
check that it leaves nothing behind when it stops.

Environment:
  SANDPOOL_BUILD_DIR    the meson build directory (sandpoold, test-rootfs)
  SANDPOOL_TEST_ROOTFS  another rootfs to use instead of <build>/test-rootfs
  SANDPOOL_TEST_POLICY  another seccomp policy instead of policies/default.policy
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import apiclient  # noqa: E402

SOURCE_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("SANDPOOL_BUILD_DIR", os.path.join(SOURCE_ROOT, "build"))
SANDPOOLD = os.path.join(BUILD_DIR, "supervisor", "sandpoold")
ROOTFS = os.environ.get("SANDPOOL_TEST_ROOTFS", os.path.join(BUILD_DIR, "test-rootfs"))
POLICY = os.environ.get("SANDPOOL_TEST_POLICY", os.path.join(SOURCE_ROOT, "policies", "default.policy"))
SKIP = 77  # meson: this test was skipped


def require_daemon_prerequisites():
    """Skip, loudly, when the machine cannot run the daemon's tests. Only
    the API tests ask (through their fixtures): the other integration
    tests in this directory have their own needs."""
    why = None
    if os.geteuid() != 0:
        why = "the daemon needs root (namespaces, cgroups, mounts)"
    elif not os.access(SANDPOOLD, os.X_OK):
        why = "%s is not built" % SANDPOOLD
    elif not os.path.isdir(os.path.join(ROOTFS, "bin")):
        why = "no test rootfs at %s (set SANDPOOL_TEST_ROOTFS or build it)" % ROOTFS
    elif not shutil.which("setpriv"):
        why = "setpriv (util-linux) is missing"
    if why:
        print("SKIP: " + why, file=sys.stderr)
        pytest.exit("SKIP: " + why, returncode=SKIP)


_counter = [0]


class Daemon:
    """One sandpoold process with its own socket, state dir and cgroups."""

    def __init__(self, conf=None, env=None):
        require_daemon_prerequisites()
        _counter[0] += 1
        # Under /tmp, traversable: a test client runs as nobody.
        self.dir = tempfile.mkdtemp(prefix="sandpoold-test-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "api.sock")
        self.state = os.path.join(self.dir, "state")
        self.conf_path = os.path.join(self.dir, "sandpool.conf")
        self.log_path = os.path.join(self.dir, "sandpoold.log")
        self.subdir = "sp-test-%d-%d" % (os.getpid(), _counter[0])
        self.extra_env = dict(env or {})
        sections = {
            "server": {"socket": self.socket, "socket_mode": "0666", "state_dir": self.state},
            "images": {"rootfs": ROOTFS, "seccomp_policy": POLICY},
            "limits": {"cpu_limit": "100", "max_upload": "1M"},
            # a small warm pool: every test daemon warms it on start
            "pool": {"pool_size": "2", "min_pool_size": "1"},
        }
        for sec, kv in (conf or {}).items():
            sections.setdefault(sec, {}).update(kv)
        with open(self.conf_path, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
        self.proc = None
        self.cgroup_paths = []
        # e.g. ["nsenter", "--net=/run/netns/x"]: run it in another namespace
        self.argv_prefix = []

    def start(self, timeout=10):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANDPOOL_")}
        env.update(self.extra_env)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            self.argv_prefix + [SANDPOOLD, "--config", self.conf_path, "--cgroup-subdir", self.subdir],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sandpoold exited with %d:\n%s" % (self.proc.returncode, self.read_log()))
            try:
                r = self.get("/v1/health", timeout=2)
                if r.status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        else:
            raise RuntimeError("sandpoold did not answer within %ss:\n%s" % (timeout, self.read_log()))
        m = re.search(r"cgroup v\d: (.*)", self.read_log())
        if m:
            self.cgroup_paths = re.findall(r" at (/sys/fs/cgroup/\S+?)(?:;|$| )", m.group(1))
        return self

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    @property
    def pid(self):
        return self.proc.pid

    def pool_at_rest(self, timeout=30):
        """Wait until no sandbox is being made or destroyed: sandboxes are
        made off the loop and their fds arrive when they are ready, so an fd
        baseline is only a baseline once the pool is at rest."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.get("/v1/health").json["pool"]
            if p["warming"] == 0 and p["destroying"] == 0 and p["available"] >= min(p["target"], p["max_capacity"] - p["allocated"]):
                return p
            time.sleep(0.02)
        raise AssertionError("the pool did not come to rest: %s" % p)

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def sanitized(self):
        """Built with ASan: its quarantine makes RSS meaningless as a leak check."""
        with open("/proc/%d/maps" % self.pid) as f:
            return "libasan" in f.read()

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def request(self, method, path, body=None, headers=None, timeout=60):
        return apiclient.request(self.socket, method, path, body, headers, timeout)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def as_nobody(self, method, path, body=None, groups=None):
        """The same request from uid/gid 65534, with no supplementary
        groups or the given ones."""
        grp = ["--groups=" + ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
        cmd = ["setpriv", "--reuid=65534", "--regid=65534"] + grp + [
               sys.executable, os.path.join(HERE, "apiclient.py"), self.socket, method, path]
        if body is not None:
            cmd.append(body if isinstance(body, str) else json.dumps(body))
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)

    def session(self, body=None):
        r = self.post("/v1/sessions", body)
        assert r.status == 201, r
        return r.json["id"]

    def exec(self, sid, body, **kw):
        return self.post("/v1/sessions/%s/exec" % sid, body, **kw)

    def stop(self, timeout=5.0):
        """SIGTERM; must exit 0 within timeout and leave no cgroup behind."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("sandpoold did not exit within %ss of SIGTERM:\n%s" % (timeout, self.read_log()))
        self.stop_seconds = time.monotonic() - t0
        self.log.close()
        assert rc == 0, "sandpoold exited with %d:\n%s" % (rc, self.read_log())
        self.assert_nothing_left()
        return rc

    def assert_nothing_left(self):
        # A cgroup directory can only be removed once no process is in it:
        # the subtree being gone means no sandbox process survived.
        for p in self.cgroup_paths:
            assert not os.path.exists(p), "cgroup %s left behind" % p
        with open("/proc/self/mountinfo") as f:
            mounts = f.read()
        assert self.dir not in mounts, "a mount below %s is left" % self.dir
        assert not os.path.exists(self.socket), "socket file left behind"

    def sweep_cgroups(self):
        """After a daemon that crashed (the test has failed already): remove
        the empty cgroups of its own, uniquely named subtree, so that one
        failure does not leave debris on the host."""
        for p in self.cgroup_paths:
            if not os.path.isdir(p):
                continue
            for child in sorted(os.listdir(p)):
                c = os.path.join(p, child)
                if os.path.isdir(c):
                    try:
                        os.rmdir(c)
                    except OSError:
                        pass
            try:
                os.rmdir(p)
            except OSError:
                pass

    def cleanup(self):
        try:
            if self.proc and self.proc.poll() is None:
                self.stop()
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.sweep_cgroups()
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon():
    d = Daemon().start()
    try:
        yield d
        d.stop()
    finally:
        d.cleanup()


@pytest.fixture
def make_daemon():
    made = []

    def make(conf=None, env=None, start=True):
        d = Daemon(conf, env)
        made.append(d)
        return d.start() if start else d

    yield make
    for d in made:
        d.cleanup()
