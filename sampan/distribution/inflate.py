"""Decompression on its own thread, with the fastest inflater this host has.

Pulls are bound by unpacking, not by the network (DESIGN "Where the time goes"). Running the
inflater on a second thread overlaps it with tar extraction on the first (zlib, python-isal
and zstandard release the GIL while they work), and python-isal / zlib-ng inflate about
twice as fast as stdlib zlib; each is used when installed and the stdlib is the fallback.
"""

from __future__ import annotations

import queue
import threading
import zlib
from typing import Any, BinaryIO, Callable

from ..errors import InvalidParameter, Unavailable

_CHUNK = 1024 * 1024
_QUEUE = 16  # chunks in flight between the threads: bounds memory to ~16 MiB per layer


def _gzip_factory() -> tuple[Callable[[], Any], str]:
    try:
        from isal import isal_zlib  # type: ignore[import-not-found]
        return (lambda: isal_zlib.decompressobj(31)), "isal"
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng  # type: ignore[import-not-found]
        return (lambda: zlib_ng.decompressobj(31)), "zlib-ng"
    except ImportError:
        pass
    return (lambda: zlib.decompressobj(31)), "zlib"


def gzip_backend() -> str:
    return _gzip_factory()[1]


def _gzip_chunks(src: BinaryIO):
    new, _ = _gzip_factory()
    d = new()
    started = False
    pending = b""
    while True:
        data = pending or src.read(_CHUNK)
        pending = b""
        if not data:
            if started and not d.eof:
                raise InvalidParameter("unexpected end of gzip stream")
            return
        try:
            out = d.decompress(data)
        except Exception as e:  # zlib.error / isal_zlib.error
            raise InvalidParameter(f"invalid gzip data: {e}") from None
        started = True
        if out:
            yield out
        if d.eof:
            rest = d.unused_data
            # concatenated members (pigz, `cat a.gz b.gz`) continue; other trailing bytes are
            # ignored as gzip(1) ignores them, but the source is still read to its end so the
            # compressed digest covers every byte
            d = new()
            started = False
            if rest[:2] == b"\x1f\x8b":
                pending = rest
            elif rest:
                while src.read(_CHUNK):
                    pass
                return


def _zstd_chunks(src: BinaryIO):
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        raise Unavailable("zstd-compressed layers need the `zstandard` Python package") from None
    reader = zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)
    while True:
        try:
            out = reader.read(_CHUNK)
        except zstandard.ZstdError as e:
            raise InvalidParameter(f"invalid zstd data: {e}") from None
        if not out:
            while src.read(_CHUNK):  # see _gzip_chunks: the digest covers every byte
                pass
            return
        yield out


def _plain_chunks(src: BinaryIO):
    while True:
        data = src.read(_CHUNK)
        if not data:
            return
        yield data


_GENS = {"gzip": _gzip_chunks, "zstd": _zstd_chunks, "none": _plain_chunks}


def _sniff(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "none"


class _Peeked:
    def __init__(self, head: bytes, f: BinaryIO) -> None:
        self._head = head
        self._f = f

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            return data
        return self._f.read(n)


class ThreadedDecompressor:
    """A file-like reader of the decompressed stream, produced by a background thread.

    Errors on the producer side (bad data, a digest mismatch from the source) are re-raised
    on the consumer's next read, so the extraction fails before its layer is committed.
    """

    def __init__(self, src: BinaryIO, compression: str) -> None:
        if compression not in _GENS and compression != "auto":
            raise InvalidParameter(f"unsupported layer compression {compression!r}")
        self._q: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(_QUEUE)
        self._buf = memoryview(b"")
        self._eof = False
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, args=(compression, src), daemon=True,
                                   name="sampan-inflate")
        self._t.start()

    def _put(self, item: tuple[bytes | None, BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, compression: str, src: BinaryIO) -> None:
        try:
            if compression == "auto":
                # Docker trusts magic bytes, not media types: some registries label plain
                # tars as gzip and the other way round
                head = src.read(_CHUNK)
                compression = _sniff(head)
                src = _Peeked(head, src)  # type: ignore[assignment]
            for chunk in _GENS[compression](src):
                if not self._put((chunk, None)):
                    return
            self._put((None, None))
        except BaseException as e:  # handed to the consumer
            self._put((None, e))

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while True:
                b = self.read(_CHUNK)
                if not b:
                    return b"".join(parts)
                parts.append(b)
        while not self._buf:
            if self._eof:
                return b""
            chunk, err = self._q.get()
            if err is not None:
                self._eof = True
                raise err
            if chunk is None:
                self._eof = True
                return b""
            self._buf = memoryview(chunk)
        out = bytes(self._buf[:n])
        self._buf = self._buf[n:]
        return out

    def close(self) -> None:
        """Stop the producer (e.g. after the consumer failed); idempotent."""
        self._stop.set()
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass
        self._t.join(timeout=5)
