"""Published-port specs and host port assignment."""

import pytest

from sampan.errors import Conflict, InvalidParameter
from sampan.network import ports


def reqs(bindings, exposed=None, all_=False):
    return ports.requests({"ExposedPorts": exposed or {}}, {"PortBindings": bindings, "PublishAllPorts": all_})


def test_requests_parse_bindings_ranges_and_publish_all():
    r = reqs({"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostPort": "5300-5310"}],
              "443": None}, exposed={"80/tcp": {}, "9000/tcp": {}}, all_=True)
    assert ports.PortRequest("tcp", 80, "", 8080, 8080) in r
    assert ports.PortRequest("udp", 53, "", 5300, 5310) in r
    assert ports.PortRequest("tcp", 443, "", 0, 0) in r
    assert ports.PortRequest("tcp", 9000, "", 0, 0) in r  # -P: exposed and not bound
    assert len(r) == 4


@pytest.mark.parametrize("bindings", [
    {"80/icmp": []}, {"abc": []}, {"70000/tcp": []}, {"0/tcp": []},
    {"80/tcp": [{"HostPort": "99999"}]}, {"80/tcp": [{"HostPort": "90-80"}]},
    {"80/tcp": [{"HostPort": "x"}]}, {"80/tcp": [{"HostIp": "not-an-ip", "HostPort": "80"}]},
    {"80/tcp": [{"HostIp": "::1", "HostPort": "80"}]}, {"80/tcp": "8080"}, {"80/tcp": [5]},
    {"80/tcp": [{"HostPort": "8080"}], "81/tcp": [{"HostPort": "8080"}]},
])
def test_bad_specs_are_invalid_parameter(bindings):
    with pytest.raises(InvalidParameter):
        reqs(bindings)


def test_assign_fixed_random_and_conflicts():
    taken = set()
    always = lambda proto, ip, port: True  # noqa: E731
    m = ports.assign([ports.PortRequest("tcp", 80, "", 8080, 8080)], "172.17.0.2", taken, always, (50000, 50010))
    assert m[0].host_port == 8080 and m[0].host_ip == "0.0.0.0" and m[0].container_ip == "172.17.0.2"
    assert ("tcp", "0.0.0.0", 8080) in taken
    with pytest.raises(Conflict, match="already allocated"):
        ports.assign([ports.PortRequest("tcp", 80, "127.0.0.1", 8080, 8080)], "172.17.0.3", taken, always)
    # the same number on udp is another port
    ports.assign([ports.PortRequest("udp", 80, "", 8080, 8080)], "172.17.0.3", taken, always)
    r = ports.assign([ports.PortRequest("tcp", 81, "", 0, 0)] * 3, "172.17.0.3", taken, always, (50000, 50010))
    assert len({x.host_port for x in r}) == 3 and all(50000 <= x.host_port <= 50010 for x in r)


def test_assign_failure_allocates_nothing():
    taken = set()
    busy = lambda proto, ip, port: port != 9001  # noqa: E731
    with pytest.raises(Conflict, match="address already in use"):
        ports.assign([ports.PortRequest("tcp", 80, "", 9000, 9000),
                       ports.PortRequest("tcp", 81, "", 9001, 9001)], "10.0.0.2", taken, busy)
    assert taken == set()


def test_range_picks_first_free():
    taken = {("tcp", "0.0.0.0", 7000)}
    r = ports.assign([ports.PortRequest("tcp", 80, "", 7000, 7002)], "10.0.0.2", taken, lambda *a: True)
    assert r[0].host_port == 7001


def test_shapes():
    maps = [ports.PortMapping("tcp", 80, "0.0.0.0", 8080, "172.17.0.2").to_json()]
    cfg = {"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}}
    assert ports.settings_ports(cfg, maps) == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                               "443/tcp": None}
    assert ports.summary_ports(cfg, maps) == [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 443, "Type": "tcp"}]
