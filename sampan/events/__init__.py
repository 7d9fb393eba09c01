"""Events: what happened to containers, images, networks and volumes, in Docker's shapes.

- `EventService(db)`: `emit(type, action, actor_id, attributes)` records one event; the
  engine's hooks call the shortcuts `container(c, action, **attrs)` / `image(...)` /
  `network(...)` / `volume(...)`.
- Storage: an in-memory bounded ring (what live subscribers and recent `since` replays
  read) and an SQLite table bounded to `keep` rows (replays further back, across daemon
  restarts). Rows are written in batches: one transaction per event-loop turn, not per
  event, so a burst of events costs one commit.
- `subscribe()`: a `Subscription` whose queue is unbounded per client, so a slow reader
  loses nothing; the HTTP side writes as fast as the client reads.
- `filters.EventFilter`: Docker's `filters` semantics (daemon/events/filter.go).
- `emit` may be called from a worker thread (pull and push run in one): the event is then
  handed to the event loop's thread, where the ring, the subscribers' queues and the batched
  writes live, since none of them is thread-safe.
- `hooks`: the engine's call sites (network connect/disconnect at start and exit, volume
  mount/unmount, pull/push), so the core only carries one-line calls.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
import time
from typing import Any, Iterable

from .filters import EventFilter, validate_filters  # noqa: F401 - re-exported

log = logging.getLogger("sampan.events")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_nano INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events (time_nano);
"""

RING_SIZE = 4096      # events kept in memory
KEEP_ROWS = 100_000   # events kept in SQLite
TYPES = ("container", "image", "volume", "network", "daemon", "plugin", "node", "service",
         "secret", "config")


