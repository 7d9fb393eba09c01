"""Kernel plumbing over netlink (pyroute2): bridges, veth pairs, addresses, routes, netns.

Everything here runs on one dedicated worker thread (`Worker`), never on the event loop:
netlink round trips are fast but not free, pyroute2's IPRoute is not thread-safe, and a
network namespace is joined per *thread* (setns(2) with CLONE_NEWNET affects the calling
task only), which is what lets the daemon create and configure a container's namespace
in-process, with no fork and no `ip` binary.

A container's namespace is a "named netns" as iproute2 makes them: a bind mount of
/proc/thread-self/ns/net on a file under <exec-root>/netns, a shared mount point so that
unmounting it also unmounts the copies other mount namespaces made.
"""

from __future__ import annotations

import concurrent.futures
import errno
import os
import re
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from ..errors import Internal, InvalidParameter
from ..linux import syscalls as sc
from . import rtnl
from ..userns import hooks as _userns_hooks

T = TypeVar("T")

IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def check_ifname(name: str) -> str:
    if not isinstance(name, str) or not IFNAME_RE.match(name) or name in (".", ".."):
        raise InvalidParameter(f"invalid interface name {name!r}: 1-15 of [A-Za-z0-9_.-]")
    return name


@dataclass
class EndpointPlan:
    """One veth pair: `host_veth` on `bridge`, `ifname` inside the container's netns."""
    bridge: str
    host_veth: str
    ifname: str
    address: str
    prefixlen: int
    gateway: str
    mac: str
    mtu: int = 1500
    default_route: bool = True


class Worker:
    """A single thread that owns the host-side netlink socket."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="netlink")
        self._local = threading.local()

    def submit(self, fn: Callable[..., T], *args: Any) -> "concurrent.futures.Future[T]":
        return self._pool.submit(fn, *args)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run on the worker and wait (for start-up and tests; the daemon awaits `submit`)."""
        return self._pool.submit(fn, *args).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


_host_ipr: Any = None


def _ipr() -> Any:
    """The worker thread's IPRoute on the host namespace (created on first use)."""
    global _host_ipr
    if _host_ipr is None:
        from pyroute2 import IPRoute
        _host_ipr = IPRoute()
    return _host_ipr


def _nlerr(e: Exception) -> int:
    return getattr(e, "code", 0) or 0


def link_index(name: str) -> int | None:
    found = _ipr().link_lookup(ifname=name)
    return found[0] if found else None


def link_names() -> set[str]:
    return {link.get("ifname") for link in _ipr().get_links()}


def _write_sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError:
        pass  # a missing knob (no IPv6, old kernel) must not stop networking


def ensure_bridge(name: str, gateway: str, prefixlen: int, mtu: int = 1500) -> int:
    """The bridge exists, is up and has the gateway address (creates or repairs it)."""
    ipr = _ipr()
    idx = link_index(name)
    if idx is None:
        try:
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
        except Exception as e:  # noqa: BLE001 - pyroute2's NetlinkError
            if _nlerr(e) != errno.EEXIST:
                raise Internal(f"failed to create bridge {name}: {e}") from None
        idx = link_index(name)
        if idx is None:
            raise Internal(f"bridge {name} vanished after creation")
    have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=2)}
    if (gateway, prefixlen) not in have:
        try:
            ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
        except Exception as e:  # noqa: BLE001
            if _nlerr(e) != errno.EEXIST:
                raise Internal(f"failed to add {gateway}/{prefixlen} to {name}: {e}") from None
    ipr.link("set", index=idx, state="up")
    # 127.0.0.1:<published port> is DNATed to a container on this bridge: the kernel drops
    # such packets as martians unless the outgoing device allows loopback sources.
    _write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
    _write_sysctl(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "1")
    return idx


def enable_forwarding() -> None:
    _write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")


def delete_link(name: str) -> bool:
    idx = link_index(name)
    if idx is None:
        return False
    try:
        _ipr().link("del", index=idx)
    except Exception as e:  # noqa: BLE001
        if _nlerr(e) not in (errno.ENODEV, errno.ENOENT):
            raise Internal(f"failed to delete link {name}: {e}") from None
        return False
    return True


# --- network namespaces ---------------------------------------------------------------------

def _is_mountpoint(path: str) -> bool:
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == path for line in f)
    except OSError:
        return False


def prepare_netns_dir(directory: str) -> None:
    """<exec-root>/netns as a shared bind mount of itself (what `ip netns add` does)."""
    os.makedirs(directory, 0o711, exist_ok=True)
    if not _is_mountpoint(directory):
        sc.mount(directory, directory, None, sc.MS_BIND | sc.MS_REC)
    try:
        sc.mount(None, directory, None, sc.MS_SHARED | sc.MS_REC)
    except OSError:
        pass


