"""Docker's volume copy-up: the first time an empty volume is mounted at a path where the
image has content, that content is copied into the volume (unless `nocopy`).

The copy runs in a worker (sampan.containerfs.worker) with the container's rootfs mounted in
a private mount namespace. The source is resolved inside the rootfs (`secure_join`) and walked
without following symlinks; the destination is the volume's fresh `_data` directory, where
every entry is created new (O_EXCL / mkdir), so nothing is ever written through a link.
"""

from __future__ import annotations

import errno
import os
import stat

from ..runtime.rootfs import secure_join

_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_O_SRC = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _meta(src: str, dst: str, st: os.stat_result) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        names = []
    for n in names:
        if n.startswith("trusted.overlay."):
            continue
        try:
            os.setxattr(dst, n, os.getxattr(src, n, follow_symlinks=False), follow_symlinks=False)
        except OSError:
            pass


def _copy_file(src: str, dst: str, size: int) -> None:
    fi = os.open(src, _O_SRC)
    try:
        fo = os.open(dst, _O_NEW, 0o600)
        try:
            off = 0
            while off < size:
                try:
                    n = os.copy_file_range(fi, fo, size - off, off, off)
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        raise
                    n = os.sendfile(fo, fi, off, size - off)
                if n == 0:
                    break
                off += n
        finally:
            os.close(fo)
    finally:
        os.close(fi)


def copy_tree(src: str, dst: str) -> None:
    """Copy the contents of directory `src` into the empty directory `dst`, with owners,
    modes, xattrs, hardlinks, symlinks (as links), device nodes and times; `dst` takes
    `src`'s owner and mode (Docker's copyOwnership)."""
    links: dict[tuple[int, int], str] = {}
    dir_times: list[tuple[str, os.stat_result]] = []
    root_st = os.lstat(src)
    stack = [(src, dst)]
    while stack:
        s_dir, d_dir = stack.pop()
        for name in sorted(os.listdir(s_dir)):
            s = os.path.join(s_dir, name)
            d = os.path.join(d_dir, name)
            try:
                st = os.lstat(s)
            except FileNotFoundError:
                continue
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(d, 0o700)
                stack.append((s, d))
                dir_times.append((d, st))
            elif stat.S_ISREG(mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in links:
                    os.link(links[key], d, follow_symlinks=False)
                    continue
                _copy_file(s, d, st.st_size)
                if st.st_nlink > 1:
                    links[key] = d
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                os.mknod(d, mode, st.st_rdev)
            else:
                continue  # sockets
            _meta(s, d, st)
            if not stat.S_ISDIR(mode):
                os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    _meta(src, dst, root_st)
    for d, st in reversed(dir_times):
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def is_empty_dir(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except OSError:
        return False


def copyup_job(rootfs: str, pairs: list[tuple[str, str]]):
    """Worker job: for each (container path, volume dir), copy the image's content in."""
    from ..containerfs.worker import send_header

    def job(out: int, inp: int) -> None:
        copied = []
        for dest, voldir in pairs:
            src = secure_join(rootfs, dest)
            try:
                st = os.lstat(src)
            except OSError:
                continue
            if not stat.S_ISDIR(st.st_mode) or not is_empty_dir(voldir):
                continue
            copy_tree(src, voldir)
            copied.append(dest)
        send_header(out, {"ok": True, "copied": copied})
    return job
