# SPDX-License-Identifier: MIT
"""Templates and forks, through the real daemon on the real Node 22 /
Python 3.13 image: a session's files captured as a read-only layer, new
sessions started from it (warm, from its own pool), whiteouts kept,
ownership, deletion while in use, a restart, the size cap, forks."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import Daemon, HERE

IMAGE = os.environ.get("SANDPOOL_IMAGE", "/var/lib/sandpool/images/default")

if not os.path.isfile(os.path.join(IMAGE, "etc", "sandpool-image.json")):
    print("SKIP: no image at %s (build it: rootfs/build-image --install)" % IMAGE, file=sys.stderr)
    pytest.skip("no image at %s (rootfs/build-image --install)" % IMAGE, allow_module_level=True)

CONF = {"images": {"rootfs": IMAGE},
        "limits": {"cpu_limit": "100", "max_upload": "8M", "command_timeout": "120s",
                   "template_max_size": "64M"},
        "template.warm": {"pool_size": "2"},
        "template.shared": {"shared_with": "everyone"}}


@pytest.fixture(scope="module")
def d():
    daemon = Daemon(conf=CONF).start()
    try:
        yield daemon
        daemon.stop()
    finally:
        daemon.cleanup()


def sh(d, sid, cmd, ok=True):
    r = d.exec(sid, {"shell": cmd, "timeout_ms": 120000}, timeout=180)
    assert r.status == 200, r
    if ok:
        assert r.json["exit_code"] == 0, r.json
    return r.json


def new_session(d, **body):
    r = d.post("/v1/sessions", body)
    assert r.status == 201, r
    return r.json["id"]


def capture(d, name, sid, status=201):
    r = d.post("/v1/templates", {"name": name, "from_session": sid}, timeout=120)
    assert r.status == status, r
    return r.json


def delete_template(d, name):
    r = d.delete("/v1/templates/%s" % name)
    assert r.status in (204, 404), r


# A local npm package, packed inside the sandbox (no network), installed
# from its tarball into the sandbox user's home.
NPM_SETUP = r"""
set -e
mkdir -p /tmp/src/tinypkg && cd /tmp/src/tinypkg
cat > package.json <<'EOF'
{"name": "tinypkg", "version": "1.0.0", "main": "index.js"}
EOF
echo 'module.exports = () => "tiny says hi";' > index.js
npm pack --silent >/dev/null
mkdir -p ~/app && cd ~/app && echo '{"name":"app","version":"1.0.0"}' > package.json
npm install --offline --no-audit --no-fund /tmp/src/tinypkg/tinypkg-1.0.0.tgz >/dev/null 2>&1
echo written > ~/notes.txt
rm -rf /tmp/src
"""


@pytest.fixture(scope="module")
def sdk(d):
    """Template "sdk": npm package installed, a file written, one of the
    image's files deleted (a whiteout in the upper)."""
    sid = new_session(d)
    sh(d, sid, NPM_SETUP)
    sh(d, sid, "rm ~/.bash_logout")
    t = capture(d, "sdk", sid)
    d.delete("/v1/sessions/%s" % sid)
    yield t
    delete_template(d, "sdk")


def test_capture_reports_what_it_holds(d, sdk):
    assert sdk["name"] == "sdk" and sdk["owner_uid"] == 0 and sdk["parent"] is None
    assert sdk["files"] > 5 and sdk["size_bytes"] > 0 and sdk["whiteouts"] >= 1
    assert sdk["base"]["content_hash"] == d.get("/v1/health").json["image"]["content_hash"]
    assert sdk["state"] == "ready" and not sdk["stale"]
    listed = d.get("/v1/templates").json["templates"]
    assert [t["name"] for t in listed if t["name"] == "sdk"] == ["sdk"]
    assert d.get("/v1/templates/sdk").json["files"] == sdk["files"]


