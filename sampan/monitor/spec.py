"""What the daemon hands a monitor: the container's spec and the attached client streams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


@dataclass
class MonitorSpec:
    """Everything the monitor needs, decided by the daemon before the fork."""
    id: str
    spec: dict                      # OCI runtime spec
    rootfs_mount: Any               # sampan.runtime.mounts.Mount or None
    tty: bool
    open_stdin: bool
    stdin_once: bool
    log_path: str
    exit_path: str
    socket_path: str
    bundle: str
    runtime: str = "sampan"         # or an absolute path to runc / crun
    new_pidns: bool = True
    detach_keys: bytes = DEFAULT_DETACH_KEYS
    console_size: tuple[int, int] | None = None  # (height, width): HostConfig.ConsoleSize
    cgroup_dirs: tuple[str, ...] = ()  # the container's cgroup (one dir per v1 hierarchy)
    # where the OOM-kill counters are read at exit: cgroup_dirs, or for runc/crun (which make
    # the group themselves and are not joined to it) the dirs the runtime will use
    oom_dirs: tuple[str, ...] = ()
    log_rotation: tuple[int, int] = (0, 1)  # (max-size bytes or 0, max-file)
    log_driver: str = "json-file"           # or "local" (monitor/locallog.py)
    log_compress: bool = False              # gzip rotated files (monitor/logrotate.py)


@dataclass
class Attach:
    """A hijacked client connection handed to the monitor."""
    fd: int
    stdin: bool
    stdout: bool
    stderr: bool
    leftover: bytes = b""
    detach_keys: bytes | None = None


def parse_detach_keys(spec: str) -> bytes:
    """Docker's `--detach-keys` syntax: comma separated `ctrl-<x>` or single characters."""
    out = bytearray()
    for part in spec.split(","):
        part = part.strip()
        if part.startswith("ctrl-") and len(part) == 6:
            c = part[5]
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c == "@":
                out.append(0)
            elif c in "[\\]^_":
                out.append(27 + "[\\]^_".index(c))
            else:
                raise ValueError(f"invalid detach key {part!r}")
        elif len(part) == 1:
            out.append(ord(part))
        else:
            raise ValueError(f"invalid detach key {part!r}")
    return bytes(out)


