# SPDX-License-Identifier: MIT
"""Client for the sandpool daemon (sandpoold), standard library only.

It speaks HTTP/1.1 + JSON over the daemon's Unix socket (see docs/api.md).

    import sandpool

    with sandpool.Sandbox() as sb:              # a session; ended on exit
        r = sb.run("echo hello; exit 3")        # a shell line, or an argv list
        print(r.exit_code, r.stdout)            # 3 hello
        sb.write_file("/home/sandbox/in.txt", "data")
        for ev in sb.stream(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 1; done"]):
            print(ev.type, ev.data)

    print(sandpool.run("uname -a").stdout)      # one shot: sandbox made and destroyed

Every socket operation has a timeout. For a command the daemon answers only
when it has ended, so the read timeout of an exec is the command's own
timeout plus the client's timeout as a margin; a command whose client gives
up (timeout, exception, closed stream) is killed by the daemon, which sees
the connection close.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, Iterator, List, Literal, Mapping, NoReturn, Optional,
                    Sequence, Tuple, TypeVar, Union, overload)

__all__ = [
    "Client", "Sandbox", "run", "CommandResult", "Event", "CommandStream",
    "DirEntry", "SessionInfo", "DEFAULT_SOCKET",
    "SandpoolError", "BadRequestError", "ForbiddenError", "NotFoundError",
    "MethodNotAllowedError", "ConflictError", "TooLargeError",
    "NoCapacityError", "InternalError", "ShuttingDownError",
    "SandpoolTimeoutError", "SandpoolConnectionError", "ProtocolError",
    "CommandError",
]

__version__ = "0.1.0"

DEFAULT_SOCKET = "/run/sandpool/sandpool.sock"
DEFAULT_TIMEOUT = 30.0

Command = Union[str, Sequence[str]]
OutputCallback = Callable[[str], None]
T = TypeVar("T")


# --------------------------------------------------------------------------
# Errors


class SandpoolError(Exception):
    """An error answered by the daemon, or met talking to it.

    status is the HTTP status (0 when no answer was received), code the
    daemon's error code ("not_found", ...), message its explanation."""

    def __init__(self, message: str, *, status: int = 0, code: str = "",
                 retry_after: Optional[float] = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        if self.status:
            return "%d %s: %s" % (self.status, self.code or "error", self.message)
        return self.message


class BadRequestError(SandpoolError):
    """400: the request was invalid (bad JSON, unknown field, relative path...)."""


class ForbiddenError(SandpoolError):
    """403: the sandbox user may not do that (e.g. write /etc/passwd)."""


class NotFoundError(SandpoolError):
    """404: no such session (or another uid's), no such file, no such endpoint."""


class MethodNotAllowedError(SandpoolError):
    """405: known path, wrong method."""


class ConflictError(SandpoolError):
    """409: wrong state (sandbox gone, non-empty directory, directory for a file)."""


class TooLargeError(SandpoolError):
    """413: body over the limit, or the sandbox's disk quota is full."""


class NoCapacityError(SandpoolError):
    """429: every sandbox slot is in use; retry_after says when to try again (s)."""


class InternalError(SandpoolError):
    """500: the daemon failed (sandbox could not start, kernel error)."""


class ShuttingDownError(SandpoolError):
    """503: the daemon is draining after SIGTERM."""


class SandpoolTimeoutError(SandpoolError, TimeoutError):
    """A socket operation took longer than its timeout (no answer in time)."""


class SandpoolConnectionError(SandpoolError, ConnectionError):
    """The daemon could not be reached, or closed the connection."""


class ProtocolError(SandpoolError):
    """The daemon answered something this client does not understand."""


class CommandError(SandpoolError):
    """run(..., check=True): the command did not exit with status 0."""

    def __init__(self, result: "CommandResult"):
        if result.timed_out:
            what = "timed out"
        elif result.signal is not None:
            what = "was killed by signal %d" % result.signal
        else:
            what = "exited with %s" % result.exit_code
        super().__init__("command %s: %s" % (what, result.stderr[-500:].strip()), code="command_failed")
        self.result = result


_ERRORS_BY_STATUS = {
    400: BadRequestError, 403: ForbiddenError, 404: NotFoundError,
    405: MethodNotAllowedError, 409: ConflictError, 413: TooLargeError,
    429: NoCapacityError, 500: InternalError, 503: ShuttingDownError,
}
_ERRORS_BY_CODE = {
    "bad_request": BadRequestError, "forbidden": ForbiddenError,
    "not_found": NotFoundError, "method_not_allowed": MethodNotAllowedError,
    "conflict": ConflictError, "too_large": TooLargeError,
    "no_capacity": NoCapacityError, "internal": InternalError,
    "shutting_down": ShuttingDownError,
}


def error_from_response(status: int, body: bytes, headers: Mapping[str, str]) -> SandpoolError:
    """The typed exception for an error answer. The code in the JSON body
    decides; the status is the fallback for answers without one (431 from
    libmicrohttpd itself, or a proxy)."""
    code, message = "", ""
    try:
        err = json.loads(body)["error"]
        code, message = str(err.get("code", "")), str(err.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        message = body[:200].decode("utf-8", "replace").strip()
    cls = _ERRORS_BY_CODE.get(code) or _ERRORS_BY_STATUS.get(status)
    if cls is None:
        cls = BadRequestError if 400 <= status < 500 else SandpoolError
    retry_after = None
    ra = headers.get("retry-after")
    if ra is not None:
        try:
            retry_after = float(ra)
        except ValueError:
            retry_after = None
    return cls(message or "HTTP %d" % status, status=status, code=code, retry_after=retry_after)


# --------------------------------------------------------------------------
# Results


@dataclass
class CommandResult:
    """A finished command. A non-zero exit is data here, not an exception
    (unless check=True was asked)."""

    exit_code: Optional[int]
    signal: Optional[int] = None
    stdout: str = ""
    stderr: str = ""
    duration_ms: int = 0
    timed_out: bool = False
    oom_killed: bool = False
    truncated: bool = False
    error: Optional[str] = None
    session_ended: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self) -> "CommandResult":
        """Raise CommandError unless the command exited with 0."""
        if not self.ok:
            raise CommandError(self)
        return self

    @classmethod
    def from_json(cls, d: Mapping[str, Any], stdout: Optional[str] = None,
                  stderr: Optional[str] = None) -> "CommandResult":
        return cls(
            exit_code=d.get("exit_code"), signal=d.get("signal"),
            stdout=d.get("stdout", "") if stdout is None else stdout,
            stderr=d.get("stderr", "") if stderr is None else stderr,
            duration_ms=int(d.get("duration_ms") or 0),
            timed_out=bool(d.get("timed_out")), oom_killed=bool(d.get("oom_killed")),
            truncated=bool(d.get("truncated")), error=d.get("error"),
            session_ended=bool(d.get("session_ended")))


@dataclass
class Event:
    """One event of a streamed command: type is "start", "stdout", "stderr"
    or "exit". data is the output chunk; result is set on "exit"."""

    type: str
    data: str = ""
    result: Optional[CommandResult] = None
    raw: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DirEntry:
    name: str
    type: str  # "file", "dir", "symlink" or "other"
    size: int
    mode: int
    mtime: int

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"


@dataclass
class SessionInfo:
    """A session as the daemon describes it; raw holds every field,
    including usage (from GET on one session) and fields added later."""

    id: str
    state: str
    owner_uid: int
    created_at: str
    expires_at: str
    labels: Dict[str, str]
    usage: Optional[Dict[str, int]]
    raw: Dict[str, Any]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "SessionInfo":
        return cls(id=d["id"], state=d.get("state", ""), owner_uid=d.get("owner_uid", -1),
                   created_at=d.get("created_at", ""), expires_at=d.get("expires_at", ""),
                   labels=dict(d.get("labels") or {}), usage=d.get("usage"), raw=dict(d))


# --------------------------------------------------------------------------
# Transport


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            s.settimeout(self.timeout)
            s.connect(self._unix_path)
        except BaseException:
            s.close()
            raise
        self.sock = s


def _dropped(conn: _UnixConnection) -> bool:
    """True when an idle kept-alive connection was closed by the daemon (it
    closes idle ones after 60 s): readable with nothing pending means EOF."""
    if conn.sock is None:
        return True
    try:
        r, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(r)


def _object(d: Any, what: str) -> Dict[str, Any]:
    """The answer d as a JSON object, or ProtocolError naming what it should be."""
    if not isinstance(d, dict):
        raise ProtocolError("%s answered no JSON object" % what)
    return d


def _json_body(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _command_body(cmd: Command, *, cwd: Optional[str], env: Optional[Mapping[str, str]],
                  stdin: Optional[str], timeout: Optional[float],
                  max_output_bytes: Optional[int], stream: bool) -> Dict[str, Any]:
    body: Dict[str, Any] = {}
    if isinstance(cmd, str):
        body["shell"] = cmd
    elif isinstance(cmd, (bytes, bytearray)):
        raise TypeError("cmd must be a str (shell line) or a sequence of str (argv)")
    else:
        body["argv"] = [str(a) for a in cmd]
    if cwd is not None:
        body["cwd"] = cwd
    if env is not None:
        body["env"] = dict(env)
    if stdin is not None:
        body["stdin"] = stdin
    if timeout is not None:
        # The daemon takes whole milliseconds, at least 1.
        body["timeout_ms"] = max(1, int(round(timeout * 1000)))
    if max_output_bytes is not None:
        body["max_output_bytes"] = int(max_output_bytes)
    if stream:
        body["stream"] = True
    return body


class _Response:
    """An answer being read; owns its connection until closed."""

    def __init__(self, client: "Client", conn: _UnixConnection, resp: http.client.HTTPResponse):
        self._client = client
        self._conn: Optional[_UnixConnection] = conn
        self.resp = resp
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}

    def read(self) -> bytes:
        try:
            data = self.resp.read()
        except BaseException as e:
            self.close(reuse=False)
            _reraise(e)
        self.close(reuse=not self.resp.will_close)
        return data

    def readline(self) -> bytes:
        try:
            return self.resp.readline()
        except BaseException as e:
            self.close(reuse=False)
            _reraise(e)

    def close(self, reuse: bool = False) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client._release(conn, reuse and self.resp.isclosed())


def _reraise(e: BaseException) -> NoReturn:
    """Raise the client's error for e, chained to it; anything that is not
    an I/O error (KeyboardInterrupt, a bug) unchanged."""
    w = _wrap_os_error(e)
    if w is e:
        raise e
    raise w from e


def _wrap_os_error(e: BaseException) -> BaseException:
    if isinstance(e, SandpoolError):
        return e
    if isinstance(e, (socket.timeout, TimeoutError)):
        return SandpoolTimeoutError("no answer from sandpoold in time: %s" % e)
    if isinstance(e, (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead)):
        return SandpoolConnectionError("sandpoold closed the connection: %s" % e)
    if isinstance(e, http.client.HTTPException):
        return ProtocolError("bad answer from sandpoold: %r" % e)
    if isinstance(e, OSError):
        return SandpoolConnectionError("cannot talk to sandpoold: %s" % e)
    return e


# --------------------------------------------------------------------------
# Client



def _duration_ms(name: str, ms: Optional[int], s: Optional[float]) -> Optional[int]:
    """A duration given as name_ms or name_s (not both), in milliseconds."""
    if ms is not None and s is not None:
        raise ValueError("give %s_ms or %s_s, not both" % (name, name))
    if s is not None:
        return int(round(s * 1000))
    return ms

class Client:
    """A connection pool to one daemon. Thread-safe; cheap to keep.

    socket_path: the daemon's socket (default: $SANDPOOL_SOCKET, then
    /run/sandpool/sandpool.sock). timeout: seconds for every socket
    operation (connect, send, each read) of ordinary calls, and the margin
    added to a command's own timeout while waiting for it."""

    def __init__(self, socket_path: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT):
        self.socket_path = socket_path or os.environ.get("SANDPOOL_SOCKET") or DEFAULT_SOCKET
        self.timeout = float(timeout)
        self._idle: List[_UnixConnection] = []
        self._lock = threading.Lock()
        self._command_timeout: Optional[float] = None

    # -- transport

    def _acquire(self) -> Tuple[_UnixConnection, bool]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not _dropped(conn):
                    return conn, True
                conn.close()
        return _UnixConnection(self.socket_path, self.timeout), False

    def _release(self, conn: _UnixConnection, reuse: bool) -> None:
        if reuse and conn.sock is not None:
            with self._lock:
                if len(self._idle) < 8:
                    self._idle.append(conn)
                    return
        conn.close()

    def close(self) -> None:
        """Close the idle kept-alive connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Mapping[str, str]] = None,
                timeout: Optional[float] = None) -> _Response:
        """Send one request; return the answer with its body unread.
        Raises the typed error for any status >= 400. Low level: prefer the
        methods below."""
        hdrs = dict(headers or {})
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        # A request on a kept-alive connection that the daemon closed at the
        # same moment fails before it is processed; only calls that are safe
        # to repeat are sent again.
        attempts = 2 if method in ("GET", "PUT", "DELETE", "HEAD") else 1
        for attempt in range(attempts):
            conn, reused = self._acquire()
            conn.timeout = self.timeout if timeout is None else timeout
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            try:
                resp = self._send(conn, method, path, body, hdrs)
            except (ConnectionError, http.client.RemoteDisconnected) as e:
                conn.close()
                if reused and attempt + 1 < attempts:
                    continue
                _reraise(e)
            except BaseException as e:
                conn.close()
                _reraise(e)
            r = _Response(self, conn, resp)
            if r.status >= 400:
                raise error_from_response(r.status, r.read(), r.headers)
            return r
        raise AssertionError("unreachable")

    @staticmethod
    def _send(conn: _UnixConnection, method: str, path: str, body: Optional[bytes],
              hdrs: Dict[str, str]) -> http.client.HTTPResponse:
        try:
            conn.request(method, path, body=body, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            # The daemon answers some errors before reading the body (413 for
            # an upload over the limit) and closes: its answer is already in
            # our receive buffer, so read it rather than report the EPIPE.
            if conn.sock is None:
                raise
            try:
                return conn.getresponse()
            except (OSError, http.client.HTTPException):
                pass
            raise
        return conn.getresponse()

    def _call(self, method: str, path: str, obj: Any = None, *, raw: Optional[bytes] = None,
              timeout: Optional[float] = None) -> Any:
        body = raw if raw is not None else (None if obj is None else _json_body(obj))
        r = self.request(method, path, body, timeout=timeout)
        data = r.read()
        if r.status == 204 or not data:
            return None
        if r.headers.get("content-type", "").startswith("application/json"):
            try:
                return json.loads(data)
            except ValueError as e:
                raise ProtocolError("invalid JSON from sandpoold: %s" % e, status=r.status) from e
        return data

    # -- daemon

    def health(self) -> Dict[str, Any]:
        """GET /v1/health: status, version, cgroup mode, pool figures, limits."""
        d = self._call("GET", "/v1/health")
        if not isinstance(d, dict):
            raise ProtocolError("health answered no JSON object")
        return d

    def metrics(self) -> str:
        """GET /metrics: the Prometheus text."""
        data = self._call("GET", "/metrics")
        return data.decode("utf-8") if isinstance(data, bytes) else str(data or "")

    def command_timeout(self) -> float:
        """The daemon's default command timeout in seconds (asked once)."""
        if self._command_timeout is None:
            ms = self.health().get("limits", {}).get("command_timeout_ms", 30000)
            self._command_timeout = ms / 1000.0
        return self._command_timeout

    # -- sessions

    def create_session(self, *, env: Optional[Mapping[str, str]] = None,
                       timeout_s: Optional[float] = None, idle_timeout_s: Optional[float] = None,
                       memory_mb: Optional[int] = None, cpu_pct: Optional[int] = None,
                       labels: Optional[Mapping[str, str]] = None,
                       template: Optional[str] = None,
                       capacity_wait: float = 0.0, timeout_ms: Optional[int] = None,
                       idle_timeout_ms: Optional[int] = None) -> SessionInfo:
        """POST /v1/sessions. Each value is capped by the daemon's config.
        Durations go on the wire in milliseconds (timeout_ms,
        idle_timeout_ms); timeout_s / idle_timeout_s are the same in
        seconds (give one of each pair). capacity_wait: seconds to keep
        retrying while the daemon answers 429 (no capacity), each time
        after its Retry-After. template: start with that template's files
        (see create_template)."""
        timeout_ms = _duration_ms("timeout", timeout_ms, timeout_s)
        idle_timeout_ms = _duration_ms("idle_timeout", idle_timeout_ms, idle_timeout_s)
        body = {k: v for k, v in (("env", dict(env) if env is not None else None),
                                  ("timeout_ms", timeout_ms), ("idle_timeout_ms", idle_timeout_ms),
                                  ("memory_mb", memory_mb), ("cpu_pct", cpu_pct),
                                  ("labels", dict(labels) if labels is not None else None),
                                  ("template", template))
                if v is not None}

        def create() -> SessionInfo:
            d = self._call("POST", "/v1/sessions", body or None)
            if not isinstance(d, dict):
                raise ProtocolError("POST /v1/sessions answered no JSON object")
            return SessionInfo.from_json(d)

        return self._retry_capacity(capacity_wait, create)

    def sessions(self) -> List[SessionInfo]:
        """GET /v1/sessions: the caller's sessions (all of them for an admin)."""
        return [SessionInfo.from_json(s) for s in self._call("GET", "/v1/sessions")["sessions"]]

    def session(self, session_id: str) -> SessionInfo:
        """GET /v1/sessions/{id}, with usage."""
        return SessionInfo.from_json(self._call("GET", _spath(session_id)))

    def end_session(self, session_id: str) -> None:
        """DELETE /v1/sessions/{id}: its sandbox is destroyed."""
        self._call("DELETE", _spath(session_id))

    def fork_session(self, session_id: str) -> SessionInfo:
        """POST /v1/sessions/{id}/fork: a new session with a copy of this
        one's files at this instant (processes are not copied)."""
        return SessionInfo.from_json(self._call("POST", _spath(session_id) + "/fork"))

    # -- templates

    def create_template(self, name: str, from_session: str) -> Dict[str, Any]:
        """POST /v1/templates: capture the session's files as a read-only
        template; sessions made with template=name start with them."""
        return _object(self._call("POST", "/v1/templates",
                                  {"name": name, "from_session": from_session}), "template")

    def templates(self) -> List[Dict[str, Any]]:
        """GET /v1/templates: the templates the caller may use."""
        lst = _object(self._call("GET", "/v1/templates"), "template list").get("templates")
        if not isinstance(lst, list):
            raise ProtocolError("template list answered no \"templates\" array")
        return [_object(t, "template") for t in lst]

    def template(self, name: str) -> Dict[str, Any]:
        """GET /v1/templates/{name}."""
        return _object(self._call("GET", "/v1/templates/" + urllib.parse.quote(name, safe="")),
                       "template")

    def delete_template(self, name: str) -> None:
        """DELETE /v1/templates/{name} (ConflictError while in use)."""
        self._call("DELETE", "/v1/templates/" + urllib.parse.quote(name, safe=""))

    def sandbox(self, **kwargs: Any) -> "Sandbox":
        """A new session as a Sandbox (a context manager)."""
        return Sandbox(client=self, **kwargs)

    # -- commands

    def _exec_timeout(self, timeout: Optional[float]) -> float:
        return (timeout if timeout is not None else self.command_timeout()) + self.timeout

    def _exec(self, path: str, cmd: Command, *, cwd: Optional[str] = None,
              env: Optional[Mapping[str, str]] = None, stdin: Optional[str] = None,
              timeout: Optional[float] = None, max_output_bytes: Optional[int] = None,
              on_stdout: Optional[OutputCallback] = None,
              on_stderr: Optional[OutputCallback] = None,
              check: bool = False, socket_timeout: Optional[float] = None) -> CommandResult:
        if on_stdout is not None or on_stderr is not None:
            with self._stream(path, cmd, cwd=cwd, env=env, stdin=stdin, timeout=timeout,
                              max_output_bytes=max_output_bytes,
                              socket_timeout=socket_timeout) as s:
                for ev in s:
                    if ev.type == "stdout" and on_stdout is not None:
                        on_stdout(ev.data)
                    elif ev.type == "stderr" and on_stderr is not None:
                        on_stderr(ev.data)
                result = s.result
        else:
            body = _command_body(cmd, cwd=cwd, env=env, stdin=stdin, timeout=timeout,
                                 max_output_bytes=max_output_bytes, stream=False)
            st = socket_timeout if socket_timeout is not None else self._exec_timeout(timeout)
            d = self._call("POST", path, body, timeout=st)
            if not isinstance(d, dict):
                raise ProtocolError("exec answered no JSON object")
            result = CommandResult.from_json(d)
        assert result is not None
        return result.check() if check else result

    def _stream(self, path: str, cmd: Command, *, cwd: Optional[str] = None,
                env: Optional[Mapping[str, str]] = None, stdin: Optional[str] = None,
                timeout: Optional[float] = None, max_output_bytes: Optional[int] = None,
                socket_timeout: Optional[float] = None) -> "CommandStream":
        body = _command_body(cmd, cwd=cwd, env=env, stdin=stdin, timeout=timeout,
                             max_output_bytes=max_output_bytes, stream=True)
        # Between two events there may be no output for the whole command
        # timeout, so that is each read's timeout (plus the margin).
        st = socket_timeout if socket_timeout is not None else self._exec_timeout(timeout)
        r = self.request("POST", path, _json_body(body), timeout=st)
        return CommandStream(r)

    def run(self, cmd: Command, *, capacity_wait: float = 0.0, **kwargs: Any) -> CommandResult:
        """POST /v1/run: one command in a fresh sandbox, destroyed afterwards.
        Takes the same arguments as Sandbox.run, and capacity_wait (as
        create_session: a 429 comes before the command starts)."""
        return self._retry_capacity(capacity_wait, lambda: self._exec("/v1/run", cmd, **kwargs))

    def stream(self, cmd: Command, *, capacity_wait: float = 0.0, **kwargs: Any) -> "CommandStream":
        """POST /v1/run with streaming: iterate over the events."""
        return self._retry_capacity(capacity_wait, lambda: self._stream("/v1/run", cmd, **kwargs))

    @staticmethod
    def _retry_capacity(wait: float, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + wait
        while True:
            try:
                return call()
            except NoCapacityError as e:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                time.sleep(min(left, e.retry_after if e.retry_after is not None else 1.0))


def _spath(session_id: str, suffix: str = "") -> str:
    return "/v1/sessions/" + urllib.parse.quote(session_id, safe="") + suffix


class CommandStream:
    """The events of a streamed command: iterate over it (Event objects, the
    "start" event first, "exit" last), then read .result. Closing it before
    the end (or leaving its with block) closes the connection, and the
    daemon then kills the command."""

    def __init__(self, response: _Response):
        self._r = response
        self.result: Optional[CommandResult] = None
        self.command_id: Optional[int] = None
        self._stdout: List[str] = []
        self._stderr: List[str] = []
        self._done = False

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        # An iterator object rather than a generator: a generator dropped
        # after one next() would close the stream (and kill the command)
        # when it is collected.
        if self._done:
            raise StopIteration
        while True:
            line = self._r.readline()
            if not line:
                self.close()
                raise SandpoolConnectionError("the stream ended before the exit event")
            line = line.strip()
            if line:
                break
        try:
            d = json.loads(line)
        except ValueError as e:
            self.close()
            raise ProtocolError("invalid event from sandpoold: %r" % line[:200]) from e
        return self._event(d)

    def _event(self, d: Dict[str, Any]) -> Event:
        t = d.get("type", "")
        if t in ("stdout", "stderr"):
            data = d.get("data", "")
            (self._stdout if t == "stdout" else self._stderr).append(data)
            return Event(t, data, raw=d)
        if t == "start":
            self.command_id = d.get("command_id")
            return Event(t, raw=d)
        if t == "exit":
            self.result = CommandResult.from_json(d, "".join(self._stdout), "".join(self._stderr))
            self._done = True
            self._r.read()  # the end of the chunked body: keeps the connection reusable
            return Event(t, result=self.result, raw=d)
        return Event(t, raw=d)

    def wait(self) -> CommandResult:
        """Read every remaining event; return the result."""
        for _ in self:
            pass
        assert self.result is not None
        return self.result

    def close(self) -> None:
        self._r.close(reuse=False)

    def __enter__(self) -> "CommandStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._done:
            self.close()


# --------------------------------------------------------------------------
# Sandbox


class Sandbox:
    """A session: one sandbox whose files and background processes persist
    between commands. A context manager: leaving the with block (normally
    or by an exception) ends the session and destroys the sandbox.

        with Sandbox(env={"LANG": "C.UTF-8"}) as sb:
            sb.run(["ls", "-l", "/"]).check()
    """

    def __init__(self, *, client: Optional[Client] = None, socket_path: Optional[str] = None,
                 timeout: float = DEFAULT_TIMEOUT, env: Optional[Mapping[str, str]] = None,
                 timeout_s: Optional[float] = None, idle_timeout_s: Optional[float] = None,
                 memory_mb: Optional[int] = None, cpu_pct: Optional[int] = None,
                 labels: Optional[Mapping[str, str]] = None,
                 session_id: Optional[str] = None, capacity_wait: float = 0.0,
                 timeout_ms: Optional[int] = None, idle_timeout_ms: Optional[int] = None):
        self._own_client = client is None
        self.client = client or Client(socket_path, timeout)
        self._closed = False
        if session_id is not None:
            self.info = self.client.session(session_id)
        else:
            self.info = self.client.create_session(
                env=env, timeout_s=timeout_s, idle_timeout_s=idle_timeout_s,
                timeout_ms=timeout_ms, idle_timeout_ms=idle_timeout_ms,
                memory_mb=memory_mb, cpu_pct=cpu_pct, labels=labels,
                capacity_wait=capacity_wait)
        self.id = self.info.id
        self.commands = Commands(self)
        self.files = Files(self)

    @classmethod
    def connect(cls, session_id: str, **kwargs: Any) -> "Sandbox":
        """Attach to an existing session (it must be the caller's)."""
        return cls(session_id=session_id, **kwargs)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<Sandbox %s%s>" % (self.id, " closed" if self._closed else "")

    def close(self) -> None:
        """End the session (idempotent; a session that already ended, for
        instance by its timeout, is not an error)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.client.end_session(self.id)
        except NotFoundError:
            pass
        finally:
            if self._own_client:
                self.client.close()

    kill = close

    def refresh(self) -> SessionInfo:
        """GET the session now: state, times, usage."""
        self.info = self.client.session(self.id)
        return self.info

    # -- commands

    def run(self, cmd: Command, *, cwd: Optional[str] = None,
            env: Optional[Mapping[str, str]] = None, stdin: Optional[str] = None,
            timeout: Optional[float] = None, max_output_bytes: Optional[int] = None,
            on_stdout: Optional[OutputCallback] = None,
            on_stderr: Optional[OutputCallback] = None,
            check: bool = False, socket_timeout: Optional[float] = None) -> CommandResult:
        """Run a command and wait for it. cmd is a shell line (run by
        /bin/sh -c) or an argv list. timeout is in seconds (default: the
        daemon's command_timeout). With on_stdout/on_stderr the output is
        streamed to them as it comes, and also collected in the result.
        check=True raises CommandError on a non-zero exit. socket_timeout
        overrides the read timeout (default: timeout + the client's)."""
        return self.client._exec(_spath(self.id, "/exec"), cmd, cwd=cwd, env=env, stdin=stdin,
                                 timeout=timeout, max_output_bytes=max_output_bytes,
                                 on_stdout=on_stdout, on_stderr=on_stderr, check=check,
                                 socket_timeout=socket_timeout)

    def stream(self, cmd: Command, *, cwd: Optional[str] = None,
               env: Optional[Mapping[str, str]] = None, stdin: Optional[str] = None,
               timeout: Optional[float] = None, max_output_bytes: Optional[int] = None,
               socket_timeout: Optional[float] = None) -> CommandStream:
        """Start a command and iterate over its events as they come:

            with sb.stream("make 2>&1") as s:
                for ev in s:
                    if ev.type == "stdout": print(ev.data, end="")
            print(s.result.exit_code)
        """
        return self.client._stream(_spath(self.id, "/exec"), cmd, cwd=cwd, env=env, stdin=stdin,
                                   timeout=timeout, max_output_bytes=max_output_bytes,
                                   socket_timeout=socket_timeout)

    # -- files

    def _fpath(self, path: str) -> str:
        return _spath(self.id, "/files?path=" + urllib.parse.quote(path, safe="/"))

    def write_file(self, path: str, data: Union[bytes, bytearray, memoryview, str]) -> int:
        """Write (create or replace) a file; its parent directory must exist.
        Returns the size written."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        r = self.client.request("PUT", self._fpath(path), raw,
                                headers={"Content-Type": "application/octet-stream"})
        d = json.loads(r.read() or b"{}")
        return int(d.get("size", len(raw)))

    def write_files(self, files: Mapping[str, Union[bytes, str]]) -> None:
        """Write several files: {path: content}."""
        for path, data in files.items():
            self.write_file(path, data)

    def read_file(self, path: str) -> bytes:
        """The bytes of a regular file. A directory raises ConflictError
        (use list_dir)."""
        r = self.client.request("GET", self._fpath(path))
        data = r.read()
        if r.headers.get("content-type", "").startswith("application/json"):
            raise ConflictError("%s is a directory" % path, status=409, code="conflict")
        return data

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read_file(path).decode(encoding)

    def list_dir(self, path: str) -> List[DirEntry]:
        """The entries of a directory (at most 10000: see truncated in docs/api.md)."""
        r = self.client.request("GET", self._fpath(path))
        data = r.read()
        if not r.headers.get("content-type", "").startswith("application/json"):
            raise ConflictError("%s is not a directory" % path, status=409, code="conflict")
        d = json.loads(data)
        return [DirEntry(e["name"], e["type"], e.get("size", 0), e.get("mode", 0), e.get("mtime", 0))
                for e in d.get("entries", [])]

    def remove(self, path: str) -> None:
        """Remove a file, a symlink or an empty directory."""
        self.client.request("DELETE", self._fpath(path)).read()


class CommandHandle:
    """A background command (POST /v1/sessions/{id}/commands): it outlives
    the connection that started it. output() reads what it wrote from the
    last offset this handle has seen, so a dropped connection resumes
    without a byte lost or repeated (as long as the daemon's ring holds
    it)."""

    def __init__(self, sandbox: "Sandbox", info: Mapping[str, Any]):
        self._sb = sandbox
        self.id: int = int(info["id"])
        self.info: Dict[str, Any] = dict(info)
        self.offsets: Dict[str, int] = {"stdout": 0, "stderr": 0}
        self.dropped: int = 0

    def _path(self, suffix: str = "") -> str:
        return _spath(self._sb.id, "/commands/%d%s" % (self.id, suffix))

    def refresh(self) -> Dict[str, Any]:
        """GET the command: state, pid, exit."""
        self.info = dict(self._sb.client._call("GET", self._path()))
        return self.info

    @property
    def pid(self) -> int:
        return int(self.info.get("pid") or 0)

    def send_stdin(self, data: Union[str, bytes], eof: bool = False) -> None:
        """Write to its stdin (eof=True closes it after; ^D on a terminal)."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._sb.client.request("POST", self._path("/stdin" + ("?eof=true" if eof else "")), raw,
                                headers={"Content-Type": "application/octet-stream"}).read()

    def signal(self, sig: Union[str, int]) -> None:
        """Send a signal ("INT", "TERM", "KILL", ... or its number) to its process group."""
        self._sb.client._call("POST", self._path("/signal"), {"signal": sig})

    def kill(self) -> None:
        self.signal("KILL")

    def resize(self, rows: int, cols: int) -> None:
        """A terminal's new size (a command started with pty)."""
        self._sb.client._call("POST", self._path("/resize"), {"rows": rows, "cols": cols})

    def output(self, follow: bool = True, retries: int = 20) -> Iterator[Event]:
        """Its output from the last offset seen, as Events ("stdout",
        "stderr", "dropped", then "exit" with result); with follow, until
        it exits. A broken connection is resumed from the offsets reached."""
        for attempt in range(retries + 1):
            q = "?stdout_offset=%d&stderr_offset=%d%s" % (
                self.offsets["stdout"], self.offsets["stderr"], "&follow=true" if follow else "")
            r = self._sb.client.request("GET", self._path("/output" + q))
            if r._conn is not None and r._conn.sock is not None:
                r._conn.sock.settimeout(None if follow else self._sb.client.timeout)
            try:
                while True:
                    try:
                        line = r.readline()
                    except SandpoolConnectionError:
                        break
                    if not line:
                        break
                    ev = json.loads(line)
                    t = ev.get("type", "")
                    if t in ("stdout", "stderr"):
                        self.offsets[t] = int(ev["offset"]) + int(ev["length"])
                        yield Event(t, ev.get("data", ""), raw=ev)
                    elif t == "dropped":
                        self.dropped += int(ev.get("bytes", 0))
                        self.offsets[ev["stream"]] = int(ev["offset"]) + int(ev["bytes"])
                        yield Event(t, raw=ev)
                    elif t == "exit":
                        self.info = {k: v for k, v in ev.items() if k != "type"}
                        yield Event(t, result=CommandResult.from_json(ev, "", ""), raw=ev)
                        return
                    elif t in ("caught_up", "gone"):
                        return
            finally:
                r.close(reuse=False)
            if attempt < retries:
                time.sleep(0.05)
        raise SandpoolConnectionError("the output stream of command %d keeps breaking" % self.id)

    def wait(self) -> CommandResult:
        """Follow it to its end: the result, with the output read meanwhile."""
        out: Dict[str, List[str]] = {"stdout": [], "stderr": []}
        for ev in self.output(follow=True):
            if ev.type in out:
                out[ev.type].append(ev.data)
            elif ev.type == "exit":
                return CommandResult.from_json(ev.raw, "".join(out["stdout"]), "".join(out["stderr"]))
        info = self.refresh()
        return CommandResult.from_json(info, "".join(out["stdout"]), "".join(out["stderr"]))


class Commands:
    """sb.commands: the command calls under the names E2B's SDK uses."""

    def __init__(self, sandbox: Sandbox):
        self._sb = sandbox

    @overload
    def run(self, cmd: Command, *, background: Literal[True], **kwargs: Any) -> CommandHandle: ...
    @overload
    def run(self, cmd: Command, *, background: Literal[False] = ..., **kwargs: Any) -> CommandResult: ...

    def run(self, cmd: Command, *, background: bool = False, pty: Optional[Tuple[int, int]] = None,
            **kwargs: Any) -> Union[CommandResult, CommandHandle]:
        """As Sandbox.run; with background=True the command is started and
        left running: a CommandHandle, at once (pty=(rows, cols) puts it
        on a terminal)."""
        if not background:
            return self._sb.run(cmd, **kwargs)
        body = _command_body(cmd, cwd=kwargs.get("cwd"), env=kwargs.get("env"), stdin=kwargs.get("stdin"),
                             timeout=kwargs.get("timeout"), max_output_bytes=kwargs.get("max_output_bytes"),
                             stream=False)
        if pty is not None:
            body["pty"] = {"rows": int(pty[0]), "cols": int(pty[1])}
        info = self._sb.client._call("POST", _spath(self._sb.id, "/commands"), body)
        return CommandHandle(self._sb, info)

    def list(self) -> List[Dict[str, Any]]:
        """Every background command of the session, oldest first."""
        return list(self._sb.client._call("GET", _spath(self._sb.id, "/commands"))["commands"])

    def connect(self, cid: int) -> CommandHandle:
        """A handle on a background command started earlier (by this or
        another client of the same uid): output() reads it from the start
        of what the daemon still holds."""
        info = self._sb.client._call("GET", _spath(self._sb.id, "/commands/%d" % int(cid)))
        return CommandHandle(self._sb, info)

    def send_stdin(self, cid: int, data: Union[str, bytes], eof: bool = False) -> None:
        self.connect(cid).send_stdin(data, eof)

    def kill(self, cid: int, sig: Union[str, int] = "KILL") -> None:
        self.connect(cid).signal(sig)

    def stream(self, cmd: Command, **kwargs: Any) -> CommandStream:
        """As Sandbox.stream."""
        return self._sb.stream(cmd, **kwargs)


class Files:
    """sb.files: the file calls under the names E2B's SDK uses."""

    def __init__(self, sandbox: Sandbox):
        self._sb = sandbox

    def write(self, path: str, data: Union[bytes, bytearray, memoryview, str]) -> int:
        return self._sb.write_file(path, data)

    def read(self, path: str, encoding: str = "utf-8") -> str:
        return self._sb.read_text(path, encoding)

    def read_bytes(self, path: str) -> bytes:
        return self._sb.read_file(path)

    def list(self, path: str) -> List[DirEntry]:
        return self._sb.list_dir(path)

    def remove(self, path: str) -> None:
        self._sb.remove(path)


def run(cmd: Command, *, socket_path: Optional[str] = None, timeout: Optional[float] = None,
        client_timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> CommandResult:
    """One shot: run cmd in a fresh sandbox that is destroyed afterwards.
    timeout is the command's, in seconds; other arguments as Sandbox.run."""
    with Client(socket_path, client_timeout) as c:
        return c.run(cmd, timeout=timeout, **kwargs)