def test_session_from_template_has_package_and_files(d, sdk):
    sid = new_session(d, template="sdk")
    try:
        assert d.get("/v1/sessions/%s" % sid).json["template"] == "sdk"
        out = sh(d, sid, "cd ~/app && node -e \"console.log(require('tinypkg')())\"")
        assert out["stdout"].strip() == "tiny says hi"
        assert sh(d, sid, "cat ~/notes.txt")["stdout"] == "written\n"
        # the files keep their owner: the sandbox user may change them
        sh(d, sid, "echo more >> ~/notes.txt && touch ~/app/node_modules/tinypkg/x")
        # what was removed before the capture stays removed (whiteout)
        gone = sh(d, sid, "test -e ~/.bash_logout", ok=False)
        assert gone["exit_code"] != 0
        assert sh(d, sid, "test -e ~/.bashrc && echo y")["stdout"] == "y\n"
        # the layer is read-only below the upper: the image is untouched
        assert not os.path.exists(os.path.join(IMAGE, "home/sandbox/notes.txt"))
        assert not os.path.exists(os.path.join(IMAGE, "home/sandbox/app"))
        assert os.path.exists(os.path.join(IMAGE, "home/sandbox/.bash_logout"))
    finally:
        d.delete("/v1/sessions/%s" % sid)
    # a plain session has none of it
    plain = new_session(d)
    try:
        assert sh(d, plain, "test -e ~/notes.txt", ok=False)["exit_code"] != 0
        assert sh(d, plain, "test -e ~/.bash_logout && echo y")["stdout"] == "y\n"
    finally:
        d.delete("/v1/sessions/%s" % plain)


def test_run_from_template(d, sdk):
    r = d.post("/v1/run", {"template": "sdk", "shell": "cat ~/notes.txt"}, timeout=60)
    assert r.status == 200, r
    assert r.json["stdout"] == "written\n"


def test_setuid_and_devices_are_refused(d):
    # root inside may chmod u+s; such a file must not become a layer
    sid = new_session(d)
    try:
        sh(d, sid, "cp /bin/true ~/suid && chmod u+s ~/suid")
        r = d.post("/v1/templates", {"name": "bad", "from_session": sid}, timeout=60)
        assert r.status == 400 and "setuid" in r.json["error"]["message"], r
        assert d.get("/v1/templates/bad").status == 404
        assert not any(n.startswith(".tmp-") or n == "bad" for n in os.listdir(os.path.join(d.state, "templates")))
    finally:
        d.delete("/v1/sessions/%s" % sid)


def test_size_cap_fails_cleanly(d):
    sid = new_session(d)
    try:
        sh(d, sid, "head -c 70M /dev/zero > ~/big")
        before = sorted(os.listdir(os.path.join(d.state, "templates")))
        r = d.post("/v1/templates", {"name": "toobig", "from_session": sid}, timeout=120)
        assert r.status == 413, r
        assert d.get("/v1/templates/toobig").status == 404
        assert sorted(os.listdir(os.path.join(d.state, "templates"))) == before
        # the session was thawed: it still runs commands
        assert sh(d, sid, "echo alive")["stdout"] == "alive\n"
    finally:
        d.delete("/v1/sessions/%s" % sid)


def test_capture_freezes_the_session(d):
    """A writer writes the same counter into ~/a and then ~/z, again and
    again, while the capture copies z, a 40 MB file, then a (tmpfs lists
    the newest first). Frozen, the copy is one instant: a and z differ by
    at most one step. Without the freeze the writer runs on during the
    copy of the big file and a is far ahead of z."""
    sid = new_session(d, memory_mb=256)
    try:
        # fixed-width, overwritten in place (no truncation): each file
        # always holds a whole number
        sh(d, sid, "printf %010d 0 > ~/a && head -c 40M /dev/urandom > ~/m && printf %010d 0 > ~/z")
        sh(d, sid, "(i=0; while :; do i=$((i+1)); printf %010d $i 1<> ~/a; printf %010d $i 1<> ~/z; done)"
                   " >/dev/null 2>&1 &")
        time.sleep(0.3)
        capture(d, "frozen", sid)
        s2 = new_session(d, template="frozen")
        try:
            a, z = sh(d, s2, "cat ~/a; echo; cat ~/z")["stdout"].split()
            assert int(z) > 0 and 0 <= int(a) - int(z) <= 1, (a, z)
        finally:
            d.delete("/v1/sessions/%s" % s2)
        # thawed: the writer runs on
        def counter():
            return max(int(v) for v in sh(d, sid, "cat ~/a ~/z")["stdout"].split())
        n1 = counter()
        time.sleep(0.1)
        assert counter() > n1
    finally:
        d.delete("/v1/sessions/%s" % sid)
        delete_template(d, "frozen")


