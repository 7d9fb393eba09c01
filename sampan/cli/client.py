"""A tiny HTTP/1.1 client for the Docker Engine API over a unix (or tcp) socket.

Why not http.client/urllib: they cost ~17 ms of imports, more than the whole budget of
`sampan ps`. The Engine API needs little: keep-alive, Content-Length and chunked bodies,
streamed JSON messages, and connection hijacking (`Upgrade: tcp`) for attach/exec.
Only `_socket` (the C module: `socket` itself costs ~2 ms of imports) and `json` are imported.
"""

from __future__ import annotations

import _socket
import json
import os

API_PREFIX = "/v1.45"
DEFAULT_HOST = "unix:///run/sampan/sampan.sock"
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Status lines and headers from a hostile or broken peer must not grow without bound.
_MAX_HEAD = 64 * 1024


class APIError(Exception):
    """The daemon answered with an error status; `message` is Docker's `{"message": ...}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ConnectError(Exception):
    """The daemon cannot be reached at `host`."""

    def __init__(self, host: str, detail: str = "") -> None:
        super().__init__(host)
        self.host = host
        self.detail = detail


class ProtocolError(Exception):
    """The peer broke HTTP framing."""


def resolve_host(flag: str | None, env: dict | None = None) -> str:
    """-H/--host, then SAMPAN_HOST, then DOCKER_HOST, then the default socket."""
    env = os.environ if env is None else env
    host = flag or env.get("SAMPAN_HOST") or env.get("DOCKER_HOST") or DEFAULT_HOST
    if host.startswith("/"):
        host = "unix://" + host
    if not (host.startswith("unix://") or host.startswith("tcp://")):
        raise ValueError(f"unsupported host {host!r}: use unix:///path or tcp://host:port")
    return host


def quote(s: str, safe: str = "") -> str:
    """Percent-encode a path segment or query value (urllib.parse costs an import)."""
    extra = safe.encode()
    out = []
    for b in s.encode("utf-8"):
        if b in _SAFE or b in extra:
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def encode_query(params: dict | list | None) -> str:
    """{"k": v} or [(k, v)]: None and False-as-absent are left to the caller; lists repeat."""
    if not params:
        return ""
    items = params.items() if isinstance(params, dict) else params
    parts = []
    for k, v in items:
        if v is None:
            continue
        vals = v if isinstance(v, (list, tuple)) else [v]
        for one in vals:
            if one is True:
                one = "1"
            elif one is False:
                one = "0"
            parts.append(f"{quote(str(k))}={quote(str(one))}")
    return "?" + "&".join(parts) if parts else ""


class _Conn:
    """One socket with a read buffer."""

    def __init__(self, sock) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.closed = False
        self.reused = False

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > _MAX_HEAD:
                raise ProtocolError("header line too long")
            try:
                more = self._fill()
            except ConnectionResetError:
                more = False
            if not more:
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read_some(self, n: int = 65536) -> bytes:
        if self.buf:
            data = bytes(self.buf[:n])
            del self.buf[:n]
            return data
        return self.sock.recv(n)

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed in the middle of a body")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


class Response:
    """A response whose body is read lazily: `read()`, `chunks()`, `json()`, `json_stream()`."""

    def __init__(self, conn: _Conn, status: int, reason: str, headers: dict[str, str],
                 method: str, on_done) -> None:
        self.conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self._on_done = on_done
        te = headers.get("transfer-encoding", "").lower()
        self.chunked = "chunked" in te
        cl = headers.get("content-length")
        self.length: int | None = None
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self.length = 0
        elif not self.chunked and cl is not None:
            try:
                self.length = int(cl)
            except ValueError:
                raise ProtocolError(f"bad Content-Length {cl!r}") from None
            if self.length < 0:
                raise ProtocolError(f"bad Content-Length {cl!r}")
        self.keep_alive = headers.get("connection", "").lower() != "close" and (
            self.chunked or self.length is not None)
        self._done = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def chunks(self):
        """Yield the body in pieces as they arrive (decoding chunked framing)."""
        if self._done:
            return
        c = self.conn
        try:
            if self.chunked:
                while True:
                    line = c.readline()
                    if not line:
                        raise ProtocolError("connection closed in chunked body")
                    try:
                        size = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise ProtocolError(f"bad chunk size {line[:40]!r}") from None
                    if size == 0:
                        while c.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        break
                    while size:
                        data = c.read_some(min(size, 65536))
                        if not data:
                            raise ProtocolError("connection closed in chunked body")
                        size -= len(data)
                        yield data
                    c.read_exact(2)
            elif self.length is not None:
                left = self.length
                while left:
                    data = c.read_some(min(left, 65536))
                    if not data:
                        raise ProtocolError("connection closed in the middle of a body")
                    left -= len(data)
                    yield data
            else:  # body ends when the peer closes
                while True:
                    data = c.read_some()
                    if not data:
                        break
                    yield data
        except BaseException:
            self.keep_alive = False
            self._finish()
            raise
        self._finish()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._on_done(self)

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def json(self):
        data = self.read()
        return json.loads(data) if data.strip() else None

    def json_stream(self):
        """Yield each JSON value of a streamed body (newline-separated or merely concatenated)."""
        dec = json.JSONDecoder()
        buf = ""
        pending = b""
        for chunk in self.chunks():
            pending += chunk
            try:
                buf += pending.decode("utf-8")
                pending = b""
            except UnicodeDecodeError:
                continue  # a multi-byte character split across chunks
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    obj, end = dec.raw_decode(buf)
                except ValueError:
                    break  # incomplete: wait for more
                yield obj
                buf = buf[end:]
        if buf.strip():
            raise ProtocolError(f"truncated JSON message: {buf[:80]!r}")


class Client:
    """Engine API client. Connections are reused while responses allow keep-alive."""

    def __init__(self, host: str, prefix: str = API_PREFIX) -> None:
        self.host = host
        self.prefix = prefix
        self._idle: _Conn | None = None

    # -- connection -----------------------------------------------------------------------------
    def _connect(self) -> _Conn:
        try:
            if self.host.startswith("unix://"):
                s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                try:
                    s.connect(self.host[len("unix://"):])
                except BaseException:
                    s.close()
                    raise
            else:
                hp = self.host[len("tcp://"):].rstrip("/")
                h, _, p = hp.rpartition(":")
                if not h:
                    h, p = hp, "2375"
                import socket
                s = socket.create_connection((h.strip("[]"), int(p)))
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, ValueError) as e:
            raise ConnectError(self.host, str(e)) from None
        return _Conn(s)

    def _release(self, resp: Response) -> None:
        if resp.keep_alive and self._idle is None and not resp.conn.buf:
            self._idle = resp.conn
        elif resp.conn is not self._idle:
            resp.conn.close()

    def close(self) -> None:
        if self._idle:
            self._idle.close()
            self._idle = None

    # -- requests -------------------------------------------------------------------------------
    def url(self, path: str, query=None) -> str:
        return self.prefix + path + encode_query(query)

    def send(self, method: str, path: str, query=None, body=None, headers: dict | None = None,
             fresh: bool = False) -> _Conn:
        """Write one request; return the connection to read the answer from.

        `body`: None, bytes, a JSON-able object (dict/list), or a binary file object
        (sent chunked, so stdin of unknown length streams through).
        """
        h = {"Host": "api", "User-Agent": "sampan-cli"}
        payload: bytes | None = None
        stream = None
        if body is None:
            if method in ("POST", "PUT"):
                h["Content-Length"] = "0"
        elif isinstance(body, (bytes, bytearray)):
            payload = bytes(body)
            h["Content-Length"] = str(len(payload))
        elif isinstance(body, (dict, list)):
            payload = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
            h["Content-Length"] = str(len(payload))
        else:
            stream = body
            h["Transfer-Encoding"] = "chunked"
        if headers:
            h.update(headers)
        head = f"{method} {self.url(path, query)} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        conn = None
        if not fresh and self._idle is not None and stream is None:
            conn, self._idle = self._idle, None
            try:
                conn.sock.sendall(head.encode("latin-1") + (payload or b""))
                conn.reused = True
            except OSError:
                conn.close()
                conn = None  # the daemon closed an idle connection: reconnect once
        if conn is None:
            conn = self._connect()
            try:
                conn.sock.sendall(head.encode("latin-1") + (payload or b""))
            except OSError as e:
                conn.close()
                raise ConnectError(self.host, str(e)) from None
        if stream is not None:
            read = getattr(stream, "read1", None) or stream.read
            while True:
                data = read(1 << 20)
                if not data:
                    break
                conn.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            conn.sock.sendall(b"0\r\n\r\n")
        return conn

    def read_response(self, conn: _Conn, method: str = "GET") -> Response:
        while True:
            line = conn.readline()
            if not line:
                conn.close()
                raise ProtocolError("the daemon closed the connection without answering")
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                conn.close()
                raise ProtocolError(f"bad status line {line[:80]!r}")
            status = int(parts[1])
            headers: dict[str, str] = {}
            size = 0
            while True:
                hl = conn.readline()
                size += len(hl)
                if size > _MAX_HEAD:
                    conn.close()
                    raise ProtocolError("response headers too large")
                if hl in (b"\r\n", b"\n", b""):
                    break
                k, _, v = hl.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            if status == 100:
                continue
            return Response(conn, status, parts[2] if len(parts) > 2 else "", headers, method,
                            self._release)

    def request(self, method: str, path: str, query=None, body=None, headers=None,
                stream: bool = False) -> Response:
        """Send and read the head; raise APIError on a 4xx/5xx. With stream=False the body is
        read before returning (available via `.read()`/`.json()` again from the cache)."""
        conn = self.send(method, path, query, body, headers)
        try:
            resp = self.read_response(conn, method)
        except (ProtocolError, OSError):
            if not conn.reused:
                raise
            # a kept-alive connection the daemon had already closed (it idled while a
            # container ran): nothing was processed, so sending again is safe
            conn.close()
            conn = self.send(method, path, query, body, headers, fresh=True)
            resp = self.read_response(conn, method)
        if resp.status >= 400:
            raise error_from(resp)
        if not stream:
            data = resp.read()
            resp.read = lambda: data  # type: ignore[method-assign]
            resp.json = lambda: json.loads(data) if data.strip() else None  # type: ignore
        return resp

    def get(self, path: str, query=None):
        return self.request("GET", path, query).json()

    def post(self, path: str, query=None, body=None):
        return self.request("POST", path, query, body).json()

    def delete(self, path: str, query=None):
        return self.request("DELETE", path, query).json()

    def hijack(self, method: str, path: str, query=None, body=None) -> tuple:
        """Upgrade a request to a raw stream; return (socket, bytes already read, content type).

        Docker answers `101 UPGRADED`; older daemons `200` and then raw bytes — both accepted.
        """
        conn = self.send(method, path, query, body,
                         {"Connection": "Upgrade", "Upgrade": "tcp"}, fresh=True)
        resp = self.read_response(conn, method)
        if resp.status >= 400:
            err = error_from(resp)
            conn.close()
            raise err
        if resp.status not in (101, 200):
            conn.close()
            raise ProtocolError(f"unexpected status {resp.status} for an upgraded request")
        leftover = bytes(conn.buf)
        conn.buf.clear()
        return conn.sock, leftover, resp.content_type


def error_from(resp: Response) -> APIError:
    """Docker's error body is {"message": ...}; anything else is reported as text."""
    try:
        data = resp.read()
    except (ProtocolError, OSError):
        data = b""
    msg = ""
    try:
        obj = json.loads(data)
        if isinstance(obj, dict):
            msg = str(obj.get("message", ""))
    except ValueError:
        msg = data.decode("utf-8", "replace").strip()
    if not msg:
        msg = f"{resp.status} {resp.reason}".strip()
    return APIError(resp.status, msg)
