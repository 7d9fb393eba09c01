"""Tar a directory as a layer: the reverse of extraction.

The input is usually an overlay upper dir (a container's changes): overlay whiteouts (0/0
character devices) go back to Docker's `.wh.<name>` entries and opaque directories get a
`.wh..wh..opq` entry, so the tar is a valid image layer. Entries are sorted, names are
relative without `./`, and hardlinked files become hardlink entries, so the same tree always
gives the same bytes (and the same diff ID).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO, Callable

Owner = Callable[[int, int], tuple[int, int]]

from .extract import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX


def _xattrs(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return out
        raise
    for name in sorted(names):
        if name.startswith("trusted.overlay."):
            continue  # overlay's bookkeeping, not content
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _base(name: str, st: os.stat_result, owner: Owner | None = None) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = owner(st.st_uid, st.st_gid) if owner else (st.st_uid, st.st_gid)
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    return ti


def write_layer_tar(root: Path | str, fileobj: BinaryIO, whiteouts: str = "overlay",
                    owner: Owner | None = None) -> None:
    """Write `root` as an uncompressed layer tar to `fileobj` (which may be unseekable).

    `whiteouts="overlay"`: 0/0 char devices and opaque xattrs are converted to Docker form;
    "none": they are written as they are (e.g. `docker export` of a merged rootfs).
    `owner`: (uid, gid) on disk -> (uid, gid) in the tar (a remapped daemon's layers are
    owned by host ids; the tar carries the container's).
    """
    root = os.fspath(root)
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        stack: list[str] = [""]
        while stack:
            rel = stack.pop()
            dpath = os.path.join(root, rel) if rel else root
            try:
                names = sorted(os.listdir(dpath))
            except FileNotFoundError:
                continue
            subdirs: list[str] = []
            for name in names:
                relname = f"{rel}/{name}" if rel else name
                path = os.path.join(dpath, name)
                st = os.lstat(path)
                mode = st.st_mode
                if (whiteouts == "overlay" and stat.S_ISCHR(mode) and st.st_rdev == 0):
                    wo = _base(f"{rel}/{WHITEOUT_PREFIX}{name}" if rel else WHITEOUT_PREFIX + name, st, owner)
                    wo.mode = 0
                    tar.addfile(wo)
                    continue
                ti = _base(relname, st, owner)
                ti.pax_headers = _xattrs(path)
                if stat.S_ISDIR(mode):
                    ti.type = tarfile.DIRTYPE
                    ti.name = relname + "/"
                    tar.addfile(ti)
                    if whiteouts == "overlay" and _is_opaque(path):
                        op = _base(f"{relname}/{WHITEOUT_OPAQUE}", st, owner)
                        op.mode = 0
                        tar.addfile(op)
                    subdirs.append(relname)
                elif stat.S_ISREG(mode):
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1 and key in links:
                        ti.type = tarfile.LNKTYPE
                        ti.linkname = links[key]
                        tar.addfile(ti)
                        continue
                    if st.st_nlink > 1:
                        links[key] = relname
                    ti.size = st.st_size
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    with open(fd, "rb") as f:
                        tar.addfile(ti, f)
                elif stat.S_ISLNK(mode):
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = os.readlink(path)
                    tar.addfile(ti)
                elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                    ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
                    ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                    tar.addfile(ti)
                elif stat.S_ISFIFO(mode):
                    ti.type = tarfile.FIFOTYPE
                    tar.addfile(ti)
                # sockets are skipped, as Docker does
            # depth-first in sorted order: push in reverse so the smallest name pops first
            stack.extend(reversed(subdirs))
