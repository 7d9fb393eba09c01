"""The engine's side of cp, export, diff, commit, copy-up and `system df`.

Workers for a *stopped* container mount its overlay in a private namespace, so they take the
container's lock (the one `start` takes): the container cannot start, and mount the same upper
dir, while a cp or export of it is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from typing import Any, AsyncIterator

from .. import __version__
from ..errors import Conflict, InvalidParameter
from ..monitor.logfile import rfc3339_nano
from . import archive as _archive
from . import changes as _changes
from .worker import View, Worker, raise_from_header, spawn
from ..userns import hooks as userns_hooks


def _ok(w: Worker) -> Any:
    async def ok() -> bool:
        return await w.wait() == 0
    return ok


def _rootfs_options(c: Any) -> tuple[str, ...]:
    from ..engine.rootfs import overlay_options
    return overlay_options(list(c.lower_dirs), c.upper_dir, c.work_dir)


class ContainerFS:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    # -- entering a container --------------------------------------------------------------------
    def view(self, c: Any, *, chroot: bool = True) -> View:
        running = c.state.Running and c.state.Pid > 0
        binds = []
        for m in getattr(c, "mounts", None) or []:
            if m.get("Type") in ("bind", "volume") and m.get("Source"):
                binds.append((m["Source"], m["Destination"], bool(m.get("RW", True))))
        # The files the runtime binds over /etc (as Docker's network mounts): a stopped
        # container's `cp` shows them too.
        for name in ("hostname", "hosts", "resolv.conf"):
            binds.append((os.path.join(c.dir, name), f"/etc/{name}", True))
        return View(pid=container_ns_pid(c.state.Pid) if running else 0, driver=c.driver,
                    rootfs=c.rootfs,
                    overlay_options=() if c.driver == "vfs" else _rootfs_options(c),
                    readonly=bool(c.host_config.get("ReadonlyRootfs")), binds=binds,
                    chroot=chroot,
                    # copy-up (chroot=False) copies host-side owners as they are: no userns
                    userns=userns_hooks.worker_userns(c.host_config) if chroot else None)

    @contextlib.asynccontextmanager
    async def _worker(self, c: Any, job: Any, *, with_input: bool = False,
                      pure_rootfs: bool = False, chroot: bool = True,
                      locked: bool = False) -> AsyncIterator[Worker]:
        running = c.state.Running and c.state.Pid > 0
        lock = None if running or locked else self.engine.containers._lock(c.id)
        if lock is not None:
            await lock.acquire()
        try:
            w = spawn(self.view(c, chroot=chroot), job, with_input=with_input,
                      pure_rootfs=pure_rootfs)
            try:
                yield w
            finally:
                if w._status is None:
                    w.kill()
                await w.close()
        finally:
            if lock is not None:
                lock.release()

    # -- cp ---------------------------------------------------------------------------------------
    async def stat(self, ref: str, path: str) -> dict[str, Any]:
        c = self.engine.containers.get(ref)
        _archive.container_abs(path)
        async with self._worker(c, _archive.stat_job(path, ref)) as w:
            h = await w.header()
        raise_from_header(h)
        return h["stat"]

    @contextlib.asynccontextmanager
    async def archive(self, ref: str, path: str) -> AsyncIterator[tuple[dict, AsyncIterator[bytes], Any]]:
        """`GET /containers/{id}/archive`: (stat, tar chunks, ok) where `await ok()` after the
        chunks says whether the worker finished cleanly; errors come before the stat."""
        c = self.engine.containers.get(ref)
        _archive.container_abs(path)
        async with self._worker(c, _archive.get_job(path, ref)) as w:
            h = await w.header()
            raise_from_header(h)
            yield h["stat"], w.chunks(), _ok(w)

    async def extract(self, ref: str, path: str, body: AsyncIterator[bytes],
                      copy_uid_gid: bool = False) -> None:
        """`PUT /containers/{id}/archive`: extract a tar into the directory `path`."""
        c = self.engine.containers.get(ref)
        _archive.container_abs(path)
        if c.host_config.get("ReadonlyRootfs") and not self._under_rw_mount(c, path):
            raise _forbidden()
        async with self._worker(c, _archive.put_job(path, ref, copy_uid_gid), with_input=True) as w:
            h = await w.header()
            raise_from_header(h)
            await w.feed(body)
            h = await w.header()
        raise_from_header(h)

    @staticmethod
    def _under_rw_mount(c: Any, path: str) -> bool:
        p = _archive.container_abs(path).rstrip("/.") or "/"
        for m in getattr(c, "mounts", None) or []:
            d = m.get("Destination", "")
            if m.get("RW", True) and (p == d or p.startswith(d.rstrip("/") + "/")):
                return True
        return False

    # -- export -----------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def export(self, ref: str) -> AsyncIterator[tuple[AsyncIterator[bytes], Any]]:
        c = self.engine.containers.get(ref)
        async with self._worker(c, _archive.export_job(), pure_rootfs=True) as w:
            raise_from_header(await w.header())
            yield w.chunks(), _ok(w)

    # -- copy-up (called from start, under the container's lock) ---------------------------------
    async def copyup(self, c: Any, pairs: list[tuple[str, str]]) -> list[str]:
        from ..volumes.copyup import copyup_job
        async with self._worker(c, copyup_job(c.rootfs, pairs), pure_rootfs=True, chroot=False,
                                locked=True) as w:
            h = await w.header()
        raise_from_header(h)
        return h.get("copied", [])

    # -- diff -------------------------------------------------------------------------------------
    async def changes(self, ref: str) -> list[dict]:
        c = self.engine.containers.get(ref)
        loop = asyncio.get_running_loop()
        if c.driver == "vfs":
            lowers = self._image_dirs(c)
            return await loop.run_in_executor(None, _changes.vfs_changes, c.rootfs, lowers)
        return await loop.run_in_executor(None, _changes.overlay_changes, c.upper_dir,
                                          list(c.lower_dirs))

    def _image_dirs(self, c: Any) -> list[str]:
        return [str(p) for p in self.engine.images.resolve(c.image_id).layer_dirs]

    # -- commit -----------------------------------------------------------------------------------
    async def commit(self, ref: str, *, repo: str = "", tag: str = "", author: str = "",
                     comment: str = "", changes: list[str] | None = None, pause: bool = True,
                     config: dict | None = None) -> str:
        from ..images.changes import apply_changes
        from ..reference import parse as parse_ref

        c = self.engine.containers.get(ref)
        if c.state.Status == "removing":
            raise Conflict(f"cannot commit container {c.id[:12]}: removal in progress")
        target = None
        if repo:
            r = parse_ref(repo)
            if r.digest is not None:
                raise InvalidParameter("refusing to create a tag with a digest reference")
            target = (r.with_tag(tag) if tag else r.with_default_tag()).familiar()
        elif tag:
            raise InvalidParameter("refusing to create a tag with no repository")
        from ..engine.createconfig import check_config
        check_config(config)  # Go-shaped types, or 400, as dockerd's decoder
        new_cfg = dict(c.config)
        new_cfg.update(config or {})
        new_cfg = apply_changes(new_cfg, list(changes or []))
        image = self.engine.images.resolve(c.image_id)
        parent_chain = image.chain_ids[-1] if image.chain_ids else None
        frozen = await self._freeze(c) if pause and c.state.Running else None
        try:
            layer = await asyncio.get_running_loop().run_in_executor(
                None, self._make_layer, c, parent_chain)
        finally:
            if frozen:
                await self._thaw(frozen)
        created = rfc3339_nano(time.time_ns())
        img = image.config
        history = list(img.get("history") or [])
        entry: dict[str, Any] = {"created": created}
        if author:
            entry["author"] = author
        cmd = c.config.get("Cmd") or []
        if cmd:
            entry["created_by"] = " ".join(cmd if isinstance(cmd, list) else [cmd])
        if comment:
            entry["comment"] = comment
        diff_ids = list((img.get("rootfs") or {}).get("diff_ids") or [])
        if layer is None:
            entry["empty_layer"] = True
        else:
            diff_ids.append(layer.diff_id)
        history.append(entry)
        cfg: dict[str, Any] = {
            "architecture": img.get("architecture") or "amd64",
            "author": author,
            "config": new_cfg,
            "container": c.id,
            "created": created,
            "docker_version": __version__,
            "history": history,
            "os": img.get("os") or "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        if comment:
            cfg["comment"] = comment
        if img.get("variant"):
            cfg["variant"] = img["variant"]
        try:
            return self.engine.images.create_image(cfg, parent=c.image_id, ref=target)
        except BaseException:
            if layer is not None:
                self.engine.images.release_layers([layer.chain_id])
            raise

    def _make_layer(self, c: Any, parent_chain: str | None) -> Any:
        """The rw layer as a new image layer (None when nothing changed): the tar is written
        by one thread into a pipe the layer store reads, so nothing is spooled to disk."""
        if c.driver == "vfs":
            lowers = self._image_dirs(c)
            chg = _changes.vfs_changes(c.rootfs, lowers)
            if not chg:
                return None
            writer = lambda fd: _changes.write_changes_tar(c.rootfs, chg, fd)  # noqa: E731
        else:
            try:
                if not os.listdir(c.upper_dir):
                    return None
            except FileNotFoundError:
                return None
            from ..archive import write_layer_tar

            def writer(fd: int) -> None:
                with os.fdopen(fd, "wb", closefd=False, buffering=1 << 20) as f:
                    write_layer_tar(c.upper_dir, f, owner=userns_hooks.tar_owner())
        r, w = os.pipe2(os.O_CLOEXEC)
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                writer(w)
            except BaseException as e:  # noqa: BLE001 - re-raised by the consumer
                failure.append(e)
            finally:
                os.close(w)

        t = threading.Thread(target=produce, name="commit-tar", daemon=True)
        t.start()
        try:
            with os.fdopen(r, "rb", buffering=1 << 20) as src:
                layer = self.engine.images.add_layer(parent_chain, src)
        finally:
            t.join()
        if failure:
            self.engine.images.release_layers([layer.chain_id])
            raise failure[0]
        return layer

    # -- pause for commit (the cgroup freezer) -----------------------------------------------------
    async def _freeze(self, c: Any) -> str | None:
        """Freeze the container's cgroup if it has one of its own; returns the control file."""
        path = _freezer_file(c)
        if path is None:
            return None
        try:
            with open(path, "w") as f:
                f.write("FROZEN" if path.endswith("freezer.state") else "1")
        except OSError:
            return None
        for _ in range(100):  # v1 passes through FREEZING
            if not path.endswith("freezer.state"):
                break
            with open(path) as f:
                if f.read().strip() == "FROZEN":
                    break
            await asyncio.sleep(0.01)
        return path

    async def _thaw(self, path: str) -> None:
        try:
            with open(path, "w") as f:
                f.write("THAWED" if path.endswith("freezer.state") else "0")
        except OSError:
            pass


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            pass
    return out


