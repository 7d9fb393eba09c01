"""The nftables script the firewall hands to libnftables (text only, no kernel)."""

from sampan.network import firewall


def test_render_table():
    rs = firewall.Ruleset("sampan-t", [firewall.NetRules("sampan0", "172.17.0.0/16"),
                                       firewall.NetRules("br-x", "10.1.0.0/24", internal=True)],
                          [{"proto": "tcp", "host_ip": "0.0.0.0", "host_port": 8080, "container_ip": "172.17.0.2", "container_port": 80},
                           {"proto": "udp", "host_ip": "127.0.0.1", "host_port": 53, "container_ip": "172.17.0.3", "container_port": 5353}])
    text = firewall.render(rs)
    assert text.startswith("add table ip sampan-t\ndelete table ip sampan-t\n")
    assert 'elements = { "sampan0", "br-x" }' in text
    assert "tcp . 8080 : 172.17.0.2 . 80" in text
    assert "127.0.0.1 . udp . 53 : 172.17.0.3 . 5353" in text
    assert 'ip saddr 172.17.0.0/16 oifname != "sampan0" masquerade' in text
    assert 'ip saddr 172.17.0.0/16 oifname "sampan0" ct status dnat masquerade' in text  # hairpin
    # an internal network gets no masquerade and is cut off from everything else
    assert "10.1.0.0/24" not in text.split("chain forward")[0].split("chain postrouting")[1]
    assert 'iifname "br-x" oifname != "br-x" drop' in text
    assert rs.forward_chain == "SAMPAN_T-FORWARD"


def test_render_empty():
    text = firewall.render(firewall.Ruleset("sampan"))
    assert "elements" not in text
