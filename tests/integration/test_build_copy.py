"""COPY/ADD layers stacked on a real image through overlayfs (root, kernel): the context tar
unpacked and filtered, sources planned and hashed, the layer stored by the image service and
mounted over its parent, then looked at (and run) through the merged view."""

import gzip
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from sampan.build.context import BuildContext
from sampan.build.copy import plan_copy, resolve_chown, write_copy_layer, write_heredoc_layer
from sampan.daemon.config import DaemonConfig
from sampan.errors import InvalidParameter
from sampan.images import ImageService
from sampan.metadata import Database

pytestmark = pytest.mark.root


def _tar(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, kw in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            ti.mode = 0o755
            for k, v in kw.items():
                setattr(ti, k, v)
            if data is None and ti.type == tarfile.REGTYPE:
                ti.type = tarfile.DIRTYPE
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
        n = len(targets)
        target, upper, work = (tmp_path / f"{k}{n}" for k in ("merged", "upper", "work"))
        for d in (target, upper, work):
            d.mkdir()
        if len(lower_dirs) == 1:  # overlay needs two lowers without an upper: use a ro upper
            opts = f"lowerdir={lower_dirs[0]},upperdir={upper},workdir={work}"
        else:
            opts = f"lowerdir={':'.join(map(str, lower_dirs))},upperdir={upper},workdir={work}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)], check=True)
        targets.append(target)
        return target

    yield mount
    for t in reversed(targets):
        subprocess.run(["umount", "-l", str(t)], check=False)


BASE = [
    ("usr", None, {}), ("usr/bin", None, {}),
    ("usr/bin/busybox", Path("/bin/busybox").read_bytes(), {}),
    ("usr/bin/sh", None, {"type": tarfile.SYMTYPE, "linkname": "busybox"}),
    ("usr/bin/head", None, {"type": tarfile.SYMTYPE, "linkname": "busybox"}),
    ("bin", None, {"type": tarfile.SYMTYPE, "linkname": "usr/bin"}),
    ("app", None, {"mode": 0o700, "uid": 1000, "gid": 1000}),
    ("app/existing", b"from the image\n", {"mode": 0o644}),
    ("etc", None, {}),
    ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/app:/bin/sh\n", {"mode": 0o644}),
    ("etc/group", b"root:x:0:\nweb:x:33:\n", {"mode": 0o644}),
]

CONTEXT = [
    ("Dockerfile", b"FROM base\nCOPY --chown=web src/ /app/\n", {"mode": 0o644}),
    (".dockerignore", b"*.secret\nsrc/cache\n", {"mode": 0o644}),
    ("api.secret", b"TOKEN", {"mode": 0o600}),
    ("src", None, {}), ("src/main.sh", b"#!/bin/sh\necho main says hi\n", {"mode": 0o755}),
    ("src/cache", None, {}), ("src/cache/big", b"x" * 1000, {"mode": 0o644}),
    ("src/passwd-link", None, {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
    ("tool", b"#!/bin/sh\necho tool\n", {"mode": 0o755}),
    ("vendor.tgz", gzip.compress(_tar([("lib", None, {}), ("lib/v.txt", b"vendored\n", {"mode": 0o640})])),
     {"mode": 0o644}),
    ("evil.tar", _tar([("../../../../../../tmp/sampan-build-escape", b"pwned", {"mode": 0o644})]),
     {"mode": 0o644}),
]


def test_copy_layers_over_a_real_image(svc, tmp_path, mounted):
    base_tar = tmp_path / "base.tar.gz"
    base_tar.write_bytes(gzip.compress(_tar(BASE)))
    svc.import_tar(base_tar, "base", None, [], "")
    rec = svc.resolve("base")
    base_view = mounted(rec.layer_dirs)

    ctx = BuildContext.from_tar(io.BytesIO(gzip.compress(_tar(CONTEXT))), svc.config.tmp_dir)
    try:
        assert ctx.read_dockerfile()[0].startswith("FROM base")
        assert not (ctx.root / "api.secret").exists() and not (ctx.root / "src/cache").exists()
        owner = resolve_chown("web", base_view)
        assert owner == (33, 33)

        layers = []
        parent = rec.chain_ids[-1]
        steps = [
            (plan_copy(ctx.root, ["src/"], "/app/", workdir="/", add=False), owner),
            (plan_copy(ctx.root, ["tool"], "/bin/", workdir="/", add=False), None),
            (plan_copy(ctx.root, ["vendor.tgz"], "/opt/", workdir="/", add=True), None),
        ]
        view = base_view
        for i, (plan, chown) in enumerate(steps):
            out = tmp_path / f"step{i}.tar"
            write_copy_layer(plan, out, chown=chown, dest_rootfs=view, add=plan.add)
            with open(out, "rb") as f:
                layer = svc.add_layer(parent, f)
            layers.append(layer)
            parent = layer.chain_id
            view = mounted([lay.path for lay in reversed(layers)] + list(rec.layer_dirs))
        out = tmp_path / "heredoc.tar"
        write_heredoc_layer("greeting=hello\n", "/etc/app.conf", "/", None, 0o600, out,
                            dest_rootfs=view)
        with open(out, "rb") as f:
            layers.append(svc.add_layer(parent, f))
        merged = mounted([lay.path for lay in reversed(layers)] + list(rec.layer_dirs))

        app = (merged / "app").lstat()
        assert (stat.S_IMODE(app.st_mode), app.st_uid, app.st_gid) == (0o700, 1000, 1000)
        assert (merged / "app/existing").read_text() == "from the image\n"
        main = (merged / "app/main.sh").lstat()
        assert (main.st_uid, main.st_gid, stat.S_IMODE(main.st_mode)) == (33, 33, 0o755)
        assert os.readlink(merged / "app/passwd-link") == "/etc/passwd"  # copied as a link
        assert not (merged / "app/cache").exists()  # ignored by .dockerignore
        assert os.readlink(merged / "bin") == "usr/bin"  # the image's symlink survived COPY /bin/
        assert (merged / "usr/bin/tool").read_bytes() == b"#!/bin/sh\necho tool\n"
        assert (merged / "opt/lib/v.txt").read_text() == "vendored\n"
        assert stat.S_IMODE((merged / "opt/lib/v.txt").stat().st_mode) == 0o640
        assert (merged / "etc/app.conf").read_text() == "greeting=hello\n"
        assert (merged / "etc/passwd").read_text().startswith("root:x:0:0")
        run = subprocess.run(["chroot", str(merged), "/bin/busybox", "sh", "-c",
                              "/app/main.sh; /bin/tool; head -1 /app/passwd-link"],
                             capture_output=True, text=True, check=True)
        assert run.stdout == "main says hi\ntool\nroot:x:0:0:root:/root:/bin/sh\n"

        # a hostile archive in the context: refused, nothing written outside
        plan = plan_copy(ctx.root, ["evil.tar"], "/", workdir="/", add=True)
        with pytest.raises(InvalidParameter, match="escapes"):
            write_copy_layer(plan, tmp_path / "evil-layer.tar", dest_rootfs=merged, add=True)
        assert not Path("/tmp/sampan-build-escape").exists()
    finally:
        ctx.cleanup()
    assert not any(p.name.startswith("build-ctx-") for p in svc.config.tmp_dir.iterdir())
