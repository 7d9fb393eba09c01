"""Building a container's filesystem view inside its new mount namespace.

Runs in the forked child between unshare(CLONE_NEWNS) and exec. Every path taken from the
spec or the image is resolved with `secure_join`, which treats the rootfs as `/`: symlinks
and `..` in an image can never make us create or mount something outside the rootfs.
"""

from __future__ import annotations

import errno
import os
import stat

from ..linux import syscalls as sc
from .mounts import Mount, parse_options, perform, _locked_flags

_MAX_LINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    """`root`/`unsafe` with every symlink resolved as if `root` were `/` (never escaping)."""
    root = root.rstrip("/") or "/"
    todo = [p for p in unsafe.split("/") if p and p != "."]
    todo.reverse()
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        cur = root + "/" + "/".join(done + [part]) if root != "/" else "/" + "/".join(done + [part])
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            done.append(part)
            continue
        except NotADirectoryError:
            done.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), unsafe)
        target = os.readlink(cur)
        if target.startswith("/"):
            done = []
        extra = [p for p in target.split("/") if p and p != "."]
        todo.extend(reversed(extra))
    tail = "/".join(done)
    if root == "/":
        return "/" + tail
    return root + ("/" + tail if tail else "")


def make_mountpoint(root: str, dest: str, is_dir: bool) -> str:
    """Resolve `dest` inside `root` and create it (a directory or an empty file)."""
    path = secure_join(root, dest)
    if is_dir:
        os.makedirs(path, 0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        if not os.path.lexists(path):
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            os.close(fd)
    return path


def _mount_cgroup(target: str, options: list[str]) -> None:
    """/sys/fs/cgroup as the container sees it, through its cgroup namespace.

    Pure cgroup v2 hosts get one cgroup2 mount. v1/hybrid hosts get what runc builds: a
    tmpfs with one mount per hierarchy listed in /proc/self/cgroup (v2 under `unified`).
    """
    po = parse_options(options)
    flags = po.flags & ~sc.MS_RDONLY
    ro = po.flags & sc.MS_RDONLY
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        sc.mount("cgroup2", target, "cgroup2", flags | ro)
        return
    sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=755")
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        hid, _, rest = line.partition(":")
        ctrls, _, _ = rest.partition(":")
        if hid == "0" or not ctrls:
            if not os.path.isdir("/sys/fs/cgroup/unified"):
                continue
            sub, fstype, data = "unified", "cgroup2", None
        elif ctrls.startswith("name="):
            sub, fstype, data = ctrls[5:], "cgroup", "none," + ctrls
        else:
            sub, fstype, data = ctrls, "cgroup", ctrls
        if "/" in sub or sub in ("", ".", ".."):
            continue
        dest = os.path.join(target, sub)
        os.mkdir(dest, 0o755)
        try:
            sc.mount("cgroup", dest, fstype, flags | ro, data)
        except OSError:
            os.rmdir(dest)  # a hierarchy we may not mount here: leave it out, as runc does
    if ro:
        sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_BIND
                 | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def mount_one(root: str, m: dict) -> None:
    dest = m.get("destination", "")
    mtype = m.get("type") or ""
    source = m.get("source") or mtype or "none"
    options = list(m.get("options") or [])
    try:
        po = parse_options(options)
        if mtype == "bind" or po.is_bind:
            src_is_dir = os.path.isdir(source)
            path = make_mountpoint(root, dest, src_is_dir)
            perform(Mount("bind", source, path, tuple(options) if po.is_bind
                          else ("rbind",) + tuple(options)))
            return
        path = make_mountpoint(root, dest, True)
        if mtype == "cgroup":
            _mount_cgroup(path, options)
            return
        try:
            perform(Mount(mtype, source, path, tuple(options)))
        except PermissionError:
            if mtype != "sysfs":
                raise
            # No sysfs of our own (e.g. host network namespace): bind the host's, as runc does.
            perform(Mount("bind", "/sys", path, ("rbind", "rslave") + tuple(
                o for o in options if o == "ro")))
    except OSError as e:
        raise RuntimeError(f"error mounting {source!r} to rootfs at {dest!r}: "
                           f"{e.strerror or e}") from None


def create_devices(root: str, devices: list[dict]) -> None:
    old = os.umask(0)
    try:
        for d in devices:
            path = make_mountpoint(root, os.path.dirname(d["path"]), True)
            path = secure_join(root, d["path"])
            if os.path.lexists(path):
                continue
            kind = stat.S_IFBLK if d.get("type") == "b" else stat.S_IFCHR
            mode = int(d.get("fileMode", 0o666)) & 0o7777
            try:
                os.mknod(path, mode | kind, os.makedev(int(d["major"]), int(d["minor"])))
                os.chown(path, int(d.get("uid", 0)), int(d.get("gid", 0)))
            except PermissionError:
                # No CAP_MKNOD (e.g. nested in a restricted container): bind the host's node.
                fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
                os.close(fd)
                sc.mount(d["path"], path, None, sc.MS_BIND)
    finally:
        os.umask(old)


_DEV_LINKS = (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
              ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"),
              ("pts/ptmx", "ptmx"))


def create_dev_links(root: str) -> None:
    dev = secure_join(root, "/dev")
    for target, name in _DEV_LINKS:
        try:
            os.symlink(target, os.path.join(dev, name))
        except FileExistsError:
            pass
    if os.path.exists("/proc/kcore"):
        try:
            os.symlink("/proc/kcore", os.path.join(dev, "core"))
        except FileExistsError:
            pass


def bind_console(root: str, tty_path: str) -> None:
    """Bind the container's terminal over /dev/console, as runc does for terminal=true."""
    path = make_mountpoint(root, "/dev/console", False)
    sc.mount(tty_path, path, None, sc.MS_BIND)


def pivot(root: str) -> None:
    """pivot_root into `root` and drop the old root, with the `pivot_root(".", ".")` trick
    (no put_old directory left in the container)."""
    os.chdir(root)
    sc.pivot_root(".", ".")
    # Slave first so detaching the old root cannot propagate unmounts back to the host.
    sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def mask_paths(paths: list[str]) -> None:
    for p in paths:
        try:
            sc.mount("/dev/null", p, None, sc.MS_BIND)
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            sc.mount("tmpfs", p, "tmpfs", sc.MS_RDONLY)


def readonly_paths(paths: list[str]) -> None:
    for p in paths:
        try:
            sc.mount(p, p, None, sc.MS_BIND | sc.MS_REC)
        except FileNotFoundError:
            continue
        sc.mount(None, p, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC
                 | _locked_flags(p))


def readonly_root() -> None:
    sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | _locked_flags("/"))


def write_sysctls(sysctls: dict[str, str]) -> None:
    for key, value in sysctls.items():
        parts = key.split(".")
        if any(p in ("", ".", "..") or "/" in p for p in parts):
            raise ValueError(f"invalid sysctl key {key!r}")
        with open("/proc/sys/" + "/".join(parts), "w") as f:
            f.write(str(value))
