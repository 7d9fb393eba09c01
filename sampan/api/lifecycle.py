"""`/containers/{id}/pause`, `/unpause`, `/top`."""

from __future__ import annotations

from ..engine import lifecycle
from .http import Request, Response, Router, empty, json_response


async def pause(req: Request) -> Response:
    await lifecycle.pause(req.app.engine, req.match["id"])
    return empty(204)


async def unpause(req: Request) -> Response:
    await lifecycle.unpause(req.app.engine, req.match["id"])
    return empty(204)


async def top(req: Request) -> Response:
    return json_response(await lifecycle.top(req.app.engine, req.match["id"], req.q("ps_args")))


def register(router: Router) -> None:
    router.add("POST", "/containers/{id}/pause", pause)
    router.add("POST", "/containers/{id}/unpause", unpause)
    router.add("GET", "/containers/{id}/top", top)
