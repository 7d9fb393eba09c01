"""Fuzz: the daemon's own validation of what a client sends in HostConfig - PortBindings
(sampan/network/ports.py), Binds and Mounts (sampan/volumes/mounts.py), Ulimits, Tmpfs,
SecurityOpt, Devices, Sysctls and the rest of build_spec (sampan/runtime/spec.py). JSON of any
shape either validates or raises InvalidParameter (a 400): never a TypeError that would be a
500."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from sampan.errors import InvalidParameter, SampanError
from sampan.engine import createconfig
from sampan.network import ports
from sampan.runtime.spec import build_spec
from sampan.volumes import mounts as vmounts

_S = settings(max_examples=300, deadline=None)
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True), st.text(max_size=12),
                    st.sampled_from(["80/tcp", "53/udp", "1-5/tcp", "70000", "0", "-1",
                                     "/", "../..", "/etc", "rw", "ro,Z", "nofile", "apparmor=x",
                                     "seccomp=unconfined", "no-new-privileges", "label=disable",
                                     "127.0.0.1", "::1", "8080-8090"]))
JSONISH = st.recursive(_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(
        ["HostPort", "HostIp", "Name", "Soft", "Hard", "Target", "Source", "Type", "ReadOnly",
         "PathOnHost", "BindOptions", "TmpfsOptions", "SizeBytes", "Mode", "VolumeOptions"])),
        inner, max_size=4)), max_leaves=12)


@_S
@given(st.dictionaries(st.one_of(st.text(max_size=10), st.sampled_from(
    ["80/tcp", "80", "53/udp", "0/tcp", "65536/tcp", "1-2/tcp", "x/sctp"])), JSONISH, max_size=3),
    st.booleans())
def test_port_bindings(bindings, publish_all):
    try:
        reqs = ports.requests({"ExposedPorts": {"80/tcp": {}}},
                              {"PortBindings": bindings, "PublishAllPorts": publish_all})
    except InvalidParameter:
        return
    for r in reqs:
        assert 0 < r.container_port <= 65535
        assert 0 <= r.host_lo <= r.host_hi <= 65535


@_S
@given(st.one_of(st.text(max_size=60), st.lists(st.sampled_from(
    ["/src", "vol", "../x", "/dst", "", "ro", "rw", "z", "Z", "shared", "nocopy", "/", "C:\\x",
     "rw,ro", "bogus"]), max_size=4).map(":".join)))
def test_bind_specs(raw):
    try:
        mp = vmounts.parse_bind(raw)
    except InvalidParameter:
        return
    assert mp.Destination.startswith("/") and ".." not in mp.Destination.split("/")


@_S
@given(JSONISH)
def test_mount_objects(m):
    try:
        mp = vmounts.parse_mount(m)
    except InvalidParameter:
        return
    assert mp.Destination.startswith("/") and ".." not in mp.Destination.split("/")


@_S
@given(st.dictionaries(st.sampled_from(
    ["Ulimits", "Tmpfs", "SecurityOpt", "Devices", "Sysctls", "ShmSize", "CapAdd", "CapDrop",
     "IpcMode", "PidMode", "UTSMode", "CgroupnsMode", "MaskedPaths", "ReadonlyPaths",
     "OomScoreAdj", "ConsoleSize", "GroupAdd", "Privileged", "ReadonlyRootfs", "Init"]),
    JSONISH, max_size=4),
    st.dictionaries(st.sampled_from(["Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Tty",
                                     "StopSignal", "Domainname"]), JSONISH, max_size=3))
def test_build_spec_with_hostile_host_config(host_config, config):
    # The daemon's path: the create body's schema check, then (at start) build_spec.
    config.setdefault("Cmd", ["true"])
    try:
        config, host_config = createconfig.split_body(dict(config, Image="busybox",
                                                           HostConfig=host_config))
        spec = build_spec(config=config, host_config=host_config, image_config={},
                          rootfs="/nonexistent", hostname="h", etc_files={},
                          container_id="f" * 64)
    except SampanError:  # InvalidParameter (400) for everything a client can get wrong
        return
    json.dumps(spec)  # it is written out as config.json
    for m in spec["mounts"]:
        assert m["destination"].startswith("/") and ".." not in m["destination"].split("/")
