"""Network routes (HTTP only: parse, call the engine's network service, serialise).

The network events of these actions are logged here, after the service did the work, as
api/images.py does for image events: create/destroy (also for prune), and connect/disconnect
with the container's ID (connect only when the container runs: a stopped one is connected when
it starts, and that start logs it; disconnect always, as dockerd's DisconnectFromNetwork).
"""

from __future__ import annotations

from typing import Any

from .http import Request, Response, Router, empty, json_response


def _nets(req: Request):
    return req.app.engine.networks


def _event(req: Request, n: dict[str, Any], action: str, **extra: Any) -> None:
    events = getattr(req.app.engine, "events", None)
    if events is not None:
        events.network(n["Id"], action, n["Name"], n.get("Driver") or "bridge", **extra)


def _container_id(req: Request, body: Any) -> str | None:
    try:
        return req.app.engine.containers.get((body or {}).get("Container") or "").id
    except Exception:  # noqa: BLE001 - the service already answered for a bad reference
        return None


async def list_networks(req: Request) -> Response:
    return json_response(_nets(req).list(req.filters()))


async def inspect(req: Request) -> Response:
    return json_response(_nets(req).inspect(req.match["id"]))


async def create(req: Request) -> Response:
    out = await _nets(req).create(await req.json())
    _event(req, _nets(req).get(out["Id"]), "create")
    return json_response(out, 201)


async def remove(req: Request) -> Response:
    n = _nets(req).get(req.match["id"])
    await _nets(req).remove(req.match["id"])
    _event(req, n, "destroy")
    return empty(204)


async def connect(req: Request) -> Response:
    body = await req.json()
    n = _nets(req).get(req.match["id"])
    await _nets(req).connect(req.match["id"], body)
    cid = _container_id(req, body)
    if cid is not None and req.app.engine.containers.get(cid).state.Running:
        _event(req, n, "connect", container=cid)
    return Response(200)


async def disconnect(req: Request) -> Response:
    body = await req.json()
    n = _nets(req).get(req.match["id"])
    await _nets(req).disconnect(req.match["id"], body)
    cid = _container_id(req, body)
    if cid is not None:
        _event(req, n, "disconnect", container=cid)
    return Response(200)


async def prune(req: Request) -> Response:
    before = {n["Name"]: n for n in _nets(req).list({})}
    out = await _nets(req).prune(req.filters())
    for name in out.get("NetworksDeleted") or []:
        if name in before:
            _event(req, before[name], "destroy")
    return json_response(out)


def register(router: Router) -> None:
    router.add("GET", "/networks", list_networks)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id:[^/]+}", inspect)
    router.add("DELETE", "/networks/{id:[^/]+}", remove)
    router.add("POST", "/networks/{id:[^/]+}/connect", connect)
    router.add("POST", "/networks/{id:[^/]+}/disconnect", disconnect)
