"""The registry server against the distribution spec: every endpoint and its error paths."""

from __future__ import annotations

import json
import os


def test_base_answers_with_api_version_header(reg):
    c, _ = reg
    r = c.req("GET", "/v2/")
    assert r.status == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_monolithic_upload_then_get_head_and_ranges(reg, hp):
    c, _ = reg
    data = os.urandom(100_000)
    d = c.push_blob("team/app", data)
    r = c.req("HEAD", f"/v2/team/app/blobs/{d}")
    assert r.status == 200 and r.headers["content-length"] == str(len(data))
    assert r.headers["docker-content-digest"] == d
    assert c.req("GET", f"/v2/team/app/blobs/{d}").body == data
    r = c.req("GET", f"/v2/team/app/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert r.status == 206 and r.body == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = c.req("GET", f"/v2/team/app/blobs/{d}", headers={"Range": "bytes=99990-"})
    assert r.status == 206 and r.body == data[99990:]
    assert c.req("GET", f"/v2/team/app/blobs/{d}", headers={"Range": "bytes=200000-"}).status == 416
    # blobs are per repository: another repo does not see it without a mount
    r = c.req("GET", f"/v2/other/blobs/{d}")
    assert r.status == 404 and r.code == "BLOB_UNKNOWN"


def test_chunked_upload_in_order_and_out_of_order_is_416(reg, hp):
    c, _ = reg
    data = os.urandom(30_000)
    r = c.req("POST", "/v2/a/blobs/uploads/")
    assert r.status == 202
    loc = r.headers["location"]
    r = c.req("PATCH", loc, data[:10_000], {"Content-Range": "0-9999", "Content-Type": "application/octet-stream"})
    assert r.status == 202 and r.headers["range"] == "0-9999"
    # a chunk that does not start where the upload ends
    r = c.req("PATCH", loc, data[20_000:], {"Content-Range": "20000-29999"})
    assert r.status == 416 and r.code == "BLOB_UPLOAD_INVALID"
    r = c.req("GET", loc)
    assert r.status == 204 and r.headers["range"] == "0-9999"
    r = c.req("PATCH", loc, data[10_000:20_000], {"Content-Range": "10000-19999"})
    assert r.status == 202
    # the last chunk with the closing PUT
    r = c.req("PUT", f"{loc}?digest={hp.sha(data)}", data[20_000:], {"Content-Range": "20000-29999"})
    assert r.status == 201, r.body
    assert r.headers["location"] == f"/v2/a/blobs/{hp.sha(data)}"
    assert c.req("GET", f"/v2/a/blobs/{hp.sha(data)}").body == data
    # the session is gone after the PUT
    assert c.req("GET", loc).code == "BLOB_UPLOAD_UNKNOWN"


def test_streamed_patch_without_content_range(reg, hp):
    c, _ = reg
    data = os.urandom(5000)
    loc = c.req("POST", "/v2/a/blobs/uploads/").headers["location"]
    assert c.req("PATCH", loc, data).status == 202
    assert c.req("PUT", f"{loc}?digest={hp.sha(data)}").status == 201


def test_digest_mismatch_refused_and_nothing_stored(reg, hp):
    c, app = reg
    data = b"hello"
    wrong = hp.sha(b"other")
    r = c.req("POST", f"/v2/a/blobs/uploads/?digest={wrong}", data)
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    assert not app.storage.has_blob(wrong) and not app.storage.has_blob(hp.sha(data))
    r = c.req("POST", "/v2/a/blobs/uploads/?digest=md5:abc", data)
    assert r.status == 400 and r.code == "DIGEST_INVALID"


def test_cancel_upload(reg):
    c, _ = reg
    loc = c.req("POST", "/v2/a/blobs/uploads/").headers["location"]
    assert c.req("DELETE", loc).status == 204
    assert c.req("PATCH", loc, b"x").code == "BLOB_UPLOAD_UNKNOWN"
    assert c.req("GET", "/v2/a/blobs/uploads/not-a-uuid").code == "BLOB_UPLOAD_UNKNOWN"


def test_manifest_lifecycle(reg, hp):
    c, _ = reg
    digest, blobs = c.push_image("team/app", "1")
    r = c.req("GET", "/v2/team/app/manifests/1")
    assert r.status == 200 and hp.sha(r.body) == digest
    assert r.headers["content-type"] == hp.DOCKER_MANIFEST
    assert r.headers["docker-content-digest"] == digest
    assert c.req("HEAD", f"/v2/team/app/manifests/{digest}").status == 200
    assert c.req("GET", "/v2/team/app/tags/list").json() == {"name": "team/app", "tags": ["1"]}
    assert c.req("DELETE", f"/v2/team/app/manifests/{digest}").status == 202
    r = c.req("GET", "/v2/team/app/manifests/1")
    assert r.status == 404 and r.code == "MANIFEST_UNKNOWN"
    assert c.req("GET", "/v2/nope/manifests/1").code == "NAME_UNKNOWN"
    assert c.req("GET", "/v2/nope/tags/list").code == "NAME_UNKNOWN"


def test_manifest_with_missing_blob_or_wrong_size_is_refused(reg, hp):
    c, app = reg
    cfg, layer = b'{"rootfs":{}}', b"layer"
    c.push_blob("a", cfg)
    r = c.req("PUT", "/v2/a/manifests/1", hp.manifest(cfg, [layer]), {"Content-Type": hp.DOCKER_MANIFEST})
    assert r.status == 400 and r.code == "MANIFEST_BLOB_UNKNOWN"
    c.push_blob("a", layer)
    bad = json.loads(hp.manifest(cfg, [layer]))
    bad["layers"][0]["size"] = 999
    r = c.req("PUT", "/v2/a/manifests/1", json.dumps(bad).encode(), {"Content-Type": hp.DOCKER_MANIFEST})
    assert r.status == 400 and r.code == "SIZE_INVALID"
    for body in (b"not json", b"[]", json.dumps({"schemaVersion": 1}).encode()):
        r = c.req("PUT", "/v2/a/manifests/1", body, {"Content-Type": hp.DOCKER_MANIFEST})
        assert r.status == 400 and r.code == "MANIFEST_INVALID", body
    # by digest: the digest must be the body's
    good = hp.manifest(cfg, [layer])
    r = c.req("PUT", f"/v2/a/manifests/{hp.sha(b'x')}", good, {"Content-Type": hp.DOCKER_MANIFEST})
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    assert c.req("GET", "/v2/a/tags/list").json()["tags"] == []


def test_index_needs_its_manifests(reg, hp):
    c, _ = reg
    d, _ = c.push_image("a", "amd")
    size = len(c.req("GET", f"/v2/a/manifests/{d}").body)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": hp.DOCKER_MANIFEST, "digest": d, "size": size,
                            "platform": {"os": "linux", "architecture": "amd64"}}]}
    ct = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
    assert c.req("PUT", "/v2/a/manifests/multi", json.dumps(index).encode(), ct).status == 201
    index["manifests"][0]["digest"] = hp.sha(b"missing")
    r = c.req("PUT", "/v2/a/manifests/multi2", json.dumps(index).encode(), ct)
    assert r.code == "MANIFEST_BLOB_UNKNOWN"


