"""The calls the core makes into user-namespace support; each is a no-op without remapping.

Kept here so the hooks in the engine, monitor, runtime, workers and layer store stay one line
each. Everything is imported at module level: monitors and workers are forked from the
threaded daemon and must not import after the fork.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from ..linux import syscalls as sc
from . import spec as _spec
from .idmap import IdMap
from .nsfork import join_user, make_namespaces, owner_userns
from .remap import active
from .shift import chown_to_root, shift_tree


def validate_create(host_config: dict) -> None:
    _spec.validate(host_config, active())
    from .. import rootless
    if rootless.in_child():
        rootless.validate_create(host_config)


def prepare_start(c: Any, spec: dict) -> dict:
    """Add the user namespace to a container's spec and give root in it what root owns
    without remapping: its rw layer's top directory and its /etc/hosts, hostname and
    resolv.conf (bind-mounted files root in the container must be able to rewrite)."""
    idmap = active()
    _spec.apply(spec, c.host_config, idmap)
    if idmap is not None and _spec.wanted(c.host_config, idmap):
        d = c.dir
        chown_to_root([os.path.join(d, n) for n in ("upper", "hosts", "hostname", "resolv.conf")]
                      + ([c.rootfs] if getattr(c, "driver", "") == "vfs" else []), idmap)
    return spec


def make_monitor_userns(spec: dict) -> None:
    """In the monitor, before it forks the container's init: make the container's user
    namespace with its maps (see nsfork) and point the spec's user namespace at it, by an fd
    the init inherits. No-op when the spec asks for none or joins an existing one."""
    idmap = _spec.idmap_of_spec(spec)
    if idmap is None:
        return
    user_fd = None
    net = next((n.get("path") for n in spec["linux"]["namespaces"]
                if n.get("type") == "network" and n.get("path")), None)
    if net:
        # The daemon made the network namespace inside a user namespace with our map
        # (create_netns below): the container must be in that one to own its network.
        user_fd = owner_userns(net)
    if user_fd is None:
        user_fd, _ = make_namespaces(idmap)
    for n in spec["linux"]["namespaces"]:
        if n.get("type") == "user":
            n["path"] = f"/proc/self/fd/{user_fd}"


def create_netns(path: str) -> bool:
    """For the network code: make the network namespace at `path` inside a fresh user
    namespace with the daemon's map (False: no remapping, the caller makes a plain one).
    The namespace keeps its user namespace alive; the container joins both."""
    idmap = active()
    if idmap is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        user_fd, _ = make_namespaces(idmap, netns_path=path)
        os.close(user_fd)
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    return True


def shift_layer(diff_dir: str) -> None:
    """A freshly unpacked layer into the daemon's mapping (no-op without remapping)."""
    idmap = active()
    if idmap is not None:
        shift_tree(diff_dir, idmap, to_host=True)


def chown_to_mapped_root(path: str) -> None:
    """A directory the container's root must own (a new volume's `_data`)."""
    idmap = active()
    if idmap is not None:
        chown_to_root([path], idmap)


def tar_owner() -> Callable[[int, int], tuple[int, int]] | None:
    """Host ids -> the ids a produced layer tar carries (commit, diff): the container's view.
    A host id outside the map (something the host's root put in the rw layer) is written as
    root's: in the container it was the overflow id, and a committed image must stay usable."""
    idmap = active()
    if idmap is None:
        return None

    def owner(uid: int, gid: int) -> tuple[int, int]:
        return _back(idmap.uids, uid), _back(idmap.gids, gid)
    return owner


def _back(ranges: Any, n: int) -> int:
    for r in ranges:
        if r.host <= n < r.host + r.size:
            return n - r.host + r.container
    return 0


def security_options() -> list[str]:
    from .. import rootless
    out = ["name=userns"] if active() is not None else []
    if rootless.in_child():
        out.append("name=rootless")
    return out


def worker_userns(host_config: dict) -> dict | None:
    """For a cp/export worker's View: the map to see the container's files through (None: the
    container is not remapped)."""
    idmap = active()
    if not _spec.wanted(host_config, idmap):
        return None
    assert idmap is not None
    return idmap.to_json()


def worker_userns_fd(pid: int, idmap_json: dict | None) -> int | None:
    """In the worker child, before it enters anything (so /proc is still the host's): an fd of
    the running container's user namespace, or of a fresh one with the same map for a stopped
    container; None when the container is not remapped."""
    if idmap_json is None:
        return None
    if pid > 0:
        try:
            return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass  # it exited meanwhile: a fresh namespace with the same map shows the same
    fd, _ = make_namespaces(IdMap.from_json(idmap_json))
    return fd


def worker_join(fd: int) -> None:
    """In the worker child, after its mounts: enter the user namespace `fd`, so stat, chown
    and the tar headers it writes carry container ids and files it creates are owned as the
    container's root would own them — the kernel does the translation."""
    try:
        join_user(fd)
    finally:
        os.close(fd)
