"""HTTP to one registry: endpoints (https/http, TLS from certs.d), auth, retries, redirects.

A `Registry` speaks to one registry host for one set of credentials. It pings `/v2/` once to
learn the scheme and the auth challenge, then sends every request with the right
`Authorization`: Basic where the registry asks for it, else a bearer token fetched from the
challenge's realm for exactly the scopes the operation needs (cached per scope set), as
Docker does with Docker Hub. Registries named insecure (loopback always, as in Docker) are
tried over HTTPS without verification first and fall back to plain HTTP.

Blocking (http.client): pulls and pushes run in worker threads; connections are kept alive
in a small pool so parallel layer transfers reuse them.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import Forbidden, InvalidParameter, NotFound, SampanError, Unavailable
from .auth import Credentials, basic_header, parse_challenge

USER_AGENT = "sampan/0.1 (linux) docker/24.0 (compatible)"
CERTS_DIRS = (Path("/etc/sampan/certs.d"), Path("/etc/docker/certs.d"))
TIMEOUT = 60.0
MAX_RETRIES = 3
MAX_RETRY_AFTER = 30.0
MAX_REDIRECTS = 5
MAX_SMALL_BODY = 8 * 1024 * 1024
_BLOCK = 1024 * 1024  # request bodies are sent in blocks this big (http.client's 8 KiB is slow)  # manifests, tokens, errors: anything bigger is hostile


class RegistryError(SampanError):
    """An error reply: `status`, the spec's `code` (MANIFEST_UNKNOWN...) and its message."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{code.lower().replace('_', ' ')}: {message}" if code else message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


class RegistryNotFound(RegistryError, NotFound):
    pass


class RegistryDenied(RegistryError, Forbidden):
    pass


class RegistryInvalid(RegistryError, InvalidParameter):
    pass


class RegistryUnavailable(RegistryError, Unavailable):
    pass


def error_from(status: int, body: bytes, reason: str = "") -> RegistryError:
    code, message, detail = "", "", None
    try:
        obj = json.loads(body or b"{}")
        errs = obj.get("errors") if isinstance(obj, dict) else None
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            code = str(errs[0].get("code") or "")
            message = str(errs[0].get("message") or "")
            detail = errs[0].get("detail")
        elif isinstance(obj, dict) and obj.get("details"):  # token servers
            message = str(obj["details"])
    except (ValueError, AttributeError):
        pass
    if not message:
        message = f"{status} {reason or http.client.responses.get(status, '')}".strip()
        if not code:
            code = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND",
                    429: "TOOMANYREQUESTS"}.get(status, "")
    if status == 404:
        return RegistryNotFound(status, code, message, detail)
    if status in (401, 403):
        return RegistryDenied(status, code, message, detail)
    if status == 429 or status >= 500:
        return RegistryUnavailable(status, code, message, detail)
    return RegistryInvalid(status, code, message, detail)


def is_loopback(host: str) -> bool:
    h = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.find("]")]
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


@dataclass
class RegistryOptions:
    """What the daemon config says about registries (daemon.json keys)."""

    insecure: list[str] = field(default_factory=list)   # host[:port] or CIDR
    mirrors: list[str] = field(default_factory=list)    # for docker.io
    certs_dirs: tuple[Path, ...] = CERTS_DIRS

    def is_insecure(self, host: str) -> bool:
        if is_loopback(host):
            return True
        bare = host.rsplit(":", 1)[0].strip("[]")
        for entry in self.insecure:
            e = entry.strip()
            e = e.split("://", 1)[-1].rstrip("/")
            if e == host or e == bare:
                return True
            if "/" in e:
                try:
                    if ipaddress.ip_address(bare) in ipaddress.ip_network(e, strict=False):
                        return True
                except ValueError:
                    pass
        return False


