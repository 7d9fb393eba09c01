"""`docker load` and `docker save` archives.

Load accepts Docker's layout (`manifest.json`, `<id>.json` or `blobs/sha256/<hex>` configs,
layer tars possibly compressed) and the OCI image layout (`oci-layout`, `index.json`,
`blobs/sha256/...`, names from the `io.containerd.image.name` /
`org.opencontainers.image.ref.name` annotations); the archive itself may be compressed. The
archive is never extracted: members are read in place, by cleaned name, and every digest is
verified (config = image ID, layer diff IDs, OCI blob digests and sizes).

Save writes what Docker 25+ writes: both `manifest.json` (+ `repositories`) and an OCI layout
whose blobs are the stored configs and uncompressed layer tars, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from .. import reference as refs
from ..archive import HashingReader, clean_name, detect, open_decompressed
from ..errors import Internal, InvalidParameter, NotFound
from ..snapshots import chain_id
from .service import host_arch

if TYPE_CHECKING:
    from .service import ImageService

MAX_JSON = 16 * 1024 * 1024
MAX_LINK_HOPS = 16
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)
_MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)
_HEX_NAME = re.compile(r"(?:^|/)(?:blobs/sha256/)?([0-9a-f]{64})(?:\.json)?$")


class _Archive:
    """Random access to the members of an image archive, by cleaned name, links followed inside."""

    def __init__(self, path: Path) -> None:
        try:
            self.tar = tarfile.open(path, "r:")
        except tarfile.TarError as e:
            raise InvalidParameter(f"invalid image archive: {e}") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        try:
            for ti in self.tar:
                try:
                    name = "/".join(clean_name(ti.name))
                except InvalidParameter:
                    continue  # an entry we would never read; refusing it is not needed
                self.members[name] = ti
        except tarfile.TarError as e:
            raise InvalidParameter(f"invalid image archive: {e}") from None
        self.tar.members = []  # we keep our own index

    def close(self) -> None:
        self.tar.close()

    def has(self, name: str) -> bool:
        return name in self.members

    def _resolve(self, name: str) -> tarfile.TarInfo:
        cur = "/".join(clean_name(name))
        for _ in range(MAX_LINK_HOPS):
            ti = self.members.get(cur)
            if ti is None:
                raise InvalidParameter(f"invalid image archive: {name!r} is missing")
            if ti.isreg():
                return ti
            if ti.issym():
                base = cur.rsplit("/", 1)[0] if "/" in cur else ""
                target = ti.linkname if ti.linkname.startswith("/") else f"{base}/{ti.linkname}"
                cur = "/".join(clean_name(target))
            elif ti.islnk():
                cur = "/".join(clean_name(ti.linkname))
            else:
                raise InvalidParameter(f"invalid image archive: {name!r} is not a file")
        raise InvalidParameter(f"invalid image archive: too many links resolving {name!r}")

    def open(self, name: str) -> tuple[IO[bytes], int]:
        ti = self._resolve(name)
        f = self.tar.extractfile(ti)
        assert f is not None
        return f, ti.size

    def read_json(self, name: str) -> tuple[Any, bytes]:
        f, size = self.open(name)
        if size > MAX_JSON:
            raise InvalidParameter(f"invalid image archive: {name} is too large ({size} bytes)")
        data = f.read()
        try:
            return json.loads(data), data
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidParameter(f"invalid image archive: {name} is not valid JSON: {e}") from None

    def blob_name(self, desc: Any) -> str:
        if not isinstance(desc, dict):
            raise InvalidParameter("invalid image archive: bad descriptor")
        digest = refs.validate_digest(desc.get("digest", ""))
        return "blobs/sha256/" + digest[len("sha256:"):]

    def read_blob_json(self, desc: dict[str, Any]) -> tuple[Any, bytes]:
        obj, raw = self.read_json(self.blob_name(desc))
        _verify(raw, desc)
        return obj, raw


def _verify(raw: bytes, desc: dict[str, Any]) -> None:
    got = "sha256:" + hashlib.sha256(raw).hexdigest()
    if got != desc.get("digest"):
        raise InvalidParameter(f"digest mismatch: expected {desc.get('digest')}, got {got}")
    if "size" in desc and desc["size"] != len(raw):
        raise InvalidParameter(f"size mismatch for {got}: expected {desc['size']}, got {len(raw)}")


def _plain_archive(svc: "ImageService", path: Path) -> tuple[Path, bool]:
    """The archive as a plain tar (decompressed to tmp/ when it is compressed)."""
    with open(path, "rb") as f:
        kind = detect(f.read(6))
    if kind == "none":
        return path, False
    fd, name = tempfile.mkstemp(dir=svc.config.tmp_dir, prefix="image-load-")
    try:
        st = os.statvfs(svc.config.tmp_dir)
        room = st.f_bavail * st.f_frsize
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            reader, _ = open_decompressed(src)
            written = 0
            while chunk := reader.read(1024 * 1024):
                written += len(chunk)
                if written > room:  # a decompression bomb must not fill the data root
                    raise InvalidParameter("invalid image archive: it does not fit on disk uncompressed")
                dst.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), True


def _load_layers(svc: "ImageService", ar: _Archive, cfg: dict[str, Any],
                 layers: list[tuple[str, dict[str, Any] | None]]) -> list[str]:
    """Store the layers of one image (skipping those already stored); returns pinned chains."""
    rootfs = cfg.get("rootfs") if isinstance(cfg, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise InvalidParameter("invalid image archive: layer count does not match the config's diff_ids")
    pinned: list[str] = []
    parent: str | None = None
    try:
        for diff_id, (name, desc) in zip(diff_ids, layers):
            refs.validate_digest(diff_id)
            chain = chain_id(parent, diff_id)
            if svc.layers.exists(chain):
                svc._pin([chain])
            else:
                f, size = ar.open(name)
                outer = HashingReader(f)
                svc.add_layer(parent, outer, expected_diff_id=diff_id)  # type: ignore[arg-type]
                outer.drain()
                want = desc.get("digest") if desc else None
                m = _HEX_NAME.search(name) if desc is None and name.startswith("blobs/") else None
                if m:
                    want = "sha256:" + m.group(1)
                if want and outer.digest != want:
                    svc.release_layers([chain])
                    raise InvalidParameter(f"digest mismatch: expected {want}, got {outer.digest}")
                if desc and "size" in desc and desc["size"] != outer.size:
                    svc.release_layers([chain])
                    raise InvalidParameter(f"size mismatch for {want}: expected {desc['size']}, got {outer.size}")
            pinned.append(chain)
            parent = chain
    except BaseException:
        svc.release_layers(pinned)
        raise
    return pinned


def _register(svc: "ImageService", raw_cfg: bytes, tags: list[str], pinned: list[str],
              out: list[str]) -> None:
    try:
        image_id, moved = svc.register(raw_cfg, tags=tags)
    except BaseException:
        svc.release_layers(pinned)
        raise
    for tag, old in moved:
        out.append(f"The image {tag} already exists, renaming the old one with ID {old} to empty string")
    if tags:
        out.extend(f"Loaded image: {refs.parse_tagged(t).familiar()}" for t in tags)
    else:
        out.append(f"Loaded image ID: {image_id}")


def _load_docker(svc: "ImageService", ar: _Archive, out: list[str]) -> None:
    manifest, _ = ar.read_json("manifest.json")
    if not isinstance(manifest, list):
        raise InvalidParameter("invalid image archive: manifest.json is not a list")
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers") or [], list):
            raise InvalidParameter("invalid image archive: bad manifest.json entry")
        cfg, raw = ar.read_json(entry["Config"])
        got = hashlib.sha256(raw).hexdigest()
        m = _HEX_NAME.search(entry["Config"])
        if m and m.group(1) != got:
            raise InvalidParameter(f"digest mismatch: expected sha256:{m.group(1)}, got sha256:{got}")
        tags = entry.get("RepoTags") or []
        if not all(isinstance(t, str) for t in tags) or not all(isinstance(x, str) for x in entry.get("Layers") or []):
            raise InvalidParameter("invalid image archive: bad manifest.json entry")
        for t in tags:
            refs.parse(t)  # refuse bad names before any work
        pinned = _load_layers(svc, ar, cfg, [(name, None) for name in entry.get("Layers") or []])
        _register(svc, raw, tags, pinned, out)


def _oci_name(desc: dict[str, Any]) -> str | None:
    ann = desc.get("annotations") or {}
    for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
        v = ann.get(key)
        if isinstance(v, str) and v:
            try:
                r = refs.parse(v)
            except InvalidParameter:
                continue
            if key.startswith("org.opencontainers") and "/" not in v and ":" not in v:
                continue  # a bare tag ("latest"): no repository to put it in
            if r.digest is None:
                return r.with_default_tag().familiar()
    return None


def _pick_manifests(ar: _Archive, index: dict[str, Any], depth: int = 0) -> list[tuple[dict, dict]]:
    """(manifest descriptor, the descriptor naming it at top level) for every image to load."""
    if depth > 4:
        raise InvalidParameter("invalid image archive: indexes nested too deep")
    mans = index.get("manifests")
    if not isinstance(mans, list):
        raise InvalidParameter("invalid image archive: index without manifests")
    out = []
    for desc in mans:
        if not isinstance(desc, dict):
            raise InvalidParameter("invalid image archive: bad descriptor in index")
        mt = desc.get("mediaType")
        if mt in _INDEX_TYPES:
            sub, _ = ar.read_blob_json(desc)
            cands = [d for d in sub.get("manifests") or [] if isinstance(d, dict)
                     and ar.has(ar.blob_name(d))]
            plat = [d for d in cands if (d.get("platform") or {}).get("os", "linux") == "linux"
                    and (d.get("platform") or {}).get("architecture", host_arch()) == host_arch()]
            chosen = (plat or (cands if len(cands) == 1 else []))[:1]
            if not chosen:
                raise InvalidParameter(f"no matching manifest for linux/{host_arch()} in the archive")
            for d in chosen:
                out.extend((m, desc) for m, _ in _pick_manifests(ar, {"manifests": [d]}, depth + 1))
        elif mt in _MANIFEST_TYPES or mt is None:
            out.append((desc, desc))
        # anything else (attestations, artifacts) is not an image to load
    return out


def _load_oci(svc: "ImageService", ar: _Archive, out: list[str]) -> None:
    index, _ = ar.read_json("index.json")
    if not isinstance(index, dict):
        raise InvalidParameter("invalid image archive: index.json is not an object")
    groups: dict[str, tuple[dict, list[str]]] = {}
    for mdesc, top in _pick_manifests(ar, index):
        name = _oci_name(top)
        g = groups.setdefault(mdesc.get("digest", ""), (mdesc, []))
        if name and name not in g[1]:
            g[1].append(name)
    for mdesc, tags in groups.values():
        manifest, _ = ar.read_blob_json(mdesc)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict) \
                or not isinstance(manifest.get("layers") or [], list):
            raise InvalidParameter("invalid image archive: bad manifest")
        cfg, raw = ar.read_blob_json(manifest["config"])
        layers = [(ar.blob_name(d), d) for d in manifest.get("layers") or []]
        pinned = _load_layers(svc, ar, cfg, layers)
        _register(svc, raw, tags, pinned, out)


def load(svc: "ImageService", path: Path | str) -> list[str]:
    """Load every image in a `docker save` or OCI layout archive; returns Docker's messages."""
    plain, tmp = _plain_archive(svc, Path(path))
    try:
        ar = _Archive(plain)
        try:
            out: list[str] = []
            try:
                if ar.has("manifest.json"):
                    _load_docker(svc, ar, out)
                elif ar.has("index.json"):
                    _load_oci(svc, ar, out)
                else:
                    raise InvalidParameter("invalid image archive: no manifest.json or index.json "
                                           "(not a docker save or OCI archive)")
            except BaseException:
                svc.gc()  # layers stored before the failure that no image took
                raise
            return out
        finally:
            ar.close()
    finally:
        if tmp:
            os.unlink(plain)


