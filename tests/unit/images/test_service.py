"""ImageService: import, resolve, tag, list/inspect/history, rmi rules, prune, layer GC."""

import gzip
import hashlib
import json
import os

import pytest

from sampan.errors import Conflict, InvalidParameter, NotFound
from sampan.images.changes import apply_changes


def _files(svc):
    root = svc.config.data_root
    return (sorted(os.listdir(root / "layers")), sorted(os.listdir(root / "content" / "sha256")))


def test_import_creates_image_with_docker_config(svc, rootfs):
    changes = ['CMD ["sh", "-c", "echo hi"]', "ENV A=1 B=\"two words\"", "EXPOSE 80 53/udp",
               "LABEL x=y", "WORKDIR /tmp", "USER nobody", "VOLUME /data", "STOPSIGNAL SIGINT"]
    image_id = svc.import_tar(rootfs, "busybox", None, changes, "my msg", "linux/amd64")
    raw = svc.content.read_bytes(image_id)
    assert image_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    rec = svc.resolve("busybox")
    assert rec.id == image_id and rec.repo_tags == ["busybox:latest"]
    cfg = rec.config
    assert cfg["architecture"] == "amd64" and cfg["os"] == "linux"
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": [
        "sha256:" + hashlib.sha256(rootfs.read_bytes()).hexdigest()]}
    assert cfg["history"][0]["comment"] == "my msg" and cfg["comment"] == "my msg"
    c = rec.container_config
    assert c["Cmd"] == ["sh", "-c", "echo hi"] and c["Env"] == ["A=1", "B=two words"]
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}} and c["Labels"] == {"x": "y"}
    assert (c["WorkingDir"], c["User"], c["StopSignal"]) == ("/tmp", "nobody", "SIGINT")
    assert c["Volumes"] == {"/data": {}}
    assert len(rec.layer_dirs) == 1
    assert (rec.layer_dirs[0] / "bin/busybox").read_bytes() == open("/bin/busybox", "rb").read()
    assert os.readlink(rec.layer_dirs[0] / "bin/sh") == "busybox"
    # the uncompressed layer tar is kept byte-exact as a blob
    assert svc.content.read_bytes(cfg["rootfs"]["diff_ids"][0]) == rootfs.read_bytes()


def test_import_compressed_and_dedup(svc, rootfs, put):
    a = svc.import_tar(rootfs, "a", "1", [], "")
    b = svc.import_tar(put(gzip.compress(rootfs.read_bytes())), "b", "2", [], "")
    ra, rb = svc.resolve(a), svc.resolve(b)
    assert ra.chain_ids == rb.chain_ids and ra.layer_dirs == rb.layer_dirs
    assert len(_files(svc)[0]) == 1
    assert svc.count() == 2


def test_import_refuses_bad_input_and_leaves_nothing(svc, put, rootfs):
    with pytest.raises(InvalidParameter):
        svc.import_tar(put(b"this is no tar" * 100), "x", None, [], "")
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        svc.import_tar(rootfs, "Bad:Name:x", None, [], "")
    with pytest.raises(InvalidParameter, match="not a valid change command"):
        svc.import_tar(rootfs, "x", None, ["RUN rm -rf /"], "")
    with pytest.raises(InvalidParameter):
        svc.import_tar(rootfs, "x", None, [], "", "windows/amd64")
    assert svc.count() == 0
    assert _files(svc) == ([], [])
    assert os.listdir(svc.config.tmp_dir) == []


def test_resolve_by_id_prefix_and_not_found(svc, rootfs):
    image_id = svc.import_tar(rootfs, "busybox", "1.0", [], "")
    for ref in (image_id, image_id[7:], image_id[7:19], "sha256:" + image_id[7:15], "busybox:1.0",
                "docker.io/library/busybox:1.0"):
        assert svc.lookup_id(ref) == image_id
    with pytest.raises(NotFound, match="No such image: busybox:latest"):
        svc.resolve("busybox")
    with pytest.raises(NotFound, match="No such image: other/x:latest"):
        svc.inspect("other/x")
    with pytest.raises(NotFound, match="No such image: sha256:" + "0" * 64):
        svc.resolve("sha256:" + "0" * 64)
    with pytest.raises(InvalidParameter):
        svc.resolve("UPPER:case:bad")


