"""`sampan registry serve`: an OCI distribution-spec v1.1 registry over HTTP(S).

A threaded HTTP/1.1 server (one thread per connection, kept alive): request handling is
blocking file IO and hashing, blob bodies go out with sendfile(2), and uploads stream to disk
while their digest is computed. The endpoints are in routes.py; this module does the HTTP
framing (Content-Length and chunked request bodies), auth, errors in the spec's JSON shape,
and TLS.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from .auth import Grant, Htpasswd, TokenIssuer, parse_basic
from .storage import RegistryAPIError, Storage, err

log = logging.getLogger("sampan.registry")

API_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
_CHUNK = 1024 * 1024
MAX_CHUNK_LINE = 4096


@dataclass
class RegistryConfig:
    root: Path
    addr: str = "127.0.0.1:5000"
    htpasswd: Path | None = None
    token_auth: bool = False          # issue and require bearer tokens (users from htpasswd)
    anonymous_pull: bool = False
    read_only: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    proxy_remote: str | None = None
    proxy_username: str = ""
    proxy_password: str = ""
    realm: str = "sampan-registry"
    extra: dict[str, Any] = field(default_factory=dict)


class RegistryApp:
    def __init__(self, cfg: RegistryConfig) -> None:
        self.cfg = cfg
        self.storage = Storage(cfg.root)
        self.htpasswd = Htpasswd(cfg.htpasswd) if cfg.htpasswd else None
        if cfg.token_auth and self.htpasswd is None:
            raise ValueError("token auth needs --htpasswd for its users")
        self.issuer = TokenIssuer(cfg.root, cfg.realm) if cfg.token_auth else None
        self.proxy = None
        if cfg.proxy_remote:
            from .proxy import Proxy
            self.proxy = Proxy(self.storage, cfg.proxy_remote, cfg.proxy_username, cfg.proxy_password)
        self.scheme = "https" if cfg.tls_cert else "http"

    @property
    def read_only(self) -> bool:
        return self.cfg.read_only or self.proxy is not None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sampan-registry/0.1"
    sys_version = ""
    app: RegistryApp  # set on the subclass serve() makes

    # -- plumbing ---------------------------------------------------------------------------------
    def log_message(self, fmt: str, *args: Any) -> None:  # noqa: D401 - http.server hook
        log.debug("%s " + fmt, self.address_string(), *args)

    def _dispatch(self, method: str) -> None:
        from . import routes
        self.method = method
        self._body_left: int | None = None
        self._body_done = False
        u = urlsplit(self.path)
        self.url_path = unquote(u.path)
        self.query = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        try:
            routes.dispatch(self, method, self.url_path)
        except RegistryAPIError as e:
            self.send_error_json(e)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - a request never kills the server
            log.exception("%s %s failed", method, self.path)
            self.send_error_json(err(500, "UNKNOWN", "unknown error", str(e)))
        if not self._body_done:
            # whatever the handler did not read is read and dropped, or the connection closes
            try:
                left = self._remaining()
                if left is None or left > 16 * _CHUNK:
                    self.close_connection = True
                else:
                    for _ in self.body():
                        pass
            except (OSError, RegistryAPIError):
                self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- request bodies ---------------------------------------------------------------------------
    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _remaining(self) -> int | None:
        if self._chunked():
            return None
        cl = self.headers.get("Content-Length")
        if cl is None:
            return 0
        if not cl.strip().isdigit():
            raise err(400, "SIZE_INVALID", "invalid Content-Length")
        return int(cl)

    def content_length(self) -> int | None:
        return self._remaining()

    def body(self) -> Iterator[bytes]:
        """The request body in pieces (Content-Length or chunked framing)."""
        if self._body_done:
            return
        self._body_done = True
        r = self.rfile
        if self._chunked():
            while True:
                line = r.readline(MAX_CHUNK_LINE)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    raise err(400, "BLOB_UPLOAD_INVALID", "broken chunked encoding") from None
                if size == 0:
                    while r.readline(MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    data = r.read(min(left, _CHUNK))
                    if not data:
                        self.close_connection = True
                        raise err(400, "BLOB_UPLOAD_INVALID", "body ended early")
                    left -= len(data)
                    yield data
                r.readline(MAX_CHUNK_LINE)
        else:
            left = self._remaining() or 0
            while left:
                data = r.read(min(left, _CHUNK))
                if not data:
                    self.close_connection = True
                    raise err(400, "BLOB_UPLOAD_INVALID", "body shorter than Content-Length")
                left -= len(data)
                yield data

    def read_body(self, limit: int) -> bytes:
        parts, n = [], 0
        for data in self.body():
            n += len(data)
            if n > limit:
                self.close_connection = True
                raise err(413, "SIZE_INVALID", f"body larger than {limit} bytes")
            parts.append(data)
        return b"".join(parts)

    # -- responses --------------------------------------------------------------------------------
    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
             content_type: str | None = None) -> None:
        self.send_response(status)
        self.send_header(*API_HEADER)
        h = dict(headers or {})
        if content_type:
            h["Content-Type"] = content_type
        if "Content-Length" not in h:
            h["Content-Length"] = str(len(body))
        for k, v in h.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.method != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send(status, json.dumps(obj).encode(), headers, "application/json")

    def send_error_json(self, e: RegistryAPIError) -> None:
        h: dict[str, str] = {}
        if e.status == 401:
            h["WWW-Authenticate"] = getattr(e, "challenge", "") or self.challenge("")
        if e.status == 405:
            h["Allow"] = "GET, HEAD"
        entry: dict[str, Any] = {"code": e.code, "message": e.message}
        if e.detail is not None:
            entry["detail"] = e.detail
        if self._remaining() != 0 and not self._body_done:
            self.close_connection = True
        self.send_json(e.status, {"errors": [entry]}, h)

    # -- auth -------------------------------------------------------------------------------------
    def challenge(self, scope: str) -> str:
        app = self.app
        if app.issuer is not None:
            host = self.headers.get("Host") or app.cfg.addr
            c = f'Bearer realm="{app.scheme}://{host}/token",service="{app.cfg.realm}"'
            return c + (f',scope="{scope}"' if scope else "")
        return f'Basic realm="{app.cfg.realm}"'

    def authorize(self, repo: str | None, actions: list[str], extra: list[tuple[str, str]] = ()) -> Grant:  # type: ignore[assignment]
        """Check the caller may do `actions` on `repo` (and each (repo, action) in `extra`)."""
        app = self.app
        wants = ([(repo, a) for a in actions] if repo else []) + list(extra)
        if app.read_only and any(a in ("push", "delete") for _, a in wants):
            raise err(405, "UNSUPPORTED", "the operation is unsupported: the registry is read-only")
        if app.htpasswd is None:
            return Grant("", {"*": {"*"}})
        auth = self.headers.get("Authorization", "")
        by_repo: dict[str, list[str]] = {}
        for r, a in wants:
            by_repo.setdefault(r, []).append(a)
        scope = " ".join("registry:catalog:*" if r == "_catalog" else f"repository:{r}:{','.join(a)}"
                         for r, a in by_repo.items())
        if app.issuer is None:
            creds = parse_basic(auth)
            if creds and app.htpasswd.check(*creds):
                return Grant(creds[0], {"*": {"*"}})
            e = err(401, "UNAUTHORIZED", "authentication required")
            raise e
        grant = app.issuer.verify(auth[7:].strip()) if auth.lower().startswith("bearer ") else None
        if grant is not None:
            if wants and all(grant.allows(r, a) for r, a in wants):
                return grant
            if not wants and (grant.user or app.cfg.anonymous_pull):
                return grant  # /v2/ and search: any valid identity
        e = err(401, "UNAUTHORIZED", "authentication required" if grant is None else "insufficient scope",
                [{"Type": "repository", "Name": r, "Action": a} for r, a in wants] or None)
        e.challenge = self.challenge(scope)  # type: ignore[attr-defined]
        raise e


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], handler: type, ctx: ssl.SSLContext | None) -> None:
        self._ctx = ctx
        super().__init__(addr, handler)

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ctx is not None:
            sock.settimeout(30)
            sock = self._ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        log.debug("connection from %s failed", client_address, exc_info=True)


def parse_addr(addr: str) -> tuple[str, int]:
    m = re.match(r"^\[?([^\]]*)\]?:(\d+)$", addr.strip())
    if not m:
        raise ValueError(f"invalid address {addr!r}: use host:port")
    return m.group(1) or "0.0.0.0", int(m.group(2))


def make_server(cfg: RegistryConfig) -> tuple[ThreadingHTTPServer, RegistryApp]:
    app = RegistryApp(cfg)
    handler = type("BoundHandler", (Handler,), {"app": app})
    ctx = None
    if cfg.tls_cert:
        if not cfg.tls_key:
            raise ValueError("--tls-cert needs --tls-key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
    srv = _Server(parse_addr(cfg.addr), handler, ctx)
    return srv, app


def serve_in_thread(cfg: RegistryConfig) -> tuple[ThreadingHTTPServer, RegistryApp, threading.Thread]:
    """For tests and embedding: a running server (port 0 picks a free one)."""
    srv, app = make_server(cfg)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    return srv, app, t
