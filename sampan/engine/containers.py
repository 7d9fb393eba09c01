"""Container lifecycle: create, start, stop, kill, wait, remove, list, inspect, rename, attach.

State lives in SQLite (one row per container, one transaction per change) and in memory for
fast listing. A running container is owned by its monitor process; this service talks to it
over the monitor's socket and learns about exits from the monitor's status stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal as _signal
from typing import Any, AsyncIterator

from ..errors import Conflict, InvalidParameter, NotFound, NotModified
from ..monitor import process as monitor
from ..userns import hooks as userns_hooks
from ..monitor.logfile import parse_rfc3339_nano
from . import createconfig, ipcshm
from .listing import match_labels
from .container import Container, State, new_id, now_rfc3339, random_name, validate_name
from .monitorclient import MonitorLink, monitor_request
from ..events import hooks as event_hooks

log = logging.getLogger("sampan.containers")

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
"""

HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def parse_signal(value: str | int | None, default: int = _signal.SIGKILL) -> int:
    """Docker accepts `KILL`, `SIGKILL`, `9`."""
    if value is None or value == "":
        return default
    if isinstance(value, int):
        sig = value
    else:
        v = value.strip().upper()
        if v.isdigit():
            sig = int(v)
        else:
            name = v if v.startswith("SIG") else "SIG" + v
            try:
                sig = int(getattr(_signal.Signals, name))
            except AttributeError:
                raise InvalidParameter(f"Invalid signal: {value}") from None
    if not 0 < sig < 65:
        raise InvalidParameter(f"Invalid signal: {value}")
    return sig


