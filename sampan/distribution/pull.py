"""Pull: resolve a reference to a manifest, then fetch, verify and unpack what is missing.

`resolve()` does the round trips that decide whether the pull can happen at all (ping,
auth, manifest, platform selection) so the API can answer a plain error status before its
progress stream starts, as Docker does. `Puller.run()` then fetches the config, starts up to
`max_concurrent` layer downloads, and unpacks the layers in order, each one following its
own download (see spool.py). Layers already in the store are not fetched; every layer added
stays pinned until the image is registered, and a failure releases the pins and collects
what was added, leaving no partial image behind.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import reference as refs
from ..errors import InvalidParameter, NotFound
from ..images.service import ImageService, parse_platform
from ..snapshots import Compressed, chain_ids
from . import manifest as mf
from .inflate import ThreadedDecompressor
from .progress import Reporter, short_id, status
from .spool import SpoolReader, Transfers, download
from .transport import Registry, RegistryError

MAX_CONFIG = 8 * 1024 * 1024


def pull_scope(repo: str) -> list[str]:
    return [f"repository:{repo}:pull"]


def fetch_manifest(reg: Registry, repo: str, reference: str) -> tuple[bytes, str, str]:
    """GET a manifest by tag or digest -> (raw, media type, digest). A digest reference is
    verified against the bytes; a tag's digest is what the bytes hash to."""
    r = reg.request("GET", f"/v2/{repo}/manifests/{reference}", pull_scope(repo),
                    {"Accept": mf.ACCEPT})
    raw = r.read_small(4 * 1024 * 1024)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if reference.startswith("sha256:") and digest != reference:
        raise InvalidParameter(f"manifest verification failed for digest {reference}: got {digest}")
    return raw, r.header("Content-Type"), digest


def fetch_small_blob(reg: Registry, repo: str, digest: str, limit: int = MAX_CONFIG) -> bytes:
    r = reg.request("GET", f"/v2/{repo}/blobs/{digest}", pull_scope(repo))
    data = r.read_small(limit)
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if got != digest:
        raise InvalidParameter(f"digest mismatch for {digest}: got {got}")
    return data


@dataclass
class Resolved:
    ref: refs.Reference           # what was asked for (tag or digest), fully qualified
    repo: str                     # path in the registry (`library/busybox`)
    top_digest: str               # digest of what the tag names (index or manifest)
    manifest: mf.Manifest         # the image manifest for our platform
    manifest_digest: str
    platform: tuple[str, str, str]
    explicit_platform: bool


def _not_found(ref: refs.Reference, e: RegistryError) -> NotFound:
    if e.code in ("NAME_UNKNOWN", "UNAUTHORIZED", "DENIED") or e.status in (401, 403):
        return NotFound(f"pull access denied for {ref.familiar_name}, repository does not exist or "
                        f"may require 'docker login': {e}")
    return NotFound(f"manifest for {ref.familiar()} not found: {e}")


def resolve(reg: Registry, ref: refs.Reference, repo: str, platform: str | None) -> Resolved:
    plat = parse_platform(platform)
    target = ref.digest or ref.tag or refs.DEFAULT_TAG
    try:
        raw, ctype, top = fetch_manifest(reg, repo, target)
    except RegistryError as e:
        if e.status in (401, 403, 404):
            raise _not_found(ref, e) from None
        raise
    m = mf.parse(raw, ctype)
    digest = top
    if m.is_index:
        d = mf.select_platform(m, plat[0], plat[1], plat[2])
        if d is None:
            raise NotFound(f"no matching manifest for {'/'.join(p for p in plat if p)} "
                           "in the manifest list entries")
        raw, ctype, digest = fetch_manifest(reg, repo, d.digest)
        m = mf.parse(raw, ctype)
        if m.is_index:
            raise InvalidParameter("invalid manifest list: an entry is itself an index")
    return Resolved(ref, repo, top, m, digest, plat, bool(platform))


class _Counting:
    """Reports how far an extraction has read into its compressed blob."""

    def __init__(self, r: SpoolReader, on: Any) -> None:
        self._r = r
        self._on = on

    def read(self, n: int = -1) -> bytes:
        data = self._r.read(n)
        self._on(self._r.pos)
        return data


class _VerifiedEnd:
    """The inflated stream of a spool, whose end waits for the download's verdict: the layer
    store keeps the spool file itself, so it must be whole and verified first."""

    def __init__(self, dec: ThreadedDecompressor, spool: Any) -> None:
        self._dec = dec
        self._spool = spool

    def read(self, n: int = -1) -> bytes:
        data = self._dec.read(n)
        if not data:
            self._spool.wait_done()
        return data


