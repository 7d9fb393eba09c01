"""A force-removed image stays usable by its containers and is collected when the last goes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile


def _layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"only in this image\n"
        info = tarfile.TarInfo("marker")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_force_removed_image_layers_collected_with_last_container(sampand, tmp_path):
    tar = tmp_path / "gc.tar"
    tar.write_bytes(_layer())
    chain = hashlib.sha256(tar.read_bytes()).hexdigest()
    layer_dir = sampand.data_root / "layers" / chain
    r = sampand.docker("import", str(tar), "gcimg:1")
    assert r.returncode == 0, r.stderr
    r = sampand.docker("create", "--name", "gc-user", "gcimg:1", "/marker")
    assert r.returncode == 0, r.stderr
    try:
        assert layer_dir.exists()
        r = sampand.docker("rmi", "-f", "gcimg:1")
        assert r.returncode == 0, r.stderr
        # Hidden, not gone: the container still has its image.
        assert sampand.docker("images", "-q", "gcimg").stdout.strip() == ""
        assert layer_dir.exists()
        info = json.loads(sampand.docker("inspect", "gc-user").stdout)[0]
        assert info["Image"].startswith("sha256:")
    finally:
        r = sampand.docker("rm", "gc-user")
    assert r.returncode == 0, r.stderr
    assert not layer_dir.exists()
