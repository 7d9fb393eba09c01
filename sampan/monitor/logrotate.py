"""Log rotation for json-file and local: `max-size` / `max-file` / `compress`, the drivers'
options and their checks, and reading across rotated files.

The writer (in the monitor) renames `<log>` -> `<log>.1` -> ... -> `<log>.<max-file - 1>`
when the next write would pass `max-size`, as Docker's drivers do (with max-file 1 the file is
truncated instead). With `compress` the file just rotated out becomes `<log>.1.gz` (gzip, fast
level: it is done in the monitor, between two writes of the container's output) and keeps the
mtime of its last write, so a `--since` reader can skip whole files. Readers see the files
oldest first; a follower keeps its open file across a rotation, reads it to its end, then moves
on to the new file.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from dataclasses import dataclass
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


DRIVERS = ("json-file", "local", "none")
# Options every driver takes (dockerd's logger.ValidateLogOpts strips them before the driver's
# own check); sampan's writer never drops output, so `mode` is accepted and means blocking.
_GLOBAL_OPTS = {"mode", "max-buffer-size"}
_DRIVER_OPTS = {
    "json-file": {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
    "local": {"max-size", "max-file", "compress"},
}


@dataclass(frozen=True)
class LogSettings:
    driver: str
    max_size: int      # bytes; 0 = unbounded
    max_file: int      # >= 1
    compress: bool


def _bool(v: Any, key: str) -> bool:
    s = str(v).strip().lower()
    if s in ("1", "t", "true"):
        return True
    if s in ("0", "f", "false", ""):
        return False
    raise InvalidParameter(f"invalid value for {key}: {v!r}: expected a boolean")


def rotation(opts: dict[str, Any] | None, driver: str = "json-file") -> tuple[int, int]:
    """(max_size bytes or 0 for unbounded, max_file >= 1) from a LogConfig's Config."""
    s = settings({"Type": driver, "Config": opts or {}})
    return s.max_size, s.max_file


def settings(log_config: dict[str, Any] | None) -> LogSettings:
    """A LogConfig's rotation, with each driver's defaults (local: 20m, 5 files, compressed)."""
    lc = log_config or {}
    driver = lc.get("Type") or "json-file"
    opts = lc.get("Config") or {}
    if driver == "local":
        from .locallog import DEFAULT_COMPRESS, DEFAULT_MAX_FILE, DEFAULT_MAX_SIZE
        size, files, compress = DEFAULT_MAX_SIZE, DEFAULT_MAX_FILE, DEFAULT_COMPRESS
    else:
        size, files, compress = 0, 1, False
    if opts.get("max-size") not in (None, ""):
        size = 0 if str(opts["max-size"]).strip() == "-1" else parse_size(opts["max-size"])
    if opts.get("max-file") not in (None, ""):
        try:
            files = int(opts["max-file"])
        except ValueError:
            raise InvalidParameter(f"invalid value for max-file: {opts.get('max-file')!r}") from None
        if files < 1:
            raise InvalidParameter("max-file cannot be less than 1")
    if driver == "json-file" and files > 1 and not size:
        raise InvalidParameter("max-file can only be used with max-size")
    if opts.get("compress") not in (None, ""):
        compress = _bool(opts["compress"], "compress")
        if compress and driver == "json-file" and (files <= 1 or not size):
            raise InvalidParameter("compress cannot be true when max-file is less than 2 or max-size is not set")
    if driver == "local" and files <= 1:
        compress = False  # nothing is ever rotated out to compress
    if driver == "local" and not size:
        files = 1
    return LogSettings(driver, size, files, compress)


def validate(log_config: dict[str, Any]) -> None:
    """Docker's create-time check of `--log-driver` / `--log-opt` (messages as dockerd's)."""
    typ = log_config.get("Type") or "json-file"
    cfg = log_config.get("Config") or {}
    if typ == "none":
        return
    if typ not in DRIVERS:
        raise InvalidParameter(f'failed to create logger: logger: no log driver named \'{typ}\' is registered')
    mode = cfg.get("mode") or ""
    if mode not in ("", "blocking", "non-blocking"):
        raise InvalidParameter(f"logger: logging mode not supported: {mode}")
    if "max-buffer-size" in cfg and mode != "non-blocking":
        raise InvalidParameter("logger: max-buffer-size option is only supported with 'mode=non-blocking'")
    for k in cfg:
        if k in _GLOBAL_OPTS or k in _DRIVER_OPTS[typ]:
            continue
        if typ == "local":
            raise InvalidParameter(f"unknown log opt '{k}' for log driver local")
        raise InvalidParameter(f"unknown log opt '{k}' for {typ} log driver")
    settings(log_config)


