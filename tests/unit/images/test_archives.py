"""docker load / docker save: both layouts, compressed archives, digests verified, round trip."""

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from sampan.errors import InvalidParameter, NotFound


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name: t.extractfile(m).read() for m in t if m.isfile()}


def test_load_classic_docker_layout(svc, put, h):
    base = h.make_rootfs_tar()
    top = h.tar_of({"etc/motd": b"hello\n"})
    msgs = svc.load(put(h.docker_archive([base, top], ["busybox:latest", "me/bb:2"], gzip_layers=True,
                                         Cmd=["sh"])))
    assert msgs == ["Loaded image: busybox:latest", "Loaded image: me/bb:2"]
    rec = svc.resolve("me/bb:2")
    assert rec.container_config["Cmd"] == ["sh"]
    assert len(rec.layer_dirs) == 2
    assert (rec.layer_dirs[0] / "etc/motd").read_bytes() == b"hello\n"   # top-most first
    assert (rec.layer_dirs[1] / "bin/busybox").exists()
    assert svc.content.read_bytes(rec.diff_ids[0]) == base  # kept uncompressed, byte-exact


def test_load_oci_layout_and_gzip_archive(svc, put, h):
    base = h.make_rootfs_tar()
    archive, image_id = h.oci_archive([base], "docker.io/library/busybox:1.36")
    msgs = svc.load(put(gzip.compress(archive)))
    assert msgs == ["Loaded image: busybox:1.36"]
    assert svc.lookup_id("busybox:1.36") == image_id
    # a nested index (multi-platform) picks this host's platform; unnamed -> by ID
    archive2, id2 = h.oci_archive([base, h.tar_of({"x": b"1"})], None, nested=True)
    assert svc.load(put(archive2)) == [f"Loaded image ID: {id2}"]
    assert svc.resolve(id2).chain_ids[0] == svc.resolve(image_id).chain_ids[0]


def test_load_moves_tag_and_says_so(svc, put, h):
    a = svc.load(put(h.docker_archive([h.make_rootfs_tar()], ["x:1"])))
    old = svc.lookup_id("x:1")
    msgs = svc.load(put(h.docker_archive([h.make_rootfs_tar({"n": b"1"})], ["x:1"])))
    assert msgs[0] == f"The image x:1 already exists, renaming the old one with ID {old} to empty string"
    assert msgs[1] == "Loaded image: x:1"
    assert a == ["Loaded image: x:1"]


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for n, d in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
    return buf.getvalue()


def _nothing_stored(svc):
    root = svc.config.data_root
    return (svc.count() == 0 and os.listdir(root / "layers") == []
            and os.listdir(root / "content" / "sha256") == [])


def test_load_verifies_docker_diff_ids(svc, put, h):
    archive = h.docker_archive([h.make_rootfs_tar()], ["x:1"])
    m = _members(archive)
    layer = [n for n in m if n.endswith("layer.tar")][0]
    m[layer] = h.tar_of({"evil": b"swapped"})
    with pytest.raises(InvalidParameter, match="mismatch"):
        svc.load(put(_tar(m)))
    assert _nothing_stored(svc)


def test_load_verifies_config_name(svc, put, h):
    archive = h.docker_archive([h.make_rootfs_tar()], ["x:1"])
    m = _members(archive)
    cfg_name = [n for n in m if n.endswith(".json") and n != "manifest.json"][0]
    m[cfg_name] = m[cfg_name].replace(b"amd64", b"arm64")
    with pytest.raises(InvalidParameter, match="mismatch"):
        svc.load(put(_tar(m)))
    assert _nothing_stored(svc)


