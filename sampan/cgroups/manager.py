"""The engine's side of cgroups: one group per container, made before its process starts.

Lifecycle (the hooks in engine/containers.py call these):
- create: `validate(host_config)` -> Docker's warnings, or InvalidParameter before anything
  exists; the stored HostConfig is the adjusted one (dropped options, default swap), as Docker.
- start: `prepare(c, spec, runtime)` writes `linux.cgroupsPath`/`resources` into the spec (runc
  and crun apply those themselves) and, for sampan's runtime, makes the group with its limits
  and returns the directories the container's init joins (`MonitorSpec.cgroup_dirs`).
- exit and remove: `release(c)` removes the group (the monitor has already counted OOM kills).
- `update(...)`, `stats(c)`, `info_fields()` for the API.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from typing import Any

from ..errors import InvalidParameter
from . import CgroupDriver, detect
from . import fs
from . import resources as res
from . import stats as _stats

log = logging.getLogger("sampan.cgroups")

DEFAULT_PARENT = "/sampan"


class CgroupManager:
    def __init__(self, parent: str | None = None, driver: CgroupDriver | None = None,
                 root: str = "/sys/fs/cgroup") -> None:
        self.driver = driver if driver is not None else detect(root)
        self.parent = fs.clean_group(parent or DEFAULT_PARENT)
        self._host: res.HostInfo | None = None
        self._mem_total = _stats.host_memory()
        self._own_procs = _own_procs_file(self.driver)

    @property
    def host(self) -> res.HostInfo:
        if self._host is None:
            self._host = self.driver.host_info()
        return self._host

    # -- create --------------------------------------------------------------------------------
    def validate(self, hc: dict[str, Any]) -> list[str]:
        """Docker's checks on a create body's HostConfig (adjusted in place)."""
        self.prewarm()
        warnings = res.validate(hc, self.host)
        if hc.get("CgroupParent"):
            fs.clean_group(hc["CgroupParent"])
        res.to_oci(hc)  # device paths of the blkio options must resolve now, not at start
        return warnings

    def group_of(self, c: Any) -> str:
        parent = (c.host_config or {}).get("CgroupParent") or self.parent
        return fs.clean_group(f"{parent}/{c.id}")

    # -- start / exit --------------------------------------------------------------------------
    def prepare(self, c: Any, spec: dict[str, Any], runtime: str = "sampan") -> list[str]:
        group = self.group_of(c)
        oci = res.to_oci(c.host_config or {})
        linux = spec.setdefault("linux", {})
        devices = list((linux.get("resources") or {}).get("devices") or [])
        devices += [res.parse_device_rule(r) for r in (c.host_config or {}).get("DeviceCgroupRules") or []]
        linux["cgroupsPath"] = group
        linux["resources"] = dict(copy.deepcopy(oci), devices=devices)
        if runtime != "sampan":
            return []  # runc/crun make and fill the group from the spec
        self.prewarm()
        if self.driver.exists(group):
            self.driver.destroy(group)  # a stale group would carry old limits and counters
        try:
            self.driver.create(group, oci, devices)
        except fs.CgroupError:
            self._release(group)
            raise
        return self.driver.join_dirs(group)

    def dirs_of(self, c: Any) -> list[str]:
        """The container's cgroup directories (one per v1 hierarchy), made or not."""
        return self.driver.join_dirs(self.group_of(c))

    def release(self, c: Any) -> None:
        """Remove the container's group; blocking (may wait for exiting processes): run it in
        an executor."""
        try:
            group = self.group_of(c)
        except InvalidParameter:
            return
        self._release(group)

    def _release(self, group: str) -> None:
        try:
            if self.driver.exists(group):
                self.driver.destroy(group)
        except fs.CgroupError as e:
            log.warning("removing cgroup %s: %s", group, e)

    def prewarm(self) -> None:
        """Start an RCU grace period now, in a thread, so the container's own cgroup.procs
        write (in its init, moments later) does not wait for one.

        Every write to cgroup.procs takes the kernel's global cgroup_threadgroup_rwsem for
        writing, which first waits a full RCU grace period (~10 ms here) unless another writer
        went through within the last one. Measured: the init's join took 12 ms of a 40 ms
        `run --rm`. A no-op migration of the daemon into the cgroup it is already in, begun
        at create and at start, lets the init's write share that grace period.
        """
        if self._own_procs is None or self.driver.version == "1":
            return  # v1 joins through `tasks`, which needs no grace period (fs.enter)
        threading.Thread(target=_write_self, args=(self._own_procs,), daemon=True).start()

    # -- update ----------------------------------------------------------------------------------
    def update(self, c: Any, body: Any) -> tuple[dict[str, Any], list[str]]:
        """The container's new HostConfig and the warnings; a running container's group gets
        the new limits first, so a value the kernel refuses changes nothing."""
        running = bool(c.state.Running)
        hc, warnings = res.merge_update(c.host_config or {}, body, self.host, running)
        if running and (c.host_config.get("Runtime") or "sampan") in ("sampan", "runc", "crun"):
            group = self.group_of(c)
            if self.driver.exists(group):
                try:
                    self.driver.update(group, res.to_oci(hc))
                except fs.CgroupError as e:
                    # Put back what was there: a half-applied update must not linger.
                    try:
                        self.driver.update(group, res.to_oci(c.host_config or {}))
                    except fs.CgroupError:
                        pass
                    raise InvalidParameter(f"Cannot update container {c.id}: {e}") from None
        return hc, warnings

    # -- stats -----------------------------------------------------------------------------------
    def stats(self, c: Any) -> dict[str, Any]:
        """One reading of a container (Docker's StatsJSON, without precpu)."""
        name = "/" + c.name
        if not c.state.Running:
            return _stats.empty(name, c.id)
        group = self.group_of(c)
        if not self.driver.exists(group):
            return _stats.empty(name, c.id)  # exiting, or a runtime that made none yet
        raw = self.driver.stats(group)
        return _stats.sample(raw, name=name, cid=c.id, pid=int(c.state.Pid or 0),
                             mem_total=self._mem_total)

    # -- info ------------------------------------------------------------------------------------
    def info_fields(self) -> dict[str, Any]:
        h = self.host
        f = h.has
        warnings = []
        for feat, what in (("MemoryLimit", "memory limit"), ("SwapLimit", "swap limit"),
                           ("CPUCfs", "cpu cfs quota"), ("CPUShares", "cpu shares"),
                           ("Cpuset", "cpuset"), ("PidsLimit", "pids limit"),
                           ("OomKillDisable", "oom kill disable"),
                           ("BlkioWeight", "blkio weight"), ("BlkioWeightDevice", "blkio weight_device"),
                           ("BlkioReadBpsDevice", "blkio throttle.read_bps_device"),
                           ("BlkioWriteBpsDevice", "blkio throttle.write_bps_device"),
                           ("BlkioReadIOpsDevice", "blkio throttle.read_iops_device"),
                           ("BlkioWriteIOpsDevice", "blkio throttle.write_iops_device")):
            if not f(feat):
                warnings.append(f"WARNING: No {what} support")
        return {"MemoryLimit": f("MemoryLimit"), "SwapLimit": f("SwapLimit"),
                "KernelMemory": f("KernelMemory"), "KernelMemoryTCP": False,
                "CpuCfsPeriod": f("CPUCfs"), "CpuCfsQuota": f("CPUCfs"), "CPUShares": f("CPUShares"),
                "CPUSet": f("Cpuset"), "PidsLimit": f("PidsLimit"), "OomKillDisable": f("OomKillDisable"),
                "CgroupDriver": self.driver.name, "CgroupVersion": self.driver.version,
                "Warnings": warnings}


async def update_container(engine: Any, ref: str, body: Any) -> list[str]:
    """`POST /containers/{id}/update`: new limits live, then the stored HostConfig (one
    transaction), under the container's lock so a concurrent start sees one or the other."""
    containers = engine.containers
    c = containers.get(ref)
    async with containers._lock(c.id):
        hc, warnings = engine.cgroups.update(c, body)
        old = c.host_config
        c.host_config = hc
        try:
            containers._save(c)
        except Exception:
            c.host_config = old
            raise
    return warnings


def _write_self(path: str) -> None:
    try:
        fs.write(path, 0)
    except fs.CgroupError:
        pass


def _own_procs_file(driver: Any) -> str | None:
    """This process's own cgroup.procs in one hierarchy the driver manages."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    dirs = getattr(driver, "dirs", None)
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if dirs is not None:
            for c in ctrls.split(","):
                if c in dirs:
                    p = os.path.join(dirs[c] + path.rstrip("/"), "cgroup.procs")
                    return p if os.path.exists(p) else None
        elif ctrls == "" and hasattr(driver, "root"):
            p = os.path.join(driver.root + path.rstrip("/"), "cgroup.procs")
            return p if os.path.exists(p) else None
    return None
