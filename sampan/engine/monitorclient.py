"""The daemon's side of the monitor protocol (see `sampan.monitor.protocol`)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from ..errors import Conflict
from ..monitor import protocol


class MonitorLink:
    """A stream of JSON-line events from one monitor (its status socket or a `watch`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> "MonitorLink":
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 20)
        return cls(reader, writer)

    @classmethod
    async def connect(cls, path: str) -> "MonitorLink":
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path, limit=1 << 20), 5)
        writer.write(b'{"op":"watch"}\n')
        await writer.drain()
        return cls(reader, writer)

    async def next_event(self, timeout: float | None = None) -> dict[str, Any] | None:
        try:
            line = await asyncio.wait_for(self._reader.readline(), timeout)
        except (ConnectionError, asyncio.IncompleteReadError):
            return None
        if not line:
            return None
        try:
            return json.loads(line)
        except ValueError:
            return None

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def monitor_request(path: str, req: dict[str, Any], fds: list[int] | None = None,
                          timeout: float = 10.0) -> dict[str, Any]:
    """One request/reply on a fresh connection to a monitor's socket."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    try:
        try:
            await asyncio.wait_for(loop.sock_connect(sock, path), timeout)
        except (FileNotFoundError, ConnectionRefusedError):
            raise Conflict("container is not running") from None
        data = json.dumps(req, separators=(",", ":")).encode() + b"\n"
        if fds:
            # Small message on an empty socket buffer: sendmsg does not block.
            sock.setblocking(True)
            protocol.send_msg(sock, req, fds)
            sock.setblocking(False)
        else:
            await loop.sock_sendall(sock, data)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
            if not chunk:
                break
            buf += chunk
        if not buf:
            raise Conflict("container is not running")
        return json.loads(buf)
    finally:
        sock.close()
