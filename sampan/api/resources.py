"""Resource routes: `POST /containers/{id}/update` and `GET /containers/{id}/stats`."""

from __future__ import annotations

import asyncio

from ..errors import InvalidParameter
from .http import Request, Response, Router, json_response

STATS_INTERVAL = 1.0  # seconds between readings, as Docker's collector


async def update(req: Request) -> Response:
    from ..cgroups.manager import update_container
    body = await req.json()
    warnings = await update_container(req.app.engine, req.match["id"], body)
    return json_response({"Warnings": warnings or None})


async def stats(req: Request) -> Response | None:
    from ..cgroups.stats import with_previous
    eng = req.app.engine
    c = eng.containers.get(req.match["id"])
    stream = req.q_bool("stream", True)
    one_shot = req.q_bool("one-shot")
    if one_shot and stream:
        raise InvalidParameter("cannot have stream=true and one-shot=true")
    cg = eng.cgroups
    first = cg.stats(c)  # errors (no such cgroup) become a status, before the headers go out
    w = await req.start_stream("application/json")
    prev = None
    cur = first
    try:
        while True:
            if not one_shot:
                with_previous(cur, prev)
            # stream=false without one-shot: Docker primes precpu with one reading first, so
            # the answer's CPU % is over the last interval, not since the container started.
            if stream or one_shot or prev is not None or not c.state.Running:
                await w.write_json(cur)
                if not stream:
                    break
            prev = cur
            await asyncio.sleep(STATS_INTERVAL)
            if w.is_closing():
                return None  # the client went away
            cur = cg.stats(c) if c.id in {x.id for x in eng.containers.all()} else None
            if cur is None:
                break  # removed while we streamed
    except ConnectionError:
        return None
    await w.end()
    return None


def register(router: Router) -> None:
    router.add("POST", "/containers/{id}/update", update)
    router.add("GET", "/containers/{id}/stats", stats)
