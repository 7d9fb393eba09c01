"""Volumes (Docker's `local` driver) and a container's mounts.

`VolumeService` (service.py): create/inspect/list/remove/prune, usage; `mounts.collect`
parses Binds/Mounts/Volumes/VolumesFrom into `MountPoint`s; `hooks` is what the container
lifecycle calls (create: `prepare`, start: `start_mounts`, remove: `on_removed`).
"""

from .mounts import MountPoint
from .service import Volume, VolumeService

__all__ = ["MountPoint", "Volume", "VolumeService"]
