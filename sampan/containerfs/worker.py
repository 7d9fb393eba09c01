"""A forked worker that sees a container's filesystem as the container does.

cp, export and volume copy-up must resolve paths inside the container's root, with its
symlinks confined to it, and must never block the daemon's event loop. So each job runs in a
child forked from the daemon that first *enters* the container's view:

- running container: `setns` into `/proc/<pid>/ns/mnt` (the kernel then puts our root and cwd
  at the container's root: every path, every symlink resolves inside it; its volumes are
  there too). For export, a private copy of that namespace has every submount detached, so
  only the rootfs itself is left.
- stopped container: a private mount namespace of our own, the overlay mounted at the
  container's `merged` dir (vfs: the plain rootfs dir), the container's volumes and binds
  bound over their mountpoints where those exist, then `chroot`.

The child talks back over one pipe: a JSON header line (`{"ok": ...}` or `{"error": msg,
"kind": "NotFound"}`), then an optional raw payload (a tar stream). Input (a tar for cp into
the container) arrives on a second pipe. Everything the child needs is imported before the
fork: an import in the child could deadlock on a lock another daemon thread held at fork time.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import gc
import json
import os
import traceback
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from .. import errors
from ..linux import syscalls as sc
from ..runtime.mounts import Mount, perform
from ..runtime.rootfs import secure_join
from ..linux.mountinfo import mount_points
from ..userns import hooks as _userns_hooks

_KINDS = {cls.__name__: cls for cls in (errors.NotFound, errors.InvalidParameter, errors.Conflict,
                                         errors.Forbidden, errors.Internal, errors.Unavailable)}


@dataclass
class View:
    """What the worker needs to enter a container's filesystem (plain data, fork-safe)."""
    pid: int = 0                        # >0: running, enter its mount namespace
    driver: str = "overlay2"
    rootfs: str = ""
    overlay_options: tuple[str, ...] = ()
    readonly: bool = False
    binds: list[tuple[str, str, bool]] = field(default_factory=list)  # (host src, dest, rw)
    chroot: bool = True                 # False: stay on the host's `/` (copy-up writes there)
    userns: dict | None = None          # --userns-remap: the IdMap (json) to see files through


def error_header(e: BaseException) -> dict[str, Any]:
    if isinstance(e, errors.SampanError):
        return {"error": str(e), "kind": type(e).__name__}
    if isinstance(e, OSError):
        if e.errno == errno.EROFS:
            return {"error": "container rootfs is marked read-only", "kind": "Forbidden"}
        if e.errno == errno.ENOENT:
            return {"error": str(e), "kind": "NotFound"}
        return {"error": f"{e.strerror or e}", "kind": "InvalidParameter"}
    return {"error": f"{type(e).__name__}: {e}", "kind": "Internal"}


def raise_from_header(h: dict[str, Any]) -> None:
    if "error" in h:
        raise _KINDS.get(h.get("kind", ""), errors.Internal)(h["error"])