def test_tags_and_catalog_pagination(reg):
    c, _ = reg
    layer = os.urandom(100)
    for t in ("a", "b", "c", "d", "e"):
        c.push_image("repo", t, layer)
    c.push_image("other/x", "1", layer)
    r = c.req("GET", "/v2/repo/tags/list?n=2")
    assert r.json()["tags"] == ["a", "b"]
    assert r.headers["link"] == '</v2/repo/tags/list?n=2&last=b>; rel="next"'
    assert c.req("GET", "/v2/repo/tags/list?n=2&last=b").json()["tags"] == ["c", "d"]
    assert "link" not in c.req("GET", "/v2/repo/tags/list?n=10&last=c").headers
    assert c.req("GET", "/v2/repo/tags/list?n=-1").code == "PAGINATION_NUMBER_INVALID"
    assert c.req("GET", "/v2/_catalog").json() == {"repositories": ["other/x", "repo"]}
    assert c.req("GET", "/v2/_catalog?n=1").json() == {"repositories": ["other/x"]}


def test_cross_repository_mount(reg, hp):
    c, _ = reg
    d = c.push_blob("src", b"shared layer")
    r = c.req("POST", f"/v2/dst/blobs/uploads/?mount={d}&from=src")
    assert r.status == 201 and r.headers["docker-content-digest"] == d
    assert c.req("HEAD", f"/v2/dst/blobs/{d}").status == 200
    # unknown source blob: an upload session instead (202), as the spec says
    r = c.req("POST", f"/v2/dst/blobs/uploads/?mount={hp.sha(b'nope')}&from=src")
    assert r.status == 202 and "/blobs/uploads/" in r.headers["location"]


