"""network create, ls, inspect, rm, prune, connect, disconnect; and `port`."""

from __future__ import annotations

import sys

from .args import BOOL, LIST, STR, Opt, UsageError
from .common import CliError, Spec, err, filters_json, out, q


def _kv(items: list[str] | None, what: str) -> dict[str, str]:
    d: dict[str, str] = {}
    for it in items or []:
        k, _, v = it.partition("=")
        if not k:
            raise UsageError(f"invalid {what}: {it!r}")
        d[k] = v
    return d


def _one(values: list[str] | None, flag: str) -> str:
    values = values or []
    if len(values) > 1:
        raise UsageError(f"only one {flag} is supported (IPv4)")
    return values[0] if values else ""


def cmd_create(ctx, ns, args) -> int:
    ipam_cfg = {}
    subnet, gateway, ip_range = _one(ns.subnet, "--subnet"), _one(ns.gateway, "--gateway"), _one(ns.ip_range, "--ip-range")
    if (gateway or ip_range) and not subnet:
        raise CliError("every ip-range or gateway must have a corresponding subnet")
    if subnet:
        ipam_cfg = {k: v for k, v in (("Subnet", subnet), ("Gateway", gateway), ("IPRange", ip_range)) if v}
    body = {"Name": args[0], "CheckDuplicate": True, "Driver": ns.driver or "bridge",
            "Internal": bool(ns.internal), "Attachable": bool(ns.attachable),
            "EnableIPv6": bool(ns.ipv6),
            "IPAM": {"Driver": ns.ipam_driver or "default", "Config": [ipam_cfg] if ipam_cfg else [],
                     "Options": _kv(ns.ipam_opt, "IPAM option")},
            "Options": _kv(ns.opt, "option"), "Labels": _kv(ns.label, "label")}
    resp = ctx.client.post("/networks/create", None, body) or {}
    out(resp.get("Id", "") + "\n")
    return 0


class NetworkCtx:
    FIELDS = ("ID", "Name", "Driver", "Scope", "IPv6", "Internal", "Labels", "CreatedAt")
    HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
               "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}

    def __init__(self, n: dict, trunc: bool = True) -> None:
        self.n = n
        self.ID = n.get("Id", "")[:12] if trunc else n.get("Id", "")
        self.Name = n.get("Name", "")
        self.Driver = n.get("Driver", "")
        self.Scope = n.get("Scope", "")
        self.IPv6 = str(bool(n.get("EnableIPv6"))).lower()
        self.Internal = str(bool(n.get("Internal"))).lower()
        labels = n.get("Labels") or {}
        self.Labels = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
        self.CreatedAt = n.get("Created", "")

    def Label(self, name: str) -> str:  # noqa: N802 - Go template method name
        return (self.n.get("Labels") or {}).get(name, "")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in sorted(self.FIELDS)}


def cmd_ls(ctx, ns, args) -> int:
    from .format import render_list
    from .template import TemplateError
    f = filters_json(ns.filter)
    nets = ctx.client.get("/networks", {"filters": f} if f else None) or []
    nets = sorted(nets, key=lambda n: n.get("Name", ""))
    if ns.quiet:
        for n in nets:
            out((n.get("Id", "") if ns.no_trunc else n.get("Id", "")[:12]) + "\n")
        return 0
    fmt = ns.format or "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    try:
        out(render_list(fmt, [NetworkCtx(n, not ns.no_trunc) for n in nets], NetworkCtx.HEADERS))
    except TemplateError as e:
        raise CliError(str(e)) from None
    return 0


def cmd_inspect(ctx, ns, args) -> int:
    from .system import _inspect
    return _inspect(ctx, args, ns.format, lambda n: ctx.client.get(f"/networks/{q(n)}"),
                    lambda n, e: f"Error response from daemon: {e.message}")


def cmd_rm(ctx, ns, args) -> int:
    from .client import APIError
    rc = 0
    for name in args:
        try:
            ctx.client.delete(f"/networks/{q(name)}")
        except APIError as e:
            if ns.force and e.status == 404:
                continue
            err(f"Error response from daemon: {e.message}\n")
            rc = 1
            continue
        out(name + "\n")
    return rc


