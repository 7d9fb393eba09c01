"""Volume routes (HTTP only: parse, call the volume service, serialise)."""

from __future__ import annotations

from ..errors import InvalidParameter
from .http import Request, Response, Router, empty, json_response


def _volumes(req: Request):
    return req.app.engine.volumes


async def list_volumes(req: Request) -> Response:
    return json_response(_volumes(req).list(req.filters()))


async def create(req: Request) -> Response:
    body = await req.json({}) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid volume create body: expected an object")
    name = body.get("Name") or ""
    if not isinstance(name, str):
        raise InvalidParameter("invalid volume name")
    return json_response(_volumes(req).create(name, body.get("Driver") or "",
                                              body.get("DriverOpts"), body.get("Labels")), 201)


async def inspect(req: Request) -> Response:
    return json_response(_volumes(req).inspect(req.match["name"]))


async def remove(req: Request) -> Response:
    _volumes(req).remove(req.match["name"], force=req.q_bool("force"))
    return empty(204)


async def prune(req: Request) -> Response:
    return json_response(_volumes(req).prune(req.filters()))


def register(router: Router) -> None:
    router.add("GET", "/volumes", list_volumes)
    router.add("POST", "/volumes/create", create)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", remove)
