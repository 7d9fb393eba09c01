"""`sampan build`'s client side: the context tar it sends (.dockerignore applied, the Dockerfile
and ignore file always included, a Dockerfile from elsewhere added under a random name)."""

from __future__ import annotations

import io
import tarfile

import pytest

from sampan.cli import build as B
from sampan.cli.common import CliError


def _names(buf: io.BytesIO) -> dict[str, tarfile.TarInfo]:
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        return {m.name: m for m in tf.getmembers()}


def _tree(root):
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("a")
    (root / "src" / "b.log").write_text("b")
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "node_modules" / "x" / "i.js").write_text("i")
    (root / "keep.md").write_text("k")
    (root / "Dockerfile").write_text("FROM busybox\n")
    (root / "link").symlink_to("/etc/passwd")
    (root / ".dockerignore").write_text("**/*.log\nnode_modules\n*.md\n!keep.md\nDockerfile\n.dockerignore\n")


def test_context_tar_applies_dockerignore(tmp_path):
    _tree(tmp_path)
    buf = io.BytesIO()
    assert B._context_tar(str(tmp_path), None, None, buf) == "Dockerfile"
    names = _names(buf)
    assert set(names) == {"src", "src/a.py", "keep.md", "Dockerfile", ".dockerignore", "link"}
    assert names["link"].issym() and names["link"].linkname == "/etc/passwd"  # sent as a link
    assert names["src/a.py"].uid == 0


def test_dockerfile_outside_the_context_or_on_stdin(tmp_path):
    ctx = tmp_path / "ctx"
    _tree(ctx)
    other = tmp_path / "Other.Dockerfile"
    other.write_text("FROM scratch\n")
    buf = io.BytesIO()
    name = B._context_tar(str(ctx), str(other), None, buf)
    assert name.startswith(".dockerfile.")
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        assert tf.extractfile(name).read() == b"FROM scratch\n"
    buf = io.BytesIO()
    name = B._context_tar(str(ctx), None, b"FROM stdin\n", buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        assert tf.extractfile(name).read() == b"FROM stdin\n"
    buf = io.BytesIO()
    assert B._context_tar(str(ctx), str(ctx / "src" / "a.py"), None, buf) == "src/a.py"


def test_missing_context_or_dockerfile(tmp_path):
    with pytest.raises(CliError, match="not found"):
        B._context_tar(str(tmp_path / "nope"), None, None, io.BytesIO())
    with pytest.raises(CliError, match="no such file or directory"):
        B._context_tar(str(tmp_path), None, None, io.BytesIO())


def test_archive_detection_and_args():
    assert B._is_archive(b"\x1f\x8b\x08")
    assert not B._is_archive(b"FROM busybox\n")
    hdr = bytearray(512)
    hdr[257:262] = b"ustar"
    assert B._is_archive(bytes(hdr))
    assert B._is_remote("https://example.com/ctx.tar.gz") and not B._is_remote("./dir")
    assert B._kv_list(["A=1", "B="], env_fallback=True) == {"A": "1", "B": ""}
