"""Image layers as real overlay lower dirs: import/load, mount, see the files (root, kernel)."""

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from sampan.daemon.config import DaemonConfig
from sampan.images import ImageService
from sampan.metadata import Database

pytestmark = pytest.mark.root


def _tar(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, kind, link in entries:
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname, ti.mode = kind, link, 0o755
            if data is not None:
                ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


@pytest.fixture
def svc(tmp_path):
    cfg = DaemonConfig(data_root=tmp_path / "root")
    cfg.data_root.mkdir()
    db = Database(cfg.db_path)
    yield ImageService(cfg, db)
    db.close()


@pytest.fixture
def mounted(tmp_path):
    targets = []

    def mount(lower_dirs: list[Path]) -> Path:
        target = tmp_path / f"merged{len(targets)}"
        upper, work = tmp_path / f"upper{len(targets)}", tmp_path / f"work{len(targets)}"
        for d in (target, upper, work):
            d.mkdir()
        opts = f"lowerdir={':'.join(map(str, lower_dirs))},upperdir={upper},workdir={work}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)], check=True)
        targets.append(target)
        return target

    yield mount
    for t in targets:
        subprocess.run(["umount", "-l", str(t)], check=False)


def test_imported_image_mounts_and_runs(svc, tmp_path, mounted):
    rootfs = _tar([("bin/", None, tarfile.DIRTYPE, ""),
                   ("bin/busybox", Path("/bin/busybox").read_bytes(), tarfile.REGTYPE, ""),
                   ("bin/sh", None, tarfile.SYMTYPE, "busybox"),
                   ("etc/", None, tarfile.DIRTYPE, ""),
                   ("etc/greeting", b"hello from the image\n", tarfile.REGTYPE, "")])
    p = tmp_path / "rootfs.tar.gz"
    p.write_bytes(gzip.compress(rootfs))
    image_id = svc.import_tar(p, "busybox", None, [], "")
    rec = svc.resolve("busybox")
    assert rec.id == image_id
    merged = mounted(rec.layer_dirs)
    assert (merged / "etc/greeting").read_text() == "hello from the image\n"
    out = subprocess.run(["chroot", str(merged), "/bin/sh", "-c", "busybox cat /etc/greeting; echo ok"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "hello from the image\nok\n"


def test_layer_order_and_whiteouts_through_overlay(svc, tmp_path, mounted):
    base = _tar([("a", b"base a", tarfile.REGTYPE, ""), ("b", b"base b", tarfile.REGTYPE, ""),
                 ("d/", None, tarfile.DIRTYPE, ""), ("d/old", b"old", tarfile.REGTYPE, "")])
    top = _tar([(".wh.a", b"", tarfile.REGTYPE, ""), ("b", b"top b", tarfile.REGTYPE, ""),
                ("d/", None, tarfile.DIRTYPE, ""), ("d/.wh..wh..opq", b"", tarfile.REGTYPE, ""),
                ("d/new", b"new", tarfile.REGTYPE, "")])
    import json
    diff = ["sha256:" + hashlib.sha256(x).hexdigest() for x in (base, top)]
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": diff}}).encode()
    files = {"c.json": cfg, "l0/layer.tar": base, "l1/layer.tar": top,
             "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["two:layers"],
                                           "Layers": ["l0/layer.tar", "l1/layer.tar"]}]).encode()}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for n, d in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
    arch = tmp_path / "two.tar"
    arch.write_bytes(buf.getvalue())
    assert svc.load(arch) == ["Loaded image: two:layers"]
    rec = svc.resolve("two:layers")
    assert rec.layer_dirs[0].parent.name == rec.chain_ids[1][7:]  # top-most first
    merged = mounted(rec.layer_dirs)
    assert not (merged / "a").exists()
    assert (merged / "b").read_bytes() == b"top b"
    assert sorted(os.listdir(merged / "d")) == ["new"]
