"""`docker diff`: a container's changes, and the layer tar `commit` makes of them.

overlay: the rw layer *is* the change set. The upper dir is walked (never the image): an
overlay whiteout (0/0 char device) is a deletion, an entry that exists in a lower layer is a
modification, anything else an addition. A directory only copied up (same size, mode and
mtime as below) is not a change; the parent of an addition or deletion always is (moby's
rules, so `docker diff` output matches).

vfs: there is no upper dir, so the rootfs is compared with the image's layers (a full walk:
vfs is the fallback driver, correctness over speed).
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import Iterator

from ..archive.extract import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX
from .tarstream import TarOut

MODIFY, ADD, DELETE = 0, 1, 2
KIND_LETTER = {MODIFY: "C", ADD: "A", DELETE: "D"}


def _walk(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(container path, host path, lstat) depth first, sorted; never follows symlinks."""
    stack = [("", root)]
    while stack:
        rel, d = stack.pop()
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        subdirs = []
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            r = f"{rel}/{n}"
            yield r, p, st
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((r, p))
        stack.extend(reversed(subdirs))


class _Lowers:
    """Lookups in the image's layers (top-most first) that never follow a symlink."""

    def __init__(self, lowers: list[str]) -> None:
        self.lowers = lowers
        self._dirs: dict[tuple[int, str], bool] = {}

    def _is_real_dir(self, i: int, rel: str) -> bool:
        if rel in ("", "/"):
            return True
        key = (i, rel)
        hit = self._dirs.get(key)
        if hit is None:
            parent = rel.rsplit("/", 1)[0]
            hit = self._is_real_dir(i, parent)
            if hit:
                try:
                    hit = stat.S_ISDIR(os.lstat(self.lowers[i] + rel).st_mode)
                except OSError:
                    hit = False
            self._dirs[key] = hit
        return hit

    def lstat(self, rel: str) -> os.stat_result | None:
        parent = rel.rsplit("/", 1)[0]
        for i, layer in enumerate(self.lowers):
            if not self._is_real_dir(i, parent):
                continue
            try:
                return os.lstat(layer + rel)
            except OSError:
                continue
        return None


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def overlay_changes(upper: str, lowers: list[str]) -> list[dict]:
    lower = _Lowers(lowers)
    out: list[dict] = []
    changed_dirs: set[str] = set()
    for rel, path, st in _walk(upper):
        is_dir = stat.S_ISDIR(st.st_mode)
        below = None
        if _is_whiteout(st):
            kind = DELETE
        else:
            below = lower.lstat(rel)
            if is_dir and below is not None and _opaque(path):
                kind = DELETE  # moby reports a replaced (opaque) directory as deleted
            elif below is None:
                kind = ADD
            elif (is_dir and stat.S_ISDIR(below.st_mode) and st.st_size == below.st_size
                  and st.st_mode == below.st_mode and int(st.st_mtime) == int(below.st_mtime)):
                continue  # copied up only because something below it changed
            else:
                kind = MODIFY
        if is_dir:
            changed_dirs.add(rel)
        out.append({"Path": rel, "Kind": kind})
        if kind in (ADD, DELETE):
            parent = rel.rsplit("/", 1)[0]
            if parent and parent not in changed_dirs:
                changed_dirs.add(parent)
                out.append({"Path": parent, "Kind": MODIFY})
    out.sort(key=lambda c: c["Path"])
    return out


# -- vfs -------------------------------------------------------------------------------------------

def image_index(lowers: list[str]) -> dict[str, str]:
    """Container path -> host path of the visible entry, for layers given top-most first."""
    index: dict[str, str] = {}
    for layer in reversed(lowers):
        for rel, path, st in _walk(layer):
            if _is_whiteout(st):
                for k in [k for k in index if k == rel or k.startswith(rel + "/")]:
                    del index[k]
                continue
            if stat.S_ISDIR(st.st_mode) and _opaque(path):
                for k in [k for k in index if k.startswith(rel + "/")]:
                    del index[k]
            index[rel] = path
    return index


def _same(a: os.stat_result, b: os.stat_result, pa: str, pb: str) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or a.st_mode != b.st_mode:
        return False
    if (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid):
        return False
    if stat.S_ISDIR(a.st_mode):
        return True  # children decide
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(pa) == os.readlink(pb)
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        return a.st_rdev == b.st_rdev
    return a.st_size == b.st_size and int(a.st_mtime) == int(b.st_mtime)


def vfs_changes(rootfs: str, lowers: list[str]) -> list[dict]:
    index = image_index(lowers)
    out: list[dict] = []
    seen: set[str] = set()
    changed_dirs: set[str] = set()

    def parent_changed(rel: str) -> None:
        parent = rel.rsplit("/", 1)[0]
        if parent and parent not in changed_dirs:
            changed_dirs.add(parent)
            out.append({"Path": parent, "Kind": MODIFY})

    for rel, path, st in _walk(rootfs):
        seen.add(rel)
        base = index.get(rel)
        if base is None:
            out.append({"Path": rel, "Kind": ADD})
            parent_changed(rel)
            continue
        bst = os.lstat(base)
        if not _same(st, bst, path, base):
            out.append({"Path": rel, "Kind": MODIFY})
            if stat.S_ISDIR(st.st_mode):
                changed_dirs.add(rel)
    gone = sorted(k for k in index if k not in seen)
    for rel in gone:
        parent = rel.rsplit("/", 1)[0]
        if parent and parent not in seen:
            continue  # under a deleted directory: the directory is the change
        out.append({"Path": rel, "Kind": DELETE})
        parent_changed(rel)
    out.sort(key=lambda c: c["Path"])
    return out


def write_changes_tar(root: str, changes: list[dict], fd: int) -> None:
    """A layer tar of `changes` read from the tree `root` (vfs commit): added/changed entries
    as they are now (a directory without its children), deletions as `.wh.` whiteouts."""
    out = TarOut(fd)
    for ch in sorted(changes, key=lambda c: c["Path"]):
        rel = ch["Path"].lstrip("/")
        if ch["Kind"] == DELETE:
            head, _, name = rel.rpartition("/")
            wo = f"{head}/{WHITEOUT_PREFIX}{name}" if head else WHITEOUT_PREFIX + name
            ti = tarfile.TarInfo(wo)
            ti.mode = 0
            out._header(ti)
            continue
        path = os.path.join(root, rel)
        try:
            out.add(path, rel)
        except FileNotFoundError:
            continue
    out.close()


__all__ = ["ADD", "DELETE", "KIND_LETTER", "MODIFY", "WHITEOUT_OPAQUE", "overlay_changes",
           "vfs_changes", "write_changes_tar"]
