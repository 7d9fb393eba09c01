"""What the container lifecycle calls: mount points at create, OCI mounts at start, volume
release at remove. The engine stores the mount points (dicts) in the container record.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidParameter
from .copyup import is_empty_dir
from .mounts import MountPoint, collect, parse_volumes_from


def prepare(engine: Any, config: dict, host: dict) -> tuple[list[dict], list[str]]:
    """Create-time: validate every mount, create the volumes named (and anonymous ones).

    Returns (mount point dicts for the container record, names of volumes created here —
    pass them to `engine.volumes.discard` if the create fails later)."""
    vf_points: list[list[MountPoint]] = []
    vf_modes: list[str] = []
    for spec in host.get("VolumesFrom") or []:
        name, mode = parse_volumes_from(spec)
        other = engine.containers.get(name)
        vf_points.append([MountPoint.from_dict(d) for d in getattr(other, "mounts", None) or []])
        vf_modes.append(mode)
    mps = collect(config, host, vf_points, vf_modes)
    for mp in mps:
        if mp.Type == "bind" and not mp.CreateSource and not os.path.exists(mp.Source):
            raise InvalidParameter(f'invalid mount config for type "bind": bind source path does '
                                   f"not exist: {mp.Source}")
    created = engine.volumes.provision(mps)
    return [mp.to_dict() for mp in mps], created


def _tmpfs_options(mp: MountPoint) -> list[str]:
    opts = ["nosuid", "nodev", "noexec"]
    t = mp.TmpfsOptions or {}
    if t.get("SizeBytes"):
        opts.append(f"size={int(t['SizeBytes'])}")
    if t.get("Mode"):
        opts.append(f"mode={int(t['Mode']):o}")
    return opts


async def start_mounts(engine: Any, c: Any) -> list[dict]:
    """Start-time: OCI mount dicts for `build_spec(mounts=...)`, after making `-v` bind sources
    that are missing, mounting volumes with driver options and copying image content into
    empty volumes (called with the container's lock held)."""
    out: list[dict] = []
    copy: list[tuple[str, str]] = []
    for d in getattr(c, "mounts", None) or []:
        mp = MountPoint.from_dict(d)
        ro = [] if mp.RW else ["ro"]
        if mp.Type == "bind":
            if not os.path.exists(mp.Source):
                if not mp.CreateSource:
                    raise InvalidParameter(f'invalid mount config for type "bind": bind source '
                                           f"path does not exist: {mp.Source}")
                os.makedirs(mp.Source, 0o755, exist_ok=True)
            out.append({"destination": mp.Destination, "type": "bind", "source": mp.Source,
                        "options": ["bind" if mp.NonRecursive else "rbind",
                                    mp.Propagation or "rprivate"] + ro})
        elif mp.Type == "volume":
            engine.volumes.get(mp.Name)  # gone (removed by hand from the DB)? a clear error
            engine.volumes.ensure_mounted(mp.Name)
            src = engine.volumes.mountpoint(mp.Name)
            if mp.CopyData and is_empty_dir(src):
                copy.append((mp.Destination, src))
            out.append({"destination": mp.Destination, "type": "bind", "source": src,
                        "options": ["rbind", mp.Propagation or "rprivate"] + ro})
        elif mp.Type == "tmpfs":
            out.append({"destination": mp.Destination, "type": "tmpfs", "source": "tmpfs",
                        "options": _tmpfs_options(mp) + ro})
    if copy:
        await engine.containerfs.copyup(c, copy)
    return out


def on_removed(engine: Any, c: Any, remove_volumes: bool) -> None:
    """After a container is gone: with `rm -v` (and `--rm`), its anonymous volumes go too."""
    if not remove_volumes:
        return
    names = [d.get("Name", "") for d in getattr(c, "mounts", None) or []
             if d.get("Type") == "volume" and d.get("Anonymous")]
    engine.volumes.remove_anonymous([n for n in names if n])


def usage(engine: Any) -> list[tuple[str, list[dict]]]:
    return [(c.id, getattr(c, "mounts", None) or []) for c in engine.containers.all()]


def public_mounts(c: Any) -> list[dict]:
    return [MountPoint.from_dict(d).public() for d in getattr(c, "mounts", None) or []]
