"""cgroup v1: one hierarchy per controller (or co-mounted group, `cpu,cpuacct`), as on the
hybrid hosts here. A container's group is the same relative path in every hierarchy.
"""

from __future__ import annotations

import os
from typing import Any

from . import fs
from .resources import FEATURES, HostInfo, parse_list

# The hierarchies a container's processes join. freezer too, so a later `pause` finds them.
_JOIN = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "hugetlb",
         "net_cls", "net_prio", "perf_event", "rdma", "misc")
_OPS = ("Read", "Write", "Sync", "Async", "Discard", "Total")


class V1Driver:
    version = "1"
    name = "cgroupfs"

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = root
        self.dirs: dict[str, str] = {}   # controller -> its hierarchy's root directory
        try:
            entries = sorted(os.listdir(root))
        except OSError:
            entries = []
        for entry in entries:
            path = os.path.join(root, entry)
            names = entry.split(",")
            if not os.path.isdir(path) or not any(n in fs.KNOWN_V1 for n in names):
                continue
            if not os.path.exists(os.path.join(path, "cgroup.procs")):
                continue
            real = os.path.realpath(path)
            for n in names:
                if n in fs.KNOWN_V1:
                    self.dirs.setdefault(n, real)

    # -- what the host can do ----------------------------------------------------------------
    def _has(self, ctrl: str, name: str | None = None) -> bool:
        d = self.dirs.get(ctrl)
        return d is not None and (name is None or os.path.exists(os.path.join(d, name)))

    def host_info(self) -> HostInfo:
        h = self._has
        feats = {
            "MemoryLimit": h("memory"), "SwapLimit": h("memory", "memory.memsw.limit_in_bytes"),
            "MemoryReservation": h("memory", "memory.soft_limit_in_bytes"),
            "MemorySwappiness": h("memory", "memory.swappiness"),
            "OomKillDisable": h("memory", "memory.oom_control"),
            # kmem limits do nothing since Linux 5.4 and cannot be written on 6.x: never offered.
            "KernelMemory": False,
            "PidsLimit": h("pids"), "CPUShares": h("cpu", "cpu.shares"),
            "CPUCfs": h("cpu", "cpu.cfs_quota_us"), "CPURealtime": h("cpu", "cpu.rt_runtime_us"),
            "Cpuset": h("cpuset"),
            "BlkioWeight": h("blkio", "blkio.weight") or h("blkio", "blkio.bfq.weight"),
            "BlkioWeightDevice": h("blkio", "blkio.weight_device") or h("blkio", "blkio.bfq.weight_device"),
            "BlkioReadBpsDevice": h("blkio", "blkio.throttle.read_bps_device"),
            "BlkioWriteBpsDevice": h("blkio", "blkio.throttle.write_bps_device"),
            "BlkioReadIOpsDevice": h("blkio", "blkio.throttle.read_iops_device"),
            "BlkioWriteIOpsDevice": h("blkio", "blkio.throttle.write_iops_device"),
            "Devices": h("devices"),
        }
        assert set(feats) == set(FEATURES)
        cpus = mems = ""
        if "cpuset" in self.dirs:
            cpus = fs.read(os.path.join(self.dirs["cpuset"], "cpuset.effective_cpus")).strip() \
                or fs.read(os.path.join(self.dirs["cpuset"], "cpuset.cpus")).strip()
            mems = fs.read(os.path.join(self.dirs["cpuset"], "cpuset.effective_mems")).strip() \
                or fs.read(os.path.join(self.dirs["cpuset"], "cpuset.mems")).strip()
        return _host_info(feats, cpus, mems)

    # -- groups --------------------------------------------------------------------------------
    def paths(self, group: str) -> dict[str, str]:
        group = fs.clean_group(group)
        return {c: d + group for c, d in self.dirs.items()}

    def join_dirs(self, group: str) -> list[str]:
        """The directories whose cgroup.procs a process writes to enter the group."""
        p = self.paths(group)
        return sorted({p[c] for c in _JOIN if c in p})

    def exists(self, group: str) -> bool:
        p = self.paths(group)
        return any(os.path.isdir(d) for d in p.values())

    def pids(self, group: str) -> list[int]:
        p = self.paths(group)
        for c in ("pids", "memory", "cpu", "devices"):
            if c in p:
                return fs.procs(p[c])
        return []

    def create(self, group: str, resources: dict[str, Any], devices: list[dict] | None = None) -> None:
        group = fs.clean_group(group)
        for ctrl, root in sorted(set((c, d) for c, d in self.dirs.items() if c in _JOIN),
                                 key=lambda x: x[1]):
            fs.mkdirs(root, group)
            if ctrl == "cpuset":
                # A new cpuset is empty and takes no tasks until it has CPUs and memory nodes:
                # every level below the root gets its parent's.
                d = root
                for part in group.strip("/").split("/"):
                    parent, d = d, os.path.join(d, part)
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        if not fs.read(os.path.join(d, f)).strip():
                            fs.write(os.path.join(d, f), fs.read(os.path.join(parent, f)).strip() or "0")
        if devices is not None and "devices" in self.dirs:
            self._devices(self.dirs["devices"] + group, devices)
        self.update(group, resources)

    def update(self, group: str, resources: dict[str, Any]) -> None:
        p = self.paths(group)
        mem = resources.get("memory") or {}
        if mem and "memory" in p:
            self._memory(p["memory"], mem)
        cpu = resources.get("cpu") or {}
        if "cpu" in p:
            d = p["cpu"]
            if cpu.get("shares"):
                fs.write(f"{d}/cpu.shares", cpu["shares"])
            if cpu.get("period"):
                fs.write(f"{d}/cpu.cfs_period_us", cpu["period"])
            if "quota" in cpu and os.path.exists(f"{d}/cpu.cfs_quota_us"):
                fs.write(f"{d}/cpu.cfs_quota_us", cpu["quota"] if cpu["quota"] > 0 else -1)
            if cpu.get("realtimePeriod"):
                fs.write(f"{d}/cpu.rt_period_us", cpu["realtimePeriod"])
            if cpu.get("realtimeRuntime"):
                self._rt_runtime(d, int(cpu["realtimeRuntime"]))
        if "cpuset" in p:
            if cpu.get("cpus"):
                fs.write(f"{p['cpuset']}/cpuset.cpus", cpu["cpus"])
            if cpu.get("mems"):
                fs.write(f"{p['cpuset']}/cpuset.mems", cpu["mems"])
        pids = resources.get("pids")
        if pids is not None and "pids" in p:
            limit = int(pids.get("limit") or 0)
            fs.write(f"{p['pids']}/pids.max", limit if limit > 0 else "max")
        bio = resources.get("blockIO") or {}
        if bio and "blkio" in p:
            self._blkio(p["blkio"], bio)

    def _memory(self, d: str, mem: dict[str, Any]) -> None:
        limit, swap = mem.get("limit"), mem.get("swap")
        writes = []
        if limit:
            writes.append(("memory.limit_in_bytes", limit))
        if swap and os.path.exists(f"{d}/memory.memsw.limit_in_bytes"):
            writes.append(("memory.memsw.limit_in_bytes", swap))
        # memsw must never fall below the memory limit: raising both means swap first,
        # lowering both means memory first. Try one order, fall back to the other.
        try:
            for name, v in writes:
                fs.write(f"{d}/{name}", v)
        except fs.CgroupError:
            for name, v in reversed(writes):
                fs.write(f"{d}/{name}", v)
        if mem.get("reservation"):
            fs.write(f"{d}/memory.soft_limit_in_bytes", mem["reservation"])
        if mem.get("swappiness") is not None:
            fs.write(f"{d}/memory.swappiness", mem["swappiness"])
        if mem.get("disableOOMKiller"):
            fs.write(f"{d}/memory.oom_control", 1)

    def _rt_runtime(self, d: str, runtime: int) -> None:
        # A child's real-time budget comes out of its parent's, which starts at 0 below the
        # root: give every level between the root and the group at least this much.
        chain = []
        cur = d
        while os.path.realpath(cur) != os.path.realpath(self.dirs["cpu"]):
            chain.append(cur)
            cur = os.path.dirname(cur)
        for level in reversed(chain[1:]):
            if fs.read_int(f"{level}/cpu.rt_runtime_us") < runtime:
                fs.write(f"{level}/cpu.rt_runtime_us", runtime)
        fs.write(f"{d}/cpu.rt_runtime_us", runtime)

    def _blkio(self, d: str, bio: dict[str, Any]) -> None:
        bfq = not os.path.exists(f"{d}/blkio.weight")
        if bio.get("weight"):
            fs.write(f"{d}/blkio.bfq.weight" if bfq else f"{d}/blkio.weight", bio["weight"])
        for w in bio.get("weightDevice") or []:
            fs.write(f"{d}/blkio.bfq.weight_device" if bfq else f"{d}/blkio.weight_device",
                     f"{w['major']}:{w['minor']} {w['weight']}")
        for key, name in (("throttleReadBpsDevice", "read_bps_device"),
                          ("throttleWriteBpsDevice", "write_bps_device"),
                          ("throttleReadIOPSDevice", "read_iops_device"),
                          ("throttleWriteIOPSDevice", "write_iops_device")):
            for t in bio.get(key) or []:
                fs.write(f"{d}/blkio.throttle.{name}", f"{t['major']}:{t['minor']} {t['rate']}")

    @staticmethod
    def _devices(d: str, rules: list[dict]) -> None:
        for r in rules:
            kind = r.get("type") or "a"
            major = "*" if r.get("major") in (None, -1) else r["major"]
            minor = "*" if r.get("minor") in (None, -1) else r["minor"]
            line = f"{kind} {major}:{minor} {r.get('access') or 'rwm'}"
            fs.write(f"{d}/devices.allow" if r.get("allow") else f"{d}/devices.deny", line)

    def destroy(self, group: str) -> None:
        for d in self.join_dirs(group):
            fs.remove(d)

    def oom_kills(self, group: str) -> int:
        p = self.paths(group)
        return fs.oom_kills([p["memory"]]) if "memory" in p else 0

    # -- stats -----------------------------------------------------------------------------------
    def stats(self, group: str) -> dict[str, Any]:
        """Docker's stats fields that come from the cgroup (v1 shapes: percpu_usage, failcnt,
        max_usage, capitalised blkio ops)."""
        p = self.paths(group)
        out: dict[str, Any] = {}
        cpu: dict[str, Any] = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                              "usage_in_usermode": 0},
                               "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
        if "cpuacct" in p:
            d = p["cpuacct"]
            u = cpu["cpu_usage"]
            u["total_usage"] = fs.read_int(f"{d}/cpuacct.usage")
            percpu = [int(x) for x in fs.read(f"{d}/cpuacct.usage_percpu").split() if x.isdigit()]
            if percpu:
                u["percpu_usage"] = percpu
            ticks = fs.read_kv(f"{d}/cpuacct.stat")
            hz = os.sysconf("SC_CLK_TCK")
            u["usage_in_usermode"] = ticks.get("user", 0) * 10**9 // hz
            u["usage_in_kernelmode"] = ticks.get("system", 0) * 10**9 // hz
        if "cpu" in p:
            t = fs.read_kv(f"{p['cpu']}/cpu.stat")
            cpu["throttling_data"] = {"periods": t.get("nr_periods", 0),
                                      "throttled_periods": t.get("nr_throttled", 0),
                                      "throttled_time": t.get("throttled_time", 0)}
        out["cpu_stats"] = cpu
        mem: dict[str, Any] = {}
        if "memory" in p:
            d = p["memory"]
            mem = {"usage": fs.read_int(f"{d}/memory.usage_in_bytes"),
                   "max_usage": fs.read_int(f"{d}/memory.max_usage_in_bytes"),
                   "stats": fs.read_kv(f"{d}/memory.stat"),
                   "failcnt": fs.read_int(f"{d}/memory.failcnt"),
                   "limit": fs.read_int(f"{d}/memory.limit_in_bytes")}
        out["memory_stats"] = mem
        pids: dict[str, Any] = {}
        if "pids" in p:
            pids["current"] = fs.read_int(f"{p['pids']}/pids.current")
            limit = fs.read_int(f"{p['pids']}/pids.max", -1)
            if limit > 0:
                pids["limit"] = limit
        out["pids_stats"] = pids
        blk: dict[str, Any] = {k: None for k in (
            "io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
            "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
            "io_time_recursive", "sectors_recursive")}
        if "blkio" in p:
            d = p["blkio"]
            for key, names in (("io_service_bytes_recursive", ("blkio.io_service_bytes_recursive",
                                                               "blkio.throttle.io_service_bytes_recursive",
                                                               "blkio.bfq.io_service_bytes_recursive")),
                               ("io_serviced_recursive", ("blkio.io_serviced_recursive",
                                                          "blkio.throttle.io_serviced_recursive",
                                                          "blkio.bfq.io_serviced_recursive"))):
                for n in names:
                    if os.path.exists(f"{d}/{n}"):
                        blk[key] = _blkio_rows(fs.read(f"{d}/{n}"))
                        break
        out["blkio_stats"] = blk
        return out


def _blkio_rows(text: str) -> list[dict[str, Any]] | None:
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0] or parts[1] not in _OPS:
            continue
        major, _, minor = parts[0].partition(":")
        try:
            rows.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
        except ValueError:
            continue
    return rows or None


def _host_info(feats: dict[str, bool], cpus: str, mems: str) -> HostInfo:
    try:
        ncpu = len(os.sched_getaffinity(0))
    except OSError:
        ncpu = os.cpu_count() or 1
    if not cpus:
        cpus = fs.read("/sys/devices/system/cpu/online").strip() or f"0-{ncpu - 1}"
    if not mems:
        mems = "0"
    try:
        cpu_set, mem_set = parse_list(cpus, "cpus"), parse_list(mems, "mems")
    except Exception:  # noqa: BLE001 - a host file we cannot parse: trust the count
        cpu_set, mem_set = frozenset(range(ncpu)), frozenset({0})
    return HostInfo(ncpu=ncpu, cpus=cpu_set, mems=mem_set, cpus_text=cpus, mems_text=mems,
                    features=feats)
