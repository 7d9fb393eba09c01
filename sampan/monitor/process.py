"""The monitor: one small supervising process per running container.

It is forked from the daemon (so it starts in a millisecond with every module already
imported), detaches into its own session, and from then on owns the container: it starts the
container's process, holds its stdio (pipes, or the master of a pty the container's init
made in its own devpts and sent over a console socket), writes its json-file log, serves attach,
exec, resize and signal requests on its unix socket, reaps the process and records the exit
status in `exit.json`. It does not depend on the daemon staying alive: `kill -9 sampand` leaves
it running, and a restarted daemon reconnects to its socket.

The monitor never touches sys.stdout/stderr, logging or the event loop it inherited: after a
fork from a threaded asyncio process those may hold locks that no thread will release.
"""

from __future__ import annotations

import base64
import fcntl
import gc
import json
import logging
import os
import selectors
import signal
import socket
import struct
import subprocess
import termios
import time
from typing import Any, Callable

from ..runtime import console as _console
from ..cgroups import fs as _cgroupfs
from . import protocol, zygote
from .logfile import open_writer, rfc3339_nano
from .spec import DEFAULT_DETACH_KEYS, Attach, MonitorSpec, parse_detach_keys  # noqa: F401 - re-exported for the engine
from .streams import StreamIO, _Proc
from ..userns import hooks as _userns_hooks

log = logging.getLogger("sampan.monitor")

# How long a child may take to set up before it sends its pty master. The container's init
# mounts its rootfs first; an exec must answer within the daemon's request timeout (10 s).
START_CONSOLE_TIMEOUT = 30.0
EXEC_CONSOLE_TIMEOUT = 8.0


