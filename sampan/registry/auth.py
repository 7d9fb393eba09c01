"""Registry server auth: htpasswd (bcrypt) basic auth, and bearer tokens it issues itself.

Token mode follows Docker's token flow: a request without a valid token gets 401 with
`WWW-Authenticate: Bearer realm="<this server>/token",service="...",scope="repository:x:pull"`;
the client fetches `/token?service=..&scope=..` with its password (basic auth, checked against
the htpasswd file) and retries with `Authorization: Bearer <token>`. Tokens are JWTs signed
with HMAC-SHA256 by a secret kept in the storage root (0600), listing the granted `access`.
Every authenticated user may pull and push every repository; anonymous users get pull only
when the server is started with `--anonymous-pull`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

TOKEN_TTL = 300


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_bcrypt(password: str, hashed: str) -> bool:
    try:
        import bcrypt  # type: ignore[import-not-found]
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ImportError:
        pass
    except ValueError:
        return False
    try:  # glibc/libxcrypt crypt(3) also knows $2y$/$2b$
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # type: ignore[import-not-found]
        got = crypt.crypt(password, hashed)
        return bool(got) and hmac.compare_digest(got, hashed)
    except (ImportError, OSError):
        return False


class Htpasswd:
    """`user:$2y$...` lines (bcrypt only, as the CNCF registry requires)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.users: dict[str, str] = {}
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            user, _, h = line.partition(":")
            if h.startswith(("$2y$", "$2b$", "$2a$")):
                self.users[user] = h
        self._cache: dict[tuple[str, str], bool] = {}

    def check(self, user: str, password: str) -> bool:
        h = self.users.get(user)
        if h is None:
            return False
        # bcrypt costs ~50-250 ms by design: remember successes so each request needn't pay it
        key = (user, hashlib.sha256(password.encode()).hexdigest())
        if key in self._cache:
            return self._cache[key]
        ok = check_bcrypt(password, h)
        if ok:
            if len(self._cache) > 1024:
                self._cache.clear()
            self._cache[key] = True
        return ok


def parse_basic(header: str) -> tuple[str, str] | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        user, sep, pw = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, pw) if sep else None


@dataclass
class Grant:
    user: str
    access: dict[str, set[str]]  # repository -> actions ("pull", "push", "delete"); "*" = any

    def allows(self, repo: str, action: str) -> bool:
        acts = self.access.get(repo) or self.access.get("*") or set()
        return action in acts or "*" in acts


def parse_scope(scope: str) -> tuple[str, str, set[str]] | None:
    """`repository:name:pull,push` -> ("repository", "name", {"pull","push"})."""
    typ, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not typ or not name:
        return None
    return typ, name, {a for a in actions.split(",") if a}


class TokenIssuer:
    def __init__(self, root: Path, service: str) -> None:
        self.service = service
        p = Path(root) / ".token-secret"
        try:
            self.secret = p.read_bytes()
        except FileNotFoundError:
            secret = secrets.token_bytes(32)
            tmp = p.with_name(p.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secret)
            os.replace(tmp, p)
            self.secret = secret

    def issue(self, user: str, scopes: list[str], anonymous_pull: bool) -> str:
        access = []
        for s in scopes:
            parsed = parse_scope(s)
            if parsed is None:
                continue
            typ, name, acts = parsed
            if typ == "repository":
                allowed = acts & ({"pull", "push", "delete", "*"} if user else ({"pull"} if anonymous_pull else set()))
            elif typ == "registry" and name == "catalog":
                allowed = acts & {"*"} if user else set()
            else:
                allowed = set()
            access.append({"type": typ, "name": name, "actions": sorted(allowed)})
        now = int(time.time())
        header = {"alg": "HS256", "typ": "JWT"}
        claims = {"iss": "sampan-registry", "sub": user, "aud": self.service, "iat": now,
                  "nbf": now - 5, "exp": now + TOKEN_TTL, "jti": secrets.token_hex(8), "access": access}
        signing = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        sig = hmac.new(self.secret, signing.encode(), hashlib.sha256).digest()
        return signing + "." + _b64(sig)

    def verify(self, token: str) -> Grant | None:
        try:
            h, c, s = token.split(".")
            sig = hmac.new(self.secret, f"{h}.{c}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(sig, _unb64(s)):
                return None
            claims = json.loads(_unb64(c))
            if claims.get("aud") != self.service or int(claims.get("exp", 0)) < time.time():
                return None
        except (ValueError, TypeError):
            return None
        access: dict[str, set[str]] = {}
        for a in claims.get("access") or []:
            if a.get("type") == "repository":
                access.setdefault(a.get("name", ""), set()).update(a.get("actions") or [])
            elif a.get("type") == "registry" and a.get("name") == "catalog":
                access.setdefault("_catalog", set()).update(a.get("actions") or [])
        return Grant(str(claims.get("sub") or ""), access)
