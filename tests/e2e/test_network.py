"""Networking end to end: published ports, user networks with DNS, connect/disconnect,
restart and kill -9, the leak check; through the docker CLI, docker-py and sampan's CLI.

Traffic goes only to 127.0.0.1 and between the containers' own namespaces.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest


def _name(prefix: str = "net") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _ok(r) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=3).read().decode()
        except (OSError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


HTTPD = ["sh", "-c", "mkdir -p /www && echo \"hello from $(hostname)\" > /www/index.html && exec httpd -f -p 80 -h /www"]


def _inspect(d, ref: str) -> dict:
    return json.loads(_ok(d.docker("inspect", ref)))[0]


def test_published_port_answers_on_loopback(sampand):
    port = _free_port()
    name = _name("web")
    cid = _ok(sampand.docker("run", "-d", "--name", name, "-p", f"{port}:80", "busybox", *HTTPD)).strip()
    try:
        assert _get(f"http://127.0.0.1:{port}/") == f"hello from {cid[:12]}\n"
        assert _ok(sampand.docker("port", name)).strip() == f"80/tcp -> 0.0.0.0:{port}"
        assert _ok(sampand.cli("port", name, "80")).strip() == f"0.0.0.0:{port}"
        info = _inspect(sampand, name)
        ns = info["NetworkSettings"]
        assert ns["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
        assert ns["IPAddress"] and ns["Gateway"] and ns["MacAddress"].startswith("02:42:")
        assert ns["Networks"]["bridge"]["IPAddress"] == ns["IPAddress"]
        assert f"0.0.0.0:{port}->80/tcp" in _ok(sampand.docker("ps", "--filter", f"name={name}"))
        hosts = _ok(sampand.docker("exec", name, "cat", "/etc/hosts"))
        assert f"{ns['IPAddress']}\t{cid[:12]}" in hosts
    finally:
        sampand.docker("rm", "-f", name)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()


def test_publish_all_gets_random_ports(sampand):
    name = _name("pall")
    _ok(sampand.cli("run", "-d", "--name", name, "-P", "--expose", "80", "--expose", "81/udp",
                    "busybox", *HTTPD))
    try:
        lines = _ok(sampand.cli("port", name)).splitlines()
        assert len(lines) == 2 and lines[0].startswith("80/tcp -> 0.0.0.0:") and lines[1].startswith("81/udp -> 0.0.0.0:")
        port = int(lines[0].rsplit(":", 1)[1])
        assert _get(f"http://127.0.0.1:{port}/").startswith("hello from")
    finally:
        sampand.cli("rm", "-f", name)


def test_taken_port_is_a_clear_error_and_nothing_half_started(sampand):
    port = _free_port()
    holder = socket.socket()
    holder.bind(("0.0.0.0", port))
    holder.listen(1)
    ports_before = _bridge_ports(sampand)
    name = _name("taken")
    try:
        r = sampand.docker("run", "-d", "--name", name, "-p", f"{port}:80", "busybox", "sleep", "60")
        assert r.returncode == 125
        assert f"0.0.0.0:{port}" in r.stderr and "already in use" in r.stderr
        assert _inspect(sampand, name)["State"]["Status"] == "created"
        assert not (_bridge_ports(sampand) - ports_before)
        assert not (sampand.exec_root / "netns" / _inspect(sampand, name)["Id"]).exists()
    finally:
        holder.close()
        sampand.docker("rm", "-f", name)
    # and a port another container holds
    a, b = _name("a"), _name("b")
    try:
        _ok(sampand.docker("run", "-d", "--name", a, "-p", f"{port}:80", "busybox", "sleep", "60"))
        r = sampand.docker("run", "-d", "--name", b, "-p", f"{port}:80", "busybox", "sleep", "60")
        assert r.returncode == 125 and "port is already allocated" in r.stderr
    finally:
        sampand.docker("rm", "-f", a, b)


def test_user_network_dns_aliases_and_isolation_of_default_bridge(sampand):
    net, db = _name("appnet"), _name("db")
    _ok(sampand.docker("network", "create", "--subnet", "10.123.45.0/24", net))
    try:
        _ok(sampand.docker("run", "-d", "--name", db, "--network", net, "--network-alias", "database",
                           "busybox", *HTTPD))
        info = _inspect(sampand, db)["NetworkSettings"]["Networks"][net]
        assert info["IPAddress"].startswith("10.123.45.") and info["Gateway"] == "10.123.45.1"
        assert "database" in info["Aliases"] and db in info["DNSNames"]
        out = _ok(sampand.docker("run", "--rm", "--network", net, "busybox", "sh", "-c",
                                 f"cat /etc/resolv.conf; wget -qO- http://{db}/; wget -qO- http://database/"))
        assert "nameserver 127.0.0.11" in out
        assert out.count("hello from") == 2
        # the same through sampan's CLI
        out = _ok(sampand.cli("run", "--rm", "--network", net, "busybox", "nslookup", "database"))
        assert info["IPAddress"] in out
        # the default bridge keeps Docker's behaviour: no name resolution of containers
        r = sampand.docker("run", "--rm", "busybox", "sh", "-c", f"grep -c 127.0.0.11 /etc/resolv.conf; nslookup {db}")
        assert not r.stdout.startswith("1")
        ls = _ok(sampand.docker("network", "ls", "--format", "{{.Name}} {{.Driver}}"))
        assert f"{net} bridge" in ls and "bridge bridge" in ls and "host host" in ls and "none null" in ls
        nets = json.loads(_ok(sampand.docker("network", "inspect", net)))[0]
        assert nets["IPAM"]["Config"] == [{"Subnet": "10.123.45.0/24", "Gateway": "10.123.45.1"}]
        assert any(c["Name"] == db for c in nets["Containers"].values())
        r = sampand.docker("network", "rm", net)
        assert r.returncode != 0 and "active endpoints" in r.stderr
    finally:
        sampand.docker("rm", "-f", db)
        sampand.docker("network", "rm", net)


def test_connect_disconnect_and_several_networks(sampand):
    n1, c = _name("n1"), _name("c")
    _ok(sampand.cli("network", "create", n1))
    try:
        _ok(sampand.docker("run", "-d", "--name", c, "busybox", "sleep", "60"))
        _ok(sampand.docker("network", "connect", "--alias", "other", n1, c))
        nets = _inspect(sampand, c)["NetworkSettings"]["Networks"]
        assert set(nets) == {"bridge", n1}
        ip = nets[n1]["IPAddress"]
        addrs = _ok(sampand.docker("exec", c, "ip", "-o", "-4", "addr"))
        assert ip in addrs and "eth1" in addrs
        out = _ok(sampand.docker("run", "--rm", "--network", n1, "busybox", "nslookup", "other"))
        assert ip in out
        _ok(sampand.docker("network", "disconnect", n1, c))
        assert set(_inspect(sampand, c)["NetworkSettings"]["Networks"]) == {"bridge"}
        assert "eth1" not in _ok(sampand.docker("exec", c, "ip", "-o", "link"))
    finally:
        sampand.docker("rm", "-f", c)
        sampand.docker("network", "rm", n1)


def test_container_mode_host_mode_and_etc_files(sampand):
    web = _name("web")
    _ok(sampand.docker("run", "-d", "--name", web, "busybox", *HTTPD))
    try:
        out = _ok(sampand.docker("run", "--rm", "--network", f"container:{web}", "busybox", "netstat", "-ltn"))
        assert ":80 " in out
        out = _ok(sampand.docker("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev"))
        assert "lo:" in out and len(out.splitlines()) > 3
        out = _ok(sampand.docker("run", "--rm", "--add-host", "gw:host-gateway", "--add-host", "x.example:10.9.8.7",
                                 "--hostname", "h1", "--domainname", "example.org", "--dns", "10.0.0.53",
                                 "--dns-search", "corp.example", "--dns-option", "ndots:3",
                                 "busybox", "sh", "-c", "cat /etc/hosts /etc/resolv.conf"))
        gw = json.loads(_ok(sampand.docker("network", "inspect", "bridge")))[0]["IPAM"]["Config"][0]["Gateway"]
        assert f"{gw}\tgw" in out and "10.9.8.7\tx.example" in out and "h1.example.org h1" in out
        assert "nameserver 10.0.0.53" in out and "search corp.example" in out and "options ndots:3" in out
        out = _ok(sampand.docker("run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "--mac-address",
                                 "92:d0:c6:0a:29:33", "busybox", "sh", "-c",
                                 "cat /proc/sys/net/ipv4/ip_forward; cat /sys/class/net/eth0/address"))
        assert out.split() == ["1", "92:d0:c6:0a:29:33"]
    finally:
        sampand.docker("rm", "-f", web)


def test_docker_sdk_ports_and_networks(docker_client):
    port = _free_port()
    net = docker_client.networks.create(_name("sdk"), driver="bridge", labels={"t": "1"})
    c = docker_client.containers.run("busybox", HTTPD, detach=True, ports={"80/tcp": port}, network=net.name)
    try:
        c.reload()
        assert c.ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
        assert _get(f"http://127.0.0.1:{port}/").startswith("hello from")
        net.reload()
        assert c.id in [x.id for x in net.containers]
        assert docker_client.networks.list(filters={"label": "t=1"})[0].id == net.id
    finally:
        c.remove(force=True)
        net.remove()


@pytest.mark.parametrize("body,status", [
    ({"Name": "bad1", "IPAM": {"Config": [{"Subnet": "10.1.2.3/33"}]}}, 400),
    ({"Name": "bad2", "IPAM": {"Config": [{"Subnet": "not-a-cidr"}]}}, 400),
    ({"Name": "bad3", "IPAM": {"Config": [{"Subnet": "10.77.0.0/24", "Gateway": "10.78.0.1"}]}}, 400),
    ({"Name": "../../etc", "Driver": "bridge"}, 400),
    ({"Name": "bad4", "Driver": "overlay"}, 404),
    ({"Name": "bad5", "Options": {"com.docker.network.bridge.name": "bad name/../x"}}, 400),
    ({"Name": "bridge"}, 403),
    ("[]", 400),
])
def test_network_create_rejects_bad_input(sampand, body, status):
    code, data = sampand.api_json("POST", "/networks/create", body if not isinstance(body, str) else body.encode())
    assert code == status, data
    assert data["message"]


def test_overlapping_subnet_and_bad_port_specs(sampand):
    net = _name("ov")
    code, _ = sampand.api_json("POST", "/networks/create", {"Name": net, "IPAM": {"Config": [{"Subnet": "10.124.0.0/16"}]}})
    assert code == 201
    try:
        code, data = sampand.api_json("POST", "/networks/create",
                                      {"Name": net + "x", "IPAM": {"Config": [{"Subnet": "10.124.5.0/24"}]}})
        assert code == 403 and "overlaps" in data["message"]
        for bindings in ({"80/tcp": [{"HostPort": "99999"}]}, {"80/icmp": []}, {"x": []},
                         {"80/tcp": [{"HostIp": "nope", "HostPort": "1"}]}):
            code, data = sampand.api_json("POST", "/containers/create", {
                "Image": "busybox", "Cmd": ["true"], "HostConfig": {"PortBindings": bindings}})
            assert code == 400, (bindings, data)
        code, data = sampand.api_json("POST", "/containers/create", {
            "Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "no-such-net"}})
        assert code == 404 and "not found" in data["message"]
    finally:
        sampand.api("DELETE", f"/networks/{net}")


def _our_bridges(d) -> list[str]:
    code, nets = d.api_json("GET", "/networks")
    return [n["Options"].get("com.docker.network.bridge.name") or "br-" + n["Id"][:12]
            for n in nets if n["Driver"] == "bridge"]


def _bridge_ports(d) -> set[str]:
    """The veths on this daemon's bridges (other test runs on the host have their own)."""
    out = set()
    for b in _our_bridges(d):
        try:
            out |= set(os.listdir(f"/sys/class/net/{b}/brif"))
        except FileNotFoundError:
            pass
    return out