class ContainerService:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.config = engine.config
        self.db = engine.db
        self.images = engine.images
        self.db.migrate(SCHEMA)
        self._by_id: dict[str, Container] = {}
        self._links: dict[str, MonitorLink] = {}
        self._pending_attach: dict[str, list[monitor.Attach]] = {}
        self._exit_waiters: dict[str, list[asyncio.Future]] = {}
        self._remove_waiters: dict[str, list[asyncio.Future]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._backoff: dict[str, float] = {}  # restart-policy delay, by container id
        self.execs: Any = None  # set by the engine (ExecService)
        for row in self.db.query("SELECT data FROM containers"):
            c = Container.from_row(row["data"])
            self._by_id[c.id] = c
        self.images.set_usage_check(self.users_of_image)

    # -- lookup -------------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        if not ref:
            raise NotFound("No such container: ")
        c = self._by_id.get(ref)
        if c:
            return c
        name = ref.lstrip("/")
        for c in self._by_id.values():
            if c.name == name:
                return c
        matches = [c for c in self._by_id.values() if c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"Multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def all(self) -> list[Container]:
        return list(self._by_id.values())

    def users_of_image(self, image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.state.Running) for c in self._by_id.values() if c.image_id == image_id]

    def counts(self) -> dict[str, int]:
        running = sum(1 for c in self._by_id.values() if c.state.Running and not c.state.Paused)
        paused = sum(1 for c in self._by_id.values() if c.state.Paused)
        return {"Containers": len(self._by_id), "ContainersRunning": running,
                "ContainersPaused": paused, "ContainersStopped": len(self._by_id) - running - paused}

    def _lock(self, cid: str) -> asyncio.Lock:
        lock = self._locks.get(cid)
        if lock is None:
            lock = self._locks[cid] = asyncio.Lock()
        return lock

    def _save(self, c: Container) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO containers (id, name, data) VALUES (?, ?, ?)", c.to_row())

    # -- create -------------------------------------------------------------------------------
    async def create(self, body: Any, name: str | None, platform: str | None = None) -> dict[str, Any]:
        config, host = createconfig.split_body(body)
        if name:
            name = validate_name(name)
            self._check_name_free(name)
        image_ref = config.get("Image") or ""
        if not image_ref:
            raise InvalidParameter("no image specified")
        image = self.images.resolve(image_ref)
        if platform:
            createconfig.check_platform(image.config, image_ref, platform)
        merged = createconfig.merge_image_config(config, image.config.get("config") or {})
        path, args = createconfig.command_of(merged)
        mode = host.get("NetworkMode") or "default"
        net_plan = self.engine.networks.validate_create(merged, host, body.get("NetworkingConfig"))
        host.setdefault("Runtime", self.config.default_runtime)
        if not host.get("Runtime"):
            host["Runtime"] = self.config.default_runtime
        if host["Runtime"] not in ("sampan", "runc", "crun"):
            raise InvalidParameter(f"unknown or invalid runtime name: {host['Runtime']}")
        warnings = self.engine.cgroups.validate(host)  # Docker's 400s before anything exists
        _merge_log_config(host, self.config)  # daemon.json log-driver/log-opts; Docker's checks
        userns_hooks.validate_create(host)  # --userns-remap: privileged, pid=host need --userns=host
        host = createconfig.fill_host_config(host)
        from ..volumes import hooks as volume_hooks
        mounts, made_volumes = volume_hooks.prepare(self.engine, merged, host)
        try:
            return await self._create_with(config, host, merged, image, image_ref, path, args,
                                           mode, name, mounts, warnings, net_plan)
        except BaseException:
            self.engine.volumes.discard(made_volumes)
            raise

    async def _create_with(self, config: dict, host: dict, merged: dict, image: Any,
                           image_ref: str, path: str, args: list, mode: str,
                           name: str | None, mounts: list,
                           warnings: list, net_plan: list) -> dict[str, Any]:
        cid = new_id()
        if not merged.get("Hostname"):
            merged["Hostname"] = cid[:12] if mode != "host" else os.uname().nodename
        if not name:
            name = self._unique_random_name()
        cdir = self.config.containers_dir / cid
        c = Container(id=cid, name=name, created=now_rfc3339(), image=image_ref, image_id=image.id,
                      config=merged, host_config=host, path=path, args=args,
                      lower_dirs=[str(p) for p in image.layer_dirs], dir=str(cdir),
                      mounts=mounts)
        c.driver = self.engine.storage_driver
        tmp = self.config.containers_dir / f".tmp-{cid}"
        for sub in ("upper", "work", "merged"):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        self._write_etc_files(tmp, c)
        if c.driver == "vfs":
            from .rootfs import vfs_build
            try:
                # A full copy of the image: slow for big images, so off the event loop.
                await asyncio.get_running_loop().run_in_executor(
                    None, vfs_build, c.lower_dirs, str(tmp / "merged"))
            except Exception:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        try:
            self._check_name_free(name)  # again: the vfs copy above may have let another in
        except Conflict:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.rename(tmp, cdir)
        try:
            self._save(c)
        except Exception:
            shutil.rmtree(cdir, ignore_errors=True)
            raise
        self._by_id[cid] = c
        self.engine.events.container(c, "create")
        self.engine.networks.on_create(cid, net_plan)
        if c.driver == "vfs":
            warnings.append("storage driver vfs: the container's rootfs is a full copy of its image")
        return {"Id": cid, "Warnings": warnings}

    def _check_name_free(self, name: str, exclude: str | None = None) -> None:
        for other in self._by_id.values():
            if other.name == name and other.id != exclude:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                               f'"{other.id}". You have to remove (or rename) that container to be able to reuse that name.')

    def _unique_random_name(self) -> str:
        names = {c.name for c in self._by_id.values()}
        for _ in range(100):
            n = random_name()
            if n not in names:
                return n
        return random_name() + "_" + new_id()[:6]

    def _write_etc_files(self, cdir: Any, c: Container) -> None:
        host_net = c.network_mode() == "host"
        hostname = c.config.get("Hostname") or c.id[:12]
        (cdir / "hostname").write_text(hostname + "\n")
        if host_net:
            try:
                hosts = open("/etc/hosts").read()
            except OSError:
                hosts = HOSTS
        else:
            hosts = HOSTS
        (cdir / "hosts").write_text(hosts)
        try:
            resolv = open("/etc/resolv.conf").read()
        except OSError:
            resolv = ""
        if not host_net:
            lines = [ln for ln in resolv.splitlines()
                     if not (ln.startswith("nameserver") and (" 127." in ln or " ::1" in ln))]
            if not any(ln.startswith("nameserver") for ln in lines):
                lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
            if self.config.dns:
                lines = [ln for ln in lines if not ln.startswith("nameserver")] + [f"nameserver {d}" for d in self.config.dns]
            resolv = "\n".join(lines) + "\n"
        (cdir / "resolv.conf").write_text(resolv)

    # -- start --------------------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        c = self.get(ref)
        async with self._lock(c.id):
            if c.state.Running:
                raise NotModified("container already started")
            if c.state.Status == "removing":
                raise Conflict(f"cannot start container {c.id[:12]}: removal in progress")
            c.restart_count = 0  # a manual start resets the policy's count (ResetRestartManager)
            self._backoff.pop(c.id, None)
            await self._start_locked(c)

    async def _start_locked(self, c: Container) -> None:
        """Start `c`; on any failure undo what was set up for it (so nothing leaks)."""
        try:
            await self._start_inner(c)
        except BaseException:
            if not c.state.Running:
                await self._undo_start(c)
            raise

    async def _undo_start(self, c: Container) -> None:
        from .rootfs import release_rootfs

        for a in self._pending_attach.pop(c.id, []):  # attached clients see the end
            os.close(a.fd)
        release_rootfs(c)
        ipcshm.release(c)
        await self.engine.networks.release(c)
        await asyncio.get_running_loop().run_in_executor(None, self.engine.cgroups.release, c)
        if c.host_config.get("AutoRemove") and c.id in self._by_id:
            # As Docker: a --rm container that could not start is removed, which also
            # releases a client waiting for condition=removed.
            asyncio.get_running_loop().create_task(self._remove_quietly(c.id))

    async def _remove_quietly(self, cid: str) -> None:
        try:
            await self.remove(cid, force=True, volumes=True)
        except Exception:  # noqa: BLE001 - already gone, or logged: nothing waits on this
            log.debug("auto-removing %s after a failed start", cid, exc_info=True)

    def _effective_host_config(self, c: Container) -> dict:
        """HostConfig with the daemon's defaults applied (daemon.json `no-new-privileges`,
        which a container's own `no-new-privileges=false` overrides, as in dockerd)."""
        hc = c.host_config
        opts = list(hc.get("SecurityOpt") or [])
        if self.config.extra.get("no-new-privileges") and not any(
                o.startswith("no-new-privileges") for o in opts):
            return dict(hc, SecurityOpt=["no-new-privileges"] + opts)
        return hc

    def _joined_namespaces(self, c: Container) -> tuple[dict[str, str], str | None]:
        """`--ipc container:<x>` / `--pid container:<x>`: the other container's namespaces
        (by its init's pid) for build_spec to join instead of creating new ones, and the
        /dev/shm to bind (`c`'s own shareable one, or the IPC donor's)."""
        out = {}
        shm = None
        for kind, key, what in (("ipc", "IpcMode", "IPC"), ("pid", "PidMode", "PID")):
            mode = c.host_config.get(key) or ""
            if not mode.startswith("container:"):
                continue
            other = self.get(mode.split(":", 1)[1])
            if other.id == c.id:
                raise InvalidParameter(f"cannot join own {what} namespace")
            if not other.state.Running or not other.state.Pid:
                raise Conflict(f"cannot join {what} of a non running container: {other.id}")
            if kind == "ipc":
                shm = ipcshm.donor_path(other)
            out[kind] = f"/proc/{other.state.Pid}/ns/{kind}"
        return out, shm or ipcshm.prepare(c)

    async def _start_inner(self, c: Container) -> None:
        from ..runtime.spec import build_spec
        from .rootfs import prepare_rootfs, release_rootfs

        image = self.images.resolve(c.image_id)
        c.lower_dirs = [str(p) for p in image.layer_dirs]
        runtime = c.host_config.get("Runtime") or "sampan"
        runtime_path = "sampan"
        if runtime != "sampan":
            runtime_path = shutil.which(runtime) or ""
            if not runtime_path:
                raise InvalidParameter(f"runtime {runtime} is not installed on this host")
        from ..volumes import hooks as volume_hooks
        mounts = await volume_hooks.start_mounts(self.engine, c)
        etc_files = {"/etc/hosts": f"{c.dir}/hosts", "/etc/hostname": f"{c.dir}/hostname",
                     "/etc/resolv.conf": f"{c.dir}/resolv.conf"}
        net = await self.engine.networks.setup(c)
        try:
            joined, shm_path = self._joined_namespaces(c)
            spec = build_spec(config=c.config, host_config=self._effective_host_config(c),
                              default_seccomp=self.config.seccomp_profile,
                              image_config=image.config.get("config") or {}, rootfs=c.rootfs,
                              hostname=c.config.get("Hostname") or c.id[:12], etc_files=etc_files,
                              container_id=c.id, mounts=mounts, shm_path=shm_path,
                              ns_paths={**net["ns_paths"], **joined})
            userns_hooks.prepare_start(c, spec)
        except Exception:
            await self.engine.networks.release(c)
            raise
        cgroup_dirs = self.engine.cgroups.prepare(c, spec, runtime)
        bundle = c.dir
        rootfs_mount = prepare_rootfs(c, host_namespace=runtime != "sampan")
        if runtime == "sampan":
            _write_json_atomic(os.path.join(bundle, "config.json"), spec)
        else:
            # runc/crun need numeric ids: resolved against the rootfs, mounted by now.
            from ..runtime.oci import write_bundle
            try:
                write_bundle(bundle, spec)
            except Exception:
                release_rootfs(c)
                await self.engine.networks.release(c)
                raise
        try:
            os.unlink(os.path.join(c.dir, "exit.json"))
        except FileNotFoundError:
            pass
        self.config.monitors_dir.mkdir(parents=True, exist_ok=True)
        tty = bool(c.config.get("Tty"))
        log_set = _log_settings(c)
        ms = monitor.MonitorSpec(
            id=c.id, spec=spec, rootfs_mount=rootfs_mount, tty=tty,
            open_stdin=bool(c.config.get("OpenStdin")),
            # As dockerd (container/stream/attach.go): StdinOnce closes the container's stdin
            # when the attached client's input ends only without a tty; on a tty that end is a
            # detach (the docker CLI just closes its connection on ctrl-p ctrl-q), and the
            # shell must keep running.
            stdin_once=bool(c.config.get("StdinOnce")) and not tty,
            # Detach keys are matched on a terminal only; piped input to a non-tty container
            # is data, and binary data holds any byte pair (ctrl-p ctrl-q included).
            detach_keys=monitor.DEFAULT_DETACH_KEYS if tty else b"",
            log_path="" if _log_type(c) == "none" else c.log_path,
            log_rotation=(log_set.max_size, log_set.max_file), log_driver=log_set.driver,
            log_compress=log_set.compress, exit_path=os.path.join(c.dir, "exit.json"),
            socket_path=str(self.config.monitors_dir / f"{c.id}.sock"), bundle=bundle,
            runtime=runtime_path, new_pidns=(c.host_config.get("PidMode") != "host") and runtime == "sampan",
            cgroup_dirs=tuple(cgroup_dirs),
            oom_dirs=tuple(cgroup_dirs if runtime == "sampan" else self.engine.cgroups.dirs_of(c)))
        attaches = self._pending_attach.pop(c.id, [])
        sock = monitor.spawn(ms, attaches)
        link = await MonitorLink.open(sock)
        first = await link.next_event(timeout=60)
        if first is None or first.get("event") != "started":
            await link.close()
            if runtime != "sampan":
                release_rootfs(c)
            msg = (first or {}).get("message") or "container process failed to start"
            code = int((first or {}).get("exit_code") or 128)
            c.state.ExitCode = code
            c.state.Error = msg
            self._save(c)
            raise InvalidParameter(f"failed to create task for container: {msg}")
        # As dockerd's State.SetRunning: the previous run's FinishedAt stays until the next exit.
        c.state = State(Status="running", Running=True, Pid=int(first["pid"]), StartedAt=first["started_at"],
                        FinishedAt=c.state.FinishedAt, Health=c.state.Health)
        c.manual_stop = False
        self._save(c)
        self._links[c.id] = link
        asyncio.get_running_loop().create_task(self._watch(c, link))
        event_hooks.volumes_mounted(self.engine, c)
        event_hooks.network_joined(self.engine, c)
        self.engine.events.container(c, "start")
        self.engine.health.on_start(c)

    async def _watch(self, c: Container, link: MonitorLink) -> None:
        """Follow a monitor's events until it is gone, then record the exit."""
        result = None
        try:
            while True:
                ev = await link.next_event()
                if ev is None:
                    break
                kind = ev.get("event")
                if kind == "exit":
                    result = ev
                elif kind == "exec_exit" and self.execs is not None:
                    self.execs.on_exit(ev["id"], int(ev["exit_code"]))
        except Exception:
            log.exception("watching monitor of %s", c.id)
        finally:
            await link.close()
        if self._links.get(c.id) is link:
            del self._links[c.id]
        await self._on_exit(c, result)

    async def _on_exit(self, c: Container, result: dict | None) -> None:
        from .rootfs import release_rootfs

        if result is None:
            result = _read_json(os.path.join(c.dir, "exit.json"))
        if result is None:
            result = {"exit_code": 255, "finished_at": now_rfc3339(), "oom_killed": False}
            c.state.Error = "monitor exited without recording the container's exit status"
        # Before the state says "exited", so no start can make a new group that this would
        # remove. The monitor counted OOM kills already; the group may still be emptying.
        await asyncio.get_running_loop().run_in_executor(None, self.engine.cgroups.release, c)
        c.state.Status = "exited"
        c.state.Running = False
        c.state.Paused = False
        c.state.Pid = 0
        c.state.ExitCode = int(result.get("exit_code", 255))
        c.state.FinishedAt = result.get("finished_at") or now_rfc3339()
        c.state.OOMKilled = bool(result.get("oom_killed"))
        self.engine.health.on_exit(c)
        if c.id in self._by_id:
            self._save(c)
        if c.state.OOMKilled:
            self.engine.events.container(c, "oom")
        self.engine.events.container(c, "die", exitCode=c.state.ExitCode)
        event_hooks.network_left(self.engine, c)
        event_hooks.volumes_unmounted(self.engine, c)
        await self.engine.networks.release(c)
        if (c.host_config.get("Runtime") or "sampan") != "sampan":
            release_rootfs(c)
        ipcshm.release(c)
        if self.execs is not None:
            self.execs.on_container_exit(c.id)
        for fut in self._exit_waiters.pop(c.id, []):
            if not fut.done():
                fut.set_result(c.state.ExitCode)
        if self._should_restart(c):
            self._schedule_restart(c, result.get("started_at") or c.state.StartedAt)
            return
        if c.host_config.get("AutoRemove") and c.id in self._by_id:
            try:
                await self.remove(c.id, force=True, volumes=True)
            except Exception:
                log.exception("auto-removing %s", c.id)

    # -- restart policies ---------------------------------------------------------------------------
    def _should_restart(self, c: Container) -> bool:
        rp = c.host_config.get("RestartPolicy") or {}
        name = rp.get("Name") or "no"
        if c.manual_stop or c.id not in self._by_id or name == "no":
            return False
        if name == "on-failure":
            limit = rp.get("MaximumRetryCount") or 0
            return c.state.ExitCode != 0 and (limit <= 0 or c.restart_count < limit)
        return name in ("always", "unless-stopped")

    def _schedule_restart(self, c: Container, started_at: str) -> None:
        """dockerd's restart manager: wait 100 ms, doubling after each quick exit (up to a
        minute), back to 100 ms once a run lasted 10 s; meanwhile the state is `restarting`."""
        try:
            ran = (parse_rfc3339_nano(c.state.FinishedAt) - parse_rfc3339_nano(started_at)) / 1e9
        except ValueError:
            ran = 0.0
        prev = self._backoff.get(c.id, 0.0)
        delay = 0.1 if ran >= 10 or not prev else min(prev * 2, 60.0)
        self._backoff[c.id] = delay
        c.state.Status, c.state.Restarting = "restarting", True
        self._save(c)
        loop = asyncio.get_running_loop()
        loop.call_later(delay, lambda: loop.create_task(self._policy_restart(c)))

    async def _policy_restart(self, c: Container, count: bool = True) -> None:
        async with self._lock(c.id):
            if c.id not in self._by_id or c.manual_stop or c.state.Status != "restarting":
                return  # stopped or removed while waiting
            if count:  # a start with the daemon is no restart of the container's
                c.restart_count += 1
            c.state.Restarting = False
            try:
                await self._start_locked(c)
            except Exception as e:  # noqa: BLE001 - recorded in the state, as dockerd does
                log.warning("restarting %s: %s", c.id, e)
                c.state.Status = "exited"
                self._save(c)

    def _cancel_restart(self, c: Container) -> None:
        c.manual_stop = True
        c.state.Status, c.state.Restarting = "exited", False
        self._save(c)

    # -- restore after a daemon restart ----------------------------------------------------------
    async def restore(self) -> None:
        tmp_prefix = ".tmp-"
        if self.config.containers_dir.exists():
            for entry in self.config.containers_dir.iterdir():
                if entry.name.startswith(tmp_prefix) or (entry.name not in self._by_id and len(entry.name) == 64):
                    ipcshm.release_dir(entry)
                    shutil.rmtree(entry, ignore_errors=True)
        for c in list(self._by_id.values()):
            if c.state.Status == "removing":
                await self.remove(c.id, force=True, volumes=True)
                continue
            sock_path = self.config.monitors_dir / f"{c.id}.sock"
            if not c.state.Running and sock_path.exists():
                # The daemon died between spawning the monitor and recording the start:
                # adopt the running container rather than orphan it.
                c.state = State(Status="running", Running=True, StartedAt=now_rfc3339())
            if not c.state.Running:
                ipcshm.release(c)  # stopped while the daemon was away
                policy = (c.host_config.get("RestartPolicy") or {}).get("Name")
                # As dockerd at start: `always` comes back even after a docker stop,
                # `unless-stopped` unless it was stopped by hand, and one caught between runs.
                if (c.state.Status == "restarting" or policy == "always"
                        or (policy == "unless-stopped" and not c.manual_stop)):
                    c.state.Status, c.state.Restarting = "restarting", True
                    c.manual_stop = False
                    asyncio.get_running_loop().create_task(self._policy_restart(c, count=False))
                continue
            try:
                link = await MonitorLink.connect(str(sock_path))
                first = await link.next_event(timeout=5)
            except (OSError, asyncio.TimeoutError):
                first, link = None, None
            if link is None or first is None or not first.get("running"):
                if link is not None:
                    await link.close()
                await self._on_exit(c, None)
                continue
            if not c.state.Pid:
                c.state.Pid = int(first.get("pid") or 0)
                self._save(c)
            self._links[c.id] = link
            asyncio.get_running_loop().create_task(self._watch(c, link))
            self.engine.health.on_start(c, restored=True)
        await self._reap_orphan_monitors()

    async def _reap_orphan_monitors(self) -> None:
        """Monitor sockets of containers sampan no longer knows: stale files, or orphans to stop."""
        if not self.config.monitors_dir.exists():
            return
        for entry in self.config.monitors_dir.iterdir():
            if entry.name.split(".", 1)[0] in self._by_id:
                continue
            try:
                await monitor_request(str(entry), {"op": "signal", "signal": _signal.SIGKILL}, timeout=2)
            except Exception:  # noqa: BLE001 - nothing listening: just a stale file
                pass
            entry.unlink(missing_ok=True)

    # -- stop / kill / restart --------------------------------------------------------------------
    async def _signal(self, c: Container, sig: int) -> None:
        reply = await monitor_request(self._sock_path(c), {"op": "signal", "signal": sig})
        if reply.get("error"):
            raise Conflict(f"Container {c.id} is not running")
        self.engine.events.container(c, "kill", signal=sig)
        if c.state.Paused:  # a frozen process acts on the signal only once thawed
            from .lifecycle import thaw
            await thaw(self.engine, c)

    def _sock_path(self, c: Container) -> str:
        return str(self.config.monitors_dir / f"{c.id}.sock")

    async def kill(self, ref: str, signal: str | None) -> None:
        c = self.get(ref)
        sig = parse_signal(signal)
        if c.state.Status == "restarting":
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        if sig in (_signal.SIGKILL,):
            c.manual_stop = True
        await self._signal(c, sig)
        if sig == _signal.SIGKILL:
            # As dockerd's Kill: a SIGKILL is answered once the container is down (10 s at
            # most), so `docker kill; docker inspect` sees it exited. Other signals return now.
            await self.wait_exit(c, 10)

    async def wait_exit(self, c: Container, timeout: float | None) -> bool:
        if not c.state.Running:
            return True
        fut = asyncio.get_running_loop().create_future()
        self._exit_waiters.setdefault(c.id, []).append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self, ref: str, timeout: int | None, signal: str | None = None) -> None:
        c = self.get(ref)
        # Under the container's lock: a restart-policy start in flight finishes first, so the
        # stop either cancels a pending restart or stops the started process, never neither.
        async with self._lock(c.id):
            if c.state.Status == "restarting":
                self._cancel_restart(c)
                return
            if not c.state.Running:
                raise NotModified("container already stopped")
            c.manual_stop = True
        await self._stop(c, timeout, signal)
        self.engine.events.container(c, "stop")

    async def _stop(self, c: Container, timeout: int | None, signal: str | None = None) -> None:
        c.manual_stop = True
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            if timeout is None:
                timeout = 10
        sig = parse_signal(signal or c.config.get("StopSignal") or "SIGTERM")
        try:
            await self._signal(c, sig)
        except Conflict:
            return
        if timeout < 0:
            await self.wait_exit(c, None)
            return
        if not await self.wait_exit(c, timeout):
            try:
                await self._signal(c, _signal.SIGKILL)
            except Conflict:
                return
            await self.wait_exit(c, 30)

    async def restart(self, ref: str, timeout: int | None, signal: str | None = None) -> None:
        c = self.get(ref)
        if c.state.Status == "restarting":
            self._cancel_restart(c)
        if c.state.Running:
            await self._stop(c, timeout, signal)
            self.engine.events.container(c, "stop")
        async with self._lock(c.id):
            if not c.state.Running:
                await self._start_locked(c)
        c.restart_count = 0
        self._save(c)
        self.engine.events.container(c, "restart")

    # -- wait -------------------------------------------------------------------------------------
    def register_wait(self, ref: str, condition: str) -> asyncio.Future:
        """Register a waiter now (so the reply's headers can say so); await the future later."""
        c = self.get(ref)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if condition in ("", "not-running"):
            if not c.state.Running:
                fut.set_result(c.state.ExitCode)
                return fut
            self._exit_waiters.setdefault(c.id, []).append(fut)
        elif condition == "next-exit":
            self._exit_waiters.setdefault(c.id, []).append(fut)
        elif condition == "removed":
            self._remove_waiters.setdefault(c.id, []).append(fut)
        else:
            raise InvalidParameter(f"invalid condition: {condition!r}")
        return fut

    # -- remove -----------------------------------------------------------------------------------
    async def remove(self, ref: str, force: bool, volumes: bool) -> None:
        from .rootfs import release_rootfs

        c = self.get(ref)
        if c.state.Status == "restarting":
            if not force:
                raise Conflict("You cannot remove a restarting container. Stop the container before "
                               "attempting removal or force remove")
            self._cancel_restart(c)
        if c.state.Running:
            if not force:
                raise Conflict(f'cannot remove container "/{c.name}": container is running: '
                               "stop the container before removing or force remove")
            try:
                await self._signal(c, _signal.SIGKILL)
            except Conflict:
                pass
            await self.wait_exit(c, 30)
        if c.id not in self._by_id:
            return
        c.state.Status = "removing"
        self._save(c)
        for a in self._pending_attach.pop(c.id, []):
            os.close(a.fd)
        await asyncio.get_running_loop().run_in_executor(None, self.engine.cgroups.release, c)
        release_rootfs(c)
        ipcshm.release(c)
        await self.engine.networks.on_remove(c)
        shutil.rmtree(c.dir, ignore_errors=True)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM containers WHERE id = ?", (c.id,))
        self._by_id.pop(c.id, None)
        self._locks.pop(c.id, None)
        self.engine.events.container(c, "destroy")
        from ..volumes import hooks as volume_hooks
        volume_hooks.on_removed(self.engine, c, volumes)
        if self.execs is not None:
            self.execs.on_container_removed(c.id)
        if c.image_id not in self.images.ids() and not self.users_of_image(c.image_id):
            # The image was force-removed while this container used it: collect it now.
            await asyncio.get_running_loop().run_in_executor(None, self.images.gc)
        for fut in self._exit_waiters.pop(c.id, []):
            if not fut.done():
                fut.set_result(c.state.ExitCode)
        for fut in self._remove_waiters.pop(c.id, []):
            if not fut.done():
                fut.set_result(c.state.ExitCode)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        deleted = []
        for c in list(self._by_id.values()):
            if c.state.Running or not match_labels(c, filters.get("label", [])):
                continue
            await self.remove(c.id, force=False, volumes=False)
            deleted.append(c.id)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": 0}

    # -- rename -----------------------------------------------------------------------------------
    def rename(self, ref: str, new_name: str) -> None:
        c = self.get(ref)
        if not new_name:
            raise InvalidParameter("Neither old nor new names may be empty")
        new_name = validate_name(new_name)
        if new_name == c.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        self._check_name_free(new_name, exclude=c.id)
        old_name = c.name
        c.name = new_name
        self._save(c)
        self.engine.events.container(c, "rename", oldName="/" + old_name)

    # -- attach / resize ---------------------------------------------------------------------------
    async def attach(self, ref: str, att: monitor.Attach) -> None:
        c = self.get(ref)
        self.engine.events.container(c, "attach")
        if c.state.Running:
            reply = await monitor_request(self._sock_path(c), {
                "op": "attach", "stdin": att.stdin, "stdout": att.stdout, "stderr": att.stderr,
                "leftover": _b64(att.leftover),
                # None: the monitor's own keys (ctrl-p ctrl-q on a tty, none without one).
                "detach_keys": detach_keys_spec(att.detach_keys) if att.detach_keys else None},
                fds=[att.fd])
            os.close(att.fd)
            if reply.get("error"):
                raise Conflict(f"Container {c.id} is not running")
        else:
            # Not started yet (docker run / start -a attach first): handed over at start.
            self._pending_attach.setdefault(c.id, []).append(att)

    async def resize(self, ref: str, h: int, w: int) -> None:
        c = self.get(ref)
        if not c.state.Running:
            raise Conflict(f"Container {c.id} is not running")
        await monitor_request(self._sock_path(c), {"op": "resize", "h": h, "w": w})

    # -- list / inspect / logs (in listing.py and logs.py) -----------------------------------------
    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        from .listing import size_of

        c = self.get(ref)
        out = c.inspect(size_of(c) if size else None)
        out["NetworkSettings"] = self.engine.networks.settings(c)
        return out

    def list(self, all: bool, limit: int | None, size: bool,  # noqa: A002 - Docker's name
             filters: dict[str, list[str]]) -> list[dict]:
        from .listing import list_containers

        return list_containers(self, all, limit, size, filters)

    def logs(self, ref: str, **opts: Any) -> AsyncIterator[tuple[int, bytes]]:
        """The container's log (json-file or local); see `logread.read_logs`."""
        from .logread import read_logs

        c = self.get(ref)
        if _log_type(c) not in ("json-file", "local"):  # before the stream's head is sent
            raise InvalidParameter("configured logging driver does not support reading")
        return read_logs(c, lambda: c.state.Running and c.id in self._by_id, **opts)


def detach_keys_spec(keys: bytes) -> str:
    """Bytes back into Docker's `--detach-keys` syntax, the form the monitor's request takes."""
    parts = []
    for b in keys:
        if b == 0:
            parts.append("ctrl-@")
        elif b <= 26:
            parts.append("ctrl-" + chr(ord("a") + b - 1))
        elif b <= 31:
            parts.append("ctrl-" + "[\\]^_"[b - 27])
        else:
            parts.append(chr(b))
    return ",".join(parts)





def _log_type(c: Container) -> str:
    return (c.host_config.get("LogConfig") or {}).get("Type") or "json-file"


def _log_settings(c: Container) -> Any:
    from ..monitor.logrotate import settings
    return settings(c.host_config.get("LogConfig"))


def _merge_log_config(host: dict, config: Any) -> None:
    """As dockerd's mergeAndVerifyLogConfig (monitor/logrotate.merge_log_config)."""
    from ..monitor.logrotate import merge_log_config
    merge_log_config(host, config.log_driver, config.log_opts)


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def _b64(data: bytes) -> str:
    import base64
    return base64.b64encode(data).decode()
