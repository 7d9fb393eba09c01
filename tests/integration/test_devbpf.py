"""The cgroup v2 device filter (sampan/cgroups/devbpf.py) on the real kernel: a program
compiled from OCI device rules, attached to a fresh v2 cgroup, decides which devices a
process in that cgroup may open or create."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from sampan.cgroups import devbpf
from sampan.cgroups.fs import CgroupError


def _v2_root() -> str | None:
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return fields[1]
    return None


@pytest.fixture
def group():
    root = _v2_root()
    if os.geteuid() != 0 or root is None:
        pytest.skip("needs root and a cgroup v2 mount")
    if not devbpf.supported():
        pytest.skip("this kernel does not load cgroup device programs")
    d = os.path.join(root, f"sampan-devbpf-{secrets.token_hex(3)}")
    os.mkdir(d)
    yield d
    os.rmdir(d)  # the process has exited; the attached program goes with the group


def _run_in(group: str, script: str, tmp) -> str:
    def join() -> None:
        with open(os.path.join(group, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    r = subprocess.run(["sh", "-c", script], preexec_fn=join, capture_output=True, text=True,
                       cwd=tmp, timeout=30)
    return r.stdout


DOCKERISH = [
    {"allow": False, "access": "rwm"},                                          # deny all
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},     # /dev/null
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"},       # /dev/zero, read
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},              # any pty
]


def test_rules_decide_open_and_mknod(group, tmp_path):
    devbpf.attach(group, DOCKERISH)
    out = _run_in(group, """
        echo x > /dev/null && echo null-write
        head -c1 /dev/zero > /dev/null && echo zero-read
        echo x > /dev/zero 2>/dev/null || echo zero-write-denied
        head -c1 /dev/urandom > /dev/null 2>&1 || echo urandom-denied
        mknod n1 c 1 3 && echo mknod-null
        mknod n2 c 1 5 2>/dev/null || echo mknod-zero-denied
        mknod n3 b 7 0 2>/dev/null || echo mknod-block-denied
    """, tmp_path).split()
    assert out == ["null-write", "zero-read", "zero-write-denied", "urandom-denied",
                   "mknod-null", "mknod-zero-denied", "mknod-block-denied"]


def test_the_last_matching_rule_wins(group, tmp_path):
    # allow every char device, then take /dev/urandom (1:9) back
    devbpf.attach(group, [{"allow": False, "access": "rwm"},
                          {"allow": True, "type": "c", "access": "rwm"},
                          {"allow": False, "type": "c", "major": 1, "minor": 9, "access": "rwm"}])
    out = _run_in(group, """
        head -c1 /dev/zero > /dev/null && echo zero
        head -c1 /dev/urandom > /dev/null 2>&1 || echo urandom-denied
    """, tmp_path).split()
    assert out == ["zero", "urandom-denied"]


def test_bad_rules_are_refused_before_loading():
    with pytest.raises(CgroupError):
        devbpf.compile_rules([{"allow": True, "type": "x", "access": "r"}])
    with pytest.raises(CgroupError):
        devbpf.compile_rules([{"allow": True, "type": "c", "access": "q"}])
    with pytest.raises(CgroupError):
        devbpf.compile_rules([{"allow": True, "type": "c", "major": -5, "access": "r"}])


def test_the_v2_driver_attaches_the_containers_rules_at_create(tmp_path):
    from sampan.cgroups.v2 import V2Driver
    from sampan.runtime import spec as rspec

    root = _v2_root()
    if os.geteuid() != 0 or root is None or not devbpf.supported():
        pytest.skip("needs root, a cgroup v2 mount and cgroup device programs")
    drv = V2Driver(root)
    group = f"/sampan-devbpf-{secrets.token_hex(3)}"
    drv.create(group, {}, list(rspec._DEVICE_RULES))
    try:
        out = _run_in(drv.path(group), """
            echo x > /dev/null && echo null
            head -c1 /dev/urandom > /dev/null && echo urandom
            mknod disk b 8 0 && echo mknod-allowed
            head -c1 disk > /dev/null 2>&1 || echo raw-read-denied
        """, tmp_path).split()
        # Docker's defaults: the standard char devices work; mknod is allowed (the "m"
        # rules) but the node cannot be opened: no raw reads of the host's disk.
        assert out == ["null", "urandom", "mknod-allowed", "raw-read-denied"]
    finally:
        drv.destroy(group)
