"""Resource limits through the kernel's cgroups: one driver interface, two implementations.

- `detect(root)`: the driver for what the host mounts at `root` (default /sys/fs/cgroup):
  `v2.V2Driver` on a unified hierarchy, `v1.V1Driver` for per-controller hierarchies (the
  hybrid hosts here), or v2 under `root/unified` where v1 has no controllers at all.
- `CgroupDriver`: the protocol both follow; a systemd driver would be a third.
- `resources`: Docker's HostConfig resource options -> validated -> OCI `linux.resources`.
- `manager.CgroupManager`: the engine's glue (validate at create, group per container, join
  dirs for the monitor, update, stats, cleanup, `info` fields).
- `fs.oom_kills(dirs)`: what the monitor reads when a container exits.

Submodules are imported by callers; importing this package costs one small module.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from .resources import HostInfo


class CgroupDriver(Protocol):
    version: str   # "1" | "2"
    name: str      # "cgroupfs" (Docker's CgroupDriver in `info`)

    def host_info(self) -> HostInfo: ...
    def create(self, group: str, resources: dict[str, Any], devices: list[dict] | None = None) -> None: ...
    def update(self, group: str, resources: dict[str, Any]) -> None: ...
    def join_dirs(self, group: str) -> list[str]: ...
    def exists(self, group: str) -> bool: ...
    def pids(self, group: str) -> list[int]: ...
    def stats(self, group: str) -> dict[str, Any]: ...
    def oom_kills(self, group: str) -> int: ...
    def destroy(self, group: str) -> None: ...


def detect(root: str = "/sys/fs/cgroup") -> CgroupDriver:
    from .v1 import V1Driver
    from .v2 import V2Driver

    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return V2Driver(root)
    v1 = V1Driver(root)
    unified = os.path.join(root, "unified")
    if not v1.dirs and os.path.exists(os.path.join(unified, "cgroup.controllers")):
        return V2Driver(unified)
    return v1
