"""The Engine: wires the subsystems together over one data root."""

from __future__ import annotations

import os
import platform
import shutil
from typing import Any

from ..daemon.config import DaemonConfig
from ..metadata import Database


class Engine:
    def __init__(self, config: DaemonConfig) -> None:
        from ..images.service import ImageService
        from .containers import ContainerService
        from .execs import ExecService
        from ..network.service import NetworkService

        self.config = config
        for d in (config.data_root, config.tmp_dir, config.containers_dir, config.content_dir,
                  config.layers_dir, config.exec_root, config.monitors_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(config.data_root, 0o710)
        # tmp/ only ever holds half-made things: a crash leaves them, start-up removes them.
        for entry in config.tmp_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        self.db = Database(config.db_path)
        from ..cgroups.manager import CgroupManager
        self.cgroups = CgroupManager(parent=config.extra.get("cgroup-parent"))
        from ..events import EventService
        from ..health import HealthMonitor
        self.events = EventService(self.db)
        self.health = HealthMonitor(self)
        self.images = ImageService(config, self.db)
        self.containers = ContainerService(self)
        self.networks = NetworkService(self)
        self.execs = ExecService(self.containers)
        from ..containerfs import ContainerFS
        from ..volumes import VolumeService
        from ..volumes.hooks import usage as _volume_usage
        self.volumes = VolumeService(config.data_root, self.db, lambda: _volume_usage(self))
        self.volumes.events = self.events
        self.containerfs = ContainerFS(self)
        self.storage_driver = self._pick_driver(config.storage_driver)

    def _pick_driver(self, wanted: str) -> str:
        """overlay2 where overlayfs mounts on the data root's filesystem, else vfs."""
        from ..errors import InvalidParameter
        from .rootfs import overlay_works

        if wanted == "vfs":
            return "vfs"
        if wanted not in ("", "overlay", "overlay2"):
            raise InvalidParameter(f"unknown storage driver {wanted!r}: use overlay2 or vfs")
        if overlay_works(str(self.config.tmp_dir / "overlay-check")):
            return "overlay2"
        if wanted:
            raise InvalidParameter("overlay2 was asked for but overlayfs cannot be mounted here")
        return "vfs"

    async def start(self) -> None:
        await self.networks.start()
        await self.containers.restore()
        await self.networks.restore()

    def close(self) -> None:
        self.networks.close()
        self.db.close()

    def info(self) -> dict[str, Any]:
        from .sysinfo import info
        return info(self)
