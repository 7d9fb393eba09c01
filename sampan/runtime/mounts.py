"""Mounts as data, and the small executor that performs them.

`Mount` describes one mount(2) (like containerd's `mount.Mount`): the snapshotter returns
one for a container's rootfs and `run_child` performs it inside the container's new mount
namespace, so the merged overlay never appears in the host's mount table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..linux import syscalls as sc


@dataclass(frozen=True)
class Mount:  # describes a mount(2); does not perform it
    type: str
    source: str
    target: str
    options: tuple[str, ...] = ()


# option -> (clear, set): flags an option turns off and on (runc's mountPropagationMapping
# and mount options table, which match mount(8)).
_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (0, sc.MS_RDONLY), "rw": (sc.MS_RDONLY, 0),
    "nosuid": (0, sc.MS_NOSUID), "suid": (sc.MS_NOSUID, 0),
    "nodev": (0, sc.MS_NODEV), "dev": (sc.MS_NODEV, 0),
    "noexec": (0, sc.MS_NOEXEC), "exec": (sc.MS_NOEXEC, 0),
    "sync": (0, sc.MS_SYNCHRONOUS), "async": (sc.MS_SYNCHRONOUS, 0),
    "dirsync": (0, sc.MS_DIRSYNC),
    "remount": (0, sc.MS_REMOUNT),
    "mand": (0, sc.MS_MANDLOCK), "nomand": (sc.MS_MANDLOCK, 0),
    "noatime": (0, sc.MS_NOATIME), "atime": (sc.MS_NOATIME, 0),
    "nodiratime": (0, sc.MS_NODIRATIME), "diratime": (sc.MS_NODIRATIME, 0),
    "relatime": (0, sc.MS_RELATIME), "norelatime": (sc.MS_RELATIME, 0),
    "strictatime": (0, sc.MS_STRICTATIME), "nostrictatime": (sc.MS_STRICTATIME, 0),
    "lazytime": (0, sc.MS_LAZYTIME), "nolazytime": (sc.MS_LAZYTIME, 0),
    "nosymfollow": (0, sc.MS_NOSYMFOLLOW), "symfollow": (sc.MS_NOSYMFOLLOW, 0),
    "bind": (0, sc.MS_BIND), "rbind": (0, sc.MS_BIND | sc.MS_REC),
    "defaults": (0, 0),
}
_PROPAGATION: dict[str, int] = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# Options that mean something to a runtime but never reach the kernel.
_IGNORED = {"tmpcopyup", "notmpcopyup", "newinstance-ignored", "z", "Z", "nocopy"}


@dataclass(frozen=True)
class ParsedOptions:
    flags: int
    data: str
    propagation: tuple[int, ...]

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & sc.MS_BIND)


def parse_options(options: tuple[str, ...] | list[str]) -> ParsedOptions:
    flags = 0
    data: list[str] = []
    prop: list[int] = []
    for opt in options:
        if opt in _FLAGS:
            clear, set_ = _FLAGS[opt]
            flags = (flags & ~clear) | set_
        elif opt in _PROPAGATION:
            prop.append(_PROPAGATION[opt])
        elif opt in _IGNORED:
            continue
        else:
            data.append(opt)
    return ParsedOptions(flags, ",".join(data), tuple(prop))


# Beyond one page the kernel truncates mount data; overlay with many layers hits this.
_MAX_DATA = 4000


def _shorten_overlay(data: str) -> tuple[str, str | None]:
    """Rewrite overlay dirs relative to their common parent (moby's trick for deep images).

    Returns (data, directory to chdir into before mounting, or None).
    """
    parts = data.split(",")
    paths: list[str] = []
    for p in parts:
        key, _, val = p.partition("=")
        if key in ("lowerdir", "upperdir", "workdir"):
            paths.extend(val.split(":"))
    if not paths or not all(os.path.isabs(p) for p in paths):
        return data, None
    base = os.path.commonpath(paths)
    if base == "/":
        return data, None
    out = []
    for p in parts:
        key, eq, val = p.partition("=")
        if key in ("lowerdir", "upperdir", "workdir"):
            val = ":".join(os.path.relpath(x, base) for x in val.split(":"))
        out.append(key + eq + val)
    return ",".join(out), base


def perform(m: Mount, target: str | None = None) -> None:
    """mount(2) `m` at `target` (default m.target): bind, remount for ro, then propagation."""
    dest = target or m.target
    po = parse_options(m.options)
    if po.is_bind:
        sc.mount(m.source, dest, None, po.flags & (sc.MS_BIND | sc.MS_REC))
        # A bind ignores every other flag; they take effect only on a remount of it.
        rest = po.flags & ~(sc.MS_BIND | sc.MS_REC)
        if rest:
            sc.mount(None, dest, None, sc.MS_BIND | sc.MS_REMOUNT | rest | _locked_flags(dest))
    else:
        data = po.data or None
        base = None
        if m.type == "overlay" and data and len(data) > _MAX_DATA:
            data, base = _shorten_overlay(data)
        if base is None:
            sc.mount(m.source, dest, m.type, po.flags, data)
        else:
            cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.chdir(base)
                sc.mount(m.source, dest, m.type, po.flags, data)
            finally:
                os.fchdir(cwd)
                os.close(cwd)
    for p in po.propagation:
        sc.mount(None, dest, None, p)


def _locked_flags(path: str) -> int:
    """Flags already on the mount at `path` that a bind remount must keep (statvfs f_flag
    bits equal the MS_* bits for nosuid/nodev/noexec/atime), else the kernel may refuse."""
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return 0
    return f & (sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOATIME | sc.MS_NODIRATIME
                | sc.MS_RELATIME)
