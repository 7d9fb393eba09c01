"""A small HTTP/1.1 server on asyncio streams, made for the Docker Engine API.

Why not a framework: the Engine API needs connection hijacking (`Upgrade: tcp`) where the raw
socket is handed to a container's monitor process, chunked streaming responses, and strict
bounds on hostile input. Doing that on top of asyncio streams is a few hundred lines and keeps
the daemon's import time and per-request overhead small.

Errors: handlers raise `sampan.errors.*`; `status_for` maps them to a status code here and
nowhere else, and the body is always `{"message": ...}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from .. import API_VERSION, MIN_API_VERSION, __version__
from .. import errors

log = logging.getLogger("sampan.http")

MAX_HEADER_BYTES = 64 * 1024
MAX_JSON_BODY = 16 * 1024 * 1024
MAX_HEADERS = 200
# From a request's first byte to the end of its headers (dockerd: ReadHeaderTimeout, 5 min). An
# idle keep-alive connection may wait for its next request's first byte as long as it likes.
HEADER_TIMEOUT = 300.0

class BadRequest(errors.InvalidParameter):
    pass


class PayloadTooLarge(errors.InvalidParameter):
    pass


_STATUS = [
    (PayloadTooLarge, 413),
    (errors.NotFound, 404),
    (errors.InvalidParameter, 400),
    (errors.Conflict, 409),
    (errors.NotModified, 304),
    (errors.Forbidden, 403),
    (errors.Unavailable, 503),
    (errors.Internal, 500),
]


def status_for(exc: BaseException) -> int:
    """The one place an error class becomes an HTTP status."""
    for klass in type(exc).__mro__:
        for err_class, status in _STATUS:
            if klass is err_class:
                return status
    return 500


def _parse_version(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
    return Response(status, body, dict(headers or {}), "application/json")


def empty(status: int = 204) -> Response:
    return Response(status)


class Hijacked:
    """A connection taken over by a handler: a dup of the socket fd plus bytes already read.

    The asyncio transport is closed; the owner of `fd` (usually a container monitor, to which
    the fd is passed) reads and writes the raw stream from now on.
    """

    def __init__(self, fd: int, leftover: bytes) -> None:
        self.fd = fd
        self.leftover = leftover

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class StreamWriter:
    """A chunked (or raw, after hijack-less streaming) response body the handler writes to."""

    def __init__(self, writer: asyncio.StreamWriter, chunked: bool) -> None:
        self._w = writer
        self._chunked = chunked
        self.closed = False

    async def write(self, data: bytes) -> None:
        if not data or self.closed:
            return
        if self._chunked:
            self._w.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self._w.write(data)
        await self._w.drain()

    async def write_json(self, obj: Any) -> None:
        await self.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    async def end(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._chunked:
            self._w.write(b"0\r\n\r\n")
        try:
            await self._w.drain()
        except ConnectionError:
            pass

    def is_closing(self) -> bool:
        return self._w.is_closing()


class Request:
    def __init__(self, app: "App", method: str, target: str, headers: dict[str, str],
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.app = app
        self.method = method
        self.headers = headers
        self._reader = reader
        self._writer = writer
        url = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(url.path)
        self.version: str | None = None
        m = re.match(r"^/v([0-9]+(?:\.[0-9]+)?)(/.*)$", path)
        if m:
            self.version, path = m.group(1), m.group(2)
        self.path = path
        self.query: dict[str, list[str]] = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        self.match: dict[str, str] = {}
        self.body_broken = False
        self.response_started = False
        self.hijacked = False
        self._body_consumed = False
        te = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in te
        cl = headers.get("content-length")
        if cl is not None and not self._chunked:
            if not cl.strip().isdigit():
                raise BadRequest(f"invalid Content-Length: {cl!r}")
            self._length = int(cl)
        else:
            self._length = 0 if not self._chunked else -1
        self._body_remaining = self._length

    # -- query helpers (each raises InvalidParameter on a bad value) --------------------------
    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[-1] if vals else default

    def q_bool(self, name: str, default: bool = False) -> bool:
        v = self.q(name)
        if v is None:
            return default
        v = v.strip().lower()
        if v in ("", "0", "false", "no", "off"):
            return False if v != "" else default
        if v in ("1", "true", "yes", "on"):
            return True
        raise errors.InvalidParameter(f"invalid boolean value for {name}: {v!r}")

    def q_int(self, name: str, default: int | None = None) -> int | None:
        v = self.q(name)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise errors.InvalidParameter(f"invalid value for {name}: {v!r} is not an integer") from None

    def q_json(self, name: str, default: Any = None) -> Any:
        v = self.q(name)
        if v is None or v == "":
            return default
        try:
            return json.loads(v)
        except ValueError as e:
            raise errors.InvalidParameter(f"invalid JSON in {name}: {e}") from None

    def filters(self) -> dict[str, list[str]]:
        """Docker's `filters` query: {"key": ["v"]} or the older {"key": {"v": true}}."""
        raw = self.q_json("filters", {}) or {}
        if not isinstance(raw, dict):
            raise errors.InvalidParameter("invalid filters: expected a JSON object")
        out: dict[str, list[str]] = {}
        for k, v in raw.items():
            if isinstance(v, dict):
                out[k] = [kk for kk, on in v.items() if on]
            elif isinstance(v, list):
                out[k] = [str(x) for x in v]
            elif isinstance(v, str):
                out[k] = [v]
            else:
                raise errors.InvalidParameter(f"invalid filter {k!r}")
        return out

    # -- body ---------------------------------------------------------------------------------
    async def stream(self, chunk: int = 256 * 1024, limit: int | None = None) -> AsyncIterator[bytes]:
        """The request body, decoded from Content-Length or chunked framing.

        A body that ends early, has broken framing or exceeds `limit` raises; the connection
        is then closed after the error reply, since where the next request starts is unknown.
        """
        if self._body_consumed:
            return
        self._body_consumed = True
        self.body_broken = True  # until the whole body has been read
        if limit is not None and self._length > limit:
            raise PayloadTooLarge(f"request body larger than {limit} bytes")
        async for data in self._decode(chunk, limit):
            yield data
        self.body_broken = False

    async def _decode(self, chunk: int, limit: int | None) -> AsyncIterator[bytes]:
        r = self._reader
        if self._chunked:
            while True:
                line = await r.readuntil(b"\r\n")
                size_s = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_s, 16)
                except ValueError:
                    raise BadRequest("broken chunked encoding") from None
                if limit is not None and size > limit:
                    raise PayloadTooLarge(f"request body larger than {limit} bytes")
                if size == 0:
                    # trailers until an empty line
                    while (await r.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    return
                left = size
                while left:
                    data = await r.read(min(left, chunk))
                    if not data:
                        raise BadRequest("body ended early")
                    left -= len(data)
                    yield data
                if await r.readexactly(2) != b"\r\n":
                    raise BadRequest("broken chunked encoding")
        else:
            while self._body_remaining > 0:
                data = await r.read(min(self._body_remaining, chunk))
                if not data:
                    raise BadRequest("body shorter than Content-Length")
                self._body_remaining -= len(data)
                yield data

    async def read(self, limit: int = MAX_JSON_BODY) -> bytes:
        parts, total = [], 0
        async for data in self.stream(limit=limit):
            total += len(data)
            if total > limit:
                raise PayloadTooLarge(f"request body larger than {limit} bytes")
            parts.append(data)
        return b"".join(parts)

    async def json(self, default: Any = None) -> Any:
        body = await self.read()
        if not body.strip():
            return default
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise errors.InvalidParameter(f"invalid JSON: {e}") from None

    async def spool(self, directory: Path, limit: int | None = None) -> Path:
        """Write the body to a temp file in `directory` (the data root's tmp/); caller unlinks."""
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-")
        total = 0
        try:
            with os.fdopen(fd, "wb") as f:
                async for data in self.stream(limit=limit):
                    total += len(data)
                    if limit is not None and total > limit:
                        raise PayloadTooLarge(f"request body larger than {limit} bytes")
                    f.write(data)
        except BaseException:
            os.unlink(name)
            raise
        return Path(name)

    async def drain_body(self) -> None:
        try:
            async for _ in self.stream():
                pass
        except (BadRequest, asyncio.IncompleteReadError, ConnectionError):
            pass

    # -- responses that bypass the normal return path -------------------------------------------
    def _head_lines(self, status: int, reason: str | None, headers: dict[str, str]) -> bytes:
        if reason is None:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = ""
        lines = [f"HTTP/1.1 {status} {reason}"]
        base = self.app.common_headers()
        base.update(headers)
        lines += [f"{k}: {v}" for k, v in base.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def start_stream(self, content_type: str = "application/json", status: int = 200,
                           headers: dict[str, str] | None = None) -> StreamWriter:
        """Begin a chunked response; write to the returned StreamWriter, then `end()` it."""
        h = {"Content-Type": content_type, "Transfer-Encoding": "chunked"}
        h.update(headers or {})
        self.response_started = True
        self._writer.write(self._head_lines(status, None, h))
        await self._writer.drain()
        return StreamWriter(self._writer, chunked=True)

    async def hijack(self, content_type: str) -> Hijacked:
        """Take the connection over for a raw bidirectional stream (attach, exec start)."""
        upgrade = self.headers.get("upgrade", "").lower() == "tcp"
        if upgrade:
            head = self._head_lines(101, "UPGRADED", {
                "Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"})
        else:
            head = self._head_lines(200, "OK", {"Content-Type": content_type})
        self.response_started = True
        self.hijacked = True
        self._writer.write(head)
        await self._writer.drain()
        sock = self._writer.get_extra_info("socket")
        fd = os.dup(sock.fileno())
        leftover = bytes(self._reader._buffer)  # bytes the client sent after the headers
        self._reader._buffer.clear()
        self._writer.transport.abort()
        return Hijacked(fd, leftover)


Handler = Callable[[Request], Awaitable[Response | None]]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """`pattern` like `/containers/{id}/json`; `{name:.*}` for image names with slashes."""

        def repl(m: re.Match[str]) -> str:
            name, _, rx = m.group(1).partition(":")
            return f"(?P<{name}>{rx or '[^/]+'})"

        rx = re.compile("^" + re.sub(r"\{([^}]+)\}", repl, pattern) + "$")
        self._routes.append((method, rx, handler))

    def resolve(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        path_matched = False
        for m, rx, h in self._routes:
            mt = rx.match(path)
            if not mt:
                continue
            if m == method or (method == "HEAD" and m == "GET"):
                return h, mt.groupdict(), True
            path_matched = True
        return None, {}, path_matched


class App:
    def __init__(self, router: Router, context: Any = None) -> None:
        self.router = router
        self.context = context  # the engine, for handlers: `request.app.context`
        self.os_type = "linux"

    @property
    def engine(self) -> Any:
        return self.context

    def common_headers(self) -> dict[str, str]:
        return {
            "Api-Version": API_VERSION,
            "Docker-Experimental": "false",
            "Ostype": self.os_type,
            "Server": f"sampan/{__version__} (linux)",
        }

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                keep = await self._one_request(reader, writer)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except Exception:  # the daemon never dies of a request
            log.exception("connection handler failed")
        finally:
            try:
                if not writer.transport.is_closing():
                    writer.transport.close()
            except RuntimeError:  # the event loop is closed (shutdown): nothing to close on
                pass

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        first = b""
        try:
            first = await reader.readexactly(1)
            head = first + await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEADER_TIMEOUT)
        except asyncio.IncompleteReadError as e:
            if (first + e.partial).strip():
                await self._send_error(writer, 400, "malformed request", False)
            return False
        except asyncio.LimitOverrunError:
            await self._send_error(writer, 431, "request headers too large", False)
            return False
        except asyncio.TimeoutError:  # a client trickling its headers holds no fd for long
            await self._send_error(writer, 408, "timed out reading the request headers", False)
            return False
        try:
            text = head.decode("latin-1")
            lines = text.split("\r\n")
            method, target, proto = lines[0].split(" ", 2)
            if not proto.startswith("HTTP/1."):
                raise ValueError(proto)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if not line:
                    continue
                k, sep, v = line.partition(":")
                if not sep or not k.strip() or k != k.strip():
                    raise ValueError(line)
                headers[k.strip().lower()] = v.strip()
            if len(headers) > MAX_HEADERS:
                raise ValueError("too many headers")
            keep_alive = headers.get("connection", "").lower() != "close" and proto == "HTTP/1.1"
        except ValueError:
            await self._send_error(writer, 400, "malformed request", False)
            return False
        try:
            req = Request(self, method, target, headers, reader, writer)
        except errors.SampanError as e:
            await self._send_error(writer, status_for(e), str(e), False)
            return False
        resp: Response | None
        try:
            resp = await self._dispatch(req)
        except asyncio.CancelledError:
            raise
        except (asyncio.IncompleteReadError, ConnectionError):
            return False
        except errors.SampanError as e:
            if not isinstance(e, errors.NotFound) or req.method != "HEAD":
                log.debug("%s %s -> %s", method, target, e)
            resp = json_response({"message": str(e)}, status_for(e))
        except Exception as e:
            log.exception("%s %s failed", method, target)
            resp = json_response({"message": f"internal error: {e}"}, 500)
        if req.hijacked:
            return False
        if req.body_broken:
            keep_alive = False
        if req.response_started:
            return keep_alive and not writer.is_closing()
        if not req._body_consumed:
            if req._length > MAX_JSON_BODY or req._length < 0:
                keep_alive = False
            else:
                await req.drain_body()
        resp = resp or empty(204)
        h = {}
        if resp.content_type:
            h["Content-Type"] = resp.content_type
        h.update(resp.headers)
        if resp.status not in (204, 304) and not (100 <= resp.status < 200):
            h["Content-Length"] = str(len(resp.body))
        if not keep_alive:
            h["Connection"] = "close"
        writer.write(req._head_lines(resp.status, None, h))
        if req.method != "HEAD" and resp.status not in (204, 304):
            writer.write(resp.body)
        await writer.drain()
        return keep_alive

    async def _dispatch(self, req: Request) -> Response | None:
        if req.version is not None:
            try:
                v = _parse_version(req.version)
            except ValueError:
                raise errors.InvalidParameter(f"invalid API version {req.version!r}") from None
            if v > _parse_version(API_VERSION):
                raise errors.InvalidParameter(
                    f"client version {req.version} is too new. Maximum supported API version is {API_VERSION}")
            if v < _parse_version(MIN_API_VERSION):
                raise errors.InvalidParameter(
                    f"client version {req.version} is too old. Minimum supported API version is "
                    f"{MIN_API_VERSION}, please upgrade your client to a newer version")
        handler, match, path_matched = self.router.resolve(req.method, req.path)
        if handler is None:
            if path_matched:
                return json_response({"message": f"method {req.method} not allowed for {req.path}"}, 405)
            raise errors.NotFound("page not found")
        req.match = match
        return await handler(req)

    async def _send_error(self, writer: asyncio.StreamWriter, status: int, msg: str, keep: bool) -> None:
        body = json.dumps({"message": msg}).encode() + b"\n"
        writer.write((f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
        try:
            await writer.drain()
        except ConnectionError:
            pass


async def serve(app: App, host: str) -> asyncio.AbstractServer:
    """Listen on `unix:///path` or `tcp://host:port` (plain HTTP; TLS is not done yet)."""
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        server = await asyncio.start_unix_server(app.serve_connection, path=path, limit=MAX_HEADER_BYTES)
        os.chmod(path, 0o660)
        return server
    if host.startswith("tcp://"):
        hp = host[len("tcp://"):]
        h, _, p = hp.rpartition(":")
        return await asyncio.start_server(app.serve_connection, host=h.strip("[]") or "127.0.0.1",
                                          port=int(p or 2375), limit=MAX_HEADER_BYTES)
    raise errors.InvalidParameter(f"unsupported host {host!r}: use unix:///path or tcp://host:port")