class Puller:
    def __init__(self, images: ImageService, transfers: Transfers, max_concurrent: int = 3) -> None:
        self.images = images
        self.transfers = transfers
        self.max_concurrent = max(1, int(max_concurrent))

    def run(self, reg: Registry, res: Resolved, emit: Reporter, tag_ref: str | None) -> tuple[str, bool]:
        """Pull what `res` names; `tag_ref` is tagged. -> (image ID, True if anything new)."""
        m = res.manifest
        assert m.config is not None
        config_raw = fetch_small_blob(reg, res.repo, m.config.digest)
        try:
            cfg = json.loads(config_raw)
            diff_ids = list(cfg["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise InvalidParameter("invalid image config: no rootfs.diff_ids") from None
        for d in diff_ids:
            refs.validate_digest(d)
        layers = [l for l in m.layers if l.media_type != mf.OCI_EMPTY]
        if len(diff_ids) != len(layers):
            raise InvalidParameter(f"invalid image: {len(layers)} layers in the manifest but "
                                   f"{len(diff_ids)} diff IDs in the config")
        for l in layers:
            if l.media_type not in mf.LAYER_TYPES:
                raise InvalidParameter(f"unsupported layer media type {l.media_type!r}")
        if res.explicit_platform and not m.is_index:
            os_, arch, _ = res.platform
            if cfg.get("architecture") and (cfg.get("os"), cfg.get("architecture")) != (os_, arch):
                raise NotFound(f"image with reference {res.ref.familiar()} was found but does not "
                               f"match the specified platform: wanted {os_}/{arch}, actual: "
                               f"{cfg.get('os')}/{cfg.get('architecture')}")
        chains = chain_ids(diff_ids)
        image_id = "sha256:" + hashlib.sha256(config_raw).hexdigest()
        pinned: list[str] = []
        new = False
        registered = False
        spools = []
        pool = ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="sampan-pull")
        try:
            todo = []
            for i, (l, chain) in enumerate(zip(layers, chains)):
                if self.images.pin_existing(chain):
                    pinned.append(chain)
                    emit(status("Already exists", short_id(l.digest)))
                else:
                    emit(status("Pulling fs layer", short_id(l.digest)))
                    todo.append(i)
            futures = {}
            for i in todo:
                l = layers[i]
                spool, mine = self.transfers.claim(l.digest, l.size)
                spools.append(spool)
                if mine:
                    futures[i] = pool.submit(self._download, reg, res.repo, l, spool, emit)
                else:
                    emit(status("Waiting", short_id(l.digest)))
            for i in todo:
                l = layers[i]
                spool = spools[todo.index(i)]
                parent = chains[i - 1] if i else None
                if self.images.pin_existing(chains[i]):  # a concurrent pull unpacked it
                    pinned.append(chains[i])
                    spool.wait_done()
                    emit(status("Pull complete", short_id(l.digest)))
                    continue
                layer = self._extract(l, parent, diff_ids[i], spool, emit)
                pinned.append(layer.chain_id)
                new = True
                if layer.chain_id != chains[i]:
                    raise InvalidParameter(f"layer {l.digest}: chain ID mismatch")
            for f in futures.values():
                f.result()
            tags = [tag_ref] if tag_ref else []
            try:
                before = self.images.lookup_id(tag_ref) if tag_ref else None
            except NotFound:
                before = None
            image_id, _ = self.images.register(config_raw, tags=tags)
            registered = True
            return image_id, new or before != image_id
        except BaseException:
            if not registered:
                self.images.release_layers(pinned)
                self.images.gc()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for s in spools:
                self.transfers.release(s)

    def _download(self, reg: Registry, repo: str, l: mf.Descriptor, spool: Any, emit: Reporter) -> None:
        sid = short_id(l.digest)
        path = f"/v2/{repo}/blobs/{l.digest}"

        def open_blob(offset: int) -> Any:
            h = {"Range": f"bytes={offset}-"} if offset else {}
            return reg.request("GET", path, pull_scope(repo), h, ok=(200, 206))

        download(open_blob, spool, lambda n: emit.progress("Downloading", sid, n, l.size))
        emit(status("Verifying Checksum", sid))
        emit(status("Download complete", sid))

    def _extract(self, l: mf.Descriptor, parent: str | None, diff_id: str, spool: Any,
                 emit: Reporter) -> Any:
        sid = short_id(l.digest)
        reader = spool.reader()
        counting = _Counting(reader, lambda n: emit.progress("Extracting", sid, n, l.size))
        dec = ThreadedDecompressor(counting, "auto")  # type: ignore[arg-type]
        blob = Compressed(spool.path, l.digest, l.size, l.media_type)
        try:
            layer = self.images.add_layer(parent, _VerifiedEnd(dec, spool), expected_diff_id=diff_id,  # type: ignore[arg-type]
                                          compressed=blob)
        finally:
            dec.close()
            reader.close()
        emit.progress("Extracting", sid, l.size, l.size, force=True)
        emit(status("Pull complete", sid))
        return layer

