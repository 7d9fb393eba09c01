"""`POST /build` stops when its client goes away (api/build.py `_client_gone`), however the
daemon learns of it: EOF on the read side, or a write that hit the closed socket first, which
leaves the reader holding an error instead of ever reaching EOF."""

from __future__ import annotations

import asyncio
import socket

from sampan.api.build import _client_gone


class _Req:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer


async def _connected() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, socket.socket]:
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    return reader, writer, theirs


async def _gone_within(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       seconds: float) -> bool:
    try:
        await asyncio.wait_for(_client_gone(_Req(reader, writer)), seconds)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        writer.close()


def test_a_live_client_is_not_gone():
    async def main() -> bool:
        reader, writer, peer = await _connected()
        try:
            return await _gone_within(reader, writer, 0.6)
        finally:
            peer.close()
    assert asyncio.run(main()) is False


def test_eof_from_the_client_is_gone():
    async def main() -> bool:
        reader, writer, peer = await _connected()
        peer.close()
        return await _gone_within(reader, writer, 2)
    assert asyncio.run(main()) is True


def test_a_write_that_found_the_client_dead_is_gone():
    async def main() -> bool:
        reader, writer, peer = await _connected()
        peer.shutdown(socket.SHUT_RD)  # our writes fail (EPIPE) before any EOF is read
        peer.close()
        for _ in range(50):             # the build's output, to a client that died
            writer.write(b"x" * 65536)
            try:
                await writer.drain()
            except ConnectionError:
                break
        return await _gone_within(reader, writer, 2)
    assert asyncio.run(main()) is True
