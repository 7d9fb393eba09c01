"""User/group resolution with runc's rules, and the other pure runtime helpers."""

from __future__ import annotations

import json
import os

import pytest

from sampan.errors import InvalidParameter
from sampan.linux import caps
from sampan.runtime import oci
from sampan.runtime.mounts import _shorten_overlay, parse_options
from sampan.runtime.rootfs import secure_join
from sampan.runtime.spec import build_spec
from sampan.runtime.users import resolve
from sampan.linux import syscalls as sc

PASSWD = """root:x:0:0:root:/root:/bin/sh
# comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bad:x:notanumber:1::/:
app:x:1000:1000:App:/home/app:/bin/sh
"""
GROUP = """root:x:0:root
wheel:x:10:root,app
staff:x:50:app
app:x:1000:
"""


@pytest.mark.parametrize("spec,uid,gid,sgids,home", [
    ("", 0, 0, (0, 10), "/root"),
    ("root", 0, 0, (0, 10), "/root"),
    ("app", 1000, 1000, (10, 50), "/home/app"),
    ("1000", 1000, 1000, (10, 50), "/home/app"),
    ("app:staff", 1000, 50, (), "/home/app"),
    ("app:0", 1000, 0, (), "/home/app"),
    ("4242", 4242, 0, (), "/"),            # numeric, not in passwd: gid 0, home /
    ("4242:4343", 4242, 4343, (), "/"),
    ("daemon:app", 1, 1000, (), "/usr/sbin"),
])
def test_resolve(spec, uid, gid, sgids, home):
    u = resolve(spec, PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids, u.home) == (uid, gid, sgids, home)


def test_resolve_errors():
    with pytest.raises(InvalidParameter,
                       match="^unable to find user nosuch: no matching entries in passwd file$"):
        resolve("nosuch", PASSWD, GROUP)
    with pytest.raises(InvalidParameter, match="unable to find group nogrp"):
        resolve("app:nogrp", PASSWD, GROUP)
    with pytest.raises(InvalidParameter, match="range"):
        resolve("99999999999", PASSWD, GROUP)
    with pytest.raises(InvalidParameter):
        resolve("app", PASSWD, GROUP, ["nosuchgroup"])


def test_missing_files():
    assert resolve("", None, None).uid == 0
    assert resolve("7:8", None, None).gid == 8
    with pytest.raises(InvalidParameter):
        resolve("app", None, None)


def test_group_add():
    u = resolve("app", PASSWD, GROUP, ["staff", "777", "wheel"])
    assert u.sgids == (10, 50, 777)


# --- capabilities ---------------------------------------------------------------------------

def test_cap_names():
    assert caps.normalize("net_admin") == "CAP_NET_ADMIN"
    assert caps.normalize("CAP_KILL") == "CAP_KILL"
    assert caps.normalize("all") == "ALL"
    with pytest.raises(InvalidParameter):
        caps.normalize("nope")
    assert caps.CAPABILITIES["CAP_SYS_ADMIN"] == 21
    assert caps.all_caps()[0] == "CAP_CHOWN"


# --- mount options --------------------------------------------------------------------------

def test_parse_options():
    po = parse_options(["rbind", "ro", "nosuid", "rprivate", "size=10m", "mode=755"])
    assert po.flags == sc.MS_BIND | sc.MS_REC | sc.MS_RDONLY | sc.MS_NOSUID
    assert po.data == "size=10m,mode=755"
    assert po.propagation == (sc.MS_PRIVATE | sc.MS_REC,)
    assert parse_options(["ro", "rw"]).flags == 0


def test_shorten_overlay():
    data = "lowerdir=/a/l/1:/a/l/2,upperdir=/a/u,workdir=/a/w,index=off"
    short, base = _shorten_overlay(data)
    assert base == "/a"
    assert short == "lowerdir=l/1:l/2,upperdir=u,workdir=w,index=off"


# --- secure_join ----------------------------------------------------------------------------

def test_secure_join_never_escapes(tmp_path):
    root = str(tmp_path / "root")
    os.makedirs(root + "/etc")
    os.symlink("/etc", root + "/abs")              # absolute: re-rooted
    os.symlink("../../../../..", root + "/up")     # climbs: clamped at root
    os.symlink("loop2", root + "/loop1")
    os.symlink("loop1", root + "/loop2")
    os.symlink("etc/../../x", root + "/rel")
    assert secure_join(root, "/abs/passwd") == root + "/etc/passwd"
    assert secure_join(root, "/up/etc/shadow") == root + "/etc/shadow"
    assert secure_join(root, "../../../etc") == root + "/etc"
    assert secure_join(root, "/rel") == root + "/x"
    assert secure_join(root, "/") == root
    assert secure_join(root, "/new/dir/../f") == root + "/new/f"
    with pytest.raises(OSError):
        secure_join(root, "/loop1")


# --- OCI bundles ----------------------------------------------------------------------------

def _rootfs(tmp_path, passwd=PASSWD, group=GROUP):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(passwd)
    (root / "etc/group").write_text(group)
    return str(root)


def _spec(root, user="", cwd="/"):
    return build_spec(config={"Cmd": ["x"], "User": user, "WorkingDir": cwd}, host_config={},
                      image_config={}, rootfs=root, hostname="h", etc_files={},
                      container_id="id")


def test_write_bundle_resolves_user(tmp_path):
    root = _rootfs(tmp_path)
    path = oci.write_bundle(str(tmp_path / "b"), _spec(root, "app", "/srv/data"))
    s = json.loads(open(path).read())
    assert s["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10, 50]}
    assert "HOME=/home/app" in s["process"]["env"]
    assert "effective" not in s["process"]["capabilities"]
    assert os.path.isdir(root + "/srv/data")
    assert not [f for f in os.listdir(tmp_path / "b") if f != "config.json"]


def test_write_bundle_does_not_read_host_passwd_through_symlink(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    # /etc/passwd -> a host file outside the rootfs that does have the user.
    host = tmp_path / "hostpasswd"
    host.write_text("evil:x:0:0::/:/bin/sh\n")
    os.symlink(str(host), root / "etc/passwd")
    with pytest.raises(InvalidParameter, match="unable to find user evil"):
        oci.write_bundle(str(tmp_path / "b"), _spec(str(root), "evil"))
    assert not os.path.exists(tmp_path / "b" / "config.json")


def test_write_bundle_ignores_fifo_passwd(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc/passwd")
    path = oci.write_bundle(str(tmp_path / "b"), _spec(str(root), "5"))
    assert json.loads(open(path).read())["process"]["user"]["uid"] == 5


def test_runtime_argv(tmp_path):
    with pytest.raises(InvalidParameter):
        oci.runtime_argv("runc", "/b", "../evil")
    with pytest.raises(InvalidParameter):
        oci.runtime_argv("notaruntime", "/b", "id")
    fake = tmp_path / "myrunc"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert oci.runtime_argv(str(fake), "/b", "abc", state_root="/s") == [
        str(fake), "--root", "/s", "run", "--bundle", "/b", "abc"]
