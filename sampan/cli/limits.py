"""The `run`/`create` resource flags that runopts does not declare itself, and the HostConfig
fields they make (docker CLI's names, units and syntax). Kept apart so runopts gains one
list and one call, and importing it costs nothing beyond `args`."""

from __future__ import annotations

from .args import INT, LIST, STR, Opt, UsageError

LIMIT_OPTS = [
    Opt("--memory-swappiness", INT, "Tune container memory swappiness (0 to 100)", default=-1),
    Opt("--kernel-memory", STR, "Kernel memory limit", metavar="bytes"),
    Opt("--cpu-period", INT, "Limit CPU CFS (Completely Fair Scheduler) period"),
    Opt("--cpu-quota", INT, "Limit CPU CFS (Completely Fair Scheduler) quota"),
    Opt("--cpu-rt-period", INT, "Limit CPU real-time period in microseconds"),
    Opt("--cpu-rt-runtime", INT, "Limit CPU real-time runtime in microseconds"),
    Opt("--cpuset-mems", STR, "MEMs in which to allow execution (0-3, 0,1)"),
    Opt("--oom-score-adj", INT, "Tune host's OOM preferences (-1000 to 1000)"),
    Opt("--blkio-weight", INT, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)", metavar="uint16"),
    Opt("--blkio-weight-device", LIST, "Block IO weight (relative device weight)"),
    Opt("--device-read-bps", LIST, "Limit read rate (bytes per second) from a device"),
    Opt("--device-write-bps", LIST, "Limit write rate (bytes per second) to a device"),
    Opt("--device-read-iops", LIST, "Limit read rate (IO per second) from a device"),
    Opt("--device-write-iops", LIST, "Limit write rate (IO per second) to a device"),
    Opt("--device-cgroup-rule", LIST, "Add a rule to the cgroup allowed devices list"),
    Opt("--cgroup-parent", STR, "Optional parent cgroup for the container"),
]


def _device_value(spec: str, flag: str, kind: str) -> dict:
    path, sep, value = spec.rpartition(":")
    if not sep or not path.startswith("/dev/"):
        raise UsageError(f'invalid argument "{spec}" for "{flag}" flag: bad format for path: {spec}')
    if kind == "bytes":
        from .runopts import parse_bytes
        n = parse_bytes(value, flag)
        return {"Path": path, "Rate": n}
    if not value.isdigit():
        raise UsageError(f'invalid argument "{spec}" for "{flag}" flag: invalid {kind} {value}')
    key = "Weight" if kind == "weight" else "Rate"
    n = int(value)
    if kind == "weight" and not (n == 0 or 10 <= n <= 1000):
        raise UsageError(f'invalid argument "{spec}" for "{flag}" flag: invalid weight for device: {value}')
    return {"Path": path, key: n}


def limit_fields(ns) -> dict:
    """HostConfig fields from the flags in LIMIT_OPTS (only those given)."""
    host: dict = {}
    if ns.memory_swappiness is not None and ns.memory_swappiness != -1:
        host["MemorySwappiness"] = ns.memory_swappiness
    if ns.kernel_memory:
        from .runopts import parse_bytes
        host["KernelMemory"] = parse_bytes(ns.kernel_memory, "--kernel-memory")
    for dest, key in (("cpu_period", "CpuPeriod"), ("cpu_quota", "CpuQuota"),
                      ("cpu_rt_period", "CpuRealtimePeriod"), ("cpu_rt_runtime", "CpuRealtimeRuntime"),
                      ("oom_score_adj", "OomScoreAdj"), ("blkio_weight", "BlkioWeight")):
        if ns.get(dest) is not None:
            host[key] = ns[dest]
    if ns.cpuset_mems:
        host["CpusetMems"] = ns.cpuset_mems
    if ns.cgroup_parent:
        host["CgroupParent"] = ns.cgroup_parent
    for dest, key, kind in (("blkio_weight_device", "BlkioWeightDevice", "weight"),
                            ("device_read_bps", "BlkioDeviceReadBps", "bytes"),
                            ("device_write_bps", "BlkioDeviceWriteBps", "bytes"),
                            ("device_read_iops", "BlkioDeviceReadIOps", "iops"),
                            ("device_write_iops", "BlkioDeviceWriteIOps", "iops")):
        if ns.get(dest):
            host[key] = [_device_value(v, "--" + dest.replace("_", "-"), kind) for v in ns[dest]]
    if ns.device_cgroup_rule:
        host["DeviceCgroupRules"] = list(ns.device_cgroup_rule)
    return host
