"""IPAM: subnets, pools and addresses, as pure logic over what is already taken.

Nothing here touches the kernel or the database: the service passes in the networks' subnets,
the host's routes and the addresses in use, and stores what these functions pick in one
transaction. That keeps the rules (no address twice, pools that avoid host routes, gateway
and broadcast never handed out) unit-testable.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from ..errors import Conflict, InvalidParameter, Unavailable

IPv4Net = ipaddress.IPv4Network
IPv4Addr = ipaddress.IPv4Address

# Docker's defaults (libnetwork ipamutils): 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
DEFAULT_POOLS: tuple[tuple[str, int], ...] = tuple(
    [(f"172.{i}.0.0/16", 16) for i in range(17, 32)] + [("192.168.0.0/16", 20)])


def parse_subnet(text: str, what: str = "subnet") -> IPv4Net:
    """A CIDR the user gave: strict (no host bits), IPv4, not absurd."""
    if not isinstance(text, str) or not text:
        raise InvalidParameter(f"invalid {what}: empty")
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidParameter(f"invalid CIDR address: {text}") from None
    if net.version != 4:
        raise InvalidParameter(f"invalid {what} {text}: only IPv4 is supported")
    if "/" not in text:
        raise InvalidParameter(f"invalid CIDR address: {text}")
    if ipaddress.ip_interface(text).ip != net.network_address:
        raise InvalidParameter(f"invalid {what} {text}: it has host bits set (did you mean {net}?)")
    if net.prefixlen > 30:
        raise InvalidParameter(f"invalid {what} {text}: too small for a network (at most /30)")
    if net.is_loopback or net.is_multicast or net.is_link_local or net.is_unspecified:
        raise InvalidParameter(f"invalid {what} {text}: reserved address range")
    return net


def parse_address(text: str, what: str = "address") -> IPv4Addr:
    if not isinstance(text, str) or not text:
        raise InvalidParameter(f"invalid {what}: empty")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidParameter(f"invalid {what} {text!r}: not an IP address") from None
    if addr.version != 4:
        raise InvalidParameter(f"invalid {what} {text}: only IPv4 is supported")
    return addr


@dataclass(frozen=True)
class Pool:
    """One network's IPAM config: where addresses come from."""
    subnet: IPv4Net
    gateway: IPv4Addr
    ip_range: IPv4Net | None = None

    def to_config(self) -> dict[str, str]:
        out = {"Subnet": str(self.subnet), "Gateway": str(self.gateway)}
        if self.ip_range is not None:
            out["IPRange"] = str(self.ip_range)
        return out

    @classmethod
    def from_config(cls, cfg: dict[str, str]) -> "Pool":
        rng = cfg.get("IPRange")
        return cls(IPv4Net(cfg["Subnet"]), IPv4Addr(cfg["Gateway"]), IPv4Net(rng) if rng else None)

    def usable(self, addr: IPv4Addr) -> bool:
        """May `addr` be given to a container? Not the network, broadcast or gateway address."""
        if addr not in self.subnet or addr == self.gateway:
            return False
        if addr in (self.subnet.network_address, self.subnet.broadcast_address):
            return False
        return True


def make_pool(subnet: str, gateway: str | None = None, ip_range: str | None = None) -> Pool:
    """Validate a user's --subnet/--gateway/--ip-range the way Docker does."""
    net = parse_subnet(subnet)
    if gateway:
        gw = parse_address(gateway, "gateway")
        if gw not in net:
            raise InvalidParameter(f"gateway {gateway} is not in subnet {net}")
        if gw in (net.network_address, net.broadcast_address):
            raise InvalidParameter(f"gateway {gateway} is the network or broadcast address of {net}")
    else:
        gw = net.network_address + 1
    rng = None
    if ip_range:
        rng = parse_subnet(ip_range, "ip-range")
        if not rng.subnet_of(net):
            raise InvalidParameter(f"ip-range {ip_range} is not within subnet {net}")
    return Pool(net, gw, rng)


