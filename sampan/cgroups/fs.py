"""Small readers and writers for cgroupfs files, shared by both drivers.

Kept free of other sampan imports: the monitor imports this module (to count OOM kills when
a container exits) and must stay cheap to load.
"""

from __future__ import annotations

import errno
import os
import signal
import time

from ..errors import InvalidParameter, SampanError

KNOWN_V1 = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer",
            "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc")


class CgroupError(SampanError):
    """The kernel refused a cgroup write (value out of range, controller busy...)."""


def clean_group(path: str) -> str:
    """A cgroup path under the hierarchy roots: `/sampan/<id>`. `..`, empty parts and odd
    characters are refused, so a hostile `--cgroup-parent` cannot name a directory outside
    the cgroup filesystem or a file inside it."""
    parts = [p for p in path.strip().split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidParameter(f"invalid cgroup path {path!r}")
    for p in parts:
        if p == ".." or "\0" in p or "\n" in p or p.startswith("cgroup.") or len(p) > 255:
            raise InvalidParameter(f"invalid cgroup path {path!r}")
    return "/" + "/".join(parts)


def write(path: str, value: str | int) -> None:
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"cgroup: cannot open {path}: {e.strerror}") from None
    try:
        os.write(fd, data)
    except OSError as e:
        raise CgroupError(f"cgroup: writing {str(value)!r} to {path}: {e.strerror}") from None
    finally:
        os.close(fd)


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def read_int(path: str, default: int = 0) -> int:
    text = read(path).strip()
    if text == "max":
        return -1
    try:
        return int(text)
    except ValueError:
        return default


def read_kv(path: str) -> dict[str, int]:
    """`key value` lines (memory.stat, cpu.stat, memory.events) -> {key: int}."""
    out: dict[str, int] = {}
    for line in read(path).splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v.strip())
        except ValueError:
            pass
    return out


def procs(path: str) -> list[int]:
    return [int(x) for x in read(os.path.join(path, "cgroup.procs")).split() if x.isdigit()]


def mkdirs(root: str, group: str) -> list[str]:
    """Create root/group level by level; returns the directories made (outermost first)."""
    made = []
    cur = root
    for part in group.strip("/").split("/"):
        cur = os.path.join(cur, part)
        try:
            os.mkdir(cur, 0o755)
            made.append(cur)
        except FileExistsError:
            pass
    return made


def remove(path: str, timeout: float = 2.0) -> None:
    """rmdir a cgroup, killing what is left in it first; an exiting container's processes may
    take a moment to leave (EBUSY) even after its init has been reaped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cgroup: cannot remove {path}: {e.strerror}") from None
        for pid in procs(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def enter(dirs: list[str] | tuple[str, ...]) -> None:
    """Move the calling (single-threaded, just forked) process into `dirs`.

    v1: "0" written to `tasks` moves the writer's own thread without the kernel's global
    cgroup_threadgroup_rwsem, whose write side waits a whole RCU grace period (measured
    12 ms per container start and per exec here); for a single-threaded process that is the
    whole process. v2 has only cgroup.procs ("0" = the writer; its getpid() may be 1 in a
    new pid namespace, so never write that)."""
    for d in dirs:
        t = os.path.join(d, "tasks")
        write(t if os.path.exists(t) else os.path.join(d, "cgroup.procs"), 0)


def oom_kills(dirs: list[str] | tuple[str, ...]) -> int:
    """OOM kills recorded in a container's memory cgroup (any of `dirs`): v2 memory.events,
    v1 memory.oom_control (Linux 4.13+). Used by the monitor when the container exits."""
    for d in dirs:
        for name in ("memory.events", "memory.oom_control"):
            p = os.path.join(d, name)
            if os.path.exists(p):
                return read_kv(p).get("oom_kill", 0)
    return 0
