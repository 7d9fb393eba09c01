"""The layer store: every image layer unpacked once, keyed by chain ID.

`layers/<chain hex>/diff` is an overlay lower dir. A layer is extracted into
`layers/tmp-<random>/diff` (same filesystem), synced, then the directory is renamed into place
and recorded in SQLite in one transaction, so a crash leaves either no layer or a whole one;
`cleanup()` at start-up removes temp dirs and directories the database does not know.

The layer's tar is kept so `docker save` is byte-exact and `docker push` has something to send.
A pulled layer keeps the verified compressed blob it came in (`layer_blobs`: diff ID -> blob):
no second copy is written, and a push sends those same bytes. Any other layer (import, load,
commit, build) keeps its uncompressed tar as a blob whose digest is the diff ID. `open_tar()`
reads either as the uncompressed tar.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from ..archive import extract_layer
from ..userns import hooks as userns_hooks
from ..content import ContentStore
from ..errors import InvalidParameter, NotFound
from ..metadata import Database
from ..reference import validate_digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS image_layers (
    chain_id TEXT PRIMARY KEY,
    diff_id  TEXT NOT NULL,
    parent   TEXT,
    size     INTEGER NOT NULL,
    tar_size INTEGER NOT NULL,
    created  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS image_layers_diff ON image_layers(diff_id);
CREATE TABLE IF NOT EXISTS layer_blobs (
    diff_id    TEXT PRIMARY KEY,
    digest     TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL
);
"""

_TMP_PREFIX = "tmp-"


def chain_id(parent: str | None, diff_id: str) -> str:
    """OCI image spec: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    if not parent:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(chain_id(out[-1] if out else None, d))
    return out


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int       # sum of file sizes, Docker's layer size
    tar_size: int   # size of the uncompressed tar blob
    path: Path      # the unpacked dir (overlay lower dir)


@dataclass(frozen=True)
class Compressed:
    """A compressed layer blob already on disk whose digest and size were verified (a finished
    pull download): `LayerStore.create` links it into the content store instead of storing the
    uncompressed tar."""
    path: Path
    digest: str
    size: int
    media_type: str


class _TarReader:
    """The uncompressed tar of a layer kept compressed: inflated on a thread as it is read."""

    def __init__(self, f: BinaryIO) -> None:
        from ..distribution.inflate import ThreadedDecompressor  # the fast inflaters live there
        self._f = f
        self._dec = ThreadedDecompressor(f, "auto")

    def read(self, n: int = -1) -> bytes:
        return self._dec.read(n)

    def close(self) -> None:
        self._dec.close()
        self._f.close()

    def __enter__(self) -> "_TarReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _syncfs(path: Path) -> None:
    """Flush the filesystem holding a fresh layer before it becomes visible (one call, not per file)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    except (OSError, AttributeError):
        os.sync()
    finally:
        os.close(fd)


