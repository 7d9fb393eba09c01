"""Reading a container's log (json-file or local, rotated files plain or gzip) for
`GET /containers/{id}/logs` and attach's `logs=1`.

The files are read in 1 MiB chunks in a worker thread, which parses a whole chunk at once
(json-file: one `json.loads` of the chunk's lines as an array; local: fixed binary headers)
and renders it straight into the bytes the client gets: Docker's 8-byte stream frames (or
the raw text on a tty), the timestamp prefix, the stream and since/until filters. The event
loop then writes a chunk in one go instead of a frame at a time, and memory stays bounded by
the chunk whatever the log's size. `--tail` walks back from the end (json-file: newlines;
local: the records' trailing lengths) and reads only what it needs, newest file first.

`--since` skips a rotated file whose last write (its mtime, kept through compression) is
older. A follower keeps its open file across a rotation, reads it to its end, then moves on
to the new file.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, AsyncIterator, Callable, Iterable, Iterator

from ..monitor import locallog
from ..monitor.logfile import parse_rfc3339_nano, rfc3339_nano
from ..monitor.logrotate import log_files, open_log

CHUNK = 1 << 20
FOLLOW_POLL = 0.1
_HDR = {1: b"\x01\x00\x00\x00", 2: b"\x02\x00\x00\x00"}

# An entry: (stream 1|2, time ns or 0 when not parsed yet, data, time text or None).
Entry = tuple[int, int, bytes, Any]


# -- parsing ------------------------------------------------------------------------------------

def _json_objs(lines: list[bytes]) -> list[Any]:
    try:
        return json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:  # a damaged line (or an empty one): parse one by one, skip the bad
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def parse_json(buf: bytes) -> tuple[list[Entry], int]:
    """json-file entries of the complete lines in `buf`; (entries, bytes consumed)."""
    end = buf.rfind(b"\n") + 1
    if not end:
        return [], 0
    lines = buf[:end].split(b"\n")
    lines.pop()
    out = []
    for o in _json_objs(lines):
        if isinstance(o, dict):
            out.append((2 if o.get("stream") == "stderr" else 1, 0,
                        str(o.get("log", "")).encode("utf-8", "surrogateescape"), o.get("time") or ""))
    return out, end


def parse_local(buf: bytes) -> tuple[list[Entry], int]:
    return locallog.parse(buf)


class Filter:
    """Which entries a request wants and how they are written."""

    def __init__(self, stdout: bool, stderr: bool, since: float, until: float,
                 timestamps: bool, tty: bool | None) -> None:
        self.want = {1: stdout, 2: stderr}
        self.since = int(since * 1e9) if since else 0
        self.until = int(until * 1e9) if until else 0
        self.timestamps = timestamps
        self.tty = tty

    def _time(self, e: Entry) -> int:
        if e[1]:
            return e[1]
        try:
            return parse_rfc3339_nano(e[3]) if e[3] else 0
        except ValueError:
            return 0

    def select(self, entries: Iterable[Entry]) -> list[tuple[int, bytes]]:
        """(stream, data) pairs, timestamps prefixed, filtered."""
        want, since, until, ts = self.want, self.since, self.until, self.timestamps
        out = []
        last_sec, prefix = -1, b""
        for e in entries:
            if not want[e[0]]:
                continue
            if since or until:
                t = self._time(e)
                if (since and t < since) or (until and t > until):
                    continue
            data = e[2]
            if ts:
                if e[3] is not None:
                    data = e[3].encode() + b" " + data
                else:
                    sec, frac = divmod(e[1], 1_000_000_000)
                    if sec != last_sec:  # the date part once a second, not once a line
                        last_sec, prefix = sec, rfc3339_nano(sec * 1_000_000_000)[:-11].encode()
                    data = b"%s.%09dZ %s" % (prefix, frac, data)
            out.append((e[0], data))
        return out

    def render(self, entries: Iterable[Entry]) -> bytes:
        pairs = self.select(entries)
        if self.tty:
            return b"".join(d for _, d in pairs)
        hdr = _HDR
        return b"".join(hdr[s] + len(d).to_bytes(4, "big") + d for s, d in pairs)

    def past_until(self, entries: list[Entry]) -> bool:
        return bool(self.until and entries and self._time(entries[-1]) > self.until)


# -- files ----------------------------------------------------------------------------------------

class LogFiles:
    """A container's log files for one format: whole reads, tails and a live follower."""

    def __init__(self, path: str, driver: str) -> None:
        self.path = path
        self.local = driver == "local"
        self.parse = parse_local if self.local else parse_json
        self.f: Any = None       # the live file, open from the first read on
        self.buf = b""           # an incomplete entry at the end of what was read

    # whole files, in order
    def _read_all(self, f: Any) -> Iterable[list[Entry]]:
        rest = b""
        while True:
            data = f.read(CHUNK)
            if not data:
                break
            buf = rest + data if rest else data
            entries, used = self.parse(buf)
            rest = buf[used:]
            if len(rest) > locallog.MAX_RECORD * 2:  # garbage that never parses: skip it
                rest = b""
            if entries:
                yield entries

    def rotated(self, since_ns: int = 0) -> list[str]:
        out = []
        for p in log_files(self.path)[:-1]:
            try:
                if since_ns and os.stat(p).st_mtime_ns < since_ns:
                    continue  # its last write is older than `since`: nothing in it is wanted
            except FileNotFoundError:
                continue
            out.append(p)
        return out

    def iter_rotated(self, since_ns: int = 0) -> Iterable[list[Entry]]:
        for p in self.rotated(since_ns):
            try:
                with open_log(p) as f:
                    yield from self._read_all(f)
            except (FileNotFoundError, OSError, EOFError):
                continue  # rotated away meanwhile, or a damaged gzip

    def open_live(self) -> None:
        try:
            self.f = open(self.path, "rb")
        except FileNotFoundError:
            self.f = None
        self.buf = b""

    def read_live(self) -> Iterable[list[Entry]]:
        """What the live file holds past the last read (following rotations)."""
        if self.f is None:
            self.open_live()
            if self.f is None:
                return
        yield from self._read_more()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        fst = os.fstat(self.f.fileno())
        if st.st_ino != fst.st_ino or st.st_size < self.f.tell():
            # Rotated (a new file) or truncated: finish the old one, start the new from 0.
            yield from self._read_more()
            self.f.close()
            self.open_live()
            if self.f is not None:
                yield from self._read_more()

    def _read_more(self) -> Iterable[list[Entry]]:
        rest = self.buf
        while True:
            data = self.f.read(CHUNK)
            if not data:
                break
            buf = rest + data if rest else data
            entries, used = self.parse(buf)
            rest = buf[used:]
            if entries:
                yield entries
        self.buf = rest

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None

    # tails
    def tail(self, n: int) -> list[Entry]:
        """The last `n` entries over all files, oldest first; the live file is left open
        right after its last complete entry, for a follower."""
        self.open_live()
        got: list[Entry] = []
        if self.f is not None:
            got, end = self._tail_plain(self.f, n)
            self.f.seek(end)  # an entry still being written there is read whole later
            self.buf = b""
        for p in reversed(self.rotated()):
            if len(got) >= n:
                break
            try:
                with open_log(p) as f:
                    data = f.read()
            except (OSError, EOFError):
                continue
            entries, _ = self.parse(data)
            got = entries[-(n - len(got)):] + got
        return got[-n:] if n else []

    def _tail_plain(self, f: Any, n: int) -> tuple[list[Entry], int]:
        """(the last `n` complete entries of a plain file, the offset just past them)."""
        f.seek(0, os.SEEK_END)
        size = f.tell()
        span = 64 * 1024
        while True:
            span = min(span, size)
            f.seek(size - span)
            data = f.read(span)
            at_start = span == size
            if self.local:
                recs, ok = _walk_back(data, n, at_start)
                if ok is None:
                    # The end is not a record boundary (a write in progress, or damage):
                    # the slow way, from the start, which also finds where the last whole
                    # record ends.
                    f.seek(0)
                    entries, end = parse_local(f.read())
                    return (entries[-n:] if n else []), end
                if ok:
                    return recs, size
            else:
                cut = data.rfind(b"\n") + 1
                body = data[:cut]
                if at_start or body.count(b"\n") > n:
                    if not at_start:
                        body = body[body.find(b"\n") + 1:]  # the first line may be cut
                    end = size - span + cut
                    return (parse_json(body)[0][-n:] if n else []), end
            if at_start:
                return [], 0
            span *= 4


