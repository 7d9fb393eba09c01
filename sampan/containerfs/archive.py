"""`docker cp` and `docker export`: the jobs a worker runs inside a container's view.

Path rules are moby's (`container.ResolvePath`): every component but the last is resolved
inside the container's root (symlinks confined to it); the last one is not followed, so a
symlink is copied as a symlink and reported with its `linkTarget`. A trailing `/.` means
"the directory's contents" and keeps the `.` as the tar's base name.
"""

from __future__ import annotations

import os
import posixpath
import stat
from typing import Any

from ..archive import extract_layer
from ..errors import InvalidParameter, NotFound
from ..monitor.logfile import rfc3339_nano
from ..runtime.rootfs import secure_join
from .tarstream import TarOut, write_tree
from .worker import send_header

# Go's os.FileMode bits (the CLI decodes X-Docker-Container-Path-Stat with them)
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20


def go_file_mode(mode: int) -> int:
    out = mode & 0o777
    if stat.S_ISDIR(mode):
        out |= _GO_DIR
    elif stat.S_ISLNK(mode):
        out |= _GO_SYMLINK
    elif stat.S_ISBLK(mode):
        out |= _GO_DEVICE
    elif stat.S_ISCHR(mode):
        out |= _GO_DEVICE | _GO_CHARDEV
    elif stat.S_ISFIFO(mode):
        out |= _GO_PIPE
    elif stat.S_ISSOCK(mode):
        out |= _GO_SOCKET
    if mode & stat.S_ISUID:
        out |= _GO_SETUID
    if mode & stat.S_ISGID:
        out |= _GO_SETGID
    if mode & stat.S_ISVTX:
        out |= _GO_STICKY
    return out


def container_abs(path: str) -> str:
    """The path as an absolute container path, keeping a trailing `/` or `/.`."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise InvalidParameter("path is required" if not path else f"invalid path {path!r}")
    clean = posixpath.normpath("/" + path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if path.endswith("/.") and clean != "/":
        return clean + "/."
    if path.endswith("/") and clean != "/":
        return clean + "/"
    return clean


def resolve(path: str) -> tuple[str, str]:
    """(absolute container path, path to use from our root) with the last part unresolved."""
    abs_path = container_abs(path)
    head, base = posixpath.split(abs_path)
    rdir = secure_join("/", head)
    return abs_path, (rdir.rstrip("/") + "/" + base) if base else rdir


def base_name(abs_path: str) -> str:
    if abs_path.endswith("/."):
        return "."
    b = posixpath.basename(abs_path.rstrip("/"))
    return b or "."


def path_stat(path: str, container: str) -> tuple[str, dict[str, Any]]:
    """Resolve and stat `path`: (our path to it, the X-Docker-Container-Path-Stat object)."""
    abs_path, ours = resolve(path)
    try:
        st = os.lstat(ours)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"Could not find the file {path} in container {container}") from None
    link = ""
    if stat.S_ISLNK(st.st_mode):
        link = secure_join("/", abs_path)
    name = base_name(abs_path)
    return ours, {"name": name if name != "." or abs_path == "/" else ".", "size": st.st_size,
                  "mode": go_file_mode(st.st_mode), "mtime": rfc3339_nano(st.st_mtime_ns),
                  "linkTarget": link}


# -- jobs (run in the worker child; `out` is the reply pipe, `inp` the input pipe) -----------

def stat_job(path: str, container: str):
    def job(out: int, inp: int) -> None:
        _, st = path_stat(path, container)
        send_header(out, {"ok": True, "stat": st})
    return job


def get_job(path: str, container: str):
    def job(out: int, inp: int) -> None:
        ours, st = path_stat(path, container)
        abs_path = container_abs(path)
        send_header(out, {"ok": True, "stat": st})
        tar = TarOut(out)
        write_tree(tar, ours, base_name(abs_path))
        tar.close()
    return job


def put_job(path: str, container: str, copy_uid_gid: bool):
    def job(out: int, inp: int) -> None:
        abs_path = container_abs(path)
        dest = secure_join("/", abs_path)
        try:
            st = os.stat(dest)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"Could not find the file {path} in container {container}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidParameter("extraction point is not a directory")
        if not os.access(dest, os.W_OK) and _readonly(dest):
            raise OSError(30, "read-only file system")
        send_header(out, {"ok": True, "ready": True})
        try:
            with os.fdopen(inp, "rb", buffering=1 << 20) as src:
                extract_layer(src, dest, whiteouts="apply", same_owner=copy_uid_gid)
        except BaseException as e:  # noqa: BLE001 - reported as the final line
            from .worker import error_header
            send_header(out, error_header(e))
            return
        send_header(out, {"ok": True})
    return job


def _readonly(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def export_job():
    def job(out: int, inp: int) -> None:
        send_header(out, {"ok": True})
        tar = TarOut(out)
        # one_fs: under --userns-remap a running container's /proc, /sys and /dev are locked to
        # its rootfs in its mount namespace (mounted before it joined its user namespace), so
        # the worker cannot detach them: they are left out here instead.
        write_tree(tar, "/", "", root_entry=False, one_fs=True)
        tar.close()
    return job
