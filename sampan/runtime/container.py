"""Turning a forked child into a container process: `run_child` and `exec_child`.

Both run in a child the monitor forked (already in the container's pid namespace) and never
return: they exec the container's process, or write one JSON line
`{"message": ..., "exit_code": ...}` to `err_fd` (close-on-exec, so EOF with nothing written
means the exec succeeded) and `os._exit(exit_code)`.

This is on every `docker run`: no subprocesses, no imports beyond what the daemon already
holds, a handful of syscalls. Exit codes follow Docker: 127 command not found, 126 not
executable, 128 any other failure to set up the container.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import signal
import stat
import termios
from typing import Any

from ..errors import SampanError
from ..linux import caps as _caps
from ..linux import seccomp as _seccomp
from ..linux import syscalls as sc
from . import console as _console
from . import rootfs as _rootfs
from .mounts import Mount, perform
from .spec import ANN_GROUPS, ANN_USER
from .users import MAX_FILE, ExecUser, resolve
from ..userns import nsfork as _userns

EXIT_NOT_FOUND = 127
EXIT_CANNOT_INVOKE = 126
EXIT_SETUP = 128

class _ExecError(Exception):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _fail(err_fd: int, message: str, exit_code: int) -> None:
    try:
        os.write(err_fd, json.dumps({"message": message, "exit_code": exit_code}).encode())
    except OSError:
        pass
    os._exit(exit_code)


def _setup_stdio(stdio: Any, terminal: bool) -> None:
    """Make `stdio` fds 0, 1, 2 (a single int: a pty slave used for all three)."""
    if stdio is None:
        fds: list[int | None] = [0, 1, 2]
    elif isinstance(stdio, int):
        fds = [stdio, stdio, stdio]
    else:
        fds = list(stdio)
        if len(fds) != 3:
            raise ValueError("stdio must be one fd or three")
    # Dup to fresh numbers first so sources that are themselves 0..2 are not clobbered.
    null = None
    staged = []
    for fd in fds:
        if fd is None:
            if null is None:
                null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            fd = null
        staged.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3))
    for i, fd in enumerate(staged):
        os.dup2(fd, i, inheritable=True)
        os.close(fd)
    if null is not None:
        os.close(null)
    if terminal and os.isatty(0):
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _setup_console(console_fd: int, size: Any, mount_console: bool) -> None:
    """A pty from the devpts now at /dev/pts (the container's own): its master to the
    monitor over `console_fd`, its slave as stdio and controlling terminal, as runc does.

    Called after pivot_root (or after joining the mount namespace, for exec), so the pty is
    `/dev/pts/N` inside the container. The master is sent only once everything that can fail
    here has succeeded; the monitor takes EOF on the socket as "no terminal".
    """
    master, slave, name = _console.open_pty("/dev/ptmx")
    hw = _console.parse_size(size)
    if hw is not None:
        # Before the process starts, so its first `stty size` already sees the client's.
        _console.set_size(master, *hw)
    if mount_console:
        _rootfs.bind_console("/", name)
    _setup_stdio(slave, True)
    os.close(slave)
    _console.send_master(console_fd, master, name)
    os.close(master)
    os.close(console_fd)


def _own_tty(user: ExecUser) -> None:
    """A non-root process owns its terminal (runc's fixStdioPermissions, for the pty only):
    otherwise `tty`-opening programs and `mesg` fail on a root-owned /dev/pts/N."""
    if user.uid == 0 or not os.isatty(0):
        return
    try:
        st = os.fstat(0)
        if st.st_uid != user.uid:
            os.fchown(0, user.uid, -1)
    except OSError:
        pass


def _reset_signals() -> None:
    # Ignored dispositions and the blocked mask survive execve; Python ignores SIGPIPE and
    # SIGXFSZ, which would leak into the container (e.g. `yes | head` would never end).
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (ValueError, OSError):
            pass
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    except (ValueError, OSError):
        pass


def _read_etc(path: str) -> str | None:
    """An /etc file of the container (we are inside its root): regular files only, bounded."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MAX_FILE)
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")


def _exec_user(process: dict, annotations: dict) -> ExecUser:
    symbolic = process.get("username")
    if symbolic is None:
        symbolic = annotations.get(ANN_USER)
    groups = process.get("groupAdd")
    if groups is None:
        raw = annotations.get(ANN_GROUPS, "")
        groups = [g for g in raw.split(",") if g]
    passwd = _read_etc("/etc/passwd")
    if symbolic is not None:
        group = _read_etc("/etc/group")
        return resolve(symbolic, passwd, group, groups)
    u = process.get("user") or {}
    uid, gid = int(u.get("uid", 0)), int(u.get("gid", 0))
    base = resolve(str(uid), passwd, None)
    return ExecUser(uid, gid, tuple(int(g) for g in u.get("additionalGids") or ()), base.home,
                    base.name)


def _apply_rlimits(rlimits: list[dict]) -> None:
    for r in rlimits or ():
        res = getattr(resource, r["type"], None)
        if res is None:
            raise ValueError(f"unknown rlimit {r['type']}")
        resource.setrlimit(res, (int(r["soft"]), int(r["hard"])))


def _become(process: dict, user: ExecUser) -> None:
    """Drop to the container's identity and capability sets, in the order runc uses."""
    capset = process.get("capabilities") or {}
    bounding = _caps.to_mask(capset.get("bounding") or [])
    for n in range(_caps.last_cap() + 1):
        if not bounding & (1 << n):
            sc.capbset_drop(n)
    os.setgroups(list(user.sgids))
    os.setgid(user.gid)
    os.setuid(user.uid)
    if user.uid == 0:
        # Root keeps what the spec grants (never more than we hold: capset would refuse).
        _, held, _ = sc.capget()
        sc.capset(_caps.to_mask(capset.get("effective") or []) & held,
                  _caps.to_mask(capset.get("permitted") or []) & held,
                  _caps.to_mask(capset.get("inheritable") or []) & held)
    # A non-root uid lost its effective/permitted sets in setuid() and execve() would clear
    # them anyway: Docker's non-root users run with no capabilities, bounding set as above.
    if process.get("noNewPrivileges"):
        sc.set_no_new_privs()


def _env_with_home(env_list: list[str], home: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for e in env_list:
        k, eq, v = e.partition("=")
        if eq and k:
            env[k] = v
    env.setdefault("HOME", home)
    return env


def _close_fds(keep: int) -> None:
    if keep > 3:
        os.closerange(3, keep)
    os.closerange(max(keep + 1, 3), 1 << 20)


def _exec(args: list[str], env: dict[str, str]) -> None:
    """execve with PATH lookup in the container's own PATH (Go's LookPath semantics)."""
    name = args[0]
    if not name:
        raise _ExecError('exec: "": executable file not found in $PATH', EXIT_NOT_FOUND)
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in env.get("PATH", "").split(":")]
    denied: OSError | None = None
    for path in candidates:
        try:
            os.execve(path, args, env)
        except (FileNotFoundError, NotADirectoryError) as e:
            if os.path.lexists(path):  # it exists: its #! interpreter or loader does not
                raise _ExecError(f"exec {path}: no such file or directory",
                                 EXIT_NOT_FOUND) from e
            if "/" in name:
                raise _ExecError(f'exec: "{name}": stat {name}: no such file or directory',
                                 EXIT_NOT_FOUND) from e
        except (PermissionError, IsADirectoryError) as e:
            denied = e
            if "/" in name:
                break
        except OSError as e:
            if e.errno == errno.ENOEXEC:
                raise _ExecError(f"exec {path}: exec format error", EXIT_CANNOT_INVOKE) from e
            raise _ExecError(f'exec: "{name}": {e.strerror}', EXIT_CANNOT_INVOKE) from e
    if denied is not None:
        raise _ExecError(f'exec: "{name}": permission denied', EXIT_CANNOT_INVOKE)
    raise _ExecError(f'exec: "{name}": executable file not found in $PATH', EXIT_NOT_FOUND)


def _finish(process: dict, annotations: dict, err_fd: int, seccomp: dict | None) -> None:
    """Shared tail of run_child and exec_child: identity, caps, seccomp, cwd, fds, exec."""
    user = _exec_user(process, annotations)
    _own_tty(user)
    _apply_rlimits(process.get("rlimits") or [])
    cwd = process.get("cwd") or "/"
    if seccomp:
        # Installed while we still hold CAP_SYS_ADMIN (so no_new_privs is not required);
        # nothing left before execve is a syscall the profiles refuse.
        _seccomp.install(_seccomp.compile_filter(seccomp))
    _become(process, user)
    try:
        os.chdir(cwd)
    except OSError as e:
        raise _ExecError(f"chdir to cwd ({cwd!r}) set in config.json failed: {e.strerror}",
                         EXIT_SETUP) from None
    env = _env_with_home(process.get("env") or [], user.home)
    args = process.get("args") or []
    if not args:
        raise _ExecError("no command specified", EXIT_SETUP)
    _reset_signals()
    os.umask(0o022)
    _close_fds(err_fd)
    _exec(list(args), env)


def _namespaces(spec_ns: list[dict]) -> tuple[int, list[tuple[int, int]], int | None]:
    """(flags to unshare, [(fd, flag) to setns], user namespace fd or None) for every
    namespace but pid."""
    flags = 0
    joins: list[tuple[int, int]] = []
    user_fd = None
    for ns in spec_ns:
        kind = ns.get("type")
        if kind == "pid":
            continue  # the monitor unshared it before forking us
        flag = sc.NAMESPACE_FLAGS.get(kind or "")
        if flag is None:
            raise ValueError(f"unsupported namespace type {kind!r}")
        if kind == "user":
            # The monitor made it (maps written, pid namespace owned by it): join, never create.
            if not ns.get("path"):
                raise ValueError("a user namespace needs a path (the monitor makes it)")
            user_fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
            continue
        if ns.get("path"):
            joins.append((os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC), flag))
        else:
            flags |= flag
    return flags, joins, user_fd


def _dev_is_ours(spec: dict) -> bool:
    return any(m.get("destination") == "/dev" and m.get("type") == "tmpfs"
               for m in spec.get("mounts") or [])


def _prepare_rootfs(spec: dict, rootfs_mount: Mount | None, tty_path: str | None) -> None:
    linux = spec.get("linux") or {}
    root = os.path.abspath(spec["root"]["path"])
    prop = {"shared": sc.MS_SHARED, "private": sc.MS_PRIVATE, "slave": sc.MS_SLAVE,
            "unbindable": sc.MS_UNBINDABLE}.get(
        (linux.get("rootfsPropagation") or "rslave").lstrip("r"), sc.MS_SLAVE)
    sc.mount(None, "/", None, sc.MS_REC | prop)
    if rootfs_mount is not None:
        os.makedirs(root, 0o755, exist_ok=True)
        perform(rootfs_mount, root)
    else:
        # pivot_root needs the new root to be a mount point of its own.
        sc.mount(root, root, None, sc.MS_BIND | sc.MS_REC)
    for m in spec.get("mounts") or []:
        _rootfs.mount_one(root, m)
    dev_is_ours = _dev_is_ours(spec)
    _rootfs.create_devices(root, linux.get("devices") or [])
    if dev_is_ours:
        _rootfs.create_dev_links(root)
        if tty_path:
            _rootfs.bind_console(root, tty_path)
    _rootfs.pivot(root)


def _make_cwd(cwd: str) -> None:
    # Docker creates a missing WorkingDir; we are inside the new root, so `..` and
    # symlinks in it cannot lead anywhere else.
    try:
        os.makedirs(cwd, 0o755, exist_ok=True)
    except OSError:
        pass  # chdir reports the real problem


def run_child(spec: dict, rootfs_mount: Mount | None, stdio: Any, err_fd: int,
              console_fd: int | None = None) -> None:
    """Become the container described by `spec` and exec its process. Never returns.

    Called as PID 1 of a fresh pid namespace, in the container's cgroup (the caller puts it
    there before forking, so the cgroup namespace unshared here is rooted at that cgroup).
    `console_fd`: a unix socket; when given, the terminal is a new pty of the container's own
    devpts, its master sent on that socket (SCM_RIGHTS) and `stdio` ignored. The pty gets
    `process.consoleSize` ({"height", "width"}) before the process starts.
    """
    try:
        process = spec.get("process") or {}
        linux = spec.get("linux") or {}
        annotations = spec.get("annotations") or {}
        os.setsid()
        terminal = bool(process.get("terminal")) or console_fd is not None
        tty_path = None
        if console_fd is None:
            _setup_stdio(stdio, terminal)
            tty_path = os.ttyname(0) if terminal and os.isatty(0) else None
        flags, joins, user_fd = _namespaces(linux.get("namespaces") or [])
        for fd, flag in joins:
            sc.setns(fd, flag)
            os.close(fd)
        if "oomScoreAdj" in process:  # before a user namespace: lowering it needs host caps
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(int(process["oomScoreAdj"])))
        if user_fd is not None:
            # The overlay is mounted with the host root's credentials first (see userns.nsfork
            # .enter_user); everything unshared after this is owned by the user namespace.
            spec = _userns.enter_user(spec, rootfs_mount, user_fd)
            rootfs_mount = None
        if flags:
            sc.unshare(flags)
        if flags & sc.CLONE_NEWNET:
            sc.set_loopback_up()
        _prepare_rootfs(spec, rootfs_mount, tty_path)
        if console_fd is not None:
            # After pivot_root, before the read-only remounts (runc's order): /dev/ptmx is
            # the container's devpts now, and /dev/console can still be bound over.
            _setup_console(console_fd, process.get("consoleSize"), _dev_is_ours(spec))
        if linux.get("sysctl"):
            _rootfs.write_sysctls(linux["sysctl"])
        uts_new = bool(flags & sc.CLONE_NEWUTS) or any(
            n.get("type") == "uts" and n.get("path") for n in linux.get("namespaces") or [])
        if uts_new and spec.get("hostname"):
            sc.sethostname(spec["hostname"])
        if uts_new and spec.get("domainname"):
            sc.setdomainname(spec["domainname"])
        _rootfs.mask_paths(linux.get("maskedPaths") or [])
        _rootfs.readonly_paths(linux.get("readonlyPaths") or [])
        cwd = process.get("cwd") or "/"
        _make_cwd(cwd)
        if (spec.get("root") or {}).get("readonly"):
            _rootfs.readonly_root()
        _finish(process, annotations, err_fd, linux.get("seccomp"))
    except _ExecError as e:
        _fail(err_fd, str(e), e.exit_code)
    except SampanError as e:
        _fail(err_fd, str(e), EXIT_SETUP)
    except BaseException as e:  # noqa: BLE001 - a forked child must never return
        _fail(err_fd, _describe(e), EXIT_SETUP)
    os._exit(EXIT_SETUP)


