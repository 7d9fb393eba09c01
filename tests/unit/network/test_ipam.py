"""IPAM rules: pools, subnets, allocation order, hostile input."""

import ipaddress

import pytest

from sampan.errors import Conflict, InvalidParameter, Unavailable
from sampan.network import ipam

N = ipaddress.IPv4Network
A = ipaddress.IPv4Address


def test_make_pool_defaults_gateway_to_first_address():
    p = ipam.make_pool("10.123.0.0/24")
    assert p.gateway == A("10.123.0.1")
    assert p.to_config() == {"Subnet": "10.123.0.0/24", "Gateway": "10.123.0.1"}


@pytest.mark.parametrize("subnet", ["", "10.0.0.1/24", "10.0.0.0/33", "banana", "10.0.0.0",
                                    "fd00::/64", "127.0.0.0/8", "224.0.0.0/4", "10.0.0.0/31",
                                    "../../etc/passwd", "10.0.0.0/24\x00"])
def test_bad_subnets_are_invalid_parameter(subnet):
    with pytest.raises(InvalidParameter):
        ipam.make_pool(subnet)


def test_gateway_and_range_must_be_inside():
    with pytest.raises(InvalidParameter):
        ipam.make_pool("10.1.0.0/24", gateway="10.2.0.1")
    with pytest.raises(InvalidParameter):
        ipam.make_pool("10.1.0.0/24", gateway="10.1.0.255")
    with pytest.raises(InvalidParameter):
        ipam.make_pool("10.1.0.0/24", ip_range="10.1.1.0/28")
    p = ipam.make_pool("10.1.0.0/24", gateway="10.1.0.254", ip_range="10.1.0.128/28")
    assert ipam.allocate(p, set()) == A("10.1.0.128") or ipam.allocate(p, set()) in p.ip_range


def test_allocate_skips_network_gateway_broadcast_and_used():
    p = ipam.make_pool("10.9.0.0/29")  # .1 gateway, .2-.6 usable, .7 broadcast
    got = set()
    last = None
    for _ in range(5):
        a = ipam.allocate(p, got, last)
        assert a not in got and p.usable(a)
        got.add(a)
        last = a
    assert got == {A(f"10.9.0.{i}") for i in range(2, 7)}
    with pytest.raises(Unavailable):
        ipam.allocate(p, got, last)


def test_allocate_continues_after_last_and_wraps():
    p = ipam.make_pool("10.9.0.0/29")
    # .2 was just freed: the next container gets .4, not the address freed a moment ago
    assert ipam.allocate(p, {A("10.9.0.3")}, A("10.9.0.3")) == A("10.9.0.4")
    assert ipam.allocate(p, set(), A("10.9.0.6")) == A("10.9.0.2")


def test_allocate_wanted_address():
    p = ipam.make_pool("10.9.0.0/24")
    assert ipam.allocate(p, set(), wanted="10.9.0.77") == A("10.9.0.77")
    with pytest.raises(Conflict):
        ipam.allocate(p, {A("10.9.0.77")}, wanted="10.9.0.77")
    for bad in ("10.9.0.1", "10.9.0.0", "10.9.0.255", "10.8.0.5", "x"):
        with pytest.raises(InvalidParameter):
            ipam.allocate(p, set(), wanted=bad)


def test_pick_subnet_avoids_networks_and_routes():
    pools = ipam.parse_pools(None)
    assert ipam.pick_subnet(pools, [], []) == N("172.17.0.0/16")
    # a host route on 172.17/16 (a real docker0, say) moves us on, as Docker does
    assert ipam.pick_subnet(pools, [], [N("172.17.0.0/16"), N("0.0.0.0/0")]) == N("172.18.0.0/16")
    assert ipam.pick_subnet(pools, [N("172.18.0.0/16")], [N("172.17.5.0/24")]) == N("172.19.0.0/16")
    everything = [N("172.16.0.0/12"), N("192.168.0.0/16")]
    with pytest.raises(Unavailable):
        ipam.pick_subnet(pools, everything, [])


def test_parse_pools_validates():
    assert ipam.parse_pools([{"base": "10.10.0.0/16", "size": 24}]) == [("10.10.0.0/16", 24)]
    for bad in ("x", [{"base": "10.10.0.0/16"}], [{"base": "10.10.0.0/16", "size": 8}], [1]):
        with pytest.raises(InvalidParameter):
            ipam.parse_pools(bad)


def test_proc_routes():
    text = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
            "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
            "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    assert ipam.parse_proc_routes(text) == [N("192.0.2.0/24")]


def test_mac():
    assert ipam.mac_for(A("172.17.0.2")) == "02:42:ac:11:00:02"
    assert ipam.parse_mac("92:D0:C6:0A:29:33") == "92:d0:c6:0a:29:33"
    for bad in ("", "92:d0:c6:0a:29", "zz:d0:c6:0a:29:33", "01:00:5e:00:00:01"):
        with pytest.raises(InvalidParameter):
            ipam.parse_mac(bad)
