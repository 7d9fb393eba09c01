"""Network, volume, pull and push events as dockerd logs them, read back through the real
`docker events --since/--until` and the Docker SDK."""

from __future__ import annotations

import json
import time

import pytest

from .test_distribution import Registry

pytestmark = pytest.mark.e2e


def _events(d, since: str, *filters: str) -> list[dict]:
    until = str(time.time() + 1)
    args = ["events", "--since", since, "--until", until, "--format", "{{json .}}"]
    for f in filters:
        args += ["--filter", f]
    r = d.docker(*args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def test_network_events_explicit_and_implicit(sampand):
    d = sampand
    since = str(time.time() - 0.5)
    assert d.docker("network", "create", "evnet").returncode == 0
    nid = d.docker("network", "inspect", "-f", "{{.Id}}", "evnet").stdout.strip()
    r = d.docker("run", "-d", "--name", "evnc", "--network", "evnet", "busybox", "sleep", "30")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        bridge = d.docker("network", "inspect", "-f", "{{.Id}}", "bridge").stdout.strip()
        assert d.docker("network", "connect", "bridge", "evnc").returncode == 0
        assert d.docker("network", "disconnect", "bridge", "evnc").returncode == 0
        assert d.docker("stop", "-t", "1", "evnc").returncode == 0
    finally:
        d.docker("rm", "-f", "evnc")
    r = d.docker("run", "--rm", "--name", "evnone", "--network", "none", "busybox", "true")
    assert r.returncode == 0, r.stderr
    none_cid = [e["Actor"]["ID"] for e in _events(d, since, "container=evnone", "event=destroy")][0]
    assert d.docker("network", "rm", "evnet").returncode == 0
    evs = _events(d, since, "type=network")
    assert all(e["Type"] == "network" and e["scope"] == "local" and "status" not in e for e in evs)
    seen = [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"].get("container"),
             e["Actor"]["Attributes"].get("name"), e["Actor"]["Attributes"].get("type")) for e in evs]
    # (other tests' containers join and leave the default bridge meanwhile: only ours count)
    mine = [s for s in seen if s[1] == nid or (s[1] == bridge and s[2] == cid)]
    assert mine[0] == ("create", nid, None, "evnet", "bridge")
    assert mine[-1] == ("destroy", nid, None, "evnet", "bridge")
    order = [(a, i, c) for a, i, c, _, _ in mine]
    # start joins evnet; the explicit connect/disconnect of bridge; the stop leaves evnet
    assert order[1:-1] == [("connect", nid, cid), ("connect", bridge, cid),
                           ("disconnect", bridge, cid), ("disconnect", nid, cid)]
    # --network none: the `none` network (type null) joined and left, as dockerd logs it
    nones = [s for s in seen if s[2] == none_cid]
    assert [(s[0], s[3], s[4]) for s in nones] == [("connect", "none", "null"), ("disconnect", "none", "null")]
    # the network filter matches by name too
    assert {e["Actor"]["ID"] for e in _events(d, since, "network=evnet")} == {nid}


def test_volume_events_create_mount_unmount_destroy(sampand, docker_client):
    d = sampand
    since = time.time() - 0.5
    assert d.docker("volume", "create", "evvol").returncode == 0
    r = d.docker("run", "--name", "evvc", "-v", "evvol:/data:ro", "busybox", "true")
    assert r.returncode == 0, r.stderr
    cid = d.docker("inspect", "-f", "{{.Id}}", "evvc").stdout.strip()
    d.docker("rm", "evvc")
    assert d.docker("volume", "rm", "evvol").returncode == 0
    evs = [e for e in _events(d, str(since), "type=volume") if e["Actor"]["ID"] == "evvol"]
    assert [e["Action"] for e in evs] == ["create", "mount", "unmount", "destroy"]
    mount = evs[1]["Actor"]["Attributes"]
    assert mount == {"container": cid, "destination": "/data", "driver": "local",
                     "propagation": "", "read/write": "false"}
    assert evs[2]["Actor"]["Attributes"] == {"container": cid, "driver": "local"}
    assert evs[0]["Actor"]["Attributes"] == {"driver": "local"}
    # The SDK reads the same stream (decoded, filtered by the daemon).
    got = list(docker_client.events(since=since, until=time.time() + 1, decode=True,
                                    filters={"type": "volume", "volume": "evvol"}))
    assert [e["Action"] for e in got] == ["create", "mount", "unmount", "destroy"]


def test_anonymous_volume_events(sampand):
    d = sampand
    since = str(time.time() - 0.5)
    r = d.docker("run", "--rm", "--name", "evanon", "-v", "/anon", "busybox", "true")
    assert r.returncode == 0, r.stderr
    cid = [e["Actor"]["ID"] for e in _events(d, since, "container=evanon", "event=destroy")][0]
    names = {e["Actor"]["ID"] for e in _events(d, since, "type=volume", "event=mount")
             if e["Actor"]["Attributes"]["container"] == cid}
    assert len(names) == 1
    evs = _events(d, since, "type=volume", f"volume={names.pop()}")
    assert [e["Action"] for e in evs] == ["create", "mount", "unmount", "destroy"]


def test_pull_and_push_events(sampand, tmp_path):
    reg = Registry(tmp_path)
    d = sampand
    try:
        since = str(time.time() - 0.5)
        ref = f"{reg.host}/evbox:1"
        assert d.docker("tag", "busybox", ref).returncode == 0
        r = d.docker("push", ref, timeout=120)
        assert r.returncode == 0, r.stderr
        assert d.docker("rmi", ref).returncode == 0
        r = d.docker("pull", ref, timeout=120)
        assert r.returncode == 0, r.stderr
        evs = _events(d, since, "type=image", "event=push", "event=pull")
        assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]["name"], e["id"])
                for e in evs] == [("push", ref, f"{reg.host}/evbox", ref),
                                  ("pull", ref, f"{reg.host}/evbox", ref)]
        # the image filter matches the pulled reference, with or without its tag
        assert len(_events(d, since, f"image={reg.host}/evbox", "event=pull")) == 1
    finally:
        d.docker("rmi", f"{reg.host}/evbox:1")
        reg.stop()
