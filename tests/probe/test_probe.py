#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The probe against the real kernel, outside any sandbox.

These tests pin the probe's output grammar (the escape and limit tests parse
it) and check that each result means what it claims: a check denied by a
missing capability prints EPERM, the same check with the capability gets
past the permission check. Tests needing root or a private mount namespace
skip with their reason when run unprivileged.

Run by meson (`meson test probe-output`) with SANDPOOL_PROBE set, or by hand:
    SANDPOOL_PROBE=build/tests/probe/probe /usr/bin/python3 tests/probe/test_probe.py
"""
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

PROBE = os.environ.get("SANDPOOL_PROBE", "")
IS_ROOT = os.geteuid() == 0
NOBODY = 65534

# A check line: SUBCMD NAME RET ERR [key=value...], or a killed/exited line.
CHECK_RE = re.compile(
    r"^(?P<cmd>\S+) (?P<name>\S+) "
    r"(?:(?P<ret>-?\d+) (?P<err>OK|E[A-Z0-9]+)|killed SIG[A-Z0-9]+|exited \d+|nofork E[A-Z0-9]+)"
    r"(?: \S+=\S*)*$"
)

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (setuid to nobody, private mount namespaces)")


def run(*args, check=True, **kw):
    p = subprocess.run([PROBE, *map(str, args)], capture_output=True, text=True, timeout=60, **kw)
    if check:
        assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def checks(stdout):
    """Parse check lines into {name: (ret, err)}; err is 'killed' etc. for the other forms."""
    out = {}
    for line in stdout.splitlines():
        m = CHECK_RE.match(line)
        assert m, f"not a check line: {line!r}"
        tokens = line.split()
        out[m["name"]] = (int(m["ret"]), m["err"]) if m["ret"] is not None else (None, tokens[2])
    return out


def kv(line):
    return dict(t.split("=", 1) for t in line.split()[1:] if "=" in t)


def test_usage_errors_exit_2():
    assert run(check=False).returncode == 2
    assert run("no-such-subcommand", check=False).returncode == 2
    p = run("syscall", "getpid", "no-such-call", check=False)
    assert p.returncode == 2 and p.stdout == "", "a typo must not run half the checks"
    assert run("fork", "many", check=False).returncode == 2
    assert run("sleep", check=False).returncode == 2


def test_help_lists_every_syscall_check():
    names = run("help").stdout.splitlines()[-1].split(":", 1)[1].split()
    got = checks(run("syscall", "all").stdout)
    assert list(got) == names
    for must in ["bpf", "keyctl", "userfaultfd", "io_uring_setup", "kexec_load", "open_by_handle_at",
                 "unshare-user", "clone3", "ptrace", "mknod", "mount", "pivot_root", "move_mount"]:
        assert must in names


def test_syscall_line_format():
    lines = run("syscall", "getpid", "ptrace=1", "unshare-user").stdout.splitlines()
    assert len(lines) == 3
    got = checks("\n".join(lines))
    assert got["getpid"][1] == "OK" and got["getpid"][0] > 0
    assert lines[1].startswith("syscall ptrace ") and lines[1].endswith(" pid=1")


def test_32bit_abi_lines():
    for cmd in ("int80", "x32"):
        got = checks(run(cmd).stdout)
        assert list(got) == ["getpid"]


@needs_root
def test_unprivileged_gets_eperm_where_the_kernel_checks_capabilities():
    got = checks(run("syscall", "mount", "umount2", "pivot_root", "reboot", "settimeofday", "setuid-0",
                     "swapon", "acct", "mknod", "chroot", "iopl", "socket-raw", preexec_fn=as_nobody).stdout)
    for name, (ret, err) in got.items():
        if err == "ENOSYS":  # a kernel built without it (iopl, swap)
            continue
        assert (ret, err) == (-1, "EPERM"), name


@needs_root
def test_privileged_gets_past_the_permission_check_without_effect():
    # Same calls as root: the argument errors prove the probe's arguments
    # reach the kernel past the capability check.
    got = checks(run("syscall", "umount2", "pivot_root", "reboot", "acct", "swapon", "settimeofday").stdout)
    assert got["umount2"] == (-1, "EINVAL")
    assert got["pivot_root"] == (-1, "ENOENT")
    assert got["reboot"] == (-1, "EINVAL")
    assert got["acct"] in [(-1, "ENOENT"), (-1, "ENOSYS")]
    assert got["swapon"] in [(-1, "ENOENT"), (-1, "ENOSYS")]
    assert got["settimeofday"] == (0, "OK")


def test_status_and_ids():
    lines = run("status").stdout.splitlines()
    keys = {line.split()[1]: line.split()[2] for line in lines}
    for k in ("CapEff", "CapBnd", "CapPrm", "CapAmb", "NoNewPrivs", "Seccomp", "Uid"):
        assert k in keys
    assert re.fullmatch(r"[0-9a-f]{16}", keys["CapEff"])
    ids = kv(run("ids").stdout)
    assert int(ids["uid"]) == os.getuid() and int(ids["euid"]) == os.geteuid()


@needs_root
def test_nobody_has_no_capabilities():
    keys = {l.split()[1]: l.split()[2] for l in run("status", preexec_fn=as_nobody).stdout.splitlines()}
    assert keys["CapEff"] == "0" * 16
    assert kv(run("ids", preexec_fn=as_nobody).stdout)["euid"] == str(NOBODY)


def test_alloc_prints_progress():
    lines = run("alloc", 3).stdout.splitlines()
    assert lines == ["alloc mib=1", "alloc mib=2", "alloc mib=3", "alloc done mib=3"]


def test_alloc_reports_failure_under_rlimit_as():
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (64 << 20, 64 << 20))
    lines = run("alloc", 200, preexec_fn=limit).stdout.splitlines()
    assert lines[-1].startswith("alloc failed ") and kv(lines[-1])["errno"] == "ENOMEM"


def test_fork_counts_and_reaps():
    lines = run("fork", 5).stdout.splitlines()
    assert lines == ["fork requested=5 forked=5 errno=OK", "fork reaped=5"]


@needs_root
def test_fork_and_forkbomb_stop_at_rlimit_nproc():
    # RLIMIT_NPROC counts the user's processes; root ignores it, nobody not.
    def limited():
        resource.setrlimit(resource.RLIMIT_NPROC, (30, 30))
        as_nobody()
    f = kv(run("fork", 100, preexec_fn=limited).stdout.splitlines()[0])
    assert 0 < int(f["forked"]) < 100 and f["errno"] == "EAGAIN"
    lines = run("forkbomb", 1, preexec_fn=limited).stdout.splitlines()
    assert lines[0].startswith("forkbomb started pid=")
    b = kv(lines[-1])
    assert int(b["failed"]) > 0 and b["errno"] == "EAGAIN"


def test_write_and_efbig():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "f")
        lines = run("write", path, 2).stdout.splitlines()
        assert lines[-1] == f"write {path} 0 OK bytes={2 << 20}"
        assert os.path.getsize(path) == 2 << 20

        def limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        last = run("write", path, 3, preexec_fn=limit).stdout.splitlines()[-1]
        assert last == f"write {path} -1 EFBIG bytes={1 << 20}"


def test_flood_writes_exactly_and_reports_on_the_other_stream():
    p = subprocess.run([PROBE, "flood", "2"], capture_output=True, timeout=60)
    assert len(p.stdout) == 2 << 20 and set(p.stdout) == {ord("x"), ord("\n")}
    assert p.stderr.decode() == f"flood stdout 0 OK bytes={2 << 20}\n"
    p = subprocess.run([PROBE, "flood", "1", "stderr"], capture_output=True, timeout=60)
    assert len(p.stderr) == 1 << 20 and p.stdout.decode().startswith("flood stderr 0 OK")


def test_flood_into_a_closed_pipe_reports_epipe():
    p = subprocess.Popen([PROBE, "flood", "64"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(4096)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=30) == 0
    assert err.startswith("flood stdout -1 EPIPE bytes=")


def test_spin_measures_cpu_and_wall():
    d = kv(run("spin", 0.3).stdout)
    assert float(d["wall_ms"]) >= 300 and float(d["cpu_ms"]) > 0


def test_ignore_term_survives_sigterm():
    p = subprocess.Popen([PROBE, "ignore-term", "10"], stdout=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        assert kv(first)["pid"] == str(p.pid)
        p.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert p.poll() is None, "SIGTERM must be ignored"
    finally:
        p.kill()
        p.wait()


def test_double_fork_leaves_a_grandchild_in_its_own_session():
    start = time.monotonic()
    p = subprocess.run([PROBE, "double-fork", "1"], capture_output=True, text=True, timeout=30)
    # EOF only came when the grandchild, which holds stdout, exited.
    assert time.monotonic() - start >= 0.9
    lines = p.stdout.splitlines()
    g = kv(lines[0])
    assert g["ok"] == "yes" and g["pid"] == g["sid"] and int(g["pid"]) != p.returncode
    assert lines[1] == f"double-fork grandchild-done pid={g['pid']}"


def test_files_sleep_cwd_hostname():
    with tempfile.TemporaryDirectory() as d:
        assert run("files", 7, d).stdout == f"files {d} 0 OK created=7\n"
        assert len(os.listdir(d)) == 7
        assert run("files", 1, d + "/missing").stdout.split()[2:4] == ["-1", "ENOENT"]
    assert run("sleep", 0.05).stdout.splitlines()[1] == "sleep done"
    assert run("cwd", cwd="/").stdout == "cwd path=/\n"
    assert kv(run("hostname").stdout)["nodename"] == os.uname().nodename


def test_open_readlink_kill_and_escaping():
    assert run("open", "/nonexistent/x").stdout == "open /nonexistent/x -1 ENOENT mode=r\n"
    assert run("open", "/", "dir").stdout.split()[3] == "OK"
    assert run("open", "/", "bogus", check=False).returncode == 2
    with tempfile.TemporaryDirectory() as d:
        assert run("open", d + "/a b", "wc").stdout.startswith(f"open {d}/a\\040b ")
    assert run("readlink", "/proc/self/exe").stdout.split()[3:5] == ["OK", f"target={os.path.realpath(PROBE)}"]
    assert run("kill", 0, "SIG0").stdout == "kill 0 0 OK sig=SIG0\n"
    assert run("kill", 999999999, "TERM").stdout == "kill 999999999 -1 ESRCH sig=SIGTERM\n"


def test_fds_and_ns_and_ifaces():
    fds = [l.split() for l in run("fds", stdin=subprocess.DEVNULL).stdout.splitlines()]
    assert ["fds", "0", "/dev/null"] in fds
    ns = {l.split()[1]: l.split()[2] for l in run("ns").stdout.splitlines()}
    assert ns["mnt"].startswith("mnt:[") and "user" in ns
    ifaces = run("ifaces").stdout.splitlines()
    lo = [l for l in ifaces if l.startswith("ifaces lo ")]
    assert lo and "LOOPBACK" in kv(lo[0])["flags"]


def test_connect_and_tcp_loopback_only():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen()
        assert run("connect", path).stdout == f"connect {path} 0 OK\n"
        srv.close()
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(b"\0sandpool-probe-test-%d" % os.getpid())
    abstract.listen()
    assert run("connect", "@sandpool-probe-test-%d" % os.getpid()).stdout.split()[2:] == ["0", "OK"]
    abstract.close()
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    port = tcp.getsockname()[1]
    assert run("tcp", "127.0.0.1", port).stdout == f"tcp 127.0.0.1:{port} 0 OK\n"
    tcp.close()
    assert run("tcp", "127.0.0.1", port).stdout == f"tcp 127.0.0.1:{port} -1 ECONNREFUSED\n"
    # Off-machine addresses are refused before any packet is sent.
    assert run("tcp", "192.0.2.1", 80, check=False).returncode == 2


def test_shm_roundtrip():
    name = f"sandpool-probe-test-{os.getpid()}"
    try:
        assert run("shm-write", name, "hello").stdout == f"shm-write /{name} 5 OK\n"
        assert run("shm-read", name).stdout == f"shm-read /{name} 5 OK data=hello\n"
    finally:
        if os.path.exists(f"/dev/shm/{name}"):
            os.unlink(f"/dev/shm/{name}")
    assert run("shm-read", name).stdout.split()[2:4] == ["-1", "ENOENT"]


def test_exe_write_never_opens_a_running_binary():
    got = checks(run("exe-write").stdout)
    # ETXTBSY: the running binary; EACCES first if we may not write it at all.
    assert got["/proc/self/exe"] in [(-1, "ETXTBSY"), (-1, "EACCES")]
    assert set(got) == {"/proc/self/exe", "/proc/1/exe", "/proc/1/exe-read", "/proc/1/exe-reopen"}


def test_ptrace_pid1_lines():
    got = checks(run("ptrace-pid1").stdout)
    assert list(got) == ["attach", "environ", "maps", "mem", "vm-readv", "pidfd-getfd"]
    if not IS_ROOT:
        return  # Yama may forbid attaching to a non-descendant: needs CAP_SYS_PTRACE
    # With CAP_SYS_PTRACE a process of ours is fully accessible: every check succeeds.
    child = subprocess.Popen(["sleep", "10"])
    try:
        got = checks(run("ptrace-pid1", child.pid).stdout)
        for name, (ret, err) in got.items():
            assert err == "OK", (name, ret, err)
    finally:
        child.kill()
        child.wait()


def test_tiocsti_lines():
    got = checks(run("tiocsti", stdin=subprocess.DEVNULL).stdout)
    assert got["stdin"] == (-1, "ENOTTY") and got["stdin-masked"] == (-1, "ENOTTY")
    assert set(got) == {"stdin", "stdin-masked", "pty", "pty-masked"}


def in_private_mount_ns(script):
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-euc", script],
                          capture_output=True, text=True, timeout=60)


@needs_root
def test_remount_and_mount_setattr_on_own_readonly_tmpfs():
    # A read-only tmpfs of our own in a private mount namespace: as root
    # both remounts succeed and the probe puts the read-only flag back.
    with tempfile.TemporaryDirectory() as d:
        p = in_private_mount_ns(f"""
            mount -t tmpfs -o ro,nosuid none {d}
            {PROBE} remount-rw {d}
            grep " {d} " /proc/self/mountinfo | cut -d' ' -f6
            {PROBE} mount-setattr {d}
            grep " {d} " /proc/self/mountinfo | cut -d' ' -f6
        """)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert lines[0] == f"remount-rw sb 0 OK path={d} was_ro=yes"
        assert lines[1] == f"remount-rw bind 0 OK path={d} was_ro=yes"
        assert lines[2].startswith("ro,nosuid")
        assert lines[3] == f"mount-setattr rdonly 0 OK path={d} was_set=yes"
        assert lines[4] == f"mount-setattr nosuid 0 OK path={d} was_set=yes"
        assert lines[7].startswith("ro,nosuid"), "attributes must be restored"


@needs_root
def test_mount_fs_and_cgroup_in_private_mount_ns():
    p = in_private_mount_ns(f"{PROBE} mount-fs tmpfs size=1m; {PROBE} mount-cgroup")
    assert p.returncode == 0, p.stderr
    got = checks(p.stdout)
    assert got["tmpfs"] == (0, "OK")
    assert set(got) == {"tmpfs", "cgroup2", "cgroup-memory", "cgroup-pids"}
    p = subprocess.run([PROBE, "mount-fs", "tmpfs"], capture_output=True, text=True, preexec_fn=as_nobody)
    assert checks(p.stdout)["tmpfs"] == (-1, "EPERM")


@needs_root
def test_chroot_escape_from_the_host_root_goes_nowhere():
    got = checks(run("chroot-escape").stdout)
    assert got["escape"] == (0, "OK")
    line = run("chroot-escape").stdout
    assert "escaped=no" in line
    assert checks(run("chroot-escape", preexec_fn=as_nobody).stdout)["escape"] == (-1, "EPERM")


if __name__ == "__main__":
    if not PROBE or not os.access(PROBE, os.X_OK):
        print("SKIP: SANDPOOL_PROBE is not set to the built probe", flush=True)
        sys.exit(77)
    sys.exit(pytest.main([__file__, "-q", "-rs", "-p", "no:cacheprovider"]))
