"""cp/export/copy-up workers against a real overlay (root, real kernel), without a daemon.

A stopped container is stood in for by its directories (image layer, upper, work, merged);
the worker mounts the overlay in its own mount namespace, so the host's mount table is
untouched, and every path resolves inside the container's root.
"""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import types
from pathlib import Path

import pytest

from sampan.containerfs import ContainerFS
from sampan.engine.container import State
from sampan.errors import Forbidden, InvalidParameter, NotFound


class _Containers:
    def __init__(self, c):
        self.c = c
        self.locks: dict = {}

    def get(self, ref):
        if ref != self.c.id:
            raise NotFound(f"No such container: {ref}")
        return self.c

    def _lock(self, cid):
        return self.locks.setdefault(cid, asyncio.Lock())


@pytest.fixture
def box(tmp_path: Path):
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc" / "hostname").write_text("inside\n")
    (layer / "data").mkdir()
    (layer / "data" / "seed.txt").write_text("seed")
    (layer / "tmp").mkdir()
    os.chmod(layer / "tmp", 0o1777)
    os.symlink("/etc", layer / "etclink")
    os.symlink("../../../../../../../../", layer / "up")
    cdir = tmp_path / "c"
    for d in ("upper", "work", "merged"):
        (cdir / d).mkdir(parents=True)
    c = types.SimpleNamespace(
        id="c" * 64, name="box", driver="overlay2", lower_dirs=[str(layer)], dir=str(cdir),
        upper_dir=str(cdir / "upper"), work_dir=str(cdir / "work"), rootfs=str(cdir / "merged"),
        state=State(), host_config={}, mounts=[], config={}, image_id="")
    fs = ContainerFS(types.SimpleNamespace(containers=_Containers(c)))
    return fs, c, tmp_path


def run(coro):
    return asyncio.run(coro)


async def _get(fs, ref, path):
    async with fs.archive(ref, path) as (st, chunks, ok):
        data = b"".join([d async for d in chunks])
        assert await ok()
    return st, tarfile.open(fileobj=io.BytesIO(data))


async def _aiter(data: bytes):
    for i in range(0, len(data), 7000):
        yield data[i:i + 7000]


def _tar(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = len(payload)
                t.addfile(ti, io.BytesIO(payload))
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, payload
                t.addfile(ti)
            else:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
    return buf.getvalue()


def test_stat_and_get_resolve_inside_the_container(box):
    fs, c, _ = box
    st = run(fs.stat(c.id, "/etc/hostname"))
    assert st["name"] == "hostname" and st["size"] == 7 and st["linkTarget"] == ""
    st = run(fs.stat(c.id, "/etclink"))
    assert st["linkTarget"] == "/etc" and st["mode"] & (1 << 27)
    # through the link: the container's /etc, never the host's
    st, tf = run(_get(fs, c.id, "/etclink/hostname"))
    assert tf.extractfile("hostname").read() == b"inside\n"
    st, tf = run(_get(fs, c.id, "/up/etc/hostname"))  # `..` past the root stays at the root
    assert tf.extractfile("hostname").read() == b"inside\n"
    st, tf = run(_get(fs, c.id, "/data/."))
    assert "./seed.txt" in tf.getnames()
    with pytest.raises(NotFound, match="Could not find the file /nope in container"):
        run(fs.stat(c.id, "/nope"))
    assert not os.path.ismount(c.rootfs)  # the overlay was only ever in the worker's namespace


def test_put_archive_lands_in_the_rw_layer(box):
    fs, c, _ = box
    run(fs.extract(c.id, "/tmp", _aiter(_tar([("d", "dir", b""), ("d/f.txt", "file", b"x" * 20000)]))))
    assert (Path(c.upper_dir) / "tmp" / "d" / "f.txt").read_bytes() == b"x" * 20000
    assert os.stat(Path(c.upper_dir) / "tmp" / "d" / "f.txt").st_uid == 0
    with pytest.raises(InvalidParameter, match="not a directory"):
        run(fs.extract(c.id, "/etc/hostname", _aiter(_tar([("f", "file", b"")]))))
    with pytest.raises(NotFound):
        run(fs.extract(c.id, "/missing", _aiter(_tar([("f", "file", b"")]))))


def test_hostile_tars_change_nothing_outside(box, tmp_path):
    fs, c, _ = box
    victim = tmp_path / "victim"
    victim.mkdir()
    for entries in ([("../../../../../../.." + str(victim) + "/x", "file", b"pwn")],
                    [("l", "sym", str(victim)), ("l/x", "file", b"pwn")],
                    [("/" + str(victim).lstrip("/") + "/x", "file", b"pwn")]):
        try:
            run(fs.extract(c.id, "/tmp", _aiter(_tar(entries))))
        except InvalidParameter:
            pass
        assert os.listdir(victim) == []
    # a link in the container pointing "out" resolves inside it
    run(fs.extract(c.id, "/up/tmp", _aiter(_tar([("y", "file", b"ok")]))))
    assert (Path(c.upper_dir) / "tmp" / "y").read_bytes() == b"ok"
    with pytest.raises(InvalidParameter):
        run(fs.extract(c.id, "/tmp", _aiter(b"this is not a tar" * 100)))


def test_readonly_rootfs_refuses_put(box):
    fs, c, _ = box
    c.host_config = {"ReadonlyRootfs": True}
    with pytest.raises(Forbidden, match="read-only"):
        run(fs.extract(c.id, "/tmp", _aiter(_tar([("f", "file", b"")]))))


def test_export_is_the_merged_rootfs(box):
    fs, c, _ = box
    os.mknod(Path(c.upper_dir) / "data", 0o20000, os.makedev(0, 0))  # data/ deleted in the rw layer
    (Path(c.upper_dir) / "added").write_text("new")

    async def go():
        async with fs.export(c.id) as (chunks, ok):
            data = b"".join([d async for d in chunks])
            assert await ok()
            return data
    tf = tarfile.open(fileobj=io.BytesIO(run(go())))
    names = tf.getnames()
    assert "etc/hostname" in names and "added" in names
    assert not any(n.startswith("data") for n in names)
    assert not any(".wh." in n for n in names)


def test_copyup_fills_an_empty_volume(box, tmp_path):
    fs, c, _ = box
    vol = tmp_path / "vol" / "_data"
    vol.mkdir(parents=True)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_text("mine")
    copied = run(fs.copyup(c, [("/data", str(vol)), ("/etc", str(full)), ("/nothing", str(full))]))
    assert copied == ["/data"]
    assert (vol / "seed.txt").read_text() == "seed"
    assert os.listdir(full) == ["keep"]  # not empty: left alone


def test_runtime_pid_in_host_namespace_is_never_entered():
    """runc/crun record the runtime's pid, which stays in the host's mount namespace: the
    worker must find the container's process below it, or refuse — never act on the host."""
    import subprocess
    import time
    from sampan.containerfs.service import container_ns_pid
    from sampan.errors import Conflict

    host_only = subprocess.Popen(["sleep", "30"])
    parent = subprocess.Popen(["sh", "-c", "unshare -m sleep 30; true"])
    try:
        with pytest.raises(Conflict):
            container_ns_pid(host_only.pid)
        deadline = time.monotonic() + 5
        while True:
            try:
                got = container_ns_pid(parent.pid)
                break
            except Conflict:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert got != parent.pid
        assert os.readlink(f"/proc/{got}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    finally:
        for p in (host_only, parent):
            p.kill()
            p.wait()
