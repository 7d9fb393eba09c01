"""ADD: local archives extracted (by content), hostile ones refused; URLs downloaded from a
loopback HTTP server with checksum, file name and Last-Modified."""

import bz2
import gzip
import hashlib
import http.server
import io
import lzma
import os
import tarfile
import threading

import pytest

from sampan.build.copy import fetch_url, plan_copy, write_copy_layer
from sampan.errors import InvalidParameter


def _tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, kw in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_500_000_000
            for k, v in kw.items():
                setattr(ti, k, v)
            if data is None and "type" not in kw:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o750
                t.addfile(ti)
            elif data is None:
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


ARCH = _tar([("pkg", None, {}), ("pkg/bin", b"BIN", {"mode": 0o755, "uid": 7, "gid": 8}),
             ("pkg/ln", None, {"type": tarfile.SYMTYPE, "linkname": "bin"})])


def _members(path):
    out = {}
    with tarfile.open(path) as t:
        for m in t:
            data = t.extractfile(m).read() if m.isreg() else (m.linkname if m.issym() else None)
            out[m.name.rstrip("/")] = (m.type, m.mode, m.uid, m.gid, int(m.mtime), data)
    return out


def _zstd(data):
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("name,wrap", [("a.tar", lambda d: d), ("a.tgz", gzip.compress),
                                       ("a.tar.bz2", bz2.compress), ("a.txz", lzma.compress),
                                       ("a.tar.zst", _zstd), ("misleading.txt", gzip.compress)])
def test_add_extracts_local_archives_by_content(tmp_path, name, wrap):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / name).write_bytes(wrap(ARCH))
    plan = plan_copy(ctx, [name], "/opt", workdir="/", add=True)
    assert plan.sources[0].kind == "archive"
    out = tmp_path / "l.tar"
    write_copy_layer(plan, out, chown=(1, 1), add=True)
    m = _members(out)
    assert set(m) == {"opt", "opt/pkg", "opt/pkg/bin", "opt/pkg/ln"}
    assert m["opt/pkg/bin"][1:6] == (0o755, 7, 8, 1_500_000_000, b"BIN")  # archive's owners
    assert m["opt/pkg"][1] == 0o750 and m["opt/pkg/ln"][5] == "bin"
    assert m["opt"][2:4] == (0, 0)  # Docker does not apply --chown to extracted archives
    assert not list(tmp_path.glob("build-add-x-*"))  # scratch removed


def test_copy_and_non_archives_are_not_extracted(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.tgz").write_bytes(gzip.compress(ARCH))
    (ctx / "notes.gz").write_bytes(gzip.compress(b"just text, not a tar " * 50))
    (ctx / "empty.tar").write_bytes(b"\0" * 1024)
    out = tmp_path / "l.tar"
    write_copy_layer(plan_copy(ctx, ["a.tgz"], "/opt/", workdir="/", add=False), out)
    assert _members(out)["opt/a.tgz"][5] == gzip.compress(ARCH) or "opt/a.tgz" in _members(out)
    for name in ("notes.gz", "empty.tar"):
        plan = plan_copy(ctx, [name], "/opt/", workdir="/", add=True)
        assert plan.sources[0].kind == "file"
        write_copy_layer(plan, out, add=True)
        assert _members(out)[f"opt/{name}"][5] == (ctx / name).read_bytes()


@pytest.mark.parametrize("entries", [
    [("../../evil", b"x", {})],
    [("/abs/../../../evil", b"x", {})],
    [("link", None, {"type": tarfile.SYMTYPE, "linkname": "/tmp"}), ("link/evil", b"x", {})],
    [("h", None, {"type": tarfile.LNKTYPE, "linkname": "../../etc/passwd"})],
])
def test_hostile_archives_cannot_write_outside(tmp_path, entries):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "evil.tar").write_bytes(_tar(entries))
    before = set(os.listdir("/tmp"))
    plan = plan_copy(ctx, ["evil.tar"], "/x", workdir="/", add=True)
    with pytest.raises(InvalidParameter, match="^ADD failed: "):
        write_copy_layer(plan, tmp_path / "l.tar", add=True)
    assert not (tmp_path / "l.tar").exists() and not (tmp_path / "evil").exists()
    assert "evil" not in set(os.listdir("/tmp")) - before
    assert not list(tmp_path.glob("build-add-x-*"))


def test_archive_whiteouts_stay_confined(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "w.tar").write_bytes(_tar([("etc/.wh.passwd", b"", {}), ("etc/ok", b"1", {})]))
    out = tmp_path / "l.tar"
    write_copy_layer(plan_copy(ctx, ["w.tar"], "/", workdir="/", add=True), out, add=True)
    assert set(_members(out)) == {"etc", "etc/ok"}  # no whiteout can reach the image's files


