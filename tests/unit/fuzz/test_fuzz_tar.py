"""Fuzz: layer extraction (sampan/archive/extract.py) with hostile tars - `..`, absolute
names, symlinks and hardlinks pointing out, entries written through such links, whiteouts,
devices, duplicates, absurd sizes - and with random byte mutations of a valid tar. Each one
extracts inside the target dir or is refused with InvalidParameter; nothing ever appears
outside it (a sibling dir, and absolute paths under /tmp, are checked after every example)."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import uuid

from hypothesis import HealthCheck, given, settings, strategies as st

from sampan.archive import extract_layer
from sampan.errors import InvalidParameter

MARK = "sampan-fuzz-" + uuid.uuid4().hex[:8]
_NAMES = st.sampled_from([
    "a", "a/b", "./a", "a/../b", "../escape", "../../escape", "/abs", f"/tmp/{MARK}",
    f"../../../../../../tmp/{MARK}", "link", "link/x", "link/../y", "hl", "d/", "d/e",
    ".wh.a", "d/.wh..wh..opq", ".wh..wh..opq", ".wh.../x", "", ".", "..", "a\x00b", "x" * 300,
    "dev", "fifo", "out/pwned", "link2/pwned", "//double", "a//b"])
_TARGETS = st.sampled_from([
    "/", "/etc", "/tmp", f"/tmp/{MARK}", "..", "../..", "../outside", "a", "link", "link2",
    "../../../../../../tmp", "d", "", "x" * 300])
_TYPES = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                          tarfile.FIFOTYPE, tarfile.CHRTYPE])
_MEMBER = st.tuples(_NAMES, _TYPES, _TARGETS, st.binary(max_size=64),
                    st.sampled_from([0o644, 0o755, 0o4755, 0o777, 0o000]))


def _build(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind, target, data, mode in members:
            ti = tarfile.TarInfo(name.replace("\x00", "") or "x")
            ti.type = kind
            ti.mode = mode
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                ti.linkname = target
            if kind == tarfile.CHRTYPE:
                ti.devmajor, ti.devminor = 1, 3  # /dev/null: harmless if made
            if kind == tarfile.REGTYPE:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


def _snapshot(path: str) -> set[tuple[str, int]]:
    out = set()
    for dirpath, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            out.add((p, os.lstat(p).st_size if not os.path.isdir(p) else 0))
    return out


def _extract_and_check(data: bytes) -> None:
    base = tempfile.mkdtemp(prefix="fuzz-tar-")
    try:
        dest = os.path.join(base, "dest")
        outside = os.path.join(base, "outside")
        os.makedirs(dest)
        os.makedirs(outside)
        with open(os.path.join(outside, "keep"), "w") as f:
            f.write("keep")
        before = _snapshot(outside)
        try:
            extract_layer(io.BytesIO(data), dest)
        except InvalidParameter as e:
            assert str(e)
        assert sorted(os.listdir(base)) == ["dest", "outside"]
        assert _snapshot(outside) == before
        assert not os.path.lexists(f"/tmp/{MARK}")
        assert not os.path.lexists("/abs") and not os.path.lexists("/escape")
        # Everything extracted resolves inside dest when followed as the container would
        # (links are relative to dest, never the host's /).
        for p, _ in _snapshot(dest):
            assert os.path.realpath(os.path.dirname(p)).startswith(os.path.realpath(dest))
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if os.path.lexists(f"/tmp/{MARK}"):
            shutil.rmtree(f"/tmp/{MARK}", ignore_errors=True)


_SET = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SET
@given(st.lists(_MEMBER, min_size=1, max_size=8))
def test_hostile_member_lists(members):
    _extract_and_check(_build(members))


_BASE = _build([("d/", tarfile.DIRTYPE, "", b"", 0o755),
                ("d/file", tarfile.REGTYPE, "", b"hello world" * 40, 0o644),
                ("link", tarfile.SYMTYPE, "d", b"", 0o777),
                ("hl", tarfile.LNKTYPE, "d/file", b"", 0o644)])


@_SET
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(_BASE) - 1),
                          st.integers(min_value=0, max_value=255)), min_size=1, max_size=12),
       st.integers(min_value=0, max_value=len(_BASE)))
def test_mutated_bytes(flips, cut):
    data = bytearray(_BASE)
    for pos, val in flips:
        data[pos] = val
    _extract_and_check(bytes(data[:cut] if cut else data))


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=2**33, max_value=2**62))
def test_declared_size_beyond_the_data(size):
    # A member that claims far more data than the stream holds: refused, nothing outside.
    ti = tarfile.TarInfo("big")
    ti.size = size
    head = ti.tobuf(format=tarfile.GNU_FORMAT)
    _extract_and_check(head + b"x" * 1024)
