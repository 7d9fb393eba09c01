"""COPY planning, cache keys and layer tars, on real files (Docker's classic-builder rules)."""

import os
import stat
import tarfile

import pytest

from sampan.build.copy import plan_copy, resolve_chown, write_copy_layer, write_heredoc_layer
from sampan.errors import InvalidParameter

T0 = 1_600_000_000


def _mk(root, spec):
    """spec: {path: bytes | None (dir) | ("->", target) | (bytes, mode)}"""
    for rel, v in spec.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if v is None:
            p.mkdir(exist_ok=True)
        elif isinstance(v, tuple) and v[0] == "->":
            os.symlink(v[1], p)
        else:
            data, mode = v if isinstance(v, tuple) else (v, 0o644)
            p.write_bytes(data)
            os.chmod(p, mode)
            os.utime(p, (T0, T0))
    return root


@pytest.fixture
def ctx(tmp_path):
    return _mk(tmp_path / "ctx", {
        "Dockerfile": b"FROM scratch\n", "a.txt": b"A", "b.txt": b"B", "run.sh": (b"#!/bin/sh\n", 0o755),
        "src": None, "src/main.c": b"int main;", "src/lib": None, "src/lib/x.h": b"#x",
        "src/link": ("->", "/etc/passwd"), "src/rel": ("->", "main.c"),
        "escape": ("->", "../../../../etc/passwd"), "abs": ("->", "/etc/hostname"),
        "tolib": ("->", "src/lib"),
    })


def _layer(tmp_path, plan, **kw):
    out = tmp_path / f"layer-{len(list(tmp_path.glob('layer-*')))}.tar"
    res = write_copy_layer(plan, out, **kw)
    assert res.tar_path == out and res.cache_key == plan.cache_key()
    return _members(out)


def _members(path):
    out = {}
    with tarfile.open(path) as t:
        for m in t:
            data = t.extractfile(m).read() if m.isreg() else (m.linkname if m.issym() else None)
            out[m.name.rstrip("/")] = (m.type, m.mode, m.uid, m.gid, int(m.mtime), data)
    return out


def _plan(ctx, sources, dest, workdir="/", add=False, **kw):
    return plan_copy(ctx, sources, dest, workdir=workdir, add=add, **kw)


def test_single_file_to_path_and_dir(ctx, tmp_path):
    m = _layer(tmp_path, _plan(ctx, ["run.sh"], "/usr/local/bin/tool"))
    assert m["usr/local/bin/tool"] == (tarfile.REGTYPE, 0o755, 0, 0, T0, b"#!/bin/sh\n")
    for d in ("usr", "usr/local", "usr/local/bin"):
        assert m[d][:4] == (tarfile.DIRTYPE, 0o755, 0, 0)
    m = _layer(tmp_path, _plan(ctx, ["a.txt"], "/opt/"))
    assert set(m) == {"opt", "opt/a.txt"} and m["opt/a.txt"][5] == b"A"


def test_relative_dest_uses_workdir(ctx, tmp_path):
    m = _layer(tmp_path, _plan(ctx, ["a.txt"], "data/x", workdir="/app"))
    assert m["app/data/x"][5] == b"A"
    m = _layer(tmp_path, _plan(ctx, ["a.txt"], ".", workdir="/app"))
    assert m["app/a.txt"][5] == b"A"
    m = _layer(tmp_path, _plan(ctx, ["a.txt", "b.txt"], "./", workdir="/w"))
    assert m["w/a.txt"][5] == b"A" and m["w/b.txt"][5] == b"B"


def test_directory_contents_are_copied_not_the_directory(ctx, tmp_path):
    m = _layer(tmp_path, _plan(ctx, ["src"], "/app"))
    assert set(m) == {"app", "app/main.c", "app/lib", "app/lib/x.h", "app/link", "app/rel"}
    assert m["app/link"] == (tarfile.SYMTYPE, 0o777, 0, 0, m["app/link"][4], "/etc/passwd")
    assert m["app/rel"][5] == "main.c"  # links are copied as links, never followed


