"""Layer extraction: real files on a temp dir, hostile tars refused with nothing written outside."""

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile

import pytest

from sampan.archive import extract_layer
from sampan.errors import InvalidParameter

ROOT = os.geteuid() == 0


def _extract(data: bytes, dest, **kw):
    return extract_layer(io.BytesIO(data), dest, **kw)


def test_regular_tree_metadata_and_diff_id(tb, tmp_path):
    data = (tb().dir("etc/", mode=0o755, mtime=1000)
            .file("etc/passwd", b"root:x:0:0\n", mode=0o640, uid=1, gid=2, mtime=2000)
            .file("bin/tool", b"\x7fELF", mode=0o4755)
            .symlink("bin/sh", "tool", mtime=3000)
            .hardlink("bin/tool2", "bin/tool")
            .device("dev/null", tarfile.CHRTYPE, 1, 3, mode=0o666)
            .device("dev/sda", tarfile.BLKTYPE, 8, 0, mode=0o660)
            .device("run/fifo", tarfile.FIFOTYPE, mode=0o600)
            .bytes())
    res = _extract(data, tmp_path)
    assert res.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert res.tar_size == len(data) and res.content_size == 15 and res.entries == 8
    p = tmp_path / "etc/passwd"
    st = p.lstat()
    assert p.read_bytes() == b"root:x:0:0\n" and stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_mtime == 2000
    assert (tmp_path / "etc").stat().st_mtime == 1000  # dir times set after children
    assert os.readlink(tmp_path / "bin/sh") == "tool"
    assert (tmp_path / "bin/sh").lstat().st_mtime == 3000
    assert os.path.samefile(tmp_path / "bin/tool", tmp_path / "bin/tool2")
    assert stat.S_IMODE((tmp_path / "bin/tool").stat().st_mode) == 0o4755
    assert (tmp_path / "bin").stat().st_mode & 0o777 == 0o755  # implicit parent dirs
    assert stat.S_ISFIFO((tmp_path / "run/fifo").lstat().st_mode)
    if ROOT:
        assert (st.st_uid, st.st_gid) == (1, 2)
        dev = (tmp_path / "dev/null").lstat()
        assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1 and os.minor(dev.st_rdev) == 3
        assert stat.S_ISBLK((tmp_path / "dev/sda").lstat().st_mode)


def test_absolute_names_become_relative(tb, sandbox):
    target, outside = sandbox
    _extract(tb().file("/abs/file", b"x").file("./rel/./f", b"y").bytes(), target)
    assert (target / "abs/file").read_bytes() == b"x"
    assert (target / "rel/f").read_bytes() == b"y"


def test_dotdot_inside_is_cleaned(tb, tmp_path):
    _extract(tb().file("a/../b", b"x").bytes(), tmp_path)
    assert (tmp_path / "b").read_bytes() == b"x"


@pytest.mark.parametrize("name", ["build", "hostile"])
def test_compression_sniffed(tb, tmp_path, name):
    plain = tb().file("f", b"data" * 1000).bytes()
    for i, packed in enumerate([gzip.compress(plain), gzip.compress(plain[:5000]) + gzip.compress(plain[5000:]),
                                lzma.compress(plain), bz2.compress(plain), plain]):
        d = tmp_path / f"{name}{i}"
        d.mkdir()
        res = _extract(packed, d)
        assert res.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
        assert (d / "f").read_bytes() == b"data" * 1000


def test_tee_gets_uncompressed_bytes(tb, tmp_path):
    plain = tb().file("f", b"abc").bytes()
    out = io.BytesIO()
    _extract(gzip.compress(plain), tmp_path, tee=out)
    assert out.getvalue() == plain


def test_trailing_padding_is_part_of_diff_id(tb, tmp_path):
    plain = tb().file("f", b"abc").bytes() + b"\0" * 10240
    res = _extract(plain, tmp_path)
    assert res.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()


def test_empty_layer(tmp_path):
    res = _extract(b"\0" * 1024, tmp_path)
    assert res.entries == 0 and list(tmp_path.iterdir()) == []


def test_later_entries_replace_earlier(tb, tmp_path):
    data = (tb().file("x", b"1").dir("x/").file("x/in", b"2")      # file -> dir
            .dir("y/").file("y/in", b"3").file("y", b"4")           # dir -> file
            .symlink("z", "/etc").file("z", b"5")                   # symlink -> file (no follow)
            .bytes())
    _extract(data, tmp_path)
    assert (tmp_path / "x/in").read_bytes() == b"2"
    assert (tmp_path / "y").read_bytes() == b"4"
    assert not (tmp_path / "z").is_symlink() and (tmp_path / "z").read_bytes() == b"5"


@pytest.mark.skipif(not ROOT, reason="overlay whiteouts need mknod and trusted.* xattrs (root)")
def test_whiteouts_to_overlay_form(tb, tmp_path):
    data = (tb().dir("d/").file("d/.wh..wh..opq").file(".wh.gone").file("d/.wh.sub")
            .file(".wh..wh.plnk").bytes())
    _extract(data, tmp_path)
    for p in (tmp_path / "gone", tmp_path / "d/sub"):
        st = p.lstat()
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(tmp_path / "d", "trusted.overlay.opaque") == b"y"
    assert not (tmp_path / ".wh..wh.plnk").exists()
    assert not (tmp_path / "d/.wh..wh..opq").exists()


