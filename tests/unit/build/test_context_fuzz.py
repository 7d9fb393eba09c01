"""Fuzz: the build context's header guard and .dockerignore matcher.

Hostile context tars (escaping names, links out, devices, fifos, whiteout names, pax headers
that rewrite sizes and names, byte mutations) are either unpacked inside the private dir with
no device, fifo or `.wh.` name in it, or refused with InvalidParameter; nothing appears
outside. The cached per-directory ignore matching equals a plain, uncached transcription of
moby's MatchesOrParentMatches on random patterns and paths."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
import uuid

from hypothesis import HealthCheck, given, settings, strategies as st

from sampan.build.context import BuildContext
from sampan.build.dockerignore import IgnoreMatcher, _Pattern, go_clean
from sampan.errors import InvalidParameter

MARK = "sampan-ctxfuzz-" + uuid.uuid4().hex[:8]
_NAMES = st.sampled_from([
    "a", "a/b", "./a", "a/../b", "../escape", "/abs", f"../../../../../../tmp/{MARK}",
    "link", "link/x", "hl", "d/", "d/e", ".wh.a", "d/.wh..wh..opq", "Dockerfile",
    ".dockerignore", "x" * 120, "dev", "fifo", "out/pwned", "a//b", "olddir/"])
_TARGETS = st.sampled_from(["/", "/etc", "/tmp", "..", "../outside", "a", "link", "d", ""])
_TYPES = st.sampled_from([tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                          tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE])
_PAX = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "size": st.sampled_from(["0", "512", "-1", "x", "99999999999"]),
    "path": _NAMES, "linkpath": _TARGETS}))
_MEMBER = st.tuples(_NAMES, _TYPES, _TARGETS, st.binary(max_size=600), _PAX)


def _build(members, fmt) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, kind, target, data, pax in members:
            ti = tarfile.TarInfo(name or "x")
            ti.type, ti.mode = kind, 0o644
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                ti.linkname = target
            if kind == tarfile.CHRTYPE:
                ti.devmajor, ti.devminor = 1, 3
            if pax and fmt == tarfile.PAX_FORMAT:
                ti.pax_headers = dict(pax)
            if kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


def _check_clean(base, outside):
    assert os.listdir(outside) == ["keep"]
    assert not os.path.exists(f"/tmp/{MARK}")
    for dp, dns, fns in os.walk(base):
        for n in dns + fns:
            st_ = os.lstat(os.path.join(dp, n))
            assert not (stat.S_ISCHR(st_.st_mode) or stat.S_ISBLK(st_.st_mode)
                        or stat.S_ISFIFO(st_.st_mode)), os.path.join(dp, n)
            assert not n.startswith(".wh."), os.path.join(dp, n)


def _run(data: bytes) -> None:
    top = tempfile.mkdtemp(prefix="ctxfuzz-")
    try:
        work, outside = os.path.join(top, "work"), os.path.join(top, "outside")
        os.mkdir(work)
        os.mkdir(outside)
        open(os.path.join(outside, "keep"), "w").close()
        try:
            ctx = BuildContext.from_tar(io.BytesIO(data), work, max_bytes=1 << 20)
        except InvalidParameter:
            assert os.listdir(work) == []
        else:
            _check_clean(ctx.private, outside)
            ctx.cleanup()
        _check_clean(top, outside)
    finally:
        shutil.rmtree(top, ignore_errors=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_MEMBER, min_size=1, max_size=6),
       st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
def test_hostile_context_tars(members, fmt):
    try:
        data = _build(members, fmt)
    except (ValueError, tarfile.HeaderError):
        return  # not representable in this format
    _run(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_MEMBER, min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_context_tars(members, flips):
    try:
        data = bytearray(_build(members, tarfile.PAX_FORMAT))
    except (ValueError, tarfile.HeaderError):
        return
    for pos, val in flips:
        if pos < len(data):
            data[pos] = val
    _run(bytes(data))


# -- ignore matching: cached walk == plain MatchesOrParentMatches -------------------------------
def _reference(patterns: list[_Pattern], path: str) -> bool:
    path = go_clean(path)
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    dirs = parent.split("/")
    matched = False
    for p in patterns:
        if p.exclusion != matched:
            continue
        m = p.match(path)
        if not m and parent != ".":
            for i in range(len(dirs)):
                if p.match("/".join(dirs[:i + 1])):
                    m = True
                    break
        if m:
            matched = not p.exclusion
    return matched


_PAT = st.sampled_from(["a", "a/b", "*", "*.txt", "**/*.txt", "a/**", "**", "a/*/c", "?",
                        "[ab]", "!a/b", "!**/c", "!*.txt", "b/**/c", "**/b", "a?", "/a/b/",
                        "./c", "!a", "c/*"])
_SEG = st.sampled_from(["a", "b", "c", "x.txt", "ab", "a.txt"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PAT, max_size=6), st.lists(st.lists(_SEG, min_size=1, max_size=4), max_size=20))
def test_cached_matching_equals_reference(patterns, paths):
    m = IgnoreMatcher.from_text("\n".join(patterns))
    for segs in paths:
        path = "/".join(segs)
        assert m.ignored(path) == _reference(m.patterns, path), (patterns, path)
