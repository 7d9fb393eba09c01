"""Exec instances: `POST /containers/{id}/exec`, `/exec/{id}/start`, `/exec/{id}/json`.

An exec is created in the daemon (in memory, as Docker keeps them) and started by the
container's monitor, which forks the process inside the container's namespaces and owns its
stdio, exactly as for the container's main process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..errors import Conflict, InvalidParameter, NotFound
from ..monitor import process as monitor
from .container import new_id
from .monitorclient import monitor_request

_EXEC_TYPES: dict[str, type] = {
    "User": str, "WorkingDir": str, "DetachKeys": str, "Privileged": bool, "Tty": bool,
    "AttachStdin": bool, "AttachStdout": bool, "AttachStderr": bool, "Detach": bool,
}


@dataclass
class Exec:
    id: str
    container_id: str
    config: dict[str, Any]
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def inspect(self) -> dict[str, Any]:
        cfg = self.config
        argv = cfg.get("Cmd") or []
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": bool(cfg.get("Tty")),
                "entrypoint": argv[0] if argv else "",
                "arguments": argv[1:],
                "privileged": bool(cfg.get("Privileged")),
                "user": cfg.get("User") or "",
            },
            "OpenStdin": bool(cfg.get("AttachStdin")),
            "OpenStderr": bool(cfg.get("AttachStderr")),
            "OpenStdout": bool(cfg.get("AttachStdout")),
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": cfg.get("DetachKeys") or "",
            "Pid": self.pid,
        }


class ExecService:
    def __init__(self, containers: Any) -> None:
        self.containers = containers
        self._execs: dict[str, Exec] = {}
        containers.execs = self

    def get(self, exec_id: str) -> Exec:
        e = self._execs.get(exec_id)
        if e is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return e

    def create(self, ref: str, body: Any) -> str:
        c = self.containers.get(ref)
        if not isinstance(body, dict):
            raise InvalidParameter("invalid exec config: expected a JSON object")
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
            raise InvalidParameter("No exec command specified")
        for key in ("Env",):
            v = body.get(key)
            if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
                raise InvalidParameter(f"invalid {key}: expected a list of strings")
        # The rest of Docker's ExecConfig, typed as dockerd's JSON decoding enforces it.
        for key, want in _EXEC_TYPES.items():
            v = body.get(key)
            if v is not None and not isinstance(v, want):
                raise InvalidParameter(f"json: cannot unmarshal {type(v).__name__} into Go struct "
                                       f"field ExecConfig.{key} of type {want.__name__}")
        size = body.get("ConsoleSize")
        if size is not None and not (isinstance(size, list) and len(size) == 2 and all(
                isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 1 << 32 for x in size)):
            raise InvalidParameter("invalid ConsoleSize: expected [height, width]")
        if body.get("DetachKeys"):
            try:
                monitor.parse_detach_keys(body["DetachKeys"])
            except ValueError:
                raise InvalidParameter(f"Invalid escape keys ({body['DetachKeys']}) provided") from None
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.Paused:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        e = Exec(new_id(), c.id, dict(body, Cmd=cmd))
        self._execs[e.id] = e
        c.exec_ids.append(e.id)
        self.containers.engine.events.container(c, "exec_create: " + " ".join(cmd), execID=e.id)
        return e.id

    def _process(self, e: Exec, c: Any, tty: bool) -> dict[str, Any]:
        import json
        import os
        from ..runtime.spec import build_exec_process

        with open(os.path.join(c.dir, "config.json")) as f:
            spec = json.load(f)
        cfg = e.config
        return build_exec_process(spec, cmd=cfg["Cmd"], env=cfg.get("Env"), user=cfg.get("User") or "",
                                  workdir=cfg.get("WorkingDir") or "", tty=tty,
                                  privileged=bool(cfg.get("Privileged")))

    async def start(self, exec_id: str, att: monitor.Attach | None, tty: bool | None) -> None:
        e = self.get(exec_id)
        if e.started:
            if att is not None:
                att_close(att)
            raise Conflict(f"Exec {exec_id} has already been started")
        c = self.containers.get(e.container_id)
        if not c.state.Running:
            if att is not None:
                att_close(att)
            raise Conflict(f"Container {c.id} is not running")
        e.started = True
        e.running = True
        self.containers.engine.events.container(c, "exec_start: " + " ".join(e.config["Cmd"]), execID=e.id)
        use_tty = bool(e.config.get("Tty")) if tty is None else bool(tty) or bool(e.config.get("Tty"))
        req = {
            "op": "exec", "id": e.id, "process": self._process(e, c, use_tty), "tty": use_tty,
            "stdin": bool(e.config.get("AttachStdin")) and att is not None,
            "stdout": bool(e.config.get("AttachStdout", True)),
            "stderr": bool(e.config.get("AttachStderr", True)),
            # On a terminal: the exec's keys or Docker's ctrl-p ctrl-q. Without one: none of
            # ours (stdin is data); None lets the monitor apply its container-wide default.
            "detach_keys": (e.config.get("DetachKeys") or "ctrl-p,ctrl-q") if use_tty else None,
            "console_size": e.config.get("ConsoleSize"),
        }
        if att is not None:
            import base64
            req["leftover"] = base64.b64encode(att.leftover).decode()
        try:
            reply = await monitor_request(self.containers._sock_path(c), req,
                                          fds=[att.fd] if att is not None else None)
        finally:
            if att is not None:
                att_close(att)
        if reply.get("pid"):
            e.pid = int(reply["pid"])
        elif "exit_code" in reply:
            self.on_exit(e.id, int(reply["exit_code"]))

    async def inspect(self, exec_id: str) -> dict[str, Any]:
        e = self.get(exec_id)
        if e.running:
            # The exit event may still be in flight on the watch stream: ask the monitor.
            c = self.containers._by_id.get(e.container_id)
            if c is not None and c.state.Running:
                try:
                    reply = await monitor_request(self.containers._sock_path(c),
                                                  {"op": "exec_state", "id": e.id}, timeout=2)
                    if reply.get("exit_code") is not None and not reply.get("running"):
                        self.on_exit(e.id, int(reply["exit_code"]))
                except Exception:  # noqa: BLE001 - report what we know
                    pass
        return e.inspect()

    async def resize(self, exec_id: str, h: int, w: int) -> None:
        e = self.get(exec_id)
        c = self.containers.get(e.container_id)
        await monitor_request(self.containers._sock_path(c), {"op": "resize", "h": h, "w": w, "exec_id": e.id})

    def on_exit(self, exec_id: str, code: int) -> None:
        e = self._execs.get(exec_id)
        if e is None:
            return
        was_running = e.running
        e.running = False
        e.pid = 0
        e.exit_code = code
        e.done.set()
        c = self.containers._by_id.get(e.container_id)
        if was_running and c is not None:
            self.containers.engine.events.container(c, "exec_die", execID=e.id, exitCode=code)

    def on_container_exit(self, container_id: str) -> None:
        for e in self._execs.values():
            if e.container_id == container_id and e.running:
                e.running = False
                if e.exit_code is None:
                    e.exit_code = 137
                e.done.set()

    def on_container_removed(self, container_id: str) -> None:
        for k in [k for k, e in self._execs.items() if e.container_id == container_id]:
            del self._execs[k]


def att_close(att: monitor.Attach) -> None:
    import os
    try:
        os.close(att.fd)
    except OSError:
        pass
