"""Making a container's user namespace (with its id maps), and entering it.

Why a helper process: a uid_map can only be written for a *process* in the namespace, and the
monitor itself must stay in the host's namespaces (it joins cgroups and network namespaces and
serves exec as real root). So a short-lived child unshares the user namespace, the monitor
(root in the parent namespace: no newuidmap, no `setgroups=deny`) writes the maps and keeps the
namespace by fd; the child exits. The container's init joins it by that fd (`enter_user`).

The pid namespace stays the monitor's (`unshare(CLONE_NEWPID)` before forking the init, so the
init is pid 1): a pid namespace's /proc can only be opened for `setns` once it has an init, so
one owned by the user namespace would need the init to be forked from inside it (a second
process level between monitor and container). Instead the init mounts the container's /proc
with the host's root credentials before it joins the user namespace. The container's root has
no capabilities over its pid namespace then (fewer powers than runc's layout, not more).
"""

from __future__ import annotations

import os

from ..linux import syscalls as sc
from .idmap import IdMap


def _read1(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, 1)
        except InterruptedError:
            continue


NS_GET_USERNS = 0xB701  # ioctl on a namespace fd: an fd of the user namespace owning it


def owner_userns(ns_path: str) -> int | None:
    """An fd of the user namespace owning the namespace at `ns_path`, unless that is ours."""
    import fcntl
    fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        ufd = fcntl.ioctl(fd, NS_GET_USERNS)
    finally:
        os.close(fd)
    if os.fstat(ufd).st_ino == os.stat("/proc/self/ns/user").st_ino:
        os.close(ufd)
        return None
    os.set_inheritable(ufd, False)
    return ufd


def make_namespaces(idmap: IdMap, with_pidns: bool = False,
                    netns_path: str | None = None) -> tuple[int, None]:
    """(fd of a new user namespace with `idmap` written, None); close-on-exec.

    `netns_path`: also make a network namespace owned by the new user namespace (as runc does
    for Docker: root in the container then has its network capabilities there: ports below
    1024, raw sockets), with `lo` up, bind-mounted at that existing empty file."""
    if with_pidns:
        raise ValueError("a pid namespace is not made here (see the module docstring)")
    to_child_r, to_child_w = os.pipe2(os.O_CLOEXEC)
    to_parent_r, to_parent_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(to_child_w)
            os.close(to_parent_r)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(to_parent_w, b"u")
            if _read1(to_child_r) != b"m":
                os._exit(1)
            if netns_path is not None:
                sc.unshare(sc.CLONE_NEWNET)
                sc.set_loopback_up()
            os.write(to_parent_w, b"n")
            _read1(to_child_r)  # the parent has opened (and mounted) what it needs
            code = 0
        except BaseException:  # noqa: BLE001 - a forked child must never return
            pass
        os._exit(code)
    os.close(to_child_r)
    os.close(to_parent_w)
    try:
        if _read1(to_parent_r) != b"u":
            raise OSError("user namespace helper failed to unshare CLONE_NEWUSER")
        for name, text in (("uid_map", idmap.uid_map_text()), ("gid_map", idmap.gid_map_text())):
            fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, text.encode())  # one write each: the kernel takes no second
            finally:
                os.close(fd)
        os.write(to_child_w, b"m")
        if _read1(to_parent_r) != b"n":
            raise OSError("user namespace helper failed to make its network namespace")
        if netns_path is not None:
            sc.mount(f"/proc/{pid}/ns/net", netns_path, None, sc.MS_BIND)
        user_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        try:
            os.write(to_child_w, b"x")
        except OSError:
            pass
        os.close(to_child_w)
        os.close(to_parent_r)
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
    return user_fd, None


def join_user(fd: int) -> None:
    """Enter the user namespace `fd` and become its root (runc's order: setns, then
    setresgid/setresuid to 0, so our credentials are the mapped root and not the overflow id).
    Joining needs a single-threaded caller with an unshared fs struct: a freshly forked child."""
    sc.setns(fd, sc.CLONE_NEWUSER)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    try:
        os.setgroups([])
    except OSError:
        pass


def enter_user(spec: dict, rootfs_mount: object, user_fd: int) -> dict:
    """In the container's init (pid 1 of its pid namespace), before the namespaces it
    creates: in a mount namespace of the host's root, mount its rootfs and its /proc; then
    join the user namespace `user_fd`. Returns the spec without the proc mounts done here.

    Why the rootfs first: overlayfs mounted from inside a user namespace would check every
    lower layer with the namespace's credentials and ignore `trusted.overlay.*` opaque markers
    (an unprivileged mount can only use `user.overlay.*`). Mounted by the host's root, copy-up
    keeps the shifted owners and the layers work as they are; the container's own mount
    namespace (unshared right after, owned by the user namespace) inherits the mounts.
    Why /proc: see the module docstring.
    """
    from ..runtime.mounts import Mount, perform
    from ..runtime.rootfs import make_mountpoint

    root = os.path.abspath(spec["root"]["path"])
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
    if rootfs_mount is not None:
        os.makedirs(root, 0o755, exist_ok=True)
        perform(rootfs_mount, root)  # type: ignore[arg-type]
    # sysfs shows the network namespace of whoever mounts it, and only a namespace's owner
    # may: one the daemon made (owned by the host's user namespace) is mounted here, so the
    # container sees its own interfaces (runc binds the host's /sys instead, showing the
    # host's). A network namespace created later, inside the user namespace, mounts its own.
    net_later = any(n.get("type") == "network" and not n.get("path")
                    for n in (spec.get("linux") or {}).get("namespaces") or [])
    early = ("proc",) if net_later else ("proc", "sysfs")
    rest = []
    for m in spec.get("mounts") or []:
        if m.get("type") in early:
            path = make_mountpoint(root, m.get("destination") or "/proc", True)
            perform(Mount(m["type"], m["type"], path, tuple(m.get("options") or ())))
        else:
            rest.append(m)
    join_user(user_fd)
    os.close(user_fd)
    return dict(spec, mounts=rest)