def test_multiple_sources_need_a_slash(ctx):
    with pytest.raises(InvalidParameter, match="When using COPY with more than one source file, "
                                              "the destination must be a directory and end with a /"):
        _plan(ctx, ["a.txt", "b.txt"], "/dst")
    with pytest.raises(InvalidParameter, match="When using COPY with more than one"):
        _plan(ctx, ["*.txt"], "/dst")  # counted after wildcard expansion, as Docker does


def test_wildcards(ctx, tmp_path):
    m = _layer(tmp_path, _plan(ctx, ["*.txt"], "/d/"))
    assert set(m) == {"d", "d/a.txt", "d/b.txt"}
    m = _layer(tmp_path, _plan(ctx, ["src/*.c", "[r]un.s?"], "/d/"))
    assert set(m) == {"d", "d/main.c", "d/run.sh"}
    with pytest.raises(InvalidParameter, match="^COPY failed: no source files were specified$"):
        _plan(ctx, ["*.nothing"], "/d/")
    with pytest.raises(InvalidParameter, match="syntax error in pattern"):
        _plan(ctx, ["a[", "x"], "/d/")


def test_missing_source_message(ctx):
    with pytest.raises(InvalidParameter) as e:
        _plan(ctx, ["nope.txt"], "/")
    assert str(e.value) == ("COPY failed: file not found in build context or excluded by "
                            ".dockerignore: stat nope.txt: file does not exist")
    with pytest.raises(InvalidParameter, match="^ADD failed: file not found"):
        _plan(ctx, ["nope"], "/", add=True)


@pytest.mark.parametrize("src", ["../x", "../../etc/passwd", "src/../../x", "/../etc"])
def test_dotdot_cannot_escape(ctx, src):
    with pytest.raises(InvalidParameter, match="forbidden path outside the build context"):
        _plan(ctx, [src], "/")


def test_leading_slash_and_dot_are_context_relative(ctx, tmp_path):
    m = _layer(tmp_path, _plan(ctx, ["/a.txt", "./b.txt", "src/../a.txt"], "/x/"))
    assert m["x/a.txt"][5] == b"A" and m["x/b.txt"][5] == b"B"


def test_symlinked_sources_resolve_inside_the_context(ctx, tmp_path):
    # a link named as the source is followed as in a chroot: outside targets do not exist
    for name in ("escape", "abs", "src/link"):
        with pytest.raises(InvalidParameter, match="file not found in build context"):
            _plan(ctx, [name], "/")
    _mk(ctx, {"etc/hostname": b"inside"})
    m = _layer(tmp_path, _plan(ctx, ["abs"], "/h"))
    assert m["h"][5] == b"inside"
    m = _layer(tmp_path, _plan(ctx, ["tolib"], "/inc/"))  # a link to a dir: its contents
    assert set(m) == {"inc", "inc/x.h"}


def test_chown_chmod_and_parents(ctx, tmp_path):
    rootfs = _mk(tmp_path / "rootfs", {"app": None, "etc": None})
    os.chmod(rootfs / "app", 0o700)
    os.chown(rootfs / "app", 1000, 1000)
    os.utime(rootfs / "app", (T0 - 5, T0 - 5))
    plan = _plan(ctx, ["src"], "/app/new/")
    m = _layer(tmp_path, plan, chown=(1234, 99), chmod=0o640, dest_rootfs=rootfs)
    assert m["app"][:4] == (tarfile.DIRTYPE, 0o700, 1000, 1000)  # existing: mode and owner kept
    assert m["app"][4] > T0  # ... and, like a modified dir in dockerd's layer, a new mtime
    assert m["app/new"][:4] == (tarfile.DIRTYPE, 0o640, 1234, 99)  # made from the source dir
    assert m["app/new/main.c"][1:4] == (0o640, 1234, 99)
    assert m["app/new/lib/x.h"][1:4] == (0o640, 1234, 99)


def test_existing_dir_in_image_without_slash(ctx, tmp_path):
    rootfs = _mk(tmp_path / "rootfs", {"opt": None})
    m = _layer(tmp_path, _plan(ctx, ["a.txt"], "/opt"), dest_rootfs=rootfs)
    assert m["opt/a.txt"][5] == b"A"
    m = _layer(tmp_path, _plan(ctx, ["a.txt"], "/opt"))  # no rootfs: /opt is a file
    assert m["opt"][5] == b"A"