def _netns(d) -> list[str]:
    p = d.exec_root / "netns"
    return sorted(x.name for x in p.iterdir()) if p.exists() else []


def _state_of(bridges: list[str], port: int) -> tuple:
    """Ports and addresses of these bridges, and nft map elements for this host port."""
    ports = set()
    for b in bridges:
        ports |= set(os.listdir(f"/sys/class/net/{b}/brif"))
    addrs = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    our_addrs = sorted(line.split()[3] for line in addrs.splitlines() if line.split()[1] in bridges)
    rules = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    return ports, our_addrs, rules.count(f". {port} :")


def test_no_leaks_after_200_create_remove_cycles(sampand):
    # Two networks of its own: the default bridge is shared with every other test's containers.
    port = _free_port()
    nets = [_name("leak"), _name("leak")]
    for n in nets:
        _ok(sampand.docker("network", "create", n))
    try:
        bridges = ["br-" + json.loads(_ok(sampand.docker("network", "inspect", n)))[0]["Id"][:12] for n in nets]
        before = _state_of(bridges, port)
        made = []
        for i in range(200):
            body = {"Image": "busybox", "Cmd": ["true"],
                    "HostConfig": {"NetworkMode": nets[i % 2],
                                   "PortBindings": {"80/tcp": [{"HostPort": str(port)}]}}}
            code, c = sampand.api_json("POST", "/containers/create", body)
            assert code == 201, c
            made.append(c["Id"])
            code, data = sampand.api("POST", f"/containers/{c['Id']}/start")
            assert code == 204, data
            sampand.api("POST", f"/containers/{c['Id']}/wait", timeout=30)
            code, data = sampand.api("DELETE", f"/containers/{c['Id']}?force=1")
            assert code == 204, data
        # Namespaces die in the kernel's workqueue, their veths with them: give it a moment.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _state_of(bridges, port) != before:
            time.sleep(0.2)
        assert _state_of(bridges, port) == before
        assert not set(made) & set(_netns(sampand))
        for n in nets:
            info = json.loads(_ok(sampand.docker("network", "inspect", n)))[0]
            assert info["Containers"] == {}
    finally:
        for n in nets:
            sampand.docker("network", "rm", n)


