"""Manifests and indexes: media types, validation, platform selection.

Docker image manifest v2 schema 2 and manifest lists, OCI image manifests and indexes
(image-spec 1.1). Everything from a registry is hostile until checked: descriptors must have
a sha256 digest, a non-negative size and a known media type before anything is fetched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidParameter
from ..images.service import host_arch
from ..reference import validate_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_V1 = ("application/vnd.docker.distribution.manifest.v1+json",
             "application/vnd.docker.distribution.manifest.v1+prettyjws")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
LAYER_TYPES = (DOCKER_LAYER, DOCKER_FOREIGN, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
               "application/vnd.oci.image.layer.nondistributable.v1.tar",
               "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
               "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")
MAX_LAYERS = 1000


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()
    annotations: dict[str, str] | None = None
    artifact_type: str = ""

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            d["platform"] = self.platform
        if self.urls:
            d["urls"] = list(self.urls)
        if self.annotations:
            d["annotations"] = self.annotations
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        return d


def descriptor(obj: Any, what: str = "descriptor") -> Descriptor:
    if not isinstance(obj, dict):
        raise InvalidParameter(f"invalid manifest: {what} is not an object")
    mt = obj.get("mediaType", "")
    dg = obj.get("digest")
    size = obj.get("size")
    if not isinstance(mt, str) or not isinstance(dg, str) or not isinstance(size, int) \
            or isinstance(size, bool) or size < 0:
        raise InvalidParameter(f"invalid manifest: bad {what}")
    try:
        validate_digest(dg)
    except InvalidParameter:
        raise InvalidParameter(f"invalid manifest: unsupported digest {dg[:80]!r} in {what}") from None
    plat = obj.get("platform")
    urls = obj.get("urls") or ()
    ann = obj.get("annotations")
    return Descriptor(mt, dg, size, plat if isinstance(plat, dict) else None,
                      tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
                      ann if isinstance(ann, dict) else None, str(obj.get("artifactType") or ""))


@dataclass
class Manifest:
    media_type: str
    raw: bytes
    data: dict[str, Any]
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    manifests: list[Descriptor] = field(default_factory=list)   # an index's entries
    subject: Descriptor | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def references(self) -> list[Descriptor]:
        """Every blob or manifest this one needs (config + layers, or index entries)."""
        out = list(self.manifests) if self.is_index else ([self.config] if self.config else []) + self.layers
        return out


def parse(raw: bytes, content_type: str = "") -> Manifest:
    """Parse and check a manifest or index; the media type comes from the body, else the header."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidParameter(f"invalid manifest: {e}") from None
    if not isinstance(data, dict):
        raise InvalidParameter("invalid manifest: not a JSON object")
    mt = data.get("mediaType") or content_type.split(";")[0].strip()
    if not mt:
        mt = OCI_INDEX if "manifests" in data else OCI_MANIFEST if "layers" in data else ""
    if mt in DOCKER_V1 or data.get("schemaVersion") == 1:
        raise InvalidParameter("Docker Image manifest v2 schema 1 is not supported: "
                               "the image must be pushed again with a current client")
    if data.get("schemaVersion") != 2:
        raise InvalidParameter("invalid manifest: schemaVersion must be 2")
    m = Manifest(mt, raw, data)
    if mt in INDEX_TYPES:
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise InvalidParameter("invalid manifest: index without manifests")
        m.manifests = [descriptor(e, "manifests entry") for e in entries]
    elif mt in MANIFEST_TYPES:
        m.config = descriptor(data.get("config"), "config")
        layers = data.get("layers")
        if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
            raise InvalidParameter("invalid manifest: bad layers")
        m.layers = [descriptor(l, "layer") for l in layers]
    else:
        raise InvalidParameter(f"unsupported manifest media type {mt!r}")
    if data.get("subject") is not None:
        m.subject = descriptor(data.get("subject"), "subject")
    return m


def platform_matches(p: dict[str, Any] | None, os_: str, arch: str, variant: str) -> bool:
    if not p:
        return False
    if p.get("os") != os_ or p.get("architecture") != arch:
        return False
    if variant and p.get("variant") and p.get("variant") != variant:
        return False
    return True


def select_platform(index: Manifest, os_: str = "linux", arch: str | None = None,
                    variant: str = "") -> Descriptor | None:
    """The entry for a platform, as containerd's matcher picks it: exact variant first, then
    one without a variant; attestation manifests (`unknown/unknown`) never match."""
    arch = arch or host_arch()
    if not variant and arch == "arm64":
        variant = "v8"
    best: Descriptor | None = None
    for d in index.manifests:
        if d.media_type not in MANIFEST_TYPES:
            continue
        if not platform_matches(d.platform, os_, arch, ""):
            continue
        v = (d.platform or {}).get("variant", "")
        if v == variant:
            return d
        if best is None and (not v or not variant):
            best = d
    return best


def layer_compression(media_type: str) -> str:
    if media_type.endswith("+zstd") or media_type.endswith(".zstd"):
        return "zstd"
    if media_type.endswith("gzip"):
        return "gzip"
    return "none"


def manifest_json(config: Descriptor, layers: list[Descriptor], oci: bool = False) -> bytes:
    """A Docker schema 2 (or OCI) manifest for a push, serialised the way docker does."""
    data = {"schemaVersion": 2, "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
            "config": config.to_json(), "layers": [l.to_json() for l in layers]}
    return json.dumps(data, indent=3).encode()
