"""Pure parts of cp/export/diff/commit: path rules, Go file modes, the tar writer, the
overlay change walk and volume copy-up's tree copy (on temp dirs)."""

import io
import os
import stat
import tarfile

import pytest

from sampan.containerfs.archive import base_name, container_abs, go_file_mode
from sampan.containerfs.changes import ADD, DELETE, MODIFY, overlay_changes, vfs_changes, write_changes_tar
from sampan.containerfs.tarstream import TarOut, write_tree
from sampan.volumes.copyup import copy_tree, is_empty_dir

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts need mknod (root)")


def test_container_abs_keeps_trailing_forms():
    assert container_abs("etc/hostname") == "/etc/hostname"
    assert container_abs("/etc/") == "/etc/"
    assert container_abs("/etc/.") == "/etc/."
    assert container_abs("/a/../../b") == "/b"
    assert container_abs("/") == "/"
    assert base_name("/etc/.") == "." and base_name("/etc/") == "etc" and base_name("/") == "."
    for bad in ("", "a\x00b"):
        with pytest.raises(Exception):
            container_abs(bad)


def test_go_file_mode():
    assert go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_file_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755
    assert go_file_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666


def _tar_of(tmp_path, src, name, root_entry=True):
    out = tmp_path / "out.tar"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    t = TarOut(fd)
    write_tree(t, str(src), name, root_entry=root_entry)
    t.close()
    os.close(fd)
    return tarfile.open(out)


def test_write_tree_rebases_and_keeps_links(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"A" * 1000)
    os.link(src / "a.txt", src / "sub" / "hard")
    os.symlink("/etc/passwd", src / "link")
    tf = _tar_of(tmp_path, src, "copy")
    names = tf.getnames()
    assert names[0] == "copy" and "copy/a.txt" in names and "copy/link" in names
    assert tf.getmember("copy/link").issym() and tf.getmember("copy/link").linkname == "/etc/passwd"
    hard = tf.getmember("copy/sub/hard")
    assert hard.islnk() and hard.linkname == "copy/a.txt"
    assert tf.extractfile("copy/a.txt").read() == b"A" * 1000
    # a single file is one entry under the requested name
    tf = _tar_of(tmp_path, src / "a.txt", "renamed")
    assert tf.getnames() == ["renamed"]
    # export form: children only, relative names
    tf = _tar_of(tmp_path, src, "", root_entry=False)
    assert sorted(tf.getnames()) == ["a.txt", "link", "sub", "sub/hard"]


def test_copy_tree(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    os.chmod(src, 0o750)
    (src / "d" / "f").write_text("hello")
    os.chmod(src / "d" / "f", 0o640)
    os.symlink("../../../../etc/shadow", src / "evil")
    os.link(src / "d" / "f", src / "h")
    dst.mkdir()
    assert is_empty_dir(str(dst))
    copy_tree(str(src), str(dst))
    assert (dst / "d" / "f").read_text() == "hello"
    assert stat.S_IMODE(os.stat(dst / "d" / "f").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o750       # copyOwnership
    assert os.readlink(dst / "evil") == "../../../../etc/shadow"  # copied as a link, not followed
    assert os.stat(dst / "h").st_ino == os.stat(dst / "d" / "f").st_ino
    assert not is_empty_dir(str(dst))


@root_only
def test_overlay_changes(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("etc", "usr/lib", "var"):
        (lower / d).mkdir(parents=True)
    (lower / "etc" / "hostname").write_text("x")
    (lower / "etc" / "gone").write_text("x")
    (lower / "usr" / "lib" / "deep").write_text("x")
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hostname").write_text("changed")
    os.mknod(upper / "etc" / "gone", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "new").mkdir()
    (upper / "new" / "file").write_text("n")
    # a copied-up directory with identical metadata is not itself a change
    (upper / "usr" / "lib").mkdir(parents=True)
    for rel in ("usr", "usr/lib"):
        st = os.stat(lower / rel)
        os.utime(upper / rel, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.chmod(upper / rel, stat.S_IMODE(st.st_mode))
    (upper / "usr" / "lib" / "deep").write_text("y")
    st = os.stat(lower / "usr" / "lib")
    os.utime(upper / "usr" / "lib", ns=(st.st_atime_ns, st.st_mtime_ns))
    got = [(c["Kind"], c["Path"]) for c in overlay_changes(str(upper), [str(lower)])]
    assert got == [(MODIFY, "/etc"), (DELETE, "/etc/gone"), (MODIFY, "/etc/hostname"),
                   (ADD, "/new"), (ADD, "/new/file"), (MODIFY, "/usr/lib/deep")]


def test_overlay_changes_never_follow_lower_symlinks(tmp_path):
    # a lower layer's `lib -> /usr/lib` must not make us look at the host's /usr/lib
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    os.symlink("/usr/lib", lower / "lib")
    host_file = sorted(os.listdir("/usr/lib"))[0]
    (upper / "lib").mkdir(parents=True)
    (upper / "lib" / host_file).write_text("x")
    kinds = {c["Path"]: c["Kind"] for c in overlay_changes(str(upper), [str(lower)])}
    assert kinds[f"/lib/{host_file}"] == ADD


def test_vfs_changes_and_tar(tmp_path):
    lower, rootfs = tmp_path / "lower", tmp_path / "rootfs"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "a").write_text("a")
    (lower / "etc" / "b").write_text("b")
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "a").write_text("aa")
    (rootfs / "etc" / "c").write_text("c")
    got = [(c["Kind"], c["Path"]) for c in vfs_changes(str(rootfs), [str(lower)])]
    assert (MODIFY, "/etc/a") in got and (ADD, "/etc/c") in got and (DELETE, "/etc/b") in got
    out = tmp_path / "layer.tar"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    write_changes_tar(str(rootfs), vfs_changes(str(rootfs), [str(lower)]), fd)
    os.close(fd)
    names = tarfile.open(out).getnames()
    assert "etc/.wh.b" in names and "etc/c" in names and "etc/a" in names