def cmd_prune(ctx, ns, args) -> int:
    if not ns.force:
        err("WARNING! This will remove all custom networks not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    f = filters_json(ns.filter)
    report = ctx.client.post("/networks/prune", {"filters": f} if f else None) or {}
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        out("Deleted Networks:\n" + "".join(n + "\n" for n in deleted))
    return 0


def cmd_connect(ctx, ns, args) -> int:
    ep: dict = {}
    if ns.alias:
        ep["Aliases"] = list(ns.alias)
    if ns.ip:
        ep["IPAMConfig"] = {"IPv4Address": ns.ip}
    if ns.link:
        ep["Links"] = list(ns.link)
    if ns.driver_opt:
        ep["DriverOpts"] = _kv(ns.driver_opt, "driver option")
    ctx.client.post(f"/networks/{q(args[0])}/connect", None, {"Container": args[1], "EndpointConfig": ep})
    return 0


def cmd_disconnect(ctx, ns, args) -> int:
    ctx.client.post(f"/networks/{q(args[0])}/disconnect", None, {"Container": args[1], "Force": bool(ns.force)})
    return 0


def cmd_port(ctx, ns, args) -> int:
    """`sampan port C [PRIVATE_PORT[/PROTO]]`, lines as docker prints them."""
    c = ctx.client.get(f"/containers/{q(args[0])}/json") or {}
    ports = (c.get("NetworkSettings") or {}).get("Ports") or {}
    if len(args) > 1:
        want = args[1] if "/" in args[1] else args[1] + "/tcp"
        bindings = ports.get(want)
        if not bindings:
            raise CliError(f"Error: No public port '{want}' published for {args[0]}")
        for b in bindings:
            out(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}\n")
        return 0

    def order(key: str) -> tuple[int, str]:
        num, _, proto = key.partition("/")
        return (int(num) if num.isdigit() else 0, proto)
    for key in sorted(ports, key=order):
        for b in ports[key] or []:
            out(f"{key} -> {b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}\n")
    return 0


_FORMAT = Opt("--format", STR, "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")

SPECS = {
    "network create": Spec(cmd_create, "[OPTIONS] NETWORK", "Create a network", [
        Opt("--attachable", BOOL, "Enable manual container attachment"),
        Opt("--aux-address", LIST, "Auxiliary IPv4 or IPv6 addresses used by Network driver"),
        Opt("-d --driver", STR, 'Driver to manage the Network (default "bridge")'),
        Opt("--gateway", LIST, "IPv4 or IPv6 Gateway for the master subnet"),
        Opt("--internal", BOOL, "Restrict external access to the network"),
        Opt("--ip-range", LIST, "Allocate container ip from a sub-range"),
        Opt("--ipam-driver", STR, 'IP Address Management Driver (default "default")'),
        Opt("--ipam-opt", LIST, "Set IPAM driver specific options"),
        Opt("--ipv6", BOOL, "Enable or disable IPv6 networking"),
        Opt("--label", LIST, "Set metadata on a network"),
        Opt("-o --opt", LIST, "Set driver specific options"),
        Opt("--subnet", LIST, "Subnet in CIDR format that represents a network segment"),
    ], min_args=1, max_args=1),
    "network ls": Spec(cmd_ls, "[OPTIONS]", "List networks", [
        Opt("-f --filter", LIST, 'Provide filter values (e.g. "driver=bridge")', metavar="filter"),
        _FORMAT,
        Opt("--no-trunc", BOOL, "Do not truncate the output"),
        Opt("-q --quiet", BOOL, "Only display network IDs"),
    ], max_args=0, aliases="ls, list"),
    "network inspect": Spec(cmd_inspect, "[OPTIONS] NETWORK [NETWORK...]",
                            "Display detailed information on one or more networks", [
        _FORMAT, Opt("-v --verbose", BOOL, "Verbose output for diagnostics"),
    ], min_args=1),
    "network rm": Spec(cmd_rm, "NETWORK [NETWORK...]", "Remove one or more networks", [
        Opt("-f --force", BOOL, "Do not error if the network does not exist"),
    ], min_args=1, aliases="rm, remove"),
    "network prune": Spec(cmd_prune, "[OPTIONS]", "Remove all unused networks", [
        Opt("--filter", LIST, 'Provide filter values (e.g. "until=<timestamp>")', metavar="filter"),
        Opt("-f --force", BOOL, "Do not prompt for confirmation"),
    ], max_args=0),
    "network connect": Spec(cmd_connect, "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network", [
        Opt("--alias", LIST, "Add network-scoped alias for the container"),
        Opt("--driver-opt", LIST, "driver options for the network"),
        Opt("--ip", STR, "IPv4 address (e.g., \"172.30.100.104\")"),
        Opt("--ip6", STR, "IPv6 address (e.g., \"2001:db8::33\")"),
        Opt("--link", LIST, "Add link to another container"),
        Opt("--link-local-ip", LIST, "Add a link-local address for the container"),
    ], min_args=2, max_args=2),
    "network disconnect": Spec(cmd_disconnect, "[OPTIONS] NETWORK CONTAINER",
                               "Disconnect a container from a network", [
        Opt("-f --force", BOOL, "Force the container to disconnect from a network"),
    ], min_args=2, max_args=2),
    "port": Spec(cmd_port, "CONTAINER [PRIVATE_PORT[/PROTO]]",
                 "List port mappings or a specific mapping for the container", [], min_args=1, max_args=2),
}

GROUP = {
    "create": ("network", "network create"), "ls": ("network", "network ls"),
    "list": ("network", "network ls"), "inspect": ("network", "network inspect"),
    "rm": ("network", "network rm"), "remove": ("network", "network rm"),
    "prune": ("network", "network prune"), "connect": ("network", "network connect"),
    "disconnect": ("network", "network disconnect"),
}