def _walk_back(buf: bytes, n: int, at_start: bool) -> tuple[list[Entry], bool | None]:
    """The last `n` local records in `buf` (a file's suffix) by their trailers: (records
    oldest first, True when done / False when more of the file is needed / None if damaged)."""
    hs = locallog.HEADER.size
    out = []
    pos = len(buf)
    while pos > 0 and len(out) < n:
        if pos < locallog.OVERHEAD:
            break
        ln = locallog.TRAILER.unpack_from(buf, pos - 4)[0]
        start = pos - 4 - ln - hs
        if ln > locallog.MAX_RECORD:
            return [], None
        if start < 0:
            break
        hn, stream, _f, _r, ns = locallog.HEADER.unpack_from(buf, start)
        if hn != ln or stream not in (1, 2):
            return [], None
        out.append((stream, ns, bytes(buf[start + hs:pos - 4]), None))
        pos = start
    out.reverse()
    if len(out) >= n or (pos == 0 and at_start):
        return out, True
    if at_start:
        return [], None
    return out, False


# -- the reader the API uses -----------------------------------------------------------------------

def log_path(c: Any) -> str:
    """Where a container's driver writes: json-file `<dir>/<id>-json.log`, local
    `<dir>/local-logs/container.log` (as dockerd lays them out)."""
    if _driver(c) == "local":
        return os.path.join(c.dir, "local-logs", "container.log")
    return os.path.join(c.dir, f"{c.id}-json.log")