def test_same_session_captured_twice(d):
    sid = new_session(d)
    try:
        sh(d, sid, "echo one > ~/one.txt")
        capture(d, "twice1", sid)
        capture(d, "twice2", sid)
        assert d.get("/v1/templates/twice1").json["files"] == d.get("/v1/templates/twice2").json["files"]
        s2 = new_session(d, template="twice2")
        assert sh(d, s2, "cat ~/one.txt")["stdout"] == "one\n"
        d.delete("/v1/sessions/%s" % s2)
        assert capture(d, "twice1", sid, status=409)["error"]["code"] == "conflict"
    finally:
        d.delete("/v1/sessions/%s" % sid)
        delete_template(d, "twice1")
        delete_template(d, "twice2")


def test_in_use_template_cannot_be_deleted(d, sdk):
    sid = new_session(d, template="sdk")
    try:
        r = d.delete("/v1/templates/sdk")
        assert r.status == 409, r
    finally:
        d.delete("/v1/sessions/%s" % sid)


def test_child_template_and_delete_order(d, sdk):
    sid = new_session(d, template="sdk")
    try:
        # ~/app, from the parent, replaced by a new directory: overlayfs
        # marks it opaque in the upper, hiding the parent's content
        sh(d, sid, "echo second > ~/second.txt && rm ~/notes.txt && rm -rf ~/app && mkdir ~/app && "
                   "echo only > ~/app/only.txt")
        child = capture(d, "sdk2", sid)
    finally:
        d.delete("/v1/sessions/%s" % sid)
    assert child["parent"] == "sdk"
    s2 = new_session(d, template="sdk2")
    try:
        assert sh(d, s2, "cat ~/second.txt")["stdout"] == "second\n"
        assert sh(d, s2, "test -e ~/notes.txt", ok=False)["exit_code"] != 0
        assert sh(d, s2, "ls -A ~/app")["stdout"] == "only.txt\n"
    finally:
        d.delete("/v1/sessions/%s" % s2)
    assert d.delete("/v1/templates/sdk").status == 409  # its child uses it
    assert d.delete("/v1/templates/sdk2").status == 204
    assert d.get("/v1/templates/sdk2").status == 404


def test_another_uid_gets_404(d, sdk):
    assert d.as_nobody("GET", "/v1/templates/sdk")["status"] == 404
    assert "sdk" not in [t["name"] for t in d.as_nobody("GET", "/v1/templates")["body"]["templates"]]
    r = d.as_nobody("POST", "/v1/sessions", {"template": "sdk"})
    assert r["status"] == 404, r
    assert d.as_nobody("DELETE", "/v1/templates/sdk")["status"] == 404
    assert d.get("/v1/templates/sdk").status == 200


def test_shared_template_is_usable_by_others_but_not_deletable(d):
    sid = new_session(d)
    try:
        sh(d, sid, "echo shared > ~/s.txt")
        capture(d, "shared", sid)
    finally:
        d.delete("/v1/sessions/%s" % sid)
    try:
        assert d.as_nobody("GET", "/v1/templates/shared")["status"] == 200
        r = d.as_nobody("POST", "/v1/sessions", {"template": "shared"})
        assert r["status"] == 201, r
        assert d.as_nobody("DELETE", "/v1/sessions/%s" % r["body"]["id"])["status"] == 204
        assert d.as_nobody("DELETE", "/v1/templates/shared")["status"] == 404
    finally:
        delete_template(d, "shared")