def _ssl_context(host: str, verify: bool, certs_dirs: Iterable[Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    for base in certs_dirs:
        d = base / host.replace(":", ":")
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if p.suffix == ".crt":
                ctx.load_verify_locations(cafile=str(p))
            elif p.suffix == ".cert":
                key = p.with_suffix(".key")
                if not key.exists():
                    raise InvalidParameter(f"missing key {key.name} for client certificate {p}")
                ctx.load_cert_chain(str(p), str(key))
    return ctx


class Response:
    """A response whose body may still be streaming; `close()` or read to the end."""

    def __init__(self, reg: "Registry", conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 key: tuple[str, str]) -> None:
        self._reg = reg
        self._conn = conn
        self._key = key
        self.raw = resp
        self.status = resp.status
        self.headers = resp.headers
        self.url = ""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default) or default

    def read(self, n: int = -1) -> bytes:
        return self.raw.read() if n is None or n < 0 else self.raw.read(n)

    def read_small(self, limit: int = MAX_SMALL_BODY) -> bytes:
        data = self.raw.read(limit + 1)
        if len(data) > limit:
            self.close(broken=True)
            raise InvalidParameter(f"registry reply larger than {limit} bytes")
        self.close()
        return data

    def close(self, broken: bool = False) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        if not broken and not self.raw.isclosed():
            # small leftovers are drained so the connection can be reused; big ones are not
            try:
                if self.raw.length is not None and self.raw.length <= 65536:
                    self.raw.read()
                else:
                    broken = True
            except (OSError, http.client.HTTPException):
                broken = True
        if broken or self.raw.will_close or not self.raw.isclosed():
            conn.close()
            return
        self._reg._put_conn(self._key, conn)


class Registry:
    """One registry host (or mirror URL), one identity."""

    def __init__(self, host: str, creds: Credentials | None = None,
                 options: RegistryOptions | None = None, base_url: str | None = None) -> None:
        self.host = host
        self.creds = creds or Credentials()
        self.options = options or RegistryOptions()
        self._scheme: str | None = None
        self._verify = True
        if base_url:
            u = urllib.parse.urlsplit(base_url)
            if u.scheme not in ("http", "https") or not u.netloc:
                raise InvalidParameter(f"invalid registry URL {base_url!r}")
            self.host = u.netloc
            self._scheme = u.scheme
            self._verify = not self.options.is_insecure(self.host)
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._pool: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._ping_lock = threading.Lock()

    # -- connections ------------------------------------------------------------------------------
    def _new_conn(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            verify = self._verify if netloc == self.host else True
            ctx = _ssl_context(netloc, verify, self.options.certs_dirs)
            return http.client.HTTPSConnection(netloc, timeout=TIMEOUT, context=ctx, blocksize=_BLOCK)
        return http.client.HTTPConnection(netloc, timeout=TIMEOUT, blocksize=_BLOCK)

    def _get_conn(self, key: tuple[str, str]) -> http.client.HTTPConnection:
        with self._lock:
            lst = self._pool.get(key)
            if lst:
                return lst.pop()
        return self._new_conn(*key)

    def _put_conn(self, key: tuple[str, str], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            lst = self._pool.setdefault(key, [])
            if len(lst) < 8:
                lst.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            for lst in self._pool.values():
                for c in lst:
                    c.close()
            self._pool.clear()

    def _raw(self, method: str, url: str, headers: dict[str, str], body: Any = None) -> Response:
        u = urllib.parse.urlsplit(url)
        key = (u.scheme, u.netloc)
        target = u.path + ("?" + u.query if u.query else "")
        h = {"User-Agent": USER_AGENT, **headers}
        for attempt in (0, 1):
            conn = self._get_conn(key)
            reused = conn.sock is not None
            try:
                conn.request(method, target, body=body, headers=h)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                # a kept-alive connection the server closed meanwhile: once more on a fresh one
                if reused and attempt == 0 and (body is None or isinstance(body, bytes)):
                    continue
                raise Unavailable(f"{method} {url}: connection closed by the registry ({e})") from None
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise
            r = Response(self, conn, resp, key)
            r.url = url
            return r
        raise AssertionError("unreachable")

    # -- endpoint and auth ------------------------------------------------------------------------
    def base(self) -> str:
        self.ping()
        return f"{self._scheme}://{self.host}"

    def ping(self) -> None:
        """GET /v2/ once: picks http(s) and records the auth challenge."""
        with self._ping_lock:
            if self._challenge is not None:
                return
            schemes: list[tuple[str, bool]]
            if self._scheme:
                schemes = [(self._scheme, self._verify)]
            elif self.options.is_insecure(self.host):
                schemes = [("https", False), ("http", False)]
            else:
                schemes = [("https", True)]
            last: Exception | None = None
            for scheme, verify in schemes:
                self._scheme, self._verify = scheme, verify
                try:
                    r = self._raw("GET", f"{scheme}://{self.host}/v2/", {})
                    body = r.read_small()
                except (OSError, http.client.HTTPException, Unavailable) as e:
                    last = e
                    continue
                if r.status == 401:
                    self._challenge = parse_challenge(r.header("WWW-Authenticate"))
                elif r.status < 300 or r.status == 404 and scheme == "http":
                    self._challenge = ("", {})
                else:
                    last = error_from(r.status, body)
                    continue
                return
            self._scheme = None
            raise Unavailable(f"Get \"https://{self.host}/v2/\": {_describe(last)}")

    def _auth_header(self, scopes: list[str], fresh: bool = False) -> dict[str, str]:
        scheme, params = self._challenge or ("", {})
        if scheme == "basic":
            if self.creds.username or self.creds.password:
                return {"Authorization": basic_header(self.creds)}
            return {}
        if scheme != "bearer":
            return {}
        if self.creds.registry_token:
            return {"Authorization": "Bearer " + self.creds.registry_token}
        key = " ".join(sorted(scopes))
        with self._lock:
            tok = self._tokens.get(key)
        if tok and not fresh and tok[1] > time.monotonic():
            return {"Authorization": "Bearer " + tok[0]}
        token, ttl = self._fetch_token(params, scopes)
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(ttl - 10, 10))
        return {"Authorization": "Bearer " + token}

    def _fetch_token(self, params: dict[str, str], scopes: list[str]) -> tuple[str, float]:
        realm = params.get("realm", "")
        u = urllib.parse.urlsplit(realm)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise RegistryDenied(401, "UNAUTHORIZED", f"invalid token realm {realm!r}")
        q: list[tuple[str, str]] = []
        if params.get("service"):
            q.append(("service", params["service"]))
        q += [("scope", s) for s in scopes]
        headers: dict[str, str] = {}
        if self.creds.identity_token:
            form = urllib.parse.urlencode(q + [("grant_type", "refresh_token"), ("client_id", "sampan"),
                                               ("refresh_token", self.creds.identity_token)])
            r = self._raw("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"}, form.encode())
        else:
            if self.creds.username or self.creds.password:
                headers["Authorization"] = basic_header(self.creds)
                q.append(("account", self.creds.username))
            sep = "&" if u.query else "?"
            r = self._raw("GET", realm + (sep + urllib.parse.urlencode(q) if q else ""), headers)
        body = r.read_small()
        if r.status != 200:
            e = error_from(r.status, body)
            raise RegistryDenied(r.status, e.code or "UNAUTHORIZED", e.message)
        try:
            obj = json.loads(body)
            token = obj.get("token") or obj.get("access_token")
            ttl = float(obj.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token = None
            ttl = 0.0
        if not token or not isinstance(token, str):
            raise RegistryDenied(401, "UNAUTHORIZED", "the token server answered without a token")
        return token, ttl

    # -- requests ---------------------------------------------------------------------------------
    def request(self, method: str, path: str, scopes: list[str], headers: dict[str, str] | None = None,
                body: Any = None, ok: tuple[int, ...] = (200,), follow: bool = True) -> Response:
        """Send with auth, retry 429/5xx (idempotent ones), follow redirects; error replies
        become RegistryError. `path` is relative to the endpoint (`/v2/...`) or absolute."""
        url = path if "://" in path else self.base() + path
        h = dict(headers or {})
        refreshed = False
        retries = 0
        redirects = 0
        while True:
            same_host = urllib.parse.urlsplit(url).netloc == self.host
            hdrs = {**(self._auth_header(scopes, refreshed) if same_host else {}), **h}
            r = self._raw(method, url, hdrs, body)
            if r.status in ok:
                return r
            if r.status in (301, 302, 303, 307, 308) and follow and r.header("Location"):
                r.close()
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise Unavailable(f"{method} {path}: too many redirects")
                url = urllib.parse.urljoin(url, r.header("Location"))
                if r.status == 303:
                    method, body = "GET", None
                continue
            if r.status == 401 and not refreshed and same_host:
                chal = parse_challenge(r.header("WWW-Authenticate"))
                data = b"" if method == "HEAD" else r.read_small()
                if chal[0]:
                    self._challenge = chal
                refreshed = True
                if self._challenge and self._challenge[0] in ("basic", "bearer") and \
                        (body is None or isinstance(body, bytes)):
                    continue
                raise error_from(401, data, "Unauthorized")
            idempotent = method in ("GET", "HEAD") or body is None or isinstance(body, bytes)
            if (r.status == 429 or r.status in (502, 503, 504)) and retries < MAX_RETRIES and idempotent:
                wait = _retry_after(r.header("Retry-After"), retries)
                body_bytes = r.read_small() if method != "HEAD" else b""
                if wait is None:
                    raise error_from(r.status, body_bytes, r.raw.reason)
                retries += 1
                time.sleep(wait)
                continue
            data = b"" if method == "HEAD" else r.read_small()
            r.close()
            err = error_from(r.status, data, r.raw.reason)
            if r.status == 429:
                ra = r.header("Retry-After")
                err = RegistryUnavailable(429, "TOOMANYREQUESTS",
                                          f"{err.message} (rate limited{'; retry after ' + ra + 's' if ra else ''})")
            raise err


def _retry_after(header: str, attempt: int) -> float | None:
    """Seconds to wait before a retry; None when the registry asks for longer than we wait."""
    if header:
        try:
            s = float(header.strip())
        except ValueError:
            s = 1.0
        return s if s <= MAX_RETRY_AFTER else None
    return min(0.25 * (2 ** attempt), 4.0)


def _describe(e: Exception | None) -> str:
    if isinstance(e, ssl.SSLError):
        return f"tls: {e.reason or e}"
    if isinstance(e, socket.timeout):
        return "i/o timeout"
    if isinstance(e, ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(e, socket.gaierror):
        return f"dial tcp: lookup: {e.strerror}"
    return str(e) if e else "unreachable"
