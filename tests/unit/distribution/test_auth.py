"""Credentials: Docker's config.json, X-Registry-Auth, WWW-Authenticate challenges."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from sampan.distribution.auth import (INDEX_SERVER, ConfigFile, Credentials, decode_registry_auth,
                                      encode_registry_auth, parse_challenge, registry_key)
from sampan.errors import InvalidParameter


def test_registry_key_normalises_like_docker():
    assert registry_key("") == INDEX_SERVER
    assert registry_key("docker.io") == INDEX_SERVER
    assert registry_key("https://index.docker.io/v1/") == INDEX_SERVER
    assert registry_key("127.0.0.1:5000") == "127.0.0.1:5000"
    assert registry_key("http://127.0.0.1:5000/v2/") == "127.0.0.1:5000"


def test_config_roundtrip_in_docker_format(tmp_path):
    cfg = ConfigFile(tmp_path)
    cfg.store("127.0.0.1:5000", Credentials("ann", "s3:cret"))
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["auths"]["127.0.0.1:5000"]["auth"] == base64.b64encode(b"ann:s3:cret").decode()
    assert stat.S_IMODE(os.stat(tmp_path / "config.json").st_mode) == 0o600
    got = ConfigFile(tmp_path).get("http://127.0.0.1:5000")
    assert (got.username, got.password) == ("ann", "s3:cret")
    assert ConfigFile(tmp_path).erase("127.0.0.1:5000") is True
    assert ConfigFile(tmp_path).get("127.0.0.1:5000").empty
    assert ConfigFile(tmp_path).erase("127.0.0.1:5000") is False


def test_config_keeps_other_keys(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"psFormat": "x", "auths": {}}))
    ConfigFile(tmp_path).store("r:1", Credentials("a", "b"))
    assert json.loads((tmp_path / "config.json").read_text())["psFormat"] == "x"


def test_bad_config_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InvalidParameter, match="invalid config file"):
        ConfigFile(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"r:1": {"auth": "!!!"}}}))
    with pytest.raises(InvalidParameter):
        ConfigFile(tmp_path).get("r:1")


def test_credential_helper_is_used(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    store = tmp_path / "store.json"
    helper = bindir / "docker-credential-fake"
    helper.write_text(f"""#!/bin/sh
case "$1" in
  get) cat {store} ;;
  store) cat > {store} ;;
  erase) rm -f {store} ;;
esac
""")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"r:1": "fake"}}))
    cfg = ConfigFile(tmp_path)
    cfg.store("r:1", Credentials("ann", "pw"))
    assert json.loads(store.read_text()) == {"ServerURL": "r:1", "Username": "ann", "Secret": "pw"}
    # the secret is not written into config.json
    assert "pw" not in (tmp_path / "config.json").read_text()
    got = ConfigFile(tmp_path).get("r:1")
    assert (got.username, got.password) == ("ann", "pw")


def test_x_registry_auth():
    c = Credentials("ann", "pw")
    back = decode_registry_auth(encode_registry_auth(c, "r:1"))
    assert (back.username, back.password) == ("ann", "pw")
    assert decode_registry_auth("").empty
    assert decode_registry_auth("e30=").empty  # {}
    assert decode_registry_auth("!!!not base64").empty  # ignored, as Docker does
    # docker-py sends unpadded urlsafe base64
    raw = base64.urlsafe_b64encode(json.dumps({"username": "u", "password": "p?>"}).encode()).decode().rstrip("=")
    assert decode_registry_auth(raw).password == "p?>"


def test_parse_challenge():
    s, p = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                           'scope="repository:library/busybox:pull"')
    assert s == "bearer"
    assert p == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                 "scope": "repository:library/busybox:pull"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})
    assert parse_challenge("") == ("", {})
    s, p = parse_challenge('Bearer realm="a\\"b",error="insufficient_scope"')
    assert p["realm"] == 'a"b' and p["error"] == "insufficient_scope"
