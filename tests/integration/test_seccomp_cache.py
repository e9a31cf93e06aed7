# SPDX-License-Identifier: MIT
"""The compiled seccomp filter is cached by the policy's content
(/run/sandpool/seccomp): `sandpoold run` compiles a policy once, and a
cache file is used only when root owns it and nobody else may write it.

The trust check is shown by trying: a root-owned cache entry whose filter
allows everything is used (it is root's word), the same entry made group-
writable, or owned by another uid, is not (keyctl is EPERM again)."""
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest

from sandpool_testlib import POLICY, is_root, probe, sandbox_env

CACHE = Path("/run/sandpool/seccomp")
pytestmark = pytest.mark.skipif(not is_root(), reason="needs root")

# classic BPF: one instruction, return SECCOMP_RET_ALLOW
ALLOW_ALL = struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)


@pytest.fixture
def policy():
    """A copy of the default policy with a unique comment: its own key."""
    d = tempfile.mkdtemp(prefix="sp-seccomp-")
    p = os.path.join(d, "default.policy")
    text = Path(POLICY).read_text() + "\n# cache test %s\n" % os.path.basename(d)
    Path(p).write_text(text)
    yield p, text.encode()
    for f in entries_for(text.encode()):
        f.unlink()
    shutil.rmtree(d)


def entries_for(text):
    return [f for f in CACHE.glob("*.bpf") if text in f.read_bytes()]


def keyctl(policy_path):
    r = probe("syscall", "keyctl", env=sandbox_env(SANDPOOL_SECCOMP_POLICY=policy_path))
    return r.checks("syscall")[("syscall", "keyctl")]


def forge_allow_all(entry, text):
    """Keep the entry's header, context and text; replace its program."""
    data = entry.read_bytes()
    magic, context_len, n_insns, policy_len = struct.unpack_from("<8sIIQ", data)
    head = data[:24 + context_len + policy_len]
    assert head.endswith(text)
    new = bytearray(head)
    struct.pack_into("<I", new, 12, 1)  # n_insns = 1
    entry.write_bytes(bytes(new) + ALLOW_ALL)


def test_compiled_once_and_stored_safely(policy):
    path, text = policy
    assert keyctl(path)[1] == "EPERM"
    entries = entries_for(text)
    assert len(entries) == 1, entries
    st = entries[0].stat()
    assert st.st_uid == 0 and (st.st_mode & 0o077) == 0, oct(st.st_mode)
    d = CACHE.stat()
    assert d.st_uid == 0 and (d.st_mode & 0o022) == 0
    mtime = st.st_mtime_ns
    # a second run reads it, it does not write it again
    keyctl(path)
    assert entries[0].stat().st_mtime_ns == mtime


def test_only_a_cache_nobody_else_can_write_is_trusted(policy):
    path, text = policy
    keyctl(path)
    entry = entries_for(text)[0]
    forge_allow_all(entry, text)
    os.chmod(entry, 0o600)
    # root's own entry is taken as it is: the forged filter allows keyctl
    # (this is what shows that the next two checks mean something)
    assert "EPERM" not in keyctl(path), "a root-owned cache entry was not used"
    forge_allow_all(entries_for(text)[0], text)
    os.chmod(entry, 0o620)
    assert "EPERM" in keyctl(path), "a group-writable cache entry was used"
    forge_allow_all(entries_for(text)[0], text)
    entry = entries_for(text)[0]
    os.chown(entry, 65534, 0)
    os.chmod(entry, 0o600)
    assert "EPERM" in keyctl(path), "a cache entry owned by another uid was used"


def test_a_changed_policy_is_compiled_again(policy):
    path, text = policy
    keyctl(path)
    # the same key with other content (a collision, or a stale file) is a
    # miss: the text is compared whole
    entry = entries_for(text)[0]
    other = text.replace(b"# cache test", b"# cache TEST")
    forge_allow_all(entry, text)
    data = entry.read_bytes().replace(text, other)
    entry.write_bytes(data)
    os.chmod(entry, 0o600)
    assert "EPERM" in keyctl(path)
