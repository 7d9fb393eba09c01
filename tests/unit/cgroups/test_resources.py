"""Docker's validation of resource options and their mapping to OCI linux.resources."""

from __future__ import annotations

import pytest

from sampan.cgroups import resources as r
from sampan.errors import Conflict, InvalidParameter

ALL = {f: True for f in r.FEATURES}
HOST = r.HostInfo(ncpu=2, cpus=frozenset({0, 1}), mems=frozenset({0}), cpus_text="0-1",
                  mems_text="0", features=dict(ALL, KernelMemory=False))
MB = 1 << 20


def check(hc: dict, update: bool = False, host: r.HostInfo = HOST) -> list[str]:
    return r.validate(hc, host, update=update)


@pytest.mark.parametrize("hc, msg", [
    ({"Memory": 4 * MB}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 * MB, "MemorySwap": 32 * MB}, "Minimum memoryswap limit should be larger than memory limit"),
    ({"MemorySwap": 64 * MB}, "You should always set the Memory limit when using Memoryswap limit"),
    ({"MemorySwappiness": 101}, "valid memory swappiness range is 0-100"),
    ({"MemoryReservation": 1 * MB}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 64 * MB, "MemoryReservation": 128 * MB}, "Minimum memory limit can not be less than memory reservation"),
    ({"NanoCpus": 3 * 10**9}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"NanoCpus": -1}, "Range of CPUs"),
    ({"NanoCpus": 10**9, "CpuQuota": 50000}, "Conflicting options: Nano CPUs and CPU Quota"),
    ({"NanoCpus": 10**9, "CpuPeriod": 50000}, "Conflicting options: Nano CPUs and CPU Period"),
    ({"CpuPeriod": 500}, "CPU cfs period can not be less than 1ms"),
    ({"CpuQuota": 999}, "CPU cfs quota can not be less than 1ms"),
    ({"CpusetCpus": "0-3"}, "Requested CPUs are not available - requested 0-3, available: 0-1"),
    ({"CpusetCpus": "0-"}, "Invalid value 0- for cpuset cpus"),
    ({"CpusetCpus": "a"}, "Invalid value a for cpuset cpus"),
    ({"CpusetMems": "1"}, "Requested memory nodes are not available"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"OomScoreAdj": 1001}, "range for oom score adj is [-1000, 1000]"),
    ({"DeviceCgroupRules": ["x 1:2 rwm"]}, "invalid device cgroup rule format"),
    ({"DeviceCgroupRules": ["c 1:2 rwmx"]}, "invalid device cgroup rule format"),
    ({"Memory": "64m"}, "expected an integer"),
    ({"Memory": True}, "expected an integer"),
    ({"Memory": 1 << 70}, "out of range"),
    ({"IOMaximumBandwidth": 10}, "Invalid QoS settings"),
    ({"BlkioWeightDevice": [{"Path": "/dev/x"}]}, "expected objects with Path and Weight"),
])
def test_refusals(hc: dict, msg: str) -> None:
    with pytest.raises(InvalidParameter, match=msg.replace("[", r"\[").replace("]", r"\]")):
        check(hc)


def test_defaults_and_adjustments() -> None:
    hc = {"Memory": 64 * MB, "CpuShares": 1, "PidsLimit": -1, "MemorySwappiness": -1}
    assert check(hc) == []
    assert hc["MemorySwap"] == 128 * MB       # Docker: swap as big as memory by default
    assert hc["CpuShares"] == 2               # clamped to the kernel's minimum
    assert hc["PidsLimit"] is None            # -1 and 0 mean unlimited
    assert hc["MemorySwappiness"] is None     # -1 means unset
    hc = {"Memory": 64 * MB, "MemorySwap": -1}
    check(hc)
    assert hc["MemorySwap"] == -1


