"""The embedded DNS server leaves port 53 to the container (Docker redirects 127.0.0.11:53
to the resolver's real ports inside the container's namespace): a container on a
user-defined network can listen on 0.0.0.0:53 itself and still resolve its neighbours."""

from __future__ import annotations

import uuid


def _ok(r) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def test_container_binds_port_53_and_names_still_resolve(sampand):
    net, db = f"dns53-{uuid.uuid4().hex[:6]}", f"db-{uuid.uuid4().hex[:6]}"
    _ok(sampand.docker("network", "create", net))
    try:
        _ok(sampand.docker("run", "-d", "--network", net, "--name", db, "busybox", "sh", "-c",
                           "mkdir -p /www && echo db-ok > /www/index.html && exec httpd -f -p 80 -h /www"))
        out = _ok(sampand.docker("run", "--rm", "--network", net, "busybox", "sh", "-c",
                                 "nc -l -p 53 & sleep 0.3; kill -0 $! && echo bound-53; "
                                 "nslookup " + db + " | grep -c '^Name:'; "
                                 "for i in $(seq 50); do wget -qO- http://" + db + "/ && exit 0; sleep 0.1; done"))
        assert out.split() == ["bound-53", "1", "db-ok"]
    finally:
        sampand.docker("rm", "-f", db)
        sampand.docker("network", "rm", net)