def test_dest_through_image_symlinks_stays_in_rootfs(ctx, tmp_path):
    rootfs = _mk(tmp_path / "rootfs", {"usr/bin": None, "bin": ("->", "usr/bin"),
                                       "evil": ("->", "/../../../tmp")})
    m = _layer(tmp_path, _plan(ctx, ["run.sh"], "/bin/"), dest_rootfs=rootfs)
    assert "usr/bin/run.sh" in m and "bin" not in m and "bin/run.sh" not in m
    m = _layer(tmp_path, _plan(ctx, ["a.txt"], "/evil/"), dest_rootfs=rootfs)
    assert set(m) == {"tmp", "tmp/a.txt"}  # the link's target, inside the rootfs


def test_copy_from_rootfs_follows_links_inside_it(tmp_path):
    rootfs = _mk(tmp_path / "img", {"usr/lib/libz.so": b"ZLIB", "lib": ("->", "/usr/lib"),
                                    "etc/shadow": b"image-shadow",
                                    "up": ("->", "../../../../../../etc/shadow")})
    m = _layer(tmp_path, _plan(rootfs, ["/lib/libz.so"], "/out/", follow_from_image=True))
    assert m["out/libz.so"][5] == b"ZLIB"
    m = _layer(tmp_path, _plan(rootfs, ["up"], "/s", follow_from_image=True))
    assert m["s"][5] == b"image-shadow"  # never the host's /etc/shadow
    with pytest.raises(InvalidParameter, match="^COPY failed: stat nothing: file does not exist$"):
        _plan(rootfs, ["nothing"], "/", follow_from_image=True)


def test_cache_key(ctx, tmp_path):
    k = _plan(ctx, ["src", "a.txt"], "/d/").cache_key()
    assert k.startswith("sha256:") and k == _plan(ctx, ["src", "a.txt"], "/d/").cache_key()
    (ctx / "b.txt").write_bytes(b"unrelated change")
    os.utime(ctx / "src/main.c", (T0 + 100, T0 + 100))  # touch: Docker ignores mtimes too
    assert _plan(ctx, ["src", "a.txt"], "/d/").cache_key() == k
    (ctx / "src/lib/x.h").write_bytes(b"#y")  # one byte
    k2 = _plan(ctx, ["src", "a.txt"], "/d/").cache_key()
    assert k2 != k
    os.chmod(ctx / "src/main.c", 0o600)  # a mode
    k3 = _plan(ctx, ["src", "a.txt"], "/d/").cache_key()
    assert k3 != k2
    os.unlink(ctx / "src/rel")
    os.symlink("lib", ctx / "src/rel")  # a link target
    k4 = _plan(ctx, ["src", "a.txt"], "/d/").cache_key()
    assert k4 != k3
    assert _plan(ctx, ["src", "a.txt"], "/e/").cache_key() != k4  # the destination
    assert _plan(ctx, ["src", "a.txt"], "/d/", chown=(1, 1)).cache_key() != k4
    assert _plan(ctx, ["src", "a.txt"], "/d/", add=True).cache_key() != k4


def test_cache_key_of_a_big_context_is_memoised(tmp_path, monkeypatch):
    import hashlib
    import time
    root = tmp_path / "big"
    for i in range(2000):
        p = root / f"d{i % 50}" / f"f{i}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(25_000))
    t = time.perf_counter()
    key = plan_copy(root, ["."], "/app/", workdir="/", add=False).cache_key()
    assert time.perf_counter() - t < 30  # ~0.1 s here; only absurd slowness fails
    reads = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda f, d: reads.append(1) or real(f, d))
    assert plan_copy(root, ["."], "/app/", workdir="/", add=False).cache_key() == key
    assert reads == []  # every digest came from the memo: no file read twice in a build
    (root / "d3/f3").write_bytes(b"changed")
    assert plan_copy(root, ["."], "/app/", workdir="/", add=False).cache_key() != key
    assert len(reads) == 1


def test_url_refused_for_copy(ctx):
    with pytest.raises(InvalidParameter, match="source can't be a URL for COPY"):
        _plan(ctx, ["http://127.0.0.1:1/x"], "/")