def enter(view: View, *, pure_rootfs: bool = False) -> None:
    """In the child: make `/` the container's root (see module docstring)."""
    # --userns-remap: the user namespace to see files through, opened while /proc is still
    # the host's (joined last: see userns.hooks.worker_userns_fd).
    userns_fd = _userns_hooks.worker_userns_fd(view.pid, view.userns)
    if view.pid > 0:
        points = _mount_points(view.pid) if pure_rootfs else []
        fd = os.open(f"/proc/{view.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, sc.CLONE_NEWNS)
        finally:
            os.close(fd)
        os.chdir("/")
        if userns_fd is not None:
            # Before our own copy of its mount namespace: made from inside the container's
            # user namespace, the copy's mounts are not locked, so the submounts can go.
            _userns_hooks.worker_join(userns_fd)
        if pure_rootfs:
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            _detach_submounts(points)
        return
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    root = view.rootfs
    if view.driver != "vfs":
        opts = view.overlay_options + (("ro",) if view.readonly else ())
        perform(Mount("overlay", "overlay", root, opts))
    else:
        sc.mount(root, root, None, sc.MS_BIND)
        if view.readonly:
            sc.mount(None, root, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
    if not pure_rootfs:
        for src, dest, rw in view.binds:
            try:
                target = secure_join(root, dest)
                if not os.path.lexists(target) or os.path.islink(target):
                    continue  # never started: no mountpoint to use, and none is made
                if os.path.isdir(src) != os.path.isdir(target):
                    continue
                sc.mount(src, target, None, sc.MS_BIND | sc.MS_REC)
                if not rw:
                    sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
            except OSError:
                continue
    if userns_fd is not None:  # before chroot: a chrooted process may not join a userns
        _userns_hooks.worker_join(userns_fd)
    if view.chroot:
        os.chroot(root)
        os.chdir("/")


def _mount_points(pid: int) -> list[str]:
    """The container's mount points, as its own root sees them. Read before `setns`: inside,
    /proc belongs to the container's pid namespace, where we have no /proc/self."""
    return mount_points(pid)


def _detach_submounts(points: list[str]) -> None:
    for mp in sorted({p for p in points if p != "/"}, key=lambda p: p.count("/"), reverse=True):
        try:
            sc.umount2(mp, sc.MNT_DETACH)
        except OSError:
            pass


class _WriteProto(asyncio.streams.FlowControlMixin, asyncio.Protocol):
    """A pipe writer with drain() (the protocol StreamWriter expects)."""


class Worker:
    """The daemon's side of one forked job."""

    def __init__(self, pid: int, out_fd: int, in_fd: int | None) -> None:
        self.pid = pid
        self._reader: asyncio.StreamReader | None = None
        self._transport: Any = None
        self._out_fd = out_fd
        self.in_fd = in_fd
        self._status: int | None = None

    async def _ensure_reader(self) -> asyncio.StreamReader:
        if self._reader is None:
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader(limit=1 << 20, loop=loop)
            proto = asyncio.StreamReaderProtocol(reader, loop=loop)
            self._transport, _ = await loop.connect_read_pipe(lambda: proto, os.fdopen(self._out_fd, "rb", 0))
            self._reader = reader
        return self._reader

    async def header(self) -> dict[str, Any]:
        r = await self._ensure_reader()
        line = await r.readline()
        if not line:
            await self.wait()
            return {"error": f"worker exited ({self._status}) without answering", "kind": "Internal"}
        return json.loads(line)

    async def chunks(self, size: int = 1 << 20) -> AsyncIterator[bytes]:
        r = await self._ensure_reader()
        while True:
            data = await r.read(size)
            if not data:
                return
            yield data

    async def feed(self, source: AsyncIterator[bytes]) -> None:
        """Copy `source` into the child's input pipe (closed at the end)."""
        assert self.in_fd is not None
        loop = asyncio.get_running_loop()
        f = os.fdopen(self.in_fd, "wb", 0)
        self.in_fd = None
        transport, proto = await loop.connect_write_pipe(_WriteProto, f)
        writer = asyncio.StreamWriter(transport, proto, None, loop)
        broken = False
        try:
            async for data in source:
                # After the child stops reading (a refused tar) the body is still drained, so
                # the connection stays in step for the next request.
                if broken or transport.is_closing():
                    broken = True
                    continue
                try:
                    writer.write(data)
                    await writer.drain()
                except (BrokenPipeError, ConnectionResetError):
                    broken = True
        finally:
            transport.close()

    async def wait(self) -> int:
        if self._status is None:
            _, st = await asyncio.get_running_loop().run_in_executor(None, os.waitpid, self.pid, 0)
            self._status = os.waitstatus_to_exitcode(st)
        return self._status

    async def close(self) -> int:
        if self.in_fd is not None:
            os.close(self.in_fd)
            self.in_fd = None
        if self._transport is not None:
            self._transport.close()
        elif self._out_fd >= 0:
            os.close(self._out_fd)
        self._out_fd = -1
        return await self.wait()

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass


def spawn(view: View | None, job: Callable[[int, int], None], *, with_input: bool = False,
          pure_rootfs: bool = False) -> Worker:
    """Fork a child that enters `view` (None: stays on the host) and runs `job(out_fd, in_fd)`.

    `job` writes the header line itself (see `send_header`); an exception before that is sent
    as an error header.
    """
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    in_r, in_w = os.pipe2(os.O_CLOEXEC) if with_input else (-1, -1)
    for fd in (out_w, in_w):
        _grow_pipe(fd)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            gc.disable()  # the child shares the daemon's heap copy-on-write; keep it shared
            os.close(out_r)
            if in_w >= 0:
                os.close(in_w)
            try:
                if view is not None:
                    enter(view, pure_rootfs=pure_rootfs)
                job(out_w, in_r)
                code = 0
            except BaseException as e:  # noqa: BLE001 - everything goes back as a header
                if not _sent[0]:  # mid-payload, the exit status tells the daemon instead
                    try:
                        send_header(out_w, error_header(e))
                    except OSError:
                        pass
                if not isinstance(e, (errors.SampanError, OSError)):
                    try:
                        os.write(2, traceback.format_exc().encode())
                    except OSError:
                        pass
        finally:
            os._exit(code)
    os.close(out_w)
    if in_r >= 0:
        os.close(in_r)
    return Worker(pid, out_r, in_w if with_input else None)


_F_SETPIPE_SZ = 1031


def _grow_pipe(fd: int) -> None:
    """1 MiB pipes: a tar stream then moves in a few large writes instead of 16 small ones
    per megabyte (each a wake-up of the daemon's event loop)."""
    if fd < 0:
        return
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size for an unprivileged caller: keep the default


_sent = [False]  # in a child: whether its header line went out


def send_header(fd: int, obj: dict[str, Any]) -> None:
    _sent[0] = True
    data = json.dumps(obj).encode() + b"\n"
    while data:
        n = os.write(fd, data)
        data = data[n:]
