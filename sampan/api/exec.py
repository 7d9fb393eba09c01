"""Exec routes."""

from __future__ import annotations

from ..errors import Conflict, InvalidParameter
from ..monitor.process import Attach
from .http import Request, Response, Router, json_response

RAW = "application/vnd.docker.raw-stream"
MUX = "application/vnd.docker.multiplexed-stream"


async def create(req: Request) -> Response:
    body = await req.json()
    exec_id = req.app.engine.execs.create(req.match["id"], body)
    return json_response({"Id": exec_id}, 201)


async def start(req: Request) -> Response | None:
    execs = req.app.engine.execs
    body = await req.json(default={}) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid exec start config: expected a JSON object")
    e = execs.get(req.match["id"])
    if e.started:
        raise Conflict(f"Exec {e.id} has already been started")
    c = req.app.engine.containers.get(e.container_id)
    if not c.state.Running:
        raise Conflict(f"Container {c.id} is not running")
    tty = body.get("Tty")
    if body.get("Detach"):
        await execs.start(e.id, None, tty)
        return Response(200, b"", content_type="application/json")
    use_tty = bool(e.config.get("Tty")) or bool(tty)
    hj = await req.hijack(RAW if use_tty else MUX)
    att = Attach(hj.fd, bool(e.config.get("AttachStdin")), True, True, hj.leftover)
    hj.fd = -1
    try:
        await execs.start(e.id, att, tty)
    except Exception:  # the stream is already hijacked: nothing more can be said on it
        pass
    return None


async def inspect(req: Request) -> Response:
    return json_response(await req.app.engine.execs.inspect(req.match["id"]))


async def resize(req: Request) -> Response:
    await req.app.engine.execs.resize(req.match["id"], req.q_int("h", 0), req.q_int("w", 0))
    return Response(201, b"", content_type="text/plain")


def register(router: Router) -> None:
    router.add("POST", "/containers/{id}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect)
