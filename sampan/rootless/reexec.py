"""Starting a rootless daemon: the parent (an ordinary user) builds a user namespace with
newuidmap/newgidmap, plus mount and network namespaces, gives the network namespace a way out
with slirp4netns, and re-executes `sampand` inside as its root (RootlessKit's job, in-process).

Why the daemon gets a network namespace of its own: as root of its user namespace it may make
bridges, veths and nftables rules only in a network namespace that namespace owns; slirp4netns
(user-mode TCP/IP) connects that namespace to the host's network without privileges, and its
gateway 10.0.2.2 reaches the host's loopback. The parent stays behind to own slirp4netns and to
forward SIGTERM/SIGINT; it exits with the daemon's status.
"""

from __future__ import annotations

import os
import pwd
import grp
import shutil
import signal
import subprocess
import sys
from typing import Sequence

from ..errors import InvalidParameter
from ..userns.idmap import parse_subid
from . import ENV_CHILD
from .paths import RootlessPaths, resolve as resolve_paths
from .ports import ENV_API

SLIRP_MTU = 65520
SLIRP_TAP = "tap0"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read(16 << 20)
    except OSError:
        return ""


def subid_args(uid: int, gid: int) -> tuple[list[str], list[str]]:
    """newuidmap/newgidmap arguments after the pid: our own id as 0, the first subordinate
    range from 1 (what rootless Docker and Podman map)."""
    try:
        uname = pwd.getpwuid(uid).pw_name
    except KeyError:
        uname = str(uid)
    try:
        gname = grp.getgrgid(gid).gr_name
    except KeyError:
        gname = str(gid)
    su = parse_subid(_read("/etc/subuid"), (uname, str(uid)))
    sg = parse_subid(_read("/etc/subgid"), (uname, str(uid), gname, str(gid)))
    if not su or not sg:
        raise InvalidParameter(
            f"rootless mode needs subordinate ids: add a range for {uname} to /etc/subuid and "
            f"/etc/subgid (e.g. `usermod --add-subuids 100000-165535 --add-subgids "
            f"100000-165535 {uname}`)")
    return ["0", str(uid), "1", "1", str(su[0][0]), str(su[0][1])], \
        ["0", str(gid), "1", "1", str(sg[0][0]), str(sg[0][1])]


def _tools() -> tuple[str, str, str]:
    found = [shutil.which(t) for t in ("newuidmap", "newgidmap", "slirp4netns")]
    missing = [t for t, p in zip(("newuidmap", "newgidmap", "slirp4netns"), found) if not p]
    if missing:
        raise InvalidParameter(f"rootless mode needs {', '.join(missing)} (Debian packages "
                               f"`uidmap` and `slirp4netns`; scripts/install.sh installs them)")
    return found[0], found[1], found[2]  # type: ignore[return-value]


def child_argv(argv: Sequence[str], paths: RootlessPaths) -> list[str]:
    """The daemon's own arguments, with the rootless locations for those not given."""
    args = list(argv)
    have = set(a.split("=", 1)[0] for a in args)
    def given(*names: str) -> bool:
        return any(n in have for n in names)
    if not given("--data-root"):
        args += ["--data-root", str(paths.data_root)]
    if not given("--exec-root"):
        args += ["--exec-root", str(paths.exec_root)]
    if not given("-H", "--host"):
        args += ["-H", paths.socket]
    if not given("-p", "--pidfile"):
        args += ["--pidfile", str(paths.pidfile)]
    if not given("--config-file"):
        args += ["--config-file", str(paths.config_file)]
    return args


