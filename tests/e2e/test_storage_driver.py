"""The vfs storage driver (the fallback where overlayfs can't mount), against a real daemon."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest


def _tar(entries: list[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                t.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def two_layer_image(busybox_tar: Path, ref: str) -> bytes:
    """busybox + a layer that adds /etc/kept and /etc/gone + a layer that whites out /etc/gone
    and makes /opt opaque, as a `docker save` archive."""
    layers = [
        busybox_tar.read_bytes(),
        _tar([("etc/kept", b"kept\n"), ("etc/gone", b"gone\n"), ("opt", None), ("opt/old", b"x")]),
        _tar([("etc/.wh.gone", b""), ("opt", None), ("opt/.wh..wh..opq", b""), ("opt/new", b"y")]),
    ]
    diff_ids = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "history": [{"created_by": f"layer {i}"} for i in range(3)]}).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        names = []
        for i, l in enumerate(layers):
            names.append(f"l{i}/layer.tar")
            add(names[-1], l)
        add(cfg_name, config)
        add("manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": [ref], "Layers": names}]).encode())
    return out.getvalue()


@pytest.fixture(scope="module")
def vfs_daemon(sampand_factory):
    return sampand_factory(config={"storage-driver": "vfs"})


def _ok(r):
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def test_info_reports_vfs_and_container_writes_stay_in_its_copy(vfs_daemon):
    assert _ok(vfs_daemon.docker("info", "--format", "{{.Driver}}")).strip() == "vfs"
    cid = _ok(vfs_daemon.docker("run", "-d", "busybox", "sh", "-c", "echo data > /written; sleep 30")).strip()
    try:
        info = json.loads(_ok(vfs_daemon.docker("inspect", cid)))[0]
        assert info["Driver"] == "vfs"
        merged = Path(info["GraphDriver"]["Data"]["MergedDir"])
        for _ in range(50):
            if (merged / "written").exists():
                break
            import time
            time.sleep(0.1)
        assert (merged / "written").read_text() == "data\n"
        for lower in info["GraphDriver"]["Data"]["LowerDir"].split(":"):
            assert not (Path(lower) / "written").exists()
        # Another container starts from the image, not from the first one's copy.
        r = vfs_daemon.docker("run", "--rm", "busybox", "ls", "/written")
        assert r.returncode != 0
    finally:
        vfs_daemon.docker("rm", "-f", cid)


def test_whiteouts_and_opaque_dirs_are_applied(vfs_daemon, busybox_tar, tmp_path):
    archive = tmp_path / "img.tar"
    archive.write_bytes(two_layer_image(busybox_tar, "layered:1"))
    _ok(vfs_daemon.docker("load", "-i", str(archive)))
    out = _ok(vfs_daemon.docker("run", "--rm", "layered:1", "sh", "-c",
                                "cat /etc/kept; ls /etc/gone 2>&1; ls /opt"))
    assert "kept" in out
    assert "No such file" in out
    assert out.strip().splitlines()[-1] == "new"


def test_overlay_daemon_applies_the_same_layers(sampand, busybox_tar, tmp_path):
    archive = tmp_path / "img.tar"
    archive.write_bytes(two_layer_image(busybox_tar, "layered:2"))
    _ok(sampand.docker("load", "-i", str(archive)))
    try:
        out = _ok(sampand.docker("run", "--rm", "layered:2", "sh", "-c",
                                 "cat /etc/kept; ls /etc/gone 2>&1; ls /opt"))
        assert "kept" in out and "No such file" in out and out.strip().splitlines()[-1] == "new"
    finally:
        sampand.docker("rmi", "layered:2")
