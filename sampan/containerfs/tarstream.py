"""Writing a tree as a tar stream to a pipe, fast: headers from `tarfile`, file data by
`sendfile(2)` straight from the file to the pipe (no copies through Python).

Used in the worker child (cp from a container, export): the walk never follows a symlink,
and the names are rebased (`docker cp c:/etc/ssl -` gives `ssl/...`).
"""

from __future__ import annotations

import os
import stat
import tarfile

_BLOCK = 512
_FLUSH_AT = 64 * 1024


class TarOut:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.links: dict[tuple[int, int], str] = {}

    def _flush(self) -> None:
        with memoryview(self.buf) as whole:
            view = whole
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
            view.release()
        self.buf.clear()

    def _header(self, ti: tarfile.TarInfo) -> None:
        self.buf += ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if len(self.buf) >= _FLUSH_AT:
            self._flush()

    def _data(self, path: str, size: int) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            self._flush()
            sent = 0
            while sent < size:
                n = os.sendfile(self.fd, fd, sent, size - sent)
                if n == 0:
                    break  # the file shrank under us (a running container): pad with zeros
                sent += n
            if sent < size:
                self.buf += b"\0" * (size - sent)
        finally:
            os.close(fd)
        if size % _BLOCK:
            self.buf += b"\0" * (_BLOCK - size % _BLOCK)

    def add(self, path: str, name: str, st: os.stat_result | None = None) -> bool:
        """One entry for `path` (lstat), named `name`; returns True if it is a directory."""
        if st is None:
            st = os.lstat(path)
        mode = st.st_mode
        ti = tarfile.TarInfo(name)
        ti.mode = stat.S_IMODE(mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = int(st.st_mtime)
        if stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
            ti.name = name.rstrip("/") + "/"
            self._header(ti)
            return True
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                first = self.links.get(key)
                if first is not None:
                    ti.type = tarfile.LNKTYPE
                    ti.linkname = first
                    self._header(ti)
                    return False
                self.links[key] = name
            ti.size = st.st_size
            self._header(ti)
            self._data(path, st.st_size)
        elif stat.S_ISLNK(mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(path)
            self._header(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self._header(ti)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
            self._header(ti)
        # sockets are left out, as Docker does
        return False

    def close(self) -> None:
        self.buf += b"\0" * (2 * _BLOCK)
        self._flush()


def write_tree(out: TarOut, path: str, name: str, *, root_entry: bool = True,
               one_fs: bool = False) -> None:
    """`path` and everything under it, depth first in sorted order, as `name/...`.

    With `root_entry=False` (export of `/`) the children are named relative to `path`.
    `one_fs`: a directory on another filesystem (a mount point: /proc, /sys, /dev of a running
    container whose submounts could not be detached) is written but not descended into.
    """
    st = os.lstat(path)
    if root_entry:
        is_dir = out.add(path, name, st)
    else:
        is_dir = stat.S_ISDIR(st.st_mode)
    if not is_dir:
        return
    prefix = name.rstrip("/") + "/" if root_entry else ""
    stack: list[tuple[str, str]] = [(path, prefix)]
    while stack:
        dpath, dname = stack.pop()
        try:
            names = sorted(os.listdir(dpath))
        except OSError:
            continue
        subdirs = []
        for n in names:
            p = os.path.join(dpath, n)
            try:
                est = os.lstat(p)
            except FileNotFoundError:
                continue  # removed meanwhile (running container)
            if out.add(p, dname + n, est) and not (one_fs and est.st_dev != st.st_dev):
                subdirs.append((p, dname + n + "/"))
        stack.extend(reversed(subdirs))
