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
    """What to mount for `c`'s root: a Mount for the runtime's child, or None when it is ready."""
    from ..runtime.mounts import Mount

    if c.driver == "vfs":
        return None  # the rootfs is a plain copy, made at create

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


# -- vfs: plain copies, for hosts where overlayfs cannot be mounted ------------------------------

def overlay_works(scratch: str) -> bool:
    """Mount a throwaway overlay under `scratch` (in the data root's filesystem) and see."""
    import shutil
    from ..linux import syscalls

    dirs = {n: os.path.join(scratch, n) for n in ("lower", "upper", "work", "merged")}
    try:
        for d in dirs.values():
            os.makedirs(d, exist_ok=True)
        syscalls.mount("overlay", dirs["merged"], "overlay", 0,
                       f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}")
        syscalls.umount2(dirs["merged"], syscalls.MNT_DETACH)
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _is_whiteout(st: os.stat_result) -> bool:
    import stat
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _remove(path: str) -> None:
    import shutil
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    import stat
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_entry(src: str, dst: str, st: os.stat_result) -> None:
    import shutil
    import stat

    mode = st.st_mode
    if stat.S_ISDIR(mode):
        try:
            if not stat.S_ISDIR(os.lstat(dst).st_mode):
                _remove(dst)
                os.mkdir(dst)
        except FileNotFoundError:
            os.mkdir(dst)
    else:
        _remove(dst)
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISREG(mode):
            shutil.copyfile(src, dst, follow_symlinks=False)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(dst)
        else:
            os.mknod(dst, mode, st.st_rdev)
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(mode):
        os.chmod(dst, stat.S_IMODE(mode))
    for name in _xattrs(src):
        if name.startswith("trusted.overlay."):
            continue
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
        except OSError:
            pass


def _xattrs(path: str) -> list[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []


def vfs_build(lower_dirs: list[str], target: str) -> None:
    """Flatten overlay-format layers (top-most first, as overlay wants) into `target`.

    Whiteouts (0/0 char devices) delete what lower layers put there; an opaque directory
    (`trusted.overlay.opaque=y`) hides the lower directory's contents.
    """
    for layer in reversed(lower_dirs):
        for root, dirs, files in os.walk(layer):
            rel = os.path.relpath(root, layer)
            troot = target if rel == "." else os.path.join(target, rel)
            for name in dirs + files:
                src = os.path.join(root, name)
                dst = os.path.join(troot, name)
                st = os.lstat(src)
                if _is_whiteout(st):
                    _remove(dst)
                    continue
                if name in dirs:
                    try:
                        opaque = os.getxattr(src, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
                    except OSError:
                        opaque = False
                    if opaque:
                        _remove(dst)
                _copy_entry(src, dst, st)
            # dir mtimes last would be nicer; content is what matters for a fallback
