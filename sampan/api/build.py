"""Build routes: `POST /build` (the classic builder, API 1.45), `POST /build/prune`,
`POST /build/cancel`.

The context tar is spooled to the data root's tmp/ first. As dockerd, an error before the
build has said anything (a bad Dockerfile, an unknown target) is a plain error status; once
the progress stream has started, an error is the stream's last message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from .. import errors
from .http import Request, Response, Router, json_response

log = logging.getLogger("sampan.build")
_BUILDS: dict[str, asyncio.Task] = {}


def _str_map(req: Request, name: str) -> dict[str, Any]:
    v = req.q_json(name, {}) or {}
    if not isinstance(v, dict) or not all(isinstance(x, (str, type(None))) for x in v.values()):
        raise errors.InvalidParameter(f"invalid {name}: expected a JSON object of strings")
    return v


def _registry_config(req: Request) -> dict[str, Any]:
    raw = req.headers.get("x-registry-config") or ""
    if not raw:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)) or b"{}")
    except (ValueError, TypeError):
        return {}  # as dockerd: an undecodable header means no credentials
    return data if isinstance(data, dict) else {}


def options(req: Request) -> Any:
    from ..build.builder import BuildOptions

    if req.q_bool("squash"):
        raise errors.InvalidParameter("squash is only supported with experimental mode")
    outputs = req.q("outputs")
    if outputs and outputs not in ("[]", "null"):
        raise errors.InvalidParameter("outputs are only supported with BuildKit")
    cache_from = req.q_json("cachefrom", []) or []
    if not isinstance(cache_from, list):
        raise errors.InvalidParameter("invalid cachefrom: expected a JSON list")
    extra_hosts = [h for v in req.query.get("extrahosts", []) for h in v.split(",") if h]
    labels = _str_map(req, "labels")
    return BuildOptions(
        dockerfile=req.q("dockerfile") or "Dockerfile",
        tags=[t for t in req.query.get("t", []) if t],
        build_args=_str_map(req, "buildargs"),
        labels={k: v or "" for k, v in labels.items()},
        target=req.q("target") or "",
        nocache=req.q_bool("nocache"),
        pull=req.q_bool("pull"),
        rm=req.q_bool("rm", True),
        forcerm=req.q_bool("forcerm"),
        quiet=req.q_bool("q"),
        network_mode=req.q("networkmode") or "",
        platform=req.q("platform") or "",
        cache_from=[str(c) for c in cache_from],
        extra_hosts=extra_hosts,
        memory=req.q_int("memory", 0) or 0,
        memswap=req.q_int("memswap", 0) or 0,
        cpushares=req.q_int("cpushares", 0) or 0,
        cpusetcpus=req.q("cpusetcpus") or "",
        cpuperiod=req.q_int("cpuperiod", 0) or 0,
        cpuquota=req.q_int("cpuquota", 0) or 0,
        shmsize=req.q_int("shmsize", 0) or 0,
        remote=req.q("remote") or "",
        registry_auth=_registry_config(req),
    )


async def build(req: Request) -> Response | None:
    from ..build.builder import Builder
    from ..build.progress import Progress, error_message
    from ..build.run import StepFailed

    engine = req.app.engine
    opts = options(req)
    if opts.platform:
        from ..images import parse_platform
        parse_platform(opts.platform)
    path: Path | None = None
    digest = ""
    t0 = time.monotonic()
    if not opts.remote or req.headers.get("content-length", "0") != "0":
        path, digest = await _spool_hashed(req, Path(engine.config.tmp_dir))
    log.debug("build context received in %.3f s", time.monotonic() - t0)
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[dict] = asyncio.Queue()
    progress = Progress(lambda m: loop.call_soon_threadsafe(q.put_nowait, m), quiet=opts.quiet)
    builder = Builder(engine, opts, progress, cache=_cache(engine))
    task = asyncio.ensure_future(builder.run(path if path and path.stat().st_size else None, digest))
    build_id = req.q("buildid") or ""
    if build_id:
        _BUILDS[build_id] = task
    try:
        return await _stream(req, task, q, error_message, StepFailed)
    finally:
        _BUILDS.pop(build_id, None)
        if path is not None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


async def _spool_hashed(req: Request, directory: Path) -> tuple[Path, str]:
    """The body to a temp file in tmp/, and its sha256 (the builder's context identity)."""
    import hashlib
    import tempfile
    h = hashlib.sha256()
    fd, name = tempfile.mkstemp(dir=directory, prefix="build-context-")
    try:
        with os.fdopen(fd, "wb") as f:
            async for data in req.stream(chunk=1 << 20):
                h.update(data)
                f.write(data)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), "sha256:" + h.hexdigest()


