"""Fixtures for the image store tests: a tiny busybox rootfs tar and archives built from it."""

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from sampan.daemon.config import DaemonConfig
from sampan.images import ImageService
from sampan.metadata import Database


def _add(t: tarfile.TarFile, name: str, data: bytes | None = None, *, type_=tarfile.REGTYPE,
         mode=0o644, link="") -> None:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime, ti.linkname = type_, mode, 1_700_000_000, link
    if data is not None:
        ti.size = len(data)
    t.addfile(ti, io.BytesIO(data) if data is not None else None)


def make_rootfs_tar(extra: dict[str, bytes] | None = None) -> bytes:
    """bin/busybox (the host's static busybox), bin/sh -> busybox, etc/ files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ("bin/", "etc/", "tmp/"):
            _add(t, d, type_=tarfile.DIRTYPE, mode=0o1777 if d == "tmp/" else 0o755)
        _add(t, "bin/busybox", Path("/bin/busybox").read_bytes(), mode=0o755)
        _add(t, "bin/sh", type_=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(t, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        for name, data in (extra or {}).items():
            _add(t, name, data)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            _add(t, name, data)
    return buf.getvalue()


def image_config(diff_ids: list[str], **cfg) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05.123456789Z",
                       "config": cfg, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                       "history": [{"created": "2024-01-02T03:04:05Z", "created_by": f"layer {i}"}
                                   for i in range(len(diff_ids))]}).encode()


def docker_archive(layers: list[bytes], tags: list[str], gzip_layers: bool = False, **cfg) -> bytes:
    """A classic (pre-25) `docker save` tarball: <hex>.json, <id>/layer.tar, manifest.json."""
    raw_cfg = image_config([sha(l) for l in layers], **cfg)
    files = {sha(raw_cfg)[7:] + ".json": raw_cfg}
    names = []
    for i, l in enumerate(layers):
        name = f"{i:064x}/layer.tar"
        files[name] = gzip.compress(l) if gzip_layers else l
        names.append(name)
    files["manifest.json"] = json.dumps([{"Config": sha(raw_cfg)[7:] + ".json", "RepoTags": tags,
                                          "Layers": names}]).encode()
    return tar_of(files)


def oci_archive(layers: list[bytes], name: str | None, gzip_layers: bool = True,
                nested: bool = False, **cfg) -> tuple[bytes, str]:
    """An OCI image layout tarball (skopeo / buildx style); returns (archive, image ID)."""
    raw_cfg = image_config([sha(l) for l in layers], **cfg)
    blobs = {sha(raw_cfg): raw_cfg}
    descs = []
    for l in layers:
        b = gzip.compress(l, mtime=0) if gzip_layers else l
        blobs[sha(b)] = b
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layers else ""),
                      "digest": sha(b), "size": len(b)})
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": sha(raw_cfg), "size": len(raw_cfg)},
                      "layers": descs}).encode()
    blobs[sha(man)] = man
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(man), "size": len(man)}
    if nested:
        from sampan.images import host_arch
        inner = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [{**desc, "platform": {"os": "linux", "architecture": host_arch()}}]}).encode()
        blobs[sha(inner)] = inner
        desc = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(inner), "size": len(inner)}
    if name:
        desc["annotations"] = {"io.containerd.image.name": name,
                               "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]}
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
             "index.json": json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()}
    files.update({"blobs/sha256/" + d[7:]: b for d, b in blobs.items()})
    return tar_of(files), sha(raw_cfg)


class Helpers:
    make_rootfs_tar = staticmethod(make_rootfs_tar)
    sha = staticmethod(sha)
    tar_of = staticmethod(tar_of)
    image_config = staticmethod(image_config)
    docker_archive = staticmethod(docker_archive)
    oci_archive = staticmethod(oci_archive)


@pytest.fixture
def h():
    return Helpers


@pytest.fixture
def make_svc(tmp_path):
    made = []

    def make(root: Path | None = None) -> ImageService:
        cfg = DaemonConfig(data_root=root or tmp_path / "root")
        cfg.data_root.mkdir(parents=True, exist_ok=True)
        db = Database(cfg.db_path)
        made.append(db)
        return ImageService(cfg, db)

    yield make
    for db in made:
        db.close()


@pytest.fixture
def svc(make_svc):
    return make_svc()


@pytest.fixture
def rootfs(tmp_path):
    p = tmp_path / "rootfs.tar"
    p.write_bytes(make_rootfs_tar())
    return p


@pytest.fixture
def put(tmp_path):
    """Write bytes to a file under tmp_path and return its path."""
    n = [0]

    def put(data: bytes) -> Path:
        n[0] += 1
        p = tmp_path / f"blob{n[0]}"
        p.write_bytes(data)
        return p

    return put