def wait_pool(d, name, n, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = d.get("/v1/templates/%s" % name).json["pool"]
        if p["available"] >= n:
            return p
        time.sleep(0.05)
    raise AssertionError("pool of %s not filled: %s" % (name, p))


def test_template_pool_stays_filled_and_serves(d):
    sid = new_session(d)
    try:
        sh(d, sid, "echo warm > ~/w.txt")
        capture(d, "warm", sid)
    finally:
        d.delete("/v1/sessions/%s" % sid)
    try:
        assert wait_pool(d, "warm", 2)["size"] == 2
        ids = []
        for _ in range(3):
            t0 = time.monotonic()
            ids.append(new_session(d, template="warm"))
            assert sh(d, ids[-1], "cat ~/w.txt")["stdout"] == "warm\n"
        # refilled to its size while the sessions run
        wait_pool(d, "warm", 2)
        for s in ids:
            d.delete("/v1/sessions/%s" % s)
    finally:
        delete_template(d, "warm")


def test_unknown_and_bad_requests(d):
    assert d.post("/v1/sessions", {"template": "nope"}).status == 404
    assert d.post("/v1/sessions", {"template": 3}).status == 400
    assert d.post("/v1/templates", {"name": "Bad Name", "from_session": "x"}).status == 400
    assert d.post("/v1/templates", {"name": "ok"}).status == 400
    assert d.post("/v1/templates", {"name": "ok", "from_session": "0" * 32}).status == 404


def test_restart_keeps_templates_and_reports_stale(make_daemon, tmp_path):
    d1 = make_daemon(conf=CONF)
    sid = new_session(d1)
    sh(d1, sid, "echo kept > ~/k.txt")
    capture(d1, "kept", sid)
    d1.delete("/v1/sessions/%s" % sid)
    d1.stop()
    # the same state directory, a new daemon
    d2 = Daemon(conf=dict(CONF, server={"state_dir": d1.state}))
    try:
        d2.start()
        t = d2.get("/v1/templates/kept").json
        assert t.get("state") == "ready", (t, os.listdir(os.path.join(d1.state, "templates")), d1.read_log()[-3000:])
        s2 = new_session(d2, template="kept")
        assert sh(d2, s2, "cat ~/k.txt")["stdout"] == "kept\n"
        d2.delete("/v1/sessions/%s" % s2)
        d2.stop()
        # an image rebuild: the recorded base hash is no longer the image's
        meta = os.path.join(d1.state, "templates", "kept", "meta.json")
        m = json.load(open(meta))
        m["base"]["content_hash"] = "sha256:" + "0" * 64
        json.dump(m, open(meta, "w"))
        d3 = Daemon(conf=dict(CONF, server={"state_dir": d1.state}))
        try:
            d3.start()
            t = d3.get("/v1/templates/kept").json
            assert t["stale"] and t["state"] == "stale", t
            r = d3.post("/v1/sessions", {"template": "kept"})
            assert r.status == 409 and "stale" in r.json["error"]["message"], r
            d3.stop()
        finally:
            d3.cleanup()
    finally:
        d2.cleanup()


def fork(d, sid):
    r = d.post("/v1/sessions/%s/fork" % sid, timeout=60)
    assert r.status == 201, r
    return r.json


def test_fork_copies_files_at_that_instant(d):
    sid = new_session(d, memory_mb=200, labels={"k": "v"})
    try:
        sh(d, sid, "echo before > ~/before.txt && mkdir -p ~/dir && echo x > ~/dir/x && rm ~/.bash_logout")
        sh(d, sid, "sleep 1000 >/dev/null 2>&1 &")
        f = fork(d, sid)
        assert f["forked_from"] == sid and f["id"] != sid
        assert f["limits"]["memory_mb"] == 200 and f["labels"] == {"k": "v"}
        fid = f["id"]
        try:
            sh(d, sid, "echo after-src > ~/after-src.txt")
            sh(d, fid, "echo after-fork > ~/after-fork.txt")
            # before the fork: in both; the fork's files are its own (uid 1000 inside)
            assert sh(d, fid, "cat ~/before.txt ~/dir/x; stat -c %u ~/before.txt")["stdout"] == "before\nx\n1000\n"
            assert sh(d, sid, "cat ~/before.txt")["stdout"] == "before\n"
            assert sh(d, fid, "test -e ~/.bash_logout", ok=False)["exit_code"] != 0
            # after: only in their own
            assert sh(d, fid, "test -e ~/after-src.txt", ok=False)["exit_code"] != 0
            assert sh(d, sid, "test -e ~/after-fork.txt", ok=False)["exit_code"] != 0
            # processes are not copied
            count = "cat /proc/[0-9]*/comm | grep -c '^sleep$'"
            assert sh(d, sid, count)["stdout"] == "1\n"
            assert sh(d, fid, count, ok=False)["stdout"] == "0\n"
        finally:
            d.delete("/v1/sessions/%s" % fid)
    finally:
        d.delete("/v1/sessions/%s" % sid)


def test_fork_of_a_template_session_keeps_its_layers(d, sdk):
    sid = new_session(d, template="sdk")
    try:
        sh(d, sid, "echo mine > ~/mine.txt")
        f = fork(d, sid)
        try:
            assert f["template"] == "sdk"
            assert sh(d, f["id"], "cat ~/notes.txt ~/mine.txt")["stdout"] == "written\nmine\n"
            # the template is in use by the fork too
            assert d.delete("/v1/templates/sdk").status == 409
        finally:
            d.delete("/v1/sessions/%s" % f["id"])
    finally:
        d.delete("/v1/sessions/%s" % sid)


def test_fork_is_not_visible_to_another_uid(d):
    sid = new_session(d)
    try:
        assert d.as_nobody("POST", "/v1/sessions/%s/fork" % sid)["status"] == 404
    finally:
        d.delete("/v1/sessions/%s" % sid)


def test_cli_build_list_fork_rm(d, tmp_path):
    ctl = os.path.join(os.environ.get("SANDPOOL_BUILD_DIR", os.path.join(HERE, "..", "..", "build")),
                       "ctl", "sandpoolctl")

    def run(*args, check=True):
        p = subprocess.run([ctl, "--socket", d.socket] + list(args), capture_output=True, text=True, timeout=120)
        if check:
            assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p

    local = tmp_path / "hello.py"
    local.write_text("print('hello from the template')\n")
    run("template", "build", "clibuilt", "--file", "%s:/home/sandbox/hello.py" % local,
        "--run", "python3 ~/hello.py > ~/out.txt", "--run", "echo second >> ~/out.txt")
    assert "clibuilt" in run("templates").stdout
    listed = json.loads(run("--json", "templates").stdout)
    assert [t["name"] for t in listed if t["name"] == "clibuilt"]
    # a failing command: its output, exit 1, no template, no session left
    n_before = len(d.get("/v1/sessions").json["sessions"])
    p = run("template", "build", "clifail", "--run", "echo oops-out; echo oops-err >&2; exit 3", check=False)
    assert p.returncode == 1 and "oops-out" in p.stderr and "oops-err" in p.stderr, p
    assert d.get("/v1/templates/clifail").status == 404
    assert len(d.get("/v1/sessions").json["sessions"]) == n_before
    sid = new_session(d, template="clibuilt")
    try:
        assert sh(d, sid, "cat ~/out.txt")["stdout"] == "hello from the template\nsecond\n"
        fid = run("fork", sid).stdout.strip()
        assert sh(d, fid, "cat ~/out.txt")["stdout"].startswith("hello")
        d.delete("/v1/sessions/%s" % fid)
        assert run("template", "rm", "clibuilt", check=False).returncode != 0  # in use
    finally:
        d.delete("/v1/sessions/%s" % sid)
    run("template", "rm", "clibuilt")
    assert d.get("/v1/templates/clibuilt").status == 404


def test_python_client(d):
    sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
    import sandpool
    c = sandpool.Client(d.socket)
    s = c.create_session()
    try:
        sandpool.Sandbox.connect(s.id, client=c).run("echo py > ~/py.txt").check()
        t = c.create_template("pyclient", s.id)
        assert t["name"] == "pyclient" and "pyclient" in [x["name"] for x in c.templates()]
        f = c.fork_session(s.id)
        s2 = c.create_session(template="pyclient")
        for sid in (f.id, s2.id):
            assert sandpool.Sandbox.connect(sid, client=c).run("cat ~/py.txt").check().stdout == "py\n"
        with pytest.raises(sandpool.ConflictError):
            c.delete_template("pyclient")
        c.end_session(s2.id)
        c.delete_template("pyclient")
        with pytest.raises(sandpool.NotFoundError):
            c.template("pyclient")
    finally:
        for x in c.sessions():
            c.end_session(x.id)