async def _stream(req: Request, task: asyncio.Task, q: asyncio.Queue, error_message: Any,
                  step_failed: type) -> None:
    w = None
    getter: asyncio.Future | None = None
    # The request body is all read by now: the client's side of the connection ending means
    # it went away (docker build's ctrl-C), and the build stops as dockerd's does.
    hangup = asyncio.ensure_future(_client_gone(req))
    try:
        while True:
            getter = asyncio.ensure_future(q.get())
            done, _ = await asyncio.wait({getter, task, hangup}, return_when=asyncio.FIRST_COMPLETED)
            if hangup in done and task not in done:
                raise ConnectionError("client went away")
            if getter in done:
                if w is None:
                    w = await req.start_stream("application/json")
                await w.write_json(getter.result())
                getter = None
                continue
            getter.cancel()
            getter = None
            await asyncio.sleep(0)  # messages scheduled just before the build ended
            if not q.empty() and w is None:
                w = await req.start_stream("application/json")
            while not q.empty():
                await w.write_json(q.get_nowait())
            break
        exc = task.exception() if not task.cancelled() else errors.Conflict("the build was cancelled")
        if exc is not None and w is None:
            raise exc  # nothing said yet: a plain error status, as dockerd
        if exc is not None:
            code = exc.code if isinstance(exc, step_failed) else None
            msg = str(exc) if isinstance(exc, errors.SampanError) else f"internal error: {exc}"
            await w.write_json(error_message(msg, code))
        if w is None:
            w = await req.start_stream("application/json")
        await w.end()
    except ConnectionError:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        hangup.cancel()
        if getter is not None:
            getter.cancel()
    return None


async def _client_gone(req: Request) -> None:
    """Returns once the client has closed its side. Polls the stream's state rather than
    reading, so bytes of a next request on a kept-alive connection are never taken.

    A client that died is seen either as EOF on the read side or, when a write hit the
    closed socket first (EPIPE), as a lost connection: the reader then holds that error and
    never reaches EOF."""
    reader = getattr(req, "_reader", None)
    writer = getattr(req, "_writer", None)
    if reader is None:
        await asyncio.Event().wait()
        return
    while not (reader.at_eof() or reader.exception() is not None
               or (writer is not None and writer.transport.is_closing())):
        await asyncio.sleep(0.2)


def _cache(engine: Any) -> Any:
    from ..build.cache import BuildCache
    cache = getattr(engine, "build_cache", None)
    if cache is None:
        cache = BuildCache(engine.db, lambda i: engine.images.exists(i))
        engine.build_cache = cache
    return cache


async def prune(req: Request) -> Response:
    """POST /build/prune: the classic builder's cache is its index of step images; `all`
    drops every entry (the images themselves are pruned with `image prune`)."""
    keys, _ = _cache(req.app.engine).prune(all_=req.q_bool("all"))
    return json_response({"CachesDeleted": keys or None, "SpaceReclaimed": 0})


async def cancel(req: Request) -> Response:
    build_id = req.q("id") or ""
    task = _BUILDS.get(build_id)
    if task is None:
        raise errors.NotFound(f"no such build: {build_id}")
    task.cancel()
    return json_response({})


def register(router: Router) -> None:
    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", prune)
    router.add("POST", "/build/cancel", cancel)
