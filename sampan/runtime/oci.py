"""Handing a container to an external OCI runtime (`--runtime runc|crun`).

The spec `build_spec` makes keeps the user symbolic; an external runtime needs numbers, so
`write_bundle` resolves it against the rootfs (which must be mounted at `root.path` by then),
safely: /etc/passwd in an image may be a symlink aimed at the host's.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat

from ..errors import InvalidParameter, Unavailable
from .rootfs import secure_join
from .spec import ANN_GROUPS, ANN_USER
from .users import MAX_FILE, resolve

KNOWN_RUNTIMES = ("runc", "crun")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _read_in_root(root: str, path: str) -> str | None:
    try:
        real = secure_join(root, path)
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, MAX_FILE).decode("utf-8", "replace")
    finally:
        os.close(fd)


def resolve_spec_user(spec: dict) -> dict:
    """A copy of `spec` with process.user numeric, HOME set and caps as Docker gives the user.

    Raises InvalidParameter (Docker's message) for an unknown user or group name.
    """
    spec = copy.deepcopy(spec)
    root = spec["root"]["path"]
    ann = spec.get("annotations") or {}
    proc = spec["process"]
    if ANN_USER in ann:
        groups = [g for g in ann.get(ANN_GROUPS, "").split(",") if g]
        u = resolve(ann[ANN_USER], _read_in_root(root, "/etc/passwd"),
                    _read_in_root(root, "/etc/group"), groups)
        proc["user"] = {"uid": u.uid, "gid": u.gid}
        if u.sgids:
            proc["user"]["additionalGids"] = list(u.sgids)
        if not any(e.startswith("HOME=") for e in proc.get("env", [])):
            proc.setdefault("env", []).append("HOME=" + u.home)
        if u.uid != 0:
            # Same result as our own runtime: non-root processes hold no capabilities.
            caps = proc.get("capabilities") or {}
            for key in ("effective", "permitted", "inheritable", "ambient"):
                caps.pop(key, None)
    return spec


def write_bundle(bundle_dir: str, spec: dict, *, resolve_user: bool = True) -> str:
    """Write `bundle_dir`/config.json atomically; returns its path.

    With `resolve_user`, root.path must already hold the mounted rootfs: the user is
    resolved against it and a missing working directory is created in it (as Docker does).
    """
    if resolve_user:
        spec = resolve_spec_user(spec)
        root = spec["root"]["path"]
        cwd = spec["process"].get("cwd") or "/"
        try:
            os.makedirs(secure_join(root, cwd), 0o755, exist_ok=True)
        except OSError:
            pass  # the runtime reports an unusable cwd itself
    os.makedirs(bundle_dir, 0o711, exist_ok=True)
    final = os.path.join(bundle_dir, "config.json")
    tmp = os.path.join(bundle_dir, f".config.json.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        os.write(fd, json.dumps(spec, indent=1).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    return final


def runtime_binary(runtime: str) -> str:
    if runtime not in KNOWN_RUNTIMES and not os.path.isabs(runtime):
        raise InvalidParameter(f"unknown or invalid runtime name: {runtime}")
    path = runtime if os.path.isabs(runtime) else shutil.which(runtime)
    if not path or not os.access(path, os.X_OK):
        raise Unavailable(f"runtime {runtime!r} is not installed on this host")
    return path


def runtime_argv(runtime: str, bundle_dir: str, container_id: str,
                 state_root: str | None = None) -> list[str]:
    """argv for the monitor to exec in place of `run_child`: `runc run` in the foreground
    (the runtime stays our child, forwards signals and exits with the container's status).
    The monitor must not unshare the pid namespace itself for this path: the runtime does.
    """
    if not _ID.match(container_id):
        raise InvalidParameter(f"invalid container id: {container_id!r}")
    argv = [runtime_binary(runtime)]
    if state_root:
        argv += ["--root", state_root]
    return argv + ["run", "--bundle", bundle_dir, container_id]


def runtime_delete_argv(runtime: str, container_id: str, state_root: str | None = None) -> list[str]:
    """argv that removes leftover runtime state (`runc delete --force`), for cleanup."""
    if not _ID.match(container_id):
        raise InvalidParameter(f"invalid container id: {container_id!r}")
    argv = [runtime_binary(runtime)]
    if state_root:
        argv += ["--root", state_root]
    return argv + ["delete", "--force", container_id]
