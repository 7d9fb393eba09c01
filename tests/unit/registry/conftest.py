"""A real sampan registry on 127.0.0.1 (port 0, temp root) per test, and a raw HTTP client."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from sampan.registry.server import RegistryConfig, serve_in_thread

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        return self.json()["errors"][0]["code"]


class RegClient:
    def __init__(self, port: int, auth: str = "") -> None:
        self.port = port
        self.auth = auth

    def req(self, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> Reply:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            h = dict(headers or {})
            if self.auth and "Authorization" not in h:
                h["Authorization"] = self.auth
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            c.close()

    def push_blob(self, name: str, data: bytes) -> str:
        d = sha(data)
        r = self.req("POST", f"/v2/{name}/blobs/uploads/?digest={d}", data,
                     {"Content-Type": "application/octet-stream"})
        assert r.status == 201, r.body
        return d

    def push_image(self, name: str, tag: str, layer: bytes | None = None) -> tuple[str, list[str]]:
        layer = layer if layer is not None else os.urandom(2000)
        cfg = json.dumps({"architecture": "amd64", "os": "linux",
                          "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
        blobs = [self.push_blob(name, cfg), self.push_blob(name, layer)]
        m = manifest(cfg, [layer])
        r = self.req("PUT", f"/v2/{name}/manifests/{tag}", m, {"Content-Type": DOCKER_MANIFEST})
        assert r.status == 201, r.body
        return sha(m), blobs


def manifest(cfg: bytes, layers: list[bytes], media: str = DOCKER_MANIFEST, extra: dict | None = None) -> bytes:
    obj = {"schemaVersion": 2, "mediaType": media,
           "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                      "digest": sha(cfg), "size": len(cfg)},
           "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                       "digest": sha(l), "size": len(l)} for l in layers]}
    obj.update(extra or {})
    return json.dumps(obj).encode()


def basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def bcrypt_line(user: str, pw: str) -> str:
    bcrypt = pytest.importorskip("bcrypt")
    return f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()}\n"


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Any]:
    servers = []

    def make(**kw: Any) -> tuple[RegClient, Any]:
        root = tmp_path / f"reg{len(servers)}"
        cfg = RegistryConfig(root=root, addr="127.0.0.1:0", **kw)
        srv, app, _ = serve_in_thread(cfg)
        servers.append(srv)
        return RegClient(srv.server_address[1]), app

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def reg(make_registry: Any) -> tuple[RegClient, Any]:
    return make_registry()


@pytest.fixture
def hp() -> Any:
    """The helpers above, for test modules (conftest is not importable in importlib mode)."""
    from types import SimpleNamespace
    return SimpleNamespace(sha=sha, manifest=manifest, basic=basic, bcrypt_line=bcrypt_line,
                           DOCKER_MANIFEST=DOCKER_MANIFEST, OCI_MANIFEST=OCI_MANIFEST)
