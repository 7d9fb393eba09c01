"""The fast paths of layer extraction: creation tried before clearing, the read-ahead thread,
member data read straight off the stream (large, sparse, many small files)."""

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
import threading

import pytest

from sampan.archive import extract_layer
from sampan.errors import InvalidParameter


def _extract(data: bytes, dest, **kw):
    return extract_layer(io.BytesIO(data), dest, **kw)


def test_replacing_a_dir_then_creating_beside_it(tb, tmp_path):
    # the removal of d/ resets the dir-fd cache; the next entries must not use a stale parent fd
    data = (tb().dir("p/").dir("p/d/").file("p/d/f", b"1").file("p/d", b"2").file("p/e", b"3")
            .symlink("p/s", "d").dir("p/s/").hardlink("p/h", "p/e").hardlink("p/h", "p/d")
            .bytes())
    _extract(data, tmp_path)
    assert (tmp_path / "p/d").read_bytes() == b"2"
    assert (tmp_path / "p/e").read_bytes() == b"3"
    assert (tmp_path / "p/s").is_dir() and not (tmp_path / "p/s").is_symlink()
    assert os.stat(tmp_path / "p/h").st_ino == os.stat(tmp_path / "p/d").st_ino


def test_existing_dir_kept_and_its_metadata_taken(tb, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d/old").write_bytes(b"o")
    _extract(tb().dir("d/", mode=0o711).file("d/new", b"n").bytes(), tmp_path)
    assert (tmp_path / "d/old").read_bytes() == b"o"
    assert (tmp_path / "d/new").read_bytes() == b"n"
    assert os.stat(tmp_path / "d").st_mode & 0o7777 == 0o711


def test_many_files_big_and_small_and_diff_id(tb, tmp_path):
    b = tb()
    big = os.urandom(3 * 1024 * 1024 + 17)  # spans several read-ahead chunks, unaligned
    for i in range(300):
        b.file(f"d{i % 7}/f{i}", bytes([i % 256]) * (i * 37))
        if i == 150:
            b.file("big", big)
    data = b.bytes()
    res = _extract(gzip.compress(data), tmp_path)
    assert res.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert res.entries == 301
    assert (tmp_path / "big").read_bytes() == big
    for i in range(300):
        assert (tmp_path / f"d{i % 7}/f{i}").read_bytes() == bytes([i % 256]) * (i * 37)


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_files(tmp_path, fmt):
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "s", "wb") as f:
        f.truncate(8 << 20)
        f.seek(3 << 20)
        f.write(b"middle")
        f.seek((8 << 20) - 4)
        f.write(b"tail")
    tar = tmp_path / "s.tar"
    subprocess.run(["tar", "--sparse", f"--format={fmt}", "-C", src, "-cf", tar, "s"], check=True)
    out = tmp_path / "out"
    out.mkdir()
    extract_layer(open(tar, "rb"), out)
    assert (out / "s").read_bytes() == (src / "s").read_bytes()


def test_error_midway_stops_the_read_ahead_thread(tb, tmp_path):
    before = threading.active_count()
    data = tb().file("a", b"x" * 3_000_000).symlink("l", "../outside").file("l/evil", b"x") \
        .file("z", b"y" * 5_000_000).bytes()
    with pytest.raises(InvalidParameter):
        _extract(data, tmp_path)
    assert threading.active_count() == before
    assert not (tmp_path.parent / "outside").exists()


def test_corrupt_compressed_tail_refused(tb, tmp_path):
    data = gzip.compress(tb().file("a", os.urandom(2_000_000)).bytes())
    bad = data[:len(data) // 2] + bytes(b ^ 0x55 for b in data[len(data) // 2:])
    before = threading.active_count()
    with pytest.raises(InvalidParameter):
        _extract(bad, tmp_path)
    assert threading.active_count() == before


def test_truncated_inside_big_member_refused(tb, tmp_path):
    data = tb().file("a", b"q" * 4_000_000).bytes()[:2_500_000]
    with pytest.raises(InvalidParameter, match="unexpected end"):
        _extract(data, tmp_path)


def _headers(data: bytes, fast: bool):
    from sampan.archive import extract as E
    h = E._Headers(E._Stream(io.BytesIO(data)))
    if not fast:
        h._plain = lambda: None  # tarfile's own parser for every block
    attrs = ("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname",
             "uname", "gname", "devmajor", "devminor", "offset", "offset_data", "pax_headers",
             "sparse")
    out = []
    try:
        for ti in h:
            out.append(tuple(getattr(ti, a) for a in attrs) + (h.offset,))
    except Exception as e:  # noqa: BLE001 - the comparison includes the error
        out.append(("error", type(e).__name__, str(e)))
    return out


def test_fast_header_path_matches_tarfile_on_mutated_headers():
    import random
    rng = random.Random(7)
    kinds = [tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
             tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE]
    for _ in range(3000):
        buf = io.BytesIO()
        fmt = rng.choice([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
            for _ in range(3):
                ti = tarfile.TarInfo(rng.choice(["a", "d/", "x/y/z", "p" * 120 + "/q", "é/ü"]))
                ti.type = rng.choice(kinds)
                ti.size = rng.choice([0, 5, 600]) if ti.isreg() else 0
                ti.linkname, ti.mode, ti.mtime = "t", 0o755, 1_600_000_000
                t.addfile(ti, io.BytesIO(b"z" * ti.size))
        d = bytearray(buf.getvalue())
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(0, 1536)
            d[pos] = rng.choice([0, 0x20, 0x2F, 0x30, 0x37, 0x38, 0x80, 0xFF, rng.randrange(256)])
        if rng.random() < 0.7:  # keep the first checksum right so the fields get parsed
            blk = d[:512]
            blk[148:156] = b" " * 8
            d[148:156] = b"%06o\0 " % sum(blk)
        assert _headers(bytes(d), True) == _headers(bytes(d), False)


def test_fast_header_path_matches_tarfile_on_a_real_tree(tmp_path):
    tar = tmp_path / "t.tar"
    subprocess.run(["tar", "-C", "/usr/lib/python3", "-cf", tar, "."], check=True)
    data = tar.read_bytes()
    fast = _headers(data, True)
    assert len(fast) > 10 and fast == _headers(data, False)
