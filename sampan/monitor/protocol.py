"""The daemon <-> monitor wire protocol.

A monitor listens on `<exec-root>/monitors/<id>.sock`. Each connection carries one request: a
JSON line, sent with `sendmsg` so that file descriptors (a hijacked client socket) can ride along
as SCM_RIGHTS. The monitor answers with one JSON line; a `watch` request keeps the connection
open and the monitor pushes events on it (`exit`, `exec_exit`).

Attached client streams use Docker's framing: for a non-tty container each chunk is prefixed by
an 8-byte header `[stream, 0, 0, 0, size (big-endian uint32)]` (stream 1 = stdout, 2 = stderr);
a tty stream is raw.
"""

from __future__ import annotations

import array
import json
import socket
import struct
from typing import Any

MAX_MSG = 1 << 20
MAX_FDS = 8

STDOUT = 1
STDERR = 2


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def send_msg(sock: socket.socket, obj: Any, fds: list[int] | None = None) -> None:
    data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
    if fds:
        n = sock.sendmsg([data[:1]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        if n != 1:
            raise OSError("short sendmsg")
        data = data[1:]
    sock.sendall(data)


def recv_msg(sock: socket.socket) -> tuple[Any, list[int]]:
    """Read one JSON line (blocking socket) and any fds that came with it."""
    buf = bytearray()
    fds: list[int] = []
    while not buf.endswith(b"\n"):
        data, ancdata, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(MAX_FDS * 4))
        for level, typ, cdata in ancdata:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(cdata[: len(cdata) - (len(cdata) % a.itemsize)])
                fds.extend(a)
        if not data:
            break
        buf += data
        if len(buf) > MAX_MSG:
            raise ValueError("message too large")
    if not buf:
        raise EOFError("connection closed")
    return json.loads(buf), fds
