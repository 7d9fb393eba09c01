"""The content-addressed blob store: verified, atomic, idempotent writes."""

import hashlib
import io
import os

import pytest

from sampan.content import ContentStore, sha256_digest
from sampan.errors import InvalidParameter, NotFound


@pytest.fixture
def store(tmp_path):
    return ContentStore(tmp_path / "content", tmp_path / "tmp")


def _d(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_write_stream_then_read(store, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 7)
    digest = store.write(io.BytesIO(data), expected=_d(data), size=len(data))
    assert digest == _d(data)
    p = tmp_path / "content" / "sha256" / digest[7:]
    assert p.read_bytes() == data
    assert store.exists(digest) and store.info(digest) == len(data)
    with store.open(digest) as f:
        assert f.read() == data
    assert list(store.walk()) == [(digest, len(data))]
    assert list((tmp_path / "tmp").iterdir()) == []  # the temp file was renamed away


def test_existing_blob_is_noop(store):
    d1 = store.write_bytes(b"hello")
    mtime = store.path(d1).stat().st_mtime_ns
    assert store.write([b"hel", b"lo"]) == d1
    assert store.path(d1).stat().st_mtime_ns == mtime
    assert sha256_digest(b"hello") == d1


def test_digest_mismatch_names_both_and_leaves_nothing(store, tmp_path):
    wrong = "sha256:" + "0" * 64
    with pytest.raises(InvalidParameter) as e:
        store.write(io.BytesIO(b"data"), expected=wrong)
    assert wrong in str(e.value) and _d(b"data") in str(e.value)
    assert list(store.walk()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_size_mismatch(store):
    with pytest.raises(InvalidParameter, match="size"):
        store.write(io.BytesIO(b"abcdef"), size=3)
    with pytest.raises(InvalidParameter, match="size"):
        store.write(io.BytesIO(b"abc"), expected=_d(b"abc"), size=4)
    assert list(store.walk()) == []


def test_hostile_digests_are_refused(store, tmp_path):
    for bad in ("sha256:../../../etc/passwd", "../x", "sha512:" + "a" * 128, "", "sha256:" + "A" * 64):
        with pytest.raises(InvalidParameter):
            store.path(bad)
        with pytest.raises(InvalidParameter):
            store.exists(bad)
        with pytest.raises(InvalidParameter):
            store.delete(bad)


def test_missing_blob(store):
    missing = "sha256:" + "1" * 64
    assert not store.exists(missing)
    with pytest.raises(NotFound):
        store.open(missing)
    with pytest.raises(NotFound):
        store.info(missing)
    assert store.delete(missing) is False


def test_delete_and_cleanup(store, tmp_path):
    d = store.write_bytes(b"x")
    assert store.delete(d) and not store.exists(d)
    w = store.writer()
    w.write(b"half")  # a crash here leaves a temp file
    assert len(list((tmp_path / "tmp").iterdir())) == 1
    store.cleanup()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_writer_commit_and_abort(store):
    with store.writer() as w:
        w.write(b"ab")
        w.write(b"c")
        assert w.commit(_d(b"abc"), 3) == _d(b"abc")
    assert store.read_bytes(_d(b"abc")) == b"abc"
    with store.writer() as w:
        w.write(b"zzz")
    assert not store.exists(_d(b"zzz"))
