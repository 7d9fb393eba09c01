"""Reading a container's json-file log for `GET /containers/{id}/logs`."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Callable

from ..errors import InvalidParameter
from ..monitor.logfile import parse_rfc3339_nano
from ..monitor.logrotate import read_and_follow
from .container import Container

FOLLOW_POLL = 0.1


async def read_logs(c: Container, running: Callable[[], bool], *, stdout: bool, stderr: bool,
                    follow: bool, since: float, until: float, tail: int | None,
                    timestamps: bool) -> AsyncIterator[tuple[int, bytes]]:
    """(stream, data) pairs, stream 1 = stdout, 2 = stderr; with `follow`, until it stops."""
    if c.host_config.get("LogConfig", {}).get("Type") not in ("json-file", "local", "", None):
        raise InvalidParameter("configured logging driver does not support reading")
    want = {"stdout": stdout, "stderr": stderr}
    path = c.log_path

    def fmt(e: dict) -> tuple[int, bytes] | None:
        stream = e.get("stream", "stdout")
        if not want.get(stream, False):
            return None
        ts = e.get("time", "")
        if since or until:
            t = parse_rfc3339_nano(ts) / 1e9 if ts else 0
            if (since and t < since) or (until and t > until):
                return None
        data = e.get("log", "").encode()
        if timestamps:
            data = ts.encode() + b" " + data
        return (2 if stream == "stderr" else 1), data

    loop = asyncio.get_running_loop()
    # Rotated files (json-file max-size/max-file) first, then the live one; a follower
    # keeps its file across a rotation (monitor/logrotate.py).
    entries, fol = await loop.run_in_executor(None, read_and_follow, path)
    try:
        if tail is not None and tail >= 0:
            entries = entries[-tail:] if tail else []
        for e in entries:
            item = fmt(e)
            if item:
                yield item
        if not follow:
            return
        while True:
            alive = running()  # read before the file, so the last lines are never missed
            for e in fol.poll():
                item = fmt(e)
                if item:
                    yield item
            if not alive or (until and until < time.time()):
                return
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        fol.close()
