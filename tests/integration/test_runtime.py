"""The runtime, end to end through `sandpoold run`: one sandbox per test,
the busybox test image with the static probe, v1 cgroups on this host.
Every assertion reads what the kernel reports."""
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sandpool_testlib import (children, SANDPOOLD, STAGE_DIR, TEST_ROOTFS, cgroup_v1_dirs,
                              is_root, probe, run, sandbox_env)

pytestmark = [
    pytest.mark.skipif(not is_root(), reason="needs root: namespaces, cgroups, mounts"),
    pytest.mark.skipif(not SANDPOOLD.exists(), reason=f"{SANDPOOLD} not built"),
    pytest.mark.skipif(not (TEST_ROOTFS / "usr/bin/probe").exists(), reason="test rootfs not built"),
]


def host_status(pid):
    d = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        d[k] = v.strip()
    return d


def start_background(*argv, opts=()):
    """A `sandpoold run` left running; returns (Popen, sandbox PID 1 host pid)."""
    p = subprocess.Popen([str(SANDPOOLD), "run", "--json", *opts, "--", *argv],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=sandbox_env())
    deadline = time.time() + 20
    while time.time() < deadline:
        kids = children(p.pid)
        if kids and children(kids[0]):
            return p, kids[0]
        time.sleep(0.02)
    p.kill()
    raise AssertionError("sandbox did not start: " + p.stderr.read())


# ---- limits --------------------------------------------------------------

def test_memory_bomb_is_oom_killed_and_reported():
    r = probe("alloc", "512", opts=["--memory", "64M"], timeout=120)
    assert r.returncode == 128 + signal.SIGKILL, r
    assert r.summary["oom_killed"] is True, r
    assert r.summary["signal"] == signal.SIGKILL
    assert r.summary["exit_code"] is None
    # the probe reported progress before it died, and never reached 512
    assert "alloc mib=" in r.stdout and "alloc done" not in r.stdout
    assert r.summary["peak_memory_bytes"] <= 64 * 2**20


