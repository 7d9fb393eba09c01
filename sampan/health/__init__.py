"""Health checks, with dockerd's semantics (daemon/health.go).

- The check is the container's `Config.Healthcheck` (the image's HEALTHCHECK merged at create):
  `Test` is `["NONE"]` (disabled), `["CMD", argv...]` or `["CMD-SHELL", "cmd"]` (`/bin/sh -c`).
- Timing (nanoseconds in the API; 0 means the default): Interval 30 s, Timeout 30 s,
  StartPeriod 0, StartInterval 5 s, Retries 3. During the start period, and while the status is
  still `starting`, checks run every StartInterval; failures there do not count.
- Each probe is an exec in the container (so it runs in its namespaces and cgroup, and is
  seen as exec_create/exec_start/exec_die events); its output (stdout and stderr, first 4 KiB)
  and exit code go into `State.Health.Log` (the last 5). Exit 0 is healthy; anything else,
  a timeout included (ExitCode -1), is a failure; `Retries` failures in a row are unhealthy.
- A paused container runs no checks (none is started while it is frozen, and a result that
  comes back after a pause is dropped), so its status stays what it was; they resume after
  unpause.
- A change of status is a `health_status: <status>` event; when the container stops the
  status becomes `unhealthy`, as dockerd's CloseMonitorChannel does.

`HealthMonitor(engine)` is driven by the engine's hooks: `on_start(c)`, `on_exit(c)`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("sampan.health")

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"


@dataclass(frozen=True)
class Timing:
    interval: int
    timeout: int
    start_period: int
    start_interval: int
    retries: int


def timing(hc: dict[str, Any]) -> Timing:
    def ns(key: str, default: int) -> int:
        v = hc.get(key) or 0
        return int(v) if isinstance(v, (int, float)) and v > 0 else default

    retries = hc.get("Retries") or 0
    return Timing(ns("Interval", DEFAULT_INTERVAL), ns("Timeout", DEFAULT_TIMEOUT),
                  ns("StartPeriod", 0), ns("StartInterval", DEFAULT_START_INTERVAL),
                  int(retries) if isinstance(retries, int) and retries > 0 else DEFAULT_RETRIES)


def probe_command(hc: dict[str, Any] | None) -> list[str] | None:
    """The argv a check runs, or None when there is no check."""
    test = (hc or {}).get("Test") or []
    if not test or not isinstance(test, list) or test[0] == "NONE":
        return None
    if test[0] == "CMD" and len(test) > 1:
        return [str(a) for a in test[1:]]
    if test[0] == "CMD-SHELL" and len(test) > 1:
        return ["/bin/sh", "-c", " ".join(str(a) for a in test[1:])]
    return None


def go_duration(ns: int) -> str:
    """Go's time.Duration.String, for dockerd's timeout message."""
    if ns == 0:
        return "0s"
    if ns < SECOND:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return f"{ns / size:.9f}".rstrip("0").rstrip(".") + unit
    h, rem = divmod(ns, 3600 * SECOND)
    m, rem = divmod(rem, 60 * SECOND)
    s = f"{rem / SECOND:.9f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{h}h{m}m{s}"
    if m:
        return f"{m}m{s}"
    return s


def new_health(prev: dict | None) -> dict[str, Any]:
    """At each start: `starting`, streak 0, the previous log kept (dockerd's initHealthMonitor)."""
    return {"Status": STARTING, "FailingStreak": 0, "Log": list((prev or {}).get("Log") or [])}


def record(health: dict[str, Any], result: dict[str, Any], start_ns: int, started_at_ns: int,
           t: Timing) -> tuple[str, str]:
    """dockerd's handleProbeResult: add the result, update streak and status; (old, new)."""
    old = health.get("Status") or STARTING
    entries = list(health.get("Log") or [])
    entries.append(result)
    health["Log"] = entries[-MAX_LOG:]
    if result.get("ExitCode") == 0:
        health["FailingStreak"] = 0
        health["Status"] = HEALTHY
    else:
        count = True
        if old == STARTING and start_ns - started_at_ns < t.start_period:
            count = False  # a failure within the start period does not count
        if count:
            health["FailingStreak"] = int(health.get("FailingStreak") or 0) + 1
            if health["FailingStreak"] >= t.retries:
                health["Status"] = UNHEALTHY
    return old, health["Status"]


def next_interval(status: str, now_ns: int, started_at_ns: int, t: Timing) -> int:
    """dockerd's getInterval: StartInterval while starting within the start period."""
    if now_ns - started_at_ns >= t.start_period:
        return t.interval
    return t.start_interval if status == STARTING else t.interval


def status_suffix(health: dict | None) -> str:
    """` (healthy)`, ` (health: starting)`, ` (unhealthy)` for `ps` STATUS, or nothing."""
    if not health:
        return ""
    status = health.get("Status") or ""
    if not status or status == NONE:
        return ""
    return " (health: starting)" if status == STARTING else f" ({status})"


def _demux(buf: bytes) -> bytes:
    """Docker's multiplexed stream frames -> the payload (stdout and stderr together)."""
    out = bytearray()
    i = 0
    while i + 8 <= len(buf):
        size = struct.unpack(">I", buf[i + 4:i + 8])[0]
        out += buf[i + 8:i + 8 + size]
        i += 8 + size
    return bytes(out)


class HealthMonitor:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._tasks: dict[str, asyncio.Task] = {}

    # -- hooks ---------------------------------------------------------------------------------
    def on_start(self, c: Any, restored: bool = False) -> None:
        """The container is running: (re)start its checks. `restored`: adopted after a daemon
        restart, so its status carries on."""
        self._cancel(c.id)
        cmd = probe_command(c.config.get("Healthcheck"))
        if cmd is None:
            return
        if not restored or not c.state.Health:
            c.state.Health = new_health(c.state.Health)
        self._tasks[c.id] = asyncio.get_running_loop().create_task(self._loop(c, c.state.StartedAt))

    def on_exit(self, c: Any) -> None:
        if self._cancel(c.id) and c.state.Health:
            c.state.Health["Status"] = UNHEALTHY

    def _cancel(self, cid: str) -> bool:
        task = self._tasks.pop(cid, None)
        if task is None:
            return False
        if task is not asyncio.current_task():
            task.cancel()
        return True

    # -- the loop ------------------------------------------------------------------------------
    def _current(self, c: Any, started_at: str) -> bool:
        return (c.id in self.engine.containers._by_id and c.state.Running
                and c.state.StartedAt == started_at)

    async def _loop(self, c: Any, started_at: str) -> None:
        from ..monitor.logfile import parse_rfc3339_nano

        hc = c.config.get("Healthcheck") or {}
        t = timing(hc)
        cmd = probe_command(hc)
        try:
            started_ns = parse_rfc3339_nano(started_at)
        except ValueError:
            started_ns = time.time_ns()
        try:
            while True:
                status = (c.state.Health or {}).get("Status") or STARTING
                await asyncio.sleep(next_interval(status, time.time_ns(), started_ns, t) / SECOND)
                if not self._current(c, started_at):
                    return
                if c.state.Paused:
                    continue  # a frozen container cannot answer; dockerd pauses its checks too
                start_ns = time.time_ns()
                result = await self._probe(c, cmd, t.timeout)
                if not self._current(c, started_at):
                    return
                if c.state.Paused:
                    # Frozen while the probe ran (it then hangs or times out): its result says
                    # nothing about the service, and a paused container keeps its status.
                    continue
                old, new = record(c.state.Health, result, start_ns, started_ns, t)
                try:
                    self.engine.containers._save(c)
                except Exception:  # noqa: BLE001 - kept in memory; the next save persists it
                    log.exception("saving health of %s", c.id)
                if old != new:
                    events = getattr(self.engine, "events", None)
                    if events is not None:
                        events.container(c, f"health_status: {new}")
        except asyncio.CancelledError:
            pass
        finally:
            if self._tasks.get(c.id) is asyncio.current_task():
                del self._tasks[c.id]

    async def _probe(self, c: Any, cmd: list[str], timeout_ns: int) -> dict[str, Any]:
        from ..engine.container import now_rfc3339
        from ..monitor.process import Attach

        execs = self.engine.execs
        start = now_rfc3339()
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        exec_id = None
        try:
            try:
                exec_id = execs.create(c.id, {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
                e = execs.get(exec_id)
                await execs.start(exec_id, Attach(theirs.detach(), False, True, True), None)
            except Exception as err:  # noqa: BLE001 - a check that cannot run is a failure
                return {"Start": start, "End": now_rfc3339(), "ExitCode": -1, "Output": str(err)}

            async def collect() -> bytes:
                buf = bytearray()
                while True:
                    data = await loop.sock_recv(ours, 65536)
                    if not data:
                        break
                    if len(buf) < MAX_OUTPUT * 4 + 64:
                        buf += data
                await e.done.wait()
                return bytes(buf)

            try:
                raw = await asyncio.wait_for(collect(), timeout_ns / SECOND)
            except asyncio.TimeoutError:
                if e.pid:
                    try:
                        os.kill(e.pid, signal.SIGKILL)
                    except OSError:
                        pass
                return {"Start": start, "End": now_rfc3339(), "ExitCode": -1,
                        "Output": f"Health check exceeded timeout ({go_duration(timeout_ns)})"}
            output = _demux(raw)[:MAX_OUTPUT].decode("utf-8", errors="replace")
            code = e.exit_code if e.exit_code is not None else -1
            return {"Start": start, "End": now_rfc3339(), "ExitCode": code, "Output": output}
        finally:
            ours.close()
            try:
                theirs.close()
            except OSError:
                pass
            if exec_id is not None:
                self._forget_exec(c, exec_id)

    def _forget_exec(self, c: Any, exec_id: str) -> None:
        """A finished check's exec is not kept (nor listed in ExecIDs)."""
        try:
            c.exec_ids.remove(exec_id)
        except ValueError:
            pass
        store = getattr(self.engine.execs, "_execs", None)
        if store is not None:
            e = store.get(exec_id)
            if e is not None and not e.running:
                store.pop(exec_id, None)
