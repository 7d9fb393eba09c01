"""System routes: /_ping, /version, /info."""

from __future__ import annotations

from .http import Request, Response, Router, json_response


async def ping(req: Request) -> Response:
    return Response(200, b"OK", {"Cache-Control": "no-cache, no-store, must-revalidate",
                                 "Pragma": "no-cache", "Swarm": "inactive"}, "text/plain; charset=utf-8")


async def version(req: Request) -> Response:
    from ..engine.sysinfo import version as v
    return json_response(v())


async def info(req: Request) -> Response:
    return json_response(req.app.engine.info())


def register(router: Router) -> None:
    router.add("GET", "/_ping", ping)
    router.add("HEAD", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
