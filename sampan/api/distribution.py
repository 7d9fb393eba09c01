"""Distribution routes: pull (`POST /images/create?fromImage=`, called from api/images),
`POST /images/{name}/push`, `POST /auth`, `GET /images/search`, `GET /distribution/{name}/json`.

Pull and push answer a plain error status when they fail before any progress (unknown image,
bad reference, unauthorized), then stream Docker's JSON progress messages; a later failure
is the stream's last message (`{"error": ..., "errorDetail": {"message": ...}}`), as Docker.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable

from .. import errors
from ..distribution.auth import Credentials, decode_registry_auth
from .http import Request, Response, Router, json_response


def service(req: Request) -> Any:
    """The engine's DistributionService (made on first use if the engine has none yet)."""
    engine = req.app.engine
    svc = getattr(engine, "distribution", None)
    if svc is None:
        from ..distribution.service import new_service
        svc = new_service(engine)
        engine.distribution = svc
    return svc


def _creds(req: Request) -> Credentials:
    return decode_registry_auth(req.headers.get("x-registry-auth"))


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))


async def stream_job(req: Request, job: Callable[[Any], Any]) -> None:
    """Run `job(reporter)` in a thread, streaming what it reports as JSON lines."""
    from ..distribution.progress import Reporter

    loop = asyncio.get_running_loop()
    q: asyncio.Queue[dict] = asyncio.Queue()
    reporter = Reporter(lambda m: loop.call_soon_threadsafe(q.put_nowait, m))
    fut = loop.run_in_executor(None, job, reporter)
    w = await req.start_stream("application/json")
    getter: asyncio.Future | None = None
    try:
        while True:
            getter = asyncio.ensure_future(q.get())
            done, _ = await asyncio.wait({getter, fut}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await w.write_json(getter.result())
                getter = None
                continue
            getter.cancel()
            getter = None
            await asyncio.sleep(0)  # messages scheduled just before the job ended
            while not q.empty():
                await w.write_json(q.get_nowait())
            break
        try:
            fut.result()
        except errors.SampanError as e:
            await w.write_json({"errorDetail": {"message": str(e)}, "error": str(e)})
        except Exception as e:  # noqa: BLE001 - the stream carries it
            await w.write_json({"errorDetail": {"message": f"internal error: {e}"},
                                "error": f"internal error: {e}"})
    except ConnectionError:
        pass  # the client went away; the job finishes on its own
    finally:
        if getter is not None:
            getter.cancel()
        await w.end()


async def pull(req: Request, from_image: str) -> None:
    """The `fromImage` branch of POST /images/create."""
    svc = service(req)
    tag = req.q("tag") or None
    platform = req.q("platform") or None
    creds = _creds(req)
    from .. import reference as refs
    ref = refs.parse(from_image)
    if ref.name_only and not tag:
        await stream_job(req, lambda rep: svc.pull_all_tags(from_image, platform, creds, rep))
        return
    plan = await _run(svc.prepare_pull, from_image, tag, platform, creds)
    await stream_job(req, lambda rep: svc.run_pull(plan, rep))


async def push(req: Request) -> Response | None:
    svc = service(req)
    items = await _run(svc.prepare_push, req.match["name"], req.q("tag") or None)
    creds = _creds(req)
    await stream_job(req, lambda rep: svc.run_push(items, creds, rep))
    return None


async def auth(req: Request) -> Response:
    body = await req.json({}) or {}
    if not isinstance(body, dict):
        raise errors.InvalidParameter("invalid auth config: expected a JSON object")
    for key in ("username", "password", "auth", "email", "serveraddress", "identitytoken",
                "registrytoken"):
        if body.get(key) is not None and not isinstance(body[key], str):
            kind = {bool: "bool", int: "number", float: "number", list: "array", dict: "object"}.get(type(body[key]), "value")
            raise errors.InvalidParameter(f"json: cannot unmarshal {kind} into "
                                          f"Go struct field AuthConfig.{key} of type string")
    creds = Credentials(str(body.get("username") or ""), str(body.get("password") or ""),
                        str(body.get("identitytoken") or ""), str(body.get("registrytoken") or ""))
    out = await _run(service(req).login, creds, str(body.get("serveraddress") or ""))
    return json_response(out)


async def search(req: Request) -> Response:
    term = req.q("term") or ""
    limit = req.q_int("limit", 25) or 25
    out = await _run(service(req).search, term, limit, req.filters(), _creds(req))
    return json_response(out)


async def inspect(req: Request) -> Response:
    return json_response(await _run(service(req).inspect, req.match["name"], _creds(req)))


def register(router: Router) -> None:
    router.add("POST", "/auth", auth)
    router.add("GET", "/images/search", search)
    router.add("POST", "/images/{name:.*}/push", push)
    router.add("GET", "/distribution/{name:.*}/json", inspect)
