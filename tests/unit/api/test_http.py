"""The HTTP layer against real sockets: framing, versions, error mapping, hostile input, hijack."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import tempfile

import pytest

from sampan import errors
from sampan.api.http import App, Router, empty, json_response, serve, status_for


def _router() -> Router:
    r = Router()

    async def ok(req):
        return json_response({"path": req.path, "version": req.version, "q": req.q("x")})

    async def echo(req):
        return json_response({"body": await req.json()})

    async def boom(req):
        raise errors.NotFound("No such thing: x")

    async def crash(req):
        raise RuntimeError("bug")

    async def hijack(req):
        hj = await req.hijack("application/vnd.docker.raw-stream")
        os.set_blocking(hj.fd, True)
        data = hj.leftover
        while not data.endswith(b"\n"):
            data += os.read(hj.fd, 100)
        os.write(hj.fd, b"echo:" + data)
        hj.close()

    async def stream(req):
        w = await req.start_stream()
        for i in range(3):
            await w.write_json({"i": i})
        await w.end()

    r.add("GET", "/ok", ok)
    r.add("POST", "/echo", echo)
    r.add("GET", "/things/{name:.*}/json", ok)
    r.add("GET", "/boom", boom)
    r.add("GET", "/crash", crash)
    r.add("POST", "/hijack", hijack)
    r.add("GET", "/stream", stream)
    r.add("DELETE", "/only-delete", lambda req: asyncio.sleep(0, empty()))
    return r


@pytest.fixture
def server():
    """A real server on a temp unix socket, run in a background event loop thread."""
    import threading

    d = tempfile.mkdtemp()
    path = os.path.join(d, "s.sock")
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def main():
        await serve(App(_router()), "unix://" + path)
        ready.set()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(5)
    yield path
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)


def raw(path: str, data: bytes, read_until_close: bool = True) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.sendall(data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
        if not read_until_close and b"\r\n\r\n" in out:
            break
    s.close()
    return out


def split(resp: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


def test_versioned_and_bare_paths(server):
    st, h, body = split(raw(server, b"GET /v1.41/ok?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert st == 200 and h["api-version"] == "1.45"
    assert json.loads(body) == {"path": "/ok", "version": "1.41", "q": "1"}
    st, _, body = split(raw(server, b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert json.loads(body)["version"] is None


def test_image_names_with_slashes_route(server):
    st, _, body = split(raw(server, b"GET /things/127.0.0.1:5000/a/b:1/json HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert st == 200 and json.loads(body)["path"] == "/things/127.0.0.1:5000/a/b:1/json"


def test_version_bounds(server):
    st, _, body = split(raw(server, b"GET /v9.99/ok HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert st == 400 and "too new" in json.loads(body)["message"]
    st, _, body = split(raw(server, b"GET /v1.12/ok HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert st == 400 and "too old" in json.loads(body)["message"]


def test_errors_map_to_status_and_message(server):
    st, _, body = split(raw(server, b"GET /boom HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert st == 404 and json.loads(body) == {"message": "No such thing: x"}
    st, _, body = split(raw(server, b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert st == 404 and json.loads(body)["message"] == "page not found"
    st, _, body = split(raw(server, b"GET /crash HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert st == 500 and "message" in json.loads(body)
    st, _, _ = split(raw(server, b"GET /only-delete HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert st == 405


def test_status_for_walks_mro():
    class Custom(errors.Conflict):
        pass

    assert status_for(Custom("x")) == 409
    assert status_for(ValueError()) == 500


def test_malformed_json_is_400_and_daemon_survives(server):
    body = b'{"a": '
    req = b"POST /echo HTTP/1.1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    st, _, out = split(raw(server, req))
    assert st == 400 and "invalid JSON" in json.loads(out)["message"]
    assert split(raw(server, b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n"))[0] == 200


def test_chunked_body_and_broken_chunking(server):
    ok = b'POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\n{"a"\r\n4\r\n: 1}\r\n0\r\n\r\n'
    st, _, out = split(raw(server, ok))
    assert st == 200 and json.loads(out) == {"body": {"a": 1}}
    bad = b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n"
    st, _, _ = split(raw(server, bad))
    assert st == 400
    assert split(raw(server, b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n"))[0] == 200


def test_lying_content_length_and_garbage(server):
    s = socket.socket(socket.AF_UNIX)
    s.connect(server)
    s.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{}")
    s.close()  # body never arrives
    assert split(raw(server, b"NONSENSE\r\n\r\n"))[0] == 400
    assert split(raw(server, b"GET /ok HTTP/1.1\r\nContent-Length: -5\r\n\r\n"))[0] == 400
    huge = b"GET /ok HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n"
    assert split(raw(server, huge))[0] == 431
    assert split(raw(server, b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n"))[0] == 200


def test_trickled_headers_time_out_but_an_idle_connection_may_wait(server, monkeypatch):
    import sampan.api.http as http
    monkeypatch.setattr(http, "HEADER_TIMEOUT", 0.3)
    slow = socket.socket(socket.AF_UNIX)
    slow.settimeout(5)
    slow.connect(server)
    idle = socket.socket(socket.AF_UNIX)
    idle.settimeout(5)
    idle.connect(server)
    slow.sendall(b"GET /ok HTTP/1.1\r\nX-Slow: ")     # ...and never the rest
    t0 = time.monotonic()
    assert split(_until_closed(slow))[0] == 408 and time.monotonic() - t0 < 3
    slow.close()
    time.sleep(0.5)  # longer than the header timeout, before any byte of a request
    idle.sendall(b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert split(_until_closed(idle))[0] == 200
    idle.close()


def _until_closed(s: socket.socket) -> bytes:
    got = b""
    while chunk := s.recv(4096):
        got += chunk
    return got


def test_keep_alive_serves_several_requests(server):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(server)
    for _ in range(3):
        s.sendall(b"GET /ok HTTP/1.1\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int([ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0].split(b":")[1])
        while len(body) < length:
            body += s.recv(4096)
        assert json.loads(body)["path"] == "/ok"
    s.close()


def test_hijack_passes_raw_stream_with_leftover(server):
    out = raw(server, b"POST /hijack HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello\n")
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED")
    assert b"Upgrade: tcp" in head
    assert rest == b"echo:hello\n"


def test_streaming_response_is_chunked(server):
    st, h, body = split(raw(server, b"GET /stream HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert h["transfer-encoding"] == "chunked"
    decoded, rest = b"", body
    while True:
        size_s, _, rest = rest.partition(b"\r\n")
        size = int(size_s, 16)
        if size == 0:
            break
        decoded += rest[:size]
        rest = rest[size + 2:]
    assert [json.loads(ln) for ln in decoded.splitlines()] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_oversized_bodies_refused_before_reading_and_connection_closed(server):
    # A Content-Length beyond the bound is refused without waiting for the body...
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(server)
    s.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n{")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    st, h, _ = split(data)
    assert st == 413 and h.get("connection") == "close"
    # ...and so is a chunk larger than the bound, and the connection is closed (not reused).
    out = raw(server, b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n{}\r\n0\r\n\r\nGET /ok HTTP/1.1\r\n\r\n")
    assert out.count(b"HTTP/1.1 ") == 1 and split(out)[0] == 413
