"""write_layer_tar: deterministic layer tars from a directory, whiteouts back to Docker form."""

import hashlib
import io
import os
import stat
import tarfile

import pytest

from sampan.archive import extract_layer, write_layer_tar

ROOT = os.geteuid() == 0


def _tree(root):
    (root / "etc").mkdir()
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    (root / "bin").mkdir()
    (root / "bin/busybox").write_bytes(b"\x7fELF" * 100)
    os.chmod(root / "bin/busybox", 0o755)
    os.symlink("busybox", root / "bin/sh")
    os.link(root / "bin/busybox", root / "bin/ls")
    os.mkfifo(root / "fifo")


def _names(data: bytes) -> list[tuple[str, str]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return [(m.name, m.type.decode() if isinstance(m.type, bytes) else m.type) for m in t]


def test_roundtrip_and_determinism(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _tree(src)
    a, b = io.BytesIO(), io.BytesIO()
    write_layer_tar(src, a)
    write_layer_tar(src, b)
    assert a.getvalue() == b.getvalue()
    names = [n for n, _ in _names(a.getvalue())]
    # (tarfile drops the trailing slash of directory names when reading; the header has it)
    assert names == ["bin", "etc", "fifo", "bin/busybox", "bin/ls", "bin/sh", "etc/hosts"]
    assert b"bin/\0" in a.getvalue() and b"./" not in a.getvalue()[:512]
    types = dict(_names(a.getvalue()))
    assert types["bin/ls"] == tarfile.LNKTYPE.decode()
    dst = tmp_path / "dst"
    dst.mkdir()
    res = extract_layer(io.BytesIO(a.getvalue()), dst)
    assert res.diff_id == "sha256:" + hashlib.sha256(a.getvalue()).hexdigest()
    assert (dst / "bin/busybox").read_bytes() == (src / "bin/busybox").read_bytes()
    assert os.readlink(dst / "bin/sh") == "busybox"
    assert os.path.samefile(dst / "bin/busybox", dst / "bin/ls")
    assert stat.S_IMODE((dst / "bin/busybox").stat().st_mode) == 0o755
    assert stat.S_ISFIFO((dst / "fifo").lstat().st_mode)
    # again from the extracted copy: same bytes, same diff ID
    c = io.BytesIO()
    write_layer_tar(dst, c)
    assert c.getvalue() == a.getvalue()


@pytest.mark.skipif(not ROOT, reason="overlay whiteouts need mknod and trusted.* xattrs (root)")
def test_overlay_whiteouts_back_to_docker_form(tmp_path):
    upper = tmp_path / "upper"
    upper.mkdir()
    os.mknod(upper / "deleted", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    (upper / "opq").mkdir()
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    (upper / "opq/new").write_text("n")
    out = io.BytesIO()
    write_layer_tar(upper, out)
    names = [n for n, _ in _names(out.getvalue())]
    assert names == [".wh.deleted", "opq", "opq/.wh..wh..opq", "opq/new"]
    # and back again: same overlay form
    dst = tmp_path / "dst"
    dst.mkdir()
    extract_layer(io.BytesIO(out.getvalue()), dst)
    st = (dst / "deleted").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dst / "opq", "trusted.overlay.opaque") == b"y"
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        for m in t:
            assert "trusted.overlay.opaque" not in "".join(m.pax_headers)
