"""A container's filesystem over HTTP: archive (cp), export, changes (diff), commit, and
`/system/df` (HTTP only: the logic is in sampan.containerfs and sampan.volumes)."""

from __future__ import annotations

import base64
import json

from ..errors import InvalidParameter
from .http import Request, Response, Router, empty, json_response

STAT_HEADER = "X-Docker-Container-Path-Stat"


def _fs(req: Request):
    return req.app.engine.containerfs


def _stat_header(st: dict) -> str:
    return base64.b64encode(json.dumps(st, separators=(",", ":")).encode()).decode()


def _path(req: Request) -> str:
    path = req.q("path")
    if not path:
        raise InvalidParameter("path is required")  # Docker: "Bad parameter"
    return path


async def archive_head(req: Request) -> Response:
    st = await _fs(req).stat(req.match["id"], _path(req))
    return Response(200, b"", {STAT_HEADER: _stat_header(st)}, "application/json")


async def archive_get(req: Request) -> Response | None:
    async with _fs(req).archive(req.match["id"], _path(req)) as (st, chunks, ok):
        w = await req.start_stream("application/x-tar", headers={STAT_HEADER: _stat_header(st)})
        await _pump(w, chunks, ok)
    return None


async def _pump(w, chunks, ok) -> None:
    async for data in chunks:
        await w.write(data)
    if not await ok():
        # The tar is cut short: close without the final chunk, so the client sees an error
        # instead of a well-formed, truncated archive.
        raise ConnectionError("container filesystem worker failed mid-stream")
    await w.end()


async def archive_put(req: Request) -> Response:
    await _fs(req).extract(req.match["id"], _path(req), req.stream(1 << 20),
                           copy_uid_gid=req.q_bool("copyUIDGID"))
    return Response(200, b"", content_type="text/plain")


async def export(req: Request) -> Response | None:
    async with _fs(req).export(req.match["id"]) as (chunks, ok):
        w = await req.start_stream("application/octet-stream")
        await _pump(w, chunks, ok)
    return None


async def changes(req: Request) -> Response:
    return json_response(await _fs(req).changes(req.match["id"]) or None)


async def commit(req: Request) -> Response:
    body = await req.json(None)
    if body is not None and not isinstance(body, dict):
        raise InvalidParameter("invalid container config: expected an object")
    cid = req.q("container") or ""
    if not cid:
        raise InvalidParameter("container is required")
    image_id = await _fs(req).commit(
        cid, repo=req.q("repo", "") or "", tag=req.q("tag", "") or "",
        author=req.q("author", "") or "", comment=req.q("comment", "") or "",
        changes=[ln for c in req.query.get("changes", []) for ln in c.splitlines() if ln.strip()], pause=req.q_bool("pause", True),
        config=body or None)
    return json_response({"Id": image_id}, 201)


async def system_df(req: Request) -> Response:
    from ..containerfs.df import disk_usage
    types = set(req.query.get("type", [])) or None
    return json_response(await disk_usage(req.app.engine, types))


async def build_prune(req: Request) -> Response:
    """Until the builder exists there is no build cache: `docker system prune` calls this."""
    return json_response({"CachesDeleted": None, "SpaceReclaimed": 0})


def register(router: Router) -> None:
    # HEAD first: the router would otherwise hand HEAD to the GET handler.
    router.add("HEAD", "/containers/{id}/archive", archive_head)
    router.add("GET", "/containers/{id}/archive", archive_get)
    router.add("PUT", "/containers/{id}/archive", archive_put)
    router.add("GET", "/containers/{id}/export", export)
    router.add("GET", "/containers/{id}/changes", changes)
    router.add("POST", "/commit", commit)
    router.add("GET", "/system/df", system_df)
    if router.resolve("POST", "/build/prune")[0] is None:  # the builder's own route wins
        router.add("POST", "/build/prune", build_prune)
