"""The registry's filesystem storage: content-addressed blobs plus per-repository links.

Layout under the root:
    blobs/sha256/<hex>                                   every blob and manifest, once
    repositories/<name>/_layers/sha256/<hex>             blob linked into the repository
    repositories/<name>/_manifests/revisions/sha256/<hex>  manifest in the repository (holds its media type)
    repositories/<name>/_manifests/tags/<tag>            the digest a tag points at
    repositories/<name>/_referrers/<subject hex>/<hex>   descriptor of a manifest naming a subject
    repositories/<name>/_uploads/<uuid>                  an upload in progress
    tmp/                                                 temp files (same filesystem: renames are atomic)

Every committed file is written to tmp/, fsynced and renamed into place, so a crash leaves
either the old or the new state; a blob is verified against its digest before it becomes
visible. Repository names follow the distribution grammar, whose components cannot start
with `_` or be `.`/`..`, so a name can never reach the `_`-prefixed bookkeeping dirs or climb
out of the root.

Writers that make a blob reachable (link, manifest put) hold a shared lock on `gc.lock`;
garbage collection holds it exclusively (gc.py), and blobs are touched when linked so a
collection honours its grace period for them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from ..distribution import manifest as mf

NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
UUID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_NAME = 255
MAX_MANIFEST = 4 * 1024 * 1024
_CHUNK = 1024 * 1024


class RegistryAPIError(Exception):
    """An error with the distribution spec's code; server.py renders it."""

    def __init__(self, status: int, code: str, message: str, detail: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


def err(status: int, code: str, message: str, detail: object = None) -> RegistryAPIError:
    return RegistryAPIError(status, code, message, detail)


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise err(400, "NAME_INVALID", "invalid repository name", {"name": name[:300]})
    return name


def check_digest(d: str) -> str:
    if not DIGEST_RE.match(d or ""):
        if re.match(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$", d or ""):
            raise err(400, "DIGEST_INVALID", "unsupported digest algorithm or format", {"digest": d[:200]})
        raise err(400, "DIGEST_INVALID", "provided digest did not match uploaded content", {"digest": (d or "")[:200]})
    return d


def _fsync_dir(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Upload:
    """Upload state kept in memory: sha256 so far. A restart rebuilds it from the data file."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0
        self.lock = threading.Lock()


class Storage:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        for d in ("blobs/sha256", "repositories", "tmp"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.tmp = self.root / "tmp"
        for p in self.tmp.iterdir():  # half-written files of a crash
            try:
                p.unlink()
            except OSError:
                pass
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    # -- atomic files -----------------------------------------------------------------------------
    def _write_atomic(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="w-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(target.parent)

    @contextmanager
    def gc_lock(self, exclusive: bool = False) -> Iterator[None]:
        fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # -- paths ------------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / check_digest(digest)[7:]

    def repo_dir(self, name: str) -> Path:
        return self.root / "repositories" / check_name(name)

    def _link(self, name: str, digest: str) -> Path:
        return self.repo_dir(name) / "_layers" / "sha256" / check_digest(digest)[7:]

    def _revision(self, name: str, digest: str) -> Path:
        return self.repo_dir(name) / "_manifests" / "revisions" / "sha256" / check_digest(digest)[7:]

    def _tag(self, name: str, tag: str) -> Path:
        if not TAG_RE.match(tag):
            raise err(400, "MANIFEST_INVALID", "invalid tag", {"tag": tag[:200]})
        return self.repo_dir(name) / "_manifests" / "tags" / tag

    def repo_exists(self, name: str) -> bool:
        return self.repo_dir(name).is_dir()

    # -- blobs ------------------------------------------------------------------------------------
    def blob_size(self, name: str, digest: str) -> int | None:
        """Size of a blob linked into `name` (manifests count too), else None."""
        if not (self._link(name, digest).exists() or self._revision(name, digest).exists()):
            return None
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open_blob(self, digest: str) -> BinaryIO:
        return open(self.blob_path(digest), "rb")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def link_blob(self, name: str, digest: str) -> bool:
        """Make an existing blob part of `name` (cross-repository mount); False if absent."""
        with self.gc_lock():
            p = self.blob_path(digest)
            try:
                os.utime(p)  # fresh for the GC grace period
            except FileNotFoundError:
                return False
            link = self._link(name, digest)
            if not link.exists():
                self._write_atomic(link, b"")
            return True

    def unlink_blob(self, name: str, digest: str) -> bool:
        try:
            self._link(name, digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def _commit_file(self, src: Path, digest: str) -> None:
        """Move a verified temp/upload file into blobs/ (or drop it if the blob exists)."""
        target = self.blob_path(digest)
        if target.exists():
            os.utime(target)
            src.unlink(missing_ok=True)
            return
        fd = os.open(src, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(src, 0o444)
        os.replace(src, target)
        _fsync_dir(target.parent)

    def put_blob(self, digest: str, data: bytes) -> None:
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise err(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        if self.has_blob(digest):
            os.utime(self.blob_path(digest))
            return
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="b-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self._commit_file(Path(tmp), digest)

    # -- uploads ----------------------------------------------------------------------------------
    def _upload_path(self, name: str, uuid: str) -> Path:
        if not UUID_RE.match(uuid):
            raise err(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": uuid[:100]})
        return self.repo_dir(name) / "_uploads" / uuid

    def start_upload(self, name: str) -> str:
        uuid = secrets.token_hex(16)
        p = self._upload_path(name, uuid)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()
        with self._lock:
            self._uploads[uuid] = Upload()
        return uuid

    def _state(self, name: str, uuid: str) -> tuple[Path, Upload]:
        p = self._upload_path(name, uuid)
        if not p.is_file():
            raise err(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": uuid})
        with self._lock:
            st = self._uploads.get(uuid)
            if st is None:  # after a restart: rebuild the running hash from the data
                st = Upload()
                with open(p, "rb") as f:
                    while True:
                        b = f.read(_CHUNK)
                        if not b:
                            break
                        st.hash.update(b)
                        st.size += len(b)
                self._uploads[uuid] = st
        return p, st

    def upload_size(self, name: str, uuid: str) -> int:
        return self._state(name, uuid)[1].size

    def append_upload(self, name: str, uuid: str, chunks: Iterator[bytes], start: int | None = None,
                      limit: int | None = None) -> int:
        """Append a chunk; `start` (from Content-Range) must be where the upload ends now."""
        p, st = self._state(name, uuid)
        if not st.lock.acquire(blocking=False):
            raise err(416, "BLOB_UPLOAD_INVALID", "another chunk of this upload is in progress")
        try:
            if start is not None and start != st.size:
                raise err(416, "BLOB_UPLOAD_INVALID", "chunk out of order",
                          {"expected_start": st.size, "got": start})
            n = 0
            with open(p, "ab") as f:
                for data in chunks:
                    n += len(data)
                    if limit is not None and n > limit:
                        raise err(400, "SIZE_INVALID", "chunk larger than its Content-Range/Length")
                    f.write(data)
                    st.hash.update(data)
                    st.size += len(data)
            return st.size
        finally:
            st.lock.release()

    def finish_upload(self, name: str, uuid: str, digest: str) -> None:
        check_digest(digest)
        p, st = self._state(name, uuid)
        with st.lock:
            got = "sha256:" + st.hash.hexdigest()
            if got != digest:
                self.cancel_upload(name, uuid)
                raise err(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                          {"expected": digest, "got": got})
            with self.gc_lock():
                self._commit_file(p, digest)
                link = self._link(name, digest)
                if not link.exists():
                    self._write_atomic(link, b"")
        with self._lock:
            self._uploads.pop(uuid, None)

    def cancel_upload(self, name: str, uuid: str) -> None:
        p = self._upload_path(name, uuid)
        try:
            p.unlink()
        except FileNotFoundError:
            raise err(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": uuid}) from None
        with self._lock:
            self._uploads.pop(uuid, None)

    # -- manifests --------------------------------------------------------------------------------
    def resolve(self, name: str, ref: str) -> str:
        if ref.startswith("sha256:") or ":" in ref:
            check_digest(ref)
            if not self._revision(name, ref).exists():
                raise err(404, "MANIFEST_UNKNOWN", "manifest unknown", {"digest": ref})
            return ref
        try:
            return self._tag(name, ref).read_text().strip()
        except FileNotFoundError:
            if not self.repo_exists(name):
                raise err(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name}) from None
            raise err(404, "MANIFEST_UNKNOWN", "manifest unknown", {"tag": ref}) from None

    def get_manifest(self, name: str, ref: str) -> tuple[bytes, str, str]:
        digest = self.resolve(name, ref)
        try:
            media_type = self._revision(name, digest).read_text().strip()
            with self.open_blob(digest) as f:
                raw = f.read(MAX_MANIFEST + 1)
        except FileNotFoundError:
            raise err(404, "MANIFEST_UNKNOWN", "manifest unknown", {"digest": digest}) from None
        return raw, media_type or mf.OCI_MANIFEST, digest

    def put_manifest(self, name: str, ref: str, raw: bytes, content_type: str) -> tuple[str, str | None]:
        """Validate and store; -> (digest, subject digest or None)."""
        if len(raw) > MAX_MANIFEST:
            raise err(413, "MANIFEST_INVALID", "manifest too big")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        is_digest = ":" in ref
        if is_digest and check_digest(ref) != digest:
            raise err(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                      {"expected": ref, "got": digest})
        tag_path = None if is_digest else self._tag(name, ref)
        try:
            m = mf.parse(raw, content_type)
        except Exception as e:  # InvalidParameter from the parser
            raise err(400, "MANIFEST_INVALID", "manifest invalid", str(e)) from None
        if content_type and "mediaType" in m.data and content_type.split(";")[0].strip() not in (
                m.media_type, "application/json", ""):
            raise err(400, "MANIFEST_INVALID", "manifest invalid",
                      f"Content-Type {content_type!r} differs from mediaType {m.media_type!r}")
        with self.gc_lock():
            for d in m.references():
                if m.is_index:
                    ok = self._revision(name, d.digest).exists()
                    size = self.blob_path(d.digest).stat().st_size if ok else None
                else:
                    size = self.blob_size(name, d.digest)
                if size is None:
                    raise err(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", {"digest": d.digest})
                if size != d.size:
                    raise err(400, "SIZE_INVALID", "provided length did not match content length",
                              {"digest": d.digest, "declared": d.size, "actual": size})
                os.utime(self.blob_path(d.digest))
            self.put_blob(digest, raw)
            self._write_atomic(self._revision(name, digest), m.media_type.encode())
            if m.subject is not None:
                desc = {"mediaType": m.media_type, "digest": digest, "size": len(raw)}
                at = m.data.get("artifactType") or (m.config.media_type if m.config else "")
                if at:
                    desc["artifactType"] = at
                if isinstance(m.data.get("annotations"), dict):
                    desc["annotations"] = m.data["annotations"]
                self._write_atomic(self.repo_dir(name) / "_referrers" / m.subject.digest[7:] / digest[7:],
                                   json.dumps(desc).encode())
            if tag_path is not None:
                self._write_atomic(tag_path, digest.encode())
        return digest, m.subject.digest if m.subject else None

    def delete_manifest(self, name: str, ref: str) -> None:
        if ":" not in ref:  # a tag: spec 1.1 allows deleting just the tag
            p = self._tag(name, ref)
            try:
                p.unlink()
            except FileNotFoundError:
                raise err(404, "MANIFEST_UNKNOWN", "manifest unknown", {"tag": ref}) from None
            return
        digest = self.resolve(name, ref)
        raw, _, _ = self.get_manifest(name, digest)
        self._revision(name, digest).unlink(missing_ok=True)
        for t in self.tags(name):
            tp = self._tag(name, t)
            try:
                if tp.read_text().strip() == digest:
                    tp.unlink()
            except FileNotFoundError:
                pass
        try:
            m = mf.parse(raw)
            if m.subject is not None:
                (self.repo_dir(name) / "_referrers" / m.subject.digest[7:] / digest[7:]).unlink(missing_ok=True)
        except Exception:  # noqa: BLE001 - a manifest we stored parses; be lenient on delete
            pass

    def tags(self, name: str) -> list[str]:
        d = self.repo_dir(name) / "_manifests" / "tags"
        if not self.repo_exists(name):
            raise err(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
        try:
            return sorted(p.name for p in d.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def referrers(self, name: str, digest: str) -> list[dict]:
        check_digest(digest)
        d = self.repo_dir(name) / "_referrers" / digest[7:]
        out = []
        try:
            entries = sorted(d.iterdir())
        except FileNotFoundError:
            return []
        for p in entries:
            try:
                desc = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if self._revision(name, desc.get("digest", "")).exists():
                out.append(desc)
        return out

    def repositories(self) -> list[str]:
        base = self.root / "repositories"
        out = []
        for dirpath, dirnames, _ in os.walk(base):
            if "_manifests" in dirnames or "_layers" in dirnames:
                out.append(os.path.relpath(dirpath, base))
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(out)

    # -- for GC -----------------------------------------------------------------------------------
    def revisions(self, name: str) -> list[str]:
        d = self.repo_dir(name) / "_manifests" / "revisions" / "sha256"
        try:
            return ["sha256:" + p.name for p in d.iterdir()]
        except FileNotFoundError:
            return []

    def links(self, name: str) -> list[str]:
        d = self.repo_dir(name) / "_layers" / "sha256"
        try:
            return ["sha256:" + p.name for p in d.iterdir()]
        except FileNotFoundError:
            return []

    def all_blobs(self) -> list[tuple[str, float]]:
        d = self.root / "blobs" / "sha256"
        out = []
        with os.scandir(d) as it:
            for e in it:
                if len(e.name) == 64:
                    out.append(("sha256:" + e.name, e.stat().st_mtime))
        return out

    def remove_revision(self, name: str, digest: str) -> None:
        self._revision(name, digest).unlink(missing_ok=True)

    def remove_blob(self, digest: str) -> None:
        self.blob_path(digest).unlink(missing_ok=True)

    def stale_uploads(self, older_than: float) -> list[Path]:
        out = []
        for name in self.repositories():
            d = self.repo_dir(name) / "_uploads"
            if d.is_dir():
                out += [p for p in d.iterdir() if p.stat().st_mtime < time.time() - older_than]
        return out

    # -- for the pull-through cache (proxy.py): content from a verified upstream ----------------
    def cache_manifest(self, name: str, tag: str | None, raw: bytes, media_type: str) -> str:
        """Store a manifest fetched from the upstream without requiring its blobs locally
        (they are fetched when asked for)."""
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        with self.gc_lock():
            self.put_blob(digest, raw)
            self._write_atomic(self._revision(name, digest), media_type.encode())
            if tag is not None:
                self._write_atomic(self._tag(name, tag), digest.encode())
        return digest

    def ingest_blob(self, name: str, digest: str, chunks: Iterator[bytes]) -> int:
        """Store a blob from a stream, verifying its digest, and link it into `name`."""
        check_digest(digest)
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="i-")
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for data in chunks:
                    f.write(data)
                    h.update(data)
                    size += len(data)
            if "sha256:" + h.hexdigest() != digest:
                raise err(502, "BLOB_UNKNOWN", "upstream blob failed verification", {"digest": digest})
            with self.gc_lock():
                self._commit_file(Path(tmp), digest)
                link = self._link(name, digest)
                if not link.exists():
                    self._write_atomic(link, b"")
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        return size
