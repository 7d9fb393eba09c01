"""A scripted Engine API peer on a unix socket, for the CLI's unit tests.

It speaks real HTTP/1.1 over a real socket (keep-alive, Content-Length and chunked bodies,
`Upgrade: tcp` hijacks) and records every request, so tests can assert what the CLI sent —
the edge the CLI talks to, not a mock of the CLI itself.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


class Req:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query  # dict name -> list of values
        self.headers = headers
        self.body = body

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[-1] if v else default

    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self):
        return f"<{self.method} {self.path} {self.query}>"


def json_reply(obj, status=200, headers=None):
    body = json.dumps(obj).encode()
    return ("full", status, {"Content-Type": "application/json", **(headers or {})}, body)


def raw_reply(body: bytes, status=200, content_type="application/octet-stream"):
    return ("full", status, {"Content-Type": content_type}, body)


def chunked_reply(chunks, status=200, content_type="application/json"):
    return ("chunked", status, {"Content-Type": content_type}, chunks)


def error_reply(status, message):
    return json_reply({"message": message}, status)


def hijack_reply(fn, content_type="application/vnd.docker.raw-stream"):
    """fn(sock, req) runs with the raw socket after `101 UPGRADED`; it closes it when done."""
    return ("hijack", 101, {"Content-Type": content_type}, fn)


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


class FakeDaemon:
    def __init__(self, path: str):
        self.path = path
        self.host = f"unix://{path}"
        self.routes: list[tuple[str, re.Pattern, object]] = []
        self.requests: list[Req] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    # reply builders, reachable from tests through the fixture (importlib import mode keeps
    # test modules from importing this file)
    json = staticmethod(json_reply)
    raw = staticmethod(raw_reply)
    chunked = staticmethod(chunked_reply)
    error = staticmethod(error_reply)
    hijack = staticmethod(hijack_reply)
    frame = staticmethod(frame)

    def route(self, method: str, pattern: str, handler) -> None:
        """handler: a reply tuple, or a callable(req) -> reply. Later routes win."""
        self.routes.insert(0, (method, re.compile(f"^(?:/v[0-9.]+)?{pattern}$"), handler))

    def find(self, method: str, path_prefix: str) -> list[Req]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    # -- server ---------------------------------------------------------------------------------
    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        f = conn.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                method, target, _ = line.decode().split(" ", 2)
                headers = {}
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        size = int(f.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            f.readline()
                            break
                        body += f.read(size)
                        f.read(2)
                else:
                    body = f.read(int(headers.get("content-length", "0") or 0))
                url = urllib.parse.urlsplit(target)
                req = Req(method, urllib.parse.unquote(url.path),
                          urllib.parse.parse_qs(url.query, keep_blank_values=True), headers, body)
                with self.lock:
                    self.requests.append(req)
                reply = self._dispatch(req)
                kind, status, hdrs, payload = reply
                if kind == "hijack":
                    head = (f"HTTP/1.1 101 UPGRADED\r\nContent-Type: {hdrs['Content-Type']}\r\n"
                            "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                    conn.sendall(head.encode())
                    payload(conn, req, f)
                    return
                head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
                if kind == "full":
                    conn.sendall((head + f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload)
                else:
                    conn.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
                    for c in payload:
                        if c:
                            conn.sendall(b"%x\r\n%s\r\n" % (len(c), c))
                    conn.sendall(b"0\r\n\r\n")
        except (OSError, ValueError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _dispatch(self, req: Req):
        for method, pat, handler in self.routes:
            if method == req.method and pat.match(req.path):
                return handler(req) if callable(handler) else handler
        return error_reply(404, "page not found")


@pytest.fixture
def fake(tmp_path):
    d = FakeDaemon(str(tmp_path / "api.sock"))
    yield d
    d.close()


@pytest.fixture
def cli(fake, tmp_path):
    """Run `sampan ARGS` as a real process against the fake daemon."""
    def run(*args, input=None, env=None, timeout=20):
        e = dict(os.environ)
        e.pop("DOCKER_HOST", None)
        e["SAMPAN_HOST"] = fake.host
        e["PYTHONPATH"] = str(REPO)
        e.update(env or {})
        return subprocess.run([sys.executable, "-m", "sampan.cli", *args], input=input, env=e,
                              capture_output=True, timeout=timeout, cwd=tmp_path,
                              text=not isinstance(input, bytes))
    return run
