"""A container's mount points, parsed from its create body as Docker does.

Pure logic (no files touched): `-v` strings (HostConfig.Binds), `--mount` objects
(HostConfig.Mounts), anonymous volume paths (Config.Volumes, which also carries the image's
VOLUME list) and `--volumes-from`. The result is a list of `MountPoint`s, stored in the
container record; the volume service turns them into real volumes and OCI mounts.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidParameter

VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_CONSISTENCY = ("consistent", "cached", "delegated")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


@dataclass
class MountPoint:
    """One mount of a container (moby's MountPoint), plus what sampan needs to set it up."""
    Type: str                       # volume | bind | tmpfs
    Destination: str
    Source: str = ""                # host path (binds) or the volume's mountpoint, filled later
    Name: str = ""                  # volume name ("" = anonymous, named at creation)
    Driver: str = ""
    Mode: str = ""
    RW: bool = True
    Propagation: str = ""
    CopyData: bool = True           # copy the image's content into an empty volume
    Anonymous: bool = False         # created for this container: `rm -v` removes it
    NonRecursive: bool = False
    CreateSource: bool = False      # `-v /missing:/p` creates /missing on the host
    VolumeOptions: dict[str, Any] = field(default_factory=dict)  # labels/driver opts
    TmpfsOptions: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """As Docker shows it in `inspect` and `ps` (`Mounts`)."""
        out: dict[str, Any] = {"Type": self.Type}
        if self.Type == "volume":
            out["Name"] = self.Name
        out["Source"] = self.Source
        out["Destination"] = self.Destination
        if self.Type == "volume":
            out["Driver"] = self.Driver or "local"
        out.update(Mode=self.Mode, RW=self.RW, Propagation=self.Propagation)
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MountPoint":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def _clean_dest(path: Any, kind: str) -> str:
    if not isinstance(path, str) or not path:
        raise InvalidParameter(f'invalid mount config for type "{kind}": field Target must not be empty')
    if not path.startswith("/") or "\x00" in path:
        raise InvalidParameter(f"invalid mount config for type \"{kind}\": invalid mount path: "
                               f"'{path}' mount path must be absolute")
    clean = posixpath.normpath(path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if clean == "/":
        raise InvalidParameter("invalid specification: destination can't be '/'")
    return clean


def check_volume_name(name: str) -> str:
    if isinstance(name, str) and len(name) == 1 and name.isalnum():
        raise InvalidParameter(f'create {name}: volume name is too short, names should be at '
                               'least two alphanumeric characters')
    if isinstance(name, str) and len(name) > 255:
        # the volume's directory is named after it: a longer name cannot exist on the disk
        raise InvalidParameter(f"create {name[:32]}...: volume name is too long (at most 255 characters)")
    if not isinstance(name, str) or not VOLUME_NAME_RE.match(name):
        raise InvalidParameter(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
            "use absolute path")
    return name


def _parse_mode(raw: str, mode: str, is_bind: bool) -> tuple[bool, str, bool]:
    """`ro,z,rshared,nocopy` -> (rw, propagation, copy); Docker's ValidMountMode rules."""
    rw_seen = label_seen = prop_seen = copy_seen = cons_seen = False
    rw, prop, copy = True, "", True
    for m in mode.split(","):
        if m in ("ro", "rw"):
            ok, rw_seen, rw = not rw_seen, True, m == "rw"
        elif m in ("z", "Z"):
            ok, label_seen = not label_seen, True
        elif m in PROPAGATIONS:
            ok, prop_seen, prop = not prop_seen, True, m
        elif m == "nocopy":
            ok, copy_seen, copy = not copy_seen, True, False
        elif m in _CONSISTENCY:
            ok, cons_seen = not cons_seen, True
        else:
            ok = False
        if not ok:
            raise InvalidParameter(f"invalid mode: {mode}")
    if copy_seen and is_bind:
        raise InvalidParameter(f"invalid volume specification: '{raw}': "
                               "invalid mode: nocopy is only allowed for volumes")
    return rw, prop, copy


def _is_mode(s: str) -> bool:
    try:
        _parse_mode(s, s, False)
        return True
    except InvalidParameter:
        return False


def parse_bind(raw: str) -> MountPoint:
    """One `-v` / Binds entry: `[src:]dst[:mode]`; a src starting with `/` is a bind."""
    if not isinstance(raw, str) or not raw:
        raise InvalidParameter(f"invalid volume specification: '{raw}'")
    parts = raw.split(":")
    mode = ""
    if len(parts) > 1 and not parts[0]:
        raise InvalidParameter(f"invalid volume specification: '{raw}'")  # dockerd's splitRawSpec
    if len(parts) == 1:
        src, dst = "", parts[0]
    elif len(parts) == 2:
        if _is_mode(parts[1]):
            raise InvalidParameter(f"invalid volume specification: '{raw}'")
        src, dst = parts
    elif len(parts) == 3:
        src, dst, mode = parts
    else:
        raise InvalidParameter(f"invalid volume specification: '{raw}'")
    is_bind = src.startswith("/")
    kind = "bind" if is_bind else "volume"
    try:
        dest = _clean_dest(dst, kind)
    except InvalidParameter as e:
        raise InvalidParameter(f"invalid volume specification: '{raw}': {e}") from None
    rw, prop, copy = _parse_mode(raw, mode, is_bind) if mode else (True, "", True)
    if is_bind:
        return MountPoint(Type="bind", Destination=dest, Source=posixpath.normpath(src), Mode=mode,
                          RW=rw, Propagation=prop or "rprivate", CreateSource=True)
    if src:
        check_volume_name(src)
    elif prop:
        raise InvalidParameter(f"invalid volume specification: '{raw}'")
    return MountPoint(Type="volume", Destination=dest, Name=src, Driver="local",
                      Mode=mode or "z", RW=rw, Propagation="", CopyData=copy,
                      Anonymous=not src)


def _bytes(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InvalidParameter(f"invalid {what}: {v!r}")
    return v


def parse_mount(m: Any) -> MountPoint:
    """One HostConfig.Mounts entry (`--mount`)."""
    if not isinstance(m, dict):
        raise InvalidParameter("invalid mount config: expected an object")
    kind = m.get("Type") or ""
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidParameter(f"invalid mount config for type \"{kind}\": mount type unknown")
    dest = _clean_dest(m.get("Target"), kind)
    src = m.get("Source") or ""
    if not isinstance(src, str):
        raise InvalidParameter(f'invalid mount config for type "{kind}": invalid Source')
    rw = not m.get("ReadOnly")
    bopts, vopts, topts = m.get("BindOptions"), m.get("VolumeOptions"), m.get("TmpfsOptions")

    def forbid(name: str, value: Any) -> None:
        if value:
            raise InvalidParameter(
                f'invalid mount config for type "{kind}": field {name} must not be specified')

    if kind == "bind":
        forbid("VolumeOptions", vopts)
        forbid("TmpfsOptions", topts)
        if not src:
            raise InvalidParameter('invalid mount config for type "bind": field Source must not be empty')
        if not src.startswith("/"):
            raise InvalidParameter(f"invalid mount config for type \"bind\": invalid mount path: "
                                   f"'{src}' mount path must be absolute")
        b = bopts if isinstance(bopts, dict) else {}
        prop = b.get("Propagation") or "rprivate"
        if prop not in PROPAGATIONS:
            raise InvalidParameter(f"invalid mount config for type \"bind\": invalid propagation mode: {prop}")
        return MountPoint(Type="bind", Destination=dest, Source=posixpath.normpath(src), RW=rw,
                          Propagation=prop, NonRecursive=bool(b.get("NonRecursive")),
                          CreateSource=bool(b.get("CreateMountpoint")))
    if kind == "volume":
        forbid("BindOptions", bopts)
        forbid("TmpfsOptions", topts)
        v = vopts if isinstance(vopts, dict) else {}
        if src:
            check_volume_name(src)
        if v.get("Subpath"):
            raise InvalidParameter('invalid mount config for type "volume": volume subpaths are not supported')
        drv = v.get("DriverConfig") or {}
        if drv.get("Name") not in (None, "", "local"):
            raise InvalidParameter(f"invalid mount config: volume driver {drv['Name']!r} is not supported")
        return MountPoint(Type="volume", Destination=dest, Name=src, Driver="local", RW=rw,
                          CopyData=not v.get("NoCopy"), Anonymous=not src,
                          VolumeOptions={"Labels": v.get("Labels") or {},
                                         "Options": drv.get("Options") or {}})
    forbid("BindOptions", bopts)
    forbid("VolumeOptions", vopts)
    if src:
        raise InvalidParameter('invalid mount config for type "tmpfs": field Source must not be specified')
    t = topts if isinstance(topts, dict) else {}
    opts: dict[str, Any] = {}
    if t.get("SizeBytes"):
        opts["SizeBytes"] = _bytes(t["SizeBytes"], "tmpfs size")
    if t.get("Mode"):
        opts["Mode"] = _bytes(t["Mode"], "tmpfs mode") & 0o7777
    return MountPoint(Type="tmpfs", Destination=dest, RW=rw, TmpfsOptions=opts)


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """`name[:ro|:rw]` -> (container, mode)."""
    if not isinstance(spec, str) or not spec:
        raise InvalidParameter("invalid VolumesFrom: empty")
    name, _, mode = spec.partition(":")
    if mode not in ("", "ro", "rw"):
        raise InvalidParameter(f"invalid mode: {mode}")
    return name, mode


def collect(config: dict[str, Any], host: dict[str, Any],
            volumes_from: list[list[MountPoint]] | None = None,
            volumes_from_modes: list[str] | None = None) -> list[MountPoint]:
    """All mount points of a new container, in Docker's precedence order.

    `volumes_from[i]` holds the mount points of the i-th `--volumes-from` container (looked
    up by the caller); binds and `--mount`s then take their destinations, and Config.Volumes
    paths nobody mounted become anonymous volumes. Duplicate destinations are an error.
    """
    points: dict[str, MountPoint] = {}
    for mps, mode in zip(volumes_from or [], volumes_from_modes or []):
        for mp in mps:
            mp = MountPoint.from_dict(mp.to_dict())
            mp.Anonymous = False  # the other container owns it
            mp.CreateSource = False
            if mode:
                mp.RW = mode == "rw"
                if mp.Type == "bind" or mp.Mode:
                    mp.Mode = mode
            points.setdefault(mp.Destination, mp)
    explicit: set[str] = set()
    for raw in host.get("Binds") or []:
        mp = parse_bind(raw)
        if mp.Destination in explicit:
            raise InvalidParameter(f"Duplicate mount point: {mp.Destination}")
        explicit.add(mp.Destination)
        points[mp.Destination] = mp
    for m in host.get("Mounts") or []:
        mp = parse_mount(m)
        if mp.Destination in explicit:
            raise InvalidParameter(f"Duplicate mount point: {mp.Destination}")
        explicit.add(mp.Destination)
        points[mp.Destination] = mp
    tmpfs = host.get("Tmpfs") or {}
    for dest in tmpfs if isinstance(tmpfs, dict) else ():
        if isinstance(dest, str) and posixpath.normpath(dest) in explicit:
            raise InvalidParameter(f"Duplicate mount point: {posixpath.normpath(dest)}")
    vols = config.get("Volumes") or {}
    if not isinstance(vols, dict):
        raise InvalidParameter("invalid Volumes: expected an object")
    for path in vols:
        dest = _clean_dest(path, "volume")
        if dest in points or (isinstance(tmpfs, dict) and dest in tmpfs):
            continue
        points[dest] = MountPoint(Type="volume", Destination=dest, Driver="local",
                                  Anonymous=True)
    # Parents before children, so a mount at /a/b lands on top of one at /a.
    return sorted(points.values(), key=lambda p: (p.Destination.count("/"), p.Destination))
