# SPDX-License-Identifier: MIT
"""bash completion for sandpoolctl and sandpoold (completions/), loaded into a
real bash with Debian's bash-completion, as TAB would run it: subcommands,
each command's options (checked against the binaries' own --help, both ways,
so the two cannot drift apart), and session ids asked from a real daemon."""

import os
import re
import subprocess
import time

import pytest

from conftest import SOURCE_ROOT, BUILD_DIR

COMPLETE = os.path.join(SOURCE_ROOT, "tests", "completion", "complete.sh")
CTL_COMP = os.path.join(SOURCE_ROOT, "completions", "sandpoolctl")
D_COMP = os.path.join(SOURCE_ROOT, "completions", "sandpoold")
CTL = os.path.join(BUILD_DIR, "ctl", "sandpoolctl")
SANDPOOLD = os.path.join(BUILD_DIR, "supervisor", "sandpoold")

if not os.path.exists("/usr/share/bash-completion/bash_completion"):
    pytest.skip("bash-completion is not installed (tools/install-deps)", allow_module_level=True)


def complete(comp, line):
    env = dict(os.environ, PATH=os.path.dirname(CTL) + ":" + os.path.dirname(SANDPOOLD) + ":" +
               os.environ.get("PATH", "/usr/bin:/bin"))
    env.pop("SANDPOOL_SOCKET", None)
    p = subprocess.run(["bash", COMPLETE, comp, line], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    return [w for w in p.stdout.split("\n") if w]


def help_options(*argv):
    p = subprocess.run(list(argv) + ["--help"], capture_output=True, text=True)
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", p.stdout + p.stderr))


def test_subcommands_are_the_help_s_commands():
    out = subprocess.run([CTL, "--help"], capture_output=True, text=True).stdout
    block = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    commands = {l.split()[0] for l in block.splitlines() if l.strip()}
    assert "mcp" in commands and "exec" in commands
    assert set(complete(CTL_COMP, "sandpoolctl ")) == commands | {"help"}
    assert complete(CTL_COMP, "sandpoolctl se") == ["sessions", "session"]
    # --socket's value is not the subcommand
    assert complete(CTL_COMP, "sandpoolctl --socket /tmp/x ex") == ["exec"]
    assert set(complete(CTL_COMP, "sandpoolctl --")) == {"--socket", "--json", "--help", "--version"}


@pytest.mark.parametrize("cmd", ["status", "pool", "sessions", "session", "exec", "cp", "commands", "logs",
                                 "shell", "kill", "top", "config", "mcp", "history", "usage"])
def test_options_match_help(cmd):
    want = help_options(CTL, cmd)
    got = set(complete(CTL_COMP, "sandpoolctl %s --" % cmd))
    assert want <= got, "in --help, not completed: %s" % (want - got)
    # nothing invented: the command's own options, --help, and the global --socket
    assert got <= want | {"--help", "--socket"}, got - want


def test_option_values():
    assert complete(CTL_COMP, "sandpoolctl top --sort ") == ["cpu", "memory"]
    assert complete(CTL_COMP, "sandpoolctl top -o m") == ["memory"]
    # after the command to run, its own words are not ours
    assert complete(CTL_COMP, "sandpoolctl exec -t 5s ls -") == []
    assert complete(CTL_COMP, "sandpoolctl exec -- ls -") == []


def test_sandpoold_options_match_help():
    want = help_options(SANDPOOLD)
    got = set(complete(D_COMP, "sandpoold --"))
    assert want == got, (want, got)
    want_run = help_options(SANDPOOLD, "run")
    got_run = set(complete(D_COMP, "sandpoold run --")) - {"--"}
    assert want_run == got_run, (want_run ^ got_run)
    assert complete(D_COMP, "sandpoold ") == ["run"]
    assert complete(D_COMP, "sandpoold run --user r") == ["root"]
    assert complete(D_COMP, "sandpoold run -- ls -") == []


def test_session_ids_from_the_daemon(daemon):
    a, b = daemon.session(), daemon.session()
    try:
        base = "sandpoolctl --socket %s " % daemon.socket
        assert set(complete(CTL_COMP, base + "kill ")) >= {a, b}
        assert complete(CTL_COMP, base + "session " + a[:12]) == [a]
        assert set(complete(CTL_COMP, base + "exec -s ")) >= {a, b}
        assert complete(CTL_COMP, base + "mcp --session " + b[:12]) == [b]
        # cp: ID:/PATH; bash splits words at ':' so what comes back is ID:/ whole
        assert complete(CTL_COMP, base + "cp /etc/hostname " + a[:12]) == [a + ":/"]
    finally:
        daemon.delete("/v1/sessions/" + a)
        daemon.delete("/v1/sessions/" + b)
    assert a not in complete(CTL_COMP, base + "kill ")


def test_no_daemon_no_ids_and_no_wait():
    t0 = time.monotonic()
    assert complete(CTL_COMP, "sandpoolctl --socket /nonexistent/s.sock kill ") == []
    assert time.monotonic() - t0 < 5