# -- save -------------------------------------------------------------------------------------
def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
    tar.addfile(ti, io.BytesIO(data))


def _selection(svc: "ImageService", names: list[str]) -> dict[str, list[str]]:
    """image ID -> full tagged refs to record, in request order (Docker's rules for save)."""
    chosen: dict[str, list[str]] = {}
    for name in names:
        image_id, by_id = svc._find(name)
        tags = chosen.setdefault(image_id, [])
        if by_id:
            continue
        r = refs.parse(name)
        if r.digest is not None:
            continue
        if r.name_only:
            # `docker save busybox`: every tag of the repository
            for row in svc.db.query("SELECT ref, image_id FROM image_refs WHERE ref LIKE ? ESCAPE '\\'",
                                    (r.name.replace("_", "\\_").replace("%", "\\%") + ":%",)):
                if ":" in row["ref"][len(r.name):] and "@" not in row["ref"]:
                    lst = chosen.setdefault(row["image_id"], [])
                    if row["ref"] not in lst:
                        lst.append(row["ref"])
        else:
            full = str(r.with_default_tag())
            if full not in tags:
                tags.append(full)
    return chosen


def save(svc: "ImageService", names: list[str], fileobj: BinaryIO) -> None:
    if not names:
        raise InvalidParameter("no image names given")
    chosen = _selection(svc, names)
    blobs: dict[str, tuple[str, bytes | None]] = {}   # digest -> (kind, bytes or None for a layer tar)
    layer_sizes: dict[str, int] = {}
    manifest_json: list[dict[str, Any]] = []
    index_entries: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image_id, full_tags in chosen.items():
        rec = svc.record(image_id)
        raw_cfg = svc.content.read_bytes(image_id)
        blobs[image_id] = ("config", raw_cfg)
        layer_descs = []
        for c in rec.chain_ids:
            layer = svc.layers.get(c)
            if not svc.layers.has_tar(layer.diff_id):
                raise Internal(f"layer blob {layer.diff_id} of {image_id} is missing from the content store")
            blobs[layer.diff_id] = ("layer", None)
            layer_sizes[layer.diff_id] = layer.tar_size
            layer_descs.append({"mediaType": MT_OCI_LAYER, "digest": layer.diff_id,
                                "size": layer.tar_size})
        man = _dump({"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
                     "config": {"mediaType": MT_OCI_CONFIG, "digest": image_id, "size": len(raw_cfg)},
                     "layers": layer_descs})
        man_digest = "sha256:" + hashlib.sha256(man).hexdigest()
        blobs[man_digest] = ("manifest", man)
        familiar = [refs.familiar(t) for t in full_tags]
        manifest_json.append({"Config": "blobs/sha256/" + image_id[7:], "RepoTags": familiar or None,
                              "Layers": ["blobs/sha256/" + d["digest"][7:] for d in layer_descs]})
        base = {"mediaType": MT_OCI_MANIFEST, "digest": man_digest, "size": len(man)}
        if not full_tags:
            index_entries.append(dict(base))
        for t in full_tags:
            r = refs.parse(t)
            index_entries.append({**base, "annotations": {
                "io.containerd.image.name": t, "org.opencontainers.image.ref.name": r.tag}})
            if rec.diff_ids:
                top = rec.diff_ids[-1][7:]
                repositories.setdefault(r.familiar_name, {})[r.tag or "latest"] = top
    index = _dump({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": index_entries})
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs/", "blobs/sha256/"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(ti)
        for digest in sorted(blobs):
            kind, data = blobs[digest]
            name = "blobs/sha256/" + digest[7:]
            if data is not None:
                _add_bytes(tar, name, data)
                continue
            try:
                f = svc.layers.open_tar(digest)
            except NotFound:
                raise Internal(f"blob {digest} vanished while saving") from None
            with f:
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode, ti.mtime = layer_sizes[digest], 0o644, 0
                tar.addfile(ti, f)
        _add_bytes(tar, "index.json", index)
        _add_bytes(tar, "manifest.json", _dump(manifest_json))
        _add_bytes(tar, "oci-layout", _dump({"imageLayoutVersion": "1.0.0"}))
        if repositories:
            _add_bytes(tar, "repositories", _dump(repositories))
