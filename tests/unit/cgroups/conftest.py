"""Fake cgroup hierarchies in a temp dir, laid out as the kernel lays them out (files the
drivers read and write), so the drivers' mapping of options to files is checked without root."""

from __future__ import annotations

from pathlib import Path

import pytest

V1_FILES = {
    "memory": ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
               "memory.swappiness", "memory.oom_control", "memory.usage_in_bytes",
               "memory.max_usage_in_bytes", "memory.failcnt", "memory.stat"],
    "cpu": ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.rt_period_us",
            "cpu.rt_runtime_us", "cpu.stat"],
    "cpuacct": ["cpuacct.usage", "cpuacct.usage_percpu", "cpuacct.stat"],
    "cpuset": ["cpuset.cpus", "cpuset.mems", "cpuset.effective_cpus", "cpuset.effective_mems"],
    "pids": ["pids.max", "pids.current"],
    "blkio": ["blkio.weight", "blkio.weight_device", "blkio.throttle.read_bps_device",
              "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device",
              "blkio.throttle.write_iops_device", "blkio.throttle.io_service_bytes_recursive"],
    "devices": ["devices.allow", "devices.deny"],
    "freezer": [],
}
V2_FILES = ["cgroup.controllers", "cgroup.subtree_control", "cgroup.procs", "memory.max",
            "memory.swap.max", "memory.low", "memory.current", "memory.stat", "memory.events",
            "cpu.weight", "cpu.max", "cpu.stat", "cpuset.cpus", "cpuset.mems", "pids.max",
            "pids.current", "io.weight", "io.max", "io.stat"]


class FakeV1:
    """A v1 root whose hierarchies pre-create every file in any group `mkdir`ed below them:
    the drivers mkdir the group, so the fake fills it lazily via `populate`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for ctrl, files in V1_FILES.items():
            d = root / ctrl
            d.mkdir(parents=True)
            (d / "cgroup.procs").write_text("")
            for f in files:
                (d / f).write_text("")
        (root / "cpuset" / "cpuset.cpus").write_text("0-3\n")
        (root / "cpuset" / "cpuset.effective_cpus").write_text("0-3\n")
        (root / "cpuset" / "cpuset.mems").write_text("0\n")
        (root / "cpuset" / "cpuset.effective_mems").write_text("0\n")
        (root / "unified").mkdir()  # the hybrid layout's v2 mount: not a v1 hierarchy

    def populate(self, group: str) -> None:
        for ctrl, files in V1_FILES.items():
            d = self.root / ctrl
            for part in group.strip("/").split("/"):
                d = d / part
                d.mkdir(exist_ok=True)
                for f in files + ["cgroup.procs"]:
                    if not (d / f).exists():
                        (d / f).write_text("")

    def read(self, ctrl: str, group: str, name: str) -> str:
        return (self.root / ctrl / group.strip("/") / name).read_text()


class FakeV2:
    def __init__(self, root: Path, controllers: str = "cpuset cpu io memory pids") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for f in V2_FILES:
            (root / f).write_text("")
        (root / "cgroup.controllers").write_text(controllers + "\n")
        (root / "cpuset.cpus.effective").write_text("0-1\n")
        (root / "cpuset.mems.effective").write_text("0\n")

    def populate(self, group: str) -> None:
        d = self.root
        for part in group.strip("/").split("/"):
            d = d / part
            d.mkdir(exist_ok=True)
            for f in V2_FILES:
                if not (d / f).exists():
                    (d / f).write_text("")

    def read(self, group: str, name: str) -> str:
        return (self.root / group.strip("/") / name).read_text()


@pytest.fixture
def fake_v1(tmp_path: Path) -> FakeV1:
    return FakeV1(tmp_path / "cg")


@pytest.fixture
def fake_v2(tmp_path: Path) -> FakeV2:
    return FakeV2(tmp_path / "cg2")