def message(type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None,
            time_nano: int | None = None, scope: str = "local") -> dict[str, Any]:
    """One event in Docker's JSON shape (API 1.45: the deprecated status/id/from fields too,
    filled for containers and images as dockerd's events.Log does)."""
    ns = time.time_ns() if time_nano is None else time_nano
    attrs = {str(k): str(v) for k, v in (attributes or {}).items() if v is not None}
    ev: dict[str, Any] = {}
    if type_ in ("container", "image"):
        ev["status"] = action
        ev["id"] = actor_id
        if type_ == "container" and attrs.get("image"):
            ev["from"] = attrs["image"]
    ev.update({"Type": type_, "Action": action, "Actor": {"ID": actor_id, "Attributes": attrs},
               "scope": scope, "time": ns // 1_000_000_000, "timeNano": ns})
    return ev


class Subscription:
    """A live feed: events matching `filt` are queued (unbounded) until read."""

    def __init__(self, bus: "EventService", filt: EventFilter | None) -> None:
        self._bus = bus
        self.filter = filt
        self.queue: asyncio.Queue[dict] = asyncio.Queue()

    def offer(self, ev: dict) -> None:
        if self.filter is None or self.filter.include(ev):
            self.queue.put_nowait(ev)

    async def get(self, timeout: float | None = None) -> dict | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    def close(self) -> None:
        self._bus._subs.discard(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventService:
    def __init__(self, db: Any = None, ring_size: int = RING_SIZE, keep: int = KEEP_ROWS) -> None:
        self.db = db
        self.keep = keep
        self._ring: collections.deque[dict] = collections.deque(maxlen=ring_size)
        self._subs: set[Subscription] = set()
        self._pending: list[dict] = []
        self._flush_scheduled = False
        self._written = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        if db is not None:
            db.migrate(SCHEMA)
            self.load_ring()

    # -- emitting --------------------------------------------------------------------------------
    def emit(self, type_: str, action: str, actor_id: str,
             attributes: dict[str, str] | None = None) -> dict[str, Any]:
        ev = message(type_, action, actor_id, attributes)
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread and not loop.is_closed():
            # From a worker thread: published on the loop's thread (its order there decides
            # timeNano's tie-breaking, as for any other event).
            loop.call_soon_threadsafe(self._publish, ev)
            return ev
        self._bind_loop()
        return self._publish(ev)

    def _bind_loop(self) -> None:
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._loop_thread = threading.get_ident()

    def _publish(self, ev: dict[str, Any]) -> dict[str, Any]:
        last = self._ring[-1]["timeNano"] if self._ring else 0
        if ev["timeNano"] <= last:
            # Keep times strictly increasing, so `since`/`until` replays are stable.
            ev["timeNano"] = last + 1
            ev["time"] = ev["timeNano"] // 1_000_000_000
        self._ring.append(ev)
        for s in list(self._subs):
            s.offer(ev)
        if self.db is not None:
            self._pending.append(ev)
            self._schedule_flush()
        return ev

    def container(self, c: Any, action: str, **extra: Any) -> dict[str, Any]:
        """A container event with dockerd's attributes: its labels, image and name."""
        attrs = dict((c.config or {}).get("Labels") or {})
        attrs["image"] = c.image
        attrs["name"] = c.name
        attrs.update({k: v for k, v in extra.items() if v is not None})
        return self.emit("container", action, c.id, attrs)

    def image(self, actor_id: str, action: str, name: str | None = None,
              labels: dict[str, str] | None = None) -> dict[str, Any]:
        """dockerd's LogImageEvent(id, refName, action): the actor is the image ID (or, for
        pull and push, the reference), `name` the reference the action was about."""
        attrs = dict(labels or {})
        attrs["name"] = name or actor_id
        return self.emit("image", action, actor_id, attrs)

    def network(self, net_id: str, action: str, name: str, type_: str = "bridge",
                **extra: Any) -> dict[str, Any]:
        return self.emit("network", action, net_id, dict({"name": name, "type": type_}, **extra))

    def volume(self, name: str, action: str, driver: str = "local", **extra: Any) -> dict[str, Any]:
        return self.emit("volume", action, name, dict({"driver": driver}, **extra))

    # -- storage ---------------------------------------------------------------------------------
    def _schedule_flush(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no loop (a worker thread, a unit test): write now
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        if not batch or self.db is None:
            return
        try:
            with self.db.transaction() as conn:
                conn.executemany("INSERT INTO events (time_nano, data) VALUES (?, ?)",
                                 [(e["timeNano"], json.dumps(e, separators=(",", ":"))) for e in batch])
                self._written += len(batch)
                if self._written >= 1000:  # trim now and then, not on every write
                    self._written = 0
                    conn.execute("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?",
                                 (self.keep,))
        except Exception:  # noqa: BLE001 - losing the stored copy must not fail the action
            log.exception("storing %d events", len(batch))

    # -- reading ---------------------------------------------------------------------------------
    def subscribe(self, filt: EventFilter | None = None) -> Subscription:
        self._bind_loop()
        s = Subscription(self, filt)
        self._subs.add(s)
        return s

    def replay(self, since_ns: int, until_ns: int, filt: EventFilter | None = None) -> list[dict]:
        """Stored events with since <= timeNano <= until (0: unbounded), oldest first."""
        until_ns = until_ns or (1 << 62)
        events: Iterable[dict]
        oldest = self._ring[0]["timeNano"] if self._ring else None
        if oldest is not None and since_ns >= oldest or self.db is None:
            events = [e for e in self._ring if since_ns <= e["timeNano"] <= until_ns]
        else:
            self.flush()
            rows = self.db.query("SELECT data FROM events WHERE time_nano >= ? AND time_nano <= ? "
                                 "ORDER BY seq", (since_ns, until_ns))
            events = [json.loads(r["data"]) for r in rows]
        return [e for e in events if filt is None or filt.include(e)]

    def load_ring(self) -> None:
        """At start-up: the newest stored events back into the ring (for `since` replays)."""
        if self.db is None:
            return
        rows = self.db.query("SELECT data FROM events ORDER BY seq DESC LIMIT ?", (self._ring.maxlen,))
        for r in reversed(rows):
            self._ring.append(json.loads(r["data"]))
