#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The busybox test image: layout, ownership, idempotent rebuilds, and a
smoke run of busybox and the probe inside it.

The smoke runs use chroot, which checks the image's layout only: a chroot is
not a sandbox (the chroot-escape positive control below proves it), and a
chrooted process cannot create user namespaces. The real tests run the image
in a sandbox. Needs root (the image's files belong to 0:0); exits 77
otherwise.

Run by meson (`meson test test-rootfs`) with SANDPOOL_PROBE and
SANDPOOL_TEST_ROOTFS set, or by hand as root:
    SANDPOOL_PROBE=build/tests/probe/probe SANDPOOL_TEST_ROOTFS=build/test-rootfs \\
        /usr/bin/python3 tests/probe/test_image.py
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

PROBE = os.environ.get("SANDPOOL_PROBE", "")
IMAGE = os.environ.get("SANDPOOL_TEST_ROOTFS", "")
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "rootfs", "build-test-image")


def chroot(*argv, userspec=None, env=None):
    cmd = [CHROOT] + ([f"--userspec={userspec}"] if userspec else []) + [IMAGE, *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env=env or {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})


def lstat(rel):
    return os.lstat(os.path.join(IMAGE, rel.lstrip("/")))


def mode_owner(rel):
    st = lstat(rel)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_marker_says_built_by_root():
    marker = open(os.path.join(IMAGE, "etc/sandpool-test-image")).read().splitlines()
    assert "name=sandpool-test-image" in marker and "root_owned=yes" in marker


def test_directories_modes_and_owners():
    assert mode_owner("/tmp") == (0o1777, 0, 0)
    assert mode_owner("/var/tmp") == (0o1777, 0, 0)
    assert mode_owner("/root") == (0o700, 0, 0)
    assert mode_owner("/home/sandbox") == (0o755, 1000, 1000)
    for d in ("/proc", "/dev", "/sys", "/run", "/dev/pts", "/dev/shm", "/etc", "/usr/bin"):
        st = lstat(d)
        assert stat.S_ISDIR(st.st_mode) and (st.st_uid, st.st_gid) == (0, 0), d
    for d in ("/proc", "/sys", "/dev/pts"):
        assert os.listdir(os.path.join(IMAGE, d.lstrip("/"))) == [], f"{d} is a mount point: empty"


def test_every_file_belongs_to_root_except_home():
    for top, dirs, files in os.walk(IMAGE):
        for name in dirs + files:
            path = os.path.join(top, name)
            if path == os.path.join(IMAGE, "home", "sandbox"):
                continue
            st = os.lstat(path)
            assert (st.st_uid, st.st_gid) == (0, 0), path


def test_busybox_and_applet_links():
    st = lstat("/bin/busybox")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755
    for applet in ("sh", "ls", "cat", "echo", "sleep", "true", "false", "id", "env", "mkdir", "rm",
                   "grep", "head", "dd", "ps", "hostname", "kill", "wc", "readlink", "chmod", "touch"):
        found = [d for d in ("bin", "usr/bin", "sbin", "usr/sbin")
                 if os.path.islink(os.path.join(IMAGE, d, applet))]
        assert found, applet
        assert os.readlink(os.path.join(IMAGE, found[0], applet)) == "/bin/busybox"


def test_probe_and_setuid_copy():
    with open(PROBE, "rb") as f:
        built = f.read()
    for rel in ("usr/bin/probe", "usr/bin/probe-suid"):
        with open(os.path.join(IMAGE, rel), "rb") as f:
            assert f.read() == built, f"{rel} is not the freshly built probe"
    assert mode_owner("/usr/bin/probe") == (0o755, 0, 0)
    assert mode_owner("/usr/bin/probe-suid") == (0o4755, 0, 0)


def test_etc_files():
    passwd = open(os.path.join(IMAGE, "etc/passwd")).read().splitlines()
    assert "root:x:0:0:root:/root:/bin/sh" in passwd
    assert "sandbox:x:1000:1000:sandbox:/home/sandbox:/bin/sh" in passwd
    assert any(l.startswith("nobody:x:65534:65534:") for l in passwd)
    group = open(os.path.join(IMAGE, "etc/group")).read().splitlines()
    assert "sandbox:x:1000:" in group and "root:x:0:" in group
    assert mode_owner("/etc/shadow") == (0o600, 0, 0)
    assert "127.0.0.1 localhost" in open(os.path.join(IMAGE, "etc/hosts")).read()
    assert open(os.path.join(IMAGE, "etc/hostname")).read() == "sandbox\n"


def test_busybox_shell_runs_in_chroot():
    p = chroot("/bin/sh", "-c", "echo hello; id -u; ls /usr/bin/probe; cat /etc/hostname")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["hello", "0", "/usr/bin/probe", "sandbox"]