def test_blob_delete(reg):
    c, _ = reg
    d = c.push_blob("a", b"bye")
    assert c.req("DELETE", f"/v2/a/blobs/{d}").status == 202
    assert c.req("HEAD", f"/v2/a/blobs/{d}").status == 404
    assert c.req("DELETE", f"/v2/a/blobs/{d}").code == "BLOB_UNKNOWN"


def test_referrers_with_artifact_type_filter(reg, hp):
    c, _ = reg
    subject, _ = c.push_image("a", "1")
    subj_size = len(c.req("GET", f"/v2/a/manifests/{subject}").body)
    empty = c.push_blob("a", b"{}")
    made = []
    for at in ("application/vnd.example.sbom", "application/vnd.example.sig"):
        art = {"schemaVersion": 2, "mediaType": hp.OCI_MANIFEST, "artifactType": at,
               "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
               "layers": [], "subject": {"mediaType": hp.DOCKER_MANIFEST, "digest": subject, "size": subj_size}}
        raw = json.dumps(art).encode()
        r = c.req("PUT", f"/v2/a/manifests/{hp.sha(raw)}", raw, {"Content-Type": hp.OCI_MANIFEST})
        assert r.status == 201 and r.headers["oci-subject"] == subject
        made.append(hp.sha(raw))
    r = c.req("GET", f"/v2/a/referrers/{subject}")
    body = r.json()
    assert body["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert sorted(m["digest"] for m in body["manifests"]) == sorted(made)
    r = c.req("GET", f"/v2/a/referrers/{subject}?artifactType=application/vnd.example.sig")
    assert [m["artifactType"] for m in r.json()["manifests"]] == ["application/vnd.example.sig"]
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert c.req("GET", f"/v2/a/referrers/{hp.sha(b'none')}").json()["manifests"] == []


def test_hostile_names_and_digests(reg, hp):
    c, app = reg
    for path in ("/v2/../../etc/blobs/uploads/", "/v2/a/_uploads/blobs/uploads/", "/v2/UPPER/blobs/uploads/",
                 "/v2/a//b/blobs/uploads/", "/v2/a/../b/blobs/uploads/", "/v2/.hidden/blobs/uploads/"):
        r = c.req("POST", path)
        assert r.status in (400, 404), path
        assert r.code in ("NAME_INVALID", "NOT_FOUND"), path
    assert c.req("GET", "/v2/a/blobs/sha256:../../etc/passwd").status == 404
    assert c.req("GET", "/v2/a/blobs/sha256:zzzz").code == "DIGEST_INVALID"
    assert c.req("GET", "/v2/a/manifests/..%2F..%2Fx").status in (400, 404)
    r = c.req("PATCH", "/v2/a/blobs/uploads/../../../../tmp", b"x")
    assert r.status in (400, 404)
    # nothing was created outside the root's own dirs
    assert sorted(p.name for p in app.storage.root.iterdir()) == ["blobs", "repositories", "tmp"]


def test_absurd_manifest_size_refused(reg, hp):
    c, _ = reg
    r = c.req("PUT", "/v2/a/manifests/1", b"{" + b" " * (5 * 1024 * 1024) + b"}",
              {"Content-Type": hp.DOCKER_MANIFEST})
    assert r.status == 413 and r.code == "MANIFEST_INVALID"


def test_unknown_paths_and_methods(reg):
    c, _ = reg
    assert c.req("GET", "/v3/").status == 404
    r = c.req("POST", "/v2/a/tags/list")
    assert r.status == 405 and r.code == "UNSUPPORTED"


def test_search_endpoint(reg):
    c, _ = reg
    layer = os.urandom(10)
    c.push_image("team/busybox", "1", layer)
    c.push_image("team/alpine", "1", layer)
    body = c.req("GET", "/v1/search?q=busy&n=5").json()
    assert body["num_results"] == 1
    assert body["results"][0]["name"] == "team/busybox"