def _present(p: str) -> str | None:
    """`p` or `p.gz`, whichever exists (the plain one while its compression is not done)."""
    if os.path.exists(p):
        return p
    if os.path.exists(p + ".gz"):
        return p + ".gz"
    return None


def _remove(p: str) -> None:
    for q in (p, p + ".gz"):
        try:
            os.unlink(q)
        except FileNotFoundError:
            pass


def compress_file(src: str) -> None:
    """`src` -> `src.gz` (written beside it, then renamed into place), keeping its mtime;
    then `src` goes. A crash in between leaves the plain file, which readers take instead."""
    st = os.stat(src)
    tmp = f"{src}.gz.tmp{os.getpid()}"
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw,
                               mtime=st.st_mtime_ns // 1_000_000_000) as gz:
                shutil.copyfileobj(fin, gz, 1 << 20)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, src + ".gz")
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.unlink(src)


def _rotated_indexes(path: str) -> list[int]:
    d, base = os.path.split(path)
    out = set()
    try:
        names = os.listdir(d or ".")
    except OSError:
        return []
    for n in names:
        if n.startswith(base + "."):
            suffix = n[len(base) + 1:]
            if suffix.endswith(".gz"):
                suffix = suffix[:-3]
            if suffix.isdigit():
                out.add(int(suffix))
    return sorted(out)


def rotate(path: str, max_file: int, compress: bool = False) -> None:
    """Shift `path` -> `path.1` -> ...; the oldest falls off. With one file: truncate.
    Only the files that exist are touched (one directory listing), so a huge max-file costs
    nothing."""
    if max_file <= 1:
        with open(path, "r+b") as f:
            f.truncate(0)
        return
    for i in reversed(_rotated_indexes(path)):
        if i >= max_file - 1:
            _remove(f"{path}.{i}")  # the oldest (and any left by a larger max-file before)
            continue
        src = _present(f"{path}.{i}")
        if src is not None:
            _remove(f"{path}.{i + 1}")
            os.replace(src, f"{path}.{i + 1}" + (".gz" if src.endswith(".gz") else ""))
    if os.path.exists(path):
        _remove(f"{path}.1")
        os.replace(path, f"{path}.1")
        if compress:
            try:
                compress_file(f"{path}.1")
            except OSError:
                pass  # (disk full...) kept uncompressed; readers take either


class RotatingFile:
    """The file a log driver appends to; before a write would take it past `max_size` (0:
    unbounded) it is rotated (`rotate`) and reopened. Shared by json-file and local."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1, compress: bool = False) -> None:
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self.compress = compress
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self._fd).st_size

    def fits(self, n: int) -> bool:
        """Whether `n` more bytes stay within max-size (the caller then writes them at once)."""
        return not self.max_size or self.size + n <= self.max_size

    def append(self, data: bytes) -> None:
        if self.max_size and self.size and self.size + len(data) > self.max_size:
            os.close(self._fd)
            rotate(self.path, self.max_file, self.compress)
            self._open()
        os.write(self._fd, data)
        self.size += len(data)

    def close(self) -> None:
        os.close(self._fd)


def log_files(path: str) -> list[str]:
    """The rotated files (`.N` or `.N.gz`), oldest first, then the live one."""
    d, base = os.path.split(path)
    rotated: dict[int, str] = {}
    try:
        names = os.listdir(d or ".")
    except OSError:
        names = []
    for n in names:
        if n.startswith(base + "."):
            suffix = n[len(base) + 1:]
            gz = suffix.endswith(".gz")
            if gz:
                suffix = suffix[:-3]
            if suffix.isdigit():
                i = int(suffix)
                if not gz or i not in rotated:  # both: the plain one is complete, the .gz too
                    rotated[i] = os.path.join(d, n)
    return [rotated[i] for i in sorted(rotated, reverse=True)] + [path]


def open_log(p: str) -> Any:
    """A rotated or live log file for reading, gzip or not."""
    return gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")


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
            with open_log(p) as f:
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


def merge_log_config(host: dict[str, Any], daemon_driver: str, daemon_opts: dict[str, str] | None) -> None:
    """dockerd's mergeAndVerifyLogConfig, at create: a LogConfig without a Type gets the
    daemon's `log-driver`; the daemon's `log-opts` fill what a LogConfig of that same driver
    leaves out; then Docker's checks (a 400 with dockerd's message)."""
    lc = host.get("LogConfig") or {}
    default = daemon_driver or "json-file"
    typ = lc.get("Type") or default
    cfg = {str(k): str(v) for k, v in (lc.get("Config") or {}).items()}
    if typ == default:
        for k, v in (daemon_opts or {}).items():
            cfg.setdefault(k, v)
    host["LogConfig"] = {"Type": typ, "Config": cfg}
    validate(host["LogConfig"])
