"""Network plumbing against the real kernel: namespaces, veths, a bridge, DNAT from loopback.

Traffic goes only to 127.0.0.1 and to namespaces these tests create. Every object made here
(bridge, table, namespaces) carries a per-run name and is removed at teardown.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.request

import pytest

pytest.importorskip("pyroute2")

from sampan.network import firewall, netlink  # noqa: E402

BUSYBOX = "/bin/busybox"


def _links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


@pytest.fixture
def lab(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    tag = secrets.token_hex(3)
    w = netlink.Worker()
    env = {"bridge": f"spt-{tag}", "table": f"spt-{tag}", "dir": str(tmp_path / "netns"), "worker": w,
           "subnet": "10.231.7.0/24", "gw": "10.231.7.1", "procs": []}
    os.makedirs(env["dir"])
    w.call(netlink.ensure_bridge, env["bridge"], env["gw"], 24)
    # Hosts whose iptables FORWARD policy is DROP (br_netfilter on) need our accept rules
    # even between two ports of one bridge: the product always applies them with a bridge.
    firewall.apply(firewall.Ruleset(env["table"], [firewall.NetRules(env["bridge"], env["subnet"])]))
    yield env
    for p in env["procs"]:
        p.kill()
        p.wait()
    try:
        firewall.remove(firewall.Ruleset(env["table"]))
    except Exception:  # noqa: BLE001
        pass
    for name in os.listdir(env["dir"]):
        w.call(netlink.delete_netns, os.path.join(env["dir"], name))
    w.call(netlink.delete_link, env["bridge"])
    w.close()


def _sandbox(lab, n: int) -> tuple[str, str, str]:
    path = os.path.join(lab["dir"], f"c{n}")
    ip = f"10.231.7.{n + 10}"
    veth = f"vt{secrets.token_hex(3)}{n}"[:15]
    plan = netlink.EndpointPlan(lab["bridge"], veth, "eth0", ip, 24, lab["gw"], f"02:42:0a:e7:07:{n + 10:02x}")
    lab["worker"].call(netlink.setup_sandbox, path, [plan], True)
    return path, ip, veth


def _in_ns(path: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={path}", *argv], capture_output=True, text=True, timeout=20, **kw)


def _httpd(lab, path: str, root) -> None:
    root.mkdir(exist_ok=True)
    (root / "index.html").write_text("hello from the namespace\n")
    p = subprocess.Popen(["nsenter", f"--net={path}", BUSYBOX, "httpd", "-f", "-p", "80", "-h", str(root)])
    lab["procs"].append(p)
    time.sleep(0.3)


def test_sandbox_has_address_route_and_reaches_another(lab, tmp_path):
    if not os.access(BUSYBOX, os.X_OK):
        pytest.skip("busybox-static missing")
    a, ip_a, veth_a = _sandbox(lab, 1)
    b, ip_b, _ = _sandbox(lab, 2)
    addr = _in_ns(a, "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert f"{ip_a}/24" in addr
    assert f"default via {lab['gw']} dev eth0" in _in_ns(a, "ip", "route").stdout
    assert "UP" in _in_ns(a, "ip", "-o", "link", "show", "lo").stdout
    assert open(f"/sys/class/net/{veth_a}/master/uevent").read().find(f"INTERFACE={lab['bridge']}") >= 0
    _httpd(lab, b, tmp_path / "www")
    got = _in_ns(a, BUSYBOX, "wget", "-qO-", f"http://{ip_b}/")
    assert got.stdout == "hello from the namespace\n", got.stderr


def test_published_port_from_loopback(lab, tmp_path):
    if not os.access(BUSYBOX, os.X_OK):
        pytest.skip("busybox-static missing")
    c, ip, _ = _sandbox(lab, 3)
    _httpd(lab, c, tmp_path / "www")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rs = firewall.Ruleset(lab["table"], [firewall.NetRules(lab["bridge"], lab["subnet"])])
    firewall.apply(rs)
    m = {"proto": "tcp", "host_ip": "0.0.0.0", "host_port": port, "container_ip": ip, "container_port": 80}
    firewall.add_ports(lab["table"], [m])
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
    assert body == b"hello from the namespace\n"
    firewall.delete_ports(lab["table"], [m])
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
    # a rebuild of the table keeps what the state says, nothing more
    rs.ports = [m]
    firewall.apply(rs)
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read() == body


def test_failed_endpoint_leaves_nothing(lab):
    path = os.path.join(lab["dir"], "bad")
    before = _links()
    plan = netlink.EndpointPlan("no-such-br", "vtbad0", "eth0", "10.231.7.99", 24, lab["gw"], "02:42:0a:e7:07:63")
    with pytest.raises(Exception):
        lab["worker"].call(netlink.setup_sandbox, path, [plan], True)
    assert not os.path.exists(path)
    assert _links() == before


def test_no_leak_after_200_cycles(lab):
    # Only what this test makes is counted: other test runs on the host add links of their own.
    prefix = "vc" + secrets.token_hex(3)
    brif = f"/sys/class/net/{lab['bridge']}/brif"

    def ours() -> tuple:
        addrs = subprocess.run(["ip", "-o", "addr", "show", "dev", lab["bridge"]], capture_output=True, text=True).stdout
        return (sorted(n for n in _links() if n.startswith(prefix)), sorted(os.listdir(brif)),
                sorted(line.split()[3] for line in addrs.splitlines()), sorted(os.listdir(lab["dir"])))

    before = ours()
    path = os.path.join(lab["dir"], "cycle")
    t0 = time.perf_counter()
    for i in range(200):
        plan = netlink.EndpointPlan(lab["bridge"], f"{prefix}{i}", "eth0", "10.231.7.50", 24, lab["gw"], "02:42:0a:e7:07:32")
        lab["worker"].call(netlink.setup_sandbox, path, [plan], True)
        lab["worker"].call(netlink.teardown_sandbox, path, [plan.host_veth])
    per = (time.perf_counter() - t0) / 200
    # Namespaces die in the kernel's own workqueue, their veths with them: give it a moment.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and ours() != before:
        time.sleep(0.2)
    assert ours() == before
    assert not os.path.exists(path)
    print(f"setup+teardown per sandbox: {per * 1000:.1f} ms")
