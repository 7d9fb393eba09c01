"""/etc/hosts and /etc/resolv.conf for a container, as Docker writes them (pure functions)."""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Iterable

from ..errors import InvalidParameter

DEFAULT_HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
                 "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
EMBEDDED_DNS = "127.0.0.11"
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


def parse_extra_host(entry: str, host_gateway: str) -> tuple[str, str]:
    """`name:ip` (or `name=ip`); `host-gateway` is the default bridge's gateway."""
    if not isinstance(entry, str):
        raise InvalidParameter(f"invalid extra host: {entry!r}")
    sep = "=" if "=" in entry else ":"
    name, _, ip = entry.partition(sep)
    if not name or not ip or not _HOSTNAME_RE.match(name):
        raise InvalidParameter(f"invalid argument \"{entry}\" for \"--add-host\" flag: bad format for add-host: \"{entry}\"")
    if ip == "host-gateway":
        ip = host_gateway
    ip = ip.strip("[]")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidParameter(f"invalid IP address in add-host: \"{ip}\"") from None
    return name, ip


def hosts_file(hostname: str, domainname: str, addresses: Iterable[str],
               extra: Iterable[tuple[str, str]] = (), links: Iterable[tuple[str, list[str]]] = ()) -> str:
    """Docker's order: the defaults, --add-host entries, links, then the container itself."""
    out = [DEFAULT_HOSTS]
    for name, ip in extra:
        out.append(f"{ip}\t{name}\n")
    for ip, names in links:
        out.append(f"{ip}\t{' '.join(names)}\n")
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    for ip in addresses:
        out.append(f"{ip}\t{names}\n")
    return "".join(out)


def host_resolv() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            return f.read()
    except OSError:
        return ""


def parse_resolv(text: str) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, search domains, options) of a resolv.conf."""
    ns, search, opts = [], [], []
    for line in text.splitlines():
        f = line.split()
        if not f or f[0].startswith(("#", ";")):
            continue
        if f[0] == "nameserver" and len(f) > 1:
            ns.append(f[1])
        elif f[0] in ("search", "domain"):
            search = f[1:]
        elif f[0] == "options":
            opts += f[1:]
    return ns, search, opts


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


def upstream_servers(dns: list[str], daemon_dns: list[str], host_text: str) -> list[str]:
    """Where names go that the container cannot resolve itself: --dns, daemon.json, host."""
    if dns:
        return list(dns)
    if daemon_dns:
        return list(daemon_dns)
    servers, _, _ = parse_resolv(host_text)
    return servers


def resolv_conf(*, embedded: bool, dns: list[str], dns_search: list[str], dns_options: list[str],
                daemon_dns: list[str], host_text: str) -> str:
    """The container's resolv.conf.

    On the default bridge (no embedded DNS) Docker copies the host's, drops loopback
    servers (unreachable from the container) and falls back to Google's servers when none
    remain; on user networks the only server is the embedded one at 127.0.0.11, which
    forwards everything else to the upstream servers.
    """
    host_ns, host_search, host_opts = parse_resolv(host_text)
    search = list(dns_search) if dns_search else host_search
    if dns_search == ["."]:
        search = []
    options = list(dns_options) if dns_options else host_opts
    if embedded:
        servers = [EMBEDDED_DNS]
        if not any(o.startswith("ndots:") for o in options):
            options = options + ["ndots:0"]
    else:
        servers = list(dns) or list(daemon_dns) or [s for s in host_ns if not _is_loopback(s)]
        if not servers:
            servers = ["8.8.8.8", "8.8.4.4"]
    lines = [f"nameserver {s}" for s in servers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp-net"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_in_place(path: str, text: str) -> None:
    """For a running container: its bind mount holds the old inode, so rewrite that inode."""
    with open(path, "r+") as f:
        f.seek(0)
        f.write(text)
        f.truncate()
