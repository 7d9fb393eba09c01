"""What `--userns-remap` changes in a container's OCI spec, and what it refuses at create.

Pure functions over dicts (unit-tested without root). Docker's rules (moby daemon
verifyPlatformContainerSettings / oci WithNamespaces): a remapped daemon puts every container in
a user namespace with the daemon's map unless `--userns=host`; `--privileged` and `--pid=host`
need `--userns=host`; a container sharing another container's namespaces joins that
container's user namespace too, so the namespaces it shares are owned by the one it is in.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidParameter
from .idmap import IdMap

_PROC_NS = re.compile(r"^/proc/(\d+)/ns/[a-z_]+$")


def _mode(hc: dict, key: str) -> str:
    v = hc.get(key)
    return v if isinstance(v, str) else ""


def validate_userns_mode(hc: dict) -> None:
    mode = _mode(hc, "UsernsMode")
    if mode not in ("", "host"):
        raise InvalidParameter(f"invalid USER mode: {mode}")


def validate(hc: dict, idmap: IdMap | None) -> None:
    """Create-time checks (400s before anything exists)."""
    validate_userns_mode(hc)
    if idmap is None or _mode(hc, "UsernsMode") == "host":
        return
    if hc.get("Privileged"):
        raise InvalidParameter(
            "privileged mode is incompatible with user namespaces.  You must run the container "
            "in the host namespace when running privileged mode")
    if _mode(hc, "PidMode") == "host":
        raise InvalidParameter("cannot share the host PID namespace when user namespaces are enabled")
    runtime = hc.get("Runtime") or "sampan"
    if runtime != "sampan":
        # The daemon makes the network namespace inside the container's user namespace, which
        # runc/crun would have to join by path; they make their own instead (and then cannot
        # mount /sys for a namespace they do not own). Not wired up yet: refused, not half-run.
        raise InvalidParameter(f"runtime {runtime} is not supported with --userns-remap yet: "
                               f"use sampan's runtime, or --userns host")


def wanted(hc: dict, idmap: IdMap | None) -> bool:
    return idmap is not None and _mode(hc, "UsernsMode") != "host"


def apply(spec: dict[str, Any], hc: dict, idmap: IdMap | None) -> dict[str, Any]:
    """Add the user namespace to `spec` (in place; returned for chaining) when wanted."""
    if not wanted(hc, idmap):
        return spec
    assert idmap is not None
    linux = spec.setdefault("linux", {})
    namespaces = linux.setdefault("namespaces", [])
    if any(n.get("type") == "user" for n in namespaces):
        return spec
    user: dict[str, Any] = {"type": "user"}
    for n in namespaces:
        m = _PROC_NS.match(n.get("path") or "")
        if m:  # container:<id> mode: that container's user namespace owns what we join
            user["path"] = f"/proc/{m.group(1)}/ns/user"
            break
    namespaces.insert(0, user)
    linux.update(idmap.oci())
    kinds = {n.get("type"): n for n in namespaces}
    ipc = kinds.get("ipc")
    if ipc is None or (ipc.get("path") and "path" not in user):
        # An IPC namespace we do not own: mqueue cannot be mounted from inside the user
        # namespace, so the host's (or that namespace's) is bound instead, as runc does.
        for m in spec.get("mounts") or []:
            if m.get("type") == "mqueue":
                m.update(type="bind", source="/dev/mqueue",
                         options=["rbind", "nosuid", "noexec", "nodev"])
    return spec


def idmap_of_spec(spec: dict) -> IdMap | None:
    """The map a spec asks the runtime to create (None: no new user namespace to make)."""
    linux = spec.get("linux") or {}
    for n in linux.get("namespaces") or []:
        if n.get("type") == "user":
            if n.get("path"):
                return None
            from .idmap import IdRange
            conv = lambda rs: tuple(IdRange(int(r["containerID"]), int(r["hostID"]),  # noqa: E731
                                            int(r["size"])) for r in rs or ())
            return IdMap(conv(linux.get("uidMappings")), conv(linux.get("gidMappings")))
    return None


def user_ns_path(spec: dict) -> str | None:
    for n in (spec.get("linux") or {}).get("namespaces") or []:
        if n.get("type") == "user":
            return n.get("path") or None
    return None
