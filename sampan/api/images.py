"""Image routes: create (import), load, get (save), json, inspect, history, tag, delete, prune.

Handlers parse, call `req.app.engine.images` (blocking work in a worker thread) and serialise.
Uploads are spooled to the data root's tmp/ first, so a failed upload changes nothing.
"""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .. import errors
from .. import reference as refs
from .http import Request, Response, Router, empty, json_response

_CHUNK = 1024 * 1024


async def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))


def _svc(req: Request) -> Any:
    return req.app.engine.images


def _tmp_dir(req: Request) -> Path:
    return Path(req.app.engine.config.tmp_dir)


async def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _event(req: Request, image_id: str, action: str, name: str | None = None) -> None:
    """Docker's image events (daemon.LogImageEvent): actor = image ID, `name` = the reference."""
    events = getattr(req.app.engine, "events", None)
    if events is not None:
        events.image(image_id, action, name or image_id)


async def create(req: Request) -> Response | None:
    """POST /images/create: `fromSrc=-` imports the body; `fromImage` pulls (api/distribution)."""
    from_image = req.q("fromImage")
    from_src = req.q("fromSrc")
    if from_image:
        from .distribution import pull
        await pull(req, from_image)
        return None
    if not from_src:
        raise errors.InvalidParameter("fromImage or fromSrc is required")
    if from_src != "-":
        raise errors.InvalidParameter("importing from a URL is not supported: use fromSrc=- with the tarball as body")
    repo = req.q("repo") or None
    tag = req.q("tag") or None
    if repo:
        refs.parse(repo)  # a bad name fails before the upload is read
    changes = [c for c in req.query.get("changes", []) if c]
    message = req.q("message") or ""
    platform = req.q("platform") or None
    from ..images import parse_platform
    parse_platform(platform)
    path = await req.spool(_tmp_dir(req))
    try:
        image_id = await _run(_svc(req).import_tar, path, repo, tag, changes, message, platform)
    finally:
        await _unlink(path)
    _event(req, image_id, "import")
    w = await req.start_stream("application/json")
    await w.write_json({"status": image_id})
    await w.end()
    return None


async def load(req: Request) -> Response | None:
    """POST /images/load: body is a `docker save` / OCI archive (maybe compressed)."""
    req.q_bool("quiet")  # validated; the reply is the same JSON stream either way
    path = await req.spool(_tmp_dir(req))
    try:
        messages = await _run(_svc(req).load, path)
    finally:
        await _unlink(path)
    for m in messages:
        ref = m.split(": ", 1)[-1]
        try:
            _event(req, _svc(req).lookup_id(ref), "load", ref)
        except errors.SampanError:
            pass
    w = await req.start_stream("application/json")
    for m in messages:
        await w.write_json({"stream": m + "\n"})
    await w.end()
    return None


async def _save(req: Request, names: list[str]) -> Response | None:
    # Written to tmp/ first so a missing image is a proper 404, not a broken tar stream.
    fd, name = tempfile.mkstemp(dir=_tmp_dir(req), prefix="image-save-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            await _run(_svc(req).save, names, f)
        for n in names:
            _event(req, _svc(req).lookup_id(n), "save", n)
        w = await req.start_stream("application/x-tar")
        with open(path, "rb") as f:
            loop = asyncio.get_running_loop()
            while True:
                chunk = await loop.run_in_executor(None, f.read, _CHUNK)
                if not chunk:
                    break
                await w.write(chunk)
        await w.end()
    finally:
        await _unlink(path)
    return None


async def get_many(req: Request) -> Response | None:
    """GET /images/get?names=a&names=b"""
    names = [n for v in req.query.get("names", []) for n in v.split(",") if n]
    if not names:
        raise errors.InvalidParameter("names is required")
    return await _save(req, names)


async def get_one(req: Request) -> Response | None:
    """GET /images/{name}/get"""
    return await _save(req, [req.match["name"]])


async def list_images(req: Request) -> Response:
    filters = req.filters()
    legacy = req.q("filter")  # API < 1.41: `filter=busybox` means reference=busybox
    if legacy:
        filters.setdefault("reference", []).append(legacy)
    out = await _run(_svc(req).list_images, req.q_bool("all"), filters)
    return json_response(out)


async def inspect(req: Request) -> Response:
    return json_response(await _run(_svc(req).inspect, req.match["name"]))


async def history(req: Request) -> Response:
    return json_response(await _run(_svc(req).history, req.match["name"]))


async def tag(req: Request) -> Response:
    repo = req.q("repo") or ""
    if not repo:
        raise errors.InvalidParameter("repository name is required")
    await _run(_svc(req).tag, req.match["name"], repo, req.q("tag") or None)
    new_ref = refs.familiar(f"{repo}:{req.q('tag') or 'latest'}")
    _event(req, _svc(req).lookup_id(req.match["name"]), "tag", new_ref)
    return empty(201)


async def delete(req: Request) -> Response:
    name = req.match["name"]
    try:
        image_id = _svc(req).lookup_id(name)
    except errors.SampanError:
        image_id = ""
    out = await _run(_svc(req).remove, name, req.q_bool("force"), req.q_bool("noprune"))
    for item in out:
        if "Untagged" in item:
            _event(req, image_id, "untag", item["Untagged"])
        elif "Deleted" in item:
            _event(req, item["Deleted"], "delete", item["Deleted"])
    return json_response(out)


async def prune(req: Request) -> Response:
    return json_response(await _run(_svc(req).prune, req.filters()))


def register(router: Router) -> None:
    from . import distribution
    # Fixed paths before the `{name:.*}` patterns they would otherwise be taken for; the
    # distribution routes (search, push, auth) are registered with the image routes.
    distribution.register(router)
    router.add("POST", "/images/create", create)
    router.add("POST", "/images/load", load)
    router.add("POST", "/images/prune", prune)
    router.add("GET", "/images/json", list_images)
    router.add("GET", "/images/get", get_many)
    router.add("GET", "/images/{name:.*}/get", get_one)
    router.add("GET", "/images/{name:.*}/json", inspect)
    router.add("GET", "/images/{name:.*}/history", history)
    router.add("POST", "/images/{name:.*}/tag", tag)
    router.add("DELETE", "/images/{name:.*}", delete)
