"""Container routes (HTTP only: parse, call the engine, serialise)."""

from __future__ import annotations

import os
import re
import time

from ..errors import InvalidParameter
from ..monitor.logfile import parse_rfc3339_nano
from ..monitor.process import Attach, parse_detach_keys
from .http import Request, Response, Router, empty, json_response

RAW = "application/vnd.docker.raw-stream"
MUX = "application/vnd.docker.multiplexed-stream"


def _engine(req: Request):
    return req.app.engine


def _int_param(req: Request, name: str, lo: int, hi: int, default: int | None = None) -> int | None:
    """An integer query parameter within the range of the Go type dockerd parses it into."""
    v = req.q_int(name, default)
    if v is not None and not lo <= v <= hi:
        raise InvalidParameter(f"invalid value for {name}: {v} is out of range")
    return v


def _timeout(req: Request) -> int | None:
    # A stop timeout of hours is legitimate (negative: wait for ever); Go's Atoi bounds it.
    return _int_param(req, "t", -(1 << 63), (1 << 63) - 1)


async def list_containers(req: Request) -> Response:
    cs = _engine(req).containers.list(all=req.q_bool("all"), limit=req.q_int("limit"),
                                      size=req.q_bool("size"), filters=req.filters())
    return json_response(cs)


async def create(req: Request) -> Response:
    body = await req.json()
    result = await _engine(req).containers.create(body, req.q("name"), platform=req.q("platform"))
    return json_response(result, 201)


async def inspect(req: Request) -> Response:
    return json_response(_engine(req).containers.inspect(req.match["id"], size=req.q_bool("size")))


async def start(req: Request) -> Response:
    await _engine(req).containers.start(req.match["id"])
    return empty(204)


async def stop(req: Request) -> Response:
    await _engine(req).containers.stop(req.match["id"], _timeout(req), req.q("signal"))
    return empty(204)


async def restart(req: Request) -> Response:
    await _engine(req).containers.restart(req.match["id"], _timeout(req), req.q("signal"))
    return empty(204)


async def kill(req: Request) -> Response:
    await _engine(req).containers.kill(req.match["id"], req.q("signal"))
    return empty(204)


async def wait(req: Request) -> Response | None:
    fut = _engine(req).containers.register_wait(req.match["id"], req.q("condition", "") or "")
    # Headers go out as soon as the waiter is registered: the docker CLI starts the container
    # only after it has them, so an exit can never slip between start and wait.
    w = await req.start_stream("application/json")
    code = await fut
    await w.write_json({"StatusCode": code})
    await w.end()
    return None


async def remove(req: Request) -> Response:
    await _engine(req).containers.remove(req.match["id"], force=req.q_bool("force"), volumes=req.q_bool("v"))
    return empty(204)


async def prune(req: Request) -> Response:
    return json_response(await _engine(req).containers.prune(req.filters()))


async def rename(req: Request) -> Response:
    _engine(req).containers.rename(req.match["id"], req.q("name", "") or "")
    return empty(204)


async def resize(req: Request) -> Response:
    # A terminal's size is two unsigned shorts (struct winsize).
    h, w = _int_param(req, "h", 0, 0xFFFF, 0), _int_param(req, "w", 0, 0xFFFF, 0)
    await _engine(req).containers.resize(req.match["id"], h, w)
    return Response(200, b"", content_type="text/plain")


_UNIX_TS = re.compile(r"-?[0-9]{1,19}(\.[0-9]{1,9})?")


def _time_param(req: Request, name: str) -> float:
    v = req.q(name)
    if not v:
        return 0.0
    # The docker CLI sends seconds[.nanoseconds] (timetypes.GetTimestamp); float() alone would
    # also take "nan", "inf" and "1e400", which no clock reading is.
    if _UNIX_TS.fullmatch(v):
        return float(v)
    try:
        return parse_rfc3339_nano(v) / 1e9
    except ValueError:
        raise InvalidParameter(f"invalid value for {name}: {v!r}") from None


async def logs(req: Request) -> Response | None:
    eng = _engine(req)
    c = eng.containers.get(req.match["id"])
    stdout, stderr = req.q_bool("stdout"), req.q_bool("stderr")
    if not stdout and not stderr:
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    tail_s = req.q("tail", "all") or "all"
    if tail_s == "all":
        tail = None
    else:
        try:
            tail = int(tail_s)
        except ValueError:
            raise InvalidParameter(f"invalid value for tail: {tail_s!r}") from None
    tty = bool(c.config.get("Tty"))
    gen = eng.containers.logs(c.id, stdout=stdout, stderr=stderr, follow=req.q_bool("follow"),
                              since=_time_param(req, "since"), until=_time_param(req, "until"),
                              tail=tail, timestamps=req.q_bool("timestamps"), tty=tty)
    w = await req.start_stream(RAW if tty else MUX)
    try:
        async for chunk in gen:  # whole chunks of frames (engine/logread.py)
            await w.write(chunk)
    except ConnectionError:
        return None
    await w.end()
    return None


async def attach(req: Request) -> Response | None:
    eng = _engine(req)
    c = eng.containers.get(req.match["id"])
    keys = req.q("detachKeys")
    detach = None
    if keys:
        try:
            detach = parse_detach_keys(keys)
        except ValueError as e:
            raise InvalidParameter(str(e)) from None
    stdin, stdout, stderr = req.q_bool("stdin"), req.q_bool("stdout"), req.q_bool("stderr")
    want_logs, stream = req.q_bool("logs"), req.q_bool("stream")
    tty = bool(c.config.get("Tty"))
    if not tty:
        # Detach keys apply to a terminal only (dockerd's copyEscapable runs for TTY streams):
        # without one, stdin is data and passes through whole, whatever bytes it holds.
        detach = b""
    hj = await req.hijack(RAW if tty else MUX)
    if want_logs:
        from ..engine.logread import read_all_sync
        os.set_blocking(hj.fd, True)
        for chunk in read_all_sync(c, stdout, stderr, tty):
            try:
                os.write(hj.fd, chunk)
            except OSError:
                break
        os.set_blocking(hj.fd, False)
    if not stream:
        hj.close()
        return None
    att = Attach(hj.fd, stdin, stdout, stderr, hj.leftover, detach)
    hj.fd = -1
    try:
        await eng.containers.attach(c.id, att)
    except Exception:
        try:
            os.close(att.fd)
        except OSError:
            pass
    return None


def register(router: Router) -> None:
    router.add("GET", "/containers/json", list_containers)
    router.add("POST", "/containers/create", create)
    router.add("POST", "/containers/prune", prune)
    router.add("GET", "/containers/{id}/json", inspect)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("DELETE", "/containers/{id}", remove)
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("POST", "/containers/{id}/resize", resize)
    router.add("GET", "/containers/{id}/logs", logs)
    router.add("POST", "/containers/{id}/attach", attach)
