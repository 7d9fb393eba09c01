"""What --userns-remap does to an OCI spec and which create requests it refuses."""

from __future__ import annotations

import pytest

from sampan.errors import InvalidParameter
from sampan.runtime.spec import build_spec
from sampan.userns import spec as uspec
from sampan.userns.idmap import IdMap, IdRange

MAP = IdMap((IdRange(0, 100000, 65536),), (IdRange(0, 100000, 65536),))


def _spec(hc=None, ns_paths=None):
    return build_spec(config={"Image": "x", "Cmd": ["true"]}, host_config=hc or {},
                      image_config={}, rootfs="/r", hostname="h", etc_files={},
                      container_id="c" * 64, ns_paths=ns_paths)


def test_validate():
    uspec.validate({}, None)
    uspec.validate({"Privileged": True}, None)
    uspec.validate({"Privileged": True, "UsernsMode": "host"}, MAP)
    uspec.validate({"PidMode": "host", "UsernsMode": "host"}, MAP)
    uspec.validate({"NetworkMode": "host"}, MAP)
    with pytest.raises(InvalidParameter, match="privileged mode is incompatible"):
        uspec.validate({"Privileged": True}, MAP)
    with pytest.raises(InvalidParameter, match="host PID namespace"):
        uspec.validate({"PidMode": "host"}, MAP)
    uspec.validate({"Runtime": "runc", "UsernsMode": "host"}, MAP)
    uspec.validate({"Runtime": "sampan"}, MAP)
    with pytest.raises(InvalidParameter, match="runtime runc is not supported with --userns-remap"):
        uspec.validate({"Runtime": "runc"}, MAP)
    with pytest.raises(InvalidParameter, match="invalid USER mode: bogus"):
        uspec.validate({"UsernsMode": "bogus"}, None)


def test_apply_adds_user_namespace_and_maps():
    s = uspec.apply(_spec(ns_paths={"network": "/run/sampan/netns/x"}), {}, MAP)
    ns = s["linux"]["namespaces"]
    assert ns[0] == {"type": "user"}
    assert s["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert uspec.idmap_of_spec(s) == MAP
    assert uspec.user_ns_path(s) is None
    # idempotent
    assert [n["type"] for n in uspec.apply(s, {}, MAP)["linux"]["namespaces"]].count("user") == 1


def test_apply_noop_without_remap_or_with_userns_host():
    for hc, m in (({}, None), ({"UsernsMode": "host"}, MAP)):
        s = uspec.apply(_spec(hc), hc, m)
        assert all(n["type"] != "user" for n in s["linux"]["namespaces"])
        assert "uidMappings" not in s["linux"]
        assert uspec.idmap_of_spec(s) is None


def test_container_mode_joins_that_containers_user_namespace():
    hc = {"NetworkMode": "container:abc"}
    s = uspec.apply(_spec(hc, {"network": "/proc/4242/ns/net"}), hc, MAP)
    assert s["linux"]["namespaces"][0] == {"type": "user", "path": "/proc/4242/ns/user"}
    assert uspec.idmap_of_spec(s) is None and uspec.user_ns_path(s) == "/proc/4242/ns/user"


def test_ipc_host_binds_mqueue():
    hc = {"IpcMode": "host"}
    s = uspec.apply(_spec(hc), hc, MAP)
    mq = [m for m in s["mounts"] if m["destination"] == "/dev/mqueue"]
    assert mq and mq[0]["type"] == "bind" and mq[0]["source"] == "/dev/mqueue"
    s = uspec.apply(_spec(), {}, MAP)
    assert [m for m in s["mounts"] if m["destination"] == "/dev/mqueue"][0]["type"] == "mqueue"
