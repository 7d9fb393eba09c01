"""Stats JSON assembly, and the docker CLI's figures computed from it (sampan's `stats`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sampan.cgroups import stats as st
from sampan.cgroups.manager import CgroupManager
from sampan.cli import stats as cli
from sampan.cli.args import UsageError, parse
from sampan.cli.limits import LIMIT_OPTS, limit_fields


def test_system_cpu_usage(tmp_path) -> None:
    p = tmp_path / "stat"
    p.write_text("cpu  100 0 50 850 0 0 0 7 0 0\ncpu0 50 0 25 425 0 0 0 0 0 0\n")
    import os
    assert st.system_cpu_usage(str(p)) == 1000 * 10**9 // os.sysconf("SC_CLK_TCK")
    assert st.system_cpu_usage(str(tmp_path / "missing")) == 0


def test_networks_of_this_process() -> None:
    import os
    nets = st.networks(os.getpid())
    assert nets is None or all("rx_bytes" in v and "tx_bytes" in v for v in nets.values())
    assert "lo" not in (nets or {})
    assert st.networks(0) is None and st.networks(2**22 + 12345) is None


def test_sample_caps_unlimited_memory_at_host_memory() -> None:
    raw = {"memory_stats": {"usage": 10, "limit": 9223372036854771712}}
    s = st.sample(raw, name="/x", cid="abc", pid=0, mem_total=1 << 30)
    assert s["memory_stats"]["limit"] == 1 << 30
    assert s["cpu_stats"]["online_cpus"] >= 1 and s["cpu_stats"]["system_cpu_usage"] > 0
    assert s["name"] == "/x" and s["id"] == "abc" and "networks" not in s
    prev = {"cpu_stats": {"x": 1}, "read": "t0"}
    assert st.with_previous(s, prev)["precpu_stats"] == {"x": 1} and s["preread"] == "t0"


def _s(total, pre_total, system, pre_system, online=2, **extra):
    return {"cpu_stats": {"cpu_usage": {"total_usage": total}, "system_cpu_usage": system, "online_cpus": online},
            "precpu_stats": {"cpu_usage": {"total_usage": pre_total}, "system_cpu_usage": pre_system},
            **extra}


def test_cli_figures() -> None:
    # half a CPU of a 2-CPU host: 0.5 s of CPU over 2 s of host CPU time (1 s wall)
    assert cli.cpu_percent(_s(1.5e9, 1.0e9, 4e9, 2e9)) == pytest.approx(50.0)
    assert cli.cpu_percent(_s(1, 1, 2, 1)) == 0.0
    assert cli.mem_usage({"memory_stats": {"usage": 100, "stats": {"total_inactive_file": 30}}}) == 70
    assert cli.mem_usage({"memory_stats": {"usage": 100, "stats": {"inactive_file": 130}}}) == 100
    blk = {"blkio_stats": {"io_service_bytes_recursive": [
        {"op": "Read", "value": 5}, {"op": "write", "value": 7}, {"op": "Total", "value": 12}]}}
    assert cli.block_io(blk) == (5, 7)
    assert cli.net_io({"networks": {"eth0": {"rx_bytes": 1, "tx_bytes": 2}, "eth1": {"rx_bytes": 3, "tx_bytes": 4}}}) == (4, 6)


def test_cli_row_and_table() -> None:
    s = _s(1.5e9, 1.0e9, 4e9, 2e9, name="/hog", id="0123456789abcdef",
           memory_stats={"usage": 64 << 20, "limit": 256 << 20, "stats": {}},
           pids_stats={"current": 3}, networks={"eth0": {"rx_bytes": 1500, "tx_bytes": 0}})
    row = cli.StatsCtx("hog", s)
    assert (row.ID, row.Name, row.CPUPerc, row.MemUsage, row.MemPerc, row.NetIO, row.PIDs) == (
        "0123456789ab", "hog", "50.00%", "64MiB / 256MiB", "25.00%", "1.5kB / 0B", "3")
    text = cli.render_list(cli.DEFAULT_STATS, [row], cli.StatsCtx.HEADERS)
    head, line = text.splitlines()
    assert head.split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                            "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    assert line.split()[:3] == ["0123456789ab", "hog", "50.00%"]
    err = cli.StatsCtx("gone", None, error=True)
    assert (err.CPUPerc, err.MemUsage, err.Name) == ("--", "-- / --", "--")


def _ns(argv, opts):
    ns, args = parse(argv, opts, True, True)
    return ns, args


def test_update_flags() -> None:
    ns, args = _ns(["--cpus", "1.5", "-m", "256m", "--memory-swap", "512m", "--pids-limit", "-1",
                    "--restart", "on-failure:3", "hog"], cli.UPDATE_OPTS)
    assert args == ["hog"]
    assert cli.build_update(ns) == {"NanoCpus": 1_500_000_000, "Memory": 256 << 20,
                                    "MemorySwap": 512 << 20, "PidsLimit": -1,
                                    "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}
    ns, _ = _ns(["hog"], cli.UPDATE_OPTS)
    with pytest.raises(UsageError, match="one or more flags"):
        cli.build_update(ns)


def test_run_limit_flags() -> None:
    ns, _ = _ns(["--cpu-period", "50000", "--cpu-quota", "25000", "--cpuset-mems", "0",
                 "--memory-swappiness", "10", "--oom-score-adj", "-500", "--blkio-weight", "300",
                 "--device-read-bps", "/dev/sda:1mb", "--device-write-iops", "/dev/sda:100",
                 "--blkio-weight-device", "/dev/sda:200", "--device-cgroup-rule", "c 1:3 mr",
                 "--cgroup-parent", "/mine", "--kernel-memory", "64m"], LIMIT_OPTS)
    assert limit_fields(ns) == {
        "CpuPeriod": 50000, "CpuQuota": 25000, "CpusetMems": "0", "MemorySwappiness": 10,
        "OomScoreAdj": -500, "BlkioWeight": 300, "CgroupParent": "/mine", "KernelMemory": 64 << 20,
        "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1 << 20}],
        "BlkioDeviceWriteIOps": [{"Path": "/dev/sda", "Rate": 100}],
        "BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 200}],
        "DeviceCgroupRules": ["c 1:3 mr"]}
    for bad in (["--device-read-bps", "sda:1mb"], ["--device-read-iops", "/dev/sda:x"],
                ["--blkio-weight-device", "/dev/sda:5"]):
        ns, _ = _ns(bad, LIMIT_OPTS)
        with pytest.raises(UsageError):
            limit_fields(ns)


def test_manager_with_a_fake_driver(fake_v1) -> None:
    from sampan.cgroups.v1 import V1Driver
    drv = V1Driver(str(fake_v1.root))
    drv.destroy = lambda group: None  # the fake's files are plain files: rmdir would fail
    m = CgroupManager(parent="/p", driver=drv)
    c = SimpleNamespace(id="c1", name="n", host_config={"Memory": 64 << 20, "MemorySwap": 128 << 20,
                                                       "DeviceCgroupRules": ["c 4:5 r"]},
                        state=SimpleNamespace(Running=True, Pid=0))
    fake_v1.populate("/p/c1")
    spec = {"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]}}}
    dirs = m.prepare(c, spec, "sampan")
    assert spec["linux"]["cgroupsPath"] == "/p/c1"
    assert spec["linux"]["resources"]["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert spec["linux"]["resources"]["devices"][-1] == {"allow": True, "type": "c", "major": 4, "minor": 5, "access": "r"}
    assert all(d.endswith("/p/c1") for d in dirs)
    # runc/crun: the spec carries it all, sampan makes nothing
    spec2 = {"linux": {}}
    assert m.prepare(SimpleNamespace(id="c2", host_config={"CgroupParent": "/q"}), spec2, "runc") == []
    assert spec2["linux"]["cgroupsPath"] == "/q/c2"
    hc, w = m.update(c, {"Memory": 96 << 20})
    assert hc["Memory"] == 96 << 20 and fake_v1.read("memory", "/p/c1", "memory.limit_in_bytes") == str(96 << 20)
    info = m.info_fields()
    assert info["CgroupVersion"] == "1" and info["MemoryLimit"] is True and info["Warnings"] == []


def test_prewarm_targets_our_own_group(fake_v1, fake_v2) -> None:
    from sampan.cgroups.manager import _own_procs_file
    from sampan.cgroups.v1 import V1Driver
    from sampan.cgroups.v2 import V2Driver
    for drv in (V1Driver(str(fake_v1.root)), V2Driver(str(fake_v2.root))):
        p = _own_procs_file(drv)
        # our own group may be below the fake roots' (absent there): then nothing is written
        assert p is None or (p.startswith(str(drv.root)) and p.endswith("/cgroup.procs"))
    m = CgroupManager(driver=V1Driver(str(fake_v1.root)))
    m.prewarm()  # never raises, even where the file refuses the write