def test_tag_list_filters(svc, rootfs, put, h):
    a = svc.import_tar(rootfs, "busybox", None, ["LABEL team=a"], "")
    b = svc.import_tar(put(h.make_rootfs_tar({"etc/x": b"x"})), "localhost:5000/app/web", "v1",
                       ["LABEL team=b"], "")
    assert svc.tag("busybox", "mine", "t") == "mine:t"
    assert svc.tag(a[7:19], "localhost:5000/app/web", None) == "localhost:5000/app/web:latest"
    imgs = {i["Id"]: i for i in svc.list_images()}
    assert sorted(imgs[a]["RepoTags"]) == ["busybox:latest", "localhost:5000/app/web:latest", "mine:t"]
    assert imgs[b]["RepoTags"] == ["localhost:5000/app/web:v1"]
    assert imgs[a]["Size"] > 1_000_000 and imgs[a]["SharedSize"] == -1 and imgs[a]["Containers"] == -1
    assert isinstance(imgs[a]["Created"], int) and imgs[a]["Labels"] == {"team": "a"}

    def ids(**f):
        return {i["Id"] for i in svc.list_images(filters=f)}

    assert ids(reference=["busybox"]) == {a}
    assert ids(reference=["localhost:5000/app/*"]) == {a, b}
    assert ids(reference=["*:v1"]) == {b}
    only = svc.list_images(filters={"reference": ["mine*"]})
    assert only[0]["RepoTags"] == ["mine:t"]
    assert ids(label=["team=b"]) == {b} and ids(label=["team"]) == {a, b}
    assert ids(dangling=["true"]) == set() and ids(dangling=["false"]) == {a, b}
    with pytest.raises(InvalidParameter, match="invalid filter 'bogus'"):
        svc.list_images(filters={"bogus": ["1"]})
    with pytest.raises(InvalidParameter):
        svc.list_images(filters={"dangling": ["maybe"]})
    with pytest.raises(InvalidParameter):
        svc.tag("busybox", "x@sha256:" + "1" * 64)
    with pytest.raises(NotFound):
        svc.tag("nothere", "x")
    # moving the only tag away leaves a dangling image
    svc.tag(b, "busybox")
    svc.tag(b, "mine", "t")
    svc.tag(b, "localhost:5000/app/web")
    assert ids(dangling=["true"]) == {a}
    assert [i for i in svc.list_images() if i["Id"] == a][0]["RepoTags"] == []


def test_before_since(svc, rootfs, put, h):
    import time
    a = svc.import_tar(rootfs, "a", None, [], "")
    time.sleep(0.01)
    b = svc.import_tar(put(h.make_rootfs_tar({"f": b"1"})), "b", None, [], "")
    assert [i["Id"] for i in svc.list_images(filters={"before": ["b"]})] == [a]
    assert [i["Id"] for i in svc.list_images(filters={"since": ["a"]})] == [b]
    assert [i["Id"] for i in svc.list_images()] == [b, a]  # newest first


def test_inspect_and_history_shapes(svc, rootfs):
    image_id = svc.import_tar(rootfs, "busybox", "x", ['ENTRYPOINT ["/bin/sh"]'], "")
    d = svc.inspect("busybox:x")
    for key in ("Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Config",
                "Architecture", "Os", "Size", "GraphDriver", "RootFS", "Metadata"):
        assert key in d
    assert d["Id"] == image_id and d["Comment"] == "Imported from -"
    assert d["Created"].endswith("Z") and "T" in d["Created"]
    assert d["Config"]["Entrypoint"] == ["/bin/sh"] and d["Config"]["Env"] is None
    assert d["GraphDriver"]["Name"] == "overlay2"
    assert os.path.isdir(d["GraphDriver"]["Data"]["UpperDir"])
    assert d["RootFS"]["Type"] == "layers" and len(d["RootFS"]["Layers"]) == 1
    hist = svc.history("busybox:x")
    assert len(hist) == 1
    assert hist[0]["Id"] == image_id and hist[0]["Tags"] == ["busybox:x"]
    assert hist[0]["Size"] == d["Size"] and hist[0]["Comment"] == "Imported from -"


