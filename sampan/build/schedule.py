"""Stages that do not depend on each other build at the same time; their output still reads
as the classic builder's, one stage after another in Dockerfile order.

Each stage writes to its own Progress whose messages pass straight through while it is the
earliest unfinished stage, and are held back otherwise; when a stage finishes, the next
one's held messages are released. A stage starts once the stages it uses (FROM <stage>,
COPY --from=<stage>) are built; the first failure cancels the others.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable


class OrderedOutput:
    def __init__(self, emit: Callable[[dict[str, Any]], None], order: list[int]) -> None:
        self._emit = emit
        self._order = list(order)
        self._pos = 0
        self._held: dict[int, list[dict[str, Any]]] = {i: [] for i in order}
        self._done: set[int] = set()
        self._lock = threading.Lock()  # pull progress arrives from worker threads

    def _current(self) -> int | None:
        return self._order[self._pos] if self._pos < len(self._order) else None

    def emit(self, stage: int, msg: dict[str, Any]) -> None:
        with self._lock:
            if self._current() == stage:
                self._emit(msg)
            else:
                self._held.setdefault(stage, []).append(msg)

    def finish(self, stage: int) -> None:
        with self._lock:
            self._done.add(stage)
            while self._current() is not None and self._current() in self._done:
                self._pos += 1
                nxt = self._current()
                if nxt is not None:
                    for m in self._held.pop(nxt, []):
                        self._emit(m)

    def flush(self) -> None:
        """Everything held, in stage order (a failed build shows what each stage did)."""
        with self._lock:
            for i in self._order[self._pos:]:
                for m in self._held.pop(i, []):
                    self._emit(m)
            self._pos = len(self._order)


async def run_stages(order: list[int], deps: dict[int, set[int]],
                     build: Callable[[int], Awaitable[None]]) -> None:
    built = {i: asyncio.Event() for i in order}

    async def one(i: int) -> None:
        for d in sorted(deps.get(i, ())):
            if d in built:
                await built[d].wait()
        await build(i)
        built[i].set()

    tasks = [asyncio.ensure_future(one(i)) for i in order]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in tasks:  # the first failure in Dockerfile order is the one reported
            if t in done and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        pending = [t for t in tasks if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
