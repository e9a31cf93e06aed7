# SPDX-License-Identifier: MIT
"""The "internet" of the network tests, run inside a network namespace the
test made (no route out of it): a DNS server (UDP and TCP, port 53) with a
fixed zone, and HTTP (80) and HTTPS (443, a self-signed certificate made
with the openssl CLI) servers on every address of the namespace, each
answering with the Host it was asked for and the address it was reached at.

usage: fake_internet.py DIR    (writes DIR/dns.log, DIR/ready)
"""

import http.server
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading

ZONE = {
    # name -> A records
    "allowed.test": ["198.51.100.20"],
    "shared.test": ["198.51.100.20"],     # unlisted, same address as allowed.test
    "other.test": ["198.51.100.40"],      # unlisted
    "api.wild.test": ["198.51.100.30"],   # matched by *.wild.test
    "rebind.test": ["10.9.9.9"],          # allowed name, private address
    "meta.test": ["169.254.169.254"],     # allowed name, the metadata address
    "mixed.test": ["169.254.169.254", "198.51.100.30"],
}
TXT = {"allowed.test": "v=tunnel"}
OUT = sys.argv[1]
log_lock = threading.Lock()


def log(line):
    with log_lock, open(os.path.join(OUT, "dns.log"), "a") as f:
        f.write(line + "\n")


def read_name(msg, off):
    labels = []
    while True:
        n = msg[off]
        if n == 0:
            return ".".join(labels), off + 1
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def answer(msg):
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    name, off = read_name(msg, 12)
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    question = msg[12:off + 4]
    lname = name.lower()
    log("%s %d" % (lname, qtype))
    records = []
    rcode = 0
    if qtype == 1 and lname in ZONE:
        for a in ZONE[lname]:
            records.append(struct.pack("!HHHIH", 0xC00C, 1, 1, 30, 4) + socket.inet_aton(a))
    elif qtype == 16 and lname in TXT:
        t = TXT[lname].encode()
        records.append(struct.pack("!HHHIH", 0xC00C, 16, 1, 30, len(t) + 1) + bytes([len(t)]) + t)
    elif lname not in ZONE:
        rcode = 3
    hdr = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(records), 0, 0)
    return hdr + question + b"".join(records)


def dns_udp(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    while True:
        msg, peer = s.recvfrom(4096)
        try:
            s.sendto(answer(msg), peer)
        except Exception:
            pass


def dns_tcp(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 53))
    s.listen(16)
    while True:
        c, _ = s.accept()
        try:
            n = struct.unpack("!H", c.recv(2))[0]
            msg = b""
            while len(msg) < n:
                msg += c.recv(n - len(msg))
            a = answer(msg)
            c.sendall(struct.pack("!H", len(a)) + a)
        except Exception:
            pass
        c.close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/big/"):
            n = int(self.path[5:])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        body = ("host=%s addr=%s\n" % (self.headers.get("Host"), self.server.server_address[0])).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve_http(addr, port, ctx=None):
    srv = Server((addr, port), Handler)
    if ctx:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


def main():
    addrs = sys.argv[2:]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(OUT, "cert.pem"), os.path.join(OUT, "key.pem"))
    threads = [threading.Thread(target=dns_udp, args=("198.51.100.10",)),
               threading.Thread(target=dns_tcp, args=("198.51.100.10",))]
    for a in addrs:
        threads.append(threading.Thread(target=serve_http, args=(a, 80)))
        threads.append(threading.Thread(target=serve_http, args=(a, 8080)))
        threads.append(threading.Thread(target=serve_http, args=(a, 443, ctx)))
    for t in threads:
        t.daemon = True
        t.start()
    open(os.path.join(OUT, "ready"), "w").close()
    threading.Event().wait()


if __name__ == "__main__":
    main()
