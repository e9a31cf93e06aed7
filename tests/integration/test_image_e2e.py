# SPDX-License-Identifier: MIT
"""The Node.js 22 / Python 3.13 image, end to end through the daemon's API:
what agents run (python3, node, npm, pip, venv) works offline, files go in
and out through the file API, the sandbox user writes its home and /tmp but
not /usr, two sessions never see each other's files, and the shared image
is byte-identical afterwards."""
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from urllib.parse import quote

import pytest

from conftest import SOURCE_ROOT, Daemon

IMAGE = os.environ.get("SANDPOOL_IMAGE", "/var/lib/sandpool/images/default")
BUILD_IMAGE = os.path.join(SOURCE_ROOT, "rootfs", "build-image")

if not os.path.isfile(os.path.join(IMAGE, "etc", "sandpool-image.json")):
    print("SKIP: no image at %s (build it: rootfs/build-image --install)" % IMAGE, file=sys.stderr)
    pytest.skip("no image at %s (rootfs/build-image --install)" % IMAGE, allow_module_level=True)


@pytest.fixture(scope="module")
def d():
    daemon = Daemon(conf={"images": {"rootfs": IMAGE},
                          "limits": {"cpu_limit": "100", "max_upload": "8M", "command_timeout": "120s"}}).start()
    try:
        yield daemon
        daemon.stop()
    finally:
        daemon.cleanup()


@pytest.fixture
def sid(d):
    s = d.session()
    yield s
    d.delete("/v1/sessions/%s" % s)


def run(d, sid, argv=None, shell=None, **kw):
    body = {"argv": argv} if argv else {"shell": shell}
    body.update(kw)
    r = d.exec(sid, body, timeout=180)
    assert r.status == 200, r
    return r.json


def put(d, sid, path, data):
    r = d.request("PUT", "/v1/sessions/%s/files?path=%s" % (sid, quote(path)), data)
    assert r.status == 201, r
    return r


def get(d, sid, path):
    return d.request("GET", "/v1/sessions/%s/files?path=%s" % (sid, quote(path)))


def test_versions(d, sid):
    r = run(d, sid, shell="python3 --version; node --version; npm --version")
    assert r["exit_code"] == 0, r
    py, node, npm = r["stdout"].split()[1], r["stdout"].split()[2], r["stdout"].split()[3]
    assert py.startswith("3.13."), r["stdout"]
    assert node.startswith("v22."), r["stdout"]
    assert npm.split(".")[0] == "10", r["stdout"]


def make_wheel():
    buf = io.BytesIO()
    name, ver = "hello_sandpool", "1.0"
    files = {
        "%s/__init__.py" % name: "def greet():\n    return 'hello from a local wheel'\n",
        "%s-%s.dist-info/METADATA" % (name, ver): "Metadata-Version: 2.1\nName: hello-sandpool\nVersion: %s\n" % ver,
        "%s-%s.dist-info/WHEEL" % (name, ver): "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join("%s,,\n" % f for f in files) + "%s-%s.dist-info/RECORD,,\n" % (name, ver)
    with zipfile.ZipFile(buf, "w") as z:
        for f, text in files.items():
            z.writestr(f, text)
        z.writestr("%s-%s.dist-info/RECORD" % (name, ver), record)
    return buf.getvalue(), "%s-%s-py3-none-any.whl" % (name, ver)


def test_venv_and_pip_install_a_local_wheel_offline(d, sid):
    wheel, fname = make_wheel()
    put(d, sid, "/home/sandbox/" + fname, wheel)
    r = run(d, sid, shell="python3 -m venv /tmp/v && /tmp/v/bin/pip install --no-index --no-cache-dir "
                          "/home/sandbox/%s && /tmp/v/bin/python -c 'import hello_sandpool as h; print(h.greet())'" % fname)
    assert r["exit_code"] == 0, r
    assert "hello from a local wheel" in r["stdout"]


def make_npm_tarball():
    buf = io.BytesIO()
    files = {
        "package/package.json": json.dumps({"name": "hello-sandpool", "version": "1.0.0", "main": "index.js"}),
        "package/index.js": "module.exports = () => 'hello from a local tarball';\n",
    }
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for f, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_npm_install_a_local_tarball_offline(d, sid):
    put(d, sid, "/home/sandbox/hello.tgz", make_npm_tarball())
    r = run(d, sid, shell="mkdir -p ~/app && cd ~/app && npm init -y >/dev/null && "
                          "npm install --offline --no-audit --no-fund ~/hello.tgz && "
                          "node -e \"console.log(require('hello-sandpool')())\"")
    assert r["exit_code"] == 0, r
    assert "hello from a local tarball" in r["stdout"]


def test_python_script_writes_a_file_read_back(d, sid):
    script = ("import json, hashlib, pathlib\n"
              "data = {'sum': sum(range(100)), 'sha': hashlib.sha256(b'x').hexdigest()}\n"
              "pathlib.Path('/home/sandbox/out.json').write_text(json.dumps(data))\n")
    put(d, sid, "/home/sandbox/job.py", script)
    r = run(d, sid, argv=["python3", "/home/sandbox/job.py"])
    assert r["exit_code"] == 0, r
    got = get(d, sid, "/home/sandbox/out.json")
    assert got.status == 200
    assert json.loads(got.data) == {"sum": 4950, "sha": "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}


def test_node_script_writes_a_file_read_back(d, sid):
    put(d, sid, "/home/sandbox/job.js",
        "require('fs').writeFileSync('/tmp/node-out.txt', JSON.stringify({n: [1,2,3].map(x => x * 2)}));\n")
    r = run(d, sid, argv=["node", "/home/sandbox/job.js"])
    assert r["exit_code"] == 0, r
    got = get(d, sid, "/tmp/node-out.txt")
    assert got.status == 200 and json.loads(got.data) == {"n": [2, 4, 6]}


def test_sandbox_user_writes_home_and_tmp_not_usr(d, sid):
    r = run(d, sid, shell="id -u; touch ~/a /tmp/b && echo ok; touch /usr/x 2>&1; echo rc=$?; "
                          "pip install --user --no-index nothing-here >/dev/null 2>&1; echo pip=$?")
    out = r["stdout"]
    assert out.splitlines()[0] == "1000"
    assert "ok" in out and "rc=1" in out, out
    assert "Permission denied" in out or "Read-only" in out


def test_two_sessions_never_see_each_others_files(d):
    a, b = d.session(), d.session()
    try:
        put(d, a, "/tmp/secret-a", "only for a")
        r = run(d, a, shell="echo mine > /home/sandbox/a.txt; ls /tmp /home/sandbox")
        assert "secret-a" in r["stdout"]
        r = run(d, b, shell="ls -a /tmp /home/sandbox")
        assert "secret-a" not in r["stdout"] and "a.txt" not in r["stdout"], r
        assert run(d, b, argv=["cat", "/tmp/secret-a"])["exit_code"] != 0
        assert get(d, b, "/tmp/secret-a").status == 404
    finally:
        d.delete("/v1/sessions/%s" % a)
        d.delete("/v1/sessions/%s" % b)


def test_health_reports_the_image(d):
    img = d.get("/v1/health").json["image"]
    assert img["path"] == IMAGE
    assert img["python"].startswith("3.13.") and img["node"].startswith("v22.")
    assert img["content_hash"].startswith("sha256:")


def test_the_image_is_unchanged(d):
    # Run last in this module (pytest keeps file order): everything above
    # wrote into sandboxes; none of it may reach the shared lower layer.
    p = subprocess.run([BUILD_IMAGE, "--check", "--output", IMAGE], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