class LayerStore:
    def __init__(self, root: Path | str, db: Database, content: ContentStore) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = db
        self.content = content
        db.migrate(SCHEMA)
        self._lock = threading.Lock()

    def cleanup(self) -> None:
        """Start-up: remove half-made layers and dirs with no database row."""
        known = {r["chain_id"][len("sha256:"):] for r in self.db.query("SELECT chain_id FROM image_layers")}
        for entry in os.scandir(self.root):
            if entry.name.startswith(_TMP_PREFIX) or entry.name not in known:
                shutil.rmtree(entry.path, ignore_errors=True)
        # Rows whose dir vanished cannot serve as lower dirs: forget them.
        for hexid in known:
            if not (self.root / hexid / "diff").is_dir():
                self.db.execute("DELETE FROM image_layers WHERE chain_id = ?", ("sha256:" + hexid,))

    def dir(self, chain: str) -> Path:
        return self.root / validate_digest(chain)[len("sha256:"):] / "diff"

    def _row(self, r) -> Layer:  # type: ignore[no-untyped-def]
        return Layer(r["chain_id"], r["diff_id"], r["parent"], r["size"], r["tar_size"],
                     self.dir(r["chain_id"]))

    def get(self, chain: str) -> Layer:
        r = self.db.query_one("SELECT * FROM image_layers WHERE chain_id = ?", (chain,))
        if r is None:
            raise NotFound(f"layer {chain} not found")
        return self._row(r)

    def exists(self, chain: str) -> bool:
        return self.db.query_one("SELECT 1 FROM image_layers WHERE chain_id = ?", (chain,)) is not None

    def all(self) -> list[Layer]:
        return [self._row(r) for r in self.db.query("SELECT * FROM image_layers")]

    def create(self, parent: str | None, src: BinaryIO, expected_diff_id: str | None = None,
               on_chain: Callable[[str], None] | None = None,
               compressed: Compressed | None = None) -> Layer:
        """Extract a (maybe compressed) layer tar on top of `parent`; returns the stored layer.

        The tar is kept: `compressed` (the blob `src` was read from) when given, else the
        uncompressed tar, written while extracting. A diff ID other than `expected_diff_id` is
        an InvalidParameter and leaves nothing behind.
        """
        if parent is not None and not self.exists(parent):
            raise NotFound(f"parent layer {parent} not found")
        if compressed is not None and expected_diff_id is None:
            raise ValueError("a compressed blob is kept only for a layer of known diff ID")
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=_TMP_PREFIX))
        writer = None if compressed is not None else self.content.writer()
        try:
            diff = tmp / "diff"
            diff.mkdir(mode=0o755)
            res = extract_layer(src, diff, tee=writer)
            userns_hooks.shift_layer(str(diff))  # --userns-remap: chowned once, when stored
            if expected_diff_id is not None and res.diff_id != expected_diff_id:
                raise InvalidParameter(
                    f"layer digest mismatch: expected diff ID {expected_diff_id}, got {res.diff_id}")
            if writer is not None:
                writer.commit(res.diff_id, res.tar_size)
            chain = chain_id(parent, res.diff_id)
            if on_chain is not None:
                on_chain(chain)  # the caller pins it before it can be seen (and collected)
            with self._lock:
                if self.exists(chain):
                    return self.get(chain)  # someone stored it meanwhile; ours is dropped
                final = self.root / chain[len("sha256:"):]
                if final.exists():  # a leftover no row claims
                    shutil.rmtree(final)
                _syncfs(tmp)  # the files, and the blob to keep: both on this filesystem
                # under the lock: a remove() of another layer with this diff cannot interleave
                keep_blob = compressed is not None and not self.has_tar(res.diff_id)
                if keep_blob:
                    assert compressed is not None
                    self.content.adopt(compressed.path, compressed.digest, compressed.size)
                os.rename(tmp, final)
                with self.db.transaction() as tx:
                    tx.execute(
                        "INSERT INTO image_layers(chain_id, diff_id, parent, size, tar_size, created) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (chain, res.diff_id, parent, res.content_size, res.tar_size, time.time()))
                    if keep_blob and compressed is not None and compressed.digest != res.diff_id:
                        # replaces a row whose blob went missing (has_tar() was false)
                        tx.execute("INSERT OR REPLACE INTO layer_blobs(diff_id, digest, media_type, size) "
                                   "VALUES (?, ?, ?, ?)",
                                   (res.diff_id, compressed.digest, compressed.media_type, compressed.size))
                return self.get(chain)
        finally:
            if writer is not None:
                writer.abort()
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    # -- the layer's tar ---------------------------------------------------------------------------
    def compressed_blob(self, diff_id: str) -> Compressed | None:
        """The compressed blob kept for a pulled layer's tar, if any."""
        r = self.db.query_one("SELECT * FROM layer_blobs WHERE diff_id = ?", (diff_id,))
        if r is None or not self.content.exists(r["digest"]):
            return None
        return Compressed(self.content.path(r["digest"]), r["digest"], r["size"], r["media_type"])

    def has_tar(self, diff_id: str) -> bool:
        return self.content.exists(diff_id) or self.compressed_blob(diff_id) is not None

    def open_tar(self, diff_id: str) -> BinaryIO:
        """The uncompressed tar of a stored layer (whose size is its `tar_size`)."""
        if self.content.exists(diff_id):
            try:
                return self.content.open(diff_id)
            except NotFound:
                pass
        blob = self.compressed_blob(diff_id)
        if blob is None:
            raise NotFound(f"the tar of layer {diff_id} is missing from the content store")
        return _TarReader(self.content.open(blob.digest))  # type: ignore[return-value]

    def remove(self, chain: str) -> Layer | None:
        """Delete a layer (dir, row, and its tar unless another layer has the same diff)."""
        with self._lock:
            try:
                layer = self.get(chain)
            except NotFound:
                return None
            with self.db.transaction() as tx:
                tx.execute("DELETE FROM image_layers WHERE chain_id = ?", (chain,))
                other = tx.execute("SELECT 1 FROM image_layers WHERE diff_id = ?",
                                   (layer.diff_id,)).fetchone()
                blob = None
                if other is None:
                    blob = tx.execute("SELECT digest FROM layer_blobs WHERE diff_id = ?",
                                      (layer.diff_id,)).fetchone()
                    tx.execute("DELETE FROM layer_blobs WHERE diff_id = ?", (layer.diff_id,))
            d = layer.path.parent
            if d.exists():
                # rename first, so a crash mid-rmtree leaves only a tmp- dir for cleanup()
                gone = self.root / f"{_TMP_PREFIX}rm-{d.name}"
                os.rename(d, gone)
                shutil.rmtree(gone, ignore_errors=True)
            if other is None:
                self.content.delete(layer.diff_id)
                if blob is not None:
                    self.content.delete(blob["digest"])
            return layer