def _child_setup() -> None:
    """In the child, once mapped: become root of the namespace, then our own mount and network
    namespaces; a fresh sysfs shows our network namespace (the host's cgroup tree is put back
    under it: nothing here writes to it, but what reads it keeps working)."""
    from ..linux import syscalls as sc
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    try:
        os.setgroups([])
    except OSError:
        pass
    sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWNET)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.set_loopback_up()
    cg = None
    try:
        cg = os.open("/sys/fs/cgroup", os.O_PATH | os.O_CLOEXEC)
    except OSError:
        pass
    try:
        sc.mount("sysfs", "/sys", "sysfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
        if cg is not None:
            sc.mount(f"/proc/self/fd/{cg}", "/sys/fs/cgroup", None, sc.MS_BIND | sc.MS_REC)
    except OSError:
        pass  # the host's /sys then: interface listings show the host's, nothing breaks
    finally:
        if cg is not None:
            os.close(cg)


def main(argv: Sequence[str]) -> int:
    """Parent side: returns the daemon's exit status."""
    newuidmap, newgidmap, slirp = _tools()
    paths = resolve_paths()
    uid_args, gid_args = subid_args(os.getuid(), os.getgid())
    for d in (paths.data_root, paths.run_dir, paths.exec_root, paths.config_file.parent):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not os.path.exists("/dev/net/tun") or not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        raise InvalidParameter(
            "rootless networking (slirp4netns) needs /dev/net/tun readable and writable by this "
            "user (mode 0666 is Debian's default; here it is not)")
    if not paths.config_file.exists() and not any(a.startswith("--config-file") for a in argv):
        # The daemon would otherwise read the system daemon's /etc/sampan/daemon.json.
        paths.config_file.write_text("{}\n")
    args = child_argv(argv, paths)
    api = str(paths.exec_root / "slirp4netns.sock")  # published ports (rootless.ports)
    go_r, go_w = os.pipe()
    up_r, up_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)
            os.close(up_r)
            from ..linux import syscalls as sc
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(up_w, b"u")
            if os.read(go_r, 1) != b"m":
                os._exit(1)
            _child_setup()
            os.write(up_w, b"n")
            if os.read(go_r, 1) != b"r":
                os._exit(1)
            os.close(go_r)
            os.close(up_w)
            env = dict(os.environ, **{ENV_CHILD: "1", ENV_API: api})
            os.execve(sys.executable, [sys.executable, "-m", "sampan.daemon.main", *args], env)
        except BaseException as e:  # noqa: BLE001 - a forked child must never return
            try:
                os.write(2, f"sampand (rootless): {e}\n".encode())
            except OSError:
                pass
        os._exit(1)
    os.close(go_r)
    os.close(up_w)
    slirp_proc = None
    try:
        if os.read(up_r, 1) != b"u":
            raise InvalidParameter("rootless: could not create a user namespace")
        for tool, extra in ((newuidmap, uid_args), (newgidmap, gid_args)):
            r = subprocess.run([tool, str(pid), *extra], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise InvalidParameter(f"rootless: {os.path.basename(tool)} failed: "
                                       f"{(r.stderr or r.stdout).strip()}")
        os.write(go_w, b"m")
        if os.read(up_r, 1) != b"n":
            raise InvalidParameter("rootless: setting up the daemon's namespaces failed")
        ready_r, ready_w = os.pipe()
        try:
            os.unlink(api)
        except FileNotFoundError:
            pass
        slirp_proc = subprocess.Popen(
            [slirp, "--configure", f"--mtu={SLIRP_MTU}", f"--ready-fd={ready_w}",
             f"--api-socket={api}", str(pid), SLIRP_TAP],
            pass_fds=(ready_w,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(ready_w)
        ok = os.read(ready_r, 1)
        os.close(ready_r)
        if ok != b"1":
            raise InvalidParameter("rootless: slirp4netns did not come up")
        os.write(go_w, b"r")
    except BaseException:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(pid, 0)
        if slirp_proc is not None:
            slirp_proc.kill()
        raise
    finally:
        os.close(go_w)
        os.close(up_r)

    def forward(sig: int, _frame: object) -> None:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    slirp_proc.terminate()
    try:
        slirp_proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        slirp_proc.kill()
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1
