"""`/dev/shm` for `--ipc shareable` and `--ipc container:<x>`, shared as Docker shares it.

A private container gets a tmpfs of its own inside its mount namespace (runtime/spec.py). A
shareable one gets it from the host side instead: a tmpfs mounted at
`containers/<id>/mounts/shm` when it starts, bind-mounted at its `/dev/shm`, so a container
that joins its IPC namespace can bind the same tmpfs and see the same POSIX shared memory.
The host mount goes when the container stops or is removed, and at start-up for a container
the daemon finds stopped (a joiner's own bind keeps the tmpfs alive while it runs).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidParameter
from ..linux import syscalls

DEFAULT_SHM_SIZE = 64 * 1024 * 1024


def shm_dir(c: Any) -> str:
    return os.path.join(c.dir, "mounts", "shm")


def prepare(c: Any) -> str | None:
    """Before start: the host path to bind at `c`'s /dev/shm, or None for its own tmpfs."""
    mode = c.host_config.get("IpcMode") or ""
    if mode == "shareable":
        path = shm_dir(c)
        os.makedirs(path, mode=0o700, exist_ok=True)
        if not os.path.ismount(path):
            size = int(c.host_config.get("ShmSize") or DEFAULT_SHM_SIZE)
            syscalls.mount("shm", path, "tmpfs",
                           syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC,
                           f"mode=1777,size={size}")
        return path
    return None


def donor_path(donor: Any) -> str:
    """The /dev/shm a container joining `donor`'s IPC namespace binds (dockerd refuses to join
    a container whose IPC is not shareable, with this message)."""
    mode = donor.host_config.get("IpcMode") or ""
    if mode == "host":
        return "/dev/shm"
    path = shm_dir(donor)
    if mode != "shareable" or not os.path.ismount(path):
        raise InvalidParameter(f"container {donor.id}: non-shareable IPC "
                               "(hint: use IpcMode:shareable for the donor container)")
    return path


def release(c: Any) -> None:
    """Unmount a shareable container's host-side tmpfs (idempotent)."""
    release_dir(c.dir)


def release_dir(container_dir: str | os.PathLike[str]) -> None:
    path = os.path.join(container_dir, "mounts", "shm")
    if os.path.ismount(path):
        try:
            syscalls.umount2(path, syscalls.MNT_DETACH)
        except OSError:
            return
    try:
        os.rmdir(path)
    except OSError:
        pass
