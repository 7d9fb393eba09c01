"""A container's root filesystem: an overlay of the image's layers with the container's upper dir.

For sampan's own runtime the overlay is mounted inside the container's new mount namespace (the
runtime does it from a `Mount` description), so it disappears with the container and nothing is
left mounted on the host after a crash. runc and crun expect a ready rootfs, so for them it is
mounted on the host before start and unmounted after exit.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import Internal


def overlay_options(lower: list[str], upper: str, work: str) -> tuple[str, ...]:
    if not lower:
        # overlayfs needs a lower dir; an image with no layers (FROM scratch) gets an empty one.
        empty = os.path.join(os.path.dirname(upper), "empty")
        os.makedirs(empty, exist_ok=True)
        lower = [empty]
    opts = (f"lowerdir={':'.join(lower)}", f"upperdir={upper}", f"workdir={work}")
    if sum(len(o) + 1 for o in opts) > 4000:
        raise Internal("too many image layers for one overlay mount")
    return opts


def prepare_rootfs(c: Any, host_namespace: bool) -> Any:
    from ..runtime.mounts import Mount

    m = Mount(type="overlay", source="overlay", target=c.rootfs,
              options=overlay_options(c.lower_dirs, c.upper_dir, c.work_dir))
    if not host_namespace:
        return m
    from ..linux import syscalls
    if not os.path.ismount(c.rootfs):
        syscalls.mount("overlay", c.rootfs, "overlay", 0, ",".join(m.options))
    return None


def release_rootfs(c: Any) -> None:
    """Unmount a host-side rootfs mount if one is there (runc/crun, or left by a crash)."""
    if os.path.ismount(c.rootfs):
        from ..linux import syscalls
        try:
            syscalls.umount2(c.rootfs, syscalls.MNT_DETACH)
        except OSError:
            pass
