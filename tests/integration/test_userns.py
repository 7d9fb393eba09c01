"""User-namespace pieces against the real kernel: the namespace helper writes real maps, a
child that joins is the mapped root, layers are shifted on disk (set-id bits, file
capabilities and hard links intact) and a remapped daemon's config resolves real
/etc/subuid-format files."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from sampan.errors import InvalidParameter
from sampan.userns import remap
from sampan.userns.idmap import IdMap, IdRange
from sampan.userns.nsfork import join_user, make_namespaces
from sampan.userns.shift import chown_to_root, shift_tree

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

MAP = IdMap((IdRange(0, 231072, 65536),), (IdRange(0, 231072, 1000), IdRange(1000, 400000, 10)))


def test_make_namespaces_writes_maps_and_join_becomes_mapped_root():
    fd, _ = make_namespaces(MAP)
    try:
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("user:[")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                join_user(fd)
                with open("/proc/self/uid_map") as f:
                    um = f.read().split()
                with open("/proc/self/gid_map") as f:
                    gm = f.read().split()
                os.write(w, repr((os.getuid(), os.getgid(), um, gm)).encode())
            finally:
                os._exit(0)
        os.close(w)
        data = os.read(r, 4096)
        os.waitpid(pid, 0)
        uid, gid, um, gm = eval(data)  # noqa: S307 - our own child's repr of ints and strs
        assert (uid, gid) == (0, 0)
        assert um == ["0", "231072", "65536"]
        assert gm == ["0", "231072", "1000", "1000", "400000", "10"]
        # Seen from the host, the child was uid 231072 (checked through a sleeping child).
        pid = os.fork()
        if pid == 0:
            try:
                join_user(fd)
                os.execv("/bin/busybox", ["sleep", "5"])
            finally:
                os._exit(1)
        try:
            import time
            deadline = time.monotonic() + 10
            while not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\0"):  # exec'd
                assert time.monotonic() < deadline
                time.sleep(0.01)
            status = Path(f"/proc/{pid}/status").read_text()
            uids = next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1:]
            assert set(uids) == {"231072"}
        finally:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    finally:
        os.close(fd)


def test_shift_tree_preserves_setid_caps_and_hardlinks(tmp_path):
    root = tmp_path / "layer"
    (root / "bin").mkdir(parents=True)
    f = root / "bin" / "su"
    f.write_bytes(b"x")
    os.chown(f, 0, 0)
    os.chmod(f, 0o4755)
    p = root / "bin" / "ping"
    p.write_bytes(b"p")
    os.link(p, root / "bin" / "ping2")
    os.chown(p, 5, 1005)
    # a v2 file capability (cap_net_raw): chown drops it, shift_tree must put it back
    cap = bytes.fromhex("00000002") + (1 << 13).to_bytes(4, "little") + bytes(12)
    os.setxattr(p, "security.capability", cap)
    os.symlink("/etc/shadow", root / "link")  # never followed
    os.lchown(root / "link", 3, 3)
    n = shift_tree(str(root), MAP)
    assert n == 5  # root, bin, su, ping (once for both names), link
    st = f.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (231072, 231072, 0o4755)
    st = p.stat()
    assert (st.st_uid, st.st_gid) == (231077, 400005)
    assert os.getxattr(p, "security.capability") == cap
    assert os.lstat(root / "link").st_uid == 231075
    assert Path("/etc/shadow").stat().st_uid == 0
    # and back
    shift_tree(str(root), MAP, to_host=False)
    assert (p.stat().st_uid, p.stat().st_gid) == (5, 1005) and f.stat().st_mode & 0o4000


def test_shift_tree_refuses_unmapped_ids(tmp_path):
    (tmp_path / "f").write_text("x")
    os.chown(tmp_path / "f", 70000, 0)
    with pytest.raises(InvalidParameter, match="uid 70000 is not mapped"):
        shift_tree(str(tmp_path), MAP)


def test_shift_tree_keeps_ids_already_on_the_host_side(tmp_path):
    """A tar made from the daemon's own view of a remapped image (the builder recording an
    existing directory) carries host ids: kept, not shifted twice or refused."""
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    os.chown(tmp_path / "d", 231072 + 1234, 400003)
    os.chown(tmp_path / "f", 1234, 5)
    os.chown(tmp_path, 0, 0)
    shift_tree(str(tmp_path), MAP)
    assert ((tmp_path / "d").stat().st_uid, (tmp_path / "d").stat().st_gid) == (232306, 400003)
    assert ((tmp_path / "f").stat().st_uid, (tmp_path / "f").stat().st_gid) == (232306, 231077)


def test_chown_to_root_only_touches_host_root_owned(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("")
    b.write_text("")
    os.chown(b, 12, 12)
    chown_to_root([str(a), str(b), str(tmp_path / "missing")], MAP)
    assert (a.stat().st_uid, a.stat().st_gid) == (231072, 231072)
    assert b.stat().st_uid == 12


def test_resolve_reads_subid_files(tmp_path, monkeypatch):
    sub_u, sub_g = tmp_path / "subuid", tmp_path / "subgid"
    name = "nobody"
    sub_u.write_text(f"{name}:500000:1000\n{name}:700000:10\n")
    sub_g.write_text("65534:600000:1000\n")  # by gid number
    monkeypatch.setattr(remap, "SUBUID", str(sub_u))
    monkeypatch.setattr(remap, "SUBGID", str(sub_g))
    m, who = remap.resolve("nobody:nogroup")
    assert who == "nobody:nogroup"
    assert m.uids == (IdRange(0, 500000, 1000), IdRange(1000, 700000, 10))
    assert m.gids == (IdRange(0, 600000, 1000),)
    with pytest.raises(InvalidParameter, match="Error during gid lookup for nobody"):
        remap.resolve("nobody")  # a user alone means its same-named group
    sub_g.write_text("other:1:2\n")
    with pytest.raises(InvalidParameter, match="no subordinate gid ranges"):
        remap.resolve("nobody:nogroup")
    with pytest.raises(InvalidParameter, match="no such user"):
        remap.resolve("no-such-user-here")
    with pytest.raises(InvalidParameter, match="cannot remap root"):
        remap.resolve("root")


@pytest.fixture
def open_tmp():
    """A temp dir under /tmp whose parents the remapped root can pass (pytest's are 0700)."""
    import shutil
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="userns-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_configure_lays_out_per_mapping_root(open_tmp, monkeypatch):
    from sampan.daemon.config import DaemonConfig
    tmp_path = open_tmp
    sub = tmp_path / "sub"
    sub.write_text("nobody:500000:65536\n65534:500000:65536\n")
    monkeypatch.setattr(remap, "SUBUID", str(sub))
    monkeypatch.setattr(remap, "SUBGID", str(sub))
    os.chmod(tmp_path, 0o711)
    cfg = DaemonConfig(data_root=tmp_path / "data")
    try:
        m = remap.configure(cfg, "nobody:nogroup")
        assert cfg.data_root == tmp_path / "data" / "500000.500000"
        st = cfg.data_root.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 500000, 0o710)
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o701
        assert remap.active() == m
    finally:
        remap.set_active(None)
    os.chmod(tmp_path, 0o700)
    with pytest.raises(InvalidParameter, match="restricts access to the remapped root"):
        remap.configure(DaemonConfig(data_root=tmp_path / "data2"), "nobody:nogroup")
    remap.set_active(None)


def test_ensure_ranges_appends_a_free_range_once(tmp_path, monkeypatch):
    """What dockerd does for the `dockremap` it creates: a 65536-id range that overlaps no
    existing one, appended (file replaced atomically, mode kept), and nothing the second time."""
    sub_u, sub_g = tmp_path / "subuid", tmp_path / "subgid"
    sub_u.write_text("alice:100000:65536\n")
    sub_g.write_text("alice:100000:65536\nbob:165536:1000")  # no final newline
    os.chmod(sub_g, 0o640)
    monkeypatch.setattr(remap, "SUBUID", str(sub_u))
    monkeypatch.setattr(remap, "SUBGID", str(sub_g))
    remap._ensure_ranges("dockremap", 999)
    assert sub_u.read_text() == "alice:100000:65536\ndockremap:166536:65536\n"
    assert sub_g.read_text() == "alice:100000:65536\nbob:165536:1000\ndockremap:166536:65536\n"
    assert stat.S_IMODE(sub_g.stat().st_mode) == 0o640
    remap._ensure_ranges("dockremap", 999)
    assert sub_u.read_text().count("dockremap") == 1
