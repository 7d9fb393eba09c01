"""cgroup v2: the unified hierarchy. Options map to v2 files the way runc maps them
(cpu.weight from shares, memory.swap.max = swap total - memory, io.max, io.weight).
"""

from __future__ import annotations

import os
from typing import Any

from . import devbpf, fs
from .resources import FEATURES, HostInfo
from .v1 import _host_info

_WANTED = ("cpuset", "cpu", "io", "memory", "pids", "hugetlb", "misc")


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144, default 1024) -> cpu.weight (1..10000), runc's linear map."""
    if shares <= 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) -> io.weight (1..10000), runc's map."""
    if weight <= 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


class V2Driver:
    version = "2"
    name = "cgroupfs"

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = root
        self.controllers = frozenset(fs.read(os.path.join(root, "cgroup.controllers")).split())

    def host_info(self) -> HostInfo:
        c = self.controllers
        io = "io" in c
        feats = {
            "MemoryLimit": "memory" in c, "SwapLimit": "memory" in c,
            "MemoryReservation": "memory" in c,
            # No v2 equivalents: Docker warns and drops these on v2 too.
            "MemorySwappiness": False, "OomKillDisable": False, "KernelMemory": False,
            "PidsLimit": "pids" in c, "CPUShares": "cpu" in c, "CPUCfs": "cpu" in c,
            "CPURealtime": False, "Cpuset": "cpuset" in c,
            "BlkioWeight": io, "BlkioWeightDevice": io, "BlkioReadBpsDevice": io,
            "BlkioWriteBpsDevice": io, "BlkioReadIOpsDevice": io, "BlkioWriteIOpsDevice": io,
            # v2 has no devices files: access control is an eBPF program (devbpf.py).
            "Devices": devbpf.supported(),
        }
        assert set(feats) == set(FEATURES)
        cpus = fs.read(os.path.join(self.root, "cpuset.cpus.effective")).strip()
        mems = fs.read(os.path.join(self.root, "cpuset.mems.effective")).strip()
        return _host_info(feats, cpus, mems)

    def path(self, group: str) -> str:
        return self.root + fs.clean_group(group)

    def join_dirs(self, group: str) -> list[str]:
        return [self.path(group)]

    def exists(self, group: str) -> bool:
        return os.path.isdir(self.path(group))

    def pids(self, group: str) -> list[int]:
        return fs.procs(self.path(group))

    def create(self, group: str, resources: dict[str, Any], devices: list[dict] | None = None) -> None:
        group = fs.clean_group(group)
        want = [c for c in _WANTED if c in self.controllers]
        cur = self.root
        for part in group.strip("/").split("/"):
            # Controllers reach a child only when every ancestor delegates them.
            for c in want:
                try:
                    fs.write(os.path.join(cur, "cgroup.subtree_control"), f"+{c}")
                except fs.CgroupError:
                    pass  # e.g. cpuset busy, or a threaded subtree: the limit will be missing
            cur = os.path.join(cur, part)
            try:
                os.mkdir(cur, 0o755)
            except FileExistsError:
                pass
        self.update(group, resources)
        if devices:
            # before any process joins: the init's first open already goes through it.
            # (No rules at all means no restriction, as on v1.)
            devbpf.attach(cur, devices)

    def update(self, group: str, resources: dict[str, Any]) -> None:
        d = self.path(group)
        mem = resources.get("memory") or {}
        limit, swap = int(mem.get("limit") or 0), int(mem.get("swap") or 0)
        if limit:
            fs.write(f"{d}/memory.max", limit)
        if swap and os.path.exists(f"{d}/memory.swap.max"):
            # Docker's MemorySwap is memory + swap; v2 limits swap alone.
            if swap == -1:
                fs.write(f"{d}/memory.swap.max", "max")
            elif limit:
                fs.write(f"{d}/memory.swap.max", max(swap - limit, 0))
        if mem.get("reservation"):
            fs.write(f"{d}/memory.low", mem["reservation"])
        cpu = resources.get("cpu") or {}
        if cpu.get("shares"):
            fs.write(f"{d}/cpu.weight", shares_to_weight(int(cpu["shares"])))
        if "quota" in cpu or cpu.get("period"):
            quota = int(cpu.get("quota") or -1)
            period = int(cpu.get("period") or 0) or _period(d)
            if os.path.exists(f"{d}/cpu.max"):
                fs.write(f"{d}/cpu.max", f"{quota if quota > 0 else 'max'} {period}")
        if cpu.get("cpus"):
            fs.write(f"{d}/cpuset.cpus", cpu["cpus"])
        if cpu.get("mems"):
            fs.write(f"{d}/cpuset.mems", cpu["mems"])
        pids = resources.get("pids")
        if pids is not None and os.path.exists(f"{d}/pids.max"):
            lim = int(pids.get("limit") or 0)
            fs.write(f"{d}/pids.max", lim if lim > 0 else "max")
        bio = resources.get("blockIO") or {}
        if bio:
            self._io(d, bio)

    @staticmethod
    def _io(d: str, bio: dict[str, Any]) -> None:
        bfq = os.path.exists(f"{d}/io.bfq.weight")
        if bio.get("weight"):
            if bfq:
                fs.write(f"{d}/io.bfq.weight", bio["weight"])  # bfq takes 1..1000 as blkio did
            else:
                fs.write(f"{d}/io.weight", f"default {blkio_to_io_weight(int(bio['weight']))}")
        for w in bio.get("weightDevice") or []:
            v = w["weight"] if bfq else blkio_to_io_weight(int(w["weight"]))
            fs.write(f"{d}/io.bfq.weight" if bfq else f"{d}/io.weight", f"{w['major']}:{w['minor']} {v}")
        for key, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                          ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
            for t in bio.get(key) or []:
                fs.write(f"{d}/io.max", f"{t['major']}:{t['minor']} {name}={t['rate'] or 'max'}")

    def destroy(self, group: str) -> None:
        fs.remove(self.path(group))

    def oom_kills(self, group: str) -> int:
        return fs.oom_kills([self.path(group)])

    # -- stats -----------------------------------------------------------------------------------
    def stats(self, group: str) -> dict[str, Any]:
        """Docker's v2 stats shapes: no percpu_usage, max_usage or failcnt; lower-case ops."""
        d = self.path(group)
        t = fs.read_kv(f"{d}/cpu.stat")
        cpu = {"cpu_usage": {"total_usage": t.get("usage_usec", 0) * 1000,
                             "usage_in_kernelmode": t.get("system_usec", 0) * 1000,
                             "usage_in_usermode": t.get("user_usec", 0) * 1000},
               "throttling_data": {"periods": t.get("nr_periods", 0),
                                   "throttled_periods": t.get("nr_throttled", 0),
                                   "throttled_time": t.get("throttled_usec", 0) * 1000}}
        mem: dict[str, Any] = {}
        if os.path.exists(f"{d}/memory.current"):
            mem = {"usage": fs.read_int(f"{d}/memory.current"), "stats": fs.read_kv(f"{d}/memory.stat"),
                   "limit": fs.read_int(f"{d}/memory.max", -1)}
        pids: dict[str, Any] = {}
        if os.path.exists(f"{d}/pids.current"):
            pids["current"] = fs.read_int(f"{d}/pids.current")
            lim = fs.read_int(f"{d}/pids.max", -1)
            if lim > 0:
                pids["limit"] = lim
        blk: dict[str, Any] = {k: None for k in (
            "io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
            "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
            "io_time_recursive", "sectors_recursive")}
        by, ios = [], []
        for line in fs.read(f"{d}/io.stat").splitlines():
            dev, *fields = line.split()
            major, _, minor = dev.partition(":")
            if not (major.isdigit() and minor.isdigit()):
                continue
            kv = dict(f.split("=", 1) for f in fields if "=" in f)
            for key, rows, op in (("rbytes", by, "read"), ("wbytes", by, "write"),
                                  ("rios", ios, "read"), ("wios", ios, "write")):
                if kv.get(key, "").isdigit():
                    rows.append({"major": int(major), "minor": int(minor), "op": op, "value": int(kv[key])})
        blk["io_service_bytes_recursive"] = by or None
        blk["io_serviced_recursive"] = ios or None
        return {"cpu_stats": cpu, "memory_stats": mem, "pids_stats": pids, "blkio_stats": blk}


def _period(d: str) -> int:
    parts = fs.read(f"{d}/cpu.max").split()
    return int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else 100000
