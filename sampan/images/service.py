"""ImageService: images (config blobs + layer chains) and the references that name them.

The image ID is the digest of the config JSON, which is stored as a blob; the `images` table is
an index over those blobs (chain IDs, sizes, times) and `image_refs` maps fully qualified
references (`docker.io/library/busybox:latest`) to IDs. Every change of refs/images is one
SQLite transaction; layers and blobs nothing needs any more are collected after it.
"""

from __future__ import annotations

import json
import platform as _platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .. import reference as refs
from ..content import ContentStore
from ..daemon.config import DaemonConfig
from ..errors import Conflict, InvalidParameter, NotFound
from ..metadata import Database
from ..snapshots import Compressed, Layer, LayerStore, chain_ids
from .changes import apply_changes
from .timefmt import parse_rfc3339, rfc3339_nano

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id            TEXT PRIMARY KEY,
    chain_ids     TEXT NOT NULL,
    size          INTEGER NOT NULL,
    created       REAL NOT NULL,
    parent        TEXT NOT NULL DEFAULT '',
    last_tag_time TEXT NOT NULL DEFAULT '',
    hidden        INTEGER NOT NULL DEFAULT 0,
    added         REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_refs (
    ref      TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS image_refs_image ON image_refs(image_id);
"""

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}

UsageCheck = Callable[[str], list]


def host_arch() -> str:
    m = _platform.machine()
    return _ARCH.get(m, m)


def parse_platform(p: str | None) -> tuple[str, str, str]:
    """`linux/amd64[/variant]` -> (os, arch, variant); empty means the host's."""
    if not p:
        return "linux", host_arch(), ""
    parts = p.strip().lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidParameter(f"invalid platform {p!r}")
    os_, arch, variant = parts[0], parts[1] if len(parts) > 1 else host_arch(), \
        parts[2] if len(parts) > 2 else ""
    if os_ != "linux":
        raise InvalidParameter(f"operating system is not supported: {os_}")
    return os_, _ARCH.get(arch, arch), variant


@dataclass
class ImageRecord:
    id: str
    config: dict[str, Any]                     # the whole image config (OCI/Docker JSON)
    repo_tags: list[str]                       # familiar: ["busybox:latest"]
    layer_dirs: list[Path]                     # unpacked layers, TOP-MOST FIRST (lowerdir order)
    chain_ids: list[str] = field(default_factory=list)   # base first
    diff_ids: list[str] = field(default_factory=list)    # base first
    size: int = 0
    created: float = 0.0
    parent: str = ""
    repo_digests: list[str] = field(default_factory=list)
    last_tag_time: str = ""

    @property
    def container_config(self) -> dict[str, Any]:
        """The `config` key: Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, ..."""
        return self.config.get("config") or {}


def _repo_of(full_ref: str) -> str:
    """Repository of a stored reference (`name:tag` or `name@digest`, always fully qualified)."""
    if "@" in full_ref:
        return full_ref.split("@", 1)[0]
    return full_ref[:full_ref.rfind(":")]


def _usage_entries(raw: list) -> list[tuple[str, bool]]:
    """Usage check results: container IDs, or (id, running) pairs."""
    out = []
    for x in raw or []:
        if isinstance(x, (tuple, list)):
            out.append((str(x[0]), bool(x[1])))
        else:
            out.append((str(x), False))
    return out


class ImageService:
    def __init__(self, config: DaemonConfig, db: Database) -> None:
        self.config = config
        self.db = db
        for d in (config.tmp_dir, config.content_dir, config.layers_dir):
            Path(d).mkdir(parents=True, exist_ok=True)
        self.content = ContentStore(config.content_dir, config.tmp_dir)
        self.layers = LayerStore(config.layers_dir, db, self.content)
        db.migrate(SCHEMA)
        self._lock = threading.RLock()
        self._configs: dict[str, dict[str, Any]] = {}
        self._pins: dict[str, int] = {}
        self._usage: UsageCheck = lambda image_id: []
        self.cleanup()

    # -- wiring -----------------------------------------------------------------------------------
    def set_usage_check(self, fn: UsageCheck) -> None:
        """`fn(image_id) -> [container_id | (container_id, running)]`, registered by containers."""
        self._usage = fn

    def cleanup(self) -> None:
        """Start-up: temp files, half layers, then anything no image needs (a crash mid-GC)."""
        self.content.cleanup()
        self.layers.cleanup()
        for p in Path(self.config.tmp_dir).glob("image-*"):
            try:
                p.unlink()
            except OSError:
                pass
        with self._lock:
            # no usage check is registered yet: keep hidden images for their containers
            self._gc(purge_hidden=False)
            self._sweep_content()

    def _sweep_content(self) -> None:
        """Start-up: drop blobs nothing records, left by a crash between storing a blob and
        committing its row (an image config, a layer's tar or kept pull blob)."""
        keep = {r["id"] for r in self.db.query("SELECT id FROM images")}
        keep.update(r["diff_id"] for r in self.db.query("SELECT diff_id FROM image_layers"))
        keep.update(r["digest"] for r in self.db.query("SELECT digest FROM layer_blobs"))
        for digest, _ in list(self.content.walk()):
            if digest not in keep:
                self.content.delete(digest)

    # -- lookups ----------------------------------------------------------------------------------
    def load_config(self, image_id: str) -> dict[str, Any]:
        cfg = self._configs.get(image_id)
        if cfg is None:
            try:
                cfg = json.loads(self.content.read_bytes(image_id))
            except NotFound:
                raise NotFound(f"No such image: {image_id}") from None
            self._configs[image_id] = cfg
        return cfg

    def _refs_of(self, image_id: str) -> list[str]:
        return [r["ref"] for r in self.db.query(
            "SELECT ref FROM image_refs WHERE image_id = ? ORDER BY ref", (image_id,))]

    def _not_found(self, ref: str) -> NotFound:
        try:
            # Docker names the reference with its default tag: `No such image: busybox:latest`
            return NotFound(f"No such image: {refs.parse(ref).with_default_tag().familiar()}")
        except InvalidParameter:
            return NotFound(f"No such image: {ref}")

    def _find(self, ref: str, hidden: bool = False) -> tuple[str, bool]:
        """-> (image ID, matched by ID?) for a name, a full ID or an ID prefix."""
        if not isinstance(ref, str) or not ref:
            raise InvalidParameter("invalid reference format")
        if refs.is_full_id(ref):
            row = self.db.query_one("SELECT hidden FROM images WHERE id = ?", (ref,))
            if row is not None and (hidden or not row["hidden"]):
                return ref, True
            raise NotFound(f"No such image: {ref}")
        try:
            parsed: refs.Reference | None = refs.parse(ref)
        except InvalidParameter:
            if not refs.is_id_prefix(ref):
                raise
            parsed = None
        if parsed is not None:
            row = self.db.query_one("SELECT image_id FROM image_refs WHERE ref = ?",
                                    (str(parsed.with_default_tag()),))
            if row is not None:
                return row["image_id"], False
        if refs.is_id_prefix(ref):
            hexp = ref[len("sha256:"):] if ref.startswith("sha256:") else ref
            rows = self.db.query(
                "SELECT id FROM images WHERE substr(id, 8, ?) = ? AND hidden = 0 LIMIT 2",
                (len(hexp), hexp))
            if len(rows) == 1:
                return rows[0]["id"], True
            if len(rows) > 1:
                raise NotFound(f"No such image: {ref} (ambiguous: more than one image ID starts with it)")
        raise self._not_found(ref)

    def lookup_id(self, ref: str) -> str:
        return self._find(ref, hidden=True)[0]

    def exists(self, ref: str) -> bool:
        try:
            self._find(ref)
            return True
        except (NotFound, InvalidParameter):
            return False

    def count(self) -> int:
        row = self.db.query_one("SELECT COUNT(*) AS n FROM images WHERE hidden = 0")
        return int(row["n"]) if row else 0

    def ids(self) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM images WHERE hidden = 0")]

    def resolve(self, ref: str) -> ImageRecord:
        """Everything a container needs from its image; NotFound("No such image: ...")."""
        image_id = self._find(ref, hidden=True)[0]
        return self.record(image_id)

    def record(self, image_id: str) -> ImageRecord:
        row = self.db.query_one("SELECT * FROM images WHERE id = ?", (image_id,))
        if row is None:
            raise NotFound(f"No such image: {image_id}")
        cfg = self.load_config(image_id)
        chains = json.loads(row["chain_ids"])
        all_refs = self._refs_of(image_id)
        tags, digests = [], []
        for r in all_refs:
            (digests if "@" in r else tags).append(refs.familiar(r))
        return ImageRecord(
            id=image_id, config=cfg, repo_tags=tags,
            layer_dirs=[self.layers.dir(c) for c in reversed(chains)],
            chain_ids=chains, diff_ids=list((cfg.get("rootfs") or {}).get("diff_ids") or []),
            size=row["size"], created=row["created"], parent=row["parent"],
            repo_digests=digests, last_tag_time=row["last_tag_time"])

    # -- creating ---------------------------------------------------------------------------------
    def add_layer(self, parent_chain: str | None, src: BinaryIO,
                  expected_diff_id: str | None = None, compressed: Compressed | None = None) -> Layer:
        """Store a layer tar (maybe compressed) on top of `parent_chain` (commit, build, pull).

        The layer stays pinned (safe from GC) until an image using it is registered or
        `release_layers([chain])` is called.
        """
        if parent_chain:
            self._pin([parent_chain])  # the parent must survive a concurrent rmi
        pinned: list[str] = []

        def pin(chain: str) -> None:
            self._pin([chain])
            pinned.append(chain)

        try:
            return self.layers.create(parent_chain, src, expected_diff_id, on_chain=pin,
                                      compressed=compressed)
        except BaseException:
            self.release_layers(pinned)
            raise
        finally:
            if parent_chain:
                self.release_layers([parent_chain])

    def create_image(self, config: dict[str, Any] | bytes, parent: str = "",
                     ref: str | None = None) -> str:
        """Register an image whose layers are stored already; `ref` gets tagged. Returns the ID."""
        image_id, _ = self.register(config, parent=parent, tags=[ref] if ref else [])
        return image_id

    def register(self, config: dict[str, Any] | bytes, parent: str = "",
                 tags: list[str] = ()) -> tuple[str, list[tuple[str, str]]]:  # type: ignore[assignment]
        """Store the config blob, index the image, point `tags` at it (atomically).

        Returns (image ID, [(familiar tag, previous image ID)] for tags that moved).
        """
        raw = config if isinstance(config, bytes) else json.dumps(config, separators=(",", ":")).encode()
        try:
            cfg = json.loads(raw)
        except ValueError as e:
            raise InvalidParameter(f"invalid image config: {e}") from None
        if not isinstance(cfg, dict):
            raise InvalidParameter("invalid image config: not a JSON object")
        rootfs = cfg.get("rootfs") or {}
        diff_ids = rootfs.get("diff_ids") or []
        if not isinstance(diff_ids, list) or rootfs.get("type", "layers") != "layers":
            raise InvalidParameter("invalid image config: bad rootfs")
        for d in diff_ids:
            refs.validate_digest(d)
        chains = chain_ids(diff_ids)
        size = 0
        for c in chains:
            size += self.layers.get(c).size  # NotFound if a layer is missing
        full_tags = [refs.parse(t).with_default_tag() for t in tags]
        for t in full_tags:
            if t.digest is not None:
                raise InvalidParameter(f"refusing to create a tag with a digest reference: {t.familiar()}")
        with self._lock:
            image_id = self.content.write_bytes(raw)
            self._configs[image_id] = cfg
            moved: list[tuple[str, str]] = []
            now_s = rfc3339_nano() if full_tags else ""
            with self.db.transaction() as tx:
                tx.execute(
                    "INSERT INTO images(id, chain_ids, size, created, parent, last_tag_time, hidden, added)"
                    " VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT(id) DO UPDATE SET hidden = 0",
                    (image_id, json.dumps(chains), size, parse_rfc3339(cfg.get("created")),
                     parent or "", now_s, time.time()))
                for t in full_tags:
                    old = tx.execute("SELECT image_id FROM image_refs WHERE ref = ?", (str(t),)).fetchone()
                    if old is not None and old["image_id"] != image_id:
                        moved.append((t.familiar(), old["image_id"]))
                    tx.execute("INSERT INTO image_refs(ref, image_id) VALUES (?, ?) "
                               "ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id",
                               (str(t), image_id))
                if now_s:
                    tx.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (now_s, image_id))
            for c in chains:
                if c in self._pins:
                    self.release_layers([c])
            return image_id, moved

    def import_tar(self, path: Path | str, repo: str | None = None, tag: str | None = None,
                   changes: list[str] | None = None, message: str = "",
                   platform: str | None = None) -> str:
        """`docker import`: one layer from a rootfs tar (maybe compressed) + a fresh config."""
        os_, arch, variant = parse_platform(platform)
        ref = None
        if repo:
            r = refs.parse(repo)
            if r.digest is not None:
                raise InvalidParameter("cannot import to a digest reference")
            ref = (r.with_tag(tag) if tag else r.with_default_tag()).familiar()
        elif tag:
            raise InvalidParameter("tag given without repository")
        cfg = apply_changes({}, list(changes or []))
        with open(path, "rb") as f:
            layer = self.add_layer(None, f)
        try:
            return self._import_config(layer, ref, cfg, message, os_, arch, variant)
        except BaseException:
            self.release_layers([layer.chain_id])
            self.gc()
            raise

    def _import_config(self, layer: Layer, ref: str | None, cfg: dict[str, Any], message: str,
                       os_: str, arch: str, variant: str) -> str:
        created = rfc3339_nano()
        msg = message or "Imported from -"
        config: dict[str, Any] = {"architecture": arch, "comment": msg, "config": cfg,
                                  "created": created,
                                  "history": [{"created": created, "comment": msg}],
                                  "os": os_,
                                  "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}
        if variant:
            config["variant"] = variant
        image_id, _ = self.register(config, tags=[ref] if ref else [])
        return image_id

    def tag(self, ref: str, repo: str, tag: str | None = None) -> str:
        image_id = self._find(ref)[0]
        r = refs.parse(repo)
        if r.digest is not None:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        full = r.with_tag(tag) if tag else r.with_default_tag()
        with self._lock, self.db.transaction() as tx:
            tx.execute("INSERT INTO image_refs(ref, image_id) VALUES (?, ?) "
                       "ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id",
                       (str(full), image_id))
            tx.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (rfc3339_nano(), image_id))
        return full.familiar()

    # -- removing ---------------------------------------------------------------------------------
    def _children(self, image_id: str) -> list[str]:
        return [r["id"] for r in self.db.query(
            "SELECT id FROM images WHERE parent = ? AND hidden = 0", (image_id,))]

    def _untag(self, full_ref: str) -> None:
        self.db.execute("DELETE FROM image_refs WHERE ref = ?", (full_ref,))

    @staticmethod
    def _single_reference(all_refs: list[str]) -> bool:
        """Docker's isSingleReference: at most one tag, digests only of that same repository."""
        if len(all_refs) <= 1:
            return len(all_refs) == 1
        tagged = [r for r in all_refs if "@" not in r]
        if len(tagged) > 1:
            return False
        canon = {_repo_of(r) for r in all_refs if "@" in r}
        single = tagged[0] if tagged else all_refs[0]
        return len(canon) == 1 and _repo_of(single) in canon

    def _conflict(self, image_id: str, soft: bool, active_refs: bool) -> Conflict | None:
        short = image_id[len("sha256:"):][:12]
        if self._children(image_id):
            return Conflict(f"conflict: unable to delete {short} (cannot be forced) - image has dependent child images")
        users = _usage_entries(self._usage(image_id))
        for cid, running in users:
            if running:
                return Conflict(f"conflict: unable to delete {short} (cannot be forced) - "
                                f"image is being used by running container {cid[:12]}")
        if soft:
            if active_refs and len(self._refs_of(image_id)) > 1:
                return Conflict(f"conflict: unable to delete {short} (must be forced) - "
                                "image is referenced in multiple repositories")
            for cid, _ in users:
                return Conflict(f"conflict: unable to delete {short} (must be forced) - "
                                f"image is being used by stopped container {cid[:12]}")
        return None

    def remove(self, ref: str, force: bool = False, noprune: bool = False) -> list[dict[str, str]]:
        """`docker rmi` with Docker's rules; returns [{"Untagged": ...}, {"Deleted": ...}]."""
        with self._lock:
            image_id, by_id = self._find(ref)
            records: list[dict[str, str]] = []
            all_refs = self._refs_of(image_id)
            quiet = False
            if not by_id:
                full = str(refs.parse(ref).with_default_tag())
                if not force and self._single_reference(all_refs):
                    users = _usage_entries(self._usage(image_id))
                    if users:
                        raise Conflict(
                            f'conflict: unable to remove repository reference "{ref}" (must force) - '
                            f"container {users[0][0][:12]} is using its referenced image {image_id[7:19]}")
                self._untag(full)
                records.append({"Untagged": refs.familiar(full)})
                remaining = self._refs_of(image_id)
                name = _repo_of(full)
                if not any("@" not in r and _repo_of(r) == name for r in remaining):
                    for r in remaining:
                        if "@" in r and _repo_of(r) == name:
                            self._untag(r)
                            records.append({"Untagged": refs.familiar(r)})
                if self._refs_of(image_id):
                    return records
                quiet = True
            elif self._single_reference(all_refs):
                c = self._conflict(image_id, soft=not force, active_refs=False)
                if c is not None:
                    raise c
                for r in all_refs:
                    self._untag(r)
                    records.append({"Untagged": refs.familiar(r)})
            self._delete_helper(image_id, records, force, not noprune, quiet)
            return records

    def _delete_helper(self, image_id: str, records: list[dict[str, str]], force: bool,
                       prune: bool, quiet: bool) -> None:
        c = self._conflict(image_id, soft=not force, active_refs=True)
        if c is not None:
            if quiet and (self._refs_of(image_id) or "stopped" in str(c) or "running" in str(c)):
                return
            raise c
        row = self.db.query_one("SELECT parent FROM images WHERE id = ?", (image_id,))
        parent = row["parent"] if row else ""
        for r in self._refs_of(image_id):
            records.append({"Untagged": refs.familiar(r)})
        in_use = bool(self._usage(image_id))
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM image_refs WHERE image_id = ?", (image_id,))
            if in_use:
                # forced off a stopped container: keep it resolvable by ID for that container
                tx.execute("UPDATE images SET hidden = 1 WHERE id = ?", (image_id,))
            else:
                tx.execute("DELETE FROM images WHERE id = ?", (image_id,))
        if not in_use:
            self._drop_config(image_id)
        records.append({"Deleted": image_id})
        for layer in self._gc():
            records.append({"Deleted": layer.chain_id})
        if prune and parent:
            prow = self.db.query_one("SELECT hidden FROM images WHERE id = ?", (parent,))
            if prow is not None and not prow["hidden"] and not self._refs_of(parent):
                self._delete_helper(parent, records, False, True, True)

    def _drop_config(self, image_id: str) -> None:
        self._configs.pop(image_id, None)
        self.content.delete(image_id)

    def _gc(self, purge_hidden: bool = True) -> list[Layer]:
        """Drop hidden images no container uses, then layers no image needs (unless pinned)."""
        for r in self.db.query("SELECT id FROM images WHERE hidden = 1"):
            if purge_hidden and not self._usage(r["id"]):
                self.db.execute("DELETE FROM images WHERE id = ? AND hidden = 1", (r["id"],))
                self._drop_config(r["id"])
        needed: set[str] = set(self._pins)
        for r in self.db.query("SELECT chain_ids FROM images"):
            needed.update(json.loads(r["chain_ids"]))
        removed = []
        # top-most first, so a crash never leaves a child layer whose parent is gone
        for layer in sorted(self.layers.all(), key=lambda l: -self._depth(l)):
            if layer.chain_id not in needed:
                got = self.layers.remove(layer.chain_id)
                if got is not None:
                    removed.append(got)
        return removed

    # Layers stored but not yet part of a registered image (an import, load, commit or pull in
    # progress): GC must not take them. `register` releases an image's chains.
    def _pin(self, chains: list[str]) -> None:
        with self._lock:
            for c in chains:
                self._pins[c] = self._pins.get(c, 0) + 1

    def release_layers(self, chains: list[str]) -> None:
        """Unpin layers from `add_layer` that will not become an image after all."""
        with self._lock:
            for c in chains:
                n = self._pins.get(c, 0) - 1
                if n > 0:
                    self._pins[c] = n
                else:
                    self._pins.pop(c, None)

    def _depth(self, layer: Layer) -> int:
        n, p = 0, layer.parent
        while p:
            n += 1
            try:
                p = self.layers.get(p).parent
            except NotFound:
                break
        return n

    def prune(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        from .views import image_matches_prune_filters, validate_prune_filters

        filters = filters or {}
        dangling_only = validate_prune_filters(filters)
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        with self._lock:
            changed = True
            while changed:
                changed = False
                for image_id in self.ids():
                    if self._refs_of(image_id) and dangling_only:
                        continue
                    if self._children(image_id) or self._usage(image_id):
                        continue
                    if not image_matches_prune_filters(self, image_id, filters):
                        continue
                    records: list[dict[str, str]] = []
                    try:
                        for r in self._refs_of(image_id):
                            self._untag(r)
                            records.append({"Untagged": refs.familiar(r)})
                        before = {l.chain_id: l.size for l in self.layers.all()}
                        self._delete_helper(image_id, records, False, True, True)
                    except Conflict:
                        continue
                    reclaimed += sum(before.get(r["Deleted"], 0) for r in records if "Deleted" in r)
                    deleted += records
                    changed = True
            # hidden images whose containers are gone go now too
            reclaimed += sum(l.size for l in self._gc())
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def gc(self) -> list[str]:
        """Collect what nothing needs any more (e.g. after a container of a force-removed
        image is gone); returns the removed layers' chain IDs."""
        with self._lock:
            return [l.chain_id for l in self._gc()]

    # -- distribution (pull/push) -----------------------------------------------------------------
    def pin_existing(self, chain: str) -> bool:
        """Pin a stored layer for an image about to be registered (a pull that finds it
        present); False when it is not stored. Released by `register`/`release_layers`."""
        with self._lock:
            if not self.layers.exists(chain):
                return False
            self._pin([chain])
            return True

    def add_repo_digest(self, image_id: str, ref: str) -> None:
        """Record `name@sha256:...` (a RepoDigest) for an image; replaces the same digest ref."""
        r = refs.parse(ref)
        if r.digest is None or r.tag is not None:
            raise InvalidParameter(f"not a canonical digest reference: {ref}")
        with self._lock, self.db.transaction() as tx:
            if tx.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
                raise NotFound(f"No such image: {image_id}")
            tx.execute("INSERT INTO image_refs(ref, image_id) VALUES (?, ?) "
                       "ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id", (str(r), image_id))

    def tags_of_repo(self, name: str) -> list[tuple[str, str]]:
        """[(full `name:tag`, image ID)] of one repository (fully qualified name)."""
        rows = self.db.query("SELECT ref, image_id FROM image_refs WHERE ref LIKE ? ESCAPE '\\' ORDER BY ref",
                             (name.replace("%", r"\%").replace("_", r"\_") + ":%",))
        return [(r["ref"], r["image_id"]) for r in rows
                if "@" not in r["ref"] and _repo_of(r["ref"]) == name]

    # -- views and archives (in their own modules) ------------------------------------------------
    def list_images(self, all: bool = False,  # noqa: A002 - Docker's parameter name
                    filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        from .views import list_images
        return list_images(self, all, filters)

    def inspect(self, ref: str) -> dict[str, Any]:
        from .views import inspect
        return inspect(self, ref)

    def history(self, ref: str) -> list[dict[str, Any]]:
        from .views import history
        return history(self, ref)

    def load(self, path: Path | str) -> list[str]:
        from .archives import load
        return load(self, path)

    def save(self, refs_: list[str], fileobj: BinaryIO) -> None:
        from .archives import save
        save(self, refs_, fileobj)