def _driver(c: Any) -> str:
    return ((c.host_config or {}).get("LogConfig") or {}).get("Type") or "json-file"


def _source(c: Any) -> LogFiles:
    """The files to read and their format. A `local` container created before sampan had
    the local driver was written as json-file: read that while no local file exists."""
    driver = _driver(c)
    path = log_path(c)
    if driver == "local" and not os.path.exists(path):
        old = os.path.join(c.dir, f"{c.id}-json.log")
        if os.path.exists(old):
            return LogFiles(old, "json-file")
    return LogFiles(path, driver)


async def read_logs(c: Any, running: Callable[[], bool], *, stdout: bool, stderr: bool,
                    follow: bool, since: float, until: float, tail: int | None,
                    timestamps: bool, tty: bool | None = None) -> AsyncIterator[Any]:
    """The container's log as the API sends it: with `tty` given, chunks of bytes ready to
    write (stream frames unless `tty`); without it, (stream, data) pairs as before."""
    from ..errors import InvalidParameter

    if _driver(c) not in ("json-file", "local"):
        raise InvalidParameter("configured logging driver does not support reading")
    flt = Filter(stdout, stderr, since, until, timestamps, tty)
    files = _source(c)
    loop = asyncio.get_running_loop()
    passed_until = False

    def out(entries: list[Entry]) -> Any:
        return flt.render(entries) if tty is not None else flt.select(entries)

    def next_batch(it: Iterator[list[Entry]]) -> tuple[Any, bool] | None:
        """(rendered batch, whether `until` was passed) or None at the end; runs in a thread,
        so reading and rendering stay off the event loop."""
        try:
            entries = next(it)
        except StopIteration:
            return None
        return out(entries), flt.past_until(entries)

    async def drain(batches: Iterable[list[Entry]]) -> AsyncIterator[Any]:
        """What the caller yields for each batch: pairs one by one, or whole rendered chunks.
        Stops early, setting `passed_until`, once the entries go past `until`."""
        nonlocal passed_until
        it = iter(batches)
        while True:
            res = await loop.run_in_executor(None, next_batch, it)
            if res is None:
                return
            batch, done = res
            if batch:
                if tty is None:
                    for pair in batch:
                        yield pair
                else:
                    yield batch
            if done:
                passed_until = True
                return

    try:
        if tail is not None and tail >= 0:
            entries = await loop.run_in_executor(None, files.tail, tail)
            async for item in drain([entries]):
                yield item
        else:
            def backlog() -> Iterable[list[Entry]]:
                yield from files.iter_rotated(flt.since)
                files.open_live()
                yield from files.read_live()
            async for item in drain(backlog()):
                yield item
            if passed_until:
                return
        if not follow:
            return
        while True:
            alive = running()  # read before the file, so the last lines are never missed
            async for item in drain(files.read_live()):
                yield item
            if passed_until:
                return
            if not alive or (flt.until and flt.until < time.time_ns()):
                return
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        files.close()


def read_all_sync(c: Any, stdout: bool, stderr: bool, tty: bool) -> Iterable[bytes]:
    """Attach's `logs=1`: everything logged so far, rendered, in chunks (blocking)."""
    if _driver(c) not in ("json-file", "local"):
        return
    flt = Filter(stdout, stderr, 0, 0, False, tty)
    files = _source(c)
    try:
        for entries in files.iter_rotated():
            yield flt.render(entries)
        files.open_live()
        for entries in files.read_live():
            yield flt.render(entries)
    finally:
        files.close()