def overlaps(net: IPv4Net, others: Iterable[IPv4Net]) -> IPv4Net | None:
    for o in others:
        if net.overlaps(o):
            return o
    return None


def pick_subnet(pools: Iterable[tuple[str, int]], taken: Iterable[IPv4Net],
                routes: Iterable[IPv4Net]) -> IPv4Net:
    """The first subnet of the address pools that overlaps neither a network nor a route."""
    taken = list(taken)
    routes = [r for r in routes if r.prefixlen > 0]  # the default route overlaps everything
    for base, size in pools:
        bnet = IPv4Net(base, strict=False)
        if size < bnet.prefixlen:
            continue
        for cand in bnet.subnets(new_prefix=size):
            if overlaps(cand, taken) or overlaps(cand, routes):
                continue
            return cand
    raise Unavailable("could not find an available, non-overlapping IPv4 address pool "
                      "among the defaults to assign to the network")


def parse_pools(value: object) -> list[tuple[str, int]]:
    """daemon.json `default-address-pools`: [{"base": "10.10.0.0/16", "size": 24}]."""
    if value is None:
        return list(DEFAULT_POOLS)
    if not isinstance(value, list):
        raise InvalidParameter("default-address-pools: expected a list")
    out = []
    for p in value:
        if not isinstance(p, dict) or not isinstance(p.get("base"), str) or not isinstance(p.get("size"), int):
            raise InvalidParameter("default-address-pools: entries need base (CIDR) and size (int)")
        net = parse_subnet(p["base"], "address pool base")
        if not net.prefixlen <= p["size"] <= 30:
            raise InvalidParameter(f"default-address-pools: invalid size {p['size']} for {net}")
        out.append((str(net), p["size"]))
    return out


def allocate(pool: Pool, used: set[IPv4Addr], last: IPv4Addr | None = None,
             wanted: str | None = None) -> IPv4Addr:
    """An address of `pool` that is not in `used`.

    `wanted` (--ip): exactly that one or an error. Otherwise the search starts after `last`
    (the network's previous allocation) and wraps, as Docker's bitmap allocator does, so an
    address freed a moment ago is not handed straight to the next container.
    """
    if wanted:
        addr = parse_address(wanted, "IP address")
        if not pool.usable(addr):
            raise InvalidParameter(f"invalid IP address {wanted}: not a usable address of {pool.subnet}")
        if addr in used:
            raise Conflict(f"Address already in use: {wanted}")
        return addr
    rng = pool.ip_range or pool.subnet
    first, last_addr = int(rng.network_address), int(rng.broadcast_address)
    count = last_addr - first + 1
    start = first
    if last is not None and first <= int(last) <= last_addr:
        start = int(last) + 1
    for i in range(count):
        cand = IPv4Addr(first + (start - first + i) % count)
        if cand not in used and pool.usable(cand):
            return cand
    raise Unavailable(f"no available IPv4 addresses on this network's address pools: {rng}")


def parse_proc_routes(text: str) -> list[IPv4Net]:
    """/proc/net/route: the host's IPv4 routes (hex, little-endian), default route dropped."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            dest = IPv4Addr(int.from_bytes(bytes.fromhex(f[1]), "little"))
            mask = IPv4Addr(int.from_bytes(bytes.fromhex(f[7]), "little"))
            net = IPv4Net(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        if net.prefixlen:
            out.append(net)
    return out


def host_routes() -> list[IPv4Net]:
    try:
        with open("/proc/net/route") as f:
            return parse_proc_routes(f.read())
    except OSError:
        return []


def mac_for(addr: IPv4Addr) -> str:
    """Docker's generated MAC: 02:42 then the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in addr.packed)


def parse_mac(text: str) -> str:
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise InvalidParameter(f"invalid MAC address: {text}")
    try:
        b = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise InvalidParameter(f"invalid MAC address: {text}") from None
    if b[0] & 1:
        raise InvalidParameter(f"invalid MAC address: {text}: multicast")
    return text.lower()
