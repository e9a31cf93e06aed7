"""Checks of the default sandbox image built by rootfs/build-image.

The image is looked for at $SANDPOOL_IMAGE (default /var/lib/sandpool/images/default).
Without one every test skips with the reason; run as a program (as meson does) the file
exits 77 then, so a missing image never counts as a pass.

These tests read the tree from the host. They do not trust the builder: the content
hash is recomputed here with an independent implementation, and python3 and node are
started through the image's own dynamic loader, a different route from the builder's
namespace-based verification.
"""

import hashlib
import json
import os
import platform
import stat
import subprocess
import sys
from pathlib import Path

import pytest

IMAGE = Path(os.environ.get("SANDPOOL_IMAGE", "/var/lib/sandpool/images/default"))
MANIFEST = "etc/sandpool-image.json"
REPO = Path(__file__).resolve().parents[2]
BUILD_IMAGE = REPO / "rootfs" / "build-image"

REQUIRED_PACKAGES = {
    "bash", "coreutils", "ca-certificates", "python3", "python3-pip",
    "python3-venv", "git", "curl",
}

pytestmark = pytest.mark.skipif(
    not (IMAGE / MANIFEST).is_file(),
    reason=f"no image at {IMAGE} (build it with rootfs/build-image --install, "
    f"or point SANDPOOL_IMAGE at one)",
)


@pytest.fixture(scope="module")
def manifest():
    with open(IMAGE / MANIFEST, encoding="utf-8") as f:
        return json.load(f)


def in_image(rel):
    """Resolve a path inside the image the way the sandbox would see it: absolute
    symlinks are taken relative to the image root, never to the host's."""
    parts = [p for p in rel.strip("/").split("/") if p]
    cur = IMAGE
    hops = 0
    while parts:
        part = parts.pop(0)
        nxt = cur / part
        if nxt.is_symlink():
            hops += 1
            assert hops < 40, f"symlink loop at {rel}"
            target = os.readlink(nxt)
            if target.startswith("/"):
                cur = IMAGE
            parts = [p for p in target.split("/") if p] + parts
            continue
        if part == "..":
            cur = cur.parent if cur != IMAGE else IMAGE
            continue
        cur = nxt
    return cur


def passwd_entries(name):
    entries = {}
    with open(IMAGE / "etc" / name, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            entries[fields[0]] = fields
    return entries


def test_manifest_versions(manifest):
    assert manifest["format"] == 1
    assert manifest["python"]["version"].startswith("3.13."), manifest["python"]
    assert manifest["node"]["version"].startswith("v22."), manifest["node"]
    assert manifest["npm"]["version"].startswith("10."), manifest["npm"]
    assert manifest["node"]["integrity"].startswith("sha512-")
    assert manifest["builder"]["input_hash"].startswith("sha256:")
    assert len(manifest["builder"]["input_hash"]) == len("sha256:") + 64
    assert manifest["build_date"].endswith("Z")
    assert manifest["debian"]["suite"] == "trixie"


def test_manifest_packages(manifest):
    pkgs = {p["name"]: p["version"] for p in manifest["debian"]["packages"]}
    missing = REQUIRED_PACKAGES - pkgs.keys()
    assert not missing, f"packages missing from the image: {missing}"
    assert all(pkgs.values())
    # The package list is the dpkg database's, not a copy of the config.
    status = (IMAGE / "var/lib/dpkg/status").read_text(encoding="utf-8")
    for name in REQUIRED_PACKAGES:
        assert f"Package: {name}\n" in status


def test_sandbox_user():
    pw = passwd_entries("passwd")
    assert pw["sandbox"][2:4] == ["1000", "1000"]
    assert pw["sandbox"][5] == "/home/sandbox"
    assert pw["sandbox"][6] == "/bin/bash"
    assert pw["root"][2] == "0"
    assert passwd_entries("group")["sandbox"][2] == "1000"
    uids = [e[2] for e in pw.values()]
    assert len(uids) == len(set(uids)), "duplicate uids in /etc/passwd"
    st = os.lstat(IMAGE / "home/sandbox")
    assert stat.S_ISDIR(st.st_mode)
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    for entry in (IMAGE / "home/sandbox").iterdir():
        assert os.lstat(entry).st_uid == 1000, entry


def test_no_setuid_files(manifest):
    # Regular files only: a setgid directory (Debian's /var/mail) only makes new
    # files inherit its group; it grants nothing when executing.
    found = []
    for root, _dirs, files in os.walk(IMAGE):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                found.append(os.path.join(root, name))
    assert not found, f"setuid/setgid files: {found}"
    # The builder listed what it stripped, and those files are still there.
    assert "/usr/bin/su" in manifest["setuid_removed"]
    for path in manifest["setuid_removed"]:
        assert in_image(path).is_file(), path


@pytest.mark.parametrize("path", [
    "/usr/bin/python3", "/usr/local/bin/node", "/usr/local/bin/npm",
    "/usr/local/bin/npx", "/usr/bin/bash", "/usr/bin/git", "/usr/bin/curl",
    "/usr/bin/pip3",
])
def test_commands_present(path):
    real = in_image(path)
    assert real.is_file(), f"{path} -> {real}"
    assert os.access(real, os.X_OK), path


def test_layout():
    assert stat.S_IMODE(os.lstat(IMAGE / "tmp").st_mode) == 0o1777
    for d in ("proc", "sys", "dev"):
        p = IMAGE / d
        assert p.is_dir() and not p.is_symlink(), d
        assert not any(p.iterdir()), f"/{d} is not empty"
    hosts = (IMAGE / "etc/hosts").read_text(encoding="utf-8").split("\n")
    assert any(line.split()[:2] == ["127.0.0.1", "localhost"] for line in hosts if line)
    assert any(line.split()[:1] == ["::1"] and "localhost" in line.split() for line in hosts if line)
    assert (IMAGE / "etc/hostname").read_text(encoding="utf-8").strip()
    assert "LANG=C.UTF-8" in (IMAGE / "etc/default/locale").read_text(encoding="utf-8").split()
    assert (IMAGE / "usr/lib/locale/C.utf8").is_dir()
    assert (IMAGE / "etc/ssl/certs/ca-certificates.crt").stat().st_size > 100_000
    # Cleaned: no apt lists or package cache, no man pages.
    assert not list((IMAGE / "var/lib/apt/lists").glob("*_Packages*"))
    assert not list((IMAGE / "var/cache/apt/archives").glob("*.deb"))
    assert not (IMAGE / "usr/share/man").exists()
    st = os.lstat(IMAGE)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o755)


