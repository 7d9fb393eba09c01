"""`GET /events`: replay of stored events (`since`/`until`), then the live feed, as JSON lines."""

from __future__ import annotations

import time

from ..errors import InvalidParameter
from ..events import EventFilter
from ..events.filters import parse_time_ns
from .http import Request, Response, Router

IDLE_CHECK = 1.0  # how often an idle stream looks whether its client went away


async def get_events(req: Request) -> Response | None:
    bus = req.app.engine.events
    since = parse_time_ns(req.q("since"))
    until = parse_time_ns(req.q("until"))
    if until and since > until:
        raise InvalidParameter(f"`since` time ({req.q('since')}) cannot be after `until` time ({req.q('until')})")
    filt = EventFilter(req.filters())
    # Subscribe before the replay, so nothing emitted between the two is lost; events in both
    # are dropped from the live side by time.
    with bus.subscribe(filt) as sub:
        buffered = bus.replay(since, until, filt) if (since or until) else []
        last = buffered[-1]["timeNano"] if buffered else 0
        w = await req.start_stream("application/json")
        try:
            for ev in buffered:
                await w.write_json(ev)
            if until and until <= time.time_ns():
                return None  # only past events were asked for
            while True:
                timeout = IDLE_CHECK
                if until:
                    timeout = min(timeout, max(0.0, (until - time.time_ns()) / 1e9))
                ev = await sub.get(timeout)
                if ev is None:
                    if (until and time.time_ns() >= until) or w.is_closing():
                        return None
                    continue
                batch = [ev]
                while not sub.queue.empty():  # what queued meanwhile, without a wait each
                    batch.append(sub.queue.get_nowait())
                for ev in batch:
                    if ev["timeNano"] <= last:
                        continue
                    if until and ev["timeNano"] > until:
                        return None
                    await w.write_json(ev)
        except ConnectionError:
            return None
        finally:
            try:
                await w.end()
            except Exception:  # noqa: BLE001 - the client is gone
                pass


def register(router: Router) -> None:
    router.add("GET", "/events", get_events)