def test_heredoc_layer(tmp_path):
    out = tmp_path / "h.tar"
    res = write_heredoc_layer("echo hi\n", "/usr/bin/hello", "/", None, 0o755, out)
    m = _members(out)
    assert m["usr/bin/hello"][:4] == (tarfile.REGTYPE, 0o755, 0, 0) and m["usr/bin/hello"][5] == b"echo hi\n"
    res2 = write_heredoc_layer([("one", "1\n"), ("two", "2\n")], "conf/", "/etc", (5, 6), None,
                               tmp_path / "h2.tar")
    m = _members(res2.tar_path)
    assert m["etc/conf/one"][1:4] == (0o644, 5, 6) and m["etc/conf/two"][5] == b"2\n"
    assert res.cache_key != res2.cache_key
    assert write_heredoc_layer("echo hi\n", "/usr/bin/hello", "/", None, 0o755,
                               tmp_path / "h3.tar").cache_key == res.cache_key


def test_resolve_chown(tmp_path):
    rootfs = _mk(tmp_path / "r", {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnginx:x:101:102::/:/sbin/nologin\napp:x:1000:1000::/app:/bin/sh\n",
        "etc/group": b"root:x:0:\nnginx:x:102:\nstaff:x:50:app\napp:x:1000:\n"})
    assert resolve_chown("nginx", rootfs) == (101, 102)
    assert resolve_chown("app:staff", rootfs) == (1000, 50)
    assert resolve_chown("1:2", rootfs) == (1, 2) and resolve_chown("7", None) == (7, 7)
    assert resolve_chown("app:0", rootfs) == (1000, 0)
    with pytest.raises(InvalidParameter, match="^unable to convert uid/gid chown string to host mapping: "
                       "can.t find uid for user bob: no such user: bob$"):
        resolve_chown("bob", rootfs)
    with pytest.raises(InvalidParameter, match="can't find gid for group nope"):
        resolve_chown("app:nope", rootfs)
    with pytest.raises(InvalidParameter, match="invalid chown string format"):
        resolve_chown("a:b:c", rootfs)
    # /etc/passwd as a link pointing out of the rootfs is read inside it
    r2 = _mk(tmp_path / "r2", {"etc": None, "etc/passwd": ("->", "../../../../../etc/shadow")})
    with pytest.raises(InvalidParameter, match="no such user: root"):
        resolve_chown("root", r2)
    r3 = _mk(tmp_path / "r3", {"etc": None, "etc/passwd": ("->", "/etc/passwd")})  # a loop
    with pytest.raises(InvalidParameter, match="symbolic links"):
        resolve_chown("root", r3)


def test_layer_extracts_cleanly(ctx, tmp_path):
    from sampan.archive import extract_layer
    out = tmp_path / "l.tar"
    write_copy_layer(_plan(ctx, ["src", "run.sh"], "/app/"), out)
    dest = tmp_path / "x"
    dest.mkdir()
    with open(out, "rb") as f:
        extract_layer(f, dest)
    assert (dest / "app/main.c").read_bytes() == b"int main;"
    assert os.readlink(dest / "app/link") == "/etc/passwd"
    assert stat.S_IMODE((dest / "app/run.sh").stat().st_mode) == 0o755
    assert (dest / "app/run.sh").stat().st_mtime == T0


def test_hard_links_and_xattrs_survive(tmp_path):
    root = _mk(tmp_path / "c", {"d/a": b"same", "d/cap": b"\x7fELF"})
    os.link(root / "d/a", root / "d/b")
    try:
        os.setxattr(root / "d/cap", "user.note", b"kept")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    k1 = _plan(root, ["d"], "/x/").cache_key()
    out = tmp_path / "l.tar"
    write_copy_layer(_plan(root, ["d"], "/x/"), out)
    with tarfile.open(out) as t:
        ms = {m.name: m for m in t}
    assert ms["x/a"].isreg() and ms["x/b"].islnk() and ms["x/b"].linkname == "x/a"
    assert ms["x/cap"].pax_headers.get("SCHILY.xattr.user.note") == "kept"
    os.setxattr(root / "d/cap", "user.note", b"changed")
    assert _plan(root, ["d"], "/x/").cache_key() != k1
    from sampan.archive import extract_layer
    dest = tmp_path / "x"
    dest.mkdir()
    with open(out, "rb") as f:
        extract_layer(f, dest)
    assert os.getxattr(dest / "x/cap", "user.note") == b"kept"
    assert os.path.samefile(dest / "x/a", dest / "x/b")