def test_cpu_hog_is_throttled():
    p, pid1 = start_background("/usr/bin/probe", "spin", "2", opts=["--cpu", "25"])
    cpu_path = None
    for line in Path(f"/proc/{pid1}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if "cpu" in ctrls.split(","):
            cpu_path = Path("/sys/fs/cgroup/cpu") / path.lstrip("/")
    assert cpu_path and cpu_path.is_dir(), cpu_path
    assert (cpu_path / "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert (cpu_path / "cpu.cfs_period_us").read_text().strip() == "100000"
    time.sleep(1.0)
    stat = dict(l.split() for l in (cpu_path / "cpu.stat").read_text().splitlines())
    out, err = p.communicate(timeout=60)
    assert int(stat["nr_throttled"]) > 0, stat
    summary = __import__("json").loads(err.splitlines()[-1])
    # 25% of one CPU, with slack for scheduling granularity
    assert summary["cpu_ms"] <= 0.30 * summary["duration_ms"] + 50, summary


def test_fork_bomb_stops_at_pids_limit_and_cleans_up():
    r = probe("fork", "200", "1", opts=["--pids", "32"], timeout=120)
    assert r.returncode == 0, r
    info = r.info("fork")
    assert int(info["forked"]) < 32, info
    assert info["errno"] == "EAGAIN", info
    assert not cgroup_v1_dirs(f"run-{r.pid}")


def test_real_fork_bomb_is_contained():
    r = probe("forkbomb", "2", opts=["--pids", "64", "--timeout", "20s"], timeout=120)
    assert r.returncode in (0, 128 + signal.SIGKILL), r
    assert not cgroup_v1_dirs(f"run-{r.pid}")


def test_disk_limit_gives_enospc_inside():
    r = probe("write", "/tmp/fill", "64", opts=["--disk", "16M"], timeout=120)
    assert r.returncode == 0, r
    line = [l for l in r.stdout.splitlines() if l.startswith("write /tmp/fill")]
    assert line and "ENOSPC" in line[0], r.stdout
    m = re.search(r"bytes=(\d+)", line[0])
    assert m and int(m.group(1)) <= 16 * 2**20


def test_timeout_kills_the_command():
    r = probe("sleep", "30", opts=["--timeout", "1s"], timeout=60)
    assert r.returncode == 128 + signal.SIGKILL, r
    assert r.summary["timed_out"] is True
    assert r.summary["duration_ms"] < 10000


# ---- identity and privileges -----------------------------------------------

def test_inside_view_no_caps_nnp_seccomp_and_only_stdio():
    r = probe("status")
    assert r.returncode == 0, r
    st = r.info("status") or {}
    text = r.stdout
    assert re.search(r"CapEff[=: ]+0+\b", text), text
    assert re.search(r"CapBnd[=: ]+0+\b", text), text
    assert re.search(r"NoNewPrivs[=: ]+1\b", text), text
    assert re.search(r"Seccomp[=: ]+2\b", text), text
    r = probe("fds")
    fds = sorted(int(l.split()[1]) for l in r.stdout.splitlines()
                 if l.startswith("fds ") and l.split()[1].isdigit())
    # 0-2, plus the directory fd the probe itself reads /proc/self/fd with
    assert fds[:3] == [0, 1, 2] and len(fds) <= 4, r.stdout


def test_default_user_is_sandbox_and_root_is_optional():
    r = probe("ids")
    info = r.info("ids")
    assert info["uid"] == "1000" and info["gid"] == "1000", r
    r = probe("ids", opts=["--user", "root"])
    info = r.info("ids")
    assert info["uid"] == "0", r
    r = probe("status", opts=["--user", "root"])
    assert re.search(r"CapEff[=: ]+0+\b", r.stdout), r.stdout


def test_host_uids_are_unprivileged_and_unique():
    a, pid1_a = start_background("/usr/bin/probe", "sleep", "5")
    b, pid1_b = start_background("/usr/bin/probe", "sleep", "5")
    try:
        cmd_a, cmd_b = children(pid1_a)[0], children(pid1_b)[0]
        uid_a = int(host_status(cmd_a)["Uid"].split()[0])
        uid_b = int(host_status(cmd_b)["Uid"].split()[0])
        root_a = int(host_status(pid1_a)["Uid"].split()[0])
        assert uid_a != 0 and uid_b != 0 and root_a != 0
        assert uid_a != uid_b
        # root inside is the base of the range, the sandbox user base + 1000
        assert uid_a == root_a + 1000
        assert abs(uid_a - uid_b) >= 65536
    finally:
        for p in (a, b):
            p.terminate()  # passed on as a kill of the command; then cleanup
            p.communicate(timeout=30)
            assert p.returncode == 128 + signal.SIGTERM


# ---- seccomp ---------------------------------------------------------------

DENIED = ["bpf", "keyctl", "add_key", "request_key", "userfaultfd", "perf_event_open",
          "io_uring_setup", "kexec_load", "open_by_handle_at", "mount", "umount2",
          "pivot_root", "unshare-user", "unshare-ns", "unshare-net", "setns",
          "clone-newuser", "ptrace", "init_module", "swapon", "reboot", "settimeofday",
          "syslog", "acct", "move_mount", "open_tree", "fsopen"]


def test_denied_syscalls_return_eperm():
    r = probe("syscall", *DENIED)
    checks = r.checks("syscall")
    for name in DENIED:
        assert ("syscall", name) in checks, (name, r.stdout)
        ret, err = checks[("syscall", name)]
        assert ret == "-1" and err == "EPERM", (name, ret, err)


def test_clone3_answers_enosys_so_libc_falls_back():
    r = probe("syscall", "clone3")
    assert r.checks("syscall")[("syscall", "clone3")] == ("-1", "ENOSYS"), r.stdout


def test_32bit_abis_are_blocked():
    r = probe("int80")
    line = [l for l in r.stdout.splitlines() if l.startswith("int80")][0]
    # killed, or an error: never getpid's answer
    assert "killed" in line or " -1 " in line, line
    r = probe("x32")
    line = [l for l in r.stdout.splitlines() if l.startswith("x32")][0]
    assert "killed" in line or " -1 " in line, line


def test_tiocsti_and_its_masked_variant_are_denied():
    r = probe("tiocsti")
    for name, (ret, err) in r.checks("tiocsti").items():
        assert ret == "-1" and err == "EPERM", (name, r.stdout)


def test_cannot_ptrace_or_read_pid1():
    r = probe("ptrace-pid1")
    checks = r.checks("ptrace-pid1")
    assert checks, r.stdout
    for name, (ret, err) in checks.items():
        assert ret == "-1", (name, err, r.stdout)


# ---- what the sandbox sees -------------------------------------------------

def test_only_loopback_and_hostname():
    r = probe("ifaces")
    names = [l.split()[1] for l in r.stdout.splitlines() if l.startswith("ifaces ")]
    assert names == ["lo"], r.stdout
    assert "UP" in r.stdout
    r = probe("hostname", opts=["--hostname", "box-7"])
    assert r.info("hostname")["nodename"] == "box-7"


def test_masked_proc_paths():
    r = run("/bin/sh", "-c", "cat /proc/keys /proc/timer_list /proc/kallsyms | wc -c;"
            " echo x > /proc/sysrq-trigger; echo $?; echo 1 > /proc/sys/kernel/panic; echo rc=$?")
    lines = r.stdout.split()
    assert lines[0] == "0", r  # masked files read empty
    assert "rc=1" in r.stdout, r


def test_masked_dirs_are_empty_read_only_and_share_one_superblock():
    # Each superblock costs every memory cgroup on the host a shrinker slot
    # (mm/shrinker.c: shrinker_info grows with the highest shrinker id), so
    # the sandbox's superblocks are counted: one tmpfs serves every mask.
    r = run("/bin/sh", "-c", "for d in /proc/acpi /proc/driver /sys/firmware /sys/kernel/debug;"
            " do [ -d $d ] && echo dir $d $(ls -A $d | wc -l); done;"
            " touch /sys/firmware/x 2>/dev/null; echo touch=$?; cat /proc/self/mountinfo")
    dirs = [l.split() for l in r.stdout.splitlines() if l.startswith("dir ")]
    assert len(dirs) >= 2, r
    assert all(d[2] == "0" for d in dirs), r
    assert "touch=1" in r.stdout, r
    mounts = [l.split() for l in r.stdout.splitlines() if " - " in l]
    by_point = {m[4]: m[2] for m in mounts}
    masks = {by_point[d[1]] for d in dirs}
    assert len(masks) == 1, (masks, r.stdout)
    # overlay, /proc, /dev, /dev/pts, /dev/shm, /sys, the masks, and the host's
    # device nodes bound into /dev (not the sandbox's own superblock).
    assert len({m[2] for m in mounts}) <= 8, r.stdout


def test_pid1_is_the_sandbox_init():
    r = run("/bin/cat", "/proc/1/cmdline")
    assert r.stdout.split("\0")[0] == "sandpool-init", r


def test_image_is_read_only_for_the_user_and_untouched():
    before = sorted(os.listdir(TEST_ROOTFS / "usr/bin"))
    r = run("/bin/sh", "-c", "touch /usr/bin/x; echo $?; echo hi > /home/sandbox/f && cat /home/sandbox/f;"
            " echo t > /tmp/t && cat /tmp/t")
    out = r.stdout.split()
    assert out[0] == "1" and "hi" in out and "t" in out, r
    assert sorted(os.listdir(TEST_ROOTFS / "usr/bin")) == before
    r = run("/bin/sh", "-c", "touch /usr/bin/x && echo wrote", opts=["--user", "root"])
    assert "wrote" in r.stdout  # root inside writes its own upper layer...
    assert not (TEST_ROOTFS / "usr/bin/x").exists()  # ...never the image


def test_image_files_look_owned_by_root_inside():
    r = run("/bin/ls", "-ln", "/usr/bin/probe", "/home")
    assert re.search(r"\s0\s+0\s", r.stdout), r.stdout
    assert re.search(r"\s1000\s+1000\s.*sandbox", r.stdout), r.stdout


# ---- nothing left behind ---------------------------------------------------

def test_nothing_left_after_destroy():
    r = probe("sleep", "0")
    assert r.returncode == 0
    assert not cgroup_v1_dirs(f"run-{r.pid}")
    assert not (STAGE_DIR / f"run-{r.pid}").exists()
    assert str(STAGE_DIR) not in Path("/proc/self/mountinfo").read_text()


# ---- bad input -------------------------------------------------------------

def test_missing_rootfs_is_a_clear_error():
    r = run("/bin/true", opts=["--rootfs", "/nonexistent/image"])
    assert r.returncode == 125
    assert "/nonexistent/image" in r.stderr and "build-image" in r.stderr


@pytest.mark.parametrize("opt,value", [("--memory", "lots"), ("--memory", "-5M"), ("--cpu", "0"),
                                       ("--disk", "12Q"), ("--timeout", "soon"), ("--pids", "-1")])
def test_malformed_values(opt, value):
    r = run("/bin/true", opts=[opt, value])
    assert r.returncode == 2, r
    assert opt in r.stderr and value in r.stderr


def test_command_not_found_is_127_with_a_message():
    r = run("/no/such/binary")
    assert r.returncode == 127
    assert "/no/such/binary" in r.stderr and "No such file" in r.stderr
    r = run("no-such-command")
    assert r.returncode == 127


def test_ten_thousand_arguments():
    args = [f"a{i}" for i in range(10000)]
    r = run("/bin/sh", "-c", 'echo $#', "sh", *args)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "10000"


def test_forced_cgroup_v2_on_hybrid_host_fails_clearly():
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("this host is cgroup2-only: forcing v2 is valid here")
    r = run("/bin/true", env=sandbox_env(SANDPOOL_CGROUP_MODE="v2"))
    assert r.returncode == 125, r
    assert "memory" in r.stderr or "controller" in r.stderr, r.stderr


def test_leftovers_of_a_killed_run_are_swept_by_the_next():
    p, pid1 = start_background("/usr/bin/probe", "sleep", "30")
    p.kill()  # SIGKILL: no cleanup; PID 1 dies with its parent (PDEATHSIG)
    p.communicate()
    deadline = time.time() + 10
    while Path(f"/proc/{pid1}").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert cgroup_v1_dirs(f"run-{p.pid}"), "expected the killed run's cgroups"
    r = probe("sleep", "0")
    assert r.returncode == 0, r
    assert not cgroup_v1_dirs(f"run-{p.pid}")
