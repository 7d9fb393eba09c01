"""NetworkService: Docker's network model over the store, the kernel and the firewall.

This module holds networks (create, inspect, list, remove, prune) and what a container asks
for at create time; `sandbox.py` holds what happens when containers start, stop, connect and
disconnect. The engine calls:

    validate_create(config, host_config, networking_config) -> plan   (create; raises 4xx)
    on_create(cid, plan)                                                (after the row is saved)
    await setup(c) -> {"ns_paths": {...}}                               (start, before the spec)
    await release(c)                                                    (exit / failed start)
    await on_remove(c)                                                  (rm)
    settings(c), summary(c)                                             (inspect / ps shapes)
    await start(); await restore()                                      (daemon start-up)
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
from typing import Any

from ..errors import Conflict, Forbidden, InvalidParameter, NotFound, Unavailable
from . import firewall, ipam, netlink, ports as _ports
from .etcfiles import parse_extra_host
from .sandbox import SandboxMixin
from .store import Store

log = logging.getLogger("sampan.network")

DEFAULT_EXEC_ROOT = "/run/sampan"
BUILTIN = ("bridge", "host", "none")
DEFAULT_MTU = 1500


def daemon_tag(exec_root: str) -> str:
    return "" if exec_root == DEFAULT_EXEC_ROOT else hashlib.sha256(exec_root.encode()).hexdigest()[:6]


def table_name(tag: str) -> str:
    return "sampan" if not tag else f"sampan-{tag}"


def _now() -> str:
    from ..engine.container import now_rfc3339
    return now_rfc3339()


class NetworkService(SandboxMixin):
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.config = engine.config
        self.store = Store(engine.db)
        self.worker = netlink.Worker()
        # pyroute2 logs every netlink message at DEBUG: far too much for `sampand --debug`.
        logging.getLogger("pyroute2").setLevel(logging.WARNING)
        extra = self.config.extra
        # Side-by-side daemons (tests, several instances) must not fight over one bridge or
        # one nft table: anything but the default exec root gets its own suffix.
        self.tag = daemon_tag(str(self.config.exec_root))
        self.table = table_name(self.tag)
        self.default_bridge = str(extra.get("bridge") or ("sampan0" if not self.tag else f"sampan-{self.tag}"))
        netlink.check_ifname(self.default_bridge)
        self.pools = ipam.parse_pools(extra.get("default-address-pools"))
        self.bip = extra.get("bip")
        self.mtu = int(extra.get("mtu") or DEFAULT_MTU)
        self.netns_dir = str(self.config.exec_root / "netns")
        self._init_sandboxes()

    # -- lookup ------------------------------------------------------------------------------
    def get(self, ref: str) -> dict[str, Any]:
        if not isinstance(ref, str) or not ref:
            raise NotFound("network  not found")
        nets = self.store.networks
        if ref in nets:
            return nets[ref]
        for n in nets.values():
            if n["Name"] == ref:
                return n
        matches = [n for n in nets.values() if n["Id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(matches)} matches found on name)")
        raise NotFound(f"network {ref} not found")

    def by_name(self, name: str) -> dict[str, Any]:
        return self.get("bridge" if name == "default" else name)

    def bridge_network(self) -> dict[str, Any]:
        return self.by_name("bridge")

    def is_user_defined(self, n: dict[str, Any]) -> bool:
        return n["Name"] not in BUILTIN

    # -- start-up ------------------------------------------------------------------------------
    def _ensure_builtin(self) -> None:
        have = {n["Name"] for n in self.store.networks.values()}
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in have:
                self.store.save_network(self._record(name, driver, [], {}, {}, internal=False))
        bridge = next((n for n in self.store.networks.values() if n["Name"] == "bridge"), None)
        if self.bip:
            try:
                iface = ipaddress.ip_interface(str(self.bip))
            except ValueError:
                raise InvalidParameter(f"invalid bip {self.bip!r}: expected an address/prefix") from None
            pool = ipam.Pool(iface.network, iface.ip)  # type: ignore[arg-type]
        elif bridge is not None:
            pool = ipam.Pool.from_config(bridge["IPAM"]["Config"][0])
        else:
            taken = [ipam.Pool.from_config(c).subnet for n in self.store.networks.values()
                     for c in n["IPAM"]["Config"]]
            pool = ipam.make_pool(str(ipam.pick_subnet(self.pools, taken, ipam.host_routes())))
        opts = {
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.bridge.name": self.default_bridge,
            "com.docker.network.driver.mtu": str(self.mtu),
        }
        if bridge is None:
            self.store.save_network(self._record("bridge", "bridge", [pool.to_config()], opts, {},
                                                 internal=False, bridge=self.default_bridge))
        elif bridge["IPAM"]["Config"] != [pool.to_config()] or bridge.get("bridge") != self.default_bridge:
            if self.store.endpoints_on(bridge["Id"]):
                log.warning("default bridge settings changed but containers use it: kept %s",
                            bridge["IPAM"]["Config"])
            else:
                bridge["IPAM"]["Config"] = [pool.to_config()]
                bridge["bridge"] = self.default_bridge
                bridge["Options"] = opts
                self.store.save_network(bridge)

    def _record(self, name: str, driver: str, configs: list[dict], options: dict, labels: dict,
                internal: bool, bridge: str | None = None, attachable: bool = False) -> dict[str, Any]:
        nid = secrets.token_hex(32)
        return {
            "Name": name, "Id": nid, "Created": _now(), "Scope": "local", "Driver": driver,
            "EnableIPv4": True, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None if driver != "bridge" else {}, "Config": configs},
            "Internal": internal, "Attachable": attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Options": options, "Labels": labels,
            "bridge": bridge or "",
        }

    def _bridges(self) -> list[dict[str, Any]]:
        return [n for n in self.store.networks.values() if n["Driver"] == "bridge"]

    def ruleset(self) -> firewall.Ruleset:
        nets = []
        for n in self._bridges():
            cfg = n["IPAM"]["Config"][0]
            masq = n["Options"].get("com.docker.network.bridge.enable_ip_masquerade", "true") != "false"
            nets.append(firewall.NetRules(n["bridge"], cfg["Subnet"], n["Internal"], masq))
        return firewall.Ruleset(self.table, nets, list(self.store.all_ports()))

    def _kernel_sync(self) -> None:
        """(worker) Bridges and rules as the store says; idempotent."""
        netlink.enable_forwarding()
        netlink.prepare_netns_dir(self.netns_dir)
        for n in self._bridges():
            cfg = n["IPAM"]["Config"][0]
            net = ipaddress.ip_network(cfg["Subnet"])
            netlink.ensure_bridge(n["bridge"], cfg["Gateway"], net.prefixlen, self.mtu)
        try:
            firewall.apply(self.ruleset())
        except Unavailable as e:
            # Containers still get addresses; only NAT and published ports need nftables
            # (a container asking for them then fails to start with this message).
            log.error("no firewall: %s", e)

    async def start(self) -> None:
        self._ensure_builtin()
        await self._run(self._kernel_sync)

    async def _run(self, fn: Any, *args: Any) -> Any:
        import asyncio
        return await asyncio.wrap_future(self.worker.submit(fn, *args))

    def close(self) -> None:
        self.worker.close()

    # -- networks API --------------------------------------------------------------------------
    async def create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidParameter("invalid network config: expected a JSON object")
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise InvalidParameter("network name is required")
        from ..engine.container import NAME_RE
        if not NAME_RE.match(name) or name.startswith("/"):
            raise InvalidParameter(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if name in BUILTIN:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        if any(n["Name"] == name for n in self.store.networks.values()):
            raise Conflict(f"network with name {name} already exists")
        driver = body.get("Driver") or "bridge"
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        if body.get("EnableIPv6"):
            raise InvalidParameter("IPv6 networks are not supported")
        labels = body.get("Labels") or {}
        options = body.get("Options") or {}
        ipam_body = body.get("IPAM") or {}
        if not isinstance(labels, dict) or not isinstance(options, dict) or not isinstance(ipam_body, dict):
            raise InvalidParameter("invalid network config: Labels, Options and IPAM must be objects")
        if not all(isinstance(k, str) and isinstance(v, str) for d in (labels, options) for k, v in d.items()):
            raise InvalidParameter("invalid network config: Labels and Options are string maps")
        if (ipam_body.get("Driver") or "default") != "default":
            raise NotFound(f'plugin "{ipam_body["Driver"]}" not found')
        configs = ipam_body.get("Config") or []
        if not isinstance(configs, list) or len(configs) > 1 or not all(isinstance(c, dict) for c in configs):
            raise InvalidParameter("invalid IPAM config: at most one IPv4 pool is supported")
        taken = [ipaddress.ip_network(c["Subnet"]) for n in self.store.networks.values()
                 for c in n["IPAM"]["Config"]]
        if configs and configs[0].get("Subnet"):
            c = configs[0]
            pool = ipam.make_pool(c["Subnet"], c.get("Gateway") or None, c.get("IPRange") or None)
            clash = ipam.overlaps(pool.subnet, taken)
            if clash is not None:
                raise Forbidden(f"Pool overlaps with other one on this address space ({pool.subnet} and {clash})")
        elif configs and (configs[0].get("Gateway") or configs[0].get("IPRange")):
            raise InvalidParameter("a gateway or ip-range needs a subnet (--subnet)")
        else:
            pool = ipam.make_pool(str(ipam.pick_subnet(self.pools, taken, ipam.host_routes())))
        nid = secrets.token_hex(32)
        bridge = options.get("com.docker.network.bridge.name") or f"br-{nid[:12]}"
        netlink.check_ifname(bridge)
        if any(n.get("bridge") == bridge for n in self.store.networks.values()):
            raise Conflict(f"bridge name {bridge} is already used by another network")
        rec = self._record(name, "bridge", [pool.to_config()], dict(options), dict(labels),
                           internal=bool(body.get("Internal")), bridge=bridge,
                           attachable=bool(body.get("Attachable")))
        rec["Id"] = nid
        self.store.save_network(rec)
        try:
            await self._run(self._kernel_sync)
        except Exception:
            self.store.delete_network(nid)
            await self._run(netlink.delete_link, bridge)
            raise
        return {"Id": nid, "Warning": ""}

    def _users(self, n: dict[str, Any]) -> list[str]:
        return [cid for cid, att in self.store.attachments.items() if n["Id"] in att]

    async def remove(self, ref: str) -> None:
        n = self.get(ref)
        if n["Name"] in BUILTIN:
            raise Forbidden(f"{n['Name']} is a pre-defined network and cannot be removed")
        if self.store.endpoints_on(n["Id"]):
            raise Forbidden(f"error while removing network: network {n['Name']} id {n['Id']} has active endpoints")
        # Stopped containers attached to it lose the attachment, as in Docker.
        self.store.delete_network(n["Id"])
        await self._run(self._remove_bridge, n["bridge"])

    def _remove_bridge(self, bridge: str) -> None:
        netlink.delete_link(bridge)
        firewall.apply(self.ruleset())

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        deleted = []
        for n in list(self.store.networks.values()):
            if n["Name"] in BUILTIN or self._users(n) or not _label_match(n, filters.get("label", [])):
                continue
            try:
                await self.remove(n["Id"])
            except Forbidden:
                continue
            deleted.append(n["Name"])
        return {"NetworksDeleted": deleted or None}

    def inspect(self, ref: str) -> dict[str, Any]:
        n = self.get(ref)
        out = {k: v for k, v in n.items() if k != "bridge" and not k.startswith("_")}
        containers = {}
        for e in self.store.endpoints_on(n["Id"]):
            try:
                c = self.engine.containers.get(e.container_id)
            except NotFound:
                continue
            containers[e.container_id] = {"Name": c.name, "EndpointID": e.id, "MacAddress": e.mac,
                                          "IPv4Address": f"{e.address}/{e.prefixlen}", "IPv6Address": ""}
        out["Containers"] = containers
        return out

    def list(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        for key in filters:
            if key not in ("name", "id", "driver", "label", "type", "scope", "dangling"):
                raise InvalidParameter(f"invalid filter '{key}'")
        out = []
        for n in sorted(self.store.networks.values(), key=lambda n: n["Created"]):
            if "name" in filters and not any(v in n["Name"] for v in filters["name"]):
                continue
            if "id" in filters and not any(n["Id"].startswith(v) for v in filters["id"]):
                continue
            if "driver" in filters and n["Driver"] not in filters["driver"]:
                continue
            if "scope" in filters and n["Scope"] not in filters["scope"]:
                continue
            if "type" in filters:
                for v in filters["type"]:
                    if v not in ("custom", "builtin"):
                        raise InvalidParameter(f"invalid filter: 'type'='{v}'")
                kind = "custom" if self.is_user_defined(n) else "builtin"
                if kind not in filters["type"]:
                    continue
            if "dangling" in filters:
                want = filters["dangling"][0].lower() in ("1", "true")
                if want != (self.is_user_defined(n) and not self._users(n)):
                    continue
            if not _label_match(n, filters.get("label", [])):
                continue
            out.append(self.inspect(n["Id"]))
        return out

    # -- what a container asks for (create time) ------------------------------------------------
    def validate_create(self, config: dict, host: dict, networking: Any) -> list[tuple[str, dict]]:
        """Check NetworkMode, NetworkingConfig, ports, DNS and host entries; the attachments."""
        mode = host.get("NetworkMode") or "default"
        _ports.requests(config, host)  # 400 on a bad port spec, whatever the mode
        for d in host.get("Dns") or []:
            try:
                ipaddress.ip_address(d)
            except (ValueError, TypeError):
                raise InvalidParameter(f"invalid DNS server address: {d!r}") from None
        for h in host.get("ExtraHosts") or []:
            parse_extra_host(h, "0.0.0.0")
        if config.get("MacAddress"):
            ipam.parse_mac(config["MacAddress"])
        eps = {}
        if networking is not None:
            if not isinstance(networking, dict):
                raise InvalidParameter("invalid NetworkingConfig: expected an object")
            eps = networking.get("EndpointsConfig")
            if eps is None:
                eps = {}
            if not isinstance(eps, dict):
                raise InvalidParameter("invalid NetworkingConfig.EndpointsConfig: expected an object")
        if mode == "host" or mode == "none" or mode.startswith("container:"):
            if mode.startswith("container:"):
                other = mode.split(":", 1)[1]
                self.engine.containers.get(other)  # NotFound if it does not exist
                if host.get("PortBindings") or host.get("PublishAllPorts"):
                    raise InvalidParameter("conflicting options: port publishing and the container type network mode")
                if config.get("Hostname"):
                    raise InvalidParameter("conflicting options: hostname and the network mode")
            if mode != "host" and host.get("ExtraHosts") and mode.startswith("container:"):
                raise InvalidParameter("conflicting options: custom host-to-IP mapping and the network mode")
            extra = [k for k in eps if k not in (mode, mode.split(":")[0])]
            if extra:
                raise InvalidParameter(f"container cannot be connected to network {extra[0]!r} "
                                       f"in network mode {mode}")
            return []
        primary = self.by_name(mode)
        items: list[tuple[str, dict]] = []
        seen = set()
        order = [mode] + [k for k in eps if k != mode]
        for key in order:
            n = self.by_name(key)
            if n["Id"] in seen:
                continue
            if n["Driver"] != "bridge":
                raise InvalidParameter(f"container cannot be connected to {n['Name']} and to other networks")
            seen.add(n["Id"])
            raw = eps.get(key)
            if raw is None and key == mode:
                raw = eps.get(n["Name"]) or eps.get(n["Id"]) or {}
            cfg = self.endpoint_config(n, raw or {})
            if n is primary and config.get("MacAddress") and not cfg.get("MacAddress"):
                cfg["MacAddress"] = ipam.parse_mac(config["MacAddress"])
            items.append((n["Id"], cfg))
        links = host.get("Links") or []
        for link in links:
            target, _ = parse_link(link)
            self.engine.containers.get(target)
        return items

    def endpoint_config(self, n: dict, raw: Any) -> dict[str, Any]:
        """An EndpointSettings body, validated against network `n`."""
        if not isinstance(raw, dict):
            raise InvalidParameter("invalid endpoint settings: expected an object")
        cfg: dict[str, Any] = {}
        aliases = raw.get("Aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            raise InvalidParameter("invalid Aliases: expected a list of names")
        if aliases and not self.is_user_defined(n):
            raise InvalidParameter("network-scoped alias is supported only for containers in user defined networks")
        cfg["Aliases"] = list(dict.fromkeys(aliases)) or None
        ipc = raw.get("IPAMConfig") or {}
        if not isinstance(ipc, dict):
            raise InvalidParameter("invalid IPAMConfig: expected an object")
        ip4 = ipc.get("IPv4Address") or ""
        if ipc.get("IPv6Address"):
            raise InvalidParameter("IPv6 addresses are not supported")
        if ip4:
            if not self.is_user_defined(n):
                raise InvalidParameter("user specified IP address is supported on user defined networks only")
            pool = ipam.Pool.from_config(n["IPAM"]["Config"][0])
            addr = ipam.parse_address(ip4, "IPv4 address")
            if not pool.usable(addr):
                raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {ip4}")
            cfg["IPAMConfig"] = {"IPv4Address": str(addr)}
        else:
            cfg["IPAMConfig"] = None
        links = raw.get("Links") or []
        if not isinstance(links, list) or not all(isinstance(x, str) for x in links):
            raise InvalidParameter("invalid Links: expected a list of strings")
        for link in links:
            parse_link(link)
        cfg["Links"] = links or None
        mac = raw.get("MacAddress") or ""
        cfg["MacAddress"] = ipam.parse_mac(mac) if mac else ""
        cfg["DriverOpts"] = raw.get("DriverOpts") or None
        return cfg

    def on_create(self, cid: str, items: list[tuple[str, dict]]) -> None:
        if items:
            self.store.set_attachments(cid, items)


def parse_link(link: Any) -> tuple[str, str]:
    """`name:alias`, `name`, or the daemon's stored form `/name:/container/alias`."""
    if not isinstance(link, str) or not link:
        raise InvalidParameter(f"invalid link: {link!r}")
    name, _, alias = link.partition(":")
    name = name.lstrip("/")
    alias = alias.rsplit("/", 1)[-1] if alias else name
    if not name or not alias:
        raise InvalidParameter(f"invalid link format: {link}")
    return name, alias


def _label_match(n: dict, wanted: list[str]) -> bool:
    labels = n.get("Labels") or {}
    for w in wanted:
        k, sep, v = w.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True
