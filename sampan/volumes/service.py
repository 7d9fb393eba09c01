"""Volumes with Docker's `local` driver: `volumes/<name>/_data` under the data root.

A volume is one SQLite row plus its directory. The directory is made under `volumes/.tmp-*`
and renamed into place before the row is written, so a crash leaves either nothing or a
directory start-up removes (`.tmp-*`) — never a row without its data directory.

Driver options (`-o type=tmpfs,device=tmpfs,o=size=16m`, `-o type=none,o=bind,device=/x`)
are mounted on the host at `_data` the first time a container needs the volume and unmounted
when the volume is removed; containers get `_data` bind-mounted, as with Docker.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import Conflict, Internal, InvalidParameter, NotFound
from ..metadata import Database
from .mounts import ANONYMOUS_LABEL, VOLUME_NAME_RE, MountPoint, check_volume_name
from ..linux.mountinfo import unescape as _unescape
from ..userns import hooks as userns_hooks

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
"""

_DRIVER_OPTS = ("type", "device", "o", "size")

# Users of a volume: fn() -> [(container id, [mount point dicts])]
UsageFn = Callable[[], Iterable[tuple[str, list[dict]]]]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Volume:
    name: str
    driver: str = "local"
    labels: dict[str, str] | None = None
    options: dict[str, str] | None = None
    created_at: str = field(default_factory=_now)

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in (self.labels or {})

    def to_json(self) -> str:
        return json.dumps({"driver": self.driver, "labels": self.labels, "options": self.options,
                           "created_at": self.created_at})

    @classmethod
    def from_row(cls, name: str, data: str) -> "Volume":
        d = json.loads(data)
        return cls(name=name, driver=d.get("driver", "local"), labels=d.get("labels"),
                   options=d.get("options"), created_at=d.get("created_at", ""))


def _check_opts(opts: dict[str, str] | None) -> dict[str, str] | None:
    if opts is None:
        return None
    if not isinstance(opts, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in opts.items()):
        raise InvalidParameter("invalid DriverOpts: expected an object of strings")
    for k in opts:
        if k not in _DRIVER_OPTS:
            raise InvalidParameter(f'invalid option key: "{k}"')
    if "size" in opts:
        raise InvalidParameter("quota size requested but no quota support")
    if opts.get("type") or opts.get("device"):
        if not opts.get("type") or not opts.get("device"):
            raise InvalidParameter('missing required option: "type" and "device" go together')
        if opts["type"] == "none" and "bind" not in opts.get("o", "").split(","):
            raise InvalidParameter('type "none" needs o=bind')
        if opts["type"] == "none" and not opts["device"].startswith("/"):
            raise InvalidParameter(f"invalid device for bind: {opts['device']!r} must be absolute")
    return opts


