"""Manifest parsing and platform selection; hostile manifests are refused before any fetch."""

from __future__ import annotations

import json

import pytest

from sampan.distribution import manifest as mf
from sampan.errors import InvalidParameter

D = "sha256:" + "a" * 64


def _index(entries):
    return json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": entries}).encode()


def _entry(arch, variant=None, os_="linux", mt=mf.OCI_MANIFEST, digest=D):
    p = {"os": os_, "architecture": arch}
    if variant:
        p["variant"] = variant
    return {"mediaType": mt, "digest": digest, "size": 10, "platform": p}


def test_parse_docker_manifest():
    raw = json.dumps({"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
                      "config": {"mediaType": mf.DOCKER_CONFIG, "digest": D, "size": 5},
                      "layers": [{"mediaType": mf.DOCKER_LAYER, "digest": D, "size": 7}]}).encode()
    m = mf.parse(raw)
    assert m.media_type == mf.DOCKER_MANIFEST and not m.is_index
    assert m.config.size == 5 and [l.size for l in m.layers] == [7]


def test_media_type_from_header_when_body_has_none():
    raw = json.dumps({"schemaVersion": 2, "config": {"mediaType": mf.OCI_CONFIG, "digest": D, "size": 1},
                      "layers": []}).encode()
    assert mf.parse(raw, mf.OCI_MANIFEST + "; charset=utf-8").media_type == mf.OCI_MANIFEST


@pytest.mark.parametrize("raw", [
    b"nope", b"[]", b'{"schemaVersion": 1}', b'{"schemaVersion": 2, "mediaType": "text/plain"}',
    json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST, "config": {"digest": "md5:x", "size": 1},
                "layers": []}).encode(),
    json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                "config": {"mediaType": "x", "digest": D, "size": -1}, "layers": []}).encode(),
    json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                "config": {"mediaType": "x", "digest": "sha256:../../etc", "size": 1}, "layers": []}).encode(),
    json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": "x"}).encode(),
])
def test_hostile_manifests_refused(raw):
    with pytest.raises(InvalidParameter):
        mf.parse(raw)


def test_platform_selection():
    idx = mf.parse(_index([
        _entry("unknown", os_="unknown", digest="sha256:" + "0" * 64),
        _entry("arm", "v7", digest="sha256:" + "1" * 64),
        _entry("arm64", "v8", digest="sha256:" + "2" * 64),
        _entry("amd64", digest="sha256:" + "3" * 64),
    ]))
    assert mf.select_platform(idx, "linux", "amd64").digest.endswith("3" * 64)
    assert mf.select_platform(idx, "linux", "arm64").digest.endswith("2" * 64)
    assert mf.select_platform(idx, "linux", "arm", "v7").digest.endswith("1" * 64)
    assert mf.select_platform(idx, "linux", "arm", "v6") is None
    assert mf.select_platform(idx, "linux", "s390x") is None


def test_layer_compression_names():
    assert mf.layer_compression(mf.DOCKER_LAYER) == "gzip"
    assert mf.layer_compression(mf.OCI_LAYER_ZSTD) == "zstd"
    assert mf.layer_compression(mf.OCI_LAYER) == "none"
