"""pause / unpause (the cgroup freezer) and top (host `ps`, only the container's processes).

The freezer is driven through the group the cgroups package made for the container
(`engine.cgroups.group_of(c)`): v1 writes `freezer.state` in the freezer hierarchy, v2 writes
`cgroup.freeze` and waits for `cgroup.events` to say `frozen 1`. The cgroups driver has no
freeze call of its own, so these few file writes live here.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from typing import Any

from ..errors import Conflict, Internal, InvalidParameter

FREEZE_TIMEOUT = 10.0


# -- the freezer ---------------------------------------------------------------------------------

def freezer_files(driver: Any, group: str) -> tuple[str, str]:
    """(version, directory) of the container's freezer."""
    if getattr(driver, "version", "") == "2":
        return "2", driver.path(group)
    d = driver.paths(group).get("freezer")
    if not d:
        raise Conflict("the freezer cgroup controller is not mounted on this host")
    return "1", d


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def set_frozen(version: str, d: str, frozen: bool, timeout: float = FREEZE_TIMEOUT) -> None:
    """Freeze or thaw, and wait until the kernel says it is done (freezing is asynchronous:
    v1 passes through FREEZING, v2 reports `frozen 1` in cgroup.events)."""
    if not os.path.isdir(d):
        raise Conflict("the container's cgroup is gone")
    if version == "2":
        path, value = os.path.join(d, "cgroup.freeze"), "1" if frozen else "0"
    else:
        path, value = os.path.join(d, "freezer.state"), "FROZEN" if frozen else "THAWED"
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise Internal(f"cannot write {path}: {e}") from None
        if version == "2":
            done = f"frozen {1 if frozen else 0}" in _read(os.path.join(d, "cgroup.events")).splitlines()
        else:
            done = _read(path).strip() == value
        if done:
            return
        if time.monotonic() > deadline:
            raise Internal(f"timed out {'freezing' if frozen else 'thawing'} the container's processes")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _freeze(engine: Any, c: Any, frozen: bool) -> None:
    version, d = freezer_files(engine.cgroups.driver, engine.cgroups.group_of(c))
    await asyncio.get_running_loop().run_in_executor(None, set_frozen, version, d, frozen)


def _emit(engine: Any, c: Any, action: str, **attrs: Any) -> None:
    events = getattr(engine, "events", None)
    if events is not None:
        events.container(c, action, **attrs)


async def pause(engine: Any, ref: str) -> None:
    svc = engine.containers
    c = svc.get(ref)
    async with svc._lock(c.id):
        if c.state.Status == "restarting" or c.state.Restarting:
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.Paused:
            raise Conflict(f"Container {c.id} is already paused")
        await _freeze(engine, c, True)
        c.state.Paused, c.state.Status = True, "paused"
        svc._save(c)
    _emit(engine, c, "pause")


async def unpause(engine: Any, ref: str) -> None:
    svc = engine.containers
    c = svc.get(ref)
    async with svc._lock(c.id):
        if not c.state.Paused:
            raise Conflict(f"Container {c.id} is not paused")
        await thaw(engine, c)
    _emit(engine, c, "unpause")


async def thaw(engine: Any, c: Any) -> None:
    """Thaw a paused container and record it running (also before a stop or kill, so the
    signal is acted on: a frozen process cannot handle it)."""
    if not c.state.Paused:
        return
    await _freeze(engine, c, False)
    c.state.Paused = False
    if c.state.Running:
        c.state.Status = "running"
    engine.containers._save(c)


# -- top -----------------------------------------------------------------------------------------

def container_pids(engine: Any, c: Any) -> list[int]:
    pids = engine.cgroups.driver.pids(engine.cgroups.group_of(c))
    if not pids and c.state.Pid:
        pids = [int(c.state.Pid)]  # no group (a runtime that made its own elsewhere): the init
    return pids


def parse_ps(output: str, pids: list[int]) -> dict[str, Any]:
    """dockerd's parsePSOutput: the header's titles, and the rows whose PID is the
    container's; the last column (the command) keeps its spaces."""
    lines = output.splitlines()
    if not lines:
        raise Internal("ps printed nothing")
    titles = lines[0].split()
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise Internal("Couldn't find PID field in ps output") from None
    want = set(pids)
    procs = []
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split()
        try:
            p = int(fields[pid_col])
        except (IndexError, ValueError):
            raise Internal(f"Unexpected pid '{fields[pid_col] if pid_col < len(fields) else ''}'") from None
        if p in want:
            n = len(titles) - 1
            procs.append(fields[:n] + [" ".join(fields[n:])])
    return {"Titles": titles, "Processes": procs}


def _run_ps(args: list[str]) -> str:
    try:
        r = subprocess.run(["ps"] + args, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Internal(f"Error running ps: {e}") from None
    if r.returncode != 0:
        raise Internal(f"ps: {r.stderr.decode(errors='replace').strip() or r.stdout.decode(errors='replace').strip()}")
    return r.stdout.decode(errors="replace")


async def top(engine: Any, ref: str, ps_args: str | None) -> dict[str, Any]:
    c = engine.containers.get(ref)
    if c.state.Status == "restarting":
        raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
    if not c.state.Running:
        raise Conflict(f"Container {c.id} is not running")
    args = (ps_args or "-ef").split()
    if any("\0" in a for a in args):
        raise InvalidParameter("invalid ps_args")
    loop = asyncio.get_running_loop()
    pids = await loop.run_in_executor(None, container_pids, engine, c)
    output = await loop.run_in_executor(None, _run_ps, args)
    return parse_ps(output, pids)
