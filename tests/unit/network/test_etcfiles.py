"""/etc/hosts and /etc/resolv.conf as Docker writes them."""

import pytest

from sampan.errors import InvalidParameter
from sampan.network import etcfiles

HOST = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"


def test_hosts_order():
    text = etcfiles.hosts_file("abc", "", ["172.17.0.2"], [("gw", "172.17.0.1")],
                               [("172.17.0.3", ["db", "0123456789ab", "mydb"])])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert lines[-3:] == ["172.17.0.1\tgw", "172.17.0.3\tdb 0123456789ab mydb", "172.17.0.2\tabc"]
    assert etcfiles.hosts_file("h", "example.com", ["10.0.0.2"]).endswith("10.0.0.2\th.example.com h\n")


def test_extra_hosts():
    assert etcfiles.parse_extra_host("db:10.0.0.5", "172.17.0.1") == ("db", "10.0.0.5")
    assert etcfiles.parse_extra_host("gw=host-gateway", "172.17.0.1") == ("gw", "172.17.0.1")
    for bad in ("db", "db:", ":1.2.3.4", "db:notanip", "bad name:1.2.3.4", "a\nb:1.2.3.4"):
        with pytest.raises(InvalidParameter):
            etcfiles.parse_extra_host(bad, "172.17.0.1")


def test_resolv_default_bridge_drops_loopback_servers():
    r = etcfiles.resolv_conf(embedded=False, dns=[], dns_search=[], dns_options=[], daemon_dns=[], host_text=HOST)
    assert r == "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"
    only_local = etcfiles.resolv_conf(embedded=False, dns=[], dns_search=[], dns_options=[], daemon_dns=[],
                                      host_text="nameserver 127.0.0.1\n")
    assert only_local.startswith("nameserver 8.8.8.8\nnameserver 8.8.4.4\n")


def test_resolv_user_network_uses_embedded_server():
    r = etcfiles.resolv_conf(embedded=True, dns=["1.1.1.1"], dns_search=["a.example"], dns_options=["timeout:2"],
                             daemon_dns=[], host_text=HOST)
    assert r == "nameserver 127.0.0.11\nsearch a.example\noptions timeout:2 ndots:0\n"
    assert etcfiles.upstream_servers(["1.1.1.1"], [], HOST) == ["1.1.1.1"]
    assert etcfiles.upstream_servers([], [], HOST) == ["127.0.0.53", "10.0.0.2"]