class VolumeService:
    def __init__(self, data_root: Path | str, db: Database, usage: UsageFn | None = None) -> None:
        self.root = Path(data_root) / "volumes"
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o701)
        self.db = db
        db.migrate(SCHEMA)
        self._usage: UsageFn = usage or (lambda: [])
        self.events: Any = None  # the engine's EventService: create/destroy events
        for entry in self.root.iterdir():
            if entry.name.startswith(".tmp-") and not mounts_under(str(entry)):
                shutil.rmtree(entry, ignore_errors=True)

    def set_usage(self, fn: UsageFn) -> None:
        self._usage = fn

    # -- paths ------------------------------------------------------------------------------------
    def mountpoint(self, name: str) -> str:
        return str(self.root / name / "_data")

    # -- lookups ----------------------------------------------------------------------------------
    def get(self, name: str) -> Volume:
        if not isinstance(name, str) or not VOLUME_NAME_RE.match(name):
            raise NotFound(f"get {name}: no such volume")
        row = self.db.query_one("SELECT name, data FROM volumes WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"get {name}: no such volume")
        return Volume.from_row(row["name"], row["data"])

    def all(self) -> list[Volume]:
        return [Volume.from_row(r["name"], r["data"])
                for r in self.db.query("SELECT name, data FROM volumes ORDER BY name")]

    def users(self, name: str) -> list[str]:
        return [cid for cid, mps in self._usage()
                if any(m.get("Type") == "volume" and m.get("Name") == name for m in mps)]

    def view(self, v: Volume, usage: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "CreatedAt": v.created_at, "Driver": v.driver, "Labels": v.labels,
            "Mountpoint": self.mountpoint(v.name), "Name": v.name, "Options": v.options,
            "Scope": "local",
        }
        if usage is not None:
            out["UsageData"] = usage
        return out

    def inspect(self, name: str) -> dict[str, Any]:
        return self.view(self.get(name))

    # -- create -----------------------------------------------------------------------------------
    def create(self, name: str = "", driver: str = "", opts: dict | None = None,
               labels: dict | None = None) -> dict[str, Any]:
        """`POST /volumes/create`: an existing volume of the same name is returned as it is."""
        return self.view(self._create(name, driver, opts, labels)[0])

    def _create(self, name: str, driver: str = "", opts: dict | None = None,
                labels: dict | None = None) -> tuple[Volume, bool]:
        driver = driver or "local"
        if not name:
            name = secrets.token_hex(32)
        check_volume_name(name)
        if driver != "local":
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        if labels is not None and (not isinstance(labels, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
            raise InvalidParameter("invalid Labels: expected an object of strings")
        opts = _check_opts(opts)
        try:
            return self.get(name), False
        except NotFound:
            pass
        v = Volume(name=name, driver=driver, labels=labels, options=opts or None)
        tmp = self.root / f".tmp-{secrets.token_hex(8)}"
        (tmp / "_data").mkdir(parents=True)
        os.chmod(tmp, 0o701)
        userns_hooks.chown_to_mapped_root(str(tmp / "_data"))  # --userns-remap: root's volume
        final = self.root / name
        if final.exists():  # a directory no row claims (e.g. left by a crash): start clean
            self._unmount(name)
            shutil.rmtree(final)
        os.rename(tmp, final)
        try:
            with self.db.transaction() as conn:
                conn.execute("INSERT INTO volumes (name, data) VALUES (?, ?)", (name, v.to_json()))
        except Exception:
            shutil.rmtree(final, ignore_errors=True)
            raise
        if self.events is not None:
            self.events.volume(name, "create", driver)
        return v, True

    def create_anonymous(self, labels: dict | None = None, opts: dict | None = None) -> Volume:
        lab = dict(labels or {})
        lab[ANONYMOUS_LABEL] = ""
        return self._create("", "local", opts or None, lab)[0]

    # -- remove -----------------------------------------------------------------------------------
    def remove(self, name: str, force: bool = False) -> None:
        try:
            v = self.get(name)
        except NotFound:
            if force:
                return
            raise
        users = self.users(v.name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        self._delete(v.name)

    def _delete(self, name: str) -> None:
        self._unmount(name)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
        if self.events is not None:
            self.events.volume(name, "destroy", "local")
        # Rename first so a crash mid-delete leaves a .tmp- dir start-up removes.
        d = self.root / name
        if d.exists():
            gone = self.root / f".tmp-rm-{secrets.token_hex(8)}"
            os.rename(d, gone)
            if not mounts_under(str(gone)):  # never delete through a mount
                shutil.rmtree(gone, ignore_errors=True)

    def remove_anonymous(self, names: list[str]) -> None:
        """After `rm -v` / `--rm`: anonymous volumes no other container uses are removed."""
        for name in names:
            try:
                v = self.get(name)
            except NotFound:
                continue
            if v.anonymous and not self.users(name):
                self._delete(name)

    def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        for key in filters:
            if key not in ("label", "label!", "all"):
                raise InvalidParameter(f"invalid filter '{key}'")
        all_ = any(v.lower() in ("1", "true") for v in filters.get("all", []))
        in_use = {m.get("Name") for _, mps in self._usage() for m in mps if m.get("Type") == "volume"}
        deleted, reclaimed = [], 0
        for v in self.all():
            if v.name in in_use or (not all_ and not v.anonymous):
                continue
            if not _labels_match(v.labels or {}, filters.get("label", []), filters.get("label!", [])):
                continue
            size = dir_size(self.mountpoint(v.name))
            self._delete(v.name)
            deleted.append(v.name)
            reclaimed += size
        return {"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # -- list -------------------------------------------------------------------------------------
    def list(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        for key in filters:
            if key not in ("dangling", "name", "label", "driver"):
                raise InvalidParameter(f"invalid filter '{key}'")
        dangling: bool | None = None
        for d in filters.get("dangling", []):
            if d.lower() in ("1", "true"):
                dangling = True
            elif d.lower() in ("0", "false"):
                dangling = False
            else:
                raise InvalidParameter(f"invalid filter 'dangling={d}'")
        in_use = {m.get("Name") for _, mps in self._usage() for m in mps if m.get("Type") == "volume"}
        out = []
        for v in self.all():
            if dangling is not None and (v.name not in in_use) != dangling:
                continue
            if filters.get("name") and not any(n in v.name for n in filters["name"]):
                continue
            if filters.get("driver") and v.driver not in filters["driver"]:
                continue
            if not _labels_match(v.labels or {}, filters.get("label", []), []):
                continue
            out.append(self.view(v))
        return {"Volumes": out, "Warnings": None}

    def usage_data(self) -> list[dict[str, Any]]:
        """For `system df`: every volume with its size and how many containers use it."""
        refs: dict[str, int] = {}
        for _, mps in self._usage():
            for m in mps:
                if m.get("Type") == "volume":
                    refs[m.get("Name", "")] = refs.get(m.get("Name", ""), 0) + 1
        return [self.view(v, {"Size": dir_size(self.mountpoint(v.name)), "RefCount": refs.get(v.name, 0)})
                for v in self.all()]

    # -- for containers -----------------------------------------------------------------------------
    def provision(self, mps: list[MountPoint]) -> list[str]:
        """Create the volumes new mount points name (or need, when anonymous); fills in
        Name/Source. Returns the names created here, for `discard` if the create fails."""
        made: list[str] = []
        try:
            for mp in mps:
                if mp.Type != "volume":
                    continue
                vo = mp.VolumeOptions or {}
                if mp.Name:
                    v, new = self._create(mp.Name, "local", vo.get("Options") or None,
                                          vo.get("Labels") or None)
                else:
                    v, new = self.create_anonymous(vo.get("Labels"), vo.get("Options")), True
                    mp.Name = v.name
                if new:
                    made.append(v.name)
                mp.Source = self.mountpoint(v.name)
                mp.Driver = "local"
        except BaseException:
            self.discard(made)
            raise
        return made

    def discard(self, names: list[str]) -> None:
        for n in names:
            try:
                self._delete(n)
            except (OSError, NotFound):
                pass

    def ensure_mounted(self, name: str) -> None:
        """Mount a volume's driver options (tmpfs, bind of a device) at `_data` if not yet."""
        v = self.get(name)
        opts = v.options or {}
        if not opts.get("type"):
            return
        target = self.mountpoint(name)
        if mounted(target):
            return
        from ..runtime.mounts import Mount, perform
        mopts = tuple(o for o in opts.get("o", "").split(",") if o)
        try:
            if opts["type"] == "none":
                perform(Mount("bind", opts["device"], target, mopts))
            else:
                perform(Mount(opts["type"], opts["device"], target, mopts))
        except OSError as e:
            raise InvalidParameter(f"error while mounting volume '{target}': {e.strerror or e}") from None

    def _unmount(self, name: str) -> None:
        """Unmount whatever is mounted at (or under) the volume's `_data`; the directory is
        removed next, and that must never reach into a bound host directory."""
        from ..linux import syscalls
        target = self.mountpoint(name)
        for _ in range(16):  # stacked mounts
            points = mounts_under(target)
            if not points:
                return
            for p in sorted(points, key=lambda x: x.count("/"), reverse=True):
                try:
                    syscalls.umount2(p, syscalls.MNT_DETACH)
                except OSError:
                    pass
        raise Internal(f"remove {name}: cannot unmount {target}; volume kept")


def _labels_match(labels: dict[str, str], want: list[str], not_want: list[str]) -> bool:
    for w in want:
        k, sep, val = w.partition("=")
        if k not in labels or (sep and labels[k] != val):
            return False
    for w in not_want:
        k, sep, val = w.partition("=")
        if k in labels and (not sep or labels[k] == val):
            return False
    return True


def mounts_under(path: str) -> list[str]:
    """Mount points at or below `path`, from the mount table. (`os.path.ismount` misses a
    bind mount from the same filesystem: same st_dev, so it cannot be trusted here.)"""
    path = os.path.realpath(path)
    prefix = path.rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 4:
                mp = _unescape(parts[4])
                if mp == path or mp.startswith(prefix):
                    out.append(mp)
    return out


def mounted(path: str) -> bool:
    return os.path.realpath(path) in mounts_under(path)


def dir_size(path: str) -> int:
    total = 0
    stack = [path]
    seen: set[tuple[int, int]] = set()
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total
