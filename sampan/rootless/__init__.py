"""Rootless mode: `sampand` run by an ordinary user.

The daemon re-executes itself inside a user namespace built with newuidmap/newgidmap (its
user's uid as root, its /etc/subuid range for the rest) plus its own mount and network
namespaces, with slirp4netns giving that network namespace a way out (`reexec`). Inside,
it is root of its namespace: overlay (kernel >= 5.11), namespaces and its own bridge work;
cgroups are not delegated here, so resource limits are refused (`cgroups`).

- `paths`: Docker's rootless locations ($XDG_DATA_HOME/sampan, $XDG_RUNTIME_DIR/sampan).
- `reexec`: the parent side (maps, slirp4netns, signal forwarding) and the child's set-up.
- `cgroups`: the cgroup manager used when none is delegated.
"""

from __future__ import annotations

import os

ENV_CHILD = "_SAMPAN_ROOTLESS_CHILD"


_in_child: bool | None = None


def in_child() -> bool:
    """True inside the re-executed daemon (root of the rootless user namespace). The marker
    alone is not trusted: a daemon in the host's user namespace is never rootless."""
    global _in_child
    if _in_child is None:
        _in_child = os.environ.get(ENV_CHILD) == "1" and not _initial_userns()
    return _in_child


def _initial_userns() -> bool:
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


def validate_create(host_config: dict) -> None:
    """What a rootless daemon cannot do yet, refused at create with a clear message."""
    from ..errors import InvalidParameter
    from .ports import api_path
    ports = host_config.get("PortBindings") or {}
    if api_path() is None and (
            (isinstance(ports, dict) and any(ports.values())) or host_config.get("PublishAllPorts")):
        raise InvalidParameter(
            "published ports are not supported by this rootless daemon yet: the host's ports "
            "are not forwarded into its network namespace (reach containers from another "
            "container, or run the daemon as root)")
