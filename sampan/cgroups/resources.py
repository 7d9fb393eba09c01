"""Docker's resource options (HostConfig) -> validated values -> OCI `linux.resources`.

Pure logic: what the host supports comes in as a `HostInfo` (made by a driver from the real
cgroupfs, or by a test by hand), so every rule here is unit-testable without root.

Validation and messages follow moby's verifyPlatformContainerResources: an option the kernel
lacks is dropped with a warning (the create response's `Warnings`), an impossible value is an
InvalidParameter (400) raised before anything is created.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

from ..errors import Conflict, InvalidParameter

MIN_MEMORY = 6 * 1024 * 1024          # linuxMinMemory
MIN_SHARES, MAX_SHARES = 2, 262144    # linuxMinCPUShares / linuxMaxCPUShares
DEFAULT_CFS_PERIOD = 100000           # µs; what --cpus converts against

# Every HostConfig key that is a resource (Docker's container.Resources), with its JSON type.
RESOURCE_TYPES: dict[str, type | tuple[type, ...]] = {
    "CgroupParent": str, "BlkioWeight": int, "BlkioWeightDevice": list,
    "BlkioDeviceReadBps": list, "BlkioDeviceWriteBps": list, "BlkioDeviceReadIOps": list,
    "BlkioDeviceWriteIOps": list, "CpuShares": int, "CpuPeriod": int, "CpuQuota": int,
    "CpuRealtimePeriod": int, "CpuRealtimeRuntime": int, "CpusetCpus": str, "CpusetMems": str,
    "Devices": list, "DeviceCgroupRules": list, "DeviceRequests": list, "KernelMemory": int,
    "KernelMemoryTCP": int, "Memory": int, "MemoryReservation": int, "MemorySwap": int,
    "MemorySwappiness": int, "NanoCpus": int, "OomKillDisable": bool, "PidsLimit": int,
    "CpuCount": int, "CpuPercent": int, "IOMaximumIOps": int, "IOMaximumBandwidth": int,
    "OomScoreAdj": int,
}
# Keys `POST /containers/{id}/update` may change (Docker's UpdateConfig: Resources + RestartPolicy).
UPDATABLE = ("BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
             "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuShares", "CpuPeriod", "CpuQuota",
             "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems",
             "KernelMemory", "Memory", "MemoryReservation", "MemorySwap", "NanoCpus", "PidsLimit")

_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


@dataclass
class HostInfo:
    """What the host's cgroups can do (moby's sysinfo.SysInfo), as validation needs it."""
    ncpu: int = 1
    cpus: frozenset[int] = frozenset({0})      # CPUs a cpuset may name
    mems: frozenset[int] = frozenset({0})      # memory nodes
    cpus_text: str = "0"
    mems_text: str = "0"
    features: dict[str, bool] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return bool(self.features.get(name))


# Feature names (moby's SysInfo fields) every driver reports.
FEATURES = ("MemoryLimit", "SwapLimit", "MemoryReservation", "MemorySwappiness", "OomKillDisable",
            "KernelMemory", "PidsLimit", "CPUShares", "CPUCfs", "CPURealtime", "Cpuset",
            "BlkioWeight", "BlkioWeightDevice", "BlkioReadBpsDevice", "BlkioWriteBpsDevice",
            "BlkioReadIOpsDevice", "BlkioWriteIOpsDevice", "Devices")


def parse_list(text: str, what: str) -> frozenset[int]:
    """A cpuset list (`0-3,5`) -> the set of numbers; bad syntax -> InvalidParameter."""
    out: set[int] = set()
    if text.strip() == "":
        return frozenset()
    for part in text.strip().split(","):
        a, dash, b = part.partition("-")
        if not a.isdigit() or (dash and not b.isdigit()):
            raise InvalidParameter(f"Invalid value {text} for cpuset {what}: invalid format: {text}")
        lo, hi = int(a), int(b) if dash else int(a)
        if hi < lo or hi - lo > 65536:
            raise InvalidParameter(f"Invalid value {text} for cpuset {what}: invalid range format: {part}")
        out.update(range(lo, hi + 1))
    return frozenset(out)


def check_types(hc: dict[str, Any]) -> None:
    for key, want in RESOURCE_TYPES.items():
        v = hc.get(key)
        if v is None:
            continue
        if want is int and (isinstance(v, bool) or not isinstance(v, int)):
            raise InvalidParameter(f"invalid HostConfig.{key}: expected an integer")
        if not isinstance(v, want):
            raise InvalidParameter(f"invalid HostConfig.{key}: expected {getattr(want, '__name__', want)}")
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > (1 << 63) - 1:
            raise InvalidParameter(f"invalid HostConfig.{key}: out of range")


def _i(hc: dict, key: str) -> int:
    return int(hc.get(key) or 0)


def validate(hc: dict[str, Any], host: HostInfo, update: bool = False) -> list[str]:
    """Check (and adjust, in place) HostConfig's resources; returns Docker's warnings."""
    check_types(hc)
    w: list[str] = []
    # -- memory
    if hc.get("MemorySwappiness") == -1:
        hc["MemorySwappiness"] = None  # fixMemorySwappiness: -1 means "unset"
    mem = _i(hc, "Memory")
    if mem != 0 and mem < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if mem > 0 and not host.has("MemoryLimit"):
        w.append("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
        hc["Memory"], hc["MemorySwap"], mem = 0, -1, 0
    swap = _i(hc, "MemorySwap")
    if mem > 0 and swap != -1 and not host.has("SwapLimit"):
        w.append("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
        hc["MemorySwap"] = swap = -1
    if mem > 0 and swap > 0 and swap < mem:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if mem == 0 and swap > 0 and not update:
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, see usage")
    if hc.get("MemorySwappiness") is not None and not host.has("MemorySwappiness"):
        w.append("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.")
        hc["MemorySwappiness"] = None
    sw = hc.get("MemorySwappiness")
    if sw is not None and not 0 <= sw <= 100:
        raise InvalidParameter(f"Invalid value: {sw}, valid memory swappiness range is 0-100")
    res = _i(hc, "MemoryReservation")
    if res > 0 and not host.has("MemoryReservation"):
        w.append("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.")
        hc["MemoryReservation"] = res = 0
    if res > 0 and res < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if mem > 0 and res > 0 and mem < res:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation limit, see usage")
    if _i(hc, "KernelMemory") > 0:
        # kmem.limit_in_bytes is gone from cgroup v2 and inert since Linux 5.4 (moby drops it
        # the same way): accepted, warned, never written.
        if not host.has("KernelMemory"):
            w.append("Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
            hc["KernelMemory"] = 0
        elif _i(hc, "KernelMemory") < MIN_MEMORY:
            raise InvalidParameter("Minimum kernel memory limit allowed is 6MB")
    if hc.get("OomKillDisable") is not None and not host.has("OomKillDisable"):
        if hc["OomKillDisable"]:
            w.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        hc["OomKillDisable"] = None
    if hc.get("OomKillDisable") and mem == 0:
        w.append("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.")
    if hc.get("PidsLimit") is not None and not host.has("PidsLimit"):
        if hc["PidsLimit"] > 0:
            w.append("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.")
        hc["PidsLimit"] = None
    adj = hc.get("OomScoreAdj")
    if adj is not None and not -1000 <= adj <= 1000:
        raise InvalidParameter(f"Invalid value {adj}, range for oom score adj is [-1000, 1000]")

    # -- cpu
    nano, period, quota = _i(hc, "NanoCpus"), _i(hc, "CpuPeriod"), _i(hc, "CpuQuota")
    if nano > 0 and period > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano > 0 and not host.has("CPUCfs"):
        raise InvalidParameter("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted")
    if nano < 0 or nano > host.ncpu * 10**9:
        raise InvalidParameter(f"Range of CPUs is from 0.01 to {host.ncpu}.00, as there are only {host.ncpu} CPUs available")
    shares = _i(hc, "CpuShares")
    if shares < 0:
        raise InvalidParameter(f"invalid CPU shares {shares}: must be a positive integer")
    if shares > 0 and not host.has("CPUShares"):
        w.append("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.")
        hc["CpuShares"] = 0
    elif shares > 0:
        # adaptContainerSettings: clamp to what the kernel takes, as Docker does.
        hc["CpuShares"] = min(max(shares, MIN_SHARES), MAX_SHARES)
    if (period or quota) and not host.has("CPUCfs"):
        w.append("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.")
        hc["CpuPeriod"] = hc["CpuQuota"] = period = quota = 0
    if period != 0 and not 1000 <= period <= 1000000:
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if _i(hc, "CpuPercent") > 0:
        w.append("linux does not support CPU percent. Percent discarded.")
        hc["CpuPercent"] = 0
    if _i(hc, "CpuCount") > 0:
        w.append("linux does not support CPU count. Count discarded.")
        hc["CpuCount"] = 0
    rt_period, rt_runtime = _i(hc, "CpuRealtimePeriod"), _i(hc, "CpuRealtimeRuntime")
    if (rt_period or rt_runtime) and not host.has("CPURealtime"):
        raise InvalidParameter("Your kernel does not support CPU real-time scheduler")
    if rt_period and rt_runtime and rt_runtime > rt_period:
        raise InvalidParameter("cpu-rt-runtime cannot be higher than cpu-rt-period")

    # -- cpuset
    cpus, mems = hc.get("CpusetCpus") or "", hc.get("CpusetMems") or ""
    if (cpus or mems) and not host.has("Cpuset"):
        w.append("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.")
        hc["CpusetCpus"] = hc["CpusetMems"] = cpus = mems = ""
    if cpus and not parse_list(cpus, "cpus") <= host.cpus:
        raise InvalidParameter(f"Requested CPUs are not available - requested {cpus}, available: {host.cpus_text}")
    if mems and not parse_list(mems, "mems") <= host.mems:
        raise InvalidParameter(f"Requested memory nodes are not available - requested {mems}, available: {host.mems_text}")

    # -- blkio
    bw = _i(hc, "BlkioWeight")
    if bw > 0 and not host.has("BlkioWeight"):
        w.append("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
        hc["BlkioWeight"] = bw = 0
    if bw > 0 and not 10 <= bw <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    if _i(hc, "IOMaximumBandwidth") or _i(hc, "IOMaximumIOps"):
        raise InvalidParameter("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")
    for key, feat, msg in (
            ("BlkioWeightDevice", "BlkioWeightDevice", "Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."),
            ("BlkioDeviceReadBps", "BlkioReadBpsDevice", "BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."),
            ("BlkioDeviceWriteBps", "BlkioWriteBpsDevice", "BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded."),
            ("BlkioDeviceReadIOps", "BlkioReadIOpsDevice", "IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded."),
            ("BlkioDeviceWriteIOps", "BlkioWriteIOpsDevice", "IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.")):
        if hc.get(key) and not host.has(feat):
            w.append("Your kernel does not support " + msg)
            hc[key] = []
        for d in hc.get(key) or []:
            _check_device_entry(key, d)
    for rule in hc.get("DeviceCgroupRules") or []:
        parse_device_rule(rule)

    # -- pids, and Docker's create-time defaults
    if not update:
        if hc.get("PidsLimit") is not None and hc["PidsLimit"] <= 0:
            hc["PidsLimit"] = None  # 0 and -1 both mean unlimited
        if mem > 0 and _i(hc, "MemorySwap") == 0:
            hc["MemorySwap"] = mem * 2  # adaptContainerSettings: swap as big as memory
    return w


def _check_device_entry(key: str, d: Any) -> None:
    value_key = "Weight" if key == "BlkioWeightDevice" else "Rate"
    if not isinstance(d, dict) or not isinstance(d.get("Path"), str) or not isinstance(d.get(value_key), int):
        raise InvalidParameter(f"invalid {key}: expected objects with Path and {value_key}")
    if key == "BlkioWeightDevice" and d["Weight"] != 0 and not 10 <= d["Weight"] <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    if d[value_key] < 0:
        raise InvalidParameter(f"invalid {key} for {d['Path']}: negative value")


def parse_device_rule(rule: Any) -> dict[str, Any]:
    """`c 1:3 mr` -> an OCI device cgroup rule (allow)."""
    m = _RULE.match(rule) if isinstance(rule, str) else None
    if not m:
        raise InvalidParameter(f"invalid device cgroup rule format: '{rule}'")
    out: dict[str, Any] = {"allow": True, "type": m.group(1), "access": m.group(4)}
    if m.group(2) != "*":
        out["major"] = int(m.group(2))
    if m.group(3) != "*":
        out["minor"] = int(m.group(3))
    return out


def block_device(path: str) -> tuple[int, int]:
    """A block device's (major, minor), for the blkio options that name devices by path."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidParameter(f"no such device {path}: {e.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise InvalidParameter(f"{path} is not a block device")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def to_oci(hc: dict[str, Any], devnum=block_device) -> dict[str, Any]:
    """Validated HostConfig -> OCI `linux.resources` (without `devices`: the spec owns those).

    Always carries `pids.limit` and `cpu.quota` (0 / -1 = unlimited), so applying the result
    of an `update` also lifts a limit that was removed.
    """
    r: dict[str, Any] = {}
    mem: dict[str, Any] = {}
    if _i(hc, "Memory") > 0:
        mem["limit"] = _i(hc, "Memory")
    if _i(hc, "MemorySwap") != 0:
        mem["swap"] = _i(hc, "MemorySwap")
    if _i(hc, "MemoryReservation") > 0:
        mem["reservation"] = _i(hc, "MemoryReservation")
    if hc.get("MemorySwappiness") is not None and hc["MemorySwappiness"] >= 0:
        mem["swappiness"] = int(hc["MemorySwappiness"])
    if hc.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    if mem:
        r["memory"] = mem
    cpu: dict[str, Any] = {}
    if _i(hc, "CpuShares") > 0:
        cpu["shares"] = _i(hc, "CpuShares")
    if _i(hc, "NanoCpus") > 0:
        cpu["period"] = DEFAULT_CFS_PERIOD
        cpu["quota"] = _i(hc, "NanoCpus") * DEFAULT_CFS_PERIOD // 10**9
    else:
        if _i(hc, "CpuPeriod") > 0:
            cpu["period"] = _i(hc, "CpuPeriod")
        cpu["quota"] = _i(hc, "CpuQuota") if _i(hc, "CpuQuota") > 0 else -1
    if _i(hc, "CpuRealtimePeriod") > 0:
        cpu["realtimePeriod"] = _i(hc, "CpuRealtimePeriod")
    if _i(hc, "CpuRealtimeRuntime") != 0:
        cpu["realtimeRuntime"] = _i(hc, "CpuRealtimeRuntime")
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    r["cpu"] = cpu
    r["pids"] = {"limit": max(_i(hc, "PidsLimit"), 0)}
    bio: dict[str, Any] = {}
    if _i(hc, "BlkioWeight") > 0:
        bio["weight"] = _i(hc, "BlkioWeight")
    wd = []
    for d in hc.get("BlkioWeightDevice") or []:
        major, minor = devnum(d["Path"])
        wd.append({"major": major, "minor": minor, "weight": int(d["Weight"])})
    if wd:
        bio["weightDevice"] = wd
    for key, oci in (("BlkioDeviceReadBps", "throttleReadBpsDevice"),
                     ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                     ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                     ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        rows = []
        for d in hc.get(key) or []:
            major, minor = devnum(d["Path"])
            rows.append({"major": major, "minor": minor, "rate": int(d["Rate"])})
        if rows:
            bio[oci] = rows
    if bio:
        r["blockIO"] = bio
    return r


def merge_update(current: dict[str, Any], body: Any, host: HostInfo, running: bool) -> tuple[dict[str, Any], list[str]]:
    """Docker's update: the body's non-zero fields replace the container's (moby
    container.UpdateContainer); returns (new HostConfig, warnings). Nothing is changed in
    `current`."""
    if not isinstance(body, dict):
        raise InvalidParameter("invalid update body: expected an object")
    # The docker CLI sends the whole Resources struct (Ulimits, Devices...): what update
    # cannot change is ignored, as moby's JSON decoding ignores it.
    check_types({k: v for k, v in body.items() if k in UPDATABLE})
    hc = dict(current)
    new = {k: body.get(k) for k in UPDATABLE if body.get(k) not in (None, 0, "", [])}
    if "PidsLimit" in body and body["PidsLimit"] is not None:
        new["PidsLimit"] = body["PidsLimit"]  # 0/-1 is a real update here: "unlimited"
    if _i(new, "NanoCpus") and _i(current, "CpuQuota") and not _i(new, "CpuQuota"):
        raise Conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
    if _i(new, "CpuQuota") and _i(current, "NanoCpus") and not _i(new, "NanoCpus"):
        raise Conflict("Conflicting options: NanoCPUs cannot be updated as CPU Quota has already been set")
    if "Memory" in new and "MemorySwap" not in new and _i(current, "MemorySwap") > 0 \
            and new["Memory"] > _i(current, "MemorySwap"):
        raise Conflict("Memory limit should be smaller than already set memoryswap limit, "
                       "update the memoryswap at the same time")
    if "KernelMemory" in new and running:
        raise Conflict("Can not update kernel memory to a running container, please stop it first.")
    hc.update(new)
    if "PidsLimit" in new and new["PidsLimit"] <= 0:
        hc["PidsLimit"] = None
    rp = body.get("RestartPolicy")
    if rp:
        if not isinstance(rp, dict) or rp.get("Name", "") not in ("", "no", "always", "on-failure", "unless-stopped"):
            raise InvalidParameter(f"invalid restart policy '{(rp or {}).get('Name') if isinstance(rp, dict) else rp}'")
        if rp.get("Name") in ("always", "unless-stopped") and current.get("AutoRemove"):
            raise InvalidParameter("Restart policy cannot be updated because AutoRemove is enabled for the container")
        hc["RestartPolicy"] = {"Name": rp.get("Name") or "no", "MaximumRetryCount": int(rp.get("MaximumRetryCount") or 0)}
    warnings = validate(hc, host, update=True)
    return hc, warnings