def _join_cgroup(cgroup_path: Any) -> None:
    paths = [cgroup_path] if isinstance(cgroup_path, str) else list(cgroup_path)
    for p in paths:
        # v1: `tasks` moves this single-threaded process without the global rwsem whose
        # write side waits an RCU grace period (12 ms per exec here); v2 has cgroup.procs only.
        t = os.path.join(p, "tasks")
        with open(t if os.path.exists(t) else os.path.join(p, "cgroup.procs"), "w") as f:
            f.write("0")


# setns order: the mount namespace last, because joining it changes what paths mean; then the
# user namespace, once we no longer need the host's root for the others (a network namespace
# the daemon made is owned by the host's user namespace).
_EXEC_NS_ORDER = ("cgroup", "ipc", "uts", "net", "network", "mnt", "mount", "user")


def exec_child(process: dict, ns_fds: dict[str, int], stdio: Any, err_fd: int,
               cgroup_path: Any = None, console_fd: int | None = None) -> None:
    """Join a running container (`docker exec`) and exec `process`. Never returns.

    `ns_fds`: {"mnt"|"uts"|"ipc"|"net"|"cgroup": fd opened on /proc/<pid1>/ns/<name>} (OCI
    names "mount"/"network" accepted too). `cgroup_path`: the container's cgroup directory
    (or several, for v1 hierarchies) to join first. `console_fd`: as for `run_child`; the
    pty comes from the container's devpts once its mount namespace is joined.
    """
    try:
        os.setsid()
        terminal = bool(process.get("terminal")) or console_fd is not None
        if console_fd is None:
            _setup_stdio(stdio, terminal)
        if cgroup_path:
            _join_cgroup(cgroup_path)
        flag_of = {"cgroup": sc.CLONE_NEWCGROUP, "ipc": sc.CLONE_NEWIPC,
                   "uts": sc.CLONE_NEWUTS, "net": sc.CLONE_NEWNET,
                   "network": sc.CLONE_NEWNET, "mnt": sc.CLONE_NEWNS, "mount": sc.CLONE_NEWNS}
        for name in _EXEC_NS_ORDER:
            fd = ns_fds.get(name)
            if fd is None:
                continue
            if name == "user":
                _userns.join_user(fd)
            else:
                sc.setns(fd, flag_of[name])
        os.chdir("/")
        if console_fd is not None:
            _setup_console(console_fd, process.get("consoleSize"), False)
        _finish(process, {}, err_fd, process.get("seccomp"))
    except _ExecError as e:
        _fail(err_fd, str(e), e.exit_code)
    except SampanError as e:
        _fail(err_fd, str(e), EXIT_SETUP)
    except BaseException as e:  # noqa: BLE001
        _fail(err_fd, _describe(e), EXIT_SETUP)
    os._exit(EXIT_SETUP)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = f" {e.filename}" if e.filename else ""
        return f"unable to start container process: {e.strerror}{where}"
    return f"unable to start container process: {e}"
