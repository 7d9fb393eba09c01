"""The hand-packed rtnetlink requests (sampan/network/rtnl.py) against the real kernel.

Everything happens inside a network namespace made for the test (unshare in a child
process), so the host's links are never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _in_new_netns(code: str) -> str:
    """Run `code` in a fresh network namespace (unshare -n) and return what it printed."""
    prog = "import sys; sys.path.insert(0, %r)\n" % REPO + textwrap.dedent(code)
    out = subprocess.run(["unshare", "-n", sys.executable, "-c", prog], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_veth_address_link_up_and_route_land_in_the_kernel():
    out = _in_new_netns("""
        import os, socket, subprocess
        from sampan.network import rtnl
        from sampan.linux import syscalls as sc
        # a "container" namespace for the peer end, held open by an fd
        parent = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        sc.unshare(sc.CLONE_NEWNET)
        child = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        sc.setns(parent, sc.CLONE_NEWNET)
        with rtnl.Socket() as s:
            s.request([rtnl.message(rtnl.RTM_NEWLINK, rtnl.CREATE, s.seq(),
                       rtnl._IFINFOMSG.pack(0, 0, 0, rtnl.IFF_UP, rtnl.IFF_UP)
                       + rtnl.attr(rtnl.IFLA_IFNAME, b"br-t\\0")
                       + rtnl.attr(rtnl.IFLA_LINKINFO, rtnl.attr(rtnl.IFLA_INFO_KIND, b"bridge\\0")))])
            br = socket.if_nametoindex("br-t")
            s.request([rtnl.veth_pair(s.seq(), "vhost", "eth0", mtu=1400, master=br,
                                      peer_ns_fd=child, peer_mac="02:42:0a:00:00:05")])
            try:
                s.request([rtnl.veth_pair(s.seq(), "vhost", "eth1", mtu=1400, master=br,
                                          peer_ns_fd=child, peer_mac=None)])
            except rtnl.NetlinkError as e:
                print("dup", e.errno)
        link = subprocess.run(["ip", "-o", "link", "show", "vhost"], capture_output=True, text=True).stdout
        print("master br-t" in link, "mtu 1400" in link, ",UP" in link or "<UP" in link)
        sc.setns(child, sc.CLONE_NEWNET)
        with rtnl.Socket() as s:
            idx = socket.if_nametoindex("eth0")
            s.request([rtnl.add_address(s.seq(), idx, "10.9.8.7", 24), rtnl.link_up(s.seq(), idx),
                       rtnl.default_route(s.seq(), "10.9.8.1")])
        print(subprocess.run(["ip", "-o", "-4", "addr", "show", "eth0"], capture_output=True, text=True).stdout.split()[3])
        print(subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True).stdout.strip())
        link = subprocess.run(["ip", "-o", "link", "show", "eth0"], capture_output=True, text=True).stdout
        print("link/ether 02:42:0a:00:00:05" in link, "mtu 1400" in link)
    """).splitlines()
    assert out[0] == "dup 17"  # EEXIST, raised with the kernel's errno
    assert out[1] == "True True True"  # enslaved to the bridge, its MTU, and up
    assert out[2] == "10.9.8.7/24"
    assert out[3].startswith("default via 10.9.8.1 dev eth0")
    assert out[4] == "True True"  # the peer's MAC and MTU


def test_a_failing_message_in_a_batch_is_reported_and_the_socket_stays_usable():
    out = _in_new_netns("""
        import socket, subprocess
        from sampan.network import rtnl
        with rtnl.Socket() as s:
            lo = socket.if_nametoindex("lo")
            try:  # the route cannot be added: the gateway is unreachable
                s.request([rtnl.link_up(s.seq(), lo), rtnl.default_route(s.seq(), "10.1.1.1")])
            except rtnl.NetlinkError as e:
                print("err", e.errno)
            s.request([rtnl.add_address(s.seq(), lo, "127.0.0.2", 8)])
        print(",UP" in subprocess.run(["ip", "-o", "link", "show", "lo"], capture_output=True, text=True).stdout)
    """).splitlines()
    assert out[0] == "err 101"  # ENETUNREACH
    assert out[1] == "True"  # the message before it in the batch was applied