def test_whiteouts_applied_as_deletions(tb, tmp_path):
    (tmp_path / "old").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d/keep_not").write_text("x")
    data = tb().file(".wh.old").file("d/new", b"n").file("d/.wh..wh..opq").bytes()
    _extract(data, tmp_path, whiteouts="apply")
    assert not (tmp_path / "old").exists()
    assert sorted(os.listdir(tmp_path / "d")) == ["new"]


def test_xattrs_from_pax(tb, tmp_path):
    b = tb()
    ti = tarfile.TarInfo("f")
    ti.pax_headers = {"SCHILY.xattr.user.k": "v\udcff", "SCHILY.xattr.trusted.overlay.redirect": "/x"}
    b.tar.addfile(ti, io.BytesIO(b""))
    _extract(b.bytes(), tmp_path)
    try:
        assert os.getxattr(tmp_path / "f", "user.k") == b"v\xff"
    except OSError:
        pytest.skip("user xattrs unsupported on this filesystem")
    names = os.listxattr(tmp_path / "f")
    assert "trusted.overlay.redirect" not in names  # overlay's own attributes are never taken


# -- hostile ---------------------------------------------------------------------------------
HOSTILE = {
    "dotdot": lambda tb: tb().file("../evil", b"x"),
    "dotdot_deep": lambda tb: tb().file("a/../../evil", b"x"),
    "dotdot_dir": lambda tb: tb().dir("../outside/newdir/"),
    "symlink_then_write": lambda tb: tb().symlink("a", "../outside").file("a/evil", b"x"),
    "abs_symlink_then_write": lambda tb: tb().symlink("a", "/tmp").file("a/evil", b"x"),
    "symlink_chain": lambda tb: tb().symlink("a", "b").symlink("b", "../outside").file("a/evil", b"x"),
    "dir_replaced_by_symlink": lambda tb: tb().dir("d/").file("d/ok", b"1").symlink("d", "../outside")
    .file("d/evil", b"x"),
    "symlink_then_dir": lambda tb: tb().symlink("a", "../outside").dir("a/sub/"),
    "symlink_then_hardlink_into": lambda tb: tb().file("f", b"1").symlink("a", "../outside")
    .hardlink("a/evil", "f"),
    "hardlink_out": lambda tb: tb().hardlink("h", "../outside/secret"),
    "hardlink_abs_missing": lambda tb: tb().hardlink("h", "/etc/passwd"),
    "hardlink_through_symlink": lambda tb: tb().symlink("a", "../outside").hardlink("h", "a/secret"),
    "whiteout_dotdot": lambda tb: tb().file(".wh.."),
    "whiteout_through_symlink": lambda tb: tb().symlink("a", "../outside").file("a/.wh.secret"),
    "opaque_through_symlink": lambda tb: tb().symlink("a", "../outside").file("a/.wh..wh..opq"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_refused_nothing_outside(tb, sandbox, snapshot, case):
    target, outside = sandbox
    before = snapshot(outside)
    parent_before = sorted(os.listdir(target.parent))
    with pytest.raises(InvalidParameter):
        _extract(HOSTILE[case](tb).bytes(), target)
    assert snapshot(outside) == before
    assert sorted(os.listdir(target.parent)) == parent_before


def _raw_header(name: str, size: int) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size = size
    return ti.tobuf(format=tarfile.GNU_FORMAT)  # base-256 sizes allowed


@pytest.mark.parametrize("size", [1 << 60, 1 << 39])  # absurd header; more than the disk holds
def test_absurd_size_refused(sandbox, size):
    target, _ = sandbox
    data = _raw_header("big", size) + b"\0" * 1024
    with pytest.raises(InvalidParameter, match="size|space"):
        _extract(data, target)


def test_max_entry_size_option(tb, tmp_path):
    with pytest.raises(InvalidParameter, match="absurd size"):
        _extract(tb().file("f", b"x" * 100).bytes(), tmp_path, max_entry=10)


@pytest.mark.parametrize("blob", [b"not a tar at all" * 100, b"", b"\x1f\x8b\x08\x00garbage",
                                  gzip.compress(b"x" * 5000)[:-20]])
def test_garbage_refused(tmp_path, blob):
    with pytest.raises(InvalidParameter):
        _extract(blob, tmp_path)


def test_truncated_tar_refused(tb, tmp_path):
    data = tb().file("f", b"x" * 5000).bytes()[:1500]
    with pytest.raises(InvalidParameter):
        _extract(data, tmp_path)


def test_overlong_name_refused(tb, tmp_path):
    with pytest.raises(InvalidParameter):
        _extract(tb().file("a/" * 3000 + "f", b"").bytes(), tmp_path)


def test_zstd_when_available(tb, tmp_path):
    zstandard = pytest.importorskip("zstandard")
    plain = tb().file("f", b"z" * 10000).bytes()
    res = _extract(zstandard.ZstdCompressor().compress(plain), tmp_path)
    assert res.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert (tmp_path / "f").read_bytes() == b"z" * 10000
    d = tmp_path / "bad"
    d.mkdir()
    with pytest.raises(InvalidParameter):
        _extract(zstandard.ZstdCompressor().compress(plain)[:-30] + b"\x00" * 30, d)
