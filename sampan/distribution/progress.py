"""Docker's JSON progress messages (jsonmessage): what pull and push report, and how often."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

Emit = Callable[[dict[str, Any]], None]

_UNITS = ["B", "kB", "MB", "GB", "TB"]


def human(n: float) -> str:
    """Docker's HumanSize: decimal units, 3 significant digits (`1.23MB`)."""
    i = 0
    while n >= 1000 and i < len(_UNITS) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.3g}{_UNITS[i]}"


def bar(current: int, total: int, width: int = 50) -> str:
    """`[=====>      ]  1.2MB/3.4MB` as Docker's JSONProgress.String draws it."""
    if total <= 0:
        return f"{human(current):>8}"
    pct = min(max(current / total, 0.0), 1.0)
    filled = int(pct * width)
    arrow = "=" * max(filled - 1, 0) + (">" if filled else "")
    return f"[{arrow.ljust(width)}] {human(current):>8}/{human(total)}"


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def status(text: str, id_: str | None = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"status": text}
    if id_ is not None:
        m["progressDetail"] = extra.pop("detail", {})
        m["id"] = id_
    m.update(extra)
    return m


class Reporter:
    """Thread-safe emitter that rate-limits the byte-count messages of each id."""

    def __init__(self, emit: Emit | None, interval: float = 0.1) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self.interval = interval

    def __call__(self, msg: dict[str, Any]) -> None:
        if self._emit is None:
            return
        with self._lock:
            self._emit(msg)

    def progress(self, verb: str, id_: str, current: int, total: int, force: bool = False) -> None:
        if self._emit is None:
            return
        now = time.monotonic()
        key = verb + id_
        if not force and now - self._last.get(key, 0.0) < self.interval and current < total:
            return
        self._last[key] = now
        self({"status": verb, "progressDetail": {"current": current, "total": total},
              "progress": bar(current, total), "id": id_})
