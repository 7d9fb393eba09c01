"""Rootless mode's pure parts: locations, the daemon's re-exec arguments, subordinate-id
arguments for newuidmap, and the no-cgroup manager's refusals."""

from __future__ import annotations

import pytest

from sampan.errors import InvalidParameter
from sampan.rootless import validate_create
from sampan.rootless.cgroups import NoCgroups
from sampan.rootless.paths import resolve
from sampan.rootless.reexec import child_argv


def test_paths_follow_xdg():
    p = resolve({"HOME": "/home/u", "XDG_RUNTIME_DIR": "/r"})
    assert str(p.data_root) == "/home/u/.local/share/sampan"
    assert str(p.run_dir) == "/r/sampan" and str(p.exec_root) == "/r/sampan"
    assert p.socket == "unix:///r/sampan/sampan.sock"
    assert str(p.config_file) == "/home/u/.config/sampan/daemon.json"
    p = resolve({"HOME": "/h", "XDG_RUNTIME_DIR": "/r", "XDG_DATA_HOME": "/d", "XDG_CONFIG_HOME": "/c"})
    assert str(p.data_root) == "/d/sampan" and str(p.config_file) == "/c/sampan/daemon.json"


def test_paths_errors():
    with pytest.raises(InvalidParameter, match="XDG_RUNTIME_DIR"):
        resolve({"HOME": "/h"})
    with pytest.raises(InvalidParameter, match="absolute"):
        resolve({"HOME": "/h", "XDG_RUNTIME_DIR": "rel"})
    with pytest.raises(InvalidParameter, match="HOME"):
        resolve({"XDG_RUNTIME_DIR": "/r"})


def test_child_argv_fills_only_what_is_missing():
    p = resolve({"HOME": "/h", "XDG_RUNTIME_DIR": "/r"})
    a = child_argv(["--debug"], p)
    assert a[:1] == ["--debug"]
    for flag in ("--data-root", "--exec-root", "-H", "--pidfile", "--config-file"):
        assert flag in a
    a = child_argv(["--data-root=/x", "-H", "unix:///s"], p)
    assert a.count("--data-root") == 0 and "-H" in a and a.count("-H") == 1


def test_no_cgroups_refuses_limits_only():
    cg = NoCgroups()
    assert cg.validate({"Memory": 0, "PidsLimit": -1, "MemorySwap": -1, "CpuShares": 0}) == []
    for hc in ({"Memory": 64 << 20}, {"NanoCpus": 1}, {"PidsLimit": 10}, {"CgroupParent": "x"}):
        with pytest.raises(InvalidParameter, match="no delegated cgroup"):
            cg.validate(hc)
    spec = {"linux": {"cgroupsPath": "/x", "resources": {"devices": [{"allow": False}]}}}
    assert cg.prepare(None, spec) == [] and "cgroupsPath" not in spec["linux"]
    assert cg.info_fields()["CgroupDriver"] == "none"


def test_ports_refused():
    validate_create({"PortBindings": {}})
    validate_create({"PortBindings": {"80/tcp": []}})
    with pytest.raises(InvalidParameter, match="published ports"):
        validate_create({"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}})
    with pytest.raises(InvalidParameter, match="published ports"):
        validate_create({"PublishAllPorts": True})
