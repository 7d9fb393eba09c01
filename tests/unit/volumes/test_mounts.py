"""Parsing of -v / --mount / Config.Volumes / --volumes-from into mount points (pure logic)."""

import pytest

from sampan.errors import InvalidParameter
from sampan.volumes.mounts import MountPoint, collect, parse_bind, parse_mount, parse_volumes_from


def test_named_volume_bind_string():
    mp = parse_bind("data:/d")
    assert (mp.Type, mp.Name, mp.Destination, mp.RW, mp.Mode, mp.CopyData) == ("volume", "data", "/d", True, "z", True)
    assert mp.public() == {"Type": "volume", "Name": "data", "Source": "", "Destination": "/d",
                           "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}


def test_host_bind_with_modes():
    mp = parse_bind("/srv/x:/w:ro,rshared,Z")
    assert (mp.Type, mp.Source, mp.Destination, mp.RW, mp.Propagation, mp.Mode) == \
        ("bind", "/srv/x", "/w", False, "rshared", "ro,rshared,Z")
    assert parse_bind("/a:/b").Propagation == "rprivate"
    assert parse_bind("/a:/b").CreateSource is True
    assert "Name" not in parse_bind("/a:/b").public()


def test_nocopy_and_anonymous():
    assert parse_bind("vv:/d:nocopy").CopyData is False
    anon = parse_bind("/only")
    assert anon.Type == "volume" and anon.Anonymous and anon.Name == ""


@pytest.mark.parametrize("raw", ["", "a:b:c:d", "/x:rw", "vv:/d:bogus", "vv:/d:ro,rw",
                                 "vv:relative", "v:/d", "/h:/", "bad name!:/d", "/h:/d:nocopy",
                                 "vv:/d:z,Z"])
def test_bad_bind_strings(raw):
    with pytest.raises(InvalidParameter):
        parse_bind(raw)


def test_mount_objects():
    b = parse_mount({"Type": "bind", "Source": "/tmp", "Target": "/w", "ReadOnly": True,
                     "BindOptions": {"Propagation": "rslave"}})
    assert (b.Type, b.Source, b.RW, b.Propagation, b.CreateSource) == ("bind", "/tmp", False, "rslave", False)
    v = parse_mount({"Type": "volume", "Source": "data", "Target": "/d",
                     "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"},
                                       "DriverConfig": {"Options": {"type": "tmpfs"}}}})
    assert v.CopyData is False and v.VolumeOptions == {"Labels": {"a": "b"}, "Options": {"type": "tmpfs"}}
    assert v.Mode == ""
    t = parse_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}})
    assert t.TmpfsOptions == {"SizeBytes": 1 << 20, "Mode": 0o1777}
    assert t.public() == {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "",
                          "RW": True, "Propagation": ""}


@pytest.mark.parametrize("m, msg", [
    ({"Type": "bind", "Target": "/w"}, "field Source must not be empty"),
    ({"Type": "bind", "Source": "rel", "Target": "/w"}, "must be absolute"),
    ({"Type": "bind", "Source": "/a", "Target": "/w", "VolumeOptions": {"NoCopy": True}}, "VolumeOptions"),
    ({"Type": "volume", "Source": "vv", "Target": ""}, "Target must not be empty"),
    ({"Type": "tmpfs", "Source": "x", "Target": "/t"}, "Source must not be specified"),
    ({"Type": "npipe", "Target": "/t"}, "mount type unknown"),
    ({"Type": "volume", "Target": "/"}, "can't be '/'"),
    ("notadict", "expected an object"),
])
def test_bad_mount_objects(m, msg):
    with pytest.raises(InvalidParameter, match=msg):
        parse_mount(m)


def test_collect_precedence_and_anonymous():
    other = [MountPoint(Type="volume", Destination="/shared", Name="s", Source="/x", Anonymous=True),
             MountPoint(Type="volume", Destination="/d", Name="old", Source="/y")]
    mps = collect({"Volumes": {"/img": {}, "/d": {}}},
                  {"Binds": ["data:/d"], "Mounts": [{"Type": "tmpfs", "Target": "/t"}]},
                  [other], ["ro"])
    by = {m.Destination: m for m in mps}
    assert by["/d"].Name == "data"                       # -v beats --volumes-from and VOLUME
    assert by["/shared"].RW is False and by["/shared"].Anonymous is False  # :ro, not ours to remove
    assert by["/img"].Anonymous and by["/img"].Type == "volume"
    assert by["/t"].Type == "tmpfs"
    assert [m.Destination for m in mps] == sorted(by, key=lambda d: (d.count("/"), d))


def test_collect_duplicates():
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /d"):
        collect({}, {"Binds": ["aa:/d", "/h:/d"]})
    with pytest.raises(InvalidParameter, match="Duplicate mount point"):
        collect({}, {"Binds": ["aa:/d"], "Mounts": [{"Type": "volume", "Target": "/d/"}]})
    # a --tmpfs path is not also an anonymous volume
    assert collect({"Volumes": {"/t": {}}}, {"Tmpfs": {"/t": ""}}) == []


def test_volumes_from_spec():
    assert parse_volumes_from("a") == ("a", "")
    assert parse_volumes_from("a:ro") == ("a", "ro")
    with pytest.raises(InvalidParameter):
        parse_volumes_from("a:xx")


def test_roundtrip_dict():
    mp = parse_bind("vv:/d:ro")
    assert MountPoint.from_dict(mp.to_dict() | {"Unknown": 1}) == mp
