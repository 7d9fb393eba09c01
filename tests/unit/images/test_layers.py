"""The layer store: chain IDs (OCI image spec), one unpack per chain, atomic creation."""

import gzip
import hashlib
import io
import os

import pytest

from sampan.content import ContentStore
from sampan.errors import InvalidParameter, NotFound
from sampan.metadata import Database
from sampan.snapshots import Compressed, LayerStore, chain_id, chain_ids


def test_chain_ids_match_the_oci_spec():
    d1, d2, d3 = ("sha256:" + c * 64 for c in "abc")
    assert chain_id(None, d1) == d1
    c2 = "sha256:" + hashlib.sha256(f"{d1} {d2}".encode()).hexdigest()
    assert chain_id(d1, d2) == c2
    c3 = "sha256:" + hashlib.sha256(f"{c2} {d3}".encode()).hexdigest()
    assert chain_ids([d1, d2, d3]) == [d1, c2, c3]
    assert chain_ids([]) == []


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "db")
    content = ContentStore(tmp_path / "content", tmp_path / "tmp")
    yield LayerStore(tmp_path / "layers", db, content)
    db.close()


def test_layers_stack_by_chain(store, h):
    base = h.tar_of({"a": b"1"})
    top = h.tar_of({"b": b"2"})
    l1 = store.create(None, io.BytesIO(base))
    l2 = store.create(l1.chain_id, io.BytesIO(top), expected_diff_id=h.sha(top))
    assert l1.chain_id == l1.diff_id == h.sha(base)
    assert l2.chain_id == chain_id(l1.chain_id, h.sha(top)) and l2.parent == l1.chain_id
    assert (l1.path / "a").read_bytes() == b"1" and (l2.path / "b").read_bytes() == b"2"
    assert l2.path == store.root / l2.chain_id[7:] / "diff"
    assert store.content.read_bytes(l2.diff_id) == top
    # the same layer again is not unpacked twice
    again = store.create(None, io.BytesIO(base))
    assert again == l1
    assert sorted(os.listdir(store.root)) == sorted([l1.chain_id[7:], l2.chain_id[7:]])


def test_wrong_diff_id_leaves_nothing(store, h):
    with pytest.raises(InvalidParameter, match="mismatch"):
        store.create(None, io.BytesIO(h.tar_of({"a": b"1"})), expected_diff_id="sha256:" + "0" * 64)
    assert os.listdir(store.root) == [] and list(store.content.walk()) == []
    assert os.listdir(store.content.tmp_dir) == []


def test_hostile_layer_leaves_nothing(store, tmp_path):
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("a")
        ti.type, ti.linkname = tarfile.SYMTYPE, "../../.."
        t.addfile(ti)
        ti = tarfile.TarInfo("a/evil")
        t.addfile(ti, io.BytesIO(b""))
    with pytest.raises(InvalidParameter):
        store.create(None, io.BytesIO(buf.getvalue()))
    assert os.listdir(store.root) == []
    assert not (tmp_path / "evil").exists()


def test_unknown_parent_and_remove(store, h):
    with pytest.raises(NotFound):
        store.create("sha256:" + "9" * 64, io.BytesIO(h.tar_of({})))
    l1 = store.create(None, io.BytesIO(h.tar_of({"a": b"1"})))
    assert store.remove(l1.chain_id) == l1
    assert not l1.path.exists() and not store.exists(l1.chain_id)
    assert not store.content.exists(l1.diff_id)
    assert store.remove(l1.chain_id) is None


def _spool(tmp_path, data: bytes, name: str = "spool"):
    """A finished download on the store's filesystem, as a pull leaves it."""
    p = tmp_path / "tmp" / name
    p.write_bytes(data)
    return p


def test_a_pulled_layer_keeps_its_compressed_blob_not_a_second_tar(store, h, tmp_path):
    tar = h.tar_of({"a/f": b"x" * 100_000, "b": b"2"})
    gz = gzip.compress(tar, compresslevel=9, mtime=1234)
    blob = Compressed(_spool(tmp_path, gz), h.sha(gz), len(gz), "application/vnd.docker.image.rootfs.diff.tar.gzip")
    l1 = store.create(None, io.BytesIO(gz), expected_diff_id=h.sha(tar), compressed=blob)
    assert (l1.path / "a" / "f").read_bytes() == b"x" * 100_000
    assert l1.tar_size == len(tar)
    # the very file was linked in, and no uncompressed copy was written
    assert store.content.path(h.sha(gz)).stat().st_ino == blob.path.stat().st_ino
    assert not store.content.exists(h.sha(tar))
    assert store.compressed_blob(l1.diff_id) == Compressed(store.content.path(h.sha(gz)), h.sha(gz),
                                                           len(gz), blob.media_type)
    with store.open_tar(l1.diff_id) as f:
        assert f.read() == tar
    blob.path.unlink()  # the pull drops its spool; the blob stays
    with store.open_tar(l1.diff_id) as f:
        assert f.read() == tar
    store.remove(l1.chain_id)
    assert not store.content.exists(h.sha(gz)) and store.compressed_blob(l1.diff_id) is None
    assert list(store.content.walk()) == []
    with pytest.raises(NotFound):
        store.open_tar(l1.diff_id)


def test_a_compressed_blob_is_dropped_when_the_tar_is_already_kept(store, h, tmp_path):
    tar = h.tar_of({"a": b"1"})
    base = store.create(None, io.BytesIO(tar))            # imported: the tar itself is kept
    gz = gzip.compress(tar)
    other = store.create(base.chain_id, io.BytesIO(gz), expected_diff_id=h.sha(tar),
                         compressed=Compressed(_spool(tmp_path, gz), h.sha(gz), len(gz), "x"))
    assert other.diff_id == base.diff_id and other.chain_id != base.chain_id
    assert not store.content.exists(h.sha(gz)) and store.compressed_blob(h.sha(tar)) is None
    # two layers share the diff: the tar goes with the last of them
    store.remove(other.chain_id)
    assert store.content.exists(h.sha(tar))
    store.remove(base.chain_id)
    assert list(store.content.walk()) == []


def test_two_layers_share_one_kept_blob(store, h, tmp_path):
    base = store.create(None, io.BytesIO(h.tar_of({"base": b"0"})))
    tar = h.tar_of({"a": b"1"})
    gz = gzip.compress(tar)
    blob = Compressed(_spool(tmp_path, gz), h.sha(gz), len(gz), "x")
    l1 = store.create(None, io.BytesIO(gz), expected_diff_id=h.sha(tar), compressed=blob)
    l2 = store.create(base.chain_id, io.BytesIO(gz), expected_diff_id=h.sha(tar), compressed=blob)
    store.remove(l1.chain_id)
    with store.open_tar(l2.diff_id) as f:
        assert f.read() == tar
    store.remove(l2.chain_id)
    assert not store.content.exists(h.sha(gz))


def test_a_kept_blob_of_the_wrong_size_is_refused_and_nothing_stays(store, h, tmp_path):
    tar = h.tar_of({"a": b"1"})
    gz = gzip.compress(tar)
    blob = Compressed(_spool(tmp_path, gz), h.sha(gz), len(gz) + 1, "x")
    with pytest.raises(InvalidParameter, match="size mismatch"):
        store.create(None, io.BytesIO(gz), expected_diff_id=h.sha(tar), compressed=blob)
    assert store.all() == [] and not store.content.exists(h.sha(gz))
    assert [p for p in os.listdir(store.root)] == []