@pytest.fixture
def netdaemon(sampand_factory):
    return sampand_factory()


def test_kill9_restart_and_lost_bridge_keep_address_and_port(netdaemon):
    d = netdaemon
    port = _free_port()
    net, web, db = _name("rn"), _name("web"), _name("db")
    _ok(d.docker("network", "create", net))
    _ok(d.docker("run", "-d", "--name", web, "-p", f"{port}:80", "busybox", *HTTPD))
    _ok(d.docker("run", "-d", "--name", db, "--network", net, "busybox", *HTTPD))
    ip = _inspect(d, web)["NetworkSettings"]["IPAddress"]
    assert _get(f"http://127.0.0.1:{port}/").startswith("hello")
    d.restart()
    assert _inspect(d, web)["NetworkSettings"]["IPAddress"] == ip
    assert _get(f"http://127.0.0.1:{port}/").startswith("hello")
    assert "hello" in _ok(d.docker("run", "--rm", "--network", net, "busybox", "wget", "-qO-", f"http://{db}/"))
    # a host reboot, as far as the network goes: bridges and veths gone, rules flushed
    bridges = [json.loads(_ok(d.docker("network", "inspect", n)))[0]["Options"].get("com.docker.network.bridge.name")
               for n in ("bridge",)]
    for b in bridges:
        subprocess.run(["ip", "link", "del", b], check=True)
    d.restart()
    assert _inspect(d, web)["NetworkSettings"]["IPAddress"] == ip
    assert _get(f"http://127.0.0.1:{port}/").startswith("hello")
    # a new container never gets the address a running one holds
    other = _ok(d.docker("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"))
    assert f"{ip}/" not in other


