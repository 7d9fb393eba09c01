"""json-file rotation: `max-size` / `max-file` options, and reading across rotated files.

The writer (LogWriter, in the monitor) renames `<log>` -> `<log>.1` -> ... -> `<log>.<max-file - 1>`
when the next write would pass `max-size`, as Docker's json-file driver does (with max-file 1 the
file is truncated instead). Readers see the files oldest first; a follower keeps its open file
across a rotation, reads it to its end, then moves on to the new file.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterator

from ..errors import InvalidParameter

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[iI]?[bB]?$")
_MULT = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def parse_size(v: str) -> int:
    """go-units RAMInBytes: `10k`, `1m`, `1.5g`, `100` (binary multiples)."""
    m = _SIZE.match(str(v).strip())
    if not m:
        raise InvalidParameter(f"invalid size: '{v}'")
    return int(float(m.group(1)) * _MULT[m.group(2).lower()])


def rotation(opts: dict[str, Any] | None) -> tuple[int, int]:
    """(max_size bytes or 0 for unbounded, max_file >= 1) from a LogConfig's Config."""
    opts = opts or {}
    size = parse_size(opts["max-size"]) if opts.get("max-size") not in (None, "", "-1") else 0
    try:
        files = int(opts.get("max-file") or 1)
    except ValueError:
        raise InvalidParameter(f"invalid value for max-file: {opts.get('max-file')!r}") from None
    if files < 1:
        raise InvalidParameter("max-file cannot be less than 1")
    if files > 1 and not size:
        raise InvalidParameter("max-file can only be used with max-size")
    return size, files


def validate(log_config: dict[str, Any]) -> None:
    """Docker's create-time check of `--log-opt` for json-file."""
    typ = log_config.get("Type") or "json-file"
    cfg = log_config.get("Config") or {}
    if typ == "none":
        return
    if typ not in ("json-file", "local"):
        raise InvalidParameter(f'failed to create logger: logger: no log driver named \'{typ}\' is registered')
    known = {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag", "mode",
             "max-buffer-size"}
    for k in cfg:
        if k not in known:
            raise InvalidParameter(f"unknown log opt '{k}' for {typ} log driver")
    rotation(cfg)


def rotate(path: str, max_file: int) -> None:
    """Shift `path` -> `path.1` -> ...; the oldest falls off. With one file: truncate."""
    if max_file <= 1:
        with open(path, "r+b") as f:
            f.truncate(0)
        return
    for i in range(max_file - 1, 0, -1):
        src = path if i == 1 else f"{path}.{i - 1}"
        if os.path.exists(src):
            os.replace(src, f"{path}.{i}")


def log_files(path: str) -> list[str]:
    """The rotated files, oldest first, then the live one."""
    d, base = os.path.split(path)
    rotated = []
    try:
        names = os.listdir(d or ".")
    except OSError:
        names = []
    for n in names:
        if n.startswith(base + "."):
            suffix = n[len(base) + 1:]
            if suffix.isdigit():
                rotated.append(int(suffix))
    return [f"{path}.{i}" for i in sorted(rotated, reverse=True)] + [path]


def _lines(f: Any) -> Iterator[dict]:
    for line in f:
        if not line.endswith(b"\n"):
            f.seek(-len(line), os.SEEK_CUR)  # a line still being written: later
            break
        try:
            yield json.loads(line)
        except ValueError:
            continue


def read_and_follow(path: str) -> tuple[list[dict], "Follower"]:
    """Every entry so far (rotated files first) and a Follower positioned right after them."""
    out: list[dict] = []
    for p in log_files(path)[:-1]:
        try:
            with open(p, "rb") as f:
                out.extend(_lines(f))
        except FileNotFoundError:
            continue
    fol = Follower(path)
    out.extend(fol.poll())
    return out, fol


class Follower:
    """Reads new entries of the live file, following it across rotations."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.f: Any = None
        self._open()

    def _open(self) -> None:
        try:
            self.f = open(self.path, "rb")
        except FileNotFoundError:
            self.f = None

    def poll(self) -> list[dict]:
        out: list[dict] = []
        if self.f is None:
            self._open()
            if self.f is None:
                return out
        out.extend(_lines(self.f))
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return out
        fst = os.fstat(self.f.fileno())
        if st.st_ino != fst.st_ino or st.st_size < self.f.tell():
            # Rotated (a new file) or truncated: finish the old one, start the new from 0.
            out.extend(_lines(self.f))
            self.f.close()
            self._open()
            if self.f is not None:
                out.extend(_lines(self.f))
        return out

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None
