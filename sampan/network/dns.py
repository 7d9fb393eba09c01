"""The embedded DNS server of user-defined networks (Docker's 127.0.0.11).

Each container on a user-defined network gets a UDP and a TCP socket bound to
127.0.0.11 *inside its own network namespace* (made on the netlink worker, which can
enter the namespace; port 53 is redirected to them there); the daemon serves them from its event loop. Knowing which socket a
query came in on tells us which container asked, so names are resolved in that container's
view: the containers, aliases and links of the networks it is attached to. Anything else is
forwarded, from the host's namespace, to the container's upstream servers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from typing import Callable

log = logging.getLogger("sampan.network.dns")

TYPE_A, TYPE_PTR, TYPE_AAAA, TYPE_ANY = 1, 12, 28, 255
RCODE_OK, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN = 0, 1, 2, 3
TTL = 600
MAX_UDP = 512
FORWARD_TIMEOUT = 3.0


class DNSFormatError(ValueError):
    pass


def _read_name(msg: bytes, off: int) -> tuple[str, int]:
    """A possibly compressed name at `off`: (name, offset after it)."""
    labels: list[str] = []
    end = None
    jumps = 0
    while True:
        if off >= len(msg):
            raise DNSFormatError("name runs past the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise DNSFormatError("truncated pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 20:
                raise DNSFormatError("pointer loop")
            continue
        if n & 0xC0:
            raise DNSFormatError("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise DNSFormatError("label runs past the message")
        labels.append(msg[off:off + n].decode("ascii", errors="replace"))
        off += n
        if sum(len(x) + 1 for x in labels) > 255:
            raise DNSFormatError("name too long")
    return ".".join(labels), (end if end is not None else off)


def parse_query(msg: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, qname, qtype, qclass) of a query with one question."""
    if len(msg) < 12:
        raise DNSFormatError("short message")
    qid, flags, qd = struct.unpack_from("!HHH", msg, 0)
    if qd != 1:
        raise DNSFormatError("exactly one question expected")
    name, off = _read_name(msg, 12)
    if off + 4 > len(msg):
        raise DNSFormatError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", msg, off)
    return qid, flags, name, qtype, qclass


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii", errors="replace")[:63]
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_response(query: bytes, rcode: int, answers: list[tuple[int, bytes]] | None = None,
                   authoritative: bool = True) -> bytes:
    """A reply echoing the query's question; `answers`: (type, rdata) for that name."""
    qid, flags, name, qtype, qclass = parse_query(query)
    answers = answers or []
    rd = flags & 0x0100
    rflags = 0x8000 | rd | 0x0080 | (0x0400 if authoritative else 0) | (rcode & 0xF)
    head = struct.pack("!HHHHHH", qid, rflags, 1, len(answers), 0, 0)
    question = _encode_name(name) + struct.pack("!HH", qtype, qclass)
    body = b""
    for atype, rdata in answers:
        body += struct.pack("!HHHIH", 0xC00C, atype, 1, TTL, len(rdata)) + rdata
    return head + question + body


def reverse_name(name: str) -> str | None:
    """`4.0.17.172.in-addr.arpa` -> `172.17.0.4`."""
    n = name.lower().rstrip(".")
    if not n.endswith(".in-addr.arpa"):
        return None
    parts = n[: -len(".in-addr.arpa")].split(".")
    if len(parts) != 4:
        return None
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(parts))))
    except ValueError:
        return None


# lookup(container_id, name) -> addresses, or None when the name is not ours.
Lookup = Callable[[str, str], "list[str] | None"]
# reverse(container_id, ip) -> a name, or None.
Reverse = Callable[[str, str], "str | None"]
Upstreams = Callable[[str], "list[str]"]


