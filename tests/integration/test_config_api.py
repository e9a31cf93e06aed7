# SPDX-License-Identifier: MIT
"""The first run as written (issue 20, part 3), against the real daemon:
GET /v1/config for administrators, sandpoolctl config, a default that
follows the value the user set, and the build tree's daemon finding the
build tree's seccomp policy with no seccomp_policy configured."""

import json
import os
import re

from conftest import SOURCE_ROOT
from test_ctl import ctl, EXIT_PERMISSION


def _write_conf(d, drop=(), extra=None):
    """Rewrite the daemon's file without the keys in drop."""
    with open(d.conf_path) as f:
        lines = [l for l in f if not any(l.startswith(k + " ") for k in drop)]
    with open(d.conf_path, "w") as f:
        f.writelines(lines)
        for sec, kv in (extra or {}).items():
            f.write("[%s]\n" % sec)
            for k, v in kv.items():
                f.write("%s = %s\n" % (k, v))


def test_config_for_admins_only(make_daemon):
    d = make_daemon(env={"SANDPOOL_MAX_OUTPUT": "2M"})
    r = d.get("/v1/config")
    assert r.status == 200, r
    keys = {(k["section"], k["key"]): k for k in r.json["keys"]}
    assert r.json["file"] == d.conf_path
    assert keys[("server", "socket")] == {"section": "server", "key": "socket", "value": d.socket,
                                          "source": "file", "where": d.conf_path + ":2", "redacted": False}
    assert keys[("limits", "max_output")]["value"] == "2M"
    assert keys[("limits", "max_output")]["source"] == "env"
    assert keys[("limits", "max_output")]["where"] == "SANDPOOL_MAX_OUTPUT"
    assert keys[("limits", "memory_limit")]["source"] == "default"
    # every key of --print-config, in its order
    printed = re.findall(r"^(\w+) =", open_print_config(d), re.M)
    assert [k["key"] for k in r.json["keys"]] == printed
    # not for a plain client: 403, and sandpoolctl says permission denied
    body = d.as_nobody("GET", "/v1/config")
    assert body["status"] == 403 and body["body"]["error"]["code"] == "forbidden", body
    c = ctl(d.socket, "config", user="nobody")
    assert c.returncode == EXIT_PERMISSION, c.stderr
    # the table for people
    c = ctl(d.socket, "config")
    assert c.returncode == 0, c.stderr
    assert re.search(r"limits\s+max_output\s+2M\s+env \(SANDPOOL_MAX_OUTPUT\)", c.stdout), c.stdout


def open_print_config(d):
    import subprocess
    from conftest import SANDPOOLD
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDPOOL_")}
    return subprocess.run([SANDPOOLD, "--config", d.conf_path, "--print-config"], env=env,
                          capture_output=True, text=True, check=True).stdout


def test_pool_size_alone_lowers_the_default_min(make_daemon):
    d = make_daemon(start=False)
    _write_conf(d, drop=("pool_size", "min_pool_size"))
    d.extra_env["SANDPOOL_POOL_SIZE"] = "2"
    d.start()
    assert "min_pool_size: default 3 lowered to 2 to follow pool_size 2 (SANDPOOL_POOL_SIZE)" in d.read_log()
    keys = {k["key"]: k for k in d.get("/v1/config").json["keys"]}
    assert keys["min_pool_size"]["value"] == "2" and keys["min_pool_size"]["source"] == "default"
    assert d.get("/v1/config").json["notices"] == [
        "min_pool_size: default 3 lowered to 2 to follow pool_size 2 (SANDPOOL_POOL_SIZE)"]


def test_two_explicit_contradictory_values_stay_an_error(make_daemon):
    d = make_daemon(start=False)
    _write_conf(d, drop=("pool_size", "min_pool_size"), extra={"pool": {"min_pool_size": "3"}})
    d.extra_env["SANDPOOL_POOL_SIZE"] = "2"
    try:
        d.start()
    except RuntimeError as e:
        assert "SANDPOOL_POOL_SIZE: [pool] pool_size: 2 is less than min_pool_size 3" in str(e)
    else:
        raise AssertionError("the daemon started with min_pool_size 3 > pool_size 2")


def test_build_tree_daemon_finds_the_source_policy(make_daemon):
    # no seccomp_policy anywhere: the build tree's sandpoold takes policies/ of this tree
    d = make_daemon(start=False)
    _write_conf(d, drop=("seccomp_policy",))
    d.start()
    keys = {k["key"]: k for k in d.get("/v1/config").json["keys"]}
    assert keys["seccomp_policy"]["value"] == os.path.join(SOURCE_ROOT, "policies", "default.policy")
    assert keys["seccomp_policy"]["source"] == "default"
    sid = d.session()
    r = d.exec(sid, {"argv": ["/bin/echo", "ok"]})
    assert r.status == 200 and r.json["stdout"] == "ok\n", r