class _InNetns:
    """`with _InNetns(path):` runs the block with this thread inside that namespace."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, sc.CLONE_NEWNET)
        except OSError:
            os.close(self.own)
            raise
        finally:
            os.close(fd)

    def __exit__(self, *exc: Any) -> None:
        try:
            sc.setns(self.own, sc.CLONE_NEWNET)
        finally:
            os.close(self.own)


def create_netns(path: str) -> None:
    """A new network namespace, bind-mounted at `path`, with `lo` up."""
    if _userns_hooks.create_netns(path):  # --userns-remap: owned by the container's userns
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        os.close(fd)
        sc.unshare(sc.CLONE_NEWNET)
        try:
            sc.mount("/proc/thread-self/ns/net", path, None, sc.MS_BIND)
            sc.set_loopback_up()
        finally:
            sc.setns(own, sc.CLONE_NEWNET)
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    finally:
        os.close(own)


def netns_alive(path: str) -> bool:
    return os.path.exists(path) and _is_mountpoint(path)


def delete_netns(path: str) -> None:
    try:
        sc.umount2(path, sc.MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def add_endpoint(netns: str, ep: EndpointPlan) -> None:
    """Create the veth pair with its inside end directly in `netns`, address, routes, up.

    Two netlink round trips, packed by hand (rtnl.py): this is on every container's start
    path, where pyroute2's message building cost several milliseconds.
    """
    try:
        br = socket.if_nametoindex(ep.bridge)
    except OSError:
        raise Internal(f"bridge {ep.bridge} is missing") from None
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        # One request: the pair, its inside end already in the namespace, the host end
        # already on the bridge and up.
        with rtnl.Socket() as host:
            host.request([rtnl.veth_pair(host.seq(), ep.host_veth, ep.ifname, mtu=ep.mtu,
                                         master=br, peer_ns_fd=fd, peer_mac=ep.mac)])
    except OSError as e:
        raise Internal(f"failed to create veth pair {ep.host_veth}: {e}") from None
    finally:
        os.close(fd)
    _hairpin(ep.host_veth)
    try:
        with _InNetns(netns):
            ns = rtnl.Socket()
            inner = socket.if_nametoindex(ep.ifname)
        with ns:
            msgs = [rtnl.add_address(ns.seq(), inner, ep.address, ep.prefixlen),
                    rtnl.link_up(ns.seq(), inner)]
            if ep.default_route and ep.gateway:
                msgs.append(rtnl.default_route(ns.seq(), ep.gateway))
            try:
                ns.request(msgs)
            except OSError as e:
                raise Internal(f"failed to configure {ep.ifname} in the container: {e}") from None
    except BaseException:
        delete_link(ep.host_veth)
        raise


def attach_to_bridge(veth: str, bridge: str) -> None:
    """(Re-)enslave a host veth: a re-created bridge starts with no ports."""
    ipr = _ipr()
    br, idx = link_index(bridge), link_index(veth)
    if br is None or idx is None:
        raise Internal(f"cannot attach {veth} to {bridge}: missing link")
    ipr.link("set", index=idx, master=br, state="up")
    _hairpin(veth)


def _hairpin(veth: str) -> None:
    """Let the bridge send a frame back out of the port it came in on.

    With br_netfilter loaded (as on hosts that ran Docker), a container's connection to a
    published port of its own, through a host address, is DNATed at the bridge layer and
    bridged straight back to the port it came from; the bridge drops that unless the port
    is in hairpin mode. (The firewall's hairpin masquerade rule handles the routed case.)
    """
    _write_sysctl(f"/sys/class/net/{veth}/brport/hairpin_mode", "1")


def open_in_netns(netns: str, opener: Callable[[], T]) -> T:
    """Call `opener` (which makes sockets) inside `netns`; the sockets stay there."""
    with _InNetns(netns):
        return opener()


def setup_sandbox(netns: str, endpoints: list[EndpointPlan], new: bool) -> None:
    """Namespace (when `new`) plus every endpoint; on failure nothing is left behind."""
    if new:
        create_netns(netns)
    done: list[EndpointPlan] = []
    try:
        for ep in endpoints:
            add_endpoint(netns, ep)
            done.append(ep)
    except BaseException:
        for ep in done:
            delete_link(ep.host_veth)
        if new:
            delete_netns(netns)
        raise


def teardown_sandbox(netns: str | None, host_veths: list[str]) -> None:
    """Free a sandbox. With its namespace: only unmount it.

    Deleting a veth takes 15-35 ms here (unregistering a device waits for RCU grace
    periods); dropping the namespace's last reference makes the kernel destroy it, and both
    ends of every veth in it, in its own workqueue a moment later. So a container's exit
    costs well under a millisecond, and the names are random, so nothing waits on them.
    Without a namespace (disconnect from one network) the veth is deleted for real.
    """
    if netns:
        delete_netns(netns)
        return
    for v in host_veths:
        delete_link(v)