class Resolver:
    def __init__(self, lookup: Lookup, reverse: Reverse, upstreams: Upstreams) -> None:
        self.lookup = lookup
        self.reverse = reverse
        self.upstreams = upstreams
        self._servers: dict[str, list[object]] = {}

    async def answer(self, cid: str, query: bytes) -> bytes | None:
        try:
            _, _, name, qtype, qclass = parse_query(query)
        except DNSFormatError:
            if len(query) >= 12:
                return query[:2] + struct.pack("!H", 0x8000 | RCODE_FORMERR) + b"\0" * 8
            return None
        if qclass == 1 and qtype in (TYPE_A, TYPE_AAAA, TYPE_ANY):
            addrs = self.lookup(cid, name.lower().rstrip("."))
            if addrs is not None:
                if qtype == TYPE_AAAA:
                    return build_response(query, RCODE_OK)  # the name exists: no IPv6 here
                return build_response(query, RCODE_OK, [(TYPE_A, ipaddress.IPv4Address(a).packed)
                                                        for a in addrs])
        if qclass == 1 and qtype == TYPE_PTR:
            ip = reverse_name(name)
            if ip is not None:
                target = self.reverse(cid, ip)
                if target:
                    return build_response(query, RCODE_OK, [(TYPE_PTR, _encode_name(target))])
        return await self.forward(cid, query)

    async def forward(self, cid: str, query: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        for server in self.upstreams(cid):
            try:
                return await asyncio.wait_for(_udp_exchange(loop, server, query), FORWARD_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                continue
        return build_response(query, RCODE_SERVFAIL, authoritative=False)

    # -- sockets ---------------------------------------------------------------------------
    async def serve(self, cid: str, udp: socket.socket, tcp: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        await self.stop(cid)
        udp.setblocking(False)
        tcp.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(lambda: _UDP(self, cid), sock=udp)

        async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    n = struct.unpack("!H", await reader.readexactly(2))[0]
                    reply = await self.answer(cid, await reader.readexactly(n))
                    if reply is None:
                        break
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(on_tcp, sock=tcp)
        self._servers[cid] = [transport, server]

    async def stop(self, cid: str) -> None:
        for s in self._servers.pop(cid, []):
            s.close()  # type: ignore[attr-defined]

    def serving(self, cid: str) -> bool:
        return cid in self._servers


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver, cid: str) -> None:
        self.resolver = resolver
        self.cid = cid
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        asyncio.get_running_loop().create_task(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple) -> None:
        try:
            reply = await self.resolver.answer(self.cid, data)
        except Exception:  # noqa: BLE001 - one bad query must not stop the server
            log.exception("embedded DNS query")
            return
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            if len(reply) > MAX_UDP:
                # Truncated: the client retries over TCP.
                reply = reply[:2] + struct.pack("!H", struct.unpack_from("!H", reply, 2)[0] | 0x0200) + reply[4:12]
                reply += query_section(data)
            self.transport.sendto(reply, addr)


def query_section(query: bytes) -> bytes:
    _, off = _read_name(query, 12)
    return query[12:off + 4]


class _Once(asyncio.DatagramProtocol):
    def __init__(self, fut: asyncio.Future) -> None:
        self.fut = fut

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


async def _udp_exchange(loop: asyncio.AbstractEventLoop, server: str, query: bytes) -> bytes:
    fut = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Once(fut), remote_addr=(server, 53))
    try:
        transport.sendto(query)
        return await fut
    finally:
        transport.close()


def make_sockets() -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets for 127.0.0.11:53 (call inside the container's namespace).

    As Docker's: they listen on random ports of 127.0.0.11, and nftables rules in the
    container's namespace redirect port 53 there, so the container may still run a DNS
    server of its own on 0.0.0.0:53. A restored daemon calls this again: the rules are
    replaced with the new ports.
    """
    from .firewall import dns_redirect_script, run_in_current_netns

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        for s in (udp, tcp):
            s.bind(("127.0.0.11", 0))
        tcp.listen(16)
        run_in_current_netns(dns_redirect_script("127.0.0.11", udp.getsockname()[1],
                                                 tcp.getsockname()[1]))
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp
