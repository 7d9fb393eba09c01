"""Build context: safe unpacking of the client's tar, compression, caps, .dockerignore applied."""

import bz2
import gzip
import io
import lzma
import os
import tarfile

import pytest

from sampan.build.context import BuildContext
from sampan.errors import InvalidParameter


def _tar(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (name, data|None for dir|("sym", target)|("lnk", target)|("chr",)|("fifo",))"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif isinstance(data, tuple):
                kind = data[0]
                ti.type = {"sym": tarfile.SYMTYPE, "lnk": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE,
                           "fifo": tarfile.FIFOTYPE}[kind]
                if kind in ("sym", "lnk"):
                    ti.linkname = data[1]
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def work(tmp_path):
    w = tmp_path / "tmp"
    w.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep")
    return w, outside


def _files(root):
    out = {}
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            p = os.path.join(dp, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("->", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = None
            else:
                out[rel] = open(p, "rb").read()
    return out


SAMPLE = [("Dockerfile", b"FROM scratch\n"), ("app", None), ("app/main.py", b"print(1)\n"),
          ("app/link", ("sym", "/etc/passwd")), ("README.md", b"# hi\n")]


@pytest.mark.parametrize("compress", [None, gzip.compress, bz2.compress, lzma.compress, "zstd"])
def test_unpacks_plain_and_compressed(work, compress):
    data = _tar(SAMPLE)
    if compress == "zstd":
        zstandard = pytest.importorskip("zstandard")
        data = zstandard.ZstdCompressor().compress(data)
    elif compress:
        data = compress(data)
    ctx = BuildContext.from_tar(io.BytesIO(data), work[0])
    try:
        assert _files(ctx.root) == {"Dockerfile": b"FROM scratch\n", "app": None,
                                    "app/main.py": b"print(1)\n", "app/link": ("->", "/etc/passwd"),
                                    "README.md": b"# hi\n"}
        assert ctx.read_dockerfile() == ("FROM scratch\n", "Dockerfile")
        assert ctx.root.is_relative_to(work[0])
    finally:
        ctx.cleanup()
    assert not ctx.private.exists() and os.listdir(work[0]) == []


def test_from_path_and_from_dir(work, tmp_path):
    p = tmp_path / "ctx.tar"
    p.write_bytes(_tar(SAMPLE))
    with BuildContext.from_tar(p, work[0]) as ctx:
        assert (ctx.root / "app/main.py").read_bytes() == b"print(1)\n"
    assert p.exists()  # the caller's file is left alone
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "Dockerfile").write_text("FROM busybox\n")
    (src / "sub/f").write_text("x")
    with BuildContext.from_dir(src, work[0]) as ctx:
        assert _files(ctx.root) == {"Dockerfile": b"FROM busybox\n", "sub": None, "sub/f": b"x"}


@pytest.mark.parametrize("entries,msg", [
    ([("../evil", b"x")], "escapes"),
    ([("a/../../evil", b"x")], "escapes"),
    ([("dev0", ("chr",))], "device"),
    ([("pipe", ("fifo",))], "fifo"),
    ([("h", ("lnk", "../outside/secret"))], "escapes"),
    ([("x/.wh.y", b"")], "reserved"),
])
def test_hostile_tars_refused(work, entries, msg):
    w, outside = work
    with pytest.raises(InvalidParameter, match=msg):
        BuildContext.from_tar(io.BytesIO(_tar(entries)), w)
    assert os.listdir(w) == [] and _files(outside) == {"secret": b"keep"}


def test_symlink_then_write_through_refused(work):
    w, outside = work
    data = _tar([("d", ("sym", str(outside))), ("d/secret", b"pwned")])
    with pytest.raises(InvalidParameter):
        BuildContext.from_tar(io.BytesIO(data), w)
    assert (outside / "secret").read_text() == "keep" and os.listdir(w) == []


def test_absolute_names_are_confined(work):
    w, outside = work
    with BuildContext.from_tar(io.BytesIO(_tar([(str(outside / "secret"), b"pwned")])), w) as ctx:
        assert (ctx.root / str(outside / "secret").lstrip("/")).read_bytes() == b"pwned"
    assert (outside / "secret").read_text() == "keep"


def test_max_bytes_cap(work):
    w, _ = work
    data = _tar([("big", b"x" * 300_000), ("Dockerfile", b"FROM scratch\n")])
    with pytest.raises(InvalidParameter, match="too large"):
        BuildContext.from_tar(io.BytesIO(gzip.compress(data)), w, max_bytes=100_000)
    assert os.listdir(w) == []
    with BuildContext.from_tar(io.BytesIO(data), w, max_bytes=1_000_000) as ctx:
        assert ctx.size == 300_013


def test_header_lying_about_size_is_refused(work):
    w, _ = work
    data = bytearray(_tar([("f", b"abc")]))
    # claim a 1 GiB member in the first header (octal size field), fix the checksum
    hdr = data[512:1024] if data[156:157] == b"x" else data[0:512]
    off = 512 if data[156:157] == b"x" else 0
    hdr[124:136] = b"%011o\0" % (1 << 30)
    hdr[148:156] = b" " * 8
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    data[off:off + 512] = hdr
    with pytest.raises(InvalidParameter, match="too large"):
        BuildContext.from_tar(io.BytesIO(bytes(data)), w, max_bytes=1 << 20)
    with pytest.raises(InvalidParameter):  # no cap: the data simply is not there
        BuildContext.from_tar(io.BytesIO(bytes(data)), w)
    assert os.listdir(w) == []


def test_garbage_and_empty(work):
    w, _ = work
    with pytest.raises(InvalidParameter, match="not a tar"):
        BuildContext.from_tar(io.BytesIO(b"\0\1\2" * 400), w)
    with BuildContext.from_tar(io.BytesIO(b""), w) as ctx:
        assert os.listdir(ctx.root) == []
        with pytest.raises(InvalidParameter, match="Cannot locate specified Dockerfile: Dockerfile"):
            ctx.read_dockerfile()
    # a text body is the Dockerfile itself
    with BuildContext.from_tar(io.BytesIO(b"FROM busybox\nRUN true\n"), w) as ctx:
        assert ctx.read_dockerfile() == ("FROM busybox\nRUN true\n", "Dockerfile")
    assert os.listdir(w) == []


def test_dockerignore_applied_daemon_side(work):
    w, _ = work
    ignore = b"# build junk\n*.log\nnode_modules\nsecrets/\n!secrets/public.pem\nDockerfile\n.dockerignore\n"
    data = _tar([("Dockerfile", b"FROM scratch\n"), (".dockerignore", ignore),
                 ("a.log", b"l"), ("keep.txt", b"k"), ("sub", None), ("sub/b.log", b"b"),
                 ("node_modules", None), ("node_modules/x", None), ("node_modules/x/i.js", b"j"),
                 ("secrets", None), ("secrets/key", b"PRIVATE"), ("secrets/public.pem", b"PUB")])
    with BuildContext.from_tar(io.BytesIO(data), w) as ctx:
        assert _files(ctx.root) == {"keep.txt": b"k", "sub": None, "sub/b.log": b"b",
                                    "secrets": None, "secrets/public.pem": b"PUB"}
        # the Dockerfile was ignored, yet is still readable for the build itself
        assert ctx.read_dockerfile() == ("FROM scratch\n", "Dockerfile")
        assert ctx.ignore_file == ".dockerignore"


def test_ignored_dir_without_reincluded_children_disappears(work):
    w, _ = work
    data = _tar([(".dockerignore", b"docs\n!docs/keep.txt\n"), ("docs", None),
                 ("docs/a", b"a"), ("docs/sub", None), ("docs/sub/b", b"b")])
    with BuildContext.from_tar(io.BytesIO(data), w) as ctx:
        assert _files(ctx.root) == {".dockerignore": b"docs\n!docs/keep.txt\n"}


def test_dockerfile_specific_ignore_file(work):
    w, _ = work
    data = _tar([("build", None), ("build/app.Dockerfile", b"FROM a\n"),
                 ("build/app.Dockerfile.dockerignore", b"*.txt\n"),
                 (".dockerignore", b"*.md\n"), ("a.txt", b"t"), ("a.md", b"m")])
    with BuildContext.from_tar(io.BytesIO(data), w, dockerfile="build/app.Dockerfile") as ctx:
        assert not (ctx.root / "a.txt").exists() and (ctx.root / "a.md").exists()
        assert ctx.read_dockerfile("build/app.Dockerfile") == ("FROM a\n", "build/app.Dockerfile")
    with BuildContext.from_tar(io.BytesIO(data), w) as ctx:
        assert (ctx.root / "a.txt").exists() and not (ctx.root / "a.md").exists()


def test_read_dockerfile_rules(work):
    w, outside = work
    data = _tar([("dockerfile", b"FROM lower\n"), ("empty", b"  \n"),
                 ("escape", ("sym", str(outside / "secret"))), ("rel", ("sym", "../../../../etc/passwd"))])
    with BuildContext.from_tar(io.BytesIO(data), w) as ctx:
        assert ctx.read_dockerfile() == ("FROM lower\n", "dockerfile")
        with pytest.raises(InvalidParameter, match="cannot be empty"):
            ctx.read_dockerfile("empty")
        # symlinks resolve inside the context only: these point at nothing there
        for name in ("escape", "rel", "../outside/secret", "/etc/passwd"):
            with pytest.raises(InvalidParameter, match="Cannot locate"):
                ctx.read_dockerfile(name)


def test_dockerignore_speed_on_a_2000_file_context(work):
    import time
    w, _ = work
    entries = [(".dockerignore", b"**/*.pyc\n*.log\nbuild/**\n!build/keep\n.git\n")]
    for i in range(2000):
        entries.append((f"d{i % 40}/f{i}.{('py', 'pyc')[i % 2]}", b"x" * 10))
    with BuildContext.from_tar(io.BytesIO(_tar(entries)), w) as ctx:
        t = time.perf_counter()
        ctx._apply_ignore("Dockerfile")  # idempotent: measures the ignore pass alone
        elapsed = time.perf_counter() - t
        assert not any(p.suffix == ".pyc" for p in ctx.root.rglob("*"))
        assert sum(1 for _ in ctx.root.rglob("*.py")) == 1000
    assert elapsed < 2.0  # ~20 ms here; loose bound for a loaded machine


# -- the header guard agrees with the extractor on where headers are --------------------------
def _hdr(name, type_=tarfile.REGTYPE, size=0, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.linkname, ti.mode = type_, size, linkname, 0o644
    return ti.tobuf(format=tarfile.USTAR_FORMAT)


def _pax(records: dict, type_=tarfile.XHDTYPE):
    body = b""
    for k, v in records.items():
        rec = f" {k}={v}\n".encode()
        n = len(rec) + 1
        while len(str(n)) + len(rec) != n:
            n = len(str(n)) + len(rec)
        body += str(n).encode() + rec
    return _hdr("././@PaxHeader", type_, len(body)) + body + b"\0" * (-len(body) % 512)


def _end():
    return b"\0" * 1024


def test_pax_size_override_cannot_hide_a_device(work):
    w, _ = work
    device = _hdr("dev/sda", tarfile.BLKTYPE)
    # the ustar header claims 512 bytes of data (the device header); pax says 0: tarfile,
    # hence the extractor, reads that "data" as the next header
    data = _pax({"size": "0"}) + _hdr("innocent", tarfile.REGTYPE, 512) + device + _end()
    with pytest.raises(InvalidParameter, match="is a device"):
        BuildContext.from_tar(io.BytesIO(data), w)
    assert os.listdir(w) == []


def test_v7_directory_with_data_cannot_hide_a_device(work):
    w, _ = work
    data = _hdr("olddir/", tarfile.AREGTYPE, 512) + _hdr("dev/x", tarfile.CHRTYPE) + _end()
    with pytest.raises(InvalidParameter, match="is a device"):
        BuildContext.from_tar(io.BytesIO(data), w)


def test_long_names_and_stacked_headers(work):
    w, _ = work
    long = "d/" + "x" * 200
    gnu = _hdr("././@LongLink", tarfile.GNUTYPE_LONGNAME, len(long) + 1)
    gnu += (long.encode() + b"\0").ljust(512, b"\0")
    with BuildContext.from_tar(io.BytesIO(gnu + _hdr("short", size=1) + b"z".ljust(512, b"\0") + _end()), w) as ctx:
        assert (ctx.root / long).read_bytes() == b"z"
    evil = ("../" * 5) + "escape"
    gnu_evil = _hdr("././@LongLink", tarfile.GNUTYPE_LONGNAME, len(evil) + 1)
    gnu_evil += (evil.encode() + b"\0").ljust(512, b"\0")
    with pytest.raises(InvalidParameter, match="escapes"):
        BuildContext.from_tar(io.BytesIO(gnu_evil + _hdr("ok") + _end()), w)
    with pytest.raises(InvalidParameter, match="ambiguous"):
        BuildContext.from_tar(io.BytesIO(_pax({"path": "a"}) + _pax({"path": "b"}) + _hdr("c") + _end()), w)
    with pytest.raises(InvalidParameter, match="global pax"):
        BuildContext.from_tar(io.BytesIO(_pax({"path": "a"}, tarfile.XGLTYPE) + _hdr("c") + _end()), w)
    # git archive's global comment is fine
    git = _pax({"comment": "0123abcd"}, tarfile.XGLTYPE) + _hdr("f", size=2) + b"hi".ljust(512, b"\0")
    with BuildContext.from_tar(io.BytesIO(git + _end()), w) as ctx:
        assert (ctx.root / "f").read_bytes() == b"hi"
    assert os.listdir(w) == []


def test_pax_path_is_judged(work):
    w, _ = work
    for bad, msg in (({"path": "../../x"}, "escapes"), ({"path": "a/.wh.b"}, "reserved")):
        with pytest.raises(InvalidParameter, match=msg):
            BuildContext.from_tar(io.BytesIO(_pax(bad) + _hdr("fine") + _end()), w)
    assert os.listdir(w) == []


def test_streamed_digests_feed_the_copy_key_exactly(work):
    from sampan.build import copy as K
    w, _ = work
    # "d/f" is streamed, then "d" becomes a link to "e", whose "f" has other bytes of the same
    # size: the streamed digest of d/f must not be taken for e/f
    data = _tar([("d", None), ("d/f", b"AAAA"), ("e", None), ("e/f", b"BBBB"),
                 ("d", ("sym", "e")), ("g", b"GGGG"), ("g", b"HH")])
    with BuildContext.from_tar(io.BytesIO(data), w) as ctx:
        memo = K.plan_copy(ctx.root, ["."], "/x/", workdir="/", add=False).cache_key()
        K._hash_cache.clear()
        fresh = K.plan_copy(ctx.root, ["."], "/x/", workdir="/", add=False).cache_key()
        assert memo == fresh
        assert (ctx.root / "g").read_bytes() == b"HH"


def test_too_many_entries(work, monkeypatch):
    from sampan.build import context as C
    w, _ = work
    monkeypatch.setattr(C, "MAX_MEMBERS", 50)
    with pytest.raises(InvalidParameter, match="too many entries"):
        BuildContext.from_tar(io.BytesIO(_tar([(f"f{i}", b"") for i in range(51)])), w)
    assert os.listdir(w) == []


def test_over_the_free_space_is_refused(work, monkeypatch):
    w, _ = work
    monkeypatch.setattr(BuildContext, "_space_left", lambda self: 1000)
    with pytest.raises(InvalidParameter, match="free space"):
        BuildContext.from_tar(io.BytesIO(gzip.compress(_tar([("big", b"x" * 5000)]))), w)
    assert os.listdir(w) == []


def test_replayed_head_never_exceeds_the_asked_count():
    # extract_layer sniffs 6 bytes; a reader handing back the whole 512-byte block made it loop
    # with a negative count and slurp the entire stream into memory (quadratic copying)
    from sampan.build.context import _Replay
    r = _Replay(b"h" * 512, io.BytesIO(b"rest" * 1000))
    assert r.read(6) == b"hhhhhh" and len(r.read(600)) == 506 and r.read(4) == b"rest"


def test_an_empty_tar_is_an_empty_context(work):
    w, _ = work
    for data in (bytes(1024), bytes(10240), _tar([])):
        with BuildContext.from_tar(io.BytesIO(data), w) as ctx:
            assert os.listdir(ctx.root) == []
    assert os.listdir(w) == []
