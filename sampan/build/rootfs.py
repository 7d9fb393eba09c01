"""Read-only views of an image's filesystem for the builder (COPY --from, chown names, WORKDIR).

An image with one layer is viewed as that layer's directory, one with none as an empty
directory; more layers are merged by a read-only overlay mount (no upper dir, so nothing can
be written through it, not even by a stray rmtree at start-up). Where overlayfs cannot mount
(the vfs driver) the layers are copied. The mount is always taken down when the view closes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .copy_paths import resolve_rel
from ..errors import InvalidParameter
from ..userns import hooks as userns_hooks


@contextlib.contextmanager
def image_view(layer_dirs: list[Path] | list[str], scratch: Path, driver: str) -> Iterator[Path]:
    """`layer_dirs` top-most first (ImageRecord.layer_dirs); yields the merged root."""
    dirs = [str(d) for d in layer_dirs]
    if len(dirs) == 1:
        yield Path(dirs[0])
        return
    scratch.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="view-", dir=scratch))
    mounted = False
    try:
        if len(dirs) > 1:
            if driver == "vfs":
                from ..engine.rootfs import vfs_build
                vfs_build(dirs, str(target))
            else:
                from ..linux import syscalls
                opts = "lowerdir=" + ":".join(dirs)
                if len(opts) > 4000:
                    raise InvalidParameter("too many image layers for one overlay mount")
                syscalls.mount("overlay", str(target), "overlay", syscalls.MS_RDONLY, opts)
                mounted = True
        yield target
    finally:
        if mounted:
            from ..linux import syscalls
            syscalls.umount2(str(target), syscalls.MNT_DETACH)
        if mounted:
            with contextlib.suppress(OSError):
                os.rmdir(target)
        else:
            shutil.rmtree(target, ignore_errors=True)


def resolve_in_root(root: Path, path: str) -> tuple[list[str], list[str]]:
    """Follow `path` inside `root` as the container would (symlinks confined to root).

    Returns (existing components, missing components) of the resolved path.
    """
    parts = [p for p in resolve_rel(root, path).split("/") if p]
    for i in range(len(parts)):
        try:
            st = os.lstat(os.path.join(root, *parts[:i + 1]))
        except (FileNotFoundError, NotADirectoryError):
            return parts[:i], parts[i:]  # what is left is made as plain directories
        if not stat.S_ISDIR(st.st_mode) and i + 1 < len(parts):
            raise InvalidParameter(f"mkdir {path}: not a directory")
    return parts, []


def write_mkdir_layer(root: Path, path: str, out_tar: Path) -> bool:
    """A layer tar that creates `path` (WORKDIR) in the image viewed at `root`, root-owned
    0755 as dockerd's SetupWorkingDirectory; parents are recorded with their own metadata so
    the overlay shows them unchanged. False when the directory exists already."""
    existing, missing = resolve_in_root(root, path)
    if not missing:
        return False
    now = int(time.time())
    with tarfile.open(out_tar, "w", format=tarfile.GNU_FORMAT) as tf:
        for i in range(1, len(existing) + 1):
            rel = "/".join(existing[:i])
            st = os.lstat(os.path.join(root, rel))
            ti = tarfile.TarInfo(rel)
            ti.type = tarfile.DIRTYPE
            ti.mode = stat.S_IMODE(st.st_mode)
            owner = userns_hooks.tar_owner()  # --userns-remap: host ids -> the container's
            ti.uid, ti.gid = owner(st.st_uid, st.st_gid) if owner else (st.st_uid, st.st_gid)
            ti.mtime = int(st.st_mtime)
            tf.addfile(ti)
        for i in range(1, len(missing) + 1):
            ti = tarfile.TarInfo("/".join(existing + missing[:i]))
            ti.type = tarfile.DIRTYPE
            ti.mode, ti.uid, ti.gid, ti.mtime = 0o755, 0, 0, now
            tf.addfile(ti)
    return True