def container_ns_pid(pid: int) -> int:
    """A pid inside the container's own mount namespace, starting from the recorded pid.

    With sampan's runtime that is the container's init. With runc/crun the recorded pid is the
    runtime's process, which stays in the host's namespace: entering *that* would make `cp`
    act on the host. So the process tree is searched for the first one whose mount namespace
    differs from ours, and no namespace at all is an error, never a fallback to the host.
    """
    try:
        ours = os.readlink("/proc/self/ns/mnt")
    except OSError as e:
        raise Conflict(f"cannot read our mount namespace: {e}") from None
    todo, seen = [pid], set()
    while todo and len(seen) < 64:
        p = todo.pop(0)
        if p in seen:
            continue
        seen.add(p)
        try:
            if os.readlink(f"/proc/{p}/ns/mnt") != ours:
                return p
        except OSError:
            continue
        todo += _children(p)
    raise Conflict(f"container process {pid} is not in a mount namespace of its own")


def _freezer_file(c: Any) -> str | None:
    if c.state.Paused:
        return None  # already frozen by `pause`: leave it to its owner
    try:
        with open(f"/proc/{c.state.Pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        hid, _, rest = line.partition(":")
        ctrls, _, cg = rest.partition(":")
        # Only a cgroup that is the container's own: never freeze a shared (or our own) one.
        if c.id not in cg:
            continue
        if "freezer" in ctrls.split(","):
            p = f"/sys/fs/cgroup/freezer{cg}/freezer.state"
        elif hid == "0":
            base = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
            p = f"{base}{cg}/cgroup.freeze"
        else:
            continue
        if os.path.exists(p):
            return p
    return None


def _forbidden() -> Exception:
    from ..errors import Forbidden
    return Forbidden("container rootfs is marked read-only")
