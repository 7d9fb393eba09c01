"""Docker's json-file log format: one JSON object per line.

    {"log":"hello\\n","stream":"stdout","time":"2026-11-28T15:02:45.123456789Z"}

Writer (in the monitor) and reader (in the daemon, for `logs`) both live here.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, Iterator

from .locallog import LocalWriter

try:  # the C string encoder json.dumps(ensure_ascii=False) uses
    from json.encoder import c_encode_basestring as _c_encode  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _c_encode = None
from json.encoder import py_encode_basestring as _py_encode

_encode_str = _c_encode or _py_encode

# Docker splits log lines longer than 16 KiB into several entries.
MAX_LINE = 16 * 1024


def rfc3339_nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse_rfc3339_nano(s: str) -> int:
    """Nanoseconds since the epoch from Docker's timestamps (any fraction length)."""
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    main, _, rest = s.partition(".")
    frac, tz = "0", ""
    if rest:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, tz = rest[:i] or "0", rest[i:]
    else:
        for sep in ("+", "-"):
            idx = main.rfind(sep)
            if idx > 10:
                main, tz = main[:idx], main[idx:]
                break
    dt = datetime.fromisoformat(main + (tz or "+00:00"))
    return int(dt.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])


def _line(data: bytes, suffix: str) -> bytes:
    """One json-file entry: Docker's key order, the text as json.dumps(ensure_ascii=False)."""
    return ('{"log":' + _encode_str(data.decode("utf-8", errors="replace")) + suffix).encode()


class LogWriter:
    """Buffered per stream until a newline, as Docker's json-file driver does."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1, compress: bool = False) -> None:
        from .logrotate import RotatingFile
        # max_size 0: unbounded; else rotated as json-file's max-size/max-file
        self._file = RotatingFile(path, max_size, max_file, compress)
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial[stream] + data if self._partial[stream] else data
        # One suffix per write call (all its lines share the time), and only the text of each
        # line goes through the JSON string encoder: dumping a dict per line cost ~6x more.
        suffix = f',"stream":"{stream}","time":"{rfc3339_nano(time.time_ns())}"}}\n'
        out = []
        start, end = 0, len(buf)
        while start < end:
            nl = buf.find(b"\n", start, start + MAX_LINE)
            if nl < 0:
                if end - start < MAX_LINE:
                    break
                nl = start + MAX_LINE - 1
            out.append(_line(buf[start:nl + 1], suffix))
            start = nl + 1
        self._partial[stream] = buf[start:]
        if out:
            self._append_entries(out)

    def _append_entries(self, out: list[bytes]) -> None:
        blob = b"".join(out)
        if self._file.fits(len(blob)):
            self._file.append(blob)
            return
        # Would pass max-size: entry by entry, so the rotation falls between two entries and
        # no file grows past max-size by more than one entry (as dockerd checks per message).
        for e in out:
            self._file.append(e)

    def flush(self) -> None:
        now = rfc3339_nano(time.time_ns())
        out = [self._entry(s, b, now) for s, b in self._partial.items() if b]
        self._partial = {"stdout": b"", "stderr": b""}
        if out:
            self._append_entries(out)

    @staticmethod
    def _entry(stream: str, data: bytes, now: str) -> bytes:
        return _line(data, f',"stream":"{stream}","time":"{now}"}}\n')

    def close(self) -> None:
        self.flush()
        self._file.close()


def open_writer(path: str, driver: str = "json-file", max_size: int = 0, max_file: int = 1,
                compress: bool = False) -> Any:
    """The monitor's log writer for a container's log driver (json-file or local)."""
    if driver == "local":
        return LocalWriter(path, max_size, max_file, compress)
    return LogWriter(path, max_size, max_file, compress)


def read_entries(path: str, offset: int = 0) -> Iterator[tuple[int, dict]]:
    """(offset after the line, entry) for each complete line from `offset` on."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(offset)
        pos = offset
        for line in f:
            if not line.endswith(b"\n"):
                break  # a line still being written
            pos += len(line)
            try:
                yield pos, json.loads(line)
            except ValueError:
                continue
