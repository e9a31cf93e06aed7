# SPDX-License-Identifier: MIT
"""A minimal client of the sandpool API over its Unix socket, standard
library only. Also a command line tool, so that a test can run requests
as another uid (setpriv ... python3 apiclient.py SOCKET METHOD PATH [BODY]):
it prints {"status": N, "headers": {...}, "body": <json or text>}."""

import http.client
import json
import socket
import sys


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Response:
    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data

    @property
    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.data[:200])


def request(sock_path, method, path, body=None, headers=None, timeout=60):
    conn = UnixHTTPConnection(sock_path, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def main(argv):
    sock_path, method, path = argv[1], argv[2], argv[3]
    body = argv[4] if len(argv) > 4 else None
    r = request(sock_path, method, path, body.encode() if body is not None else None)
    try:
        payload = json.loads(r.data) if r.data else None
    except ValueError:
        payload = r.data.decode(errors="replace")
    print(json.dumps({"status": r.status, "headers": r.headers, "body": payload}))


if __name__ == "__main__":
    main(sys.argv)