def test_ps_filters_network_publish_expose(sampand):
    net, a, b = _name("flt"), _name("a"), _name("b")
    port = _free_port()
    _ok(sampand.docker("network", "create", net))
    try:
        _ok(sampand.docker("run", "-d", "--name", a, "--network", net, "--expose", "9000", "busybox", "sleep", "60"))
        _ok(sampand.docker("run", "-d", "--name", b, "-p", f"{port}:80", "busybox", "sleep", "60"))
        names = lambda *f: set(_ok(sampand.docker("ps", "--format", "{{.Names}}", *f)).split())  # noqa: E731
        assert names("--filter", f"network={net}") == {a}
        assert b in names("--filter", "publish=80/tcp") and a not in names("--filter", "publish=80/tcp")
        assert b in names("--filter", f"publish={port}")
        assert a in names("--filter", "expose=9000") and b not in names("--filter", "expose=9000")
    finally:
        sampand.docker("rm", "-f", a, b)
        sampand.docker("network", "rm", net)


@pytest.fixture
def peer_host():
    """A namespace standing in for another host, wired to this one by a veth pair."""
    tag = uuid.uuid4().hex[:6]
    ns, host_if = f"sppeer{tag}", f"sph{tag}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns], check=True)
        subprocess.run(["ip", "addr", "add", "10.250.77.1/30", "dev", host_if], check=True)
        subprocess.run(["ip", "link", "set", host_if, "up"], check=True)
        for cmd in (["ip", "addr", "add", "10.250.77.2/30", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "default", "via", "10.250.77.1"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_published_port_from_another_host(sampand, peer_host):
    port = _free_port()
    name = _name("pub")
    cid = _ok(sampand.docker("run", "-d", "--name", name, "-p", f"{port}:80", "busybox", *HTTPD)).strip()
    try:
        _get(f"http://127.0.0.1:{port}/")
        r = subprocess.run(["ip", "netns", "exec", peer_host, "/bin/busybox", "wget", "-qO-",
                            f"http://10.250.77.1:{port}/"], capture_output=True, text=True, timeout=20)
        assert r.stdout == f"hello from {cid[:12]}\n", r.stderr
    finally:
        sampand.docker("rm", "-f", name)