def test_rmi_rules(svc, rootfs):
    image_id = svc.import_tar(rootfs, "busybox", None, [], "")
    svc.tag(image_id, "other", "t")
    # by name with another tag left: untag only
    assert svc.remove("other:t") == [{"Untagged": "other:t"}]
    svc.tag(image_id, "other", "t")
    # by ID with several tags: must be forced
    with pytest.raises(Conflict, match=r"unable to delete [0-9a-f]{12} \(must be forced\) - image is "
                                       "referenced in multiple repositories"):
        svc.remove(image_id[7:19])
    layers, blobs = _files(svc)
    assert layers and blobs
    out = svc.remove(image_id, force=True)
    assert {"Untagged": "busybox:latest"} in out and {"Untagged": "other:t"} in out
    assert {"Deleted": image_id} in out
    assert out[-1]["Deleted"].startswith("sha256:")  # the layer, by chain ID
    assert _files(svc) == ([], [])
    assert svc.count() == 0
    with pytest.raises(NotFound):
        svc.remove("busybox")


def test_rmi_last_tag_deletes(svc, rootfs):
    image_id = svc.import_tar(rootfs, "busybox", None, [], "")
    out = svc.remove("busybox")
    assert out[:2] == [{"Untagged": "busybox:latest"}, {"Deleted": image_id}]
    assert _files(svc) == ([], [])


def test_rmi_shared_layers_stay_while_needed(svc, rootfs):
    a = svc.import_tar(rootfs, "a", None, [], "one")
    b = svc.import_tar(rootfs, "b", None, [], "two")
    assert a != b
    out = svc.remove("a")
    assert [r for r in out if "Deleted" in r] == [{"Deleted": a}]
    assert (svc.resolve("b").layer_dirs[0] / "bin/busybox").exists()
    svc.remove("b")
    assert _files(svc) == ([], [])


def test_rmi_with_containers(svc, rootfs):
    image_id = svc.import_tar(rootfs, "busybox", None, [], "")
    users = {image_id: ["c" * 64]}
    svc.set_usage_check(lambda i: users.get(i, []))
    with pytest.raises(Conflict, match=r'unable to remove repository reference "busybox" \(must force\) - '
                                       r"container cccccccccccc is using its referenced image [0-9a-f]{12}"):
        svc.remove("busybox")
    with pytest.raises(Conflict, match="must be forced.*stopped container cccccccccccc"):
        svc.remove(image_id)
    users[image_id] = [("d" * 64, True)]
    with pytest.raises(Conflict, match=r"cannot be forced\) - image is being used by running container dddddddddddd"):
        svc.remove(image_id, force=True)
    users[image_id] = ["c" * 64]
    out = svc.remove("busybox", force=True)
    assert out == [{"Untagged": "busybox:latest"}, {"Deleted": image_id}]
    # gone from lists, but the container can still resolve it by ID and its layers stay
    assert svc.list_images() == [] and svc.count() == 0
    rec = svc.resolve(image_id)
    assert (rec.layer_dirs[0] / "bin/busybox").exists()
    users.clear()
    svc.prune()
    with pytest.raises(NotFound):
        svc.resolve(image_id)
    assert _files(svc) == ([], [])


