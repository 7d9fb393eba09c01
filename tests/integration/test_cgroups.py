"""The drivers against the real kernel: limits measured on real processes, not files read back.

Processes enter the group the way a container's init does (writing to cgroup.procs right
after fork), then do real work: allocate past the memory limit, spin on a CPU, fork past the
pids limit. The v2 driver's kernel tests run only where the unified hierarchy has controllers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from sampan.cgroups import detect, fs
from sampan.cgroups import resources as r
from sampan.cgroups.manager import CgroupManager
from sampan.cgroups.v2 import V2Driver

MB = 1 << 20
DRIVER = detect()
HOST = DRIVER.host_info()


def _need(*features: str) -> None:
    missing = [f for f in features if not HOST.has(f)]
    if missing:
        pytest.skip(f"host cgroups lack {', '.join(missing)}")


@pytest.fixture
def group():
    parent = f"/sampan-it-{uuid.uuid4().hex[:8]}"
    g = f"{parent}/c1"
    yield g
    if DRIVER.exists(g):
        DRIVER.destroy(g)
    for d in DRIVER.join_dirs(parent):
        try:
            os.rmdir(d)
        except OSError:
            pass


def _spawn(group: str, argv: list[str], **kw) -> subprocess.Popen:
    dirs = DRIVER.join_dirs(group)

    def enter() -> None:
        fs.enter(dirs)  # what the container's init and exec'd processes do
    return subprocess.Popen(argv, preexec_fn=enter, **kw)


def _make(group: str, hc: dict) -> None:
    r.validate(hc, HOST)
    DRIVER.create(group, r.to_oci(hc))


def _cpu_ns(group: str) -> int:
    return DRIVER.stats(group)["cpu_stats"]["cpu_usage"]["total_usage"]


def _cpu_share(group: str, seconds: float) -> float:
    t0, c0 = time.monotonic(), _cpu_ns(group)
    time.sleep(seconds)
    return (_cpu_ns(group) - c0) / 1e9 / (time.monotonic() - t0)


SPIN = [sys.executable, "-c", "while True: pass"]


def test_memory_hog_is_oom_killed_at_the_limit(group) -> None:
    _need("MemoryLimit", "SwapLimit")
    _make(group, {"Memory": 32 * MB, "MemorySwap": 32 * MB})
    p = _spawn(group, [sys.executable, "-c", "b = bytearray(256 << 20); b[::4096] = b'x' * len(b[::4096])"],
               stderr=subprocess.DEVNULL)
    assert p.wait(timeout=30) == -9
    assert DRIVER.oom_kills(group) >= 1
    assert fs.oom_kills(DRIVER.join_dirs(group)) >= 1  # what the monitor reads at exit


def test_process_under_the_limit_survives(group) -> None:
    _need("MemoryLimit")
    _make(group, {"Memory": 64 * MB})
    p = _spawn(group, [sys.executable, "-c", "b = bytearray(8 << 20)"])
    assert p.wait(timeout=30) == 0 and DRIVER.oom_kills(group) == 0


def _throttled(group: str) -> int:
    return DRIVER.stats(group)["cpu_stats"]["throttling_data"]["throttled_periods"]


def test_cpus_half_and_live_update(group) -> None:
    _need("CPUCfs")
    _make(group, {"NanoCpus": 500_000_000})
    p = _spawn(group, SPIN)
    try:
        time.sleep(0.3)
        # Other work on a small shared host can starve the spinner below its cap for a while;
        # the cap itself never lets it past 0.6. Best of three windows.
        share = max(_cpu_share(group, 1.5) for _ in range(3))
        assert 0.4 <= share <= 0.6, share
        t0 = _throttled(group)
        time.sleep(0.5)
        assert _throttled(group) > t0  # the quota is what holds it back
        # `update --cpus 1.5` on the running spinner: one thread can never reach 1.5 CPUs, so
        # the kernel stops throttling it, however busy the host is.
        DRIVER.update(group, r.to_oci({"NanoCpus": 1_500_000_000}))
        time.sleep(0.3)
        t1 = _throttled(group)
        time.sleep(1.0)
        assert _throttled(group) == t1
    finally:
        p.kill()
        p.wait()


def test_cpuset_keeps_the_process_on_cpu0(group) -> None:
    _need("Cpuset")
    _make(group, {"CpusetCpus": "0"})
    p = _spawn(group, SPIN)
    try:
        time.sleep(0.3)
        with open(f"/proc/{p.pid}/status") as f:
            allowed = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("Cpus_allowed_list")]
        assert allowed == ["0"]
        for _ in range(5):
            with open(f"/proc/{p.pid}/stat") as f:
                stat = f.read()
            assert stat[stat.rindex(")") + 2:].split()[36] == "0"  # field 39: last CPU it ran on
            time.sleep(0.05)
    finally:
        p.kill()
        p.wait()


def test_pids_limit_stops_forks(group) -> None:
    _need("PidsLimit")
    _make(group, {"PidsLimit": 20})
    p = _spawn(group, ["/bin/busybox", "sh", "-c", "for i in $(seq 50); do sleep 3 & done; "
                       "cat /proc/self/cgroup >/dev/null; wait"],
               stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    assert 0 < DRIVER.stats(group)["pids_stats"]["current"] <= 20
    assert DRIVER.stats(group)["pids_stats"]["limit"] == 20
    _, errs = p.communicate(timeout=30)
    assert "fork" in errs.lower() or "resource temporarily unavailable" in errs.lower(), errs


def test_enter_through_tasks_moves_the_whole_single_threaded_process(group) -> None:
    _make(group, {})
    p = _spawn(group, ["/bin/busybox", "sleep", "30"])
    try:
        time.sleep(0.1)
        with open(f"/proc/{p.pid}/cgroup") as f:
            lines = [ln for ln in f.read().splitlines() if not ln.startswith("0::") and "name=" not in ln]
        assert lines and all(ln.endswith(group) for ln in lines), lines
    finally:
        p.kill()
        p.wait()


def test_destroy_kills_leftovers_and_removes_every_hierarchy(group) -> None:
    _make(group, {})
    p = _spawn(group, ["/bin/busybox", "sleep", "30"])
    time.sleep(0.1)
    assert DRIVER.pids(group) == [p.pid]
    DRIVER.destroy(group)
    assert p.wait(timeout=5) == -9
    assert not DRIVER.exists(group) and not any(os.path.isdir(d) for d in DRIVER.join_dirs(group))


def test_manager_hostile_cgroup_parent_changes_nothing() -> None:
    from sampan.errors import InvalidParameter
    m = CgroupManager()
    before = sorted(os.listdir(DRIVER.join_dirs("/x")[0].rsplit("/", 1)[0]))
    for bad in ("../../../tmp", "/a/../../b"):
        with pytest.raises(InvalidParameter):
            m.validate({"CgroupParent": bad})
    assert sorted(os.listdir(DRIVER.join_dirs("/x")[0].rsplit("/", 1)[0])) == before


def test_v2_kernel_limits(tmp_path) -> None:
    root = "/sys/fs/cgroup" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "/sys/fs/cgroup/unified"
    d = V2Driver(root)
    if not {"memory", "pids", "cpu"} <= d.controllers:
        pytest.skip(f"cgroup v2 at {root} has no memory/pids/cpu controllers here "
                    f"(they are bound to v1); controllers: {sorted(d.controllers) or 'none'}")
    g = f"/sampan-it-{uuid.uuid4().hex[:8]}/c1"
    d.create(g, r.to_oci({"Memory": 32 * MB, "MemorySwap": 32 * MB, "PidsLimit": 10}))
    try:
        with open(d.path(g) + "/memory.max") as f:
            assert f.read().strip() == str(32 * MB)
        p = subprocess.Popen([sys.executable, "-c", "b = bytearray(256 << 20); b[::4096] = b'x' * len(b[::4096])"],
                             preexec_fn=lambda: open(d.path(g) + "/cgroup.procs", "w").write("0"))
        assert p.wait(timeout=30) == -9 and d.oom_kills(g) >= 1
    finally:
        d.destroy(g)
        os.rmdir(os.path.dirname(d.path(g)))
