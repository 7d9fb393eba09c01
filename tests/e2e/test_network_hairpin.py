"""Hairpin NAT: containers reach published ports through a host address (the bridge's
gateway), their own and a neighbour's, as they do with Docker. Traffic stays between the
containers' namespaces and the bridge."""

from __future__ import annotations

import json
import socket
import uuid


def _ok(r) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HTTPD = ["sh", "-c", "mkdir -p /www && echo \"hello from $(hostname)\" > /www/index.html && exec httpd -f -p 80 -h /www"]


def test_published_port_reached_from_its_own_and_a_neighbour_container(sampand):
    port = _free_port()
    name = f"hp-{uuid.uuid4().hex[:8]}"
    cid = _ok(sampand.docker("run", "-d", "--name", name, "-p", f"{port}:80", "busybox", *HTTPD)).strip()
    try:
        gw = json.loads(_ok(sampand.docker("inspect", name)))[0]["NetworkSettings"]["Gateway"]
        fetch = f"for i in $(seq 50); do wget -qO- http://{gw}:{port}/ && exit 0; sleep 0.1; done; exit 1"
        # a neighbour on the same bridge, through the host's address
        out = _ok(sampand.docker("run", "--rm", "busybox", "sh", "-c", fetch))
        assert out == f"hello from {cid[:12]}\n"
        # the container itself, through its own published port
        out = _ok(sampand.docker("exec", name, "sh", "-c", fetch))
        assert out == f"hello from {cid[:12]}\n"
    finally:
        sampand.docker("rm", "-f", name)
