"""A container's network sandbox: its namespace, endpoints, published ports and DNS.

Order of a start (`setup`): choose addresses and host ports and record them (one
transaction: the database refuses a doubly used address) -> on the netlink worker, make the
namespace and veths and add the port map elements -> serve DNS -> write /etc/hosts and
/etc/resolv.conf. Any failure undoes all of it, so a container whose port is taken stays
`created`, with nothing left in the kernel. A crash between the steps leaves records whose
container is not running, and `restore` tears those down.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import sqlite3
import time
from typing import Any

from ..errors import Conflict, Forbidden, InvalidParameter, NotFound
from . import dns, etcfiles, firewall, ipam, netlink, ports as _ports
from .store import Endpoint, Sandbox

log = logging.getLogger("sampan.network")


class SandboxMixin:
    # Provided by NetworkService.
    engine: Any
    store: Any
    config: Any
    table: str
    mtu: int
    netns_dir: str

    def _init_sandboxes(self) -> None:
        self.resolver = dns.Resolver(self._dns_lookup, self._dns_reverse, self._dns_upstreams)

    # -- helpers -----------------------------------------------------------------------------
    def netns_path(self, cid: str) -> str:
        return os.path.join(self.netns_dir, cid)

    def _plan(self, e: Endpoint, default_route: bool) -> netlink.EndpointPlan:
        n = self.store.networks[e.network_id]
        return netlink.EndpointPlan(bridge=n["bridge"], host_veth=e.host_veth, ifname=e.ifname,
                                    address=e.address, prefixlen=e.prefixlen, gateway=e.gateway,
                                    mac=e.mac, mtu=self.mtu, default_route=default_route)

    def _gateway_endpoint(self, cid: str) -> Endpoint | None:
        """The endpoint that gives the container the outside world (first non-internal)."""
        for nid, _ in self.store.attached(cid):
            n = self.store.networks.get(nid)
            if n is None or n["Internal"]:
                continue
            for e in self.store.endpoints_of(cid):
                if e.network_id == nid:
                    return e
        return None

    def _new_endpoint(self, cid: str, nid: str, cfg: dict, index: int, chosen: set[str]) -> Endpoint:
        n = self.store.networks[nid]
        pool = ipam.Pool.from_config(n["IPAM"]["Config"][0])
        used = {ipaddress.IPv4Address(a) for a in self.store.used_addresses(nid) | chosen}
        last = n.get("_last")
        wanted = (cfg.get("IPAMConfig") or {}).get("IPv4Address")
        addr = ipam.allocate(pool, used, ipaddress.IPv4Address(last) if last else None, wanted)
        if not wanted:
            n["_last"] = str(addr)
        chosen.add(str(addr))
        used_names = {e.host_veth for e in self.store.endpoints.values()}
        veth = "veth" + secrets.token_hex(4)[:7]
        while veth in used_names:
            veth = "veth" + secrets.token_hex(4)[:7]
        return Endpoint(id=secrets.token_hex(32), container_id=cid, network_id=nid, address=str(addr),
                        prefixlen=pool.subnet.prefixlen, gateway=str(pool.gateway),
                        mac=cfg.get("MacAddress") or ipam.mac_for(addr), host_veth=veth,
                        ifname=f"eth{index}")

    # -- start ---------------------------------------------------------------------------------
    async def setup(self, c: Any) -> dict[str, Any]:
        """Everything the container's network needs before its process starts."""
        mode = c.network_mode()
        if mode == "host":
            self._write_etc(c, [], host_net=True)
            return {"ns_paths": {}}
        if mode == "none":
            self._write_etc(c, [], host_net=False)
            return {"ns_paths": {}}
        if mode.startswith("container:"):
            return self._join_container(c, mode.split(":", 1)[1])
        if c.id in self.store.sandboxes:
            await self.release(c)
        items = self.store.attached(c.id)
        if not items:
            # Created before networks were recorded: Docker's default, the bridge network.
            items = [(self.bridge_network()["Id"], self.endpoint_config(self.bridge_network(), {}))]  # type: ignore[attr-defined]
            self.store.set_attachments(c.id, items)
        eps: list[Endpoint] = []
        nets: list[dict] = []
        chosen: set[str] = set()
        for nid, cfg in items:
            if nid not in self.store.networks:
                continue  # the network was removed while the container was stopped
            eps.append(self._new_endpoint(c.id, nid, cfg, len(eps), chosen))
            nets.append(self.store.networks[nid])
        gw = next((e for e in eps if not self.store.networks[e.network_id]["Internal"]), None)
        reqs = _ports.requests(c.config, c.host_config)
        taken = {(m["proto"], m["host_ip"], m["host_port"]) for m in self.store.all_ports()}
        try:
            mappings = _ports.assign(reqs, gw.address, taken) if (reqs and gw) else []
        except Conflict as e:
            raise Conflict(f"driver failed programming external connectivity on endpoint {c.name} "
                           f"({eps[0].id if eps else ''}): {e}") from None
        use_dns = any(self.is_user_defined(n) for n in nets)  # type: ignore[attr-defined]
        sb = Sandbox(c.id, self.netns_path(c.id), [m.to_json() for m in mappings], use_dns)
        try:
            self.store.add_endpoints(eps, nets, sandbox=sb)
        except sqlite3.IntegrityError:
            raise Conflict("Address already in use") from None
        plans = [self._plan(e, default_route=(e is gw)) for e in eps]
        t0 = time.perf_counter()
        try:
            socks = await self._run(self._kernel_setup, sb, plans)  # type: ignore[attr-defined]
            log.debug("network of %s set up in %.1f ms", c.id[:12], (time.perf_counter() - t0) * 1000)
        except BaseException:
            self.store.drop_sandbox(c.id)
            raise
        try:
            if socks is not None:
                await self.resolver.serve(c.id, *socks)
            self._write_etc(c, [e.address for e in eps if e is gw or gw is None][:1], host_net=False,
                            embedded=use_dns)
        except BaseException:
            await self.release(c)
            raise
        return {"ns_paths": {"network": sb.netns}}

    def _kernel_setup(self, sb: Sandbox, plans: list[netlink.EndpointPlan]) -> Any:
        """(worker) namespace, veths, port elements and DNS sockets; all or nothing."""
        netlink.setup_sandbox(sb.netns, plans, new=True)
        try:
            firewall.add_ports(self.table, sb.ports)
            if sb.dns:
                return netlink.open_in_netns(sb.netns, dns.make_sockets)
            return None
        except BaseException:
            firewall.delete_ports(self.table, sb.ports)
            netlink.teardown_sandbox(sb.netns, [p.host_veth for p in plans])
            raise

    def _join_container(self, c: Any, ref: str) -> dict[str, Any]:
        other = self.engine.containers.get(ref)
        if other.id == c.id:
            raise InvalidParameter("cannot join own network namespace")
        if not other.state.Running:
            raise Conflict(f"cannot join network of a non running container: {other.id}")
        if other.network_mode() == "host":
            path = f"/proc/{os.getpid()}/ns/net"
        elif other.id in self.store.sandboxes:
            path = self.store.sandboxes[other.id].netns
        else:
            path = f"/proc/{other.state.Pid}/ns/net"
        # The same names as the container whose network it shares (Docker shares the files).
        for name in ("hosts", "resolv.conf", "hostname"):
            try:
                with open(os.path.join(other.dir, name)) as f:
                    etcfiles.write_atomic(os.path.join(c.dir, name), f.read())
            except OSError:
                pass
        return {"ns_paths": {"network": path}}

    def _host_gateway(self) -> str:
        return self.bridge_network()["IPAM"]["Config"][0]["Gateway"]  # type: ignore[attr-defined]

    def _write_etc(self, c: Any, addresses: list[str], host_net: bool, embedded: bool = False) -> None:
        hc = c.host_config
        extra = [parse for parse in (etcfiles.parse_extra_host(h, self._host_gateway())
                                     for h in hc.get("ExtraHosts") or [])]
        hostname = c.config.get("Hostname") or c.id[:12]
        if host_net:
            try:
                with open("/etc/hosts") as f:
                    hosts = f.read()
            except OSError:
                hosts = etcfiles.DEFAULT_HOSTS
            hosts += "".join(f"{ip}\t{name}\n" for name, ip in extra)
        else:
            hosts = etcfiles.hosts_file(hostname, c.config.get("Domainname") or "", addresses, extra,
                                        self._link_entries(c))
        etcfiles.write_atomic(os.path.join(c.dir, "hosts"), hosts)
        host_text = etcfiles.host_resolv()
        if host_net:
            resolv = host_text
        else:
            resolv = etcfiles.resolv_conf(embedded=embedded, dns=hc.get("Dns") or [],
                                          dns_search=hc.get("DnsSearch") or [],
                                          dns_options=hc.get("DnsOptions") or [],
                                          daemon_dns=list(self.config.dns), host_text=host_text)
        etcfiles.write_atomic(os.path.join(c.dir, "resolv.conf"), resolv)

    def _link_entries(self, c: Any) -> list[tuple[str, list[str]]]:
        """Legacy links on the default bridge: `ip alias id name` lines in /etc/hosts."""
        from .service import parse_link
        out = []
        bridge_id = self.bridge_network()["Id"]  # type: ignore[attr-defined]
        for link in c.host_config.get("Links") or []:
            name, alias = parse_link(link)
            try:
                t = self.engine.containers.get(name)
            except NotFound:
                continue
            for e in self.store.endpoints_of(t.id):
                if e.network_id == bridge_id:
                    out.append((e.address, list(dict.fromkeys([alias, t.id[:12], t.name]))))
        return out

    # -- stop / remove ---------------------------------------------------------------------------
    async def release(self, c: Any) -> None:
        sb = self.store.sandboxes.get(c.id)
        if sb is None:
            return
        await self.resolver.stop(c.id)
        veths = [e.host_veth for e in self.store.endpoints_of(c.id)]
        t0 = time.perf_counter()
        try:
            await self._run(self._kernel_teardown, sb.netns, veths, sb.ports)  # type: ignore[attr-defined]
            log.debug("network of %s torn down in %.1f ms", c.id[:12], (time.perf_counter() - t0) * 1000)
        except Exception:  # noqa: BLE001 - the records go anyway; restore retries leftovers
            log.exception("tearing down the network of %s", c.id)
        self.store.drop_sandbox(c.id)

    def _kernel_teardown(self, netns: str, veths: list[str], mappings: list[dict]) -> None:
        firewall.delete_ports(self.table, mappings)
        netlink.teardown_sandbox(netns, veths)

    async def on_remove(self, c: Any) -> None:
        await self.release(c)
        self.store.forget_container(c.id)

    # -- connect / disconnect ----------------------------------------------------------------------
    async def connect(self, ref: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise InvalidParameter("invalid body: expected a JSON object")
        n = self.get(ref)  # type: ignore[attr-defined]
        c = self.engine.containers.get(_container_ref(body))
        mode = c.network_mode()
        if n["Driver"] != "bridge":
            raise Forbidden(f"container cannot be disconnected from host network or connected to {n['Name']} network")
        if mode in ("host", "none") or mode.startswith("container:"):
            raise Forbidden("container sharing network namespace with another container or host "
                            "cannot be connected to any other network")
        if n["Id"] in self.store.attachments.get(c.id, {}):
            raise Forbidden(f"endpoint with name {c.name} already exists in network {n['Name']}")
        cfg = self.endpoint_config(n, body.get("EndpointConfig") or {})  # type: ignore[attr-defined]
        sb = self.store.sandboxes.get(c.id)
        if sb is None:
            self.store.add_attachment(c.id, n["Id"], cfg)
            return
        index = len(self.store.endpoints_of(c.id))
        ep = self._new_endpoint(c.id, n["Id"], cfg, index, set())
        try:
            self.store.add_endpoints([ep], [n])
        except sqlite3.IntegrityError:
            raise Conflict("Address already in use") from None
        need_dns = self.is_user_defined(n) and not sb.dns  # type: ignore[attr-defined]
        try:
            socks = await self._run(self._kernel_connect, sb, self._plan(ep, default_route=False), need_dns)  # type: ignore[attr-defined]
        except BaseException:
            self.store.delete_endpoints([ep.id])
            raise
        self.store.add_attachment(c.id, n["Id"], cfg)
        if socks is not None:
            sb.dns = True
            self.store.save_sandbox(sb)
            await self.resolver.serve(c.id, *socks)

    def _kernel_connect(self, sb: Sandbox, plan: netlink.EndpointPlan, need_dns: bool) -> Any:
        netlink.add_endpoint(sb.netns, plan)
        if need_dns:
            return netlink.open_in_netns(sb.netns, dns.make_sockets)
        return None

    async def disconnect(self, ref: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise InvalidParameter("invalid body: expected a JSON object")
        n = self.get(ref)  # type: ignore[attr-defined]
        c = self.engine.containers.get(_container_ref(body))
        if n["Id"] not in self.store.attachments.get(c.id, {}):
            raise Forbidden(f"container {c.id} is not connected to network {n['Name']}")
        eps = [e for e in self.store.endpoints_of(c.id) if e.network_id == n["Id"]]
        sb = self.store.sandboxes.get(c.id)
        if eps and sb is not None:
            gone = [m for m in sb.ports if m["container_ip"] in {e.address for e in eps}]
            await self._run(self._kernel_teardown, None, [e.host_veth for e in eps], gone)  # type: ignore[attr-defined]
            sb.ports = [m for m in sb.ports if m not in gone]
            self.store.save_sandbox(sb)
        self.store.delete_endpoints([e.id for e in eps])
        self.store.remove_attachment(c.id, n["Id"])

    # -- daemon restart --------------------------------------------------------------------------
    async def restore(self) -> None:
        """After the containers are restored: repair running sandboxes, drop the rest."""
        for cid, sb in list(self.store.sandboxes.items()):
            try:
                c = self.engine.containers.get(cid)
            except NotFound:
                c = None
            if c is not None and c.state.Status == "restarting":
                continue  # a restart policy is bringing it back: its setup replaces this
            if c is None or not c.state.Running:
                veths = [e.host_veth for e in self.store.endpoints_of(cid)]
                try:
                    await self._run(self._kernel_teardown, sb.netns, veths, sb.ports)  # type: ignore[attr-defined]
                except Exception:  # noqa: BLE001
                    log.exception("cleaning the network of %s", cid)
                self.store.drop_sandbox(cid)
                continue
            gw = self._gateway_endpoint(cid)
            plans = [self._plan(e, default_route=(e is gw)) for e in self.store.endpoints_of(cid)]
            try:
                socks = await self._run(self._kernel_repair, sb, plans)  # type: ignore[attr-defined]
                if socks is not None:
                    await self.resolver.serve(cid, *socks)
            except Exception:  # noqa: BLE001
                log.exception("restoring the network of %s", cid)
        live = set(self.store.sandboxes)
        stale = [e.id for e in self.store.endpoints.values() if e.container_id not in live]
        if stale:
            self.store.delete_endpoints(stale)
        known = {c.id for c in self.engine.containers.all()}
        for cid in [cid for cid in self.store.attachments if cid not in known]:
            self.store.forget_container(cid)
        await self._run(self._sweep_netns, live)  # type: ignore[attr-defined]

    def _kernel_repair(self, sb: Sandbox, plans: list[netlink.EndpointPlan]) -> Any:
        """(worker) Re-create what a host reboot or a hand took away, keep what is there."""
        if not netlink.netns_alive(sb.netns):
            log.warning("network namespace of %s is gone", sb.container_id)
            return None
        names = netlink.link_names()
        for p in plans:
            if p.host_veth in names:
                netlink.attach_to_bridge(p.host_veth, p.bridge)
            else:
                netlink.add_endpoint(sb.netns, p)
        if sb.dns:
            return netlink.open_in_netns(sb.netns, dns.make_sockets)
        return None

    def _sweep_netns(self, live: set[str]) -> None:
        try:
            entries = os.listdir(self.netns_dir)
        except OSError:
            return
        for name in entries:
            if name not in live:
                netlink.delete_netns(os.path.join(self.netns_dir, name))

    # -- embedded DNS -----------------------------------------------------------------------------
    def _dns_networks(self, cid: str) -> list[str]:
        return [nid for nid, _ in self.store.attached(cid)
                if nid in self.store.networks and self.is_user_defined(self.store.networks[nid])]  # type: ignore[attr-defined]

    def _dns_lookup(self, cid: str, name: str) -> list[str] | None:
        from .service import parse_link
        found: list[str] = []
        asker_att = self.store.attachments.get(cid, {})
        for nid in self._dns_networks(cid):
            netname = self.store.networks[nid]["Name"].lower()
            for e in self.store.endpoints_on(nid):
                try:
                    t = self.engine.containers.get(e.container_id)
                except NotFound:
                    continue
                cfg = self.store.attachments.get(t.id, {}).get(nid) or {}
                names = {t.name.lower(), t.id[:12]} | {a.lower() for a in cfg.get("Aliases") or []}
                if name in names or any(name == f"{n}.{netname}" for n in names):
                    found.append(e.address)
            # Links are aliases seen by the linking container only.
            for link in (asker_att.get(nid) or {}).get("Links") or []:
                target, alias = parse_link(link)
                if alias.lower() == name:
                    try:
                        t = self.engine.containers.get(target)
                    except NotFound:
                        continue
                    found += [e.address for e in self.store.endpoints_of(t.id) if e.network_id == nid]
        if not found:
            try:
                me = self.engine.containers.get(cid)
            except NotFound:
                return None
            for link in me.host_config.get("Links") or []:
                target, alias = parse_link(link)
                if alias.lower() == name or target.lower() == name:
                    try:
                        t = self.engine.containers.get(target)
                    except NotFound:
                        continue
                    nets = set(self._dns_networks(cid))
                    found += [e.address for e in self.store.endpoints_of(t.id) if e.network_id in nets]
        return list(dict.fromkeys(found)) or None

    def _dns_reverse(self, cid: str, ip: str) -> str | None:
        for nid in self._dns_networks(cid):
            for e in self.store.endpoints_on(nid):
                if e.address == ip:
                    try:
                        t = self.engine.containers.get(e.container_id)
                    except NotFound:
                        return None
                    return f"{t.name}.{self.store.networks[nid]['Name']}"
        return None

    def _dns_upstreams(self, cid: str) -> list[str]:
        try:
            c = self.engine.containers.get(cid)
            own = c.host_config.get("Dns") or []
        except NotFound:
            own = []
        return etcfiles.upstream_servers(own, list(self.config.dns), etcfiles.host_resolv())

    # -- inspect shapes ----------------------------------------------------------------------------
    def _network_entry(self, c: Any, nid: str, cfg: dict) -> dict[str, Any]:
        ep = next((e for e in self.store.endpoints_of(c.id) if e.network_id == nid), None)
        n = self.store.networks.get(nid, {})
        user = bool(n) and self.is_user_defined(n)  # type: ignore[attr-defined]
        return {
            "IPAMConfig": cfg.get("IPAMConfig"), "Links": cfg.get("Links"), "Aliases": cfg.get("Aliases"),
            "MacAddress": ep.mac if ep else "", "DriverOpts": cfg.get("DriverOpts"),
            "NetworkID": nid, "EndpointID": ep.id if ep else "", "Gateway": ep.gateway if ep else "",
            "IPAddress": ep.address if ep else "", "IPPrefixLen": ep.prefixlen if ep else 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": ([c.name, c.id[:12]] + list(cfg.get("Aliases") or [])) if user else None,
        }

    def networks_of(self, c: Any) -> dict[str, Any]:
        mode = c.network_mode()
        if mode.startswith("container:"):
            return {}
        if mode in ("host", "none"):
            n = self.by_name(mode)  # type: ignore[attr-defined]
            return {mode: self._network_entry(c, n["Id"], {})}
        out = {}
        for nid, cfg in self.store.attached(c.id):
            if nid in self.store.networks:
                out[self.store.networks[nid]["Name"]] = self._network_entry(c, nid, cfg)
        return out

    def settings(self, c: Any) -> dict[str, Any]:
        """NetworkSettings of container inspect."""
        sb = self.store.sandboxes.get(c.id)
        nets = self.networks_of(c)
        b = nets.get("bridge") or {}
        return {
            "Bridge": "", "SandboxID": c.id if sb else "", "SandboxKey": sb.netns if sb else "",
            "Ports": _ports.settings_ports(c.config, sb.ports if sb else []),
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": b.get("EndpointID", ""), "Gateway": b.get("Gateway", ""),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": b.get("IPAddress", ""),
            "IPPrefixLen": b.get("IPPrefixLen", 0), "IPv6Gateway": "", "MacAddress": b.get("MacAddress", ""),
            "Networks": nets,
        }

    def summary(self, c: Any) -> tuple[list[dict], dict[str, Any]]:
        """(Ports, NetworkSettings) of GET /containers/json."""
        sb = self.store.sandboxes.get(c.id)
        return _ports.summary_ports(c.config, sb.ports if sb else []), {"Networks": self.networks_of(c)}

    def published(self, c: Any) -> list[dict]:
        sb = self.store.sandboxes.get(c.id)
        return list(sb.ports) if sb else []

    def matches(self, c: Any, filters: dict[str, list[str]]) -> bool:
        """`ps --filter network=… / publish=… / expose=…` (Docker's semantics)."""
        if "network" in filters:
            names = set(self.networks_of(c))
            ids = {n.get("NetworkID", "") for n in self.networks_of(c).values()}
            if not any(v in names or any(i and i.startswith(v) for i in ids) for v in filters["network"]):
                return False
        for key in ("publish", "expose"):
            if key not in filters:
                continue
            if key == "publish":
                have = {(m["container_port"], m["proto"]) for m in self.published(c)}
                have |= {(m["host_port"], m["proto"]) for m in self.published(c)}
            else:
                have = set(_ports.exposed_ports(c.config))
            ok = False
            for v in filters[key]:
                num, _, proto = v.partition("/")
                lo, _, hi = num.partition("-")
                try:
                    a, b = int(lo), int(hi or lo)
                except ValueError:
                    raise InvalidParameter(f"invalid filter '{key}={v}'") from None
                if any(a <= p <= b and pr == (proto or "tcp") for p, pr in have):
                    ok = True
            if not ok:
                return False
        return True


def _container_ref(body: dict) -> str:
    ref = body.get("Container")
    if ref is not None and not isinstance(ref, str):
        kind = {bool: "bool", int: "number", float: "number", list: "array", dict: "object"}.get(type(ref), "value")
        raise InvalidParameter(f"json: cannot unmarshal {kind} into Go struct field NetworkConnect.Container of type string")
    return ref or ""