def test_prune(svc, rootfs, put, h):
    a = svc.import_tar(rootfs, "a", None, [], "")
    b = svc.import_tar(put(h.make_rootfs_tar({"x": b"1"})), "b", None, [], "")
    svc.tag(b, "a")  # a is dangling now
    res = svc.prune()
    assert {"Deleted": a} in res["ImagesDeleted"] and res["SpaceReclaimed"] > 1_000_000
    assert svc.ids() == [b]
    assert svc.prune() == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    svc.set_usage_check(lambda i: ["c" * 64] if i == b else [])
    assert svc.prune({"dangling": ["false"]})["ImagesDeleted"] is None
    svc.set_usage_check(lambda i: [])
    res = svc.prune({"dangling": ["false"]})
    assert {"Untagged": "a:latest"} in res["ImagesDeleted"] and {"Deleted": b} in res["ImagesDeleted"]
    assert _files(svc) == ([], [])
    with pytest.raises(InvalidParameter):
        svc.prune({"reference": ["x"]})


def test_restart_cleans_leftovers(make_svc, rootfs, tmp_path):
    svc = make_svc()
    image_id = svc.import_tar(rootfs, "busybox", None, [], "")
    layers = svc.config.layers_dir
    (layers / "tmp-crashed" / "diff").mkdir(parents=True)
    (layers / ("f" * 64) / "diff").mkdir(parents=True)  # renamed in place, row never written
    (svc.config.tmp_dir / "blob-half").write_bytes(b"x")
    orphan = svc.content.write_bytes(b"stored, then the crash came before its row")
    kept = sorted(d for d, _ in svc.content.walk() if d != orphan)
    assert len(kept) == 2  # the config and the layer's tar
    svc2 = make_svc()
    assert sorted(os.listdir(layers)) == [svc2.resolve(image_id).chain_ids[0][7:]]
    assert not (svc.config.tmp_dir / "blob-half").exists()
    assert sorted(d for d, _ in svc2.content.walk()) == kept
    assert svc2.resolve("busybox").id == image_id


def test_changes_parser():
    c = apply_changes({}, ["CMD echo hi", "ENTRYPOINT [\"/x\"]", "ENV K V W", "ONBUILD RUN x",
                           "HEALTHCHECK --interval=5s --retries=2 CMD curl -f http://x",
                           "EXPOSE 8000-8002/tcp", "WORKDIR a", "WORKDIR b"])
    assert c["Entrypoint"] == ["/x"] and c["Cmd"] is None
    assert c["Env"] == ["K=V W"] and c["OnBuild"] == ["RUN x"]
    assert c["Healthcheck"] == {"Interval": 5_000_000_000, "Retries": 2, "Test": ["CMD-SHELL", "curl -f http://x"]}
    assert sorted(c["ExposedPorts"]) == ["8000/tcp", "8001/tcp", "8002/tcp"]
    assert c["WorkingDir"] == "/a/b"
    assert apply_changes({}, ["CMD [\"a\", \"b\"]"])["Cmd"] == ["a", "b"]
    assert apply_changes({}, ["CMD a b"])["Cmd"] == ["/bin/sh", "-c", "a b"]
    assert apply_changes({}, ["HEALTHCHECK NONE"])["Healthcheck"] == {"Test": ["NONE"]}
    for bad in ("COPY a b", "EXPOSE 99999", "EXPOSE 80/xyz", "HEALTHCHECK --bogus=1 CMD x",
                "ENV", "LABEL a", "HEALTHCHECK --interval=5parsecs CMD x"):
        with pytest.raises(InvalidParameter):
            apply_changes({}, [bad])


def test_concurrent_imports_and_removals(svc, rootfs):
    import threading
    errors = []

    def work(i):
        try:
            for j in range(3):
                svc.import_tar(rootfs, f"img{i}", str(j), [], f"{i}-{j}")
                if j:
                    svc.remove(f"img{i}:{j - 1}")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert svc.count() == 4
    layers, _ = _files(svc)
    assert len(layers) == 1  # one unpack shared by all
    for i in range(4):
        assert (svc.resolve(f"img{i}:2").layer_dirs[0] / "bin/busybox").exists()
