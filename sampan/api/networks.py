"""Network routes (HTTP only: parse, call the engine's network service, serialise)."""

from __future__ import annotations

from .http import Request, Response, Router, empty, json_response


def _nets(req: Request):
    return req.app.engine.networks


async def list_networks(req: Request) -> Response:
    return json_response(_nets(req).list(req.filters()))


async def inspect(req: Request) -> Response:
    return json_response(_nets(req).inspect(req.match["id"]))


async def create(req: Request) -> Response:
    return json_response(await _nets(req).create(await req.json()), 201)


async def remove(req: Request) -> Response:
    await _nets(req).remove(req.match["id"])
    return empty(204)


async def connect(req: Request) -> Response:
    await _nets(req).connect(req.match["id"], await req.json())
    return Response(200)


async def disconnect(req: Request) -> Response:
    await _nets(req).disconnect(req.match["id"], await req.json())
    return Response(200)


async def prune(req: Request) -> Response:
    return json_response(await _nets(req).prune(req.filters()))


def register(router: Router) -> None:
    router.add("GET", "/networks", list_networks)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id:[^/]+}", inspect)
    router.add("DELETE", "/networks/{id:[^/]+}", remove)
    router.add("POST", "/networks/{id:[^/]+}/connect", connect)
    router.add("POST", "/networks/{id:[^/]+}/disconnect", disconnect)
