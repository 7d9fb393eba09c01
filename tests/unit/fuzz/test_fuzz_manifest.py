"""Fuzz: manifest handling - the distribution client's parser (sampan/distribution/manifest.py)
and the registry server's PUT path (sampan/registry/storage.py Storage.put_manifest): any body
parses or is refused with InvalidParameter / a registry error (MANIFEST_INVALID and friends, a
4xx); a refused manifest leaves nothing in the registry's storage."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sampan.distribution import manifest as mf
from sampan.errors import InvalidParameter
from sampan.registry.storage import RegistryAPIError, Storage

_DIGESTS = st.sampled_from(["sha256:" + "a" * 64, "sha256:" + "0" * 64, "sha256:xyz",
                            "md5:abc", "", "sha256:../../etc/passwd", "sha512:" + "b" * 128])
_MT = st.sampled_from([mf.OCI_MANIFEST, mf.OCI_INDEX, "application/vnd.docker.distribution."
                       "manifest.v2+json", "application/vnd.docker.distribution.manifest.list"
                       ".v2+json", "application/vnd.docker.distribution.manifest.v1+json",
                       "text/plain", "", "application/json"])
_DESC = st.fixed_dictionaries({}, optional={
    "mediaType": st.one_of(_MT, st.integers()), "digest": st.one_of(_DIGESTS, st.integers()),
    "size": st.one_of(st.integers(min_value=-5, max_value=2**70), st.text(max_size=3)),
    "platform": st.one_of(st.none(), st.dictionaries(st.sampled_from(["os", "architecture"]),
                                                    st.text(max_size=6)), st.text(max_size=3)),
    "urls": st.one_of(st.lists(st.text(max_size=8), max_size=2), st.integers())})
_MANIFEST = st.fixed_dictionaries({}, optional={
    "schemaVersion": st.sampled_from([1, 2, 3, "2", None]),
    "mediaType": _MT,
    "config": st.one_of(_DESC, st.none(), st.text(max_size=3)),
    "layers": st.one_of(st.lists(_DESC, max_size=3), st.none(), st.integers()),
    "manifests": st.one_of(st.lists(_DESC, max_size=3), st.none(), st.text(max_size=3)),
    "subject": st.one_of(_DESC, st.none(), st.integers()),
    "annotations": st.one_of(st.dictionaries(st.text(max_size=4), st.text(max_size=4)),
                             st.integers())})
_BODY = st.one_of(_MANIFEST.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200))


@settings(max_examples=400, deadline=None)
@given(_BODY, _MT)
def test_client_parser(raw, content_type):
    try:
        m = mf.parse(raw, content_type)
    except InvalidParameter:
        return
    for d in m.references():
        assert isinstance(d.digest, str) and isinstance(d.size, int)


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return Storage(tmp_path_factory.mktemp("registry"))


def _files(root) -> set[str]:
    out = set()
    for dirpath, _, files in os.walk(root):
        out.update(os.path.join(dirpath, f) for f in files)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_BODY, _MT, st.sampled_from(["latest", "v1", "sha256:" + "c" * 64, "../x", "a" * 200]))
def test_registry_put_manifest(storage, raw, content_type, ref):
    before = _files(storage.root)
    try:
        storage.put_manifest("fuzz/repo", ref, raw, content_type)
    except RegistryAPIError as e:
        assert 400 <= e.status < 500, e
        # Nothing was stored for a refused manifest (temp files included).
        assert _files(storage.root) - before == set()
        return
    # Accepted: only possible without references to unknown blobs (empty index/layers).
