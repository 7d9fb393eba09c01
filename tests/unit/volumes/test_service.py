"""VolumeService on a temp data root: records, directories, filters, in-use rules, prune."""

import os

import pytest

from sampan.errors import Conflict, InvalidParameter, NotFound
from sampan.metadata import Database
from sampan.volumes import MountPoint, VolumeService
from sampan.volumes.mounts import ANONYMOUS_LABEL


@pytest.fixture
def svc(tmp_path):
    users: list = []
    s = VolumeService(tmp_path, Database(tmp_path / "db.sqlite"), lambda: list(users))
    s.users_list = users
    return s


def test_create_inspect_and_idempotent(svc, tmp_path):
    v = svc.create("data", labels={"k": "v"})
    assert v["Name"] == "data" and v["Driver"] == "local" and v["Scope"] == "local"
    assert v["Mountpoint"] == str(tmp_path / "volumes" / "data" / "_data")
    assert os.path.isdir(v["Mountpoint"]) and v["Labels"] == {"k": "v"} and v["Options"] is None
    assert v["CreatedAt"].endswith("Z")
    open(os.path.join(v["Mountpoint"], "f"), "w").write("keep")
    again = svc.create("data")  # same name: the existing volume, data kept
    assert again["Labels"] == {"k": "v"}
    assert open(os.path.join(v["Mountpoint"], "f")).read() == "keep"
    assert svc.inspect("data") == v


def test_generated_name_and_bad_input(svc):
    v = svc.create()
    assert len(v["Name"]) == 64
    with pytest.raises(InvalidParameter, match="invalid characters"):
        svc.create("../etc")
    with pytest.raises(InvalidParameter, match="too short"):
        svc.create("a")
    with pytest.raises(NotFound, match="plugin"):
        svc.create("x1", driver="nfs-magic")
    with pytest.raises(InvalidParameter, match="invalid option key"):
        svc.create("x2", opts={"bogus": "1"})
    with pytest.raises(InvalidParameter):
        svc.create("x3", opts={"type": "none", "device": "/tmp"})  # bind needs o=bind
    with pytest.raises(NotFound, match="no such volume"):
        svc.inspect("nope")
    with pytest.raises(NotFound, match="no such volume"):
        svc.inspect("../../etc")
    assert not os.path.exists(os.path.join(svc.root, "x1"))


def test_remove_in_use_and_force(svc):
    svc.create("busy")
    svc.users_list.append(("c" * 64, [{"Type": "volume", "Name": "busy"}]))
    with pytest.raises(Conflict, match=r"remove busy: volume is in use - \[c{64}\]"):
        svc.remove("busy")
    with pytest.raises(Conflict):
        svc.remove("busy", force=True)  # Docker: force does not remove a volume in use
    svc.users_list.clear()
    svc.remove("busy")
    assert not os.path.exists(os.path.join(svc.root, "busy"))
    with pytest.raises(NotFound):
        svc.remove("busy")
    svc.remove("busy", force=True)  # missing + force: fine


def test_list_filters(svc):
    svc.create("alpha", labels={"env": "prod"})
    svc.create("beta")
    svc.users_list.append(("c1", [{"Type": "volume", "Name": "alpha"}]))
    names = lambda f: [v["Name"] for v in svc.list(f)["Volumes"]]  # noqa: E731
    assert names({}) == ["alpha", "beta"]
    assert names({"dangling": ["true"]}) == ["beta"]
    assert names({"dangling": ["false"]}) == ["alpha"]
    assert names({"name": ["lph"]}) == ["alpha"]
    assert names({"label": ["env=prod"]}) == ["alpha"]
    assert names({"label": ["env"]}) == ["alpha"]
    assert names({"label": ["env=dev"]}) == []
    with pytest.raises(InvalidParameter):
        svc.list({"bogus": ["1"]})
    with pytest.raises(InvalidParameter):
        svc.list({"dangling": ["maybe"]})


def test_prune_anonymous_only_unless_all(svc):
    svc.create("named")
    anon = svc.create_anonymous()
    used = svc.create_anonymous()
    assert anon.labels == {ANONYMOUS_LABEL: ""}
    open(os.path.join(svc.mountpoint(anon.name), "f"), "wb").write(b"x" * 100)
    svc.users_list.append(("c1", [{"Type": "volume", "Name": used.name}]))
    r = svc.prune({})
    assert r == {"VolumesDeleted": [anon.name], "SpaceReclaimed": 100}
    r = svc.prune({"all": ["true"]})
    assert r["VolumesDeleted"] == ["named"]
    assert [v.name for v in svc.all()] == [used.name]


def test_provision_and_discard(svc):
    mps = [MountPoint(Type="volume", Destination="/a", Name="named1"),
           MountPoint(Type="volume", Destination="/b", Anonymous=True),
           MountPoint(Type="bind", Destination="/c", Source="/srv")]
    svc.create("named1")
    made = svc.provision(mps)
    assert len(made) == 1 and made[0] == mps[1].Name and len(mps[1].Name) == 64
    assert mps[0].Source == svc.mountpoint("named1")
    assert mps[2].Source == "/srv"
    svc.discard(made)
    assert [v.name for v in svc.all()] == ["named1"]


def test_remove_anonymous_keeps_named_and_shared(svc):
    a = svc.create_anonymous()
    b = svc.create_anonymous()
    svc.create("keep")
    svc.users_list.append(("other", [{"Type": "volume", "Name": b.name}]))
    svc.remove_anonymous([a.name, b.name, "keep", "missing"])
    assert sorted(v.name for v in svc.all()) == sorted([b.name, "keep"])


def test_leftovers_cleaned_at_start(tmp_path):
    db = Database(tmp_path / "db.sqlite")
    s = VolumeService(tmp_path, db)
    os.makedirs(s.root / ".tmp-half" / "_data")
    VolumeService(tmp_path, db)
    assert not (s.root / ".tmp-half").exists()


def test_usage_data(svc):
    svc.create("sized")
    open(os.path.join(svc.mountpoint("sized"), "f"), "wb").write(b"y" * 10)
    svc.users_list.append(("c1", [{"Type": "volume", "Name": "sized"}]))
    (u,) = svc.usage_data()
    assert u["UsageData"] == {"Size": 10, "RefCount": 1}


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_bind_volume_removal_never_deletes_host_data(svc, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "precious").write_text("keep")
    svc.create("bound", opts={"type": "none", "o": "bind", "device": str(host)})
    svc.ensure_mounted("bound")
    svc.ensure_mounted("bound")  # idempotent: a same-filesystem bind is seen as mounted
    from sampan.volumes.service import mounts_under
    assert len(mounts_under(svc.mountpoint("bound"))) == 1
    assert os.listdir(svc.mountpoint("bound")) == ["precious"]
    svc.remove("bound")
    assert (host / "precious").read_text() == "keep"
    assert mounts_under(str(svc.root)) == []
