"""The `local` log driver: a compact binary record file, rotated and compressed by default.

Docker's local driver frames protobuf messages with their length before and after; sampan
keeps that shape (so `--tail` walks back from the end without reading the whole file) with a
fixed binary header instead of protobuf:

    record  := header payload trailer
    header  := u32 payload length | u8 stream (1 stdout, 2 stderr) | u8 flags | u16 0 | u64 time (ns)
    trailer := u32 payload length                                   (all big-endian)

The payload is the line as the container wrote it, newline included (a line longer than 16 KiB
is split, as json-file does; a last line without a newline is written as it is when the
stream ends). 20 bytes of framing per line against json-file's ~60 and its escaping; no JSON
to encode in the monitor or decode in `logs`.

Defaults as Docker's local driver: max-size 20m, max-file 5, compress true. Rotated files are
`container.log.1.gz` ... (monitor/logrotate.py), the live one `<container dir>/local-logs/container.log`.
"""

from __future__ import annotations

import os
import struct
import time
from typing import Iterator

MAX_LINE = 16 * 1024
HEADER = struct.Struct(">IBBHQ")
TRAILER = struct.Struct(">I")
OVERHEAD = HEADER.size + TRAILER.size
STREAMS = {"stdout": 1, "stderr": 2}
# Lines are split at 16 KiB; a length field beyond this is damage, not a record.
MAX_RECORD = 1 << 20

DEFAULT_MAX_SIZE = 20 * 1024 * 1024
DEFAULT_MAX_FILE = 5
DEFAULT_COMPRESS = True


def encode(stream: int, ns: int, payload: bytes) -> bytes:
    n = len(payload)
    return HEADER.pack(n, stream, 0, 0, ns) + payload + TRAILER.pack(n)


class LocalWriter:
    """Same interface as logfile.LogWriter (write/flush/close), local records instead."""

    def __init__(self, path: str, max_size: int = DEFAULT_MAX_SIZE, max_file: int = DEFAULT_MAX_FILE,
                 compress: bool = DEFAULT_COMPRESS) -> None:
        from .logrotate import RotatingFile
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self._file = RotatingFile(path, max_size, max_file, compress)
        self._partial: dict[int, bytes] = {1: b"", 2: b""}

    def write(self, stream: str, data: bytes) -> None:
        sid = STREAMS.get(stream, 1)
        buf = self._partial[sid] + data
        ns = time.time_ns()
        pack, tpack = HEADER.pack, TRAILER.pack
        out = []
        start = 0
        end = len(buf)
        while start < end:
            nl = buf.find(b"\n", start, start + MAX_LINE)
            if nl < 0:
                if end - start >= MAX_LINE:
                    nl = start + MAX_LINE - 1
                else:
                    break
            line = buf[start:nl + 1]
            n = len(line)
            out.append(pack(n, sid, 0, 0, ns))
            out.append(line)
            out.append(tpack(n))
            start = nl + 1
        self._partial[sid] = buf[start:]
        if out:
            self._append_records(out)

    def _append_records(self, parts: list[bytes]) -> None:
        blob = b"".join(parts)
        if self._file.fits(len(blob)):
            self._file.append(blob)
            return
        # Would cross max-size: write record by record so rotation happens between records.
        for i in range(0, len(parts), 3):
            self._file.append(parts[i] + parts[i + 1] + parts[i + 2])

    def flush(self) -> None:
        ns = time.time_ns()
        out = []
        for sid, b in self._partial.items():
            if b:
                out += [HEADER.pack(len(b), sid, 0, 0, ns), b, TRAILER.pack(len(b))]
        self._partial = {1: b"", 2: b""}
        if out:
            self._append_records(out)

    def close(self) -> None:
        self.flush()
        self._file.close()


def parse(buf: bytes, pos: int = 0) -> tuple[list[tuple[int, int, bytes, None]], int]:
    """(stream, time ns, payload, None) of each complete record from `pos` (the None: no
    time text, see engine/logread.py's entries), and where parsing stopped (the start of an
    incomplete record, or of a damaged one)."""
    out = []
    append = out.append
    unpack = HEADER.unpack_from
    end = len(buf)
    hs = HEADER.size
    limit = end - OVERHEAD
    while pos <= limit:
        n, stream, _flags, _r, ns = unpack(buf, pos)
        data_at = pos + hs
        stop = data_at + n
        # The trailer repeats the header's length bytes: a cheap check that this is a record.
        if (n > MAX_RECORD or stop + 4 > end or buf[stop:stop + 4] != buf[pos:pos + 4]
                or stream > 2 or not stream):
            break
        append((stream, ns, buf[data_at:stop], None))
        pos = stop + 4
    return out, pos


def iter_file(path: str) -> Iterator[tuple[int, int, bytes]]:
    """Every complete record of a (plain) local log file."""
    with open(path, "rb") as f:
        for r in parse(f.read())[0]:
            yield r[:3]
