"""Docker's stats JSON (`GET /containers/{id}/stats`) from a cgroup reading.

The shape is what the docker CLI computes its table from: CPU % is
(cpu_stats.cpu_usage.total_usage delta / system_cpu_usage delta) * online_cpus * 100, memory is
memory_stats.usage minus the inactive file cache, over memory_stats.limit (the host's memory
when the container has no limit, as moby caps it).
"""

from __future__ import annotations

import os
import time
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"
_NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", None, None, None, None,
               "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def rfc3339_now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def system_cpu_usage(path: str = "/proc/stat") -> int:
    """Host CPU time in ns, as moby's getSystemCPUUsage: the first seven `cpu` fields."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("cpu "):
                    ticks = sum(int(x) for x in line.split()[1:8])
                    return ticks * 10**9 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return 0


def online_cpus() -> int:
    try:
        return int(os.sysconf("SC_NPROCESSORS_ONLN"))
    except (ValueError, OSError):
        return os.cpu_count() or 1


def host_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def networks(pid: int) -> dict[str, dict[str, int]] | None:
    """Per-interface counters of the network namespace `pid` lives in (lo left out, as
    Docker reports only the container's endpoints)."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return None
    out: dict[str, dict[str, int]] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        name = name.strip()
        if not name or name == "lo":
            continue
        vals = rest.split()
        try:
            out[name] = {k: int(vals[i]) for i, k in enumerate(_NET_FIELDS) if k and i < len(vals)}
        except ValueError:
            continue
    return out or None


def _empty_cpu() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def empty(name: str, cid: str) -> dict[str, Any]:
    """What Docker sends for a container that is not running."""
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {},
            "blkio_stats": {k: None for k in ("io_service_bytes_recursive", "io_serviced_recursive",
                                              "io_queue_recursive", "io_service_time_recursive",
                                              "io_wait_time_recursive", "io_merged_recursive",
                                              "io_time_recursive", "sectors_recursive")},
            "num_procs": 0, "storage_stats": {}, "cpu_stats": _empty_cpu(),
            "precpu_stats": _empty_cpu(), "memory_stats": {}, "name": name, "id": cid}


def sample(raw: dict[str, Any], *, name: str, cid: str, pid: int, mem_total: int) -> dict[str, Any]:
    """One reading: the driver's cgroup figures plus host CPU time, CPUs, networks."""
    cpu = raw.get("cpu_stats") or _empty_cpu()
    cpu["system_cpu_usage"] = system_cpu_usage()
    cpu["online_cpus"] = online_cpus()
    mem = raw.get("memory_stats") or {}
    if mem:
        limit = int(mem.get("limit") or -1)
        if mem_total and (limit < 0 or limit > mem_total):
            mem["limit"] = mem_total
    out = {"read": rfc3339_now(), "preread": ZERO_TIME,
           "pids_stats": raw.get("pids_stats") or {}, "blkio_stats": raw.get("blkio_stats") or {},
           "num_procs": 0, "storage_stats": {}, "cpu_stats": cpu, "precpu_stats": _empty_cpu(),
           "memory_stats": mem, "name": name, "id": cid}
    nets = networks(pid)
    if nets:
        out["networks"] = nets
    return out


def with_previous(cur: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    if prev is not None:
        cur["precpu_stats"] = prev["cpu_stats"]
        cur["preread"] = prev["read"]
    return cur
