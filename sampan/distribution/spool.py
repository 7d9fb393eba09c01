"""Blob downloads into temp files that can be read while they grow.

A layer download writes into a spool file; the extraction of that layer follows it with its
own reader, so download, verify, inflate and extract overlap. The reader hands out bytes as
they land and reports end of data only once the whole blob has arrived and its digest has
been checked: a blob that fails verification makes the reader raise, so the extraction fails
before the layer is committed — nothing unverified is ever stored.

Interrupted transfers resume with an HTTP range request from the last byte on disk. Two
pulls that need the same blob at the same time share one download (`Transfers`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from ..errors import InvalidParameter, SampanError, Unavailable

_CHUNK = 1024 * 1024
MAX_RESUMES = 5


class BlobSpool:
    def __init__(self, tmp_dir: Path, digest: str, size: int) -> None:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="pull-")
        os.close(fd)
        self.path = Path(name)
        self.digest = digest
        self.size = size
        self.received = 0
        self.done = False
        self.error: BaseException | None = None
        self.cond = threading.Condition()
        self.users = 1

    def advance(self, n: int) -> None:
        with self.cond:
            self.received += n
            self.cond.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        with self.cond:
            self.done = True
            self.error = error
            self.cond.notify_all()

    def wait_done(self) -> None:
        with self.cond:
            while not self.done:
                self.cond.wait()
            if self.error is not None:
                raise self.error

    def reader(self) -> "SpoolReader":
        return SpoolReader(self)

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class SpoolReader:
    def __init__(self, spool: BlobSpool) -> None:
        self._s = spool
        self._f = open(spool.path, "rb")
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        s = self._s
        if n is None or n < 0:
            n = _CHUNK
        with s.cond:
            while self.pos >= s.received and not s.done:
                s.cond.wait()
            if s.error is not None:
                raise s.error
            avail = s.received - self.pos
        if avail <= 0:
            return b""
        data = self._f.read(min(n, avail))
        self.pos += len(data)
        return data

    def close(self) -> None:
        self._f.close()


def download(open_blob: Callable[[int], "object"], spool: BlobSpool,
             on_progress: Callable[[int], None] | None = None) -> None:
    """Fetch a blob into `spool`, verifying size and digest; resumes after a broken transfer.

    `open_blob(offset)` returns a response (status 200 or 206) whose body starts at `offset`
    when the status is 206, or at 0 (a server that ignores ranges). Always calls
    `spool.finish()`, with the error when there is one.
    """
    h = hashlib.sha256()
    offset = 0
    resumes = 0
    err: BaseException | None = None
    try:
        with open(spool.path, "wb", buffering=0) as f:
            while True:
                r = open_blob(offset)
                skip = offset if offset and getattr(r, "status", 200) == 200 else 0
                broken = False
                try:
                    while True:
                        try:
                            data = r.read(_CHUNK)  # type: ignore[attr-defined]
                        except (OSError, http.client.HTTPException) as e:
                            broken = True
                            last = e
                            break
                        if not data:
                            break
                        if skip:
                            cut = min(skip, len(data))
                            data, skip = data[cut:], skip - cut
                            if not data:
                                continue
                        if offset + len(data) > spool.size:
                            raise InvalidParameter(
                                f"blob {spool.digest}: registry sent more than the {spool.size} bytes "
                                "the manifest declares")
                        f.write(data)
                        h.update(data)
                        offset += len(data)
                        spool.advance(len(data))
                        if on_progress is not None:
                            on_progress(offset)
                finally:
                    r.close(broken=broken)  # type: ignore[attr-defined]
                if offset >= spool.size:
                    break
                # closed early (or the connection broke): resume from what we have
                resumes += 1
                if resumes > MAX_RESUMES:
                    raise Unavailable(
                        f"blob {spool.digest}: the registry closed the connection after "
                        f"{offset} of {spool.size} bytes{' (' + str(last) + ')' if broken else ''}")
                time.sleep(min(0.1 * resumes, 1.0))
        got = "sha256:" + h.hexdigest()
        if got != spool.digest:
            raise InvalidParameter(f"digest mismatch for blob: expected {spool.digest}, got {got}")
    except SampanError as e:
        err = e
        raise
    except BaseException as e:
        err = Unavailable(f"blob {spool.digest}: download failed: {e}")
        raise err from None
    finally:
        spool.finish(err)


class Transfers:
    """Downloads in flight, shared by concurrent pulls of the same blob."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = Path(tmp_dir)
        self._lock = threading.Lock()
        self._active: dict[str, BlobSpool] = {}

    def claim(self, digest: str, size: int) -> tuple[BlobSpool, bool]:
        """-> (spool, True if the caller must download it)."""
        with self._lock:
            s = self._active.get(digest)
            if s is not None and not (s.done and s.error is not None):
                s.users += 1
                return s, False
            s = BlobSpool(self.tmp_dir, digest, size)
            self._active[digest] = s
            return s, True

    def release(self, spool: BlobSpool) -> None:
        with self._lock:
            spool.users -= 1
            if spool.users > 0:
                return
            if self._active.get(spool.digest) is spool:
                del self._active[spool.digest]
        spool.remove()
