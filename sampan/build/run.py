"""A RUN step: a real container of the stage's current image, its output streamed to the build.

The container is made through the engine like any other (so events, cgroups, network and the
runtime are the ones `docker run` gets); its stdout/stderr come over an attach registered before
start, on one end of a socketpair the builder reads, so no log file is written or polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any, Callable

from ..errors import SampanError

log = logging.getLogger("sampan.build")


class StepFailed(SampanError):
    """A RUN that exited non-zero: Docker's message and the exit code (the CLI exits with it)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def container_body(image_id: str, cfg: dict[str, Any], argv: list[str], env: list[str],
                   host: dict[str, Any]) -> dict[str, Any]:
    """The create body of a RUN container: the stage's config with the step's command.

    The command goes in whole as Entrypoint[0] + Cmd so the image's ENTRYPOINT cannot wrap
    it, and health checks are off (dispatchRun's withEntrypointOverride / withoutHealthcheck).
    """
    return {
        "Image": image_id,
        "Entrypoint": argv[:1], "Cmd": argv[1:],
        "Env": env,
        "User": cfg.get("User") or "",
        "WorkingDir": cfg.get("WorkingDir") or "",
        "Healthcheck": {"Test": ["NONE"]},
        "AttachStdout": True, "AttachStderr": True, "Tty": False, "OpenStdin": False,
        "Labels": {},
        "HostConfig": host,
    }


async def run_container(engine: Any, body: dict[str, Any], on_created: Callable[[str], None],
                        on_output: Callable[[bytes], None],
                        track: Callable[[str], None]) -> tuple[str, int]:
    """Create, attach, start and wait; returns (container id, exit code)."""
    from ..monitor.spec import Attach

    created = await engine.containers.create(body, None)
    cid = created["Id"]
    track(cid)
    on_created(cid)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setblocking(False)
    pump: asyncio.Future | None = None
    try:
        att = Attach(theirs.detach(), stdin=False, stdout=True, stderr=True)
        await engine.containers.attach(cid, att)
        exited = engine.containers.register_wait(cid, "next-exit")
        await engine.containers.start(cid)
        pump = asyncio.ensure_future(_pump(ours, on_output))
        code = await exited
        # The monitor closes its clients when the process is gone; give the last bytes a
        # moment to arrive, but never hang a build on a descendant holding the pipe open.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(pump), 5)
        return cid, int(code)
    finally:
        # The reader must be off the event loop before the socket closes: a pending
        # sock_recv on a closed fd would catch whatever socket gets that number next.
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await asyncio.shield(pump)
        ours.close()


async def _pump(sock: socket.socket, on_output: Callable[[bytes], None]) -> None:
    """Demultiplex the attach stream (8-byte frame headers) into the step's output."""
    loop = asyncio.get_running_loop()
    buf = b""
    while True:
        data = await loop.sock_recv(sock, 65536)
        if not data:
            break
        buf += data
        while len(buf) >= 8:
            _, size = struct.unpack(">BxxxL", buf[:8])
            if len(buf) < 8 + size:
                break
            on_output(buf[8:8 + size])
            buf = buf[8 + size:]


async def remove_quietly(engine: Any, cid: str) -> bool:
    try:
        await engine.containers.remove(cid, force=True, volumes=True)
        return True
    except (SampanError, OSError, asyncio.TimeoutError) as e:
        # a monitor that does not answer must not stop the rest of the cleanup
        log.debug("removing build container %s: %s", cid[:12], e)
        return False


def host_config(opts: Any) -> dict[str, Any]:
    """The HostConfig of build containers: the build's network and resource flags."""
    h: dict[str, Any] = {"LogConfig": {"Type": "none", "Config": {}},
                         "NetworkMode": opts.network_mode or "default"}
    for key, attr in (("Memory", "memory"), ("MemorySwap", "memswap"), ("CpuShares", "cpushares"),
                      ("CpuPeriod", "cpuperiod"), ("CpuQuota", "cpuquota"), ("ShmSize", "shmsize")):
        v = getattr(opts, attr, 0)
        if v:
            h[key] = int(v)
    if getattr(opts, "cpusetcpus", ""):
        h["CpusetCpus"] = opts.cpusetcpus
    if getattr(opts, "extra_hosts", None):
        h["ExtraHosts"] = list(opts.extra_hosts)
    return h


def run_argv(ins: Any, shell: list[str]) -> list[str]:
    """RUN's command. Heredocs become part of the shell script (`RUN <<EOF` alone runs the
    body as the script), which the shell then reads as its own here-documents."""
    if ins.json:
        return list(ins.args)
    text = ins.args[0] if ins.args else ""
    docs = getattr(ins, "heredocs", None) or []
    if docs:
        if text.strip().startswith("<<") and len(docs) == 1 and len(text.split()) == 1:
            return shell + [docs[0].content]
        script = text + "\n" + "".join(d.content + ("" if d.content.endswith("\n") or not d.content
                                                    else "\n") + d.name + "\n" for d in docs)
        return shell + [script]
    return shell + [text]
