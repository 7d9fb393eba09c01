"""Sniff and undo the compression of a tar stream (gzip, zstd, xz, bzip2 or none).

Layers, `docker import` input and `docker load` archives may each be compressed or not; Docker
decides by magic bytes, not by name or media type, and so do we.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import zlib
from typing import BinaryIO

from ..errors import InvalidParameter, Unavailable

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"
_CHUNK = 1024 * 1024


class _Peeked:
    """A reader that first replays the bytes consumed while sniffing."""

    def __init__(self, head: bytes, f: BinaryIO) -> None:
        self._head = head
        self._f = f

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._f.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._f.read(n)


def _read_exactly(f: BinaryIO, n: int) -> bytes:
    parts, left = [], n
    while left:
        b = f.read(left)
        if not b:
            break
        parts.append(b)
        left -= len(b)
    return b"".join(parts)


def detect(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    return "none"


class _Inflater:
    """gzip via zlib (multi-member aware: `gzip -c a b` and pigz output are concatenations)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._d = zlib.decompressobj(31)
        self._buf = b""
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        while not self._buf and not self._eof:
            data = self._d.unconsumed_tail or self._f.read(_CHUNK)
            if not data:
                if not self._d.eof and (self._d.unconsumed_tail or self._started):
                    raise InvalidParameter("unexpected end of gzip stream")
                self._eof = True
                break
            try:
                out = self._d.decompress(data, _CHUNK)
            except zlib.error as e:
                raise InvalidParameter(f"invalid gzip data: {e}") from None
            self._started = True
            if self._d.eof:
                rest = self._d.unused_data
                self._d = zlib.decompressobj(31)
                self._started = False
                if rest:
                    if not rest.startswith(GZIP_MAGIC):
                        # trailing garbage after the last member: gzip(1) ignores it, so do we
                        self._eof = True
                    else:
                        self._f = _Peeked(rest, self._f)  # type: ignore[assignment]
            self._buf = out
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    _started = False


class _Wrapped:
    """Adapts lzma/bz2/zstd decompressor objects, mapping their errors to InvalidParameter."""

    def __init__(self, f: BinaryIO, kind: str) -> None:
        self._kind = kind
        self._f = f

    def read(self, n: int = -1) -> bytes:
        try:
            return self._f.read(n if n and n > 0 else _CHUNK)
        except (lzma.LZMAError, OSError, EOFError, ValueError) as e:
            raise InvalidParameter(f"invalid {self._kind} data: {e}") from None
        except Exception as e:  # zstandard.ZstdError is not importable when zstd is absent
            raise InvalidParameter(f"invalid {self._kind} data: {e}") from None


def open_decompressed(f: BinaryIO) -> tuple[BinaryIO, str]:
    """Return (reader of the uncompressed bytes, compression name)."""
    head = _read_exactly(f, 6)
    kind = detect(head)
    src = _Peeked(head, f)
    if kind == "none":
        return src, kind  # type: ignore[return-value]
    if kind == "gzip":
        return _Inflater(src), kind  # type: ignore[arg-type,return-value]
    if kind == "xz":
        return _Wrapped(lzma.LZMAFile(src), kind), kind  # type: ignore[arg-type,return-value]
    if kind == "bzip2":
        return _Wrapped(bz2.BZ2File(src), kind), kind  # type: ignore[arg-type,return-value]
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        raise Unavailable("zstd-compressed data needs the `zstandard` Python package") from None
    reader = zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)
    return _Wrapped(reader, kind), kind  # type: ignore[arg-type,return-value]


class HashingReader:
    """Counts and hashes every byte read (the diff ID), optionally copying them to `tee`."""

    def __init__(self, f: BinaryIO, tee: object | None = None) -> None:
        self._f = f
        self._tee = tee
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if data:
            self.hash.update(data)
            self.size += len(data)
            if self._tee is not None:
                self._tee.write(data)  # type: ignore[attr-defined]
        return data

    def drain(self) -> None:
        """Read to EOF: tar padding after the end-of-archive blocks is part of the diff ID."""
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()
