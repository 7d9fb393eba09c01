"""A few rtnetlink requests, packed by hand, for the container start path.

pyroute2 is a fine general netlink library (the daemon uses it for bridges and everything
done once at start-up), but building its message objects costs milliseconds of Python per
request, and opening an IPRoute inside a container's namespace costs more. A container
start needs exactly four requests (veth pair, address, link up, default route), whose
layout is fixed, so they are packed here with `struct` and sent on a plain netlink socket:
the three made inside the namespace go out as one datagram and are acknowledged together.

Layouts (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/veth.h): every message is
an nlmsghdr followed by a fixed header (ifinfomsg, ifaddrmsg or rtmsg) and attributes, each
attribute a (len, type) pair padded to four bytes.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Iterable

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_GATEWAY = 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RT_SCOPE_HOST, RTN_UNICAST = 254, 3, 0, 254, 1

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")
_NLMSGERR = struct.Struct("=i")

CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL


class NetlinkError(OSError):
    pass


def _pad(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    n = _RTATTR.size + len(payload)
    return _RTATTR.pack(n, kind) + payload + b"\0" * (_pad(n) - n)


def _str(s: str) -> bytes:
    return s.encode() + b"\0"


def _u32(v: int) -> bytes:
    return struct.pack("=I", v)


def _mac(mac: str) -> bytes:
    return bytes(int(b, 16) for b in mac.split(":"))


def message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def veth_pair(seq: int, host: str, peer: str, *, mtu: int, master: int, peer_ns_fd: int,
              peer_mac: str | None) -> bytes:
    """RTM_NEWLINK for a veth pair: host end up and enslaved, peer created in another netns."""
    peer_attrs = attr(IFLA_IFNAME, _str(peer)) + attr(IFLA_MTU, _u32(mtu)) \
        + attr(IFLA_NET_NS_FD, _u32(peer_ns_fd))
    if peer_mac:
        peer_attrs += attr(IFLA_ADDRESS, _mac(peer_mac))
    peer_info = attr(VETH_INFO_PEER, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + peer_attrs)
    linkinfo = attr(IFLA_INFO_KIND, _str("veth")) + attr(IFLA_INFO_DATA, peer_info)
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) \
        + attr(IFLA_IFNAME, _str(host)) + attr(IFLA_MTU, _u32(mtu)) \
        + attr(IFLA_MASTER, _u32(master)) + attr(IFLA_LINKINFO, linkinfo)
    return message(RTM_NEWLINK, CREATE, seq, body)


def add_address(seq: int, index: int, address: str, prefixlen: int) -> bytes:
    """RTM_NEWADDR with the broadcast address `ip addr add … brd +` would compute."""
    ip = ipaddress.ip_interface(f"{address}/{prefixlen}")
    if ip.version != 4:
        family = socket.AF_INET6
        attrs = attr(IFA_ADDRESS, ip.ip.packed) + attr(IFA_LOCAL, ip.ip.packed)
    else:
        family = socket.AF_INET
        attrs = attr(IFA_LOCAL, ip.ip.packed) + attr(IFA_ADDRESS, ip.ip.packed)
        if prefixlen < 31:
            attrs += attr(IFA_BROADCAST, ip.network.broadcast_address.packed)
    # Loopback addresses get host scope, as `ip addr add` gives them (the kernel refuses
    # 127/8 with universe scope once the device is up).
    scope = RT_SCOPE_HOST if ip.ip.is_loopback else RT_SCOPE_UNIVERSE
    body = _IFADDRMSG.pack(family, prefixlen, 0, scope, index) + attrs
    return message(RTM_NEWADDR, CREATE, seq, body)


def link_up(seq: int, index: int) -> bytes:
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, IFF_UP, IFF_UP)
    return message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def default_route(seq: int, gateway: str) -> bytes:
    gw = ipaddress.ip_address(gateway)
    family = socket.AF_INET if gw.version == 4 else socket.AF_INET6
    body = _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                       RTN_UNICAST, 0) + attr(RTA_GATEWAY, gw.packed)
    return message(RTM_NEWROUTE, CREATE, seq, body)


class Socket:
    """A NETLINK_ROUTE socket in the namespace of the thread that opened it.

    A netlink socket stays bound to the network namespace it was created in, so one opened
    while the thread is inside a container's namespace configures that namespace.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0

    def seq(self) -> int:
        self._seq += 1
        return self._seq

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Socket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, messages: Iterable[bytes]) -> None:
        """Send the messages as one datagram and wait for every acknowledgement.

        The kernel handles them in order; the first error is raised (with the kernel's
        errno) once all answers are in, so the socket is never left with stale replies.
        """
        msgs = list(messages)
        want = {_NLMSGHDR.unpack_from(m)[3] for m in msgs}
        self.sock.send(b"".join(msgs))
        first_error = 0
        while want:
            data = self.sock.recv(65536)
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, off)
                if length < _NLMSGHDR.size:
                    break
                if kind == NLMSG_ERROR and seq in want:
                    code = -_NLMSGERR.unpack_from(data, off + _NLMSGHDR.size)[0]
                    want.discard(seq)
                    if code and not first_error:
                        first_error = code
                off += _pad(length)
        if first_error:
            raise NetlinkError(first_error, os.strerror(first_error))