def _exit_code(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return 255


def _reset_signals_for_child() -> None:
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP,
                signal.SIGQUIT, signal.SIGTTOU, signal.SIGTTIN, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _atomic_write_json(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _make_stdio(tty: bool, want_stdin: bool, size: tuple[int, int] | None = None) -> tuple[tuple[int, int, int], int | None, dict[int, int], int | None, list[int]]:
    """(child stdio, pty master, {our read fd: stream}, our stdin write fd, fds to close after fork).

    A tty here is a host pty: only for runc/crun, which make the container's own pty
    themselves and relay it to this one. sampan's runtime uses `_console_pair` instead.
    """
    if tty:
        master, slave = os.openpty()
        os.set_blocking(master, False)
        if size is not None:
            _console.set_size(master, *size)
        return (slave, slave, slave), master, {}, None, [slave]
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    if want_stdin:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(in_w, False)
    else:
        in_r, in_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
    return (in_r, out_w, err_w), None, {out_r: protocol.STDOUT, err_r: protocol.STDERR}, in_w, [in_r, out_w, err_w]


def _enter_cgroup(dirs: tuple[str, ...]) -> None:
    """Move this (forked, single-threaded) process into the container's cgroup before the
    runtime unshares the cgroup namespace, so the namespace is rooted there (see
    sampan.cgroups.fs.enter for how, and why not by pid)."""
    _cgroupfs.enter(dirs)


def _console_pair() -> tuple[socket.socket, int]:
    """(our end, the child's end as a raw fd) of the console socket a child sends its pty
    master on. Close-on-exec: the child's end must not leak into the container."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    return ours, theirs.detach()


def _with_console_size(process: dict, size: tuple[int, int] | None) -> dict:
    if size is None:
        return process
    return dict(process, consoleSize={"height": size[0], "width": size[1]})


def _wait_pid_file(path: str, child: int, timeout: float = 30.0) -> int:
    """The pid runc/crun write to `--pid-file` once the container's init runs (by rename, so
    never half written); 0 if `child` (the runtime) exits first or nothing comes in time."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                pid = int(f.read().strip() or 0)
            if pid > 0:
                return pid
        except (OSError, ValueError):
            pass
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                    return 0
        except OSError:
            return 0
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return 0


def _receive_console(csock: socket.socket, pid: int, timeout: float) -> int | None:
    """The pty master from child `pid`, non-blocking, or None. A child that closed the
    socket without sending failed (its error is on the err pipe) or exec'd without a
    terminal; one that sent nothing in time is stuck. Either way it must not run on without
    stdio, so it is killed (harmless if it is already exiting; not reaped yet, so the pid
    cannot have been reused)."""
    try:
        master = _console.recv_master(csock, timeout)
    finally:
        csock.close()
    if master is None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return None
    os.set_blocking(master, False)
    return master


_NO_CONSOLE = json.dumps({"message": "container init did not set up its terminal",
                          "exit_code": 128}).encode()
_NO_EXEC_CONSOLE = json.dumps({"message": "exec did not set up its terminal", "exit_code": 126}).encode()


class Monitor(StreamIO):
    def __init__(self, ms: MonitorSpec, listener: socket.socket, watcher: socket.socket | None) -> None:
        self.ms = ms
        self.listener = listener
        self.sel = selectors.DefaultSelector()
        self.watchers: list[socket.socket] = [watcher] if watcher else []
        self.main: _Proc | None = None
        self.procs: dict[int, _Proc] = {}
        self.exec_results: dict[str, int] = {}
        self.ns_fds: dict[str, int] = {}
        # runc/crun: the container's pid namespace, entered around each exec's fork
        self.exec_pidns: int | None = None
        # the container's init (what `inspect` calls State.Pid): the main child itself with
        # sampan's runtime; with runc/crun the child is the runtime and this is its child
        self.init_pid = 0
        self.main_exited_at: float | None = None

    # -- start ------------------------------------------------------------------------------
    def start(self, attaches: list[Attach]) -> dict:
        ms = self.ms
        size = (_console.parse_size(ms.console_size)
                or _console.parse_size((ms.spec.get("process") or {}).get("consoleSize")))
        csock: socket.socket | None = None
        console_fd: int | None = None
        if ms.tty and ms.runtime == "sampan":
            csock, console_fd = _console_pair()
            stdio, master, outs, stdin_w, child_ends = None, None, {}, None, [console_fd]
        else:
            stdio, master, outs, stdin_w, child_ends = _make_stdio(ms.tty, ms.open_stdin, size)
        if ms.runtime != "sampan":
            try:
                os.unlink(self._pid_file())  # an earlier run's
            except FileNotFoundError:
                pass
        def body(err_w: int) -> None:  # the container's process
            _enter_cgroup(ms.cgroup_dirs)
            self._exec_container(stdio, err_w, console_fd, size)

        pid, console_master, err = self._fork_child(
            body, child_ends, csock, START_CONSOLE_TIMEOUT, "container init failed", 1, _NO_CONSOLE)
        if csock is not None:
            master = console_master
        if err:
            _, status = os.waitpid(pid, 0)
            for fd in list(outs) + ([master] if master is not None else []) + ([stdin_w] if stdin_w else []):
                os.close(fd)
            try:
                info = json.loads(err)
            except ValueError:
                info = {"message": err.decode(errors="replace")}
            info.setdefault("exit_code", _exit_code(status) or 1)
            return {"event": "start_failed", **info}
        proc = _Proc(pid, master, outs, master if ms.tty and ms.open_stdin else stdin_w,
                     ms.stdin_once, framed=not ms.tty)
        proc.log = (open_writer(ms.log_path, ms.log_driver, *ms.log_rotation, ms.log_compress)
                    if ms.log_path else None)  # "none" driver
        self.main = proc
        self._register_proc(proc)
        for a in attaches:
            self._add_client(proc, a)
        if ms.runtime == "sampan":
            self.ns_fds = self._open_ns_fds(pid)
            self.init_pid = pid
        else:
            self.init_pid = _wait_pid_file(self._pid_file(), pid) or pid
        return {"event": "started", "pid": self.init_pid, "started_at": rfc3339_nano(time.time_ns())}

    def _pid_file(self) -> str:
        return os.path.join(self.ms.bundle, "init.pid")

    def _fork_exec(self, body: Callable[[int], None], child_ends: list[int],
                   csock: socket.socket | None) -> tuple[int, int | None, bytes]:
        """Fork an exec's child, inside the container's pid namespace. With sampan's runtime
        the monitor lives there already; with runc/crun it enters it for this fork only."""
        if self.exec_pidns is None:
            return self._fork_child(body, child_ends, csock, EXEC_CONSOLE_TIMEOUT, "exec failed",
                                    126, _NO_EXEC_CONSOLE)
        from ..linux import syscalls
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(self.exec_pidns, syscalls.CLONE_NEWPID)
            try:
                return self._fork_child(body, child_ends, csock, EXEC_CONSOLE_TIMEOUT,
                                        "exec failed", 126, _NO_EXEC_CONSOLE)
            finally:
                syscalls.setns(own, syscalls.CLONE_NEWPID)  # back: later forks (runc delete) stay out
        finally:
            os.close(own)

    def _join_runtime_container(self) -> bytes:
        """runc/crun: the monitor's child is the runtime, not the container's init. Open the
        init's namespaces for execs; -> an error report, or b"" when they are open."""
        init = self.init_pid
        fds = self._open_ns_fds(init) if init > 0 and self.main and init != self.main.pid else {}
        if "mnt" not in fds:  # gone, or a pid that is not the container's
            for fd in fds.values():
                os.close(fd)
            return json.dumps({"message": "container is not running", "exit_code": 126}).encode()
        try:
            if os.readlink(f"/proc/{init}/ns/pid") != os.readlink("/proc/self/ns/pid"):
                self.exec_pidns = os.open(f"/proc/{init}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass
        self.ns_fds = fds
        return b""

    @staticmethod
    def _open_ns_fds(pid: int) -> dict[str, int]:
        """Namespaces of the container's init that differ from ours, for `exec` to join.

        For runc/crun the monitor's child is the runtime, not the container's init; its
        namespaces are looked up when the first exec comes (`_join_runtime_container`).
        """
        fds = {}
        for ns in ("mnt", "uts", "ipc", "net", "cgroup", "user"):
            try:
                if os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"):
                    fds[ns] = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass
        return fds

    def _delete_runtime_state(self) -> None:
        """`runc delete --force`: the state and cgroup a `run --keep` left (the container has
        exited; this only tidies up, so a failure is logged, never fatal)."""
        try:
            r = subprocess.run([self.ms.runtime, "delete", "--force", self.ms.id],
                               capture_output=True, timeout=30)
            if r.returncode != 0:
                log.warning("%s delete %s: %s", self.ms.runtime, self.ms.id,
                            r.stderr.decode(errors="replace").strip())
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("%s delete %s: %s", self.ms.runtime, self.ms.id, e)

    def _exec_container(self, stdio: tuple[int, int, int] | None, err_w: int,
                        console_fd: int | None, size: tuple[int, int] | None) -> None:
        ms = self.ms
        if ms.runtime == "sampan":
            from ..runtime.container import run_child
            spec = ms.spec
            if console_fd is not None:
                spec = dict(spec, process=_with_console_size(spec.get("process") or {}, size))
            run_child(spec, ms.rootfs_mount, stdio, err_w, console_fd)
            return
        # runc / crun: the runtime binary becomes the child; it reads config.json from the bundle.
        for i, fd in enumerate(stdio):
            os.dup2(fd, i)
        os.closerange(3, err_w)
        os.closerange(err_w + 1, 65536)
        try:
            # --keep: the runtime would remove the cgroup, and with it the OOM-kill counter,
            # as the container exits; the monitor reads it, then deletes (_delete_runtime_state).
            os.execv(ms.runtime, [ms.runtime, "run", "--keep", "--bundle", ms.bundle,
                                  "--pid-file", self._pid_file(), ms.id])
        except OSError as e:
            os.write(err_w, json.dumps({"message": f"cannot run {ms.runtime}: {e}", "exit_code": 126}).encode())
            os._exit(126)

    def _fork_child(self, body: Callable[[int], None], child_ends: list[int],
                    csock: socket.socket | None, console_timeout: float, fail_prefix: str,
                    fail_code: int, no_console: bytes) -> tuple[int, int | None, bytes]:
        """Fork a child that runs `body(err_w)` and never returns (it execs); returns (pid,
        pty master sent over `csock` or None, error report). An empty report means the exec
        succeeded: `err_w` is close-on-exec, so the monitor reads EOF and nothing else."""
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            try:
                _reset_signals_for_child()
                body(err_w)
            except BaseException as e:  # noqa: BLE001 - report anything to the monitor
                try:
                    os.write(err_w, json.dumps({"message": f"{fail_prefix}: {e}",
                                                "exit_code": fail_code}).encode())
                finally:
                    os._exit(fail_code)
            os._exit(fail_code)
        for fd in child_ends + [err_w]:
            os.close(fd)
        master = _receive_console(csock, pid, console_timeout) if csock is not None else None
        err = self._read_all(err_r)
        os.close(err_r)
        if csock is not None and master is None and not err:
            err = no_console
        return pid, master, err

    @staticmethod
    def _read_all(fd: int) -> bytes:
        chunks = []
        while True:
            try:
                data = os.read(fd, 65536)
            except InterruptedError:
                continue
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    # -- registration -------------------------------------------------------------------------
    def _register_proc(self, proc: _Proc) -> None:
        self.procs[proc.pid] = proc
        if proc.master is not None:
            self.sel.register(proc.master, selectors.EVENT_READ, lambda m: self._on_output(proc, proc.master, protocol.STDOUT))
        for fd, stream in proc.out_fds.items():
            self.sel.register(fd, selectors.EVENT_READ, lambda m, fd=fd, s=stream: self._on_output(proc, fd, s))

    # -- control socket -----------------------------------------------------------------------
    def _on_accept(self, mask: int) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(True)
        conn.settimeout(2.0)
        fds: list[int] = []
        try:
            req, fds = protocol.recv_msg(conn)
            reply = self._handle(req, fds, conn)
        except Exception as e:  # noqa: BLE001 - a bad request must not kill the monitor
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            reply = {"error": f"monitor: {e}"}
        if reply is None:
            return  # the connection became a watcher
        try:
            protocol.send_msg(conn, reply)
        except OSError:
            pass
        conn.close()

    def _handle(self, req: dict, fds: list[int], conn: socket.socket) -> dict | None:
        op = req.get("op")
        main = self.main
        if op == "watch":
            conn.setblocking(False)
            self.watchers.append(conn)
            self.sel.register(conn, selectors.EVENT_READ, lambda m: self._on_watcher(conn))
            protocol_line = json.dumps({"event": "state", "pid": (self.init_pid or main.pid) if main else 0,
                                        "running": bool(main and main.status is None)}) + "\n"
            conn.send(protocol_line.encode())
            return None
        if op == "state":
            return {"pid": (self.init_pid or main.pid) if main else 0, "running": bool(main and main.status is None),
                    "execs": self.exec_results}
        if op == "signal":
            if main is None or main.status is not None:
                return {"error": "not running"}
            # To the container's init, as `runc kill` does: a SIGKILL sent to the runtime
            # process would kill the runtime and leave the container running, orphaned.
            try:
                os.kill(self.init_pid or main.pid, int(req["signal"]))
            except ProcessLookupError:
                return {"error": "not running"}
            return {"ok": True}
        if op == "attach":
            if main is None or main.status is not None or not fds:
                for fd in fds:
                    os.close(fd)
                return {"error": "not running"}
            keys = req.get("detach_keys")
            self._add_client(main, Attach(fds[0], bool(req.get("stdin")), bool(req.get("stdout")),
                                          bool(req.get("stderr")), base64.b64decode(req.get("leftover", "")),
                                          parse_detach_keys(keys) if keys else None))
            for fd in fds[1:]:
                os.close(fd)
            return {"ok": True}
        if op == "resize":
            target = main
            if req.get("exec_id"):
                target = next((p for p in self.procs.values() if p.exec_id == req["exec_id"]), None)
            if target is None or target.master is None:
                return {"error": "no tty"}
            fcntl.ioctl(target.master, termios.TIOCSWINSZ, struct.pack("HHHH", int(req["h"]), int(req["w"]), 0, 0))
            return {"ok": True}
        if op == "exec":
            return self._start_exec(req, fds)
        if op == "exec_state":
            code = self.exec_results.get(req.get("id", ""))
            running = any(p.exec_id == req.get("id") for p in self.procs.values())
            return {"exit_code": code, "running": running}
        for fd in fds:
            os.close(fd)
        return {"error": f"unknown op {op!r}"}

    def _on_watcher(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._remove_watcher(conn)

    def _remove_watcher(self, conn: socket.socket) -> None:
        try:
            self.sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        if conn in self.watchers:
            self.watchers.remove(conn)
        conn.close()

    def _notify(self, event: dict) -> None:
        line = (json.dumps(event) + "\n").encode()
        for w in list(self.watchers):
            try:
                w.setblocking(True)
                w.settimeout(1.0)
                w.sendall(line)
                w.setblocking(False)
            except OSError:
                self._remove_watcher(w)

    # -- exec ---------------------------------------------------------------------------------
    def _start_exec(self, req: dict, fds: list[int]) -> dict:
        main = self.main
        client_fd = fds[0] if fds else None
        for fd in fds[1:]:
            os.close(fd)
        exec_id = req["id"]
        if main is None or main.status is not None:
            if client_fd is not None:
                os.close(client_fd)
            return {"error": "container is not running", "exit_code": 126}
        tty = bool(req.get("tty"))
        want_stdin = bool(req.get("stdin")) and client_fd is not None
        csock: socket.socket | None = None
        console_fd: int | None = None
        if tty:
            # exec_child always runs sampan's runtime code: its pty comes from the
            # container's devpts once it has joined the mount namespace.
            csock, console_fd = _console_pair()
            stdio, master, outs, stdin_w, child_ends = None, None, {}, None, [console_fd]
        else:
            stdio, master, outs, stdin_w, child_ends = _make_stdio(tty, want_stdin)
        process = _with_console_size(req["process"], _console.parse_size(req.get("console_size")))
        err = b""
        if self.ms.runtime != "sampan" and not self.ns_fds:
            err = self._join_runtime_container()
        ns_fds = self.ns_fds
        def body(err_w: int) -> None:
            from ..runtime.container import exec_child
            # runc/crun made the container's cgroups themselves: oom_dirs names them
            exec_child(process, ns_fds, stdio, err_w, console_fd=console_fd,
                       cgroup_path=list(self.ms.cgroup_dirs or self.ms.oom_dirs) or None)

        if err:
            pid, console_master = 0, None
            for fd in child_ends:
                os.close(fd)
            if csock is not None:
                csock.close()
                csock = None
        else:
            pid, console_master, err = self._fork_exec(body, child_ends, csock)
        if csock is not None:
            master = console_master
        proc = _Proc(pid, master, outs, master if tty and want_stdin else stdin_w, True, framed=not tty)
        proc.exec_id = exec_id
        if err:
            if pid:
                os.waitpid(pid, 0)
            try:
                info = json.loads(err)
            except ValueError:
                info = {"message": err.decode(errors="replace"), "exit_code": 126}
            code = int(info.get("exit_code", 126))
            self.exec_results[exec_id] = code
            if client_fd is not None:
                msg = (info.get("message", "exec failed") + "\r\n").encode()
                try:
                    os.set_blocking(client_fd, True)
                    os.write(client_fd, msg if tty else protocol.frame(protocol.STDOUT, msg))
                except OSError:
                    pass
                os.close(client_fd)
            for fd in list(outs) + ([master] if master is not None else []) + ([stdin_w] if stdin_w else []):
                os.close(fd)
            self._notify({"event": "exec_exit", "id": exec_id, "exit_code": code})
            return {"error": info.get("message", "exec failed"), "exit_code": code}
        self._register_proc(proc)
        if client_fd is not None:
            self._add_client(proc, Attach(client_fd, want_stdin, bool(req.get("stdout", True)),
                                          bool(req.get("stderr", True)),
                                          base64.b64decode(req.get("leftover", "")),
                                          parse_detach_keys(req["detach_keys"]) if req.get("detach_keys") else None))
        if not want_stdin and stdin_w is not None:
            os.close(stdin_w)
            proc.stdin_fd = None
        return {"pid": pid}

    # -- exit ---------------------------------------------------------------------------------
    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self.procs.get(pid)
            if proc is None:
                continue
            proc.status = status
            if proc is self.main:
                self.main_exited_at = time.monotonic()
            self._maybe_finish(proc)

    def _maybe_finish(self, proc: _Proc) -> None:
        """A process is finished when it was reaped and its output is drained (or timed out)."""
        if proc.status is None:
            return
        if proc.out_fds or proc.master is not None:
            return
        self.procs.pop(proc.pid, None)
        code = _exit_code(proc.status)
        if proc.stdin_fd is not None:
            self._close_stdin(proc)
            if proc.stdin_fd is not None:
                try:
                    os.close(proc.stdin_fd)
                except OSError:
                    pass
                proc.stdin_fd = None
        self._close_clients(proc)
        if proc.exec_id is not None:
            self.exec_results[proc.exec_id] = code
            self._notify({"event": "exec_exit", "id": proc.exec_id, "exit_code": code})
            return
        if proc.log is not None:
            proc.log.close()
        result = {"exit_code": code, "finished_at": rfc3339_nano(time.time_ns()),
                  "oom_killed": _cgroupfs.oom_kills(self.ms.oom_dirs or self.ms.cgroup_dirs) > 0}
        if self.ms.runtime != "sampan":
            self._delete_runtime_state()
        _atomic_write_json(self.ms.exit_path, result)
        try:
            os.unlink(self.ms.socket_path)
        except OSError:
            pass
        self._notify({"event": "exit", **result})
        self.done = True

    def _force_drain(self) -> None:
        """Output pipes may stay open if a process escaped the container; stop waiting."""
        for proc in list(self.procs.values()):
            if proc.status is not None:
                for fd in list(proc.out_fds):
                    self._close_output(proc, fd)
                if proc.master is not None:
                    self._close_output(proc, proc.master)

    # -- loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel.register(wake_r, selectors.EVENT_READ, lambda m: self._drain_wakeup(wake_r))
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, self._on_accept)
        for w in self.watchers:
            w.setblocking(False)
            self.sel.register(w, selectors.EVENT_READ, lambda m, w=w: self._on_watcher(w))
        self.done = False
        self._reap()
        while not self.done:
            timeout = None
            if self.main_exited_at is not None:
                timeout = 0.2
                if time.monotonic() - self.main_exited_at > 2.0:
                    self._force_drain()
            for key, mask in self.sel.select(timeout):
                cb: Callable[[int], None] = key.data
                cb(mask)
                if self.done:
                    break
            self._reap()

    def _drain_wakeup(self, fd: int) -> None:
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass
        self._reap()


def _close_fds_except(keep: set[int]) -> None:
    prev = -1
    for fd in sorted(keep) + [1 << 20]:
        if fd - prev > 1:
            os.closerange(prev + 1, min(fd, 1 << 20))
        prev = fd


def monitor_main(ms: MonitorSpec, attaches: list[Attach], status_fd: int) -> None:
    """Body of the (double-forked) monitor process. Never returns."""
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTTOU, signal.SIGTTIN):
            signal.signal(sig, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        devnull = os.open(os.devnull, os.O_RDWR)
        for i in range(3):
            os.dup2(devnull, i)
        keep = {0, 1, 2, status_fd} | {a.fd for a in attaches}
        _close_fds_except(keep)
        status = socket.socket(fileno=status_fd)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        tmp = f"{ms.socket_path}.{os.getpid()}"
        listener.bind(tmp)
        os.chmod(tmp, 0o600)
        listener.listen(16)
        os.replace(tmp, ms.socket_path)
        if ms.new_pidns:
            from ..linux import syscalls
            # `--pid container:<x>`: the spec names the pid namespace to join (while we still
            # hold the host's capabilities); the container's init is then forked into it.
            join = next((n["path"] for n in (ms.spec.get("linux") or {}).get("namespaces") or []
                         if n.get("type") == "pid" and n.get("path")), None)
            if join:
                fd = os.open(join, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    syscalls.setns(fd, syscalls.CLONE_NEWPID)
                finally:
                    os.close(fd)
            _userns_hooks.make_monitor_userns(ms.spec)  # --userns-remap: made here, joined by init
            if not join:
                syscalls.unshare(syscalls.CLONE_NEWPID)
        mon = Monitor(ms, listener, status)
        result = mon.start(attaches)
        status.setblocking(True)
        try:
            status.sendall((json.dumps(result) + "\n").encode())
        except OSError:
            pass
        if result["event"] != "started":
            os.unlink(ms.socket_path)
            for a in attaches:
                os.close(a.fd)
            os._exit(0)
        mon.run()
    except BaseException:  # noqa: BLE001
        code = 1
        try:
            import traceback
            with open(ms.exit_path + ".monitor-error", "w") as f:
                traceback.print_exc(file=f)
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


def detach_and_run(ms: MonitorSpec, attaches: list[Attach], status_fd: int) -> None:
    """In a fresh fork (of the zygote, or of the daemon): a session of its own, a second fork
    so the monitor is nobody's child, then the monitor. Never returns."""
    # The monitor shares its parent's heap copy-on-write; a garbage collection would walk
    # (and so copy) every object in it. The monitor makes no cycles worth it.
    gc.disable()
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    monitor_main(ms, attaches, status_fd)


def spawn(ms: MonitorSpec, attaches: list[Attach]) -> socket.socket:
    """Start a detached monitor; returns the daemon's end of its status socket.

    The first line on that socket is `started` (with the pid) or `start_failed`; later lines
    are events; EOF means the monitor is gone (read `exit.json`). The monitor is forked by
    the zygote (zygote.py) when there is one, else from this process.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.set_inheritable(False)
    try:
        if zygote.try_spawn(ms, attaches, theirs):
            return ours
        pid = os.fork()
        if pid == 0:
            try:
                detach_and_run(ms, attaches, theirs.fileno())
            finally:
                os._exit(1)
        os.waitpid(pid, 0)
        return ours
    finally:
        theirs.close()
        for a in attaches:
            os.close(a.fd)
