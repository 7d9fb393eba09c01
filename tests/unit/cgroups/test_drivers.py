"""Each option lands in the right cgroupfs file, on a v1 layout and on a v2 layout."""

from __future__ import annotations

import os

import pytest

from sampan.cgroups import detect, fs
from sampan.cgroups import resources as r
from sampan.cgroups.v1 import V1Driver
from sampan.cgroups.v2 import V2Driver, blkio_to_io_weight, shares_to_weight
from sampan.errors import InvalidParameter

MB = 1 << 20
OCI = {"memory": {"limit": 64 * MB, "swap": 128 * MB, "reservation": 32 * MB, "swappiness": 10,
                  "disableOOMKiller": True},
       "cpu": {"shares": 512, "period": 100000, "quota": 50000, "cpus": "0", "mems": "0"},
       "pids": {"limit": 20},
       "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}],
                   "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 7}]}}
G = "/sampan/abc"


def test_detect(fake_v1, fake_v2) -> None:
    assert isinstance(detect(str(fake_v1.root)), V1Driver)
    assert isinstance(detect(str(fake_v2.root)), V2Driver)


def test_detect_hybrid_without_v1_controllers(tmp_path) -> None:
    from .conftest import FakeV2
    FakeV2(tmp_path / "root" / "unified")
    d = detect(str(tmp_path / "root"))
    assert isinstance(d, V2Driver) and d.root.endswith("unified")


def test_v1_features_and_host(fake_v1) -> None:
    d = V1Driver(str(fake_v1.root))
    assert "unified" not in d.dirs and set(d.dirs) >= {"memory", "cpu", "pids", "cpuset"}
    h = d.host_info()
    assert h.cpus == frozenset({0, 1, 2, 3}) and h.cpus_text == "0-3"
    assert h.has("SwapLimit") and h.has("OomKillDisable") and h.has("Devices")
    assert not h.has("KernelMemory")


def test_v1_create_writes_every_file(fake_v1) -> None:
    fake_v1.populate(G)
    d = V1Driver(str(fake_v1.root))
    d.create(G, OCI, [{"allow": False, "access": "rwm"},
                      {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
    rd = fake_v1.read
    assert rd("memory", G, "memory.limit_in_bytes") == str(64 * MB)
    assert rd("memory", G, "memory.memsw.limit_in_bytes") == str(128 * MB)
    assert rd("memory", G, "memory.soft_limit_in_bytes") == str(32 * MB)
    assert rd("memory", G, "memory.swappiness") == "10"
    assert rd("memory", G, "memory.oom_control") == "1"
    assert rd("cpu", G, "cpu.shares") == "512"
    assert rd("cpu", G, "cpu.cfs_period_us") == "100000"
    assert rd("cpu", G, "cpu.cfs_quota_us") == "50000"
    assert rd("cpuset", G, "cpuset.cpus") == "0"
    assert rd("pids", G, "pids.max") == "20"
    assert rd("blkio", G, "blkio.weight") == "300"
    assert rd("blkio", G, "blkio.throttle.read_bps_device") == "8:0 1024"
    assert rd("blkio", G, "blkio.throttle.write_iops_device") == "8:0 7"
    assert rd("devices", G, "devices.deny") == "a *:* rwm"
    assert rd("devices", G, "devices.allow") == "c 1:3 rwm"
    joins = d.join_dirs(G)
    assert all(p.endswith(G) for p in joins) and len(joins) == len(set(joins)) == 8


def test_v1_unlimited_values(fake_v1) -> None:
    fake_v1.populate(G)
    d = V1Driver(str(fake_v1.root))
    d.update(G, r.to_oci({}))
    assert fake_v1.read("pids", G, "pids.max") == "max"
    assert fake_v1.read("cpu", G, "cpu.cfs_quota_us") == "-1"


def test_v1_cpuset_of_a_new_group_is_copied_from_its_parent(fake_v1) -> None:
    fake_v1.populate(G)  # the kernel leaves a new cpuset's cpus and mems empty
    V1Driver(str(fake_v1.root)).create(G, {"pids": {"limit": 5}})
    assert (fake_v1.root / "cpuset" / "sampan" / "cpuset.cpus").read_text() == "0-3"
    assert (fake_v1.root / "cpuset" / "sampan" / "abc" / "cpuset.cpus").read_text() == "0-3"
    assert (fake_v1.root / "cpuset" / "sampan" / "abc" / "cpuset.mems").read_text() == "0"


def test_v1_stats(fake_v1) -> None:
    fake_v1.populate(G)
    rd = fake_v1.root
    (rd / "cpuacct" / "sampan" / "abc" / "cpuacct.usage").write_text("5000\n")
    (rd / "cpuacct" / "sampan" / "abc" / "cpuacct.usage_percpu").write_text("3000 2000 \n")
    (rd / "memory" / "sampan" / "abc" / "memory.usage_in_bytes").write_text("4096\n")
    (rd / "memory" / "sampan" / "abc" / "memory.stat").write_text("total_inactive_file 1024\ncache 7\n")
    (rd / "memory" / "sampan" / "abc" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (rd / "pids" / "sampan" / "abc" / "pids.current").write_text("3\n")
    (rd / "pids" / "sampan" / "abc" / "pids.max").write_text("max\n")
    (rd / "blkio" / "sampan" / "abc" / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 100\n8:0 Write 200\n8:0 Total 300\nTotal 300\n")
    (rd / "cpu" / "sampan" / "abc" / "cpu.stat").write_text("nr_periods 4\nnr_throttled 2\nthrottled_time 99\n")
    s = V1Driver(str(rd)).stats(G)
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 5000
    assert s["cpu_stats"]["cpu_usage"]["percpu_usage"] == [3000, 2000]
    assert s["cpu_stats"]["throttling_data"] == {"periods": 4, "throttled_periods": 2, "throttled_time": 99}
    assert s["memory_stats"]["usage"] == 4096 and s["memory_stats"]["stats"]["total_inactive_file"] == 1024
    assert s["pids_stats"] == {"current": 3}
    assert s["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 100},
        {"major": 8, "minor": 0, "op": "Write", "value": 200},
        {"major": 8, "minor": 0, "op": "Total", "value": 300}]


def test_v1_oom_kills(fake_v1) -> None:
    fake_v1.populate(G)
    (fake_v1.root / "memory" / "sampan" / "abc" / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert V1Driver(str(fake_v1.root)).oom_kills(G) == 2


def test_v2_create_maps_options(fake_v2) -> None:
    fake_v2.populate(G)
    d = V2Driver(str(fake_v2.root))
    d.create(G, OCI)
    rd = fake_v2.read
    assert rd(G, "memory.max") == str(64 * MB)
    assert rd(G, "memory.swap.max") == str(64 * MB)  # Docker's swap total minus memory
    assert rd(G, "memory.low") == str(32 * MB)
    assert rd(G, "cpu.weight") == str(shares_to_weight(512)) == "20"
    assert rd(G, "cpu.max") == "50000 100000"
    assert rd(G, "cpuset.cpus") == "0"
    assert rd(G, "pids.max") == "20"
    assert rd(G, "io.weight") == f"default {blkio_to_io_weight(300)}"
    assert rd(G, "io.max") == "8:0 wiops=7"  # the fake keeps the last write
    # the parent delegated the controllers to its children
    assert (fake_v2.root / "sampan" / "cgroup.subtree_control").read_text().startswith("+")
    assert d.join_dirs(G) == [str(fake_v2.root) + G]


def test_v2_swap_and_cpu_edge_cases(fake_v2) -> None:
    fake_v2.populate(G)
    d = V2Driver(str(fake_v2.root))
    d.update(G, {"memory": {"limit": 64 * MB, "swap": -1}, "cpu": {"quota": -1}, "pids": {"limit": 0}})
    assert fake_v2.read(G, "memory.swap.max") == "max"
    assert fake_v2.read(G, "cpu.max") == "max 100000"
    assert fake_v2.read(G, "pids.max") == "max"
    d.update(G, {"memory": {"limit": 64 * MB, "swap": 64 * MB}})
    assert fake_v2.read(G, "memory.swap.max") == "0"


def test_v2_weight_maps() -> None:
    assert shares_to_weight(2) == 1 and shares_to_weight(262144) == 10000
    assert shares_to_weight(1024) == 39
    assert blkio_to_io_weight(10) == 1 and blkio_to_io_weight(1000) == 10000


def test_v2_stats_and_oom(fake_v2) -> None:
    fake_v2.populate(G)
    g = fake_v2.root / "sampan" / "abc"
    (g / "cpu.stat").write_text("usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_periods 1\nnr_throttled 1\nthrottled_usec 3\n")
    (g / "memory.current").write_text("8192\n")
    (g / "memory.max").write_text("max\n")
    (g / "memory.stat").write_text("anon 4096\ninactive_file 100\n")
    (g / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n")
    (g / "pids.current").write_text("2\n")
    (g / "pids.max").write_text("10\n")
    (g / "io.stat").write_text("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
    d = V2Driver(str(fake_v2.root))
    s = d.stats(G)
    assert s["cpu_stats"]["cpu_usage"] == {"total_usage": 7000, "usage_in_kernelmode": 2000, "usage_in_usermode": 5000}
    assert s["memory_stats"] == {"usage": 8192, "stats": {"anon": 4096, "inactive_file": 100}, "limit": -1}
    assert s["pids_stats"] == {"current": 2, "limit": 10}
    assert s["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 10}, {"major": 8, "minor": 0, "op": "write", "value": 20}]
    assert d.oom_kills(G) == 1


def test_v2_missing_controllers(tmp_path) -> None:
    from .conftest import FakeV2
    h = V2Driver(str(FakeV2(tmp_path / "x", controllers="hugetlb").root)).host_info()
    assert not h.has("MemoryLimit") and not h.has("PidsLimit") and not h.has("CPUCfs")


@pytest.mark.parametrize("bad", ["../../etc", "/sampan/../..", "", "/", "a/cgroup.procs", "a\nb"])
def test_hostile_group_paths(fake_v1, bad) -> None:
    d = V1Driver(str(fake_v1.root))
    with pytest.raises(InvalidParameter):
        d.create(bad, {})
    assert sorted(os.listdir(fake_v1.root / "memory")) == sorted(
        ["cgroup.procs"] + __import__("tests.unit.cgroups.conftest", fromlist=["V1_FILES"]).V1_FILES["memory"])


def test_remove_missing_is_quiet(tmp_path) -> None:
    fs.remove(str(tmp_path / "nope"))
