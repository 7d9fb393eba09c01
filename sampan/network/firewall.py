"""NAT, published ports and isolation with nftables, in-process through libnftables.

Why libnftables over ctypes rather than the `nft`/`iptables` binaries: each exec costs
milliseconds (Podman's start path spends most of its time in ~30 of them); a call into the
library costs well under one. The daemon owns one table, `ip <table>`, rebuilt atomically
(`add table; delete table; table {...}` in one transaction) whenever networks change, and
published ports are elements of two maps, added and deleted one container at a time:

    pub_any: proto . host port              -> container ip . container port
    pub_ip:  host ip . proto . host port    -> container ip . container port

Hosts that also run iptables (here: iptables-nft with a FORWARD policy of DROP, left by
Docker) drop forwarded traffic in their own `ip filter` table whatever our table says, so
when that chain exists it gets a jump to a small chain of ours that accepts our bridges'
traffic, as Docker's own rules do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

from .. import rootless as _rootless
from ..errors import Internal, Unavailable
from ..rootless import ports as _rootless_ports

log = logging.getLogger("sampan.network.firewall")

NFT_CTX_OUTPUT_JSON = 1 << 4


class _Lib:
    """The few libnftables calls we need; one context, serialised by a lock."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            raise Unavailable(f"libnftables is not installed ({e}): apt-get install nftables") from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
        for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
            getattr(lib, fn).restype = ctypes.c_char_p
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.ctx = lib.nft_ctx_new(0)
        lib.nft_ctx_buffer_output(self.ctx)
        lib.nft_ctx_buffer_error(self.ctx)
        lib.nft_ctx_output_set_flags(self.ctx, NFT_CTX_OUTPUT_JSON)
        self.lock = threading.Lock()

    def run(self, cmd: str) -> tuple[int, str, str]:
        with self.lock:
            rc = self.lib.nft_run_cmd_from_buffer(self.ctx, cmd.encode())
            out = (self.lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode(errors="replace")
            err = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode(errors="replace")
        return rc, out, err


_lib: _Lib | None = None


_freer: Any = None


def _free_later(lib: Any, ctx: int) -> None:
    """nft_ctx_free waits 10-20 ms here (closing its netlink socket waits for an RCU grace
    period), so it runs on a thread of its own, off the container's start path."""
    global _freer
    if _freer is None:
        import concurrent.futures
        _freer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nft-free")
    _freer.submit(lib.nft_ctx_free, ctx)


def run_in_current_netns(cmd: str) -> None:
    """Run an nft script in the calling thread's network namespace.

    The shared context's netlink socket belongs to the namespace it was made in (the
    host's), so this makes a context of its own, uses it once and frees it.
    """
    lib = _nft().lib
    ctx = lib.nft_ctx_new(0)
    if not ctx:
        raise Internal("nftables: cannot make a context")
    try:
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        if lib.nft_run_cmd_from_buffer(ctx, cmd.encode()) != 0:
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
            raise Internal(f"nftables: {err.strip() or 'command failed'}")
    finally:
        _free_later(lib, ctx)


def dns_redirect_script(address: str, udp_port: int, tcp_port: int) -> str:
    """The container-side rules of the embedded DNS server, as Docker has them: queries to
    <address>:53 go to the ports the daemon's sockets really listen on, so port 53 stays free
    for a DNS server of the container's own. Replies are un-NATed by conntrack."""
    return "\n".join([
        "add table ip sampan-dns", "delete table ip sampan-dns", "table ip sampan-dns {",
        "  chain output {", "    type nat hook output priority -100; policy accept;",
        f"    ip daddr {address} udp dport 53 dnat to {address}:{int(udp_port)}",
        f"    ip daddr {address} tcp dport 53 dnat to {address}:{int(tcp_port)}",
        "  }", "}", ""])


def _nft() -> _Lib:
    global _lib
    if _lib is None:
        _lib = _Lib()
    return _lib


def nft(cmd: str, check: bool = True) -> str:
    rc, out, err = _nft().run(cmd)
    if rc != 0 and check:
        raise Internal(f"nftables: {err.strip() or 'command failed'}")
    return out


def nft_json(obj: Any, check: bool = True) -> str:
    return nft(json.dumps({"nftables": obj}), check=check)


@dataclass
class NetRules:
    bridge: str
    subnet: str
    internal: bool = False
    masquerade: bool = True


@dataclass
class Ruleset:
    table: str                      # our table in family ip
    networks: list[NetRules] = field(default_factory=list)
    ports: list[dict] = field(default_factory=list)   # PortMapping.to_json() dicts

    @property
    def forward_chain(self) -> str:
        return self.table.upper().replace("-", "_") + "-FORWARD"


def _key(m: dict) -> dict:
    if m["host_ip"] in ("", "0.0.0.0"):
        return {"concat": [m["proto"], int(m["host_port"])]}
    return {"concat": [m["host_ip"], m["proto"], int(m["host_port"])]}


def _map_of(m: dict) -> str:
    return "pub_any" if m["host_ip"] in ("", "0.0.0.0") else "pub_ip"


def _elem_text(m: dict) -> str:
    target = f"{m['container_ip']} . {int(m['container_port'])}"
    if m["host_ip"] in ("", "0.0.0.0"):
        return f"{m['proto']} . {int(m['host_port'])} : {target}"
    return f"{m['host_ip']} . {m['proto']} . {int(m['host_port'])} : {target}"


def render(rs: Ruleset) -> str:
    """The whole table as an nft script that replaces the old one atomically."""
    t = rs.table
    bridges = ", ".join(f'"{n.bridge}"' for n in rs.networks)
    any_elems = ", ".join(_elem_text(m) for m in rs.ports if _map_of(m) == "pub_any")
    ip_elems = ", ".join(_elem_text(m) for m in rs.ports if _map_of(m) == "pub_ip")
    lines = [f"add table ip {t}", f"delete table ip {t}", f"table ip {t} {{",
             "  set bridges {", "    type ifname"]
    if bridges:
        lines.append(f"    elements = {{ {bridges} }}")
    lines += ["  }",
              "  map pub_any {", "    type inet_proto . inet_service : ipv4_addr . inet_service"]
    if any_elems:
        lines.append(f"    elements = {{ {any_elems} }}")
    lines += ["  }",
              "  map pub_ip {", "    type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service"]
    if ip_elems:
        lines.append(f"    elements = {{ {ip_elems} }}")
    lines += ["  }",
              "  chain publish {",
              "    dnat ip to ip daddr . meta l4proto . th dport map @pub_ip",
              "    dnat ip to meta l4proto . th dport map @pub_any",
              "  }",
              "  chain prerouting {",
              "    type nat hook prerouting priority dstnat; policy accept;",
              "    fib daddr type local jump publish",
              "  }",
              "  chain output {",
              "    type nat hook output priority -100; policy accept;",
              "    fib daddr type local jump publish",
              "  }",
              "  chain postrouting {",
              "    type nat hook postrouting priority srcnat; policy accept;",
              # 127.0.0.1:port DNATed to a container: the container cannot answer 127.0.0.1.
              "    ip saddr 127.0.0.0/8 oifname @bridges masquerade"]
    for n in rs.networks:
        if n.masquerade and not n.internal:
            lines.append(f'    ip saddr {n.subnet} oifname != "{n.bridge}" masquerade')
        # Hairpin: a container reaching a published port of its own bridge (its own or a
        # neighbour's) through a host address is DNATed back out of the bridge it came from;
        # without the rewrite the answer would come straight from the target's address and
        # the client would drop it. Docker's userland proxy does this; here the kernel does.
        # (Matched on the source subnet: postrouting has no input interface.) Internal
        # networks publish nothing.
        if not n.internal:
            lines.append(f'    ip saddr {n.subnet} oifname "{n.bridge}" ct status dnat masquerade')
    lines += ["  }",
              "  chain forward {",
              "    type filter hook forward priority filter; policy accept;"]
    for n in rs.networks:
        if n.internal:
            lines.append(f'    iifname "{n.bridge}" oifname != "{n.bridge}" drop')
            lines.append(f'    oifname "{n.bridge}" iifname != "{n.bridge}" drop')
        else:
            # Docker's isolation: bridge networks do not reach each other.
            lines.append(f'    iifname "{n.bridge}" oifname @bridges oifname != "{n.bridge}" drop')
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def _filter_forward_exists() -> bool:
    rc, out, _ = _nft().run("list chain ip filter FORWARD")
    return rc == 0


def _jump_handles(chain: str) -> list[int]:
    rc, out, _ = _nft().run("list chain ip filter FORWARD")
    if rc != 0:
        return []
    handles = []
    for item in json.loads(out or "{}").get("nftables", []):
        rule = item.get("rule")
        if not rule:
            continue
        for e in rule.get("expr", []):
            if isinstance(e, dict) and (e.get("jump") or {}).get("target") == chain:
                handles.append(int(rule["handle"]))
    return handles


def _filter_script(rs: Ruleset) -> str:
    c = rs.forward_chain
    lines = [f"add chain ip filter {c}", f"flush chain ip filter {c}"]
    for n in rs.networks:
        b = n.bridge
        lines.append(f'add rule ip filter {c} iifname "{b}" accept')
        lines.append(f'add rule ip filter {c} oifname "{b}" ct state related,established accept')
        lines.append(f'add rule ip filter {c} oifname "{b}" ct status dnat accept')
    return "\n".join(lines) + "\n"


def apply(rs: Ruleset) -> None:
    """Make the kernel's rules match `rs` (idempotent; start-up and network changes)."""
    script = render(rs)
    if _filter_forward_exists():
        script += _filter_script(rs)
        if not _jump_handles(rs.forward_chain):
            script += f"insert rule ip filter FORWARD jump {rs.forward_chain}\n"
    nft(script)


def add_ports(table: str, mappings: Iterable[dict]) -> None:
    if _rootless.in_child():  # the host's ports reach us through slirp4netns (rootless.ports)
        mappings = list(mappings)
        _rootless_ports.forward(mappings)
        mappings = _rootless_ports.inside(mappings)
    cmds = [{"add": {"element": {"family": "ip", "table": table, "name": _map_of(m),
                                 "elem": [[_key(m), {"concat": [m["container_ip"], int(m["container_port"])]}]]}}}
            for m in mappings]
    if cmds:
        nft_json(cmds)


def delete_ports(table: str, mappings: Iterable[dict]) -> None:
    if _rootless.in_child():
        mappings = list(mappings)
        _rootless_ports.unforward(mappings)
        mappings = _rootless_ports.inside(mappings)
    for m in mappings:
        # One at a time and unchecked: an element already gone (rebuilt table) is fine.
        nft_json([{"delete": {"element": {"family": "ip", "table": table, "name": _map_of(m),
                                          "elem": [_key(m)]}}}], check=False)


def remove(rs: Ruleset) -> None:
    """Everything `apply` made: the daemon's table and its chain in `ip filter`."""
    nft(f"add table ip {rs.table}\ndelete table ip {rs.table}\n", check=False)
    for h in _jump_handles(rs.forward_chain):
        nft(f"delete rule ip filter FORWARD handle {h}", check=False)
    if _filter_forward_exists():
        nft(f"add chain ip filter {rs.forward_chain}\nflush chain ip filter {rs.forward_chain}\n"
            f"delete chain ip filter {rs.forward_chain}\n", check=False)


def list_table(table: str) -> dict | None:
    rc, out, _ = _nft().run(f"list table ip {table}")
    if rc != 0:
        return None
    return json.loads(out or "{}")