def test_missing_controllers_warn_and_discard() -> None:
    host = r.HostInfo(ncpu=2, cpus=frozenset({0, 1}), features={f: False for f in r.FEATURES})
    hc = {"Memory": 64 * MB, "PidsLimit": 10, "CpuShares": 512, "CpusetCpus": "0",
          "BlkioWeight": 100, "KernelMemory": 64 * MB, "OomKillDisable": True,
          "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1}]}
    w = check(hc, host=host)
    text = "\n".join(w)
    for what in ("memory limit", "PIDs limit", "CPU shares", "cpuset", "Block I/O weight",
                 "kernel memory", "OomKillDisable", "BPS Block I/O read limit"):
        assert what in text
    assert hc["Memory"] == 0 and hc["PidsLimit"] is None and hc["CpuShares"] == 0
    assert hc["CpusetCpus"] == "" and hc["BlkioDeviceReadBps"] == []


def test_kernel_memory_accepted_with_warning() -> None:
    hc = {"KernelMemory": 64 * MB}
    w = check(hc)
    assert any("kernel memory" in x for x in w) and hc["KernelMemory"] == 0


def test_oom_kill_disable_without_memory_warns() -> None:
    assert any("OOM killer is disabled" in x for x in check({"OomKillDisable": True}))


def test_to_oci() -> None:
    hc = {"Memory": 64 * MB, "MemorySwap": 128 * MB, "MemoryReservation": 32 * MB,
          "MemorySwappiness": 10, "OomKillDisable": True, "NanoCpus": 500_000_000,
          "CpuShares": 512, "CpusetCpus": "0", "CpusetMems": "0", "PidsLimit": 20,
          "BlkioWeight": 300, "BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 200}],
          "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1048576}]}
    oci = r.to_oci(hc, devnum=lambda p: (8, 0))
    assert oci["memory"] == {"limit": 64 * MB, "swap": 128 * MB, "reservation": 32 * MB,
                             "swappiness": 10, "disableOOMKiller": True}
    assert oci["cpu"] == {"shares": 512, "period": 100000, "quota": 50000, "cpus": "0", "mems": "0"}
    assert oci["pids"] == {"limit": 20}
    assert oci["blockIO"] == {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                              "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]}
    # nothing set: unlimited pids and quota are explicit, so an update can lift them
    assert r.to_oci({}) == {"cpu": {"quota": -1}, "pids": {"limit": 0}}
    assert r.to_oci({"CpuPeriod": 50000, "CpuQuota": 25000})["cpu"] == {"period": 50000, "quota": 25000}


def test_block_device_refuses_non_devices(tmp_path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(InvalidParameter, match="not a block device"):
        r.block_device(str(f))
    with pytest.raises(InvalidParameter, match="no such device"):
        r.block_device(str(tmp_path / "missing"))


def test_parse_device_rule() -> None:
    assert r.parse_device_rule("c 1:3 mr") == {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "mr"}
    assert r.parse_device_rule("a *:* rwm") == {"allow": True, "type": "a", "access": "rwm"}


def test_parse_list() -> None:
    assert r.parse_list("0-2,5", "cpus") == frozenset({0, 1, 2, 5})
    for bad in ("-1", "1-0", "x", "1,,2", "0-99999999"):
        with pytest.raises(InvalidParameter):
            r.parse_list(bad, "cpus")


class TestMergeUpdate:
    cur = {"Memory": 64 * MB, "MemorySwap": 128 * MB, "NanoCpus": 500_000_000, "PidsLimit": 20,
           "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}}

    def test_changes_only_given_fields(self) -> None:
        hc, w = r.merge_update(self.cur, {"NanoCpus": 1_500_000_000, "Memory": 0}, HOST, True)
        assert hc["NanoCpus"] == 1_500_000_000 and hc["Memory"] == 64 * MB and w == []
        assert self.cur["NanoCpus"] == 500_000_000  # the original is untouched

    def test_memory_and_swap(self) -> None:
        hc, _ = r.merge_update(self.cur, {"Memory": 256 * MB, "MemorySwap": 512 * MB}, HOST, True)
        assert (hc["Memory"], hc["MemorySwap"]) == (256 * MB, 512 * MB)
        with pytest.raises(Conflict, match="Memory limit should be smaller than already set memoryswap"):
            r.merge_update(self.cur, {"Memory": 256 * MB}, HOST, True)
        with pytest.raises(InvalidParameter, match="Minimum memoryswap"):
            r.merge_update(self.cur, {"Memory": 256 * MB, "MemorySwap": 200 * MB}, HOST, True)

    def test_pids_unlimited(self) -> None:
        hc, _ = r.merge_update(self.cur, {"PidsLimit": -1}, HOST, True)
        assert hc["PidsLimit"] is None and r.to_oci(hc)["pids"] == {"limit": 0}

    def test_restart_policy(self) -> None:
        hc, _ = r.merge_update(self.cur, {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}, HOST, True)
        assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        with pytest.raises(InvalidParameter, match="invalid restart policy"):
            r.merge_update(self.cur, {"RestartPolicy": {"Name": "sometimes"}}, HOST, True)

    def test_bad_bodies(self) -> None:
        with pytest.raises(InvalidParameter):
            r.merge_update(self.cur, [], HOST, True)
        # what update cannot change (the docker CLI sends all of Resources) is ignored
        hc, _ = r.merge_update(self.cur, {"Ulimits": None, "Devices": [], "Memory": 0}, HOST, True)
        assert hc == self.cur
        with pytest.raises(InvalidParameter, match="expected an integer"):
            r.merge_update(self.cur, {"Memory": "1g"}, HOST, True)
        with pytest.raises(Conflict, match="CPU Quota cannot be updated"):
            r.merge_update({"CpuQuota": 50000}, {"NanoCpus": 10**9}, HOST, True)
        with pytest.raises(Conflict, match="kernel memory"):
            r.merge_update(self.cur, {"KernelMemory": 64 * MB}, HOST, True)