def test_sandbox_user_resolves_in_chroot():
    p = chroot("/bin/sh", "-c", "id; cd; pwd", userspec="1000:1000", env={"HOME": "/home/sandbox", "PATH": "/bin:/usr/bin"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["uid=1000(sandbox) gid=1000(sandbox) groups=1000(sandbox)", "/home/sandbox"]


def test_probe_in_user_and_pid_namespace_chroot():
    # unshare: user namespace mapping us to root, a mount and a pid
    # namespace, a fresh /proc on the image's mount point; then chroot.
    p = subprocess.run(["unshare", "-Urmpf", f"--mount-proc={IMAGE}/proc", CHROOT, IMAGE, "/bin/sh", "-c",
                        "probe status; probe syscall bpf getpid; probe ids; probe ns"],
                       capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    if p.returncode != 0 and "Operation not permitted" in p.stderr:
        pytest.skip(f"unprivileged user namespaces unavailable: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    status = {l.split()[1]: l.split()[2] for l in lines if l.startswith("status ")}
    assert int(status["NSpid"].split(",")[-1]) < 100, "the /proc of the new pid namespace"
    assert "CapEff" in status and status["NoNewPrivs"] == "0"
    bpf = [l for l in lines if l.startswith("syscall bpf ")][0].split()
    assert bpf[2] == "-1" and bpf[3] == "EPERM", "bpf in a user namespace needs host CAP_BPF"
    getpid = [l for l in lines if l.startswith("syscall getpid ")][0].split()
    assert getpid[3] == "OK" and int(getpid[2]) < 100, "pid namespace: small pids"
    assert [l for l in lines if l.startswith("ids ")][0].startswith("ids uid=0 euid=0")


def test_setuid_copy_is_effective_outside_a_sandbox():
    # Positive control for the escape test: in a plain chroot as uid 1000,
    # probe-suid really runs with euid 0. Inside a sandbox it must not.
    p = chroot("/usr/bin/probe-suid", "ids", userspec="1000:1000")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ids uid=1000 euid=0 suid=0 gid=1000 egid=1000")
    p = chroot("/usr/bin/probe", "ids", userspec="1000:1000")
    assert p.stdout.startswith("ids uid=1000 euid=1000")


def test_chroot_escape_detects_a_plain_chroot():
    # Positive control for the chroot-escape check: a bare chroot is
    # escapable, and the probe must say so.
    p = chroot("/usr/bin/probe", "chroot-escape")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("chroot-escape escape 0 OK escaped=yes"), p.stdout
    assert not [n for n in os.listdir(os.path.join(IMAGE, "tmp")) if n.startswith("probe.")], "scratch dir left"


def run_script(out, probe):
    return subprocess.run([SCRIPT, out, probe], capture_output=True, text=True, timeout=120)


def test_rebuild_is_idempotent_then_atomic_replace(tmp_path):
    out = str(tmp_path / "img")
    p = run_script(out, PROBE)
    assert p.returncode == 0 and f"created {out}" in p.stdout, p.stderr
    ino = os.stat(out).st_ino
    p = run_script(out, PROBE)
    assert p.returncode == 0 and "up to date" in p.stdout
    assert os.stat(out).st_ino == ino, "an up-to-date image is left alone"
    changed = str(tmp_path / "probe2")
    shutil.copy(PROBE, changed)
    with open(changed, "ab") as f:
        f.write(b"\0")
    p = run_script(out, changed)
    assert p.returncode == 0 and f"replaced {out}" in p.stdout, p.stderr
    with open(os.path.join(out, "usr/bin/probe"), "rb") as f, open(changed, "rb") as g:
        assert f.read() == g.read()
    assert sorted(os.listdir(tmp_path)) == ["img", "probe2"], "no .tmp/.old leftovers"


def test_script_refuses_bad_input(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious").write_text("x")
    p = run_script(str(foreign), PROBE)
    assert p.returncode == 1 and "not a test image" in p.stderr
    assert (foreign / "precious").exists()
    p = run_script(str(tmp_path / "x"), str(tmp_path / "missing-probe"))
    assert p.returncode == 1 and "missing-probe" in p.stderr
    p = subprocess.run([SCRIPT, str(tmp_path / "y"), PROBE], capture_output=True, text=True,
                       env={**os.environ, "BUSYBOX": str(tmp_path / "no-busybox")})
    assert p.returncode == 1 and "apt-get install busybox-static" in p.stderr
    assert subprocess.run([SCRIPT], capture_output=True).returncode == 2


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: the test image belongs to root: run the tests as root", flush=True)
        sys.exit(77)
    if not PROBE or not IMAGE or not os.path.isdir(IMAGE):
        print("SKIP: SANDPOOL_PROBE / SANDPOOL_TEST_ROOTFS do not name a built probe and image", flush=True)
        sys.exit(77)
    if not shutil.which("chroot") or not shutil.which("unshare"):
        print("SKIP: chroot and unshare (coreutils, util-linux) are needed", flush=True)
        sys.exit(77)
    sys.exit(pytest.main([__file__, "-q", "-rs", "--durations=5", "-p", "no:cacheprovider"]))
