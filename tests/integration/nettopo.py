# SPDX-License-Identifier: MIT
"""The network namespaces of the network tests and benchmark: a "host"
namespace for the daemon (its uplink up0, 192.0.2.1) and an "internet"
namespace with no route out (192.0.2.2; DNS 198.51.100.10, HTTP/HTTPS on
198.51.100.20/.30/.40 and 169.254.169.254, tests/integration/fake_internet.py),
plus a plain HTTP server on the host (port 18080). Nothing leaves them."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE = os.environ.get("SANDPOOL_NET_IMAGE", "/var/lib/sandpool/images/default")
TAG = "%d" % os.getpid()
HOST_NS = "spnet-h-" + TAG
INET_NS = "spnet-i-" + TAG
INET_ADDRS = ["198.51.100.10", "198.51.100.20", "198.51.100.30", "198.51.100.40"]
METADATA = "169.254.169.254"


def run(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, timeout=60, **kw)


def in_ns(ns, *cmd, check=True):
    return run("nsenter", "--net=/run/netns/" + ns, *cmd, check=check)


class Topology:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="spnet-")
        os.chmod(self.dir, 0o755)
        self.servers = None

    def up(self):
        run("ip", "netns", "add", HOST_NS)
        run("ip", "netns", "add", INET_NS)
        run("ip", "link", "add", "up0", "netns", HOST_NS, "type", "veth", "peer", "name", "down0", "netns", INET_NS)
        for ns in (HOST_NS, INET_NS):
            in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(HOST_NS, "ip", "addr", "add", "192.0.2.1/24", "dev", "up0")
        in_ns(HOST_NS, "ip", "link", "set", "up0", "up")
        in_ns(HOST_NS, "ip", "route", "add", "default", "via", "192.0.2.2")
        in_ns(HOST_NS, "sysctl", "-qw", "net.ipv4.conf.up0.forwarding=1")
        in_ns(INET_NS, "ip", "addr", "add", "192.0.2.2/24", "dev", "down0")
        in_ns(INET_NS, "ip", "link", "set", "down0", "up")
        for a in INET_ADDRS + [METADATA]:
            in_ns(INET_NS, "ip", "addr", "add", a + "/32", "dev", "lo")
        # the metadata address exists in this internet, routed from the host
        in_ns(HOST_NS, "ip", "route", "add", METADATA + "/32", "via", "192.0.2.2")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=allowed.test",
            "-addext", "subjectAltName=DNS:allowed.test,DNS:shared.test,DNS:api.wild.test,DNS:other.test",
            "-keyout", os.path.join(self.dir, "key.pem"), "-out", os.path.join(self.dir, "cert.pem"))
        self.servers = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + INET_NS, sys.executable, os.path.join(HERE, "fake_internet.py"),
             self.dir] + INET_ADDRS[1:] + [METADATA], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(self.dir, "ready")):
            assert time.monotonic() < deadline, "the fake internet did not start"
            assert self.servers.poll() is None, "the fake internet exited"
            time.sleep(0.05)
        # a server on the host itself, which sandboxes must never reach
        self.host_server = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + HOST_NS, sys.executable, "-m", "http.server", "--bind", "0.0.0.0",
             "18080"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)

    def dns_log(self):
        try:
            with open(os.path.join(self.dir, "dns.log")) as f:
                return [l for l in f.read().split("\n") if l]
        except FileNotFoundError:
            return []

    def down(self):
        for p in (self.servers, getattr(self, "host_server", None)):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        run("ip", "netns", "del", HOST_NS, check=False)
        run("ip", "netns", "del", INET_NS, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)




def skip_reason():
    """Why this machine cannot run the network tests, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    for tool in ("ip", "nsenter", "openssl", "nft", "tc", "curl"):
        if not shutil.which(tool):
            return "%s is missing (tools/install-deps)" % tool
    if not os.path.isfile(os.path.join(IMAGE, "usr/bin/python3")) or not os.path.isfile(
            os.path.join(IMAGE, "usr/bin/curl")):
        return "no image with python3 and curl at %s (rootfs/build-image --install)" % IMAGE
    return None
