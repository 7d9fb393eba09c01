"""Published ports: validating the API's ExposedPorts/PortBindings and choosing host ports.

Pure logic apart from `port_free` (a bind(2) probe) and the kernel's ephemeral range: the
service decides, the firewall programs the result.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

from ..errors import Conflict, InvalidParameter

PROTOS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortRequest:
    proto: str
    container_port: int
    host_ip: str        # "" = every address (0.0.0.0)
    host_lo: int        # 0 = any free port of the ephemeral range
    host_hi: int


@dataclass(frozen=True)
class PortMapping:
    proto: str
    container_port: int
    host_ip: str        # "0.0.0.0" or one address
    host_port: int
    container_ip: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_port_key(key: Any) -> tuple[int, str]:
    """"80/tcp" -> (80, "tcp"); "80" means tcp."""
    if not isinstance(key, str) or not key:
        raise InvalidParameter(f"invalid port: {key!r}")
    num, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOS:
        raise InvalidParameter(f"invalid proto: {proto}")
    port = _port(num, key)
    if port == 0:
        raise InvalidParameter(f"invalid port: {key}: port 0 cannot be exposed")
    return port, proto


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or len(text) > 5:
        raise InvalidParameter(f"invalid port specification: {whole!r}")
    n = int(text)
    if n > 65535:
        raise InvalidParameter(f"invalid port specification: {whole!r}: out of range")
    return n


def _host_range(text: Any, whole: str) -> tuple[int, int]:
    if text is None or text == "":
        return 0, 0
    if not isinstance(text, str):
        raise InvalidParameter(f"invalid HostPort for {whole}: expected a string")
    lo, dash, hi = text.partition("-")
    a = _port(lo, text)
    b = _port(hi, text) if dash else a
    if a > b:
        raise InvalidParameter(f"invalid port range: {text}")
    if a == 0 and b != 0:
        raise InvalidParameter(f"invalid port range: {text}")
    return a, b


def _host_ip(text: Any) -> str:
    if text in (None, ""):
        return ""
    if not isinstance(text, str):
        raise InvalidParameter("invalid HostIp: expected a string")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidParameter(f"invalid host IP address: {text}") from None
    if addr.version != 4:
        # IPv6 publishing is not implemented: say so rather than pretend.
        raise InvalidParameter(f"invalid host IP address {text}: only IPv4 is supported")
    return "" if addr.is_unspecified else str(addr)


def exposed_ports(config: dict) -> list[tuple[int, str]]:
    out = []
    eps = config.get("ExposedPorts") or {}
    if not isinstance(eps, dict):
        raise InvalidParameter("invalid ExposedPorts: expected an object")
    for key in eps:
        out.append(parse_port_key(key))
    return sorted(set(out))


def requests(config: dict, host_config: dict) -> list[PortRequest]:
    """Everything a container asks to publish, validated (create time and start time)."""
    out: list[PortRequest] = []
    bindings = host_config.get("PortBindings") or {}
    if not isinstance(bindings, dict):
        raise InvalidParameter("invalid PortBindings: expected an object")
    bound: set[tuple[int, str]] = set()
    for key, items in bindings.items():
        port, proto = parse_port_key(key)
        if items is None:
            items = [{}]
        if not isinstance(items, list):
            raise InvalidParameter(f"invalid PortBindings for {key}: expected a list")
        bound.add((port, proto))
        for b in items or [{}]:
            if b is None:
                b = {}
            if not isinstance(b, dict):
                raise InvalidParameter(f"invalid PortBindings for {key}: expected objects")
            lo, hi = _host_range(b.get("HostPort"), key)
            out.append(PortRequest(proto, port, _host_ip(b.get("HostIp")), lo, hi))
    if host_config.get("PublishAllPorts"):
        for port, proto in exposed_ports(config):
            if (port, proto) not in bound:
                out.append(PortRequest(proto, port, "", 0, 0))
    seen = set()
    for r in out:
        if r.host_lo and r.host_lo == r.host_hi:
            k = (r.proto, r.host_ip, r.host_lo)
            if k in seen:
                raise InvalidParameter(
                    f"Bind for {r.host_ip or '0.0.0.0'}:{r.host_lo} failed: port is already allocated")
            seen.add(k)
    return out


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ip_local_port_range (Docker's port allocator uses the same)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            a, b = f.read().split()[:2]
        lo, hi = int(a), int(b)
        if 0 < lo <= hi <= 65535:
            return lo, hi
    except (OSError, ValueError):
        pass
    return 49153, 60999


def port_free(proto: str, host_ip: str, port: int) -> bool:
    """Can the host bind this port? (A process already listening makes Docker fail too.)"""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    if proto == "sctp":
        return True  # no cheap probe; our own table still guards against double use
    s = socket.socket(socket.AF_INET, kind)
    try:
        # TIME_WAIT leftovers of an old connection must not make a port look taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host_ip or "0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _clash(proto: str, ip: str, port: int, taken: Iterable[tuple[str, str, int]]) -> bool:
    for tproto, tip, tport in taken:
        if tproto == proto and tport == port and (tip == "0.0.0.0" or ip == "0.0.0.0" or tip == ip):
            return True
    return False


def assign(reqs: list[PortRequest], container_ip: str, taken: set[tuple[str, str, int]],
           free: Callable[[str, str, int], bool] = port_free,
           ephemeral: tuple[int, int] | None = None) -> list[PortMapping]:
    """Host ports for every request, or Conflict naming the port that cannot be had.

    `taken`: (proto, host_ip, port) already published by sampan; extended in place only when
    the whole set succeeds, so a failure leaves nothing allocated.
    """
    lo_e, hi_e = ephemeral or ephemeral_range()
    mine: set[tuple[str, str, int]] = set()
    out = []
    for r in reqs:
        ip = r.host_ip or "0.0.0.0"
        if r.host_lo:
            cands: Iterable[int] = range(r.host_lo, r.host_hi + 1)
        else:
            start = random.randint(lo_e, hi_e)
            cands = list(range(start, hi_e + 1)) + list(range(lo_e, start))
        chosen = 0
        host_busy = False
        for p in cands:
            if _clash(r.proto, ip, p, taken) or _clash(r.proto, ip, p, mine):
                continue
            if not free(r.proto, r.host_ip, p):
                host_busy = True
                continue
            chosen = p
            break
        if not chosen:
            if r.host_lo and r.host_lo == r.host_hi:
                if host_busy:
                    raise Conflict(f"failed to bind host port {ip}:{r.host_lo}/{r.proto}: address already in use")
                raise Conflict(f"Bind for {ip}:{r.host_lo} failed: port is already allocated")
            if r.host_lo:
                raise Conflict(f"Bind for {ip}:{r.host_lo}-{r.host_hi} failed: "
                               "all ports of the range are already allocated")
            raise Conflict("no free host port left in the ephemeral range")
        mine.add((r.proto, ip, chosen))
        out.append(PortMapping(r.proto, r.container_port, ip, chosen, container_ip))
    taken.update(mine)
    return out


def settings_ports(config: dict, mappings: list[dict]) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed port, with its bindings or null."""
    out: dict[str, Any] = {}
    for port, proto in exposed_ports(config):
        out[f"{port}/{proto}"] = None
    for m in mappings:
        key = f"{m['container_port']}/{m['proto']}"
        out.setdefault(key, None)
        if out[key] is None:
            out[key] = []
        out[key].append({"HostIp": m["host_ip"], "HostPort": str(m["host_port"])})
    return out


def summary_ports(config: dict, mappings: list[dict]) -> list[dict[str, Any]]:
    """The `Ports` of GET /containers/json."""
    out = []
    published = set()
    for m in mappings:
        published.add((m["container_port"], m["proto"]))
        out.append({"IP": m["host_ip"], "PrivatePort": m["container_port"],
                    "PublicPort": m["host_port"], "Type": m["proto"]})
    for port, proto in exposed_ports(config):
        if (port, proto) not in published:
            out.append({"PrivatePort": port, "Type": proto})
    return out