def test_load_verifies_oci_blobs(svc, put, h):
    archive, _ = h.oci_archive([h.make_rootfs_tar()], "x:1", gzip_layers=True)
    m = _members(archive)
    index = json.loads(m["index.json"])
    man = json.loads(m["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    lname = "blobs/sha256/" + man["layers"][0]["digest"][7:]
    m[lname] = gzip.compress(gzip.decompress(m[lname]), mtime=123)  # same content, other bytes
    with pytest.raises(InvalidParameter, match="digest mismatch"):
        svc.load(put(_tar(m)))
    assert _nothing_stored(svc)
    m = _members(archive)
    mname = "blobs/sha256/" + index["manifests"][0]["digest"][7:]
    m[mname] = m[mname] + b" "
    with pytest.raises(InvalidParameter, match="mismatch"):
        svc.load(put(_tar(m)))
    assert _nothing_stored(svc)


@pytest.mark.parametrize("files", [
    {"hello.txt": b"not an image"},
    {"manifest.json": b"{not json"},
    {"manifest.json": b'{"a": 1}'},
    {"manifest.json": b'[{"Config": "missing.json", "Layers": []}]'},
    {"manifest.json": b'[{"Config": "../../etc/passwd", "Layers": []}]'},
    {"index.json": b'{"manifests": [{"digest": "sha256:../../etc/passwd"}]}'},
    {"index.json": b'{"manifests": "x"}'},
    {"manifest.json": b'[{"Config": "c.json", "RepoTags": ["BAD NAME"], "Layers": []}]',
     "c.json": b'{"rootfs": {"type": "layers", "diff_ids": []}}'},
    {"manifest.json": b'[{"Config": "c.json", "Layers": ["l"]}]', "l": b"x" * 1024,
     "c.json": b'{"rootfs": {"type": "layers", "diff_ids": []}}'},
])
def test_load_refuses_non_images(svc, put, files):
    with pytest.raises(InvalidParameter):
        svc.load(put(_tar(files)))
    assert _nothing_stored(svc)


def test_load_refuses_garbage_and_symlink_loops(svc, put):
    with pytest.raises(InvalidParameter):
        svc.load(put(b"garbage" * 1000))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for a, b in (("manifest.json", "x"), ("x", "manifest.json")):
            ti = tarfile.TarInfo(a)
            ti.type, ti.linkname = tarfile.SYMTYPE, b
            t.addfile(ti)
    with pytest.raises(InvalidParameter, match="links"):
        svc.load(put(buf.getvalue()))


def test_save_layout_and_roundtrip(make_svc, put, h, tmp_path):
    svc = make_svc()
    base, top = h.make_rootfs_tar(), h.tar_of({"etc/motd": b"hi"})
    svc.load(put(h.docker_archive([base, top], ["busybox:latest"])))
    image_id = svc.lookup_id("busybox")
    svc.tag(image_id, "busybox", "other")
    out = io.BytesIO()
    svc.save(["busybox"], out)  # a bare repository name: every tag of it
    m = _members(out.getvalue())
    assert m["oci-layout"] == b'{"imageLayoutVersion":"1.0.0"}'
    manifest = json.loads(m["manifest.json"])
    assert len(manifest) == 1
    assert sorted(manifest[0]["RepoTags"]) == ["busybox:latest", "busybox:other"]
    assert manifest[0]["Config"] == "blobs/sha256/" + image_id[7:]
    assert [m[n] for n in manifest[0]["Layers"]] == [base, top]
    assert hashlib.sha256(m[manifest[0]["Config"]]).hexdigest() == image_id[7:]
    index = json.loads(m["index.json"])
    names = sorted(d["annotations"]["io.containerd.image.name"] for d in index["manifests"])
    assert names == ["docker.io/library/busybox:latest", "docker.io/library/busybox:other"]
    for blob, data in m.items():
        if blob.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == blob.rsplit("/", 1)[1]
    assert json.loads(m["repositories"]) == {"busybox": {"latest": h.sha(top)[7:], "other": h.sha(top)[7:]}}
    # the same again gives the same bytes
    again = io.BytesIO()
    svc.save(["busybox"], again)
    assert again.getvalue() == out.getvalue()

    other = make_svc(tmp_path / "root2")
    msgs = other.load(put(out.getvalue()))
    assert sorted(msgs) == ["Loaded image: busybox:latest", "Loaded image: busybox:other"]
    assert other.lookup_id("busybox:other") == image_id
    # and the OCI half alone loads too
    m.pop("manifest.json")
    third = make_svc(tmp_path / "root3")
    assert sorted(third.load(put(_tar(m)))) == ["Loaded image: busybox:latest", "Loaded image: busybox:other"]
    assert third.lookup_id("busybox") == image_id


def test_save_by_id_has_no_tags_and_unknown_is_404(svc, put, h):
    svc.load(put(h.docker_archive([h.make_rootfs_tar()], ["x:1"])))
    image_id = svc.lookup_id("x:1")
    out = io.BytesIO()
    svc.save([image_id[7:19]], out)
    manifest = json.loads(_members(out.getvalue())["manifest.json"])
    assert manifest[0]["RepoTags"] is None
    with pytest.raises(NotFound):
        svc.save(["nothere:1"], io.BytesIO())


def test_history_of_loaded_image_newest_first(svc, put, h):
    base, top = h.make_rootfs_tar(), h.tar_of({"etc/motd": b"hello\n"})
    svc.load(put(h.docker_archive([base, top], ["x:1"])))
    hist = svc.history("x:1")
    assert [e["CreatedBy"] for e in hist] == ["layer 1", "layer 0"]
    assert hist[0]["Id"] == svc.lookup_id("x:1") and hist[1]["Id"] == "<missing>"
    assert hist[0]["Tags"] == ["x:1"] and hist[1]["Tags"] is None
    assert hist[1]["Size"] > 1_000_000 and hist[0]["Size"] == 6
    assert hist[0]["Created"] == 1704164645