def test_parents_and_exclude(ctx, tmp_path):
    _mk(ctx, {"x/a/one.txt": b"1", "x/a/skip.md": b"m", "y/two.txt": b"2"})
    m = _layer(tmp_path, _plan(ctx, ["x/a/one.txt", "y/two.txt"], "/p", parents=True))
    assert m["p/x/a/one.txt"][5] == b"1" and m["p/y/two.txt"][5] == b"2"
    m = _layer(tmp_path, _plan(ctx, ["./x/./a/*.txt"], "/p/", parents=True))
    assert set(m) == {"p", "p/a", "p/a/one.txt"}
    m = _layer(tmp_path, _plan(ctx, ["x"], "/q/", parents=True, exclude=["**/*.md"]))
    assert set(m) == {"q", "q/x", "q/x/a", "q/x/a/one.txt"}
    m = _layer(tmp_path, _plan(ctx, ["*.txt", "src"], "/e/", exclude=["b.txt", "lib"]))
    assert set(m) == {"e", "e/a.txt", "e/main.c", "e/link", "e/rel"}
    assert (_plan(ctx, ["src"], "/e/", exclude=["lib"]).cache_key()
            != _plan(ctx, ["src"], "/e/").cache_key())


def test_whiteout_names_are_never_written(tmp_path):
    rootfs = _mk(tmp_path / "img", {"d/.wh.etc": b"", "d/ok": b"1"})
    with pytest.raises(InvalidParameter, match="reserved for layer whiteouts"):
        write_copy_layer(_plan(rootfs, ["d"], "/", follow_from_image=True), tmp_path / "l.tar")
    assert not (tmp_path / "l.tar").exists()
    with pytest.raises(InvalidParameter, match="reserved"):
        write_heredoc_layer("x", "/.wh.bin", "/", None, None, tmp_path / "h.tar")


def test_parent_metadata_never_read_through_image_links(ctx, tmp_path):
    host = tmp_path / "hostdir"
    host.mkdir()
    os.chmod(host, 0o711)
    os.chown(host, 4242, 4242)
    rootfs = _mk(tmp_path / "rootfs", {"out": ("->", str(host))})
    # --parents keeps "out" below dest as written; the image's "out" link must not be followed
    m = _layer(tmp_path, _plan(ctx, ["a.txt"], "/", parents=True), dest_rootfs=rootfs)
    assert m["a.txt"][5] == b"A"
    _mk(ctx, {"out/f": b"F"})
    m = _layer(tmp_path, _plan(ctx, ["out/f"], "/", parents=True), dest_rootfs=rootfs)
    assert m["out"][:4] == (tarfile.DIRTYPE, 0o755, 0, 0)  # made fresh, not the host dir's 0711/4242


def test_new_destination_dir_is_0755_not_the_source_mode(ctx, tmp_path):
    os.chmod(ctx / "src", 0o700)
    m = _layer(tmp_path, _plan(ctx, ["src"], "/fresh"))
    assert m["fresh"][:4] == (tarfile.DIRTYPE, 0o755, 0, 0)
    assert m["fresh/lib"][1] == 0o755  # directories below keep their own modes
    os.chmod(ctx / "src/lib", 0o750)
    assert _layer(tmp_path, _plan(ctx, ["src"], "/fresh"))["fresh/lib"][1] == 0o750


def test_image_dirs_receiving_entries_get_a_new_mtime(ctx, tmp_path):
    # as in dockerd's layer: /etc (gets a new file) is touched, /usr (only leads deeper) is not
    rootfs = _mk(tmp_path / "rootfs", {"etc": None, "usr/local": None})
    for d in ("etc", "usr", "usr/local"):
        os.utime(rootfs / d, (T0, T0))
    m = _layer(tmp_path, _plan(ctx, ["a.txt"], "/etc/"), dest_rootfs=rootfs)
    assert m["etc"][4] > T0
    m = _layer(tmp_path, _plan(ctx, ["a.txt"], "/usr/local/bin/"), dest_rootfs=rootfs)
    assert m["usr"][4] == T0 and m["usr/local"][4] > T0 and m["usr/local/bin"][4] > T0
