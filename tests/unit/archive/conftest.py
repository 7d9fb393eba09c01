"""Build layer tars entry by entry (including hostile ones) for the archive tests."""

import io
import tarfile

import pytest


class TarBuilder:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _ti(self, name, type_, mode=0o644, uid=0, gid=0, mtime=1_600_000_000, **kw):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = type_, mode, uid, gid, mtime
        for k, v in kw.items():
            setattr(ti, k, v)
        return ti

    def file(self, name, data=b"", **kw):
        ti = self._ti(name, tarfile.REGTYPE, **kw)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))
        return self

    def dir(self, name, mode=0o755, **kw):
        self.tar.addfile(self._ti(name, tarfile.DIRTYPE, mode=mode, **kw))
        return self

    def symlink(self, name, target, **kw):
        self.tar.addfile(self._ti(name, tarfile.SYMTYPE, mode=0o777, linkname=target, **kw))
        return self

    def hardlink(self, name, target, **kw):
        self.tar.addfile(self._ti(name, tarfile.LNKTYPE, linkname=target, **kw))
        return self

    def device(self, name, type_, major=0, minor=0, **kw):
        self.tar.addfile(self._ti(name, type_, devmajor=major, devminor=minor, **kw))
        return self

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


@pytest.fixture
def tb():
    return TarBuilder


@pytest.fixture
def sandbox(tmp_path):
    """(target dir, sibling dir that must stay untouched)."""
    target = tmp_path / "target"
    outside = tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("keep")
    return target, outside


@pytest.fixture
def snapshot():
    return _snapshot


def _snapshot(path):
    """Everything under `path`: names, types, sizes, contents of small files."""
    import os
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            data = open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p) else None
            out[os.path.relpath(p, path)] = (st.st_mode, st.st_size, data)
    return out
