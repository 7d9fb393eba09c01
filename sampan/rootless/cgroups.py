"""Cgroups for a rootless daemon without a delegated cgroup: none are made, and any resource
limit is refused at create (Docker's rootless daemon cannot apply them either on such a host;
it needs cgroup v2 with systemd delegation)."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidParameter

# HostConfig fields that need a cgroup of our own to hold.
_LIMITS = ("Memory", "MemoryReservation", "MemorySwap", "KernelMemory", "NanoCpus", "CpuShares",
           "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus",
           "CpusetMems", "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps",
           "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "PidsLimit",
           "CgroupParent", "DeviceCgroupRules", "OomKillDisable")

MESSAGE = ("this rootless daemon has no delegated cgroup, so resource limits cannot be applied "
           "({field}); run on cgroup v2 with systemd delegation, or without the limit")


class _NoDriver:
    """The bits of a cgroup driver the engine reads directly (top, pause)."""
    name = "none"
    version = ""

    def pids(self, group: str) -> list[int]:
        return []  # `top` then lists the container's init, as for a runtime without a group

    def paths(self, group: str) -> dict[str, str]:
        return {}  # no freezer: pause answers Docker's "not mounted" Conflict

    def join_dirs(self, group: str) -> list[str]:
        return []

    def exists(self, group: str) -> bool:
        return False


class NoCgroups:
    """The CgroupManager interface the engine uses, doing nothing but refusing limits."""

    driver = _NoDriver()

    def dirs_of(self, c: Any) -> list[str]:
        return []

    def validate(self, hc: dict[str, Any]) -> list[str]:
        for f in _LIMITS:
            v = hc.get(f)
            if v not in (None, 0, "", [], False) and not (f == "MemorySwap" and v == -1) \
                    and not (f == "PidsLimit" and v in (-1,)):
                raise InvalidParameter(MESSAGE.format(field=f))
        return []

    def group_of(self, c: Any) -> str:
        return ""

    def prepare(self, c: Any, spec: dict[str, Any], runtime: str = "sampan") -> list[str]:
        linux = spec.setdefault("linux", {})
        linux.pop("cgroupsPath", None)
        res = linux.get("resources") or {}
        linux["resources"] = {"devices": res.get("devices") or []} if runtime != "sampan" else {}
        return []

    def release(self, c: Any) -> None:
        return None

    def prewarm(self) -> None:
        return None

    def update(self, c: Any, body: Any) -> tuple[dict[str, Any], list[str]]:
        raise InvalidParameter(MESSAGE.format(field="update"))

    def stats(self, c: Any) -> dict[str, Any]:
        return {}

    def info_fields(self) -> dict[str, Any]:
        return {"CgroupDriver": "none", "CgroupVersion": "", "MemoryLimit": False,
                "SwapLimit": False, "KernelMemory": False, "KernelMemoryTCP": False,
                "CpuCfsPeriod": False, "CpuCfsQuota": False, "CPUShares": False, "CPUSet": False,
                "PidsLimit": False, "OomKillDisable": False,
                "Warnings": ["WARNING: No cgroup delegated to this rootless daemon: "
                             "resource limits are not supported"]}

    def __getattr__(self, name: str) -> Any:
        # Anything else the engine may ask (new methods added later): a harmless no-op.
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **k: None
