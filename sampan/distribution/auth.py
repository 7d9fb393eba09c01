"""Registry credentials: Docker's `config.json`, `X-Registry-Auth`, and auth challenges.

Credentials live where Docker keeps them (`$DOCKER_CONFIG/config.json`, else
`~/.docker/config.json`) in the same format, so a `docker login` is reused and a `sampan
login` is seen by docker: `auths` maps a registry to `{"auth": base64("user:pass")}`;
`credsStore`/`credHelpers` name `docker-credential-<helper>` programs that hold the secret
instead (their protocol: `get`/`store`/`erase`, JSON on stdin/stdout).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter

# Docker Hub's historical key in `auths` (and what `docker login` without a server uses).
INDEX_SERVER = "https://index.docker.io/v1/"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", INDEX_SERVER,
                "https://index.docker.io", "https://registry-1.docker.io"}


@dataclass
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""   # OAuth refresh token (Docker Hub's `IdentityToken`)
    registry_token: str = ""   # a bearer token to send as is

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)


def registry_key(server: str) -> str:
    """The `auths` key for a server address: Hub is `https://index.docker.io/v1/`, others the
    bare host[:port] (a scheme or path the user typed is dropped, as Docker does)."""
    s = (server or "").strip()
    if not s or s in _HUB_ALIASES:
        return INDEX_SERVER
    s = re.sub(r"^[a-z]+://", "", s)
    s = s.split("/", 1)[0]
    return INDEX_SERVER if s in _HUB_ALIASES else s


def _host_of_key(key: str) -> str:
    return re.sub(r"^[a-z]+://", "", key).split("/", 1)[0]


# -- X-Registry-Auth --------------------------------------------------------------------------------

def decode_registry_auth(header: str | None) -> Credentials:
    """The API's `X-Registry-Auth`: base64url(JSON AuthConfig). Empty or `{}` is anonymous."""
    if not header:
        return Credentials()
    raw = header.strip()
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        obj = json.loads(data or b"{}")
    except (ValueError, TypeError):
        # Docker ignores an undecodable header rather than failing the pull.
        return Credentials()
    if not isinstance(obj, dict):
        return Credentials()
    return Credentials(str(obj.get("username") or ""), str(obj.get("password") or ""),
                       str(obj.get("identitytoken") or ""), str(obj.get("registrytoken") or ""))


def encode_registry_auth(c: Credentials, server: str = "") -> str:
    obj: dict[str, str] = {}
    if c.username:
        obj["username"] = c.username
    if c.password:
        obj["password"] = c.password
    if c.identity_token:
        obj["identitytoken"] = c.identity_token
    if c.registry_token:
        obj["registrytoken"] = c.registry_token
    if server:
        obj["serveraddress"] = server
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode()


# -- WWW-Authenticate -------------------------------------------------------------------------------

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="https://auth",service="reg",scope="repository:a:pull"` ->
    ("bearer", {"realm": ..., ...}). Unknown or empty schemes give ("", {})."""
    header = (header or "").strip()
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            break
        val = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", val)
        pos = m.end()
    return scheme.lower(), params


def basic_header(c: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{c.username}:{c.password}".encode()).decode()


# -- config.json ------------------------------------------------------------------------------------

def config_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    d = env.get("DOCKER_CONFIG")
    if d:
        return Path(d)
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".docker"


class ConfigFile:
    """`config.json`: read as a whole, changed in memory, written atomically (0600)."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.dir = Path(directory) if directory is not None else config_dir()
        self.path = self.dir / "config.json"
        self.data: dict[str, Any] = {}
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return
        except OSError as e:
            raise InvalidParameter(f"cannot read {self.path}: {e.strerror}") from None
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise InvalidParameter(f"invalid config file {self.path}: {e}") from None
        if not isinstance(data, dict):
            raise InvalidParameter(f"invalid config file {self.path}: not a JSON object")
        self.data = data

    def _auths(self) -> dict[str, Any]:
        a = self.data.get("auths")
        if not isinstance(a, dict):
            a = {}
            self.data["auths"] = a
        return a

    def _helper(self, key: str) -> str:
        helpers = self.data.get("credHelpers") or {}
        if isinstance(helpers, dict):
            h = helpers.get(_host_of_key(key)) or helpers.get(key)
            if h:
                return str(h)
        return str(self.data.get("credsStore") or "")

    def get(self, server: str) -> Credentials:
        key = registry_key(server)
        helper = self._helper(key)
        if helper:
            got = _helper_call(helper, "get", key)
            if got is not None:
                user = str(got.get("Username") or "")
                secret = str(got.get("Secret") or "")
                if user == "<token>":
                    return Credentials(identity_token=secret)
                return Credentials(user, secret)
        auths = self._auths()
        entry = auths.get(key)
        if entry is None:  # `http://host`, `https://host/v2/` as typed by hand
            for k, v in auths.items():
                if registry_key(k) == key:
                    entry = v
                    break
        if not isinstance(entry, dict):
            return Credentials()
        user, pw = str(entry.get("username") or ""), str(entry.get("password") or "")
        if entry.get("auth"):
            try:
                user, _, pw = base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise InvalidParameter(f"invalid auth entry for {key} in {self.path}") from None
        return Credentials(user, pw, str(entry.get("identitytoken") or ""))

    def store(self, server: str, c: Credentials) -> None:
        key = registry_key(server)
        helper = self._helper(key)
        if helper:
            user, secret = ("<token>", c.identity_token) if c.identity_token else (c.username, c.password)
            _helper_call(helper, "store", json.dumps({"ServerURL": key, "Username": user,
                                                      "Secret": secret}), required=True)
            self._auths()[key] = {}
        else:
            entry: dict[str, str] = {"auth": base64.b64encode(f"{c.username}:{c.password}".encode()).decode()}
            if c.identity_token:
                entry = {"auth": base64.b64encode(f"{c.username}:".encode()).decode(),
                         "identitytoken": c.identity_token}
            self._auths()[key] = entry
        self.save()

    def erase(self, server: str) -> bool:
        """Forget a registry's credentials; False when there were none."""
        key = registry_key(server)
        helper = self._helper(key)
        if helper:
            _helper_call(helper, "erase", key)
        auths = self._auths()
        gone = [k for k in auths if registry_key(k) == key]
        for k in gone:
            del auths[k]
        if gone or helper:
            self.save()
        return bool(gone)

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".config.json.")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.data, f, indent="\t")
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise


def _helper_call(helper: str, action: str, payload: str, required: bool = False) -> dict | None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", helper):
        raise InvalidParameter(f"invalid credential helper name {helper!r}")
    prog = f"docker-credential-{helper}"
    try:
        p = subprocess.run([prog, action], input=payload.encode(), capture_output=True, timeout=30)
    except FileNotFoundError:
        if required:
            raise InvalidParameter(f"credential helper {prog} not found on PATH") from None
        return None
    except subprocess.TimeoutExpired:
        raise InvalidParameter(f"credential helper {prog} timed out") from None
    if p.returncode != 0:
        msg = (p.stdout or p.stderr).decode(errors="replace").strip()
        if action == "get" and "credentials not found" in msg.lower():
            return None
        if required:
            raise InvalidParameter(f"credential helper {prog} {action} failed: {msg}")
        return None
    if action != "get":
        return {}
    try:
        obj = json.loads(p.stdout)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None
