"""Blobs by digest on the local filesystem.

Layout: `<root>/sha256/<hex>`. A blob is written once: data streams into a temp file in
`tmp_dir` (same filesystem as the root, so the final `os.replace` is atomic), the digest and
size are checked, the file is fsynced, renamed, and the directory fsynced. A crash therefore
leaves either no blob or a whole, verified one; stray temp files are removed at start-up.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from ..errors import InvalidParameter, NotFound
from ..reference import validate_digest

_CHUNK = 1024 * 1024
_TMP_PREFIX = "blob-"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Writer:
    """An open ingest: `write()` bytes, then `commit()` (verify + rename) or `abort()`.

    Used directly when a blob is produced as a side effect of other work (the uncompressed
    layer tar is written here while it is being extracted, in the same pass).
    """

    def __init__(self, store: "ContentStore") -> None:
        self._store = store
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix=_TMP_PREFIX)
        self._f = os.fdopen(fd, "wb")
        self._tmp = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0
        self.done = False

    def write(self, data: bytes) -> int:
        self._f.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self, expected: str | None = None, size: int | None = None) -> str:
        """Verify and move into place; returns the digest. An existing blob makes this a no-op."""
        try:
            got = self.digest
            if expected is not None and got != validate_digest(expected):
                raise InvalidParameter(f"digest mismatch: expected {expected}, got {got}")
            if size is not None and size != self.size:
                raise InvalidParameter(f"size mismatch for {got}: expected {size} bytes, got {self.size}")
            target = self._store.path(got)
            if target.exists():
                self.abort()
                return got
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            os.chmod(self._tmp, 0o444)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp, target)
            _fsync_dir(target.parent)
            self.done = True
            return got
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            self._f.close()
        finally:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()  # no-op after a commit


class ContentStore:
    def __init__(self, root: Path | str, tmp_dir: Path | str) -> None:
        self.root = Path(root)
        self.tmp_dir = Path(tmp_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "sha256").mkdir(exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def cleanup(self) -> None:
        """Start-up: drop temp files of ingests a crash interrupted."""
        for p in self.tmp_dir.glob(_TMP_PREFIX + "*"):
            try:
                p.unlink()
            except OSError:
                pass

    def path(self, digest: str) -> Path:
        validate_digest(digest)
        return self.root / "sha256" / digest[len("sha256:"):]

    def writer(self) -> Writer:
        return Writer(self)

    def write(self, src: BinaryIO | Iterable[bytes], expected: str | None = None,
              size: int | None = None) -> str:
        """Store a stream (file object or iterable of chunks); returns its digest."""
        w = Writer(self)
        try:
            if hasattr(src, "read"):
                while True:
                    chunk = src.read(_CHUNK)  # type: ignore[union-attr]
                    if not chunk:
                        break
                    w.write(chunk)
                    if size is not None and w.size > size:
                        raise InvalidParameter(f"size mismatch: blob larger than the expected {size} bytes")
            else:
                for chunk in src:  # type: ignore[union-attr]
                    w.write(chunk)
            return w.commit(expected, size)
        finally:
            w.abort()

    def adopt(self, path: Path | str, digest: str, size: int) -> str:
        """Take a finished file whose digest the caller verified while writing it (a pull's
        download) as the blob `digest`, by a hard link: no copy. The file must be on this
        store's filesystem and must not change afterwards."""
        target = self.path(digest)
        if target.exists():
            return digest
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if os.fstat(fd).st_size != size:
                raise InvalidParameter(f"size mismatch for {digest}: expected {size} bytes")
            os.fsync(fd)
            os.fchmod(fd, 0o444)
        finally:
            os.close(fd)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except FileExistsError:
            return digest  # stored meanwhile
        _fsync_dir(target.parent)
        return digest

    def write_bytes(self, data: bytes, expected: str | None = None) -> str:
        digest = sha256_digest(data)
        if expected is not None and digest != validate_digest(expected):
            raise InvalidParameter(f"digest mismatch: expected {expected}, got {digest}")
        if self.exists(digest):
            return digest
        return self.write([data], digest, len(data))

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def info(self, digest: str) -> int:
        """Size in bytes."""
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def delete(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def walk(self) -> Iterator[tuple[str, int]]:
        """Every blob as (digest, size)."""
        d = self.root / "sha256"
        with os.scandir(d) as it:
            for e in it:
                if len(e.name) == 64 and e.is_file(follow_symlinks=False):
                    yield "sha256:" + e.name, e.stat().st_size