def tree_hash(root):
    """The content hash the manifest documents, written independently of the
    builder's find/awk/sort pipeline."""
    lines = []
    entries = 0
    total = 0

    def walk(dirpath, rel):
        nonlocal entries, total
        with os.scandir(dirpath) as it:
            for e in it:
                relpath = rel + e.name if not rel else rel + "/" + e.name
                if relpath == MANIFEST:
                    continue
                st = e.stat(follow_symlinks=False)
                mode = st.st_mode
                if stat.S_ISREG(mode):
                    kind = "f"
                    h = hashlib.sha256()
                    with open(e.path, "rb") as f:
                        for chunk in iter(lambda: f.read(1 << 20), b""):
                            h.update(chunk)
                    data = h.hexdigest().encode()
                    total += st.st_size
                elif stat.S_ISDIR(mode):
                    kind, data = "d", b"-"
                elif stat.S_ISLNK(mode):
                    kind, data = "l", os.fsencode(os.readlink(e.path))
                else:
                    kind = {stat.S_IFCHR: "c", stat.S_IFBLK: "b", stat.S_IFIFO: "p",
                            stat.S_IFSOCK: "s"}[stat.S_IFMT(mode)]
                    data = b"-"
                entries += 1
                lines.append(b"\t".join([
                    os.fsencode(relpath), kind.encode(),
                    format(stat.S_IMODE(mode), "o").encode(),
                    str(st.st_uid).encode(), str(st.st_gid).encode(), data,
                ]) + b"\n")
                if kind == "d":
                    walk(e.path, relpath)

    walk(os.fspath(root), "")
    lines.sort()
    return "sha256:" + hashlib.sha256(b"".join(lines)).hexdigest(), entries, total


def test_content_hash_matches_manifest(manifest):
    got, entries, total = tree_hash(IMAGE)
    assert entries == manifest["content"]["entries"]
    assert total == manifest["content"]["bytes"]
    assert got == manifest["content"]["hash"], "the tree changed since it was built"


def test_builder_check_agrees():
    if os.geteuid() != 0:
        pytest.skip("build-image --check runs as root (the tree has root-only files)")
    r = subprocess.run([str(BUILD_IMAGE), "--check", "--output", str(IMAGE)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "matches its manifest" in r.stdout


def run_with_image_loader(binary, *args):
    """Start one of the image's binaries with the image's ld.so and libraries,
    without entering any namespace: enough for --version."""
    if platform.machine() != "x86_64":
        pytest.skip("the image is x86_64")
    loader = in_image("/usr/lib64/ld-linux-x86-64.so.2")
    libpath = ":".join(str(in_image(p)) for p in ("/usr/lib/x86_64-linux-gnu", "/usr/lib"))
    r = subprocess.run([str(loader), "--library-path", libpath, str(in_image(binary)), *args],
                       capture_output=True, text=True, timeout=60,
                       env={"PATH": "/nonexistent", "LANG": "C.UTF-8"})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_python_runs_from_image(manifest):
    out = run_with_image_loader("/usr/bin/python3", "--version")
    assert out == f"Python {manifest['python']['version']}"


def test_node_runs_from_image(manifest):
    out = run_with_image_loader("/usr/local/bin/node", "--version")
    assert out == manifest["node"]["version"]


def test_npm_package_version(manifest):
    pkg = json.loads((IMAGE / "usr/local/lib/node_modules/npm/package.json").read_text())
    assert pkg["version"] == manifest["npm"]["version"]


class _Outcomes:
    def __init__(self):
        self.passed = 0

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.passed += 1


if __name__ == "__main__":
    outcomes = _Outcomes()
    rc = pytest.main(["-q", "-rs", "-p", "no:cacheprovider", __file__], plugins=[outcomes])
    if rc == 0 and outcomes.passed == 0:
        print(f"SKIP: no test ran (no image at {IMAGE}?)")
        sys.exit(77)
    sys.exit(int(rc))