# -- URLs ----------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/redirect-"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/redirect-"):].replace("_", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
        if self.path.endswith("/"):
            self.send_header("Content-Disposition", 'attachment; filename="disp.bin"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Handler.files = {"/files/app.tar.gz": gzip.compress(ARCH), "/dir/": b"D",
                      "/x%20y.txt": b"spaced"}
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_fetch_url(server, tmp_path):
    p = fetch_url(server + "/files/app.tar.gz", tmp_path, None)
    assert p == tmp_path / "app.tar.gz" and p.read_bytes() == gzip.compress(ARCH)
    assert p.stat().st_mtime == 1445412480 and (p.stat().st_mode & 0o777) == 0o600
    assert fetch_url(server + "/dir/", tmp_path / "d", None).name == "disp.bin"
    assert fetch_url(server + "/x%20y.txt", tmp_path / "e", None).name == "x y.txt"
    good = "sha256:" + hashlib.sha256(b"D").hexdigest()
    assert fetch_url(server + "/dir/", tmp_path / "f", good).read_bytes() == b"D"
    with pytest.raises(InvalidParameter, match="checksum mismatch"):
        fetch_url(server + "/dir/", tmp_path / "g", "sha256:" + "0" * 64)
    assert not any((tmp_path / "g").iterdir())  # nothing half-written left
    with pytest.raises(InvalidParameter, match="invalid checksum digest format"):
        fetch_url(server + "/dir/", tmp_path / "h", "md5:abc")
    with pytest.raises(InvalidParameter, match="with status 404"):
        fetch_url(server + "/missing", tmp_path / "i", None)
    with pytest.raises(InvalidParameter, match="failed to GET"):
        fetch_url("http://127.0.0.1:1/x", tmp_path / "j", None)
    # redirects: followed to http(s), refused to anything else
    assert fetch_url(server + "/redirect-" + "_dir_", tmp_path / "k", None).read_bytes() == b"D"
    with pytest.raises(InvalidParameter, match="refused"):
        fetch_url(server + "/redirect-ftp:__127.0.0.1_x", tmp_path / "l", None)


def test_add_url_is_downloaded_not_extracted(server, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    plan = plan_copy(ctx, [server + "/files/app.tar.gz"], "/srv/", workdir="/", add=True,
                     tmp_dir=tmp_path / "dl")
    out = tmp_path / "l.tar"
    write_copy_layer(plan, out, add=True)
    m = _members(out)
    assert m["srv/app.tar.gz"][:6] == (tarfile.REGTYPE, 0o600, 0, 0, 1445412480, gzip.compress(ARCH))
    key = plan.cache_key()
    plan.cleanup()
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").iterdir())
    again = plan_copy(ctx, [server + "/files/app.tar.gz"], "/srv/", workdir="/", add=True)
    assert again.cache_key() == key
    again.cleanup()
    _Handler.files["/files/app.tar.gz"] = b"changed"
    changed = plan_copy(ctx, [server + "/files/app.tar.gz"], "/srv/", workdir="/", add=True)
    assert changed.cache_key() != key
    changed.cleanup()
    with pytest.raises(InvalidParameter, match="checksum mismatch"):
        plan_copy(ctx, [server + "/dir/"], "/srv/", workdir="/", add=True,
                  checksum="sha256:" + "1" * 64, tmp_dir=tmp_path / "dl2")
    assert not any((tmp_path / "dl2").iterdir())


def test_add_archive_dest_ownership_as_docker(tmp_path):
    # checked against dockerd 20.10's classic builder
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    # the destination is made 0755 root:root, whatever --chown says
    (ctx / "plain.tar").write_bytes(_tar([("f", b"1", {"uid": 5})]))
    # a "./" root entry (tar -C dir .) does not change the destination either
    (ctx / "rooted.tgz").write_bytes(gzip.compress(_tar([(".", None, {"mode": 0o750, "uid": 1000, "gid": 1000}),
                                                        ("./g", b"2", {})])))
    out = tmp_path / "l.tar"
    write_copy_layer(plan_copy(ctx, ["plain.tar"], "/a/b/", workdir="/", add=True), out,
                     chown=(7, 7), add=True)
    m = _members(out)
    assert m["a"][1:4] == (0o755, 0, 0) and m["a/b"][1:4] == (0o755, 0, 0)
    assert m["a/b/f"][2] == 5
    write_copy_layer(plan_copy(ctx, ["rooted.tgz"], "/r", workdir="/", add=True), out, add=True)
    m = _members(out)
    assert m["r"][1:4] == (0o755, 0, 0) and m["r/g"][5] == b"2"


def test_zstd_without_the_module_is_copied_as_is(tmp_path, monkeypatch):
    import sys
    data = _zstd(ARCH)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.tar.zst").write_bytes(data)
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard -> ImportError
    plan = plan_copy(ctx, ["a.tar.zst"], "/opt/", workdir="/", add=True)
    assert plan.sources[0].kind == "file"
    out = tmp_path / "l.tar"
    write_copy_layer(plan, out, add=True)
    assert _members(out)["opt/a.tar.zst"][5] == data
