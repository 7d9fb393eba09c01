"""Shifting a tree's ownership into (or out of) a remapped user namespace.

Docker's approach for image layers under `--userns-remap`: an unpacked layer is chowned to the
mapping once, when it is stored (moby `chrootarchive` with the daemon's IdentityMapping), and
every container of that mapping uses it as an overlay lower dir as it is. Idmapped mounts would
avoid the walk, but overlayfs only accepts idmapped lower layers since 5.19 and the overlay
itself is mounted by the host's root here (so copy-up keeps shifted ownership) — a chowned
layer works on every kernel and makes commit/export a plain reverse translation.

chown(2) clears set-id bits and drops `security.capability`; both are put back. Hard links
share an inode: each inode is shifted once.
"""

from __future__ import annotations

import errno
import os
import stat

from .idmap import IdMap

_CAP_XATTR = "security.capability"


def _shift_one(path: str, st: os.stat_result, uid: int, gid: int) -> None:
    if (st.st_uid, st.st_gid) == (uid, gid):
        return
    cap = None
    if stat.S_ISREG(st.st_mode):
        try:
            cap = os.getxattr(path, _CAP_XATTR, follow_symlinks=False)
        except OSError:
            cap = None
    os.chown(path, uid, gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    if cap is not None:
        try:
            os.setxattr(path, _CAP_XATTR, cap, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM, errno.EINVAL):
                raise


def shift_tree(root: str, idmap: IdMap, to_host: bool = True) -> int:
    """chown every entry under `root` (itself included, symlinks not followed) from container
    ids to host ids (`to_host`) or back; returns how many inodes changed owner. An id the map
    does not cover raises InvalidParameter (Docker: "Container ID ... cannot be mapped to a
    host ID")."""
    move = _lenient(idmap) if to_host else idmap.to_container
    seen: set[tuple[int, int]] = set()
    changed = 0
    stack = [root]
    while stack:
        path = stack.pop()
        st = os.lstat(path)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            if key in seen:
                continue
            seen.add(key)
        uid, gid = move(st.st_uid, st.st_gid)
        if (uid, gid) != (st.st_uid, st.st_gid):
            _shift_one(path, st, uid, gid)
            changed += 1
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(path) as it:
                stack.extend(e.path for e in it)
    return changed


def _lenient(idmap: IdMap):  # type: ignore[no-untyped-def]
    """Container ids -> host ids, where an id that is no container id but already one of the
    map's host ids is kept: a tar the daemon wrote from its own view of a remapped image (the
    builder recording an existing directory's owner) carries host ids. Only unambiguous when
    the host range lies above the container range, as with every subordinate range from
    /etc/subuid; otherwise the strict rule applies."""
    lowest_host = min([r.host for r in idmap.uids + idmap.gids] or [0])
    top_container = max([r.container + r.size for r in idmap.uids + idmap.gids] or [0])

    def move(uid: int, gid: int) -> tuple[int, int]:
        if lowest_host < top_container:
            return idmap.to_host(uid, gid)
        u = uid if _is_host(idmap.uids, uid) else idmap.to_host(uid, 0)[0]
        g = gid if _is_host(idmap.gids, gid) else idmap.to_host(0, gid)[1]
        return u, g
    return move


def _is_host(ranges, n: int) -> bool:  # type: ignore[no-untyped-def]
    return any(r.host <= n < r.host + r.size for r in ranges)


def chown_to_root(paths: list[str], idmap: IdMap) -> None:
    """Give host-root-owned paths (a container's upper dir, /etc/hosts...) to the mapped root,
    so root in the container owns them as it would without remapping."""
    uid, gid = idmap.root
    for p in paths:
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if st.st_uid == 0 and st.st_gid == 0:
            os.chown(p, uid, gid, follow_symlinks=False)
