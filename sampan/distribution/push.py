"""Push: layers (compressed once, never uploaded twice), the config, then the manifest.

For each layer the pusher first asks what it already knows: a blob pulled from or pushed to
this registry (`BlobSources`, kept in SQLite) is checked with HEAD and, when it lives in
another repository of the same registry, mounted across (`POST ...?mount=&from=`) instead of
uploaded. Otherwise a pulled layer's own gzip blob, or else the layer's uncompressed tar gzipped
into a temp file, is checked with HEAD and uploaded: one PUT for small blobs, PATCH chunks with
`Content-Range` for big ones. The manifest (Docker schema 2) goes last, so a registry never
holds a manifest whose blobs are missing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import InvalidParameter
from ..images.service import ImageService
from ..metadata import Database
from . import manifest as mf
from .progress import Reporter, short_id, status
from .transport import Registry, RegistryError

CHUNK_THRESHOLD = 64 * 1024 * 1024   # bigger blobs go up in PATCH chunks
CHUNK_SIZE = 32 * 1024 * 1024
_IO = 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS dist_blob_sources (
    diff_id    TEXT NOT NULL,
    digest     TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,
    registry   TEXT NOT NULL,
    repo       TEXT NOT NULL,
    PRIMARY KEY (diff_id, digest, registry, repo)
);
CREATE INDEX IF NOT EXISTS dist_blob_sources_diff ON dist_blob_sources(diff_id);
"""


@dataclass(frozen=True)
class Source:
    digest: str
    media_type: str
    size: int
    registry: str
    repo: str


class BlobSources:
    """Which compressed blob holds a layer (by diff ID), and where it was seen."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(SCHEMA)

    def add(self, diff_id: str, d: mf.Descriptor, registry: str, repo: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO dist_blob_sources VALUES (?, ?, ?, ?, ?, ?)",
                        (diff_id, d.digest, d.media_type, d.size, registry, repo))

    def find(self, diff_id: str) -> list[Source]:
        return [Source(r["digest"], r["media_type"], r["size"], r["registry"], r["repo"])
                for r in self.db.query("SELECT * FROM dist_blob_sources WHERE diff_id = ?", (diff_id,))]


def push_scopes(repo: str, *mount_from: str) -> list[str]:
    return [f"repository:{repo}:pull,push"] + [f"repository:{r}:pull" for r in mount_from if r != repo]


def _gzip_compressor() -> Any:
    try:
        from isal import isal_zlib  # type: ignore[import-not-found]
        return isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
    except ImportError:
        return zlib.compressobj(1, zlib.DEFLATED, 31)


def compress_to_temp(src: BinaryIO, tmp_dir: Path) -> tuple[Path, str, int]:
    """gzip a stream into a temp file -> (path, digest, size). Deterministic: no name/mtime."""
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="push-")
    h = hashlib.sha256()
    size = 0
    c = _gzip_compressor()
    try:
        with os.fdopen(fd, "wb") as f:
            while True:
                data = src.read(_IO)
                if not data:
                    break
                out = c.compress(data)
                if out:
                    f.write(out)
                    h.update(out)
                    size += len(out)
            out = c.flush()
            f.write(out)
            h.update(out)
            size += len(out)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), "sha256:" + h.hexdigest(), size


class _Progress:
    """A file wrapper reporting upload progress as http.client reads the body."""

    def __init__(self, f: BinaryIO, cb: Any, limit: int | None = None) -> None:
        self._f = f
        self._cb = cb
        self._left = limit
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        if self._left is not None:
            n = self._left if n < 0 else min(n, self._left)
        data = self._f.read(n)
        self.pos += len(data)
        if self._left is not None:
            self._left -= len(data)
        self._cb(len(data))
        return data


class Pusher:
    def __init__(self, images: ImageService, sources: BlobSources, tmp_dir: Path,
                 max_concurrent: int = 5) -> None:
        self.images = images
        self.sources = sources
        self.tmp_dir = Path(tmp_dir)
        self.max_concurrent = max(1, int(max_concurrent))

    # -- blobs ------------------------------------------------------------------------------------
    def blob_exists(self, reg: Registry, repo: str, digest: str, scopes: list[str]) -> int | None:
        try:
            r = reg.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes)
        except RegistryError as e:
            if e.status == 404:
                return None
            raise
        r.close()
        try:
            return int(r.header("Content-Length", "-1"))
        except ValueError:
            return -1

    def try_mount(self, reg: Registry, repo: str, src: Source) -> bool:
        q = urllib.parse.urlencode({"mount": src.digest, "from": src.repo})
        r = reg.request("POST", f"/v2/{repo}/blobs/uploads/?{q}", push_scopes(repo, src.repo),
                        {"Content-Length": "0"}, b"", ok=(201, 202))
        r.read_small()
        if r.status == 201:
            return True
        loc = r.header("Location")
        if loc:  # a session was opened instead: cancel it, we upload on our own
            try:
                reg.request("DELETE", urllib.parse.urljoin(reg.base() + f"/v2/{repo}/blobs/uploads/", loc),
                            push_scopes(repo), ok=(204, 200, 404)).close()
            except RegistryError:
                pass
        return False

    def upload(self, reg: Registry, repo: str, path: Path, digest: str, size: int,
               on_bytes: Any = None) -> None:
        scopes = push_scopes(repo)
        r = reg.request("POST", f"/v2/{repo}/blobs/uploads/", scopes, {"Content-Length": "0"}, b"",
                        ok=(202, 201))
        r.read_small()
        loc = urllib.parse.urljoin(reg.base() + f"/v2/{repo}/blobs/uploads/", r.header("Location"))
        if not r.header("Location"):
            raise InvalidParameter("registry answered an upload start without a Location")
        cb = on_bytes or (lambda n: None)
        with open(path, "rb") as f:
            if size > CHUNK_THRESHOLD:
                off = 0
                while off < size:
                    n = min(CHUNK_SIZE, size - off)
                    r = reg.request("PATCH", loc, scopes, {
                        "Content-Type": "application/octet-stream", "Content-Length": str(n),
                        "Content-Range": f"{off}-{off + n - 1}"}, _Progress(f, cb, n), ok=(202,))
                    r.read_small()
                    off += n
                    if r.header("Location"):
                        loc = urllib.parse.urljoin(loc, r.header("Location"))
                body: Any = b""
                length = 0
            else:
                body, length = _Progress(f, cb), size
            sep = "&" if urllib.parse.urlsplit(loc).query else "?"
            r = reg.request("PUT", loc + sep + urllib.parse.urlencode({"digest": digest}), scopes,
                            {"Content-Type": "application/octet-stream", "Content-Length": str(length)},
                            body, ok=(201, 204))
            r.read_small()

    def _push_layer(self, reg: Registry, repo: str, diff_id: str, emit: Reporter) -> mf.Descriptor:
        sid = short_id(diff_id)
        known = self.sources.find(diff_id)
        scopes = push_scopes(repo)
        for s in known:
            if s.registry != reg.host:
                continue
            if s.repo == repo:
                if self.blob_exists(reg, repo, s.digest, scopes) is not None:
                    emit(status("Layer already exists", sid))
                    return mf.Descriptor(s.media_type, s.digest, s.size)
            else:
                try:
                    if self.try_mount(reg, repo, s):
                        emit(status(f"Mounted from {s.repo}", sid))
                        d = mf.Descriptor(s.media_type, s.digest, s.size)
                        self.sources.add(diff_id, d, reg.host, repo)
                        return d
                except RegistryError:
                    pass
        for s in known:  # seen on another registry: maybe it is here too
            if s.registry != reg.host and self.blob_exists(reg, repo, s.digest, scopes) is not None:
                emit(status("Layer already exists", sid))
                d = mf.Descriptor(s.media_type, s.digest, s.size)
                self.sources.add(diff_id, d, reg.host, repo)
                return d
        kept = self._kept_gzip(diff_id)
        if kept is not None:  # a pulled layer: its own gzip blob goes up unchanged
            path, digest, size, temp = kept.path, kept.digest, kept.size, False
        else:
            with self.images.layers.open_tar(diff_id) as src:
                path, digest, size = compress_to_temp(src, self.tmp_dir)
            temp = True
        try:
            d = mf.Descriptor(mf.DOCKER_LAYER, digest, size)
            if self.blob_exists(reg, repo, digest, scopes) is not None:
                emit(status("Layer already exists", sid))
            else:
                done = [0]
                lock = threading.Lock()

                def on_bytes(n: int) -> None:
                    with lock:
                        done[0] += n
                        emit.progress("Pushing", sid, done[0], size)

                self.upload(reg, repo, path, digest, size, on_bytes)
                emit(status("Pushed", sid))
            self.sources.add(diff_id, d, reg.host, repo)
            return d
        finally:
            if temp:
                path.unlink(missing_ok=True)

    def _kept_gzip(self, diff_id: str) -> Any:
        """The compressed blob kept from the pull of this layer, when it is gzip (what a Docker
        schema 2 manifest can name); decided by its magic bytes, as registries mislabel."""
        kept = self.images.layers.compressed_blob(diff_id)
        if kept is None or kept.media_type == mf.DOCKER_FOREIGN:
            return None
        try:
            with open(kept.path, "rb") as f:
                return kept if f.read(2) == b"\x1f\x8b" else None
        except OSError:
            return None

    # -- images -----------------------------------------------------------------------------------
    def push_image(self, reg: Registry, repo: str, tag: str, image_id: str, emit: Reporter) -> tuple[str, int]:
        """Push one image under `tag` -> (manifest digest, manifest size)."""
        rec = self.images.record(image_id)
        config_raw = self.images.content.read_bytes(image_id)
        diff_ids = rec.diff_ids
        for d in diff_ids:
            emit(status("Preparing", short_id(d)))
        scopes = push_scopes(repo)
        with ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="sampan-push") as pool:
            futs = [pool.submit(self._push_layer, reg, repo, d, emit) for d in diff_ids]
            layers = [f.result() for f in futs]
        cfg = mf.Descriptor(mf.DOCKER_CONFIG, image_id, len(config_raw))
        if self.blob_exists(reg, repo, image_id, scopes) is None:
            fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="push-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(config_raw)
                self.upload(reg, repo, Path(name), image_id, len(config_raw))
            finally:
                os.unlink(name)
        raw = mf.manifest_json(cfg, layers)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        r = reg.request("PUT", f"/v2/{repo}/manifests/{tag}", scopes,
                        {"Content-Type": mf.DOCKER_MANIFEST}, raw, ok=(201, 200, 202))
        r.read_small()
        got = r.header("Docker-Content-Digest")
        if got and got != digest:
            raise InvalidParameter(f"registry computed manifest digest {got}, expected {digest}")
        return digest, len(raw)
